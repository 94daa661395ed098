//! The public listener's connections: hyper serves HTTP/1.1, except the
//! requests that wait — a terminal's `events` (SSE) and `wait`
//! (long-poll), the phone's signature events, the demo page's events —
//! which hold their connection for up to an hour with nothing to say, and
//! are served here in a few hundred bytes per connection.
//!
//! Why: a hyper HTTP/1 connection keeps an 8 KiB read buffer and an 8 KiB
//! header write buffer for its whole life (neither can be configured below
//! 8 KiB), and reserves a second read buffer to watch for the peer's close
//! while the request head (still held by the handler) pins the first. With
//! the connection task, axum's boxed futures and the waiter's state that
//! came to ≈35 KB allocated (≈23 KiB resident) per waiting terminal: 250 MiB
//! for 10,000 of them (docs/performance.md, "Waiting terminals' memory").
//!
//! What is served here is narrow by construction: an HTTP/1.1 `GET` whose
//! whole head arrives within [`HEAD_MAX`] bytes, parses, names a path ending
//! in `/events` or `/wait`, and carries no body framing (`Content-Length`,
//! `Transfer-Encoding`), no `Expect`, no `Upgrade` and no `Connection` other
//! than `keep-alive`. Anything else — including every head this parser does
//! not accept — goes to hyper with the bytes already read, so hyper's parser,
//! limits and error answers apply to it exactly as before. A waiting request
//! goes through the same axum `Router` as any other (same handlers, layers,
//! problem documents, metrics, `ConnectInfo`); its answer is framed the way
//! hyper frames one (status line, the handler's headers, `content-length`
//! or `transfer-encoding: chunked`, `date`), flushed as soon as the body has
//! nothing more ready. While the answer is pending the connection is read
//! for the peer's close, as hyper does: a terminal that goes away drops its
//! waiter at once. Keep-alive continues on the same connection (the next
//! request again here or, if it is not a waiting one, through hyper).
//!
//! A request head must arrive whole within [`HEAD_TIMEOUT`] of when the
//! connection starts waiting for it (accepted, or its last answer sent), on
//! both paths: a client that trickles a head, or opens a connection and
//! says nothing, is closed instead of holding the connection for ever. A
//! head handed to hyper part-way (over [`HEAD_MAX`] bytes) gets hyper's own
//! timer of the same length from then: at most twice [`HEAD_TIMEOUT`] in all.
//!
//! Shutdown is hyper's graceful one: stop accepting, close idle
//! connections, let answers in flight finish, then return.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version, header};
use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::sync::watch;
use tower::ServiceExt as _;

/// A waiting request's head must arrive within this many bytes; a longer
/// one is handed to hyper (whose own limit is far larger).
pub const HEAD_MAX: usize = 4096;
/// hyper's default limit of request header fields; a head with more is
/// hyper's to refuse (431).
const MAX_HEADERS: usize = 100;
/// First read of a request head (grown up to [`HEAD_MAX`] if needed).
const HEAD_READ: usize = 1024;
/// Longest wait for a whole request head (hyper's own default; before this,
/// neither path had one, as no timer was given to hyper).
pub const HEAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting and waits for the open connections to finish (idle ones are
/// closed, answers in flight are completed).
pub async fn serve<L>(mut listener: L, router: Router, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a receiver; `closed()` = all finished.
    let (open_tx, open_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        let (router, stop, open) = (router.clone(), stop_rx.clone(), open_rx.clone());
        tokio::spawn(async move {
            serve_connection(io, addr, router, stop).await;
            drop(open);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(open_rx);
    open_tx.closed().await;
    Ok(())
}

/// One accepted connection: waiting requests here, the rest through hyper.
async fn serve_connection<I>(mut io: I, addr: SocketAddr, router: Router, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Bytes read and not yet consumed (a head being read, or the start of
    // the next request sent while an answer was pending).
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let head_due = tokio::time::sleep(HEAD_TIMEOUT);
        let mut head_due = std::pin::pin!(head_due);
        let (req, head_len) = loop {
            match parse_head(&buf) {
                Head::Waiting(req, len) => break (req, len),
                Head::Partial if buf.len() < HEAD_MAX => {}
                Head::Partial | Head::Other => {
                    // (boxed: hyper's connection state is large and only
                    // the connections that need it should carry it)
                    return Box::pin(serve_with_hyper(io, buf, addr, router, stop)).await;
                }
            }
            if buf.capacity() - buf.len() < HEAD_READ / 2 {
                buf.reserve(if buf.is_empty() { HEAD_READ } else { buf.len() });
            }
            let idle = buf.is_empty();
            let read = tokio::select! {
                read = io.read_buf(&mut buf) => Some(read),
                // At shutdown an idle connection closes; a request being
                // read is still answered.
                _ = stop.wait_for(|s| *s), if idle => return,
                () = &mut head_due => None,
            };
            match read {
                Some(Ok(0) | Err(_)) => return,
                Some(Ok(_)) => {}
                None => {
                    tracing::debug!(%addr, read = buf.len(), "no whole request head in time: closing");
                    let _ = io.shutdown().await;
                    return;
                }
            }
        };
        buf.drain(..head_len);
        if buf.is_empty() {
            // nothing pipelined: do not keep the head's buffer while waiting
            buf = Vec::new();
        }
        let reusable = matches!(answer(&mut io, &mut buf, req, addr, &router).await, Ok(true));
        let stopping = *stop.borrow();
        if !reusable || stopping {
            let _ = io.shutdown().await;
            return;
        }
    }
}

/// What the bytes read so far hold.
#[expect(clippy::large_enum_variant, reason = "returned by parse_head and matched at once: boxing the request would add an allocation per waiting connection, the thing this module saves")]
enum Head {
    /// Not a whole head yet.
    Partial,
    /// A waiting request this module serves, and its head's length.
    Waiting(Request<Body>, usize),
    /// Anything else: hyper's.
    Other,
}

/// Whether `path` (with its query) is one of the waiting endpoints'. Only
/// an optimization: the `Router` still decides what the request is (a
/// path that only looks like one gets the same 404 as through hyper).
fn is_waiting_path(path: &str) -> bool {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    path.ends_with("/events") || path.ends_with("/wait")
}

fn parse_head(buf: &[u8]) -> Head {
    const GET: &[u8] = b"GET /";
    let n = buf.len().min(GET.len());
    if buf[..n] != GET[..n] {
        return Head::Other;
    }
    if n < GET.len() {
        return Head::Partial;
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut fields);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Other,
    };
    let (Some(1), Some("GET"), Some(path)) = (parsed.version, parsed.method, parsed.path) else {
        return Head::Other;
    };
    if !path.starts_with('/') || !is_waiting_path(path) {
        return Head::Other;
    }
    // One allocation for the whole head; header values and the path are
    // slices of it (as hyper does with its read buffer, but sized to the head).
    let head = Bytes::copy_from_slice(&buf[..len]);
    // (httparse's slices point into `buf`; the same range of `head`)
    let shared = |part: &[u8]| {
        let at = part.as_ptr() as usize - buf.as_ptr() as usize;
        head.slice(at..at + part.len())
    };
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for field in parsed.headers.iter() {
        let Ok(name) = HeaderName::from_bytes(field.name.as_bytes()) else { return Head::Other };
        let framing = name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING || name == header::EXPECT || name == header::UPGRADE;
        if framing || (name == header::CONNECTION && !field.value.trim_ascii().eq_ignore_ascii_case(b"keep-alive")) {
            return Head::Other;
        }
        let Ok(value) = HeaderValue::from_maybe_shared(shared(field.value)) else { return Head::Other };
        headers.append(name, value);
    }
    let Ok(uri) = Uri::from_maybe_shared(shared(path.as_bytes())) else { return Head::Other };
    let mut req = Request::new(Body::empty());
    *req.method_mut() = Method::GET;
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = headers;
    Head::Waiting(req, len)
}

/// How the body of an answer is delimited on the wire.
#[derive(Clone, Copy, PartialEq)]
enum Framing {
    /// No body (204, 304).
    Empty,
    Length(u64),
    Chunked,
}

/// Calls the router and writes its answer. `Ok(true)`: the connection may
/// carry another request. While the answer is pending the connection is
/// read for the peer's close (then everything is dropped, the waiter with
/// it); bytes of a next request are kept in `pipelined`.
async fn answer<I>(io: &mut I, pipelined: &mut Vec<u8>, mut req: Request<Body>, addr: SocketAddr, router: &Router) -> std::io::Result<bool>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    req.extensions_mut().insert(ConnectInfo(addr));
    let call = router.clone().oneshot(req);
    let response = tokio::select! {
        r = call => match r {
            Ok(r) => r,
            Err(never) => match never {},
        },
        _ = peer_gone(io, pipelined) => return Ok(false),
    };
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    let framing = if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED || status.is_informational() {
        Framing::Empty
    } else {
        match body.size_hint().exact() {
            Some(n) => Framing::Length(n),
            None => Framing::Chunked,
        }
    };
    let keep_alive = !parts.headers.get_all(header::CONNECTION).iter().any(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let mut out = encode_head(status, &parts.headers, framing);
    drop(parts);
    let mut left = match framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
        // Write what is ready before waiting for more of the body.
        let frame = match futures::FutureExt::now_or_never(frame) {
            Some(frame) => frame,
            None => {
                if !out.is_empty() {
                    io.write_all(&out).await?;
                    io.flush().await?;
                    out = Vec::new();
                }
                tokio::select! {
                    frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)) => frame,
                    _ = peer_gone(io, pipelined) => return Ok(false),
                }
            }
        };
        let data = match frame {
            None => break,
            // hyper aborts the connection on a body error; so do we.
            Some(Err(_)) => return Ok(false),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_trailers) => continue,
            },
        };
        if data.is_empty() {
            continue;
        }
        match framing {
            Framing::Empty => {}
            Framing::Length(_) => {
                if data.len() as u64 > left {
                    return Ok(false);
                }
                left -= data.len() as u64;
                out.extend_from_slice(&data);
            }
            Framing::Chunked => {
                out.extend_from_slice(format!("{:X}\r\n", data.len()).as_bytes());
                out.extend_from_slice(&data);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    io.write_all(&out).await?;
    io.flush().await?;
    // A body shorter than its length: the peer cannot find the next answer.
    Ok(keep_alive && left == 0)
}

/// The status line and header block, as hyper writes them: lower-case
/// names in the handler's order, then the framing header, then `date`
/// unless the handler set one. Framing headers a handler set are replaced
/// by the framing the body has.
fn encode_head(status: StatusCode, headers: &HeaderMap, framing: Framing) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + headers.len() * 40);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        Framing::Empty => {}
        Framing::Length(n) => out.extend_from_slice(format!("content-length: {n}\r\n").as_bytes()),
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    if !headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Completes when the peer closes (or the connection fails) while an
/// answer is pending. Bytes the peer sends meanwhile (its next request)
/// are kept; after the first of them the connection is no longer read
/// until the answer is written, as hyper does.
async fn peer_gone<I: AsyncRead + Unpin>(io: &mut I, pipelined: &mut Vec<u8>) {
    if !pipelined.is_empty() {
        return std::future::pending().await;
    }
    let mut probe = [0u8; 64];
    match io.read(&mut probe).await {
        Ok(0) | Err(_) => {}
        Ok(n) => {
            pipelined.extend_from_slice(&probe[..n]);
            std::future::pending().await
        }
    }
}

/// Hands the connection to hyper (as `axum::serve` would have), with the
/// bytes already read in front of the stream.
async fn serve_with_hyper<I>(io: I, read: Vec<u8>, addr: SocketAddr, router: Router, mut stop: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = tower::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(addr));
        router.clone().oneshot(req.map(Body::new))
    });
    let io = hyper_util::rt::TokioIo::new(Replay { read: Bytes::from(read), io });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(io, hyper_util::service::TowerToHyperService::new(service))
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

/// A stream whose first bytes were already read: they are read again first.
struct Replay<I> {
    read: Bytes,
    io: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Replay<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if !self.read.is_empty() {
            let n = self.read.len().min(buf.remaining());
            buf.put_slice(&self.read.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Replay<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(head: &[u8]) -> Option<(Request<Body>, usize)> {
        match parse_head(head) {
            Head::Waiting(req, len) => Some((req, len)),
            _ => None,
        }
    }

    #[test]
    fn a_waiting_get_is_taken_with_its_headers_and_length() {
        let head = b"GET /v1/terminal/logins/L/wait?timeout=5 HTTP/1.1\r\nHost: a\r\nAuthorization: Basic eA==\r\n\r\nGET /next";
        let (req, len) = waiting(head).expect("taken");
        assert_eq!(len, head.len() - b"GET /next".len(), "the pipelined rest is not part of the head");
        assert_eq!(req.uri().path(), "/v1/terminal/logins/L/wait");
        assert_eq!(req.uri().query(), Some("timeout=5"));
        assert_eq!(req.headers()["authorization"], "Basic eA==");
        assert_eq!(req.version(), Version::HTTP_11);
    }

    #[test]
    fn an_incomplete_head_is_read_further() {
        for head in [&b""[..], b"GE", b"GET /v1/terminal/logins/L/events HTTP/1.1\r\nHost: a\r\n"] {
            assert!(matches!(parse_head(head), Head::Partial), "{:?}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn everything_but_a_plain_waiting_get_is_hypers() {
        for head in [
            &b"POST /v1/terminal/logins/L/wait HTTP/1.1\r\n\r\n"[..],
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\n\r\n",
            b"GET /v1/terminal/logins/L/wait HTTP/1.0\r\n\r\n",
            b"GET /v1/terminal/logins/L/wait HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            b"GET /v1/terminal/logins/L/wait HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /v1/terminal/logins/L/wait HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            b"GET /v1/terminal/logins/L/wait HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"GET /v1/terminal/logins/L/wait HTTP/1.1\r\nConnection: close\r\n\r\n",
            b"GET /v1/terminal/logins/L/wait HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET http://a/v1/terminal/logins/L/wait HTTP/1.1\r\n\r\n",
        ] {
            assert!(matches!(parse_head(head), Head::Other), "{:?}", String::from_utf8_lossy(head));
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
        let head = format!("GET /v1/terminal/logins/L/wait HTTP/1.1\r\n{many}\r\n");
        assert!(matches!(parse_head(head.as_bytes()), Head::Other), "more fields than hyper allows");
        assert!(waiting(b"GET /v1/terminal/logins/L/wait HTTP/1.1\r\nConnection: keep-alive\r\n\r\n").is_some());
    }
}
