package jp.shomei.app.ui

import android.app.Activity
import android.content.Intent
import android.os.Bundle
import android.widget.Button
import jp.shomei.app.ShomeiApplication
import jp.shomei.app.flow.FailureAdvice
import jp.shomei.app.flow.SingleFlight
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
 *
 * One decision at a time ([SingleFlight]); every button is disabled from the first tap on.
 */
class ApproveActivity : Activity() {
    private val scope = MainScope()
    private val app get() = application as ShomeiApplication
    private val decision = SingleFlight()
    private val buttons = mutableListOf<Button>()

    /** Opened from a typed code (docs/protocol.md §4.6) rather than a scanned QR. */
    private var viaCode = false

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val payload = intent.getStringExtra(MainActivity.EXTRA_PAYLOAD)
        val userCode = intent.getStringExtra(MainActivity.EXTRA_USER_CODE)
        if (payload == null && userCode == null) return finish()
        viaCode = payload == null
        showScreen(column { text("ログイン要求を確認しています…") })
        scope.launch {
            try {
                if (payload != null) {
                    show(payload, app.authenticator.loginContext(payload))
                } else {
                    // The same login context and the same decision as after a scan: the server
                    // answers with the login's QR payload.
                    val found = app.authenticator.loginByCode(userCode!!)
                    show(found.payload, found.context)
                }
            } catch (e: AuthenticatorException) {
                showFailure(e)
            }
        }
    }

    override fun onDestroy() {
        scope.cancel()
        super.onDestroy()
    }

    private fun show(payload: String, ctx: LoginContext) {
        buttons.clear()
        showScreen(column {
            text("ログインの承認", 22f, bold = true)
            if (viaCode) text("入力したコードのログイン要求です。目の前のEHR画面の内容と一致することを確認してください。")
            text("医療機関: ${ctx.facilityName}", 18f, bold = true)
            text("端末: ${ctx.terminalName}", 18f, bold = true)
            text("要求時刻: ${ctx.requestedAt.local()}")
            text("有効期限: ${ctx.expiresAt.local()}")
            text("EHR画面に表示されている番号を選んでください。表示と一致しない場合は拒否してください。")
            row {
                // uniffi carries Vec<u8> as a ByteArray; the numbers are 10..=99.
                for (b in ctx.numberChoices) {
                    val n = b.toUByte()
                    buttons += button(n.toString()) { decide(payload, ctx, approve = true, number = n) }
                }
            }
            buttons += button("心当たりがない（拒否）") { decide(payload, ctx, approve = false, number = 0u) }
        })
    }

    private fun decide(payload: String, ctx: LoginContext, approve: Boolean, number: UByte) {
        if (decision.isBusy) return
        buttons.forEach { it.isEnabled = false }
        app.gate.subtitle = "${ctx.facilityName} / ${ctx.terminalName} / $number"
        scope.launch {
            decision.runIfIdle {
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
                    if (e is AuthenticatorException.UserCancelled) {
                        // The prompt was dismissed: the login is still open, let them choose again.
                        buttons.forEach { it.isEnabled = true }
                    } else {
                        showFailure(e)
                    }
                }
            }
        }
    }

    private fun showFailure(e: AuthenticatorException) {
        val advice = FailureAdvice.of(e)
        if (advice.action == FailureAdvice.Action.FORGET_AND_RE_ENROLL) app.unenroll()
        showScreen(column {
            text(advice.message, 18f)
            when (advice.action) {
                FailureAdvice.Action.OFFER_RE_ENROLLMENT -> button("登録を削除して再登録する") {
                    app.unenroll()
                    startActivity(Intent(this@ApproveActivity, ScanActivity::class.java))
                    finish()
                }
                FailureAdvice.Action.FORGET_AND_RE_ENROLL -> button("登録用QRコードを読み取る") {
                    startActivity(Intent(this@ApproveActivity, ScanActivity::class.java))
                    finish()
                }
                FailureAdvice.Action.REFRESH_CODE -> if (viaCode) {
                    button("コードを入力し直す") { retypeCode() }
                } else {
                    button("QRコードを読み取り直す") {
                        startActivity(Intent(this@ApproveActivity, ScanActivity::class.java))
                        finish()
                    }
                }
                FailureAdvice.Action.RETYPE_CODE -> button("コードを入力し直す") { retypeCode() }
                FailureAdvice.Action.RETRY, FailureAdvice.Action.NONE -> Unit
            }
            button("ホームへ") { finish() }
        })
    }

    private fun retypeCode() {
        startActivity(Intent(this, CodeEntryActivity::class.java))
        finish()
    }

    private fun showMessage(message: String) {
        showScreen(column {
            text(message, 18f)
            button("ホームへ") { finish() }
        })
    }
}
