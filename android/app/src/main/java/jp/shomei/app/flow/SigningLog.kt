package jp.shomei.app.flow

import java.time.ZoneId
import java.time.format.DateTimeFormatter
import jp.shomei.mobile.Authenticator
import jp.shomei.mobile.AuthenticatorException
import jp.shomei.mobile.SignatureEntry
import jp.shomei.mobile.SignatureFormat
import jp.shomei.mobile.SignaturePage

/**
 * What the home screen shows under each grant (issue 14): the signatures made in the
 * practitioner's name today, newest first, kept current while the screen is in front.
 *
 * The protocol (docs/protocol.md §9.3): load the day view's pages once and keep the walk's
 * `watermark`; then follow with `signaturesSince(watermark)` until `more` is false, adding new
 * entries on top. Nothing is missed or repeated, because `seq` increases in commit order. A
 * `cursor_invalid` (a restored server, another server) drops everything and reloads.
 * Platform-free so that the JVM tests drive it against a real server; the activity only
 * decides when to call [load] and [follow] (on resume, then every few seconds until pause).
 */
class SigningLog(private val source: Source, private val maxEntries: Int = MAX_ENTRIES) {
    /** Where the entries come from: the Rust `Authenticator` in the app. */
    interface Source {
        /** A page of the day view (all grants, last 24 hours), newest first. */
        suspend fun page(cursor: String?, limit: UInt): SignaturePage

        /** What was recorded after `since`, oldest first. */
        suspend fun since(since: ULong, limit: UInt): SignaturePage
    }

    /** The app's source: the day view through core (responses checked there). */
    class FromAuthenticator(private val auth: Authenticator) : Source {
        override suspend fun page(cursor: String?, limit: UInt): SignaturePage = auth.signatures(null, cursor, limit)
        override suspend fun since(since: ULong, limit: UInt): SignaturePage = auth.signaturesSince(null, since, limit)
    }

    private var entries: List<SignatureEntry> = emptyList()
    private var watermark: ULong? = null

    /** Every entry shown, newest first. */
    val all: List<SignatureEntry> get() = entries

    /** One grant's entries, newest first (empty when it signed nothing today). */
    fun of(grantId: String): List<SignatureEntry> = entries.filter { it.grantId == grantId }

    /** True once [load] succeeded (then [follow] adds to it). */
    val loaded: Boolean get() = watermark != null

    /** Reads the day view from its first page (at most [maxEntries], newest kept). */
    suspend fun load() {
        val first = source.page(null, PAGE)
        val walk = first.entries.toMutableList()
        var cursor = first.nextCursor
        while (cursor != null && walk.size < maxEntries) {
            val next = source.page(cursor, PAGE)
            walk += next.entries
            cursor = next.nextCursor
        }
        entries = walk.take(maxEntries)
        watermark = first.watermark
    }

    /**
     * Adds what was signed since the last look, newest on top; returns the new entries (oldest
     * first), so the screen can point them out. Loads first if nothing was loaded yet.
     */
    suspend fun follow(): List<SignatureEntry> {
        val from = watermark ?: run {
            load()
            return emptyList()
        }
        val fresh = mutableListOf<SignatureEntry>()
        var at = from
        try {
            do {
                val batch = source.since(at, PAGE)
                fresh += batch.entries
                at = batch.watermark
            } while (batch.more)
        } catch (e: AuthenticatorException.Rejected) {
            if (e.code != "cursor_invalid") throw e
            load()
            return emptyList()
        }
        entries = (fresh.asReversed() + entries).take(maxEntries)
        watermark = at
        return fresh
    }

    companion object {
        /** Page and batch size (the server's maximum). */
        const val PAGE: UInt = 200u

        /** A day of a busy clinic; older entries of the day stay on the server. */
        const val MAX_ENTRIES: Int = 2000

        /** How often the screen polls while in front. */
        const val FOLLOW_EVERY_MS: Long = 3000

        private val clock: DateTimeFormatter = DateTimeFormatter.ofPattern("HH:mm:ss")

        /**
         * One line as the practitioner reads it: time in the device's zone, terminal @
         * facility, format, the label if any, and the digest's first 12 base64 characters.
         */
        fun line(e: SignatureEntry, zone: ZoneId = ZoneId.systemDefault()): String {
            val time = clock.withZone(zone).format(e.signedAt)
            val label = e.label?.let { "「$it」 " } ?: ""
            return "$time  ${e.terminalName} @ ${e.facilityName}\n${formatName(e.format)}  $label${shortDigest(e.digestBase64)}"
        }

        fun formatName(f: SignatureFormat): String = when (f) {
            SignatureFormat.HASH -> "署名 (hash)"
            SignatureFormat.XADES -> "XAdES"
            SignatureFormat.CMS -> "CMS"
        }

        fun shortDigest(b64: String): String = if (b64.length <= 12) b64 else b64.take(12) + "…"
    }
}
