//! The rows of the FHIR PAS endpoint (migration 0005): request Bundles as received, records
//! answered pended, backport Subscriptions, and the durable notification queue.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

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

/// A notification to send.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NotificationRow {
    pub id: i64,
    pub subscription_id: String,
    pub event_id: i64,
    pub request_id: String,
    pub event_number: i64,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

const NOTIFICATION_COLUMNS: &str = "id, subscription_id, event_id, request_id, event_number, \
                                    state, attempts, next_attempt_at, last_error, created_at, \
                                    delivered_at";

impl NotificationRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(NotificationRow {
            id: get(r, 0)?,
            subscription_id: get(r, 1)?,
            event_id: get(r, 2)?,
            request_id: get(r, 3)?,
            event_number: get(r, 4)?,
            state: get(r, 5)?,
            attempts: get(r, 6)?,
            next_attempt_at: get(r, 7)?,
            last_error: get(r, 8)?,
            created_at: get(r, 9)?,
            delivered_at: get(r, 10)?,
        })
    }
}

/// A status change of a record answered pended, not yet turned into notifications.
#[derive(Debug, Clone)]
pub struct PendedChange {
    pub event_id: i64,
    pub request_id: String,
    pub tenant: String,
    pub to_status: String,
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

    /// Status changes (events with a `to_status`) after event `after` of records answered
    /// pended, oldest first, at most `limit`.
    pub async fn fhir_pended_changes(&self, after: i64, limit: i64) -> Result<Vec<PendedChange>> {
        let rows = sqlx::query(
            "SELECT e.id, e.request_id, p.tenant, e.to_status FROM events e \
             JOIN fhir_pended p ON p.request_id = e.request_id \
             WHERE e.id > $1 AND e.id > p.after_event AND e.to_status IS NOT NULL \
             ORDER BY e.id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PendedChange {
                    event_id: get(r, 0)?,
                    request_id: get(r, 1)?,
                    tenant: get(r, 2)?,
                    to_status: get(r, 3)?,
                })
            })
            .collect()
    }

    /// The highest event id.
    pub async fn last_event_id(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM events")
            .fetch_one(&self.pool)
            .await?;
        get(&row, 0)
    }

    pub async fn fhir_cursor(&self, name: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT value FROM fhir_cursor WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<i64, _>(0)))
    }

    pub async fn fhir_set_cursor(&self, name: &str, value: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO fhir_cursor (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
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

    /// A subscription by id alone (the notifier, which works for every tenant).
    pub async fn fhir_subscription_any(&self, id: &str) -> Result<Option<SubscriptionRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SUBSCRIPTION_COLUMNS} FROM fhir_subscriptions WHERE id = $1"
        )))
        .bind(id)
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

    /// Deletes a subscription of `tenant` and its notifications; false when there was none.
    pub async fn fhir_delete_subscription(&self, id: &str, tenant: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let found = sqlx::query("SELECT id FROM fhir_subscriptions WHERE id = $1 AND tenant = $2")
            .bind(id)
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if found {
            sqlx::query("DELETE FROM fhir_notifications WHERE subscription_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM fhir_subscriptions WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(found)
    }

    // ---- notifications ------------------------------------------------------------------

    /// Queues one notification per (subscription, event), numbering it in the subscription's
    /// sequence; an event already queued for it is skipped. Returns whether a row was added.
    pub async fn fhir_queue_notification(
        &self,
        subscription_id: &str,
        event_id: i64,
        request_id: &str,
        at: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query(
            "SELECT id FROM fhir_notifications WHERE subscription_id = $1 AND event_id = $2",
        )
        .bind(subscription_id)
        .bind(event_id)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if exists {
            tx.commit().await?;
            return Ok(false);
        }
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
        sqlx::query(
            "INSERT INTO fhir_notifications (subscription_id, event_id, request_id, \
             event_number, state, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, 'queued', 0, $5, $5)",
        )
        .bind(subscription_id)
        .bind(event_id)
        .bind(request_id)
        .bind(n)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Claims up to `limit` queued notifications due at `now` (a row is claimed by one sender
    /// until `now + lease_ms`).
    pub async fn fhir_claim_notifications(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<NotificationRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM fhir_notifications WHERE state = 'queued' \
             AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until < $1) \
             ORDER BY id LIMIT $2"
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let n = NotificationRow::from_row(r)?;
            let took = sqlx::query(
                "UPDATE fhir_notifications SET lease_until = $1, attempts = attempts + 1 \
                 WHERE id = $2 AND state = 'queued' AND (lease_until IS NULL OR lease_until < $3)",
            )
            .bind(now + lease_ms)
            .bind(n.id)
            .bind(now)
            .execute(&self.pool)
            .await?;
            if took.rows_affected() == 1 {
                out.push(NotificationRow {
                    attempts: n.attempts + 1,
                    ..n
                });
            }
        }
        Ok(out)
    }

    /// The result of one attempt: delivered, retried at `next`, or dead.
    pub async fn fhir_notification_result(
        &self,
        id: i64,
        state: &str,
        next: i64,
        error: Option<&str>,
        at: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE fhir_notifications SET state = $1, next_attempt_at = $2, last_error = $3, \
             lease_until = NULL, delivered_at = CASE WHEN $1 = 'delivered' THEN $4 ELSE \
             delivered_at END WHERE id = $5",
        )
        .bind(state)
        .bind(next)
        .bind(error)
        .bind(at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The notifications of a subscription, oldest first.
    pub async fn fhir_notifications_of(
        &self,
        subscription_id: &str,
    ) -> Result<Vec<NotificationRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM fhir_notifications WHERE subscription_id = $1 \
             ORDER BY id"
        )))
        .bind(subscription_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(NotificationRow::from_row).collect()
    }
}
