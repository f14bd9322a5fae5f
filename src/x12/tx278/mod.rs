//! The 278 codec: domain requests and responses to and from 005010X217 transaction sets.

mod decode;
mod encode;

use serde::Serialize;

pub use decode::decode;
pub use encode::{PWK07_MAX, request_not_carried, write_request, write_response};

use crate::domain::{AuthorizationRequest, AuthorizationResponse};
use crate::x12::envelope::{EnvelopeTracker, InterchangeSummary, TransactionHeader, walk};
use crate::x12::error::{Issue, X12Error};
use crate::x12::syntax::{Transaction, Unit};
use crate::x12::writer::{ControlKind, ControlNumbers, EnvelopeSettings, InterchangeWriter, Stamp};

/// The implementation guide this codec speaks.
pub const VERSION: &str = "005010X217";

/// A decoded 278: a request (BHT02 13, 01, 36) or a response (BHT02 11).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Message278 {
    Request(Box<AuthorizationRequest>),
    Response(Box<AuthorizationResponse>),
}

/// One transaction set of a file: where it was, what it meant, what was wrong with it.
#[derive(Debug, Clone, Serialize)]
pub struct Decoded {
    pub transaction: TransactionHeader,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Message278>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub issues: Vec<Issue>,
}

/// Everything read from an input: the 278s and the issues outside them (envelope, syntax).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DecodedFile {
    pub transactions: Vec<Decoded>,
    pub issues: Vec<Issue>,
    #[serde(skip)]
    pub summary: Vec<InterchangeSummary>,
}

impl DecodedFile {
    /// Every issue, envelope ones first.
    pub fn all_issues(&self) -> impl Iterator<Item = &Issue> {
        self.issues
            .iter()
            .chain(self.transactions.iter().flat_map(|t| t.issues.iter()))
    }
}

/// Reads every 278 in an in-memory input. Never stops at the first problem: a broken
/// transaction set is reported and the next one is read. (For inputs of any size, see
/// `crate::x12::stream`, which does the same one transaction set at a time.)
pub fn decode_all(data: &[u8]) -> DecodedFile {
    decode_file(data, true)
}

/// `decode_all` without the messages: every issue and the envelope summary, each set's
/// message dropped as soon as it is read. What validation needs: its memory is that of the
/// issues, not of a decoded copy of the whole input.
pub fn decode_issues(data: &[u8]) -> DecodedFile {
    decode_file(data, false)
}

fn decode_file(data: &[u8], keep_messages: bool) -> DecodedFile {
    let mut tracker = EnvelopeTracker::with_summary();
    let mut out = DecodedFile::default();
    let mut transactions = Vec::new();
    walk(data, &mut tracker, &mut out.issues, |_, unit, header, _| {
        if let (Unit::Transaction(tx), Some(header)) = (unit, header) {
            let mut decoded = decode_set(header.clone(), tx);
            if !keep_messages {
                decoded.message = None;
            }
            transactions.push(decoded);
        }
    });
    out.transactions = transactions;
    out.summary = tracker.summary().to_vec();
    out
}

/// One transaction set as `decode_all` reads it: the tracker checks its envelope and gives
/// its location, a 278 is decoded, any other set is reported as skipped.
pub fn decode_unit(tracker: &mut EnvelopeTracker, tx: &Transaction) -> Decoded {
    decode_set(tracker.transaction(tx), tx)
}

/// One transaction set whose envelope has been checked: a 278 is decoded, any other set is
/// reported as skipped.
pub fn decode_set(header: TransactionHeader, tx: &Transaction) -> Decoded {
    if header.id != "278" {
        return Decoded {
            issues: vec![Issue::warning(
                "not_a_278",
                header.location.clone(),
                format!("transaction set {} is not a 278 and was skipped", header.id),
            )],
            transaction: header,
            message: None,
        };
    }
    let (message, issues) = decode(tx, &header.location);
    Decoded {
        transaction: header,
        message,
        issues,
    }
}

/// Writes requests as one interchange with one HI group, control numbers from `controls`.
pub fn encode_requests(
    requests: &[AuthorizationRequest],
    settings: &EnvelopeSettings,
    controls: &dyn ControlNumbers,
    stamp: Stamp,
) -> Result<Vec<u8>, X12Error> {
    encode_with(requests, settings, controls, stamp, write_request)
}

/// Writes one request as a whole interchange.
pub fn encode_request(
    request: &AuthorizationRequest,
    settings: &EnvelopeSettings,
    controls: &dyn ControlNumbers,
    stamp: Stamp,
) -> Result<Vec<u8>, X12Error> {
    encode_requests(std::slice::from_ref(request), settings, controls, stamp)
}

/// Writes responses as one interchange (the mock payer's side).
pub fn encode_responses(
    responses: &[AuthorizationResponse],
    settings: &EnvelopeSettings,
    controls: &dyn ControlNumbers,
    stamp: Stamp,
) -> Result<Vec<u8>, X12Error> {
    encode_with(responses, settings, controls, stamp, write_response)
}

fn alloc(controls: &dyn ControlNumbers, kind: ControlKind, partner: &str) -> Result<u64, X12Error> {
    controls.next(kind, partner).map_err(|e| {
        X12Error::one(Issue::error(
            "control_number",
            Default::default(),
            format!("no control number could be reserved: {e}"),
        ))
    })
}

fn encode_with<T>(
    items: &[T],
    settings: &EnvelopeSettings,
    controls: &dyn ControlNumbers,
    stamp: Stamp,
    body: fn(&mut crate::x12::writer::Writer, &T, Stamp),
) -> Result<Vec<u8>, X12Error> {
    let partner = settings.partner();
    let isa = alloc(controls, ControlKind::Interchange, &partner)?;
    let gs = alloc(controls, ControlKind::Group, &partner)?;
    let mut iw = InterchangeWriter::begin(settings, isa, stamp)?;
    iw.begin_group(settings, "HI", VERSION, gs, stamp);
    for item in items {
        let st = alloc(controls, ControlKind::Transaction, &partner)?;
        let w = iw.begin_transaction("278", st, VERSION);
        body(w, item, stamp);
        if let Some(e) = w.error() {
            let mut e = e.clone();
            e.message = format!("{} (transaction {})", e.message, st);
            return Err(X12Error::one(e));
        }
    }
    iw.finish()
}
