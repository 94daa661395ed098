package jp.shomei.app.ui

import android.app.Activity
import android.os.Bundle
import jp.shomei.app.ShomeiApplication
import jp.shomei.mobile.AuthenticatorException
import jp.shomei.mobile.LoginContext
import jp.shomei.mobile.Outcome
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch

/**
 * The daily approval. Shows what the *server* says is asking (facility, terminal, time) —
 * never what the QR claims — and the three numbers; the practitioner taps the number shown on
 * the EHR screen, which defeats a phished QR started on someone else's terminal. Approving
 * triggers the biometric prompt inside the key's `sign`.
 */
class ApproveActivity : Activity() {
    private val scope = MainScope()
    private val app get() = application as ShomeiApplication

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val payload = intent.getStringExtra(MainActivity.EXTRA_PAYLOAD) ?: return finish()
        setContentView(column { text("ログイン要求を確認しています…") })
        scope.launch {
            try {
                show(payload, app.authenticator.loginContext(payload))
            } catch (e: AuthenticatorException) {
                showMessage(e.forUser())
            }
        }
    }

    override fun onDestroy() {
        scope.cancel()
        super.onDestroy()
    }

    private fun show(payload: String, ctx: LoginContext) {
        setContentView(column {
            text("ログインの承認", 22f, bold = true)
            text("医療機関: ${ctx.facilityName}", 18f, bold = true)
            text("端末: ${ctx.terminalName}", 18f, bold = true)
            text("要求時刻: ${ctx.requestedAt.local()}")
            text("有効期限: ${ctx.expiresAt.local()}")
            text("EHR画面に表示されている番号を選んでください。表示と一致しない場合は拒否してください。")
            row {
                // uniffi carries Vec<u8> as a ByteArray; the numbers are 10..=99.
                for (b in ctx.numberChoices) {
                    val n = b.toUByte()
                    button(n.toString()) { decide(payload, ctx, approve = true, number = n) }
                }
            }
            button("心当たりがない（拒否）") { decide(payload, ctx, approve = false, number = 0u) }
        })
    }

    private fun decide(payload: String, ctx: LoginContext, approve: Boolean, number: UByte) {
        app.deviceKey.promptSubtitle = "${ctx.facilityName} / ${ctx.terminalName} / $number"
        scope.launch {
            try {
                val result = if (approve) {
                    app.authenticator.approve(payload, ctx, number)
                } else {
                    app.authenticator.deny(payload, ctx, number)
                }
                when (result.outcome) {
                    Outcome.APPROVED -> showMessage(
                        "承認しました。\n有効期限: ${result.grant?.expiresAt?.local() ?: "-"}",
                    )
                    Outcome.DENIED -> showMessage("拒否しました。")
                }
            } catch (e: AuthenticatorException) {
                if (e is AuthenticatorException.KeyInvalidated) app.unenroll()
                showMessage(e.forUser())
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
