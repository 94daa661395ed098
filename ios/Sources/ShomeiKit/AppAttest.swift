import CryptoKit
import DeviceCheck
import Foundation

/// Apple App Attest: proof that enrollment requests come from this genuine app on a genuine
/// device. The Secure Enclave key itself has no attestation on iOS, so the App Attest
/// attestation object (whose client data hash commits to the enrollment code) is what the
/// server stores with the device, alongside the public key.
public enum AppAttest {
    private static let keyIdAccount = "app-attest-key-id"

    /// The attestation object for `challenge`, or nil where App Attest is unsupported
    /// (simulator, old devices) — enrollment then proceeds without it; the server's policy
    /// decides whether that is acceptable.
    public static func attestation(challenge: Data) async throws -> Data? {
        let service = DCAppAttestService.shared
        guard service.isSupported else { return nil }
        // A fresh App Attest key per enrollment: an attested key can be attested only once.
        let keyId = try await service.generateKey()
        try? Keychain.set(Data(keyId.utf8), account: keyIdAccount)
        let clientDataHash = Data(SHA256.hash(data: challenge))
        return try await service.attestKey(keyId, clientDataHash: clientDataHash)
    }
}
