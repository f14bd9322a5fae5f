//! PAS response Bundle / ClaimResponse <-> the hub's `AuthorizationResponse` and `Decision`.
//!
//! The decision is read from `reviewAction.reviewActionCode` (X12 306) per item and on the
//! ClaimResponse's own adjudication, the certification number from `reviewAction.number` or
//! `preAuthRef`, dates from `itemPreAuthIssueDate` / `itemPreAuthPeriod` / `preAuthPeriod`,
//! pended tracking numbers from `administrationReferenceNumber`, approved quantities from
//! `itemAuthorizedDetail` and `addItem` (A6), payer text from `processNote` and AAA rejects
//! from `error`.

use serde_json::{Value, json};

use super::outcome::FhirIssue;
use super::request::{Builder, RequestContext, decimal_number, fhir_date, text, timestamp};
use super::types::Reference;
use super::types::*;
use super::{ext_url as u, system as sys};
use crate::domain::*;

fn code(s: Option<&str>) -> Option<Code> {
    Code::parse(s?.trim()).ok()
}

struct Review {
    action: Option<ActionCode>,
    number: Option<Text>,
    reason: Option<Code>,
    second_opinion: Option<bool>,
}

fn review_of(adj: &[Adjudication], path: &str, issues: &mut Vec<FhirIssue>) -> Option<Review> {
    let ra = adj
        .iter()
        .find_map(|a| ext(&a.extension, u::REVIEW_ACTION))?;
    let action = ra
        .part(u::REVIEW_ACTION_CODE)
        .or_else(|| ra.part("reviewActionCode"))
        .and_then(|p| p.value_cc())
        .and_then(|c| {
            let code = c.code_in(sys::X12_ACTION).map(str::to_owned);
            if code.is_none() {
                issues.push(FhirIssue::error(
                    "code-invalid",
                    format!("{path}.extension('{}')", u::REVIEW_ACTION),
                    format!(
                        "reviewActionCode must use the X12 306 system {}",
                        sys::X12_ACTION
                    ),
                ));
            }
            code
        })
        .and_then(|c| {
            let a = ActionCode::from_code(&c);
            if a.is_none() {
                issues.push(FhirIssue::error(
                    "code-invalid",
                    format!("{path}.extension('{}')", u::REVIEW_ACTION),
                    format!(
                        "{c:?} is not an X12 306 action code ({})",
                        ActionCode::codes()
                    ),
                ));
            }
            a
        });
    Some(Review {
        action,
        number: text(ra.part("number").and_then(|p| p.value_str())),
        reason: ra
            .part("reasonCode")
            .and_then(|p| p.value_cc())
            .and_then(|c| code(c.first().and_then(|x| x.code.as_deref()))),
        second_opinion: ra
            .part("secondSurgicalOpinionFlag")
            .and_then(|p| p.value_bool()),
    })
}

fn certification(list: &[Extension]) -> Certification {
    let issued = ext(list, u::ITEM_PREAUTH_ISSUE_DATE)
        .and_then(|e| e.value_str())
        .and_then(fhir_date);
    let period = ext(list, u::ITEM_PREAUTH_PERIOD).and_then(|e| e.value_period());
    period_cert(issued, period.as_ref())
}

fn period_cert(issued: Option<Date>, p: Option<&Period>) -> Certification {
    let start = p.and_then(|p| p.start.as_deref()).and_then(fhir_date);
    let end = p.and_then(|p| p.end.as_deref()).and_then(fhir_date);
    Certification {
        issued,
        effective: match (start, end) {
            (Some(s), Some(e)) => DateRange::new(s, e).ok().map(DateOrRange::Range),
            (Some(s), None) => Some(DateOrRange::Date(s)),
            _ => None,
        },
        expires: if start.is_none() { end } else { None },
    }
}

fn authorized_quantity(list: &[Extension]) -> Option<Decimal> {
    let d = ext(list, u::ITEM_AUTHORIZED_DETAIL)?;
    let q = d.part("quantity")?.value_quantity()?;
    Decimal::parse(&q.value?.to_string()).ok()
}

fn level_of(element: &str) -> Option<Level> {
    let l = element.get(..5)?;
    Level::ALL.iter().copied().find(|x| x.code() == l)
}

fn empty_line(line: usize) -> LineDecision {
    LineDecision {
        line,
        status: Status::ContactPayer,
        action: None,
        certification_number: None,
        reason: None,
        second_surgical_opinion: None,
        certification: Certification::default(),
        approved_quantity: None,
        approved_units: None,
        administrative_reference: None,
        trace_numbers: vec![],
        rejects: vec![],
        messages: vec![],
    }
}

/// Reads the decision of a ClaimResponse. `submitter_reference` is the request's BHT03 (the
/// response Bundle's identifier); without it the ClaimResponse's first identifier is used.
pub fn decision_from_claim_response(
    cr: &ClaimResponse,
    submitter_reference: Option<&str>,
    path: &str,
) -> (Option<AuthorizationResponse>, Vec<FhirIssue>) {
    let mut issues = vec![];
    let sref = text(submitter_reference)
        .or_else(|| cr.identifier.first().and_then(|i| text(i.value.as_deref())));
    let Some(sref) = sref else {
        issues.push(FhirIssue::error(
            "required",
            format!("{path}.identifier"),
            "neither the bundle nor the ClaimResponse has an identifier to match the request by",
        ));
        return (None, issues);
    };
    let mut lines: Vec<LineDecision> = vec![];
    for (k, it) in cr.item.iter().enumerate() {
        let p = format!("{path}.item[{k}]");
        let n = it
            .item_sequence
            .as_ref()
            .and_then(seq)
            .unwrap_or(k as u32 + 1) as usize;
        let mut l = empty_line(n.max(1));
        if let Some(r) = review_of(&it.adjudication, &format!("{p}.adjudication"), &mut issues) {
            l.action = r.action;
            l.certification_number = r.number;
            l.reason = r.reason;
            l.second_surgical_opinion = r.second_opinion;
        } else {
            issues.push(FhirIssue::warning(
                "required",
                format!("{p}.adjudication"),
                "the item has no reviewAction",
            ));
        }
        l.certification = certification(&it.extension);
        l.administrative_reference = ext(&it.extension, u::ADMIN_REFERENCE)
            .and_then(|e| e.value_str())
            .and_then(|s| text(Some(s)));
        l.approved_units = authorized_quantity(&it.extension);
        lines.push(l);
    }
    // Modified (A6) or extra authorized items: the authorized detail is in addItem.
    for (k, a) in cr.add_item.iter().enumerate() {
        let p = format!("{path}.addItem[{k}]");
        let review = review_of(&a.adjudication, &format!("{p}.adjudication"), &mut issues);
        let qty = a
            .quantity
            .as_ref()
            .and_then(|q| q.value.as_ref())
            .and_then(|v| Decimal::parse(&v.to_string()).ok());
        for s in a.item_sequence.iter().filter_map(seq) {
            let s = s as usize;
            let idx = match lines.iter().position(|l| l.line == s) {
                Some(i) => i,
                None => {
                    lines.push(empty_line(s.max(1)));
                    lines.len() - 1
                }
            };
            let l = &mut lines[idx];
            if let Some(r) = &review
                && l.action.is_none()
            {
                l.action = r.action;
                l.certification_number.clone_from(&r.number);
                l.reason.clone_from(&r.reason);
            }
            if qty.is_some() {
                l.approved_units.clone_from(&qty);
            }
            if l.certification.is_empty() {
                l.certification = certification(&a.extension);
            }
        }
    }
    lines.sort_by_key(|l| l.line);
    let header = review_of(
        &cr.adjudication,
        &format!("{path}.adjudication"),
        &mut issues,
    );
    let mut rejects = vec![];
    for (k, e) in cr.error.iter().enumerate() {
        let element = ext(&e.extension, u::ERROR_ELEMENT)
            .and_then(|x| x.value_str())
            .unwrap_or("");
        let line = e.item_sequence.as_ref().and_then(seq).map(|s| s as usize);
        let level = level_of(element).unwrap_or(if line.is_some() {
            Level::Service
        } else {
            Level::Event
        });
        let reason = e.code.as_ref().and_then(|c| {
            code(
                c.code_in(sys::X12_REJECT_REASON)
                    .or_else(|| c.first().and_then(|x| x.code.as_deref())),
            )
        });
        if reason.is_none() {
            issues.push(FhirIssue::warning(
                "required",
                format!("{path}.error[{k}].code"),
                "the error has no X12 901 code",
            ));
        }
        let follow_up = ext(&e.extension, u::ERROR_FOLLOWUP)
            .and_then(|x| x.value_cc())
            .and_then(|c| c.first().and_then(|x| x.code.clone()))
            .and_then(|c| FollowUpAction::from_code(&c));
        let r = Reject {
            level,
            line,
            validity: Validity::Invalid,
            reason,
            follow_up,
        };
        match line.and_then(|n| lines.iter_mut().find(|l| l.line == n)) {
            Some(l) => l.rejects.push(r),
            None => rejects.push(r),
        }
    }
    for l in &mut lines {
        l.status = match l.action {
            Some(a) => a.into(),
            None if !l.rejects.is_empty() => Status::Rejected,
            None => Status::ContactPayer,
        };
    }
    let action = header.as_ref().and_then(|h| h.action);
    let status = overall_status(action, &lines, &rejects);
    let mut cert = period_cert(None, cr.pre_auth_period.as_ref());
    if cert.is_empty() {
        cert = certification(&cr.extension);
    }
    let decision = Decision {
        status,
        action,
        certification_number: header
            .as_ref()
            .and_then(|h| h.number.clone())
            .or_else(|| text(cr.pre_auth_ref.as_deref())),
        reason: header.as_ref().and_then(|h| h.reason.clone()),
        second_surgical_opinion: header.as_ref().and_then(|h| h.second_opinion),
        certification: cert,
        approved_quantity: None,
        administrative_reference: ext(&cr.extension, u::ADMIN_REFERENCE)
            .and_then(|e| e.value_str())
            .and_then(|s| text(Some(s))),
        trace_numbers: cr
            .identifier
            .iter()
            .filter_map(|i| {
                let reference = text(i.value.as_deref())?;
                let originator = i
                    .system
                    .as_deref()
                    .and_then(|s| s.strip_prefix("urn:trnorg:"))
                    .and_then(|s| code(Some(s)))
                    .or_else(|| {
                        i.assigner
                            .as_ref()
                            .and_then(|a| a.identifier.as_ref())
                            .and_then(|a| code(a.value.as_deref()))
                    })?;
                Some(TraceNumber {
                    kind: TraceType::Referenced,
                    reference,
                    originator,
                    secondary: None,
                    system: None,
                    originator_system: None,
                    jurisdiction: None,
                })
            })
            .collect(),
        rejects,
        messages: cr
            .process_note
            .iter()
            .filter_map(|n| text(n.text.as_deref()))
            .collect(),
        lines,
    };
    let resp = AuthorizationResponse {
        submitter_reference: sref,
        created_date: cr.created.as_deref().and_then(fhir_date),
        created_time: None,
        transaction_type: None,
        umo: None,
        requester: None,
        subscriber: None,
        dependent: None,
        event: None,
        services: vec![],
        decision,
    };
    (Some(resp), issues)
}

/// Reads the decision of a PAS response bundle (ClaimResponse first) or a bare ClaimResponse.
pub fn decision_from_json(v: &Value) -> (Option<AuthorizationResponse>, Vec<FhirIssue>) {
    match v.get("resourceType").and_then(Value::as_str) {
        Some("ClaimResponse") => match serde_json::from_value::<ClaimResponse>(v.clone()) {
            Ok(cr) => decision_from_claim_response(&cr, None, "ClaimResponse"),
            Err(e) => (
                None,
                vec![FhirIssue::error(
                    "structure",
                    "ClaimResponse",
                    e.to_string(),
                )],
            ),
        },
        Some("Bundle") => match serde_json::from_value::<Bundle>(v.clone()) {
            Ok(b) => decision_from_bundle(&b),
            Err(e) => (
                None,
                vec![FhirIssue::error("structure", "Bundle", e.to_string())],
            ),
        },
        _ => (
            None,
            vec![FhirIssue::error(
                "structure",
                "",
                "expected a PAS response Bundle or a ClaimResponse",
            )],
        ),
    }
}

pub fn decision_from_bundle(b: &Bundle) -> (Option<AuthorizationResponse>, Vec<FhirIssue>) {
    match b.entry.first().and_then(|e| e.resource.as_ref()) {
        Some(Resource::ClaimResponse(cr)) => decision_from_claim_response(
            cr,
            b.identifier.as_ref().and_then(|i| i.value.as_deref()),
            "Bundle.entry[0].resource",
        ),
        _ => (
            None,
            vec![FhirIssue::error(
                "structure",
                "Bundle.entry[0].resource",
                "the first entry of a PAS response bundle must be a ClaimResponse",
            )],
        ),
    }
}

/// What a response bundle is built from: the hub response, and the request bundle it answers
/// (when known) so item sequences, identifiers and fullUrls are echoed.
pub struct ResponseInput<'a> {
    pub response: &'a AuthorizationResponse,
    pub request: Option<&'a Bundle>,
}

fn review_action(
    action: Option<ActionCode>,
    number: Option<&Text>,
    reason: Option<&Code>,
    second: Option<bool>,
) -> Adjudication {
    let mut parts = vec![];
    if let Some(n) = number {
        parts.push(Extension::string("number", n.as_str()));
    }
    if let Some(r) = reason {
        parts.push(Extension::typed(
            "reasonCode",
            "valueCodeableConcept",
            &CodeableConcept::new(sys::X12_REASON, r.as_str()),
        ));
    }
    if let Some(s) = second {
        parts.push(Extension::boolean("secondSurgicalOpinionFlag", s));
    }
    if let Some(a) = action {
        parts.push(Extension::typed(
            u::REVIEW_ACTION_CODE,
            "valueCodeableConcept",
            &CodeableConcept::with_display(sys::X12_ACTION, a.code(), Some(a.description())),
        ));
    }
    Adjudication {
        extension: vec![Extension::complex(u::REVIEW_ACTION, parts)],
        category: Some(CodeableConcept::new(sys::ADJUDICATION, "submitted")),
        extra: Default::default(),
    }
}

fn cert_exts(c: &Certification, out: &mut Vec<Extension>) {
    if let Some(d) = c.issued {
        out.push(Extension::date(u::ITEM_PREAUTH_ISSUE_DATE, &d.to_string()));
    }
    if let Some(p) = cert_period(c) {
        out.push(Extension::typed(u::ITEM_PREAUTH_PERIOD, "valuePeriod", &p));
    }
}

fn cert_period(c: &Certification) -> Option<Period> {
    let (start, end) = match (c.effective, c.expires) {
        (Some(DateOrRange::Range(r)), _) => (Some(r.start), Some(r.end)),
        (Some(DateOrRange::Date(d)), e) => (Some(d), e),
        (None, Some(e)) => (None, Some(e)),
        (None, None) => return None,
    };
    Some(Period {
        start: start.map(|d| d.to_string()),
        end: end.map(|d| d.to_string()),
        ..Default::default()
    })
}

/// The loop an AAA came from, as an X12 element path and the FHIRPath of the request element.
fn error_location(r: &Reject) -> (String, String) {
    match r.level {
        Level::Umo => ("2010A-NM109".into(), "Claim.insurer".into()),
        Level::Requester => ("2010B-NM109".into(), "Claim.provider".into()),
        Level::Subscriber => ("2010C-NM109".into(), "Claim.insurance.coverage".into()),
        Level::Dependent => ("2010D-NM1".into(), "Claim.patient".into()),
        Level::Event => ("2000E-UM".into(), "Claim".into()),
        Level::Service => (
            "2000F-UM".into(),
            match r.line {
                Some(l) => format!("Claim.item[{}]", l.saturating_sub(1)),
                None => "Claim.item".into(),
            },
        ),
    }
}

fn response_error(r: &Reject, item_sequence: Option<u32>) -> ResponseError {
    let (element, path) = error_location(r);
    let mut e = ResponseError {
        item_sequence: item_sequence.map(num),
        code: Some(CodeableConcept::new(
            sys::X12_REJECT_REASON,
            r.reason.as_ref().map_or("15", |c| c.as_str()),
        )),
        ..Default::default()
    };
    if let Some(f) = r.follow_up {
        e.extension.push(Extension::typed(
            u::ERROR_FOLLOWUP,
            "valueCodeableConcept",
            &CodeableConcept::with_display(sys::X12_FOLLOW_UP, f.code(), Some(f.description())),
        ));
    }
    e.extension
        .push(Extension::string(u::ERROR_ELEMENT, &element));
    e.extension.push(Extension::string(u::ERROR_PATH, &path));
    e
}

/// Builds the PAS response Bundle for a hub response.
pub fn response_bundle(input: ResponseInput) -> Bundle {
    let resp = input.response;
    let d = &resp.decision;
    let mut b = Builder::new(&format!("response|{}", resp.submitter_reference));
    let req_claim =
        input.request.and_then(
            |rb| match rb.entry.first().and_then(|e| e.resource.as_ref()) {
                Some(Resource::Claim(c)) => Some((&**c, rb.entry[0].full_url.as_deref())),
                _ => None,
            },
        );
    let mut cr = ClaimResponse {
        resource_type: "ClaimResponse".into(),
        meta: Some(
            json!({"profile": [format!("{}/StructureDefinition/profile-claimresponse", super::PAS)]}),
        ),
        status: Some("active".into()),
        use_: Some("preauthorization".into()),
        created: Some(timestamp(resp.created_date, resp.created_time.as_ref())),
        ..Default::default()
    };
    b.entries.push(BundleEntry {
        full_url: Some(b.url("claimresponse")),
        resource: None,
        extra: Default::default(),
    });
    match req_claim {
        Some((claim, url)) => {
            let rb = input.request.expect("request bundle");
            cr.identifier = claim.identifier.clone();
            cr.type_ = claim.type_.clone();
            cr.patient = claim.patient.clone();
            cr.insurer = claim.insurer.clone();
            cr.requestor = claim.provider.clone();
            cr.request = Some(match url {
                Some(u) => Reference::to(u),
                None => Reference {
                    identifier: claim.identifier.first().cloned(),
                    ..Default::default()
                },
            });
            // Echo the parties the ClaimResponse points at, with the request's fullUrls.
            let ctx = RequestContext::new(rb);
            let mut echoed = vec![];
            for r in [&cr.patient, &cr.insurer, &cr.requestor]
                .into_iter()
                .flatten()
            {
                if let Some(s) = r.reference.as_deref() {
                    for i in ctx.targets(s) {
                        if !echoed.contains(&i) {
                            echoed.push(i);
                        }
                    }
                }
            }
            // A PractitionerRole requestor brings its Practitioner.
            for i in echoed.clone() {
                if let Some(Resource::PractitionerRole(pr)) = &rb.entry[i].resource
                    && let Some(s) = pr
                        .practitioner
                        .as_ref()
                        .and_then(|p| p.reference.as_deref())
                {
                    for j in ctx.targets(s) {
                        if !echoed.contains(&j) {
                            echoed.push(j);
                        }
                    }
                }
            }
            for i in echoed {
                b.entries.push(rb.entry[i].clone());
            }
        }
        None => {
            cr.type_ = Some(CodeableConcept::new(sys::CLAIM_TYPE, "professional"));
            cr.identifier = d
                .trace_numbers
                .iter()
                .map(|t| {
                    Identifier::new(
                        &format!("urn:trnorg:{}", t.originator),
                        t.reference.as_str(),
                    )
                })
                .collect();
            let member = resp.subscriber.as_ref().and_then(|s| match &s.id {
                Some(Identification::MemberId(m)) => Some(m.to_string()),
                _ => None,
            });
            if let Some(p) = resp.dependent.as_ref().or(resp.subscriber.as_ref()) {
                cr.patient = Some(patient_ref(&mut b, p, member.as_deref()));
            }
            if let Some(u) = &resp.umo {
                cr.insurer = Some(org_ref(&mut b, "umo", u));
            }
            if let Some(r) = &resp.requester {
                cr.requestor = Some(org_ref(&mut b, "requester", r));
            }
            cr.request = Some(Reference {
                identifier: Some(Identifier::new(
                    "urn:x12:BHT03",
                    resp.submitter_reference.as_str(),
                )),
                ..Default::default()
            });
        }
    }
    let rejected_whole = d.status == Status::Rejected;
    cr.outcome = Some(if rejected_whole { "error" } else { "complete" }.into());
    cr.disposition = Some(d.status.description().to_owned());
    cr.pre_auth_ref = d
        .certification_number
        .as_ref()
        .or_else(|| d.lines.iter().find_map(|l| l.certification_number.as_ref()))
        .map(|t| t.to_string());
    cr.pre_auth_period = cert_period(&d.certification);
    if let Some(a) = &d.administrative_reference {
        cr.extension
            .push(Extension::string(u::ADMIN_REFERENCE, a.as_str()));
    }
    if d.action.is_some() {
        cr.adjudication.push(review_action(
            d.action,
            d.certification_number.as_ref(),
            d.reason.as_ref(),
            d.second_surgical_opinion,
        ));
    }
    let claim_items: Vec<u32> = req_claim
        .map(|(c, _)| {
            c.item
                .iter()
                .enumerate()
                .map(|(k, i)| i.sequence.as_ref().and_then(seq).unwrap_or(k as u32 + 1))
                .collect()
        })
        .unwrap_or_default();
    let seq_of = |line: usize| {
        claim_items
            .get(line.wrapping_sub(1))
            .copied()
            .unwrap_or(line as u32)
    };
    let mut lines: Vec<LineDecision> = d.lines.clone();
    if lines.is_empty() && d.action.is_some() {
        // An event-level decision applies to every item asked for.
        let n = claim_items.len().max(resp.services.len());
        for k in 1..=n {
            let mut l = empty_line(k);
            l.action = d.action;
            l.status = d.status;
            l.certification_number.clone_from(&d.certification_number);
            l.certification = d.certification.clone();
            lines.push(l);
        }
    }
    for l in &lines {
        let s = seq_of(l.line);
        let mut it = ResponseItem {
            item_sequence: Some(num(s)),
            ..Default::default()
        };
        cert_exts(&l.certification, &mut it.extension);
        if let Some(a) = &l.administrative_reference {
            it.extension
                .push(Extension::string(u::ADMIN_REFERENCE, a.as_str()));
        }
        let units = l.approved_units.as_ref().or(l
            .approved_quantity
            .as_ref()
            .and_then(|q| q.quantity.as_ref()));
        if let Some(q) = units
            && l.action != Some(ActionCode::Modified)
        {
            it.extension.push(Extension::complex(
                u::ITEM_AUTHORIZED_DETAIL,
                vec![Extension::typed(
                    "quantity",
                    "valueQuantity",
                    &Quantity {
                        value: Some(decimal_number(q)),
                        ..Default::default()
                    },
                )],
            ));
        }
        it.adjudication.push(review_action(
            l.action,
            l.certification_number.as_ref(),
            l.reason.as_ref(),
            l.second_surgical_opinion,
        ));
        cr.item.push(it);
        if l.action == Some(ActionCode::Modified) {
            // The authorized detail of a modified line goes in addItem, linked by itemSequence.
            let service = resp
                .services
                .get(l.line.wrapping_sub(1))
                .and_then(|s| s.service.as_ref());
            let product = req_claim
                .and_then(|(c, _)| c.item.get(l.line.wrapping_sub(1)))
                .and_then(|i| i.product_or_service.clone())
                .or_else(|| {
                    service
                        .and_then(Service::procedure)
                        .map(|p| CodeableConcept::new(sys::HCPCS, p.code.as_str()))
                })
                .unwrap_or_else(|| CodeableConcept::new(sys::X12_SERVICE_TYPE, "1"));
            let mut add = AddItem {
                item_sequence: vec![num(s)],
                product_or_service: Some(product),
                quantity: units.map(|q| Quantity {
                    value: Some(decimal_number(q)),
                    ..Default::default()
                }),
                adjudication: vec![review_action(
                    l.action,
                    l.certification_number.as_ref(),
                    l.reason.as_ref(),
                    None,
                )],
                ..Default::default()
            };
            cert_exts(&l.certification, &mut add.extension);
            cr.add_item.push(add);
        }
        for r in &l.rejects {
            cr.error.push(response_error(r, Some(s)));
        }
        for (k, m) in l.messages.iter().enumerate() {
            cr.process_note.push(ProcessNote {
                number: Some(num((cr.process_note.len() + k + 1) as u32)),
                type_: Some("display".into()),
                text: Some(m.to_string()),
                extra: Default::default(),
            });
        }
    }
    for r in &d.rejects {
        cr.error.push(response_error(r, r.line.map(&seq_of)));
    }
    for m in &d.messages {
        let n = cr.process_note.len() as u32 + 1;
        cr.process_note.push(ProcessNote {
            number: Some(num(n)),
            type_: Some("display".into()),
            text: Some(m.to_string()),
            extra: Default::default(),
        });
    }
    if cr.insurer.is_none() {
        cr.insurer = Some(Reference {
            display: Some("unknown insurer".into()),
            ..Default::default()
        });
    }
    b.entries[0].resource = Some(Resource::ClaimResponse(Box::new(cr)));
    let identifier = input
        .request
        .and_then(|r| r.identifier.clone())
        .or_else(|| {
            Some(Identifier::new(
                "urn:x12:BHT03",
                resp.submitter_reference.as_str(),
            ))
        });
    Bundle {
        resource_type: "Bundle".into(),
        id: None,
        meta: Some(
            json!({"profile": [format!("{}/StructureDefinition/profile-pas-response-bundle", super::PAS)]}),
        ),
        identifier,
        type_: Some("collection".into()),
        timestamp: Some(timestamp(resp.created_date, resp.created_time.as_ref())),
        entry: b.entries,
        extra: Default::default(),
    }
}

fn org_ref(b: &mut Builder, role: &str, e: &Entity) -> Reference {
    let mut o = Organization {
        resource_type: "Organization".into(),
        active: Some(true),
        name: e.name.as_ref().map(|n| match &e.first_name {
            Some(f) => format!("{f} {n}"),
            None => n.to_string(),
        }),
        type_: vec![CodeableConcept::new(sys::X12_ENTITY, e.role.as_str())],
        ..Default::default()
    };
    if let Some(Identification::Npi(n)) = &e.id {
        o.identifier.push(Identifier::new(sys::NPI, n.as_str()));
    }
    b.push(role, Resource::Organization(Box::new(o)))
}

fn patient_ref(b: &mut Builder, e: &Entity, member: Option<&str>) -> Reference {
    let mut p = Patient {
        resource_type: "Patient".into(),
        ..Default::default()
    };
    if let Some(n) = &e.name {
        p.name.push(HumanName {
            family: Some(n.to_string()),
            given: e.first_name.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        });
    }
    for r in &e.references {
        p.identifier.push(Identifier::new(
            &format!("urn:x12:REF:{}", r.qualifier),
            r.value.as_str(),
        ));
    }
    if p.identifier.is_empty()
        && let Some(m) = member
    {
        // The member id of the coverage identifies the patient to the payer.
        p.identifier.push(Identifier::new("urn:x12:NM108:MI", m));
    }
    let d = e.demographics.as_ref();
    p.birth_date = d.and_then(|d| d.birth_date).map(|d| d.to_string());
    p.gender = Some(
        match d.and_then(|d| d.gender.as_ref()).map(|g| g.as_str()) {
            Some("M") => "male",
            Some("F") => "female",
            _ => "unknown",
        }
        .to_owned(),
    );
    b.push("patient", Resource::Patient(Box::new(p)))
}
