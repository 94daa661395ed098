package jp.shomei.app.ui

import android.app.Activity
import android.os.Build
import android.os.Bundle
import android.text.InputType
import android.widget.EditText
import java.security.MessageDigest
import jp.shomei.app.ShomeiApplication
import jp.shomei.mobile.AuthenticatorException
import jp.shomei.mobile.Platform
import jp.shomei.mobile.PlatformKeyException
import jp.shomei.mobile.parsePayload
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch

/**
 * One-time enrollment: shows which server the code is for, asks for the activation password
 * the operator handed over separately, creates the hardware key and registers it.
 */
class EnrollActivity : Activity() {
    private val scope = MainScope()
    private val app get() = application as ShomeiApplication

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val payload = intent.getStringExtra(MainActivity.EXTRA_PAYLOAD) ?: return finish()
        val info = try {
            parsePayload(payload)
        } catch (e: Exception) {
            return showMessage("登録用QRコードが正しくありません: ${e.message}")
        }
        lateinit var password: EditText
        lateinit var name: EditText
        setContentView(column {
            text("端末の登録", 22f, bold = true)
            text("登録先サーバー: ${info.origin}", bold = true)
            text("有効期限: ${info.expiresAt.local()}")
            text("アクティベーションパスワード")
            password = EditText(context).apply {
                inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_PASSWORD
            }.also { addView(it) }
            text("端末名")
            name = EditText(context).apply { setText(Build.MODEL) }.also { addView(it) }
            button("登録する") { enroll(payload, password.text.toString(), name.text.toString()) }
        })
    }

    override fun onDestroy() {
        scope.cancel()
        super.onDestroy()
    }

    private fun enroll(payload: String, password: String, deviceName: String) {
        scope.launch {
            try {
                // The attestation challenge binds the Keystore certificate chain to this
                // enrollment code, so a chain cannot be replayed from another enrollment.
                val challenge = MessageDigest.getInstance("SHA-256").digest(payload.toByteArray())
                val chain = try {
                    app.deviceKey.create(challenge)
                } catch (e: Exception) {
                    return@launch showMessage("端末の鍵を作成できませんでした: ${e.javaClass.simpleName}")
                }
                app.deviceKey.promptSubtitle = "端末の登録"
                val enrolled = app.authenticator.enroll(payload, password, deviceName, Platform.ANDROID, chain)
                app.persist()
                showMessage("登録しました: ${enrolled.practitionerName}")
            } catch (e: AuthenticatorException) {
                showMessage(e.forUser())
            } catch (e: PlatformKeyException) {
                showMessage(e.message ?: "端末の鍵でエラーが発生しました")
            }
        }
    }

    private fun showMessage(message: String) {
        setContentView(column {
            text(message, 18f)
            button("ホームへ") { finish() }
        })
    }
}
