//! Access control on the router: `guard` authenticates every `/v1/*` and `/fhir/*` request
//! (an API key or an access token as `Authorization: Bearer`), puts the `Principal` into the
//! request extensions, and writes one audit line per request (who, tenant, action, resource,
//! outcome, status, peer address, request id; never a body). `POST /oauth/token` issues access
//! tokens; `/v1/audit` and `/v1/keys` are for admin principals.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::principal::Principal;
use crate::auth;
use crate::store::NewAudit;
use crate::tracking::TrackingError;

/// Paths anyone may call.
fn is_open(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/openapi.json" | "/fhir/metadata" | "/oauth/token"
    )
}

/// Paths that need a principal.
fn is_guarded(path: &str) -> bool {
    !is_open(path)
        && (path == "/v1"
            || path.starts_with("/v1/")
            || path == "/fhir"
            || path.starts_with("/fhir/"))
}

/// The audit action of a route (`records.read`, `fhir.submit`, ...).
pub fn action_of(method: &str, template: &str) -> String {
    let m = method;
    let a = match (m, template) {
        ("POST", "/v1/authorizations") => "records.create",
        ("GET", "/v1/authorizations") => "records.list",
        ("GET", "/v1/authorizations/{id}") => "records.read",
        ("PUT", "/v1/authorizations/{id}") => "records.modify",
        ("GET", "/v1/authorizations/{id}/request") => "records.read_request",
        ("POST", "/v1/authorizations/{id}/review") => "records.review",
        ("POST", "/v1/authorizations/{id}/approve") => "records.approve",
        ("POST", "/v1/authorizations/{id}/deny") => "records.deny",
        ("POST", "/v1/authorizations/{id}/cancel") => "records.cancel",
        ("POST", "/v1/authorizations/{id}/submit") => "records.submit",
        ("POST", "/v1/authorizations/{id}/services") => "records.services",
        ("GET", "/v1/alerts") => "alerts.read",
        ("POST", "/v1/inbound") => "inbound.receive",
        ("GET", "/v1/outbox") => "outbox.list",
        ("POST", "/v1/outbox/{id}/retry") => "outbox.retry",
        ("GET", "/v1/audit") => "audit.read",
        ("POST", "/v1/keys") => "keys.create",
        ("GET", "/v1/keys") => "keys.list",
        ("POST", "/v1/keys/{prefix}/revoke") => "keys.revoke",
        ("POST", "/oauth/token") => "oauth.token",
        _ => "",
    };
    if !a.is_empty() {
        return a.to_owned();
    }
    if let Some(rest) = template.strip_prefix("/fhir/") {
        // /fhir/Claim/$submit -> fhir.submit; /fhir/Subscription/{id} -> fhir.subscription.read
        let last = rest.rsplit('/').next().unwrap_or(rest);
        if let Some(op) = last.strip_prefix('$') {
            return format!("fhir.{op}");
        }
        let ty = rest.split('/').next().unwrap_or(rest).to_ascii_lowercase();
        let verb = match m {
            "GET" => "read",
            "POST" => "create",
            "PUT" => "update",
            "DELETE" => "delete",
            _ => "call",
        };
        return format!("fhir.{ty}.{verb}");
    }
    format!("{} {}", m.to_ascii_lowercase(), template)
}

/// The resource a request is about: its type and the `{id}` in the path.
fn resource_of(template: &str, path: &str) -> (Option<String>, Option<String>) {
    let ty = if template.starts_with("/v1/authorizations") {
        Some("authorization".to_owned())
    } else if template.starts_with("/v1/outbox/") {
        Some("outbox".to_owned())
    } else if let Some(rest) = template.strip_prefix("/fhir/") {
        rest.split('/').next().map(str::to_owned)
    } else {
        None
    };
    let mut id = None;
    for (t, p) in template.split('/').zip(path.split('/')) {
        if t.starts_with('{') && t.ends_with('}') && !p.is_empty() && p.len() <= 128 {
            id = Some(p.to_owned());
        }
    }
    (ty, id)
}

fn outcome_of(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=399 => "allowed",
        401 => "unauthenticated",
        403 => "denied",
        404 => "not_found",
        400..=499 => "invalid",
        _ => "failed",
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// 401 with `WWW-Authenticate: Bearer`: an OperationOutcome under /fhir, else the JSON error.
fn unauthenticated(path: &str, why: &str) -> Response {
    let message = format!(
        "authentication required: send Authorization: Bearer <API key or access token> ({why})"
    );
    let mut resp = if path.starts_with("/fhir") {
        let oo =
            crate::fhir::outcome::operation_outcome(&[crate::fhir::outcome::FhirIssue::error(
                "login", "", &message,
            )]);
        let body = serde_json::to_vec(&oo).unwrap_or_default();
        (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/fhir+json")],
            body,
        )
            .into_response()
    } else {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message).into_response()
    };
    let challenge = if why.contains("invalid") {
        "Bearer error=\"invalid_token\""
    } else {
        "Bearer"
    };
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    resp
}

/// Makes sure the actors table gives the principal its role (the approval chain's checks
/// read it there); written only when it differs.
async fn refresh_actor(state: &AppState, p: &Principal) -> Result<(), TrackingError> {
    let Some(role) = &p.role else { return Ok(()) };
    let current = state.tracker.store.actor_role(&p.name).await?;
    if current.as_deref() != Some(role.as_str()) {
        state.tracker.set_actor(&p.name, role, "auth").await?;
    }
    Ok(())
}

/// API keys checked in the last second, by their hash: a client sending many requests costs
/// one lookup (and one actor refresh) a second, not one each. A revoked key is refused within
/// a second in every process. Access tokens are always looked up.
const KEY_CACHE_MS: u128 = 1_000;

type KeyCache = std::collections::HashMap<String, (Principal, std::time::Instant)>;

fn key_cache() -> &'static std::sync::Mutex<KeyCache> {
    static CACHE: std::sync::OnceLock<std::sync::Mutex<KeyCache>> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn recent_key(bearer: &str) -> Option<Principal> {
    if !bearer.starts_with("pa_") {
        return None;
    }
    let cache = key_cache().lock().ok()?;
    cache
        .get(&auth::hash_secret(bearer))
        .filter(|(_, at)| at.elapsed().as_millis() < KEY_CACHE_MS)
        .map(|(p, _)| p.clone())
}

fn remember_key(bearer: &str, p: &Principal) {
    if !bearer.starts_with("pa_") {
        return;
    }
    if let Ok(mut cache) = key_cache().lock() {
        if cache.len() > 10_000 {
            cache.retain(|_, (_, at)| at.elapsed().as_millis() < KEY_CACHE_MS);
        }
        cache.insert(
            auth::hash_secret(bearer),
            (p.clone(), std::time::Instant::now()),
        );
    }
}

/// The id of the request: a sane `X-Request-Id` sent by the caller, else a new one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The middleware: authenticate, then run the request, then audit it.
pub async fn guard(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let method = req.method().as_str().to_owned();
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| path.clone());
    let remote = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let rid = request_id(req.headers());
    let guarded = is_guarded(&path);
    let audited = guarded || path == "/oauth/token";
    let mut principal: Option<Principal> = None;
    let mut early: Option<Response> = None;
    if guarded && state.config.auth {
        match bearer(req.headers()) {
            None => early = Some(unauthenticated(&path, "no bearer credential")),
            Some(b) => {
                let cached = recent_key(b);
                let found = match cached.clone() {
                    Some(p) => Ok(Some(p)),
                    None => {
                        auth::authenticate(&state.tracker.store, b, state.tracker.clock.now_ms())
                            .await
                    }
                };
                match found {
                    Ok(Some(p)) if cached.is_some() => principal = Some(p),
                    Ok(Some(p)) => match refresh_actor(&state, &p).await {
                        Ok(()) => {
                            remember_key(b, &p);
                            principal = Some(p)
                        }
                        Err(e) => early = Some(ApiError::from(e).into_response()),
                    },
                    Ok(None) => {
                        early = Some(unauthenticated(
                            &path,
                            "invalid, revoked or expired credential",
                        ))
                    }
                    Err(e) => {
                        early = Some(
                            ApiError::new(
                                StatusCode::SERVICE_UNAVAILABLE,
                                "store_unavailable",
                                format!("cannot check the credential: {e}"),
                            )
                            .into_response(),
                        )
                    }
                }
            }
        }
    } else if guarded {
        // Authentication off (tests that build the state themselves): X-Actor in `default`.
        if let Ok(name) = super::api::actor_of(&state, req.headers()) {
            principal = Some(Principal {
                tenant: crate::tracking::DEFAULT_TENANT.to_owned(),
                name,
                role: None,
            });
        }
    }
    if let Some(p) = &principal {
        req.extensions_mut().insert(p.clone());
    }
    let mut response = match early {
        Some(r) => r,
        None => next.run(req).await,
    };
    if let Ok(v) = HeaderValue::from_str(&rid) {
        response.headers_mut().insert("x-request-id", v);
    }
    if audited {
        let (resource_type, mut resource_id) = resource_of(&template, &path);
        if resource_id.is_none() && response.status().is_success() {
            resource_id = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.rsplit('/').next())
                .filter(|s| !s.is_empty() && s.len() <= 128)
                .map(str::to_owned);
        }
        let status = response.status();
        let line = NewAudit {
            at: state.tracker.clock.now_ms(),
            tenant: principal.as_ref().map(|p| p.tenant.clone()),
            principal: principal.as_ref().map(|p| p.name.clone()),
            role: principal.as_ref().and_then(|p| p.role.clone()),
            action: action_of(&method, &template),
            resource_type,
            resource_id,
            outcome: outcome_of(status).to_owned(),
            http_status: Some(i64::from(status.as_u16())),
            remote_addr: remote,
            request_id: Some(rid.clone()),
        };
        if let Err(e) = state
            .tracker
            .store
            .apply(&[crate::store::Write::Audit(line)])
            .await
        {
            // The answer is already decided; the failure is loud (ids only).
            tracing::error!(request_id = %rid, error = %e, "audit line not written");
        }
    }
    response
}

/// Refuses unless the principal has one of `roles` (any principal when authentication is off).
pub fn require(p: &Principal, roles: &[&str], what: &str) -> Result<(), ApiError> {
    match &p.role {
        None => Ok(()),
        Some(r) if roles.contains(&r.as_str()) => Ok(()),
        Some(r) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} ({r}) may not {what}: that needs one of {}",
                p.name,
                roles.join(", ")
            ),
        )),
    }
}

// ---- /oauth/token -------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    grant_type: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    client_assertion_type: Option<String>,
    #[serde(default)]
    client_assertion: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Our token URL, the audience a SMART assertion must name: the configured public URL, else
/// the Host the caller used.
fn token_url(state: &AppState, headers: &HeaderMap) -> String {
    match &state.config.public_url {
        Some(u) => format!("{}/oauth/token", u.trim_end_matches('/')),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}/oauth/token")
        }
    }
}

/// `POST /oauth/token`: client credentials (client id = key prefix, secret = the key, in the
/// form or HTTP Basic) or a SMART Backend Services client assertion.
pub async fn token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    form: Result<axum::Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(f)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "an application/x-www-form-urlencoded body is expected",
        );
    };
    if f.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    let store = &state.tracker.store;
    let now = state.tracker.clock.now_ms();
    let issued = if let Some(assertion) = &f.client_assertion {
        if f.client_assertion_type.as_deref() != Some(auth::JWT_BEARER) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            );
        }
        match auth::token_for_assertion(store, assertion, &token_url(&state, &headers), now).await {
            Ok(i) => i,
            Err(auth::AuthError::Invalid(m)) => {
                return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &m);
            }
            Err(e) => {
                return oauth_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    &e.to_string(),
                );
            }
        }
    } else {
        let (id, secret) = match (
            crate::auth::basic_credentials(&headers),
            &f.client_id,
            &f.client_secret,
        ) {
            (Some(c), _, _) => c,
            (None, Some(i), Some(s)) => (i.clone(), s.clone()),
            _ => {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client credentials are missing (client_id and client_secret, HTTP Basic, or a client_assertion)",
                );
            }
        };
        match auth::token_for_secret(store, &id, &secret, now).await {
            Ok(Some(i)) => i,
            Ok(None) => {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "unknown client id or wrong secret",
                );
            }
            Err(e) => {
                return oauth_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    &e.to_string(),
                );
            }
        }
    };
    tracing::info!(client = %issued.client, tenant = %issued.tenant, "access token issued");
    let mut body = json!({
        "access_token": issued.access_token,
        "token_type": "bearer",
        "expires_in": issued.expires_in,
    });
    if let Some(scope) = f.scope {
        body["scope"] = scope.into();
    }
    let mut r = (StatusCode::OK, Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

// ---- /v1/audit, /v1/keys ------------------------------------------------------------------

#[derive(Deserialize)]
pub struct AuditQuery {
    record: Option<String>,
}

/// `GET /v1/audit?record=ID` (admin): who touched the record, when, from where, with what
/// outcome. About a record of another tenant (or none), only the caller's tenant's own
/// attempts are shown, the same as for a missing record.
pub async fn audit(
    State(state): State<Arc<AppState>>,
    p: Principal,
    Query(q): Query<AuditQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&p, &["admin"], "read the audit log")?;
    let store = &state.tracker.store;
    let rows = match q.record.as_deref().filter(|s| !s.is_empty()) {
        Some(id) => {
            let mine = state.tracker.scope(&p.tenant).owns(id).await?;
            let tenant = if mine { None } else { Some(p.tenant.as_str()) };
            store
                .audit_events(Some(id), tenant, 10_000)
                .await
                .map_err(TrackingError::from)?
        }
        None => store
            .audit_events(None, Some(&p.tenant), 10_000)
            .await
            .map_err(TrackingError::from)?,
    };
    Ok(Json(json!({ "events": rows })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    role: String,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /v1/keys` (admin): a new API key in the admin's tenant, shown once.
pub async fn create_key(
    State(state): State<Arc<AppState>>,
    p: Principal,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    require(&p, &["admin"], "create keys")?;
    let de = &mut serde_json::Deserializer::from_slice(&body);
    let k: KeyBody = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(format!(
            "expected {{\"role\": ROLE, \"name\": LABEL}}: {}",
            e.into_inner()
        ))
        .field(path)
    })?;
    let made = auth::create_key(
        &state.tracker.store,
        &p.tenant,
        &k.role,
        k.name.as_deref(),
        None,
        state.tracker.clock.now_ms(),
    )
    .await
    .map_err(|e| match e {
        auth::AuthError::Invalid(m) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m).field("role")
        }
        auth::AuthError::Store(s) => ApiError::from(TrackingError::from(s)),
    })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "key": made.key,
            "prefix": made.row.key_prefix,
            "tenant": made.row.tenant,
            "role": made.row.role,
            "name": made.row.name,
        })),
    )
        .into_response())
}

/// `GET /v1/keys` (admin): the tenant's keys (prefix, role, name, created, revoked).
pub async fn list_keys(
    State(state): State<Arc<AppState>>,
    p: Principal,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&p, &["admin"], "list keys")?;
    let keys: Vec<_> = state
        .tracker
        .store
        .api_keys()
        .await
        .map_err(TrackingError::from)?
        .into_iter()
        .filter(|k| k.tenant == p.tenant)
        .collect();
    Ok(Json(json!({ "keys": keys })))
}

/// `POST /v1/keys/{prefix}/revoke` (admin): revokes one of the tenant's keys.
pub async fn revoke_key(
    State(state): State<Arc<AppState>>,
    p: Principal,
    axum::extract::Path(prefix): axum::extract::Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&p, &["admin"], "revoke keys")?;
    let store = &state.tracker.store;
    match store
        .api_key_by_prefix(&prefix)
        .await
        .map_err(TrackingError::from)?
    {
        Some(k) if k.tenant == p.tenant => {}
        _ => return Err(ApiError::not_found(format!("no key {prefix}"))),
    }
    let done = store
        .revoke_api_key(&prefix, state.tracker.clock.now_ms())
        .await
        .map_err(TrackingError::from)?;
    Ok(Json(
        json!({ "prefix": prefix, "revoked": true, "changed": done }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_resources() {
        assert_eq!(action_of("GET", "/v1/authorizations/{id}"), "records.read");
        assert_eq!(action_of("POST", "/fhir/Claim/$submit"), "fhir.submit");
        assert_eq!(
            action_of("GET", "/fhir/Subscription/{id}"),
            "fhir.subscription.read"
        );
        assert_eq!(
            resource_of(
                "/v1/authorizations/{id}/approve",
                "/v1/authorizations/abc/approve"
            ),
            (Some("authorization".into()), Some("abc".into()))
        );
        assert!(is_guarded("/v1/authorizations"));
        assert!(is_guarded("/fhir/Claim/$submit"));
        assert!(!is_guarded("/fhir/metadata"));
        assert!(!is_guarded("/healthz"));
        assert!(!is_guarded("/oauth/token"));
        assert_eq!(outcome_of(StatusCode::NOT_FOUND), "not_found");
    }
}
