package jp.shomei.mobile

import java.io.File
import java.util.UUID
import javax.imageio.ImageIO
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.api.extension.ExtensionContext
import org.junit.jupiter.api.extension.TestWatcher
import org.junit.jupiter.api.extension.ExtendWith

/**
 * The generated Kotlin against a real `shomei serve`: QR codes are read from the server's PNGs
 * through scan_frame, a java.security P-256 key stands in for the Keystore key, and the
 * terminal's RFC 8628 token endpoint is the judge of what the phone achieved.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@ExtendWith(EndToEndTest.DumpServerLogOnFailure::class)
class EndToEndTest {
    private lateinit var server: ShomeiServer
    private lateinit var facilityId: String
    private lateinit var terminal: Terminal

    @BeforeAll
    fun startServer() {
        server = ShomeiServer()
        facilityId = server.admin("facility", "create", "--name", "さくらクリニック").str("id", "facility_id")
        val t = server.admin("terminal", "create", "--facility", facilityId, "--name", "受付PC 1")
        terminal = Terminal(server.url, t.str("client_id"), t.str("client_secret"))
    }

    @AfterAll
    fun stopServer() {
        server.close()
    }

    class DumpServerLogOnFailure : TestWatcher {
        override fun testFailed(context: ExtensionContext, cause: Throwable?) {
            val test = context.testInstance.orElse(null) as? EndToEndTest ?: return
            if (test::server.isInitialized) System.err.println("---- shomei serve log ----\n${test.server.logText()}")
        }
    }

    /** An operator-issued enrollment: the payload read back from its QR PNG, and the password. */
    private data class Code(val payload: String, val password: String)

    private fun enrollmentCode(name: String): Code {
        val practitionerId = server.admin(
            "practitioner", "create", "--facility", facilityId, "--name", name, "--role", "doctor",
        ).str("id", "practitioner_id")
        val png = File(server.dataDir, "enroll-${UUID.randomUUID()}.png")
        val v = server.admin("enrollment", "create", "--practitioner", practitionerId, "--png", png.path)
        val frame = Frames.fromImage(ImageIO.read(png))
        val scanned = scanFrame(frame.buffer, frame.width.toUInt(), frame.height.toUInt(), frame.rowStride.toUInt())
        val payload = assertInstanceOf(ScanResult.Shomei::class.java, scanned).payload
        assertEquals(PayloadKind.ENROLLMENT, payload.kind)
        assertEquals(v.str("payload_url", "payload", "url"), payload.url)
        return Code(payload.url, v.str("activation_password", "password"))
    }

    private fun enrolled(key: PlatformKey, name: String = "佐藤 花子"): Authenticator = runBlocking {
        val code = enrollmentCode(name)
        Authenticator(key).also { it.enroll(code.payload, code.password, "JVM test phone", Platform.ANDROID, key) }
    }

    /** A login started by the terminal, its QR read from the PNG the EHR would display. */
    private data class Login(val payload: String, val deviceCode: String, val matchNumber: UByte)

    private fun startLogin(): Login {
        val auth = terminal.startLogin()
        val frame = Frames.fromImage(terminal.qrPng(auth.str("login_id")))
        val scanned = scanFrame(frame.buffer, frame.width.toUInt(), frame.height.toUInt(), frame.rowStride.toUInt())
        val payload = assertInstanceOf(ScanResult.Shomei::class.java, scanned).payload
        assertEquals(PayloadKind.LOGIN, payload.kind)
        assertEquals(auth.str("verification_uri_complete"), payload.url)
        return Login(payload.url, auth.str("device_code"), auth.get("match_number").asInt.toUByte())
    }

    @Test
    fun `an enrollment QR read from the operator's PNG enrolls the key`() = runBlocking {
        val code = enrollmentCode("山田 太郎")
        val key = JvmEcKey()
        val auth = Authenticator(key)
        val state = auth.enroll(code.payload, code.password, "JVM test phone", Platform.ANDROID, key)
        assertEquals("山田 太郎", state.practitionerName)
        assertEquals("doctor", state.practitionerRole)
        assertEquals(server.url, state.serverOrigin)
        assertEquals(state, auth.enrollment())
    }

    @Test
    fun `an approved login gives the terminal a grant the phone can list and end`() = runBlocking {
        val key = JvmEcKey()
        val auth = enrolled(key)
        val login = startLogin()
        val ctx = auth.loginContext(login.payload)
        assertEquals("さくらクリニック", ctx.facilityName)
        assertEquals("受付PC 1", ctx.terminalName)
        assertTrue(ctx.numberChoices.map { it.toUByte() }.contains(login.matchNumber))

        val result = auth.approve(login.payload, ctx, login.matchNumber)
        assertEquals(Outcome.APPROVED, result.outcome)
        assertEquals(2, key.signCount.get()) // the enrollment proof and this approval

        val (status, token) = terminal.pollToken(login.deviceCode)
        assertEquals(200, status, token.toString())
        val grantId = token.str("grant_id")
        assertEquals(grantId, result.grant!!.id)
        assertEquals(listOf(grantId), auth.grants().map { it.id })

        auth.endGrant(grantId)
        assertEquals(emptyList<Grant>(), auth.grants())
    }

    @Test
    fun `a denied login is signed and the terminal sees access_denied`() = runBlocking {
        val auth = enrolled(JvmEcKey())
        val login = startLogin()
        val ctx = auth.loginContext(login.payload)
        val result = auth.deny(login.payload, ctx, 0u)
        assertEquals(Outcome.DENIED, result.outcome)
        assertNull(result.grant)
        val (status, body) = terminal.pollToken(login.deviceCode)
        assertEquals(400, status)
        assertEquals("access_denied", body.str("error"))
    }

    @Test
    fun `a cancelled biometric surfaces from approve as UserCancelled and the login stays pending`() = runBlocking {
        val key = SwitchableKey(JvmEcKey())
        val auth = enrolled(key)
        val login = startLogin()
        val ctx = auth.loginContext(login.payload)
        key.failure = { throw PlatformKeyException.UserCancelled() }
        assertThrows<AuthenticatorException.UserCancelled> { runBlocking { auth.approve(login.payload, ctx, login.matchNumber) } }
        val (status, body) = terminal.pollToken(login.deviceCode)
        assertEquals(400, status)
        assertEquals("authorization_pending", body.str("error"))
    }

    @Test
    fun `biometric lockout from the key surfaces as BiometricLockout`() = runBlocking {
        val key = SwitchableKey(JvmEcKey())
        val auth = enrolled(key)
        val login = startLogin()
        val ctx = auth.loginContext(login.payload)
        key.failure = { throw PlatformKeyException.BiometricLockout() }
        assertThrows<AuthenticatorException.BiometricLockout> { runBlocking { auth.approve(login.payload, ctx, login.matchNumber) } }
        Unit
    }

    @Test
    fun `an unexpected exception in the Kotlin key becomes KeyFailed, not a crash`() = runBlocking {
        val inner = JvmEcKey()
        val code = enrollmentCode("鈴木 一郎")
        val exploding = ExplodingKey(inner)
        val auth = Authenticator(exploding)
        val e = assertThrows<AuthenticatorException.KeyFailed> {
            runBlocking { auth.enroll(code.payload, code.password, "JVM test phone", Platform.ANDROID, exploding) }
        }
        assertTrue(e.reason.contains("keystore exploded"), e.reason)
        assertNull(auth.enrollment())
    }

    @Test
    fun `a wrong activation password is Rejected with activation_password_wrong`() = runBlocking {
        val code = enrollmentCode("高橋 次郎")
        val e = assertThrows<AuthenticatorException.Rejected> {
            val key = JvmEcKey()
            runBlocking { Authenticator(key).enroll(code.payload, code.password + "x", "JVM test phone", Platform.ANDROID, key) }
        }
        assertEquals("activation_password_wrong", e.code)
        assertEquals(401.toUShort(), e.status)
    }

    @Test
    fun `a number that was not offered is refused before anything is signed`() = runBlocking {
        val key = JvmEcKey()
        val auth = enrolled(key)
        val login = startLogin()
        val ctx = auth.loginContext(login.payload)
        val notOffered = (10..99).first { n -> ctx.numberChoices.none { it.toInt() == n } }.toUByte()
        val signedBefore = key.signCount.get()
        assertThrows<AuthenticatorException.InvalidInput> { runBlocking { auth.approve(login.payload, ctx, notOffered) } }
        assertEquals(signedBefore, key.signCount.get())
    }

    @Test
    fun `a login QR naming another server is WrongServer`() = runBlocking {
        val auth = enrolled(JvmEcKey())
        val foreign = Frames.payloadUrl("https://phish.example.net", kind = 1, expiresAt = java.time.Instant.now().epochSecond + 60)
        assertThrows<AuthenticatorException.WrongServer> { runBlocking { auth.loginContext(foreign) } }
        Unit
    }

    @Test
    fun `a malformed payload is InvalidPayload`() = runBlocking {
        val auth = enrolled(JvmEcKey())
        assertThrows<AuthenticatorException.InvalidPayload> { runBlocking { auth.loginContext("https://example.com/not-shomei") } }
        Unit
    }

    @Test
    fun `an enrollment code used as a login code is WrongPayloadKind`() = runBlocking {
        val auth = enrolled(JvmEcKey())
        val code = enrollmentCode("伊藤 三郎")
        assertThrows<AuthenticatorException.WrongPayloadKind> { runBlocking { auth.loginContext(code.payload) } }
        Unit
    }

    @Test
    fun `an unenrolled authenticator is NotEnrolled`() = runBlocking {
        assertThrows<AuthenticatorException.NotEnrolled> { runBlocking { Authenticator(JvmEcKey()).grants() } }
        Unit
    }

    @Test
    fun `exported state restores an authenticator that approves with the same key`() = runBlocking {
        val key = JvmEcKey()
        val state = enrolled(key).exportState()
        assertNotNull(state)
        val restored = Authenticator.restore(key, state!!)
        val login = startLogin()
        val ctx = restored.loginContext(login.payload)
        assertEquals(Outcome.APPROVED, restored.approve(login.payload, ctx, login.matchNumber).outcome)
    }

    @Test
    fun `corrupt saved state is InvalidState`() {
        assertThrows<AuthenticatorException.InvalidState> { Authenticator.restore(JvmEcKey(), "{not json") }
    }

    @Test
    fun `enroll asks the new key for its attestation over the enrollment's challenge`() = runBlocking {
        val code = enrollmentCode("中村 四郎")
        val key = JvmEcKey()
        val auth = Authenticator(key)
        auth.enroll(code.payload, code.password, "JVM test phone", Platform.ANDROID, key)
        assertEquals(1, key.attestationRequests.size)
        val request = key.attestationRequests[0]
        assertTrue(enrollmentAttestationChallenge(code.payload).contentEquals(request.challenge))
        assertEquals(32, request.challenge.size)
        assertEquals(32, request.clientDataHash.size)
        assertTrue(!request.clientDataHash.contentEquals(request.challenge))
        // The server's default policy ("allow") enrolls a phone without attestation, marked unattested.
        val device = server.adminList("device", "list").single { it.str("id") == auth.enrollment()!!.deviceId }
        assertEquals("unattested", device.getAsJsonObject("attestation").str("status"))
    }

    @Test
    fun `after enroll the authenticator signs with the newly enrolled key`() = runBlocking {
        val code = enrollmentCode("小林 五郎")
        val placeholder = JvmEcKey()
        val enrolledKey = JvmEcKey()
        val auth = Authenticator(placeholder)
        auth.enroll(code.payload, code.password, "JVM test phone", Platform.ANDROID, enrolledKey)
        val login = startLogin()
        val ctx = auth.loginContext(login.payload)
        assertEquals(Outcome.APPROVED, auth.approve(login.payload, ctx, login.matchNumber).outcome)
        assertEquals(0, placeholder.signCount.get())
        assertEquals(2, enrolledKey.signCount.get()) // the enrollment proof and this approval
    }

    @Test
    fun `an Android chain the server cannot verify is Rejected with attestation_invalid`() = runBlocking {
        val code = enrollmentCode("加藤 六郎")
        val key = JvmEcKey()
        key.attestationToReturn = PlatformAttestation.AndroidKeyChain(listOf(byteArrayOf(0x30, 0x03, 0x02, 0x01)))
        val auth = Authenticator(key)
        val e = assertThrows<AuthenticatorException.Rejected> {
            runBlocking { auth.enroll(code.payload, code.password, "JVM test phone", Platform.ANDROID, key) }
        }
        assertEquals("attestation_invalid", e.code)
        assertEquals(403.toUShort(), e.status)
        assertNull(auth.enrollment())
    }

    @Test
    fun `enrolling an enrolled authenticator is AlreadyEnrolled before the new key is touched`() = runBlocking {
        val auth = enrolled(JvmEcKey())
        val code = enrollmentCode("吉田 七郎")
        val second = JvmEcKey()
        assertThrows<AuthenticatorException.AlreadyEnrolled> {
            runBlocking { auth.enroll(code.payload, code.password, "JVM test phone", Platform.ANDROID, second) }
        }
        assertEquals(0, second.signCount.get())
        assertEquals(0, second.attestationRequests.size)
    }
}
