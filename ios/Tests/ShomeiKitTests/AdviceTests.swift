// NOT RUN HERE: there is no Swift toolchain on the Linux CI. Manual step on a Mac, after
// ./build-xcframework.sh:
//   xcodebuild test -scheme Shomei-Package -destination 'platform=iOS Simulator,name=iPhone 15'
// (docs/mobile.md, "What was compiled and run where").
import ShomeiMobile
import XCTest
@testable import ShomeiKit

/// The pure failure mapping of AppModel (same rules as Android's FailureAdvice, which is
/// JVM-tested): what the user reads and what the app offers.
@MainActor
final class AdviceTests: XCTestCase {
    func testRevokedUnknownOrUnverifiableDeviceIsOfferedReEnrollment() {
        for code in ["device_revoked", "device_unknown", "signature_invalid"] {
            let advice = AppModel.advice(for: AuthenticatorError.Rejected(status: 403, code: code, detail: "d"))
            guard case .reEnroll = advice.offer else { return XCTFail("\(code) must offer re-enrollment") }
            XCTAssertFalse(advice.forgetNow)
        }
    }

    func testOtherRefusalsOfferNothing() {
        let advice = AppModel.advice(for: AuthenticatorError.Rejected(status: 403, code: "number_mismatch", detail: "d"))
        guard case .none = advice.offer else { return XCTFail("number_mismatch must not offer re-enrollment") }
    }

    func testInvalidatedKeyIsForgottenAtOnce() {
        XCTAssertTrue(AppModel.advice(for: AuthenticatorError.KeyInvalidated).forgetNow)
    }

    func testKeyFailureReasonIsNeverShown() {
        let trace = "NSInternalInconsistencyException\n0 CoreFoundation 0x1 __exceptionPreprocess"
        let advice = AppModel.advice(for: AuthenticatorError.KeyFailed(reason: trace))
        XCTAssertFalse(advice.message.contains("CoreFoundation"))
    }

    func testTypedCodeRefusalsSayWhatToDoAndNeverOfferReEnrollment() {
        for code in ["login_unknown", "login_expired", "login_already_decided", "practitioner_not_allowed", "user_code_invalid", "rate_limited"] {
            let advice = AppModel.advice(for: AuthenticatorError.Rejected(status: 404, code: code, detail: "d"))
            guard case .none = advice.offer else { return XCTFail("\(code) must not offer re-enrollment") }
            XCTAssertFalse(advice.message.contains("サーバーが拒否しました"), code)
        }
        let typo = AppModel.advice(for: AuthenticatorError.InvalidUserCode(reason: "'0' (character 9) is not in a code"))
        XCTAssertTrue(typo.message.contains("character 9"))
    }

    func testShownReasonIsItsFirstLineAtMost160Characters() {
        XCTAssertEqual(AppModel.firstLine(String(repeating: "x", count: 300) + "\nsecond").count, 160)
        XCTAssertEqual(AppModel.firstLine("one\ntwo"), "one")
    }
}
