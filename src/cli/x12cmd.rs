//! translate / parse / validate for X12 and the internal JSON.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::streamout::{self, Input};
use super::{AckKind, EnvelopeArgs, Format, read_input};
use crate::domain::AuthorizationRequest;
use crate::x12::error::{Issue, Location, Severity};
use crate::x12::guide;
use crate::x12::syntax::Unit;
use crate::x12::tx278;
use crate::x12::writer::{EnvelopeSettings, MemoryControlNumbers, Stamp};

fn split_id(v: &str, what: &str) -> Result<(String, String), String> {
    match v.split_once(':') {
        Some((q, id)) if !q.is_empty() && !id.is_empty() => Ok((q.to_owned(), id.to_owned())),
        _ => Err(format!(
            "--{what} must be QUALIFIER:ID, e.g. ZZ:PAYER (got {v:?})"
        )),
    }
}

pub fn envelope_settings(a: &EnvelopeArgs) -> Result<EnvelopeSettings, String> {
    let (sq, sid) = split_id(&a.sender, "sender")?;
    let (rq, rid) = split_id(&a.receiver, "receiver")?;
    Ok(EnvelopeSettings {
        sender_qualifier: sq,
        sender_id: sid,
        receiver_qualifier: rq,
        receiver_id: rid,
        production: a.production,
        ack_requested: a.ack_requested,
        newline: !a.compact,
        ..EnvelopeSettings::default()
    })
}

pub(crate) use crate::x12::syntax::looks_like_x12;

/// Reads requests from our JSON: one request, an array of them, or `translate --to json` output.
pub fn requests_from_json(data: &[u8]) -> Result<Vec<AuthorizationRequest>, String> {
    let v: Value =
        serde_json::from_slice(data).map_err(|e| format!("the input is not valid JSON: {e}"))?;
    let items: Vec<(String, Value)> = match v {
        Value::Array(a) => a
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("[{i}]"), v))
            .collect(),
        Value::Object(ref o) if o.contains_key("transactions") => o["transactions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .enumerate()
                    .filter_map(|(i, t)| {
                        t.pointer("/message/request")
                            .map(|r| (format!("transactions[{i}].message.request"), r.clone()))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        other => vec![(String::new(), other)],
    };
    if items.is_empty() {
        return Err("the input holds no authorization request".into());
    }
    items
        .into_iter()
        .map(|(path, v)| {
            serde_path_to_error(v).map_err(|e| {
                if path.is_empty() {
                    e
                } else {
                    format!("{path}: {e}")
                }
            })
        })
        .collect()
}

/// Deserializes with the JSON path of the failing field in the message.
fn serde_path_to_error(v: Value) -> Result<AuthorizationRequest, String> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            format!("not a valid authorization request: {inner}")
        } else {
            format!("not a valid authorization request: field `{path}`: {inner}")
        }
    })
}

pub fn print_issues(issues: &[&Issue]) {
    let mut err = std::io::stderr().lock();
    for i in issues {
        let _ = writeln!(err, "{i}");
    }
}

pub fn translate(
    to: Format,
    from: Option<Format>,
    env: &EnvelopeArgs,
    file: &PathBuf,
) -> Result<ExitCode, String> {
    let input = Input::open(file)?;
    let from = from.unwrap_or(if input.is_x12 {
        Format::X12
    } else {
        Format::Json
    });
    match (from, to) {
        (Format::Json, Format::X12) => {
            let data = input.read_all()?;
            let requests = requests_from_json(&data)?;
            // What the hub holds and a 278 has no room for is said, never dropped silently.
            let lost: Vec<Issue> = requests
                .iter()
                .flat_map(tx278::request_not_carried)
                .collect();
            print_issues(&lost.iter().collect::<Vec<_>>());
            let settings = envelope_settings(env)?;
            let controls =
                MemoryControlNumbers::starting_after(env.control_number.saturating_sub(1));
            let out = tx278::encode_requests(&requests, &settings, &controls, Stamp::now())
                .map_err(|e| e.to_string())?;
            std::io::stdout()
                .write_all(&out)
                .map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        // Streamed: any size of input in bounded memory.
        (Format::X12, Format::Json) => streamout::translate_to_json(input),
        (a, b) => Err(format!(
            "translating {a:?} to {b:?} is not supported: use --to x12 for JSON input, --to json for X12 input"
        )),
    }
}

/// Streamed: any size of input in bounded memory (see `streamout`).
pub fn parse(file: &PathBuf) -> Result<ExitCode, String> {
    let input = Input::open(file)?;
    if !input.is_x12 {
        return Err(format!(
            "{}: not an X12 interchange (it does not start with ISA)",
            file.display()
        ));
    }
    streamout::parse(input)
}

/// Every located problem of an X12 input: envelope, 278 content (the codec and the guide)
/// and 999 / TA1 content. Where the guide and the codec report the same place, the guide's
/// issue is kept.
pub fn check_x12(data: &[u8]) -> (tx278::DecodedFile, Vec<Issue>) {
    let mut decoded = tx278::decode_issues(data);
    // 999s are read by the acknowledgement parser below, not skipped.
    for t in decoded
        .transactions
        .iter_mut()
        .filter(|t| t.transaction.id == "999")
    {
        t.issues.retain(|i| i.code != "not_a_278");
    }
    let guide_issues = guide_issues(data);
    // Places are looked up in sets: a large file has hundreds of thousands of issues, and
    // comparing each with every other is quadratic (a 1 GB batch ran over ten minutes).
    let place = |i: &Issue| {
        let l = &i.location;
        l.segment_index.map(|s| (s, l.element, l.component))
    };
    let guide_places: HashSet<_> = guide_issues.iter().filter_map(place).collect();
    let mut issues: Vec<Issue> = decoded.issues.clone();
    for t in &decoded.transactions {
        issues.extend(
            t.issues
                .iter()
                .filter(|i| place(i).is_none_or(|p| !guide_places.contains(&p)))
                .cloned(),
        );
    }
    let mut taken: HashSet<_> = issues
        .iter()
        .filter_map(|i| place(i).map(|p| (i.code, p)))
        .collect();
    for g in guide_issues {
        match place(&g) {
            Some(p) if !taken.insert((g.code, p)) => {}
            _ => issues.push(g),
        }
    }
    let (_, ack_issues) = crate::x12::ack::parse_acks(data);
    for i in ack_issues {
        if !issues.contains(&i) {
            issues.push(i);
        }
    }
    (decoded, issues)
}

pub fn validate(
    file: &PathBuf,
    ack: Option<AckKind>,
    lenient: bool,
    as_json: bool,
) -> Result<ExitCode, String> {
    let data = read_input(file)?;
    if !looks_like_x12(&data) {
        return Err(format!(
            "{}: not an X12 interchange (it does not start with ISA)",
            file.display()
        ));
    }
    let (decoded, issues) = check_x12(&data);
    let rejecting: Vec<&Issue> = issues.iter().filter(|i| rejects(i, lenient)).collect();
    if as_json {
        let v = json!({ "valid": rejecting.is_empty(), "issues": issues });
        eprintln!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
        );
    } else {
        print_issues(&issues.iter().collect::<Vec<_>>());
    }
    if let Some(kind) = ack {
        // Lenient mode accepts what it can read: its non-fatal errors are acknowledged as warnings
        // (999 IK5*E, TA1 E) instead of rejections.
        let issues: Vec<Issue> = issues
            .iter()
            .cloned()
            .map(|mut i| {
                if i.severity == Severity::Error && !rejects(&i, lenient) {
                    i.severity = Severity::Warning;
                }
                i
            })
            .collect();
        let ours = EnvelopeSettings::default();
        let controls = MemoryControlNumbers::new();
        let stamp = Stamp::now();
        let mut out = std::io::stdout().lock();
        for received in &decoded.summary {
            let bytes = match kind {
                AckKind::Ack999 => {
                    crate::x12::ack::generate_999(received, &issues, &ours, &controls, stamp)
                        .map(|g| g.bytes)
                }
                AckKind::Ta1 => crate::x12::ack::generate_ta1(
                    &received.header,
                    &issues,
                    &ours,
                    &controls,
                    stamp,
                )
                .map(|g| g.bytes),
            }
            .map_err(|e| format!("writing the acknowledgement failed: {e}"))?;
            out.write_all(&bytes).map_err(|e| e.to_string())?;
        }
        if decoded.summary.is_empty() {
            return Err("no interchange could be read, so there is nothing to acknowledge".into());
        }
    }
    Ok(if rejecting.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Whether an issue makes the input invalid: in strict mode every error; in lenient mode
/// only errors that leave the content unreadable (`guide::Mode`).
fn rejects(i: &Issue, lenient: bool) -> bool {
    let mode = if lenient {
        guide::Mode::Lenient
    } else {
        guide::Mode::Strict
    };
    mode.rejects_issue(i)
}

/// What the implementation guide says of every 278 and group header in `data`.
pub(crate) fn guide_issues(data: &[u8]) -> Vec<Issue> {
    let mut guide_issues = Vec::new();
    let mut tracker = crate::x12::envelope::EnvelopeTracker::new();
    let mut envelope_again = Vec::new();
    crate::x12::envelope::walk(
        data,
        &mut tracker,
        &mut envelope_again,
        |tracker, unit, header, _| match (unit, header) {
            (Unit::Transaction(tx), Some(h)) if h.id == "278" => {
                guide_issues.extend(guide::validate_278(tx, &h.location))
            }
            (Unit::Segment(s), None) if s.is(b"GS") => {
                // Groups of acknowledgements (FA) are checked by the 999 reader.
                if let (Some(gs), Some(isa)) = (
                    tracker.group().filter(|g| g.functional_id != "FA"),
                    tracker.interchange(),
                ) {
                    let loc = Location {
                        interchange: Some(isa.index),
                        group: Some(gs.index),
                        segment_index: Some(s.index),
                        segment_id: Some("GS".into()),
                        byte_offset: Some(s.offset),
                        ..Location::default()
                    };
                    guide_issues.extend(guide::validate_group_header(gs, &loc));
                }
            }
            _ => {}
        },
    );
    guide_issues
}
