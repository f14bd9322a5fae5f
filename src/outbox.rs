//! The outbox worker: claims due messages from the store under a lease, sends them through the
//! payer's transport and records the outcome.
//!
//! Per message: whether its record still waits for the payer (a submission whose record was
//! answered meanwhile is not sent again, one whose record was cancelled is a dead letter), the
//! attempt budget (`retry.max_attempts`), the retransmit floor (a message whose
//! last attempt may have reached the payer is not sent again before `retry.retransmit_min_ms`),
//! the payer's circuit breaker (per process: `retry.circuit_failures` consecutive failures open
//! it for `retry.circuit_open_ms`, then one trial send), then the attempt is recorded (committed
//! before the first byte) and the stored bytes are sent, always the same bytes: a retransmit
//! carries the same trace and control numbers and PayloadID, so the payer never sees a second
//! new authorization. The outcome:
//! - `Answered`: the answer is stored before it is read (`Tracker::ingest`), applied to the
//!   record, and the message becomes `answered` with the inbound message id;
//! - `Accepted` (a batch folder): `delivered`; the answer is picked up from the payer's
//!   `inbound_dir` later ([`Worker::pick_up_batches`]);
//! - `NotDelivered`: queued again after `retry.backoff(attempt, false)` (or Retry-After);
//! - `Unknown`: queued again as a retransmit, after `retry.backoff(attempt, true)` (the floor);
//! - `Refused`: `refused`, and a refused submission makes the record `rejected` with the reason
//!   (the payer's body, when there is one, is stored and applied first);
//! - `Config`: `dead` with the reason, for a person to fix and retry;
//! - attempts used up: `dead` with the last reason.
//!
//! Every move is conditional on the lease the worker holds, so a worker that lost its lease
//! (it hung past `lease_until` and another took the message over) cannot overwrite the new
//! owner's result. On SQLite run one worker; on PostgreSQL each process may run one (claims
//! use `FOR UPDATE SKIP LOCKED`).
//! Logs carry ids, payer ids, states, sizes and durations, never a body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, watch};

use crate::payers::{Format, PayerConfig, PayerDirectory, RetryPolicy};
use crate::store::{OutboxRow, Store, StoreError};
use crate::tracking::{Clock, Policy, Result, Tracker, TrackingError};
use crate::transport::{Delivery, Operation, Outgoing, SendError, Transport};

/// Builds the transport for a payer (the server passes `transport::for_payer`).
pub type TransportFactory = Arc<dyn Fn(&PayerConfig) -> Arc<dyn Transport> + Send + Sync>;

/// The time the worker uses, Unix milliseconds (the system clock, or a test's).
pub type Now = Arc<dyn Fn() -> i64 + Send + Sync>;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Who holds the leases: unique per worker (see [`default_owner`]).
    pub owner: String,
    /// How long to sleep when nothing is due (a poke on the notifier wakes it earlier).
    pub poll_ms: u64,
    /// Messages claimed at a time.
    pub batch: usize,
    /// How long a claim holds a message. A send holds it for at least the payer's connect
    /// timeout plus its timeout, so a slow send is not taken over while it can still answer.
    pub lease_ms: u64,
    /// Messages sent at once.
    pub concurrency: usize,
}

impl WorkerOptions {
    pub fn new(owner: impl Into<String>) -> WorkerOptions {
        WorkerOptions {
            owner: owner.into(),
            poll_ms: 1_000,
            batch: 32,
            lease_ms: 60_000,
            concurrency: 4,
        }
    }
}

/// A lease owner name unique to this process: host, process id and a random part.
pub fn default_owner() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
    format!(
        "{host}-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// One payer's circuit breaker (per process).
#[derive(Debug, Default, Clone)]
struct Breaker {
    failures: u32,
    open_until: Option<i64>,
    trial: bool,
}

enum Admit {
    Send,
    Trial,
    Wait(i64, String),
}

struct Inner {
    store: Store,
    policy: Policy,
    directory: Arc<PayerDirectory>,
    factory: TransportFactory,
    options: WorkerOptions,
    notify: Arc<Notify>,
    now: Now,
    breakers: Mutex<HashMap<String, Breaker>>,
    transports: Mutex<HashMap<String, Arc<dyn Transport>>>,
}

/// The outbox worker. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

/// What became of one claimed message (for logs and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    Delivered,
    Rescheduled,
    Deferred,
    Refused,
    Dead,
    /// Another worker took the message over; nothing was written.
    LostLease,
}

impl Worker {
    /// A worker over the tracker's store and policy, routing messages through `directory`.
    pub fn new(
        tracker: &Tracker,
        directory: Arc<PayerDirectory>,
        factory: TransportFactory,
        options: WorkerOptions,
    ) -> Worker {
        Worker {
            inner: Arc::new(Inner {
                store: tracker.store.clone(),
                policy: tracker.policy.clone(),
                directory,
                factory,
                options,
                notify: Arc::new(Notify::new()),
                now: Arc::new(crate::store::now_ms),
                breakers: Mutex::new(HashMap::new()),
                transports: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The same worker reading time from `now` (tests move it by hand).
    pub fn with_clock(self, now: Now) -> Worker {
        let i = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            store: shared.store.clone(),
            policy: shared.policy.clone(),
            directory: shared.directory.clone(),
            factory: shared.factory.clone(),
            options: shared.options.clone(),
            notify: shared.notify.clone(),
            now: shared.now.clone(),
            breakers: Mutex::new(HashMap::new()),
            transports: Mutex::new(HashMap::new()),
        });
        Worker {
            inner: Arc::new(Inner { now, ..i }),
        }
    }

    /// Poke it after each enqueue: a sleeping worker wakes and claims at once.
    pub fn notifier(&self) -> Arc<Notify> {
        self.inner.notify.clone()
    }

    pub fn options(&self) -> &WorkerOptions {
        &self.inner.options
    }

    fn tracker(&self, now: i64) -> Tracker {
        Tracker {
            store: self.inner.store.clone(),
            policy: self.inner.policy.clone(),
            clock: Clock::fixed(now),
        }
    }

    fn now(&self) -> i64 {
        (self.inner.now)()
    }

    /// Claims what is due and processes it (up to `concurrency` at once); returns how many
    /// messages were claimed. A message another worker took over is not an error; a store
    /// failure is (after every claimed message was processed).
    pub async fn run_once(&self) -> Result<usize> {
        let o = &self.inner.options;
        let claimed = self
            .inner
            .store
            .claim_due(
                &o.owner,
                self.now(),
                o.lease_ms.min(i64::MAX as u64) as i64,
                o.batch,
            )
            .await?;
        let n = claimed.len();
        let sem = Arc::new(Semaphore::new(o.concurrency.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for m in claimed {
            let permit = sem
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| TrackingError::Invalid(format!("outbox worker: {e}")))?;
            let me = self.clone();
            set.spawn(async move {
                let _permit = permit;
                let id = m.id;
                (id, me.process(m).await)
            });
        }
        let mut first_err = None;
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((_, Ok(_))) => {}
                Ok((id, Err(e))) => {
                    tracing::warn!(outbox = id, error = %e, "outbox message not processed");
                    first_err.get_or_insert(e);
                }
                Err(e) => {
                    first_err
                        .get_or_insert(TrackingError::Invalid(format!("outbox task failed: {e}")));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Runs until `shutdown` turns true (or its sender is dropped): claims and sends, queues
    /// `$inquire`s for pended PAS records, picks up batch answers; sleeps `poll_ms` when
    /// nothing is due, or until poked. Messages being sent when shutdown comes are finished.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        let o = self.inner.options.clone();
        let mut last_inquiries = i64::MIN;
        let mut last_batches = i64::MIN;
        let every = |ms: u64| ms.min(i64::MAX as u64) as i64;
        let has_batch = self
            .inner
            .directory
            .iter()
            .any(|p| p.format == Format::X12Batch && p.inbound_dir.is_some());
        let has_pas = self
            .inner
            .directory
            .iter()
            .any(|p| p.format == Format::FhirPas);
        loop {
            if *shutdown.borrow() {
                break;
            }
            let now = self.now();
            if has_pas && now.saturating_sub(last_inquiries) >= every(o.poll_ms.max(1) * 30) {
                last_inquiries = now;
                match self
                    .tracker(now)
                    .enqueue_inquiries(&self.inner.directory)
                    .await
                {
                    Ok(ids) if !ids.is_empty() => {
                        tracing::info!(count = ids.len(), "outbox: inquiries queued")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "outbox: queueing inquiries failed"),
                }
            }
            if has_batch && now.saturating_sub(last_batches) >= every(o.poll_ms) {
                last_batches = now;
                if let Err(e) = self.pick_up_batches().await {
                    tracing::warn!(error = %e, "outbox: batch pick-up failed");
                }
            }
            let n = match self.run_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: a round failed");
                    0
                }
            };
            if n >= o.batch.max(1) {
                continue; // more may be due
            }
            tokio::select! {
                _ = self.inner.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(o.poll_ms.max(1))) => {}
                r = shutdown.changed() => {
                    if r.is_err() {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    fn route(&self, payer: &str) -> std::result::Result<PayerConfig, String> {
        let mut cfg = self
            .inner
            .directory
            .route(payer)
            .map_err(|e| e.to_string())?
            .clone();
        if cfg.id == "*" || cfg.id.is_empty() {
            cfg.id = payer.to_owned();
        }
        Ok(cfg)
    }

    fn transport(&self, cfg: &PayerConfig) -> Arc<dyn Transport> {
        let mut map = self
            .inner
            .transports
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.entry(cfg.id.clone())
            .or_insert_with(|| (self.inner.factory)(cfg))
            .clone()
    }

    fn admit(&self, payer: &str, retry: &RetryPolicy, now: i64) -> Admit {
        let mut map = self
            .inner
            .breakers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let b = map.entry(payer.to_owned()).or_default();
        match b.open_until {
            None => Admit::Send,
            Some(until) if now < until => Admit::Wait(
                until,
                format!(
                    "circuit open for payer {payer} after {} consecutive failures, until {}",
                    b.failures,
                    crate::tracking::iso(until)
                ),
            ),
            Some(_) if b.trial => Admit::Wait(
                now.saturating_add(retry.initial_backoff_ms.max(1) as i64),
                format!("circuit half open for payer {payer}: a trial send is under way"),
            ),
            Some(_) => {
                b.trial = true;
                Admit::Trial
            }
        }
    }

    /// Records a send's outcome on the payer's breaker: `Some(true)` reached the payer,
    /// `Some(false)` did not (or may not have), `None` says nothing about the payer.
    fn settle(&self, payer: &str, retry: &RetryPolicy, now: i64, reached: Option<bool>) {
        let mut map = self
            .inner
            .breakers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let b = map.entry(payer.to_owned()).or_default();
        let was_trial = std::mem::take(&mut b.trial);
        match reached {
            Some(true) => *b = Breaker::default(),
            Some(false) => {
                b.failures = b.failures.saturating_add(1);
                if was_trial || b.failures >= retry.circuit_failures.max(1) {
                    b.open_until = Some(now.saturating_add(retry.circuit_open_ms as i64));
                    tracing::warn!(payer, failures = b.failures, "outbox: circuit opened");
                }
            }
            None => {}
        }
    }

    /// Processes one claimed message; returns what became of it.
    pub async fn process(&self, m: OutboxRow) -> Result<Outcome> {
        let outcome = self.process_inner(&m).await;
        let outcome = match outcome {
            Err(TrackingError::Store(StoreError::Conflict(e)))
                if e.contains("no longer leased") =>
            {
                tracing::warn!(outbox = m.id, payer = %m.payer, "outbox: lease lost, result not written");
                Ok(Outcome::LostLease)
            }
            other => other,
        };
        if let Ok(o) = &outcome {
            tracing::info!(outbox = m.id, payer = %m.payer, operation = %m.operation, outcome = ?o, "outbox message processed");
        }
        outcome
    }

    async fn process_inner(&self, m: &OutboxRow) -> Result<Outcome> {
        let now = self.now();
        let t = self.tracker(now);
        let cfg = match self.route(&m.payer) {
            Ok(c) => c,
            Err(e) => {
                t.outbox_dead(m, &e).await?;
                return Ok(Outcome::Dead);
            }
        };
        let retry = cfg.retry.clone();
        match t.outbox_settle_stale(m).await? {
            Some("answered") => return Ok(Outcome::Answered),
            Some(_) => return Ok(Outcome::Dead),
            None => {}
        }
        if m.attempts >= i64::from(retry.max_attempts.max(1)) {
            let why = format!(
                "{} attempts made; the last: {}",
                m.attempts,
                m.last_error.as_deref().unwrap_or("outcome unknown")
            );
            t.outbox_dead(m, &why).await?;
            return Ok(Outcome::Dead);
        }
        if m.retransmit
            && let Some(last) = m.last_attempt_at
        {
            let floor = last.saturating_add(retry.retransmit_min_ms as i64);
            if now < floor {
                t.outbox_defer(
                    m,
                    floor,
                    &format!(
                        "a retransmit waits {} ms after the last attempt (until {})",
                        retry.retransmit_min_ms,
                        crate::tracking::iso(floor)
                    ),
                )
                .await?;
                return Ok(Outcome::Deferred);
            }
        }
        let trial = match self.admit(&m.payer, &retry, now) {
            Admit::Send => false,
            Admit::Trial => true,
            Admit::Wait(until, why) => {
                t.outbox_defer(m, until, &why).await?;
                return Ok(Outcome::Deferred);
            }
        };
        let result = self.attempt(m, &cfg, trial).await;
        if result.is_err() && trial {
            // A trial that never happened (our own failure) must not hold the circuit shut.
            self.settle(&m.payer, &retry, now, None);
        }
        result
    }

    async fn attempt(&self, m: &OutboxRow, cfg: &PayerConfig, trial: bool) -> Result<Outcome> {
        let retry = &cfg.retry;
        let now = self.now();
        let t = self.tracker(now);
        let Some(body) = self.inner.store.outbound_raw(m.id).await? else {
            t.outbox_dead(m, "the outbound message's bytes are missing")
                .await?;
            return Ok(Outcome::Dead);
        };
        let hold = (self.inner.options.lease_ms)
            .max(cfg.timeout_ms.saturating_add(cfg.connect_timeout_ms))
            .min(i64::MAX as u64) as i64;
        // Committed before the first byte: a crash from here on means "outcome unknown".
        let m = t
            .outbox_begin(
                m,
                now.saturating_add(hold),
                now.saturating_add(retry.retransmit_min_ms as i64),
            )
            .await?;
        let operation = if m.operation == "inquire" {
            Operation::Inquire
        } else {
            Operation::Submit
        };
        let transport = self.transport(cfg);
        let started = Instant::now();
        let sent = transport
            .send(Outgoing {
                payer: cfg,
                operation,
                payload_id: &m.payload_id,
                body: &body,
            })
            .await;
        let now = self.now();
        let t = self.tracker(now);
        tracing::info!(
            outbox = m.id,
            payer = %m.payer,
            attempt = m.attempts,
            retransmit = m.retransmit,
            trial,
            size = body.len(),
            ms = started.elapsed().as_millis() as u64,
            result = match &sent {
                Ok(Delivery::Answered(_)) => "answered",
                Ok(Delivery::Accepted) => "accepted",
                Err(SendError::NotDelivered { .. }) => "not_delivered",
                Err(SendError::Unknown { .. }) => "unknown",
                Err(SendError::Refused { .. }) => "refused",
                Err(SendError::Config { .. }) => "config",
            },
            "outbox send"
        );
        let max = i64::from(retry.max_attempts.max(1));
        let source = format!("outbox {} payer {}", m.id, m.payer);
        match sent {
            Ok(Delivery::Answered(a)) => {
                self.settle(&m.payer, retry, now, Some(true));
                let report = match t.ingest(&a.body, &source, &mut |_, _| {}).await {
                    Ok(r) => r,
                    Err(e) => {
                        // Not stored: ask again (same bytes) rather than lose the answer.
                        let why = format!("the answer could not be stored: {e}");
                        let next = now.saturating_add(ms(retry.backoff(m.attempts as u32, true)));
                        t.outbox_reschedule(&m, next, &why, true).await?;
                        return Err(e);
                    }
                };
                // An answer that is about another request (wrong trace or control numbers)
                // does not answer this one: kept as received, and this one is sent again.
                let ours = |i: &crate::tracking::ingest::ItemOutcome| {
                    i.request_id.is_some() && i.request_id == m.request_id
                };
                if m.request_id.is_some()
                    && !report.already_ingested
                    && !report.items.is_empty()
                    && !report.items.iter().any(ours)
                {
                    let outcomes: Vec<&str> =
                        report.items.iter().map(|i| i.outcome.as_str()).collect();
                    let why = format!(
                        "the payer's answer (inbound message {}) does not match this request: {}",
                        report.message_id,
                        outcomes.join(", ")
                    );
                    if m.attempts >= max {
                        t.outbox_dead(&m, &why).await?;
                        return Ok(Outcome::Dead);
                    }
                    let next = now.saturating_add(ms(retry.backoff(m.attempts as u32, true)));
                    t.outbox_reschedule(&m, next, &why, true).await?;
                    return Ok(Outcome::Rescheduled);
                }
                t.outbox_answered(&m, report.message_id, &a.detail).await?;
                Ok(Outcome::Answered)
            }
            Ok(Delivery::Accepted) => {
                self.settle(&m.payer, retry, now, Some(true));
                t.outbox_delivered(&m).await?;
                Ok(Outcome::Delivered)
            }
            Err(SendError::NotDelivered {
                reason,
                retry_after,
            }) => {
                self.settle(&m.payer, retry, now, Some(false));
                if m.attempts >= max {
                    t.outbox_dead(
                        &m,
                        &format!("not delivered after {} attempts: {reason}", m.attempts),
                    )
                    .await?;
                    return Ok(Outcome::Dead);
                }
                let wait = retry_after.unwrap_or_else(|| retry.backoff(m.attempts as u32, false));
                // An earlier attempt may have reached the payer: still a retransmit then.
                t.outbox_reschedule(
                    &m,
                    now.saturating_add(ms(wait)),
                    &format!("not delivered: {reason}"),
                    m.retransmit,
                )
                .await?;
                Ok(Outcome::Rescheduled)
            }
            Err(SendError::Unknown {
                reason,
                retry_after,
            }) => {
                self.settle(&m.payer, retry, now, Some(false));
                if m.attempts >= max {
                    t.outbox_dead(
                        &m,
                        &format!("outcome unknown after {} attempts: {reason}", m.attempts),
                    )
                    .await?;
                    return Ok(Outcome::Dead);
                }
                let wait = retry
                    .backoff(m.attempts as u32, true)
                    .max(retry_after.unwrap_or_default());
                t.outbox_reschedule(
                    &m,
                    now.saturating_add(ms(wait)),
                    &format!("outcome unknown: {reason}"),
                    true,
                )
                .await?;
                Ok(Outcome::Rescheduled)
            }
            Err(SendError::Refused { reason, body }) => {
                self.settle(&m.payer, retry, now, Some(true));
                let inbound = match body {
                    Some(b) if !b.is_empty() => {
                        Some(t.ingest(&b, &source, &mut |_, _| {}).await?.message_id)
                    }
                    _ => None,
                };
                // The ingest may have moved the record: read it again.
                let t = self.tracker(self.now());
                t.outbox_refused(&m, &reason, inbound).await?;
                Ok(Outcome::Refused)
            }
            Err(SendError::Config { reason }) => {
                self.settle(&m.payer, retry, now, None);
                t.outbox_dead(&m, &format!("configuration: {reason}"))
                    .await?;
                Ok(Outcome::Dead)
            }
        }
    }

    /// Reads the complete answer files in each x12-batch payer's `inbound_dir` (not hidden,
    /// not `*.tmp` / `*.part`: a writer renames a file into place when it is whole), stores
    /// and applies each (`Tracker::ingest`), marks the delivered submissions a 278 response in
    /// it answers `answered`, and moves the file to `inbound_dir/processed/`. A file that cannot be read
    /// or stored stays for the next round. Returns how many files were taken in.
    pub async fn pick_up_batches(&self) -> Result<usize> {
        let mut n = 0;
        let payers: Vec<PayerConfig> = self
            .inner
            .directory
            .iter()
            .filter(|p| p.format == Format::X12Batch)
            .cloned()
            .collect();
        for p in payers {
            let Some(dir) = p.inbound_dir.clone() else {
                continue;
            };
            if !tokio::fs::try_exists(&dir).await.unwrap_or(false) {
                continue; // nothing has arrived yet
            }
            let listed = {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || crate::transport::batch::pick_up(&dir)).await
            };
            let files = match listed {
                Ok(Ok(f)) => f,
                Ok(Err(e)) => return Err(TrackingError::Invalid(e.to_string())),
                Err(e) => return Err(TrackingError::Invalid(format!("batch pick-up: {e}"))),
            };
            for file in files {
                let name = file.name.clone();
                let data = match tokio::fs::read(&file.path).await {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(payer = %p.id, file = %name, error = %e, "batch answer unreadable");
                        continue;
                    }
                };
                let t = self.tracker(self.now());
                let report = t
                    .ingest(&data, &format!("batch {} {name}", p.id), &mut |_, _| {})
                    .await?;
                let mut answered: Vec<String> = report
                    .items
                    .iter()
                    .filter(|i| i.kind == "278_response")
                    .filter_map(|i| i.request_id.clone())
                    .collect();
                answered.sort();
                answered.dedup();
                for rid in answered {
                    t.outbox_answered_later(&rid, report.message_id).await?;
                }
                let moved = {
                    let dir = dir.clone();
                    tokio::task::spawn_blocking(move || {
                        crate::transport::batch::mark_processed(&dir, &file)
                    })
                    .await
                };
                match moved {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(TrackingError::Invalid(e.to_string())),
                    Err(e) => return Err(TrackingError::Invalid(format!("batch pick-up: {e}"))),
                }
                tracing::info!(payer = %p.id, size = data.len(), inbound = report.message_id, "batch answer taken in");
                n += 1;
            }
        }
        Ok(n)
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}
