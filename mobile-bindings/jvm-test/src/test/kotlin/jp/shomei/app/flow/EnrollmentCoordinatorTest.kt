package jp.shomei.app.flow

import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.Executors
import java.util.concurrent.atomic.AtomicInteger
import jp.shomei.mobile.AuthenticatorException
import jp.shomei.mobile.EnrollmentState
import jp.shomei.mobile.JvmEcKey
import jp.shomei.mobile.PlatformKey
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/**
 * The enrollment order that keeps a working phone working, against an in-memory keyring of
 * real java.security P-256 keys and a scripted server side. (The same coordinator against the
 * real Authenticator and `shomei serve` is in EnrollmentAgainstServerTest.)
 */
class EnrollmentCoordinatorTest {
    /** Real P-256 keys by alias; records what happened on which thread. */
    class MemoryKeyring : DeviceKeyring<PlatformKey> {
        val keys = ConcurrentHashMap<String, JvmEcKey>()
        val generated = mutableListOf<String>()
        val challenges = mutableListOf<ByteArray>()
        val deleted = mutableListOf<String>()
        var generateThread: String? = null
        var failGeneration: Exception? = null

        override fun generate(alias: String, attestationChallenge: ByteArray): PlatformKey {
            generateThread = Thread.currentThread().name
            failGeneration?.let { throw it }
            generated += alias
            challenges += attestationChallenge
            return JvmEcKey().also { keys[alias] = it }
        }

        override fun delete(alias: String) {
            deleted += alias
            keys.remove(alias)
        }

        override fun aliases(): Set<String> = keys.keys.toSet()
    }

    /** The server side: enrolled or not, accepts or refuses, can be held open. */
    class ScriptedAuthority : EnrollmentAuthority<PlatformKey> {
        var enrolled = false
        var refusal: AuthenticatorException? = null
        var hold: CompletableDeferred<Unit>? = null
        val enrolledKeys = mutableListOf<PlatformKey>()
        val calls = AtomicInteger()

        override fun isEnrolled(): Boolean = enrolled

        override fun attestationChallenge(payload: String): ByteArray = ByteArray(32) { payload.length.toByte() }

        override suspend fun enroll(payload: String, activationPassword: String, deviceName: String, key: PlatformKey): EnrollmentState {
            calls.incrementAndGet()
            hold?.await()
            refusal?.let { throw it }
            enrolledKeys += key
            enrolled = true
            return EnrollmentState(
                serverOrigin = "https://shomei.example.jp",
                deviceId = "dev-1",
                practitionerId = "pr-1",
                practitionerName = "佐藤 花子",
                practitionerRole = "doctor",
            )
        }
    }

    class MemoryRecord(var alias: String? = null) : ActiveKeyRecord {
        var failCommit: Exception? = null
        val commits = mutableListOf<String>()
        override fun activeAlias(): String? = alias
        override fun commit(alias: String) {
            failCommit?.let { throw it }
            commits += alias
            this.alias = alias
        }
    }

    private val keyThread = Executors.newSingleThreadExecutor { Thread(it, "key-work") }
    private val keyWork = keyThread.asCoroutineDispatcher()
    private val keyring = MemoryKeyring()
    private val server = ScriptedAuthority()
    private var aliasCounter = 0
    private fun coordinator(record: MemoryRecord) =
        EnrollmentCoordinator(keyring, server, record, keyWork) { "${EnrollmentCoordinator.KEY_ALIAS_PREFIX}${++aliasCounter}" }

    @AfterEach
    fun stop() {
        keyThread.shutdownNow()
    }

    @Test
    fun `an enrolled phone refuses before any key is generated, deleted or sent`(): Unit = runBlocking {
        val live = EnrollmentCoordinator.KEY_ALIAS_PREFIX + "live"
        keyring.keys[live] = JvmEcKey()
        server.enrolled = true
        val record = MemoryRecord(live)

        val outcome = coordinator(record).enroll("https://x/shomei#abc", "pw", "phone")

        assertEquals(EnrollmentOutcome.AlreadyEnrolled, outcome)
        assertTrue(keyring.generated.isEmpty())
        assertTrue(keyring.deleted.isEmpty())
        assertEquals(0, server.calls.get())
        assertEquals(live, record.alias)
        assertTrue(keyring.keys.containsKey(live))
    }

    @Test
    fun `the new key gets a fresh alias, core's challenge, and becomes live only after the server accepted`(): Unit = runBlocking {
        val leftover = EnrollmentCoordinator.KEY_ALIAS_PREFIX + "old"
        keyring.keys[leftover] = JvmEcKey()
        val record = MemoryRecord(leftover)

        val outcome = coordinator(record).enroll("https://x/shomei#abcd", "pw", "phone")

        val enrolled = assertInstanceOf(EnrollmentOutcome.Enrolled::class.java, outcome)
        assertNotEquals(leftover, enrolled.alias)
        assertEquals(listOf(enrolled.alias), keyring.generated)
        assertArrayEquals(server.attestationChallenge("https://x/shomei#abcd"), keyring.challenges.single())
        // the server got exactly the key generated under the new alias
        assertTrue(server.enrolledKeys.single() === keyring.keys[enrolled.alias])
        assertEquals(listOf(enrolled.alias), record.commits)
        // the previous alias is deleted, and only after the commit
        assertEquals(listOf(leftover), keyring.deleted)
        assertFalse(keyring.keys.containsKey(leftover))
    }

    @Test
    fun `a refused enrollment deletes the new key and leaves the live alias and its key alone`(): Unit = runBlocking {
        val live = EnrollmentCoordinator.KEY_ALIAS_PREFIX + "live"
        val liveKey = JvmEcKey()
        keyring.keys[live] = liveKey
        val record = MemoryRecord(live)
        server.refusal = AuthenticatorException.Rejected(401.toUShort(), "activation_password_wrong", "wrong password")

        val outcome = coordinator(record).enroll("https://x/shomei#abc", "wrong", "phone")

        val refused = assertInstanceOf(EnrollmentOutcome.Refused::class.java, outcome)
        assertEquals("activation_password_wrong", (refused.error as AuthenticatorException.Rejected).code)
        val candidate = keyring.generated.single()
        assertEquals(listOf(candidate), keyring.deleted)
        assertEquals(setOf(live), keyring.keys.keys)
        assertTrue(keyring.keys[live] === liveKey)
        assertTrue(record.commits.isEmpty())
        assertEquals(live, record.alias)
    }

    @Test
    fun `core's own AlreadyEnrolled refusal is reported as such and the candidate key is deleted`(): Unit = runBlocking {
        server.refusal = AuthenticatorException.AlreadyEnrolled()
        val record = MemoryRecord()

        val outcome = coordinator(record).enroll("https://x/shomei#abc", "pw", "phone")

        assertEquals(EnrollmentOutcome.AlreadyEnrolled, outcome)
        assertEquals(keyring.generated, keyring.deleted)
        assertTrue(keyring.keys.isEmpty())
    }

    @Test
    fun `a key that cannot be generated sends nothing to the server`(): Unit = runBlocking {
        keyring.failGeneration = java.security.ProviderException("Keystore operation failed")
        val record = MemoryRecord()

        val outcome = coordinator(record).enroll("https://x/shomei#abc", "pw", "phone")

        val failed = assertInstanceOf(EnrollmentOutcome.KeyCreationFailed::class.java, outcome)
        assertInstanceOf(java.security.ProviderException::class.java, failed.cause)
        assertEquals(0, server.calls.get())
        assertTrue(record.commits.isEmpty())
    }

    @Test
    fun `the key is generated on the key dispatcher, not on the caller's thread`(): Unit = runBlocking {
        val caller = Thread.currentThread().name
        coordinator(MemoryRecord()).enroll("https://x/shomei#abc", "pw", "phone")
        // (coroutine debug mode appends " @coroutine#N" to thread names)
        assertTrue(keyring.generateThread!!.startsWith("key-work"), keyring.generateThread)
        assertFalse(caller.startsWith("key-work"))
    }

    @Test
    fun `a second tap while an enrollment runs is Busy and creates no second key`(): Unit = runBlocking {
        val hold = CompletableDeferred<Unit>()
        server.hold = hold
        val c = coordinator(MemoryRecord())

        val first = async { c.enroll("https://x/shomei#abc", "pw", "phone") }
        while (server.calls.get() == 0) kotlinx.coroutines.yield()
        assertTrue(c.isBusy)
        val second = c.enroll("https://x/shomei#abc", "pw", "phone")
        hold.complete(Unit)

        assertEquals(EnrollmentOutcome.Busy, second)
        assertInstanceOf(EnrollmentOutcome.Enrolled::class.java, first.await())
        assertEquals(1, keyring.generated.size)
        assertEquals(1, server.calls.get())
        assertFalse(c.isBusy)
    }

    @Test
    fun `when the state cannot be stored the accepted key is kept and the previous one too`(): Unit = runBlocking {
        val previous = EnrollmentCoordinator.KEY_ALIAS_PREFIX + "previous"
        keyring.keys[previous] = JvmEcKey()
        val record = MemoryRecord(previous).apply { failCommit = java.io.IOException("disk full") }

        val outcome = coordinator(record).enroll("https://x/shomei#abc", "pw", "phone")

        val notSaved = assertInstanceOf(EnrollmentOutcome.NotSaved::class.java, outcome)
        assertTrue(keyring.keys.containsKey(notSaved.alias))
        assertTrue(keyring.keys.containsKey(previous))
        assertTrue(keyring.deleted.isEmpty())
    }

    @Test
    fun `sweeping at start-up deletes only keys of this app that no record points at`() {
        val live = EnrollmentCoordinator.KEY_ALIAS_PREFIX + "live"
        val orphan = EnrollmentCoordinator.KEY_ALIAS_PREFIX + "orphan"
        val foreign = "jp.shomei.state-key"
        listOf(live, orphan, foreign).forEach { keyring.keys[it] = JvmEcKey() }

        val swept = coordinator(MemoryRecord(live)).sweepOrphans()

        assertEquals(listOf(orphan), swept)
        assertEquals(setOf(live, foreign), keyring.keys.keys)
    }

    @Test
    fun `with no enrollment stored every key of this app is an orphan`() {
        val stale = EnrollmentCoordinator.KEY_ALIAS_PREFIX + "stale"
        keyring.keys[stale] = JvmEcKey()
        assertEquals(listOf(stale), coordinator(MemoryRecord()).sweepOrphans())
        assertNull(keyring.keys[stale])
    }
}
