//! The notification tables (migration 0006): webhooks, the delivery queue, per-target failure
//! counts and the dispatcher's cursor over the events log. Plain rows and atomic moves; what to
//! send, to whom and when to retry is decided in `crate::notify`.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::rows::{EVENT_COLUMNS, EventRow, push_values};
use super::{Backend, Result, Store, StoreError, get};

/// Delivery states.
pub const DELIVERY_STATES: &[&str] = &["queued", "sending", "delivered", "dead"];

const WEBHOOK_COLUMNS: &str = "w.id, w.tenant, w.url, w.secret, w.events, w.active, w.created_by, \
    w.created_at, w.deleted_at, COALESCE(t.consecutive_failures, 0)";
const WEBHOOK_FROM: &str = "webhooks w LEFT JOIN notify_targets t \
    ON t.target_kind = 'webhook' AND t.target_id = w.id";
const DELIVERY_COLUMNS: &str = "id, target_kind, target_id, tenant, event_id, request_id, event, \
    state, attempts, claims, next_attempt_at, lease_owner, lease_until, last_error, last_status, \
    content_type, body, created_at, updated_at, delivered_at";

/// A REST webhook of a tenant. The secret is never serialized (it is shown once, at creation).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookRow {
    pub id: String,
    pub tenant: String,
    pub url: String,
    #[serde(skip)]
    pub secret: String,
    /// Record statuses that trigger a POST, or `["*"]`.
    pub events: Vec<String>,
    pub active: bool,
    pub created_by: String,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
    /// Failed attempts in a row (0 after a success).
    pub consecutive_failures: i64,
}

impl WebhookRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        let events: String = get(r, 4)?;
        let events: Vec<String> = serde_json::from_str(&events).map_err(|e| {
            StoreError::Invalid(format!("webhook events column is not a JSON list: {e}"))
        })?;
        Ok(WebhookRow {
            id: get(r, 0)?,
            tenant: get(r, 1)?,
            url: get(r, 2)?,
            secret: get(r, 3)?,
            events,
            active: get::<i64>(r, 5)? != 0,
            created_by: get(r, 6)?,
            created_at: get(r, 7)?,
            deleted_at: get(r, 8)?,
            consecutive_failures: get(r, 9)?,
        })
    }

    /// Whether a change to `status` is one this webhook wants.
    pub fn wants(&self, status: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == status)
    }
}

#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub id: String,
    pub tenant: String,
    pub url: String,
    pub secret: String,
    pub events: Vec<String>,
    pub created_by: String,
    pub at: i64,
}

/// One queued notification. The body is not serialized (listings show the state only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRow {
    pub id: String,
    pub target_kind: String,
    pub target_id: String,
    pub tenant: String,
    pub event_id: Option<i64>,
    pub request_id: Option<String>,
    /// What the POST announces (`X-Priorauth-Event`), e.g. `status.approved`.
    pub event: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub claims: i64,
    pub next_attempt_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    /// The HTTP status of the last answer, when there was one.
    pub last_status: Option<i64>,
    pub content_type: String,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
    pub delivered_at: Option<i64>,
}

impl DeliveryRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(DeliveryRow {
            id: get(r, 0)?,
            target_kind: get(r, 1)?,
            target_id: get(r, 2)?,
            tenant: get(r, 3)?,
            event_id: get(r, 4)?,
            request_id: get(r, 5)?,
            event: get(r, 6)?,
            state: get(r, 7)?,
            attempts: get(r, 8)?,
            claims: get(r, 9)?,
            next_attempt_at: get(r, 10)?,
            lease_owner: get(r, 11)?,
            lease_until: get(r, 12)?,
            last_error: get(r, 13)?,
            last_status: get(r, 14)?,
            content_type: get(r, 15)?,
            body: get(r, 16)?,
            created_at: get(r, 17)?,
            updated_at: get(r, 18)?,
            delivered_at: get(r, 19)?,
        })
    }
}

/// A delivery to insert: `queued` (due at `at`), or `dead` at once with `last_error` (its
/// body could not be built: kept so nothing is dropped silently).
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub id: String,
    pub target_kind: String,
    pub target_id: String,
    pub tenant: String,
    pub event_id: Option<i64>,
    pub request_id: Option<String>,
    pub event: Option<String>,
    pub state: String,
    pub last_error: Option<String>,
    pub content_type: String,
    pub body: Vec<u8>,
    pub at: i64,
}

/// The dispatcher's position in the events log (see the migration).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotifyCursor {
    pub position: i64,
    /// (event id, when first seen missing, Unix ms).
    pub gaps: Vec<(i64, i64)>,
}

impl NotifyCursor {
    fn gaps_json(&self) -> String {
        serde_json::to_string(&self.gaps).unwrap_or_else(|_| "[]".into())
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryEnd {
    Delivered {
        status: i64,
    },
    /// Queued again, due at `next_at`.
    Retry {
        error: String,
        status: Option<i64>,
        next_at: i64,
    },
    Dead {
        error: String,
        status: Option<i64>,
    },
}

impl Store {
    // ---- webhooks -----------------------------------------------------------------------

    pub async fn webhook_insert(&self, w: &NewWebhook) -> Result<()> {
        let events = serde_json::to_string(&w.events)
            .map_err(|e| StoreError::Invalid(format!("webhook events: {e}")))?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO webhooks (id, tenant, url, secret, events, active, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7)",
        )
        .bind(&w.id)
        .bind(&w.tenant)
        .bind(&w.url)
        .bind(&w.secret)
        .bind(events)
        .bind(&w.created_by)
        .bind(w.at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's webhooks (deleted ones too when `with_deleted`), oldest first.
    pub async fn webhooks(&self, tenant: &str, with_deleted: bool) -> Result<Vec<WebhookRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM {WEBHOOK_FROM} WHERE w.tenant = $1 \
             AND ($2 = 1 OR w.active = 1) ORDER BY w.created_at, w.id"
        )))
        .bind(tenant)
        .bind(if with_deleted { 1i64 } else { 0 })
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(WebhookRow::from_row).collect()
    }

    /// One webhook by id, whatever its tenant (the delivery worker's lookup); handlers use
    /// [`Store::webhooks`] or check the tenant.
    pub async fn webhook(&self, id: &str) -> Result<Option<WebhookRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {WEBHOOK_COLUMNS} FROM {WEBHOOK_FROM} WHERE w.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(WebhookRow::from_row).transpose()
    }

    /// Deactivates a tenant's webhook and ends its queued deliveries (`dead`, "webhook
    /// deleted"), in one transaction. False when the tenant has no such active webhook.
    pub async fn webhook_delete(&self, tenant: &str, id: &str, at: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE webhooks SET active = 0, deleted_at = $3 \
             WHERE id = $1 AND tenant = $2 AND active = 1",
        )
        .bind(id)
        .bind(tenant)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE deliveries SET state = 'dead', last_error = 'webhook deleted', \
             updated_at = $2 WHERE target_kind = 'webhook' AND target_id = $1 AND state = 'queued'",
        )
        .bind(id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    // ---- the dispatcher -----------------------------------------------------------------

    /// The cursor named `name` (a missing row reads as position 0: the migration creates
    /// `dispatcher`).
    pub async fn notify_cursor(&self, name: &str) -> Result<NotifyCursor> {
        let row = sqlx::query("SELECT position, gaps FROM notify_cursor WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(NotifyCursor::default()),
            Some(r) => {
                let gaps: String = get(&r, 1)?;
                Ok(NotifyCursor {
                    position: get(&r, 0)?,
                    gaps: serde_json::from_str(&gaps).map_err(|e| {
                        StoreError::Invalid(format!("notify cursor {name}: gaps: {e}"))
                    })?,
                })
            }
        }
    }

    /// Events after the cursor's position (up to `limit`, in id order), and the events of its
    /// gaps that have appeared since.
    pub async fn events_after(
        &self,
        cursor: &NotifyCursor,
        limit: usize,
    ) -> Result<(Vec<EventRow>, Vec<EventRow>)> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(cursor.position)
        .bind(limit.max(1) as i64)
        .fetch_all(&self.pool)
        .await?;
        let new = rows
            .iter()
            .map(EventRow::from_row)
            .collect::<Result<Vec<_>>>()?;
        let mut found = Vec::new();
        for part in cursor.gaps.chunks(500) {
            let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id IN (");
            for i in 0..part.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", i + 1));
            }
            sql.push_str(") ORDER BY id");
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (id, _) in part {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.pool).await? {
                found.push(EventRow::from_row(&r)?);
            }
        }
        Ok((new, found))
    }

    /// Moves the cursor from `old` to `new` and inserts `deliveries` (one already present for
    /// the same target and event is left as it is), in one transaction. False, with nothing
    /// written, when the cursor is no longer `old` (another dispatcher moved it).
    pub async fn notify_advance(
        &self,
        name: &str,
        old: &NotifyCursor,
        new: &NotifyCursor,
        deliveries: &[NewDelivery],
        at: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT position, gaps FROM notify_cursor WHERE name = $1{lock}"
        )))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        match row {
            Some(r) => {
                let position: i64 = r.try_get(0)?;
                let gaps: String = r.try_get(1)?;
                if position != old.position || gaps != old.gaps_json() {
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE notify_cursor SET position = $2, gaps = $3, updated_at = $4 \
                     WHERE name = $1",
                )
                .bind(name)
                .bind(new.position)
                .bind(new.gaps_json())
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                if *old != NotifyCursor::default() {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO notify_cursor (name, position, gaps, updated_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(name)
                .bind(new.position)
                .bind(new.gaps_json())
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
        }
        insert_deliveries(&mut tx, deliveries).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Inserts deliveries outside the dispatcher (one-off notifications such as a
    /// subscription handshake), in one transaction; returns how many were new.
    pub async fn delivery_insert(&self, deliveries: &[NewDelivery]) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let n = insert_deliveries(&mut tx, deliveries).await?;
        tx.commit().await?;
        Ok(n)
    }

    // ---- the delivery worker ------------------------------------------------------------

    /// Claims up to `limit` deliveries due at `now` for `owner`, leased until
    /// `now + lease_ms`, counting an attempt each: queued ones whose time has come, and ones
    /// left in `sending` whose lease expired (the worker died mid-send; the receiver may have
    /// it already and dedupes by delivery id). PostgreSQL: `FOR UPDATE SKIP LOCKED`, so
    /// several processes claim disjoint sets; SQLite: inside `BEGIN IMMEDIATE`.
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        now: i64,
        lease_ms: i64,
        limit: usize,
        kinds: &[String],
    ) -> Result<Vec<DeliveryRow>> {
        if owner.trim().is_empty() {
            return Err(StoreError::Invalid(
                "a delivery worker needs a non-empty owner name".into(),
            ));
        }
        if limit == 0 || kinds.is_empty() {
            return Ok(vec![]);
        }
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let only = (0..kinds.len())
            .map(|i| format!("${}", i + 5))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE deliveries SET state = 'sending', lease_owner = $1, lease_until = $3, \
             claims = claims + 1, attempts = attempts + 1, updated_at = $2 \
             WHERE id IN (SELECT id FROM deliveries WHERE \
             ((state = 'queued' AND next_attempt_at <= $2) OR \
             (state = 'sending' AND lease_until < $2)) AND target_kind IN ({only}) \
             ORDER BY next_attempt_at, created_at, id LIMIT $4{lock}) \
             RETURNING {DELIVERY_COLUMNS}"
        );
        let mut tx = self.begin_write().await?;
        let mut q = sqlx::query(AssertSqlSafe(sql))
            .bind(owner)
            .bind(now)
            .bind(now.saturating_add(lease_ms.max(1)))
            .bind(limit as i64);
        for k in kinds {
            q = q.bind(k);
        }
        let rows = q.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let mut claimed: Vec<DeliveryRow> = rows
            .iter()
            .map(DeliveryRow::from_row)
            .collect::<Result<_>>()?;
        claimed.sort_by(|a, b| {
            (a.created_at, a.event_id, &a.id).cmp(&(b.created_at, b.event_id, &b.id))
        });
        Ok(claimed)
    }

    /// Ends an attempt: only while `owner` still holds the lease of claim `claims` (false,
    /// nothing written, when another worker took the delivery over). The target's count of
    /// consecutive failures moves with it, in the same transaction.
    pub async fn delivery_finish(
        &self,
        d: &DeliveryRow,
        owner: &str,
        end: &DeliveryEnd,
        at: i64,
    ) -> Result<bool> {
        let (state, error, status, next_at, delivered_at) = match end {
            DeliveryEnd::Delivered { status } => (
                "delivered",
                None,
                Some(*status),
                d.next_attempt_at,
                Some(at),
            ),
            DeliveryEnd::Retry {
                error,
                status,
                next_at,
            } => ("queued", Some(error.clone()), *status, *next_at, None),
            DeliveryEnd::Dead { error, status } => (
                "dead",
                Some(error.clone()),
                *status,
                d.next_attempt_at,
                None,
            ),
        };
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE deliveries SET state = $4, last_error = COALESCE($5, last_error), \
             last_status = $6, next_attempt_at = $7, delivered_at = $8, lease_owner = NULL, \
             lease_until = NULL, updated_at = $9 \
             WHERE id = $1 AND state = 'sending' AND lease_owner = $2 AND claims = $3",
        )
        .bind(&d.id)
        .bind(owner)
        .bind(d.claims)
        .bind(state)
        .bind(error)
        .bind(status)
        .bind(next_at)
        .bind(delivered_at)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        let ok = matches!(end, DeliveryEnd::Delivered { .. });
        sqlx::query(
            "INSERT INTO notify_targets (target_kind, target_id, consecutive_failures, \
             last_failure_at, last_success_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (target_kind, target_id) DO UPDATE SET \
             consecutive_failures = CASE WHEN $3 = 0 THEN 0 \
             ELSE notify_targets.consecutive_failures + 1 END, \
             last_failure_at = COALESCE($4, notify_targets.last_failure_at), \
             last_success_at = COALESCE($5, notify_targets.last_success_at)",
        )
        .bind(&d.target_kind)
        .bind(&d.target_id)
        .bind(if ok { 0i64 } else { 1 })
        .bind(if ok { None } else { Some(at) })
        .bind(if ok { Some(at) } else { None })
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn delivery(&self, id: &str) -> Result<Option<DeliveryRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(DeliveryRow::from_row).transpose()
    }

    /// The deliveries to one target, oldest first.
    pub async fn deliveries_for(&self, kind: &str, target_id: &str) -> Result<Vec<DeliveryRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE target_kind = $1 AND target_id = $2 \
             ORDER BY created_at, event_id, id"
        )))
        .bind(kind)
        .bind(target_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(DeliveryRow::from_row).collect()
    }

    /// Deliveries in `state` (all when None), oldest first.
    pub async fn deliveries(&self, state: Option<&str>) -> Result<Vec<DeliveryRow>> {
        if let Some(s) = state
            && !DELIVERY_STATES.contains(&s)
        {
            return Err(StoreError::Invalid(format!(
                "unknown delivery state {s:?}: one of {}",
                DELIVERY_STATES.join(", ")
            )));
        }
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE ($1 IS NULL OR state = $1) \
             ORDER BY created_at, event_id, id"
        )))
        .bind(state.map(str::to_owned))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(DeliveryRow::from_row).collect()
    }

    /// Queues a dead delivery of a target again (a person fixed the receiver): attempts start
    /// over, due at `at`. False when the target has no such dead delivery.
    pub async fn delivery_retry(
        &self,
        kind: &str,
        target_id: &str,
        id: &str,
        at: i64,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE deliveries SET state = 'queued', attempts = 0, next_attempt_at = $4, \
             updated_at = $4 WHERE id = $3 AND target_kind = $1 AND target_id = $2 \
             AND state = 'dead'",
        )
        .bind(kind)
        .bind(target_id)
        .bind(id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// How many deliveries are in each state (every state listed, zeros included).
    pub async fn delivery_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let mut out: Vec<(String, i64)> = DELIVERY_STATES
            .iter()
            .map(|s| ((*s).to_owned(), 0))
            .collect();
        for r in &rows {
            let state: String = get(r, 0)?;
            let n: i64 = get(r, 1)?;
            match out.iter_mut().find(|(s, _)| *s == state) {
                Some(slot) => slot.1 = n,
                None => out.push((state, n)),
            }
        }
        Ok(out)
    }

    /// Failed attempts in a row for a target (0 when it never failed).
    pub async fn target_failures(&self, kind: &str, target_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT consecutive_failures FROM notify_targets \
             WHERE target_kind = $1 AND target_id = $2",
        )
        .bind(kind)
        .bind(target_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|r| get::<i64>(r, 0))
            .transpose()
            .map(|v| v.unwrap_or(0))
    }
}

async fn insert_deliveries(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    deliveries: &[NewDelivery],
) -> Result<u64> {
    let mut n = 0;
    for part in deliveries.chunks(50) {
        let mut sql = String::from(
            "INSERT INTO deliveries (id, target_kind, target_id, tenant, event_id, request_id, \
             event, state, last_error, content_type, body, next_attempt_at, created_at, \
             updated_at) VALUES ",
        );
        push_values(&mut sql, part.len(), 14);
        sql.push_str(" ON CONFLICT (target_kind, target_id, event_id) DO NOTHING");
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for d in part {
            if !DELIVERY_STATES.contains(&d.state.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "delivery {}: unknown state {:?}",
                    d.id, d.state
                )));
            }
            q = q
                .bind(&d.id)
                .bind(&d.target_kind)
                .bind(&d.target_id)
                .bind(&d.tenant)
                .bind(d.event_id)
                .bind(d.request_id.clone())
                .bind(d.event.clone())
                .bind(&d.state)
                .bind(d.last_error.clone())
                .bind(&d.content_type)
                .bind(d.body.clone())
                .bind(d.at)
                .bind(d.at)
                .bind(d.at);
        }
        n += q.execute(&mut **tx).await?.rows_affected();
    }
    Ok(n)
}
