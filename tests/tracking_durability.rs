//! Durability: control numbers from concurrent processes, and an ingest killed in the middle.

mod db;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use priorauth::tracking::{Clock, Tracker, bench};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_priorauth"))
}

/// Three processes take control numbers from the same database at once.
fn concurrent_allocators(url: &str) {
    let children: Vec<_> = (0..3)
        .map(|_| {
            bin()
                .args([
                    "control-numbers",
                    "--partner",
                    "ZZ:SYNPLAN01",
                    "--count",
                    "200",
                    "--json",
                ])
                .env("PRIORAUTH_DB", url)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut all: Vec<i64> = vec![];
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<i64> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(got.len(), 200);
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "each process sees them grow"
        );
        all.extend(got);
    }
    all.sort();
    assert_eq!(
        all,
        (1..=600).collect::<Vec<i64>>(),
        "a number was handed out twice or lost"
    );
}

#[test]
fn two_processes_never_share_a_control_number_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    if let Some(url) = rt.block_on(db::pg_url()) {
        concurrent_allocators(&url);
    }
}

#[test]
fn two_processes_never_share_a_control_number_sqlite() {
    concurrent_allocators(&db::sqlite_url());
}

struct Counts {
    applied: i64,
    total: Option<i64>,
    state: String,
    items: i64,
    decisions: i64,
    lines: i64,
    approved: i64,
    decision_events: i64,
}

async fn counts(url: &str) -> Counts {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let one = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
                .try_get::<i64, _>(0)
                .unwrap()
        }
    };
    let m = sqlx::query("SELECT items_applied, items_total, state FROM inbound_messages")
        .fetch_one(&pool)
        .await
        .unwrap();
    let c = Counts {
        applied: m.try_get(0).unwrap(),
        total: m.try_get(1).unwrap(),
        state: m.try_get(2).unwrap(),
        items: one("SELECT COUNT(*) FROM inbound_items").await,
        decisions: one("SELECT COUNT(*) FROM decisions").await,
        lines: one("SELECT COUNT(*) FROM line_decisions").await,
        approved: one("SELECT COUNT(*) FROM requests WHERE status = 'approved'").await,
        decision_events: one("SELECT COUNT(*) FROM events WHERE action = 'decision_received'")
            .await,
    };
    pool.close().await;
    c
}

/// Kills `priorauth ingest` after its first acknowledged chunk: what it acknowledged is
/// there, every record is whole (decision, lines, status, event together or not at all), and
/// a second ingest of the same file finishes the job exactly once.
async fn killed_ingest(url: &str) {
    const N: usize = 8000;
    let t = Tracker::open(url, Clock::parse("2027-01-02").unwrap())
        .await
        .unwrap();
    let data = bench::seed(&t, "CRASH1", N).await.unwrap();
    t.store.close().await;
    let dir = std::env::temp_dir().join(format!("priorauth-crash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("batch-{}.x12", url.len()));
    std::fs::write(&file, &data).unwrap();

    let mut child = bin()
        .args(["ingest", "--progress", file.to_str().unwrap()])
        .env("PRIORAUTH_DB", url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let acknowledged: i64 = line
        .strip_prefix("applied ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected progress line {line:?}"));

    let c = counts(url).await;
    assert!(
        c.applied >= acknowledged,
        "acknowledged {acknowledged}, kept {}",
        c.applied
    );
    assert!(
        c.applied < N as i64,
        "the ingest was not interrupted (it finished before the kill); raise N"
    );
    assert_eq!(c.state, "applying");
    assert_eq!(c.total, Some(N as i64));
    // Whole chunks only: every counted item has its decision, its lines, its status, its event.
    assert_eq!(c.items, c.applied);
    assert_eq!(c.decisions, c.applied);
    assert_eq!(c.lines, 2 * c.applied);
    assert_eq!(c.approved, c.applied);
    assert_eq!(c.decision_events, c.applied);

    let out = bin()
        .args(["ingest", "--json", file.to_str().unwrap()])
        .env("PRIORAUTH_DB", url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["resumed_after"], c.applied, "{}", r["counts"]);
    assert_eq!(r["counts"]["applied"], N as i64 - c.applied);
    let c = counts(url).await;
    assert_eq!(c.state, "applied");
    assert_eq!(
        (c.items, c.decisions, c.approved, c.decision_events),
        (N as i64, N as i64, N as i64, N as i64)
    );
    assert_eq!(c.lines, 2 * N as i64);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_ingest_sqlite() {
    killed_ingest(&db::sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_ingest_postgres() {
    if let Some(url) = db::pg_url().await {
        killed_ingest(&url).await;
    }
}

/// Six processes record the last units of one authorization at once: none over-counts.
async fn racing_services(url: &str) {
    let clock = Clock::parse("2027-01-20").unwrap();
    let t = Tracker::open(url, clock).await.unwrap();
    let data = bench::seed(&t, "RACE01", 1).await.unwrap();
    let r = t.ingest(&data, "race", &mut |_, _| {}).await.unwrap();
    assert_eq!(r.counts.get("applied"), Some(&1));
    let id = r.items[0].request_id.clone().unwrap();
    let visit = priorauth::tracking::ledger::Delivered {
        code: "97110".into(),
        units: "1".into(),
        date: "2027-01-10".into(),
        provider: None,
    };
    for _ in 0..10 {
        t.record_service(&id, &visit, "alice", None).await.unwrap();
    }
    t.store.close().await;
    let children: Vec<_> = (0..6)
        .map(|_| {
            bin()
                .args([
                    "services",
                    "record",
                    &id,
                    "--code",
                    "97110",
                    "--units",
                    "1",
                    "--date",
                    "2027-01-11",
                ])
                .env("PRIORAUTH_DB", url)
                .env("PRIORAUTH_NOW", "2027-01-20")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ok = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!e.contains("panicked"), "{e}");
        if out.status.success() {
            ok += 1;
        } else {
            assert!(
                e.contains("over the authorization")
                    || e.contains("changed concurrently")
                    || e.contains("locked"),
                "{e}"
            );
        }
    }
    let t = Tracker::open(url, clock).await.unwrap();
    let v = t.show(&id).await.unwrap();
    let line = &v.lines[0];
    assert_eq!(line.authorized.as_deref(), Some("12"));
    assert_eq!(line.used, (10 + ok).to_string());
    assert!(ok <= 2, "{ok} services recorded past 10 of 12");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_services_sqlite() {
    racing_services(&db::sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_services_postgres() {
    if let Some(url) = db::pg_url().await {
        racing_services(&url).await;
    }
}

/// A correction voids the service it replaces in the same transaction; a refused correction
/// leaves the original alone; services outside the dates are refused with the reason.
async fn corrections(url: &str) {
    use priorauth::tracking::{TrackingError, ledger::Delivered};
    let t = Tracker::open(url, Clock::parse("2027-01-20").unwrap())
        .await
        .unwrap();
    let data = bench::seed(&t, "CORR01", 1).await.unwrap();
    let r = t.ingest(&data, "corr", &mut |_, _| {}).await.unwrap();
    let id = r.items[0].request_id.clone().unwrap();
    let visit = |units: &str, date: &str| Delivered {
        code: "97110".into(),
        units: units.into(),
        date: date.into(),
        provider: Some("1760000004".into()),
    };
    let first = t
        .record_service(&id, &visit("3", "2027-01-10"), "alice", None)
        .await
        .unwrap();
    assert_eq!(first.remaining.as_deref(), Some("9"));
    let fixed = t
        .record_service(
            &id,
            &visit("2", "2027-01-10"),
            "alice",
            Some(first.service_id),
        )
        .await
        .unwrap();
    assert_eq!(fixed.remaining.as_deref(), Some("10"));
    let e = t
        .record_service(
            &id,
            &visit("1", "2026-12-31"),
            "alice",
            Some(fixed.service_id),
        )
        .await
        .unwrap_err();
    let TrackingError::Refused(reason) = e else {
        panic!("{e}")
    };
    assert!(
        reason.contains("outside the authorized period 2027-01-04 to 2027-03-31"),
        "{reason}"
    );
    let v = t.show(&id).await.unwrap();
    let states: Vec<(&str, Option<i64>)> = v
        .services
        .iter()
        .map(|s| (s.state.as_str(), s.corrects_id))
        .collect();
    assert_eq!(
        states,
        [("voided", None), ("recorded", Some(first.service_id))]
    );
    assert_eq!(v.lines[0].used, "2");
    let e = t
        .void_service(first.service_id, "alice", "again")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already voided"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_sqlite() {
    corrections(&db::sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_postgres() {
    if let Some(url) = db::pg_url().await {
        corrections(&url).await;
    }
}

/// A pended answer and the final one in the same file: both applied in order, the last decides.
async fn pended_then_approved(url: &str) {
    use priorauth::domain::{ActionCode, Status};
    use priorauth::x12::tx278;
    use priorauth::x12::writer::{EnvelopeSettings, MemoryControlNumbers};
    let clock = Clock::parse("2027-01-03").unwrap();
    let t = Tracker::open(url, clock).await.unwrap();
    bench::seed(&t, "PEND01", 1).await.unwrap();
    let req = bench::request("PEND01", 0).unwrap();
    let approved = bench::approval(&req, "AUTHP1").unwrap();
    let mut pended = approved.clone();
    pended.decision.status = Status::Pended;
    pended.decision.action = Some(ActionCode::Pended);
    pended.decision.certification_number = None;
    pended.decision.lines.clear();
    let data = tx278::encode_responses(
        &[pended, approved],
        &EnvelopeSettings::default().reversed(),
        &MemoryControlNumbers::new(),
        clock.stamp(),
    )
    .unwrap();
    let r = t.ingest(&data, "pend", &mut |_, _| {}).await.unwrap();
    assert_eq!(r.counts.get("applied"), Some(&2), "{:?}", r.items);
    let id = r.items[0].request_id.clone().unwrap();
    let v = t.show(&id).await.unwrap();
    assert_eq!(v.record.status, "approved");
    let statuses: Vec<&str> = v.decisions.iter().map(|d| d.status.as_str()).collect();
    assert_eq!(statuses, ["pended", "approved"]);
    assert_eq!(v.lines[0].authorized.as_deref(), Some("12"));
    let moves: Vec<(Option<&str>, Option<&str>)> = v
        .history
        .iter()
        .filter(|e| e.action == "decision_received")
        .map(|e| (e.from_status.as_deref(), e.to_status.as_deref()))
        .collect();
    assert_eq!(
        moves,
        [
            (Some("submitted"), Some("pended")),
            (Some("pended"), Some("approved"))
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pended_then_approved_sqlite() {
    pended_then_approved(&db::sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pended_then_approved_postgres() {
    if let Some(url) = db::pg_url().await {
        pended_then_approved(&url).await;
    }
}
