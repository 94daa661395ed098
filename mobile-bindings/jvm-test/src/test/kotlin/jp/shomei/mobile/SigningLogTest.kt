package jp.shomei.mobile

import java.security.MessageDigest
import java.util.Base64
import java.util.UUID
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows

/**
 * Issue 14 through the generated Kotlin: the terminal signs over HTTP (as the EHR does) with
 * the grant the phone approved, and `Authenticator.signatures` / `signaturesSince` show the
 * practitioner exactly those signatures — paged newest first, followed after a watermark,
 * still there after the grant ended — while a foreign grant surfaces as the typed
 * `AuthenticatorException.Rejected` with `grant_unknown`.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SigningLogTest {
    private lateinit var server: ShomeiServer
    private lateinit var facilityId: String
    private lateinit var terminal: Terminal

    @BeforeAll
    fun startServer() {
        server = ShomeiServer()
        facilityId = server.admin("facility", "create", "--name", "さくらクリニック").str("id", "facility_id")
        terminal = server.registerTerminal(facilityId, "診察室 2")
    }

    @AfterAll
    fun stopServer() {
        server.close()
    }

    /** A practitioner with a signing credential, and their enrolled phone. */
    private class Doctor(val auth: Authenticator, val credentialId: String)

    private fun doctor(name: String): Doctor = runBlocking {
        val practitionerId = server.registerDoctor(facilityId, name)
        val credentialId = server.admin("credential", "generate", "--practitioner", practitionerId).str("credential_id", "id")
        Doctor(server.enrollPhone(practitionerId).first, credentialId)
    }

    /** The morning: the terminal starts a login, the phone approves it; (access token, grant id). */
    private fun morningLogin(auth: Authenticator): Pair<String, String> = runBlocking {
        val login = terminal.startLogin()
        val frame = Frames.fromImage(terminal.qrPng(login.str("login_id")))
        val scanned = scanFrame(frame.buffer, frame.width.toUInt(), frame.height.toUInt(), frame.rowStride.toUInt())
        val payload = assertInstanceOf(ScanResult.Shomei::class.java, scanned).payload.url
        val ctx = auth.loginContext(payload)
        val result = auth.approve(payload, ctx, login.get("match_number").asInt.toUByte())
        assertEquals(Outcome.APPROVED, result.outcome)
        val (status, token) = terminal.pollToken(login.str("device_code"))
        assertEquals(200, status, token.toString())
        token.str("access_token") to token.str("grant_id")
    }

    private fun digest(text: String): ByteArray = MessageDigest.getInstance("SHA-256").digest(text.toByteArray())

    private fun b64(bytes: ByteArray): String = Base64.getEncoder().encodeToString(bytes)

    /** Every page of one grant's log (or the day's), newest first. */
    private suspend fun wholeLog(auth: Authenticator, grantId: String?, pageSize: UInt): List<SignatureEntry> {
        val all = mutableListOf<SignatureEntry>()
        var cursor: String? = null
        do {
            val page = auth.signatures(grantId, cursor, pageSize)
            assertTrue(page.entries.size <= pageSize.toInt())
            all += page.entries
            cursor = page.nextCursor
            assertEquals(page.more, cursor != null)
        } while (cursor != null)
        return all
    }

    @Test
    fun `the phone lists what the terminal signed in its name, newest first, and it outlives the grant`() = runBlocking {
        val doc = doctor("佐藤 花子")
        val (access, grantId) = morningLogin(doc.auth)
        val labelled = (1..3).map { digest("<Prescription no=\"$it\"/>") }
        val unlabelled = (4..5).map { digest("<Prescription no=\"$it\"/>") }
        assertEquals(200, terminal.signHash(access, doc.credentialId, labelled, label = "処方箋 No.0001 ヤマダ").first)
        assertEquals(200, terminal.signHash(access, doc.credentialId, unlabelled).first)

        val first = doc.auth.signatures(grantId, null, 2u)
        assertEquals(2, first.entries.size)
        assertTrue(first.more)
        assertNotNull(first.nextCursor)
        val log = wholeLog(doc.auth, grantId, 2u)
        assertEquals((labelled + unlabelled).map { b64(it) }, log.reversed().map { it.digestBase64 }, "exactly what was signed, newest first")
        assertEquals(listOf(null, null, "処方箋 No.0001 ヤマダ", "処方箋 No.0001 ヤマダ", "処方箋 No.0001 ヤマダ"), log.map { it.label })
        val seqs = log.map { it.seq }
        assertEquals(seqs.sortedDescending(), seqs)
        assertEquals(first.watermark, seqs.first())
        for (e in log) {
            assertEquals(grantId, e.grantId)
            assertEquals("さくらクリニック", e.facilityName)
            assertEquals(facilityId, e.facilityId)
            assertEquals("診察室 2", e.terminalName)
            assertEquals(doc.credentialId, e.credentialId)
            assertEquals("rsa-pkcs1-sha256", e.algorithm)
            assertEquals(SignatureFormat.HASH, e.format)
            assertTrue(java.time.Duration.between(e.signedAt, java.time.Instant.now()).abs().toMinutes() < 5, "${e.signedAt}")
        }
        assertEquals(log, wholeLog(doc.auth, null, 50u), "the day view holds the same signatures")

        // Following: nothing new yet, then exactly the one signed after the watermark.
        val idle = doc.auth.signaturesSince(grantId, first.watermark, 50u)
        assertEquals(emptyList<SignatureEntry>(), idle.entries)
        assertEquals(first.watermark, idle.watermark)
        assertFalse(idle.more)
        val late = digest("<Prescription no=\"6\"/>")
        assertEquals(200, terminal.signHash(access, doc.credentialId, listOf(late)).first)
        val news = doc.auth.signaturesSince(grantId, first.watermark, 50u)
        assertEquals(listOf(b64(late)), news.entries.map { it.digestBase64 })
        assertEquals(news.entries.single().seq, news.watermark)
        assertNull(news.nextCursor)

        doc.auth.endGrant(grantId)
        assertEquals(emptyList<Grant>(), doc.auth.grants())
        val after = wholeLog(doc.auth, grantId, 50u)
        assertEquals(listOf(news.entries.single()) + log, after, "an ended grant keeps its list")
    }

    @Test
    fun `another practitioner's grant is Rejected with grant_unknown and shows nothing`() = runBlocking {
        val sato = doctor("佐藤 一郎")
        val (access, grantId) = morningLogin(sato.auth)
        assertEquals(200, terminal.signHash(access, sato.credentialId, listOf(digest("<Rx/>"))).first)

        val ito = doctor("伊藤 健二")
        val e = assertThrows<AuthenticatorException.Rejected> { runBlocking { ito.auth.signatures(grantId, null, 50u) } }
        assertEquals("grant_unknown", e.code)
        assertEquals(404.toUShort(), e.status)
        val f = assertThrows<AuthenticatorException.Rejected> { runBlocking { ito.auth.signaturesSince(grantId, 0u, 50u) } }
        assertEquals("grant_unknown", f.code)
        val theirDay = ito.auth.signatures(null, null, 50u)
        assertEquals(emptyList<SignatureEntry>(), theirDay.entries)
        assertEquals(0.toULong(), theirDay.watermark)
        assertEquals(1, sato.auth.signatures(grantId, null, 50u).entries.size)
    }

    @Test
    fun `a malformed grant id or a page size out of range is InvalidInput`() = runBlocking {
        val doc = doctor("鈴木 三郎")
        assertThrows<AuthenticatorException.InvalidInput> { runBlocking { doc.auth.signatures("not-a-grant", null, 50u) } }
        assertThrows<AuthenticatorException.InvalidInput> { runBlocking { doc.auth.signatures(null, null, 0u) } }
        assertThrows<AuthenticatorException.InvalidInput> { runBlocking { doc.auth.signaturesSince(null, 0u, 201u) } }
        Unit
    }

    @Test
    fun `a cursor this server did not issue is Rejected with cursor_invalid`() = runBlocking {
        val doc = doctor("高橋 四郎")
        val e = assertThrows<AuthenticatorException.Rejected> { runBlocking { doc.auth.signatures(null, "forged", 50u) } }
        assertEquals("cursor_invalid", e.code)
        assertEquals(400.toUShort(), e.status)
    }
}

/**
 * The Android home screen's model over the real server: it loads the day under each grant,
 * then following shows exactly the new signatures, on top, under their grant.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SigningLogScreenModelTest {
    private lateinit var server: ShomeiServer
    private lateinit var terminal: Terminal

    @BeforeAll
    fun startServer() {
        server = ShomeiServer()
    }

    @AfterAll
    fun stopServer() {
        server.close()
    }

    @Test
    fun `the day loads under its grant and following adds the new signatures on top`() = runBlocking {
        val facilityId = server.admin("facility", "create", "--name", "さくらクリニック").str("id", "facility_id")
        terminal = server.registerTerminal(facilityId, "受付PC 1")
        val practitionerId = server.registerDoctor(facilityId, "山田 花子")
        val credentialId = server.admin("credential", "generate", "--practitioner", practitionerId).str("credential_id", "id")
        val (auth, _) = server.enrollPhone(practitionerId)
        val login = terminal.startLogin()
        val qr = Frames.fromImage(terminal.qrPng(login.str("login_id")))
        val loginPayload = assertInstanceOf(ScanResult.Shomei::class.java, scanFrame(qr.buffer, qr.width.toUInt(), qr.height.toUInt(), qr.rowStride.toUInt())).payload.url
        auth.approve(loginPayload, auth.loginContext(loginPayload), login.get("match_number").asInt.toUByte())
        val (status, token) = terminal.pollToken(login.str("device_code"))
        assertEquals(200, status, token.toString())
        val (access, grantId) = token.str("access_token") to token.str("grant_id")
        val sha = { s: String -> java.security.MessageDigest.getInstance("SHA-256").digest(s.toByteArray()) }
        assertEquals(200, terminal.signHash(access, credentialId, listOf(sha("a"), sha("b")), label = "朝の処方").first)

        val log = jp.shomei.app.flow.SigningLog(jp.shomei.app.flow.SigningLog.FromAuthenticator(auth))
        assertTrue(log.follow().isEmpty(), "the first follow loads")
        assertTrue(log.loaded)
        assertEquals(2, log.of(grantId).size)
        assertEquals(emptyList<SignatureEntry>(), log.of(UUID.randomUUID().toString()))
        assertTrue(log.follow().isEmpty(), "nothing new")

        assertEquals(200, terminal.signHash(access, credentialId, listOf(sha("c"), sha("d"))).first)
        val fresh = log.follow()
        assertEquals(listOf(sha("c"), sha("d")).map { Base64.getEncoder().encodeToString(it) }, fresh.map { it.digestBase64 })
        assertEquals(fresh.reversed(), log.of(grantId).take(2), "new ones on top, newest first")
        assertEquals(4, log.of(grantId).size)
        val line = jp.shomei.app.flow.SigningLog.line(log.of(grantId).last(), java.time.ZoneId.of("Asia/Tokyo"))
        assertTrue(line.contains("受付PC 1 @ さくらクリニック") && line.contains("「朝の処方」"), line)
        assertTrue(line.endsWith(Base64.getEncoder().encodeToString(sha("a")).take(12) + "…"), line)
    }
}
