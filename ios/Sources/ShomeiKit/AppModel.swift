import Foundation
import ShomeiMobile

/// The app's state and actions for SwiftUI. Platform work only; protocol decisions are in Rust.
///
/// Enrollment keeps a working phone working (issue 15): it is refused while enrolled, before
/// any key is touched; the new Secure Enclave key gets a fresh tag; the stored tag and state
/// switch to it only after the server accepted it, and only then is the previous key deleted.
@MainActor
public final class AppModel: ObservableObject {
    public enum Screen {
        case home
        case scan
        /// "Type the code" beside the scanner (docs/protocol.md §4.6).
        case typeCode
        case enroll(payload: String, info: PayloadInfo)
        case approve(payload: String, context: LoginContext?)
        case message(String, offer: Offer)
    }

    /// What a message screen offers besides going home.
    public enum Offer {
        case none
        /// The server no longer accepts this phone: forget it and scan a new enrollment code.
        case reEnroll
    }

    @Published public var screen: Screen = .home
    @Published public private(set) var enrollment: EnrollmentState?
    @Published public private(set) var grants: [Grant] = []
    /// Today's signatures across the grants (issue 14), newest first; followed while home is shown.
    @Published public private(set) var todaysSignatures: [SignatureEntry] = []
    /// Why the signing log could not be read just now (shown above the grants; cleared on success).
    @Published public private(set) var signaturesProblem: String?
    @Published public private(set) var busy = false
    /// Why the last scanned code was not opened (expired, broken, foreign); the scanner keeps running.
    @Published public var scanNotice: String?
    /// Why the typed code was not sent (a typo core refused), shown under the field.
    @Published public var codeNotice: String?
    /// The login on the approval screen was found by its typed code, not by a scan.
    @Published public private(set) var approvingTypedCode = false

    /// What Face ID / Touch ID says; shared by every device key.
    public let prompt = BiometricReason()
    private var authenticator: Authenticator
    private var keyTag: String?
    /// Follow the log from here (docs/protocol.md §9.3); nil until the day is loaded.
    private var signatureWatermark: UInt64?
    private var following: Task<Void, Never>?

    public init() {
        var restored: (Authenticator, String)?
        if let saved = EnrollmentStore.load() {
            let key = SecureEnclaveKey(tag: saved.keyTag, prompt: prompt)
            if key.exists, let auth = try? Authenticator.restore(key: key, state: saved.state) {
                restored = (auth, saved.keyTag)
            }
        }
        authenticator = restored?.0 ?? Authenticator(key: NoDeviceKey())
        keyTag = restored?.1
        enrollment = authenticator.enrollment()
        // Keys an enrollment left when the app was killed between creating and committing.
        for tag in SecureEnclaveKeyring.tags() where tag != keyTag {
            SecureEnclaveKey(tag: tag, prompt: prompt).delete()
        }
    }

    /// An opened Universal Link. Ignored while an enrollment or decision is running.
    public func open(_ url: String) {
        guard !busy else { return }
        do {
            let info = try parsePayload(text: url)
            route(info)
        } catch {
            screen = .message(Self.payloadProblem(error), offer: .none)
        }
    }

    /// A scanner hit. Returns false when the scanner should keep running ([scanNotice] says why).
    public func handle(_ result: ScanResult) -> Bool {
        switch result {
        case .shomei(let payload):
            do {
                let info = try parsePayload(text: payload.url) // strict: expiry included
                scanNotice = nil
                route(info)
                return true
            } catch {
                scanNotice = Self.payloadProblem(error)
                return false
            }
        case .foreignOnly:
            scanNotice = "Shomei のQRコードではありません。"
            return false
        case .nothingFound:
            return false
        }
    }

    private func route(_ info: PayloadInfo) {
        switch info.kind {
        case .enrollment:
            if enrollment != nil {
                screen = .message(Self.alreadyEnrolled, offer: .none)
            } else {
                screen = .enroll(payload: info.url, info: info)
            }
        case .login: loadContext(payload: info.url)
        }
    }

    /// The typed-code fallback (docs/protocol.md §4.6): the code the EHR shows beside its QR.
    /// Core refuses a typo before anything is sent (the field says which character); a
    /// well-formed code is resolved by the server to the login's payload and context, and the
    /// approval screen is then the same as after a scan — same numbers, same signed decision.
    public func submitCode(_ typed: String) {
        guard !busy else { return }
        let canonical: String
        do {
            canonical = try normalizeUserCode(typed: typed)
        } catch {
            codeNotice = Self.advice(for: error).message
            return
        }
        codeNotice = nil
        approvingTypedCode = true
        screen = .approve(payload: "", context: nil)
        Task {
            do {
                let found = try await authenticator.loginByCode(code: canonical)
                screen = .approve(payload: found.payload, context: found.context)
            } catch {
                show(error)
            }
        }
    }

    private func loadContext(payload: String) {
        approvingTypedCode = false
        screen = .approve(payload: payload, context: nil)
        Task {
            do {
                let ctx = try await authenticator.loginContext(payload: payload)
                // The details are on screen before any Face ID sheet can appear: the sheet is
                // only started by a tap on a number of this very screen.
                screen = .approve(payload: payload, context: ctx)
            } catch {
                show(error)
            }
        }
    }

    public func enroll(payload: String, info: PayloadInfo, password: String, deviceName: String) {
        guard enrollment == nil else {
            screen = .message(Self.alreadyEnrolled, offer: .none)
            return
        }
        guard !busy else { return }
        busy = true
        let tag = SecureEnclaveKey.tagPrefix + UUID().uuidString
        let candidate = SecureEnclaveKey(tag: tag, prompt: prompt)
        prompt.text = "端末の登録: \(info.origin)"
        Task {
            defer { busy = false }
            do {
                try await Task.detached { try candidate.create() }.value
            } catch {
                screen = .message("端末の鍵を作成できませんでした。", offer: .none)
                return
            }
            let state: EnrollmentState
            do {
                // Core refuses AlreadyEnrolled first, asks `candidate` for its attestation
                // (App Attest over core's clientDataHash) and its proof signature, and signs
                // with it from now on only if the server accepted.
                state = try await authenticator.enroll(
                    payload: payload, activationPassword: password, deviceName: deviceName,
                    platform: .ios, key: candidate
                )
            } catch {
                candidate.delete()
                show(error)
                return
            }
            let previous = keyTag
            keyTag = tag
            enrollment = state
            do {
                if let exported = authenticator.exportState() {
                    try EnrollmentStore.save(keyTag: tag, state: exported)
                }
            } catch {
                screen = .message("登録はサーバーで完了しましたが、端末に保存できませんでした。管理者に連絡してください。", offer: .none)
                return
            }
            if let previous, previous != tag { SecureEnclaveKey(tag: previous, prompt: prompt).delete() }
            screen = .message("登録しました: \(state.practitionerName)", offer: .none)
        }
    }

    public func decide(payload: String, context: LoginContext, approve: Bool, number: UInt8) {
        guard !busy else { return } // a second tap while the first waits for Face ID
        prompt.text = "\(context.facilityName) / \(context.terminalName) のログインを\(approve ? "承認" : "拒否") (\(number))"
        busy = true
        Task {
            defer { busy = false }
            do {
                let result = approve
                    ? try await authenticator.approve(payload: payload, context: context, number: number)
                    : try await authenticator.deny(payload: payload, context: context, number: number)
                switch result.outcome {
                case .approved: screen = .message("承認しました", offer: .none)
                case .denied: screen = .message("拒否しました", offer: .none)
                }
            } catch AuthenticatorError.UserCancelled {
                // Face ID dismissed: the login is still open, the numbers stay on screen.
            } catch {
                show(error)
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

    /// One grant's signatures of today, newest first.
    public func signaturesUnder(_ grant: Grant) -> [SignatureEntry] {
        todaysSignatures.filter { $0.grantId == grant.id }
    }

    /// Starts following the signing log (home on screen, app in the foreground): load the
    /// day's pages once, then poll `signaturesSince` every few seconds.
    public func startFollowingSignatures() {
        guard enrollment != nil, following == nil else { return }
        following = Task { [weak self] in
            while !Task.isCancelled {
                await self?.followSignaturesOnce()
                try? await Task.sleep(nanoseconds: Self.followEveryNanoseconds)
            }
        }
    }

    /// Stops following (home hidden, app in the background: iOS cuts background sockets).
    /// Nothing is lost: the next start resumes after the last signature seen.
    public func stopFollowingSignatures() {
        following?.cancel()
        following = nil
    }

    static let followEveryNanoseconds: UInt64 = 3_000_000_000
    /// Page and batch size (the server's maximum).
    static let signaturePage: UInt32 = 200
    /// A day of a busy clinic; older entries of the day stay on the server.
    static let maxSignatures = 2000

    private func loadSignatures() async throws {
        let first = try await authenticator.signatures(grantId: nil, cursor: nil, limit: Self.signaturePage)
        var walk = first.entries
        var cursor = first.nextCursor
        while let c = cursor, walk.count < Self.maxSignatures {
            let next = try await authenticator.signatures(grantId: nil, cursor: c, limit: Self.signaturePage)
            walk += next.entries
            cursor = next.nextCursor
        }
        todaysSignatures = Array(walk.prefix(Self.maxSignatures))
        signatureWatermark = first.watermark
    }

    /// One look at the log: the first page walk, or what was signed since the last look (on top).
    func followSignaturesOnce() async {
        do {
            guard let from = signatureWatermark else {
                try await loadSignatures()
                signaturesProblem = nil
                return
            }
            var fresh: [SignatureEntry] = []
            var at = from
            var more = true
            while more {
                let batch = try await authenticator.signaturesSince(grantId: nil, since: at, limit: Self.signaturePage)
                fresh += batch.entries
                at = batch.watermark
                more = batch.more
            }
            if !fresh.isEmpty {
                todaysSignatures = Array((fresh.reversed() + todaysSignatures).prefix(Self.maxSignatures))
                // A signature under a grant not listed yet (a login meanwhile): list the grants again.
                if fresh.contains(where: { e in !grants.contains { $0.id == e.grantId } }) { refreshGrants() }
            }
            signatureWatermark = at
            signaturesProblem = nil
        } catch AuthenticatorError.Rejected(_, let code, _) where code == "cursor_invalid" {
            // Not this server's position any more (restored server): reload the day.
            signatureWatermark = nil
            todaysSignatures = []
        } catch {
            signaturesProblem = Self.advice(for: error).message
        }
    }

    /// How one signature reads: local time, terminal @ facility, format, label, short digest.
    public static func signatureLine(_ e: SignatureEntry) -> (time: String, who: String, what: String) {
        let format: String
        switch e.format {
        case .hash: format = "署名 (hash)"
        case .xades: format = "XAdES"
        case .cms: format = "CMS"
        }
        let digest = e.digestBase64.count <= 12 ? e.digestBase64 : String(e.digestBase64.prefix(12)) + "…"
        let label = e.label.map { "「\($0)」 " } ?? ""
        return (e.signedAt.formatted(date: .omitted, time: .standard), "\(e.terminalName) @ \(e.facilityName)", "\(format)  \(label)\(digest)")
    }

    public func unenroll() {
        stopFollowingSignatures()
        signatureWatermark = nil
        todaysSignatures = []
        signaturesProblem = nil
        authenticator.forget()
        EnrollmentStore.clear()
        if let keyTag { SecureEnclaveKey(tag: keyTag, prompt: prompt).delete() }
        keyTag = nil
        authenticator = Authenticator(key: NoDeviceKey())
        enrollment = nil
        grants = []
    }

    /// Shows a failure; forgets the enrollment when the key is dead, offers it when the server
    /// no longer accepts this phone.
    private func show(_ error: Error) {
        let advice = Self.advice(for: error)
        if advice.forgetNow { unenroll() }
        screen = .message(advice.message, offer: advice.offer)
    }

    static let alreadyEnrolled = "この端末は既に登録されています。登録し直すには、先にホーム画面で登録を削除してください。"

    /// Server problem codes after which this phone cannot approve anything again.
    static let reEnrollCodes: Set<String> = ["device_revoked", "device_unknown", "signature_invalid"]

    /// Pure mapping of a typed failure to what the user reads (same rules as Android's
    /// FailureAdvice; a key failure's reason — possibly a stack trace — is never shown).
    static func advice(for error: Error) -> (message: String, offer: Offer, forgetNow: Bool) {
        guard let e = error as? AuthenticatorError else { return ("エラーが発生しました。", .none, false) }
        switch e {
        case .UserCancelled: return ("生体認証がキャンセルされました。", .none, false)
        case .BiometricLockout: return ("生体認証がロックされています。パスコードでロックを解除してから再度お試しください。", .none, false)
        case .KeyInvalidated: return ("生体情報が変更されたため、この端末の鍵は無効になりました。再登録してください。", .none, true)
        case .KeyNotAvailable: return ("端末の鍵を使用できません。", .none, false)
        case .KeyFailed: return ("端末の鍵でエラーが発生しました。もう一度お試しください。", .none, false)
        case .InvalidPayload: return ("このQRコードは正しくありません。", .none, false)
        case .InvalidUserCode(let reason): return ("コードが正しくありません: \(firstLine(reason))", .none, false)
        case .PayloadExpired: return ("QRコードの有効期限が切れています。画面のQRコードを更新してください。", .none, false)
        case .WrongPayloadKind: return ("このQRコードはここでは使えません。", .none, false)
        case .NotEnrolled: return ("この端末はまだ登録されていません。", .none, false)
        case .AlreadyEnrolled: return (alreadyEnrolled, .none, false)
        case .WrongServer: return ("このQRコードは登録先と異なるサーバーのものです。", .none, false)
        case .Network: return ("通信できませんでした。", .none, false)
        case .Timeout: return ("サーバーが応答しませんでした。", .none, false)
        case .Rejected(_, let code, let detail):
            if reEnrollCodes.contains(code) {
                return ("サーバーはこの端末を受け付けません（\(code)）。登録を削除して、新しい登録用QRコードを受け取ってください。", .reEnroll, false)
            }
            // The typed-code fallback's refusals (docs/protocol.md §4.6).
            switch code {
            case "login_unknown": return ("このログイン要求は見つかりません。EHR画面のQRコード（またはその横のコード）を確認して、やり直してください。", .none, false)
            case "login_expired": return ("ログイン要求の有効期限が切れています。EHR画面でやり直してください。", .none, false)
            case "login_already_decided": return ("このログイン要求には既に回答済みです。", .none, false)
            case "practitioner_not_allowed": return ("この医療機関には登録されていないため、承認できません。", .none, false)
            case "user_code_invalid": return ("コードが正しくありません: \(firstLine(detail))", .none, false)
            case "rate_limited": return ("誤ったコードの入力が続いたため、しばらく入力できません。しばらく待ってからやり直すか、QRコードを読み取ってください。", .none, false)
            default: break
            }
            return ("サーバーが拒否しました (\(code)): \(firstLine(detail))", .none, false)
        case .InvalidInput(let reason): return ("入力が正しくありません: \(firstLine(reason))", .none, false)
        case .Protocol: return ("サーバーの応答が不正です。", .none, false)
        case .InvalidState: return ("保存された登録情報が壊れています。再登録してください。", .none, true)
        default: return ("エラーが発生しました。", .none, false)
        }
    }

    static func payloadProblem(_ error: Error) -> String {
        if let p = error as? PayloadError, case .Expired = p {
            return "QRコードの有効期限が切れています。画面のQRコードを更新して、もう一度読み取ってください。"
        }
        return "このQRコードは使用できません。"
    }

    static func firstLine(_ s: String) -> String {
        let line = s.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        return line.count <= 160 ? line : String(line.prefix(159)) + "…"
    }
}
