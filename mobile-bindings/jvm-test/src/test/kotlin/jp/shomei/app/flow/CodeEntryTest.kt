package jp.shomei.app.flow

import jp.shomei.mobile.AuthenticatorException
import jp.shomei.mobile.normalizeUserCode
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** The Android code-entry field's decisions, with core's real normalization (docs/protocol.md §4.6). */
class CodeEntryTest {
    @Test
    fun `any accepted spelling is sent canonical`() {
        for (typed in listOf("bcdf-ghjk", "BCDF GHJK", "ｂｃｄｆーｇｈｊｋ", " b c d f g h j k ")) {
            assertEquals(CodeEntry.Send("BCDF-GHJK"), CodeEntry.of(typed, ::normalizeUserCode), typed)
        }
    }

    @Test
    fun `a typo is not sent and the message names the character`() {
        val fix = assertInstanceOf(CodeEntry.Fix::class.java, CodeEntry.of("BCDF-GHJ0", ::normalizeUserCode))
        assertTrue(fix.message.contains("'0'") || fix.message.contains("\"0\""), fix.message)
        assertTrue(fix.message.contains("character 9"), fix.message)
        assertInstanceOf(CodeEntry.Fix::class.java, CodeEntry.of("", ::normalizeUserCode))
        assertInstanceOf(CodeEntry.Fix::class.java, CodeEntry.of("BCDF-GHJ", ::normalizeUserCode))
    }

    @Test
    fun `refusals of a typed code tell the user to retype or refresh, never to re-enroll`() {
        assertEquals(FailureAdvice.Action.RETYPE_CODE, FailureAdvice.of(AuthenticatorException.InvalidUserCode("x")).action)
        val codes = mapOf(
            "user_code_invalid" to FailureAdvice.Action.RETYPE_CODE,
            "login_unknown" to FailureAdvice.Action.REFRESH_CODE,
            "login_expired" to FailureAdvice.Action.REFRESH_CODE,
            "login_already_decided" to FailureAdvice.Action.NONE,
            "practitioner_not_allowed" to FailureAdvice.Action.NONE,
            "rate_limited" to FailureAdvice.Action.NONE,
        )
        for ((code, action) in codes) {
            assertEquals(action, FailureAdvice.of(AuthenticatorException.Rejected(404.toUShort(), code, "d")).action, code)
        }
    }
}
