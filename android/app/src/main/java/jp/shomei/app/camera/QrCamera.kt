package jp.shomei.app.camera

import android.annotation.SuppressLint
import android.content.Context
import android.graphics.ImageFormat
import android.hardware.camera2.CameraAccessException
import android.hardware.camera2.CameraCaptureSession
import android.hardware.camera2.CameraCharacteristics
import android.hardware.camera2.CameraDevice
import android.hardware.camera2.CameraManager
import android.hardware.camera2.CaptureRequest
import android.hardware.camera2.params.OutputConfiguration
import android.hardware.camera2.params.SessionConfiguration
import android.media.ImageReader
import android.os.Handler
import android.os.HandlerThread
import android.util.Log
import android.util.Size
import android.view.Surface
import java.util.concurrent.Executor
import jp.shomei.mobile.ScanException
import jp.shomei.mobile.ScanResult
import jp.shomei.mobile.scanFrame

/**
 * Back camera → YUV_420_888 frames → the Rust scanner, with camera2 only (CameraX is androidx).
 *
 * Only the Y (luma) plane is handed over: QR decoding needs brightness, not colour, and the
 * plane's direct ByteBuffer crosses into Rust without a copy (uniffi passes `&[u8]` as a
 * pointer into it). Frames arrive on a background thread; the newest frame wins, older ones
 * are dropped while a scan runs.
 *
 * @param onResult called on the camera thread with the first Shomei payload or foreign-only hit.
 */
class QrCamera(
    private val context: Context,
    private val preview: Surface,
    private val onResult: (ScanResult) -> Unit,
) {
    private val manager = context.getSystemService(CameraManager::class.java)
    private val thread = HandlerThread("shomei-camera").apply { start() }
    private val handler = Handler(thread.looper)
    private val executor = Executor { handler.post(it) }
    private var device: CameraDevice? = null
    private var session: CameraCaptureSession? = null
    private var reader: ImageReader? = null
    @Volatile private var delivered = false

    /** Size of the analysis stream: enough pixels for a QR across a room, cheap to scan. */
    private fun chooseSize(chars: CameraCharacteristics): Size {
        val map = chars.get(CameraCharacteristics.SCALER_STREAM_CONFIGURATION_MAP)
            ?: return Size(1280, 720)
        val sizes = map.getOutputSizes(ImageFormat.YUV_420_888) ?: return Size(1280, 720)
        return sizes.filter { it.width <= 1920 && it.height <= 1080 }
            .maxByOrNull { it.width * it.height } ?: sizes.minBy { it.width * it.height }
    }

    private fun backCameraId(): String? = manager.cameraIdList.firstOrNull {
        manager.getCameraCharacteristics(it).get(CameraCharacteristics.LENS_FACING) ==
            CameraCharacteristics.LENS_FACING_BACK
    } ?: manager.cameraIdList.firstOrNull()

    /** Requires the CAMERA permission (checked by the calling activity). */
    @SuppressLint("MissingPermission")
    fun start() {
        val id = backCameraId() ?: throw CameraAccessException(CameraAccessException.CAMERA_ERROR, "no camera")
        val size = chooseSize(manager.getCameraCharacteristics(id))
        val imageReader = ImageReader.newInstance(size.width, size.height, ImageFormat.YUV_420_888, 2)
        imageReader.setOnImageAvailableListener({ r -> analyse(r) }, handler)
        reader = imageReader
        manager.openCamera(id, executor, object : CameraDevice.StateCallback() {
            override fun onOpened(camera: CameraDevice) {
                device = camera
                startSession(camera, imageReader)
            }

            override fun onDisconnected(camera: CameraDevice) {
                camera.close()
                device = null
            }

            override fun onError(camera: CameraDevice, error: Int) {
                Log.w(TAG, "camera error $error")
                camera.close()
                device = null
            }
        })
    }

    private fun startSession(camera: CameraDevice, imageReader: ImageReader) {
        val outputs = listOf(OutputConfiguration(preview), OutputConfiguration(imageReader.surface))
        val config = SessionConfiguration(
            SessionConfiguration.SESSION_REGULAR,
            outputs,
            executor,
            object : CameraCaptureSession.StateCallback() {
                override fun onConfigured(s: CameraCaptureSession) {
                    session = s
                    val request = camera.createCaptureRequest(CameraDevice.TEMPLATE_PREVIEW).apply {
                        addTarget(preview)
                        addTarget(imageReader.surface)
                        set(CaptureRequest.CONTROL_AF_MODE, CaptureRequest.CONTROL_AF_MODE_CONTINUOUS_PICTURE)
                    }.build()
                    s.setRepeatingRequest(request, null, handler)
                }

                override fun onConfigureFailed(s: CameraCaptureSession) {
                    Log.w(TAG, "camera session configuration failed")
                }
            },
        )
        camera.createCaptureSession(config)
    }

    private fun analyse(r: ImageReader) {
        val image = r.acquireLatestImage() ?: return
        try {
            if (delivered) return
            val y = image.planes[0]
            // YUV_420_888 guarantees pixelStride == 1 for Y; rowStride may exceed width.
            val result = scanFrame(y.buffer, image.width.toUInt(), image.height.toUInt(), y.rowStride.toUInt())
            if (result !is ScanResult.NothingFound) {
                delivered = true
                onResult(result)
            }
        } catch (e: ScanException) {
            Log.w(TAG, "frame rejected: ${e.message}")
        } finally {
            image.close()
        }
    }

    /** Allows the next hit to be delivered again (e.g. after a foreign QR was ignored). */
    fun resume() {
        delivered = false
    }

    fun stop() {
        try {
            session?.close()
        } catch (e: IllegalStateException) {
            // already closed with the device
        }
        session = null
        device?.close()
        device = null
        reader?.close()
        reader = null
        thread.quitSafely()
    }

    private companion object {
        const val TAG = "ShomeiCamera"
    }
}
