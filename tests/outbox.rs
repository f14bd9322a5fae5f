//! The outbox worker's logic, on SQLite and on the real PostgreSQL, with a scripted transport
//! defined here (it plays outcomes per call and records every send). Time is a clock the
//! tests move by hand, so backoffs, leases and the retransmit floor are checked exactly,
//! without waiting. The black-box tests with the real transports and the mock payer are
//! elsewhere.

mod db;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use priorauth::domain::{ActionCode, AuthorizationRequest, Status};
use priorauth::outbox::{TransportFactory, Worker, WorkerOptions};
use priorauth::payers::{Format, PayerConfig, PayerDirectory, RetryPolicy};
use priorauth::store::OutboxRow;
use priorauth::tracking::{Clock, Policy, Tracker, bench};
use priorauth::transport::{Answer, BoxFuture, Delivery, Outgoing, SendError, Transport};
use priorauth::x12::tx278;
use priorauth::x12::writer::{EnvelopeSettings, MemoryControlNumbers};
use tokio::sync::Notify;

const T0: i64 = 1_800_000_000_000;
const WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
enum Step {
    Answer,
    Accept,
    NotDelivered,
    /// Not delivered, with a Retry-After in seconds.
    Busy(u64),
    Unknown,
    Refused(&'static str),
    Config(&'static str),
}

/// A payer stand-in: plays `script` one step per call (then answers), records each send.
#[derive(Default)]
struct Scripted {
    script: Mutex<VecDeque<Step>>,
    /// Submitter reference (BHT03) -> the 278 response that answers it.
    answers: Mutex<Vec<(String, Vec<u8>)>>,
    /// (PayloadID, body) of every send, in order.
    sends: Mutex<Vec<(String, Vec<u8>)>>,
    entered: Notify,
    /// When set, a send waits for this before answering.
    gate: Option<Arc<Notify>>,
    delay: Option<Duration>,
}

impl Scripted {
    fn new(steps: &[Step]) -> Arc<Scripted> {
        Arc::new(Scripted {
            script: Mutex::new(steps.iter().cloned().collect()),
            ..Default::default()
        })
    }
    fn gated(steps: &[Step], gate: Arc<Notify>) -> Arc<Scripted> {
        Arc::new(Scripted {
            script: Mutex::new(steps.iter().cloned().collect()),
            gate: Some(gate),
            ..Default::default()
        })
    }
    fn sends(&self) -> Vec<(String, Vec<u8>)> {
        self.sends.lock().unwrap().clone()
    }
    fn answer_for(&self, body: &[u8]) -> Option<Vec<u8>> {
        let text = String::from_utf8_lossy(body);
        self.answers
            .lock()
            .unwrap()
            .iter()
            .find(|(r, _)| text.contains(&format!("*{r}*")) || text.contains(&format!("\"{r}\"")))
            .map(|(_, a)| a.clone())
    }
}

impl Transport for Scripted {
    fn send<'a>(&'a self, msg: Outgoing<'a>) -> BoxFuture<'a, Result<Delivery, SendError>> {
        Box::pin(async move {
            self.sends
                .lock()
                .unwrap()
                .push((msg.payload_id.to_owned(), msg.body.to_vec()));
            self.entered.notify_one();
            if let Some(g) = &self.gate {
                g.notified().await;
            }
            if let Some(d) = self.delay {
                tokio::time::sleep(d).await;
            }
            let step = self
                .script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Step::Answer);
            match step {
                Step::Answer => match self.answer_for(msg.body) {
                    Some(body) => Ok(Delivery::Answered(Answer {
                        body,
                        detail: "HTTP 200".into(),
                    })),
                    None => Err(SendError::Refused {
                        reason: "the test payer knows no such request".into(),
                        body: None,
                    }),
                },
                Step::Accept => Ok(Delivery::Accepted),
                Step::NotDelivered => Err(SendError::NotDelivered {
                    reason: "connection refused".into(),
                    retry_after: None,
                }),
                Step::Busy(secs) => Err(SendError::NotDelivered {
                    reason: "ReceiverServerBusy".into(),
                    retry_after: Some(Duration::from_secs(secs)),
                }),
                Step::Unknown => Err(SendError::Unknown {
                    reason: "timed out after the request was written".into(),
                    retry_after: None,
                }),
                Step::Refused(r) => Err(SendError::Refused {
                    reason: r.into(),
                    body: None,
                }),
                Step::Config(r) => Err(SendError::Config { reason: r.into() }),
            }
        })
    }
}

fn factory(t: &Arc<Scripted>) -> TransportFactory {
    let t = t.clone();
    Arc::new(move |_cfg: &PayerConfig| t.clone() as Arc<dyn Transport>)
}

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_backoff_ms: 100,
        max_backoff_ms: 1_000,
        retransmit_min_ms: 5_000,
        circuit_failures: 50,
        circuit_open_ms: 10_000,
        inquire_every_ms: 60_000,
    }
}

/// A tracker whose clock the test moves, a payer directory with one default route, and
/// records submitted through the outbox.
struct Env {
    t: Tracker,
    url: String,
    clock: Arc<AtomicI64>,
    dir: Arc<PayerDirectory>,
    run: String,
    n: usize,
    /// Answer with a pended decision instead of an approval.
    pended: bool,
}

impl Env {
    async fn new(url: &str, format: Format, retry: RetryPolicy) -> Env {
        let mut t = Tracker::open(url, Clock::fixed(T0)).await.unwrap();
        t.set_policy(Policy {
            approval: vec![],
            ..Policy::default()
        })
        .await
        .unwrap();
        t.set_actor("alice", "clinician", "admin").await.unwrap();
        let mut cfg = PayerConfig::core("*", "http://127.0.0.1:9/core");
        cfg.format = format;
        cfg.retry = retry;
        cfg.timeout_ms = 100;
        cfg.connect_timeout_ms = 100;
        Env {
            t,
            url: url.to_owned(),
            clock: Arc::new(AtomicI64::new(T0)),
            dir: Arc::new(PayerDirectory::single(cfg)),
            run: uuid::Uuid::new_v4().simple().to_string()[..6].to_ascii_uppercase(),
            n: 0,
            pended: false,
        }
    }

    fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    fn set(&mut self, ms: i64) {
        self.clock.store(ms, Ordering::SeqCst);
        self.t.clock = Clock::fixed(ms);
    }

    fn advance(&mut self, ms: i64) {
        let n = self.now() + ms;
        self.set(n);
    }

    fn worker(&self, owner: &str, t: &Arc<Scripted>) -> Worker {
        let clock = self.clock.clone();
        let mut o = WorkerOptions::new(owner);
        o.lease_ms = 1_000;
        o.concurrency = 1;
        Worker::new(&self.t, self.dir.clone(), factory(t), o)
            .with_clock(Arc::new(move || clock.load(Ordering::SeqCst)))
    }

    /// A new record taken to ready and submitted through the outbox; each transport in
    /// `payers` learns the 278 response approving it. Returns (record id, outbox id).
    async fn submit(&mut self, payers: &[&Arc<Scripted>]) -> (String, i64) {
        let req: AuthorizationRequest = bench::request(&self.run, self.n).unwrap();
        self.n += 1;
        let id = self.t.create(&req, "alice").await.unwrap();
        self.t.send_to_review(&id, "alice").await.unwrap();
        let row = self.t.record(&id).await.unwrap();
        assert_eq!(row.status, "ready");
        let answer = self.answer(&req, self.pended);
        for p in payers {
            p.answers
                .lock()
                .unwrap()
                .push((req.submitter_reference.as_str().to_owned(), answer.clone()));
        }
        let payer = self.dir.route(&row.payer).unwrap().clone();
        let ob = self.t.submit_to(&id, "alice", &payer).await.unwrap();
        (id, ob)
    }

    /// The 278 response approving (or pending) `req`.
    fn answer(&self, req: &AuthorizationRequest, pended: bool) -> Vec<u8> {
        let mut resp = bench::approval(req, &format!("AUTH{}{}", self.run, self.n)).unwrap();
        if pended {
            let d = &mut resp.decision;
            d.status = Status::Pended;
            d.action = Some(ActionCode::Pended);
            d.certification_number = None;
            for l in &mut d.lines {
                l.status = Status::Pended;
                l.action = Some(ActionCode::Pended);
            }
        }
        tx278::encode_responses(
            &[resp],
            &EnvelopeSettings::default().reversed(),
            &MemoryControlNumbers::new(),
            self.t.clock.stamp(),
        )
        .unwrap()
    }

    async fn outbox(&self, id: i64) -> OutboxRow {
        self.t.store.outbox_get(id).await.unwrap().unwrap()
    }

    async fn status(&self, id: &str) -> String {
        self.t.record(id).await.unwrap().status
    }

    async fn actions(&self, id: &str) -> Vec<String> {
        self.t
            .store
            .events(id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
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

async fn answered_decides_the_record(url: &str) {
    let mut e = Env::new(url, Format::X12Core, retry()).await;
    let payer = Scripted::new(&[]);
    let (id, ob) = e.submit(&[&payer]).await;
    // Committed before the first byte: queued with the record submitted, nothing sent yet.
    let m = e.outbox(ob).await;
    assert_eq!(
        (m.state.as_str(), m.attempts, m.operation.as_str()),
        ("queued", 0, "submit")
    );
    assert_eq!(e.status(&id).await, "submitted");
    assert!(payer.sends().is_empty());
    let w = e.worker("w1", &payer);
    assert_eq!(w.run_once().await.unwrap(), 1);
    let m = e.outbox(ob).await;
    assert_eq!(m.state, "answered");
    assert_eq!(m.attempts, 1);
    assert!(m.lease_owner.is_none());
    let inbound = m.inbound_message_id.expect("the answer's inbound message");
    // The answer was stored as received, and applied.
    let sends = payer.sends();
    assert_eq!(sends.len(), 1);
    assert_eq!(
        e.t.store.outbound_raw(ob).await.unwrap().unwrap(),
        sends[0].1
    );
    assert!(e.t.store.inbound_raw(inbound).await.unwrap().is_some());
    assert_eq!(e.status(&id).await, "approved");
    let actions = e.actions(&id).await;
    for a in [
        "submitted",
        "outbox_queued",
        "outbox_claimed",
        "outbox_answered",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} missing in {actions:?}");
    }
    // Nothing left to do.
    assert_eq!(w.run_once().await.unwrap(), 0);
    let counts = e.t.store.outbox_counts().await.unwrap();
    assert!(counts.contains(&("answered".into(), 1)), "{counts:?}");
    assert!(counts.contains(&("queued".into(), 0)), "{counts:?}");
}
on_both!(answered, answered_decides_the_record);

async fn not_delivered_then_answered(url: &str) {
    let mut e = Env::new(url, Format::X12Core, retry()).await;
    let payer = Scripted::new(&[Step::NotDelivered]);
    let (id, ob) = e.submit(&[&payer]).await;
    let w = e.worker("w1", &payer);
    assert_eq!(w.run_once().await.unwrap(), 1);
    let m = e.outbox(ob).await;
    assert_eq!(m.state, "queued");
    assert_eq!(m.attempts, 1);
    assert!(!m.retransmit, "never delivered: not a retransmit");
    assert!(
        m.last_error
            .as_deref()
            .unwrap()
            .contains("connection refused")
    );
    // Backoff 100 ms plus at most 25 % jitter.
    let wait = m.next_attempt_at - e.now();
    assert!((100..=125).contains(&wait), "{wait}");
    assert_eq!(w.run_once().await.unwrap(), 0, "not due yet");
    e.set(m.next_attempt_at);
    assert_eq!(w.run_once().await.unwrap(), 1);
    assert_eq!(e.outbox(ob).await.state, "answered");
    assert_eq!(e.status(&id).await, "approved");
    let sends = payer.sends();
    assert_eq!(sends.len(), 2);
    assert_eq!(sends[0], sends[1], "the same PayloadID and bytes");
    assert!(
        e.actions(&id)
            .await
            .iter()
            .any(|a| a == "outbox_rescheduled")
    );
}
on_both!(not_delivered, not_delivered_then_answered);

async fn unknown_waits_for_the_retransmit_floor(url: &str) {
    let mut e = Env::new(url, Format::X12Core, retry()).await;
    let payer = Scripted::new(&[Step::Unknown]);
    let (id, ob) = e.submit(&[&payer]).await;
    let w = e.worker("w1", &payer);
    assert_eq!(w.run_once().await.unwrap(), 1);
    let m = e.outbox(ob).await;
    assert_eq!(m.state, "queued");
    assert!(m.retransmit);
    let last = m.last_attempt_at.unwrap();
    assert!(
        m.next_attempt_at - last >= 5_000,
        "a retransmit waits for the floor: {} ms",
        m.next_attempt_at - last
    );
    e.set(m.next_attempt_at - 1);
    assert_eq!(w.run_once().await.unwrap(), 0, "not before the floor");
    e.set(m.next_attempt_at);
    assert_eq!(w.run_once().await.unwrap(), 1);
    assert_eq!(e.outbox(ob).await.state, "answered");
    assert_eq!(e.status(&id).await, "approved");
    let sends = payer.sends();
    assert_eq!(sends.len(), 2);
    assert_eq!(
        sends[0], sends[1],
        "a retransmit is the same bytes and PayloadID"
    );
}
on_both!(unknown, unknown_waits_for_the_retransmit_floor);

async fn refused_rejects_the_record(url: &str) {
    let mut e = Env::new(url, Format::X12Core, retry()).await;
    let payer = Scripted::new(&[Step::Refused("member id not on file")]);
    let (id, ob) = e.submit(&[&payer]).await;
    let w = e.worker("w1", &payer);
    assert_eq!(w.run_once().await.unwrap(), 1);
    let m = e.outbox(ob).await;
    assert_eq!(m.state, "refused");
    assert_eq!(m.last_error.as_deref(), Some("member id not on file"));
    assert_eq!(e.status(&id).await, "rejected");
    let ev = e.t.store.events(&id).await.unwrap();
    let rejected = ev.iter().find(|x| x.action == "rejected").unwrap();
    assert_eq!(rejected.actor, "outbox");
    assert!(
        rejected
            .reason
            .as_deref()
            .unwrap()
            .contains("member id not on file")
    );
    // Final: never sent again.
    e.advance(3_600_000);
    assert_eq!(w.run_once().await.unwrap(), 0);
    assert_eq!(payer.sends().len(), 1);
}
on_both!(refused, refused_rejects_the_record);

async fn config_dead_letter_then_retry(url: &str) {
    let mut e = Env::new(url, Format::X12Core, retry()).await;
    let payer = Scripted::new(&[Step::Config("credentials rejected (HTTP 401)")]);
    let (id, ob) = e.submit(&[&payer]).await;
    let w = e.worker("w1", &payer);
    assert_eq!(w.run_once().await.unwrap(), 1);
    let m = e.outbox(ob).await;
    assert_eq!(m.state, "dead");
    assert!(
        m.last_error
            .as_deref()
            .unwrap()
            .contains("credentials rejected")
    );
    assert_eq!(
        e.status(&id).await,
        "submitted",
        "the record waits for a person"
    );
    let dead = e.t.store.outbox_list(Some("dead")).await.unwrap();
    assert_eq!(dead.iter().map(|m| m.id).collect::<Vec<_>>(), vec![ob]);
    e.advance(3_600_000);
    assert_eq!(w.run_once().await.unwrap(), 0, "a dead letter stays dead");
    // Only a dead letter can be retried, and only by someone who may send.
    assert!(e.t.outbox_retry(ob, "mallory").await.is_err());
    e.t.outbox_retry(ob, "alice").await.unwrap();
    assert!(
        e.t.outbox_retry(ob, "alice").await.is_err(),
        "no longer dead"
    );
    let m = e.outbox(ob).await;
    assert_eq!((m.state.as_str(), m.attempts), ("queued", 0));
    assert!(e.actions(&id).await.iter().any(|a| a == "outbox_retried"));
    assert_eq!(w.run_once().await.unwrap(), 1);
    assert_eq!(e.outbox(ob).await.state, "answered");
    assert_eq!(e.status(&id).await, "approved");
    let sends = payer.sends();
    assert_eq!(sends.len(), 2);
    assert_eq!(sends[0], sends[1]);
}
on_both!(config_dead, config_dead_letter_then_retry);

async fn max_attempts_make_a_dead_letter(url: &str) {
    let mut r = retry();
    r.max_attempts = 3;
    let mut e = Env::new(url, Format::X12Core, r).await;
    let payer = Scripted::new(&[Step::NotDelivered, Step::Unknown, Step::NotDelivered]);
    let (id, ob) = e.submit(&[&payer]).await;
    let w = e.worker("w1", &payer);
    for _ in 0..3 {
        assert_eq!(w.run_once().await.unwrap(), 1);
        let m = e.outbox(ob).await;
        e.set(m.next_attempt_at.max(e.now()));
    }
    let m = e.outbox(ob).await;
    assert_eq!(m.state, "dead");
    assert_eq!(m.attempts, 3);
    assert!(
        m.last_error
            .as_deref()
            .unwrap()
            .contains("after 3 attempts"),
        "{:?}",
        m.last_error
    );
    assert_eq!(payer.sends().len(), 3);
    assert_eq!(e.status(&id).await, "submitted");
    e.advance(3_600_000);
    assert_eq!(w.run_once().await.unwrap(), 0);
}
on_both!(max_attempts, max_attempts_make_a_dead_letter);

async fn circuit_breaker_opens_and_holds_the_transport(url: &str) {
    let mut r = retry();
    r.circuit_failures = 2;
    r.max_attempts = 10;
    let mut e = Env::new(url, Format::X12Core, r).await;
    let payer = Scripted::new(&[Step::NotDelivered, Step::NotDelivered]);
    let (a_id, a) = e.submit(&[&payer]).await;
    let w = e.worker("w1", &payer);
    assert_eq!(w.run_once().await.unwrap(), 1);
    e.set(e.outbox(a).await.next_attempt_at);
    assert_eq!(w.run_once().await.unwrap(), 1);
    let opened_at = e.now();
    assert_eq!(payer.sends().len(), 2);
    // The circuit is open: new and due messages are rescheduled, the transport not called.
    let (b_id, b) = e.submit(&[&payer]).await;
    e.set(e.outbox(a).await.next_attempt_at.max(e.now()));
    assert_eq!(w.run_once().await.unwrap(), 2);
    assert_eq!(payer.sends().len(), 2, "no send while the circuit is open");
    for ob in [a, b] {
        let m = e.outbox(ob).await;
        assert_eq!(m.state, "queued");
        assert_eq!(
            m.next_attempt_at,
            opened_at + 10_000,
            "due when it half-opens"
        );
    }
    assert_eq!(
        e.outbox(b).await.attempts,
        0,
        "a deferral is not an attempt"
    );
    assert!(
        e.actions(&b_id)
            .await
            .iter()
            .any(|x| x == "outbox_deferred")
    );
    // After the open time: one trial, it succeeds, the circuit closes, the rest follow.
    e.set(opened_at + 10_000);
    for _ in 0..3 {
        w.run_once().await.unwrap();
        e.advance(1_000);
    }
    assert_eq!(e.outbox(a).await.state, "answered");
    assert_eq!(e.outbox(b).await.state, "answered");
    assert_eq!(payer.sends().len(), 4);
    assert_eq!(e.status(&a_id).await, "approved");
    assert_eq!(e.status(&b_id).await, "approved");
}
on_both!(
    circuit_breaker,
    circuit_breaker_opens_and_holds_the_transport
);

async fn lost_lease_cannot_overwrite(url: &str) {
    let mut e = Env::new(url, Format::X12Core, retry()).await;
    // Worker A hangs mid-send; when it comes back it has a refusal to report.
    let gate = Arc::new(Notify::new());
    let slow = Scripted::gated(&[Step::Refused("late refusal")], gate.clone());
    let fast = Scripted::new(&[]);
    let (id, ob) = e.submit(&[&slow, &fast]).await;
    let a = e.worker("worker-a", &slow);
    let b = e.worker("worker-b", &fast);
    let a_run = tokio::spawn(async move { a.run_once().await });
    tokio::time::timeout(WAIT, slow.entered.notified())
        .await
        .expect("worker A sends");
    let m = e.outbox(ob).await;
    assert_eq!(m.lease_owner.as_deref(), Some("worker-a"));
    // A's lease runs out and the floor passes: B takes the message over and resends it.
    assert!(m.next_attempt_at >= m.lease_until.unwrap());
    e.set(m.lease_until.unwrap().max(m.next_attempt_at) + 1);
    assert_eq!(b.run_once().await.unwrap(), 1);
    let m = e.outbox(ob).await;
    assert_eq!(m.state, "answered");
    assert_eq!(m.claims, 2);
    assert_eq!(e.status(&id).await, "approved");
    // A returns: its refusal is not written over B's result.
    gate.notify_one();
    let n = tokio::time::timeout(WAIT, a_run)
        .await
        .expect("worker A finishes")
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
    let after = e.outbox(ob).await;
    assert_eq!(after.state, "answered");
    assert_eq!(after.last_error, m.last_error);
    assert_eq!(e.status(&id).await, "approved");
    assert!(!e.actions(&id).await.iter().any(|a| a == "rejected"));
    assert_eq!(
        slow.sends()[0],
        fast.sends()[0],
        "the takeover resent the same bytes"
    );
}
on_both!(lost_lease, lost_lease_cannot_overwrite);

async fn crash_recovery_resends_the_same_bytes(url: &str) {
    let mut e = Env::new(url, Format::X12Core, retry()).await;
    let never = Arc::new(Notify::new());
    let hung = Scripted::gated(&[], never);
    let payer = Scripted::new(&[]);
    let (id, ob) = e.submit(&[&hung, &payer]).await;
    // A worker dies mid-send (its task is dropped: nothing after the first byte is written).
    let crashed = e.worker("crashed", &hung);
    let task = tokio::spawn(async move { crashed.run_once().await });
    tokio::time::timeout(WAIT, hung.entered.notified())
        .await
        .expect("the first worker sends");
    task.abort();
    let _ = task.await;
    let m = e.outbox(ob).await;
    assert_eq!((m.state.as_str(), m.attempts), ("sending", 1));
    let last = m.last_attempt_at.unwrap();
    // After the lease but before the retransmit floor: not claimed.
    let w = e.worker("restarted", &payer);
    e.set(m.lease_until.unwrap() + 1);
    assert!(e.now() < last + 5_000);
    assert_eq!(w.run_once().await.unwrap(), 0);
    e.set(last + 5_000);
    assert_eq!(w.run_once().await.unwrap(), 1);
    let m = e.outbox(ob).await;
    assert_eq!((m.state.as_str(), m.attempts), ("answered", 2));
    assert_eq!(e.status(&id).await, "approved");
    assert_eq!(
        hung.sends()[0],
        payer.sends()[0],
        "identical bytes and PayloadID"
    );
    assert_eq!(payer.sends().len(), 1);
    let ev = e.t.store.events(&id).await.unwrap();
    assert!(
        ev.iter().any(|x| x.action == "outbox_claimed"
            && x.reason
                .as_deref()
                .is_some_and(|r| r.contains("outcome unknown"))),
        "the reclaim says why"
    );
}
on_both!(crash_recovery, crash_recovery_resends_the_same_bytes);

async fn batch_delivered_then_answer_picked_up(url: &str) {
    let folder = std::env::temp_dir().join(format!(
        "priorauth-outbox-batch-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let inbound = folder.join("in");
    std::fs::create_dir_all(&inbound).unwrap();
    let mut e = Env::new(url, Format::X12Batch, retry()).await;
    let mut cfg = e.dir.route("*").unwrap().clone();
    cfg.inbound_dir = Some(inbound.clone());
    cfg.outbound_dir = Some(folder.join("out"));
    e.dir = Arc::new(PayerDirectory::single(cfg));
    let payer = Scripted::new(&[Step::Accept]);
    let (id, ob) = e.submit(&[&payer]).await;
    let w = e.worker("w1", &payer);
    assert_eq!(w.run_once().await.unwrap(), 1);
    assert_eq!(e.outbox(ob).await.state, "delivered");
    assert_eq!(e.status(&id).await, "submitted");
    // A partial file is left alone; the whole one is taken in and moved aside.
    let answer = payer.answers.lock().unwrap()[0].1.clone();
    std::fs::write(inbound.join("answer.x12.part"), &answer[..10]).unwrap();
    std::fs::write(inbound.join("answer.x12"), &answer).unwrap();
    assert_eq!(w.pick_up_batches().await.unwrap(), 1);
    assert!(inbound.join("processed/answer.x12").exists());
    assert!(inbound.join("answer.x12.part").exists());
    assert_eq!(e.status(&id).await, "approved");
    let m = e.outbox(ob).await;
    assert_eq!(m.state, "answered");
    assert!(m.inbound_message_id.is_some());
    assert_eq!(w.pick_up_batches().await.unwrap(), 0);
    let _ = std::fs::remove_dir_all(&folder);
}
on_both!(batch, batch_delivered_then_answer_picked_up);

async fn pas_submission_is_a_bundle(url: &str) {
    let mut e = Env::new(url, Format::FhirPas, retry()).await;
    let payer = Scripted::new(&[Step::Refused("OperationOutcome: invalid coverage")]);
    let (id, ob) = e.submit(&[&payer]).await;
    let raw = e.t.store.outbound_raw(ob).await.unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(v["resourceType"], "Bundle");
    let reference = e.t.record(&id).await.unwrap().submitter_reference;
    assert_eq!(v["identifier"]["value"], reference.as_str());
    assert_eq!(e.outbox(ob).await.format, "fhir-pas");
    let w = e.worker("w1", &payer);
    assert_eq!(w.run_once().await.unwrap(), 1);
    assert_eq!(payer.sends()[0].1, raw);
    assert_eq!(e.status(&id).await, "rejected");
}
on_both!(pas, pas_submission_is_a_bundle);

async fn pended_pas_record_is_inquired(url: &str) {
    let mut e = Env::new(url, Format::FhirPas, retry()).await;
    e.pended = true;
    let payer = Scripted::new(&[]);
    let (id, ob) = e.submit(&[&payer]).await;
    let w = e.worker("w1", &payer);
    assert_eq!(w.run_once().await.unwrap(), 1);
    assert_eq!(e.status(&id).await, "pended");
    // Not before `inquire_every_ms` (60 s here) since the last word from the payer.
    assert!(e.t.enqueue_inquiries(&e.dir).await.unwrap().is_empty());
    e.advance(61_000);
    let asked = e.t.enqueue_inquiries(&e.dir).await.unwrap();
    assert_eq!(asked.len(), 1);
    assert!(
        e.t.enqueue_inquiries(&e.dir).await.unwrap().is_empty(),
        "one inquiry in flight at a time"
    );
    // A refused inquiry is final for the inquiry, not for the authorization.
    payer
        .script
        .lock()
        .unwrap()
        .push_back(Step::Refused("inquiry not supported today"));
    assert_eq!(w.run_once().await.unwrap(), 1);
    assert_eq!(e.outbox(asked[0]).await.state, "refused");
    assert_eq!(e.status(&id).await, "pended");
    e.advance(61_000);
    let asked = e.t.enqueue_inquiries(&e.dir).await.unwrap();
    assert_eq!(asked.len(), 1, "asked again next period");
    let q = e.outbox(asked[0]).await;
    assert_eq!(
        (q.operation.as_str(), q.state.as_str()),
        ("inquire", "queued")
    );
    assert_eq!(q.request_id.as_deref(), Some(id.as_str()));
    assert_ne!(q.payload_id, e.outbox(ob).await.payload_id);
    let raw = e.t.store.outbound_raw(q.id).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&raw).contains("profile-pas-inquiry-request-bundle"));
    // The payer has decided meanwhile: the inquiry's answer approves the record.
    let req = e.t.body(&id).await.unwrap();
    let approval = e.answer(&req, false);
    *payer.answers.lock().unwrap() = vec![(req.submitter_reference.as_str().to_owned(), approval)];
    assert_eq!(w.run_once().await.unwrap(), 1);
    assert_eq!(e.outbox(q.id).await.state, "answered");
    assert_eq!(e.status(&id).await, "approved");
    assert_eq!(payer.sends()[2].1, raw);
    e.advance(600_000);
    assert!(
        e.t.enqueue_inquiries(&e.dir).await.unwrap().is_empty(),
        "decided: no more"
    );
}
on_both!(inquire, pended_pas_record_is_inquired);

async fn retry_after_is_honoured(url: &str) {
    let mut e = Env::new(url, Format::X12Core, retry()).await;
    let payer = Scripted::new(&[Step::Busy(30)]);
    let (id, ob) = e.submit(&[&payer]).await;
    let w = e.worker("w1", &payer);
    assert_eq!(w.run_once().await.unwrap(), 1);
    let m = e.outbox(ob).await;
    assert_eq!(m.state, "queued");
    assert_eq!(
        m.next_attempt_at,
        e.now() + 30_000,
        "the payer's Retry-After"
    );
    e.set(m.next_attempt_at);
    assert_eq!(w.run_once().await.unwrap(), 1);
    assert_eq!(e.status(&id).await, "approved");
}
on_both!(retry_after, retry_after_is_honoured);

/// Two workers, each with its own connection pool (as two processes would have), claim from
/// one PostgreSQL database at once: every message is sent exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_never_send_one_message_twice_postgres() {
    let Some(url) = db::pg_url().await else {
        return;
    };
    let mut e = Env::new(&url, Format::X12Core, retry()).await;
    let payer = Arc::new(Scripted {
        delay: Some(Duration::from_millis(2)),
        ..Default::default()
    });
    let total = 60;
    let mut ids = vec![];
    for _ in 0..total {
        ids.push(e.submit(&[&payer]).await);
    }
    let other = Tracker::open(&e.url, Clock::fixed(T0)).await.unwrap();
    let clock = e.clock.clone();
    let mk = |t: &Tracker, owner: &str| {
        let c = clock.clone();
        let mut o = WorkerOptions::new(owner);
        o.batch = 4;
        o.concurrency = 2;
        Worker::new(t, e.dir.clone(), factory(&payer), o)
            .with_clock(Arc::new(move || c.load(Ordering::SeqCst)))
    };
    let workers = [mk(&e.t, "proc-1"), mk(&other, "proc-2")];
    let store = e.t.store.clone();
    let mut tasks = vec![];
    for w in workers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = 0;
            loop {
                let n = w.run_once().await.unwrap();
                mine += n;
                if n == 0 {
                    let left = store.outbox_list(Some("queued")).await.unwrap().len()
                        + store.outbox_list(Some("sending")).await.unwrap().len();
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
    for (payload, _) in payer.sends() {
        *count.entry(payload).or_default() += 1;
    }
    assert_eq!(count.len(), total, "every message sent");
    assert!(
        count.values().all(|&n| n == 1),
        "a message was sent twice: {count:?}"
    );
    for (id, ob) in &ids {
        assert_eq!(e.outbox(*ob).await.state, "answered");
        assert_eq!(e.status(id).await, "approved");
    }
    eprintln!("claims per worker: {per_worker:?}");
}

/// `run` sleeps until poked, sends what was queued, and stops on shutdown.
async fn run_wakes_on_notify_and_stops(url: &str) {
    let mut e = Env::new(url, Format::X12Core, retry()).await;
    let payer = Scripted::new(&[]);
    let clock = e.clock.clone();
    let mut o = WorkerOptions::new("runner");
    o.poll_ms = 3_600_000; // only a poke wakes it
    let w = Worker::new(&e.t, e.dir.clone(), factory(&payer), o)
        .with_clock(Arc::new(move || clock.load(Ordering::SeqCst)));
    let poke = w.notifier();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runner = tokio::spawn({
        let w = w.clone();
        async move { w.run(stopped).await }
    });
    let (id, ob) = e.submit(&[&payer]).await;
    poke.notify_one();
    tokio::time::timeout(WAIT, async {
        while e.outbox(ob).await.state != "answered" {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the poked worker sends");
    assert_eq!(e.status(&id).await, "approved");
    stop.send(true).unwrap();
    tokio::time::timeout(WAIT, runner)
        .await
        .expect("the worker stops")
        .unwrap()
        .unwrap();
}
on_both!(run_loop, run_wakes_on_notify_and_stops);

/// The command line: `records submit --payers` queues, `outbox list / counts / retry`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_line_queues_lists_and_retries() {
    let url = db::sqlite_url();
    let e = Env::new(&url, Format::X12Core, retry()).await;
    let req = bench::request(&e.run, 0).unwrap();
    let id = e.t.create(&req, "alice").await.unwrap();
    e.t.send_to_review(&id, "alice").await.unwrap();
    let dir = std::env::temp_dir().join(format!(
        "priorauth-outbox-cli-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let payers = dir.join("payers.toml");
    std::fs::write(
        &payers,
        "[payers.\"*\"]\nformat = \"x12-core\"\nendpoint = \"http://127.0.0.1:9/core\"\n",
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_priorauth"))
            .args(args)
            .args(["--db", &url, "--actor", "alice", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = cli(&[
        "records",
        "submit",
        &id,
        "--payers",
        payers.to_str().unwrap(),
    ]);
    let ob = v["outbox"].as_i64().unwrap();
    assert_eq!(v["format"], "x12-core");
    let queued = cli(&["outbox", "list", "--state", "queued"]);
    assert_eq!(queued[0]["id"].as_i64(), Some(ob));
    assert_eq!(queued[0]["request_id"], id.as_str());
    // A worker finds the payer's credentials wrong: a dead letter a person retries.
    let payer = Scripted::new(&[Step::Config("credentials rejected")]);
    e.worker("w1", &payer).run_once().await.unwrap();
    assert_eq!(cli(&["outbox", "counts"])["dead"], 1);
    let v = cli(&["outbox", "retry", &ob.to_string()]);
    assert_eq!(v["state"], "queued");
    assert_eq!(e.outbox(ob).await.state, "queued");
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_priorauth"))
        .args(["outbox", "list", "--state", "lost", "--db", &url])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown outbox state"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A submission whose record no longer waits for the payer is not sent: answered meanwhile
/// (an answer applied just before a crash), or cancelled.
async fn stale_submissions_are_not_sent(url: &str) {
    let mut e = Env::new(url, Format::X12Core, retry()).await;
    let payer = Scripted::new(&[]);
    let (answered_id, a) = e.submit(&[&payer]).await;
    let (cancelled_id, c) = e.submit(&[&payer]).await;
    // The answer reaches the record by another path; the other record is cancelled.
    let answer = payer.answers.lock().unwrap()[0].1.clone();
    e.t.ingest(&answer, "test", &mut |_, _| {}).await.unwrap();
    assert_eq!(e.status(&answered_id).await, "approved");
    e.t.cancel(&cancelled_id, "alice", "no longer needed")
        .await
        .unwrap();
    let w = e.worker("w1", &payer);
    assert_eq!(w.run_once().await.unwrap(), 2);
    assert!(payer.sends().is_empty(), "nothing sent");
    assert_eq!(e.outbox(a).await.state, "answered");
    let m = e.outbox(c).await;
    assert_eq!(m.state, "dead");
    assert!(m.last_error.unwrap().contains("cancelled"));
}
on_both!(stale, stale_submissions_are_not_sent);
