import Foundation
import LocalAuthentication
import Security
import ShomeiMobile

/// The device key in the Secure Enclave, implementing the Rust core's `PlatformKey`.
///
/// Why it is built this way:
/// - `kSecAttrTokenIDSecureEnclave`: the P-256 private key is generated inside the Secure
///   Enclave and can never be exported, not even by this app.
/// - `SecAccessControlCreateWithFlags(.privateKeyUsage, .biometryCurrentSet)`: every use needs
///   Face ID / Touch ID by the *currently enrolled* biometrics; a passcode alone cannot sign,
///   and enrolling a new finger/face makes the key unusable (the phone must re-enroll).
/// - `kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly`: removed if the passcode is removed,
///   never in backups, never migrated to another phone.
///
/// `sign` is called by Rust on a worker thread and blocks until the user answers; the
/// biometric sheet is started from the main thread (the app's job, not Rust's).
public final class SecureEnclaveKey: PlatformKey, @unchecked Sendable {
    /// Every device key's tag starts with this; a fresh suffix per enrollment, so a new key
    /// never replaces the one an enrolled phone signs with (AppModel swaps only after the
    /// server accepted the new one).
    public static let tagPrefix = "jp.shomei.device-key."

    public let tag: String
    private let tagData: Data
    private let domainStateAccount: String
    private let prompt: BiometricReason

    /// - Parameter prompt: the sentence Face ID / Touch ID shows, shared by all keys and set
    ///   by the screen before the action that signs.
    public init(tag: String, prompt: BiometricReason) {
        self.tag = tag
        self.tagData = Data(tag.utf8)
        self.domainStateAccount = tag + ".biometry-state"
        self.prompt = prompt
    }

    public var exists: Bool { (try? privateKey(context: nil)) != nil }

    /// Creates the key under this key's tag (call off the main thread; the tag must be new).
    public func create() throws {
        var error: Unmanaged<CFError>?
        guard let access = SecAccessControlCreateWithFlags(
            kCFAllocatorDefault,
            kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly,
            [.privateKeyUsage, .biometryCurrentSet],
            &error
        ) else {
            throw PlatformKeyError.NotAvailable(reason: Self.describe(error))
        }
        let attributes: [String: Any] = [
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeySizeInBits as String: 256,
            kSecAttrTokenID as String: kSecAttrTokenIDSecureEnclave,
            kSecPrivateKeyAttrs as String: [
                kSecAttrIsPermanent as String: true,
                kSecAttrApplicationTag as String: tagData,
                kSecAttrAccessControl as String: access,
            ] as [String: Any],
        ]
        guard SecKeyCreateRandomKey(attributes as CFDictionary, &error) != nil else {
            throw PlatformKeyError.NotAvailable(reason: Self.describe(error))
        }
        // Remember which biometric set the key belongs to, to tell "invalidated" apart from
        // other failures later (LAContext.evaluatedPolicyDomainState changes on re-enrollment).
        let context = LAContext()
        _ = context.canEvaluatePolicy(.deviceOwnerAuthenticationWithBiometrics, error: nil)
        if let state = context.evaluatedPolicyDomainState {
            try? Keychain.set(state, account: domainStateAccount)
        }
    }

    public func delete() {
        let query: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrApplicationTag as String: tagData,
        ]
        SecItemDelete(query as CFDictionary)
        Keychain.delete(account: domainStateAccount)
    }

    private func privateKey(context: LAContext?) throws -> SecKey {
        var query: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrApplicationTag as String: tagData,
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecReturnRef as String: true,
        ]
        if let context { query[kSecUseAuthenticationContext as String] = context }
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        guard status == errSecSuccess, let item else {
            throw PlatformKeyError.NotAvailable(reason: "no device key (status \(status)); enroll this phone first")
        }
        return item as! SecKey // swiftlint:disable:this force_cast — kSecClassKey returns SecKey
    }

    // MARK: PlatformKey

    public func publicKey() throws -> Data {
        let key = try privateKey(context: nil)
        guard let pub = SecKeyCopyPublicKey(key) else {
            throw PlatformKeyError.Failed(reason: "no public key")
        }
        var error: Unmanaged<CFError>?
        // For EC keys the external representation is ANSI X9.63: 0x04 || X || Y, i.e. the
        // 65-byte SEC1 uncompressed point the server expects.
        guard let data = SecKeyCopyExternalRepresentation(pub, &error) as Data? else {
            throw PlatformKeyError.Failed(reason: Self.describe(error))
        }
        return data
    }

    public func sign(message: Data) throws -> Data {
        if Thread.isMainThread {
            // Waiting here for a sheet that needs this very thread would deadlock.
            throw PlatformKeyError.Failed(reason: "sign must not be called on the main thread")
        }
        let context = LAContext()
        context.localizedCancelTitle = "キャンセル"
        // No "Enter Password" button: the key accepts biometrics only (.biometryCurrentSet),
        // so the passcode fallback could only end in a cancel.
        context.localizedFallbackTitle = ""
        try authenticate(context)
        if let enrolledState = Keychain.get(account: domainStateAccount),
           let current = context.evaluatedPolicyDomainState,
           enrolledState != current {
            throw PlatformKeyError.KeyInvalidated
        }
        // The context already holds the user's approval; forbid a second sheet.
        context.interactionNotAllowed = true
        let key = try privateKey(context: context)
        var error: Unmanaged<CFError>?
        guard let signature = SecKeyCreateSignature(
            key, .ecdsaSignatureMessageX962SHA256, message as CFData, &error
        ) as Data? else {
            // A key bound to a biometric set that no longer exists cannot be used at all.
            if let e = error?.takeUnretainedValue(), CFErrorGetCode(e) == Int(errSecAuthFailed) {
                throw PlatformKeyError.KeyInvalidated
            }
            throw PlatformKeyError.Failed(reason: Self.describe(error))
        }
        return signature // X9.62 DER, as the server expects
    }

    /// Issue 9: the evidence for this key at enrollment. Secure Enclave keys have no
    /// attestation of their own, so a fresh App Attest key is attested with core's
    /// `clientDataHash`, which already commits to the enrollment challenge *and* this key's
    /// public key (docs/protocol.md). It is passed to `attestKey` unchanged: no second hash.
    /// Returns `.none` where App Attest is unsupported (simulator, old devices); the server's
    /// policy decides whether that is acceptable.
    public func attestation(request: AttestationRequest) throws -> PlatformAttestation {
        if Thread.isMainThread {
            throw PlatformKeyError.Failed(reason: "attestation must not be requested on the main thread")
        }
        guard request.clientDataHash.count == 32 else {
            throw PlatformKeyError.Failed(reason: "client data hash is \(request.clientDataHash.count) bytes, not 32")
        }
        guard let attested = try AppAttest.attest(clientDataHash: request.clientDataHash) else { return .none }
        return .appleAppAttest(keyId: attested.keyId, attestationObject: attested.object)
    }

    /// Shows Face ID / Touch ID from the main thread and blocks this (worker) thread for the answer.
    private func authenticate(_ context: LAContext) throws {
        let reason = prompt.text
        let done = DispatchSemaphore(value: 0)
        var failure: Error?
        DispatchQueue.main.async {
            context.evaluatePolicy(.deviceOwnerAuthenticationWithBiometrics, localizedReason: reason) { ok, error in
                if !ok { failure = error ?? LAError(.authenticationFailed) }
                done.signal()
            }
        }
        done.wait()
        if let failure { throw Self.map(failure) }
    }

    static func map(_ error: Error) -> PlatformKeyError {
        guard let la = error as? LAError else {
            return .Failed(reason: String(describing: error))
        }
        switch la.code {
        case .userCancel, .appCancel, .systemCancel, .userFallback:
            return .UserCancelled
        case .biometryLockout:
            return .BiometricLockout
        case .biometryNotAvailable, .biometryNotEnrolled, .passcodeNotSet:
            return .NotAvailable(reason: la.localizedDescription)
        default:
            return .Failed(reason: la.localizedDescription)
        }
    }

    private static func describe(_ error: Unmanaged<CFError>?) -> String {
        guard let e = error?.takeRetainedValue() else { return "unknown Security framework error" }
        return CFErrorCopyDescription(e) as String? ?? "Security framework error \(CFErrorGetCode(e))"
    }
}

/// The sentence Face ID / Touch ID shows (facility, terminal, number), shared by the keys and
/// set by the screen right before the action that signs.
public final class BiometricReason: @unchecked Sendable {
    private let lock = NSLock()
    private var value = "ログインを承認します"

    public init() {}

    public var text: String {
        get { lock.lock(); defer { lock.unlock() }; return value }
        set { lock.lock(); value = newValue; lock.unlock() }
    }
}

/// The key of a phone that is not enrolled: every use says so.
public final class NoDeviceKey: PlatformKey, @unchecked Sendable {
    public init() {}
    public func publicKey() throws -> Data { throw PlatformKeyError.NotAvailable(reason: "no device key; enroll this phone first") }
    public func sign(message: Data) throws -> Data { throw PlatformKeyError.NotAvailable(reason: "no device key; enroll this phone first") }
    public func attestation(request: AttestationRequest) throws -> PlatformAttestation { .none }
}

/// The app's Secure Enclave keys by tag (to delete what an interrupted enrollment left).
public enum SecureEnclaveKeyring {
    /// Tags of every device key this app holds.
    public static func tags() -> [String] {
        let query: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecReturnAttributes as String: true,
            kSecMatchLimit as String: kSecMatchLimitAll,
        ]
        var items: CFTypeRef?
        guard SecItemCopyMatching(query as CFDictionary, &items) == errSecSuccess,
              let list = items as? [[String: Any]] else { return [] }
        return list.compactMap { ($0[kSecAttrApplicationTag as String] as? Data).flatMap { String(data: $0, encoding: .utf8) } }
            .filter { $0.hasPrefix(SecureEnclaveKey.tagPrefix) }
    }
}
