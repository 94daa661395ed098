import Foundation
import Security

/// Small generic-password Keychain helper for the app's non-key secrets (the enrollment state
/// with its device bearer token, the biometric domain state).
///
/// `AfterFirstUnlockThisDeviceOnly`: readable in the background after the first unlock (a
/// grant list refresh should not fail on a locked phone), never backed up or migrated.
enum Keychain {
    static let service = "jp.shomei.app"

    static func set(_ value: Data, account: String) throws {
        delete(account: account)
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            kSecAttrAccessible as String: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly,
            kSecValueData as String: value,
        ]
        let status = SecItemAdd(query as CFDictionary, nil)
        guard status == errSecSuccess else {
            throw NSError(domain: NSOSStatusErrorDomain, code: Int(status))
        }
    }

    static func get(account: String) -> Data? {
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            kSecReturnData as String: true,
            kSecMatchLimit as String: kSecMatchLimitOne,
        ]
        var item: CFTypeRef?
        guard SecItemCopyMatching(query as CFDictionary, &item) == errSecSuccess else { return nil }
        return item as? Data
    }

    static func delete(account: String) {
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
        ]
        SecItemDelete(query as CFDictionary)
    }
}

/// The Authenticator's exported state, in the Keychain.
public enum EnrollmentStore {
    private static let account = "enrollment-state"

    public static func save(_ state: String) throws { try Keychain.set(Data(state.utf8), account: account) }
    public static func load() -> String? { Keychain.get(account: account).flatMap { String(data: $0, encoding: .utf8) } }
    public static func clear() { Keychain.delete(account: account) }
}
