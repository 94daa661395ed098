package jp.shomei.app.flow

import java.io.File
import java.util.UUID
import java.util.concurrent.ConcurrentHashMap
import javax.imageio.ImageIO
import jp.shomei.mobile.AttestationRequest
import jp.shomei.mobile.Authenticator
import jp.shomei.mobile.AuthenticatorException
import jp.shomei.mobile.EnrollmentState
import jp.shomei.mobile.Frames
import jp.shomei.mobile.JvmEcKey
import jp.shomei.mobile.Outcome
import jp.shomei.mobile.Platform
import jp.shomei.mobile.PlatformAttestation
import jp.shomei.mobile.PlatformKey
import jp.shomei.mobile.PlatformKeyException
import jp.shomei.mobile.ScanResult
import jp.shomei.mobile.ShomeiServer
import jp.shomei.mobile.Terminal
import jp.shomei.mobile.enrollmentAttestationChallenge
import jp.shomei.mobile.scanFrame
import jp.shomei.mobile.str
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance

/**
 * The enrollment coordinator with the real generated Authenticator against a real
 * `shomei serve` (default policy): the issue-15 scenario end to end — an enrolled phone that
 * scans a second enrollment code keeps approving with its key.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EnrollmentAgainstServerTest {
    private lateinit var server: ShomeiServer
    private lateinit var facilityId: String
    private lateinit var terminal: Terminal

    @BeforeAll
    fun start() {
        server = ShomeiServer()
        facilityId = server.admin("facility", "create", "--name", "みどり医院").str("id", "facility_id")
        val t = server.admin("terminal", "create", "--facility", facilityId, "--name", "診察室PC")
        terminal = Terminal(server.url, t.str("client_id"), t.str("client_secret"))
    }

    @AfterAll
    fun stop() = server.close()

    /** A software stand-in for the Keystore: real P-256 keys by alias, no attestation. */
    class SoftwareKeyring : DeviceKeyring<PlatformKey> {
        val keys = ConcurrentHashMap<String, JvmEcKey>()
        val challenges = ConcurrentHashMap<String, ByteArray>()
        override fun generate(alias: String, attestationChallenge: ByteArray): PlatformKey {
            challenges[alias] = attestationChallenge
            return JvmEcKey().also { keys[alias] = it }
        }
        override fun delete(alias: String) { keys.remove(alias) }
        override fun aliases(): Set<String> = keys.keys.toSet()
    }

    /** The app's wiring, without Android: one Authenticator, the stored alias in memory. */
    inner class Phone {
        val keyring = SoftwareKeyring()
        var authenticator = Authenticator(Unenrolled)
        var stored: Pair<String, String>? = null
        val coordinator = EnrollmentCoordinator(
            keyring,
            object : EnrollmentAuthority<PlatformKey> {
                override fun isEnrolled() = authenticator.enrollment() != null
                override fun attestationChallenge(payload: String) = enrollmentAttestationChallenge(payload)
                override suspend fun enroll(payload: String, activationPassword: String, deviceName: String, key: PlatformKey): EnrollmentState =
                    authenticator.enroll(payload, activationPassword, deviceName, Platform.ANDROID, key)
            },
            object : ActiveKeyRecord {
                override fun activeAlias() = stored?.first
                override fun commit(alias: String) { stored = alias to authenticator.exportState()!! }
            },
            Dispatchers.IO,
        )
    }

    object Unenrolled : PlatformKey {
        override fun publicKey(): ByteArray = throw PlatformKeyException.NotAvailable("not enrolled")
        override fun sign(message: ByteArray): ByteArray = throw PlatformKeyException.NotAvailable("not enrolled")
        override fun attestation(request: AttestationRequest): PlatformAttestation = PlatformAttestation.None
    }

    private fun enrollmentCode(name: String): Pair<String, String> {
        val practitionerId = server.admin("practitioner", "create", "--facility", facilityId, "--name", name, "--role", "doctor")
            .str("id", "practitioner_id")
        val png = File(server.dataDir, "enroll-${UUID.randomUUID()}.png")
        val v = server.admin("enrollment", "create", "--practitioner", practitionerId, "--png", png.path)
        val f = Frames.fromImage(ImageIO.read(png))
        val scanned = scanFrame(f.buffer, f.width.toUInt(), f.height.toUInt(), f.rowStride.toUInt())
        return assertInstanceOf(ScanResult.Shomei::class.java, scanned).payload.url to v.str("activation_password", "password")
    }

    private fun approveOneLogin(phone: Phone): Outcome = runBlocking {
        val auth = terminal.startLogin()
        val f = Frames.fromImage(terminal.qrPng(auth.str("login_id")))
        val payload = assertInstanceOf(ScanResult.Shomei::class.java, scanFrame(f.buffer, f.width.toUInt(), f.height.toUInt(), f.rowStride.toUInt())).payload.url
        val ctx = phone.authenticator.loginContext(payload)
        phone.authenticator.approve(payload, ctx, auth.get("match_number").asInt.toUByte()).outcome
    }

    @Test
    fun `an enrolled phone that scans another enrollment code keeps approving with its key`(): Unit = runBlocking {
        val phone = Phone()
        val (first, password) = enrollmentCode("中村 一")
        val enrolled = assertInstanceOf(EnrollmentOutcome.Enrolled::class.java, phone.coordinator.enroll(first, password, "phone"))
        assertArrayEquals(enrollmentAttestationChallenge(first), phone.keyring.challenges[enrolled.alias])
        val liveKey = phone.keyring.keys[enrolled.alias]!!

        val (second, password2) = enrollmentCode("中村 二")
        assertEquals(EnrollmentOutcome.AlreadyEnrolled, phone.coordinator.enroll(second, password2, "phone"))

        assertEquals(setOf(enrolled.alias), phone.keyring.aliases())
        assertEquals(enrolled.alias, phone.stored!!.first)
        val signsBefore = liveKey.signCount.get()
        assertEquals(Outcome.APPROVED, approveOneLogin(phone))
        assertEquals(signsBefore + 1, liveKey.signCount.get())
    }

    @Test
    fun `a wrong activation password leaves no key and no enrollment`(): Unit = runBlocking {
        val phone = Phone()
        val (code, password) = enrollmentCode("中村 三")
        val refused = assertInstanceOf(EnrollmentOutcome.Refused::class.java, phone.coordinator.enroll(code, password + "x", "phone"))
        assertEquals("activation_password_wrong", (refused.error as AuthenticatorException.Rejected).code)
        assertTrue(phone.keyring.aliases().isEmpty())
        assertEquals(null, phone.stored)
        assertEquals(null, phone.authenticator.enrollment())
        // the code is still usable with the right password (nothing was stored server-side)
        assertInstanceOf(EnrollmentOutcome.Enrolled::class.java, phone.coordinator.enroll(code, password, "phone"))
    }
}
