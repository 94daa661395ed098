package jp.shomei.app.flow

import java.time.Instant
import jp.shomei.mobile.AuthenticatorException
import jp.shomei.mobile.Frames
import jp.shomei.mobile.PayloadKind
import jp.shomei.mobile.ScanResult
import jp.shomei.mobile.parsePayload
import jp.shomei.mobile.scanFrame
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** The camera permission: asked once, then the settings page, never a loop. */
class CameraPermissionTest {
    @Test
    fun `the first resume without permission asks once`() {
        val p = CameraPermission()
        assertEquals(CameraPermission.Step.REQUEST, p.onResume(granted = false))
        assertTrue(p.asked)
    }

    @Test
    fun `a resume while the dialog is up waits instead of asking again`() {
        val p = CameraPermission()
        p.onResume(granted = false)
        assertEquals(CameraPermission.Step.WAIT, p.onResume(granted = false))
    }

    @Test
    fun `a denial offers the settings and later resumes do not ask again`() {
        val p = CameraPermission()
        p.onResume(granted = false)
        assertEquals(CameraPermission.Step.OFFER_SETTINGS, p.onResult(granted = false))
        repeat(3) { assertEquals(CameraPermission.Step.OFFER_SETTINGS, p.onResume(granted = false)) }
    }

    @Test
    fun `a denial remembered across recreation is not asked again`() {
        val p = CameraPermission(asked = true)
        assertEquals(CameraPermission.Step.OFFER_SETTINGS, p.onResume(granted = false))
    }

    @Test
    fun `permission granted in the settings starts the camera on return`() {
        val p = CameraPermission()
        p.onResume(granted = false)
        p.onResult(granted = false)
        assertEquals(CameraPermission.Step.START_CAMERA, p.onResume(granted = true))
    }

    @Test
    fun `a grant in the dialog starts the camera`() {
        val p = CameraPermission()
        p.onResume(granted = false)
        assertEquals(CameraPermission.Step.START_CAMERA, p.onResult(granted = true))
    }
}

/** App Links are routed once: not again on rotation, recreate() or a re-delivery from recents. */
class LinkIntentsTest {
    private val url = "https://shomei.example.jp/shomei#AAAA"

    @Test
    fun `a new VIEW intent is routed`() {
        assertEquals(url, LinkIntents.toRoute(LinkIntents.Incoming(LinkIntents.ACTION_VIEW, url, false, false)))
    }

    @Test
    fun `an intent already consumed (rotation, recreate) is not routed again`() {
        assertNull(LinkIntents.toRoute(LinkIntents.Incoming(LinkIntents.ACTION_VIEW, url, false, consumed = true)))
    }

    @Test
    fun `an intent re-delivered from the recents list is not routed`() {
        assertNull(LinkIntents.toRoute(LinkIntents.Incoming(LinkIntents.ACTION_VIEW, url, launchedFromHistory = true, consumed = false)))
    }

    @Test
    fun `the launcher intent and a VIEW without data route nothing`() {
        assertNull(LinkIntents.toRoute(LinkIntents.Incoming("android.intent.action.MAIN", null, false, false)))
        assertNull(LinkIntents.toRoute(LinkIntents.Incoming(LinkIntents.ACTION_VIEW, null, false, false)))
    }
}

/** What the scan screen does with a result, with the real Rust scanner and parser. */
class ScanVerdictTest {
    private val inAnHour = Instant.now().epochSecond + 3600

    private fun scan(text: String): ScanResult {
        val f = Frames.qr(text)
        return scanFrame(f.buffer, f.width.toUInt(), f.height.toUInt(), f.rowStride.toUInt())
    }

    @Test
    fun `a fresh login code opens the approval screen`() {
        val url = Frames.payloadUrl("https://shomei.example.jp", kind = 1, expiresAt = inAnHour)
        val verdict = ScanVerdict.of(scan(url), ::parsePayload)
        assertEquals(ScanVerdict.Open(url, PayloadKind.LOGIN), verdict)
    }

    @Test
    fun `an expired code keeps scanning and says to refresh it`() {
        val url = Frames.payloadUrl("https://shomei.example.jp", kind = 1, expiresAt = Instant.now().epochSecond - 60)
        val result = scan(url)
        assertInstanceOf(ScanResult.Shomei::class.java, result) // the scanner still recognises it
        val verdict = assertInstanceOf(ScanVerdict.KeepScanning::class.java, ScanVerdict.of(result, ::parsePayload))
        assertTrue(verdict.message!!.contains("有効期限"))
    }

    @Test
    fun `an opened link with an expired code is a message, not a screen`() {
        val url = Frames.payloadUrl("https://shomei.example.jp", kind = 2, expiresAt = Instant.now().epochSecond - 60)
        assertInstanceOf(ScanVerdict.KeepScanning::class.java, ScanVerdict.ofUrl(url, ::parsePayload))
    }

    @Test
    fun `a link to a plain-http server is refused with a message`() {
        val url = Frames.payloadUrl("http://shomei.example.jp", kind = 1, expiresAt = inAnHour)
        val verdict = assertInstanceOf(ScanVerdict.KeepScanning::class.java, ScanVerdict.ofUrl(url, ::parsePayload))
        assertNotNull(verdict.message)
    }

    @Test
    fun `someone else's QR keeps scanning with a message`() {
        val verdict = assertInstanceOf(ScanVerdict.KeepScanning::class.java, ScanVerdict.of(scan("https://example.com/menu"), ::parsePayload))
        assertNotNull(verdict.message)
    }

    @Test
    fun `an empty frame keeps scanning silently`() {
        assertEquals(ScanVerdict.KeepScanning(null), ScanVerdict.of(ScanResult.NothingFound, ::parsePayload))
    }
}

/** Typed failures → what the user reads and what the app offers. */
class FailureAdviceTest {
    @Test
    fun `a revoked, unknown or unverifiable device is offered re-enrollment`() {
        for (code in listOf("device_revoked", "device_unknown", "signature_invalid")) {
            val advice = FailureAdvice.of(AuthenticatorException.Rejected(403.toUShort(), code, "detail"))
            assertEquals(FailureAdvice.Action.OFFER_RE_ENROLLMENT, advice.action, code)
        }
    }

    @Test
    fun `other server refusals do not offer re-enrollment`() {
        val advice = FailureAdvice.of(AuthenticatorException.Rejected(403.toUShort(), "number_mismatch", "no"))
        assertEquals(FailureAdvice.Action.REFRESH_CODE, advice.action)
    }

    @Test
    fun `an invalidated key is forgotten at once`() {
        assertEquals(FailureAdvice.Action.FORGET_AND_RE_ENROLL, FailureAdvice.of(AuthenticatorException.KeyInvalidated()).action)
    }

    @Test
    fun `a key failure never shows its reason (a stack trace from uniffi)`() {
        val trace = "java.lang.IllegalStateException: keystore exploded\n\tat jp.shomei.app.key.KeystoreDeviceKey.sign(KeystoreDeviceKey.kt:120)\n\tat jp.shomei.mobile.UniffiCallbackInterface"
        val advice = FailureAdvice.of(AuthenticatorException.KeyFailed(trace))
        assertFalse(advice.message.contains("exploded"))
        assertFalse(advice.message.contains("\tat "))
        assertFalse(advice.message.contains("\n"))
    }

    @Test
    fun `a shown reason is its first line, at most 160 characters`() {
        val long = "x".repeat(500) + "\nsecond line"
        val shown = FailureAdvice.shortReason(long)
        assertEquals(160, shown.length)
        assertFalse(shown.contains("second"))
        assertEquals("only line", FailureAdvice.shortReason("\n  only line  \n"))
    }

    @Test
    fun `an expired code asks for a refresh`() {
        assertEquals(FailureAdvice.Action.REFRESH_CODE, FailureAdvice.of(AuthenticatorException.PayloadExpired()).action)
    }
}

/** One decision at a time: a second tap while the first waits is dropped. */
class SingleFlightTest {
    @Test
    fun `a second run while the first is in progress is dropped`(): Unit = runBlocking {
        val gate = SingleFlight()
        val release = CompletableDeferred<Unit>()
        var runs = 0
        val first = async { gate.runIfIdle { runs++; release.await(); "first" } }
        while (!gate.isBusy) yield()
        val second = gate.runIfIdle { runs++; "second" }
        release.complete(Unit)
        assertEquals("first", first.await())
        assertNull(second)
        assertEquals(1, runs)
        assertFalse(gate.isBusy)
    }

    @Test
    fun `after a run that threw, the next run goes ahead`(): Unit = runBlocking {
        val gate = SingleFlight()
        runCatching { gate.runIfIdle { throw IllegalStateException("boom") } }
        assertEquals(1, gate.runIfIdle { 1 })
    }
}
