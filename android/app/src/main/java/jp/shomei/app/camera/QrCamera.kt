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
 * pointer into it). That pointer is why the threads are arranged as they are:
 *
 * - the *camera thread* runs every camera2 callback and owns the device and the session;
 * - the *scan thread* owns the `ImageReader`: it acquires a frame, scans it and closes it, and
 *   it is also the only thread that closes the reader. A frame's memory therefore cannot be
 *   freed while Rust reads it, and a slow scan never holds up the preview callbacks;
 * - [stop] (any thread) only sets [closed] and posts the teardown: session and device on the
 *   camera thread, then the reader on the scan thread, then both threads quit.
 *
 * Callbacks that arrive after [stop] (a late `onOpened`, `onConfigured`) see [closed] and close
 * what they were handed instead of using it; camera exceptions (`CameraAccessException`,
 * `IllegalStateException` from a closed device/session, `SecurityException`) are caught and
 * reported through [onFailure], never thrown into the framework.
 *
 * @param onResult called on the scan thread with the first non-empty result (a Shomei code or
 *   foreign-only codes); after that no result is delivered until [resume].
 * @param onFailure called on the camera thread when the camera cannot be used.
 */
class QrCamera(
    context: Context,
    private val preview: Surface,
    private val onResult: (ScanResult) -> Unit,
    private val onFailure: (String) -> Unit,
) {
    private val manager = context.getSystemService(CameraManager::class.java)
    private val cameraThread = HandlerThread("shomei-camera").apply { start() }
    private val cameraHandler = Handler(cameraThread.looper)
    // After stop() the camera thread quits; a callback still in flight (a late onOpened) is
    // then run where it arrives instead of being dropped, so it can close what it was handed
    // (a dropped onOpened would leak the open camera).
    private val cameraExecutor = Executor { r -> if (!cameraHandler.post(r)) r.run() }
    private val scanThread = HandlerThread("shomei-scan").apply { start() }
    private val scanHandler = Handler(scanThread.looper)

    // Camera thread only.
    private var device: CameraDevice? = null
    private var session: CameraCaptureSession? = null

    // Created on the camera thread before the device opens; closed on the scan thread only.
    @Volatile private var reader: ImageReader? = null

    @Volatile private var closed = false
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

    /** Opens the camera (asynchronously). Requires the CAMERA permission (the activity checks). */
    fun start() {
        cameraHandler.post { open() }
    }

    @SuppressLint("MissingPermission")
    private fun open() {
        if (closed) return
        try {
            val id = backCameraId() ?: return onFailure("no camera")
            val size = chooseSize(manager.getCameraCharacteristics(id))
            // Three buffers: one being scanned, one the camera fills, one spare, so the
            // repeating request never waits for the scanner (acquireLatestImage drops the rest).
            val imageReader = ImageReader.newInstance(size.width, size.height, ImageFormat.YUV_420_888, MAX_IMAGES)
            imageReader.setOnImageAvailableListener({ r -> analyse(r) }, scanHandler)
            reader = imageReader
            manager.openCamera(id, cameraExecutor, DeviceCallback(imageReader))
        } catch (e: CameraAccessException) {
            onFailure("camera unavailable (${e.reason})")
        } catch (e: SecurityException) {
            onFailure("camera permission missing")
        } catch (e: IllegalArgumentException) {
            onFailure("camera unusable")
        }
    }

    private inner class DeviceCallback(private val imageReader: ImageReader) : CameraDevice.StateCallback() {
        override fun onOpened(camera: CameraDevice) {
            if (closed) {
                // stop() ran while the camera was opening: do not keep it.
                camera.close()
                return
            }
            device = camera
            startSession(camera, imageReader)
        }

        override fun onDisconnected(camera: CameraDevice) {
            camera.close()
            if (device === camera) device = null
        }

        override fun onError(camera: CameraDevice, error: Int) {
            camera.close()
            if (device === camera) device = null
            if (!closed) onFailure("camera error $error")
        }
    }

    private fun startSession(camera: CameraDevice, imageReader: ImageReader) {
        val outputs = listOf(OutputConfiguration(preview), OutputConfiguration(imageReader.surface))
        val config = SessionConfiguration(
            SessionConfiguration.SESSION_REGULAR,
            outputs,
            cameraExecutor,
            object : CameraCaptureSession.StateCallback() {
                override fun onConfigured(s: CameraCaptureSession) {
                    if (closed || device !== camera) {
                        closeQuietly(s)
                        return
                    }
                    session = s
                    try {
                        val request = camera.createCaptureRequest(CameraDevice.TEMPLATE_PREVIEW).apply {
                            addTarget(preview)
                            addTarget(imageReader.surface)
                            set(CaptureRequest.CONTROL_AF_MODE, CaptureRequest.CONTROL_AF_MODE_CONTINUOUS_PICTURE)
                        }.build()
                        s.setRepeatingRequest(request, null, cameraHandler)
                    } catch (e: CameraAccessException) {
                        onFailure("camera unavailable (${e.reason})")
                    } catch (e: IllegalStateException) {
                        // device or session closed under us (stop or disconnect)
                    }
                }

                override fun onConfigureFailed(s: CameraCaptureSession) {
                    Log.w(TAG, "camera session configuration failed")
                    if (!closed) onFailure("camera session configuration failed")
                }
            },
        )
        try {
            camera.createCaptureSession(config)
        } catch (e: CameraAccessException) {
            onFailure("camera unavailable (${e.reason})")
        } catch (e: IllegalStateException) {
            // the device was closed meanwhile
        }
    }

    /** Scan thread: one frame in, at most one result out. */
    private fun analyse(r: ImageReader) {
        if (closed) return
        val image = try {
            r.acquireLatestImage()
        } catch (e: IllegalStateException) {
            null // reader closed or all buffers held
        } ?: return
        try {
            if (closed || delivered) return
            val y = image.planes[0]
            // YUV_420_888 guarantees pixelStride == 1 for Y; rowStride may exceed width.
            val result = scanFrame(y.buffer, image.width.toUInt(), image.height.toUInt(), y.rowStride.toUInt())
            if (result !is ScanResult.NothingFound && !closed) {
                delivered = true
                onResult(result)
            }
        } catch (e: ScanException) {
            Log.w(TAG, "frame rejected: ${e.javaClass.simpleName}")
        } catch (e: IllegalStateException) {
            // image already closed
        } finally {
            image.close()
        }
    }

    /** Allows the next hit to be delivered again (e.g. after a foreign or expired QR was shown). */
    fun resume() {
        delivered = false
    }

    /** Stops the camera. Safe from any thread, more than once, and before the camera opened. */
    fun stop() {
        if (closed) return
        closed = true
        cameraHandler.post {
            session?.let { closeQuietly(it) }
            session = null
            device?.close()
            device = null
            // Queued behind any frame being scanned: the reader (and the frame memory Rust
            // may be reading) is released only after that scan returned.
            scanHandler.post {
                reader?.close()
                reader = null
                scanThread.quitSafely()
            }
            cameraThread.quitSafely()
        }
    }

    private fun closeQuietly(s: CameraCaptureSession) {
        try {
            s.close()
        } catch (e: IllegalStateException) {
            // already closed with the device
        }
    }

    private companion object {
        const val TAG = "ShomeiCamera"
        const val MAX_IMAGES = 3
    }
}
