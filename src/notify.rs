//! Durable delivery of outbound notifications: REST webhooks (signed POSTs on every status
//! change of a record) and, through the same queue, other target kinds registered by other
//! parts (the FHIR Subscriptions' rest-hook notifications).
//!
//! Two loops, both restartable at any point:
//! - the [`Dispatcher`] tails the append-only `events` log from a durable cursor. For each
//!   status change (an event with `to_status`) it asks every registered target [`Kind`] for its
//!   targets in the record's tenant and for the body to send each, and commits the deliveries
//!   together with the cursor's advance in one transaction: a crash before the commit repeats
//!   the round, a crash after it resumes after it, and `UNIQUE (target, event)` keeps an event
//!   to one delivery per target whatever happens. On PostgreSQL a sequence id can commit after
//!   a later one; the cursor remembers such gaps and looks at them again until they appear (or
//!   a grace period says the transaction rolled back).
//! - the [`DeliveryWorker`] claims due deliveries under a lease (PostgreSQL
//!   `FOR UPDATE SKIP LOCKED`, so several processes share the queue; SQLite: one worker), POSTs
//!   the stored body with a timeout (2xx = delivered; anything else is retried after an
//!   exponential backoff with jitter, up to `max_attempts`, then `dead` with the reason), and
//!   writes the result only while its lease is its own. Each target keeps its count of
//!   consecutive failures.
//!
//! A webhook POST carries `X-Priorauth-Delivery` (the delivery id, the same on every retry:
//! receivers dedupe by it), `X-Priorauth-Event` (`status.<to_status>`) and
//! `X-Priorauth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. Its
//! body is `{event, event_id, record_id, tenant, from_status, to_status, at, reason}`: never
//! patient data. Logs carry delivery ids, target kinds and ids, states, HTTP statuses and
//! durations, never a URL (it may hold a token) or a body.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, Semaphore, watch};

use crate::store::{
    DeliveryEnd, DeliveryRow, EventRow, NewDelivery, NewWebhook, NotifyCursor, Store, StoreError,
    WebhookRow,
};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The time the loops use, Unix milliseconds (the system clock, or a test's).
pub type Now = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The target kind of REST webhooks.
pub const WEBHOOK: &str = "webhook";
/// The target kind of FHIR Subscriptions (registered by the FHIR endpoint).
pub const FHIR_SUBSCRIPTION: &str = "fhir-subscription";
/// The tenant of every record until records carry their own.
pub const DEFAULT_TENANT: &str = "default";
/// The signature header of webhook POSTs.
pub const SIGNATURE_HEADER: &str = "x-priorauth-signature";
pub const EVENT_HEADER: &str = "x-priorauth-event";
pub const DELIVERY_HEADER: &str = "x-priorauth-delivery";

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
}

pub type Result<T> = std::result::Result<T, NotifyError>;

// ---- targets and kinds ------------------------------------------------------------------

/// Whom a delivery goes to: a target kind and the target's id there, in a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: String,
    pub id: String,
    pub tenant: String,
}

/// Where and how to POST, read at each attempt (a changed URL applies to retries; a deleted
/// or deactivated target is `None`, and its deliveries end `dead`).
#[derive(Clone)]
pub struct Endpoint {
    pub url: String,
    /// Signs the POST (`X-Priorauth-Signature`) when set.
    pub secret: Option<String>,
    /// Extra headers (a subscription's `channel.header`).
    pub headers: Vec<(String, String)>,
}

/// Builds the body of one notification to one target for one event: `(content type, body)`,
/// or `None` when this target does not want this event after all.
pub type Builder = Arc<
    dyn Fn(Store, Target, EventRow) -> BoxFuture<'static, Result<Option<(String, Vec<u8>)>>>
        + Send
        + Sync,
>;
/// The targets of a kind in a tenant that may want an event.
pub type TargetFinder =
    Arc<dyn Fn(Store, String, EventRow) -> BoxFuture<'static, Result<Vec<Target>>> + Send + Sync>;
/// A target's endpoint now (None: gone).
pub type Resolver =
    Arc<dyn Fn(Store, Target) -> BoxFuture<'static, Result<Option<Endpoint>>> + Send + Sync>;

/// One target kind: how to find its targets, build its bodies and reach it.
#[derive(Clone)]
pub struct Kind {
    pub targets: TargetFinder,
    pub build: Builder,
    pub resolve: Resolver,
}

/// The target kinds known to this process (webhooks always). Shared: a kind registered after
/// the loops started is used from their next round.
#[derive(Clone)]
pub struct Registry {
    kinds: Arc<RwLock<BTreeMap<String, Kind>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// A registry with the webhook kind.
    pub fn new() -> Registry {
        let r = Registry {
            kinds: Arc::new(RwLock::new(BTreeMap::new())),
        };
        r.register(WEBHOOK, webhook_kind());
        r
    }

    pub fn register(&self, kind: &str, hooks: Kind) {
        self.kinds
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kind.to_owned(), hooks);
    }

    pub fn get(&self, kind: &str) -> Option<Kind> {
        self.kinds
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kind)
            .cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.kinds
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    fn all(&self) -> Vec<(String, Kind)> {
        self.kinds
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The tenant of the record an event is about (an event about no record, or a record gone,
/// belongs to no tenant's targets: [`DEFAULT_TENANT`] is never assumed for another tenant's).
pub async fn record_tenant(store: &Store, event: &EventRow) -> Result<String> {
    let Some(id) = event.request_id.as_deref() else {
        return Ok(DEFAULT_TENANT.to_owned());
    };
    Ok(store
        .request(id)
        .await?
        .map(|r| r.tenant)
        .unwrap_or_else(|| DEFAULT_TENANT.to_owned()))
}

/// The name a status change is announced under.
pub fn event_name(to_status: &str) -> String {
    format!("status.{to_status}")
}

/// The webhook body for an event: ids, statuses, time and reason; never patient data.
pub fn webhook_body(event: &EventRow, tenant: &str) -> Vec<u8> {
    let at = chrono::DateTime::from_timestamp_millis(event.at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let body = json!({
        "event": event.to_status.as_deref().map(event_name),
        "event_id": event.id,
        "record_id": event.request_id,
        "tenant": tenant,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "at": at,
        "reason": event.reason,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

fn webhook_kind() -> Kind {
    Kind {
        targets: Arc::new(|store: Store, tenant: String, event: EventRow| {
            Box::pin(async move {
                let Some(status) = event.to_status.clone() else {
                    return Ok(vec![]);
                };
                Ok(store
                    .webhooks(&tenant, false)
                    .await?
                    .into_iter()
                    .filter(|w| w.wants(&status))
                    .map(|w| Target {
                        kind: WEBHOOK.into(),
                        id: w.id,
                        tenant: w.tenant,
                    })
                    .collect())
            })
        }),
        build: Arc::new(|_store: Store, target: Target, event: EventRow| {
            Box::pin(async move {
                Ok(Some((
                    "application/json".to_owned(),
                    webhook_body(&event, &target.tenant),
                )))
            })
        }),
        resolve: Arc::new(|store: Store, target: Target| {
            Box::pin(async move {
                Ok(store
                    .webhook(&target.id)
                    .await?
                    .filter(|w| w.active && w.tenant == target.tenant)
                    .map(|w| Endpoint {
                        url: w.url,
                        secret: Some(w.secret),
                        headers: vec![],
                    }))
            })
        }),
    }
}

// ---- signatures -------------------------------------------------------------------------

/// HMAC-SHA256 (RFC 2104) over sha2.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for i in 0..BLOCK {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let mut inner = Sha256::new();
    inner.update(ipad);
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(opad);
    outer.update(inner);
    let mut out = [0u8; 32];
    out.copy_from_slice(&outer.finalize());
    out
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The `X-Priorauth-Signature` value for `body` sent at `t` (Unix seconds): the key is the
/// secret's text as given at creation.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(body);
    format!("t={t},v1={}", hex(&hmac_sha256(secret.as_bytes(), &msg)))
}

/// Checks a signature header as a receiver would: well formed, `t` within `tolerance_s` of
/// `now_s`, and one `v1` matching (compared in constant time).
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now_s: i64,
    tolerance_s: i64,
) -> std::result::Result<(), String> {
    let mut t = None;
    let mut sigs = vec![];
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => {
                t = Some(
                    v.parse::<i64>()
                        .map_err(|_| format!("signature: t is not a number: {v:?}"))?,
                )
            }
            Some(("v1", v)) => sigs.push(v.to_owned()),
            _ => {}
        }
    }
    let t = t.ok_or("signature: no t=")?;
    if sigs.is_empty() {
        return Err("signature: no v1=".into());
    }
    if (now_s - t).abs() > tolerance_s {
        return Err(format!(
            "signature: timestamp {t} is more than {tolerance_s} s from now"
        ));
    }
    let expected = sign(secret, t, body);
    let expected = expected.rsplit_once("v1=").map(|(_, v)| v).unwrap_or("");
    let ok = sigs.iter().any(|s| {
        s.len() == expected.len()
            && s.bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if ok {
        Ok(())
    } else {
        Err("signature: no v1 matches the body".into())
    }
}

/// A new webhook secret: 256 bits from the OS generator (two v4 UUIDs' random bits), hex.
pub fn new_secret() -> String {
    format!(
        "whsec_{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

// ---- webhooks (the REST side) -----------------------------------------------------------

/// The statuses a webhook may ask for (or `*`).
pub fn known_statuses() -> Vec<&'static str> {
    crate::tracking::lifecycle::ALL
        .iter()
        .map(|s| s.as_str())
        .collect()
}

/// Checks a webhook URL: absolute http(s) with a host, no credentials in it.
pub fn check_url(url: &str) -> std::result::Result<String, String> {
    let u = reqwest::Url::parse(url.trim()).map_err(|e| format!("not an absolute URL: {e}"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("scheme {:?}: use http or https", u.scheme()));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("the URL carries credentials: the gateway signs its POSTs instead".into());
    }
    Ok(u.to_string())
}

/// Creates a webhook of `tenant` after checking the URL and the event filter; returns the row
/// with its secret (shown to the caller once).
pub async fn create_webhook(
    store: &Store,
    tenant: &str,
    url: &str,
    events: &[String],
    created_by: &str,
    at: i64,
) -> Result<WebhookRow> {
    let url = check_url(url).map_err(|e| NotifyError::Invalid(format!("url: {e}")))?;
    if events.is_empty() {
        return Err(NotifyError::Invalid(
            "events: list at least one status, or \"*\" for every status change".into(),
        ));
    }
    let known = known_statuses();
    let mut list: Vec<String> = vec![];
    for (i, e) in events.iter().enumerate() {
        let e = e.trim();
        if e != "*" && !known.contains(&e) {
            return Err(NotifyError::Invalid(format!(
                "events[{i}]: unknown status {e:?}: one of *, {}",
                known.join(", ")
            )));
        }
        if !list.iter().any(|x| x == e) {
            list.push(e.to_owned());
        }
    }
    if list.iter().any(|e| e == "*") {
        list = vec!["*".into()];
    }
    let new = NewWebhook {
        id: format!("wh_{}", uuid::Uuid::new_v4().simple()),
        tenant: tenant.to_owned(),
        url,
        secret: new_secret(),
        events: list,
        created_by: created_by.to_owned(),
        at,
    };
    store.webhook_insert(&new).await?;
    Ok(WebhookRow {
        id: new.id,
        tenant: new.tenant,
        url: new.url,
        secret: new.secret,
        events: new.events,
        active: true,
        created_by: new.created_by,
        created_at: at,
        deleted_at: None,
        consecutive_failures: 0,
    })
}

/// Queues a one-off delivery (a subscription handshake, say) outside the events log; returns
/// its id. Poke the worker's notifier afterwards to send it at once.
pub async fn enqueue_raw(
    store: &Store,
    kind: &str,
    target: &Target,
    content_type: &str,
    body: Vec<u8>,
    at: i64,
) -> Result<String> {
    if kind != target.kind {
        return Err(NotifyError::Invalid(format!(
            "enqueue_raw: kind {kind:?} but the target is of kind {:?}",
            target.kind
        )));
    }
    let id = uuid::Uuid::new_v4().to_string();
    store
        .delivery_insert(&[NewDelivery {
            id: id.clone(),
            target_kind: kind.to_owned(),
            target_id: target.id.clone(),
            tenant: target.tenant.clone(),
            event_id: None,
            request_id: None,
            event: None,
            state: "queued".into(),
            last_error: None,
            content_type: content_type.to_owned(),
            body,
            at,
        }])
        .await?;
    Ok(id)
}

// ---- the dispatcher ---------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct DispatcherOptions {
    /// The cursor's name (one per dispatcher role; processes share it).
    pub cursor: String,
    /// Events read per round.
    pub batch: usize,
    /// How long an event id missing below the cursor is looked for again.
    pub gap_grace_ms: i64,
    pub poll_ms: u64,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        DispatcherOptions {
            cursor: "dispatcher".into(),
            batch: 200,
            gap_grace_ms: 120_000,
            poll_ms: 500,
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    /// Events read (new ones and gaps filled).
    pub events: usize,
    /// Deliveries queued (or dead at once when their body could not be built).
    pub deliveries: usize,
    /// Another dispatcher moved the cursor first: nothing was written.
    pub raced: bool,
}

const MAX_GAPS: usize = 10_000;

/// Tails the events log and queues deliveries. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    registry: Registry,
    options: DispatcherOptions,
    now: Now,
    /// Poked after a round queued something (the delivery worker's notifier).
    wake: Option<Arc<Notify>>,
}

impl Dispatcher {
    pub fn new(store: Store, registry: Registry, options: DispatcherOptions) -> Dispatcher {
        Dispatcher {
            store,
            registry,
            options,
            now: Arc::new(crate::store::now_ms),
            wake: None,
        }
    }

    pub fn with_clock(mut self, now: Now) -> Dispatcher {
        self.now = now;
        self
    }

    /// Pokes `wake` after each round that queued deliveries.
    pub fn waking(mut self, wake: Arc<Notify>) -> Dispatcher {
        self.wake = Some(wake);
        self
    }

    /// One round: reads the events after the cursor (and its gaps), queues their deliveries
    /// and moves the cursor, in one transaction.
    pub async fn run_once(&self) -> Result<DispatchReport> {
        let now = (self.now)();
        let store = &self.store;
        let old = store.notify_cursor(&self.options.cursor).await?;
        let (new_events, filled) = store.events_after(&old, self.options.batch).await?;
        let mut next = NotifyCursor {
            position: old.position,
            gaps: vec![],
        };
        for (id, seen) in &old.gaps {
            if filled.iter().any(|e| e.id == *id) {
                continue;
            }
            if now.saturating_sub(*seen) >= self.options.gap_grace_ms {
                tracing::warn!(
                    event = id,
                    "notify: event id never appeared (its transaction rolled back): given up"
                );
                continue;
            }
            next.gaps.push((*id, *seen));
        }
        for e in &new_events {
            for missing in next.position.saturating_add(1)..e.id {
                if next.gaps.len() >= MAX_GAPS {
                    tracing::warn!(event = missing, "notify: too many event id gaps: skipped");
                    continue;
                }
                next.gaps.push((missing, now));
            }
            next.position = e.id;
        }
        if next == old {
            return Ok(DispatchReport::default());
        }
        let mut events: Vec<&EventRow> = filled.iter().chain(new_events.iter()).collect();
        events.sort_by_key(|e| e.id);
        let kinds = self.registry.all();
        // Webhook targets depend on the tenant and the status only: asked once per round.
        let mut webhook_targets: std::collections::HashMap<(String, String), Vec<Target>> =
            std::collections::HashMap::new();
        let mut deliveries = vec![];
        for e in &events {
            let (Some(to), Some(request_id)) = (&e.to_status, &e.request_id) else {
                continue;
            };
            let tenant = record_tenant(store, e).await?;
            for (name, kind) in &kinds {
                let targets = if name == WEBHOOK {
                    let key = (tenant.clone(), to.clone());
                    match webhook_targets.get(&key) {
                        Some(t) => t.clone(),
                        None => {
                            let t =
                                (kind.targets)(store.clone(), tenant.clone(), (*e).clone()).await?;
                            webhook_targets.insert(key, t.clone());
                            t
                        }
                    }
                } else {
                    (kind.targets)(store.clone(), tenant.clone(), (*e).clone()).await?
                };
                for t in targets {
                    let mut d = NewDelivery {
                        id: uuid::Uuid::new_v4().to_string(),
                        target_kind: name.clone(),
                        target_id: t.id.clone(),
                        tenant: t.tenant.clone(),
                        event_id: Some(e.id),
                        request_id: Some(request_id.clone()),
                        event: Some(event_name(to)),
                        state: "queued".into(),
                        last_error: None,
                        content_type: String::new(),
                        body: vec![],
                        at: now,
                    };
                    match (kind.build)(store.clone(), t.clone(), (*e).clone()).await {
                        Ok(Some((ct, body))) => {
                            d.content_type = ct;
                            d.body = body;
                        }
                        Ok(None) => continue,
                        Err(NotifyError::Store(err)) => return Err(NotifyError::Store(err)),
                        Err(err) => {
                            tracing::warn!(
                                kind = %name,
                                target = %t.id,
                                event = e.id,
                                error = %err,
                                "notify: notification could not be built: dead"
                            );
                            d.state = "dead".into();
                            d.last_error =
                                Some(format!("the notification could not be built: {err}"));
                        }
                    }
                    deliveries.push(d);
                }
            }
        }
        let moved = store
            .notify_advance(&self.options.cursor, &old, &next, &deliveries, now)
            .await?;
        if !moved {
            return Ok(DispatchReport {
                raced: true,
                ..Default::default()
            });
        }
        if !deliveries.is_empty() {
            tracing::info!(
                events = events.len(),
                deliveries = deliveries.len(),
                position = next.position,
                "notify: deliveries queued"
            );
            if let Some(w) = &self.wake {
                w.notify_one();
            }
        }
        Ok(DispatchReport {
            events: events.len(),
            deliveries: deliveries.len(),
            raced: false,
        })
    }

    /// Runs rounds until `shutdown` turns true: at once while a round reads a full batch,
    /// else every `poll_ms`.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let full = match self.run_once().await {
                Ok(r) => r.events >= self.options.batch.max(1),
                Err(e) => {
                    tracing::warn!(error = %e, "notify: dispatch round failed");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(self.options.poll_ms.max(1))) => {}
                r = shutdown.changed() => {
                    if r.is_err() {
                        break;
                    }
                }
            }
        }
    }
}

// ---- the delivery worker ----------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Who holds the leases: unique per worker.
    pub owner: String,
    pub poll_ms: u64,
    pub batch: usize,
    /// How long a claim holds a delivery (at least the timeout plus 5 s).
    pub lease_ms: u64,
    /// The whole POST, connect included.
    pub timeout_ms: u64,
    pub concurrency: usize,
    /// Attempts before a delivery is dead.
    pub max_attempts: i64,
    pub initial_backoff_ms: i64,
    pub max_backoff_ms: i64,
}

impl DeliveryOptions {
    pub fn new(owner: impl Into<String>) -> DeliveryOptions {
        DeliveryOptions {
            owner: owner.into(),
            poll_ms: 500,
            batch: 16,
            lease_ms: 30_000,
            timeout_ms: 10_000,
            concurrency: 4,
            max_attempts: 10,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 3_600_000,
        }
    }

    /// The wait before attempt `attempt + 1` after `attempt` failed: `initial * 2^(attempt-1)`
    /// capped at the maximum, with "equal jitter" (half fixed, half random), so receivers
    /// that fail together are not retried together.
    pub fn backoff(&self, attempt: i64) -> i64 {
        let exp = (attempt.max(1) - 1).min(40) as u32;
        let base = self
            .initial_backoff_ms
            .max(1)
            .saturating_mul(1i64 << exp.min(40))
            .min(self.max_backoff_ms.max(1));
        let half = base / 2;
        half + fastrand::i64(0..=base - half)
    }
}

/// What became of one claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    Retry,
    Dead,
    /// Another worker took it over; nothing written.
    LostLease,
}

struct WorkerInner {
    store: Store,
    registry: Registry,
    options: DeliveryOptions,
    http: reqwest::Client,
    notify: Arc<Notify>,
    now: Now,
}

/// Sends queued deliveries. Cheap to clone.
#[derive(Clone)]
pub struct DeliveryWorker {
    inner: Arc<WorkerInner>,
}

impl DeliveryWorker {
    pub fn new(store: Store, registry: Registry, options: DeliveryOptions) -> DeliveryWorker {
        let http = reqwest::Client::builder()
            .tls_backend_rustls()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_millis(options.timeout_ms.clamp(1, 10_000)))
            .user_agent(concat!("priorauth-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "notify: HTTP client could not be built; using defaults");
                reqwest::Client::new()
            });
        DeliveryWorker {
            inner: Arc::new(WorkerInner {
                store,
                registry,
                options,
                http,
                notify: Arc::new(Notify::new()),
                now: Arc::new(crate::store::now_ms),
            }),
        }
    }

    /// The same worker reading time from `now`.
    pub fn with_clock(self, now: Now) -> DeliveryWorker {
        let i = match Arc::try_unwrap(self.inner) {
            Ok(i) => i,
            Err(shared) => WorkerInner {
                store: shared.store.clone(),
                registry: shared.registry.clone(),
                options: shared.options.clone(),
                http: shared.http.clone(),
                notify: shared.notify.clone(),
                now: shared.now.clone(),
            },
        };
        DeliveryWorker {
            inner: Arc::new(WorkerInner { now, ..i }),
        }
    }

    /// Poke it after an enqueue: a sleeping worker claims at once.
    pub fn notifier(&self) -> Arc<Notify> {
        self.inner.notify.clone()
    }

    pub fn options(&self) -> &DeliveryOptions {
        &self.inner.options
    }

    fn now(&self) -> i64 {
        (self.inner.now)()
    }

    /// Claims what is due (of the kinds this process knows) and sends it, up to `concurrency`
    /// at once; returns how many were claimed.
    pub async fn run_once(&self) -> Result<usize> {
        let o = &self.inner.options;
        let lease = o.lease_ms.max(o.timeout_ms.saturating_add(5_000));
        let kinds = self.inner.registry.names();
        let claimed = self
            .inner
            .store
            .claim_deliveries(
                &o.owner,
                self.now(),
                lease.min(i64::MAX as u64) as i64,
                o.batch,
                &kinds,
            )
            .await?;
        let n = claimed.len();
        let sem = Arc::new(Semaphore::new(o.concurrency.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for d in claimed {
            let permit = sem
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| NotifyError::Invalid(format!("delivery worker: {e}")))?;
            let me = self.clone();
            set.spawn(async move {
                let _permit = permit;
                let id = d.id.clone();
                (id, me.process(d).await)
            });
        }
        let mut first_err = None;
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((_, Ok(_))) => {}
                Ok((id, Err(e))) => {
                    tracing::warn!(delivery = %id, error = %e, "notify: delivery not processed");
                    first_err.get_or_insert(e);
                }
                Err(e) => {
                    first_err
                        .get_or_insert(NotifyError::Invalid(format!("delivery task failed: {e}")));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Runs until `shutdown` turns true; deliveries being sent then are finished.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let o = self.inner.options.clone();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let n = match self.run_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "notify: delivery round failed");
                    0
                }
            };
            if n >= o.batch.max(1) {
                continue;
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
    }

    /// Sends one claimed delivery and records the outcome under its lease.
    pub async fn process(&self, d: DeliveryRow) -> Result<DeliveryOutcome> {
        let o = &self.inner.options;
        let store = &self.inner.store;
        let target = Target {
            kind: d.target_kind.clone(),
            id: d.target_id.clone(),
            tenant: d.tenant.clone(),
        };
        let endpoint = match self.inner.registry.get(&d.target_kind) {
            Some(k) => (k.resolve)(store.clone(), target).await?,
            None => None,
        };
        let end = match endpoint {
            None => DeliveryEnd::Dead {
                error: format!(
                    "the {} target {} is gone (deleted or inactive)",
                    d.target_kind, d.target_id
                ),
                status: None,
            },
            Some(ep) => {
                let started = Instant::now();
                let result = self.post(&d, &ep).await;
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                match result {
                    Ok(status) => {
                        tracing::info!(
                            delivery = %d.id,
                            kind = %d.target_kind,
                            target = %d.target_id,
                            status,
                            attempt = d.attempts,
                            ms,
                            "notify: delivered"
                        );
                        DeliveryEnd::Delivered {
                            status: status as i64,
                        }
                    }
                    Err(f) => {
                        tracing::info!(
                            delivery = %d.id,
                            kind = %d.target_kind,
                            target = %d.target_id,
                            status = f.status,
                            attempt = d.attempts,
                            ms,
                            error = %f.error,
                            "notify: attempt failed"
                        );
                        let status = f.status.map(i64::from);
                        if f.permanent {
                            DeliveryEnd::Dead {
                                error: f.error,
                                status,
                            }
                        } else if d.attempts >= o.max_attempts {
                            DeliveryEnd::Dead {
                                error: format!(
                                    "{} (attempt {} of {}: no attempts left)",
                                    f.error, d.attempts, o.max_attempts
                                ),
                                status,
                            }
                        } else {
                            let wait = o.backoff(d.attempts).max(f.retry_after_ms.unwrap_or(0));
                            DeliveryEnd::Retry {
                                error: f.error,
                                status,
                                next_at: self.now().saturating_add(wait),
                            }
                        }
                    }
                }
            }
        };
        let outcome = match &end {
            DeliveryEnd::Delivered { .. } => DeliveryOutcome::Delivered,
            DeliveryEnd::Retry { .. } => DeliveryOutcome::Retry,
            DeliveryEnd::Dead { error, .. } => {
                tracing::warn!(
                    delivery = %d.id,
                    kind = %d.target_kind,
                    target = %d.target_id,
                    attempts = d.attempts,
                    reason = %error,
                    "notify: delivery dead"
                );
                DeliveryOutcome::Dead
            }
        };
        if store
            .delivery_finish(&d, &o.owner, &end, self.now())
            .await?
        {
            Ok(outcome)
        } else {
            tracing::warn!(delivery = %d.id, "notify: lease lost; result not written");
            Ok(DeliveryOutcome::LostLease)
        }
    }

    async fn post(&self, d: &DeliveryRow, ep: &Endpoint) -> std::result::Result<u16, Failure> {
        let o = &self.inner.options;
        let mut req = self
            .inner
            .http
            .post(&ep.url)
            .timeout(Duration::from_millis(o.timeout_ms.max(1)))
            .header(reqwest::header::CONTENT_TYPE, &d.content_type)
            .header(DELIVERY_HEADER, &d.id);
        if let Some(ev) = &d.event {
            req = req.header(EVENT_HEADER, ev);
        }
        if let Some(secret) = &ep.secret {
            let t = self.now().div_euclid(1000);
            req = req.header(SIGNATURE_HEADER, sign(secret, t, &d.body));
        }
        for (k, v) in &ep.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.body(d.body.clone()).send().await.map_err(|e| Failure {
            error: e.without_url().to_string(),
            status: None,
            permanent: false,
            retry_after_ms: None,
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(status.as_u16());
        }
        let retry_after_ms = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(|s| s.clamp(0, 86_400) * 1000);
        Err(Failure {
            error: format!("the receiver answered HTTP {status}"),
            status: Some(status.as_u16()),
            // 410 Gone: the receiver says the endpoint is no more.
            permanent: status == reqwest::StatusCode::GONE,
            retry_after_ms,
        })
    }
}

struct Failure {
    error: String,
    status: Option<u16>,
    permanent: bool,
    retry_after_ms: Option<i64>,
}

/// A lease owner name unique to this process.
pub fn default_owner() -> String {
    format!("notify-{}", crate::outbox::default_owner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 4231 test cases 1, 2, 6 and 7 (HMAC-SHA-256).
    #[test]
    fn hmac_matches_rfc4231() {
        let cases: &[(Vec<u8>, Vec<u8>, &str)] = &[
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, msg, want) in cases {
            assert_eq!(hmac_sha256(key, msg).to_vec(), unhex(want));
        }
    }

    #[test]
    fn sign_and_verify() {
        let body = br#"{"event":"status.approved"}"#;
        let h = sign("whsec_x", 1_800_000_000, body);
        assert!(h.starts_with("t=1800000000,v1="));
        assert_eq!(verify("whsec_x", &h, body, 1_800_000_010, 300), Ok(()));
        assert!(verify("whsec_y", &h, body, 1_800_000_010, 300).is_err());
        assert!(verify("whsec_x", &h, b"{}", 1_800_000_010, 300).is_err());
        assert!(verify("whsec_x", &h, body, 1_800_001_000, 300).is_err());
        assert!(verify("whsec_x", "v1=ab", body, 1_800_000_000, 300).is_err());
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut o = DeliveryOptions::new("t");
        o.initial_backoff_ms = 1_000;
        o.max_backoff_ms = 10_000;
        for _ in 0..50 {
            let b1 = o.backoff(1);
            assert!((500..=1_000).contains(&b1), "{b1}");
            let b3 = o.backoff(3);
            assert!((2_000..=4_000).contains(&b3), "{b3}");
            let b9 = o.backoff(60);
            assert!((5_000..=10_000).contains(&b9), "{b9}");
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(check_url("https://hooks.example.org/x?y=1").is_ok());
        assert!(check_url("ftp://x/").is_err());
        assert!(check_url("not a url").is_err());
        assert!(check_url("https://u:p@example.org/").is_err());
    }
}
