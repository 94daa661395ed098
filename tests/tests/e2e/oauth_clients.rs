//! Off-the-shelf OAuth clients complete the EHR's morning login against the real server with
//! no Shomei code in the token exchange: the Rust `oauth2` crate's RFC 8628 flow and Python's
//! Authlib (tests/clients/authlib_ehr.py). Each discovers the endpoints from the issuer's RFC
//! 8414 metadata (the issuer CSC `info` names), the desktop phone approves, and the token each
//! one collects signs a prescription that verifies against the certificate.

use std::process::Stdio;

use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, ClientSecret, DeviceAuthorizationResponse, DeviceAuthorizationUrl,
    ExtraDeviceAuthorizationFields, Scope, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shomei_core::Payload;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::server::Store;
use crate::world::{Clinic, prescriptions, sign_and_verify};

/// The issuer's RFC 8414 metadata, found the way a CSC client finds it: `info.oauth2Issuer`.
async fn discover(base: &str) -> Value {
    let http = reqwest::Client::new();
    let info: Value = http
        .post(format!("{base}/csc/v2/info"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issuer = info["oauth2Issuer"]
        .as_str()
        .expect("info.oauth2Issuer")
        .to_owned();
    let meta: Value = http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], issuer.as_str());
    meta
}

/// The phone scans the URL the EHR renders as QR (`verification_uri_complete`) and approves
/// with the number the EHR shows.
async fn phone_approves(
    phone: &mut shomei_tests::Phone,
    verification_uri_complete: &str,
    number: u8,
) {
    let Payload::Login(login) = Payload::parse_ignoring_expiry(verification_uri_complete)
        .expect("the QR URL is a Shomei payload")
    else {
        panic!("not a login payload")
    };
    phone.open_login(&login).await.expect("login context");
    phone.approve(number).await.expect("approve");
}

/// Shomei's two extension fields of the device authorization response (docs/api.md): what the
/// EHR shows beside the QR. The crate keeps unknown fields here instead of dropping them.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct ShomeiFields {
    login_id: String,
    match_number: u8,
}
impl ExtraDeviceAuthorizationFields for ShomeiFields {}

#[tokio::test]
async fn rust_oauth2_crate_completes_the_device_grant_unmodified() {
    let mut clinic = Clinic::open_on(Store::Sqlite);
    let mut phone = clinic.enrolled_phone(&clinic.practitioner_id.clone()).await;
    let meta = discover(&clinic.server.url).await;
    let terminal = &clinic.terminal;

    let client = BasicClient::new(ClientId::new(terminal.client_id.clone()))
        .set_client_secret(ClientSecret::new(terminal.client_secret.clone()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(
                meta["device_authorization_endpoint"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
            .unwrap(),
        )
        .set_token_uri(TokenUrl::new(meta["token_endpoint"].as_str().unwrap().to_owned()).unwrap());
    let http = oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let details: DeviceAuthorizationResponse<ShomeiFields> = client
        .exchange_device_code()
        .add_scope(Scope::new("sign".into()))
        .request_async(&http)
        .await
        .expect("device authorization");
    let uri = details
        .verification_uri_complete()
        .expect("verification_uri_complete")
        .secret()
        .to_owned();
    phone_approves(&mut phone, &uri, details.extra_fields().match_number).await;

    // The crate's own polling loop (interval, slow_down, expiry) collects the token.
    let token = client
        .exchange_device_access_token(&details)
        .request_async(&http, tokio::time::sleep, None)
        .await
        .expect("token from the crate's device-code exchange");
    assert_eq!(token.token_type(), &oauth2::basic::BasicTokenType::Bearer);
    sign_and_verify(
        &clinic,
        terminal,
        token.access_token().secret(),
        &prescriptions(2),
    )
    .await;
}

/// The Python interpreter with Authlib: scripts/test installs a pinned Authlib into a venv and
/// names it in SHOMEI_AUTHLIB_PYTHON; otherwise `python3` from PATH.
fn authlib_python() -> Option<String> {
    let python = std::env::var("SHOMEI_AUTHLIB_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import authlib, requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some(python)
    } else if std::env::var_os("CI").is_some() {
        panic!("{python} cannot import authlib: scripts/test installs it (SHOMEI_AUTHLIB_PYTHON)");
    } else {
        eprintln!(
            "*** SKIPPED: Authlib e2e test ({python} cannot import authlib; bash scripts/test sets it up) ***"
        );
        None
    }
}

#[tokio::test]
async fn python_authlib_completes_the_device_grant_unmodified() {
    let Some(python) = authlib_python() else {
        return;
    };
    let mut clinic = Clinic::open_on(Store::Sqlite);
    let mut phone = clinic.enrolled_phone(&clinic.practitioner_id.clone()).await;
    let issuer = discover(&clinic.server.url).await["issuer"]
        .as_str()
        .unwrap()
        .to_owned();
    let terminal = &clinic.terminal;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/authlib_ehr.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .args([&issuer, &terminal.client_id, &terminal.client_secret])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the Authlib client");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let bounded = std::time::Duration::from_secs(60);

    let device: Value = serde_json::from_str(
        &tokio::time::timeout(bounded, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("device authorization line"),
    )
    .unwrap();
    phone_approves(
        &mut phone,
        device["verification_uri_complete"].as_str().unwrap(),
        device["match_number"].as_u64().unwrap() as u8,
    )
    .await;

    let token: Value = serde_json::from_str(
        &tokio::time::timeout(bounded, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("token line"),
    )
    .unwrap();
    let status = tokio::time::timeout(bounded, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "Authlib client: {token}");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(
        token["practitioner"]["id"],
        clinic.practitioner_id.as_str(),
        "the token names who approved"
    );
    sign_and_verify(
        &clinic,
        terminal,
        token["access_token"].as_str().unwrap(),
        &prescriptions(2),
    )
    .await;
}
