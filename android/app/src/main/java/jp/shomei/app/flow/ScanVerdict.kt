package jp.shomei.app.flow

import jp.shomei.mobile.PayloadException
import jp.shomei.mobile.PayloadInfo
import jp.shomei.mobile.PayloadKind
import jp.shomei.mobile.ScanResult

/**
 * What the scan screen does with one scanner result: open the right screen for a usable
 * Shomei code, or keep scanning and say why (expired code, broken code, someone else's QR).
 * An expired or invalid code must never close the scanner silently.
 */
sealed interface ScanVerdict {
    data class Open(val url: String, val kind: PayloadKind) : ScanVerdict

    /** Keep the camera running; show [message] if not null. */
    data class KeepScanning(val message: String?) : ScanVerdict

    companion object {
        /** [parse] is `parsePayload` (strict, checks expiry); injected for tests. */
        fun of(result: ScanResult, parse: (String) -> PayloadInfo): ScanVerdict = when (result) {
            is ScanResult.Shomei -> ofUrl(result.payload.url, parse)
            is ScanResult.ForeignOnly -> KeepScanning("Shomei のQRコードではありません。")
            ScanResult.NothingFound -> KeepScanning(null)
        }

        /** The same decision for a URL opened as a link (App Links / Universal Links). */
        fun ofUrl(url: String, parse: (String) -> PayloadInfo): ScanVerdict = try {
            val info = parse(url)
            Open(info.url, info.kind)
        } catch (e: PayloadException.Expired) {
            KeepScanning("QRコードの有効期限が切れています。画面のQRコードを更新して、もう一度読み取ってください。")
        } catch (e: PayloadException) {
            KeepScanning("このQRコードは使用できません（${e.javaClass.simpleName}）。")
        }
    }
}
