package jp.shomei.app.ui

import android.app.Activity
import android.os.Build
import android.os.Bundle
import android.text.InputType
import android.util.Log
import android.widget.Button
import android.widget.EditText
import jp.shomei.app.ShomeiApplication
import jp.shomei.app.flow.EnrollmentOutcome
import jp.shomei.app.flow.FailureAdvice
import jp.shomei.mobile.PayloadException
import jp.shomei.mobile.parsePayload
import kotlinx.coroutines.launch

/**
 * One-time enrollment: shows which server the code is for, asks for the activation password
 * the operator handed over separately, creates the hardware key and registers it.
 *
 * The order that keeps a working phone working (refuse while enrolled, fresh alias, swap only
 * after the server accepted) is [jp.shomei.app.flow.EnrollmentCoordinator]'s; this screen
 * only collects the input, disables its button while the coordinator runs, and shows the
 * outcome. The coordinator runs in the application's scope: leaving the screen does not
 * abandon an enrollment the server may already have accepted.
 */
class EnrollActivity : Activity() {
    private val app get() = application as ShomeiApplication
    private var destroyed = false

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val payload = intent.getStringExtra(MainActivity.EXTRA_PAYLOAD) ?: return finish()
        if (app.authenticator.enrollment() != null) {
            // Checked before anything else: an enrollment link must not even offer to touch
            // the key of an enrolled phone.
            return showMessage(ALREADY_ENROLLED)
        }
        val info = try {
            parsePayload(payload)
        } catch (e: PayloadException) {
            return showMessage("登録用QRコードが正しくありません（${e.javaClass.simpleName}）。")
        }
        lateinit var password: EditText
        lateinit var name: EditText
        lateinit var submit: Button
        showScreen(column {
            text("端末の登録", 22f, bold = true)
            text("登録先サーバー: ${info.origin}", bold = true)
            text("有効期限: ${info.expiresAt.local()}")
            text("アクティベーションパスワード")
            password = EditText(context).apply {
                inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_PASSWORD
            }.also { addView(it) }
            text("端末名")
            name = EditText(context).apply { setText(Build.MODEL) }.also { addView(it) }
            submit = button("登録する") {
                submit.isEnabled = false
                password.isEnabled = false
                name.isEnabled = false
                submit.text = "端末の鍵を作成して登録しています…"
                enroll(payload, password.text.toString(), name.text.toString())
            }
            submit.isEnabled = !app.enrollment.isBusy
        })
    }

    override fun onDestroy() {
        destroyed = true
        super.onDestroy()
    }

    private fun enroll(payload: String, password: String, deviceName: String) {
        app.scope.launch {
            val message = when (val outcome = app.enrollment.enroll(payload, password, deviceName)) {
                is EnrollmentOutcome.Enrolled -> "登録しました: ${outcome.state.practitionerName}"
                EnrollmentOutcome.AlreadyEnrolled -> ALREADY_ENROLLED
                EnrollmentOutcome.Busy -> return@launch // the first tap's run reports
                is EnrollmentOutcome.KeyCreationFailed -> {
                    Log.w(TAG, "key generation failed: ${outcome.cause.javaClass.simpleName}")
                    "端末の鍵を作成できませんでした（${outcome.cause.javaClass.simpleName}）。"
                }
                is EnrollmentOutcome.Refused -> FailureAdvice.of(outcome.error).message
                is EnrollmentOutcome.NotSaved -> {
                    Log.w(TAG, "enrollment state not stored: ${outcome.cause.javaClass.simpleName}")
                    "登録はサーバーで完了しましたが、端末に保存できませんでした。アプリを再起動すると登録が失われます。管理者に連絡してください。"
                }
            }
            if (!destroyed) showMessage(message)
        }
    }

    private fun showMessage(message: String) {
        showScreen(column {
            text(message, 18f)
            button("ホームへ") { finish() }
        })
    }

    private companion object {
        const val TAG = "Shomei"
        const val ALREADY_ENROLLED =
            "この端末は既に登録されています。登録し直すには、先にホーム画面で「この端末の登録を削除する」を選んでください。"
    }
}
