//! Who may call the gateway. API keys (`pa_` + 64 hex digits from the OS random source) are
//! shown once and stored as the hex SHA-256 of the key with their first characters (the
//! prefix, for listing and as the OAuth2 client id); a presented key is found by its prefix
//! and its hash compared in fixed time. OAuth2 for FHIR clients: `POST /oauth/token` with
//! client credentials (client id = key prefix, secret = the key) or a SMART Backend Services
//! JWT assertion (RS384 / ES384, verified with the public key registered with the key) gives
//! an opaque access token (`pat_...`, stored hashed, 300 s).
//!
//! Roles: clinician, supervisor, finance, billing, admin. A principal's actor name is
//! `LABEL@TENANT`, so two tenants' labels never meet in the actors table.
//! **Never**: a key, a token or an assertion in a log line or an error message.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::server::principal::Principal;
use crate::store::{AccessToken, ApiKeyRow, Store, StoreError};

pub const ROLES: &[&str] = &["clinician", "supervisor", "finance", "billing", "admin"];
/// Characters of a key kept in clear (`pa_` and 9 hex digits): the client id.
pub const PREFIX_LEN: usize = 12;
/// Seconds an access token lives.
pub const TOKEN_TTL_S: i64 = 300;
/// The longest lifetime a SMART assertion may claim (seconds).
pub const ASSERTION_MAX_S: i64 = 300;
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Compares two strings in time that depends on their lengths only.
pub fn fixed_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for i in 0..a.len() {
        diff |= a[i] ^ b[i];
    }
    diff == 0
}

fn random_hex(uuids: usize) -> String {
    // uuid v4 takes its bits from the operating system's random source (getrandom).
    let mut out = String::with_capacity(uuids * 32);
    for _ in 0..uuids {
        out.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    out
}

pub fn check_role(role: &str) -> Result<(), AuthError> {
    if ROLES.contains(&role) {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "unknown role {role:?}: one of {}",
            ROLES.join(", ")
        )))
    }
}

fn check_name(what: &str, s: &str) -> Result<(), AuthError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "{what} {s:?}: 1 to 64 characters of letters, digits, '-', '_' or '.'"
        )))
    }
}

/// The algorithm and verification key of a SMART client's public key PEM.
pub fn smart_key(pem: &str) -> Result<(DecodingKey, Algorithm), AuthError> {
    if let Ok(k) = DecodingKey::from_ec_pem(pem.as_bytes()) {
        return Ok((k, Algorithm::ES384));
    }
    if let Ok(k) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
        return Ok((k, Algorithm::RS384));
    }
    Err(AuthError::Invalid(
        "the public key is not an EC (P-384) or RSA public key in PEM".into(),
    ))
}

/// What `create_key` made: the key (show it once) and its listing row.
pub struct NewKey {
    pub key: String,
    pub row: ApiKeyRow,
}

/// Makes a new API key for `tenant` with `role`; only its hash is stored.
pub async fn create_key(
    store: &Store,
    tenant: &str,
    role: &str,
    name: Option<&str>,
    public_key_pem: Option<&str>,
    at: i64,
) -> Result<NewKey, AuthError> {
    check_name("tenant", tenant)?;
    check_role(role)?;
    if let Some(n) = name {
        check_name("name", n)?;
        // One label is one actor with one role.
        if let Some(other) =
            store.api_keys().await?.into_iter().find(|k| {
                k.tenant == tenant && k.name == n && k.revoked_at.is_none() && k.role != role
            })
        {
            return Err(AuthError::Invalid(format!(
                "{n}@{tenant} already has a key with role {}; use another name or revoke {}",
                other.role, other.key_prefix
            )));
        }
    }
    if let Some(pem) = public_key_pem {
        smart_key(pem)?;
    }
    for _ in 0..5 {
        let key = format!("pa_{}", random_hex(2));
        let prefix = key[..PREFIX_LEN].to_owned();
        let name = name
            .map(str::to_owned)
            .unwrap_or_else(|| format!("key-{}", &prefix[3..]));
        let hash = hash_secret(&key);
        match store
            .insert_api_key(tenant, &name, role, &hash, &prefix, public_key_pem, at)
            .await
        {
            Ok(()) => {
                let row = store.api_key_by_prefix(&prefix).await?.ok_or_else(|| {
                    AuthError::Invalid("the new key was not found after storing it".into())
                })?;
                return Ok(NewKey { key, row });
            }
            // A prefix clash: draw again.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AuthError::Invalid(
        "could not draw a key with a free prefix".into(),
    ))
}

fn principal_of(tenant: &str, name: &str, role: &str) -> Principal {
    Principal {
        tenant: tenant.to_owned(),
        name: format!("{name}@{tenant}"),
        role: Some(role.to_owned()),
    }
}

/// The live (unrevoked) key a presented secret is, if any.
pub async fn key_for(store: &Store, key: &str) -> Result<Option<ApiKeyRow>, AuthError> {
    if !key.starts_with("pa_") || key.len() < PREFIX_LEN || !key.is_ascii() {
        return Ok(None);
    }
    let Some(row) = store.api_key_by_prefix(&key[..PREFIX_LEN]).await? else {
        return Ok(None);
    };
    if row.revoked_at.is_some() || !fixed_time_eq(&row.key_hash, &hash_secret(key)) {
        return Ok(None);
    }
    Ok(Some(row))
}

/// Who a bearer credential (an API key or an access token this gateway issued) is; None
/// when it is unknown, revoked or expired.
pub async fn authenticate(
    store: &Store,
    bearer: &str,
    now_ms: i64,
) -> Result<Option<Principal>, AuthError> {
    if bearer.starts_with("pa_") {
        return Ok(key_for(store, bearer)
            .await?
            .map(|k| principal_of(&k.tenant, &k.name, &k.role)));
    }
    if bearer.starts_with("pat_") {
        let hash = hash_secret(bearer);
        return Ok(match store.access_token(&hash).await? {
            Some(t) if t.expires_at > now_ms => Some(principal_of(&t.tenant, &t.name, &t.role)),
            _ => None,
        });
    }
    Ok(None)
}

/// An access token issued to a client.
pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    pub client: String,
    pub tenant: String,
}

async fn issue(
    store: &Store,
    key: &ApiKeyRow,
    now_ms: i64,
    ttl_s: i64,
) -> Result<Issued, AuthError> {
    let token = format!("pat_{}", random_hex(2));
    store
        .insert_access_token(
            &hash_secret(&token),
            &AccessToken {
                tenant: key.tenant.clone(),
                client: key.key_prefix.clone(),
                role: key.role.clone(),
                name: key.name.clone(),
                expires_at: now_ms + ttl_s * 1000,
            },
            now_ms,
        )
        .await?;
    Ok(Issued {
        access_token: token,
        expires_in: ttl_s,
        client: key.key_prefix.clone(),
        tenant: key.tenant.clone(),
    })
}

/// An access token for a process of this gateway (the built-in mock payer's pushes), not tied
/// to a key: `name@tenant` with `role`, for `ttl_s` seconds.
pub async fn issue_internal(
    store: &Store,
    tenant: &str,
    name: &str,
    role: &str,
    now_ms: i64,
    ttl_s: i64,
) -> Result<String, AuthError> {
    check_role(role)?;
    let token = format!("pat_{}", random_hex(2));
    store
        .insert_access_token(
            &hash_secret(&token),
            &AccessToken {
                tenant: tenant.to_owned(),
                client: format!("internal:{name}"),
                role: role.to_owned(),
                name: name.to_owned(),
                expires_at: now_ms + ttl_s * 1000,
            },
            now_ms,
        )
        .await?;
    Ok(token)
}

/// Client credentials: the client id is the key prefix, the secret the key.
pub async fn token_for_secret(
    store: &Store,
    client_id: &str,
    secret: &str,
    now_ms: i64,
) -> Result<Option<Issued>, AuthError> {
    match key_for(store, secret).await? {
        Some(k) if fixed_time_eq(&k.key_prefix, client_id) => {
            Ok(Some(issue(store, &k, now_ms, TOKEN_TTL_S).await?))
        }
        _ => Ok(None),
    }
}

#[derive(Debug, Deserialize)]
struct Assertion {
    iss: String,
    sub: String,
    aud: serde_json::Value,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
}

/// SMART Backend Services: a JWT signed by the client (iss = sub = client id, aud = our token
/// URL, exp at most five minutes ahead, a jti used once). The error says why, never the JWT.
pub async fn token_for_assertion(
    store: &Store,
    jwt: &str,
    token_url: &str,
    now_ms: i64,
) -> Result<Issued, AuthError> {
    let header = jsonwebtoken::decode_header(jwt)
        .map_err(|e| AuthError::Invalid(format!("the client assertion is not a JWT: {e}")))?;
    if !matches!(header.alg, Algorithm::RS384 | Algorithm::ES384) {
        return Err(AuthError::Invalid(format!(
            "the client assertion is signed with {:?}: RS384 or ES384 expected",
            header.alg
        )));
    }
    // Read the (unverified) issuer to find the client's key; everything is verified below.
    let unverified: Assertion = jsonwebtoken::dangerous::insecure_decode_claims(jwt)
        .map_err(|e| AuthError::Invalid(format!("the client assertion's claims: {e}")))?;
    let client = unverified.iss.clone();
    let key = match store.api_key_by_prefix(&client).await? {
        Some(k) if k.revoked_at.is_none() => k,
        _ => return Err(AuthError::Invalid("unknown client (iss)".into())),
    };
    let Some(pem) = &key.jwks_public_key else {
        return Err(AuthError::Invalid(
            "this client has no public key registered (priorauth keys create --public-key)".into(),
        ));
    };
    let (dk, alg) = smart_key(pem)?;
    if alg != header.alg {
        return Err(AuthError::Invalid(format!(
            "the client's registered key is for {alg:?}, the assertion uses {:?}",
            header.alg
        )));
    }
    let mut v = Validation::new(alg);
    v.set_audience(&[token_url]);
    v.set_issuer(&[&client]);
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    v.leeway = 30;
    let data = jsonwebtoken::decode::<Assertion>(jwt, &dk, &v)
        .map_err(|e| AuthError::Invalid(format!("the client assertion was refused: {e}")))?;
    let c = data.claims;
    if c.sub != client
        || !matches!(
            &c.aud,
            serde_json::Value::String(_) | serde_json::Value::Array(_)
        )
    {
        return Err(AuthError::Invalid(
            "the assertion's sub must be the client id (as iss)".into(),
        ));
    }
    let now_s = now_ms / 1000;
    if c.exp > now_s + ASSERTION_MAX_S + 30 || c.iat.is_some_and(|i| c.exp - i > ASSERTION_MAX_S) {
        return Err(AuthError::Invalid(
            "the assertion's exp is more than five minutes ahead".into(),
        ));
    }
    let Some(jti) = c.jti.filter(|j| !j.is_empty() && j.len() <= 255) else {
        return Err(AuthError::Invalid("the assertion has no jti".into()));
    };
    if !store
        .use_assertion_id(&client, &jti, c.exp * 1000, now_ms)
        .await?
    {
        return Err(AuthError::Invalid(
            "the assertion's jti was already used".into(),
        ));
    }
    issue(store, &key, now_ms, TOKEN_TTL_S).await
}

/// The client id and secret of an HTTP Basic `Authorization` header (RFC 7617), as OAuth2
/// client authentication sends them; `None` when absent or malformed.
pub fn basic_credentials(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let b64 = v.strip_prefix("Basic ")?;
    let raw = base64_decode(b64.trim())?;
    let s = String::from_utf8(raw).ok()?;
    let (id, secret) = s.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Base64 (standard or URL-safe alphabet, padding optional).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn basic_credentials_are_read() {
        assert_eq!(base64_decode("YTpi").unwrap(), b"a:b");
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            axum::http::header::AUTHORIZATION,
            "Basic YTpi".parse().unwrap(),
        );
        assert_eq!(basic_credentials(&h), Some(("a".into(), "b".into())));
        h.insert(
            axum::http::header::AUTHORIZATION,
            "Basic !!".parse().unwrap(),
        );
        assert_eq!(basic_credentials(&h), None);
    }

    use super::*;

    #[test]
    fn hashes_and_compares() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(fixed_time_eq("abc", "abc"));
        assert!(!fixed_time_eq("abc", "abd"));
        assert!(!fixed_time_eq("abc", "abcd"));
        assert!(check_role("billing").is_ok());
        assert!(check_role("root").is_err());
        assert!(check_name("tenant", "clinic-a").is_ok());
        assert!(check_name("tenant", "a b").is_err());
        assert!(check_name("tenant", "").is_err());
        let k = format!("pa_{}", random_hex(2));
        assert_eq!(k.len(), 67);
        assert_ne!(random_hex(2), random_hex(2));
    }
}
