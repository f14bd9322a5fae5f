//! The REST handlers under `/v1`: records, the approval chain, submission, delivered services,
//! alerts, inbound answers. Each handler parses, calls `tracking`, and shapes the answer; the
//! rules live in `tracking`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::principal::Principal;
use crate::domain::AuthorizationRequest;
use crate::tracking::lifecycle::State as RecordState;
use crate::tracking::{Scoped, facts};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const ACTOR: &str = "x-actor";

/// The actor a request acts as: the `X-Actor` header, else the server's default actor.
pub(crate) fn actor_of(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    match headers.get(ACTOR) {
        None => Ok(state.config.default_actor.clone()),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| ApiError::bad_request("X-Actor is not text").field("X-Actor"))?
                .trim();
            if s.is_empty() || s.len() > 128 {
                return Err(
                    ApiError::bad_request("X-Actor must be 1 to 128 characters").field("X-Actor")
                );
            }
            Ok(s.to_owned())
        }
    }
}

/// Parses the internal request JSON, naming the field that is wrong.
pub fn parse_request(body: &[u8]) -> Result<AuthorizationRequest, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the body is empty: send the authorization request JSON (schemas/authorization-request.schema.json)",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let err = if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("the body is not valid JSON: {inner}"))
        } else {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("{path}: {inner}"),
            )
        };
        if path == "." { err } else { err.field(path) }
    })
}

#[derive(Serialize)]
pub struct Created {
    pub id: String,
    pub status: String,
    /// False when an earlier call with the same Idempotency-Key created the record.
    pub created: bool,
}

/// `POST /v1/authorizations`: validate, store durably (group commit), answer 201.
pub async fn create(
    State(state): State<Arc<AppState>>,
    p: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let actor = &p.name;
    let scope = state.tracker.scope(&p.tenant);
    let request = parse_request(&body)?;
    let payer = facts(&request).payer;
    state.directory.route(&payer).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_payer_route",
            e.to_string(),
        )
        .field("umo.identifier")
    })?;
    let key = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.len() <= 255)
                .ok_or_else(|| {
                    ApiError::bad_request("Idempotency-Key must be 1 to 255 characters of text")
                        .field("Idempotency-Key")
                })?
                .to_owned(),
        ),
    };
    let (id, created) = match &key {
        Some(k) => scope.create_once(&request, actor, k).await?,
        None => (scope.create(&request, actor).await?, true),
    };
    if !created {
        // A retry with the same key must carry the same request.
        let first = scope.body(&id).await?;
        if first != request {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )
            .field("Idempotency-Key"));
        }
        let row = scope.record(&id).await?;
        return Ok((
            StatusCode::OK,
            [(
                axum::http::header::LOCATION,
                format!("/v1/authorizations/{id}"),
            )],
            Json(Created {
                id,
                status: row.status,
                created: false,
            }),
        )
            .into_response());
    }
    Ok((
        StatusCode::CREATED,
        [(
            axum::http::header::LOCATION,
            format!("/v1/authorizations/{id}"),
        )],
        Json(Created {
            id,
            status: RecordState::Draft.as_str().to_owned(),
            created: true,
        }),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
}

/// `GET /v1/authorizations?status=`.
pub async fn list(
    State(state): State<Arc<AppState>>,
    p: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => {
            Some(RecordState::parse(s).map_err(|e| ApiError::bad_request(e).field("status"))?)
        }
    };
    let rows = state.tracker.scope(&p.tenant).list(status).await?;
    Ok(Json(json!({ "records": rows })))
}

/// `GET /v1/authorizations/{id}`: the record, its status, decisions, remaining units, services
/// and history.
pub async fn show(
    State(state): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let view = state.tracker.scope(&p.tenant).show(&id).await?;
    let alerts: Vec<_> = state
        .tracker
        .store
        .open_alerts()
        .await
        .map_err(crate::tracking::TrackingError::from)?
        .into_iter()
        .filter(|a| a.request_id.as_deref() == Some(id.as_str()))
        .collect();
    let mut v = serde_json::to_value(&view)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        let mut head = serde_json::Map::new();
        head.insert("id".into(), json!(view.record.id));
        head.insert("status".into(), json!(view.record.status));
        head.insert("alerts".into(), json!(alerts));
        head.extend(std::mem::take(o));
        *o = head;
    }
    Ok(Json(v))
}

/// `GET /v1/authorizations/{id}/request`: the current version of the request.
pub async fn request_body(
    State(state): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<AuthorizationRequest>, ApiError> {
    Ok(Json(state.tracker.scope(&p.tenant).body(&id).await?))
}

/// `PUT /v1/authorizations/{id}`: a modified request becomes the record's next version.
pub async fn modify(
    State(state): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let scope = state.tracker.scope(&p.tenant);
    // Another tenant's record is missing before the body is even read.
    scope.record(&id).await?;
    let request = parse_request(&body)?;
    let version = scope.modify(&id, &request, &p.name).await?;
    let row = scope.record(&id).await?;
    Ok(Json(
        json!({ "id": id, "status": row.status, "version": version }),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    #[serde(default)]
    reason: Option<String>,
}

fn reason_of(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let r: Reason = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("expected {{\"reason\": \"...\"}}: {e}")).field("reason")
    })?;
    Ok(r.reason.filter(|s| !s.trim().is_empty()))
}

fn moved(id: &str, to: RecordState) -> Json<serde_json::Value> {
    Json(json!({ "id": id, "status": to.as_str() }))
}

/// `POST /v1/authorizations/{id}/review`: into the approval chain (or ready when no step applies).
pub async fn review(
    State(state): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let to = state
        .tracker
        .scope(&p.tenant)
        .send_to_review(&id, &p.name)
        .await?;
    Ok(moved(&id, to))
}

/// `POST /v1/authorizations/{id}/approve`: the reviewer of the current step approves.
pub async fn approve(
    State(state): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let scope = state.tracker.scope(&p.tenant);
    scope.record(&id).await?;
    let to = scope.approve(&id, &p.name, reason_of(&body)?).await?;
    Ok(moved(&id, to))
}

/// `POST /v1/authorizations/{id}/deny`: the reviewer sends it back (a reason is required).
pub async fn deny(
    State(state): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let scope = state.tracker.scope(&p.tenant);
    scope.record(&id).await?;
    let reason = reason_of(&body)?
        .ok_or_else(|| ApiError::bad_request("a denial needs a reason").field("reason"))?;
    let to = scope.deny(&id, &p.name, &reason).await?;
    Ok(moved(&id, to))
}

/// `POST /v1/authorizations/{id}/cancel`.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let scope = state.tracker.scope(&p.tenant);
    scope.record(&id).await?;
    let reason = reason_of(&body)?
        .ok_or_else(|| ApiError::bad_request("a cancellation needs a reason").field("reason"))?;
    scope.cancel(&id, &p.name, &reason).await?;
    Ok(moved(&id, RecordState::Cancelled))
}

/// `POST /v1/authorizations/{id}/submit`: queue the request for its payer (202). With the
/// approval chain off, a draft goes straight through review to ready first. Submitting a
/// record that is already with the payer is answered with its state, never sent twice.
pub async fn submit(
    State(state): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let actor = &p.name;
    let tracker: Scoped = state.tracker.scope(&p.tenant);
    let row = tracker.record(&id).await?;
    let status = RecordState::parse(&row.status)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e))?;
    if status.awaiting_payer() || status.is_final_decision() {
        return Ok((
            StatusCode::OK,
            Json(json!({ "id": id, "status": row.status, "already_submitted": true })),
        )
            .into_response());
    }
    if status == RecordState::Draft && !state.config.approval_chain {
        tracker.send_to_review(&id, actor).await?;
    }
    let payer = state.directory.route(&row.payer).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_payer_route",
            e.to_string(),
        )
    })?;
    let outbox_id = tracker.submit_to(&id, actor, payer).await?;
    state.outbox_wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "id": id,
            "status": RecordState::Submitted.as_str(),
            "payer": row.payer,
            "format": payer.format.as_str(),
            "outbox_id": outbox_id,
        })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceBody {
    /// The procedure code delivered.
    code: String,
    /// Units delivered (decimal text or number).
    units: serde_json::Value,
    /// Date of service, YYYY-MM-DD.
    date: String,
    #[serde(default)]
    provider: Option<String>,
    /// An earlier service id this one corrects (voided and replaced in one step).
    #[serde(default)]
    corrects: Option<i64>,
}

/// `POST /v1/authorizations/{id}/services`: a delivered service counted against the
/// authorization (refused with 409 and the reason when it falls outside, under that policy).
pub async fn record_service(
    State(state): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let scope = state.tracker.scope(&p.tenant);
    scope.record(&id).await?;
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let s: ServiceBody = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(format!("{path}: {}", e.into_inner())).field(path)
    })?;
    let units = match &s.units {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(t) => t.clone(),
        _ => {
            return Err(ApiError::bad_request("units must be a number").field("units"));
        }
    };
    let delivered = crate::tracking::ledger::Delivered {
        code: s.code,
        units,
        date: s.date,
        provider: s.provider,
    };
    let recorded = scope
        .record_service(&id, &delivered, &p.name, s.corrects)
        .await?;
    Ok((StatusCode::CREATED, Json(recorded)).into_response())
}

/// `GET /v1/alerts`: evaluates the alert rules now and lists what needs attention.
pub async fn alerts(
    State(state): State<Arc<AppState>>,
    p: Principal,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut a = state.tracker.attention().await?;
    let scope = state.tracker.scope(&p.tenant);
    let unowned = matches!(p.role.as_deref(), None | Some("admin") | Some("billing"));
    a.alerts = scope
        .filter_alerts(std::mem::take(&mut a.alerts), unowned)
        .await?;
    let mut expired = Vec::new();
    for id in std::mem::take(&mut a.expired) {
        if scope.owns(&id).await? {
            expired.push(id);
        }
    }
    a.expired = expired;
    Ok(Json(serde_json::to_value(&a).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    })?))
}

/// `POST /v1/inbound`: answers pushed by a payer or clearinghouse (X12 278 / 999 / TA1, or PAS
/// JSON). Stored before they are read; a second delivery of the same bytes changes nothing.
pub async fn inbound(
    State(state): State<Arc<AppState>>,
    p: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    // The payer knows no tenants: an answer is applied to whatever record it matches, so only
    // the roles that speak for the payer side may post one.
    super::access::require(&p, &["admin", "billing"], "post payer answers")?;
    if body.is_empty() {
        return Err(ApiError::bad_request("the body is empty"));
    }
    let source = headers
        .get("x-source")
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .map(|s| format!("inbound:{s}"))
        .unwrap_or_else(|| "inbound".to_owned());
    let report = state.tracker.ingest(&body, &source, &mut |_, _| {}).await?;
    let items: Vec<_> = report
        .items
        .iter()
        .map(|i| {
            json!({
                "position": i.position, "kind": i.kind, "outcome": i.outcome,
                "request_id": i.request_id, "status": i.status, "detail": i.detail,
            })
        })
        .collect();
    Ok(Json(json!({
        "message_id": report.message_id,
        "already_ingested": report.already_ingested,
        "total": report.total,
        "counts": report.counts,
        "items": items,
    })))
}

#[derive(Deserialize)]
pub struct OutboxQuery {
    state: Option<String>,
}

use crate::store::OUTBOX_STATES;

/// `GET /v1/outbox?state=dead`: messages to payers with their state, attempts and last error.
pub async fn outbox_list(
    State(state): State<Arc<AppState>>,
    p: Principal,
    Query(q): Query<OutboxQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let filter = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) if OUTBOX_STATES.contains(&s) => Some(s),
        Some(s) => {
            return Err(ApiError::bad_request(format!(
                "unknown outbox state {s:?} (one of {})",
                OUTBOX_STATES.join(", ")
            ))
            .field("state"));
        }
    };
    let rows = state
        .tracker
        .store
        .outbox_list(filter)
        .await
        .map_err(crate::tracking::TrackingError::from)?;
    let rows = state.tracker.scope(&p.tenant).filter_outbox(rows).await?;
    Ok(Json(json!({ "messages": rows })))
}

/// `POST /v1/outbox/{id}/retry`: a person sends a dead-lettered message again.
pub async fn outbox_retry(
    State(state): State<Arc<AppState>>,
    p: Principal,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state
        .tracker
        .scope(&p.tenant)
        .outbox_retry(id, &p.name)
        .await?;
    state.outbox_wake.notify_one();
    Ok(Json(json!({ "id": id, "state": "queued" })))
}
