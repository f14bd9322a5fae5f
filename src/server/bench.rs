//! The intake benchmark: accepted requests per second (validated, durably stored, 201) with
//! p50/p99 latency, for our API (group commit) beside a naive floor measured in the same run on
//! the same database: a bare axum handler that inserts one row per request in its own
//! transaction (one fsync each). Clients, servers and database share the machine, so the
//! ratio is what to read, not the absolute figures.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde::Serialize;
use sqlx::any::AnyPoolOptions;

use super::{ApiConfig, AppState};
use crate::payers::{PayerConfig, PayerDirectory};
use crate::tracking::{Clock, Tracker};

const SAMPLE: &str = include_str!("../../fixtures/requests/mri-lumbar-outpatient.json");

#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    pub name: String,
    pub requests: usize,
    pub errors: usize,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct IntakeReport {
    pub database: String,
    pub concurrency: usize,
    pub naive: LoadResult,
    pub ours: LoadResult,
    /// ours.per_second / naive.per_second.
    pub ratio: f64,
}

/// Request bodies: the sample with a distinct submitter reference each.
fn bodies(n: usize, tag: &str) -> Arc<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(SAMPLE).expect("the sample request is JSON");
    Arc::new(
        (0..n)
            .map(|i| {
                let mut r = v.clone();
                r["submitter_reference"] = serde_json::json!(format!("{tag}{i:08}"));
                r.to_string()
            })
            .collect(),
    )
}

/// `concurrency` clients, each sending its share of `bodies` one after another.
pub async fn drive(
    name: &str,
    url: &str,
    bodies: Arc<Vec<String>>,
    concurrency: usize,
    idempotency: Option<&str>,
    bearer: Option<&str>,
) -> LoadResult {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap_or_default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let http = http.clone();
        let url = url.to_owned();
        let bodies = bodies.clone();
        let key = idempotency.map(str::to_owned);
        let bearer = bearer.map(str::to_owned);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            let mut i = c;
            while i < bodies.len() {
                let t = Instant::now();
                let mut req = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(bodies[i].clone());
                if let Some(k) = &key {
                    req = req.header("Idempotency-Key", format!("{k}-{i}"));
                }
                if let Some(b) = &bearer {
                    req = req.bearer_auth(b);
                }
                match req.send().await {
                    Ok(r) if r.status() == StatusCode::CREATED => {
                        let _ = r.bytes().await;
                    }
                    _ => errors += 1,
                }
                lat.push(t.elapsed());
                i += concurrency;
            }
            (lat, errors)
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            lat.extend(l);
            errors += e;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i].as_secs_f64() * 1000.0
    };
    LoadResult {
        name: name.to_owned(),
        requests: lat.len(),
        errors,
        seconds,
        per_second: (lat.len() - errors) as f64 / seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: lat.last().map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0),
    }
}

async fn serve_on(app: Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Ok(addr)
}

/// The floor: one INSERT, one transaction, one fsync per request; no validation.
async fn naive(url: &str) -> Result<SocketAddr, String> {
    sqlx::any::install_default_drivers();
    let sqlite = url.starts_with("sqlite:");
    let url = if sqlite && !url.contains("mode=") {
        format!("{url}?mode=rwc")
    } else {
        url.to_owned()
    };
    let pool = AnyPoolOptions::new()
        .max_connections(if sqlite { 1 } else { 4 })
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    for p in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = FULL",
                        "PRAGMA busy_timeout = 10000",
                    ] {
                        sqlx::query(p).execute(&mut *conn).await?;
                    }
                }
                Ok(())
            })
        })
        .connect(&url)
        .await
        .map_err(|e| format!("naive floor: cannot open the database: {e}"))?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_naive_intake (id TEXT PRIMARY KEY, body TEXT NOT NULL, at BIGINT NOT NULL)",
    )
    .execute(&pool)
    .await
    .map_err(|e| format!("naive floor: {e}"))?;
    async fn insert(State(pool): State<sqlx::AnyPool>, body: Bytes) -> StatusCode {
        let id = uuid::Uuid::new_v4().to_string();
        let body = String::from_utf8_lossy(&body).into_owned();
        let r = sqlx::query("INSERT INTO bench_naive_intake (id, body, at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(body)
            .bind(crate::store::now_ms())
            .execute(&pool)
            .await;
        if r.is_ok() {
            StatusCode::CREATED
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
    let app = Router::new()
        .route("/intake", post(insert))
        .with_state(pool);
    serve_on(app).await.map_err(|e| e.to_string())
}

/// Our intake on `url`: the full router with group commit and authentication (a clinician's
/// API key, checked and audited on every request, as `serve` runs it). Returns the key too.
pub async fn ours(url: &str) -> Result<(SocketAddr, Arc<AppState>, String), String> {
    let mut tracker = Tracker::open(url, Clock::system())
        .await
        .map_err(|e| e.to_string())?;
    tracker.store = tracker.store.with_group_commit(512);
    tracker.policy.approval.clear();
    let key = crate::auth::create_key(
        &tracker.store,
        crate::tracking::DEFAULT_TENANT,
        "clinician",
        Some("bench-intake"),
        None,
        crate::store::now_ms(),
    )
    .await
    .map_err(|e| format!("cannot create the benchmark's key: {e}"))?
    .key;
    let state = Arc::new(AppState {
        tracker: Arc::new(tracker),
        directory: Arc::new(PayerDirectory::single(PayerConfig::core(
            "*",
            "http://127.0.0.1:9/core",
        ))),
        config: ApiConfig {
            auth: true,
            ..ApiConfig::default()
        },
        metrics: Default::default(),
        outbox_wake: Default::default(),
    });
    let addr = serve_on(super::router(state.clone()))
        .await
        .map_err(|e| e.to_string())?;
    Ok((addr, state, key))
}

/// Runs both, `requests` each, with `concurrency` clients; a warm-up of 1/10 first.
pub async fn intake(
    naive_url: &str,
    ours_url: &str,
    requests: usize,
    concurrency: usize,
) -> Result<IntakeReport, String> {
    let floor = naive(naive_url).await?;
    let (addr, _state, key) = ours(ours_url).await?;
    let warm = (requests / 10).max(10);
    drive(
        "warm-up",
        &format!("http://{floor}/intake"),
        bodies(warm, "WN"),
        concurrency,
        None,
        None,
    )
    .await;
    drive(
        "warm-up",
        &format!("http://{addr}/v1/authorizations"),
        bodies(warm, "WO"),
        concurrency,
        Some("warm"),
        Some(&key),
    )
    .await;
    let naive = drive(
        "naive floor (one insert + fsync per request)",
        &format!("http://{floor}/intake"),
        bodies(requests, "NV"),
        concurrency,
        None,
        None,
    )
    .await;
    let ours = drive(
        "priorauth intake (authenticated + audited, validated, record + version + event + idempotency key, group commit)",
        &format!("http://{addr}/v1/authorizations"),
        bodies(requests, "OU"),
        concurrency,
        Some("run"),
        Some(&key),
    )
    .await;
    Ok(IntakeReport {
        database: crate::store::redact_url(ours_url),
        concurrency,
        ratio: if naive.per_second > 0.0 {
            ours.per_second / naive.per_second
        } else {
            0.0
        },
        naive,
        ours,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct EndToEndReport {
    pub database: String,
    pub format: String,
    pub requests: usize,
    pub concurrency: usize,
    /// Creates and submits answered (201 + 202).
    pub submitted: usize,
    /// Records that reached their decision.
    pub decided: usize,
    pub seconds: f64,
    pub decisions_per_second: f64,
    /// From the record's submission to its decision (both stamped by the gateway).
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// End to end: `requests` records created and submitted through the API by `concurrency`
/// clients, sent by the outbox to the mock payer (in process, over HTTP) in `format`, answered and
/// applied; decisions per second over the whole run, latency from submission to decision.
pub async fn end_to_end(
    db: &str,
    format: crate::payers::Format,
    requests: usize,
    concurrency: usize,
) -> Result<EndToEndReport, String> {
    let (mock, _h) = crate::mockpayer::spawn(
        crate::mockpayer::Rules::default(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        None,
    )
    .await
    .map_err(|e| format!("mock payer: {e}"))?;
    let path = match format {
        crate::payers::Format::FhirPas => "fhir",
        _ => "core",
    };
    let dir = std::env::temp_dir().join(format!("priorauth-bench-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let payers = dir.join("payers.toml");
    std::fs::write(
        &payers,
        format!(
            "[payers.\"*\"]\nformat = \"{}\"\nendpoint = \"http://{mock}/{path}\"\n",
            format.as_str()
        ),
    )
    .map_err(|e| e.to_string())?;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        l.local_addr().map_err(|e| e.to_string())?.port()
    };
    let opts = super::serve::ServeOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        db: db.to_owned(),
        payers: Some(payers),
        poll_ms: 50,
        ..Default::default()
    };
    // The gateway authenticates every request: the benchmark acts as a clinician.
    let key = {
        let store = crate::store::Store::open(db)
            .await
            .map_err(|e| format!("cannot open {db}: {e}"))?;
        let made = crate::auth::create_key(
            &store,
            crate::tracking::DEFAULT_TENANT,
            "clinician",
            Some("bench"),
            None,
            crate::store::now_ms(),
        )
        .await
        .map_err(|e| format!("cannot create the benchmark's key: {e}"))?;
        store.close().await;
        made.key
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let r = super::serve::serve(opts, |l| {
            let _ = tx.send(l.addr);
        })
        .await;
        if let Err(e) = r {
            eprintln!("bench serve: {e}");
        }
    });
    let addr = tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .map_err(|_| "the gateway did not start".to_string())?
        .map_err(|_| "the gateway did not start".to_string())?;
    let base = format!("http://{addr}");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|e| e.to_string())?,
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .map_err(|e| e.to_string())?;
    let bodies = {
        let v: serde_json::Value = serde_json::from_str(SAMPLE).map_err(|e| e.to_string())?;
        Arc::new(
            (0..requests)
                .map(|i| {
                    let mut r = v.clone();
                    r["submitter_reference"] = serde_json::json!(format!("E2EB{i:08}"));
                    r["event"]["trace_numbers"][0]["reference"] =
                        serde_json::json!(format!("TRCB{i:08}"));
                    r.to_string()
                })
                .collect::<Vec<_>>(),
        )
    };
    let started = Instant::now();
    let mut tasks = vec![];
    for c in 0..concurrency {
        let http = http.clone();
        let base = base.clone();
        let bodies = bodies.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0usize;
            let mut i = c;
            while i < bodies.len() {
                let created = http
                    .post(format!("{base}/v1/authorizations"))
                    .header("content-type", "application/json")
                    .body(bodies[i].clone())
                    .send()
                    .await;
                let id = match created {
                    Ok(r) if r.status() == StatusCode::CREATED => r
                        .json::<serde_json::Value>()
                        .await
                        .ok()
                        .and_then(|v| v["id"].as_str().map(str::to_owned)),
                    _ => None,
                };
                if let Some(id) = id
                    && let Ok(r) = http
                        .post(format!("{base}/v1/authorizations/{id}/submit"))
                        .send()
                        .await
                    && r.status() == StatusCode::ACCEPTED
                {
                    ok += 1;
                }
                i += concurrency;
            }
            ok
        }));
    }
    let mut submitted = 0;
    for t in tasks {
        submitted += t.await.unwrap_or(0);
    }
    // Wait for the decisions (or give up after a generous limit).
    let limit = Duration::from_secs(60 + requests as u64 / 10);
    let rows = loop {
        let v: serde_json::Value = http
            .get(format!("{base}/v1/authorizations"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let rows = v["records"].as_array().cloned().unwrap_or_default();
        let decided = rows.iter().filter(|r| !r["decided_at"].is_null()).count();
        if decided >= submitted || started.elapsed() > limit {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut lat: Vec<f64> = rows
        .iter()
        .filter_map(|r| Some((r["decided_at"].as_i64()? - r["submitted_at"].as_i64()?) as f64))
        .collect();
    let last = rows
        .iter()
        .filter_map(|r| r["decided_at"].as_i64())
        .max()
        .unwrap_or(0);
    let first = rows
        .iter()
        .filter_map(|r| r["created_at"].as_i64())
        .min()
        .unwrap_or(0);
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1]
        }
    };
    let seconds = ((last - first).max(1)) as f64 / 1000.0;
    Ok(EndToEndReport {
        database: crate::store::redact_url(db),
        format: format.as_str().to_owned(),
        requests,
        concurrency,
        submitted,
        decided: lat.len(),
        seconds,
        decisions_per_second: lat.len() as f64 / seconds,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    })
}
