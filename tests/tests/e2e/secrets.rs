//! No secret in the logs: a whole day (enrollment with a wrong password first, the morning
//! login, signing, the phone's grant list, refused terminal and grant credentials, the audit)
//! against a server logging at `debug`, then every line it wrote is searched for every secret
//! the day handled — in the encodings they travel in.

use base64::Engine as _;
use shomei_core::Payload;

use crate::server::{Server, Store};
use crate::terminal::Terminal;
use crate::world::{Clinic, prescriptions, sign_and_verify};

fn encodings(name: &str, raw: &[u8]) -> Vec<(String, String)> {
    let b64u = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let std = base64::engine::general_purpose::STANDARD.encode(raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        (format!("{name} (b64u)"), b64u),
        (format!("{name} (base64)"), std),
        (format!("{name} (hex)"), hex),
    ]
}

fn b64u_decode(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("b64u")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_logged_at_debug_leaks_no_secret() {
    a_day_logged_at_debug(Vec::new()).await;
}

/// The same day with `--log-format json`: the JSON formatter writes the
/// same fields (and span fields) as structured values — none may be a secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_logged_at_debug_as_json_leaks_no_secret() {
    let log = a_day_logged_at_debug(vec!["--log-format".into(), "json".into()]).await;
    let json_debug = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "DEBUG" && v["fields"].is_object())
        .count();
    assert!(json_debug > 0, "no JSON debug line in the log:\n{log}");
}

/// Runs the day against a server started with `serve_args` at `debug`,
/// searches its log for every secret, and returns the log.
async fn a_day_logged_at_debug(serve_args: Vec<String>) -> String {
    let server = Server::start_logging(Store::Sqlite, serve_args, None, "debug");
    let mut clinic = Clinic::open_with(server);
    let practitioner_id = clinic.practitioner_id.clone();

    // Enrollment: a mistyped password first, then the right one.
    let code = clinic.enrollment_code(&practitioner_id);
    let mut phone = clinic.new_phone();
    let png = code.png.to_string_lossy().to_string();
    phone
        .enroll(&png, "WRNG-PASS-WORD", "Sato's desktop phone")
        .await
        .expect_err("wrong activation password");
    phone
        .enroll(&png, &code.activation_password, "Sato's desktop phone")
        .await
        .expect("enroll");
    let device_token = phone.enrollment().expect("enrolled").device_token.clone();

    // The morning login, the day's signatures, the phone's view.
    let (auth, token) = clinic.morning_login(&mut phone).await;
    sign_and_verify(
        &clinic,
        &clinic.terminal,
        &token.access_token,
        &prescriptions(3),
    )
    .await;
    phone.grants().await.expect("phone lists grants");

    // The typed-code fallback (protocol.md §4.6): a second login found by its user code, and
    // a code that names no login.
    let typed = clinic.terminal.start_login().await;
    phone.open_code(&typed.user_code).await.expect("the typed code resolves");
    let mistyped: String = typed
        .user_code
        .chars()
        .map(|c| match c {
            '-' => '-',
            'Z' => 'B',
            _ => 'Z',
        })
        .collect();
    phone.open_code(&mistyped).await.expect_err("a code of no login");

    // Refusals log too: a wrong client secret, a forged grant.
    let impostor = Terminal::new(
        &clinic.server.url,
        &clinic.terminal.client_id,
        "not-the-secret",
    );
    impostor
        .try_start_login()
        .await
        .expect_err("wrong client secret refused");
    clinic
        .terminal
        .credentials_list("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await
        .expect_err("forged grant refused");
    clinic.audit_verified_export();

    let Payload::Enrollment(enrollment) =
        Payload::parse_ignoring_expiry(&code.payload_url).expect("enrollment payload")
    else {
        panic!("not an enrollment payload")
    };
    let Payload::Login(login) =
        Payload::parse_ignoring_expiry(&auth.verification_uri_complete).expect("login payload")
    else {
        panic!("not a login payload")
    };
    let mut secrets: Vec<(String, String)> = vec![
        (
            "terminal client secret".into(),
            clinic.terminal.client_secret.clone(),
        ),
        (
            "activation password".into(),
            code.activation_password.clone(),
        ),
        (
            "activation password (typed without dashes)".into(),
            code.activation_password.replace('-', ""),
        ),
        (
            "enrollment payload fragment".into(),
            code.payload_url.split('#').nth(1).unwrap().to_string(),
        ),
        (
            "login payload fragment".into(),
            auth.verification_uri_complete
                .split('#')
                .nth(1)
                .unwrap()
                .to_string(),
        ),
    ];
    for (name, code) in [("user code", &typed.user_code), ("mistyped user code", &mistyped)] {
        secrets.push((name.into(), code.clone()));
        secrets.push((format!("{name} (letters)"), code.replace('-', "")));
    }
    secrets.extend(encodings("device token", &b64u_decode(&device_token)));
    secrets.extend(encodings("access token", &b64u_decode(&token.access_token)));
    secrets.extend(encodings("device code", &b64u_decode(&auth.device_code)));
    secrets.extend(encodings("login QR secret", login.secret.as_bytes()));
    secrets.extend(encodings(
        "enrollment QR secret",
        enrollment.secret.as_bytes(),
    ));

    let log = clinic.server.log_text();
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("DEBUG")),
        "the server really logged at debug:\n{log}"
    );
    for (name, value) in &secrets {
        assert!(
            value.len() >= 8,
            "{name} is too short to search for: {value:?}"
        );
        if let Some(line) = lines.iter().find(|l| l.contains(value.as_str())) {
            panic!("the server log contains the {name}: {line}");
        }
    }
    eprintln!(
        "searched {} log lines for {} secret encodings: none found",
        lines.len(),
        secrets.len()
    );
    log
}
