package jp.shomei.mobile

import com.google.zxing.BarcodeFormat
import com.google.zxing.EncodeHintType
import com.google.zxing.qrcode.QRCodeWriter
import java.awt.image.BufferedImage
import java.nio.ByteBuffer
import java.security.SecureRandom
import java.util.Base64

/** A camera-like luma plane: `rowStride` >= `width`, padding bytes filled with noise. */
class LumaFrame(val buffer: ByteBuffer, val width: Int, val height: Int, val rowStride: Int)

object Frames {
    private val random = SecureRandom()

    /** Draws `text` as a QR code (module = `scale` pixels, quiet zone included). */
    fun qr(text: String, scale: Int = 6, padding: Int = 24): LumaFrame {
        val matrix = QRCodeWriter().encode(text, BarcodeFormat.QR_CODE, 0, 0, mapOf(EncodeHintType.MARGIN to 4))
        val width = matrix.width * scale
        val height = matrix.height * scale
        return plane(width, height, padding) { x, y -> if (matrix.get(x / scale, y / scale)) 0 else 255 }
    }

    /** Converts a decoded image (e.g. the server's QR PNG) to a luma plane. */
    fun fromImage(img: BufferedImage, padding: Int = 16): LumaFrame =
        plane(img.width, img.height, padding) { x, y ->
            val rgb = img.getRGB(x, y)
            val r = (rgb shr 16) and 0xff
            val g = (rgb shr 8) and 0xff
            val b = rgb and 0xff
            (299 * r + 587 * g + 114 * b) / 1000 // BT.601 luma, as a camera's Y plane
        }

    fun blank(width: Int, height: Int): LumaFrame = plane(width, height, 0) { _, _ -> 200 }

    private fun plane(width: Int, height: Int, padding: Int, luma: (Int, Int) -> Int): LumaFrame {
        val stride = width + padding
        // Direct, like camera2's Image.Plane.getBuffer(): uniffi passes its address to Rust.
        val buf = ByteBuffer.allocateDirect(stride * height)
        val noise = ByteArray(padding)
        for (y in 0 until height) {
            for (x in 0 until width) buf.put(y * stride + x, luma(x, y).toByte())
            random.nextBytes(noise)
            for (i in 0 until padding) buf.put(y * stride + width + i, noise[i])
        }
        return LumaFrame(buf, width, height, stride)
    }

    /** Version-1 body: tag, 16-byte id, 16-byte secret, big-endian u32 expiry (docs/protocol.md). */
    const val BODY_LEN = 37

    /** A well-formed login (kind 1) / enrollment (kind 2) payload URL. */
    fun payloadUrl(origin: String, kind: Int, expiresAt: Long, bodyLength: Int = BODY_LEN): String {
        val body = ByteArray(maxOf(bodyLength, BODY_LEN))
        body[0] = ((1 shl 4) or kind).toByte()
        val idAndSecret = ByteArray(32).also { random.nextBytes(it) }
        idAndSecret.copyInto(body, 1)
        for (i in 0 until 4) body[33 + i] = (expiresAt ushr (24 - 8 * i)).toByte()
        return "$origin/shomei#" + Base64.getUrlEncoder().withoutPadding().encodeToString(body.copyOf(bodyLength))
    }
}
