//! The practitioner's signing log over real HTTP (issue 14): enroll →
//! login → approve → sign (signHash and signDoc, with labels) → the phone
//! lists exactly those signatures, pages them, follows new ones (poll and
//! SSE), and every refusal has its typed problem and changes nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::common::*;

const SHA256: &str = "2.16.840.1.101.3.4.2.1";
const RSA_SHA256: &str = "1.2.840.113549.1.1.11";

fn digest(n: u8) -> [u8; 32] {
    let mut d = [0u8; 32];
    d[0] = n;
    d[31] = 0xA5;
    d
}

impl Env {
    async fn sign_hash_labelled(
        &self,
        token: &str,
        t: &(String, String),
        cred: &str,
        hashes: &[[u8; 32]],
        label: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut body = json!({ "credentialID": cred, "hashes": hashes.iter().map(|h| std64(h)).collect::<Vec<_>>(), "hashAlgorithmOID": SHA256, "signAlgo": RSA_SHA256 });
        if let Some(l) = label {
            body["label"] = json!(l);
        }
        self.csc("signatures/signHash", token, t, body).await
    }

    async fn sign_cms(
        &self,
        token: &str,
        t: &(String, String),
        cred: &str,
        h: &[u8; 32],
        label: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut body = json!({ "credentialID": cred, "documentDigests": [{ "hashes": [std64(h)], "hashAlgorithmOID": SHA256, "signature_format": "C", "signAlgo": RSA_SHA256 }] });
        if let Some(l) = label {
            body["label"] = json!(l);
        }
        self.csc("signatures/signDoc", token, t, body).await
    }

    /// `GET /v1/phone/signatures?<query>` with a device token.
    async fn log(&self, phone_token: &str, query: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}/v1/phone/signatures?{query}", self.base))
            .bearer_auth(phone_token)
            .send()
            .await
            .unwrap();
        let s = r.status();
        if s == StatusCode::OK {
            assert_eq!(r.headers()["cache-control"], "no-store");
        }
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn grant_id_of(&self, phone: &Phone) -> Vec<String> {
        let r = self
            .http
            .get(format!("{}/v1/phone/grants", self.base))
            .bearer_auth(&phone.token)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        v["grants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn digests(list: &Value) -> Vec<String> {
    list["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["digest"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn phone_lists_each_signature_with_terminal_format_digest_and_label() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let grant = env.grant_id_of(&phone).await.remove(0);
    assert_eq!(
        env.sign_hash_labelled(
            &token,
            &w.terminal,
            &w.credential,
            &[digest(1), digest(2)],
            Some("処方箋 山田太郎 #1")
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        env.sign_cms(
            &token,
            &w.terminal,
            &w.credential,
            &digest(3),
            Some("調剤結果 #2")
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        env.sign_hash_labelled(&token, &w.terminal, &w.credential, &[digest(4)], None)
            .await
            .0,
        StatusCode::OK
    );

    let (s, list) = env.log(&phone.token, &format!("grant={grant}")).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let got = digests(&list);
    // Newest first: the last call's digest leads; the two of one call share a time.
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], std64(&digest(4)));
    assert_eq!(got[1], std64(&digest(3)));
    let mut first_two = got[2..].to_vec();
    first_two.sort();
    assert_eq!(first_two, vec![std64(&digest(1)), std64(&digest(2))]);
    let cms = &list["signatures"][1];
    assert_eq!(cms["format"], "cms");
    assert_eq!(cms["label"], "調剤結果 #2");
    assert_eq!(cms["algorithm"], "rsa-pkcs1-sha256");
    assert_eq!(cms["terminal"]["name"], "EHR 1");
    assert_eq!(cms["terminal"]["id"], w.terminal.0.as_str());
    assert_eq!(cms["facility"]["name"], "Clinic A");
    assert_eq!(cms["credential_id"], w.credential.as_str());
    assert_eq!(cms["grant_id"], grant.as_str());
    assert!(
        list["signatures"][0].get("label").is_none(),
        "no label, no field"
    );
    assert_eq!(list["signatures"][2]["label"], "処方箋 山田太郎 #1");
    assert_eq!(list["signatures"][2]["format"], "hash");
    assert!(list.get("next_cursor").is_none());
    assert_eq!(list["more"], false);
    // The day view shows the same signatures; the audit entries carry the labels.
    let (_, day) = env.log(&phone.token, "").await;
    assert_eq!(digests(&day), got);
    let audit = env
        .http
        .get(format!("{}/admin/v1/audit/export", env.admin_base))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        audit.matches("処方箋 山田太郎 #1").count(),
        2,
        "one audit entry per signed hash carries the label"
    );
}

#[tokio::test]
async fn paging_walks_every_signature_once_and_since_returns_exactly_the_rest() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    for i in 0..7 {
        assert_eq!(
            env.sign_hash_labelled(&token, &w.terminal, &w.credential, &[digest(i)], None)
                .await
                .0,
            StatusCode::OK
        );
    }
    let (_, p1) = env.log(&phone.token, "limit=3").await;
    let watermark = p1["watermark"].as_u64().unwrap();
    assert_eq!(p1["more"], true);
    // Signatures made during the walk do not shift it.
    for i in 7..9 {
        env.sign_hash_labelled(&token, &w.terminal, &w.credential, &[digest(i)], None)
            .await;
    }
    let mut seen = digests(&p1);
    let mut cursor = p1["next_cursor"].as_str().unwrap().to_owned();
    loop {
        let (s, p) = env
            .log(&phone.token, &format!("limit=3&cursor={cursor}"))
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(p["watermark"].as_u64(), Some(watermark));
        seen.extend(digests(&p));
        match p["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..7).rev().map(|i| std64(&digest(i))).collect::<Vec<_>>()
    );
    // Following from the watermark: the two made meanwhile, oldest first, one at a time.
    let (_, f1) = env
        .log(&phone.token, &format!("since={watermark}&limit=1"))
        .await;
    assert_eq!(
        (digests(&f1), f1["more"].clone()),
        (vec![std64(&digest(7))], json!(true))
    );
    let (_, f2) = env
        .log(&phone.token, &format!("since={}&limit=1", f1["watermark"]))
        .await;
    assert_eq!(digests(&f2), vec![std64(&digest(8))]);
    let (_, f3) = env
        .log(&phone.token, &format!("since={}", f2["watermark"]))
        .await;
    assert!(digests(&f3).is_empty());
    assert_eq!(
        f3["watermark"], f2["watermark"],
        "nothing new: the watermark stays"
    );
}

#[tokio::test]
async fn another_practitioners_phone_sees_none_and_cannot_name_the_grant() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let grant = env.grant_id_of(&phone).await.remove(0);
    env.sign_hash_labelled(&token, &w.terminal, &w.credential, &[digest(1)], Some("x"))
        .await;
    let other = env
        .admin(
            "/admin/v1/practitioners",
            json!({ "display_name": "Dr B", "role": "doctor", "facility_ids": [w.facility] }),
        )
        .await;
    let other_phone = env.enroll(other["id"].as_str().unwrap()).await;
    let (s, day) = env.log(&other_phone.token, "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(digests(&day).is_empty());
    assert_eq!(day["watermark"], 0);
    assert_problem(
        &env.log(&other_phone.token, &format!("grant={grant}")).await,
        404,
        "grant_unknown",
    );
    // Unknown and malformed ids get the same answer.
    assert_problem(
        &env.log(
            &other_phone.token,
            "grant=00000000-0000-4000-8000-000000000000",
        )
        .await,
        404,
        "grant_unknown",
    );
    assert_problem(
        &env.log(&phone.token, "grant=not-a-uuid").await,
        404,
        "grant_unknown",
    );
    // A follower of p1's log from another practitioner's position is refused, not left waiting.
    let (_, mine) = env.log(&phone.token, "").await;
    let (s, v) = env
        .log(&other_phone.token, &format!("since={}", mine["watermark"]))
        .await;
    assert_problem(&(s, v), 400, "cursor_invalid");
}

#[tokio::test]
async fn device_tokens_that_are_missing_unknown_or_revoked_are_refused() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let r = env
        .http
        .get(format!("{}/v1/phone/signatures", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthorized");
    assert_problem(&env.log(&b64u(&[7u8; 32]), "").await, 401, "device_unknown");
    env.admin(
        &format!("/admin/v1/devices/{}/revoke", phone.device_id),
        json!({}),
    )
    .await;
    assert_problem(&env.log(&phone.token, "").await, 403, "device_revoked");
}

#[tokio::test]
async fn malformed_cursor_since_and_limit_get_their_typed_problems() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    for i in 0..3 {
        env.sign_hash_labelled(&token, &w.terminal, &w.credential, &[digest(i)], None)
            .await;
    }
    let (_, p) = env.log(&phone.token, "limit=1").await;
    let good = p["next_cursor"].as_str().unwrap().to_owned();
    for bad in [
        "xyz",
        "AAAA",
        "%21%21",
        &b64u(&[0u8; 24]),
        &b64u(&[0xff; 24]),
    ] {
        assert_problem(
            &env.log(&phone.token, &format!("cursor={bad}")).await,
            400,
            "cursor_invalid",
        );
    }
    // A cursor shaped right but from beyond this log's end.
    let mut ahead = vec![];
    ahead.extend_from_slice(&1_000_000i64.to_be_bytes());
    ahead.extend_from_slice(&1i64.to_be_bytes());
    ahead.extend_from_slice(&5i64.to_be_bytes());
    assert_problem(
        &env.log(&phone.token, &format!("cursor={}", b64u(&ahead)))
            .await,
        400,
        "cursor_invalid",
    );
    for bad in ["-1", "abc", "1.5", "99999999999"] {
        assert_problem(
            &env.log(&phone.token, &format!("since={bad}")).await,
            400,
            "cursor_invalid",
        );
    }
    assert_problem(
        &env.log(&phone.token, &format!("since=0&cursor={good}"))
            .await,
        400,
        "cursor_invalid",
    );
    for bad in ["0", "201", "x"] {
        assert_problem(
            &env.log(&phone.token, &format!("limit={bad}")).await,
            400,
            "bad_request",
        );
    }
    assert_problem(
        &env.log(&phone.token, "from=yesterday").await,
        400,
        "bad_request",
    );
    let grant = env.grant_id_of(&phone).await.remove(0);
    assert_problem(
        &env.log(
            &phone.token,
            &format!("grant={grant}&from=2026-01-01T00:00:00Z"),
        )
        .await,
        400,
        "bad_request",
    );
    // The good cursor still works after all that.
    assert_eq!(
        env.log(&phone.token, &format!("cursor={good}")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_labels_are_refused_with_label_invalid_and_sign_nothing() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let too_long = "あ".repeat(81);
    for bad in [
        "",
        too_long.as_str(),
        "line\nbreak",
        "tab\there",
        "nul\u{0}",
        "del\u{7f}",
        "c1\u{85}",
        "rtl\u{202E}fdp.exe",
        "iso\u{2066}",
        "sep\u{2028}",
    ] {
        assert_problem(
            &env.sign_hash_labelled(&token, &w.terminal, &w.credential, &[digest(1)], Some(bad))
                .await,
            400,
            "label_invalid",
        );
        assert_problem(
            &env.sign_cms(&token, &w.terminal, &w.credential, &digest(1), Some(bad))
                .await,
            400,
            "label_invalid",
        );
    }
    // A label that is not a string at all is a malformed body.
    let (s, v) = env.csc("signatures/signHash", &token, &w.terminal, json!({ "credentialID": w.credential, "hashes": [std64(&digest(1))], "signAlgo": RSA_SHA256, "label": 5 })).await;
    assert_problem(&(s, v), 400, "bad_request");
    // Not UTF-8: raw bytes, and an unpaired surrogate escape.
    let raw_bodies: [Vec<u8>; 2] = [
        [
            br#"{"credentialID":""#.as_slice(),
            w.credential.as_bytes(),
            br#"","hashes":[""#,
            std64(&digest(1)).as_bytes(),
            b"\"],\"signAlgo\":\"1.2.840.113549.1.1.11\",\"label\":\"Rx \xff\xfe\"}",
        ]
        .concat(),
        [
            br#"{"credentialID":""#.as_slice(),
            w.credential.as_bytes(),
            br#"","hashes":[""#,
            std64(&digest(1)).as_bytes(),
            br#""],"signAlgo":"1.2.840.113549.1.1.11","label":"Rx \ud800"}"#,
        ]
        .concat(),
    ];
    for body in raw_bodies {
        let r = env
            .http
            .post(format!("{}/csc/v2/signatures/signHash", env.base))
            .bearer_auth(&token)
            .header(
                "shomei-terminal-authorization",
                basic(&w.terminal.0, &w.terminal.1),
            )
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let s = r.status();
        assert_problem(&(s, r.json().await.unwrap()), 400, "label_invalid");
    }
    // Nothing was signed or recorded; the longest allowed label is fine.
    let (_, list) = env.log(&phone.token, "").await;
    assert!(digests(&list).is_empty());
    let longest = "薬".repeat(80);
    assert_eq!(
        env.sign_hash_labelled(
            &token,
            &w.terminal,
            &w.credential,
            &[digest(2)],
            Some(&longest)
        )
        .await
        .0,
        StatusCode::OK
    );
    let (_, list) = env.log(&phone.token, "").await;
    assert_eq!(list["signatures"][0]["label"], longest.as_str());
    let grants = env.admin_get("/admin/v1/grants").await;
    assert_eq!(
        grants.to_string().matches("\"signatures_made\":1").count(),
        1,
        "{grants}"
    );
}

#[tokio::test]
async fn an_ended_grant_keeps_its_signatures_listed() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let grant = env.grant_id_of(&phone).await.remove(0);
    env.sign_hash_labelled(
        &token,
        &w.terminal,
        &w.credential,
        &[digest(1), digest(2)],
        Some("a"),
    )
    .await;
    let r = env
        .http
        .delete(format!("{}/v1/phone/grants/{grant}", env.base))
        .bearer_auth(&phone.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_problem(
        &env.sign_hash_labelled(&token, &w.terminal, &w.credential, &[digest(3)], None)
            .await,
        401,
        "grant_revoked",
    );
    let (_, by_grant) = env.log(&phone.token, &format!("grant={grant}")).await;
    let (_, day) = env.log(&phone.token, "").await;
    assert_eq!(digests(&by_grant).len(), 2);
    assert_eq!(digests(&day), digests(&by_grant));
}

/// Reads SSE events (`event`, `id`, `data`) from a response until `n` named `want` arrived.
async fn read_events(
    r: &mut reqwest::Response,
    want: &str,
    n: usize,
) -> Vec<(String, String, String)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while out
        .iter()
        .filter(|(e, _, _): &&(String, String, String)| e == want)
        .count()
        < n
    {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("events in time")
            .unwrap()
            .expect("stream open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut ev, mut id, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    ev = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = v.trim().to_owned();
                }
            }
            if !ev.is_empty() {
                out.push((ev, id, data));
            }
        }
    }
    out
}

#[tokio::test]
async fn sse_follows_new_signatures_and_resumes_from_last_event_id() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    env.sign_hash_labelled(&token, &w.terminal, &w.credential, &[digest(1)], None)
        .await;
    let mut r = env
        .http
        .get(format!("{}/v1/phone/signatures/events", env.base))
        .bearer_auth(&phone.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let ready = read_events(&mut r, "ready", 1).await;
    let start: u64 = ready[0].1.parse().unwrap();
    env.sign_hash_labelled(
        &token,
        &w.terminal,
        &w.credential,
        &[digest(2)],
        Some("live"),
    )
    .await;
    let got = read_events(&mut r, "signature", 1).await;
    let sig = got.iter().find(|e| e.0 == "signature").unwrap();
    let entry: Value = serde_json::from_str(&sig.2).unwrap();
    assert_eq!(
        entry["digest"],
        std64(&digest(2)),
        "only the new one: the stream starts at now"
    );
    assert_eq!(entry["label"], "live");
    assert_eq!(sig.1, entry["seq"].to_string());
    assert!(entry["seq"].as_u64().unwrap() > start);
    drop(r);
    // Offline meanwhile: two more; reconnecting with Last-Event-ID delivers both, in order.
    env.sign_hash_labelled(
        &token,
        &w.terminal,
        &w.credential,
        &[digest(3), digest(4)],
        None,
    )
    .await;
    let mut r = env
        .http
        .get(format!("{}/v1/phone/signatures/events", env.base))
        .bearer_auth(&phone.token)
        .header("last-event-id", &sig.1)
        .send()
        .await
        .unwrap();
    let got = read_events(&mut r, "signature", 2).await;
    let ds: Vec<String> = got
        .iter()
        .filter(|e| e.0 == "signature")
        .map(|e| {
            serde_json::from_str::<Value>(&e.2).unwrap()["digest"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut expect = vec![std64(&digest(3)), std64(&digest(4))];
    let mut sorted = ds.clone();
    sorted.sort();
    expect.sort();
    assert_eq!(sorted, expect);
    // A revoked phone's stream ends with its problem.
    env.admin(
        &format!("/admin/v1/devices/{}/revoke", phone.device_id),
        json!({}),
    )
    .await;
    env.sign_hash_labelled(&token, &w.terminal, &w.credential, &[digest(5)], None)
        .await;
    let got = read_events(&mut r, "error", 1).await;
    let err = got.iter().find(|e| e.0 == "error").unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&err.2).unwrap()["code"],
        "device_revoked"
    );
    // A bad Last-Event-ID is refused before the stream starts.
    let r = env
        .http
        .get(format!("{}/v1/phone/signatures/events", env.base))
        .bearer_auth(&env.enroll(&w.practitioner).await.token)
        .header("last-event-id", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "cursor_invalid");
}
