package jp.shomei.app.ui

import android.app.Activity
import android.content.Intent
import android.os.Bundle
import android.widget.LinearLayout
import jp.shomei.app.ShomeiApplication
import jp.shomei.app.flow.LinkIntents
import jp.shomei.app.flow.ScanVerdict
import jp.shomei.mobile.AuthenticatorException
import jp.shomei.mobile.PayloadKind
import jp.shomei.mobile.parsePayload
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch

/**
 * Home: who this phone is enrolled as, the scan button, and the active grants (which the
 * practitioner can end, e.g. when leaving the clinic). Also the App Links entry point: a
 * login/enrollment URL opened from elsewhere is routed like a scanned QR, once.
 */
class MainActivity : Activity() {
    private val scope = MainScope()
    private val app get() = application as ShomeiApplication
    private lateinit var grantsBox: LinearLayout

    /** Why the last opened link could not be used; shown on top of home until dismissed. */
    private var notice: String? = null

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        notice = savedInstanceState?.getString(STATE_NOTICE)
        routeOnce(intent)
    }

    override fun onNewIntent(intent: Intent) {
        super.onNewIntent(intent)
        setIntent(intent)
        routeOnce(intent)
    }

    override fun onResume() {
        super.onResume()
        render()
    }

    override fun onSaveInstanceState(outState: Bundle) {
        super.onSaveInstanceState(outState)
        notice?.let { outState.putString(STATE_NOTICE, it) }
    }

    override fun onDestroy() {
        scope.cancel()
        super.onDestroy()
    }

    /** Routes an App Link once: rotation, recreate() or reopening from recents do not replay it. */
    private fun routeOnce(intent: Intent?) {
        intent ?: return
        val url = LinkIntents.toRoute(
            LinkIntents.Incoming(
                action = intent.action,
                url = intent.dataString,
                launchedFromHistory = intent.flags and Intent.FLAG_ACTIVITY_LAUNCHED_FROM_HISTORY != 0,
                consumed = intent.getBooleanExtra(EXTRA_CONSUMED, false),
            ),
        ) ?: return
        intent.putExtra(EXTRA_CONSUMED, true)
        notice = openPayload(this, url)
    }

    private fun render() {
        val enrolled = app.authenticator.enrollment()
        showScreen(column {
            text("Shomei 署名認証", 24f, bold = true)
            notice?.let { message ->
                text(message, 16f, bold = true)
                button("閉じる") {
                    notice = null
                    render()
                }
            }
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
        /**
         * Opens the screen for a payload URL (scanned or linked). Returns null when a screen
         * was started, else what to tell the user (expired or invalid code); the caller
         * shows it and stays where it is.
         */
        fun openPayload(from: Activity, url: String): String? =
            when (val verdict = ScanVerdict.ofUrl(url, ::parsePayload)) {
                is ScanVerdict.Open -> {
                    open(from, verdict)
                    null
                }
                is ScanVerdict.KeepScanning -> verdict.message
            }

        fun open(from: Activity, verdict: ScanVerdict.Open) {
            val target = when (verdict.kind) {
                PayloadKind.LOGIN -> ApproveActivity::class.java
                PayloadKind.ENROLLMENT -> EnrollActivity::class.java
            }
            from.startActivity(Intent(from, target).putExtra(EXTRA_PAYLOAD, verdict.url))
        }

        const val EXTRA_PAYLOAD = "jp.shomei.app.PAYLOAD"
        private const val EXTRA_CONSUMED = "jp.shomei.app.LINK_CONSUMED"
        private const val STATE_NOTICE = "notice"
    }
}
