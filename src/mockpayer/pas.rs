//! The PAS side: `Claim/$submit` and `Claim/$inquire` through the fhir codecs.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{
    Authorization, Channel, FaultKind, MockState, Outcome, Subject, decide, dropped,
    received_entry, status_fault, today,
};
use crate::domain::{ActionCode, AuthorizationRequest, AuthorizationResponse, Service, TraceType};
use crate::fhir::inquiry::{inquiry_from_bundle, inquiry_parameters};
use crate::fhir::validate::{PasKind, kind_of, parse_json, validate_bundle};
use crate::fhir::{
    Bundle, FhirIssue, Resource, ResponseInput, operation_outcome, request_from_bundle,
    response_bundle,
};

const FHIR_JSON: &str = "application/fhir+json";

fn fhir(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, FHIR_JSON)], body).into_response()
}

fn outcome(status: StatusCode, issues: &[FhirIssue]) -> Response {
    let body = serde_json::to_vec(&operation_outcome(issues)).unwrap_or_default();
    fhir(status, body)
}

/// The trace key of a request: its requester trace numbers (TRN, Claim.identifier), else BHT03.
pub(crate) fn trace_key(r: &AuthorizationRequest) -> (String, Vec<String>) {
    let traces: Vec<String> = r
        .event
        .trace_numbers
        .iter()
        .filter(|t| t.kind == TraceType::Current)
        .map(|t| format!("{}:{}", t.originator, t.reference))
        .collect();
    let key = if traces.is_empty() {
        format!("bht03:{}", r.submitter_reference)
    } else {
        format!("trn:{}", traces.join(","))
    };
    (key, traces)
}

/// Reads a Bundle (or the first Bundle inside a Parameters), refusing what is not one.
fn read_bundle(data: &[u8], want_inquiry: bool, strict: bool) -> Result<Bundle, Vec<FhirIssue>> {
    let mut v = parse_json(data).map_err(|i| vec![i])?;
    if v["resourceType"] == "Parameters" {
        let inner = v["parameter"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("resource"))
            .find(|r| r["resourceType"] == "Bundle")
            .cloned();
        v = inner.ok_or_else(|| {
            vec![FhirIssue::error(
                "required",
                "Parameters.parameter",
                "the Parameters carry no Bundle resource",
            )]
        })?;
    }
    let kind = kind_of(&v);
    let ok = match kind {
        PasKind::RequestBundle => true,
        PasKind::InquiryBundle => want_inquiry,
        _ => false,
    };
    if !ok {
        return Err(vec![FhirIssue::error(
            "not-supported",
            "Bundle.entry[0].resource",
            if want_inquiry {
                "an inquiry request Bundle (Claim first) is expected"
            } else {
                "a PAS request Bundle (a Claim first, not the inquiry profile) is expected"
            },
        )]);
    }
    if strict {
        let errors: Vec<FhirIssue> = validate_bundle(&v)
            .into_iter()
            .filter(FhirIssue::is_error)
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
    }
    serde_path_to_error::deserialize(v).map_err(|e| {
        vec![FhirIssue::error(
            "structure",
            format!("Bundle.{}", e.path()),
            e.inner().to_string(),
        )]
    })
}

/// The PAS response Bundle for a hub response, as JSON bytes. `wrong` makes its identifiers
/// differ from the request's (the wrong_control fault).
pub(crate) fn response_body(
    resp: &AuthorizationResponse,
    request: Option<&Bundle>,
    wrong: bool,
) -> Vec<u8> {
    let mut b = response_bundle(ResponseInput {
        response: resp,
        request,
    });
    if let Some(Some(Resource::ClaimResponse(cr))) =
        b.entry.first_mut().map(|e| e.resource.as_mut())
    {
        // A modified line approves what the payer echoed (another code): the codec echoes the
        // request's productOrService in addItem, so the approved code is put there.
        let modified = resp
            .decision
            .lines
            .iter()
            .filter(|l| l.action == Some(ActionCode::Modified));
        for (add, l) in cr.add_item.iter_mut().zip(modified) {
            let code = resp
                .services
                .get(l.line.wrapping_sub(1))
                .and_then(|s| s.service.as_ref())
                .and_then(Service::procedure)
                .map(|p| p.code.to_string());
            if let (Some(code), Some(c)) = (code, add.product_or_service.as_mut())
                && let Some(first) = c.coding.first_mut()
            {
                first.code = Some(code);
                first.display = None;
            }
        }
        if wrong {
            for id in &mut cr.identifier {
                if let Some(v) = id.value.as_mut() {
                    v.push_str("-WRONG");
                }
            }
        }
    }
    if wrong && let Some(v) = b.identifier.as_mut().and_then(|i| i.value.as_mut()) {
        v.push_str("-WRONG");
    }
    serde_json::to_vec(&b).unwrap_or_default()
}

fn authorized(s: &MockState, headers: &HeaderMap) -> bool {
    !s.inner.rules.require_token || super::oauth::bearer_ok(s, headers)
}

fn unauthorized() -> Response {
    let mut r = outcome(
        StatusCode::UNAUTHORIZED,
        &[FhirIssue::error(
            "login",
            "",
            "a bearer token from /oauth/token is required",
        )],
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    r
}

pub(crate) async fn submit(
    State(s): State<MockState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut rec = received_entry(Channel::Pas, "submit", body.len());
    if !authorized(&s, &headers) {
        rec.outcome = Outcome::Unauthorized;
        rec.http_status = 401;
        s.record(rec);
        return unauthorized();
    }
    let parsed = read_bundle(&body, false, s.inner.rules.strict_pas).and_then(|b| {
        let (r, issues) = request_from_bundle(&b);
        match r {
            Some(r) => Ok((b, r)),
            None => Err(issues.into_iter().filter(FhirIssue::is_error).collect()),
        }
    });
    let (bundle, request) = match parsed {
        Ok(x) => x,
        Err(issues) => {
            let fault = s.pick_fault(Channel::Pas, None);
            if let Some(f) = fault.as_ref().filter(|f| f.kind.before_payload(f.status)) {
                rec.outcome = Outcome::NotProcessed;
                rec.fault = Some(f.kind.name());
                rec.http_status = f.status.unwrap_or(500);
                s.record(rec);
                return status_fault(f);
            }
            rec.outcome = Outcome::Unreadable;
            rec.http_status = 400;
            s.record(rec);
            return outcome(StatusCode::BAD_REQUEST, &issues);
        }
    };
    let (key, traces) = trace_key(&request);
    rec.trace_numbers = traces;
    rec.submitter_reference = bundle
        .identifier
        .as_ref()
        .and_then(|i| i.value.clone())
        .or_else(|| Some(request.submitter_reference.to_string()));
    rec.authorization = Some(key.clone());
    let subject = Subject {
        request: &request,
        channel: Channel::Pas,
        receiver: None,
    };
    let fault = s.pick_fault(Channel::Pas, Some(&subject));
    if let Some(f) = &fault {
        rec.fault = Some(f.kind.name());
        if f.kind.before_payload(f.status) {
            rec.outcome = Outcome::NotProcessed;
            rec.http_status = f.status.unwrap_or(503);
            s.record(rec);
            return status_fault(f);
        }
    }
    let rules = &s.inner.rules;
    let mut applied = vec![];
    let (resp, new, later) = s.admit(&key, |n| {
        let d = decide(rules, &subject, n, today());
        applied = d.rules;
        let auth = Authorization {
            channel: Channel::Pas,
            request: request.clone(),
            bundle: Some(bundle.clone()),
            envelope: None,
            response: d.now,
            pending: d
                .later
                .as_ref()
                .map(|(_, r)| (std::time::Instant::now(), r.clone())),
        };
        (auth, d.later.map(|(t, _)| t))
    });
    if let Some(delay) = later {
        s.schedule(key.clone(), delay);
    }
    rec.outcome = if new {
        Outcome::New
    } else {
        Outcome::Retransmit
    };
    rec.rules = applied;
    rec.decision = Some(resp.decision.status);
    rec.certification_number = resp
        .decision
        .certification_number
        .as_ref()
        .map(|c| c.to_string());
    let wrong = fault
        .as_ref()
        .is_some_and(|f| f.kind == FaultKind::WrongControl);
    let answer = match fault.as_ref().map(|f| f.kind) {
        Some(FaultKind::Status) => {
            let f = fault.as_ref().map(status_fault).unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response());
            rec.http_status = f.status().as_u16();
            f
        }
        Some(FaultKind::Drop) => {
            rec.http_status = 0;
            dropped()
        }
        Some(FaultKind::Malformed) => fhir(
            StatusCode::OK,
            br#"{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "ClaimRes"#.to_vec(),
        ),
        _ => fhir(StatusCode::OK, response_body(&resp, Some(&bundle), wrong)),
    };
    s.record(rec);
    // Decided and recorded first, answered late (see the CORE handler).
    if let Some(f) = fault.as_ref().filter(|f| f.kind == FaultKind::Slow) {
        tokio::time::sleep(std::time::Duration::from_millis(f.ms.unwrap_or(0))).await;
    }
    answer
}

pub(crate) async fn inquire(
    State(s): State<MockState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut rec = received_entry(Channel::Pas, "inquire", body.len());
    if !authorized(&s, &headers) {
        rec.outcome = Outcome::Unauthorized;
        rec.http_status = 401;
        s.record(rec);
        return unauthorized();
    }
    let inquiry = read_bundle(&body, true, s.inner.rules.strict_pas).and_then(|b| {
        let (q, issues) = inquiry_from_bundle(&b);
        match q {
            Some(q) => Ok((b, q)),
            None => Err(issues.into_iter().filter(FhirIssue::is_error).collect()),
        }
    });
    let (bundle, inquiry) = match inquiry {
        Ok(x) => x,
        Err(issues) => {
            rec.outcome = Outcome::Unreadable;
            rec.http_status = 400;
            s.record(rec);
            return outcome(StatusCode::BAD_REQUEST, &issues);
        }
    };
    let (_, traces) = trace_key(&inquiry.example);
    rec.trace_numbers = traces;
    rec.submitter_reference = bundle.identifier.as_ref().and_then(|i| i.value.clone());
    rec.outcome = Outcome::Inquiry;
    let fault = s.pick_fault(Channel::Pas, None);
    if let Some(f) = &fault {
        rec.fault = Some(f.kind.name());
        match f.kind {
            FaultKind::Slow => {
                tokio::time::sleep(std::time::Duration::from_millis(f.ms.unwrap_or(0))).await
            }
            FaultKind::Status => {
                let r = status_fault(f);
                rec.http_status = r.status().as_u16();
                s.record(rec);
                return r;
            }
            FaultKind::Drop => {
                rec.http_status = 0;
                s.record(rec);
                return dropped();
            }
            FaultKind::Malformed => {
                s.record(rec);
                return fhir(
                    StatusCode::OK,
                    br#"{"resourceType": "Parameters", "parameter": [{"#.to_vec(),
                );
            }
            _ => {}
        }
    }
    let found: Vec<(String, AuthorizationResponse, Option<Bundle>)> = {
        let mut data = s.data();
        let now = std::time::Instant::now();
        let mut out = vec![];
        for (k, a) in data.auths.iter_mut() {
            a.settle(now);
            if inquiry.matches(&a.request, Some(&a.response)) {
                out.push((k.clone(), a.response.clone(), a.bundle.clone()));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    };
    if let Some((k, r, _)) = found.first() {
        rec.authorization = Some(k.clone());
        rec.decision = Some(r.decision.status);
        rec.certification_number = r
            .decision
            .certification_number
            .as_ref()
            .map(|c| c.to_string());
    }
    let pairs: Vec<(AuthorizationResponse, Option<&Bundle>)> = found
        .iter()
        .map(|(_, r, b)| (r.clone(), b.as_ref()))
        .collect();
    let params: Value = inquiry_parameters(&pairs);
    s.record(rec);
    fhir(
        StatusCode::OK,
        serde_json::to_vec(&params).unwrap_or_default(),
    )
}
