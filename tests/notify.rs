//! Notification delivery: the dispatcher over the events log, the delivery worker, webhook
//! signatures, retries, dead letters, restart safety and two workers on PostgreSQL; and a
//! black-box run through `priorauth serve` with its built-in mock payer. The webhook receiver
//! is an axum server in the test on a loopback port. Time for the in-process loops is a clock
//! the tests move by hand, so backoffs and leases are checked without waiting.

mod db;
mod harness;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use priorauth::notify::{
    self, DeliveryOptions, DeliveryOutcome, DeliveryWorker, Dispatcher, DispatcherOptions, Registry,
};
use priorauth::store::{DeliveryEnd, Store};
use priorauth::tracking::{Clock, Tracker, bench};
use serde_json::Value;

const T0: i64 = 1_800_000_000_000;
const WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Hit {
    delivery: String,
    event: String,
    signature: String,
    body: Vec<u8>,
}

/// A webhook receiver: answers `fail_status` to the first `failures` POSTs, then 204.
struct Receiver {
    hits: Mutex<Vec<Hit>>,
    failures: AtomicUsize,
    fail_status: u16,
}

impl Receiver {
    async fn start(failures: usize, fail_status: u16) -> (Arc<Receiver>, String) {
        let r = Arc::new(Receiver {
            hits: Mutex::new(vec![]),
            failures: AtomicUsize::new(failures),
            fail_status,
        });
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, format!("http://{addr}/hook"))
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    r.hits.lock().unwrap().push(Hit {
        delivery: h("x-priorauth-delivery"),
        event: h("x-priorauth-event"),
        signature: h("x-priorauth-signature"),
        body: body.to_vec(),
    });
    let fail = r
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if fail {
        StatusCode::from_u16(r.fail_status).unwrap()
    } else {
        StatusCode::NO_CONTENT
    }
}

struct Env {
    url: String,
    t: Tracker,
    clock: Arc<AtomicI64>,
    registry: Registry,
    run: String,
    n: usize,
}

impl Env {
    async fn new(url: &str) -> Env {
        let mut t = Tracker::open(url, Clock::fixed(T0)).await.unwrap();
        t.policy.approval.clear();
        Env {
            url: url.to_owned(),
            t,
            clock: Arc::new(AtomicI64::new(T0)),
            registry: Registry::new(),
            run: format!("{}", fastrand::u32(..)),
            n: 0,
        }
    }

    fn now(&self) -> Arc<dyn Fn() -> i64 + Send + Sync> {
        let c = self.clock.clone();
        Arc::new(move || c.load(Ordering::SeqCst))
    }

    fn set(&self, ms: i64) {
        self.clock.store(ms, Ordering::SeqCst);
    }

    fn dispatcher(&self, store: &Store, batch: usize) -> Dispatcher {
        Dispatcher::new(
            store.clone(),
            self.registry.clone(),
            DispatcherOptions {
                batch,
                ..Default::default()
            },
        )
        .with_clock(self.now())
    }

    fn worker(&self, store: &Store, owner: &str, max_attempts: i64) -> DeliveryWorker {
        let mut o = DeliveryOptions::new(owner);
        o.max_attempts = max_attempts;
        o.timeout_ms = 5_000;
        o.lease_ms = 30_000;
        DeliveryWorker::new(store.clone(), self.registry.clone(), o).with_clock(self.now())
    }

    /// A draft record, then cancelled: two status changes.
    async fn record_cancelled(&mut self) -> String {
        self.n += 1;
        let req = bench::request(&self.run, self.n).unwrap();
        let id = self.t.create(&req, "dr-synth").await.unwrap();
        self.t
            .cancel(&id, "dr-synth", "no longer needed")
            .await
            .unwrap();
        id
    }

    /// The status-change events of a record, in order.
    async fn changes(&self, id: &str) -> Vec<(i64, String)> {
        self.t
            .store
            .events(id)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| e.to_status.map(|s| (e.id, s)))
            .collect()
    }

    async fn hook(&self, target: &str, events: &[&str]) -> (String, String) {
        let events: Vec<String> = events.iter().map(|s| s.to_string()).collect();
        let w = notify::create_webhook(&self.t.store, "default", target, &events, "admin", T0)
            .await
            .unwrap();
        (w.id, w.secret)
    }
}

macro_rules! on_both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let url = super::db::sqlite_url();
                super::$body(&url).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(url) = super::db::pg_url().await {
                    super::$body(&url).await;
                }
            }
        }
    };
}

fn body_json(h: &Hit) -> Value {
    serde_json::from_slice(&h.body).unwrap()
}

/// One signed POST per status change, each with the event's ids and statuses and no patient
/// data; a webhook filtered to one status gets only that one.
async fn one_signed_post_per_status_change(url: &str) {
    let mut e = Env::new(url).await;
    let (rx, target) = Receiver::start(0, 500).await;
    let (all_id, secret) = e.hook(&target, &["*"]).await;
    let (rx2, target2) = Receiver::start(0, 500).await;
    let (only_id, secret2) = e.hook(&target2, &["cancelled"]).await;
    let id = e.record_cancelled().await;
    let changes = e.changes(&id).await;
    assert!(changes.len() >= 2, "{changes:?}");
    assert_eq!(changes.last().unwrap().1, "cancelled");

    let d = e.dispatcher(&e.t.store, 100);
    let report = d.run_once().await.unwrap();
    assert_eq!(report.deliveries, changes.len() + 1);
    // Nothing new: a second round queues nothing.
    assert_eq!(d.run_once().await.unwrap().deliveries, 0);
    let w = e.worker(&e.t.store, "w1", 5);
    assert_eq!(w.run_once().await.unwrap(), changes.len() + 1);
    assert_eq!(w.run_once().await.unwrap(), 0);

    let mut hits = rx.hits();
    assert_eq!(hits.len(), changes.len());
    hits.sort_by_key(|h| body_json(h)["event_id"].as_i64().unwrap());
    for (h, (event_id, status)) in hits.iter().zip(&changes) {
        notify::verify(&secret, &h.signature, &h.body, T0 / 1000, 300)
            .unwrap_or_else(|m| panic!("{m}: {}", h.signature));
        assert!(notify::verify(&secret2, &h.signature, &h.body, T0 / 1000, 300).is_err());
        assert_eq!(h.event, format!("status.{status}"));
        let b = body_json(h);
        assert_eq!(b["event_id"], *event_id);
        assert_eq!(b["record_id"], id.as_str());
        assert_eq!(b["tenant"], "default");
        assert_eq!(b["to_status"], status.as_str());
        assert_eq!(b["event"], format!("status.{status}"));
        let text = String::from_utf8_lossy(&h.body);
        for phi in harness::PHI {
            assert!(
                !text.contains(phi),
                "patient data in a webhook body: {text}"
            );
        }
    }
    let stored = e.t.store.deliveries_for("webhook", &all_id).await.unwrap();
    assert!(
        stored
            .iter()
            .all(|d| d.state == "delivered" && d.attempts == 1)
    );
    let ids: Vec<&str> = stored.iter().map(|d| d.id.as_str()).collect();
    assert!(hits.iter().all(|h| ids.contains(&h.delivery.as_str())));

    let only = rx2.hits();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].event, "status.cancelled");
    notify::verify(&secret2, &only[0].signature, &only[0].body, T0 / 1000, 300).unwrap();
    assert_eq!(
        e.t.store
            .deliveries_for("webhook", &only_id)
            .await
            .unwrap()
            .len(),
        1
    );
}
on_both!(signed_posts, one_signed_post_per_status_change);

/// The receiver fails twice: the delivery is retried after a backoff (not before), with the
/// same delivery id, and delivered on the third attempt; the target's consecutive failures go
/// 1, 2, then back to 0.
async fn retried_after_the_receiver_fails_twice(url: &str) {
    let mut e = Env::new(url).await;
    let (rx, target) = Receiver::start(2, 500).await;
    let (hook, secret) = e.hook(&target, &["cancelled"]).await;
    e.record_cancelled().await;
    e.dispatcher(&e.t.store, 100).run_once().await.unwrap();
    let w = e.worker(&e.t.store, "w1", 5);
    let store = &e.t.store;

    assert_eq!(w.run_once().await.unwrap(), 1);
    let d = store
        .deliveries_for("webhook", &hook)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((d.state.as_str(), d.attempts), ("queued", 1));
    assert_eq!(d.last_status, Some(500));
    assert!(
        d.last_error.as_deref().unwrap().contains("HTTP 500"),
        "{d:?}"
    );
    // Backoff with jitter: between half and all of the first step (1 s).
    assert!(
        (T0 + 500..=T0 + 1_000).contains(&d.next_attempt_at),
        "{}",
        d.next_attempt_at - T0
    );
    assert_eq!(store.target_failures("webhook", &hook).await.unwrap(), 1);
    // Not due yet.
    e.set(d.next_attempt_at - 1);
    assert_eq!(w.run_once().await.unwrap(), 0);
    e.set(d.next_attempt_at);
    assert_eq!(w.run_once().await.unwrap(), 1);
    let d = store
        .deliveries_for("webhook", &hook)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((d.state.as_str(), d.attempts), ("queued", 2));
    assert_eq!(store.target_failures("webhook", &hook).await.unwrap(), 2);
    let step = d.next_attempt_at - e.clock.load(Ordering::SeqCst);
    assert!((1_000..=2_000).contains(&step), "{step}");
    e.set(d.next_attempt_at);
    assert_eq!(w.run_once().await.unwrap(), 1);
    let d = store
        .deliveries_for("webhook", &hook)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((d.state.as_str(), d.attempts), ("delivered", 3));
    assert_eq!(d.last_status, Some(204));
    assert_eq!(d.delivered_at, Some(d.next_attempt_at));
    assert_eq!(store.target_failures("webhook", &hook).await.unwrap(), 0);

    let hits = rx.hits();
    assert_eq!(hits.len(), 3);
    assert!(
        hits.iter()
            .all(|h| h.delivery == d.id && h.body == hits[0].body)
    );
    // Each attempt is signed at its own time.
    let last = &hits[2];
    notify::verify(
        &secret,
        &last.signature,
        &last.body,
        d.next_attempt_at / 1000,
        0,
    )
    .unwrap();
}
on_both!(retried, retried_after_the_receiver_fails_twice);

/// A receiver that keeps failing: dead after `max_attempts`, with the reason.
async fn dead_after_max_attempts(url: &str) {
    let mut e = Env::new(url).await;
    let (rx, target) = Receiver::start(usize::MAX, 503).await;
    let (hook, _) = e.hook(&target, &["cancelled"]).await;
    e.record_cancelled().await;
    e.dispatcher(&e.t.store, 100).run_once().await.unwrap();
    let w = e.worker(&e.t.store, "w1", 3);
    for attempt in 1..=3 {
        assert_eq!(w.run_once().await.unwrap(), 1, "attempt {attempt}");
        let d =
            e.t.store
                .deliveries_for("webhook", &hook)
                .await
                .unwrap()
                .remove(0);
        e.set(d.next_attempt_at);
    }
    let d =
        e.t.store
            .deliveries_for("webhook", &hook)
            .await
            .unwrap()
            .remove(0);
    assert_eq!((d.state.as_str(), d.attempts), ("dead", 3));
    let reason = d.last_error.unwrap();
    assert!(
        reason.contains("HTTP 503") && reason.contains("attempt 3 of 3"),
        "{reason}"
    );
    assert_eq!(d.last_status, Some(503));
    assert_eq!(
        e.t.store.target_failures("webhook", &hook).await.unwrap(),
        3
    );
    // Dead is final: nothing more is sent.
    e.set(T0 + 86_400_000);
    assert_eq!(w.run_once().await.unwrap(), 0);
    assert_eq!(rx.hits().len(), 3);
    assert_eq!(e.t.store.deliveries(Some("dead")).await.unwrap().len(), 1);
    // A person fixes the receiver and retries the dead letter: a fresh attempt budget.
    rx.failures.store(0, Ordering::SeqCst);
    let store = &e.t.store;
    assert!(
        !store
            .delivery_retry("webhook", "wh_other", &d.id, T0)
            .await
            .unwrap()
    );
    assert!(
        store
            .delivery_retry("webhook", &hook, &d.id, T0 + 86_400_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delivery_retry("webhook", &hook, &d.id, T0)
            .await
            .unwrap()
    );
    assert_eq!(w.run_once().await.unwrap(), 1);
    let d = store
        .deliveries_for("webhook", &hook)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((d.state.as_str(), d.attempts), ("delivered", 1));
    assert_eq!(store.target_failures("webhook", &hook).await.unwrap(), 0);
    assert_eq!(rx.hits().len(), 4);
}
on_both!(dead, dead_after_max_attempts);

/// A dispatcher stopped after part of the log and a new one (a new process: its own store
/// connection) started on the same database queue each event exactly once; a worker that
/// claimed and died leaves its deliveries to another after the lease, the dead worker's late
/// result is refused, and running everything again sends nothing more.
async fn restart_delivers_each_event_exactly_once(url: &str) {
    let mut e = Env::new(url).await;
    let (rx, target) = Receiver::start(0, 500).await;
    let (hook, _) = e.hook(&target, &["*"]).await;
    let mut ids = vec![];
    for _ in 0..4 {
        ids.push(e.record_cancelled().await);
    }
    let mut want = vec![];
    for id in &ids {
        want.extend(e.changes(id).await.into_iter().map(|(ev, _)| ev));
    }
    // First process: two rounds of 3 events, then it stops.
    {
        let d = e.dispatcher(&e.t.store, 3);
        d.run_once().await.unwrap();
        d.run_once().await.unwrap();
    }
    let first =
        e.t.store
            .deliveries_for("webhook", &hook)
            .await
            .unwrap()
            .len();
    assert_eq!(first, 6.min(want.len()));
    // Second process: its own store; and a stale dispatcher that read the old cursor loses.
    let other = Store::open(&e.url).await.unwrap();
    let d2 = e.dispatcher(&other, 3);
    let mut rounds = 0;
    while d2.run_once().await.unwrap().events > 0 {
        rounds += 1;
        assert!(rounds < 100);
    }
    let stale = e.t.store.notify_cursor("dispatcher").await.unwrap();
    let moved =
        e.t.store
            .notify_advance(
                "dispatcher",
                &priorauth::store::NotifyCursor::default(),
                &stale,
                &[],
                T0,
            )
            .await
            .unwrap();
    assert!(!moved, "a dispatcher with an old cursor must not move it");
    let queued = e.t.store.deliveries_for("webhook", &hook).await.unwrap();
    let mut events: Vec<i64> = queued.iter().map(|d| d.event_id.unwrap()).collect();
    events.sort();
    assert_eq!(events, want, "each event once");

    // A worker claims two and dies before sending.
    let claimed =
        e.t.store
            .claim_deliveries("dead-worker", T0, 30_000, 2, &["webhook".into()])
            .await
            .unwrap();
    assert_eq!(claimed.len(), 2);
    // Another worker sends the rest now, and the two after their lease.
    let w2 = e.worker(&other, "w2", 5);
    assert_eq!(w2.run_once().await.unwrap(), want.len() - 2);
    assert_eq!(w2.run_once().await.unwrap(), 0);
    e.set(T0 + 30_001);
    assert_eq!(w2.run_once().await.unwrap(), 2);
    // The dead worker's late result is refused.
    let late =
        e.t.store
            .delivery_finish(
                &claimed[0],
                "dead-worker",
                &DeliveryEnd::Delivered { status: 200 },
                T0,
            )
            .await
            .unwrap();
    assert!(!late);
    // Everything again, from a third process: nothing new.
    let third = Store::open(&e.url).await.unwrap();
    assert_eq!(
        e.dispatcher(&third, 3).run_once().await.unwrap().deliveries,
        0
    );
    assert_eq!(e.worker(&third, "w3", 5).run_once().await.unwrap(), 0);

    let mut per_event: HashMap<i64, usize> = HashMap::new();
    for h in rx.hits() {
        *per_event
            .entry(body_json(&h)["event_id"].as_i64().unwrap())
            .or_default() += 1;
    }
    let mut got: Vec<i64> = per_event.keys().copied().collect();
    got.sort();
    assert_eq!(got, want);
    assert!(per_event.values().all(|&n| n == 1), "{per_event:?}");
    assert!(
        e.t.store
            .deliveries_for("webhook", &hook)
            .await
            .unwrap()
            .iter()
            .all(|d| d.state == "delivered")
    );
}
on_both!(restart, restart_delivers_each_event_exactly_once);

/// A deleted webhook gets nothing more: its queued deliveries are dead, later events queue
/// nothing for it; a webhook of another tenant is not visible.
async fn deleted_webhook_gets_nothing(url: &str) {
    let mut e = Env::new(url).await;
    let (rx, target) = Receiver::start(0, 500).await;
    let (hook, _) = e.hook(&target, &["*"]).await;
    e.record_cancelled().await;
    e.dispatcher(&e.t.store, 100).run_once().await.unwrap();
    assert!(
        !e.t.store
            .webhook_delete("other-tenant", &hook, T0)
            .await
            .unwrap()
    );
    assert!(
        e.t.store
            .webhook_delete("default", &hook, T0)
            .await
            .unwrap()
    );
    let ds = e.t.store.deliveries_for("webhook", &hook).await.unwrap();
    assert!(!ds.is_empty());
    assert!(
        ds.iter()
            .all(|d| d.state == "dead" && d.last_error.as_deref() == Some("webhook deleted"))
    );
    e.record_cancelled().await;
    assert_eq!(
        e.dispatcher(&e.t.store, 100)
            .run_once()
            .await
            .unwrap()
            .deliveries,
        0
    );
    assert_eq!(e.worker(&e.t.store, "w", 5).run_once().await.unwrap(), 0);
    assert!(rx.hits().is_empty());
    assert!(
        e.t.store
            .webhooks("default", false)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(e.t.store.webhooks("default", true).await.unwrap().len(), 1);
}
on_both!(deleted, deleted_webhook_gets_nothing);

/// Other target kinds: a registered builder makes the body, a one-off raw delivery (a
/// handshake) goes out with it, a builder that fails leaves a dead delivery with the reason
/// (never a silent drop), and a worker skips kinds it does not know.
async fn other_kinds_and_raw_deliveries(url: &str) {
    let mut e = Env::new(url).await;
    let (rx, target) = Receiver::start(0, 500).await;
    let endpoint = target.clone();
    e.registry.register(
        notify::FHIR_SUBSCRIPTION,
        notify::Kind {
            targets: Arc::new(|_s, tenant, _ev| {
                Box::pin(async move {
                    Ok(vec![
                        notify::Target {
                            kind: notify::FHIR_SUBSCRIPTION.into(),
                            id: "sub-ok".into(),
                            tenant: tenant.clone(),
                        },
                        notify::Target {
                            kind: notify::FHIR_SUBSCRIPTION.into(),
                            id: "sub-broken".into(),
                            tenant,
                        },
                    ])
                })
            }),
            build: Arc::new(|_s, t, ev| {
                Box::pin(async move {
                    if t.id == "sub-broken" {
                        return Err(notify::NotifyError::Invalid("no PAS bundle".into()));
                    }
                    if ev.to_status.as_deref() != Some("cancelled") {
                        return Ok(None);
                    }
                    Ok(Some((
                        "application/fhir+json".to_owned(),
                        format!("{{\"event\":{}}}", ev.id).into_bytes(),
                    )))
                })
            }),
            resolve: Arc::new(move |_s, _t| {
                let url = endpoint.clone();
                Box::pin(async move {
                    Ok(Some(notify::Endpoint {
                        url,
                        secret: None,
                        headers: vec![("authorization".into(), "Bearer sub-token".into())],
                    }))
                })
            }),
        },
    );
    e.record_cancelled().await;
    let report = e.dispatcher(&e.t.store, 100).run_once().await.unwrap();
    let ok =
        e.t.store
            .deliveries_for(notify::FHIR_SUBSCRIPTION, "sub-ok")
            .await
            .unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].content_type, "application/fhir+json");
    let broken =
        e.t.store
            .deliveries_for(notify::FHIR_SUBSCRIPTION, "sub-broken")
            .await
            .unwrap();
    assert!(broken.len() >= 2);
    assert!(
        broken.iter().all(
            |d| d.state == "dead" && d.last_error.as_deref().unwrap().contains("no PAS bundle")
        )
    );
    assert_eq!(report.deliveries, ok.len() + broken.len());
    let raw = notify::enqueue_raw(
        &e.t.store,
        notify::FHIR_SUBSCRIPTION,
        &notify::Target {
            kind: notify::FHIR_SUBSCRIPTION.into(),
            id: "sub-ok".into(),
            tenant: "default".into(),
        },
        "application/fhir+json",
        b"{\"handshake\":true}".to_vec(),
        T0,
    )
    .await
    .unwrap();
    // A worker of a process that does not know the kind leaves them alone.
    let plain = DeliveryWorker::new(
        e.t.store.clone(),
        Registry::new(),
        DeliveryOptions::new("plain"),
    )
    .with_clock(e.now());
    assert_eq!(plain.run_once().await.unwrap(), 0);
    let w = e.worker(&e.t.store, "w", 5);
    assert_eq!(w.run_once().await.unwrap(), 2);
    let hits = rx.hits();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.signature.is_empty()));
    assert!(
        hits.iter()
            .any(|h| h.delivery == raw && h.body == b"{\"handshake\":true}")
    );
    assert!(hits.iter().any(|h| h.event == "status.cancelled"));
}
on_both!(kinds, other_kinds_and_raw_deliveries);

/// Two workers, each with its own pool (as two processes), drain one PostgreSQL queue: every
/// delivery is POSTed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_never_deliver_one_delivery_twice_postgres() {
    let Some(url) = db::pg_url().await else {
        return;
    };
    let mut e = Env::new(&url).await;
    let (rx, target) = Receiver::start(0, 500).await;
    e.hook(&target, &["*"]).await;
    e.hook(&target, &["cancelled"]).await;
    for _ in 0..15 {
        e.record_cancelled().await;
    }
    while e
        .dispatcher(&e.t.store, 50)
        .run_once()
        .await
        .unwrap()
        .events
        > 0
    {}
    let total = e.t.store.deliveries(Some("queued")).await.unwrap().len();
    assert!(total >= 45, "{total}");
    let other = Store::open(&url).await.unwrap();
    let mk = |s: &Store, owner: &str| {
        let mut o = DeliveryOptions::new(owner);
        o.batch = 4;
        o.concurrency = 2;
        DeliveryWorker::new(s.clone(), e.registry.clone(), o).with_clock(e.now())
    };
    let workers = [mk(&e.t.store, "proc-1"), mk(&other, "proc-2")];
    let mut tasks = vec![];
    for w in workers {
        let store = e.t.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = 0;
            loop {
                let n = w.run_once().await.unwrap();
                mine += n;
                if n == 0 {
                    let left = store.deliveries(Some("queued")).await.unwrap().len()
                        + store.deliveries(Some("sending")).await.unwrap().len();
                    if left == 0 {
                        return mine;
                    }
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    let mut per_worker = vec![];
    for t in tasks {
        per_worker.push(tokio::time::timeout(WAIT, t).await.unwrap().unwrap());
    }
    assert_eq!(per_worker.iter().sum::<usize>(), total);
    let mut count: HashMap<String, usize> = HashMap::new();
    for h in rx.hits() {
        *count.entry(h.delivery).or_default() += 1;
    }
    assert_eq!(count.len(), total);
    assert!(count.values().all(|&n| n == 1), "{count:?}");
    assert_eq!(
        e.t.store.deliveries(Some("delivered")).await.unwrap().len(),
        total
    );
    eprintln!("deliveries per worker: {per_worker:?}");
}

/// On PostgreSQL an event id can commit after a later one: the dispatcher, having moved past
/// it, keeps it as a gap and queues it when it appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_committed_late_is_not_skipped_postgres() {
    use sqlx::Connection;
    let Some(url) = db::pg_url().await else {
        return;
    };
    let mut e = Env::new(&url).await;
    let (_rx, target) = Receiver::start(0, 500).await;
    let (hook, _) = e.hook(&target, &["approved"]).await;
    let id = e.record_cancelled().await;
    let d = e.dispatcher(&e.t.store, 100);
    d.run_once().await.unwrap();
    let insert = "INSERT INTO events (request_id, at, actor, action, from_status, to_status) \
                  VALUES ($1, $2, 'test', 'test_change', 'pended', 'approved') RETURNING id";
    let mut slow = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut tx = slow.begin().await.unwrap();
    use sqlx::Row;
    let early: i64 = sqlx::query(insert)
        .bind(&id)
        .bind(T0)
        .fetch_one(&mut *tx)
        .await
        .unwrap()
        .get(0);
    let mut fast = sqlx::PgConnection::connect(&url).await.unwrap();
    let later: i64 = sqlx::query(insert)
        .bind(&id)
        .bind(T0)
        .fetch_one(&mut fast)
        .await
        .unwrap()
        .get(0);
    assert!(later > early);
    d.run_once().await.unwrap();
    let cursor = e.t.store.notify_cursor("dispatcher").await.unwrap();
    assert_eq!(cursor.position, later);
    assert!(cursor.gaps.iter().any(|(g, _)| *g == early), "{cursor:?}");
    let events = |ds: Vec<priorauth::store::DeliveryRow>| {
        let mut v: Vec<i64> = ds.into_iter().filter_map(|d| d.event_id).collect();
        v.sort();
        v
    };
    assert_eq!(
        events(e.t.store.deliveries_for("webhook", &hook).await.unwrap()),
        vec![later]
    );
    tx.commit().await.unwrap();
    d.run_once().await.unwrap();
    assert_eq!(
        events(e.t.store.deliveries_for("webhook", &hook).await.unwrap()),
        vec![early, later]
    );
    assert!(
        e.t.store
            .notify_cursor("dispatcher")
            .await
            .unwrap()
            .gaps
            .is_empty()
    );
}

/// A delivery whose webhook was deleted meanwhile ends dead with the reason.
async fn gone_target_is_dead(url: &str) {
    let mut e = Env::new(url).await;
    let (_rx, target) = Receiver::start(0, 500).await;
    let (hook, _) = e.hook(&target, &["cancelled"]).await;
    e.record_cancelled().await;
    e.dispatcher(&e.t.store, 100).run_once().await.unwrap();
    // Claimed, then the webhook is deleted before the send is processed.
    let mut claimed =
        e.t.store
            .claim_deliveries("w", T0, 30_000, 10, &["webhook".into()])
            .await
            .unwrap();
    assert!(
        e.t.store
            .webhook_delete("default", &hook, T0)
            .await
            .unwrap()
    );
    let w = DeliveryWorker::new(
        e.t.store.clone(),
        e.registry.clone(),
        DeliveryOptions::new("w"),
    )
    .with_clock(e.now());
    assert_eq!(
        w.process(claimed.remove(0)).await.unwrap(),
        DeliveryOutcome::Dead
    );
    let d =
        e.t.store
            .deliveries_for("webhook", &hook)
            .await
            .unwrap()
            .remove(0);
    assert!(d.last_error.unwrap().contains("is gone"));
}
on_both!(gone, gone_target_is_dead);

/// Black box: `priorauth serve` with its built-in mock payer; a webhook created over REST
/// receives the submitted record's status changes it asked for, signed, ending with
/// `approved`; its deliveries are listed; bad input is named; the log holds no patient data
/// and no secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_posts_webhooks_for_a_submitted_record() {
    let dir = harness::temp_dir("notify");
    let db = format!("sqlite://{}", dir.join("gw.db").display());
    let port = harness::free_port();
    let gw = harness::serve(&dir, &db, None, port, &[]);
    let api = harness::Client::clinician(&gw);
    let (rx, target) = Receiver::start(0, 500).await;

    // Bad input: named field, never a panic.
    let (s, v) = api
        .post(
            "/v1/webhooks",
            r#"{"url":"ftp://x/","events":["*"]}"#.into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["field"], "url");
    let (s, v) = api
        .post(
            "/v1/webhooks",
            format!(r#"{{"url":"{target}","events":["approved","nonsense"]}}"#),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["field"], "events[1]");
    let (s, v) = api.post("/v1/webhooks", "{".into(), None).await.unwrap();
    assert_eq!(s, 400, "{v}");

    let (s, v) = api
        .post(
            "/v1/webhooks",
            format!(r#"{{"url":"{target}","events":["submitted","approved"]}}"#),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{v}");
    let hook = v["id"].as_str().unwrap().to_owned();
    let secret = v["secret"].as_str().unwrap().to_owned();
    let (s, list) = api.get("/v1/webhooks").await.unwrap();
    assert_eq!(s, 200);
    assert_eq!(list["webhooks"][0]["id"], hook.as_str());
    assert!(list["webhooks"][0].get("secret").is_none(), "{list}");
    assert!(!list.to_string().contains(&secret));

    let id = api
        .create_and_submit(&harness::request(1, None, None))
        .await;
    api.wait_status(&id, &["approved"], WAIT).await;
    // Both status changes delivered (the approval may take a moment after the record moves).
    let v = tokio::time::timeout(WAIT, async {
        loop {
            let (s, v) = api
                .get(&format!("/v1/webhooks/{hook}/deliveries"))
                .await
                .unwrap();
            assert_eq!(s, 200, "{v}");
            let done = v["deliveries"]
                .as_array()
                .is_some_and(|ds| ds.len() == 2 && ds.iter().all(|d| d["state"] == "delivered"));
            if done {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("both deliveries recorded as delivered");
    // Every POST was received before its delivery was recorded as delivered (the two may
    // arrive in either order: the body's event_id orders them).
    let hits = rx.hits();
    let mut events: Vec<(i64, String)> = hits
        .iter()
        .map(|h| {
            let b = body_json(h);
            assert_eq!(b["record_id"], id.as_str());
            let now_s = chrono::Utc::now().timestamp();
            notify::verify(&secret, &h.signature, &h.body, now_s, 300).unwrap();
            (b["event_id"].as_i64().unwrap(), h.event.clone())
        })
        .collect();
    events.sort();
    let names: Vec<&str> = events.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["status.submitted", "status.approved"]);

    let ds = v["deliveries"].as_array().unwrap();
    assert_eq!(ds.len(), 2);
    assert!(ds.iter().all(|d| d["attempts"] == 1));
    assert!(ds.iter().all(|d| d.get("body").is_none()));
    let (s, _) = api.get("/v1/webhooks/wh_nope/deliveries").await.unwrap();
    assert_eq!(s, 404);
    let delivered = ds[0]["id"].as_str().unwrap();
    let (s, v) = api
        .post(
            &format!("/v1/webhooks/{hook}/deliveries/{delivered}/retry"),
            String::new(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("not_dead")),
        "{v}"
    );
    let (s, _) = api
        .post(
            &format!("/v1/webhooks/{hook}/deliveries/nope/retry"),
            String::new(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 404);
    let metrics = api
        .http
        .get(format!("{}/metrics", api.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("priorauth_notify_deliveries{state=\"delivered\"} 2"),
        "{metrics}"
    );

    assert_eq!(
        api.delete(&format!("/v1/webhooks/{hook}")).await.unwrap(),
        204
    );
    assert_eq!(
        api.delete(&format!("/v1/webhooks/{hook}")).await.unwrap(),
        404
    );
    let (_, list) = api.get("/v1/webhooks").await.unwrap();
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 0);
    drop(gw);
    harness::assert_no_phi(&dir.join("serve.log"), &[&secret]);
}

/// Black box: the gateway is killed (SIGKILL) while its webhook receiver is failing, and
/// started again on the same database: every status change is still delivered, each under one
/// delivery id (retries repeat it, nothing is queued twice), and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_mid_retries_delivers_every_event_once() {
    let dir = harness::temp_dir("notify-kill");
    let db = format!("sqlite://{}", dir.join("gw.db").display());
    let flags = [
        "--notify-backoff-ms",
        "200",
        "--notify-max-backoff-ms",
        "400",
        "--notify-timeout-ms",
        "2000",
    ];
    let mut gw = harness::serve(&dir, &db, None, harness::free_port(), &flags);
    let api = harness::Client::clinician(&gw);
    let (rx, target) = Receiver::start(3, 500).await;
    let (s, v) = api
        .post(
            "/v1/webhooks",
            format!(r#"{{"url":"{target}","events":["*"]}}"#),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{v}");
    let hook = v["id"].as_str().unwrap().to_owned();
    let id = api
        .create_and_submit(&harness::request(2, None, None))
        .await;
    tokio::time::timeout(WAIT, async {
        while rx.hits().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a first (failed) POST");
    gw.kill9();

    let gw = harness::serve(&dir, &db, None, harness::free_port(), &flags);
    let api = harness::Client::clinician(&gw);
    api.wait_status(&id, &["approved"], WAIT).await;
    let ds = tokio::time::timeout(WAIT, async {
        loop {
            let (_, v) = api
                .get(&format!("/v1/webhooks/{hook}/deliveries"))
                .await
                .unwrap();
            let ds = v["deliveries"].as_array().cloned().unwrap_or_default();
            let approved = ds.iter().any(|d| d["event"] == "status.approved");
            if approved && ds.iter().all(|d| d["state"] == "delivered") {
                return ds;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("every delivery delivered after the restart");
    // One delivery per status change of the record, in the log's order.
    let (_, record) = api.get(&format!("/v1/authorizations/{id}")).await.unwrap();
    let changes: Vec<String> = record["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["to_status"].as_str().map(|s| format!("status.{s}")))
        .collect();
    let mut queued: Vec<(i64, String)> = ds
        .iter()
        .map(|d| {
            (
                d["event_id"].as_i64().unwrap(),
                d["event"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    queued.sort();
    let names: Vec<String> = queued.into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, changes);
    // Each event reached the receiver under one delivery id only.
    let mut ids_per_event: HashMap<i64, std::collections::HashSet<String>> = HashMap::new();
    for h in rx.hits() {
        let ev = body_json(&h)["event_id"].as_i64().unwrap();
        ids_per_event.entry(ev).or_default().insert(h.delivery);
    }
    assert_eq!(ids_per_event.len(), changes.len());
    assert!(
        ids_per_event.values().all(|s| s.len() == 1),
        "{ids_per_event:?}"
    );
    assert!(rx.hits().len() >= changes.len() + 3);
    drop(gw);
    harness::assert_no_phi(&dir.join("serve.log"), &[]);
}
