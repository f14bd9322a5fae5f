//! translate / parse / validate for X12 and the internal JSON.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;

use super::streamout::{self, Input};
use super::{AckKind, EnvelopeArgs, Format, read_input};
use crate::domain::AuthorizationRequest;
use crate::x12::error::{Issue, Severity};
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

pub(crate) fn looks_like_x12(data: &[u8]) -> bool {
    let t = data.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(data);
    t.iter()
        .position(|b| !b.is_ascii_whitespace())
        .is_some_and(|i| t[i..].starts_with(b"ISA"))
}

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

pub fn validate(
    file: &PathBuf,
    ack: Option<AckKind>,
    lenient: bool,
    as_json: bool,
) -> Result<ExitCode, String> {
    let data = read_input(file)?;
    let decoded = tx278::decode_all(&data);
    let issues: Vec<&Issue> = decoded.all_issues().collect();
    let _ = (ack, lenient);
    let errors: Vec<&Issue> = issues
        .iter()
        .copied()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&issues).map_err(|e| e.to_string())?
        );
    } else {
        print_issues(&issues);
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
