package jp.shomei.app.ui

import android.app.Activity
import android.graphics.Typeface
import android.view.Gravity
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import java.time.Instant
import java.time.ZoneId
import java.time.format.DateTimeFormatter
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

/** What the user should read for each typed failure from Rust. */
internal fun AuthenticatorException.forUser(): String = when (this) {
    is AuthenticatorException.UserCancelled -> "生体認証がキャンセルされました。"
    is AuthenticatorException.BiometricLockout -> "生体認証がロックされています。端末のロックを解除してから再度お試しください。"
    is AuthenticatorException.KeyInvalidated -> "生体情報が変更されたため、この端末の鍵は無効になりました。再登録してください。"
    is AuthenticatorException.KeyNotAvailable -> "端末の鍵を使用できません: $reason"
    is AuthenticatorException.KeyFailed -> "端末の鍵でエラーが発生しました: $reason"
    is AuthenticatorException.InvalidPayload -> "このQRコードは正しくありません: $reason"
    is AuthenticatorException.PayloadExpired -> "QRコードの有効期限が切れています。画面のQRコードを更新してください。"
    is AuthenticatorException.WrongPayloadKind -> "このQRコードはここでは使えません: $reason"
    is AuthenticatorException.NotEnrolled -> "この端末はまだ登録されていません。"
    is AuthenticatorException.AlreadyEnrolled -> "この端末は既に登録されています。"
    is AuthenticatorException.WrongServer -> "このQRコードは登録先と異なるサーバーのものです。読み取りを中止しました。"
    is AuthenticatorException.Network -> "通信できませんでした: $reason"
    is AuthenticatorException.Timeout -> "サーバーが応答しませんでした。"
    is AuthenticatorException.Rejected -> "サーバーが拒否しました ($code): $detail"
    is AuthenticatorException.InvalidInput -> "入力が正しくありません: $reason"
    is AuthenticatorException.Protocol -> "サーバーの応答が不正です: $reason"
    is AuthenticatorException.InvalidState -> "保存された登録情報が壊れています: $reason"
    is AuthenticatorException.Internal -> "内部エラー: $reason"
}
