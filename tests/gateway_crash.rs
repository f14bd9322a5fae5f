//! Crash test: 1,000 submissions through `priorauth serve` while it is killed with SIGKILL at
//! random moments and restarted (at least 10 times). Every submission must end in exactly one
//! final state, and the payer must never see a request twice as a new authorization.
//! Also: two `serve` processes on one PostgreSQL database share the outbox without sending
//! any message twice.

mod db;
mod harness;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use harness::*;

const TOTAL: usize = 1000;
const CLIENTS: usize = 16;

/// A tiny deterministic generator for the kill moments (seeded from the clock, printed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lo + (self.0 >> 33) % (hi - lo)
    }
}

/// Creates (with an idempotency key) and submits request `n`, retrying through restarts.
async fn submit_through_crashes(c: &Client, n: usize) -> String {
    let r = request(n, None, None);
    let key = format!("crash-{n}");
    loop {
        let id = match c
            .post("/v1/authorizations", r.to_string(), Some(&key))
            .await
        {
            Ok((201 | 200, v)) => v["id"].as_str().unwrap().to_owned(),
            Ok((503, _)) | Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Ok((s, v)) => panic!("create {n}: {s} {v}"),
        };
        match c
            .post(
                &format!("/v1/authorizations/{id}/submit"),
                String::new(),
                None,
            )
            .await
        {
            Ok((202 | 200, _)) => return id,
            Ok((409 | 503, _)) | Err(_) => {
                // 409: a concurrent change after a restart (e.g. it is being moved); read again.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok((s, v)) => panic!("submit {n}: {s} {v}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_submissions_survive_sigkill() {
    let dir = temp_dir("crash");
    let mock = mock_payer(&dir, None, None);
    let payers = payers_file(&dir, "x12-core", &format!("{}/core", mock.url()), "");
    let db = format!("sqlite://{}", dir.join("crash.db").display());
    let port = free_port();
    let mut gw = serve(&dir, &db, Some(&payers), port, &[]);
    let c = Arc::new(Client::clinician(&gw));

    let done = Arc::new(AtomicUsize::new(0));
    let mut clients = vec![];
    for k in 0..CLIENTS {
        let c = c.clone();
        let done = done.clone();
        clients.push(tokio::spawn(async move {
            let mut ids = vec![];
            let mut n = k;
            while n < TOTAL {
                ids.push((n, submit_through_crashes(&c, n).await));
                done.fetch_add(1, Ordering::SeqCst);
                n += CLIENTS;
            }
            ids
        }));
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("kill moments seeded with {seed}");
    let mut rng = Lcg(seed);
    let mut kills = 0;
    // Kill while submissions are under way, then a few more while the outbox drains.
    while kills < 12 || done.load(Ordering::SeqCst) < TOTAL {
        tokio::time::sleep(Duration::from_millis(rng.next(200, 1500))).await;
        gw.kill9();
        kills += 1;
        tokio::time::sleep(Duration::from_millis(rng.next(0, 300))).await;
        gw = serve(&dir, &db, Some(&payers), port, &[]);
        if kills > 200 {
            panic!(
                "submissions do not finish: {} of {TOTAL}",
                done.load(Ordering::SeqCst)
            );
        }
    }
    let mut by_n: BTreeMap<usize, String> = BTreeMap::new();
    for t in clients {
        for (n, id) in t.await.unwrap() {
            by_n.insert(n, id);
        }
    }
    eprintln!("{kills} kills; all {TOTAL} submitted");
    assert!(kills >= 10);

    // Let the last incarnation drain the outbox.
    let started = Instant::now();
    let records = loop {
        let (_, v) = c.get("/v1/authorizations").await.unwrap();
        let rows = v["records"].as_array().cloned().unwrap_or_default();
        let open = rows.iter().filter(|r| r["status"] != "approved").count();
        if rows.len() >= TOTAL && open == 0 {
            break rows;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{} records, {open} not approved after 300 s",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // One record per submission: idempotency held through every crash.
    assert_eq!(records.len(), TOTAL);
    let ids: std::collections::BTreeSet<&str> =
        records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for id in by_n.values() {
        assert!(ids.contains(id.as_str()));
    }
    // The payer: one new authorization per request, whatever was retransmitted.
    let stats = mock_json(&mock, "/mock/stats").await;
    let received = mock_json(&mock, "/mock/received").await;
    let new_by_trace = new_authorizations_by_trace(&received);
    let twice: Vec<_> = new_by_trace.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "new authorizations twice: {twice:?}");
    assert_eq!(new_by_trace.len(), TOTAL, "{stats}");
    assert_eq!(stats["new_authorizations"], TOTAL as u64, "{stats}");
    eprintln!(
        "payer saw {} requests: {} new authorizations, {} retransmits",
        stats["requests"], stats["new_authorizations"], stats["retransmits"]
    );
    drop(gw);
    assert_no_phi(&dir.join("serve.log"), &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_share_the_outbox() {
    let Some(url) = db::pg_url().await else {
        return;
    };
    let dir = temp_dir("pg-two");
    let mock = mock_payer(&dir, None, None);
    let payers = payers_file(&dir, "x12-core", &format!("{}/core", mock.url()), "");
    let (da, db_) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db_).unwrap();
    let a = serve(&da, &url, Some(&payers), free_port(), &[]);
    let b = serve(&db_, &url, Some(&payers), free_port(), &[]);
    let ca = Arc::new(Client::clinician(&a));
    let cb = Arc::new(Client::clinician(&b));
    let n = 200;
    let mut tasks = vec![];
    for k in 0..8 {
        let c = if k % 2 == 0 { ca.clone() } else { cb.clone() };
        tasks.push(tokio::spawn(async move {
            let mut i = k;
            while i < n {
                c.create_and_submit(&request(5000 + i, None, None)).await;
                i += 8;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let started = Instant::now();
    loop {
        let (_, v) = ca.get("/v1/authorizations?status=approved").await.unwrap();
        if v["records"].as_array().map(Vec::len) == Some(n) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not all approved"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Each message went out exactly once: no retransmit, no duplicate.
    let received = mock_json(&mock, "/mock/received").await;
    let mut per_trace: HashMap<String, u32> = HashMap::new();
    for r in received.as_array().unwrap() {
        *per_trace
            .entry(r["authorization"].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_trace.len(), n, "{per_trace:?}");
    assert!(per_trace.values().all(|c| *c == 1), "{per_trace:?}");
    // Both processes sent some (the work was shared).
    let sends = |d: &std::path::Path| {
        std::fs::read_to_string(d.join("serve.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("outbox send"))
            .count()
    };
    let (sa, sb) = (sends(&da), sends(&db_));
    eprintln!("sends: process a {sa}, process b {sb}");
    assert_eq!(sa + sb, n, "every message sent exactly once across both");
    assert!(sa > 0 && sb > 0, "both processes sent: {sa} + {sb}");
    drop((a, b));
    assert_no_phi(&da.join("serve.log"), &[]);
    assert_no_phi(&db_.join("serve.log"), &[]);
}
