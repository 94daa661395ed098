package jp.shomei.app.flow

/**
 * Which opened links (App Links `ACTION_VIEW`) are still to be handled. An activity keeps
 * its launching intent across rotation and `recreate()`, and Android re-delivers it when the
 * app is reopened from the recents list; routing it again would reopen an old login or
 * enrollment code. A link is routed once: the activity marks the intent consumed (an extra,
 * which survives recreation) right after routing.
 */
object LinkIntents {
    const val ACTION_VIEW = "android.intent.action.VIEW"

    /** What the activity knows about an intent, without android.* types. */
    data class Incoming(
        val action: String?,
        val url: String?,
        /** `Intent.FLAG_ACTIVITY_LAUNCHED_FROM_HISTORY` was set: a re-delivery from recents. */
        val launchedFromHistory: Boolean,
        /** The activity already routed this intent (the consumed extra is set). */
        val consumed: Boolean,
    )

    /** The payload URL to route, or null when there is nothing (new) to route. */
    fun toRoute(intent: Incoming): String? = when {
        intent.action != ACTION_VIEW -> null
        intent.consumed || intent.launchedFromHistory -> null
        intent.url.isNullOrEmpty() -> null
        else -> intent.url
    }
}
