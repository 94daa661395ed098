//! The public listener's connections on the wire (`http::connection`):
//! waiting requests (`events`, `wait`) are framed by the server itself,
//! everything else by hyper — and a client cannot tell: same status lines,
//! headers, framing, keep-alive, pipelining, limits and refusals. A
//! terminal that hangs up stops waiting at once. Raw TCP, so the bytes
//! themselves are checked.

use std::time::Duration;

use shomei_core::Decision;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use shomei_server::http::connection::HEAD_TIMEOUT;

use crate::common::*;
use crate::waiting::until_waiting;

/// One HTTP/1.1 answer as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// (lower-case name, value) in wire order.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// `transfer-encoding: chunked` (the body above is de-chunked).
    chunked: bool,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw connection to the public listener, with what was read past the
/// last answer.
struct Wire {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    async fn open(env: &Env) -> Wire {
        let addr = env.base.trim_start_matches("http://").to_owned();
        Wire { tcp: TcpStream::connect(addr).await.unwrap(), buf: Vec::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).await.unwrap();
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(30), self.tcp.read(&mut chunk))
            .await
            .expect("the server answered within 30 s")
            .unwrap();
        assert!(n > 0, "the server closed the connection mid-answer: {:?}", String::from_utf8_lossy(&self.buf));
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// Reads one whole answer (content-length or chunked body).
    async fn answer(&mut self) -> Answer {
        let (status, headers, head_len) = loop {
            let mut fields = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Response::new(&mut fields);
            if let httparse::Status::Complete(n) = r.parse(&self.buf).unwrap() {
                let headers = r
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8(h.value.to_vec()).unwrap()))
                    .collect::<Vec<_>>();
                break (r.code.unwrap(), headers, n);
            }
            self.fill().await;
        };
        self.buf.drain(..head_len);
        let mut a = Answer { status, headers, body: Vec::new(), chunked: false };
        if a.header("transfer-encoding") == Some("chunked") {
            a.chunked = true;
            loop {
                let line_end = loop {
                    if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    self.fill().await;
                };
                let size = usize::from_str_radix(std::str::from_utf8(&self.buf[..line_end]).unwrap(), 16).unwrap();
                while self.buf.len() < line_end + 2 + size + 2 {
                    self.fill().await;
                }
                a.body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                assert_eq!(&self.buf[line_end + 2 + size..line_end + 4 + size], b"\r\n", "chunk not closed by CRLF");
                self.buf.drain(..line_end + 4 + size);
                if size == 0 {
                    break;
                }
            }
        } else {
            let len: usize = a.header("content-length").expect("content-length or chunked").parse().unwrap();
            while self.buf.len() < len {
                self.fill().await;
            }
            a.body = self.buf.drain(..len).collect();
        }
        a
    }

    /// True when the server closed the connection (EOF) with nothing more to read.
    async fn closed_by_server(&mut self) -> bool {
        let mut chunk = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(30), self.tcp.read(&mut chunk)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

fn get(path: &str, terminal: &(String, String), extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nhost: shomei.test\r\nauthorization: {}\r\n{extra}\r\n",
        basic(&terminal.0, &terminal.1)
    )
    .into_bytes()
}

/// Every answer carries the headers hyper adds: `date`, and a length
/// that matches the body unless it is chunked.
fn assert_framed_like_hyper(a: &Answer) {
    assert!(a.header("date").is_some(), "no date header: {a:?}");
    if !a.chunked {
        assert_eq!(a.header("content-length"), Some(a.body.len().to_string().as_str()), "{a:?}");
    }
    assert_eq!(a.headers.iter().filter(|(n, _)| n == "content-length" || n == "transfer-encoding").count(), 1, "one framing header: {a:?}");
}

/// A login of `w`'s terminal the phone has approved.
async fn approved_login(env: &Env, w: &World) -> Login {
    let phone = env.enroll(&w.practitioner).await;
    let l = env.start_login(&w.terminal).await;
    let d = env.decide(&phone, &l, Decision::Approve, l.number()).await;
    assert_eq!(d.0, reqwest::StatusCode::OK, "{}", d.1);
    l
}

#[tokio::test]
async fn a_long_poll_answer_is_framed_like_hypers_and_the_connection_carries_on() {
    let env = Env::new().await;
    let w = env.world().await;
    let l = approved_login(&env, &w).await;
    let mut wire = Wire::open(&env).await;
    // a long-poll (served off hyper), then an ordinary request (hyper), on one connection
    wire.send(&get(&format!("/v1/terminal/logins/{}/wait?timeout=60", l.id()), &w.terminal, "")).await;
    let a = wire.answer().await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.body_text(), r#"{"status":"approved"}"#);
    assert_framed_like_hyper(&a);
    wire.send(b"GET /healthz HTTP/1.1\r\nhost: shomei.test\r\n\r\n").await;
    let h = wire.answer().await;
    assert_eq!(h.status, 200);
    assert_eq!(h.body_text(), r#"{"status":"ok"}"#);
    assert_framed_like_hyper(&h);
}

#[tokio::test]
async fn an_event_stream_is_chunked_ends_with_the_last_chunk_and_keeps_the_connection() {
    let env = Env::new().await;
    let w = env.world().await;
    let l = approved_login(&env, &w).await;
    let mut wire = Wire::open(&env).await;
    wire.send(&get(&format!("/v1/terminal/logins/{}/events", l.id()), &w.terminal, "accept: text/event-stream\r\n")).await;
    let a = wire.answer().await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some("text/event-stream"));
    assert!(a.chunked, "{a:?}");
    assert_framed_like_hyper(&a);
    assert_eq!(a.body_text(), "event: status\ndata: {\"status\":\"approved\"}\n\n");
    // keep-alive: the next waiting request on the same connection
    wire.send(&get(&format!("/v1/terminal/logins/{}/wait", l.id()), &w.terminal, "")).await;
    assert_eq!(wire.answer().await.body_text(), r#"{"status":"approved"}"#);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let env = Env::new().await;
    let w = env.world().await;
    let l = approved_login(&env, &w).await;
    let mut wire = Wire::open(&env).await;
    let mut three = get(&format!("/v1/terminal/logins/{}/wait", l.id()), &w.terminal, "");
    three.extend_from_slice(b"GET /healthz HTTP/1.1\r\nhost: shomei.test\r\n\r\n");
    three.extend_from_slice(&get(&format!("/v1/terminal/logins/{}/events", l.id()), &w.terminal, ""));
    wire.send(&three).await;
    assert_eq!(wire.answer().await.body_text(), r#"{"status":"approved"}"#);
    assert_eq!(wire.answer().await.body_text(), r#"{"status":"ok"}"#);
    assert!(wire.answer().await.body_text().contains(r#"data: {"status":"approved"}"#));
}

#[tokio::test]
async fn a_terminal_that_hangs_up_stops_waiting() {
    let env = Env::new().await;
    let w = env.world().await;
    for path in ["wait?timeout=60", "events"] {
        let l = env.start_login(&w.terminal).await;
        let mut wire = Wire::open(&env).await;
        wire.send(&get(&format!("/v1/terminal/logins/{}/{path}", l.id()), &w.terminal, "")).await;
        until_waiting(&env, l.id(), 1).await;
        drop(wire);
        until_waiting(&env, l.id(), 0).await;
    }
    assert_eq!(env.app().waiters.waited(), 0);
}

#[tokio::test]
async fn refusals_on_the_waiting_paths_are_the_same_problem_documents() {
    let env = Env::new().await;
    let w = env.world().await;
    let mut wire = Wire::open(&env).await;
    // no credentials: 401 with its challenge
    wire.send(b"GET /v1/terminal/logins/AAAAAAAAAAAAAAAAAAAAAA/wait HTTP/1.1\r\nhost: shomei.test\r\n\r\n").await;
    let a = wire.answer().await;
    assert_eq!(a.status, 401);
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
    assert!(a.header("www-authenticate").is_some_and(|c| c.starts_with("Basic")), "{a:?}");
    assert_framed_like_hyper(&a);
    // an unknown login: 404 login_unknown
    wire.send(&get("/v1/terminal/logins/AAAAAAAAAAAAAAAAAAAAAA/events", &w.terminal, "")).await;
    let a = wire.answer().await;
    assert_eq!(a.status, 404);
    assert!(a.body_text().contains("login_unknown"), "{}", a.body_text());
    // a bad query string: the same 400 problem as on any route
    wire.send(&get("/v1/terminal/logins/AAAAAAAAAAAAAAAAAAAAAA/wait?timeout=soon", &w.terminal, "")).await;
    let a = wire.answer().await;
    assert_eq!(a.status, 400);
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
    // a path that only ends like a waiting one: the router's 404, the same
    // as hyper's path answers for a path that does not
    wire.send(b"GET /v1/nothing/wait HTTP/1.1\r\nhost: shomei.test\r\n\r\n").await;
    let here = wire.answer().await;
    wire.send(b"GET /v1/nothing/waiting HTTP/1.1\r\nhost: shomei.test\r\n\r\n").await;
    let hyper = wire.answer().await;
    assert_eq!(here.status, 404);
    assert_eq!((here.status, here.header("content-type"), here.body_text()), (hyper.status, hyper.header("content-type"), hyper.body_text()));
}

#[tokio::test]
async fn heads_the_waiting_path_does_not_take_get_hypers_answers() {
    let env = Env::new().await;
    let w = env.world().await;
    let l = approved_login(&env, &w).await;
    let wait = format!("/v1/terminal/logins/{}/wait", l.id());
    // a head longer than the waiting path reads (4 KiB): still answered
    let mut wire = Wire::open(&env).await;
    wire.send(&get(&wait, &w.terminal, &format!("x-padding: {}\r\n", "p".repeat(6000)))).await;
    let a = wire.answer().await;
    assert_eq!((a.status, a.body_text()), (200, r#"{"status":"approved"}"#.to_owned()));
    // a (zero) Content-Length: hyper's, answered the same
    let mut wire = Wire::open(&env).await;
    wire.send(&get(&wait, &w.terminal, "content-length: 0\r\n")).await;
    assert_eq!(wire.answer().await.body_text(), r#"{"status":"approved"}"#);
    // Connection: close is honoured (hyper closes after the answer)
    let mut wire = Wire::open(&env).await;
    wire.send(&get(&wait, &w.terminal, "connection: close\r\n")).await;
    assert_eq!(wire.answer().await.body_text(), r#"{"status":"approved"}"#);
    assert!(wire.closed_by_server().await, "connection: close left the connection open");
    // more header fields than hyper allows: hyper's 431
    let mut wire = Wire::open(&env).await;
    let many: String = (0..120).map(|i| format!("x-f{i}: v\r\n")).collect();
    wire.send(&get(&wait, &w.terminal, &many)).await;
    assert_eq!(wire.answer().await.status, 431);
    // HTTP/1.0: hyper's
    let mut wire = Wire::open(&env).await;
    wire.send(format!("GET {wait} HTTP/1.0\r\nauthorization: {}\r\n\r\n", basic(&w.terminal.0, &w.terminal.1)).as_bytes()).await;
    let mut all = Vec::new();
    wire.tcp.read_to_end(&mut all).await.unwrap();
    let all = String::from_utf8_lossy(&all);
    assert!(all.starts_with("HTTP/1.0 200 OK\r\n"), "{all}");
    assert!(all.ends_with(r#"{"status":"approved"}"#), "{all}");
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let dir = tempfile::tempdir().unwrap();
    let running = shomei_server::run::start(config_in(dir.path())).await.unwrap();
    let addr = running.addr;
    // one connection that never sent a byte, one idle after a waiting request's answer
    let _silent = TcpStream::connect(addr).await.unwrap();
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /v1/terminal/logins/AAAAAAAAAAAAAAAAAAAAAA/wait HTTP/1.1\r\nhost: shomei.test\r\n\r\n").await.unwrap();
    let mut first = [0u8; 12];
    kept.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 401");
    tokio::time::timeout(Duration::from_secs(30), running.shutdown())
        .await
        .expect("shutdown returned although idle connections were open")
        .unwrap();
}

/// Reads until the server closes the connection; how long that took.
async fn closed_by_server(tcp: &mut TcpStream) -> Duration {
    let started = std::time::Instant::now();
    let mut sink = [0u8; 1024];
    let bound = HEAD_TIMEOUT + Duration::from_secs(15);
    loop {
        match tokio::time::timeout(bound, tcp.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {} // an answer sent before: read past it
            Err(_) => panic!("the connection was still open {bound:?} later"),
        }
    }
}

/// Slowloris: a client that sends part of a head and then nothing, or
/// nothing at all, is closed once the head's time is up — on the waiting
/// path, and by hyper for a connection idle after hyper's answer.
#[tokio::test]
async fn a_head_not_sent_whole_in_time_closes_the_connection() {
    let env = Env::new().await;
    let mut trickled = Wire::open(&env).await;
    trickled.send(b"GET /v1/terminal/logins/AAAAAAAAAAAAAAAAAAAAAA/wait HTTP/1.1\r\nhost: shomei.test\r\n").await;
    let mut silent = Wire::open(&env).await;
    let mut after_hyper = Wire::open(&env).await;
    after_hyper.send(b"GET /healthz HTTP/1.1\r\nhost: shomei.test\r\n\r\n").await;
    assert_eq!(after_hyper.answer().await.status, 200);
    let (a, b, c) = tokio::join!(closed_by_server(&mut trickled.tcp), closed_by_server(&mut silent.tcp), closed_by_server(&mut after_hyper.tcp));
    // Not refused at once: each waited out the head's time.
    for (what, took) in [("part of a waiting head", a), ("nothing", b), ("idle after hyper's answer", c)] {
        assert!(took >= HEAD_TIMEOUT - Duration::from_secs(2), "{what}: closed after {took:?}");
    }
    // The server still serves new connections.
    let mut fresh = Wire::open(&env).await;
    fresh.send(b"GET /healthz HTTP/1.1\r\nhost: shomei.test\r\n\r\n").await;
    assert_eq!(fresh.answer().await.status, 200);
}
