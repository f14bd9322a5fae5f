//! Ingest of what payers send back: 278 responses, 999s, TA1s, and Da Vinci PAS responses (a
//! response Bundle, a bare ClaimResponse, or the `$inquire` Parameters holding response bundles).
//!
//! The file's bytes are stored first, in their own transaction, before anything is read from
//! them. Then the items (each 278, each acknowledged transaction set, each TA1) are applied in
//! chunks; each chunk commits its items, decisions, transitions, events and the file's progress
//! together, so a crash leaves whole chunks or nothing, and a second ingest of the same bytes
//! continues where the first stopped. An item that matches no record is kept (outcome
//! `unmatched`) and reported, never dropped.

use std::collections::HashMap;

use serde::Serialize;
use sha2::Digest;

use super::{Result, State, Tracker, TrackingError};
use serde_json::Value;

use crate::domain::{
    AuthorizationRequest, AuthorizationResponse, DateOrRange, LineDecision, Status, TraceType,
};
use crate::fhir::response::decision_from_bundle;
use crate::fhir::validate::{PasKind, kind_of, looks_like_fhir, parse_json};
use crate::fhir::{Bundle, ClaimResponse, FhirIssue, decision_from_claim_response};
use crate::store::{NewDecision, NewItem, NewLine, OutboundRow, RequestChange, RequestRow, Write};
use crate::x12::ack::{Acknowledgement, parse_acks};
use crate::x12::tx278::{self, Message278};

/// Records (with their current request bodies) by submitter reference, newest first.
type Candidates = HashMap<String, Vec<(RequestRow, String)>>;

/// Items applied per transaction.
pub const CHUNK: usize = 500;

/// One item of a received file and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct ItemOutcome {
    pub position: i64,
    pub kind: String,
    /// applied, noted, unmatched, conflict, ignored, unreadable.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestReport {
    pub message_id: i64,
    /// The same bytes were fully ingested before: nothing was applied again.
    pub already_ingested: bool,
    /// Items applied by an earlier, interrupted ingest of the same bytes.
    pub resumed_after: i64,
    pub total: i64,
    pub counts: HashMap<String, i64>,
    /// Items of this run (all outcomes).
    pub items: Vec<ItemOutcome>,
}

/// Where a response came from: what its item kind is and how its submitter reference is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    X12,
    Pas,
    /// A bare ClaimResponse that does not name the request's BHT03: matched by the trace numbers
    /// it echoes (Claim.identifier), through the messages we sent.
    PasByTrace,
}

/// The trace numbers (TRN02) a response echoes.
fn echoed_traces(r: &AuthorizationResponse) -> impl Iterator<Item = &str> {
    r.decision
        .trace_numbers
        .iter()
        .filter(|t| t.kind == TraceType::Referenced)
        .map(|t| t.reference.as_str())
}

/// Whether `resp` answers `req`; matched by trace, the submitter reference is the record's.
fn answers(resp: &AuthorizationResponse, req: &AuthorizationRequest, wire: Wire) -> bool {
    match wire {
        Wire::PasByTrace => {
            let mut r = resp.clone();
            r.submitter_reference = req.submitter_reference.clone();
            req.event
                .trace_numbers
                .iter()
                .any(|t| t.kind == TraceType::Current)
                && r.answers(req)
        }
        _ => resp.answers(req),
    }
}

enum Item {
    Response(Box<AuthorizationResponse>, Wire),
    OtherTransaction(String),
    Unreadable(String),
    Ack999 {
        partner: String,
        group: String,
        transaction: Option<String>,
        accepted: bool,
        detail: String,
    },
    Ta1 {
        partner: String,
        interchange: String,
        accepted: bool,
        detail: String,
    },
}

impl Item {
    fn kind(&self) -> &'static str {
        match self {
            Item::Response(_, Wire::X12) => "278_response",
            Item::Response(_, Wire::Pas | Wire::PasByTrace) => "pas_response",
            Item::OtherTransaction(_) => "transaction",
            Item::Unreadable(_) => "unreadable",
            Item::Ack999 { .. } => "999",
            Item::Ta1 { .. } => "ta1",
        }
    }
}

use crate::x12::syntax::looks_like_x12;

/// Cuts a received file into items, in a fixed order (278s, then 999 transaction sets, then
/// TA1s), so a resumed ingest finds the same positions.
/// FHIR JSON becomes one item per PAS response it holds.
fn items_of(data: &[u8]) -> Vec<Item> {
    if looks_like_fhir(data) {
        return pas_items(data);
    }
    if !looks_like_x12(data) {
        return vec![Item::Unreadable(
            "neither an X12 interchange (no ISA at the start) nor FHIR JSON (no resourceType)"
                .into(),
        )];
    }
    let mut items = Vec::new();
    let decoded = tx278::decode_all(data);
    for t in decoded.transactions {
        match t.message {
            Some(Message278::Response(r)) => items.push(Item::Response(r, Wire::X12)),
            Some(Message278::Request(_)) => items.push(Item::OtherTransaction(format!(
                "ST02 {} is a 278 request, not a response",
                t.transaction.control_number
            ))),
            None if t.transaction.id == "999" => {}
            None => {
                let problems: Vec<String> = t
                    .issues
                    .iter()
                    .filter(|i| i.severity == crate::x12::Severity::Error)
                    .take(3)
                    // The code and where, never the message: it may quote a member id or a
                    // birth date.
                    .map(|i| {
                        format!(
                            "{} at {}{}",
                            i.code,
                            i.location.segment_id.as_deref().unwrap_or("?"),
                            i.location
                                .element
                                .map(|e| format!("{e:02}"))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                items.push(if t.transaction.id == "278" {
                    Item::Unreadable(format!(
                        "ST02 {}: {}",
                        t.transaction.control_number,
                        problems.join("; ")
                    ))
                } else {
                    Item::OtherTransaction(format!(
                        "transaction set {} ST02 {} is not handled",
                        t.transaction.id, t.transaction.control_number
                    ))
                });
            }
        }
    }
    let (acks, _) = parse_acks(data);
    let mut ta1s = Vec::new();
    for a in acks {
        match a {
            Acknowledgement::Implementation(a) => {
                let errors = |t: &crate::x12::ack::AcknowledgedTransaction| {
                    let mut v: Vec<String> = t
                        .status
                        .iter()
                        .flat_map(|s| s.errors.iter())
                        .map(|c| match c.description {
                            Some(d) => format!("{} {d}", c.code),
                            None => c.code.clone(),
                        })
                        .collect();
                    v.extend(t.segment_errors.iter().map(|s| {
                        format!(
                            "segment {} {}",
                            s.segment_id,
                            s.error.as_ref().map(|c| c.code.as_str()).unwrap_or("")
                        )
                    }));
                    v.join("; ")
                };
                if a.group.transactions.is_empty() {
                    items.push(Item::Ack999 {
                        partner: a.sender_id.trim().to_owned(),
                        group: a.group.control_number.clone(),
                        transaction: None,
                        accepted: a.group.accepted,
                        detail: a
                            .group
                            .status
                            .as_ref()
                            .map(|s| s.status.to_owned())
                            .unwrap_or_default(),
                    });
                }
                for t in &a.group.transactions {
                    items.push(Item::Ack999 {
                        partner: a.sender_id.trim().to_owned(),
                        group: a.group.control_number.clone(),
                        transaction: Some(t.control_number.clone()),
                        accepted: t.accepted,
                        detail: errors(t),
                    });
                }
            }
            Acknowledgement::Interchange(t) => ta1s.push(Item::Ta1 {
                partner: t.sender_id.trim().to_owned(),
                interchange: t.control_number.clone(),
                accepted: t.accepted,
                detail: format!("{} {}", t.note.code, t.note.description.unwrap_or("")),
            }),
        }
    }
    items.extend(ta1s);
    items
}

/// The issues as issue codes and FHIRPath expressions: never the messages, which may quote a
/// value (a member id, a birth date).
fn issue_text(issues: &[&FhirIssue]) -> String {
    let mut v: Vec<String> = issues
        .iter()
        .take(3)
        .map(|i| {
            if i.expression.is_empty() {
                i.code.to_owned()
            } else {
                format!("{} at {}", i.code, i.expression)
            }
        })
        .collect();
    if issues.len() > 3 {
        v.push(format!("{} more", issues.len() - 3));
    }
    v.join("; ")
}

/// `path` with its leading resource type replaced by `at` (where the resource sits in the file).
fn relocate(path: &str, resource_type: &str, at: &str) -> String {
    match path.strip_prefix(resource_type) {
        Some(rest) if at != resource_type => format!("{at}{rest}"),
        _ => path.to_owned(),
    }
}

/// Reads one PAS response (a response Bundle or a bare ClaimResponse) found at `at` (a
/// FHIRPath: `Bundle`, `ClaimResponse`, `Parameters.parameter[2].resource`).
fn pas_response(v: &Value, at: &str) -> Item {
    let rt = v.get("resourceType").and_then(Value::as_str).unwrap_or("");
    let unreadable = |issues: Vec<FhirIssue>| {
        let errors: Vec<FhirIssue> = issues
            .into_iter()
            .filter(FhirIssue::is_error)
            .map(|mut i| {
                i.expression = relocate(&i.expression, rt, at);
                i
            })
            .collect();
        Item::Unreadable(format!(
            "PAS response at {at} not readable: {}",
            issue_text(&errors.iter().collect::<Vec<_>>())
        ))
    };
    let structure = |e: serde_path_to_error::Error<serde_json::Error>| {
        // The path names fields and positions only; the serde message may quote a value.
        unreadable(vec![FhirIssue::error(
            "structure",
            format!("{rt}.{}", e.path()),
            "",
        )])
    };
    let (resp, issues) = match kind_of(v) {
        PasKind::ResponseBundle => match serde_path_to_error::deserialize::<_, Bundle>(v) {
            Ok(b) => decision_from_bundle(&b),
            Err(e) => return structure(e),
        },
        PasKind::ClaimResponse => {
            match serde_path_to_error::deserialize::<_, ClaimResponse>(v) {
                // Alone, the ClaimResponse names the request's BHT03 (the request bundle's
                // identifier) in `request.identifier` when it can.
                Ok(cr) => {
                    let sref = cr
                        .request
                        .as_ref()
                        .and_then(|r| r.identifier.as_ref())
                        .and_then(|i| i.value.clone())
                        .filter(|v| !v.trim().is_empty());
                    let (r, issues) =
                        decision_from_claim_response(&cr, sref.as_deref(), "ClaimResponse");
                    let wire = match &r {
                        Some(r) if sref.is_none() && echoed_traces(r).next().is_some() => {
                            Wire::PasByTrace
                        }
                        _ => Wire::Pas,
                    };
                    return match r {
                        Some(r) if !issues.iter().any(FhirIssue::is_error) => {
                            Item::Response(Box::new(r), wire)
                        }
                        _ => unreadable(issues),
                    };
                }
                Err(e) => return structure(e),
            }
        }
        PasKind::RequestBundle | PasKind::InquiryBundle => {
            return Item::Unreadable(format!(
                "{at} is a PAS request bundle ({at}.entry[0].resource is a Claim), not a response"
            ));
        }
        _ => {
            return Item::Unreadable(format!(
                "{at} is a FHIR {} resource, not a PAS response (a Bundle with a ClaimResponse first, or a ClaimResponse)",
                if rt.is_empty() { "unnamed" } else { rt }
            ));
        }
    };
    match resp {
        // A decision read with errors (an action code that is not X12 306...) is not applied: it
        // could say more or less than the payer did.
        Some(r) if !issues.iter().any(FhirIssue::is_error) => {
            Item::Response(Box::new(r), Wire::Pas)
        }
        _ => unreadable(issues),
    }
}

/// A FHIR file: a PAS response, a bare ClaimResponse, or the `$inquire` Parameters with one item
/// per response bundle it holds.
fn pas_items(data: &[u8]) -> Vec<Item> {
    let v = match parse_json(data) {
        Ok(v) => v,
        Err(i) => {
            // parse_json's message quotes where the JSON breaks, not its content; keep to the code.
            return vec![Item::Unreadable(format!(
                "FHIR JSON not readable: {}",
                issue_text(&[&i])
            ))];
        }
    };
    if kind_of(&v) != PasKind::Parameters {
        let rt = v["resourceType"].as_str().unwrap_or("").to_owned();
        return vec![pas_response(&v, &rt)];
    }
    let items: Vec<Item> = v["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(k, p)| {
            let r = p.get("resource")?;
            (r["resourceType"] == "Bundle")
                .then(|| pas_response(r, &format!("Parameters.parameter[{k}].resource")))
        })
        .collect();
    if items.is_empty() {
        return vec![Item::Unreadable(
            "a Parameters resource with no response bundle (Parameters.parameter.resource)".into(),
        )];
    }
    items
}

fn status_of(s: Status) -> State {
    match s {
        Status::Approved | Status::NoActionRequired => State::Approved,
        Status::PartiallyApproved => State::PartiallyApproved,
        Status::Denied => State::Denied,
        Status::Pended | Status::ContactPayer => State::Pended,
        Status::Modified => State::Modified,
        Status::Cancelled => State::Cancelled,
        Status::Rejected => State::Rejected,
    }
}

fn range_of(d: &Option<DateOrRange>) -> (Option<String>, Option<String>) {
    match d {
        Some(d) => (Some(d.start().to_string()), Some(d.end().to_string())),
        None => (None, None),
    }
}

/// What the payer authorized on each requested line: status, code, units, dates.
pub fn decision_lines(req: &AuthorizationRequest, resp: &AuthorizationResponse) -> Vec<NewLine> {
    let d = &resp.decision;
    let single = req.services.len() == 1;
    req.services
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let n = i + 1;
            let ld: Option<&LineDecision> = d.lines.iter().find(|l| l.line == n);
            let status = status_of(ld.map(|l| l.status).unwrap_or(d.status));
            let certified = status.certified();
            let q =
                ld.and_then(|l| l.approved_quantity.as_ref())
                    .or(if single || d.lines.is_empty() {
                        d.approved_quantity.as_ref().filter(|_| single)
                    } else {
                        None
                    });
            let mut unit = q.and_then(|q| q.unit).map(|u| u.word().to_owned());
            let mut units = q
                .and_then(|q| q.quantity.as_ref())
                .and_then(|v| super::to_centi(v.as_str()).ok());
            // Certified in total: what was asked in the line's HSD (e.g. 12 visits) counts.
            if units.is_none()
                && status == State::Approved
                && let Some(q) = &line.quantity
                && let Some(v) = &q.quantity
            {
                units = super::to_centi(v.as_str()).ok();
                unit = unit.or(q.unit.map(|u| u.word().to_owned()));
            }
            // Else the units on the service line as the payer returned them (SV104...), or,
            // certified in total, as they were asked.
            let service_unit = || {
                line.service.as_ref().and_then(|s| match s {
                    crate::domain::Service::Professional { unit, .. }
                    | crate::domain::Service::Institutional { unit, .. } => {
                        unit.map(|u| u.word().to_owned())
                    }
                    crate::domain::Service::Dental { .. } => Some("units".to_owned()),
                })
            };
            if units.is_none() {
                units = ld
                    .and_then(|l| l.approved_units.as_ref())
                    .and_then(|v| super::to_centi(v.as_str()).ok());
                if units.is_some() {
                    unit = unit.or_else(service_unit);
                }
            }
            if units.is_none() && status == State::Approved {
                units = line
                    .service
                    .as_ref()
                    .and_then(|s| s.quantity())
                    .and_then(|v| super::to_centi(v.as_str()).ok());
                unit = unit.or_else(service_unit);
            }
            if !certified {
                units = Some(0);
            }
            let cert = ld.map(|l| &l.certification);
            let (mut start, mut end) = range_of(&cert.and_then(|c| c.effective));
            if end.is_none() {
                end = cert.and_then(|c| c.expires).map(|d| d.to_string());
            }
            if start.is_none() && end.is_none() {
                (start, end) = range_of(&d.certification.effective);
                if end.is_none() {
                    end = d.certification.expires.map(|x| x.to_string());
                }
            }
            if start.is_none() && end.is_none() {
                (start, end) = range_of(&line.service_dates());
            }
            NewLine {
                line: n as i64,
                status: status.as_str().to_owned(),
                action: ld
                    .and_then(|l| l.action)
                    .or(d.action)
                    .map(|a| a.code().to_owned()),
                procedure_code: line
                    .service
                    .as_ref()
                    .and_then(|s| s.procedure())
                    .map(|p| p.code.as_str().to_owned()),
                unit,
                authorized_units: units,
                start_date: start,
                end_date: end,
                certification_number: ld
                    .and_then(|l| l.certification_number.as_ref())
                    .or(d.certification_number.as_ref())
                    .map(|c| c.as_str().to_owned()),
            }
        })
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Tracker {
    /// Stores and applies a received file. `progress` hears each committed chunk
    /// (items applied so far, total): what it hears is durable.
    pub async fn ingest(
        &self,
        data: &[u8],
        source: &str,
        progress: &mut (dyn FnMut(i64, i64) + Send),
    ) -> Result<IngestReport> {
        let hash = sha256_hex(data);
        let format = if looks_like_x12(data) {
            "x12"
        } else if looks_like_fhir(data) {
            "fhir"
        } else {
            "unknown"
        };
        let inbound = self.store.receive(&hash, format, source, data).await?;
        let items = items_of(data);
        let total = items.len() as i64;
        let mut report = IngestReport {
            message_id: inbound.id,
            already_ingested: inbound.state == "applied",
            resumed_after: inbound.items_applied,
            total,
            counts: HashMap::new(),
            items: vec![],
        };
        if report.already_ingested {
            for it in self.store.inbound_items(inbound.id).await? {
                *report.counts.entry(it.outcome.clone()).or_default() += 1;
            }
            return Ok(report);
        }
        let mut applied = inbound.items_applied;
        let start = applied as usize;
        let mut pos = start;
        while pos < items.len() || (items.is_empty() && applied == 0 && pos == 0) {
            let end = (pos + CHUNK).min(items.len());
            let mut writes = Vec::new();
            let mut decisions = Vec::new();
            let mut events = Vec::new();
            let mut item_rows = Vec::new();
            let mut outcomes = Vec::new();
            let mut overrides: HashMap<String, String> = HashMap::new();
            // The records the chunk's responses may answer, read in one query.
            let mut refs: Vec<String> = items[pos..end]
                .iter()
                .filter_map(|i| match i {
                    Item::Response(r, Wire::X12 | Wire::Pas) => {
                        Some(r.submitter_reference.as_str().to_owned())
                    }
                    _ => None,
                })
                .collect();
            // Responses without a submitter reference: the references of what we sent with
            // the trace numbers they echo.
            let traces: Vec<String> = items[pos..end]
                .iter()
                .filter_map(|i| match i {
                    Item::Response(r, Wire::PasByTrace) => Some(r),
                    _ => None,
                })
                .flat_map(|r| echoed_traces(r).map(str::to_owned))
                .collect();
            let mut by_trace: HashMap<String, Vec<String>> = HashMap::new();
            if !traces.is_empty() {
                for (t, r) in self.store.references_by_trace(&traces).await? {
                    let v = by_trace.entry(t).or_default();
                    if !v.contains(&r) {
                        v.push(r.clone());
                    }
                    refs.push(r);
                }
            }
            let mut candidates: Candidates = HashMap::new();
            for (row, body) in self.store.requests_with_bodies(&refs).await? {
                candidates
                    .entry(row.submitter_reference.clone())
                    .or_default()
                    .push((row, body));
            }
            for (i, item) in items.iter().enumerate().take(end).skip(pos) {
                let (w, o) = self
                    .apply_item(
                        inbound.id,
                        i as i64,
                        item,
                        &candidates,
                        &by_trace,
                        &mut overrides,
                    )
                    .await?;
                // Decisions first, events and items last, each kind in multi-row inserts; the
                // order within a kind is kept (all of it commits or none).
                for w in w {
                    match w {
                        Write::Decision(_) => decisions.push(w),
                        Write::Event(_) => events.push(w),
                        Write::Item(_) => item_rows.push(w),
                        w => writes.push(w),
                    }
                }
                outcomes.push(o);
            }
            decisions.append(&mut writes);
            let mut writes = decisions;
            writes.append(&mut events);
            writes.append(&mut item_rows);
            let to = end as i64;
            writes.push(Write::InboundProgress {
                message_id: inbound.id,
                from_applied: applied,
                to_applied: to,
                total,
                state: if end == items.len() {
                    "applied".into()
                } else {
                    "applying".into()
                },
                at: self.clock.now_ms(),
            });
            self.store.apply(&writes).await?;
            applied = to;
            progress(applied, total);
            for o in outcomes {
                *report.counts.entry(o.outcome.clone()).or_default() += 1;
                report.items.push(o);
            }
            pos = end;
            if items.is_empty() {
                break;
            }
        }
        Ok(report)
    }

    fn current<'a>(row: &'a RequestRow, overrides: &'a HashMap<String, String>) -> &'a str {
        overrides
            .get(&row.id)
            .map(String::as_str)
            .unwrap_or(&row.status)
    }

    async fn apply_item(
        &self,
        message_id: i64,
        position: i64,
        item: &Item,
        candidates: &Candidates,
        by_trace: &HashMap<String, Vec<String>>,
        overrides: &mut HashMap<String, String>,
    ) -> Result<(Vec<Write>, ItemOutcome)> {
        let mut out = ItemOutcome {
            position,
            kind: item.kind().into(),
            outcome: String::new(),
            request_id: None,
            reference: None,
            status: None,
            detail: None,
        };
        let mut writes = Vec::new();
        let mut body: Option<String> = None;
        match item {
            Item::Unreadable(d) => {
                out.outcome = "unreadable".into();
                out.detail = Some(d.clone());
            }
            Item::OtherTransaction(d) => {
                out.outcome = "ignored".into();
                out.detail = Some(d.clone());
            }
            Item::Response(resp, wire) => {
                out.reference = Some(resp.submitter_reference.as_str().to_owned());
                body = serde_json::to_string(&resp.decision).ok();
                let mut found: Vec<(RequestRow, String)> = Vec::new();
                if *wire == Wire::PasByTrace {
                    for r in echoed_traces(resp).flat_map(|t| by_trace.get(t).into_iter().flatten())
                    {
                        for c in candidates.get(r).into_iter().flatten() {
                            if !found.iter().any(|(f, _)| f.id == c.0.id) {
                                found.push(c.clone());
                            }
                        }
                    }
                } else if let Some(c) = candidates.get(resp.submitter_reference.as_str()) {
                    found.clone_from(c);
                }
                self.apply_response(
                    message_id,
                    position,
                    resp,
                    *wire,
                    &found,
                    overrides,
                    &mut writes,
                    &mut out,
                )?;
            }
            Item::Ack999 {
                partner,
                group,
                transaction,
                accepted,
                detail,
            } => {
                out.reference = Some(format!(
                    "GS06 {group}{}",
                    transaction
                        .as_ref()
                        .map(|t| format!(" ST02 {t}"))
                        .unwrap_or_default()
                ));
                let gs = group.trim().parse::<i64>().ok();
                let st = transaction
                    .as_ref()
                    .and_then(|t| t.trim().parse::<i64>().ok());
                let found: Vec<OutboundRow> = match gs {
                    Some(g) => self
                        .store
                        .outbound_by_control(None, Some(g))
                        .await?
                        .into_iter()
                        .filter(|o| st.is_none() || o.transaction_control == st)
                        .filter(|o| o.partner.rsplit(':').next() == Some(partner.as_str()))
                        .collect(),
                    None => vec![],
                };
                self.apply_ack(
                    &found,
                    *accepted,
                    detail,
                    "999",
                    overrides,
                    &mut writes,
                    &mut out,
                )
                .await?;
            }
            Item::Ta1 {
                partner,
                interchange,
                accepted,
                detail,
            } => {
                out.reference = Some(format!("ISA13 {interchange}"));
                let found: Vec<OutboundRow> = match interchange.trim().parse::<i64>() {
                    Ok(isa) => self
                        .store
                        .outbound_by_control(Some(isa), None)
                        .await?
                        .into_iter()
                        .filter(|o| o.partner.rsplit(':').next() == Some(partner.as_str()))
                        .collect(),
                    Err(_) => vec![],
                };
                self.apply_ack(
                    &found,
                    *accepted,
                    detail,
                    "TA1",
                    overrides,
                    &mut writes,
                    &mut out,
                )
                .await?;
            }
        }
        writes.push(Write::Item(NewItem {
            message_id,
            position,
            kind: out.kind.clone(),
            request_id: out.request_id.clone(),
            outcome: out.outcome.clone(),
            reference: out.reference.clone(),
            detail: out.detail.clone(),
            body,
            at: self.clock.now_ms(),
        }));
        Ok((writes, out))
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_response(
        &self,
        message_id: i64,
        position: i64,
        resp: &AuthorizationResponse,
        wire: Wire,
        candidates: &[(RequestRow, String)],
        overrides: &mut HashMap<String, String>,
        writes: &mut Vec<Write>,
        out: &mut ItemOutcome,
    ) -> Result<()> {
        let mut reasons = Vec::new();
        let mut found: Option<(RequestRow, AuthorizationRequest)> = None;
        for (row, body) in candidates {
            let status = Self::current(row, overrides).to_owned();
            let req: AuthorizationRequest = serde_json::from_str(body)
                .map_err(|e| TrackingError::Invalid(format!("stored body of {}: {e}", row.id)))?;
            if !answers(resp, &req, wire) {
                reasons.push(format!(
                    "record {} has other trace numbers ({})",
                    row.id,
                    match wire {
                        Wire::X12 => "TRN",
                        Wire::Pas | Wire::PasByTrace => "Claim.identifier",
                    }
                ));
                continue;
            }
            let st = State::parse(&status).map_err(TrackingError::Invalid)?;
            if !st.takes_decision() {
                reasons.push(format!(
                    "record {} is {st}, not awaiting a decision",
                    row.id
                ));
                continue;
            }
            found = Some((row.clone(), req));
            break;
        }
        let Some((row, req)) = found else {
            out.outcome = "unmatched".into();
            out.detail = Some(if reasons.is_empty() {
                match wire {
                    Wire::X12 => format!(
                        "no record with submitter reference (BHT03) {}",
                        resp.submitter_reference
                    ),
                    Wire::Pas => format!(
                        "no record with submitter reference (BHT03, the request Bundle.identifier) {}",
                        resp.submitter_reference
                    ),
                    Wire::PasByTrace => format!(
                        "the ClaimResponse names no request Bundle.identifier, and no record was sent with its trace numbers (Claim.identifier) {}",
                        echoed_traces(resp).collect::<Vec<_>>().join(", ")
                    ),
                }
            } else {
                reasons.join("; ")
            });
            return Ok(());
        };
        let from = State::parse(Self::current(&row, overrides)).map_err(TrackingError::Invalid)?;
        let to = status_of(resp.decision.status);
        out.request_id = Some(row.id.clone());
        out.status = Some(to.as_str().into());
        if let Err(e) = from.check(to) {
            out.outcome = "conflict".into();
            out.detail = Some(e);
            return Ok(());
        }
        let lines = decision_lines(&req, resp);
        let certified: Vec<&NewLine> = lines
            .iter()
            .filter(|l| State::parse(&l.status).is_ok_and(|s| s.certified()))
            .collect();
        let start = certified.iter().filter_map(|l| l.start_date.clone()).min();
        let end = certified.iter().filter_map(|l| l.end_date.clone()).max();
        let d = &resp.decision;
        let now = self.clock.now_ms();
        writes.push(Write::Decision(NewDecision {
            key: uuid::Uuid::new_v4().to_string(),
            request_id: row.id.clone(),
            inbound_message_id: Some(message_id),
            inbound_position: Some(position),
            status: to.as_str().into(),
            action: d.action.map(|a| a.code().to_owned()),
            certification_number: d
                .certification_number
                .as_ref()
                .map(|c| c.as_str().to_owned()),
            reason: d.reason.as_ref().map(|c| c.as_str().to_owned()),
            start_date: start.clone(),
            end_date: end.clone(),
            body: serde_json::to_string(d).map_err(|e| TrackingError::Invalid(e.to_string()))?,
            decided_at: now,
            lines,
        }));
        writes.push(Write::ChangeRequest(RequestChange {
            id: row.id.clone(),
            expected_status: from.as_str().into(),
            status: Some(to.as_str().into()),
            certification_number: d
                .certification_number
                .as_ref()
                .map(|c| c.as_str().to_owned()),
            start_date: start,
            end_date: end,
            decided_at: to.is_final_decision().then_some(now),
            at: now,
            ..Default::default()
        }));
        let reason = match (&d.reason, d.rejects.first()) {
            (Some(r), _) => Some(format!("payer reason {r}")),
            (None, Some(rj)) => rj.reason.as_ref().map(|r| format!("AAA reject {r}")),
            _ => None,
        };
        writes.push(self.event(
            Some(&row.id),
            &format!("payer:{}", row.payer),
            "decision_received",
            Some(from),
            Some(to),
            reason,
            Some(format!("inbound {message_id} item {position}")),
        ));
        overrides.insert(row.id.clone(), to.as_str().into());
        out.outcome = "applied".into();
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_ack(
        &self,
        found: &[OutboundRow],
        accepted: bool,
        detail: &str,
        what: &str,
        overrides: &mut HashMap<String, String>,
        writes: &mut Vec<Write>,
        out: &mut ItemOutcome,
    ) -> Result<()> {
        if found.is_empty() {
            out.outcome = "unmatched".into();
            out.detail = Some(format!(
                "no message we sent has these control numbers ({what})"
            ));
            return Ok(());
        }
        let mut changed = Vec::new();
        for o in found {
            let Some(id) = &o.request_id else { continue };
            let row = self.record(id).await?;
            let from =
                State::parse(Self::current(&row, overrides)).map_err(TrackingError::Invalid)?;
            let to = if accepted {
                State::Acknowledged
            } else {
                State::Rejected
            };
            let applies = if accepted {
                from == State::Submitted
            } else {
                matches!(from, State::Submitted | State::Acknowledged)
            };
            out.request_id = Some(id.clone());
            if !applies {
                continue;
            }
            writes.push(Write::ChangeRequest(RequestChange {
                id: id.clone(),
                expected_status: from.as_str().into(),
                status: Some(to.as_str().into()),
                at: self.clock.now_ms(),
                ..Default::default()
            }));
            writes.push(self.event(
                Some(id),
                &format!("payer:{}", row.payer),
                if accepted {
                    "acknowledged"
                } else {
                    "rejected_by_acknowledgement"
                },
                Some(from),
                Some(to),
                (!detail.trim().is_empty()).then(|| format!("{what}: {}", detail.trim())),
                None,
            ));
            overrides.insert(id.clone(), to.as_str().into());
            changed.push(id.clone());
        }
        out.status = Some(if accepted { "accepted" } else { "rejected" }.into());
        out.outcome = if changed.is_empty() {
            "noted"
        } else {
            "applied"
        }
        .into();
        if !detail.trim().is_empty() {
            out.detail = Some(detail.trim().to_owned());
        }
        Ok(())
    }
}
