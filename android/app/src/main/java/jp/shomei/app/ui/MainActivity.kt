package jp.shomei.app.ui

import android.app.Activity
import android.content.Intent
import android.os.Bundle
import android.widget.LinearLayout
import jp.shomei.app.ShomeiApplication
import jp.shomei.mobile.AuthenticatorException
import jp.shomei.mobile.PayloadException
import jp.shomei.mobile.PayloadKind
import jp.shomei.mobile.parsePayload
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch

/**
 * Home: who this phone is enrolled as, the scan button, and the active grants (which the
 * practitioner can end, e.g. when leaving the clinic). Also the App Links entry point: a
 * login/enrollment URL opened from elsewhere is routed like a scanned QR.
 */
class MainActivity : Activity() {
    private val scope = MainScope()
    private val app get() = application as ShomeiApplication
    private lateinit var grantsBox: LinearLayout

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        intent?.let { route(it) }
    }

    override fun onNewIntent(intent: Intent) {
        super.onNewIntent(intent)
        route(intent)
    }

    override fun onResume() {
        super.onResume()
        render()
    }

    override fun onDestroy() {
        scope.cancel()
        super.onDestroy()
    }

    private fun route(intent: Intent) {
        if (intent.action != Intent.ACTION_VIEW) return
        val url = intent.dataString ?: return
        openPayload(this, url)
    }

    private fun render() {
        val enrolled = app.authenticator.enrollment()
        setContentView(column {
            text("Shomei 署名認証", 24f, bold = true)
            if (enrolled == null) {
                text("この端末は未登録です。管理者から受け取った登録用QRコードを読み取ってください。")
            } else {
                text("${enrolled.practitionerName} (${enrolled.practitionerRole})", 18f, bold = true)
                text("サーバー: ${enrolled.serverOrigin}")
            }
            button("QRコードを読み取る") { startActivity(Intent(this@MainActivity, ScanActivity::class.java)) }
            if (enrolled != null) {
                text("有効な認証", 18f, bold = true)
                grantsBox = LinearLayout(context).apply { orientation = LinearLayout.VERTICAL }
                addView(grantsBox)
                button("すべての認証を終了する") { endAll() }
                button("この端末の登録を削除する") {
                    app.unenroll()
                    render()
                }
            }
        })
        if (enrolled != null) loadGrants()
    }

    private fun loadGrants() {
        scope.launch {
            grantsBox.removeAllViews()
            try {
                val grants = app.authenticator.grants()
                if (grants.isEmpty()) grantsBox.text("なし")
                for (g in grants) {
                    grantsBox.text("${g.facilityName} / ${g.terminalName}\n${g.createdAt.local()} 〜 ${g.expiresAt.local()}\n署名 ${g.signaturesMade} 回")
                    grantsBox.button("この認証を終了") { endOne(g.id) }
                }
            } catch (e: AuthenticatorException) {
                grantsBox.text(e.forUser())
            }
        }
    }

    private fun endOne(id: String) {
        scope.launch {
            try {
                app.authenticator.endGrant(id)
            } catch (e: AuthenticatorException) {
                grantsBox.text(e.forUser())
            }
            loadGrants()
        }
    }

    private fun endAll() {
        scope.launch {
            try {
                app.authenticator.endAllGrants()
            } catch (e: AuthenticatorException) {
                grantsBox.text(e.forUser())
            }
            loadGrants()
        }
    }

    companion object {
        /** Sends a scanned or linked payload URL to the right screen. */
        fun openPayload(from: Activity, url: String) {
            val kind = try {
                parsePayload(url).kind
            } catch (e: PayloadException) {
                from.setContentView(from.column {
                    text("QRコードを読み取れませんでした", 18f, bold = true)
                    text(e.message ?: "")
                    button("戻る") { from.recreate() }
                })
                return
            }
            val target = when (kind) {
                PayloadKind.LOGIN -> ApproveActivity::class.java
                PayloadKind.ENROLLMENT -> EnrollActivity::class.java
            }
            from.startActivity(Intent(from, target).putExtra(EXTRA_PAYLOAD, url))
        }

        const val EXTRA_PAYLOAD = "jp.shomei.app.PAYLOAD"
    }
}
