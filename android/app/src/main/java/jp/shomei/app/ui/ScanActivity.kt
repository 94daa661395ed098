package jp.shomei.app.ui

import android.Manifest
import android.app.Activity
import android.content.pm.PackageManager
import android.graphics.SurfaceTexture
import android.os.Bundle
import android.view.Surface
import android.view.TextureView
import android.widget.LinearLayout
import android.widget.TextView
import jp.shomei.app.camera.QrCamera
import jp.shomei.mobile.ScanResult

/** Camera viewfinder; hands the first Shomei QR to the enrollment or approval screen. */
class ScanActivity : Activity() {
    private var camera: QrCamera? = null
    private lateinit var status: TextView
    private lateinit var viewfinder: TextureView

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        viewfinder = TextureView(this)
        status = TextView(this).apply {
            text = "EHR画面のQRコードを枠内に写してください"
            textSize = 16f
        }
        setContentView(LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            addView(status)
            addView(viewfinder, LinearLayout.LayoutParams(LinearLayout.LayoutParams.MATCH_PARENT, 0, 1f))
        })
    }

    override fun onResume() {
        super.onResume()
        if (checkSelfPermission(Manifest.permission.CAMERA) != PackageManager.PERMISSION_GRANTED) {
            requestPermissions(arrayOf(Manifest.permission.CAMERA), REQUEST_CAMERA)
            return
        }
        startWhenReady()
    }

    override fun onPause() {
        camera?.stop()
        camera = null
        super.onPause()
    }

    override fun onRequestPermissionsResult(requestCode: Int, permissions: Array<out String>, grantResults: IntArray) {
        super.onRequestPermissionsResult(requestCode, permissions, grantResults)
        if (requestCode == REQUEST_CAMERA && grantResults.firstOrNull() != PackageManager.PERMISSION_GRANTED) {
            status.text = "カメラの使用が許可されていません。設定から許可してください。"
        }
    }

    private fun startWhenReady() {
        if (viewfinder.isAvailable) {
            viewfinder.surfaceTexture?.let { start(it) }
            return
        }
        viewfinder.surfaceTextureListener = object : TextureView.SurfaceTextureListener {
            override fun onSurfaceTextureAvailable(texture: SurfaceTexture, width: Int, height: Int) = start(texture)
            override fun onSurfaceTextureSizeChanged(texture: SurfaceTexture, width: Int, height: Int) {}
            override fun onSurfaceTextureDestroyed(texture: SurfaceTexture): Boolean = true
            override fun onSurfaceTextureUpdated(texture: SurfaceTexture) {}
        }
    }

    private fun start(texture: SurfaceTexture) {
        if (camera != null) return
        texture.setDefaultBufferSize(1280, 720)
        val cam = QrCamera(this, Surface(texture)) { result -> runOnUiThread { handle(result) } }
        camera = cam
        cam.start()
    }

    private fun handle(result: ScanResult) {
        when (result) {
            is ScanResult.Shomei -> {
                camera?.stop()
                camera = null
                MainActivity.openPayload(this, result.payload.url)
                finish()
            }
            is ScanResult.ForeignOnly -> {
                // Not ours (a web link, another app's code): say so and keep scanning.
                status.text = "Shomei のQRコードではありません"
                camera?.resume()
            }
            ScanResult.NothingFound -> camera?.resume()
        }
    }

    private companion object {
        const val REQUEST_CAMERA = 1
    }
}
