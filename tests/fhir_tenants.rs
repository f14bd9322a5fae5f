//! The FHIR endpoint in process keeps tenants apart: a record, its ClaimResponse, searches,
//! inquiries and Subscriptions of tenant A are not found by tenant B (404 like a missing one).
//! Each tenant's caller has a clinician API key of its own (authentication on, as in `serve`).

mod db;

use std::sync::Arc;
use std::time::Duration;

use priorauth::payers::{PayerConfig, PayerDirectory};
use priorauth::server::{self, ApiConfig, AppState};
use priorauth::tracking::{Clock, Tracker};
use serde_json::{Value, json};

const REQUEST: &str = include_str!("../fixtures/pas/synthetic-professional-therapy-request.json");

/// The API key of each (gateway, tenant), made when the gateway starts.
static KEYS: std::sync::Mutex<Vec<(String, String, String)>> = std::sync::Mutex::new(Vec::new());

fn key_for(url: &str, tenant: &str) -> String {
    let keys = KEYS.lock().unwrap();
    keys.iter()
        .find(|(base, t, _)| url.starts_with(base.as_str()) && t == tenant)
        .map(|(_, _, k)| k.clone())
        .unwrap_or_else(|| panic!("no key for tenant {tenant}"))
}

async fn start(url: &str) -> String {
    let mut tracker = Tracker::open(url, Clock::system()).await.unwrap();
    tracker.policy.approval.clear();
    tracker.set_actor("api", "clinician", "test").await.unwrap();
    let state = Arc::new(AppState {
        tracker: Arc::new(tracker),
        // No outbox worker runs here: every submission waits out the limit and is pended.
        directory: Arc::new(PayerDirectory::single(PayerConfig::core(
            "*",
            "http://127.0.0.1:9/core",
        ))),
        config: ApiConfig {
            fhir_wait: Duration::from_millis(200),
            auth: true,
            ..ApiConfig::default()
        },
        metrics: Default::default(),
        outbox_wake: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    for tenant in ["clinic-a", "clinic-b"] {
        let k = priorauth::auth::create_key(
            &state.tracker.store,
            tenant,
            "clinician",
            Some("fhir-client"),
            None,
            priorauth::store::now_ms(),
        )
        .await
        .unwrap();
        KEYS.lock()
            .unwrap()
            .push((format!("http://{addr}/"), tenant.to_owned(), k.key));
    }
    let app = server::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/fhir")
}

async fn call(
    method: reqwest::Method,
    url: String,
    tenant: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let key = key_for(&url, tenant);
    let mut r = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(key)
        .timeout(Duration::from_secs(30));
    if let Some(b) = body {
        r = r
            .header("content-type", "application/fhir+json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

async fn isolation(url: &str) {
    use reqwest::Method as M;
    let base = start(url).await;
    let req: Value = serde_json::from_str(REQUEST).unwrap();

    // Tenant A submits; the payer is not reached in time: A4 with the tracking number.
    let (s, resp) = call(
        M::POST,
        format!("{base}/Claim/$submit"),
        "clinic-a",
        Some(&req),
    )
    .await;
    assert_eq!(s, 200, "{resp}");
    let id = resp["id"].as_str().unwrap().to_owned();
    let cr = &resp["entry"][0]["resource"];
    assert!(cr.to_string().contains(&id), "the tracking number: {cr}");

    let (s, _) = call(
        M::GET,
        format!("{base}/ClaimResponse/{id}"),
        "clinic-a",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = call(
        M::GET,
        format!("{base}/ClaimResponse/{id}"),
        "clinic-b",
        None,
    )
    .await;
    assert_eq!((s, &v["resourceType"]), (404, &json!("OperationOutcome")));
    let (s, missing) = call(
        M::GET,
        format!("{base}/ClaimResponse/nothing"),
        "clinic-b",
        None,
    )
    .await;
    assert_eq!(s, 404);
    assert_eq!(
        v["issue"][0]["code"], missing["issue"][0]["code"],
        "another tenant's record looks like a missing one"
    );

    let search = format!("{base}/ClaimResponse?identifier={id}");
    let (_, v) = call(M::GET, search.clone(), "clinic-a", None).await;
    assert_eq!(v["total"], 1, "{v}");
    let (_, v) = call(M::GET, search, "clinic-b", None).await;
    assert_eq!(v["total"], 0, "{v}");

    // The same Bundle.identifier in tenant B is B's own new record.
    let (s, other) = call(
        M::POST,
        format!("{base}/Claim/$submit"),
        "clinic-b",
        Some(&req),
    )
    .await;
    assert_eq!(s, 200, "{other}");
    assert_ne!(other["id"], json!(id));

    // Inquiry: each tenant finds only its own.
    let mut inquiry = req.clone();
    inquiry["meta"] = json!({"profile": ["http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-pas-inquiry-request-bundle"]});
    for t in ["clinic-a", "clinic-b"] {
        let (s, v) = call(M::POST, format!("{base}/Claim/$inquire"), t, Some(&inquiry)).await;
        assert_eq!(s, 200, "{v}");
        let found = priorauth::fhir::inquiry::response_bundles(&v);
        assert_eq!(found.len(), 1, "{t}: {v}");
    }

    // Subscriptions.
    let sub = json!({"resourceType": "Subscription", "status": "requested",
        "criteria": priorauth::fhir::subscription::TOPIC,
        "_criteria": {"extension": [{"url": priorauth::fhir::subscription::FILTER_EXT, "valueString": "org-identifier=1987654328"}]},
        "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook", "payload": "application/fhir+json"}});
    let (s, v) = call(
        M::POST,
        format!("{base}/Subscription"),
        "clinic-a",
        Some(&sub),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let sid = v["id"].as_str().unwrap().to_owned();
    let at = format!("{base}/Subscription/{sid}");
    let (s, _) = call(M::GET, at.clone(), "clinic-b", None).await;
    assert_eq!(s, 404);
    let (s, _) = call(M::PUT, at.clone(), "clinic-b", Some(&sub)).await;
    assert_eq!(s, 404);
    let (s, _) = call(M::DELETE, at.clone(), "clinic-b", None).await;
    assert_eq!(s, 404);
    let (_, list) = call(M::GET, format!("{base}/Subscription"), "clinic-b", None).await;
    assert_eq!(list["total"], 0);
    let (s, v) = call(M::GET, at.clone(), "clinic-a", None).await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = call(M::DELETE, at, "clinic-a", None).await;
    assert_eq!(s, 204);
}

#[tokio::test]
async fn tenants_do_not_see_each_other_sqlite() {
    isolation(&db::sqlite_url()).await;
}

#[tokio::test]
async fn tenants_do_not_see_each_other_postgres() {
    let Some(url) = db::pg_url().await else {
        return;
    };
    isolation(&url).await;
}
