package jp.shomei.app.ui

import android.app.Activity
import android.graphics.Typeface
import android.view.Gravity
import android.view.View
import android.view.ViewGroup
import android.view.WindowInsets
import android.widget.Button
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import java.time.Instant
import java.time.ZoneId
import java.time.format.DateTimeFormatter
import jp.shomei.app.flow.FailureAdvice
import jp.shomei.app.platform.Api30
import jp.shomei.mobile.AuthenticatorException

/**
 * Screens are built in code from framework widgets: the app has no androidx and no generated
 * R class, which also lets CI compile every screen against the framework jar.
 */
internal fun Activity.column(build: LinearLayout.() -> Unit): ScrollView {
    val col = LinearLayout(this).apply {
        orientation = LinearLayout.VERTICAL
        val pad = (16 * resources.displayMetrics.density).toInt()
        setPadding(pad, pad, pad, pad)
        build()
    }
    return ScrollView(this).apply { addView(col) }
}

internal fun LinearLayout.text(value: String, sizeSp: Float = 16f, bold: Boolean = false): TextView =
    TextView(context).apply {
        text = value
        textSize = sizeSp
        if (bold) setTypeface(typeface, Typeface.BOLD)
        setPadding(0, 8, 0, 8)
    }.also { addView(it) }

internal fun LinearLayout.button(label: String, onClick: (View) -> Unit): Button =
    Button(context).apply {
        text = label
        isAllCaps = false
        setOnClickListener(onClick)
    }.also {
        addView(it, LinearLayout.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.WRAP_CONTENT))
    }

internal fun LinearLayout.row(build: LinearLayout.() -> Unit): LinearLayout =
    LinearLayout(context).apply {
        orientation = LinearLayout.HORIZONTAL
        gravity = Gravity.CENTER
        build()
    }.also { addView(it) }

private val localTime: DateTimeFormatter =
    DateTimeFormatter.ofPattern("yyyy/MM/dd HH:mm:ss").withZone(ZoneId.systemDefault())

internal fun Instant.local(): String = localTime.format(this)

/** What the user reads for a typed failure from Rust (see [FailureAdvice]). */
internal fun AuthenticatorException.forUser(): String = FailureAdvice.of(this).message

/**
 * Shows [view] as the whole screen, padded by the system bars, display cutout and keyboard.
 * With targetSdk 35 Android 15 draws every app edge to edge; without this padding the first
 * and last lines sit under the status and navigation bars.
 */
internal fun Activity.showScreen(view: View) {
    setContentView(view)
    view.setOnApplyWindowInsetsListener { v, insets ->
        val safe = Api30.safeInsets(insets) ?: legacyInsets(insets)
        v.setPadding(safe[0], safe[1], safe[2], safe[3])
        insets
    }
    view.requestApplyInsets()
}

@Suppress("DEPRECATION")
private fun legacyInsets(insets: WindowInsets): IntArray = intArrayOf(
    insets.systemWindowInsetLeft,
    insets.systemWindowInsetTop,
    insets.systemWindowInsetRight,
    insets.systemWindowInsetBottom,
)
