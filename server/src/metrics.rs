//! What an operator's Prometheus scrapes from `GET /metrics` (operator
//! listener only): requests, logins, signatures, the audit group commit
//! and the terminals waiting right now.
//!
//! Why one registry per [`App`](crate::service::App) rather than a global
//! one: the test binary runs many servers in one process, and each must
//! count only its own traffic. Why these labels and no others: every label
//! value comes from a small closed set — the route *template* (never the
//! path, which carries login ids), a method from a fixed list, the status
//! code, a login outcome, a signature format. No id, token, secret or
//! practitioner identifier can reach a label, so the series count stays
//! bounded whatever clients send (and a scrape leaks nothing personal).
//!
//! Encoded as the Prometheus text format 0.0.4 (what every scraper reads),
//! or as OpenMetrics 1.0 when the scraper asks for it in `Accept`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// `Content-Type` of the Prometheus text format (the default answer).
pub const PROMETHEUS_TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// `Content-Type` of OpenMetrics text (answered when `Accept` names it).
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which listener served a request.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Listener {
    Public,
    Admin,
}

impl Listener {
    fn as_str(self) -> &'static str {
        match self {
            Listener::Public => "public",
            Listener::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    listener: &'static str,
    method: &'static str,
    /// The route template (`/v1/phone/logins/{id}/decision`), or
    /// `unmatched` for requests no route took (404s, probes).
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    listener: &'static str,
    method: &'static str,
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FormatLabels {
    format: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    store: &'static str,
}

/// How a login ended (the `outcome` label of `shomei_logins_finished_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The practitioner approved on the phone: a grant was issued.
    Approved,
    /// The practitioner denied on the phone.
    Denied,
    /// The phone approved with the wrong number (the phishing signal):
    /// the login was consumed as denied.
    NumberMismatch,
    /// The practitioner is not allowed at the terminal's facility.
    NotAllowed,
    /// Nobody decided before it expired (counted when the sweep removes
    /// it, an hour after expiry).
    Expired,
}

impl LoginOutcome {
    fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Approved => "approved",
            LoginOutcome::Denied => "denied",
            LoginOutcome::NumberMismatch => "number_mismatch",
            LoginOutcome::NotAllowed => "not_allowed",
            LoginOutcome::Expired => "expired",
        }
    }
}

/// What kind of signature was returned (the `format` label of
/// `shomei_signatures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureKind {
    /// A raw signature value from `signatures/signHash` (one per hash).
    Hash,
    /// A XAdES signature element from `signatures/signDoc`.
    Xades,
    /// A CMS SignedData from `signatures/signDoc`.
    Cms,
}

impl SignatureKind {
    fn as_str(self) -> &'static str {
        match self {
            SignatureKind::Hash => "hash",
            SignatureKind::Xades => "xades",
            SignatureKind::Cms => "cms",
        }
    }

    /// From the audit record's `signature_format` (`X` / `C`).
    pub fn from_format(f: &str) -> Option<SignatureKind> {
        match f {
            "X" => Some(SignatureKind::Xades),
            "C" => Some(SignatureKind::Cms),
            _ => None,
        }
    }
}

/// The metric families of one server.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    logins_started: Counter,
    logins_finished: Family<OutcomeLabels, Counter>,
    signatures: Family<FormatLabels, Counter>,
    audit_batch_records: Histogram,
    audit_commit_seconds: Histogram,
    audit_commit_failures: Counter,
    waiting_terminals: Gauge,
    waited_logins: Gauge,
    /// Replica fan-out (PostgreSQL only; registered only there).
    replica: ReplicaMetrics,
}

/// The replica fan-out's series (issue 12): how late other replicas'
/// changes arrive, how many, and how often the listener lost its connection.
#[derive(Default)]
struct ReplicaMetrics {
    lag_seconds: Option<Histogram>,
    notices: Family<KindLabels, Counter>,
    reconnects: Counter,
    connected: Gauge,
    backstop_wakes: Counter,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~65 s: signHash is milliseconds, a long-poll `wait` up to its
    // bound (the waiting routes are slow on purpose).
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers every family (`store`: the backend name, for `shomei_build_info`).
    pub fn new(store: &'static str) -> Metrics {
        let mut registry = Registry::with_prefix("shomei");
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                store,
            })
            .set(1);
        registry.register(
            "build_info",
            "Version of this server and its store backend (always 1)",
            build,
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by listener, method, route template and status",
            requests.clone(),
        );
        let request_seconds =
            Family::<LatencyLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram as fn() -> Histogram,
            );
        registry.register_with_unit(
            "http_request_duration",
            "Time from request to response head, by listener, method and route template (an SSE stream counts until its head)",
            Unit::Seconds,
            request_seconds.clone(),
        );
        let logins_started = Counter::default();
        registry.register(
            "logins_started",
            "Logins started by terminals",
            logins_started.clone(),
        );
        let logins_finished = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "logins_finished",
            "Logins ended, by outcome: approved, denied, number_mismatch, not_allowed, expired (expired counted when swept)",
            logins_finished.clone(),
        );
        let signatures = Family::<FormatLabels, Counter>::default();
        registry.register(
            "signatures",
            "Signatures returned (each committed to the audit log first), by format: hash (signHash, one per hash), xades, cms",
            signatures.clone(),
        );
        let audit_batch_records = Histogram::new(exponential_buckets(1.0, 2.0, 9));
        registry.register(
            "audit_batch_records",
            "Signature records per group-commit transaction of the audit writer",
            audit_batch_records.clone(),
        );
        let audit_commit_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register_with_unit(
            "audit_commit_duration",
            "Time to commit one group of signature records to the audit log",
            Unit::Seconds,
            audit_commit_seconds.clone(),
        );
        let audit_commit_failures = Counter::default();
        registry.register(
            "audit_commit_failures",
            "Group commits of signature records that failed (their signatures were not returned)",
            audit_commit_failures.clone(),
        );
        let waiting_terminals = Gauge::default();
        registry.register(
            "waiting_terminals",
            "Terminal connections waiting on a login now (SSE events and long-poll wait)",
            waiting_terminals.clone(),
        );
        let waited_logins = Gauge::default();
        registry.register(
            "waited_logins",
            "Logins with at least one waiting terminal now",
            waited_logins.clone(),
        );
        let mut replica = ReplicaMetrics::default();
        if store == "postgres" {
            let lag = Histogram::new(exponential_buckets(0.0005, 2.0, 15));
            registry.register_with_unit(
                "replica_notification_lag",
                "Time from a change's publication on its replica (just before its commit; wall clocks) to its receipt here",
                Unit::Seconds,
                lag.clone(),
            );
            replica.lag_seconds = Some(lag);
            registry.register(
                "replica_notifications",
                "Change notices received from the database (any replica, this one included), by kind: login, grant, device, terminal, practitioner, credential, unnamed, unreadable",
                replica.notices.clone(),
            );
            registry.register(
                "replica_listener_reconnects",
                "Times the listening connection was lost and listens again (each followed by a re-read)",
                replica.reconnects.clone(),
            );
            registry.register(
                "replica_listener_connected",
                "1 while this replica listens for other replicas' changes, else 0",
                replica.connected.clone(),
            );
            registry.register(
                "replica_backstop_wakes",
                "Waited logins woken by the slow periodic re-read rather than by a notice (a notice was missed; should stay 0)",
                replica.backstop_wakes.clone(),
            );
        }
        Metrics {
            replica,
            registry,
            requests,
            request_seconds,
            logins_started,
            logins_finished,
            signatures,
            audit_batch_records,
            audit_commit_seconds,
            audit_commit_failures,
            waiting_terminals,
            waited_logins,
        }
    }

    /// One answered request. `route` is the matched route template.
    pub fn request(
        &self,
        listener: Listener,
        method: &axum::http::Method,
        route: Option<&'static str>,
        status: u16,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        let route = route.unwrap_or("unmatched");
        self.request_seconds
            .get_or_create(&LatencyLabels {
                listener: listener.as_str(),
                method,
                route,
            })
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                listener: listener.as_str(),
                method,
                route,
                status,
            })
            .inc();
    }

    /// A terminal started a login.
    pub fn login_started(&self) {
        self.logins_started.inc();
    }

    /// `n` logins ended with `outcome`.
    pub fn logins_finished(&self, outcome: LoginOutcome, n: u64) {
        self.logins_finished
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
            })
            .inc_by(n);
    }

    /// `n` signatures of `kind` were returned.
    pub fn signatures(&self, kind: SignatureKind, n: u64) {
        self.signatures
            .get_or_create(&FormatLabels {
                format: kind.as_str(),
            })
            .inc_by(n);
    }

    /// One group commit of the audit writer: its size and how long it took.
    pub fn audit_commit(&self, records: usize, elapsed: Duration, ok: bool) {
        self.audit_batch_records.observe(records as f64);
        self.audit_commit_seconds.observe(elapsed.as_secs_f64());
        if !ok {
            self.audit_commit_failures.inc();
        }
    }

    /// The replica listener listens (again, if `reconnect`).
    pub fn replica_listening(&self, reconnect: bool) {
        self.replica.connected.set(1);
        if reconnect {
            self.replica.reconnects.inc();
        }
    }

    /// The replica listener lost its connection.
    pub fn replica_lost(&self) {
        self.replica.connected.set(0);
    }

    /// A change notice of `kind` arrived `lag` after its publication
    /// (`None`: unreadable, no time known).
    pub fn replica_notice(&self, kind: &'static str, lag: Option<Duration>) {
        self.replica.notices.get_or_create(&KindLabels { kind }).inc();
        if let (Some(h), Some(lag)) = (&self.replica.lag_seconds, lag) {
            h.observe(lag.as_secs_f64());
        }
    }

    /// The periodic re-read woke `n` waited logins no notice had woken.
    pub fn replica_backstop_wakes(&self, n: u64) {
        self.replica.backstop_wakes.inc_by(n);
    }

    /// The text exposition; `waiting` and `waited` are read at the scrape.
    /// `openmetrics`: OpenMetrics 1.0 instead of Prometheus text 0.0.4.
    pub fn encode(&self, waiting: usize, waited: usize, openmetrics: bool) -> String {
        self.waiting_terminals.set(waiting as i64);
        self.waited_logins.set(waited as i64);
        let mut out = String::new();
        let r = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        };
        // Writing into a String cannot fail; an encoder bug would show as a short scrape.
        if let Err(e) = r {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

/// A route template as a label that lives as long as the process, so that
/// counting a request allocates nothing. Templates come from the routers
/// (a fixed set), each stored once.
pub fn route_label(template: &str) -> &'static str {
    static ROUTES: std::sync::LazyLock<std::sync::RwLock<std::collections::HashSet<&'static str>>> =
        std::sync::LazyLock::new(Default::default);
    if let Some(r) = ROUTES.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(template) {
        return r;
    }
    let mut routes = ROUTES.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(r) = routes.get(template) {
        return r;
    }
    let r: &'static str = Box::leak(template.to_owned().into_boxed_str());
    routes.insert(r);
    r
}

/// A closed set: an unknown method (`FOO /x`) must not create a series.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
