//! Da Vinci PAS on the command line: translate PAS <-> X12 278, parse PAS responses into the
//! decision JSON, validate PAS bundles into an OperationOutcome. Wiring only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};

use super::{EnvelopeArgs, Format, read_input};
use crate::fhir::validate::{PasKind, kind_of, looks_like_fhir, parse_json, validate_bundle};
use crate::fhir::{
    Bundle, FhirIssue, ResponseInput, Transmission, bundle_from_request_with, operation_outcome,
    request_from_bundle, response::decision_from_json, response_bundle,
};
use crate::x12::error::{Issue, Severity};
use crate::x12::tx278::{self, Message278};
use crate::x12::writer::{MemoryControlNumbers, Stamp};

/// Whether a file (not standard input) holds FHIR JSON, so parse / validate hand it here.
pub fn is_pas_file(path: &Path) -> bool {
    if path.as_os_str() == "-" {
        return false;
    }
    let mut head = vec![0u8; 4096];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .unwrap_or(0);
    looks_like_fhir(&head[..n])
}

fn print_json(v: &impl serde::Serialize) -> Result<(), String> {
    let s = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}").map_err(|e| e.to_string())
}

fn print_outcome(issues: &[FhirIssue]) -> Result<(), String> {
    print_json(&operation_outcome(issues))
}

fn eprint_issues(issues: &[FhirIssue]) {
    let mut err = std::io::stderr().lock();
    for i in issues {
        let _ = writeln!(err, "{i}");
    }
}

/// Reads and types a PAS bundle; an unreadable one is reported as an OperationOutcome.
fn read_bundle(data: &[u8]) -> Result<(Value, Bundle), Vec<FhirIssue>> {
    let v = parse_json(data).map_err(|i| vec![i])?;
    let b: Bundle = serde_path_to_error::deserialize(v.clone()).map_err(|e| {
        vec![FhirIssue::error(
            "structure",
            format!("{}.{}", v["resourceType"].as_str().unwrap_or(""), e.path()),
            e.inner().to_string(),
        )]
    })?;
    Ok((v, b))
}

pub fn translate(
    to: Format,
    from: Option<Format>,
    env: &EnvelopeArgs,
    response_to: Option<&PathBuf>,
    file: &PathBuf,
) -> Result<ExitCode, String> {
    let data = read_input(file)?;
    let from = from.unwrap_or(if looks_like_fhir(&data) {
        Format::Pas
    } else {
        Format::X12
    });
    match (from, to) {
        (Format::Pas, Format::X12) => pas_to_x12(&data, env, response_to),
        (Format::X12, Format::Pas) => match response_to {
            Some(req) => x12_response_to_pas(&data, &read_input(req)?),
            None => x12_to_pas(&data),
        },
        (Format::Pas, Format::Json) => {
            let (_, b) = match read_bundle(&data) {
                Ok(x) => x,
                Err(i) => {
                    print_outcome(&i)?;
                    return Ok(ExitCode::FAILURE);
                }
            };
            let (r, issues) = request_from_bundle(&b);
            eprint_issues(&issues);
            match r {
                Some(r) => {
                    print_json(&r)?;
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    print_outcome(&issues)?;
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        (a, b) => Err(format!(
            "translating {a:?} to {b:?} is not supported: PAS goes to x12 or json, X12 goes to pas"
        )),
    }
}

fn pas_to_x12(
    data: &[u8],
    env: &EnvelopeArgs,
    response_to: Option<&PathBuf>,
) -> Result<ExitCode, String> {
    let (v, b) = match read_bundle(data) {
        Ok(x) => x,
        Err(i) => {
            print_outcome(&i)?;
            return Ok(ExitCode::FAILURE);
        }
    };
    match kind_of(&v) {
        PasKind::RequestBundle => {}
        PasKind::ResponseBundle | PasKind::ClaimResponse => {
            return pas_response_to_x12(&v, env, response_to);
        }
        _ => {
            print_outcome(&[FhirIssue::error(
                "not-supported",
                "Bundle.entry[0].resource",
                "a PAS request bundle (Claim first) translates to a 278 request, a response \
                 bundle or ClaimResponse to a 278 response; this is neither",
            )])?;
            return Ok(ExitCode::FAILURE);
        }
    }
    let mut issues = validate_bundle(&v);
    let (req, map_issues) = request_from_bundle(&b);
    issues.extend(map_issues);
    eprint_issues(&issues);
    let Some(req) = req else {
        print_outcome(&issues)?;
        return Ok(ExitCode::FAILURE);
    };
    // What the hub holds and a 278 has no room for is said, never dropped silently.
    let lost = tx278::request_not_carried(&req);
    super::x12cmd::print_issues(&lost.iter().collect::<Vec<_>>());
    let mut settings = super::x12cmd::envelope_settings(env)?;
    if let Some(t) = Transmission::of(&b) {
        t.apply_to(&mut settings);
    }
    let controls = MemoryControlNumbers::starting_after(env.control_number.saturating_sub(1));
    let out = tx278::encode_requests(
        std::slice::from_ref(&req),
        &settings,
        &controls,
        Stamp::now(),
    )
    .map_err(|e| e.to_string())?;
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// A PAS response (Bundle with the ClaimResponse first, or a bare ClaimResponse) -> the 278
/// response that says the same (the intermediary's way back to an X12 requester). A 278
/// response echoes the request's parties, event and lines, which a ClaimResponse does not carry:
/// they come from `--response-to` (the PAS request Bundle or the X12 278 request it answers).
/// The 278 is checked against the guide before it is printed.
fn pas_response_to_x12(
    v: &serde_json::Value,
    env: &EnvelopeArgs,
    response_to: Option<&PathBuf>,
) -> Result<ExitCode, String> {
    let (resp, issues) = crate::fhir::response::decision_from_json(v);
    eprint_issues(&issues);
    let Some(resp) = resp else {
        print_outcome(&issues)?;
        return Ok(ExitCode::FAILURE);
    };
    let Some(req_path) = response_to else {
        return Err(
            "a 278 response echoes the request's parties, event and service lines, which \
             a ClaimResponse does not carry: give --response-to REQUEST (the PAS request Bundle \
             or the X12 278 request this answers)"
                .into(),
        );
    };
    let request = request_of(&read_input(req_path)?)
        .map_err(|e| format!("--response-to {}: {e}", req_path.display()))?;
    if request.submitter_reference != resp.submitter_reference {
        eprintln!(
            "warning: the response names request {:?}, --response-to holds {:?}",
            resp.submitter_reference.as_str(),
            request.submitter_reference.as_str()
        );
    }
    let mut decision = resp.decision;
    // A ClaimResponse decides per item; a 278 response also states the event's decision. When
    // every item got the same action, that is the event's too (and its certification number
    // when they share one); otherwise the lines speak for themselves.
    if decision.action.is_none()
        && let Some(first) = decision.lines.first().and_then(|l| l.action)
        && decision.lines.iter().all(|l| l.action == Some(first))
    {
        decision.action = Some(first);
        let certs: Vec<_> = decision
            .lines
            .iter()
            .filter_map(|l| l.certification_number.clone())
            .collect();
        if decision.certification_number.is_none()
            && let Some(c) = certs.first()
            && certs.iter().all(|x| x == c)
        {
            decision.certification_number = Some(c.clone());
        }
    }
    let answer = crate::domain::AuthorizationResponse::answering(&request, decision);
    let settings = super::x12cmd::envelope_settings(env)?;
    let controls = MemoryControlNumbers::starting_after(env.control_number.saturating_sub(1));
    let out = tx278::encode_responses(
        std::slice::from_ref(&answer),
        &settings,
        &controls,
        Stamp::now(),
    )
    .map_err(|e| format!("the 278 response cannot be written: {e}"))?;
    // What we print must pass our own guide.
    let d = tx278::decode_all(&out);
    let mut errors: Vec<crate::x12::error::Issue> =
        d.all_issues().filter(|i| i.is_error()).cloned().collect();
    errors.extend(
        super::x12cmd::guide_issues(&out)
            .into_iter()
            .filter(|i| i.is_error()),
    );
    if !errors.is_empty() {
        super::x12cmd::print_issues(&errors.iter().collect::<Vec<_>>());
        return Err(
            "the 278 response written from this PAS response does not pass the guide".into(),
        );
    }
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

/// The request in a file: a PAS request Bundle, or the first 278 request of an X12 file.
fn request_of(data: &[u8]) -> Result<crate::domain::AuthorizationRequest, String> {
    if looks_like_fhir(data) {
        let (_, b) = read_bundle(data).map_err(|_| "not a readable FHIR Bundle".to_string())?;
        let (r, issues) = request_from_bundle(&b);
        return r.ok_or_else(|| {
            format!(
                "not a PAS request bundle: {}",
                issues
                    .iter()
                    .map(|i| i.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        });
    }
    tx278::decode_all(data)
        .transactions
        .into_iter()
        .find_map(|t| match t.message {
            Some(Message278::Request(r)) => Some(*r),
            _ => None,
        })
        .ok_or_else(|| "holds no PAS request bundle and no 278 request".into())
}

fn transmission_for(d: &tx278::DecodedFile, interchange: usize) -> Option<Transmission> {
    d.summary
        .iter()
        .find(|s| s.header.index == interchange)
        .or(d.summary.first())
        .map(Transmission::from_interchange)
}

/// The OperationOutcome for an X12 input that could not be translated: each X12 error with
/// its location and the TA1 / 999 code it maps to in diagnostics.
fn x12_outcome(issues: &[&Issue]) -> crate::fhir::OperationOutcome {
    use crate::x12::error::AckCode;
    let mut oo = operation_outcome(&[]);
    oo.issue = issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| {
            let ack = match i.ack {
                Some(AckCode::Interchange(c)) => format!("; TA105 {c}"),
                Some(AckCode::Group(c)) => format!("; 999 AK905 {c}"),
                Some(AckCode::Transaction(c)) => format!("; 999 IK501 {c}"),
                Some(AckCode::Segment(c)) => format!("; 999 IK304 {c}"),
                Some(AckCode::Element(c)) => format!("; 999 IK403 {c}"),
                None => String::new(),
            };
            crate::fhir::OutcomeIssue {
                severity: "error".into(),
                code: "structure".into(),
                details: Some(crate::fhir::CodeableConcept {
                    text: Some(i.message.clone()),
                    ..Default::default()
                }),
                diagnostics: Some(format!("X12 {} at {}{ack}", i.code, i.location)),
                ..Default::default()
            }
        })
        .collect();
    if oo.issue.is_empty() {
        oo.issue.push(crate::fhir::OutcomeIssue {
            severity: "error".into(),
            code: "not-found".into(),
            diagnostics: Some("the input holds no 278 that could be read".into()),
            ..Default::default()
        });
    }
    oo
}

fn x12_to_pas(data: &[u8]) -> Result<ExitCode, String> {
    let d = tx278::decode_all(data);
    let issues: Vec<_> = d.all_issues().collect();
    super::x12cmd::print_issues(&issues);
    let mut out = vec![];
    for t in &d.transactions {
        let ic = t.transaction.location.interchange.unwrap_or(1);
        match &t.message {
            Some(Message278::Request(r)) => {
                let tr = transmission_for(&d, ic);
                out.push(
                    serde_json::to_value(bundle_from_request_with(r, tr.as_ref()))
                        .map_err(|e| e.to_string())?,
                );
            }
            Some(Message278::Response(r)) => out.push(
                serde_json::to_value(response_bundle(ResponseInput {
                    response: r,
                    request: None,
                }))
                .map_err(|e| e.to_string())?,
            ),
            None => {}
        }
    }
    if out.is_empty() {
        print_json(&x12_outcome(&issues))?;
        return Ok(ExitCode::FAILURE);
    }
    if out.len() == 1 {
        print_json(&out[0])?;
    } else {
        print_json(&out)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn x12_response_to_pas(data: &[u8], request: &[u8]) -> Result<ExitCode, String> {
    let (_, rb) = match read_bundle(request) {
        Ok(x) => x,
        Err(i) => {
            print_outcome(&i)?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let (req, issues) = request_from_bundle(&rb);
    let Some(req) = req else {
        eprint_issues(&issues);
        return Err("--response-to: the request bundle cannot be read as a PAS request".into());
    };
    let d = tx278::decode_all(data);
    super::x12cmd::print_issues(&d.all_issues().collect::<Vec<_>>());
    let mut out = vec![];
    for t in &d.transactions {
        if let Some(Message278::Response(r)) = &t.message
            && r.answers(&req)
        {
            out.push(
                serde_json::to_value(response_bundle(ResponseInput {
                    response: r,
                    request: Some(&rb),
                }))
                .map_err(|e| e.to_string())?,
            );
        }
    }
    match out.len() {
        0 => Err(format!(
            "no 278 response in the input answers the request {} (BHT03 and the requester's trace numbers must match)",
            req.submitter_reference
        )),
        1 => {
            print_json(&out[0])?;
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            print_json(&out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `priorauth parse` for PAS: the decision JSON of a response bundle or ClaimResponse, the
/// summary of a request bundle.
pub fn parse(file: &PathBuf) -> Result<ExitCode, String> {
    let data = read_input(file)?;
    let v = match parse_json(&data) {
        Ok(v) => v,
        Err(i) => {
            print_json(&json!({"decisions": [], "errors": [i]}))?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut decisions = vec![];
    let mut requests = vec![];
    let mut errors: Vec<FhirIssue> = vec![];
    match kind_of(&v) {
        PasKind::ResponseBundle | PasKind::ClaimResponse => {
            let (r, issues) = decision_from_json(&v);
            if let Some(r) = r {
                decisions.push(crate::report::decision_view(&r));
            }
            errors.extend(issues.into_iter().filter(FhirIssue::is_error));
        }
        PasKind::RequestBundle | PasKind::InquiryBundle => match read_bundle(&data) {
            Ok((_, b)) => {
                let (r, issues) = request_from_bundle(&b);
                if let Some(r) = r {
                    requests.push(crate::report::request_summary(&r));
                }
                errors.extend(issues.into_iter().filter(FhirIssue::is_error));
            }
            Err(i) => errors.extend(i),
        },
        PasKind::Parameters => {
            // $inquire output: Parameters wrapping inquiry response bundles.
            for res in crate::fhir::inquiry::response_bundles(&v) {
                let (r, issues) = decision_from_json(res);
                if let Some(r) = r {
                    decisions.push(crate::report::decision_view(&r));
                }
                errors.extend(issues.into_iter().filter(FhirIssue::is_error));
            }
        }
        _ => errors.push(FhirIssue::error(
            "not-supported",
            v["resourceType"].as_str().unwrap_or(""),
            "not a PAS response bundle, ClaimResponse, request bundle or $inquire Parameters",
        )),
    }
    let understood = !decisions.is_empty() || !requests.is_empty();
    let mut out = serde_json::Map::new();
    out.insert("decisions".into(), decisions.into());
    if !requests.is_empty() {
        out.insert("requests".into(), requests.into());
    }
    out.insert(
        "errors".into(),
        serde_json::to_value(&errors).map_err(|e| e.to_string())?,
    );
    print_json(&Value::Object(out))?;
    Ok(if understood {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `priorauth validate` for PAS: the OperationOutcome on standard output, exit 1 on errors.
pub fn validate(file: &PathBuf) -> Result<ExitCode, String> {
    let data = read_input(file)?;
    let issues = match parse_json(&data) {
        Ok(v) => {
            let mut issues = validate_bundle(&v);
            if kind_of(&v) == PasKind::RequestBundle
                && let Ok(b) = serde_json::from_value::<Bundle>(v)
            {
                let (_, map) = request_from_bundle(&b);
                for i in map {
                    if !issues.contains(&i) {
                        issues.push(i);
                    }
                }
            }
            issues
        }
        Err(i) => vec![i],
    };
    print_outcome(&issues)?;
    Ok(if issues.iter().any(FhirIssue::is_error) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
