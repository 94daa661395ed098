import CryptoKit
import Foundation
import ShomeiMobile

/// The app's state and actions for SwiftUI. Platform work only; protocol decisions are in Rust.
@MainActor
public final class AppModel: ObservableObject {
    public enum Screen {
        case home
        case scan
        case enroll(payload: String, info: PayloadInfo)
        case approve(payload: String, context: LoginContext?)
        case message(String)
    }

    @Published public var screen: Screen = .home
    @Published public private(set) var enrollment: EnrollmentState?
    @Published public private(set) var grants: [Grant] = []
    @Published public var busy = false

    public let key = SecureEnclaveKey()
    private var authenticator: Authenticator

    public init() {
        if let saved = EnrollmentStore.load(), key.exists,
           let restored = try? Authenticator.restore(key: key, state: saved) {
            authenticator = restored
        } else {
            authenticator = Authenticator(key: key)
        }
        enrollment = authenticator.enrollment()
    }

    /// A scanned code or an opened Universal Link.
    public func open(_ url: String) {
        do {
            let info = try parsePayload(text: url)
            switch info.kind {
            case .enrollment: screen = .enroll(payload: info.url, info: info)
            case .login: loadContext(payload: info.url)
            }
        } catch {
            screen = .message("QRコードを読み取れませんでした: \(error)")
        }
    }

    public func handle(_ result: ScanResult) {
        switch result {
        case .shomei(let payload): open(payload.url)
        case .foreignOnly: screen = .message("Shomei のQRコードではありません")
        case .nothingFound: break
        }
    }

    private func loadContext(payload: String) {
        screen = .approve(payload: payload, context: nil)
        Task {
            do {
                let ctx = try await authenticator.loginContext(payload: payload)
                screen = .approve(payload: payload, context: ctx)
            } catch {
                screen = .message(Self.describe(error))
            }
        }
    }

    public func enroll(payload: String, password: String, deviceName: String) {
        busy = true
        Task {
            defer { busy = false }
            do {
                try key.create()
                // Commit the attestation to this enrollment code, like Android's challenge.
                let challenge = Data(SHA256.hash(data: Data(payload.utf8)))
                var attestation: [Data] = []
                if let object = try? await AppAttest.attestation(challenge: challenge) { attestation.append(object) }
                key.reason = "端末の登録"
                let state = try await authenticator.enroll(
                    payload: payload, activationPassword: password, deviceName: deviceName,
                    platform: .ios, attestation: attestation
                )
                if let exported = authenticator.exportState() { try EnrollmentStore.save(exported) }
                enrollment = state
                screen = .message("登録しました: \(state.practitionerName)")
            } catch {
                screen = .message(Self.describe(error))
            }
        }
    }

    public func decide(payload: String, context: LoginContext, approve: Bool, number: UInt8) {
        key.reason = "\(context.facilityName) / \(context.terminalName) のログインを承認 (\(number))"
        busy = true
        Task {
            defer { busy = false }
            do {
                let result = approve
                    ? try await authenticator.approve(payload: payload, context: context, number: number)
                    : try await authenticator.deny(payload: payload, context: context, number: number)
                switch result.outcome {
                case .approved: screen = .message("承認しました")
                case .denied: screen = .message("拒否しました")
                }
            } catch AuthenticatorError.KeyInvalidated {
                unenroll()
                screen = .message("生体情報が変更されたため、この端末の鍵は無効になりました。再登録してください。")
            } catch {
                screen = .message(Self.describe(error))
            }
        }
    }

    public func refreshGrants() {
        guard enrollment != nil else { return }
        Task {
            do { grants = try await authenticator.grants() } catch { grants = [] }
        }
    }

    public func end(grant: Grant) {
        Task {
            _ = try? await authenticator.endGrant(grantId: grant.id)
            refreshGrants()
        }
    }

    public func endAll() {
        Task {
            _ = try? await authenticator.endAllGrants()
            refreshGrants()
        }
    }

    public func unenroll() {
        authenticator.forget()
        EnrollmentStore.clear()
        key.delete()
        enrollment = nil
        grants = []
    }

    static func describe(_ error: Error) -> String {
        guard let e = error as? AuthenticatorError else { return "\(error)" }
        switch e {
        case .UserCancelled: return "生体認証がキャンセルされました。"
        case .BiometricLockout: return "生体認証がロックされています。パスコードでロックを解除してから再度お試しください。"
        case .KeyInvalidated: return "この端末の鍵は無効になりました。再登録してください。"
        case .KeyNotAvailable(let reason): return "端末の鍵を使用できません: \(reason)"
        case .KeyFailed(let reason): return "端末の鍵でエラーが発生しました: \(reason)"
        case .InvalidPayload(let reason): return "このQRコードは正しくありません: \(reason)"
        case .PayloadExpired: return "QRコードの有効期限が切れています。"
        case .WrongPayloadKind(let reason): return "このQRコードはここでは使えません: \(reason)"
        case .NotEnrolled: return "この端末はまだ登録されていません。"
        case .AlreadyEnrolled: return "この端末は既に登録されています。"
        case .WrongServer: return "このQRコードは登録先と異なるサーバーのものです。"
        case .Network(let reason): return "通信できませんでした: \(reason)"
        case .Timeout: return "サーバーが応答しませんでした。"
        case .Rejected(_, let code, let detail): return "サーバーが拒否しました (\(code)): \(detail)"
        case .InvalidInput(let reason): return "入力が正しくありません: \(reason)"
        case .Protocol(let reason): return "サーバーの応答が不正です: \(reason)"
        case .InvalidState(let reason): return "保存された登録情報が壊れています: \(reason)"
        case .Internal(let reason): return "内部エラー: \(reason)"
        }
    }
}
