//! Talking to payers: bytes and metadata in, bytes and metadata out. A transport knows how to
//! reach a payer (CAQH CORE SOAP / MIME, FHIR PAS over HTTPS, batch folders), how long to wait
//! and how to tell "never delivered" from "outcome unknown" from "refused"; it never reads the
//! message beyond what its envelope needs, and never logs a body.

pub mod core;

use std::future::Future;
use std::pin::Pin;
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
