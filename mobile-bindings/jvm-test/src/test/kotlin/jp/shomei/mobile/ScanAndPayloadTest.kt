package jp.shomei.mobile

import java.nio.ByteBuffer
import java.time.Instant
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertInstanceOf
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** scan_frame and parse_payload through the generated Kotlin, no server needed. */
class ScanAndPayloadTest {
    private val inAnHour = Instant.now().epochSecond + 3600

    @Test
    fun `a login QR in a padded camera plane is read as a Shomei payload`() {
        val url = Frames.payloadUrl("https://shomei.example.jp", kind = 1, expiresAt = inAnHour)
        val f = Frames.qr(url)
        val result = scanFrame(f.buffer, f.width.toUInt(), f.height.toUInt(), f.rowStride.toUInt())
        val shomei = assertInstanceOf(ScanResult.Shomei::class.java, result)
        assertEquals(PayloadKind.LOGIN, shomei.payload.kind)
        assertEquals("https://shomei.example.jp", shomei.payload.origin)
        assertEquals(url, shomei.payload.url)
        assertEquals(Instant.ofEpochSecond(inAnHour), shomei.payload.expiresAt)
    }

    @Test
    fun `an enrollment QR is read with its kind`() {
        val url = Frames.payloadUrl("https://shomei.example.jp", kind = 2, expiresAt = inAnHour)
        val f = Frames.qr(url)
        val result = scanFrame(f.buffer, f.width.toUInt(), f.height.toUInt(), f.rowStride.toUInt())
        assertEquals(PayloadKind.ENROLLMENT, assertInstanceOf(ScanResult.Shomei::class.java, result).payload.kind)
    }

    @Test
    fun `a foreign QR is reported with its text, not as Shomei`() {
        val f = Frames.qr("https://example.com/menu")
        val result = scanFrame(f.buffer, f.width.toUInt(), f.height.toUInt(), f.rowStride.toUInt())
        assertEquals(listOf("https://example.com/menu"), assertInstanceOf(ScanResult.ForeignOnly::class.java, result).texts)
    }

    @Test
    fun `a frame without a code finds nothing`() {
        val f = Frames.blank(320, 240)
        assertEquals(ScanResult.NothingFound, scanFrame(f.buffer, 320u, 240u, 320u))
    }

    @Test
    fun `a buffer smaller than its stated dimensions is a typed BadFrame error`() {
        val small = ByteBuffer.allocateDirect(100)
        assertThrows<ScanException.BadFrame> { scanFrame(small, 320u, 240u, 320u) }
    }

    @Test
    fun `a row stride narrower than the width is a typed BadFrame error`() {
        val buf = ByteBuffer.allocateDirect(320 * 240)
        assertThrows<ScanException.BadFrame> { scanFrame(buf, 320u, 240u, 100u) }
    }

    @Test
    fun `a heap buffer is refused on the Kotlin side before reaching Rust`() {
        // Zero-copy needs a native address; uniffi rejects heap buffers instead of copying.
        assertThrows<IllegalArgumentException> { scanFrame(ByteBuffer.allocate(64), 8u, 8u, 8u) }
    }

    @Test
    fun `parse_payload accepts a fresh login code`() {
        val url = Frames.payloadUrl("https://shomei.example.jp", kind = 1, expiresAt = inAnHour)
        val info = parsePayload(url)
        assertEquals(PayloadKind.LOGIN, info.kind)
        assertEquals(url, info.url)
    }

    @Test
    fun `an expired code is a typed Expired error carrying the expiry`() {
        val past = Instant.now().epochSecond - 10
        val e = assertThrows<PayloadException.Expired> {
            parsePayload(Frames.payloadUrl("https://shomei.example.jp", kind = 1, expiresAt = past))
        }
        assertEquals(Instant.ofEpochSecond(past), e.expiresAt)
    }

    @Test
    fun `a web link is NotShomei`() {
        assertThrows<PayloadException.NotShomei> { parsePayload("https://example.com/") }
    }

    @Test
    fun `a plain-http origin that is not loopback is InsecureOrigin`() {
        val url = Frames.payloadUrl("http://shomei.example.jp", kind = 1, expiresAt = inAnHour)
        assertThrows<PayloadException.InsecureOrigin> { parsePayload(url) }
    }

    @Test
    fun `a body that is not base64url is BadEncoding`() {
        assertThrows<PayloadException.BadEncoding> { parsePayload("https://shomei.example.jp/shomei#!!!not-base64!!!") }
    }

    @Test
    fun `a truncated body is WrongLength`() {
        val url = Frames.payloadUrl("https://shomei.example.jp", kind = 1, expiresAt = inAnHour, bodyLength = 31)
        val e = assertThrows<PayloadException.WrongLength> { parsePayload(url) }
        assertEquals(Frames.BODY_LEN.toULong(), e.expected)
        assertEquals(31uL, e.actual)
    }

    @Test
    fun `an unknown kind nibble is UnknownKind`() {
        val url = Frames.payloadUrl("https://shomei.example.jp", kind = 7, expiresAt = inAnHour)
        assertEquals(7.toUByte(), assertThrows<PayloadException.UnknownKind> { parsePayload(url) }.kind)
    }
}
