import Foundation
import Security

/// Small generic-password Keychain helper for the app's non-key secrets (the enrollment state
/// with its device bearer token, the biometric domain state).
///
/// `AfterFirstUnlockThisDeviceOnly`: readable in the background after the first unlock (a
/// grant list refresh should not fail on a locked phone), never backed up or migrated.
enum Keychain {
    static let service = "jp.shomei.app"

    /// Replaces the item in place (SecItemUpdate), or adds it: never a moment without it.
    static func set(_ value: Data, account: String) throws {
        let match: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
        ]
        let update: [String: Any] = [
            kSecValueData as String: value,
            kSecAttrAccessible as String: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly,
        ]
        var status = SecItemUpdate(match as CFDictionary, update as CFDictionary)
        if status == errSecItemNotFound {
            status = SecItemAdd(match.merging(update) { $1 } as CFDictionary, nil)
        }
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

/// The live device key's tag and the Authenticator's exported state, in one Keychain item,
/// so the tag and the state that uses it are written together (the enrollment "swap").
public enum EnrollmentStore {
    private static let account = "enrollment-state"
    private static let format = "shomei-enrollment-v2"

    public struct Stored: Equatable {
        public let keyTag: String
        public let state: String
    }

    public static func save(keyTag: String, state: String) throws {
        precondition(!keyTag.contains("\n"), "tag must be one line")
        try Keychain.set(Data("\(format)\n\(keyTag)\n\(state)".utf8), account: account)
    }

    public static func load() -> Stored? {
        guard let data = Keychain.get(account: account), let text = String(data: data, encoding: .utf8) else { return nil }
        let parts = text.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == format else { return nil }
        return Stored(keyTag: String(parts[1]), state: String(parts[2]))
    }

    public static func clear() { Keychain.delete(account: account) }
}
