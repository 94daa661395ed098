package jp.shomei.mobile

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance
import org.junit.jupiter.api.assertThrows

/**
 * Issue 13's typed-code fallback through the generated Kotlin (docs/protocol.md §4.6): the
 * practitioner types the user code the EHR shows beside its QR, `Authenticator.loginByCode`
 * returns that login's payload and context, and `approve` with the EHR's number gives the
 * terminal its token — the same decision as after a scan. A typo is the typed
 * `InvalidUserCode` before anything is sent; the server's refusals are `Rejected` with their code.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TypedCodeTest {
    private lateinit var server: ShomeiServer
    private lateinit var facilityId: String
    private lateinit var terminal: Terminal

    @BeforeAll
    fun startServer() {
        server = ShomeiServer()
        facilityId = server.admin("facility", "create", "--name", "さくらクリニック").str("id", "facility_id")
        terminal = server.registerTerminal(facilityId, "受付PC 1")
    }

    @AfterAll
    fun stopServer() {
        server.close()
    }

    private fun enrolled(facility: String = facilityId): Pair<Authenticator, JvmEcKey> = runBlocking {
        server.enrollPhone(server.registerDoctor(facility, "佐藤 花子"))
    }

    @Test
    fun `a typed code resolves to the login's payload and context and approves it`() = runBlocking {
        val (auth, key) = enrolled()
        val login = terminal.startLogin()
        val userCode = login.str("user_code")
        // Typed on a Japanese keyboard: full-width lower-case letters and the long-vowel mark.
        val typed = userCode.lowercase().map { if (it == '-') 'ー' else (it.code - 'a'.code + 'ａ'.code).toChar() }.joinToString("")
        assertEquals(userCode, normalizeUserCode(typed))

        val found = auth.loginByCode(typed)
        assertEquals(login.str("verification_uri_complete"), found.payload)
        assertEquals(login.str("login_id"), found.context.loginId)
        assertEquals("さくらクリニック", found.context.facilityName)
        assertEquals("受付PC 1", found.context.terminalName)
        val number = login.get("match_number").asInt.toUByte()
        assertTrue(found.context.numberChoices.map { it.toUByte() }.contains(number))

        val result = auth.approve(found.payload, found.context, number)
        assertEquals(Outcome.APPROVED, result.outcome)
        assertEquals(2, key.signCount.get()) // the enrollment proof and this approval
        val (status, token) = terminal.pollToken(login.str("device_code"))
        assertEquals(200, status, token.toString())
        assertEquals(result.grant!!.id, token.str("grant_id"))

        // The code is used up with its login.
        val again = assertThrows<AuthenticatorException.Rejected> { runBlocking { auth.loginByCode(userCode) } }
        assertEquals("login_already_decided", again.code)
    }

    @Test
    fun `a typo is InvalidUserCode before anything is sent`() = runBlocking {
        val (auth, key) = enrolled()
        for (typo in listOf("BCDF-GHJ0", "OCDF-GHJK", "BCDF-GHJ", "", "BCDF-GHJK-L")) {
            assertThrows<AuthenticatorException.InvalidUserCode>(typo) { runBlocking { auth.loginByCode(typo) } }
            assertThrows<AuthenticatorException.InvalidUserCode>(typo) { normalizeUserCode(typo) }
        }
        val e = assertThrows<AuthenticatorException.InvalidUserCode> { normalizeUserCode("BCDF-GHJ0") }
        assertTrue(e.reason.contains("character 9"), e.reason)
        assertEquals(1, key.signCount.get()) // only the enrollment proof
    }

    @Test
    fun `server refusals are Rejected with their stable code`() = runBlocking {
        val (auth, _) = enrolled()
        val login = terminal.startLogin()
        // A well-formed code no login holds.
        val wrong = login.str("user_code").map { if (it == '-') '-' else if (it == 'Z') 'B' else 'Z' }.joinToString("")
        val unknown = assertThrows<AuthenticatorException.Rejected> { runBlocking { auth.loginByCode(wrong) } }
        assertEquals("login_unknown", unknown.code)
        assertEquals(404.toUShort(), unknown.status)

        // A practitioner of another facility may not see this login.
        val other = server.admin("facility", "create", "--name", "別のクリニック").str("id", "facility_id")
        val (stranger, _) = enrolled(other)
        val refused = assertThrows<AuthenticatorException.Rejected> { runBlocking { stranger.loginByCode(login.str("user_code")) } }
        assertEquals("practitioner_not_allowed", refused.code)
    }

    @Test
    fun `an unenrolled authenticator is NotEnrolled`() {
        assertThrows<AuthenticatorException.NotEnrolled> { runBlocking { Authenticator(JvmEcKey()).loginByCode("BCDF-GHJK") } }
    }
}
