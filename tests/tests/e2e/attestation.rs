//! Attestation policy end to end: the real `shomei serve` with a `[policy.attestation]`
//! config, the real desktop phone (a software key, which cannot attest), and the demo.

use shomei_core::api::ErrorCode;
use shomei_core::client::ClientError;
use shomei_tests::PhoneError;

use crate::server::{Server, Store, field};
use crate::world::Clinic;

/// Production-like: every platform must attest (with the allow-lists `require` needs).
const REQUIRE: &str = r#"
[policy.attestation]
mode = "require"

[[policy.attestation.android.apps]]
package = "jp.shomei.app"
signing_cert_sha256 = ["0000000000000000000000000000000000000000000000000000000000000000"]

[policy.attestation.ios]
app_ids = ["ABCDE12345.jp.shomei.app"]
"#;

#[tokio::test]
async fn under_require_the_desktop_phone_is_refused_with_attestation_invalid() {
    let mut clinic = Clinic::open_with_config(Store::Sqlite, REQUIRE);
    let practitioner = clinic.practitioner_id.clone();
    let code = clinic.enrollment_code(&practitioner);
    let mut phone = clinic.new_phone();
    let err = phone
        .enroll(
            &code.png.to_string_lossy(),
            &code.activation_password,
            "Sato's desktop phone",
        )
        .await
        .unwrap_err();
    match err {
        PhoneError::Client(ClientError::Rejected {
            status,
            code,
            detail,
        }) => {
            assert_eq!((status, code), (403, ErrorCode::AttestationInvalid));
            assert!(
                detail.contains("desktop platform cannot attest"),
                "{detail}"
            );
        }
        other => panic!("expected attestation_invalid, got {other:?}"),
    }
    assert!(
        phone.state().is_none(),
        "the phone must not think it is enrolled"
    );
    let devices = clinic.server.admin(&["device", "list"]);
    assert_eq!(
        devices.as_array().map(Vec::len),
        Some(0),
        "nothing stored: {devices}"
    );
}

#[tokio::test]
async fn under_allow_the_desktop_phone_enrolls_marked_unattested_and_signs_in() {
    let mut clinic =
        Clinic::open_with_config(Store::Sqlite, "[policy.attestation]\nmode = \"allow\"\n");
    let practitioner = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&practitioner).await;
    let devices = clinic.server.admin(&["device", "list"]);
    let device = &devices.as_array().unwrap()[0];
    assert_eq!(device["platform"], "desktop");
    assert_eq!(device["attestation"]["status"], "unattested", "{device}");
    assert_eq!(device["attestation"]["policy"], "allow");
    // Unattested does not mean second class under `allow`: the day goes on.
    let (_, token) = clinic.morning_login(&mut phone).await;
    assert!(!token.access_token.is_empty());
}

#[tokio::test]
async fn the_demo_says_its_policy_allows_the_desktop_phone_and_enrolls_it() {
    crate::world::phone_keystore();
    let server = Server::start_configured(Store::Sqlite, vec!["--demo".into()], None);
    let page = reqwest::get(format!("{}/demo", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("allows the desktop phone (shomei-phone), enrolled as unattested"),
        "{page}"
    );
    // The start-up output says it too (printed after "listening on"; the log is drained by a thread).
    let mut said = false;
    for _ in 0..100 {
        said = server.log_text().contains("allows the desktop phone");
        if said {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(said, "{}", server.log_text());
    let practitioners = server.admin(&["practitioner", "list"]);
    let practitioner = field(&practitioners.as_array().unwrap()[0], &["id"]);
    let code = server.admin(&["enrollment", "create", "--practitioner", &practitioner]);
    let dir = tempfile::tempdir().unwrap();
    let mut phone = shomei_tests::Phone::open(dir.path()).unwrap();
    phone
        .enroll(
            &field(&code, &["payload_url"]),
            &field(&code, &["activation_password"]),
            "demo desktop phone",
        )
        .await
        .expect("the demo's policy allows the desktop phone");
}
