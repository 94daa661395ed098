import AVFoundation
import CoreVideo
import Foundation
import ShomeiMobile

/// Back camera → bi-planar 4:2:0 full-range frames → the Rust scanner on the luma plane.
///
/// Plane 0 of `kCVPixelFormatType_420YpCbCr8BiPlanarFullRange` is exactly the 8-bit luma the
/// scanner wants; it is wrapped in `Data(bytesNoCopy:)` so it crosses into Rust without a copy
/// (uniffi passes `&[u8]` as a pointer into it) while the buffer is locked.
public final class QRScanner: NSObject, AVCaptureVideoDataOutputSampleBufferDelegate, @unchecked Sendable {
    public let session = AVCaptureSession()
    private let queue = DispatchQueue(label: "jp.shomei.camera")
    private let onResult: @Sendable (QRScanner, ScanResult) -> Void
    private var delivered = false

    /// `onResult` is called on the camera queue with the scanner and the first Shomei or
    /// foreign-only hit; nothing more is reported until `resume()`.
    public init(onResult: @escaping @Sendable (QRScanner, ScanResult) -> Void) {
        self.onResult = onResult
        super.init()
    }

    public func configure() throws {
        session.beginConfiguration()
        defer { session.commitConfiguration() }
        session.sessionPreset = .hd1280x720
        guard let camera = AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: .back) else {
            throw NSError(domain: "jp.shomei.camera", code: 1, userInfo: [NSLocalizedDescriptionKey: "no back camera"])
        }
        let input = try AVCaptureDeviceInput(device: camera)
        if session.canAddInput(input) { session.addInput(input) }
        let output = AVCaptureVideoDataOutput()
        output.videoSettings = [
            kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_420YpCbCr8BiPlanarFullRange,
        ]
        // Newest frame wins; frames arriving while a scan runs are dropped.
        output.alwaysDiscardsLateVideoFrames = true
        output.setSampleBufferDelegate(self, queue: queue)
        if session.canAddOutput(output) { session.addOutput(output) }
        if camera.isFocusModeSupported(.continuousAutoFocus) {
            try camera.lockForConfiguration()
            camera.focusMode = .continuousAutoFocus
            camera.unlockForConfiguration()
        }
    }

    public func start() { queue.async { self.delivered = false; self.session.startRunning() } }
    public func stop() { queue.async { self.session.stopRunning() } }
    /// Lets the next hit through again (after a foreign code was shown to the user).
    public func resume() { queue.async { self.delivered = false } }

    public func captureOutput(_ output: AVCaptureOutput, didOutput sampleBuffer: CMSampleBuffer, from connection: AVCaptureConnection) {
        guard !delivered, let pixels = CMSampleBufferGetImageBuffer(sampleBuffer) else { return }
        CVPixelBufferLockBaseAddress(pixels, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(pixels, .readOnly) }
        guard CVPixelBufferGetPlaneCount(pixels) >= 1,
              let base = CVPixelBufferGetBaseAddressOfPlane(pixels, 0) else { return }
        let width = CVPixelBufferGetWidthOfPlane(pixels, 0)
        let height = CVPixelBufferGetHeightOfPlane(pixels, 0)
        let stride = CVPixelBufferGetBytesPerRowOfPlane(pixels, 0)
        let luma = Data(bytesNoCopy: base, count: stride * height, deallocator: .none)
        do {
            let result = try scanFrame(luma: luma, width: UInt32(width), height: UInt32(height), rowStride: UInt32(stride))
            if case .nothingFound = result { return }
            delivered = true
            onResult(self, result)
        } catch {
            // A malformed frame (ScanError.BadFrame) is skipped; the next one will do.
        }
    }
}
