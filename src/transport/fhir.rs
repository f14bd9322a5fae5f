//! `FhirClient`: Da Vinci PAS `Claim/$submit` and `Claim/$inquire` over HTTPS with OAuth2 client
//! credentials or SMART Backend Services tokens (cached until shortly before they expire, one
//! refresh at a time, refreshed once when the payer answers 401).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::payers::{Auth, ClientAuth, PayerConfig};
use crate::transport::{
    Answer, BoxFuture, Delivery, Operation, Outgoing, SendError, Transport, clip, http_failure,
    read_body, retry_after,
};

pub const FHIR_JSON: &str = "application/fhir+json";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Lifetime of a SMART client assertion (the spec allows at most five minutes).
const ASSERTION_LIFETIME_SECS: i64 = 300;
/// Without `expires_in`, a token is kept this long.
const DEFAULT_TOKEN_SECS: u64 = 300;

#[derive(Debug, Clone)]
struct Token {
    access_token: String,
    /// Refresh at or after this instant.
    refresh_at: Instant,
}

/// The token cache key: one token per token endpoint, client and scope.
type TokenKey = (String, String, Option<String>);

/// Sends PAS Bundles / Parameters to `{endpoint}/Claim/$submit` and `/Claim/$inquire`.
#[derive(Debug)]
pub struct FhirClient {
    http: reqwest::Client,
    // A tokio mutex held across the token request: concurrent sends wait for the one refresh.
    tokens: Mutex<HashMap<TokenKey, Token>>,
}

impl FhirClient {
    pub fn new(http: reqwest::Client) -> FhirClient {
        FhirClient {
            http,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// A bearer token for the payer (`None` for `auth = none`), from the cache unless `stale`
    /// names the token that just failed with 401.
    async fn token(
        &self,
        cfg: &PayerConfig,
        stale: Option<&str>,
    ) -> Result<Option<String>, SendError> {
        let key = match &cfg.auth {
            Auth::None => return Ok(None),
            Auth::ClientCredentials {
                token_url,
                client_id,
                scope,
                ..
            }
            | Auth::SmartBackend {
                token_url,
                client_id,
                scope,
                ..
            } => (token_url.clone(), client_id.clone(), scope.clone()),
            Auth::CoreUsername { .. } => {
                return Err(SendError::Config {
                    reason: format!(
                        "payer {}: auth kind core-username cannot be used with FHIR PAS (use client-credentials or smart-backend)",
                        cfg.id
                    ),
                });
            }
        };
        let mut cache = self.tokens.lock().await;
        if let Some(t) = cache.get(&key)
            && Instant::now() < t.refresh_at
            && stale != Some(t.access_token.as_str())
        {
            return Ok(Some(t.access_token.clone()));
        }
        cache.remove(&key);
        let fresh = self.fetch_token(cfg).await?;
        let access = fresh.access_token.clone();
        cache.insert(key, fresh);
        Ok(Some(access))
    }

    async fn fetch_token(&self, cfg: &PayerConfig) -> Result<Token, SendError> {
        let config = |reason: String| SendError::Config {
            reason: format!("payer {}: {reason}", cfg.id),
        };
        let (token_url, req) = match &cfg.auth {
            Auth::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
                client_auth,
            } => {
                let secret = client_secret.resolve().map_err(|e| config(e.to_string()))?;
                let mut form: Vec<(&str, String)> =
                    vec![("grant_type", "client_credentials".into())];
                if let Some(s) = scope {
                    form.push(("scope", s.clone()));
                }
                let req = self.http.post(token_url);
                let req = match client_auth {
                    ClientAuth::Basic => req.basic_auth(client_id, Some(secret)),
                    ClientAuth::Body => {
                        form.push(("client_id", client_id.clone()));
                        form.push(("client_secret", secret));
                        req
                    }
                };
                (token_url, req.form(&form))
            }
            Auth::SmartBackend {
                token_url,
                client_id,
                private_key,
                key_id,
                algorithm,
                scope,
            } => {
                let pem = private_key.resolve().map_err(|e| config(e.to_string()))?;
                let assertion =
                    client_assertion(client_id, token_url, &pem, key_id.as_deref(), algorithm)
                        .map_err(config)?;
                let mut form: Vec<(&str, String)> = vec![
                    ("grant_type", "client_credentials".into()),
                    ("client_assertion_type", JWT_BEARER.into()),
                    ("client_assertion", assertion),
                ];
                if let Some(s) = scope {
                    form.push(("scope", s.clone()));
                }
                (token_url, self.http.post(token_url).form(&form))
            }
            _ => return Err(config("no OAuth2 auth configured".into())),
        };
        let started = Instant::now();
        // A token failure means the PAS request was never sent: NotDelivered or Config.
        let resp = req
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(cfg.timeout())
            .send()
            .await
            .map_err(|e| match http_failure(&e, "token endpoint") {
                SendError::Unknown { reason, .. } => SendError::NotDelivered {
                    reason,
                    retry_after: None,
                },
                other => other,
            })?;
        let status = resp.status().as_u16();
        let after = retry_after(resp.headers());
        let body = resp.bytes().await.map_err(|e| SendError::NotDelivered {
            reason: format!("token endpoint {token_url}: reading the answer failed: {e}"),
            retry_after: None,
        })?;
        tracing::info!(payer = %cfg.id, status, elapsed_ms = started.elapsed().as_millis() as u64, "token request");
        #[derive(Deserialize)]
        struct TokenResponse {
            access_token: Option<String>,
            expires_in: Option<Value>,
            error: Option<String>,
            error_description: Option<String>,
        }
        let parsed: Option<TokenResponse> = serde_json::from_slice(&body).ok();
        if !(200..300).contains(&status) {
            let oauth = parsed
                .as_ref()
                .and_then(|t| t.error.as_deref())
                .map(|e| {
                    let desc = parsed
                        .as_ref()
                        .and_then(|t| t.error_description.as_deref())
                        .map(|d| format!(": {}", clip(d)))
                        .unwrap_or_default();
                    format!(" ({}{desc})", clip(e))
                })
                .unwrap_or_default();
            let reason = format!("token endpoint {token_url}: HTTP {status}{oauth}");
            return Err(if status == 429 || status >= 500 {
                SendError::NotDelivered {
                    reason,
                    retry_after: after,
                }
            } else {
                config(reason)
            });
        }
        let parsed = parsed.ok_or_else(|| {
            config(format!(
                "token endpoint {token_url}: HTTP {status} without a JSON token response"
            ))
        })?;
        let access_token = parsed
            .access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                config(format!(
                    "token endpoint {token_url}: the answer has no access_token"
                ))
            })?;
        let lifetime = match &parsed.expires_in {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(DEFAULT_TOKEN_SECS);
        // Refresh a little before expiry: 30 s, or a tenth of a short lifetime.
        let margin = (lifetime / 10).min(30);
        Ok(Token {
            access_token,
            refresh_at: Instant::now() + Duration::from_secs(lifetime.saturating_sub(margin)),
        })
    }

    async fn exchange(&self, msg: Outgoing<'_>) -> Result<Delivery, SendError> {
        let cfg = msg.payer;
        let base = cfg.endpoint.as_deref().ok_or_else(|| SendError::Config {
            reason: format!("payer {}: fhir-pas needs an endpoint", cfg.id),
        })?;
        let op = match msg.operation {
            Operation::Submit => "$submit",
            Operation::Inquire => "$inquire",
        };
        let url = format!("{}/Claim/{op}", base.trim_end_matches('/'));
        let mut token = self.token(cfg, None).await?;
        let mut refreshed = false;
        loop {
            let started = Instant::now();
            let mut req = self
                .http
                .post(&url)
                .timeout(cfg.timeout())
                .header(reqwest::header::CONTENT_TYPE, FHIR_JSON)
                .header(reqwest::header::ACCEPT, FHIR_JSON)
                .body(msg.body.to_vec());
            if let Some(t) = &token {
                req = req.bearer_auth(t);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| http_failure(&e, &format!("PAS {op}")))?;
            let status = resp.status().as_u16();
            let after = retry_after(resp.headers());
            let body = read_body(resp, &format!("PAS {op} response")).await?;
            tracing::info!(
                payer = %cfg.id,
                payload_id = msg.payload_id,
                operation = msg.operation.as_str(),
                status,
                bytes = body.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "PAS exchange"
            );
            if status == 401 && token.is_some() && !refreshed {
                refreshed = true;
                token = self.token(cfg, token.as_deref()).await?;
                continue;
            }
            return outcome(op, status, &body, after);
        }
    }
}

impl Transport for FhirClient {
    fn send<'a>(&'a self, msg: Outgoing<'a>) -> BoxFuture<'a, Result<Delivery, SendError>> {
        Box::pin(self.exchange(msg))
    }
}

/// The SMART Backend Services client assertion: iss = sub = client id, aud = token URL, exp five
/// minutes ahead, a fresh jti, `kid` when configured; RS384 or ES384 with the PEM key.
pub fn client_assertion(
    client_id: &str,
    token_url: &str,
    pem: &str,
    key_id: Option<&str>,
    algorithm: &str,
) -> Result<String, String> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let (alg, key) = match algorithm {
        "RS384" => (Algorithm::RS384, EncodingKey::from_rsa_pem(pem.as_bytes())),
        "ES384" => (Algorithm::ES384, EncodingKey::from_ec_pem(pem.as_bytes())),
        other => {
            return Err(format!(
                "auth.algorithm {other:?}: SMART Backend Services signs with RS384 or ES384"
            ));
        }
    };
    let key = key.map_err(|e| format!("private key is not a usable {algorithm} PEM key: {e}"))?;
    let mut header = Header::new(alg);
    header.kid = key_id.map(str::to_owned);
    header.typ = Some("JWT".into());
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "exp": now + ASSERTION_LIFETIME_SECS,
        "iat": now,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|e| format!("signing the client assertion failed: {e}"))
}

/// The text of an OperationOutcome's issues (severity, code, diagnostics or details), or `None`
/// when the body is not an OperationOutcome.
pub fn outcome_text(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    if v.get("resourceType")?.as_str()? != "OperationOutcome" {
        return None;
    }
    let issues = v.get("issue").and_then(Value::as_array);
    let mut texts = Vec::new();
    for i in issues.into_iter().flatten() {
        let s = |k: &str| i.get(k).and_then(Value::as_str).unwrap_or_default();
        let details = i.get("details");
        let detail_text = details
            .and_then(|d| d.get("text"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                details
                    .and_then(|d| d.get("coding"))
                    .and_then(Value::as_array)
                    .map(|cs| {
                        cs.iter()
                            .filter_map(|c| {
                                c.get("display")
                                    .or_else(|| c.get("code"))
                                    .and_then(Value::as_str)
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
            })
            .unwrap_or_default();
        let text = [s("diagnostics"), detail_text.as_str()]
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" / ");
        texts.push(format!("{} {}: {}", s("severity"), s("code"), clip(&text)));
    }
    Some(if texts.is_empty() {
        "OperationOutcome without issues".into()
    } else {
        texts.join("; ")
    })
}

/// Maps a PAS HTTP answer to the send outcome.
pub fn outcome(
    op: &str,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Result<Delivery, SendError> {
    let oo = || {
        outcome_text(body)
            .map(|t| format!(": {t}"))
            .unwrap_or_default()
    };
    match status {
        // A success whose body is not JSON cannot be read: the payer may have acted on it.
        200..=299 if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() => {
            Err(SendError::Unknown {
                reason: format!(
                    "FHIR {op} HTTP {status}: the answer is not JSON ({} bytes)",
                    body.len()
                ),
                retry_after: None,
            })
        }
        200..=299 => Ok(Delivery::Answered(Answer {
            body: body.to_vec(),
            detail: format!("FHIR {op} HTTP {status}"),
        })),
        401 | 403 => Err(SendError::Config {
            reason: format!(
                "PAS {op}: HTTP {status}, the payer did not accept our token{}",
                oo()
            ),
        }),
        429 | 503 => Err(SendError::NotDelivered {
            reason: format!("PAS {op}: HTTP {status}, the payer is busy"),
            retry_after,
        }),
        500..=599 => Err(SendError::Unknown {
            reason: format!("PAS {op}: HTTP {status}{}", oo()),
            retry_after,
        }),
        400..=499 => match outcome_text(body) {
            Some(text) => Err(SendError::Refused {
                reason: format!("PAS {op}: HTTP {status}: {text}"),
                body: Some(body.to_vec()),
            }),
            None if matches!(status, 404 | 405 | 406 | 415) => Err(SendError::Config {
                reason: format!(
                    "PAS {op}: HTTP {status} without an OperationOutcome (check the endpoint)"
                ),
            }),
            None => Err(SendError::Refused {
                reason: format!("PAS {op}: HTTP {status} without an OperationOutcome"),
                body: Some(body.to_vec()),
            }),
        },
        _ => Err(SendError::Config {
            reason: format!("PAS {op}: unexpected HTTP {status} (check the endpoint)"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        let oo = br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"required","diagnostics":"Claim.item missing","details":{"text":"no items"}}]}"#;
        match outcome("$submit", 422, oo, None) {
            Err(SendError::Refused { reason, body }) => {
                assert!(reason.contains("Claim.item missing / no items"), "{reason}");
                assert_eq!(body.as_deref(), Some(&oo[..]));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            outcome("$submit", 200, b"{}", None),
            Ok(Delivery::Answered(_))
        ));
        assert!(matches!(
            outcome("$submit", 401, b"", None),
            Err(SendError::Config { .. })
        ));
        assert!(
            matches!(outcome("$submit", 429, b"", Some(Duration::from_secs(3))), Err(SendError::NotDelivered { retry_after: Some(d), .. }) if d.as_secs() == 3)
        );
        assert!(matches!(
            outcome("$submit", 502, b"", None),
            Err(SendError::Unknown { .. })
        ));
        assert!(matches!(
            outcome("$submit", 404, b"nope", None),
            Err(SendError::Config { .. })
        ));
        assert_eq!(outcome_text(b"{\"resourceType\":\"Bundle\"}"), None);
    }
}
