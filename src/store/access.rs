//! Access rows: API keys (only their SHA-256 hash is kept), the OAuth2 access tokens the gateway
//! issues (hashed too), SMART assertion ids seen (each `jti` once), and the append-only audit
//! log. Plain data: who may do what is decided in `crate::auth`.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use super::{Result, Store, StoreError, get};

const KEY_COLUMNS: &str =
    "id, tenant, name, role, key_hash, key_prefix, jwks_public_key, created_at, revoked_at";
const AUDIT_COLUMNS: &str = "id, at, tenant, principal, role, action, resource_type, resource_id, \
    outcome, http_status, remote_addr, request_id";

/// One API key (its hash, never the key).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKeyRow {
    pub id: i64,
    pub tenant: String,
    pub name: String,
    pub role: String,
    #[serde(skip)]
    pub key_hash: String,
    pub key_prefix: String,
    /// A SMART Backend Services client's public key (PEM), when registered with one.
    #[serde(skip)]
    pub jwks_public_key: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl ApiKeyRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(ApiKeyRow {
            id: get(r, 0)?,
            tenant: get(r, 1)?,
            name: get(r, 2)?,
            role: get(r, 3)?,
            key_hash: get(r, 4)?,
            key_prefix: get(r, 5)?,
            jwks_public_key: get(r, 6)?,
            created_at: get(r, 7)?,
            revoked_at: get(r, 8)?,
        })
    }
}

/// An access token the gateway issued (found by its hash).
#[derive(Debug, Clone, PartialEq)]
pub struct AccessToken {
    pub tenant: String,
    pub client: String,
    pub role: String,
    pub name: String,
    pub expires_at: i64,
}

/// A new audit line: who, which tenant, what, which resource, the outcome, from where.
/// Never a body or patient data.
#[derive(Debug, Clone, Default)]
pub struct NewAudit {
    pub at: i64,
    pub tenant: Option<String>,
    pub principal: Option<String>,
    pub role: Option<String>,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// allowed | denied | not_found | unauthenticated | invalid
    pub outcome: String,
    pub http_status: Option<i64>,
    pub remote_addr: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub tenant: Option<String>,
    pub principal: Option<String>,
    pub role: Option<String>,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: String,
    pub http_status: Option<i64>,
    pub remote_addr: Option<String>,
    pub request_id: Option<String>,
}

impl AuditRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(AuditRow {
            id: get(r, 0)?,
            at: get(r, 1)?,
            tenant: get(r, 2)?,
            principal: get(r, 3)?,
            role: get(r, 4)?,
            action: get(r, 5)?,
            resource_type: get(r, 6)?,
            resource_id: get(r, 7)?,
            outcome: get(r, 8)?,
            http_status: get(r, 9)?,
            remote_addr: get(r, 10)?,
            request_id: get(r, 11)?,
        })
    }
}

/// Audit lines in multi-row inserts (the group commit's intake path).
pub(crate) async fn insert_audits(
    tx: &mut Transaction<'static, Any>,
    lines: &[&NewAudit],
) -> Result<()> {
    for part in lines.chunks(50) {
        let mut sql = String::from(
            "INSERT INTO audit_events (at, tenant, principal, role, action, resource_type, \
             resource_id, outcome, http_status, remote_addr, request_id) VALUES ",
        );
        super::rows::push_values(&mut sql, part.len(), 11);
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for a in part {
            q = q
                .bind(a.at)
                .bind(a.tenant.clone())
                .bind(a.principal.clone())
                .bind(a.role.clone())
                .bind(&a.action)
                .bind(a.resource_type.clone())
                .bind(a.resource_id.clone())
                .bind(&a.outcome)
                .bind(a.http_status)
                .bind(a.remote_addr.clone())
                .bind(a.request_id.clone());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

pub(crate) async fn insert_audit(tx: &mut Transaction<'static, Any>, a: &NewAudit) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (at, tenant, principal, role, action, resource_type, \
         resource_id, outcome, http_status, remote_addr, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(a.at)
    .bind(a.tenant.clone())
    .bind(a.principal.clone())
    .bind(a.role.clone())
    .bind(&a.action)
    .bind(a.resource_type.clone())
    .bind(a.resource_id.clone())
    .bind(&a.outcome)
    .bind(a.http_status)
    .bind(a.remote_addr.clone())
    .bind(a.request_id.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn unique_violation(e: &sqlx::Error) -> bool {
    let m = e.to_string().to_ascii_lowercase();
    m.contains("unique") || m.contains("duplicate key")
}

impl Store {
    /// Stores a new API key by its hash; a clash of hash or prefix is a conflict.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_api_key(
        &self,
        tenant: &str,
        name: &str,
        role: &str,
        key_hash: &str,
        key_prefix: &str,
        jwks_public_key: Option<&str>,
        at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (tenant, name, role, key_hash, key_prefix, jwks_public_key, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant)
        .bind(name)
        .bind(role)
        .bind(key_hash)
        .bind(key_prefix)
        .bind(jwks_public_key.map(str::to_owned))
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                StoreError::Conflict("a key with this prefix exists".into())
            } else {
                StoreError::from(e)
            }
        })?;
        Ok(())
    }

    /// Every key, oldest first (revoked ones too).
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ApiKeyRow::from_row).collect()
    }

    pub async fn api_key_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM api_keys")
            .fetch_one(&self.pool)
            .await?;
        get(&row, 0)
    }

    /// The key with this hash (revoked or not: the caller decides).
    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"
        )))
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ApiKeyRow::from_row).transpose()
    }

    pub async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_prefix = $1"
        )))
        .bind(prefix)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ApiKeyRow::from_row).transpose()
    }

    /// Revokes a key (and every access token issued to it); false when no unrevoked key has
    /// this prefix.
    pub async fn revoke_api_key(&self, prefix: &str, at: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $2 WHERE key_prefix = $1 AND revoked_at IS NULL",
        )
        .bind(prefix)
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        sqlx::query("DELETE FROM access_tokens WHERE client = $1")
            .bind(prefix)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Keeps an issued access token by its hash (and forgets expired ones).
    pub async fn insert_access_token(
        &self,
        token_hash: &str,
        token: &AccessToken,
        at: i64,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM access_tokens WHERE expires_at < $1")
            .bind(at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, tenant, client, role, name, expires_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token_hash)
        .bind(&token.tenant)
        .bind(&token.client)
        .bind(&token.role)
        .bind(&token.name)
        .bind(token.expires_at)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn access_token(&self, token_hash: &str) -> Result<Option<AccessToken>> {
        let row = sqlx::query(
            "SELECT tenant, client, role, name, expires_at FROM access_tokens \
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(AccessToken {
                tenant: get(&r, 0)?,
                client: get(&r, 1)?,
                role: get(&r, 2)?,
                name: get(&r, 3)?,
                expires_at: get(&r, 4)?,
            })
        })
        .transpose()
    }

    /// Records a SMART assertion's `jti`; false when this client used it before.
    pub async fn use_assertion_id(
        &self,
        client: &str,
        jti: &str,
        expires_at: i64,
        now_ms: i64,
    ) -> Result<bool> {
        // An expired assertion is refused anyway: its jti need not be kept.
        sqlx::query("DELETE FROM oauth_assertions WHERE expires_at < $1")
            .bind(now_ms - 60_000)
            .execute(&self.pool)
            .await?;
        let r = sqlx::query(
            "INSERT INTO oauth_assertions (client, jti, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(client)
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Audit lines about a record (or every line of a tenant when `resource_id` is None),
    /// oldest first.
    pub async fn audit_events(
        &self,
        resource_id: Option<&str>,
        tenant: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events \
             WHERE ($1 IS NULL OR resource_id = $1) AND ($2 IS NULL OR tenant = $2) \
             ORDER BY id LIMIT $3"
        )))
        .bind(resource_id.map(str::to_owned))
        .bind(tenant.map(str::to_owned))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(AuditRow::from_row).collect()
    }
}
