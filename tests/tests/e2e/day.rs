//! The happy path: one practitioner's working day, start to audit.

use crate::server::Store;
use crate::world::{Clinic, prescriptions, scan_terminal_qr, sign_and_verify};

/// The whole day on one store; `postgres.rs` runs it again on PostgreSQL.
pub async fn the_day(store: Store) {
    // The operator registers the clinic and hands Dr. Sato an enrollment code.
    let mut clinic = Clinic::open_on(store);
    let practitioner_id = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&practitioner_id).await;
    let device_id = Clinic::device_id(&phone);

    // Morning: the EHR terminal starts a login and shows the QR; the terminal listens on SSE.
    let auth = clinic.terminal.start_login().await;
    assert!(auth.expires_in > 0 && auth.expires_in <= 120, "short-lived login: {}", auth.expires_in);
    assert!((10..=99).contains(&auth.match_number), "two-digit match number");
    assert_eq!(auth.interval, 5);
    // The RFC 8628 user code, in its canonical spelling (protocol.md §4.6): BCDF-GHJK.
    let code = shomei_core::UserCode::parse(&auth.user_code).expect("the user code is well formed");
    assert_eq!(code.canonical(), auth.user_code, "the EHR shows the canonical spelling");
    assert!(!auth.verification_uri.is_empty(), "RFC 8628 verification_uri present");
    let sse_terminal = crate::terminal::Terminal::new(&clinic.terminal.base, &clinic.terminal.client_id, &clinic.terminal.client_secret);
    let login_id = auth.login_id.clone();
    let events = tokio::spawn(async move { sse_terminal.events(&login_id).await });

    // Before anything is approved, the token endpoint says "pending".
    let early = clinic.terminal.token(&auth.device_code).await.expect_err("no token before approval");
    assert_eq!(early.code(), "authorization_pending");

    // The phone decodes the QR from the PNG's pixels and shows who asks.
    let context = scan_terminal_qr(&clinic.terminal, &auth, &mut phone).await;
    assert_eq!(context.facility.name, "Sakura Clinic");
    assert_eq!(context.terminal.name, "Reception PC 1");
    let (scanned, _) = phone.pending().expect("the scanned login is pending on the phone");
    assert_eq!(scanned.to_url(), auth.verification_uri_complete, "the QR's pixels carry exactly the payload URL");

    // Dr. Sato picks the number the EHR shows and passes the "biometric".
    let decision = phone.approve(auth.match_number).await.expect("approval accepted");
    let grant = decision.grant.expect("an approval returns the grant");
    assert_eq!(grant.terminal.name, "Reception PC 1");

    // The terminal learns of it at once, on the wait endpoint and on SSE.
    assert_eq!(clinic.terminal.wait(&auth.login_id, 30).await, "approved");
    let statuses = events.await.expect("SSE task");
    assert_eq!(statuses.last().map(String::as_str), Some("approved"), "SSE closes on approved: {statuses:?}");

    let token = clinic.terminal.token(&auth.device_code).await.expect("token after approval");
    assert_eq!(token.token_type, "Bearer");
    assert!(token.expires_in > 3600, "a day-long grant: {} s", token.expires_in);
    assert_eq!(token.grant_id.to_string(), grant.id.to_string());
    // The device code is single use.
    let again = clinic.terminal.token(&auth.device_code).await.expect_err("device code is single use");
    assert!(matches!(again.code(), "invalid_grant" | "expired_token"), "second token call: {again:?}");

    // All day: prescriptions signed in batches with no further prompt.
    let listed = clinic.terminal.credentials_list(&token.access_token).await.expect("credentials/list");
    assert_eq!(listed, vec![clinic.credential_id.clone()]);
    let docs = prescriptions(12);
    sign_and_verify(&clinic, &clinic.terminal, &token.access_token, &docs[..5]).await;
    sign_and_verify(&clinic, &clinic.terminal, &token.access_token, &docs[5..]).await;

    // The e-prescriptions come back as XAdES (xmlsec1 verifies them), a referral letter and a
    // discharge summary as CMS (openssl verifies them).
    let xades_digests = crate::documents::sign_prescriptions_and_verify(&clinic, &clinic.terminal, &token.access_token, 3).await;
    let letters = vec![b"%PDF-1.7 referral letter".to_vec(), "退院時サマリー".as_bytes().to_vec()];
    let cms_digests = crate::documents::sign_documents_and_verify(&clinic, &clinic.terminal, &token.access_token, &letters).await;

    // The phone sees the grant and its count.
    let grants = phone.grants().await.expect("phone lists grants");
    let mine = grants.iter().find(|g| g.id.to_string() == grant.id.to_string()).expect("grant listed on the phone");
    assert_eq!(mine.signatures_made, 12 + 3 + 2);

    // Evening: the audit chain verifies and records the day.
    let export = clinic.audit_verified_export();
    for needle in [&device_id, &grant.id.to_string(), &clinic.credential_id, &auth.login_id] {
        assert!(export.contains(needle.as_str()), "audit export mentions {needle}");
    }
    let signature_records = docs.iter().filter(|d| export.contains(&hex_or_b64(&crate::world::sha256(d), &export))).count();
    assert_eq!(signature_records, docs.len(), "every signed hash is in the audit export");
    for d in xades_digests.iter().chain(&cms_digests) {
        assert!(export.contains(&hex_or_b64(d, &export)), "every signed document digest is in the audit export");
    }
    for format in ["X", "C"] {
        let (plain, escaped) = (format!(r#""format":"{format}""#), format!(r#"\"format\":\"{format}\""#));
        assert!(export.contains(&plain) || export.contains(&escaped), "the audit records signature format {format}");
    }
}

/// The audit export may show hashes as hex or base64; return the form it uses.
fn hex_or_b64(digest: &[u8], export: &str) -> String {
    use base64::Engine;
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if export.contains(&hex) {
        return hex;
    }
    let std = base64::engine::general_purpose::STANDARD.encode(digest);
    if export.contains(&std) {
        return std;
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practitioners_day_signs_every_prescription_and_the_audit_verifies() {
    the_day(Store::Sqlite).await;
}
