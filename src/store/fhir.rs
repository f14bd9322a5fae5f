//! The rows of the FHIR PAS endpoint (migration 0005): request Bundles as received, records
//! answered pended, backport Subscriptions, and the durable notification queue.

use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use super::{Result, Store, StoreError, get};

/// A stored PAS request Bundle.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FhirBundleRow {
    pub request_id: String,
    pub version: i64,
    pub tenant: String,
    pub bundle: String,
    pub orgs: String,
    pub revises_id: Option<String>,
    pub created_at: i64,
}

const BUNDLE_COLUMNS: &str = "request_id, version, tenant, bundle, orgs, revises_id, created_at";

impl FhirBundleRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(FhirBundleRow {
            request_id: get(r, 0)?,
            version: get(r, 1)?,
            tenant: get(r, 2)?,
            bundle: get(r, 3)?,
            orgs: get(r, 4)?,
            revises_id: get(r, 5)?,
            created_at: get(r, 6)?,
        })
    }
}

/// A backport Subscription.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubscriptionRow {
    pub id: String,
    pub tenant: String,
    pub status: String,
    pub endpoint: String,
    pub filter: String,
    /// The Subscription resource as the client sent it (status and error are ours).
    pub resource: String,
    pub event_count: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const SUBSCRIPTION_COLUMNS: &str = "id, tenant, status, endpoint, filter, resource, event_count, \
                                    last_error, created_at, updated_at";

impl SubscriptionRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(SubscriptionRow {
            id: get(r, 0)?,
            tenant: get(r, 1)?,
            status: get(r, 2)?,
            endpoint: get(r, 3)?,
            filter: get(r, 4)?,
            resource: get(r, 5)?,
            event_count: get(r, 6)?,
            last_error: get(r, 7)?,
            created_at: get(r, 8)?,
            updated_at: get(r, 9)?,
        })
    }
}

impl Store {
    /// Keeps the request Bundle of a record version (a second write of the same one is refused).
    #[allow(clippy::too_many_arguments)]
    pub async fn fhir_put_bundle(
        &self,
        request_id: &str,
        version: i64,
        tenant: &str,
        bundle: &str,
        orgs: &str,
        revises_id: Option<&str>,
        at: i64,
    ) -> Result<()> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO fhir_request_bundles ({BUNDLE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        )))
        .bind(request_id)
        .bind(version)
        .bind(tenant)
        .bind(bundle)
        .bind(orgs)
        .bind(revises_id)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The latest request Bundle of a record, within `tenant`.
    pub async fn fhir_bundle(
        &self,
        request_id: &str,
        tenant: &str,
    ) -> Result<Option<FhirBundleRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {BUNDLE_COLUMNS} FROM fhir_request_bundles WHERE request_id = $1 \
             AND tenant = $2 ORDER BY version DESC LIMIT 1"
        )))
        .bind(request_id)
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(FhirBundleRow::from_row).transpose()
    }

    /// Every record of `tenant` that came in through /fhir (latest bundle of each), newest
    /// first, at most `limit`.
    pub async fn fhir_bundles_of(&self, tenant: &str, limit: i64) -> Result<Vec<FhirBundleRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {BUNDLE_COLUMNS} FROM fhir_request_bundles b WHERE tenant = $1 AND version = \
             (SELECT MAX(version) FROM fhir_request_bundles c WHERE c.request_id = b.request_id) \
             ORDER BY created_at DESC LIMIT $2"
        )))
        .bind(tenant)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(FhirBundleRow::from_row).collect()
    }

    /// Marks a record as answered pended to a FHIR caller (idempotent).
    pub async fn fhir_mark_pended(&self, request_id: &str, tenant: &str, at: i64) -> Result<()> {
        let after = self.last_event_id().await?;
        sqlx::query(
            "INSERT INTO fhir_pended (request_id, tenant, answered_at, after_event) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(request_id)
        .bind(tenant)
        .bind(at)
        .bind(after)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The last event id a caller knew of when its record was answered pended (None: the
    /// record was not answered pended in this tenant).
    pub async fn fhir_pended_after(&self, request_id: &str, tenant: &str) -> Result<Option<i64>> {
        let row = sqlx::query(
            "SELECT after_event FROM fhir_pended WHERE request_id = $1 AND tenant = $2",
        )
        .bind(request_id)
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| get(&r, 0)).transpose()
    }

    /// The highest event id.
    pub async fn last_event_id(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM events")
            .fetch_one(&self.pool)
            .await?;
        get(&row, 0)
    }

    // ---- subscriptions ------------------------------------------------------------------

    pub async fn fhir_insert_subscription(&self, s: &SubscriptionRow) -> Result<()> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO fhir_subscriptions ({SUBSCRIPTION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )))
        .bind(&s.id)
        .bind(&s.tenant)
        .bind(&s.status)
        .bind(&s.endpoint)
        .bind(&s.filter)
        .bind(&s.resource)
        .bind(s.event_count)
        .bind(&s.last_error)
        .bind(s.created_at)
        .bind(s.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Replaces what a client may change (endpoint, filter, resource) and the status.
    pub async fn fhir_update_subscription(&self, s: &SubscriptionRow) -> Result<()> {
        let done = sqlx::query(
            "UPDATE fhir_subscriptions SET status = $1, endpoint = $2, filter = $3, \
             resource = $4, last_error = $5, updated_at = $6 WHERE id = $7 AND tenant = $8",
        )
        .bind(&s.status)
        .bind(&s.endpoint)
        .bind(&s.filter)
        .bind(&s.resource)
        .bind(&s.last_error)
        .bind(s.updated_at)
        .bind(&s.id)
        .bind(&s.tenant)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("no subscription {}", s.id)));
        }
        Ok(())
    }

    pub async fn fhir_set_subscription_status(
        &self,
        id: &str,
        status: &str,
        error: Option<&str>,
        at: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE fhir_subscriptions SET status = $1, last_error = $2, updated_at = $3 \
             WHERE id = $4",
        )
        .bind(status)
        .bind(error)
        .bind(at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A subscription of `tenant`.
    pub async fn fhir_subscription(
        &self,
        id: &str,
        tenant: &str,
    ) -> Result<Option<SubscriptionRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM fhir_subscriptions WHERE id = $1 AND tenant = $2"
        )))
        .bind(id)
        .bind(tenant)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(SubscriptionRow::from_row).transpose()
    }

    pub async fn fhir_subscriptions_of(&self, tenant: &str) -> Result<Vec<SubscriptionRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM fhir_subscriptions WHERE tenant = $1 ORDER BY created_at"
        )))
        .bind(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(SubscriptionRow::from_row).collect()
    }

    /// Deletes a subscription of `tenant` (its queued notifications find no endpoint and end
    /// dead); false when there was none.
    pub async fn fhir_delete_subscription(&self, id: &str, tenant: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let found = sqlx::query("SELECT id FROM fhir_subscriptions WHERE id = $1 AND tenant = $2")
            .bind(id)
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if found {
            sqlx::query("DELETE FROM fhir_subscriptions WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(found)
    }

    /// The next event number of a subscription (events since it started).
    pub async fn fhir_next_event_number(&self, subscription_id: &str) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE fhir_subscriptions SET event_count = event_count + 1 WHERE id = $1")
            .bind(subscription_id)
            .execute(&mut *tx)
            .await?;
        let n: i64 = get(
            &sqlx::query("SELECT event_count FROM fhir_subscriptions WHERE id = $1")
                .bind(subscription_id)
                .fetch_one(&mut *tx)
                .await?,
            0,
        )?;
        tx.commit().await?;
        Ok(n)
    }
}
