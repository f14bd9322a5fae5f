//! The outbox rows: claiming due messages under a lease, listing, counting. The moves of a
//! claimed message are [`Write::Outbox`](super::Write::Outbox) changes, applied with the record
//! changes and events they go with.

use sqlx::AssertSqlSafe;

use super::rows::{NewEvent, OUTBOX_COLUMNS, OutboxRow, insert_events};
use super::{Backend, Result, Store, StoreError, get};

/// Outbox states.
pub const OUTBOX_STATES: &[&str] = &[
    "queued",
    "sending",
    "delivered",
    "answered",
    "refused",
    "dead",
];

impl Store {
    /// Claims up to `limit` messages that are due at `now` for `owner`, leased until
    /// `now + lease_ms`: queued ones whose `next_attempt_at` has come, and ones left in
    /// `sending` whose lease expired (a worker died or hung mid-send) once their
    /// `next_attempt_at` (set to the retransmit floor when the send began) has come; those are
    /// marked `retransmit`. PostgreSQL: `FOR UPDATE SKIP LOCKED`, so several processes claim
    /// disjoint sets; SQLite: the same inside `BEGIN IMMEDIATE` (one writer at a time).
    /// Each claim writes an event on the record (actor `outbox`).
    pub async fn claim_due(
        &self,
        owner: &str,
        now: i64,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRow>> {
        if owner.trim().is_empty() {
            return Err(StoreError::Invalid(
                "an outbox worker needs a non-empty owner name".into(),
            ));
        }
        if limit == 0 {
            return Ok(vec![]);
        }
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET state = 'sending', lease_owner = $1, lease_until = $3, \
             claims = claims + 1, \
             retransmit = CASE WHEN state = 'sending' THEN 1 ELSE retransmit END, \
             last_error = CASE WHEN state = 'sending' \
             THEN 'the lease of ' || COALESCE(lease_owner, '?') || ' expired during attempt ' \
             || CAST(attempts AS TEXT) || ': outcome unknown' ELSE last_error END, \
             updated_at = $2 \
             WHERE id IN (SELECT id FROM outbox WHERE \
             (state = 'queued' AND next_attempt_at <= $2) OR \
             (state = 'sending' AND lease_until < $2 AND next_attempt_at <= $2) \
             ORDER BY next_attempt_at, id LIMIT $4{lock}) \
             RETURNING {OUTBOX_COLUMNS}"
        );
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(owner)
            .bind(now)
            .bind(now.saturating_add(lease_ms.max(1)))
            .bind(limit as i64)
            .fetch_all(&mut *tx)
            .await?;
        let mut claimed: Vec<OutboxRow> = rows
            .iter()
            .map(OutboxRow::from_row)
            .collect::<Result<_>>()?;
        claimed.sort_by_key(|r| (r.next_attempt_at, r.id));
        let events: Vec<NewEvent> = claimed
            .iter()
            .filter(|m| m.request_id.is_some())
            .map(|m| {
                let reclaimed = m.claims > 1 && m.attempts > 0 && m.retransmit;
                NewEvent {
                    request_id: m.request_id.clone(),
                    at: now,
                    actor: "outbox".into(),
                    action: "outbox_claimed".into(),
                    from_status: None,
                    to_status: None,
                    reason: if reclaimed {
                        m.last_error.clone()
                    } else {
                        None
                    },
                    detail: Some(format!(
                        "outbox {} ({} {}) -> sending, claim {} by {owner}{}",
                        m.id,
                        m.operation,
                        m.payer,
                        m.claims,
                        if m.retransmit { ", retransmit" } else { "" }
                    )),
                }
            })
            .collect();
        if !events.is_empty() {
            insert_events(&mut tx, &events).await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    pub async fn outbox_get(&self, id: i64) -> Result<Option<OutboxRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(OutboxRow::from_row).transpose()
    }

    /// Outbox messages in `state` (all when None), oldest first.
    pub async fn outbox_list(&self, state: Option<&str>) -> Result<Vec<OutboxRow>> {
        if let Some(s) = state
            && !OUTBOX_STATES.contains(&s)
        {
            return Err(StoreError::Invalid(format!(
                "unknown outbox state {s:?}: one of {}",
                OUTBOX_STATES.join(", ")
            )));
        }
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1 IS NULL OR state = $1) ORDER BY id"
        )))
        .bind(state.map(str::to_owned))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(OutboxRow::from_row).collect()
    }

    /// The outbox messages of a record, oldest first.
    pub async fn outbox_for(&self, request_id: &str) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE request_id = $1 ORDER BY id"
        )))
        .bind(request_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(OutboxRow::from_row).collect()
    }

    /// How many outbox messages are in each state (every state listed, zeros included).
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM outbox GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let mut out: Vec<(String, i64)> =
            OUTBOX_STATES.iter().map(|s| ((*s).to_owned(), 0)).collect();
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

    /// The stored bytes of an outbound message (what every send of it carries).
    pub async fn outbound_raw(&self, id: i64) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT raw FROM outbound_messages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(|r| get::<Vec<u8>>(r, 0)).transpose()
    }
}
