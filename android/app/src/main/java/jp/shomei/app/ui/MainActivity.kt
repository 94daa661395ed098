package jp.shomei.app.ui

import android.app.Activity
import android.content.Intent
import android.os.Bundle
import android.widget.LinearLayout
import jp.shomei.app.ShomeiApplication
import jp.shomei.app.flow.LinkIntents
import jp.shomei.app.flow.ScanVerdict
import jp.shomei.app.flow.SigningLog
import jp.shomei.mobile.Authenticator
import jp.shomei.mobile.AuthenticatorException
import jp.shomei.mobile.Grant
import jp.shomei.mobile.PayloadKind
import jp.shomei.mobile.parsePayload
import kotlinx.coroutines.Job
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.cancel
import kotlinx.coroutines.delay
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch

/**
 * Home: who this phone is enrolled as, the scan button, and the active grants (which the
 * practitioner can end, e.g. when leaving the clinic), each with what was signed under it
 * today (issue 14: time in the phone's zone, terminal @ facility, format, label, short digest),
 * kept current while the screen is in front ([SigningLog]: a poll every few seconds, stopped
 * on pause; the end-grant button sits right below the list). Also the App Links entry point: a
 * login/enrollment URL opened from elsewhere is routed like a scanned QR, once.
 */
class MainActivity : Activity() {
    private val scope = MainScope()
    private val app get() = application as ShomeiApplication
    private lateinit var grantsBox: LinearLayout

    /** Today's signatures (null until enrolled); followed while resumed. */
    private var signingLog: SigningLog? = null
    private var logOf: Authenticator? = null
    private var following: Job? = null
    private var grants: List<Grant> = emptyList()

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

    override fun onPause() {
        // Mobile OSes cut background sockets; nothing is lost: the next resume follows on from
        // the last signature seen (docs/protocol.md §9.3).
        following?.cancel()
        following = null
        super.onPause()
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
            // When the camera cannot read the EHR's QR: type the code shown beside it.
            if (enrolled != null) button("コードを入力する") { startActivity(Intent(this@MainActivity, CodeEntryActivity::class.java)) }
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
        if (enrolled != null) {
            // A new enrollment (or a restored one) brings a new Authenticator: start its log afresh.
            val auth = app.authenticator
            if (signingLog == null || logOf !== auth) {
                following?.cancel()
                following = null
                signingLog = SigningLog(SigningLog.FromAuthenticator(auth))
                logOf = auth
            }
            loadGrants()
            follow()
        } else {
            following?.cancel()
            following = null
            signingLog = null
            logOf = null
        }
    }

    private fun loadGrants() {
        scope.launch {
            try {
                grants = app.authenticator.grants()
                showGrants(null)
            } catch (e: AuthenticatorException) {
                grantsBox.removeAllViews()
                grantsBox.text(e.forUser())
            }
        }
    }

    /** Each grant, today's signatures under it (newest first), then its end button. */
    private fun showGrants(problem: String?) {
        grantsBox.removeAllViews()
        problem?.let { grantsBox.text(it) }
        if (grants.isEmpty()) grantsBox.text("なし")
        val log = signingLog
        for (g in grants) {
            grantsBox.text("${g.facilityName} / ${g.terminalName}\n${g.createdAt.local()} 〜 ${g.expiresAt.local()}\n署名 ${g.signaturesMade} 回", bold = true)
            val signed = log?.of(g.id).orEmpty()
            when {
                log == null || !log.loaded -> grantsBox.text("署名の記録を読み込んでいます…", 14f)
                signed.isEmpty() -> grantsBox.text("本日の署名はありません", 14f)
                else -> for (e in signed.take(SHOWN_PER_GRANT)) grantsBox.text(SigningLog.line(e), 14f)
            }
            if (signed.size > SHOWN_PER_GRANT) grantsBox.text("ほか ${signed.size - SHOWN_PER_GRANT} 件", 14f)
            grantsBox.button("この認証を終了") { endOne(g.id) }
        }
    }

    /** Follows today's signatures while this screen is in front: first load, then a poll every few seconds. */
    private fun follow() {
        if (following?.isActive == true) return
        val log = signingLog ?: return
        following = scope.launch {
            while (isActive) {
                val problem = try {
                    val fresh = log.follow()
                    // A signature of a grant not listed yet (a new login meanwhile): reload the grants.
                    if (fresh.any { e -> grants.none { it.id == e.grantId } }) grants = app.authenticator.grants()
                    null
                } catch (e: AuthenticatorException) {
                    e.forUser()
                }
                showGrants(problem)
                delay(SigningLog.FOLLOW_EVERY_MS)
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

        /** Signatures listed under one grant on the home screen (newest first). */
        private const val SHOWN_PER_GRANT = 50

        const val EXTRA_PAYLOAD = "jp.shomei.app.PAYLOAD"
        /** A typed login code (canonical), for [ApproveActivity] instead of a payload. */
        const val EXTRA_USER_CODE = "jp.shomei.app.USER_CODE"
        private const val EXTRA_CONSUMED = "jp.shomei.app.LINK_CONSUMED"
        private const val STATE_NOTICE = "notice"
    }
}
