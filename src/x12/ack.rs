//! Acknowledgements: reading 999 (005010X231A1) and TA1, and writing them for a received
//! interchange.
//!
//! # Reading
//!
//! [`parse_acks`] reads any interchange and returns every 999 transaction set and every TA1 it
//! holds, with every located problem: the envelope checks of [`EnvelopeTracker`] and the
//! 999 content checks of this module (segment order, required elements, code values,
//! counts that disagree). It never stops at the first problem and never panics.
//!
//! # Writing a 999 ([`generate_999`])
//!
//! One 999 interchange answers one received interchange: the ISA ids are the received ones
//! reversed, GS01 is `FA`, GS08 and ST03 are `005010X231A1`, and each received functional group
//! gets its own 999 transaction set (AK1 .. AK9). Received groups with the same GS02/GS03 share
//! one FA group (its GS02/GS03 are theirs reversed).
//!
//! Issues are matched to what they concern by `location.interchange` (the received ISA's
//! index), `location.group` and `location.transaction`. The rules:
//!
//! * Only issues of severity `Error` reject. A transaction set with at least one error is
//!   rejected (`IK5*R`); one with warnings only is accepted with errors noted (`IK5*E`, and the
//!   warnings are listed in IK3/IK4 like errors); one with no issue is accepted (`IK5*A`).
//! * `AckCode::Transaction` codes go to IK502..IK506. `AckCode::Segment` codes become IK3 with
//!   that IK304. `AckCode::Element` codes become IK4 under an IK3 for their segment (IK304 `8`,
//!   "segment has data element errors", unless the segment has a segment code of its own).
//!   IK502 then also gets `5` (one or more segments in error), or `I5` when every code on the
//!   segments is an implementation-guide code (`I..`).
//! * An issue without an ack code but with a segment location is still reported: with an
//!   element position as IK4 with IK403 `I12` (implementation pattern match failure: the value
//!   broke a rule of the guide or of our own), without one as IK3 with IK304 `8`.
//! * An issue that cannot be placed on a segment (no segment position, or a segment id that
//!   cannot be written) is folded into IK5 with `I5` (or its own transaction code) and listed
//!   in the returned notes.
//! * `AckCode::Group` codes go to AK905..AK909. A group error rejects the whole group
//!   (`AK9*R`, accepted count 0); so does a group-level error without any ack code (no AK905
//!   code can be given for it; it is noted). Otherwise AK901 is `R` when every set was
//!   rejected, `P` when some were, `E` when all were accepted but something was noted, else `A`.
//!   AK902 is GE01 as received (the actual count when GE01 is missing or not a number), AK903
//!   the sets received, AK904 the sets accepted.
//! * `AckCode::Interchange` codes belong to the TA1 ([`generate_ta1`]) and do not change the 999.
//!
//! The 999 must stay valid whatever the input, so values are checked before they are written:
//! a group whose GS01/GS06/GS08, or a set whose ST01/ST02, cannot be echoed validly in AK1/AK2
//! is left out (counted as received and not accepted) and noted; IK303 takes the loop id when it
//! has at most 4 characters, else the standard loop number of an implementation-guide loop id
//! (`2010B` -> `2010`, as is common practice), else nothing; IK404 is the bad value cut to 99
//! characters, or left out when it holds a delimiter or a character outside the X12 extended
//! character set. At most [`MAX_IK3_PER_SET`] IK3 per set, [`MAX_IK4_PER_IK3`] IK4 per IK3
//! (errors first), and 5 codes in IK5 and AK9 are written (errors first; in IK5 the `5` / `I5`
//! that points at the IK3 segments is always kept); what is left out is noted in
//! [`Generated999::notes`] and still counts for acceptance.
//!
//! # Writing a TA1 ([`generate_ta1`])
//!
//! An interchange with ISA, TA1, IEA and no group. TA104 is `R` when an issue of severity
//! `Error` carries an `AckCode::Interchange` code, `E` when only warnings do, else `A`; TA105 is
//! the code of the first such issue (`000` when none).

use std::collections::BTreeMap;

use serde::Serialize;

use super::envelope::{
    EnvelopeTracker, GroupSummary, InterchangeHeader, InterchangeSummary, TransactionHeader, walk,
};
use super::error::{AckCode, Issue, Location, Severity, X12Error};
use super::syntax::{Delimiters, Segment, Transaction, Unit};
use super::writer::{
    ControlKind, ControlNumbers, EnvelopeSettings, InterchangeWriter, Stamp, Writer,
};

/// The implementation guide of the 999 we write (GS08 and ST03).
pub const X231A1: &str = "005010X231A1";
/// The most IK3 segments written for one transaction set (our cap, to keep a 999 for a badly
/// broken file bounded; the rest is noted and still rejects the set).
pub const MAX_IK3_PER_SET: usize = 999;
/// The most IK4 segments written under one IK3 (element positions have two digits).
pub const MAX_IK4_PER_IK3: usize = 99;

// ---------------------------------------------------------------------------------------------
// Code lists
// ---------------------------------------------------------------------------------------------

/// IK304, implementation segment syntax error code (element 620).
pub fn segment_error_description(code: &str) -> Option<&'static str> {
    Some(match code {
        "1" => "Unrecognized segment ID",
        "2" => "Unexpected segment",
        "3" => "Required segment missing",
        "4" => "Loop occurs over maximum times",
        "5" => "Segment exceeds maximum use",
        "6" => "Segment not in defined transaction set",
        "7" => "Segment not in proper sequence",
        "8" => "Segment has data element errors",
        "I4" => "Implementation \"Not Used\" segment present",
        "I6" => "Implementation dependent segment missing",
        "I7" => "Implementation loop occurs under minimum times",
        "I8" => "Implementation segment below minimum use",
        "I9" => "Implementation dependent \"Not Used\" segment present",
        _ => return None,
    })
}

/// IK403, implementation data element syntax error code (element 621).
pub fn element_error_description(code: &str) -> Option<&'static str> {
    Some(match code {
        "1" => "Required data element missing",
        "2" => "Conditional required data element missing",
        "3" => "Too many data elements",
        "4" => "Data element too short",
        "5" => "Data element too long",
        "6" => "Invalid character in data element",
        "7" => "Invalid code value",
        "8" => "Invalid date",
        "9" => "Invalid time",
        "10" => "Exclusion condition violated",
        "12" => "Too many repetitions",
        "13" => "Too many components",
        "I6" => "Code value not used in implementation",
        "I9" => "Implementation dependent data element missing",
        "I10" => "Implementation \"Not Used\" data element present",
        "I11" => "Implementation too few repetitions",
        "I12" => "Implementation pattern match failure",
        "I13" => "Implementation dependent \"Not Used\" data element present",
        _ => return None,
    })
}

/// IK502..IK506, implementation transaction set syntax error code (element 618).
pub fn transaction_error_description(code: &str) -> Option<&'static str> {
    Some(match code {
        "1" => "Transaction set not supported",
        "2" => "Transaction set trailer missing",
        "3" => "Transaction set control number in header and trailer do not match",
        "4" => "Number of included segments does not match actual count",
        "5" => "One or more segments in error",
        "6" => "Missing or invalid transaction set identifier",
        "7" => "Missing or invalid transaction set control number",
        "8" => "Authentication key name unknown",
        "9" => "Encryption key name unknown",
        "10" => "Requested service (authentication or encryption) not available",
        "11" => "Unknown security recipient",
        "12" => "Incorrect message length (encryption only)",
        "13" => "Message authentication code failed",
        "15" => "Unknown security originator",
        "16" => "Syntax error in decrypted text",
        "17" => "Security not supported",
        "18" => "Transaction set not in functional group",
        "19" => "Invalid transaction set implementation convention reference",
        "23" => "Transaction set control number not unique within the functional group",
        "24" => "S3E security end segment missing for S3S security start segment",
        "25" => "S3S security start segment missing for S3E security end segment",
        "26" => "S4E security end segment missing for S4S security start segment",
        "27" => "S4S security start segment missing for S4E security end segment",
        "I5" => "Implementation one or more segments in error",
        "I6" => "Implementation convention not supported",
        _ => return None,
    })
}

/// AK905..AK909, functional group syntax error code (element 716).
pub fn group_error_description(code: &str) -> Option<&'static str> {
    Some(match code {
        "1" => "Functional group not supported",
        "2" => "Functional group version not supported",
        "3" => "Functional group trailer missing",
        "4" => "Group control number in the functional group header and trailer do not agree",
        "5" => "Number of included transaction sets does not match actual count",
        "6" => "Group control number violates syntax",
        "10" => "Authentication key name unknown",
        "11" => "Encryption key name unknown",
        "12" => "Requested service (authentication or encryption) not available",
        "13" => "Unknown security recipient",
        "14" => "Unknown security originator",
        "15" => "Syntax error in decrypted text",
        "16" => "Security not supported",
        "17" => "Incorrect message length (encryption only)",
        "18" => "Message authentication code failed",
        "19" => "Functional group control number not unique within interchange",
        "23" => "S3E security end segment missing for S3S security start segment",
        "24" => "S3S security start segment missing for S3E security end segment",
        "25" => "S4E security end segment missing for S4S security start segment",
        "26" => "S4S security start segment missing for S4E security end segment",
        _ => return None,
    })
}

/// TA105, interchange note code (element I18).
pub fn interchange_note_description(code: &str) -> Option<&'static str> {
    Some(match code {
        "000" => "No error",
        "001" => {
            "The interchange control number in the header and trailer do not match; the value from the header is used in the acknowledgment"
        }
        "002" => "This standard as noted in the control standards identifier is not supported",
        "003" => "This version of the controls is not supported",
        "004" => "The segment terminator is invalid",
        "005" => "Invalid interchange ID qualifier for sender",
        "006" => "Invalid interchange sender ID",
        "007" => "Invalid interchange ID qualifier for receiver",
        "008" => "Invalid interchange receiver ID",
        "009" => "Unknown interchange receiver ID",
        "010" => "Invalid authorization information qualifier value",
        "011" => "Invalid authorization information value",
        "012" => "Invalid security information qualifier value",
        "013" => "Invalid security information value",
        "014" => "Invalid interchange date value",
        "015" => "Invalid interchange time value",
        "016" => "Invalid interchange standards identifier value",
        "017" => "Invalid interchange version ID value",
        "018" => "Invalid interchange control number value",
        "019" => "Invalid acknowledgment requested value",
        "020" => "Invalid test indicator value",
        "021" => "Invalid number of included groups value",
        "022" => "Invalid control structure",
        "023" => "Improper (premature) end-of-file (transmission)",
        "024" => "Invalid interchange content (e.g. invalid GS segment)",
        "025" => "Duplicate interchange control number",
        "026" => "Invalid data element separator",
        "027" => "Invalid component element separator",
        "028" => "Invalid delivery date in deferred delivery request",
        "029" => "Invalid delivery time in deferred delivery request",
        "030" => "Invalid delivery time code in deferred delivery request",
        "031" => "Invalid grade of service code",
        _ => return None,
    })
}

/// IK501 (element 717) and AK901 (element 715) as a word.
pub fn status_word(code: &str) -> Option<&'static str> {
    Some(match code {
        "A" => "accepted",
        "E" => "accepted_with_errors",
        "M" => "rejected_message_authentication_failed",
        "P" => "partially_accepted",
        "R" => "rejected",
        "W" => "rejected_assurance_failed",
        "X" => "rejected_content_after_decryption_not_analyzable",
        _ => return None,
    })
}

/// TA104 (element I17) as a word.
pub fn ta1_status_word(code: &str) -> Option<&'static str> {
    Some(match code {
        "A" => "accepted",
        "E" => "accepted_with_errors",
        "R" => "rejected",
        _ => return None,
    })
}

/// Whether an IK501 / AK901 / TA104 status means the data was accepted.
fn is_accepting(code: &str) -> bool {
    matches!(code, "A" | "E")
}

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/// A code with its plain-English meaning (`None` when the code is not in the list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Code {
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'static str>,
}

impl Code {
    fn new(code: &str, describe: fn(&str) -> Option<&'static str>) -> Code {
        Code {
            code: code.to_owned(),
            description: describe(code),
        }
    }
}

/// An acknowledgement found in an interchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum Acknowledgement {
    /// A 999 implementation acknowledgement (one transaction set, one functional group acknowledged).
    #[serde(rename = "999")]
    Implementation(ImplementationAck),
    /// A TA1 interchange acknowledgement.
    #[serde(rename = "TA1")]
    Interchange(InterchangeAck),
}

impl Acknowledgement {
    /// Whether what it acknowledges was accepted (with or without noted errors).
    pub fn accepted(&self) -> bool {
        match self {
            Acknowledgement::Implementation(a) => a.group.accepted,
            Acknowledgement::Interchange(t) => t.accepted,
        }
    }
    pub fn location(&self) -> &Location {
        match self {
            Acknowledgement::Implementation(a) => &a.location,
            Acknowledgement::Interchange(t) => &t.location,
        }
    }
}

/// One 999 transaction set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImplementationAck {
    /// Where the 999 is (its interchange, group, position, ST02).
    pub location: Location,
    /// ISA06 of the interchange that carries it (who acknowledges).
    pub sender_id: String,
    /// ISA08 of the interchange that carries it.
    pub receiver_id: String,
    /// ISA13 of the interchange that carries it.
    pub interchange_control_number: String,
    /// ST02 of the 999.
    pub control_number: String,
    /// ST03 of the 999 (005010X231A1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implementation_reference: Option<String>,
    /// The functional group acknowledged: AK1, the AK2 loops, AK9.
    pub group: AcknowledgedGroup,
}

/// AK1 .. AK9: one functional group acknowledged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AcknowledgedGroup {
    /// AK101: GS01 of the acknowledged group (HI for 278).
    pub functional_id: String,
    /// AK102: GS06 of the acknowledged group.
    pub control_number: String,
    /// AK103: GS08 of the acknowledged group (005010X217).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// One per AK2 loop.
    pub transactions: Vec<AcknowledgedTransaction>,
    /// AK9 (`None` when the 999 lacks it).
    pub status: Option<GroupStatus>,
    /// AK901 is A (accepted) or E (accepted, errors noted). P (partially accepted) is `false`:
    /// see each transaction.
    pub accepted: bool,
}

/// AK2 .. IK5: one transaction set acknowledged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AcknowledgedTransaction {
    /// AK201: ST01 of the acknowledged set (278).
    pub transaction_set_id: String,
    /// AK202: ST02 of the acknowledged set.
    pub control_number: String,
    /// AK203: ST03 of the acknowledged set (005010X217).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implementation_reference: Option<String>,
    /// The IK3 loops.
    pub segment_errors: Vec<SegmentError>,
    /// IK5 (`None` when the 999 lacks it).
    pub status: Option<TransactionStatus>,
    /// IK501 is A (accepted) or E (accepted, errors noted).
    pub accepted: bool,
}

/// IK3 with its CTX and IK4 loops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SegmentError {
    /// IK301.
    pub segment_id: String,
    /// IK302: position in the acknowledged transaction set (ST = 1).
    pub position: Option<usize>,
    /// IK303.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loop_id: Option<String>,
    /// IK304.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Code>,
    /// CTX segments after the IK3.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<Context>,
    /// The IK4 loops.
    pub element_errors: Vec<ElementError>,
}

/// IK4 with its CTX segments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ElementError {
    /// IK401-1: element position in the segment.
    pub position: Option<usize>,
    /// IK401-2: component position in a composite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<usize>,
    /// IK401-3: repetition position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repetition: Option<usize>,
    /// IK402: data element reference number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_element: Option<String>,
    /// IK403.
    pub error: Option<Code>,
    /// IK404: a copy of the bad value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_value: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<Context>,
}

/// A CTX segment: the context of an error (a situational trigger or a business identifier).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Context {
    /// CTX01-1 (`SITUATIONAL TRIGGER`, `CLM01`, `TRN02`, ...).
    pub name: String,
    /// CTX01-2 (the business identifier's value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// CTX02.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<String>,
    /// CTX03.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_position: Option<usize>,
    /// CTX04.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loop_id: Option<String>,
    /// CTX05-1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub element_position: Option<usize>,
    /// CTX05-2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_position: Option<usize>,
    /// CTX05-3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repetition_position: Option<usize>,
    /// CTX06-1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_element: Option<String>,
}

/// IK5.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransactionStatus {
    /// IK501: A, E, M, R, W, X.
    pub code: String,
    /// IK501 as a word (`accepted`, `rejected`...; `unknown` for a code not in the list).
    pub status: &'static str,
    /// IK502..IK506.
    pub errors: Vec<Code>,
}

/// AK9.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupStatus {
    /// AK901: A, E, M, P, R, W, X.
    pub code: String,
    /// AK901 as a word.
    pub status: &'static str,
    /// AK902: transaction sets included (GE01 as received).
    pub included: Option<u64>,
    /// AK903: transaction sets received.
    pub received: Option<u64>,
    /// AK904: transaction sets accepted.
    pub accepted: Option<u64>,
    /// AK905..AK909.
    pub errors: Vec<Code>,
}

/// A TA1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterchangeAck {
    /// Where the TA1 is.
    pub location: Location,
    /// ISA06 of the interchange that carries it (who acknowledges).
    pub sender_id: String,
    /// ISA08 of the interchange that carries it.
    pub receiver_id: String,
    /// TA101: ISA13 of the acknowledged interchange.
    pub control_number: String,
    /// TA102 YYMMDD.
    pub date: String,
    /// TA103 HHMM.
    pub time: String,
    /// TA104: A, E, R.
    pub code: String,
    /// TA104 as a word.
    pub status: &'static str,
    /// TA105.
    pub note: Code,
    /// TA104 is A or E.
    pub accepted: bool,
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// Reads the envelopes of an interchange file: the headers of every interchange, group and
/// transaction set (the input of [`generate_999`] and [`generate_ta1`]) and every envelope issue,
/// each located with its interchange index (reader issues included).
pub fn read_envelopes(data: &[u8]) -> (Vec<InterchangeSummary>, Vec<Issue>) {
    let mut tracker = EnvelopeTracker::with_summary();
    let mut issues = vec![];
    walk(data, &mut tracker, &mut issues, |_, _, _, _| {});
    (tracker.summary().to_vec(), issues)
}

/// Reads every 999 and TA1 in `data` (any interchange: other transaction sets are passed over)
/// with every located problem: envelope issues and malformed acknowledgement content.
pub fn parse_acks(data: &[u8]) -> (Vec<Acknowledgement>, Vec<Issue>) {
    let mut tracker = EnvelopeTracker::new();
    let mut issues = vec![];
    let mut acks = vec![];
    walk(
        data,
        &mut tracker,
        &mut issues,
        |tracker, unit, header, issues| match (unit, header) {
            (Unit::Segment(seg), _) if seg.is(b"TA1") => {
                acks.push(Acknowledgement::Interchange(parse_ta1(
                    seg, tracker, issues,
                )));
            }
            (Unit::Transaction(tx), Some(h)) if h.id == "999" => {
                acks.push(Acknowledgement::Implementation(parse_999(
                    tx, h, tracker, issues,
                )));
            }
            _ => {}
        },
    );
    (acks, issues)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_owned()
}

fn nonempty(b: &[u8]) -> Option<String> {
    let t = text(b);
    if t.is_empty() { None } else { Some(t) }
}

pub(crate) fn parse_ta1(
    seg: &Segment,
    tracker: &EnvelopeTracker,
    issues: &mut Vec<Issue>,
) -> InterchangeAck {
    let isa = tracker.interchange();
    let location = Location {
        interchange: isa.map(|h| h.index),
        group: tracker.group().map(|g| g.index),
        segment_index: Some(seg.index),
        segment_id: Some("TA1".into()),
        byte_offset: Some(seg.offset),
        ..Location::default()
    };
    let e = seg.split::<5>();
    let code = text(e[3]);
    let note = text(e[4]);
    // The tracker checks the shape of every TA1 element; a 3-digit code it let through may still
    // be outside the list.
    if note.len() == 3
        && note.bytes().all(|b| b.is_ascii_digit())
        && interchange_note_description(&note).is_none()
    {
        issues.push(
            Issue::warning(
                "ack_ta1_note_code",
                location.with_element(5),
                "TA105 is not a known interchange note code (000 to 031)",
            )
            .value(&note),
        );
    }
    InterchangeAck {
        sender_id: isa.map(|h| h.sender_id.clone()).unwrap_or_default(),
        receiver_id: isa.map(|h| h.receiver_id.clone()).unwrap_or_default(),
        control_number: text(e[0]),
        date: text(e[1]),
        time: text(e[2]),
        status: ta1_status_word(&code).unwrap_or("unknown"),
        accepted: is_accepting(&code),
        code,
        note: Code::new(&note, interchange_note_description),
        location,
    }
}

/// Element access with located issues for one segment of a 999.
struct Seg<'s, 'a> {
    seg: &'s Segment<'a>,
    loc: Location,
    issues: &'s mut Vec<Issue>,
}

impl<'s, 'a> Seg<'s, 'a> {
    fn new(
        seg: &'s Segment<'a>,
        position: usize,
        base: &Location,
        issues: &'s mut Vec<Issue>,
    ) -> Self {
        let loc = Location {
            segment_index: Some(seg.index),
            segment_position: Some(position),
            segment_id: Some(seg.id_str().to_owned()),
            byte_offset: Some(seg.offset),
            ..base.clone()
        };
        Seg { seg, loc, issues }
    }
    fn raw(&self, n: usize) -> &'a [u8] {
        self.seg.element(n)
    }
    fn name(&self, n: usize) -> String {
        format!("{}{n:02}", self.seg.id_str())
    }
    fn missing(&mut self, n: usize, what: &str) {
        let msg = format!("{} ({what}) is required", self.name(n));
        self.issues.push(Issue::error(
            "ack_999_element_missing",
            self.loc.with_element(n),
            msg,
        ));
    }
    fn opt(&self, n: usize) -> Option<String> {
        nonempty(self.raw(n))
    }
    fn required(&mut self, n: usize, what: &str) -> String {
        match self.opt(n) {
            Some(v) => v,
            None => {
                self.missing(n, what);
                String::new()
            }
        }
    }
    /// A number that must be there when `required`.
    fn number(&mut self, n: usize, what: &str, required: bool) -> Option<u64> {
        let v = self.opt(n);
        match v {
            None => {
                if required {
                    self.missing(n, what);
                }
                None
            }
            Some(v) => self.as_number(&v, n, None, what),
        }
    }
    fn as_number(
        &mut self,
        v: &str,
        n: usize,
        component: Option<usize>,
        what: &str,
    ) -> Option<u64> {
        match v.parse::<u64>() {
            Ok(x) if v.bytes().all(|b| b.is_ascii_digit()) => Some(x),
            _ => {
                let loc = match component {
                    Some(c) => self.loc.with_component(n, c),
                    None => self.loc.with_element(n),
                };
                let name = self.name(n);
                self.issues.push(
                    Issue::error(
                        "ack_999_element_invalid",
                        loc,
                        format!("{name} ({what}) must be a number"),
                    )
                    .value(v),
                );
                None
            }
        }
    }
    /// A code looked up in its list; a code not in the list is reported and kept.
    fn code(
        &mut self,
        n: usize,
        what: &str,
        describe: fn(&str) -> Option<&'static str>,
        required: bool,
    ) -> Option<Code> {
        let v = match self.opt(n) {
            Some(v) => v,
            None => {
                if required {
                    self.missing(n, what);
                }
                return None;
            }
        };
        let c = Code::new(&v, describe);
        if c.description.is_none() {
            let name = self.name(n);
            self.issues.push(
                Issue::error(
                    "ack_999_code_unknown",
                    self.loc.with_element(n),
                    format!("{name} is not a known {what}"),
                )
                .value(&v),
            );
        }
        Some(c)
    }
    /// Components of element `n` as numbers (`IK401`, `CTX05`).
    fn positions(&mut self, n: usize, what: &str) -> [Option<u64>; 3] {
        let parts = self.seg.split_components::<3>(self.raw(n));
        let mut out = [None; 3];
        for (i, p) in parts.iter().enumerate() {
            let t = text(p);
            if !t.is_empty() {
                out[i] = self.as_number(&t, n, Some(i + 1), what);
            }
        }
        out
    }
    fn order(&mut self, msg: impl Into<String>) {
        self.issues
            .push(Issue::error("ack_999_segment_order", self.loc.clone(), msg));
    }
}

fn usize_of(v: Option<u64>) -> Option<usize> {
    v.and_then(|x| usize::try_from(x).ok())
}

fn parse_context(s: &mut Seg) -> Context {
    let id = s.seg.split_components::<2>(s.raw(1));
    let name = text(id[0]);
    if name.is_empty() {
        s.missing(1, "context name");
    }
    let pos = s.positions(5, "position in segment");
    let refs = s.seg.split_components::<1>(s.raw(6));
    let segment_position = match s.opt(3) {
        Some(v) => usize_of(s.as_number(&v, 3, None, "segment position")),
        None => None,
    };
    Context {
        name,
        reference: nonempty(id[1]),
        segment_id: s.opt(2),
        segment_position,
        loop_id: s.opt(4),
        element_position: usize_of(pos[0]),
        component_position: usize_of(pos[1]),
        repetition_position: usize_of(pos[2]),
        data_element: nonempty(refs[0]),
    }
}

/// Where the parser is inside a 999.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    /// After ST: AK1 expected.
    Start,
    /// After AK1 or an IK5: AK2 or AK9 expected.
    Group,
    /// After AK2: IK3 or IK5.
    Set,
    /// After IK3 (or its CTX): CTX, IK4, IK3, IK5.
    SegmentError,
    /// After IK4 (or its CTX): CTX, IK4, IK3, IK5.
    ElementError,
    /// After AK9: only SE.
    End,
}

pub(crate) fn parse_999(
    tx: &Transaction,
    header: &TransactionHeader,
    tracker: &EnvelopeTracker,
    issues: &mut Vec<Issue>,
) -> ImplementationAck {
    let base = header.location.clone();
    let isa = tracker.interchange();
    let mut st_loc = Location {
        segment_id: Some("ST".into()),
        segment_position: Some(1),
        ..base.clone()
    };
    st_loc.segment_index = Some(tx.first_index);
    st_loc.byte_offset = Some(tx.offset);
    if let Some(g) = tracker.group()
        && g.functional_id != "FA"
    {
        issues.push(
            Issue::warning(
                "ack_999_functional_id",
                st_loc.clone(),
                "a 999 belongs in a functional group whose GS01 is FA",
            )
            .value(&g.functional_id),
        );
    }
    if !header.reference.is_empty()
        && !matches!(header.reference.as_str(), "005010X231A1" | "005010X231")
    {
        issues.push(
            Issue::warning(
                "ack_999_version",
                st_loc.with_element(3),
                "ST03 of a 999 should be 005010X231A1",
            )
            .value(&header.reference),
        );
    }
    let mut group = AcknowledgedGroup::default();
    let mut sets: Vec<AcknowledgedTransaction> = vec![];
    let mut at = At::Start;
    let mut seen_ak1 = false;
    let mut open_set_loc: Option<Location> = None;
    let mut last_loc = st_loc.clone();
    for (i, seg) in tx.segments().enumerate() {
        let position = i + 1;
        if position == 1 && seg.is(b"ST") {
            continue;
        }
        let mut s = Seg::new(&seg, position, &base, issues);
        last_loc = s.loc.clone();
        let id = seg.id();
        if id == b"SE" {
            continue;
        }
        // A set left open by a segment that only belongs outside it.
        if matches!(id, b"AK2" | b"AK9" | b"AK1")
            && matches!(at, At::Set | At::SegmentError | At::ElementError)
        {
            if let Some(l) = open_set_loc.take() {
                s.issues.push(Issue::error(
                    "ack_999_segment_missing",
                    l,
                    "the AK2 loop has no IK5 (transaction set response trailer)",
                ));
            }
            at = At::Group;
        }
        match id {
            b"AK1" => {
                if seen_ak1 {
                    s.order("a second AK1: a 999 acknowledges one functional group");
                    continue;
                }
                seen_ak1 = true;
                if at != At::Start {
                    s.order("AK1 must come right after ST");
                }
                group.functional_id = s.required(1, "functional identifier code");
                group.control_number = s.required(2, "group control number");
                if !group.control_number.is_empty() {
                    s.number(2, "group control number", true);
                }
                group.version = s.opt(3);
                if group.version.is_none() {
                    s.missing(3, "version / release / industry identifier code");
                }
                at = At::Group;
            }
            b"AK2" => {
                if at == At::Start {
                    s.order("AK2 before AK1");
                } else if at == At::End {
                    s.order("AK2 after AK9");
                }
                let t = AcknowledgedTransaction {
                    transaction_set_id: s.required(1, "transaction set identifier code"),
                    control_number: s.required(2, "transaction set control number"),
                    implementation_reference: s.opt(3),
                    ..AcknowledgedTransaction::default()
                };
                sets.push(t);
                open_set_loc = Some(s.loc.clone());
                at = At::Set;
            }
            b"IK3" => {
                let Some(t) = sets
                    .last_mut()
                    .filter(|_| matches!(at, At::Set | At::SegmentError | At::ElementError))
                else {
                    s.order("IK3 outside an AK2 loop (it must follow AK2 and come before IK5)");
                    continue;
                };
                let segment_id = s.required(1, "segment id code");
                let position = usize_of(s.number(2, "segment position in transaction set", true));
                let loop_id = s.opt(3);
                let error = s.code(
                    4,
                    "segment syntax error code (IK304)",
                    segment_error_description,
                    false,
                );
                t.segment_errors.push(SegmentError {
                    segment_id,
                    position,
                    loop_id,
                    error,
                    context: vec![],
                    element_errors: vec![],
                });
                at = At::SegmentError;
            }
            b"IK4" => {
                let Some(e) = sets
                    .last_mut()
                    .and_then(|t| t.segment_errors.last_mut())
                    .filter(|_| matches!(at, At::SegmentError | At::ElementError))
                else {
                    s.order("IK4 without an IK3 before it");
                    continue;
                };
                if s.opt(1).is_none() {
                    s.missing(1, "position in segment");
                }
                let p = s.positions(1, "position in segment");
                let data_element = s.opt(2);
                if let Some(d) = &data_element {
                    s.as_number(d, 2, None, "data element reference number");
                }
                let error = s.code(
                    3,
                    "data element syntax error code (IK403)",
                    element_error_description,
                    true,
                );
                let bad_value = {
                    let raw = s.raw(4);
                    if raw.is_empty() {
                        None
                    } else {
                        Some(String::from_utf8_lossy(raw).into_owned())
                    }
                };
                e.element_errors.push(ElementError {
                    position: usize_of(p[0]),
                    component: usize_of(p[1]),
                    repetition: usize_of(p[2]),
                    data_element,
                    error,
                    bad_value,
                    context: vec![],
                });
                at = At::ElementError;
            }
            b"CTX" => {
                let ctx = parse_context(&mut s);
                let target = sets.last_mut().and_then(|t| t.segment_errors.last_mut());
                match (at, target) {
                    (At::SegmentError, Some(e)) => e.context.push(ctx),
                    (At::ElementError, Some(e)) => match e.element_errors.last_mut() {
                        Some(el) => el.context.push(ctx),
                        None => e.context.push(ctx),
                    },
                    _ => s.order("CTX outside an IK3 or IK4 loop"),
                }
            }
            b"IK5" => {
                let Some(t) = sets
                    .last_mut()
                    .filter(|_| matches!(at, At::Set | At::SegmentError | At::ElementError))
                else {
                    s.order("IK5 without an open AK2 loop");
                    continue;
                };
                let code = s.code(
                    1,
                    "transaction set acknowledgment code (IK501)",
                    status_word,
                    true,
                );
                let mut errors = vec![];
                for n in 2..=6 {
                    if let Some(c) = s.code(
                        n,
                        "transaction set syntax error code",
                        transaction_error_description,
                        false,
                    ) {
                        errors.push(c);
                    }
                }
                if seg.element_count() > 6 {
                    s.issues.push(Issue::error(
                        "ack_999_element_invalid",
                        s.loc.with_element(7),
                        "IK5 has at most 6 elements",
                    ));
                }
                let code = code.map(|c| c.code).unwrap_or_default();
                t.accepted = is_accepting(&code);
                t.status = Some(TransactionStatus {
                    status: status_word(&code).unwrap_or("unknown"),
                    code,
                    errors,
                });
                open_set_loc = None;
                at = At::Group;
            }
            b"AK9" => {
                if at == At::Start {
                    s.order("AK9 before AK1");
                } else if at == At::End {
                    s.order("a second AK9");
                    continue;
                }
                let code = s.code(
                    1,
                    "functional group acknowledge code (AK901)",
                    status_word,
                    true,
                );
                let included = s.number(2, "number of transaction sets included", true);
                let received = s.number(3, "number of received transaction sets", true);
                let accepted = s.number(4, "number of accepted transaction sets", true);
                let mut errors = vec![];
                for n in 5..=9 {
                    if let Some(c) = s.code(
                        n,
                        "functional group syntax error code",
                        group_error_description,
                        false,
                    ) {
                        errors.push(c);
                    }
                }
                let code = code.map(|c| c.code).unwrap_or_default();
                group.accepted = is_accepting(&code);
                group.status = Some(GroupStatus {
                    status: status_word(&code).unwrap_or("unknown"),
                    code,
                    included,
                    received,
                    accepted,
                    errors,
                });
                at = At::End;
            }
            _ => {
                let msg = format!("segment {} does not belong in a 999", seg.id_str());
                s.issues.push(Issue::error(
                    "ack_999_unexpected_segment",
                    s.loc.clone(),
                    msg,
                ));
            }
        }
    }
    if let Some(l) = open_set_loc {
        issues.push(Issue::error(
            "ack_999_segment_missing",
            l,
            "the AK2 loop has no IK5 (transaction set response trailer)",
        ));
    }
    if !seen_ak1 {
        issues.push(Issue::error(
            "ack_999_segment_missing",
            st_loc.clone(),
            "the 999 has no AK1 (functional group response header)",
        ));
    }
    if group.status.is_none() && at != At::Start {
        issues.push(Issue::error(
            "ack_999_segment_missing",
            last_loc,
            "the 999 has no AK9 (functional group response trailer)",
        ));
    }
    group.transactions = sets;
    check_consistency(&group, &st_loc, issues);
    ImplementationAck {
        location: st_loc.clone(),
        sender_id: isa.map(|h| h.sender_id.clone()).unwrap_or_default(),
        receiver_id: isa.map(|h| h.receiver_id.clone()).unwrap_or_default(),
        interchange_control_number: isa.map(|h| h.control_number.clone()).unwrap_or_default(),
        control_number: header.control_number.to_string(),
        implementation_reference: if header.reference.is_empty() {
            None
        } else {
            Some(header.reference.to_string())
        },
        group,
    }
}

/// Counts and statuses that disagree (warnings: the 999 is readable, but one of its statements
/// is wrong).
fn check_consistency(g: &AcknowledgedGroup, loc: &Location, issues: &mut Vec<Issue>) {
    let Some(st) = &g.status else { return };
    let listed = g.transactions.len() as u64;
    let accepted = g.transactions.iter().filter(|t| t.accepted).count() as u64;
    let rejected = g
        .transactions
        .iter()
        .filter(|t| t.status.is_some() && !t.accepted)
        .count() as u64;
    let mut warn =
        |msg: String| issues.push(Issue::warning("ack_999_inconsistent", loc.clone(), msg));
    if let (Some(r), Some(a)) = (st.received, st.accepted)
        && a > r
    {
        warn(format!(
            "AK904 says {a} sets were accepted but AK903 says only {r} were received"
        ));
    }
    if let Some(r) = st.received
        && listed > r
    {
        warn(format!(
            "the 999 has {listed} AK2 loops but AK903 says {r} sets were received"
        ));
    }
    // Only when every received set is listed can the accepted count be checked.
    if let (Some(r), Some(a)) = (st.received, st.accepted)
        && listed == r
        && matches!(st.code.as_str(), "A" | "E" | "P")
        && a != accepted
    {
        warn(format!(
            "AK904 says {a} sets were accepted but {accepted} IK5 accept theirs"
        ));
    }
    if matches!(st.code.as_str(), "A" | "E") && rejected > 0 {
        warn(format!(
            "AK901 is {} but {rejected} transaction set(s) are rejected in IK5",
            st.code
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// A 999 interchange we wrote.
#[derive(Debug, Clone)]
pub struct Generated999 {
    /// The interchange (ISA .. IEA), ready to send.
    pub bytes: Vec<u8>,
    /// Its ISA13.
    pub control_number: u64,
    /// What each 999 says, in order (what [`parse_acks`] reads back from `bytes`).
    pub groups: Vec<AcknowledgedGroup>,
    /// What the 999 could not carry as given (left out, cut, folded into a code), as warnings
    /// located at the received data.
    pub notes: Vec<Issue>,
}

/// A TA1 interchange we wrote.
#[derive(Debug, Clone)]
pub struct GeneratedTa1 {
    pub bytes: Vec<u8>,
    /// Its ISA13.
    pub control_number: u64,
    /// TA101: the acknowledged ISA13.
    pub acknowledged: String,
    /// TA104: A, E or R.
    pub code: &'static str,
    /// TA105.
    pub note_code: String,
    pub notes: Vec<Issue>,
}

/// The envelope of an answer: ours, addressed back to the received ISA's sender, in the same
/// usage (test/production) as the received interchange.
fn answer_settings(isa: &InterchangeHeader, ours: &EnvelopeSettings) -> EnvelopeSettings {
    EnvelopeSettings {
        sender_qualifier: isa.receiver_qualifier.clone(),
        sender_id: isa.receiver_id.clone(),
        receiver_qualifier: isa.sender_qualifier.clone(),
        receiver_id: isa.sender_id.clone(),
        application_sender: None,
        application_receiver: None,
        production: match isa.usage.as_str() {
            "P" => true,
            "T" => false,
            _ => ours.production,
        },
        ..ours.clone()
    }
}

fn control(
    numbers: &dyn ControlNumbers,
    kind: ControlKind,
    partner: &str,
) -> Result<u64, X12Error> {
    numbers.next(kind, partner).map_err(|e| {
        X12Error::one(Issue::error(
            "control_number",
            Location::default(),
            format!("no {kind:?} control number: {e}"),
        ))
    })
}

/// The X12 extended character set (5010), which AN and ID values must keep to.
fn x12_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" !\"&'()*+,-./:;?=%~@[]_{}\\|<>^`#$".contains(&b)
}

/// Whether `v` can be written as an AN/ID value of `min..=max` characters.
fn writable(v: &str, min: usize, max: usize, d: &Delimiters) -> bool {
    (min..=max).contains(&v.len())
        && v.bytes().all(|b| x12_char(b) && !d.is_delimiter(b))
        && v.bytes().any(|b| b != b' ')
}

fn segment_id_ok(v: &str) -> bool {
    (2..=3).contains(&v.len())
        && v.as_bytes()[0].is_ascii_uppercase()
        && v.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// IK303 (1 to 4 characters): the loop id itself, or the standard loop number of an
/// implementation-guide loop id (`2010B` -> `2010`).
fn loop_code(l: &str) -> Option<String> {
    let l = l.trim();
    if (1..=4).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Some(l.to_owned());
    }
    let digits = l.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 4 && l.len() <= 8 && l[4..].bytes().all(|b| b.is_ascii_uppercase()) {
        return Some(l[..4].to_owned());
    }
    None
}

/// IK404: the bad value, cut to 99 characters; `None` when it cannot be copied faithfully.
fn bad_value(v: Option<&str>, d: &Delimiters) -> Option<String> {
    let v = v?.trim();
    if v.is_empty() || !v.bytes().all(|b| x12_char(b) && !d.is_delimiter(b)) {
        return None;
    }
    Some(v[..v.len().min(99)].trim_end().to_owned())
}

fn note(issue: &Issue, msg: String) -> Issue {
    let mut n = Issue::warning("ack_note", issue.location.clone(), msg);
    n.value = issue.value.clone();
    n
}

/// The codes of a list, errors first, without repeats, at most 5: when there are more, the
/// codes in `keep` stay (IK502 `5` / `I5` must not be lost while IK3 segments are listed) and
/// the last others are left out (and noted).
fn top_codes(
    codes: &[(String, Severity)],
    keep: &[&str],
    describe: fn(&str) -> Option<&'static str>,
    what: &str,
    loc: &Location,
    notes: &mut Vec<Issue>,
) -> Vec<Code> {
    let mut out: Vec<Code> = vec![];
    for sev in [Severity::Error, Severity::Warning] {
        for (c, s) in codes {
            if *s == sev && !out.iter().any(|o| &o.code == c) {
                out.push(Code::new(c, describe));
            }
        }
    }
    let mut left = vec![];
    while out.len() > 5 {
        let Some(i) = out.iter().rposition(|c| !keep.contains(&c.code.as_str())) else {
            break;
        };
        left.insert(0, out.remove(i).code);
    }
    if !left.is_empty() {
        notes.push(Issue::warning(
            "ack_note",
            loc.clone(),
            format!("{what} holds 5 codes; left out: {}", left.join(", ")),
        ));
    }
    out
}

/// The issue's ack code when it is in its list; a code that is not is noted and dropped (the
/// issue is then reported as one without a code).
fn checked_ack(i: &Issue, notes: &mut Vec<Issue>) -> Option<AckCode> {
    let (code, describe): (&str, fn(&str) -> Option<&'static str>) = match i.ack? {
        AckCode::Interchange(c) => (c, interchange_note_description),
        AckCode::Group(c) => (c, group_error_description),
        AckCode::Transaction(c) => (c, transaction_error_description),
        AckCode::Segment(c) => (c, segment_error_description),
        AckCode::Element(c) => (c, element_error_description),
    };
    if describe(code).is_some() {
        i.ack
    } else {
        notes.push(note(
            i,
            format!(
                "issue [{}] carries {:?}, which is not in its code list: reported without it",
                i.code, i.ack
            ),
        ));
        None
    }
}

type ElementFinding = (usize, Option<usize>, String, Option<String>, Severity);

/// What a segment of a received set collected: its id, loop, segment codes and element errors.
#[derive(Default)]
struct SegmentFindings {
    id: String,
    loop_id: Option<String>,
    codes: Vec<(String, Severity)>,
    /// Element position, component position, IK403 code, IK404 value, severity.
    elements: Vec<ElementFinding>,
}

/// The AK2 loop for one received set, from its issues. `None` when AK201/AK202 cannot be
/// written (then the set is noted and counts as not accepted).
fn plan_transaction(
    t: &TransactionHeader,
    issues: &[&Issue],
    d: &Delimiters,
    group_loc: &Location,
    notes: &mut Vec<Issue>,
) -> Option<AcknowledgedTransaction> {
    let loc = Location {
        transaction: Some(t.index),
        control_number: Some(t.control_number.clone()),
        ..group_loc.clone()
    };
    if !writable(&t.id, 3, 3, d) || !writable(&t.control_number, 4, 9, d) {
        notes.push(
            Issue::warning(
                "ack_note",
                loc,
                format!(
                    "transaction set {} cannot be acknowledged in an AK2: ST01 {:?} / ST02 {:?} cannot be copied into AK201 / AK202; it counts as received and not accepted",
                    t.index, t.id, t.control_number
                ),
            ),
        );
        return None;
    }
    let reference = if t.reference.is_empty() {
        None
    } else if writable(&t.reference, 1, 35, d) {
        Some(t.reference.to_string())
    } else {
        notes.push(
            Issue::warning(
                "ack_note",
                loc.clone(),
                "ST03 cannot be copied into AK203; left out",
            )
            .value(&t.reference),
        );
        None
    };
    let mut tx_codes: Vec<(String, Severity)> = vec![];
    let mut segments: BTreeMap<usize, SegmentFindings> = BTreeMap::new();
    let mut error = false;
    let mut warning = false;
    // The worst severity among the issues reported on segments or folded into IK5 as I5.
    let mut on_segments: Option<Severity> = None;
    let mut folded = false;
    for &i in issues {
        match i.severity {
            Severity::Error => error = true,
            Severity::Warning => warning = true,
        }
        let ack = checked_ack(i, notes);
        if let Some(AckCode::Transaction(c)) = ack {
            tx_codes.push((c.to_owned(), i.severity));
            continue;
        }
        on_segments = Some(if i.is_error() || on_segments == Some(Severity::Error) {
            Severity::Error
        } else {
            Severity::Warning
        });
        let id = i.location.segment_id.as_deref().unwrap_or("");
        let place = match i.location.segment_position {
            Some(p) if (1..=999_999).contains(&p) && segment_id_ok(id) => Some(p),
            _ => None,
        };
        let Some(p) = place else {
            folded = true;
            notes.push(note(i, format!("issue [{}] has no segment position or writable segment id: reported as IK5 code I5 only", i.code)));
            continue;
        };
        let f = segments.entry(p).or_default();
        if f.id.is_empty() {
            f.id = id.to_owned();
        }
        if f.loop_id.is_none() {
            f.loop_id = i.location.loop_id.as_deref().and_then(loop_code);
        }
        let element_code = match ack {
            Some(AckCode::Segment(c)) => {
                f.codes.push((c.to_owned(), i.severity));
                continue;
            }
            Some(AckCode::Element(c)) => c,
            _ => "I12",
        };
        match i.location.element {
            Some(e)
                if (1..=99).contains(&e)
                    && i.location.component.is_none_or(|c| (1..=99).contains(&c)) =>
            {
                let value = bad_value(i.value.as_deref(), d);
                if i.value.as_deref().is_some_and(|v| !v.trim().is_empty()) && value.is_none() {
                    notes.push(note(i, format!("the bad value of issue [{}] holds a delimiter or a character X12 cannot carry: IK404 left out", i.code)));
                } else if i.value.as_deref().is_some_and(|v| v.trim().len() > 99) {
                    notes.push(note(
                        i,
                        format!(
                            "the bad value of issue [{}] is cut to the 99 characters IK404 holds",
                            i.code
                        ),
                    ));
                }
                f.elements.push((
                    e,
                    i.location.component,
                    element_code.to_owned(),
                    value,
                    i.severity,
                ));
            }
            Some(e) => {
                notes.push(note(i, format!("issue [{}] is at element {e} / component {:?}, which IK401 cannot hold: reported on the segment only", i.code, i.location.component)));
                f.codes.push(("8".into(), i.severity));
            }
            None => f.codes.push(("8".into(), i.severity)),
        }
    }
    let mut segment_errors = vec![];
    for (pos, f) in &segments {
        if segment_errors.len() >= MAX_IK3_PER_SET {
            notes.push(Issue::warning(
                "ack_note",
                loc.clone(),
                format!("more than {MAX_IK3_PER_SET} segments in error: IK3 loops from position {pos} on are left out"),
            ));
            break;
        }
        let mut codes: Vec<String> = vec![];
        for sev in [Severity::Error, Severity::Warning] {
            for (c, s) in &f.codes {
                if *s == sev && !codes.contains(c) {
                    codes.push(c.clone());
                }
            }
        }
        if codes.is_empty() {
            codes.push("8".into());
        }
        let mut elements = f.elements.clone();
        // Errors before warnings, then in element order.
        elements.sort_by_key(|(e, c, _, _, s)| (*s != Severity::Error, *e, *c));
        let mut element_errors: Vec<ElementError> = vec![];
        for (e, c, code, value, _) in elements {
            if element_errors.iter().any(|x| {
                x.position == Some(e)
                    && x.component == c
                    && x.error.as_ref().is_some_and(|x| x.code == code)
            }) {
                continue;
            }
            if element_errors.len() >= MAX_IK4_PER_IK3 {
                notes.push(Issue::warning(
                    "ack_note",
                    Location { segment_position: Some(*pos), segment_id: Some(f.id.clone()), ..loc.clone() },
                    format!("more than {MAX_IK4_PER_IK3} element errors on one segment: the rest are left out"),
                ));
                break;
            }
            element_errors.push(ElementError {
                position: Some(e),
                component: c,
                repetition: None,
                data_element: None,
                error: Some(Code::new(&code, element_error_description)),
                bad_value: value,
                context: vec![],
            });
        }
        element_errors.sort_by_key(|x| (x.position, x.component));
        for (k, code) in codes.iter().enumerate() {
            segment_errors.push(SegmentError {
                segment_id: f.id.clone(),
                position: Some(*pos),
                loop_id: f.loop_id.clone(),
                error: Some(Code::new(code, segment_error_description)),
                context: vec![],
                element_errors: if k == 0 {
                    std::mem::take(&mut element_errors)
                } else {
                    vec![]
                },
            });
        }
    }
    if let Some(sev) = on_segments {
        // 5 when a base-standard code is among the segment and element codes, I5 when they are all
        // implementation-guide codes or an issue could not be placed on a segment.
        let standard = segment_errors.iter().any(|e| {
            e.error
                .iter()
                .chain(e.element_errors.iter().filter_map(|x| x.error.as_ref()))
                .any(|c| !c.code.starts_with('I'))
        });
        if standard {
            tx_codes.push(("5".into(), sev));
        }
        if !standard || folded {
            tx_codes.push(("I5".into(), sev));
        }
    }
    let code = if error {
        "R"
    } else if warning {
        "E"
    } else {
        "A"
    };
    let errors = if code == "A" {
        vec![]
    } else {
        top_codes(
            &tx_codes,
            &["5", "I5"],
            transaction_error_description,
            "IK5",
            &loc,
            notes,
        )
    };
    Some(AcknowledgedTransaction {
        transaction_set_id: t.id.to_string(),
        control_number: t.control_number.to_string(),
        implementation_reference: reference,
        segment_errors,
        status: Some(TransactionStatus {
            code: code.into(),
            status: status_word(code).unwrap_or("unknown"),
            errors,
        }),
        accepted: code != "R",
    })
}

/// A received group to acknowledge, and to whom the FA group answering it goes.
struct GroupPlan {
    application_sender: String,
    application_receiver: String,
    ack: AcknowledgedGroup,
}

fn plan_group(
    isa: &InterchangeHeader,
    g: &GroupSummary,
    issues: &[&Issue],
    d: &Delimiters,
    notes: &mut Vec<Issue>,
) -> Option<GroupPlan> {
    let h = &g.header;
    let loc = Location {
        interchange: Some(isa.index),
        group: Some(h.index),
        ..Location::default()
    };
    let id_ok =
        h.functional_id.len() == 2 && h.functional_id.bytes().all(|b| b.is_ascii_alphanumeric());
    let control_ok = (1..=9).contains(&h.control_number.len())
        && h.control_number.bytes().all(|b| b.is_ascii_digit());
    if !id_ok || !control_ok || !writable(&h.version, 1, 12, d) {
        notes.push(Issue::warning(
            "ack_note",
            loc,
            format!(
                "functional group {} cannot be acknowledged in a 999: GS01 {:?}, GS06 {:?} or GS08 {:?} cannot be copied into AK1 (answer it with a TA1)",
                h.index, h.functional_id, h.control_number, h.version
            ),
        ));
        return None;
    }
    let mine: Vec<&Issue> = issues
        .iter()
        .copied()
        .filter(|i| i.location.group == Some(h.index))
        .collect();
    let mut group_codes: Vec<(String, Severity)> = vec![];
    let mut group_error = false;
    let mut group_warning = false;
    let mut per_set: BTreeMap<usize, Vec<&Issue>> = BTreeMap::new();
    for &i in &mine {
        match i.ack {
            // The TA1's business, not the 999's.
            Some(AckCode::Interchange(_)) => continue,
            Some(AckCode::Group(_)) => {
                if let Some(AckCode::Group(c)) = checked_ack(i, notes) {
                    group_codes.push((c.to_owned(), i.severity));
                }
                group_error |= i.is_error();
                group_warning |= !i.is_error();
                continue;
            }
            _ => {}
        }
        match i.location.transaction {
            Some(t) if g.transactions.iter().any(|x| x.index == t) => {
                per_set.entry(t).or_default().push(i)
            }
            _ => {
                group_error |= i.is_error();
                group_warning |= !i.is_error();
                notes.push(note(
                    i,
                    format!("issue [{}] concerns the group, not one of its transaction sets, and has no AK905 code: it counts for AK901 without a code", i.code),
                ));
            }
        }
    }
    let mut transactions = vec![];
    for t in &g.transactions {
        let issues = per_set.get(&t.index).map(Vec::as_slice).unwrap_or(&[]);
        if let Some(a) = plan_transaction(t, issues, d, &loc, notes) {
            transactions.push(a);
        }
    }
    let received = g.transactions.len() as u64;
    let included = g
        .trailer_count
        .as_deref()
        .filter(|c| (1..=6).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse().ok())
        .unwrap_or(received);
    let set_accepted = transactions.iter().filter(|t| t.accepted).count() as u64;
    let noted = transactions
        .iter()
        .any(|t| t.status.as_ref().is_some_and(|s| s.code == "E"));
    let (code, accepted) = if group_error || (received > 0 && set_accepted == 0) {
        ("R", 0)
    } else if set_accepted < received {
        ("P", set_accepted)
    } else if noted || group_warning {
        ("E", set_accepted)
    } else {
        ("A", set_accepted)
    };
    let errors = top_codes(
        &group_codes,
        &[],
        group_error_description,
        "AK9",
        &loc,
        notes,
    );
    let ack = AcknowledgedGroup {
        functional_id: h.functional_id.clone(),
        control_number: h.control_number.clone(),
        version: Some(h.version.clone()),
        transactions,
        status: Some(GroupStatus {
            code: code.into(),
            status: status_word(code).unwrap_or("unknown"),
            included: Some(included),
            received: Some(received),
            accepted: Some(accepted),
            errors,
        }),
        accepted: is_accepting(code),
    };
    // The 999 goes back from the group's receiver to its sender.
    let app = |v: &str, fallback: &str| {
        if writable(v, 2, 15, d) {
            v.to_owned()
        } else {
            fallback.to_owned()
        }
    };
    Some(GroupPlan {
        application_sender: app(&h.receiver, &isa.receiver_id),
        application_receiver: app(&h.sender, &isa.sender_id),
        ack,
    })
}

fn num(v: Option<impl ToString>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// Writes the body of one 999 (AK1 .. AK9) as the struct says.
pub fn write_999_body(w: &mut Writer, g: &AcknowledgedGroup) {
    w.seg("AK1")
        .e(&g.functional_id)
        .e(&g.control_number)
        .opt(g.version.as_deref());
    for t in &g.transactions {
        w.seg("AK2")
            .e(&t.transaction_set_id)
            .e(&t.control_number)
            .opt(t.implementation_reference.as_deref());
        for s in &t.segment_errors {
            w.seg("IK3")
                .e(&s.segment_id)
                .e(&num(s.position))
                .opt(s.loop_id.as_deref())
                .opt(s.error.as_ref().map(|c| c.code.as_str()));
            for c in &s.context {
                write_context(w, c);
            }
            for e in &s.element_errors {
                w.seg("IK4")
                    .c(&[&num(e.position), &num(e.component), &num(e.repetition)])
                    .opt(e.data_element.as_deref())
                    .opt(e.error.as_ref().map(|c| c.code.as_str()))
                    .opt(e.bad_value.as_deref());
                for c in &e.context {
                    write_context(w, c);
                }
            }
        }
        if let Some(st) = &t.status {
            w.seg("IK5").e(&st.code);
            for c in &st.errors {
                w.e(&c.code);
            }
        }
    }
    if let Some(st) = &g.status {
        w.seg("AK9")
            .e(&st.code)
            .e(&num(st.included))
            .e(&num(st.received))
            .e(&num(st.accepted));
        for c in &st.errors {
            w.e(&c.code);
        }
    }
}

fn write_context(w: &mut Writer, c: &Context) {
    w.seg("CTX")
        .c(&[&c.name, c.reference.as_deref().unwrap_or("")])
        .opt(c.segment_id.as_deref())
        .e(&num(c.segment_position))
        .opt(c.loop_id.as_deref())
        .c(&[
            &num(c.element_position),
            &num(c.component_position),
            &num(c.repetition_position),
        ])
        .opt(c.data_element.as_deref());
}

/// Writes the 999 interchange answering `received` (see the module documentation for the
/// rules). `issues` may hold issues of any interchange: those of `received` are picked by
/// `location.interchange == received.header.index`. `ours` gives the delimiters, line breaks
/// and ISA14; the ids are the received ISA's reversed and ISA15 follows the received ISA15.
pub fn generate_999(
    received: &InterchangeSummary,
    issues: &[Issue],
    ours: &EnvelopeSettings,
    numbers: &dyn ControlNumbers,
    stamp: Stamp,
) -> Result<Generated999, X12Error> {
    let isa = &received.header;
    let settings = answer_settings(isa, ours);
    let d = settings.delimiters;
    let mine: Vec<&Issue> = issues
        .iter()
        .filter(|i| i.location.interchange == Some(isa.index))
        .collect();
    let mut notes = vec![];
    for i in &mine {
        let known = match i.location.group {
            Some(g) => received.groups.iter().any(|x| x.header.index == g),
            None => true,
        };
        if !known {
            notes.push(note(
                i,
                format!(
                    "issue [{}] names a group the interchange does not have: left out",
                    i.code
                ),
            ));
        } else if i.location.group.is_none()
            && !matches!(i.ack, Some(AckCode::Interchange(_)))
            && i.is_error()
        {
            notes.push(note(i, format!("issue [{}] concerns the interchange, not a group: a 999 cannot carry it (use a TA1)", i.code)));
        }
    }
    let plans: Vec<GroupPlan> = received
        .groups
        .iter()
        .filter_map(|g| plan_group(isa, g, &mine, &d, &mut notes))
        .collect();
    if plans.is_empty() {
        return Err(X12Error::one(Issue::error(
            "ack_nothing_to_acknowledge",
            Location {
                interchange: Some(isa.index),
                segment_id: Some("ISA".into()),
                ..Location::default()
            },
            format!(
                "interchange {} has no functional group a 999 can acknowledge; answer it with a TA1",
                isa.control_number
            ),
        )));
    }
    let partner = settings.partner();
    let isa13 = control(numbers, ControlKind::Interchange, &partner)?;
    let mut iw = InterchangeWriter::begin(&settings, isa13, stamp)?;
    let mut current: Option<(String, String)> = None;
    for p in &plans {
        let pair = (p.application_sender.clone(), p.application_receiver.clone());
        if current.as_ref() != Some(&pair) {
            let gs = EnvelopeSettings {
                application_sender: Some(pair.0.clone()),
                application_receiver: Some(pair.1.clone()),
                ..settings.clone()
            };
            let gs06 = control(numbers, ControlKind::Group, &partner)?;
            iw.begin_group(&gs, "FA", X231A1, gs06, stamp);
            current = Some(pair);
        }
        let st02 = control(numbers, ControlKind::Transaction, &partner)?;
        let w = iw.begin_transaction("999", st02, X231A1);
        write_999_body(w, &p.ack);
        iw.end_transaction();
    }
    let bytes = iw.finish()?;
    Ok(Generated999 {
        bytes,
        control_number: isa13,
        groups: plans.into_iter().map(|p| p.ack).collect(),
        notes,
    })
}

/// Writes a TA1 interchange (ISA, TA1, IEA) answering the received ISA `received`. `issues`
/// may hold issues of any interchange: those with `location.interchange == received.index` and
/// an `AckCode::Interchange` code decide TA104/TA105.
pub fn generate_ta1(
    received: &InterchangeHeader,
    issues: &[Issue],
    ours: &EnvelopeSettings,
    numbers: &dyn ControlNumbers,
    stamp: Stamp,
) -> Result<GeneratedTa1, X12Error> {
    let isa_loc = Location {
        interchange: Some(received.index),
        segment_id: Some("ISA".into()),
        ..Location::default()
    };
    let isa13 = &received.control_number;
    if isa13.is_empty() || isa13.len() > 9 || !isa13.bytes().all(|b| b.is_ascii_digit()) {
        return Err(X12Error::one(
            Issue::error(
                "ack_ta1_control_number",
                isa_loc.with_element(13),
                "the received ISA13 is not a number of up to 9 digits, so a TA1 cannot name the interchange it answers",
            )
            .value(isa13),
        ));
    }
    let acknowledged = format!("{isa13:0>9}");
    let mut notes = vec![];
    if acknowledged != *isa13 {
        notes.push(
            Issue::warning(
                "ack_note",
                isa_loc.with_element(13),
                format!("ISA13 has fewer than 9 digits: TA101 is {acknowledged}"),
            )
            .value(isa13),
        );
    }
    let mut pick = |sev: Severity| -> Option<String> {
        for i in issues
            .iter()
            .filter(|i| i.location.interchange == Some(received.index) && i.severity == sev)
        {
            if let Some(AckCode::Interchange(c)) = i.ack {
                if interchange_note_description(c).is_some() {
                    return Some(c.to_owned());
                }
                notes.push(note(
                    i,
                    format!(
                        "issue [{}] carries {c:?}, not a TA105 note code: passed over",
                        i.code
                    ),
                ));
            }
        }
        None
    };
    let (code, note_code) = match pick(Severity::Error) {
        Some(c) => ("R", c),
        None => match pick(Severity::Warning) {
            Some(c) => ("E", c),
            None => ("A", "000".to_owned()),
        },
    };
    let settings = answer_settings(received, ours);
    let isa13_out = control(numbers, ControlKind::Interchange, &settings.partner())?;
    let mut iw = InterchangeWriter::begin(&settings, isa13_out, stamp)?;
    iw.writer()
        .seg("TA1")
        .e(&acknowledged)
        .e(&stamp.yymmdd())
        .e(&stamp.hhmm())
        .e(code)
        .e(&note_code);
    let bytes = iw.finish()?;
    Ok(GeneratedTa1 {
        bytes,
        control_number: isa13_out,
        acknowledged,
        code,
        note_code,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Date;
    use crate::x12::writer::MemoryControlNumbers;

    const ISA: &str = "ISA*00*          *00*          *ZZ*PAYER          *ZZ*GATEWAY        *260102*0304*^*00501*000000005*0*T*:~";

    fn stamp() -> Stamp {
        Stamp {
            date: Date::new(2026, 1, 2).unwrap(),
            hour: 3,
            minute: 4,
        }
    }

    /// A 999 interchange around `body` (the segments between ST and SE), with a correct SE01.
    fn ack999(body: &[&str]) -> String {
        let mut s = format!(
            "{ISA}GS*FA*PAYER*GATEWAY*20260102*0304*9*X*005010X231A1~ST*999*0001*005010X231A1~"
        );
        for b in body {
            s.push_str(b);
            s.push('~');
        }
        s.push_str(&format!(
            "SE*{}*0001~GE*1*9~IEA*1*000000005~",
            body.len() + 2
        ));
        s
    }

    fn only_999(data: &str) -> (ImplementationAck, Vec<Issue>) {
        let (acks, issues) = parse_acks(data.as_bytes());
        assert_eq!(acks.len(), 1, "{acks:?} {issues:?}");
        let Acknowledgement::Implementation(a) = acks.into_iter().next().unwrap() else {
            panic!("not a 999")
        };
        (a, issues)
    }

    fn codes(issues: &[Issue]) -> Vec<&str> {
        issues.iter().map(|i| i.code).collect()
    }

    #[test]
    fn reads_errors_with_context_and_descriptions() {
        let (a, issues) = only_999(&ack999(&[
            "AK1*HI*17*005010X217",
            "AK2*278*0001*005010X217",
            "IK3*NM1*8*2010*8",
            "CTX*SITUATIONAL TRIGGER*HL*6*2000C*3",
            "IK4*9:2*67*7*XYZ",
            "CTX*TRN02:TRACE1",
            "IK4*3**1",
            "IK5*R*5*I5",
            "AK9*R*1*1*0*5",
        ]));
        assert!(issues.is_empty(), "{issues:?}");
        let t = &a.group.transactions[0];
        assert!(!t.accepted && !a.group.accepted);
        let e = &t.segment_errors[0];
        assert_eq!(
            (e.segment_id.as_str(), e.position, e.loop_id.as_deref()),
            ("NM1", Some(8), Some("2010"))
        );
        assert_eq!(
            e.error.as_ref().unwrap().description,
            Some("Segment has data element errors")
        );
        assert_eq!(e.context[0].name, "SITUATIONAL TRIGGER");
        assert_eq!(
            (e.context[0].segment_position, e.context[0].element_position),
            (Some(6), Some(3))
        );
        let el = &e.element_errors[0];
        assert_eq!(
            (el.position, el.component, el.data_element.as_deref()),
            (Some(9), Some(2), Some("67"))
        );
        assert_eq!(
            el.error.as_ref().unwrap().description,
            Some("Invalid code value")
        );
        assert_eq!(el.bad_value.as_deref(), Some("XYZ"));
        assert_eq!(el.context[0].reference.as_deref(), Some("TRACE1"));
        assert_eq!(e.element_errors[1].error.as_ref().unwrap().code, "1");
        let st = t.status.as_ref().unwrap();
        assert_eq!(st.status, "rejected");
        assert_eq!(
            st.errors
                .iter()
                .map(|c| c.code.as_str())
                .collect::<Vec<_>>(),
            ["5", "I5"]
        );
        let ak9 = a.group.status.as_ref().unwrap();
        assert_eq!(
            (ak9.included, ak9.received, ak9.accepted),
            (Some(1), Some(1), Some(0))
        );
        assert_eq!(
            ak9.errors[0].description,
            Some("Number of included transaction sets does not match actual count")
        );
        let json = serde_json::to_value(Acknowledgement::Implementation(a)).unwrap();
        assert_eq!(json["type"], "999");
        assert_eq!(
            json["group"]["transactions"][0]["segment_errors"][0]["element_errors"][0]["error"]["code"],
            "7"
        );
    }

    #[test]
    fn malformed_content_is_located() {
        let (a, issues) = only_999(&ack999(&[
            "AK2*278*0001",         // 3: before AK1
            "IK4*1**1",             // 4: no IK3
            "IK3*NM1*X**99",        // 5: position not a number, unknown IK304
            "AK1*HI*17*005010X217", // 6: AK2 left open, AK1 late
            "FOO*1",                // 7: not a 999 segment
            "AK2*278*0002",         // 8
            "IK5*Q",                // 9: unknown IK501
            "AK9*A*1*one*1",        // 10: AK903 not a number
        ]));
        let got: Vec<(&str, Option<usize>, Option<usize>)> = issues
            .iter()
            .map(|i| (i.code, i.location.segment_position, i.location.element))
            .collect();
        assert_eq!(
            got,
            [
                ("ack_999_segment_order", Some(2), None),
                ("ack_999_segment_order", Some(3), None),
                ("ack_999_element_invalid", Some(4), Some(2)),
                ("ack_999_code_unknown", Some(4), Some(4)),
                ("ack_999_segment_missing", Some(2), None),
                ("ack_999_segment_order", Some(5), None),
                ("ack_999_unexpected_segment", Some(6), None),
                ("ack_999_code_unknown", Some(8), Some(1)),
                ("ack_999_element_invalid", Some(9), Some(3)),
                ("ack_999_inconsistent", Some(1), None),
            ],
            "{issues:#?}"
        );
        // Every issue knows where it is in the file too.
        assert!(
            issues[..8]
                .iter()
                .all(|i| i.location.segment_index.is_some() && i.location.interchange == Some(1))
        );
        assert_eq!(issues[2].value.as_deref(), Some("X"));
        // What could be read was read.
        assert_eq!(a.group.control_number, "17");
        assert_eq!(a.group.transactions.len(), 2);
        assert_eq!(
            a.group.transactions[0].segment_errors[0]
                .error
                .as_ref()
                .unwrap()
                .description,
            None
        );
        assert!(!a.group.transactions[1].accepted);
    }

    #[test]
    fn missing_trailers_of_a_999() {
        let (_, issues) = only_999(&ack999(&["AK1*HI*17*005010X217", "AK2*278*0001"]));
        assert_eq!(
            codes(&issues),
            ["ack_999_segment_missing", "ack_999_segment_missing"]
        );
        assert_eq!(issues[0].location.segment_id.as_deref(), Some("AK2"));
        assert!(issues[1].message.contains("AK9"));
        let (_, issues) = only_999(&ack999(&[]));
        assert_eq!(codes(&issues), ["ack_999_segment_missing"]);
        assert!(issues[0].message.contains("AK1"));
    }

    #[test]
    fn reads_ta1_with_words() {
        let data = format!("{ISA}TA1*000000042*260101*1200*R*001~IEA*0*000000005~");
        let (acks, issues) = parse_acks(data.as_bytes());
        assert!(issues.is_empty(), "{issues:?}");
        let Acknowledgement::Interchange(t) = &acks[0] else {
            panic!()
        };
        assert_eq!(
            (t.control_number.as_str(), t.status, t.accepted),
            ("000000042", "rejected", false)
        );
        assert!(
            t.note.description.unwrap().starts_with(
                "The interchange control number in the header and trailer do not match"
            )
        );
        assert_eq!(t.location.segment_index, Some(2));
        let data = format!("{ISA}TA1*000000042*260101*1200*E*099~IEA*0*000000005~");
        let (acks, issues) = parse_acks(data.as_bytes());
        assert!(acks[0].accepted());
        assert_eq!(codes(&issues), ["ack_ta1_note_code"]);
        assert_eq!(issues[0].location.element, Some(5));
    }

    #[test]
    fn values_are_made_safe_for_a_999() {
        let d = Delimiters::default();
        assert_eq!(loop_code("2010B").as_deref(), Some("2010"));
        assert_eq!(loop_code("2010CA").as_deref(), Some("2010"));
        assert_eq!(loop_code("2000").as_deref(), Some("2000"));
        assert_eq!(loop_code("HEADER"), None);
        assert_eq!(bad_value(Some(" A1 "), &d).as_deref(), Some("A1"));
        assert_eq!(bad_value(Some("A*B"), &d), None);
        assert_eq!(bad_value(Some("é"), &d), None);
        assert_eq!(
            bad_value(Some(&"x".repeat(150)), &d).map(|v| v.len()),
            Some(99)
        );
        assert!(
            segment_id_ok("NM1")
                && !segment_id_ok("nm1")
                && !segment_id_ok("NM1X")
                && !segment_id_ok("?")
        );
        assert!(
            writable("0001", 4, 9, &d)
                && !writable("1", 4, 9, &d)
                && !writable("00~1", 4, 9, &d)
                && !writable("    ", 4, 9, &d)
        );
    }

    /// A received 278 interchange with two sets, and its summary.
    fn received() -> (InterchangeSummary, Location, Location) {
        let data = format!(
            "{}GS*HI*CLINIC*PAYER*20260101*1200*7*X*005010X217~ST*278*0001*005010X217~BHT*0007*13*R1*20260101*1200~HL*1**20*1~SE*4*0001~ST*278*0002*005010X217~BHT*0007*13*R2*20260101*1200~SE*3*0002~GE*2*7~IEA*1*000000005~",
            ISA.replace(
                "PAYER          *ZZ*GATEWAY        ",
                "CLINIC         *ZZ*PAYER          "
            )
        );
        let (summary, issues) = read_envelopes(data.as_bytes());
        assert!(issues.is_empty(), "{issues:?}");
        let set = |t: usize| summary[0].groups[0].transactions[t].location.clone();
        let (a, b) = (set(0), set(1));
        (summary.into_iter().next().unwrap(), a, b)
    }

    fn at(base: &Location, position: usize, id: &str, element: Option<usize>) -> Location {
        Location {
            segment_position: Some(position),
            segment_id: Some(id.into()),
            element,
            ..base.clone()
        }
    }

    fn acknowledge(summary: &InterchangeSummary, issues: &[Issue]) -> Generated999 {
        let g = generate_999(
            summary,
            issues,
            &EnvelopeSettings::default(),
            &MemoryControlNumbers::new(),
            stamp(),
        )
        .unwrap();
        // What we write reads back as what we meant, without a single issue.
        let (acks, problems) = parse_acks(&g.bytes);
        assert!(
            problems.is_empty(),
            "{problems:?}\n{}",
            String::from_utf8_lossy(&g.bytes)
        );
        let read: Vec<AcknowledgedGroup> = acks
            .into_iter()
            .map(|a| match a {
                Acknowledgement::Implementation(i) => i.group,
                Acknowledgement::Interchange(_) => panic!("a TA1 in a 999 interchange"),
            })
            .collect();
        assert_eq!(read, g.groups);
        g
    }

    fn status(g: &Generated999, t: usize) -> (String, Vec<String>) {
        let s = g.groups[0].transactions[t].status.clone().unwrap();
        (s.code, s.errors.into_iter().map(|c| c.code).collect())
    }

    #[test]
    fn warnings_note_errors_reject() {
        let (summary, t1, t2) = received();
        let g = acknowledge(&summary, &[]);
        assert_eq!(status(&g, 0), ("A".into(), vec![]));
        assert_eq!(g.groups[0].status.as_ref().unwrap().code, "A");

        let warn = Issue::warning("style", at(&t1, 2, "BHT", Some(3)), "odd reference").value("R1");
        let g = acknowledge(&summary, std::slice::from_ref(&warn));
        assert_eq!(status(&g, 0), ("E".into(), vec!["5".into()]));
        assert_eq!(
            g.groups[0].transactions[0].segment_errors[0].element_errors[0]
                .error
                .as_ref()
                .unwrap()
                .code,
            "I12"
        );
        let ak9 = g.groups[0].status.clone().unwrap();
        assert_eq!((ak9.code.as_str(), ak9.accepted), ("E", Some(2)));

        let err =
            Issue::error("hl", at(&t2, 2, "BHT", None), "BHT wrong").ack(AckCode::Segment("I4"));
        let g = acknowledge(&summary, &[warn, err]);
        assert_eq!(status(&g, 1), ("R".into(), vec!["I5".into()]));
        let ak9 = g.groups[0].status.clone().unwrap();
        assert_eq!(
            (ak9.code.as_str(), ak9.included, ak9.received, ak9.accepted),
            ("P", Some(2), Some(2), Some(1))
        );
        assert!(!g.groups[0].accepted);
    }

    #[test]
    fn segment_codes_element_codes_and_folding() {
        let (summary, t1, _) = received();
        let mut loc = at(&t1, 3, "HL", Some(3));
        loc.loop_id = Some("2000A".into());
        let issues = [
            Issue::error("el", loc.clone(), "bad HL03")
                .value("99")
                .ack(AckCode::Element("7")),
            Issue::error(
                "el2",
                Location {
                    component: Some(2),
                    ..loc.with_element(1)
                },
                "bad",
            )
            .ack(AckCode::Element("I6")),
            Issue::error("seg", at(&t1, 3, "HL", None), "order").ack(AckCode::Segment("7")),
            Issue::error("nowhere", t1.clone(), "a rule with no segment"),
            Issue::error("unknown_code", at(&t1, 2, "BHT", Some(2)), "x")
                .ack(AckCode::Element("77")),
            Issue::error("bad_value", at(&t1, 2, "BHT", Some(3)), "x").value("A*B"),
        ];
        let g = acknowledge(&summary, &issues);
        let t = &g.groups[0].transactions[0];
        let ik3: Vec<(String, Option<usize>, Option<String>, String)> = t
            .segment_errors
            .iter()
            .map(|e| {
                (
                    e.segment_id.clone(),
                    e.position,
                    e.loop_id.clone(),
                    e.error.clone().unwrap().code,
                )
            })
            .collect();
        assert_eq!(
            ik3,
            [
                ("BHT".into(), Some(2), None, "8".into()),
                ("HL".into(), Some(3), Some("2000".into()), "7".into())
            ]
        );
        let bht = &t.segment_errors[0].element_errors;
        assert_eq!(
            bht.iter()
                .map(|e| e.error.clone().unwrap().code)
                .collect::<Vec<_>>(),
            ["I12", "I12"]
        );
        assert_eq!(bht[1].bad_value, None);
        let hl = &t.segment_errors[1].element_errors;
        assert_eq!((hl[0].position, hl[0].component), (Some(1), Some(2)));
        assert_eq!(
            (hl[1].position, hl[1].bad_value.as_deref()),
            (Some(3), Some("99"))
        );
        assert_eq!(status(&g, 0), ("R".into(), vec!["5".into(), "I5".into()]));
        let noted: Vec<&str> = g.notes.iter().map(|n| n.message.as_str()).collect();
        assert_eq!(noted.len(), 3, "{noted:?}");
        assert!(noted.iter().any(|n| n.contains("[nowhere]")));
        assert!(
            noted
                .iter()
                .any(|n| n.contains("[unknown_code]") && n.contains("not in its code list"))
        );
        assert!(
            noted
                .iter()
                .any(|n| n.contains("[bad_value]") && n.contains("IK404"))
        );
    }

    #[test]
    fn group_codes_reject_the_group_and_interchange_codes_do_not() {
        let (summary, t1, _) = received();
        let group = Location {
            transaction: None,
            control_number: None,
            ..t1.clone()
        };
        let issues = [
            Issue::error("ge_count", group.clone(), "count").ack(AckCode::Group("5")),
            Issue::error("stray", group.clone(), "stray").ack(AckCode::Interchange("024")),
            Issue::error("se_count", at(&t1, 4, "SE", Some(1)), "count")
                .ack(AckCode::Transaction("4")),
        ];
        let g = acknowledge(&summary, &issues);
        let ak9 = g.groups[0].status.clone().unwrap();
        assert_eq!((ak9.code.as_str(), ak9.accepted), ("R", Some(0)));
        assert_eq!(ak9.errors[0].code, "5");
        assert_eq!(status(&g, 0), ("R".into(), vec!["4".into()]));
        assert!(g.groups[0].transactions[0].segment_errors.is_empty());
        assert_eq!(status(&g, 1), ("A".into(), vec![]));
        // Another interchange's issues are not ours.
        let mut other = issues[0].clone();
        other.location.interchange = Some(2);
        assert_eq!(
            acknowledge(&summary, &[other]).groups[0]
                .status
                .clone()
                .unwrap()
                .code,
            "A"
        );
    }

    #[test]
    fn limits_keep_the_999_valid() {
        let (summary, t1, _) = received();
        let mut issues = vec![];
        for e in 1..=150 {
            issues.push(
                Issue::error("many", at(&t1, 2, "BHT", Some(e.min(99))), "x")
                    .ack(AckCode::Element(if e % 2 == 0 { "7" } else { "1" })),
            );
        }
        for n in 0..10 {
            let code = ["1", "2", "3", "4", "6", "7", "19", "23", "I6", "2"][n];
            issues.push(Issue::error("tx", t1.clone(), "x").ack(AckCode::Transaction(code)));
        }
        issues.push(
            Issue::error("far", at(&t1, 2, "BHT", Some(100)), "x").ack(AckCode::Element("5")),
        );
        let g = acknowledge(&summary, &issues);
        let t = &g.groups[0].transactions[0];
        assert_eq!(t.segment_errors[0].element_errors.len(), MAX_IK4_PER_IK3);
        // The code saying segments are in error is kept over the last transaction codes.
        let ik5: Vec<&str> = t
            .status
            .as_ref()
            .unwrap()
            .errors
            .iter()
            .map(|c| c.code.as_str())
            .collect();
        assert_eq!(ik5, ["1", "2", "3", "4", "5"]);
        assert!(
            g.notes
                .iter()
                .any(|n| n.message.ends_with("left out: 6, 7, 19, 23, I6"))
        );
        assert!(
            g.notes
                .iter()
                .any(|n| n.message.contains("IK5 holds 5 codes"))
        );
        assert!(g.notes.iter().any(|n| n.message.contains("element 100")));
    }

    #[test]
    fn what_cannot_be_echoed_is_left_out() {
        let data = format!(
            "{ISA}GS*HI*A*B*20260101*1200*12X*X*005010X217~ST*278*0001*005010X217~SE*2*0001~GE*1*12X~GS*HI*A*B*20260101*1200*8*X*005010X217~ST*278*01*005010X217~SE*2*01~ST*278*0002*005010X217~SE*2*0002~GE*2*8~IEA*2*000000005~"
        );
        let (summary, issues) = read_envelopes(data.as_bytes());
        assert_eq!(codes(&issues), ["gs_control_number", "st_control_number"]);
        let g = generate_999(
            &summary[0],
            &issues,
            &EnvelopeSettings::default(),
            &MemoryControlNumbers::new(),
            stamp(),
        )
        .unwrap();
        assert_eq!(g.groups.len(), 1);
        assert_eq!(g.groups[0].control_number, "8");
        assert_eq!(g.groups[0].transactions.len(), 1);
        let ak9 = g.groups[0].status.clone().unwrap();
        assert_eq!(
            (ak9.code.as_str(), ak9.received, ak9.accepted),
            ("P", Some(2), Some(1))
        );
        assert!(g.notes.iter().any(|n| {
            n.message
                .contains("functional group 1 cannot be acknowledged")
        }));
        assert!(g.notes.iter().any(|n| {
            n.message
                .contains("transaction set 1 cannot be acknowledged")
        }));
        let text = String::from_utf8(g.bytes).unwrap();
        assert!(!text.contains("12X") && !text.contains("*01*"), "{text}");
        // Nothing left to acknowledge: an error saying so.
        let data = format!("{ISA}IEA*0*000000005~");
        let (summary, issues) = read_envelopes(data.as_bytes());
        let err = generate_999(
            &summary[0],
            &issues,
            &EnvelopeSettings::default(),
            &MemoryControlNumbers::new(),
            stamp(),
        )
        .unwrap_err();
        assert_eq!(err.issues[0].code, "ack_nothing_to_acknowledge");
    }

    #[test]
    fn ta1_answers_the_interchange() {
        let data = format!("{ISA}GS*HI*A*B*20260101*1200*8*X*005010X217~GE*0*8~IEA*1*000000006~");
        let (summary, issues) = read_envelopes(data.as_bytes());
        let n = MemoryControlNumbers::new();
        let t = generate_ta1(
            &summary[0].header,
            &issues,
            &EnvelopeSettings::default(),
            &n,
            stamp(),
        )
        .unwrap();
        assert_eq!(
            (t.code, t.note_code.as_str(), t.acknowledged.as_str()),
            ("R", "001", "000000005")
        );
        let text = String::from_utf8(t.bytes.clone()).unwrap();
        assert!(
            text.contains(
                "*ZZ*GATEWAY        *ZZ*PAYER          *260102*0304*^*00501*000000001*0*T*:~"
            ),
            "{text}"
        );
        assert!(text.contains("TA1*000000005*260102*0304*R*001~"), "{text}");
        assert!(text.ends_with("IEA*0*000000001~\n"), "{text}");
        let (acks, problems) = parse_acks(&t.bytes);
        assert!(problems.is_empty(), "{problems:?}");
        let Acknowledgement::Interchange(read) = &acks[0] else {
            panic!()
        };
        assert_eq!(
            (
                read.code.as_str(),
                read.note.code.as_str(),
                read.sender_id.as_str()
            ),
            ("R", "001", "GATEWAY")
        );
        // Warnings only: accepted with errors; nothing: accepted.
        let mut w = issues.clone();
        w[0].severity = Severity::Warning;
        let t = generate_ta1(
            &summary[0].header,
            &w,
            &EnvelopeSettings::default(),
            &n,
            stamp(),
        )
        .unwrap();
        assert_eq!(
            (t.code, t.note_code.as_str(), t.control_number),
            ("E", "001", 2)
        );
        let t = generate_ta1(
            &summary[0].header,
            &[],
            &EnvelopeSettings::default(),
            &n,
            stamp(),
        )
        .unwrap();
        assert_eq!((t.code, t.note_code.as_str()), ("A", "000"));
    }

    #[test]
    fn reader_issues_belong_to_their_interchange() {
        let loose = "ISA*00*          *00*          *ZZ*A *ZZ*B *260102*0304*^*00501*000000007*0*T*:~IEA*0*000000007~";
        let data = format!("{ISA}IEA*0*000000005~{loose}");
        let (summary, issues) = read_envelopes(data.as_bytes());
        assert_eq!(summary.len(), 2);
        assert_eq!(codes(&issues), ["isa_layout"]);
        assert_eq!(issues[0].location.interchange, Some(2));
        let t = generate_ta1(
            &summary[1].header,
            &issues,
            &EnvelopeSettings::default(),
            &MemoryControlNumbers::new(),
            stamp(),
        )
        .unwrap();
        assert_eq!((t.code, t.note_code.as_str()), ("R", "022"));
        let t = generate_ta1(
            &summary[0].header,
            &issues,
            &EnvelopeSettings::default(),
            &MemoryControlNumbers::new(),
            stamp(),
        )
        .unwrap();
        assert_eq!(t.code, "A");
    }
}
