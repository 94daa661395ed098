//! `GET /metrics` on the operator listener: after a real day (enroll →
//! logins → approve → sign) every counter moved by exactly what happened,
//! the text is well-formed Prometheus exposition (checked line by line
//! here, strictly), and no label carries an id, token or secret.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use shomei_core::Decision;

use crate::common::*;

/// One parsed exposition: `name{sorted labels}` → value, plus each family's TYPE.
#[derive(Debug, Default)]
struct Exposition {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

impl Exposition {
    /// The value of `name` with exactly `labels` (0 when the series does not exist yet).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .get(&series_key(name, labels))
            .copied()
            .unwrap_or(0.0)
    }
}

fn series_key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    l.sort();
    format!("{name}{{{}}}", l.join(","))
}

fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// The family a sample belongs to (histogram samples end in `_bucket`/`_sum`/`_count`).
fn family_of<'a>(name: &'a str, types: &BTreeMap<String, String>) -> Option<&'a str> {
    if types.contains_key(name) {
        return Some(name);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types.get(base).is_some_and(|t| t == "histogram")
        {
            return Some(base);
        }
    }
    None
}

/// Parses the Prometheus text format 0.0.4 strictly: HELP/TYPE lines well
/// formed, a TYPE before every sample of its family, names and label names
/// of the allowed characters, quoted label values with only `\\ \" \n`
/// escapes, float values; histogram buckets cumulative and `+Inf` = count.
fn parse(text: &str) -> Exposition {
    let mut e = Exposition::default();
    assert!(
        text.ends_with('\n'),
        "exposition does not end with a newline"
    );
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            let name = parts
                .next()
                .unwrap_or_else(|| panic!("bare comment: {line}"));
            let value = parts.next().unwrap_or_else(|| panic!("no text: {line}"));
            assert!(is_metric_name(name), "bad metric name in {line}");
            match kind {
                "HELP" => {}
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&value),
                        "bad type in {line}"
                    );
                    assert!(
                        e.types.insert(name.to_owned(), value.to_owned()).is_none(),
                        "TYPE twice: {line}"
                    );
                }
                _ => panic!("unknown comment {line}"),
            }
            continue;
        }
        assert!(!line.is_empty(), "empty line in the exposition");
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                (name, parse_labels(body, line))
            }
        };
        assert!(is_metric_name(name), "bad metric name in {line}");
        assert!(
            family_of(name, &e.types).is_some(),
            "sample before (or without) its TYPE: {line}"
        );
        let refs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(
            e.samples.insert(series_key(name, &refs), value).is_none(),
            "series twice: {line}"
        );
    }
    check_histograms(&e);
    e
}

fn parse_labels(body: &str, line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad label in {line}"));
        assert!(is_label_name(name), "bad label name {name:?} in {line}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => panic!("bad escape {other:?} in {line}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {line}"),
            }
        };
        out.push((name.to_owned(), value));
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    out
}

fn check_histograms(e: &Exposition) {
    for (family, t) in &e.types {
        if t != "histogram" {
            continue;
        }
        // Group buckets by their other labels.
        let mut by_series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for (key, v) in &e.samples {
            let Some(labels) = key.strip_prefix(&format!("{family}_bucket{{")) else {
                continue;
            };
            let labels = labels.strip_suffix('}').unwrap();
            let mut le = None;
            let mut others = Vec::new();
            for part in labels.split(',').filter(|p| !p.is_empty()) {
                match part.strip_prefix("le=") {
                    Some(b) => le = Some(b.trim_matches('"').to_owned()),
                    None => others.push(part),
                }
            }
            let le = le.unwrap_or_else(|| panic!("bucket without le: {key}"));
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            by_series
                .entry(others.join(","))
                .or_default()
                .push((bound, *v));
        }
        for (others, mut buckets) in by_series {
            buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{family}{{{others}}}: buckets not cumulative"
            );
            let inf = buckets.last().unwrap();
            assert!(inf.0.is_infinite(), "{family}{{{others}}}: no +Inf bucket");
            let count_key = format!("{family}_count{{{others}}}");
            assert_eq!(
                Some(&inf.1),
                e.samples.get(&count_key),
                "{family}{{{others}}}: +Inf bucket != count"
            );
        }
    }
}

async fn scrape(env: &Env) -> (String, Exposition) {
    let r = env
        .http
        .get(format!("{}/metrics", env.admin_base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        ct.starts_with("text/plain; version=0.0.4"),
        "content-type {ct}"
    );
    let text = r.text().await.unwrap();
    let parsed = parse(&text);
    (text, parsed)
}

const SIGN_HASH: &str = "/csc/v2/signatures/signHash";
const DECISION: &str = "/v1/phone/logins/{login_id}/decision";

#[tokio::test]
async fn a_signed_day_moves_each_counter_by_exactly_what_happened() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let (_, before) = scrape(&env).await;

    // One approved login (then two signHash calls: 1 hash, 3 hashes),
    // one denied, one approved with the wrong number.
    let token = env.grant(&w.terminal, &phone).await;
    for n in [1usize, 3] {
        let hashes: Vec<String> = (0..n).map(|i| std64(&[i as u8; 32])).collect();
        let (s, v) = env
            .csc(
                "signatures/signHash",
                &token,
                &w.terminal,
                json!({ "credentialID": w.credential, "hashes": hashes, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.113549.1.1.11" }),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let denied = env.start_login(&w.terminal).await;
    assert_eq!(
        env.decide(&phone, &denied, Decision::Deny, denied.number())
            .await
            .0,
        StatusCode::OK
    );
    let phished = env.start_login(&w.terminal).await;
    let wrong = if phished.number() == 10 { 11 } else { 10 };
    assert_problem(
        &env.decide(&phone, &phished, Decision::Approve, wrong).await,
        403,
        "number_mismatch",
    );

    let (text, after) = scrape(&env).await;
    let moved =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    assert_eq!(moved("shomei_logins_started_total", &[]), 3.0);
    assert_eq!(
        moved("shomei_logins_finished_total", &[("outcome", "approved")]),
        1.0
    );
    assert_eq!(
        moved("shomei_logins_finished_total", &[("outcome", "denied")]),
        1.0
    );
    assert_eq!(
        moved(
            "shomei_logins_finished_total",
            &[("outcome", "number_mismatch")]
        ),
        1.0
    );
    assert_eq!(moved("shomei_signatures_total", &[("format", "hash")]), 4.0);
    // Two signHash calls = two records, in one or two group commits.
    assert_eq!(moved("shomei_audit_batch_records_sum", &[]), 2.0);
    let commits = moved("shomei_audit_batch_records_count", &[]);
    assert!((1.0..=2.0).contains(&commits), "{commits} commits");
    assert_eq!(
        moved("shomei_audit_commit_duration_seconds_count", &[]),
        commits
    );
    assert_eq!(moved("shomei_audit_commit_failures_total", &[]), 0.0);

    let sign_ok = [
        ("listener", "public"),
        ("method", "POST"),
        ("route", SIGN_HASH),
        ("status", "200"),
    ];
    assert_eq!(moved("shomei_http_requests_total", &sign_ok), 2.0);
    let sign_latency = [
        ("listener", "public"),
        ("method", "POST"),
        ("route", SIGN_HASH),
    ];
    assert_eq!(
        moved("shomei_http_request_duration_seconds_count", &sign_latency),
        2.0
    );
    assert!(moved("shomei_http_request_duration_seconds_sum", &sign_latency) > 0.0);
    // Decisions: approve + deny answered 200, the wrong number 403 — under the route template.
    let decision = |status| {
        [
            ("listener", "public"),
            ("method", "POST"),
            ("route", DECISION),
            ("status", status),
        ]
    };
    assert_eq!(moved("shomei_http_requests_total", &decision("200")), 2.0);
    assert_eq!(moved("shomei_http_requests_total", &decision("403")), 1.0);
    assert_eq!(
        after.get(
            "shomei_build_info",
            &[("version", env!("CARGO_PKG_VERSION")), ("store", "sqlite")]
        ),
        1.0
    );

    // Nothing that identifies anyone or anything is in the text.
    for (what, value) in [
        ("login id", denied.id().to_owned()),
        ("login id", phished.id().to_owned()),
        ("device id", phone.device_id.to_string()),
        ("device token", phone.token.clone()),
        ("access token", token.clone()),
        ("practitioner id", w.practitioner.clone()),
        ("credential id", w.credential.clone()),
        ("terminal client id", w.terminal.0.clone()),
        ("terminal secret", w.terminal.1.clone()),
        ("operator token", env.token.clone()),
    ] {
        assert!(!text.contains(&value), "the metrics name a {what}: {value}");
    }
}

#[tokio::test]
async fn sign_doc_counts_each_signature_by_its_format() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let entry = json!({ "hashes": [std64(&[7u8; 32])], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signature_format": "C",
        "conformance_level": "Ades-B-B", "signAlgo": "1.2.840.113549.1.1.11", "signed_envelope_property": "Detached" });
    let (s, v) = env
        .csc(
            "signatures/signDoc",
            &token,
            &w.terminal,
            json!({ "credentialID": w.credential, "documentDigests": [entry.clone(), entry] }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, m) = scrape(&env).await;
    assert_eq!(m.get("shomei_signatures_total", &[("format", "cms")]), 2.0);
    assert_eq!(
        m.get("shomei_signatures_total", &[("format", "xades")]),
        0.0
    );
    assert_eq!(m.get("shomei_signatures_total", &[("format", "hash")]), 0.0);
}

#[tokio::test]
async fn a_refused_signature_is_not_counted_as_made() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let (s, _) = env
        .csc(
            "signatures/signHash",
            &token,
            &w.terminal,
            json!({ "credentialID": w.credential, "hashes": [std64(&[1u8; 31])], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.113549.1.1.11" }),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, m) = scrape(&env).await;
    assert_eq!(m.get("shomei_signatures_total", &[("format", "hash")]), 0.0);
    assert_eq!(m.get("shomei_audit_batch_records_count", &[]), 0.0);
    let refused = [
        ("listener", "public"),
        ("method", "POST"),
        ("route", SIGN_HASH),
        ("status", "400"),
    ];
    assert_eq!(m.get("shomei_http_requests_total", &refused), 1.0);
}

#[tokio::test]
async fn an_expired_login_is_counted_when_the_sweep_removes_it() {
    let env = Env::new().await;
    let w = env.world().await;
    env.start_login(&w.terminal).await;
    let app = env.app();
    app.clock.advance_ms(
        app.policy.login_ttl_s * 1000 + shomei_server::service::sweep::KEEP_EXPIRED_MS + 1000,
    );
    assert_eq!(app.sweep().await.unwrap().logins.len(), 1);
    let (_, m) = scrape(&env).await;
    assert_eq!(
        m.get("shomei_logins_finished_total", &[("outcome", "expired")]),
        1.0
    );
    assert_eq!(m.get("shomei_logins_started_total", &[]), 1.0);
}

#[tokio::test]
async fn the_waiting_gauge_counts_a_long_poll_until_the_decision() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let url = format!(
        "{}/v1/terminal/logins/{}/wait?timeout=30",
        env.base,
        login.id()
    );
    let waiter = tokio::spawn(
        env.http
            .get(url)
            .header("authorization", basic(&w.terminal.0, &w.terminal.1))
            .send(),
    );
    let mut waiting = 0.0;
    for _ in 0..500 {
        waiting = scrape(&env).await.1.get("shomei_waiting_terminals", &[]);
        if waiting == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(waiting, 1.0, "the long-poll never showed as waiting");
    assert_eq!(scrape(&env).await.1.get("shomei_waited_logins", &[]), 1.0);
    assert_eq!(
        env.decide(&phone, &login, Decision::Approve, login.number())
            .await
            .0,
        StatusCode::OK
    );
    let r = waiter.await.unwrap().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, m) = scrape(&env).await;
    assert_eq!(m.get("shomei_waiting_terminals", &[]), 0.0);
    assert_eq!(m.get("shomei_waited_logins", &[]), 0.0);
}

#[tokio::test]
async fn metrics_are_served_on_the_operator_listener_only() {
    let env = Env::new().await;
    let r = env
        .http
        .get(format!("{}/metrics", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // …and that refusal is itself counted, as an unmatched route.
    let (_, m) = scrape(&env).await;
    let unmatched = [
        ("listener", "public"),
        ("method", "GET"),
        ("route", "unmatched"),
        ("status", "404"),
    ];
    assert_eq!(m.get("shomei_http_requests_total", &unmatched), 1.0);
}

#[tokio::test]
async fn raw_paths_and_unknown_methods_never_become_label_values() {
    let env = Env::new().await;
    let probe = "QUJDREVGR0hJSktMTU5PUFFSU1RV";
    env.http
        .get(format!("{}/no/such/{probe}", env.base))
        .send()
        .await
        .unwrap();
    env.http
        .post(format!("{}/v1/phone/logins/{probe}/context", env.base))
        .send()
        .await
        .unwrap();
    let odd = reqwest::Method::from_bytes(b"BREW").unwrap();
    env.http
        .request(odd, format!("{}/healthz", env.base))
        .send()
        .await
        .unwrap();
    let (text, m) = scrape(&env).await;
    assert!(!text.contains(probe), "a raw path reached a label:\n{text}");
    assert!(!text.contains("BREW"), "an unknown method reached a label");
    let context = [
        ("listener", "public"),
        ("method", "POST"),
        ("route", "/v1/phone/logins/{login_id}/context"),
        ("status", "415"),
    ];
    assert_eq!(m.get("shomei_http_requests_total", &context), 1.0, "{text}");
    let brew = [
        ("listener", "public"),
        ("method", "other"),
        ("route", "/healthz"),
        ("status", "405"),
    ];
    assert_eq!(m.get("shomei_http_requests_total", &brew), 1.0, "{text}");
}

#[tokio::test]
async fn an_openmetrics_scraper_gets_openmetrics_text() {
    let env = Env::new().await;
    let r = env
        .http
        .get(format!("{}/metrics", env.admin_base))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text; version=1.0.0")
    );
    let text = r.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert!(
        text.contains("# TYPE shomei_logins_started counter\n"),
        "{text}"
    );
}
