//! `/oauth/token`: the client credentials grant (client id and secret, in the form or HTTP
//! Basic) and SMART Backend Services (a JWT assertion verified with the configured public key).

use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;

use super::rules::OAuth;
use super::{MockState, json_response};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The verification key of SMART assertions, from the rules.
pub(crate) fn smart_key(o: &OAuth) -> Result<Option<(DecodingKey, Algorithm)>, String> {
    let Some(pem) = &o.smart_public_key_pem else {
        return Ok(None);
    };
    let alg = match o.smart_algorithm.as_deref() {
        None | Some("RS384") => Algorithm::RS384,
        Some("ES384") => Algorithm::ES384,
        Some(a) => return Err(format!("oauth.smart_algorithm {a:?}: RS384 or ES384")),
    };
    let key = match alg {
        Algorithm::ES384 => DecodingKey::from_ec_pem(pem.as_bytes()),
        _ => DecodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .map_err(|e| format!("oauth.smart_public_key: not a usable {alg:?} public key PEM: {e}"))?;
    Ok(Some((key, alg)))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenForm {
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

#[derive(Debug, Deserialize)]
struct Assertion {
    iss: String,
    sub: String,
    aud: serde_json::Value,
    #[serde(default)]
    jti: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

pub(crate) async fn token(
    State(s): State<MockState>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
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
    let o = &s.inner.rules.oauth;
    let client = if let Some(assertion) = &f.client_assertion {
        if f.client_assertion_type.as_deref() != Some(JWT_BEARER) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            );
        }
        match verify_assertion(&s, assertion) {
            Ok(c) => c,
            Err(e) => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &e),
        }
    } else {
        let (id, secret) = match (
            crate::auth::basic_credentials(&headers),
            &f.client_id,
            &f.client_secret,
        ) {
            (Some(c), _, _) => c,
            (None, Some(i), Some(sec)) => (i.clone(), sec.clone()),
            _ => {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "client credentials are missing (client_id and client_secret, HTTP Basic, or a client_assertion)",
                );
            }
        };
        match (&o.client_id, &o.client_secret) {
            (Some(i), Some(sec)) if *i == id && *sec == secret => id,
            (None, _) => {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "this mock payer has no client credentials configured ([oauth] client_id / client_secret)",
                );
            }
            _ => {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "unknown client id or wrong secret",
                );
            }
        }
    };
    let ttl = s.inner.rules.token_ttl_s;
    let token = format!("mock-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    {
        let mut data = s.data();
        data.tokens
            .insert(token.clone(), Instant::now() + Duration::from_secs(ttl));
        data.stats.tokens_issued += 1;
    }
    tracing::info!(client = %client, ttl, "mock payer: token issued");
    let mut body = json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": ttl,
    });
    if let Some(scope) = f.scope {
        body["scope"] = scope.into();
    }
    json_response(StatusCode::OK, &body)
}

fn verify_assertion(s: &MockState, jwt: &str) -> Result<String, String> {
    let o = &s.inner.rules.oauth;
    let Some((key, alg)) = &s.inner.smart_key else {
        return Err("this mock payer has no SMART public key configured".into());
    };
    let Some(client) = &o.smart_client_id else {
        return Err("this mock payer has no smart_client_id configured".into());
    };
    let mut v = Validation::new(*alg);
    v.validate_aud = false;
    v.set_issuer(&[client]);
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let data = jsonwebtoken::decode::<Assertion>(jwt, key, &v)
        .map_err(|e| format!("the client assertion was refused: {e}"))?;
    let c = data.claims;
    if c.sub != *client || c.iss != *client {
        return Err("the assertion's iss and sub must both be the client id".into());
    }
    let aud_ok = |a: &str| a.ends_with("/oauth/token");
    let aud = match &c.aud {
        serde_json::Value::String(a) => aud_ok(a),
        serde_json::Value::Array(list) => list.iter().any(|a| a.as_str().is_some_and(aud_ok)),
        _ => false,
    };
    if !aud {
        return Err("the assertion's aud must be this token endpoint's URL".into());
    }
    let Some(jti) = c.jti else {
        return Err("the assertion has no jti".into());
    };
    if !s.data().jtis.insert(jti) {
        return Err("the assertion's jti was already used".into());
    }
    Ok(c.iss)
}

/// Whether the request carries a live token this mock issued.
pub(crate) fn bearer_ok(s: &MockState, headers: &HeaderMap) -> bool {
    let Some(t) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    s.data()
        .tokens
        .get(t.trim())
        .is_some_and(|exp| *exp > Instant::now())
}
