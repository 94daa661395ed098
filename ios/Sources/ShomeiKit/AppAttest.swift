import DeviceCheck
import Foundation
import ShomeiMobile

/// Apple App Attest: proof that the enrollment comes from this genuine app on a genuine
/// device, bound to the Secure Enclave key being enrolled.
///
/// Binding (issue 9, docs/protocol.md): core computes `clientDataHash` over the enrollment
/// challenge and the Secure Enclave public key and hands it over in `AttestationRequest`; it is
/// given to `attestKey` exactly as received. Hashing it again here (as an earlier version did)
/// would make the server's nonce check fail.
public enum AppAttest {
    public struct Attested {
        /// The App Attest key id as raw bytes (SHA-256 of the attested public key; Apple hands
        /// it over base64-encoded).
        public let keyId: Data
        /// The CBOR attestation object from `attestKey`.
        public let object: Data
    }

    /// A fresh App Attest key (an attested key can be attested only once) attested with
    /// `clientDataHash`; nil where App Attest is unsupported. Blocks the calling thread, which
    /// must not be the main thread (Rust calls it from a worker).
    public static func attest(clientDataHash: Data) throws -> Attested? {
        let service = DCAppAttestService.shared
        guard service.isSupported else { return nil }
        let keyId: String = try wait { done in service.generateKey { id, error in done(id, error) } }
        let object: Data = try wait { done in
            service.attestKey(keyId, clientDataHash: clientDataHash) { obj, error in done(obj, error) }
        }
        guard let raw = Data(base64Encoded: keyId) else {
            throw PlatformKeyError.Failed(reason: "App Attest key id is not base64")
        }
        return Attested(keyId: raw, object: object)
    }

    private static func wait<T>(_ start: (@escaping (T?, Error?) -> Void) -> Void) throws -> T {
        let done = DispatchSemaphore(value: 0)
        var value: T?
        var failure: Error?
        start { v, e in
            value = v
            failure = e
            done.signal()
        }
        done.wait()
        if let failure {
            let e = failure as NSError
            throw PlatformKeyError.Failed(reason: "App Attest failed (\(e.domain) \(e.code))")
        }
        guard let value else { throw PlatformKeyError.Failed(reason: "App Attest returned nothing") }
        return value
    }
}
