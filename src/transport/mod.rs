//! Talking to payers: bytes and metadata in, bytes and metadata out. A transport knows how to
//! reach a payer (CAQH CORE SOAP / MIME, FHIR PAS over HTTPS, batch folders), how long to wait
//! and how to tell "never delivered" from "outcome unknown" from "refused"; it never reads the
//! message beyond what its envelope needs, and never logs a body.

pub mod batch;
pub mod core;
pub mod fhir;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::payers::PayerConfig;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What is asked of the payer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A new (or retransmitted) authorization request: 278 request, PAS `Claim/$submit`.
    Submit,
    /// A status question about one already sent: PAS `Claim/$inquire`.
    Inquire,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Submit => "submit",
            Operation::Inquire => "inquire",
        }
    }
}

/// One message on its way out. The bytes are exactly what the outbox stored, so a retransmit
/// carries the same trace and control numbers.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub payer: &'a PayerConfig,
    pub operation: Operation,
    /// CORE PayloadID (a UUID), kept with the outbox row so a retransmit reuses it.
    pub payload_id: &'a str,
    /// The X12 interchange or the FHIR JSON (Bundle for `$submit`, Parameters for `$inquire`).
    pub body: &'a [u8],
}

/// What came back.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// The payer answered in the same exchange (a 278 response, 999, TA1, PAS response
    /// Bundle, ClaimResponse or Parameters).
    Answered(Answer),
    /// Handed over; the answer arrives later by another path (a batch folder).
    Accepted,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The payload the payer returned (the CORE envelope's Payload, the FHIR body).
    pub body: Vec<u8>,
    /// Envelope facts worth keeping (CORE ErrorCode / PayloadType, HTTP status), never PHI.
    pub detail: String,
}

/// Why a send did not produce an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// It never reached the payer (connection refused, DNS, TLS, CORE `ReceiverServerBusy`,
    /// HTTP 429 / 503 before processing): safe to send again after a backoff.
    #[error("not delivered: {reason}")]
    NotDelivered {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// It may have reached the payer (timeout after the request was written, connection dropped
    /// mid-exchange, HTTP 5xx, a body we cannot read): send the same bytes again, not before the
    /// retransmit floor (CORE: 90 s), or inquire.
    #[error("outcome unknown: {reason}")]
    Unknown {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The payer refused the content for good (HTTP 4xx with an OperationOutcome, a CORE
    /// envelope error about the payload): final, never retried. `body` is what it said.
    #[error("refused by the payer: {reason}")]
    Refused {
        reason: String,
        body: Option<Vec<u8>>,
    },
    /// Our side is misconfigured (credentials missing or rejected, illegal sender/receiver ids,
    /// version mismatch): straight to the dead letters for a person to fix and retry.
    #[error("configuration: {reason}")]
    Config { reason: String },
}

impl SendError {
    pub fn reason(&self) -> &str {
        match self {
            SendError::NotDelivered { reason, .. }
            | SendError::Unknown { reason, .. }
            | SendError::Refused { reason, .. }
            | SendError::Config { reason } => reason,
        }
    }
}

/// A way to reach one payer. Implementations are cheap to share (`Arc<dyn Transport>`).
pub trait Transport: Send + Sync {
    fn send<'a>(&'a self, msg: Outgoing<'a>) -> BoxFuture<'a, Result<Delivery, SendError>>;
}

/// The connect timeout of the shared client (a payer asking for another gets its own client).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(5_000);

fn client_builder(connect_timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_backend_rustls()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(8)
        .user_agent(concat!("priorauth-gateway/", env!("CARGO_PKG_VERSION")))
}

/// The HTTP client the transports share: rustls, a connect timeout, a connection pool. The
/// whole-exchange timeout is set per request from the payer's `timeout_ms`. Should the tuned
/// client fail to build (the TLS backend cannot start), reqwest's default client is used.
pub fn http_client() -> reqwest::Client {
    match client_builder(DEFAULT_CONNECT_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "HTTP client with the gateway's settings could not be built; using reqwest defaults");
            reqwest::Client::new()
        }
    }
}

/// The transport for a payer: CORE (SOAP or MIME), FHIR PAS or a batch folder. A payer whose
/// `connect_timeout_ms` differs from the shared client's gets a client of its own. Endpoint,
/// credentials, ids and timeout are read from `Outgoing.payer` at each send, so a reloaded
/// directory applies without a new transport (the FHIR token cache lives in the transport).
pub fn for_payer(cfg: &PayerConfig, http: &reqwest::Client) -> Arc<dyn Transport> {
    let http = if cfg.connect_timeout() == DEFAULT_CONNECT_TIMEOUT {
        http.clone()
    } else {
        match client_builder(cfg.connect_timeout()).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(payer = %cfg.id, error = %e, "own HTTP client failed to build; using the shared one");
                http.clone()
            }
        }
    };
    match cfg.format {
        crate::payers::Format::X12Core => Arc::new(core::CoreClient::new(http)),
        crate::payers::Format::FhirPas => Arc::new(fhir::FhirClient::new(http)),
        crate::payers::Format::X12Batch => Arc::new(batch::BatchFolder),
    }
}

/// `Retry-After` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let secs = (when.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
    Some(Duration::from_secs(secs.max(0) as u64))
}

/// A reqwest failure as a send outcome: failing to connect (refused, DNS, TLS handshake,
/// connect timeout) means nothing was sent; anything later (timeout, connection dropped,
/// unreadable body) leaves the outcome unknown.
pub(crate) fn http_failure(e: &reqwest::Error, during: &str) -> SendError {
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_body() || e.is_decode() {
        "response body unreadable"
    } else {
        "connection failed"
    };
    // The error's chain names the cause (refused, reset, certificate) without any body.
    let mut cause = String::new();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    let reason = if cause.is_empty() {
        format!("{during}: {kind}")
    } else {
        format!("{during}: {kind} ({cause})")
    };
    if e.is_connect() {
        SendError::NotDelivered {
            reason,
            retry_after: None,
        }
    } else {
        SendError::Unknown {
            reason,
            retry_after: None,
        }
    }
}

/// The largest answer a transport reads (a 278 response or a PAS Bundle is far smaller).
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// Reads a response body up to `MAX_RESPONSE_BYTES`; a larger or broken body leaves the
/// outcome unknown (the request was delivered).
pub(crate) async fn read_body(
    mut resp: reqwest::Response,
    during: &str,
) -> Result<Vec<u8>, SendError> {
    let too_big = || SendError::Unknown {
        reason: format!("{during}: the answer is larger than {MAX_RESPONSE_BYTES} bytes"),
        retry_after: None,
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| http_failure(&e, during))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Text from a payer (an envelope ErrorMessage, a fault reason) made safe for a reason string:
/// control characters dropped, at most 300 characters.
pub(crate) fn clip(text: &str) -> String {
    let mut out: String = text
        .chars()
        .filter(|c| !c.is_control() || *c == ' ')
        .take(300)
        .collect();
    if text.chars().count() > 300 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(600)).to_rfc2822();
        h.insert(reqwest::header::RETRY_AFTER, later.parse().unwrap());
        let d = retry_after(&h).unwrap().as_secs();
        assert!((590..=600).contains(&d), "{d}");
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn clip_drops_control_characters_and_cuts() {
        assert_eq!(clip("a\nb\tc d"), "abc d");
        let long = "x".repeat(400);
        assert_eq!(clip(&long).len(), 303);
    }

    #[test]
    fn batch_file_names_are_safe() {
        assert_eq!(
            batch::file_name("f81d4fae-7dec-11d0-a765-00a0c91e6bf6").unwrap(),
            "f81d4fae-7dec-11d0-a765-00a0c91e6bf6.x12"
        );
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(batch::file_name(bad).is_err(), "{bad:?}");
        }
    }
}
