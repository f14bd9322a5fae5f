//! The REST API in process on a random port, spoken to over HTTP: intake with validation and
//! idempotency, the approval chain with roles, group-committed intake on both backends, health,
//! metrics, and the OpenAPI document (current, and every route it names is served).

mod db;

use std::sync::Arc;

use priorauth::payers::{PayerConfig, PayerDirectory};
use priorauth::server::{self, ApiConfig, AppState};
use priorauth::tracking::{Clock, Tracker};
use serde_json::{Value, json};

const MRI: &str = include_str!("../fixtures/requests/mri-lumbar-outpatient.json");

struct Api {
    base: String,
    http: reqwest::Client,
    state: Arc<AppState>,
}

async fn start(url: &str, config: ApiConfig, group: bool) -> Api {
    let mut tracker = Tracker::open(url, Clock::system()).await.unwrap();
    if group {
        tracker.store = tracker.store.with_group_commit(256);
    }
    if !config.approval_chain {
        tracker.policy.approval.clear();
    }
    for (name, role) in [
        ("api", "clinician"),
        ("dr-synth", "clinician"),
        ("sup-synth", "supervisor"),
        ("fin-synth", "finance"),
    ] {
        tracker.set_actor(name, role, "test").await.unwrap();
    }
    let state = Arc::new(AppState {
        tracker: Arc::new(tracker),
        // Nothing is sent in these tests; the route only has to exist.
        directory: Arc::new(PayerDirectory::single(PayerConfig::core(
            "*",
            "http://127.0.0.1:9/core",
        ))),
        config,
        metrics: Default::default(),
        outbox_wake: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = server::router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Api {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        state,
    }
}

impl Api {
    async fn post(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

#[tokio::test]
async fn create_validates_and_reads_back() {
    let api = start(&db::sqlite_url(), ApiConfig::default(), true).await;
    let (s, v) = api.post("/v1/authorizations", MRI, &[]).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["status"], "draft");
    let id = v["id"].as_str().unwrap().to_owned();
    let (s, body) = api.get(&format!("/v1/authorizations/{id}")).await;
    assert_eq!(s, 200);
    let rec: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rec["id"], id.as_str());
    assert_eq!(rec["status"], "draft");
    assert_eq!(rec["history"][0]["action"], "created");
    let (s, body) = api.get(&format!("/v1/authorizations/{id}/request")).await;
    assert_eq!(s, 200);
    let back: Value = serde_json::from_str(&body).unwrap();
    let sent: Value = serde_json::from_str(MRI).unwrap();
    assert_eq!(back["submitter_reference"], sent["submitter_reference"]);

    // Not JSON: 400. A wrong value: 422 naming the field.
    let (s, v) = api.post("/v1/authorizations", "{not json", &[]).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let mut bad: Value = serde_json::from_str(MRI).unwrap();
    bad["service_lines"] = json!("twelve");
    let (s, v) = api.post("/v1/authorizations", &bad.to_string(), &[]).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["field"], "service_lines", "{v}");
    let (s, v) = api.post("/v1/authorizations", "", &[]).await;
    assert_eq!(s, 400, "{v}");

    // Unknown record and unknown route.
    let (s, body) = api.get("/v1/authorizations/nope").await;
    assert_eq!(s, 404, "{body}");
    let (s, body) = api.get("/v1/nothing-here").await;
    assert_eq!(s, 404);
    assert!(body.contains("no_route"), "{body}");
}

#[tokio::test]
async fn idempotency_key_returns_the_first_record() {
    let api = start(&db::sqlite_url(), ApiConfig::default(), true).await;
    let key = [("Idempotency-Key", "synthetic-key-1")];
    let (s1, v1) = api.post("/v1/authorizations", MRI, &key).await;
    let (s2, v2) = api.post("/v1/authorizations", MRI, &key).await;
    assert_eq!((s1, s2), (201, 200), "{v1} {v2}");
    assert_eq!(v1["id"], v2["id"]);
    assert_eq!(v2["created"], false);
    // The same key with another request is refused.
    let mut other: Value = serde_json::from_str(MRI).unwrap();
    other["submitter_reference"] = json!("OTHERREF01");
    let (s, v) = api
        .post("/v1/authorizations", &other.to_string(), &key)
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "idempotency_key_reused");
    let (_, list) = api.get("/v1/authorizations").await;
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["records"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn approval_chain_enforces_roles() {
    let config = ApiConfig {
        approval_chain: true,
        ..ApiConfig::default()
    };
    let api = start(&db::sqlite_url(), config, false).await;
    let dr = [("X-Actor", "dr-synth")];
    let (_, v) = api.post("/v1/authorizations", MRI, &dr).await;
    let id = v["id"].as_str().unwrap().to_owned();
    // With the chain on, a draft cannot be submitted.
    let (s, v) = api
        .post(&format!("/v1/authorizations/{id}/submit"), "", &dr)
        .await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = api
        .post(&format!("/v1/authorizations/{id}/review"), "", &dr)
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("internal_review")),
        "{v}"
    );
    // The clinician may not approve their own request; the supervisor may.
    let (s, v) = api
        .post(&format!("/v1/authorizations/{id}/approve"), "", &dr)
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    let (s, v) = api
        .post(
            &format!("/v1/authorizations/{id}/deny"),
            "{}",
            &[("X-Actor", "sup-synth")],
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (400, Some("reason")),
        "{v}"
    );
    let (s, v) = api
        .post(
            &format!("/v1/authorizations/{id}/approve"),
            r#"{"reason":"criteria met"}"#,
            &[("X-Actor", "sup-synth")],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(
        ["ready", "internal_review"].contains(&v["status"].as_str().unwrap()),
        "{v}"
    );
    let (_, body) = api.get(&format!("/v1/authorizations/{id}")).await;
    let rec: Value = serde_json::from_str(&body).unwrap();
    let actions: Vec<&str> = rec["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    // The supervisor's approval is recorded (forwarded to finance above its cost threshold).
    assert!(
        actions.contains(&"approved") || actions.contains(&"forwarded"),
        "{actions:?}"
    );
}

/// Many concurrent creates through the group committer: every 201 is in the database after it
/// is closed and opened again, and no record is there twice.
#[tokio::test]
async fn group_committed_intake_is_durable_on_both_backends() {
    for url in db::both().await {
        let api = start(&url, ApiConfig::default(), true).await;
        let mut tasks = vec![];
        for i in 0..120 {
            let http = api.http.clone();
            let base = api.base.clone();
            tasks.push(tokio::spawn(async move {
                let mut r: Value = serde_json::from_str(MRI).unwrap();
                r["submitter_reference"] = json!(format!("GRP{i:05}"));
                let key = format!("grp-{}", i % 100); // 20 retries among them
                let resp = http
                    .post(format!("{base}/v1/authorizations"))
                    .header("Idempotency-Key", key)
                    .body(if i >= 100 {
                        let mut r2 = r.clone();
                        r2["submitter_reference"] = json!(format!("GRP{:05}", i - 100));
                        r2.to_string()
                    } else {
                        r.to_string()
                    })
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let v: Value = resp.json().await.unwrap();
                (status, v["id"].as_str().unwrap().to_owned())
            }));
        }
        let mut ids = std::collections::BTreeSet::new();
        for t in tasks {
            let (status, id) = t.await.unwrap();
            assert!(status == 201 || status == 200, "{status}");
            ids.insert(id);
        }
        assert_eq!(ids.len(), 100, "one record per idempotency key");
        let again = Tracker::open(&url, Clock::system()).await.unwrap();
        let rows = again.list(None).await.unwrap();
        assert_eq!(rows.len(), 100);
        for r in rows {
            assert!(ids.contains(&r.id));
        }
        drop(api.state);
    }
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    let api = start(&db::sqlite_url(), ApiConfig::default(), true).await;
    assert_eq!(api.get("/healthz").await.0, 200);
    assert_eq!(api.get("/readyz").await.0, 200);
    api.post("/v1/authorizations", MRI, &[]).await;
    let (s, text) = api.get("/metrics").await;
    assert_eq!(s, 200);
    assert!(
        text.contains(
            "priorauth_http_requests_total{method=\"POST\",route=\"/v1/authorizations\",status=\"201\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("priorauth_records{status=\"draft\"} 1"),
        "{text}"
    );
    // No member id or name in the metrics.
    assert!(!text.contains("SYNTH"), "{text}");

    let (s, served) = api.get("/openapi.json").await;
    assert_eq!(s, 200);
    let served: Value = serde_json::from_str(&served).unwrap();
    let generated = priorauth::server::openapi::document();
    assert_eq!(served, generated);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/openapi.json");
    let pretty = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    if std::env::var("UPDATE_SCHEMAS").is_ok() {
        std::fs::write(path, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == pretty,
        "schemas/openapi.json is stale: run UPDATE_SCHEMAS=1 cargo test --test server_api"
    );

    // Every documented route is routed (answers something other than the no_route fallback).
    for r in priorauth::server::openapi::ROUTES {
        let url = format!("{}{}", api.base, r.path.replace("{id}", "no-such-record"));
        let method = reqwest::Method::from_bytes(r.method.to_uppercase().as_bytes()).unwrap();
        let resp = api
            .http
            .request(method, &url)
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert!(
            !body.contains("\"no_route\"") && status != 405,
            "{} {} is documented but not routed: {status} {body}",
            r.method,
            r.path
        );
    }
}
