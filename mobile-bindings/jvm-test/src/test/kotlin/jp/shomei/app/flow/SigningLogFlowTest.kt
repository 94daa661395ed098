package jp.shomei.app.flow

import java.time.Instant
import java.time.ZoneId
import jp.shomei.mobile.AuthenticatorException
import jp.shomei.mobile.SignatureEntry
import jp.shomei.mobile.SignatureFormat
import jp.shomei.mobile.SignaturePage
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** The home screen's signing-log model against a scripted source: paging, following, reloads. */
class SigningLogFlowTest {
    private fun entry(seq: Int, grant: String = "g1", label: String? = null) = SignatureEntry(
        seq = seq.toULong(), signedAt = Instant.parse("2026-12-01T03:15:42Z"), grantId = grant,
        facilityId = "f", facilityName = "さくらクリニック", terminalId = "t", terminalName = "受付PC 1",
        credentialId = "c", algorithm = "rsa-pkcs1-sha256", format = SignatureFormat.CMS,
        digestBase64 = "mnkWBSPE7wBQBkroMwQsVeDhwjUN2bvOYvma2IJMD/4=", label = label,
    )

    /** Serves a log of `seqs` (all of g1 unless said) like the server: pages of 2, batches of 2. */
    private class Scripted(var log: MutableList<SignatureEntry>) : SigningLog.Source {
        val calls = mutableListOf<String>()
        var failSince: AuthenticatorException? = null

        override suspend fun page(cursor: String?, limit: UInt): SignaturePage {
            calls += "page $cursor"
            val top = log.maxOfOrNull { it.seq } ?: 0uL
            val newest = log.sortedByDescending { it.seq }
            val start = cursor?.toInt() ?: 0
            val page = newest.drop(start).take(2)
            val more = start + 2 < newest.size
            return SignaturePage(page, top, if (more) (start + 2).toString() else null, more)
        }

        override suspend fun since(since: ULong, limit: UInt): SignaturePage {
            calls += "since $since"
            failSince?.let { failSince = null; throw it }
            val after = log.filter { it.seq > since }.sortedBy { it.seq }
            val batch = after.take(2)
            return SignaturePage(batch, batch.lastOrNull()?.seq ?: since, null, after.size > 2)
        }
    }

    @Test
    fun `load walks every page and keeps the day newest first, by grant`() = runBlocking {
        val src = Scripted(mutableListOf(entry(1), entry(2, "g2"), entry(3), entry(5), entry(6, "g2")))
        val log = SigningLog(src)
        log.load()
        assertEquals(listOf(6, 5, 3, 2, 1), log.all.map { it.seq.toInt() })
        assertEquals(listOf(5, 3, 1), log.of("g1").map { it.seq.toInt() })
        assertEquals(listOf("page null", "page 2", "page 4"), src.calls)
    }

    @Test
    fun `follow drains every batch after the watermark and puts them on top`() = runBlocking {
        val src = Scripted(mutableListOf(entry(1), entry(2)))
        val log = SigningLog(src)
        log.load()
        src.log.addAll(listOf(entry(4), entry(7, "g2"), entry(9)))
        val fresh = log.follow()
        assertEquals(listOf(4, 7, 9), fresh.map { it.seq.toInt() })
        assertEquals(listOf(9, 7, 4, 2, 1), log.all.map { it.seq.toInt() })
        assertEquals(listOf("since 2", "since 7"), src.calls.drop(1))
        assertTrue(log.follow().isEmpty())
        assertEquals("since 9", src.calls.last())
    }

    @Test
    fun `a cursor_invalid while following reloads from the first page`() = runBlocking {
        val src = Scripted(mutableListOf(entry(1), entry(2)))
        val log = SigningLog(src)
        log.load()
        src.log = mutableListOf(entry(1)) // a restored server: its log is behind the watermark
        src.failSince = AuthenticatorException.Rejected(400.toUShort(), "cursor_invalid", "ahead of this log")
        assertTrue(log.follow().isEmpty())
        assertEquals(listOf(1), log.all.map { it.seq.toInt() })
        assertEquals("page null", src.calls.last())
    }

    @Test
    fun `other refusals while following reach the screen`() = runBlocking {
        val src = Scripted(mutableListOf(entry(1)))
        val log = SigningLog(src)
        log.load()
        src.failSince = AuthenticatorException.Rejected(403.toUShort(), "device_revoked", "revoked")
        val e = assertThrows<AuthenticatorException.Rejected> { runBlocking { log.follow() } }
        assertEquals("device_revoked", e.code)
        assertEquals(listOf(1), log.all.map { it.seq.toInt() }, "what was shown stays")
    }

    @Test
    fun `only the newest entries up to the cap are kept`() = runBlocking {
        val src = Scripted((1..7).map { entry(it) }.toMutableList())
        val log = SigningLog(src, maxEntries = 3)
        log.load()
        assertEquals(listOf(7, 6, 5), log.all.map { it.seq.toInt() })
        src.log.add(entry(8))
        log.follow()
        assertEquals(listOf(8, 7, 6), log.all.map { it.seq.toInt() })
    }

    @Test
    fun `a line shows the time in the given zone, terminal at facility, format, label and a short digest`() {
        val line = SigningLog.line(entry(1, label = "処方箋 No.0002"), ZoneId.of("Asia/Tokyo"))
        assertEquals("12:15:42  受付PC 1 @ さくらクリニック\nCMS  「処方箋 No.0002」 mnkWBSPE7wBQ…", line)
        val utc = SigningLog.line(entry(1), ZoneId.of("UTC"))
        assertEquals("03:15:42  受付PC 1 @ さくらクリニック\nCMS  mnkWBSPE7wBQ…", utc)
    }
}
