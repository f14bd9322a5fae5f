//! The mock payer: a payer simulator for tests and demos. It speaks CAQH CORE real time (X12
//! 278 in SOAP 1.2 or MIME envelopes) and Da Vinci PAS (`Claim/$submit`, `Claim/$inquire`),
//! decides by rules (`rules.rs`, `decide.rs`), keeps its authorizations keyed by trace number
//! like a real payer (a retransmit answers the current state and creates nothing), pends and
//! decides later (optionally POSTing the final answer), injects faults, and records everything
//! it received for tests (`/mock/received`, `/mock/stats`, `/mock/reset`).
//!
//! It uses the codecs (x12, fhir, the CORE envelope) and nothing of the gateway's outbox or
//! store. It never logs bodies or patient data.

mod core;
pub mod decide;
mod oauth;
mod pas;
pub mod rules;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

pub use decide::{Decided, Subject, decide};
pub use rules::{Action, Fault, FaultKind, Match, Rule, Rules, RulesError};

use crate::domain::{AuthorizationRequest, AuthorizationResponse, Status};
use crate::fhir::Bundle;
use crate::x12::writer::{EnvelopeSettings, MemoryControlNumbers};

/// Which protocol a request came by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Core,
    Pas,
}

/// What became of one received request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new authorization was created.
    New,
    /// The trace number was known: the current state was answered, nothing created.
    Retransmit,
    /// A `$inquire`.
    Inquiry,
    /// A fault decided before the payload was read (429, 503, busy): nothing created.
    NotProcessed,
    /// The payload could not be read (999 / OperationOutcome / envelope error answered).
    Unreadable,
    /// Refused before reading (no or bad bearer token).
    Unauthorized,
}

/// One request the mock received. Ids and numbers only: never patient data or bodies.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub seq: u64,
    /// RFC 3339, UTC.
    pub at: String,
    pub channel: Channel,
    /// `core`, `submit` or `inquire`.
    pub endpoint: &'static str,
    /// The requester's 2000E trace numbers (`originator:reference`) or PAS Claim identifiers.
    pub trace_numbers: Vec<String>,
    /// BHT03 / Bundle.identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitter_reference: Option<String>,
    /// ISA13.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interchange_control: Option<String>,
    /// ST02.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_control: Option<String>,
    /// CORE PayloadID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_id: Option<String>,
    pub outcome: Outcome,
    /// The authorization's key (its trace number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    /// The decision's status word as answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certification_number: Option<String>,
    /// The rules that applied (new authorizations).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// The fault injected, by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<&'static str>,
    /// The HTTP status answered (0 for a dropped connection).
    pub http_status: u16,
    /// Size of the request body.
    pub bytes: usize,
}

/// Counts for one channel.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelStats {
    pub requests: u64,
    pub new_authorizations: u64,
    pub retransmits: u64,
    pub inquiries: u64,
    pub unreadable: u64,
    pub faults: u64,
}

/// `/mock/stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub requests: u64,
    pub new_authorizations: u64,
    pub retransmits: u64,
    pub inquiries: u64,
    pub unreadable: u64,
    pub unauthorized: u64,
    pub faults: u64,
    pub faults_by_kind: HashMap<&'static str, u64>,
    pub tokens_issued: u64,
    pub notifications_sent: u64,
    pub notification_failures: u64,
    pub by_channel: HashMap<Channel, ChannelStats>,
}

/// One authorization the mock holds, keyed by the request's trace number.
#[derive(Debug, Clone)]
pub(crate) struct Authorization {
    pub channel: Channel,
    pub request: AuthorizationRequest,
    /// PAS: the request bundle (its identifiers, item sequences and fullUrls are echoed).
    pub bundle: Option<Bundle>,
    /// CORE: the envelope the answers go out in (the request's, reversed).
    pub envelope: Option<EnvelopeSettings>,
    /// The current answer.
    pub response: AuthorizationResponse,
    /// A pend's final answer and when it takes effect.
    pub pending: Option<(Instant, AuthorizationResponse)>,
}

impl Authorization {
    /// Takes the final decision once its time has come. True when it changed now.
    fn settle(&mut self, now: Instant) -> bool {
        match self.pending.take() {
            Some((at, resp)) if at <= now => {
                self.response = resp;
                true
            }
            other => {
                self.pending = other;
                false
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct Data {
    pub auths: HashMap<String, Authorization>,
    pub next_number: u64,
    pub received: Vec<Received>,
    pub stats: Stats,
    /// Matching requests seen per fault entry.
    pub fault_seen: Vec<u64>,
    /// Access tokens and their expiry.
    pub tokens: HashMap<String, Instant>,
    /// SMART assertion ids already used.
    pub jtis: HashSet<String>,
}

pub(crate) struct Inner {
    pub rules: Rules,
    pub notify: Option<String>,
    pub data: Mutex<Data>,
    pub controls: MemoryControlNumbers,
    pub http: reqwest::Client,
    pub smart_key: Option<(jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm)>,
}

/// The mock payer's shared state (cheap to clone).
#[derive(Clone)]
pub struct MockState {
    pub(crate) inner: Arc<Inner>,
}

impl MockState {
    /// A mock payer with these rules; `notify` (or the rules' `notify_url`) receives final
    /// decisions of pended authorizations.
    pub fn new(rules: Rules, notify: Option<String>) -> io::Result<MockState> {
        rules
            .check()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let smart_key = oauth::smart_key(&rules.oauth)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(io::Error::other)?;
        let notify = notify.or_else(|| rules.notify_url.clone());
        Ok(MockState {
            inner: Arc::new(Inner {
                notify,
                data: Mutex::new(Data {
                    fault_seen: vec![0; rules.faults.len()],
                    ..Data::default()
                }),
                rules,
                controls: MemoryControlNumbers::new(),
                http,
                smart_key,
            }),
        })
    }

    pub(crate) fn data(&self) -> MutexGuard<'_, Data> {
        // A panic while holding the lock cannot leave the maps half-written in a way that
        // matters to a test double: keep serving.
        self.inner
            .data
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The fault that fires for this request, if any (counting it).
    pub(crate) fn pick_fault(&self, channel: Channel, subject: Option<&Subject>) -> Option<Fault> {
        let faults = &self.inner.rules.faults;
        let mut data = self.data();
        for (i, f) in faults.iter().enumerate() {
            if f.kind == FaultKind::CoreBusy && channel != Channel::Core {
                continue;
            }
            if f.when.channel.is_some_and(|c| c != channel) {
                continue;
            }
            let holds = match subject {
                Some(s) => f.when.holds(s),
                None => !f.when.needs_payload(),
            };
            if !holds {
                continue;
            }
            data.fault_seen[i] += 1;
            let n = data.fault_seen[i];
            let fires = match (f.times, f.every) {
                (Some(t), _) => n <= t,
                (None, Some(e)) => n.is_multiple_of(e),
                (None, None) => true,
            };
            if fires {
                return Some(f.clone());
            }
        }
        None
    }

    /// Records a received request and counts it.
    pub(crate) fn record(&self, mut r: Received) {
        let mut data = self.data();
        let s = &mut data.stats;
        s.requests += 1;
        let c = s.by_channel.entry(r.channel).or_default();
        c.requests += 1;
        match r.outcome {
            Outcome::New => {
                s.new_authorizations += 1;
                c.new_authorizations += 1;
            }
            Outcome::Retransmit => {
                s.retransmits += 1;
                c.retransmits += 1;
            }
            Outcome::Inquiry => {
                s.inquiries += 1;
                c.inquiries += 1;
            }
            Outcome::Unreadable => {
                s.unreadable += 1;
                c.unreadable += 1;
            }
            Outcome::Unauthorized => s.unauthorized += 1,
            Outcome::NotProcessed => {}
        }
        if let Some(f) = r.fault {
            c.faults += 1;
            s.faults += 1;
            *s.faults_by_kind.entry(f).or_default() += 1;
        }
        r.seq = data.received.len() as u64 + 1;
        tracing::info!(
            seq = r.seq,
            channel = ?r.channel,
            endpoint = r.endpoint,
            outcome = ?r.outcome,
            fault = r.fault,
            status = r.http_status,
            bytes = r.bytes,
            "mock payer request"
        );
        data.received.push(r);
    }

    /// Stores a new authorization, or finds the one this trace key already names. Returns the
    /// response to answer and whether it was new.
    pub(crate) fn admit(
        &self,
        key: &str,
        make: impl FnOnce(u64) -> (Authorization, Option<Duration>),
    ) -> (AuthorizationResponse, bool, Option<Duration>) {
        let mut data = self.data();
        let now = Instant::now();
        if let Some(a) = data.auths.get_mut(key) {
            a.settle(now);
            return (a.response.clone(), false, None);
        }
        data.next_number += 1;
        let (mut auth, later) = make(data.next_number);
        if let (Some(delay), Some((at, _))) = (later, auth.pending.as_mut()) {
            *at = now + delay;
        }
        let resp = auth.response.clone();
        data.auths.insert(key.to_owned(), auth);
        (resp, true, later)
    }

    /// After a pend: waits, takes the final decision and notifies.
    pub(crate) fn schedule(&self, key: String, delay: Duration) {
        let state = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let settled = {
                let mut data = state.data();
                data.auths.get_mut(&key).and_then(|a| {
                    a.settle(Instant::now());
                    // Notify once, whether settled now or by a request in between.
                    (a.pending.is_none()).then(|| a.clone())
                })
            };
            if let (Some(auth), Some(url)) = (settled, state.inner.notify.clone()) {
                state.notify(&url, &key, &auth).await;
            }
        });
    }

    async fn notify(&self, url: &str, key: &str, auth: &Authorization) {
        let (body, content_type) = match auth.channel {
            Channel::Core => match core::response_interchange(self, auth, &auth.response) {
                Ok(b) => (b, "application/edi-x12"),
                Err(e) => {
                    tracing::warn!(authorization = key, error = %e, "mock payer: final 278 could not be written");
                    return;
                }
            },
            Channel::Pas => (
                pas::response_body(&auth.response, auth.bundle.as_ref(), false),
                "application/fhir+json",
            ),
        };
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=5u32 {
            let mut post = self
                .inner
                .http
                .post(url)
                .header(header::CONTENT_TYPE, content_type)
                .body(body.clone());
            if let Some(b) = &self.inner.rules.notify_bearer {
                post = post.bearer_auth(&b.0);
            }
            let sent = post.send().await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    self.data().stats.notifications_sent += 1;
                    tracing::info!(
                        authorization = key,
                        attempt,
                        "mock payer: final decision notified"
                    );
                    return;
                }
                Ok(r) => tracing::warn!(
                    authorization = key,
                    attempt,
                    status = r.status().as_u16(),
                    "mock payer: notify refused"
                ),
                Err(e) => {
                    tracing::warn!(authorization = key, attempt, error = %e, "mock payer: notify failed")
                }
            }
            self.data().stats.notification_failures += 1;
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
}

/// The mock payer's routes.
pub fn router(state: MockState) -> Router {
    Router::new()
        .route("/core", post(core::handle))
        .route("/fhir/Claim/$submit", post(pas::submit))
        .route("/fhir/Claim/$inquire", post(pas::inquire))
        .route("/oauth/token", post(oauth::token))
        .route("/mock/received", get(received))
        .route("/mock/stats", get(stats))
        .route("/mock/reset", post(reset))
        .layer(DefaultBodyLimit::max(crate::fhir::MAX_BODY))
        .with_state(state)
}

/// Starts a mock payer on `listen` (port 0 for any free port). Returns the bound address and
/// the server task.
pub async fn spawn(
    rules: Rules,
    listen: SocketAddr,
    notify: Option<String>,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let state = MockState::new(rules, notify)?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = router(state);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "mock payer server stopped");
        }
    });
    Ok((addr, task))
}

async fn received(State(s): State<MockState>) -> Response {
    json_response(StatusCode::OK, &s.data().received)
}

async fn stats(State(s): State<MockState>) -> Response {
    json_response(StatusCode::OK, &s.data().stats)
}

async fn reset(State(s): State<MockState>) -> Response {
    let n = s.inner.rules.faults.len();
    *s.data() = Data {
        fault_seen: vec![0; n],
        ..Data::default()
    };
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) fn json_response(status: StatusCode, v: &impl Serialize) -> Response {
    match serde_json::to_vec(v) {
        Ok(b) => (status, [(header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn today() -> crate::domain::Date {
    crate::x12::writer::Stamp::now().date
}

/// A new `Received` with the common fields.
pub(crate) fn received_entry(channel: Channel, endpoint: &'static str, bytes: usize) -> Received {
    Received {
        seq: 0,
        at: now_rfc3339(),
        channel,
        endpoint,
        trace_numbers: vec![],
        submitter_reference: None,
        interchange_control: None,
        transaction_control: None,
        payload_id: None,
        outcome: Outcome::New,
        authorization: None,
        decision: None,
        certification_number: None,
        rules: vec![],
        fault: None,
        http_status: 200,
        bytes,
    }
}

/// The answer to a fault decided before the payload is read, or after it for `status`.
pub(crate) fn status_fault(f: &Fault) -> Response {
    let status = f
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = status.into_response();
    if matches!(status.as_u16(), 429 | 503) {
        let secs = f.retry_after.unwrap_or(1);
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

/// A 200 whose body fails after the headers: hyper resets the connection, the client sees the
/// exchange break without an answer.
pub(crate) fn dropped() -> Response {
    struct Broken;
    impl http_body::Body for Broken {
        type Data = bytes::Bytes;
        type Error = io::Error;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, io::Error>>> {
            std::task::Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "mock payer fault: connection dropped",
            ))))
        }
    }
    Response::new(Body::new(Broken))
}
