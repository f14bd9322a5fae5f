//! `/v1/webhooks`: a tenant's REST webhooks (signed POSTs on status changes) and their
//! deliveries. Every handler is scoped by the caller's tenant: another tenant's webhook is a
//! 404. The secret is in the creation answer only.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::principal::Principal;
use crate::notify::{self, NotifyError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhookBody {
    url: String,
    /// Record statuses, or `["*"]` (the default: every status change).
    #[serde(default)]
    events: Option<Vec<String>>,
}

impl From<NotifyError> for ApiError {
    fn from(e: NotifyError) -> ApiError {
        match e {
            NotifyError::Invalid(m) => {
                let field = m.split(':').next().unwrap_or("").to_owned();
                let err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m);
                if field.is_empty() || field.contains(' ') {
                    err
                } else {
                    err.field(field)
                }
            }
            NotifyError::NotFound(m) => ApiError::not_found(m),
            NotifyError::Store(e) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                format!("the records store failed: {e}"),
            ),
        }
    }
}

fn store_err(e: crate::store::StoreError) -> ApiError {
    ApiError::from(NotifyError::Store(e))
}

/// `POST /v1/webhooks`: 201 with the id and the secret (shown this once).
pub async fn create(
    State(state): State<Arc<AppState>>,
    who: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the body is empty: send {\"url\": \"https://...\", \"events\": [\"approved\", ...] or [\"*\"]}",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let b: NewWebhookBody = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::bad_request(format!("the body is not valid JSON: {inner}"))
        } else {
            let err = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("{path}: {inner}"),
            );
            if path == "." { err } else { err.field(path) }
        }
    })?;
    let events = b.events.unwrap_or_else(|| vec!["*".into()]);
    let w = notify::create_webhook(
        &state.tracker.store,
        &who.tenant,
        &b.url,
        &events,
        &who.name,
        state.tracker.clock.now_ms(),
    )
    .await?;
    tracing::info!(webhook = %w.id, tenant = %w.tenant, actor = %who.name, "webhook created");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": w.id,
            "url": w.url,
            "events": w.events,
            "active": w.active,
            "created_at": w.created_at,
            "secret": w.secret,
            "signature": "X-Priorauth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" keyed with the secret>",
        })),
    )
        .into_response())
}

/// `GET /v1/webhooks`: the tenant's active webhooks (no secrets).
pub async fn list(
    State(state): State<Arc<AppState>>,
    who: Principal,
) -> Result<Response, ApiError> {
    let hooks = state
        .tracker
        .store
        .webhooks(&who.tenant, false)
        .await
        .map_err(store_err)?;
    Ok(Json(json!({ "webhooks": hooks })).into_response())
}

/// `DELETE /v1/webhooks/{id}`: deactivates it; its queued deliveries end (`dead`).
pub async fn delete(
    State(state): State<Arc<AppState>>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let gone = state
        .tracker
        .store
        .webhook_delete(&who.tenant, &id, state.tracker.clock.now_ms())
        .await
        .map_err(store_err)?;
    if !gone {
        return Err(ApiError::not_found(format!("no webhook {id}")));
    }
    tracing::info!(webhook = %id, tenant = %who.tenant, actor = %who.name, "webhook deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/webhooks/{id}/deliveries`: state, attempts and last error of each delivery.
pub async fn deliveries(
    State(state): State<Arc<AppState>>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let store = &state.tracker.store;
    let hook = store.webhook(&id).await.map_err(store_err)?;
    match hook {
        Some(w) if w.tenant == who.tenant => {}
        _ => return Err(ApiError::not_found(format!("no webhook {id}"))),
    }
    let list = store
        .deliveries_for(notify::WEBHOOK, &id)
        .await
        .map_err(store_err)?;
    Ok(Json(json!({ "webhook": id, "deliveries": list })).into_response())
}

/// `POST /v1/webhooks/{id}/deliveries/{delivery}/retry`: a dead delivery of an active webhook
/// is queued again with a fresh attempt budget.
pub async fn retry(
    State(state): State<Arc<AppState>>,
    who: Principal,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let store = &state.tracker.store;
    match store.webhook(&id).await.map_err(store_err)? {
        Some(w) if w.tenant == who.tenant && w.active => {}
        Some(w) if w.tenant == who.tenant => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "inactive",
                format!("webhook {id} is deleted: nothing is sent to it"),
            ));
        }
        _ => return Err(ApiError::not_found(format!("no webhook {id}"))),
    }
    let Some(d) = store.delivery(&delivery).await.map_err(store_err)? else {
        return Err(ApiError::not_found(format!("no delivery {delivery}")));
    };
    if d.target_kind != notify::WEBHOOK || d.target_id != id {
        return Err(ApiError::not_found(format!("no delivery {delivery}")));
    }
    let queued = store
        .delivery_retry(
            notify::WEBHOOK,
            &id,
            &delivery,
            state.tracker.clock.now_ms(),
        )
        .await
        .map_err(store_err)?;
    if !queued {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_dead",
            format!(
                "delivery {delivery} is {}: only a dead delivery is retried",
                d.state
            ),
        ));
    }
    tracing::info!(webhook = %id, delivery = %delivery, actor = %who.name, "delivery queued again");
    Ok(Json(json!({ "id": delivery, "state": "queued" })).into_response())
}
