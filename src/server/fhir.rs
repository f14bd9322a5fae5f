//! The FHIR PAS endpoint under `/fhir` (R4, `application/fhir+json`), whatever the payer
//! speaks behind it: `Claim/$submit` (validate, create the record, route it by insurer through
//! the outbox as a 278 or PAS, wait for the decision up to `ApiConfig::fhir_wait`, answer the
//! PAS Response Bundle or A4 pended with the record id as the tracking number), Claim Update
//! and cancel (certificationType 3), `Claim/$inquire`, `ClaimResponse` read and search,
//! backport Subscriptions (rest-hook, full-resource, `org-identifier` filter) with the
//! handshake, and the notifier that turns the later status changes of records answered pended
//! into durable, retried event notifications carrying the full PAS Response Bundle.
//!
//! Problems are answered as an OperationOutcome with a FHIRPath expression per issue: 400 for
//! what cannot be read, 422 for what breaks a PAS rule, 404 for what the tenant does not hold.
//! Never logged: bodies, patient data; log lines carry record ids, states and counts.

// The helpers return `Result<_, Response>`: the error is the finished HTTP answer, built once.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::principal::Principal;
use crate::domain::*;
use crate::fhir::outcome::{FhirIssue, operation_outcome};
use crate::fhir::subscription::{self as sub, read_subscription, subscription_resource};
use crate::fhir::validate::{PasKind, kind_of, parse_json, validate_bundle};
use crate::fhir::{Bundle, Resource, ResponseInput, response_bundle};
use crate::store::{Store, SubscriptionRow};
use crate::tracking::lifecycle::State as RecordState;
use crate::tracking::{TrackingError, facts};

pub const FHIR_JSON: &str = "application/fhir+json";

/// A FHIR JSON answer.
pub fn fhir_json(status: StatusCode, v: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => (status, [(header::CONTENT_TYPE, FHIR_JSON)], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// An OperationOutcome answer.
pub fn outcome(status: StatusCode, issues: &[FhirIssue]) -> Response {
    fhir_json(status, &operation_outcome(issues))
}

fn one(status: StatusCode, code: &'static str, at: &str, message: impl Into<String>) -> Response {
    outcome(status, &[FhirIssue::error(code, at, message)])
}

fn tracking_outcome(e: TrackingError) -> Response {
    match e {
        TrackingError::NotFound(m) => one(StatusCode::NOT_FOUND, "not-found", "", m),
        TrackingError::Invalid(m) => one(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "", m),
        TrackingError::Forbidden(m) => one(StatusCode::FORBIDDEN, "forbidden", "", m),
        TrackingError::Illegal(m) | TrackingError::Refused(m) => {
            one(StatusCode::CONFLICT, "conflict", "", m)
        }
        TrackingError::Store(e) => {
            tracing::error!(error = %e, "fhir: records store failed");
            one(
                StatusCode::SERVICE_UNAVAILABLE,
                "transient",
                "",
                format!("the records store failed: {e}"),
            )
        }
    }
}

fn store_outcome(e: crate::store::StoreError) -> Response {
    tracking_outcome(TrackingError::Store(e))
}

/// The PAS Bundle in a body: a Bundle, or a Parameters resource holding one (`resource`).
fn read_body(body: &[u8]) -> Result<Value, Response> {
    if body.is_empty() {
        return Err(one(
            StatusCode::BAD_REQUEST,
            "required",
            "",
            "the body is empty: send a PAS Bundle (application/fhir+json)",
        ));
    }
    let v = parse_json(body).map_err(|i| outcome(StatusCode::BAD_REQUEST, &[i]))?;
    if v["resourceType"] == "Parameters" {
        let found = v["parameter"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|p| p.get("resource").filter(|r| r["resourceType"] == "Bundle"));
        return match found {
            Some(b) => Ok(b.clone()),
            None => Err(one(
                StatusCode::BAD_REQUEST,
                "required",
                "Parameters.parameter",
                "the Parameters hold no Bundle (a parameter `resource` with the PAS Bundle)",
            )),
        };
    }
    Ok(v)
}

/// Validates a PAS Bundle and reads it typed; 422 with every issue when it breaks a rule.
fn checked_bundle(v: &Value) -> Result<Bundle, Response> {
    let issues = validate_bundle(v);
    if issues.iter().any(FhirIssue::is_error) {
        return Err(outcome(StatusCode::UNPROCESSABLE_ENTITY, &issues));
    }
    serde_path_to_error::deserialize::<_, Bundle>(v.clone()).map_err(|e| {
        one(
            StatusCode::BAD_REQUEST,
            "structure",
            &format!("Bundle.{}", e.path()),
            e.inner().to_string(),
        )
    })
}

/// The organization identifiers a request names (its requester's NPI and other identifiers,
/// the ISA06 sender of its TransmissionIdentifiers): what a Subscription's org filter matches.
pub fn org_identifiers(bundle: &Bundle, req: &AuthorizationRequest) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    if let Some(id) = &req.requester.id {
        out.push(id.value().to_owned());
    }
    if let Some(t) = crate::fhir::Transmission::of(bundle) {
        for s in [t.interchange_sender, t.application_sender]
            .into_iter()
            .flatten()
        {
            out.push(s.trim().to_owned());
        }
    }
    if let Some(Resource::Claim(c)) = bundle.entry.first().and_then(|e| e.resource.as_ref()) {
        let ctx = crate::fhir::RequestContext::new(bundle);
        if let Some((_, r)) = ctx.resolve(c.provider.as_ref()) {
            let v = serde_json::to_value(r).unwrap_or(Value::Null);
            for i in v["identifier"].as_array().into_iter().flatten() {
                if let Some(s) = i["value"].as_str() {
                    out.push(s.to_owned());
                }
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out.sort();
    out.dedup();
    out
}

fn latest_decision(rows: &[crate::store::DecisionRow]) -> Option<Decision> {
    rows.iter()
        .max_by_key(|d| (d.decided_at, d.id))
        .and_then(|d| serde_json::from_str(&d.body).ok())
}

/// What we know of a record as a hub response: the payer's latest decision, or (nothing from
/// the payer yet) A4 pended with the record id as the administrative reference (tracking
/// number); a record refused before any decision is rejected with the reason.
pub async fn known_response(
    store: &Store,
    id: &str,
) -> Result<(AuthorizationResponse, crate::store::RequestRow), TrackingError> {
    let row = store
        .request(id)
        .await?
        .ok_or_else(|| TrackingError::NotFound(format!("no record {id}")))?;
    let body = store
        .request_body(id, None)
        .await?
        .ok_or_else(|| TrackingError::NotFound(format!("no body for record {id}")))?;
    let req: AuthorizationRequest = serde_json::from_str(&body)
        .map_err(|e| TrackingError::Invalid(format!("stored body of {id}: {e}")))?;
    let decisions = store.decisions(id).await?;
    let status = RecordState::parse(&row.status).map_err(TrackingError::Invalid)?;
    let tracking = Text::parse(id).ok();
    let mut decision = match latest_decision(&decisions) {
        Some(d) => d,
        None => Decision {
            status: Status::Pended,
            action: Some(ActionCode::Pended),
            certification_number: None,
            reason: None,
            second_surgical_opinion: None,
            certification: Default::default(),
            approved_quantity: None,
            administrative_reference: None,
            trace_numbers: vec![],
            rejects: vec![],
            messages: vec![],
            lines: vec![],
        },
    };
    match status {
        RecordState::Rejected if decisions.is_empty() => {
            decision.status = Status::Rejected;
            decision.action = None;
            decision.rejects.push(Reject {
                level: Level::Event,
                line: None,
                validity: Validity::Invalid,
                reason: None,
                follow_up: None,
            });
            let why = store
                .events(id)
                .await?
                .into_iter()
                .rev()
                .find(|e| e.to_status.as_deref() == Some("rejected"))
                .and_then(|e| e.reason);
            if let Some(m) = why.as_deref().and_then(|w| Text::parse(w.trim()).ok()) {
                decision.messages.push(m);
            }
        }
        RecordState::Cancelled => {
            decision.status = Status::Cancelled;
            decision.action = Some(ActionCode::Cancelled);
            for l in &mut decision.lines {
                l.action = Some(ActionCode::Cancelled);
                l.status = Status::Cancelled;
            }
        }
        _ => {}
    }
    if decision.status == Status::Pended && decision.administrative_reference.is_none() {
        decision.administrative_reference = tracking;
    }
    let at = row.decided_at.unwrap_or(row.updated_at);
    let resp = AuthorizationResponse {
        submitter_reference: req.submitter_reference.clone(),
        created_date: Date::parse(&crate::tracking::iso(at)[..10]).ok(),
        created_time: None,
        transaction_type: None,
        umo: None,
        requester: None,
        subscriber: None,
        dependent: None,
        event: None,
        services: req.services.clone(),
        decision,
    };
    Ok((resp, row))
}

/// The PAS Response Bundle of a record (its stored request Bundle echoed), within `tenant`.
pub async fn response_for(store: &Store, id: &str, tenant: &str) -> Result<Bundle, TrackingError> {
    if !in_tenant(store, id, tenant).await? {
        return Err(TrackingError::NotFound(format!("no record {id}")));
    }
    let stored = store.fhir_bundle(id, tenant).await?;
    let (resp, _) = known_response(store, id).await?;
    let request: Option<Bundle> = stored.and_then(|s| serde_json::from_str(&s.bundle).ok());
    let mut b = response_bundle(ResponseInput {
        response: &resp,
        request: request.as_ref(),
    });
    b.id = Some(id.to_owned());
    Ok(b)
}

/// Whether record `id` exists in `tenant` (another tenant's record is as missing).
async fn in_tenant(store: &Store, id: &str, tenant: &str) -> Result<bool, TrackingError> {
    Ok(store.request(id).await?.is_some_and(|r| r.tenant == tenant))
}

/// The event-notification Bundle for `subscription` about record `request_id`: the
/// SubscriptionStatus and the record's full PAS Response Bundle as it is now.
pub async fn notification_bundle(
    store: &Store,
    subscription: &SubscriptionRow,
    request_id: &str,
    event_number: i64,
) -> Result<Value, TrackingError> {
    let focus = response_for(store, request_id, &subscription.tenant).await?;
    let focus_url = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let focus = serde_json::to_value(&focus).map_err(|e| TrackingError::Invalid(e.to_string()))?;
    Ok(sub::event_bundle(
        "",
        &subscription.id,
        event_number,
        &now_instant(),
        &focus_url,
        focus,
    ))
}

/// The handshake Bundle for `subscription`.
pub fn handshake(subscription: &SubscriptionRow) -> Value {
    sub::handshake_bundle("", &subscription.id, &now_instant())
}

/// The client for handshakes (the notifier gets its own).
fn http() -> &'static reqwest::Client {
    static HTTP: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    HTTP.get_or_init(crate::transport::http_client)
}

fn now_instant() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Finds the record a Claim Update or cancel revises, by the prior Claim's trace number.
async fn find_revised(
    state: &AppState,
    trace: &TraceNumber,
    tenant: &str,
) -> Result<Option<crate::store::RequestRow>, TrackingError> {
    let store = &state.tracker.store;
    let refs = store
        .references_by_trace(&[trace.reference.as_str().to_owned()])
        .await?;
    for (_, reference) in refs {
        for row in store.requests_by_reference(&reference).await? {
            if row.tenant == tenant {
                return Ok(Some(row));
            }
        }
    }
    Ok(None)
}

/// `POST /fhir/Claim/$submit`.
pub async fn submit(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    body: Bytes,
) -> Response {
    match submit_inner(&state, &principal, &body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn submit_inner(
    state: &AppState,
    principal: &Principal,
    body: &[u8],
) -> Result<Response, Response> {
    let started = Instant::now();
    let v = read_body(body)?;
    match kind_of(&v) {
        PasKind::RequestBundle => {}
        PasKind::InquiryBundle => {
            return Err(one(
                StatusCode::BAD_REQUEST,
                "invalid",
                "Bundle.meta.profile",
                "this is an inquiry bundle: send it to Claim/$inquire",
            ));
        }
        _ => {
            return Err(one(
                StatusCode::BAD_REQUEST,
                "structure",
                "Bundle.entry[0].resource",
                "a PAS request Bundle is expected: a Bundle whose first entry is a Claim",
            ));
        }
    }
    let bundle = checked_bundle(&v)?;
    let (req, issues) = crate::fhir::request_from_bundle(&bundle);
    let Some(req) = req.filter(|_| !issues.iter().any(FhirIssue::is_error)) else {
        return Err(outcome(StatusCode::UNPROCESSABLE_ENTITY, &issues));
    };
    let payer_id = facts(&req).payer;
    let payer = state.directory.route(&payer_id).map_err(|e| {
        one(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-found",
            "Bundle.entry[0].resource.insurer",
            e.to_string(),
        )
    })?;
    let tracker = &state.tracker;
    let tenant = principal.tenant.as_str();
    let actor = principal.name.as_str();
    // A Claim Update or a cancel names the prior Claim: find its record in the tenant.
    let cancel = req.purpose == Purpose::Cancellation;
    let revised = match &req.revises {
        Some(t) => {
            let row = find_revised(state, t, tenant)
                .await
                .map_err(tracking_outcome)?
                .ok_or_else(|| {
                    one(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "not-found",
                        "Bundle.entry[0].resource.related",
                        "the prior Claim this update names is not known here (no request was sent with its trace number)",
                    )
                })?;
            let from = RecordState::parse(&row.status)
                .map_err(|e| one(StatusCode::INTERNAL_SERVER_ERROR, "exception", "", e))?;
            if matches!(from, RecordState::Denied | RecordState::Rejected) {
                return Err(one(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "business-rule",
                    "Bundle.entry[0].resource.related",
                    format!(
                        "the prior request was {from}: no update is allowed after a denial (submit a new request or an appeal)"
                    ),
                ));
            }
            if cancel && !from.can_move_to(RecordState::Cancelled) {
                return Err(one(
                    StatusCode::CONFLICT,
                    "business-rule",
                    "Bundle.entry[0].resource.related",
                    format!("the prior request is {from} and cannot be cancelled"),
                ));
            }
            Some(row)
        }
        None if cancel => {
            return Err(one(
                StatusCode::UNPROCESSABLE_ENTITY,
                "required",
                "Bundle.entry[0].resource.related",
                "a cancellation (certificationType 3) names the prior Claim in related.claim",
            ));
        }
        None => None,
    };
    // The Bundle identifier makes a retry of the same submission the same record.
    let key = bundle
        .identifier
        .as_ref()
        .and_then(|i| {
            i.value
                .as_deref()
                .map(|v| (i.system.as_deref().unwrap_or(""), v))
        })
        .map(|(s, v)| format!("fhir.submit:{tenant}:{s}|{v}"));
    let scoped = tracker.scope(tenant);
    let (id, created) = match &key {
        Some(k) => scoped.create_once(&req, actor, k).await,
        None => scoped.create(&req, actor).await.map(|id| (id, true)),
    }
    .map_err(tracking_outcome)?;
    if !created {
        let first = tracker.body(&id).await.map_err(tracking_outcome)?;
        if first != req {
            return Err(one(
                StatusCode::UNPROCESSABLE_ENTITY,
                "duplicate",
                "Bundle.identifier",
                "a different request was already submitted with this Bundle.identifier",
            ));
        }
        if state
            .tracker
            .store
            .fhir_bundle(&id, tenant)
            .await
            .map_err(store_outcome)?
            .is_none()
        {
            return Err(one(
                StatusCode::NOT_FOUND,
                "not-found",
                "Bundle.identifier",
                "no such submission",
            ));
        }
    } else {
        let orgs = format!("|{}|", org_identifiers(&bundle, &req).join("|"));
        // What the caller sent, unwrapped from Parameters (key order and decimals are kept).
        let raw = v.to_string();
        state
            .tracker
            .store
            .fhir_put_bundle(
                &id,
                1,
                tenant,
                &raw,
                &orgs,
                revised.as_ref().map(|r| r.id.as_str()),
                tracker.clock.now_ms(),
            )
            .await
            .map_err(store_outcome)?;
        let to = tracker
            .send_to_review(&id, actor)
            .await
            .map_err(tracking_outcome)?;
        if to == RecordState::Ready {
            tracker
                .submit_to(&id, actor, payer)
                .await
                .map_err(tracking_outcome)?;
            state.outbox_wake.notify_one();
        }
        if let (true, Some(prior)) = (cancel, &revised) {
            tracker
                .cancel(
                    &prior.id,
                    actor,
                    &format!("cancelled by the PAS Claim of record {id} (certificationType 3)"),
                )
                .await
                .map_err(tracking_outcome)?;
        }
        tracing::info!(
            id = %id,
            payer = %payer_id,
            format = payer.format.as_str(),
            update = revised.is_some(),
            cancel,
            "fhir submit queued"
        );
    }
    // Wait for the payer's answer, never past the limit.
    let deadline = started + state.config.fhir_wait;
    let decided = |s: RecordState| {
        s.is_final_decision()
            || matches!(
                s,
                RecordState::Pended | RecordState::Rejected | RecordState::Cancelled
            )
            || s.certified()
    };
    // Polled: often at first (a payer answering in real time), less often as it takes longer.
    let mut status = current(state, &id).await?;
    let mut pause = Duration::from_millis(5);
    while !decided(status) && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(pause)).await;
        pause = (pause * 3 / 2).min(Duration::from_millis(100));
        status = current(state, &id).await?;
    }
    // A payer's answer that pends any line (A4) also gets its later changes notified.
    let pends_a_line = match known_response(&state.tracker.store, &id).await {
        Ok((r, _)) => {
            r.decision.action == Some(ActionCode::Pended)
                || r.decision
                    .lines
                    .iter()
                    .any(|l| l.action == Some(ActionCode::Pended))
        }
        Err(e) => return Err(tracking_outcome(e)),
    };
    if !decided(status) || status == RecordState::Pended || pends_a_line {
        // Marked before the last read: a decision committed after it is notified, one before
        // it is in this answer.
        state
            .tracker
            .store
            .fhir_mark_pended(&id, tenant, tracker.clock.now_ms())
            .await
            .map_err(store_outcome)?;
    }
    let b = response_for(&state.tracker.store, &id, tenant)
        .await
        .map_err(tracking_outcome)?;
    let status = current(state, &id).await?;
    tracing::info!(
        id = %id,
        status = status.as_str(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "fhir submit answered"
    );
    Ok(fhir_json(StatusCode::OK, &b))
}

async fn current(state: &AppState, id: &str) -> Result<RecordState, Response> {
    let row = state.tracker.record(id).await.map_err(tracking_outcome)?;
    RecordState::parse(&row.status)
        .map_err(|e| one(StatusCode::INTERNAL_SERVER_ERROR, "exception", "", e))
}

/// The records a tenant may see, with their request bodies (newest first).
async fn tenant_records(
    store: &Store,
    tenant: &str,
) -> Result<Vec<(String, Option<Bundle>)>, TrackingError> {
    let mut out: Vec<(String, Option<Bundle>)> = store
        .fhir_bundles_of(tenant, 5_000)
        .await?
        .into_iter()
        .map(|r| {
            let b = serde_json::from_str(&r.bundle).ok();
            (r.request_id, b)
        })
        .collect();
    // Records of the tenant created through the REST API have no stored bundle.
    let filter = crate::store::RequestFilter {
        tenant: Some(tenant.to_owned()),
        ..Default::default()
    };
    for row in store.list_requests(&filter).await? {
        if !out.iter().any(|(id, _)| id == &row.id) {
            out.push((row.id, None));
        }
    }
    Ok(out)
}

/// `POST /fhir/Claim/$inquire`: the matching records of the tenant as inquiry response
/// Bundles in Parameters; a record not final is also asked about at its payer (fhir-pas
/// payers, through the outbox) and answered as known now.
pub async fn inquire(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    body: Bytes,
) -> Response {
    match inquire_inner(&state, &principal, &body).await {
        Ok(r) | Err(r) => r,
    }
}

async fn inquire_inner(
    state: &AppState,
    principal: &Principal,
    body: &[u8],
) -> Result<Response, Response> {
    let v = read_body(body)?;
    if !matches!(kind_of(&v), PasKind::InquiryBundle | PasKind::RequestBundle) {
        return Err(one(
            StatusCode::BAD_REQUEST,
            "structure",
            "Bundle.entry[0].resource",
            "a PAS inquiry Bundle is expected: a Bundle whose first entry is a Claim",
        ));
    }
    let bundle = checked_bundle(&v)?;
    let (inq, issues) = crate::fhir::inquiry::inquiry_from_bundle(&bundle);
    let Some(inq) = inq.filter(|_| !issues.iter().any(FhirIssue::is_error)) else {
        return Err(outcome(StatusCode::UNPROCESSABLE_ENTITY, &issues));
    };
    let store = &state.tracker.store;
    let mut found: Vec<(AuthorizationResponse, Option<Bundle>)> = vec![];
    let mut open = false;
    for (id, request_bundle) in tenant_records(store, &principal.tenant)
        .await
        .map_err(tracking_outcome)?
    {
        let Ok(req) = state.tracker.body(&id).await else {
            continue;
        };
        let (resp, row) = known_response(store, &id).await.map_err(tracking_outcome)?;
        let has_decision = !store
            .decisions(&id)
            .await
            .map_err(store_outcome)?
            .is_empty();
        if !inq.matches(&req, has_decision.then_some(&resp)) {
            continue;
        }
        if RecordState::parse(&row.status).is_ok_and(|s| s.awaiting_payer()) {
            open = true;
        }
        found.push((resp, request_bundle));
    }
    if open {
        match state.tracker.enqueue_inquiries(&state.directory).await {
            Ok(q) if !q.is_empty() => state.outbox_wake.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "fhir inquire: cannot queue payer inquiries"),
        }
    }
    tracing::info!(matched = found.len(), open, "fhir inquire answered");
    let refs: Vec<(AuthorizationResponse, Option<&Bundle>)> =
        found.iter().map(|(r, b)| (r.clone(), b.as_ref())).collect();
    Ok(fhir_json(
        StatusCode::OK,
        &crate::fhir::inquiry::inquiry_parameters(&refs),
    ))
}

/// `GET /fhir/ClaimResponse/{id}`: the ClaimResponse of a record (its id is the record id).
pub async fn claim_response(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Response {
    match response_for(&state.tracker.store, &id, &principal.tenant).await {
        Ok(b) => match claim_response_of(&b, &id) {
            Some(cr) => fhir_json(StatusCode::OK, &cr),
            None => one(
                StatusCode::NOT_FOUND,
                "not-found",
                "",
                format!("no ClaimResponse/{id}"),
            ),
        },
        Err(TrackingError::NotFound(_)) => one(
            StatusCode::NOT_FOUND,
            "not-found",
            "",
            format!("no ClaimResponse/{id}"),
        ),
        Err(e) => tracking_outcome(e),
    }
}

fn claim_response_of(b: &Bundle, id: &str) -> Option<Value> {
    let first = b.entry.first()?.resource.as_ref()?;
    let mut v = serde_json::to_value(first).ok()?;
    if v["resourceType"] != "ClaimResponse" {
        return None;
    }
    v["id"] = json!(id);
    Some(v)
}

#[derive(Deserialize)]
pub struct SearchQuery {
    identifier: Option<String>,
    patient: Option<String>,
    #[serde(rename = "_count")]
    count: Option<usize>,
}

fn token_matches(want: &str, system: Option<&str>, value: Option<&str>) -> bool {
    let (ws, wv) = match want.split_once('|') {
        Some((s, v)) => (Some(s), v),
        None => (None, want),
    };
    value == Some(wv) && ws.is_none_or(|s| s.is_empty() || Some(s) == system)
}

/// `GET /fhir/ClaimResponse?identifier=&patient=`: a searchset of the tenant's records whose
/// Claim / Bundle identifier, preAuthRef or record id is `identifier`, and whose patient
/// (reference, or member id / patient identifier) is `patient`.
pub async fn search(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Query(q): Query<SearchQuery>,
) -> Response {
    if q.identifier.is_none() && q.patient.is_none() {
        return one(
            StatusCode::BAD_REQUEST,
            "required",
            "",
            "search ClaimResponse by identifier and/or patient",
        );
    }
    let store = &state.tracker.store;
    let records = match tenant_records(store, &principal.tenant).await {
        Ok(r) => r,
        Err(e) => return tracking_outcome(e),
    };
    let limit = q.count.unwrap_or(50).min(200);
    let mut entries = vec![];
    for (id, _) in records {
        if entries.len() >= limit {
            break;
        }
        let b = match response_for(store, &id, &principal.tenant).await {
            Ok(b) => b,
            Err(TrackingError::NotFound(_)) => continue,
            Err(e) => return tracking_outcome(e),
        };
        let Some(cr) = claim_response_of(&b, &id) else {
            continue;
        };
        if let Some(want) = q.identifier.as_deref() {
            let mut ok = want == id
                || cr["preAuthRef"].as_str() == Some(want)
                || token_matches(
                    want,
                    b.identifier.as_ref().and_then(|i| i.system.as_deref()),
                    b.identifier.as_ref().and_then(|i| i.value.as_deref()),
                );
            for i in cr["identifier"].as_array().into_iter().flatten() {
                ok |= token_matches(want, i["system"].as_str(), i["value"].as_str());
            }
            if !ok {
                continue;
            }
        }
        if let Some(want) = q.patient.as_deref() {
            let reference = cr["patient"]["reference"].as_str().unwrap_or("");
            let mut ok = reference == want || reference.ends_with(&format!("/{want}"));
            if !ok && let Ok(req) = state.tracker.body(&id).await {
                ok = req.member_id().is_some_and(|m| m.as_str() == want);
            }
            if !ok {
                continue;
            }
        }
        entries.push(json!({
            "fullUrl": format!("ClaimResponse/{id}"),
            "resource": cr,
            "search": {"mode": "match"},
        }));
    }
    tracing::info!(matched = entries.len(), "fhir claimresponse search");
    fhir_json(
        StatusCode::OK,
        &json!({
            "resourceType": "Bundle",
            "type": "searchset",
            "total": entries.len(),
            "entry": entries,
        }),
    )
}

/// `GET /fhir/metadata`: what this endpoint supports.
pub async fn metadata() -> Response {
    fhir_json(StatusCode::OK, &capability_statement())
}

pub fn capability_statement() -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "kind": "instance",
        "software": {"name": "priorauth-gateway", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Da Vinci PAS intermediary: PAS in, X12 278 or PAS out"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "instantiates": ["http://hl7.org/fhir/us/davinci-pas/CapabilityStatement/IntermediaryCapabilities"],
        "implementationGuide": [
            "http://hl7.org/fhir/us/davinci-pas/ImplementationGuide/hl7.fhir.us.davinci-pas",
            "http://hl7.org/fhir/uv/subscriptions-backport/ImplementationGuide/hl7.fhir.uv.subscriptions-backport"
        ],
        "rest": [{
            "mode": "server",
            "security": {
                "cors": false,
                "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}]}],
                "description": "Authorization: Bearer (API key, or an OAuth2 access token from SMART Backend Services client credentials)"
            },
            "resource": [
                {
                    "type": "Claim",
                    "profile": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claim",
                    "operation": [
                        {"name": "submit", "definition": "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-submit"},
                        {"name": "inquire", "definition": "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-inquiry"}
                    ]
                },
                {
                    "type": "ClaimResponse",
                    "profile": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-claimresponse",
                    "interaction": [{"code": "read"}, {"code": "search-type"}],
                    "searchParam": [
                        {"name": "identifier", "type": "token"},
                        {"name": "patient", "type": "reference"}
                    ]
                },
                {
                    "type": "Subscription",
                    "profile": sub::PROFILE,
                    "interaction": [{"code": "create"}, {"code": "read"}, {"code": "update"}, {"code": "delete"}, {"code": "search-type"}],
                    "extension": [{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical", "valueCanonical": sub::TOPIC}]
                }
            ]
        }]
    })
}

// ---- Subscriptions -----------------------------------------------------------------------

fn subscription_answer(status: StatusCode, s: &SubscriptionRow) -> Response {
    let v = subscription_resource(&s.resource, &s.id, &s.status, s.last_error.as_deref());
    let mut r = fhir_json(status, &v);
    if let Ok(loc) = format!("Subscription/{}", s.id).parse() {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    r
}

/// Sends the handshake; `active` on a 2xx answer, else `error` with why.
async fn do_handshake(s: &mut SubscriptionRow) {
    let result = post_notification(http(), &s.endpoint, &handshake(s)).await;
    match result {
        Ok(()) => {
            s.status = "active".into();
            s.last_error = None;
        }
        Err(e) => {
            s.status = "error".into();
            s.last_error = Some(format!("handshake failed: {e}"));
        }
    }
    tracing::info!(subscription = %s.id, status = %s.status, "fhir subscription handshake");
}

/// POSTs a notification Bundle; Ok on a 2xx answer.
pub async fn post_notification(
    http: &reqwest::Client,
    endpoint: &str,
    bundle: &Value,
) -> Result<(), String> {
    let body = serde_json::to_vec(bundle).map_err(|e| e.to_string())?;
    let resp = http
        .post(endpoint)
        .header(header::CONTENT_TYPE, FHIR_JSON)
        .timeout(Duration::from_secs(10))
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot reach the endpoint: {e}"))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "the endpoint answered HTTP {}",
            resp.status().as_u16()
        ))
    }
}

fn read_subscription_body(body: &[u8]) -> Result<(Value, sub::SubscriptionRequest), Response> {
    let v = parse_json(body).map_err(|i| outcome(StatusCode::BAD_REQUEST, &[i]))?;
    let (s, issues) = read_subscription(&v);
    match s {
        Some(s) => Ok((v, s)),
        None => Err(outcome(StatusCode::UNPROCESSABLE_ENTITY, &issues)),
    }
}

/// `POST /fhir/Subscription`: stored in the caller's tenant as `requested`, then the handshake
/// decides `active` or `error`.
pub async fn subscription_create(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    body: Bytes,
) -> Response {
    let (v, req) = match read_subscription_body(&body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let now = state.tracker.clock.now_ms();
    let mut s = SubscriptionRow {
        id: uuid::Uuid::new_v4().to_string(),
        tenant: principal.tenant.clone(),
        status: "requested".into(),
        endpoint: req.endpoint,
        filter: req.org,
        resource: v.to_string(),
        event_count: 0,
        last_error: None,
        created_at: now,
        updated_at: now,
    };
    let store = &state.tracker.store;
    if let Err(e) = store.fhir_insert_subscription(&s).await {
        return store_outcome(e);
    }
    do_handshake(&mut s).await;
    if let Err(e) = store
        .fhir_set_subscription_status(&s.id, &s.status, s.last_error.as_deref(), now)
        .await
    {
        return store_outcome(e);
    }
    subscription_answer(StatusCode::CREATED, &s)
}

async fn subscription_of(
    state: &AppState,
    id: &str,
    tenant: &str,
) -> Result<SubscriptionRow, Response> {
    match state.tracker.store.fhir_subscription(id, tenant).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(one(
            StatusCode::NOT_FOUND,
            "not-found",
            "",
            format!("no Subscription/{id}"),
        )),
        Err(e) => Err(store_outcome(e)),
    }
}

/// `GET /fhir/Subscription/{id}`.
pub async fn subscription_read(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Response {
    match subscription_of(&state, &id, &principal.tenant).await {
        Ok(s) => subscription_answer(StatusCode::OK, &s),
        Err(r) => r,
    }
}

/// `GET /fhir/Subscription`: the tenant's subscriptions.
pub async fn subscription_search(
    State(state): State<Arc<AppState>>,
    principal: Principal,
) -> Response {
    let rows = match state
        .tracker
        .store
        .fhir_subscriptions_of(&principal.tenant)
        .await
    {
        Ok(r) => r,
        Err(e) => return store_outcome(e),
    };
    let entries: Vec<Value> = rows
        .iter()
        .map(|s| {
            json!({
                "fullUrl": format!("Subscription/{}", s.id),
                "resource": subscription_resource(&s.resource, &s.id, &s.status, s.last_error.as_deref()),
                "search": {"mode": "match"},
            })
        })
        .collect();
    fhir_json(
        StatusCode::OK,
        &json!({"resourceType": "Bundle", "type": "searchset", "total": entries.len(), "entry": entries}),
    )
}

/// `PUT /fhir/Subscription/{id}`: a new endpoint or filter (handshake again), or status `off`.
pub async fn subscription_update(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let mut s = match subscription_of(&state, &id, &principal.tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (v, req) = match read_subscription_body(&body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Some(given) = v.get("id").and_then(Value::as_str)
        && given != id
    {
        return one(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Subscription.id",
            format!("the body's id {given:?} is not the id in the URL"),
        );
    }
    s.endpoint = req.endpoint;
    s.filter = req.org;
    s.resource = v.to_string();
    s.updated_at = state.tracker.clock.now_ms();
    if v.get("status").and_then(Value::as_str) == Some("off") {
        s.status = "off".into();
        s.last_error = None;
    } else {
        do_handshake(&mut s).await;
    }
    if let Err(e) = state.tracker.store.fhir_update_subscription(&s).await {
        return store_outcome(e);
    }
    subscription_answer(StatusCode::OK, &s)
}

/// `DELETE /fhir/Subscription/{id}`: removed; notifications still queued for it are not sent.
pub async fn subscription_delete(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Response {
    match state
        .tracker
        .store
        .fhir_delete_subscription(&id, &principal.tenant)
        .await
    {
        Ok(true) => {
            tracing::info!(subscription = %id, "fhir subscription deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => one(
            StatusCode::NOT_FOUND,
            "not-found",
            "",
            format!("no Subscription/{id}"),
        ),
        Err(e) => store_outcome(e),
    }
}

/// `GET /fhir/Subscription/{id}/$status`: the SubscriptionStatus.
pub async fn subscription_status(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Response {
    let s = match subscription_of(&state, &id, &principal.tenant).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    fhir_json(
        StatusCode::OK,
        &json!({"resourceType": "Bundle", "type": "searchset", "entry": [{
            "resource": {"resourceType": "Parameters", "parameter": [
                {"name": "subscription", "valueReference": {"reference": format!("Subscription/{}", s.id)}},
                {"name": "topic", "valueCanonical": sub::TOPIC},
                {"name": "status", "valueCode": s.status},
                {"name": "type", "valueCode": "query-status"},
                {"name": "events-since-subscription-start", "valueString": s.event_count.to_string()},
            ]}
        }]}),
    )
}

// ---- notifications (through the durable queue of `crate::notify`) -------------------------

/// Statuses whose arrival is notified.
const NOTIFIED: &[&str] = &[
    "pended",
    "approved",
    "partially_approved",
    "modified",
    "denied",
    "rejected",
    "cancelled",
];

/// The `fhir-subscription` target kind of the notification queue: for a status change of a
/// record answered A4 (after that answer), the tenant's active Subscriptions whose filter names
/// one of the request's organizations; the body is the event-notification Bundle with the
/// record's full PAS Response Bundle as it is when dispatched; the endpoint is read at each
/// attempt (an `off` or deleted Subscription gets nothing more).
pub fn subscription_kind() -> crate::notify::Kind {
    use crate::notify::{Endpoint, FHIR_SUBSCRIPTION, Kind, NotifyError, Target};
    use crate::store::EventRow;
    Kind {
        targets: Arc::new(|store: Store, tenant: String, event: EventRow| {
            Box::pin(async move {
                let (Some(status), Some(id)) = (event.to_status.clone(), event.request_id.clone())
                else {
                    return Ok(vec![]);
                };
                if !NOTIFIED.contains(&status.as_str()) {
                    return Ok(vec![]);
                }
                let Some(after) = store.fhir_pended_after(&id, &tenant).await? else {
                    return Ok(vec![]);
                };
                if event.id <= after {
                    return Ok(vec![]);
                }
                let Some(b) = store.fhir_bundle(&id, &tenant).await? else {
                    return Ok(vec![]);
                };
                Ok(store
                    .fhir_subscriptions_of(&tenant)
                    .await?
                    .into_iter()
                    .filter(|s| s.status == "active" && b.orgs.contains(&format!("|{}|", s.filter)))
                    .map(|s| Target {
                        kind: FHIR_SUBSCRIPTION.into(),
                        id: s.id,
                        tenant: s.tenant,
                    })
                    .collect())
            })
        }),
        build: Arc::new(|store: Store, target: Target, event: EventRow| {
            Box::pin(async move {
                let Some(id) = event.request_id.clone() else {
                    return Ok(None);
                };
                let Some(s) = store.fhir_subscription(&target.id, &target.tenant).await? else {
                    return Ok(None);
                };
                let n = store.fhir_next_event_number(&s.id).await?;
                let b = notification_bundle(&store, &s, &id, n)
                    .await
                    .map_err(|e| NotifyError::Invalid(e.to_string()))?;
                tracing::info!(subscription = %s.id, id = %id, event_number = n, "fhir notification built");
                let body =
                    serde_json::to_vec(&b).map_err(|e| NotifyError::Invalid(e.to_string()))?;
                Ok(Some((FHIR_JSON.to_owned(), body)))
            })
        }),
        resolve: Arc::new(|store: Store, target: Target| {
            Box::pin(async move {
                Ok(store
                    .fhir_subscription(&target.id, &target.tenant)
                    .await?
                    .filter(|s| s.status != "off")
                    .map(|s| Endpoint {
                        url: s.endpoint,
                        secret: None,
                        headers: vec![],
                    }))
            })
        }),
    }
}
