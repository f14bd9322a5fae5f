//! The records store: one struct over sqlx's `Any` driver, serving SQLite (a file in WAL mode)
//! and PostgreSQL (several replicas sharing one database) with the same SQL.
//!
//! It keeps rows and runs writes atomically; it knows no business rule. Which transition is
//! legal, what a decision means for the units, when an alert is due: all of that is decided in
//! `tracking`, which hands the store a list of [`Write`]s to apply in one transaction.
//! Every statement is written once with `$N` parameters (SQLite reads `$N` as numbered).

mod access;
mod fhir;
mod group;
mod notify;
mod outbox;
mod rows;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, ConnectOptions, Row};

pub use access::{AccessToken, ApiKeyRow, AuditRow, NewAudit};
pub use fhir::{FhirBundleRow, SubscriptionRow};
pub use notify::*;
pub use outbox::OUTBOX_STATES;
pub use rows::*;

/// A store error: the database's message, with what we were doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The embedded migrations: version, name, SQL for SQLite, SQL for PostgreSQL.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "records",
        include_str!("migrations/0001_records.sql"),
        include_str!("migrations/0001_records.sql"),
    ),
    (
        2,
        "append_only_events",
        include_str!("migrations/0002_append_only.sqlite.sql"),
        include_str!("migrations/0002_append_only.postgres.sql"),
    ),
    (
        3,
        "outbox",
        include_str!("migrations/0003_outbox.sql"),
        include_str!("migrations/0003_outbox.sql"),
    ),
    (
        4,
        "tenants",
        include_str!("migrations/0004_tenants.sqlite.sql"),
        include_str!("migrations/0004_tenants.postgres.sql"),
    ),
    (
        5,
        "fhir",
        include_str!("migrations/0005_fhir.sql"),
        include_str!("migrations/0005_fhir.sql"),
    ),
    (
        6,
        "notify",
        include_str!("migrations/0006_notify.sql"),
        include_str!("migrations/0006_notify.sql"),
    ),
];

/// The records store.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// When set, `apply` hands its writes to the group committer (see `group.rs`).
    group: Option<group::Group>,
}

/// Describes a database URL without its password (for messages).
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}://{}:***{}", &url[..s], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Store {
    /// Opens (creating a SQLite file when needed) and migrates. `sqlite://PATH` or
    /// `postgres://...`; a PostgreSQL URL may pick a schema with `?options=-c search_path=S`.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::Invalid(format!(
                "unsupported database URL {:?}: use sqlite://PATH or postgres://...",
                redact_url(url)
            )));
        };
        let url = if backend == Backend::Sqlite && !url.contains("mode=") {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        } else {
            url.to_owned()
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Invalid(format!("database URL: {e}")))?
            .disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 1,
                Backend::Postgres => 4,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA foreign_keys = ON",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", redact_url(&url))))?;
        let store = Store {
            pool,
            backend,
            group: None,
        };
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            // Take the write lock at BEGIN so two writers queue on busy_timeout instead of
            // failing when a read transaction is upgraded.
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    async fn migrate(&self) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // Replicas starting together: one migrates, the others wait.
            sqlx::query("SELECT pg_advisory_xact_lock(727800217)")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, \
             name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        let done: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<std::result::Result<_, _>>()?;
        for (version, name, sqlite, postgres) in MIGRATIONS {
            if done.contains(version) {
                continue;
            }
            let sql = match self.backend {
                Backend::Sqlite => sqlite
                    .replace("{ID}", "INTEGER PRIMARY KEY AUTOINCREMENT")
                    .replace("{BLOB}", "BLOB"),
                Backend::Postgres => postgres
                    .replace("{ID}", "BIGSERIAL PRIMARY KEY")
                    .replace("{BLOB}", "BYTEA"),
            };
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .map_err(|e| StoreError::Database(format!("migration {version} {name}: {e}")))?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(*version)
            .bind(*name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The applied migration versions.
    pub async fn migrations(&self) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.get::<i64, _>(0)).collect())
    }

    /// Applies `writes` in order in one transaction: all of them or none.
    pub async fn apply(&self, writes: &[Write]) -> Result<Vec<Applied>> {
        if let Some(g) = &self.group {
            return g.apply(writes.to_vec()).await;
        }
        let mut tx = self.begin_write().await?;
        let out = Self::apply_in(&mut tx, writes).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// The same store, whose `apply` calls are committed in groups: writes arriving while a
    /// commit is under way wait and then share the next transaction (one fsync for many
    /// callers). Each caller still gets its own all-or-nothing result: when a group fails, its
    /// write sets are applied again one by one. Needs a Tokio runtime.
    pub fn with_group_commit(&self, max_sets: usize) -> Store {
        let plain = Store {
            group: None,
            ..self.clone()
        };
        Store {
            group: Some(group::Group::spawn(
                plain,
                max_sets.max(1),
                match self.backend {
                    Backend::Sqlite => 1,
                    Backend::Postgres => 3,
                },
            )),
            ..self.clone()
        }
    }

    /// Applies several write sets in one transaction (all or nothing).
    pub(crate) async fn apply_sets(&self, sets: &[Vec<Write>]) -> Result<Vec<Vec<Applied>>> {
        let intake = sets.iter().flatten().all(|w| {
            matches!(
                w,
                Write::InsertRequest(_)
                    | Write::Event(_)
                    | Write::Idempotency { .. }
                    | Write::Audit(_)
            )
        });
        if intake {
            return self.apply_intake(sets).await;
        }
        let mut tx = self.begin_write().await?;
        let mut out = Vec::with_capacity(sets.len());
        for writes in sets {
            out.push(Self::apply_in(&mut tx, writes).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// A group of record creations (the intake shape: new records, their events, their
    /// idempotency keys, the audit lines of the calls): each table gets one multi-row insert for the whole group, records
    /// first so every event and key finds its record. All or nothing, like any group.
    async fn apply_intake(&self, sets: &[Vec<Write>]) -> Result<Vec<Vec<Applied>>> {
        let all = || sets.iter().flatten();
        let reqs: Vec<&NewRequest> = all()
            .filter_map(|w| match w {
                Write::InsertRequest(n) => Some(n),
                _ => None,
            })
            .collect();
        let events: Vec<NewEvent> = all()
            .filter_map(|w| match w {
                Write::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        let keys: Vec<(&str, &str, i64)> = all()
            .filter_map(|w| match w {
                Write::Idempotency { key, result, at } => {
                    Some((key.as_str(), result.as_str(), *at))
                }
                _ => None,
            })
            .collect();
        let audits: Vec<&NewAudit> = all()
            .filter_map(|w| match w {
                Write::Audit(a) => Some(a),
                _ => None,
            })
            .collect();
        let mut tx = self.begin_write().await?;
        rows::insert_requests(&mut tx, &reqs).await?;
        rows::insert_events(&mut tx, &events).await?;
        rows::insert_idempotency(&mut tx, &keys).await?;
        access::insert_audits(&mut tx, &audits).await?;
        tx.commit().await?;
        Ok(sets.iter().map(|s| vec![Applied::Done; s.len()]).collect())
    }

    async fn apply_in(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        writes: &[Write],
    ) -> Result<Vec<Applied>> {
        let mut out = Vec::with_capacity(writes.len());
        let mut i = 0;
        while i < writes.len() {
            // Runs of events or of inbound items go in multi-row inserts (same order).
            let run = writes[i..]
                .iter()
                .take_while(|w| std::mem::discriminant(*w) == std::mem::discriminant(&writes[i]))
                .count();
            match &writes[i] {
                Write::Event(_) if run > 1 => {
                    let evs: Vec<NewEvent> = writes[i..i + run]
                        .iter()
                        .filter_map(|w| match w {
                            Write::Event(e) => Some(e.clone()),
                            _ => None,
                        })
                        .collect();
                    rows::insert_events(tx, &evs).await?;
                }
                Write::Decision(_) if run > 1 => {
                    let ds: Vec<NewDecision> = writes[i..i + run]
                        .iter()
                        .filter_map(|w| match w {
                            Write::Decision(d) => Some(d.clone()),
                            _ => None,
                        })
                        .collect();
                    rows::insert_decisions(tx, &ds).await?;
                }
                Write::Item(_) if run > 1 => {
                    let items: Vec<NewItem> = writes[i..i + run]
                        .iter()
                        .filter_map(|w| match w {
                            Write::Item(e) => Some(e.clone()),
                            _ => None,
                        })
                        .collect();
                    rows::insert_items(tx, &items).await?;
                }
                w => {
                    out.push(rows::apply_one(tx, w).await?);
                    i += 1;
                    continue;
                }
            }
            out.extend(std::iter::repeat_n(Applied::Done, run));
            i += run;
        }
        Ok(out)
    }

    // ---- requests -----------------------------------------------------------------------

    pub async fn request(&self, id: &str) -> Result<Option<RequestRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(RequestRow::from_row).transpose()
    }

    /// Records whose BHT03 is `reference`, newest first.
    pub async fn requests_by_reference(&self, reference: &str) -> Result<Vec<RequestRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE submitter_reference = $1 \
             ORDER BY created_at DESC, id DESC"
        )))
        .bind(reference)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(RequestRow::from_row).collect()
    }

    /// Records whose BHT03 is one of `references`, with their current bodies, newest first.
    pub async fn requests_with_bodies(
        &self,
        references: &[String],
    ) -> Result<Vec<(RequestRow, String)>> {
        let mut out = Vec::new();
        for part in references.chunks(500) {
            let mut sql = format!(
                "SELECT {}, v.body FROM requests r JOIN request_versions v \
                 ON v.request_id = r.id AND v.version = r.version \
                 WHERE r.submitter_reference IN (",
                REQUEST_COLUMNS
                    .split(',')
                    .map(|c| format!("r.{}", c.trim()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for i in 0..part.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", i + 1));
            }
            sql.push_str(") ORDER BY r.created_at DESC, r.id DESC");
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for r in part {
                q = q.bind(r);
            }
            for row in q.fetch_all(&self.pool).await? {
                out.push((RequestRow::from_row(&row)?, get::<String>(&row, 21)?));
            }
        }
        Ok(out)
    }

    /// Records, optionally of one status and created in `[from, to)` (Unix ms), oldest first.
    pub async fn list_requests(&self, filter: &RequestFilter) -> Result<Vec<RequestRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM requests \
             WHERE ($1 IS NULL OR status = $1) AND created_at >= $2 AND created_at < $3 \
             AND ($5 IS NULL OR tenant = $5) ORDER BY created_at, id LIMIT $4"
        )))
        .bind(filter.status.clone())
        .bind(filter.created_from.unwrap_or(i64::MIN))
        .bind(filter.created_to.unwrap_or(i64::MAX))
        .bind(filter.limit.unwrap_or(i64::MAX))
        .bind(filter.tenant.clone())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(RequestRow::from_row).collect()
    }

    /// Records in any of `statuses`.
    pub async fn requests_in(&self, statuses: &[&str]) -> Result<Vec<RequestRow>> {
        let mut all = Vec::new();
        for s in statuses {
            all.extend(
                self.list_requests(&RequestFilter {
                    status: Some((*s).to_owned()),
                    ..Default::default()
                })
                .await?,
            );
        }
        Ok(all)
    }

    /// The request body (JSON) of a version, the current one when `version` is None.
    pub async fn request_body(&self, id: &str, version: Option<i64>) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT v.body FROM request_versions v JOIN requests r ON r.id = v.request_id \
             WHERE v.request_id = $1 AND v.version = COALESCE($2, r.version)",
        )
        .bind(id)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    pub async fn versions(&self, id: &str) -> Result<Vec<VersionRow>> {
        let rows = sqlx::query(
            "SELECT version, created_by, created_at FROM request_versions WHERE request_id = $1 \
             ORDER BY version",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(VersionRow {
                    version: r.try_get(0)?,
                    created_by: r.try_get(1)?,
                    created_at: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// Records that follow `id` (resubmissions, appeals, renewals, extensions).
    pub async fn followers(&self, id: &str) -> Result<Vec<RequestRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE previous_id = $1 ORDER BY created_at, id"
        )))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(RequestRow::from_row).collect()
    }

    /// Counts of records by (status, payer, service type) created in `[from, to)`.
    pub async fn request_counts(&self, from: i64, to: i64) -> Result<Vec<CountRow>> {
        let rows = sqlx::query(
            "SELECT status, payer, service_type, COUNT(*) FROM requests \
             WHERE created_at >= $1 AND created_at < $2 \
             GROUP BY status, payer, service_type ORDER BY status, payer, service_type",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CountRow {
                    status: r.try_get(0)?,
                    payer: r.try_get(1)?,
                    service_type: r.try_get(2)?,
                    count: r.try_get(3)?,
                })
            })
            .collect()
    }

    // ---- events -------------------------------------------------------------------------

    pub async fn events(&self, request_id: &str) -> Result<Vec<EventRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE request_id = $1 ORDER BY id"
        )))
        .bind(request_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(EventRow::from_row).collect()
    }

    /// Events whose action is one of `actions`, in `[from, to)`, in order.
    pub async fn events_between(&self, from: i64, to: i64) -> Result<Vec<EventRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE at >= $1 AND at < $2 ORDER BY id"
        )))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(EventRow::from_row).collect()
    }

    // ---- decisions and services ---------------------------------------------------------

    pub async fn decisions(&self, request_id: &str) -> Result<Vec<DecisionRow>> {
        let rows = sqlx::query(
            "SELECT id, key, request_id, inbound_message_id, inbound_position, status, action, \
             certification_number, reason, start_date, end_date, body, decided_at \
             FROM decisions WHERE request_id = $1 ORDER BY id",
        )
        .bind(request_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(DecisionRow::from_row).collect()
    }

    /// The lines of the most recent decision on a record.
    pub async fn current_lines(&self, request_id: &str) -> Result<Vec<LineRow>> {
        let rows = sqlx::query(
            "SELECT decision_key, request_id, line, status, action, procedure_code, unit, \
             authorized_units, start_date, end_date, certification_number FROM line_decisions \
             WHERE decision_key = (SELECT key FROM decisions WHERE request_id = $1 \
             ORDER BY id DESC LIMIT 1) ORDER BY line",
        )
        .bind(request_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(LineRow::from_row).collect()
    }

    pub async fn services(&self, request_id: &str) -> Result<Vec<ServiceRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SERVICE_COLUMNS} FROM service_events WHERE request_id = $1 ORDER BY id"
        )))
        .bind(request_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ServiceRow::from_row).collect()
    }

    pub async fn service(&self, id: i64) -> Result<Option<ServiceRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {SERVICE_COLUMNS} FROM service_events WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ServiceRow::from_row).transpose()
    }

    // ---- messages -----------------------------------------------------------------------

    /// Stores a received file's bytes before anything is read from it, in its own
    /// transaction; or finds it when the same bytes were received before.
    pub async fn receive(
        &self,
        hash: &str,
        format: &str,
        source: &str,
        raw: &[u8],
    ) -> Result<InboundRow> {
        let mut tx = self.begin_write().await?;
        let existing = sqlx::query(
            "SELECT id, state, items_total, items_applied FROM inbound_messages WHERE content_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await?;
        let row = match existing {
            Some(r) => InboundRow {
                id: r.try_get(0)?,
                state: r.try_get(1)?,
                items_total: r.try_get(2)?,
                items_applied: r.try_get(3)?,
                new: false,
            },
            None => {
                let r = sqlx::query(
                    "INSERT INTO inbound_messages (content_hash, format, source, size, state, \
                     items_applied, received_at) VALUES ($1, $2, $3, $4, 'received', 0, $5) \
                     RETURNING id",
                )
                .bind(hash)
                .bind(format)
                .bind(source)
                .bind(raw.len() as i64)
                .bind(now_ms())
                .fetch_one(&mut *tx)
                .await?;
                let id: i64 = r.try_get(0)?;
                sqlx::query("INSERT INTO inbound_raw (message_id, raw) VALUES ($1, $2)")
                    .bind(id)
                    .bind(raw)
                    .execute(&mut *tx)
                    .await?;
                InboundRow {
                    id,
                    state: "received".into(),
                    items_total: None,
                    items_applied: 0,
                    new: true,
                }
            }
        };
        tx.commit().await?;
        Ok(row)
    }

    pub async fn inbound_raw(&self, id: i64) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT raw FROM inbound_raw WHERE message_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<Vec<u8>, _>(0)))
    }

    pub async fn inbound_items(&self, message_id: i64) -> Result<Vec<ItemRow>> {
        let rows = sqlx::query(
            "SELECT message_id, position, kind, request_id, outcome, reference, detail \
             FROM inbound_items WHERE message_id = $1 ORDER BY position",
        )
        .bind(message_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ItemRow::from_row).collect()
    }

    /// Inbound items with one of the outcomes (e.g. `unmatched`), oldest first.
    pub async fn items_with_outcome(&self, outcome: &str) -> Result<Vec<ItemRow>> {
        let rows = sqlx::query(
            "SELECT message_id, position, kind, request_id, outcome, reference, detail \
             FROM inbound_items WHERE outcome = $1 ORDER BY message_id, position",
        )
        .bind(outcome)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(ItemRow::from_row).collect()
    }

    /// Inbound messages not fully applied (a crash in the middle of an ingest).
    pub async fn unfinished_inbound(&self) -> Result<Vec<InboundRow>> {
        let rows = sqlx::query(
            "SELECT id, state, items_total, items_applied FROM inbound_messages \
             WHERE state <> 'applied' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InboundRow {
                    id: r.try_get(0)?,
                    state: r.try_get(1)?,
                    items_total: r.try_get(2)?,
                    items_applied: r.try_get(3)?,
                    new: false,
                })
            })
            .collect()
    }

    /// Outbound messages of a record.
    pub async fn outbound_for(&self, request_id: &str) -> Result<Vec<OutboundRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {OUTBOUND_COLUMNS} FROM outbound_messages WHERE request_id = $1 ORDER BY id"
        )))
        .bind(request_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(OutboundRow::from_row).collect()
    }

    /// Outbound messages sent in interchange `isa` (ISA13), or in group `gs` (GS06) when given.
    pub async fn outbound_by_control(
        &self,
        isa: Option<i64>,
        gs: Option<i64>,
    ) -> Result<Vec<OutboundRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {OUTBOUND_COLUMNS} FROM outbound_messages \
             WHERE ($1 IS NULL OR interchange_control = $1) AND ($2 IS NULL OR group_control = $2) \
             ORDER BY id"
        )))
        .bind(isa)
        .bind(gs)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(OutboundRow::from_row).collect()
    }

    /// The submitter references (BHT03) of the messages sent with one of these trace numbers
    /// (TRN02), as (trace number, submitter reference), newest message first.
    pub async fn references_by_trace(&self, traces: &[String]) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for part in traces.chunks(500) {
            let mut sql = "SELECT trace_number, submitter_reference FROM outbound_messages \
                           WHERE submitter_reference IS NOT NULL AND trace_number IN ("
                .to_owned();
            for i in 0..part.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", i + 1));
            }
            sql.push_str(") ORDER BY id DESC");
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for t in part {
                q = q.bind(t);
            }
            for row in q.fetch_all(&self.pool).await? {
                out.push((get::<String>(&row, 0)?, get::<String>(&row, 1)?));
            }
        }
        Ok(out)
    }

    // ---- service health -----------------------------------------------------------------

    /// One round trip to the database (readiness).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Records by status (for metrics).
    pub async fn status_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) FROM requests GROUP BY status ORDER BY status")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect()
    }

    // ---- alerts -------------------------------------------------------------------------

    pub async fn open_alerts(&self) -> Result<Vec<AlertRow>> {
        let rows = sqlx::query(
            "SELECT id, request_id, kind, dedupe_key, message, due, created_at, resolved_at \
             FROM alerts WHERE resolved_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(AlertRow::from_row).collect()
    }

    // ---- control numbers ----------------------------------------------------------------

    /// The next control number of `kind` for `partner`: one atomic upsert, so two processes
    /// (or replicas) never get the same value. After `max` it starts again at 1.
    pub async fn next_control_number(&self, partner: &str, kind: &str, max: i64) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO control_numbers (partner, kind, value) VALUES ($1, $2, 1) \
             ON CONFLICT (partner, kind) DO UPDATE SET value = \
             CASE WHEN control_numbers.value >= $3 THEN 1 ELSE control_numbers.value + 1 END \
             RETURNING value",
        )
        .bind(partner)
        .bind(kind)
        .bind(max)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    // ---- idempotency, actors, settings --------------------------------------------------

    /// The stored result for an idempotency key.
    pub async fn idempotent_result(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT result FROM idempotency_keys WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    pub async fn actor_role(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT role FROM actors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    pub async fn actors(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT name, role FROM actors ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
            .collect())
    }

    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, i: usize) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(i).map_err(StoreError::from)
}

/// A synchronous [`ControlNumbers`](crate::x12::writer::ControlNumbers) over the store, for
/// the X12 writer: it blocks the calling thread on the store's runtime, which must be a
/// multi-thread one (`block_in_place`). Async callers can reserve numbers with
/// [`Store::next_control_number`] first, as `Tracker::submit` does.
pub struct StoreControlNumbers {
    store: Store,
    handle: tokio::runtime::Handle,
}

impl StoreControlNumbers {
    pub fn new(store: Store, handle: tokio::runtime::Handle) -> Self {
        StoreControlNumbers { store, handle }
    }
}

impl crate::x12::writer::ControlNumbers for StoreControlNumbers {
    fn next(
        &self,
        kind: crate::x12::writer::ControlKind,
        partner: &str,
    ) -> std::result::Result<u64, String> {
        use crate::x12::writer::ControlKind;
        let name = match kind {
            ControlKind::Interchange => "interchange",
            ControlKind::Group => "group",
            ControlKind::Transaction => "transaction",
        };
        let max = kind.max() as i64;
        let fut = self.store.next_control_number(partner, name, max);
        let v =
            tokio::task::block_in_place(|| self.handle.block_on(fut)).map_err(|e| e.to_string())?;
        Ok(v as u64)
    }
}
