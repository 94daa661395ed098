package jp.shomei.app.ui

import android.Manifest
import android.app.Activity
import android.content.Intent
import android.content.pm.PackageManager
import android.graphics.SurfaceTexture
import android.net.Uri
import android.os.Bundle
import android.provider.Settings
import android.view.Surface
import android.view.TextureView
import android.view.View
import android.widget.Button
import android.widget.LinearLayout
import android.widget.TextView
import jp.shomei.app.camera.QrCamera
import jp.shomei.app.flow.CameraPermission
import jp.shomei.app.flow.ScanVerdict
import jp.shomei.mobile.ScanResult
import jp.shomei.mobile.parsePayload

/**
 * Camera viewfinder; hands the first usable Shomei QR to the enrollment or approval screen.
 * An expired or broken code keeps the camera running with a message; the camera permission
 * is asked for once, then the screen offers the system settings ([CameraPermission]).
 */
class ScanActivity : Activity() {
    private var camera: QrCamera? = null
    private var surface: Surface? = null
    private lateinit var status: TextView
    private lateinit var settings: Button
    private lateinit var viewfinder: TextureView
    private lateinit var permission: CameraPermission
    private var resumed = false

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        permission = CameraPermission(asked = savedInstanceState?.getBoolean(STATE_ASKED) ?: false)
        viewfinder = TextureView(this)
        status = TextView(this).apply {
            text = PROMPT
            textSize = 16f
        }
        settings = Button(this).apply {
            text = "設定を開く"
            isAllCaps = false
            visibility = View.GONE
            setOnClickListener {
                startActivity(
                    Intent(Settings.ACTION_APPLICATION_DETAILS_SETTINGS, Uri.fromParts("package", packageName, null)),
                )
            }
        }
        // Beside the scanner: when the camera cannot read the screen, type the code instead.
        val typeCode = Button(this).apply {
            text = "読み取れない場合: コードを入力"
            isAllCaps = false
            setOnClickListener {
                stopCamera()
                startActivity(Intent(this@ScanActivity, CodeEntryActivity::class.java))
                finish()
            }
        }
        showScreen(LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            addView(status)
            addView(settings)
            addView(typeCode)
            addView(viewfinder, LinearLayout.LayoutParams(LinearLayout.LayoutParams.MATCH_PARENT, 0, 1f))
        })
    }

    override fun onSaveInstanceState(outState: Bundle) {
        super.onSaveInstanceState(outState)
        outState.putBoolean(STATE_ASKED, permission.asked)
    }

    override fun onResume() {
        super.onResume()
        resumed = true
        apply(permission.onResume(granted()))
    }

    override fun onPause() {
        resumed = false
        stopCamera()
        super.onPause()
    }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<out String>, grantResults: IntArray) {
        super.onRequestPermissionsResult(requestCode, permissions, grantResults)
        if (requestCode != REQUEST_CAMERA) return
        val step = permission.onResult(grantResults.firstOrNull() == PackageManager.PERMISSION_GRANTED)
        if (resumed) apply(step)
    }

    private fun granted(): Boolean = checkSelfPermission(Manifest.permission.CAMERA) == PackageManager.PERMISSION_GRANTED

    private fun apply(step: CameraPermission.Step) {
        when (step) {
            CameraPermission.Step.START_CAMERA -> {
                settings.visibility = View.GONE
                status.text = PROMPT
                startWhenReady()
            }
            CameraPermission.Step.REQUEST -> requestPermissions(arrayOf(Manifest.permission.CAMERA), REQUEST_CAMERA)
            CameraPermission.Step.WAIT -> Unit
            CameraPermission.Step.OFFER_SETTINGS -> {
                status.text = "QRコードの読み取りにはカメラの許可が必要です。設定の「権限」でカメラを許可してください。"
                settings.visibility = View.VISIBLE
            }
        }
    }

    private fun startWhenReady() {
        if (viewfinder.isAvailable) {
            viewfinder.surfaceTexture?.let { start(it) }
            return
        }
        viewfinder.surfaceTextureListener = object : TextureView.SurfaceTextureListener {
            override fun onSurfaceTextureAvailable(texture: SurfaceTexture, width: Int, height: Int) {
                if (resumed && granted()) start(texture)
            }
            override fun onSurfaceTextureSizeChanged(texture: SurfaceTexture, width: Int, height: Int) {}
            override fun onSurfaceTextureDestroyed(texture: SurfaceTexture): Boolean {
                stopCamera()
                return true
            }
            override fun onSurfaceTextureUpdated(texture: SurfaceTexture) {}
        }
    }

    private fun start(texture: SurfaceTexture) {
        if (camera != null) return
        texture.setDefaultBufferSize(1280, 720)
        val target = Surface(texture)
        surface = target
        lateinit var cam: QrCamera
        cam = QrCamera(
            this,
            target,
            onResult = { result -> runOnUiThread { if (camera === cam) handle(cam, result) } },
            onFailure = { reason -> runOnUiThread { if (camera === cam) status.text = "カメラを使用できません ($reason)" } },
        )
        camera = cam
        cam.start()
    }

    private fun stopCamera() {
        camera?.stop()
        camera = null
        surface?.release()
        surface = null
    }

    private fun handle(cam: QrCamera, result: ScanResult) {
        when (val verdict = ScanVerdict.of(result, ::parsePayload)) {
            is ScanVerdict.Open -> {
                stopCamera()
                MainActivity.open(this, verdict)
                finish()
            }
            is ScanVerdict.KeepScanning -> {
                verdict.message?.let { status.text = it }
                // The same code is probably still in view: give the user time to read the
                // message (and refresh the EHR screen) before reporting again.
                status.postDelayed({ if (camera === cam) cam.resume() }, RESCAN_DELAY_MS)
            }
        }
    }

    private companion object {
        const val REQUEST_CAMERA = 1
        const val STATE_ASKED = "camera_permission_asked"
        const val RESCAN_DELAY_MS = 1500L
        const val PROMPT = "EHR画面のQRコードを枠内に写してください"
    }
}
