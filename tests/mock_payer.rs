//! The mock payer over real HTTP on 127.0.0.1: PAS $submit / $inquire, CORE real time (SOAP
//! and MIME envelopes built with the transport codec), rules, pends, notifications, faults,
//! retransmits and the token endpoint. Requests are the repository's synthetic fixtures.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use priorauth::domain::*;
use priorauth::fhir::response::decision_from_json;
use priorauth::fhir::{Bundle, bundle_from_request};
use priorauth::mockpayer::{Rules, spawn};

const WAIT: Duration = Duration::from_secs(20);

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// A fixture request with its own trace number (so each test has its own authorization).
fn request(name: &str, trace: &str) -> AuthorizationRequest {
    let text = std::fs::read_to_string(fixture(&format!("requests/{name}.json"))).unwrap();
    let mut r: AuthorizationRequest = serde_json::from_str(&text).unwrap();
    r.event.trace_numbers[0].reference = Text::parse(trace).unwrap();
    r.submitter_reference = Text::parse(&format!("BHT{trace}")).unwrap();
    r
}

fn pt(trace: &str) -> Bundle {
    bundle_from_request(&request("physical-therapy-visits", trace))
}

fn mri(trace: &str) -> Bundle {
    bundle_from_request(&request("mri-lumbar-outpatient", trace))
}

struct Mock {
    base: String,
    http: reqwest::Client,
}

async fn start(rules: &str) -> Mock {
    start_with(Rules::parse(rules).unwrap(), None).await
}

async fn start_with(rules: Rules, notify: Option<String>) -> Mock {
    let (addr, _task) = spawn(rules, "127.0.0.1:0".parse().unwrap(), notify)
        .await
        .unwrap();
    Mock {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder().timeout(WAIT).build().unwrap(),
    }
}

impl Mock {
    async fn post_fhir(&self, op: &str, body: &impl serde::Serialize) -> reqwest::Response {
        self.http
            .post(format!("{}/fhir/Claim/${op}", self.base))
            .header("content-type", "application/fhir+json")
            .body(serde_json::to_vec(body).unwrap())
            .send()
            .await
            .unwrap()
    }
    async fn submit(&self, b: &Bundle) -> (StatusCode, Value) {
        let r = self.post_fhir("submit", b).await;
        let status = r.status();
        (status, r.json().await.unwrap())
    }
    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
    async fn stats(&self) -> Value {
        self.get("/mock/stats").await
    }
    async fn received(&self) -> Vec<Value> {
        self.get("/mock/received")
            .await
            .as_array()
            .cloned()
            .unwrap()
    }
}

fn decision(v: &Value) -> AuthorizationResponse {
    let (r, issues) = decision_from_json(v);
    r.unwrap_or_else(|| panic!("no decision read: {issues:?}"))
}

fn claim_response(v: &Value) -> &Value {
    &v["entry"][0]["resource"]
}

#[tokio::test]
async fn pas_default_rules_approve_everything_with_a_certification_number() {
    let m = start_with(Rules::default(), None).await;
    let (status, v) = m.submit(&pt("T-APPROVE")).await;
    assert_eq!(status, StatusCode::OK);
    let d = decision(&v).decision;
    assert_eq!(d.status, Status::Approved);
    assert_eq!(d.lines.len(), 2);
    assert!(
        d.lines
            .iter()
            .all(|l| l.action == Some(ActionCode::Certified))
    );
    assert_eq!(
        d.certification_number.as_ref().map(|c| c.as_str()),
        Some("MOCK00000001")
    );
    // The response echoes the request's identifier.
    assert_eq!(v["identifier"]["value"], "BHTT-APPROVE");
    let rec = m.received().await;
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0]["outcome"], "new");
    assert_eq!(rec[0]["decision"], "approved");
    assert_eq!(rec[0]["trace_numbers"][0], "9999999999:T-APPROVE");
    assert_eq!(rec[0]["submitter_reference"], "BHTT-APPROVE");
}

const LINE_RULES: &str = r#"
[[rule]]
name = "pt-exercise-partial"
match = { procedure = "97110" }
action = "partial"
approved_units = 6
message = "six units approved"

[[rule]]
name = "manual-therapy-modified"
match = { procedure = "97140" }
action = "modify"
approved_units = 8
code = "97112"

[[rule]]
name = "mri-denied"
match = { procedure = "72148", units_above = 0 }
action = "deny"
reason = "0U"
"#;

#[tokio::test]
async fn pas_partial_and_modify_by_procedure_code() {
    let m = start(LINE_RULES).await;
    let (status, v) = m.submit(&pt("T-PARTIAL")).await;
    assert_eq!(status, StatusCode::OK);
    let d = decision(&v).decision;
    assert_eq!(d.status, Status::PartiallyApproved);
    assert_eq!(d.lines[0].action, Some(ActionCode::CertifiedPartial));
    assert_eq!(d.lines[1].action, Some(ActionCode::Modified));
    let cr = claim_response(&v);
    // The modified line's approved code and units are in addItem.
    let add = &cr["addItem"][0];
    assert_eq!(add["productOrService"]["coding"][0]["code"], "97112");
    assert_eq!(add["quantity"]["value"].to_string(), "8");
    assert_eq!(cr["processNote"][0]["text"], "six units approved");
    let rec = m.received().await;
    assert_eq!(
        rec[0]["rules"],
        json!(["pt-exercise-partial", "manual-therapy-modified"])
    );
}

#[tokio::test]
async fn pas_deny_with_reason_code() {
    let m = start(LINE_RULES).await;
    let (_, v) = m.submit(&mri("T-DENY")).await;
    let d = decision(&v).decision;
    assert_eq!(d.status, Status::Denied);
    assert_eq!(d.reason.as_ref().map(|c| c.as_str()), Some("0U"));
    assert!(d.certification_number.is_none());
}

#[tokio::test]
async fn pas_reject_by_member_with_aaa_and_follow_up() {
    let m = start(
        r#"
        [[rule]]
        match = { member = "SYN000111222" }
        action = "reject"
        aaa = "72"
        follow_up = "correct_and_resubmit"
        level = "subscriber"
        "#,
    )
    .await;
    let (status, v) = m.submit(&mri("T-REJECT")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(claim_response(&v)["outcome"], "error");
    let d = decision(&v).decision;
    assert_eq!(d.status, Status::Rejected);
    assert_eq!(d.rejects.len(), 1);
    assert_eq!(d.rejects[0].reason.as_ref().map(|c| c.as_str()), Some("72"));
    assert_eq!(
        d.rejects[0].follow_up,
        Some(FollowUpAction::CorrectAndResubmit)
    );
    // Another member is not concerned.
    let (_, v) = m.submit(&pt("T-OTHER")).await;
    assert_eq!(decision(&v).decision.status, Status::Approved);
}

#[tokio::test]
async fn pas_unreadable_bundle_gets_an_operation_outcome_400() {
    let m = start_with(Rules::default(), None).await;
    let r = m
        .http
        .post(format!("{}/fhir/Claim/$submit", m.base))
        .body("{\"resourceType\": \"Bundle\", \"type\": \"collection\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["resourceType"], "OperationOutcome");
    assert!(
        v["issue"][0]["details"]["text"]
            .as_str()
            .unwrap()
            .contains("malformed JSON")
    );
    // A Bundle that is no PAS request.
    let (status, v) = m
        .submit_value(&json!({"resourceType": "Bundle", "type": "collection", "entry": []}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["resourceType"], "OperationOutcome");
    let s = m.stats().await;
    assert_eq!(s["unreadable"], 2);
    assert_eq!(s["new_authorizations"], 0);
}

#[tokio::test]
async fn pas_strict_mode_refuses_a_bundle_that_breaks_the_guide_rules() {
    let m = start("strict_pas = true").await;
    // The PT request's subscriber (not the patient) has no identifier in the bundle.
    let (status, v) = m.submit(&pt("T-STRICT")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["resourceType"], "OperationOutcome");
    let issue = &v["issue"][0];
    assert_eq!(issue["severity"], "error");
    assert!(
        issue["expression"][0]
            .as_str()
            .unwrap()
            .contains("identifier"),
        "{v}"
    );
    // The MRI request passes.
    let (status, v) = m.submit(&mri("T-STRICT-OK")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(m.stats().await["new_authorizations"], 1);
}

impl Mock {
    async fn submit_value(&self, v: &Value) -> (StatusCode, Value) {
        let r = self.post_fhir("submit", v).await;
        let status = r.status();
        (status, r.json().await.unwrap())
    }
}

#[tokio::test]
async fn pas_retransmit_is_answered_from_the_known_authorization_and_counted_once() {
    let m = start_with(Rules::default(), None).await;
    let b = pt("T-RETRANSMIT");
    let (_, first) = m.submit(&b).await;
    let (_, second) = m.submit(&b).await;
    let c1 = decision(&first).decision.certification_number;
    let c2 = decision(&second).decision.certification_number;
    assert!(c1.is_some());
    assert_eq!(c1, c2);
    let s = m.stats().await;
    assert_eq!(s["requests"], 2);
    assert_eq!(s["new_authorizations"], 1);
    assert_eq!(s["retransmits"], 1);
    assert_eq!(s["by_channel"]["pas"]["retransmits"], 1);
    let rec = m.received().await;
    assert_eq!(rec[0]["outcome"], "new");
    assert_eq!(rec[1]["outcome"], "retransmit");
    assert_eq!(rec[0]["authorization"], rec[1]["authorization"]);
    // Another trace number is another authorization with its own number.
    let (_, third) = m.submit(&pt("T-RETRANSMIT-2")).await;
    assert_ne!(decision(&third).decision.certification_number, c1);
    // Reset forgets everything.
    let r = m
        .http
        .post(format!("{}/mock/reset", m.base))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(m.stats().await["requests"], 0);
    assert!(m.received().await.is_empty());
}

const PEND_RULES: &str = r#"
[[rule]]
name = "pend-mri"
match = { procedure = "72148" }
action = "pend"
then = "approve"
after_ms = 300
"#;

/// Polls $inquire until the decision is no longer pended.
async fn inquire_until_decided(m: &Mock, b: &Bundle) -> AuthorizationResponse {
    tokio::time::timeout(WAIT, async {
        loop {
            let r = m.post_fhir("inquire", b).await;
            assert_eq!(r.status(), StatusCode::OK);
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["resourceType"], "Parameters");
            let bundles = priorauth::fhir::inquiry::response_bundles(&v);
            assert_eq!(bundles.len(), 1, "one authorization matches: {v}");
            let d = decision(bundles[0]);
            if d.decision.status != Status::Pended {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the pend was decided in time")
}

#[tokio::test]
async fn pas_pend_then_decide_via_inquire_and_retransmit() {
    let m = start(PEND_RULES).await;
    let b = mri("T-PEND");
    let (_, v) = m.submit(&b).await;
    let d = decision(&v).decision;
    assert_eq!(d.status, Status::Pended);
    assert_eq!(d.lines[0].action, Some(ActionCode::Pended));
    assert!(d.administrative_reference.is_some());
    let decided = inquire_until_decided(&m, &b).await;
    assert_eq!(decided.decision.status, Status::Approved);
    assert!(decided.decision.certification_number.is_some());
    // A retransmit now answers the final decision and creates nothing.
    let (_, again) = m.submit(&b).await;
    assert_eq!(decision(&again).decision.status, Status::Approved);
    let s = m.stats().await;
    assert_eq!(s["new_authorizations"], 1);
    assert_eq!(s["retransmits"], 1);
    assert!(s["inquiries"].as_u64().unwrap() >= 1);
}

/// What a notification receiver got: content type and body of each accepted POST.
type Inbox = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A receiver for notifications: fails the first `fail_first` posts with 500, then keeps them.
async fn receiver(fail_first: usize) -> (String, Inbox) {
    let got: Inbox = Arc::default();
    let calls = Arc::new(Mutex::new(0usize));
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/inbound",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let keep = keep.clone();
                let calls = calls.clone();
                async move {
                    let n = {
                        let mut c = calls.lock().unwrap();
                        *c += 1;
                        *c
                    };
                    if n <= fail_first {
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    let ct = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    keep.lock().unwrap().push((ct, body.to_vec()));
                    StatusCode::OK
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/inbound"), got)
}

async fn wait_for(got: &Inbox) -> (String, Vec<u8>) {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(x) = got.lock().unwrap().first().cloned() {
                return x;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await
    .expect("a notification arrived in time")
}

#[tokio::test]
async fn pas_pend_then_notify_retries_until_the_receiver_accepts() {
    let (url, got) = receiver(1).await;
    let m = start_with(Rules::parse(PEND_RULES).unwrap(), Some(url)).await;
    let (_, v) = m.submit(&mri("T-NOTIFY")).await;
    assert_eq!(decision(&v).decision.status, Status::Pended);
    let (ct, body) = wait_for(&got).await;
    assert_eq!(ct, "application/fhir+json");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["identifier"]["value"], "BHTT-NOTIFY");
    assert_eq!(decision(&v).decision.status, Status::Approved);
    let s = m.stats().await;
    assert_eq!(s["notifications_sent"], 1);
    assert_eq!(s["notification_failures"], 1);
}

#[tokio::test]
async fn pas_fault_429_creates_nothing_and_carries_retry_after() {
    let m = start(
        r#"
        [[fault]]
        kind = "status"
        status = 429
        retry_after = 7
        times = 1
        "#,
    )
    .await;
    let b = pt("T-429");
    let r = m.post_fhir("submit", &b).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(m.stats().await["new_authorizations"], 0);
    let (status, v) = m.submit(&b).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(decision(&v).decision.status, Status::Approved);
    let s = m.stats().await;
    assert_eq!(s["new_authorizations"], 1);
    assert_eq!(s["retransmits"], 0);
    assert_eq!(s["faults"], 1);
    assert_eq!(s["faults_by_kind"]["status"], 1);
    let rec = m.received().await;
    assert_eq!(rec[0]["outcome"], "not_processed");
    assert_eq!(rec[0]["fault"], "status");
    assert_eq!(rec[0]["http_status"], 429);
}

#[tokio::test]
async fn pas_fault_500_every_second_request_after_processing() {
    let m = start(
        r#"
        [[fault]]
        kind = "status"
        status = 500
        every = 2
        "#,
    )
    .await;
    let b = pt("T-500");
    assert_eq!(m.post_fhir("submit", &b).await.status(), StatusCode::OK);
    // The second is processed (a retransmit) but answered 500: the outcome is unknown to the client.
    let r = m.post_fhir("submit", &b).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(m.post_fhir("submit", &b).await.status(), StatusCode::OK);
    let s = m.stats().await;
    assert_eq!(s["new_authorizations"], 1);
    assert_eq!(s["retransmits"], 2);
    assert_eq!(s["faults"], 1);
}

#[tokio::test]
async fn pas_fault_drop_malformed_wrong_control_and_slow() {
    let m = start(
        r#"
        [[fault]]
        kind = "drop"
        match = { member = "SYN000111222" }
        times = 1

        [[fault]]
        kind = "malformed"
        match = { procedure = "97110" }
        times = 1

        [[fault]]
        kind = "wrong_control"
        match = { procedure = "97110" }
        times = 1

        [[fault]]
        kind = "slow"
        ms = 20
        match = { channel = "pas" }
        times = 1
        "#,
    )
    .await;
    // Dropped: the exchange breaks without an answer; the request was processed.
    let sent = m
        .http
        .post(format!("{}/fhir/Claim/$submit", m.base))
        .body(serde_json::to_vec(&mri("T-DROP")).unwrap())
        .send()
        .await;
    let answered = match sent {
        Ok(r) => r.bytes().await.is_ok(),
        Err(_) => false,
    };
    assert!(!answered, "the connection is dropped without an answer");
    // Malformed: a 200 that is not JSON.
    let b = pt("T-FAULTS");
    let r = m.post_fhir("submit", &b).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&body).is_err());
    // Wrong control: the identifiers do not match the request.
    let (_, v) = m.submit(&b).await;
    assert_eq!(v["identifier"]["value"], "BHTT-FAULTS-WRONG");
    // Slow: answered normally.
    let (status, v) = m.submit(&b).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["identifier"]["value"], "BHTT-FAULTS");
    let s = m.stats().await;
    assert_eq!(s["faults"], 4);
    for k in ["drop", "malformed", "wrong_control", "slow"] {
        assert_eq!(s["faults_by_kind"][k], 1, "{k}");
    }
    assert_eq!(s["new_authorizations"], 2);
    let rec = m.received().await;
    assert_eq!(rec[0]["http_status"], 0);
    assert_eq!(rec[0]["fault"], "drop");
}

const TEST_PUBLIC_KEY: &str = "mock-payer/test-smart-public.pem";
const TEST_PRIVATE_KEY: &str = "mock-payer/test-smart-private.pem";

fn oauth_rules() -> Rules {
    let pem = std::fs::read_to_string(fixture(TEST_PUBLIC_KEY)).unwrap();
    Rules::parse(&format!(
        r#"
        require_token = true
        token_ttl_s = 120
        [oauth]
        client_id = "gateway"
        client_secret = "synthetic-secret"
        smart_client_id = "gateway-smart"
        smart_public_key_pem = """
{pem}"""
        "#
    ))
    .unwrap()
}

fn assertion(token_url: &str, jti: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": "gateway-smart", "sub": "gateway-smart", "aud": token_url,
        "exp": now + 240, "jti": jti,
    });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(
        std::fs::read_to_string(fixture(TEST_PRIVATE_KEY))
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS384),
        &claims,
        &key,
    )
    .unwrap()
}

#[tokio::test]
async fn oauth_client_credentials_and_smart_backend_tokens_guard_the_fhir_endpoints() {
    let m = start_with(oauth_rules(), None).await;
    let token_url = format!("{}/oauth/token", m.base);
    let b = pt("T-OAUTH");
    let r = m.post_fhir("submit", &b).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Wrong secret.
    let r = m
        .http
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "gateway"),
            ("client_secret", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    // Client credentials.
    let r = m
        .http
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "gateway"),
            ("client_secret", "synthetic-secret"),
            ("scope", "system/Claim.write"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["expires_in"], 120);
    assert_eq!(t["token_type"], "bearer");
    let token = t["access_token"].as_str().unwrap().to_owned();
    let r = m
        .http
        .post(format!("{}/fhir/Claim/$submit", m.base))
        .bearer_auth(&token)
        .body(serde_json::to_vec(&b).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // SMART Backend Services: a signed assertion; its jti cannot be used twice.
    let jwt = assertion(&token_url, "jti-1");
    let smart = |jwt: String| {
        let http = m.http.clone();
        let url = token_url.clone();
        async move {
            http.post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", jwt.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = smart(jwt.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let smart_token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(smart(jwt).await.status(), StatusCode::UNAUTHORIZED);
    // A signature that is not over this payload is refused.
    let a = assertion(&token_url, "jti-2");
    let b2 = assertion(&token_url, "jti-3");
    let (a_head, a_sig) = a.rsplit_once('.').unwrap();
    let (b_head, _) = b2.rsplit_once('.').unwrap();
    assert_ne!(a_head, b_head);
    let bad = format!("{b_head}.{a_sig}");
    assert_eq!(smart(bad).await.status(), StatusCode::UNAUTHORIZED);
    let r = m
        .http
        .post(format!("{}/fhir/Claim/$inquire", m.base))
        .bearer_auth(&smart_token)
        .body(serde_json::to_vec(&b).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let s = m.stats().await;
    assert_eq!(s["tokens_issued"], 2);
    assert_eq!(s["unauthorized"], 1);
}

#[test]
fn rules_refuse_what_cannot_be_carried_out() {
    let cases = [
        ("[[rule]]\naction = \"partial\"", "approved_units"),
        ("[[rule]]\naction = \"reject\"", "aaa"),
        ("[[rule]]\naction = \"pend\"\nafter_ms = 5", "then"),
        (
            "[[rule]]\naction = \"pend\"\nthen = \"pend\"\nafter_ms = 5",
            "pend again",
        ),
        (
            "[[rule]]\naction = \"approve\"\nmatch = { color = \"red\" }",
            "color",
        ),
        (
            "[[fault]]\nkind = \"status\"\nstatus = 200",
            "not an error status",
        ),
        ("[[fault]]\nkind = \"slow\"", "ms"),
        ("[[rule]]\naction = \"maybe\"", "maybe"),
        ("[[rule]]\naction = \"deny\"\nmessage = \"\"", "message"),
        ("certification_prefix = \"A B\"", "certification_prefix"),
        (
            "[[fault]]\nkind = \"drop\"\ntimes = 1\nevery = 2",
            "not both",
        ),
    ];
    for (text, want) in cases {
        let e = Rules::parse(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text:?}: {e}");
    }
    let sample = Rules::load(&fixture("mock-payer/rules.toml")).unwrap();
    assert!(sample.rules.len() >= 6);
    assert!(!sample.faults.is_empty());
}

#[test]
fn the_binary_prints_the_bound_address_first() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_priorauth"))
        .args(["mock-payer", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(WAIT);
    let answer = line.as_ref().ok().and_then(|l| {
        let addr: SocketAddr = l.trim().strip_prefix("listening on ")?.parse().ok()?;
        let mut c = std::net::TcpStream::connect(addr).ok()?;
        c.set_read_timeout(Some(WAIT)).ok()?;
        std::io::Write::write_all(
            &mut c,
            b"GET /mock/stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .ok()?;
        let mut s = String::new();
        std::io::Read::read_to_string(&mut c, &mut s).ok()?;
        Some(s)
    });
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("the first line in time");
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0);
    let answer = answer.expect("the mock answered on that address");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"new_authorizations\":0"), "{answer}");
}

// ---------------------------------------------------------------------------------------------
// CORE real time

use priorauth::transport::core::envelope::{
    CoreRequest, CoreResponse, Credentials, SoapReply, build_soap_request, decode_form_data,
    encode_form_data, mime_request_parts, parse_mime_response, parse_soap_response, payload_type,
};
use priorauth::x12::tx278::{Message278, decode_all, encode_request};
use priorauth::x12::writer::{EnvelopeSettings, MemoryControlNumbers, Stamp};

/// A 278 request interchange for a fixture request (ISA13 from `control`).
fn x12(name: &str, trace: &str, control: u64) -> String {
    let bytes = encode_request(
        &request(name, trace),
        &EnvelopeSettings::default(),
        &MemoryControlNumbers::starting_after(control - 1),
        Stamp::now(),
    )
    .unwrap();
    String::from_utf8(bytes).unwrap()
}

fn envelope(payload: String, payload_id: &str) -> CoreRequest {
    CoreRequest::x12_278(payload_id, "PRIORAUTHGW", "SYNPLAN01", payload)
}

#[derive(Clone, Copy)]
enum Style {
    Soap,
    Mime,
}

impl Mock {
    async fn core_raw(
        &self,
        style: Style,
        req: &CoreRequest,
        creds: Option<&Credentials>,
    ) -> reqwest::Response {
        let (ct, body) = match style {
            Style::Soap => (
                "application/soap+xml; charset=utf-8".to_owned(),
                build_soap_request(req, creds).into_bytes(),
            ),
            Style::Mime => encode_form_data(&mime_request_parts(req, creds)),
        };
        self.http
            .post(format!("{}/core", self.base))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn core(&self, style: Style, req: &CoreRequest) -> CoreResponse {
        let r = self.core_raw(style, req, None).await;
        assert_eq!(r.status(), StatusCode::OK);
        read_core(style, r).await
    }
}

async fn read_core(style: Style, r: reqwest::Response) -> CoreResponse {
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = r.bytes().await.unwrap();
    match style {
        Style::Soap => match parse_soap_response(std::str::from_utf8(&body).unwrap()).unwrap() {
            SoapReply::Response(c) => c,
            SoapReply::Fault(f) => panic!("SOAP fault {f:?}"),
        },
        Style::Mime => parse_mime_response(&decode_form_data(&ct, &body).unwrap()).unwrap(),
    }
}

fn response_278(c: &CoreResponse) -> AuthorizationResponse {
    assert_eq!(c.error_code, "Success");
    assert_eq!(c.payload_type, payload_type::X12_278_RESPONSE);
    let d = decode_all(c.payload.as_deref().unwrap().as_bytes());
    assert!(
        !d.all_issues().any(|i| i.is_error()),
        "{:?}",
        d.all_issues().collect::<Vec<_>>()
    );
    match d.transactions[0].message.clone() {
        Some(Message278::Response(r)) => *r,
        other => panic!("not a 278 response: {other:?}"),
    }
}

const PAYLOAD_1: &str = "5f0c6a0e-3b0e-4f43-9d2f-0a4c2d7e1a01";
const PAYLOAD_2: &str = "5f0c6a0e-3b0e-4f43-9d2f-0a4c2d7e1a02";

#[tokio::test]
async fn core_soap_decides_by_rules_and_counts_a_retransmit_once() {
    let m = start(LINE_RULES).await;
    let req = request("physical-therapy-visits", "T-CORE-SOAP");
    let env = envelope(
        x12("physical-therapy-visits", "T-CORE-SOAP", 501),
        PAYLOAD_1,
    );
    let c = m.core(Style::Soap, &env).await;
    assert_eq!(c.payload_id, PAYLOAD_1);
    let r = response_278(&c);
    assert!(r.answers(&req), "the response echoes BHT03 and the TRN");
    assert_eq!(r.decision.status, Status::PartiallyApproved);
    assert_eq!(
        r.decision.lines[0].action,
        Some(ActionCode::CertifiedPartial)
    );
    assert_eq!(
        r.decision.lines[0]
            .approved_units
            .as_ref()
            .map(|u| u.as_str()),
        Some("6")
    );
    assert_eq!(r.decision.lines[1].action, Some(ActionCode::Modified));
    // Lines decided differently: no event-level HCR, the numbers are on the certified lines.
    assert!(r.decision.action.is_none());
    let cert = r.decision.lines[0].certification_number.clone();
    assert!(cert.is_some());
    assert_eq!(r.decision.lines[1].certification_number, cert);
    // The same bytes again (a retransmit after an unknown outcome): same authorization.
    let again = response_278(&m.core(Style::Soap, &env).await);
    assert_eq!(again.decision.lines[0].certification_number, cert);
    let s = m.stats().await;
    assert_eq!(s["by_channel"]["core"]["requests"], 2);
    assert_eq!(s["by_channel"]["core"]["new_authorizations"], 1);
    assert_eq!(s["by_channel"]["core"]["retransmits"], 1);
    let rec = m.received().await;
    assert_eq!(rec[0]["channel"], "core");
    assert_eq!(rec[0]["interchange_control"], "000000501");
    assert_eq!(rec[0]["transaction_control"], "0501");
    assert_eq!(rec[0]["payload_id"], PAYLOAD_1);
    assert_eq!(rec[0]["submitter_reference"], "BHTT-CORE-SOAP");
    assert_eq!(rec[0]["trace_numbers"][0], "9999999999:T-CORE-SOAP");
    assert_eq!(rec[1]["outcome"], "retransmit");
}

#[tokio::test]
async fn core_mime_deny_and_reject() {
    let m = start(&format!(
        "{LINE_RULES}\n[[rule]]\nmatch = {{ member = \"SYN000333444\" }}\naction = \"reject\"\naaa = \"75\"\nfollow_up = \"N\"\n"
    ))
    .await;
    let c = m
        .core(
            Style::Mime,
            &envelope(x12("mri-lumbar-outpatient", "T-CORE-MIME", 7), PAYLOAD_1),
        )
        .await;
    let r = response_278(&c);
    assert_eq!(r.decision.status, Status::Denied);
    assert_eq!(r.decision.reason.as_ref().map(|c| c.as_str()), Some("0U"));
    // The PT request's lines match the partial / modify rules first, so the member rule does
    // not apply to them: a rule's position decides.
    let c = m
        .core(
            Style::Mime,
            &envelope(x12("physical-therapy-visits", "T-CORE-AAA", 8), PAYLOAD_2),
        )
        .await;
    assert_eq!(response_278(&c).decision.status, Status::PartiallyApproved);
}

#[tokio::test]
async fn core_reject_with_aaa_at_request_level() {
    let m = start(
        "[[rule]]\nmatch = { member = \"SYN000333444\", channel = \"core\" }\naction = \"reject\"\naaa = \"75\"\nfollow_up = \"resubmission_not_allowed\"\n",
    )
    .await;
    let c = m
        .core(
            Style::Soap,
            &envelope(x12("physical-therapy-visits", "T-CORE-AAA", 9), PAYLOAD_1),
        )
        .await;
    let r = response_278(&c);
    assert_eq!(r.decision.status, Status::Rejected);
    assert_eq!(r.decision.rejects[0].level, Level::Event);
    assert_eq!(
        r.decision.rejects[0].reason.as_ref().map(|c| c.as_str()),
        Some("75")
    );
    assert_eq!(
        r.decision.rejects[0].follow_up,
        Some(FollowUpAction::ResubmissionNotAllowed)
    );
}

#[tokio::test]
async fn core_undecodable_278_is_answered_with_a_999_reject() {
    let m = start_with(Rules::default(), None).await;
    let good = x12("mri-lumbar-outpatient", "T-CORE-999", 11);
    // An unknown request category (UM01) makes the 278 undecodable.
    let bad = good.replacen("UM*HS*", "UM*QQ*", 1);
    assert_ne!(bad, good);
    let c = m.core(Style::Soap, &envelope(bad, PAYLOAD_1)).await;
    assert_eq!(c.error_code, "Success");
    assert_eq!(c.payload_type, payload_type::X12_999_RESPONSE);
    let payload = c.payload.unwrap();
    let (acks, issues) = priorauth::x12::ack::parse_acks(payload.as_bytes());
    assert!(issues.iter().all(|i| !i.is_error()), "{issues:?}");
    assert_eq!(acks.len(), 1);
    assert!(!acks[0].accepted());
    assert!(payload.contains("IK5*R"), "{payload}");
    let s = m.stats().await;
    assert_eq!(s["new_authorizations"], 0);
    assert_eq!(s["unreadable"], 1);
}

#[tokio::test]
async fn core_envelope_problems_are_envelope_errors() {
    let m = start("[core]\nusername = \"gateway\"\npassword = \"synthetic\"\n").await;
    let env = envelope(x12("mri-lumbar-outpatient", "T-CORE-ENV", 12), PAYLOAD_1);
    // No credentials: SOAP answers UnAuthorized, MIME answers 401.
    let c = read_core(Style::Soap, m.core_raw(Style::Soap, &env, None).await).await;
    assert_eq!(c.error_code, "UnAuthorized");
    assert_eq!(
        m.core_raw(Style::Mime, &env, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let creds = Credentials {
        username: "gateway".into(),
        password: "synthetic".into(),
    };
    // A PayloadID that is no UUID.
    let mut bad = env.clone();
    bad.payload_id = "not-a-uuid".into();
    let c = read_core(
        Style::Mime,
        m.core_raw(Style::Mime, &bad, Some(&creds)).await,
    )
    .await;
    assert_eq!(c.error_code, "PayloadIDIllegal");
    // Neither SOAP nor MIME.
    let r = m
        .http
        .post(format!("{}/core", m.base))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // With the credentials it is decided.
    let c = read_core(
        Style::Soap,
        m.core_raw(Style::Soap, &env, Some(&creds)).await,
    )
    .await;
    assert_eq!(response_278(&c).decision.status, Status::Approved);
    assert_eq!(m.stats().await["new_authorizations"], 1);
}

#[tokio::test]
async fn core_busy_creates_nothing_then_wrong_control_and_malformed() {
    let m = start(
        r#"
        [[fault]]
        kind = "core_busy"
        times = 1

        [[fault]]
        kind = "wrong_control"
        match = { procedure = "72148" }
        times = 1

        [[fault]]
        kind = "malformed"
        match = { channel = "core" }
        times = 1
        "#,
    )
    .await;
    let req = request("mri-lumbar-outpatient", "T-CORE-BUSY");
    let env = envelope(x12("mri-lumbar-outpatient", "T-CORE-BUSY", 21), PAYLOAD_1);
    let c = m.core(Style::Soap, &env).await;
    assert_eq!(c.error_code, "ReceiverServerBusy");
    assert!(c.payload.is_none());
    assert_eq!(m.stats().await["new_authorizations"], 0);
    // Wrong control numbers: another PayloadID, BHT03 and TRN that answer nothing.
    let c = m.core(Style::Soap, &env).await;
    assert_ne!(c.payload_id, PAYLOAD_1);
    let r = response_278(&c);
    assert!(!r.answers(&req));
    assert_eq!(r.submitter_reference.as_str(), "BHTT-CORE-BUSYX");
    // Malformed: not XML a client can read.
    let r = m.core_raw(Style::Soap, &env, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    assert!(parse_soap_response(&body).is_err());
    // Then a normal answer to the same authorization.
    let r = response_278(&m.core(Style::Soap, &env).await);
    assert!(r.answers(&req));
    let s = m.stats().await;
    assert_eq!(s["new_authorizations"], 1);
    assert_eq!(s["retransmits"], 2);
    assert_eq!(s["faults_by_kind"]["core_busy"], 1);
    assert_eq!(s["faults_by_kind"]["wrong_control"], 1);
    assert_eq!(s["faults_by_kind"]["malformed"], 1);
    let rec = m.received().await;
    assert_eq!(rec[0]["outcome"], "not_processed");
    assert_eq!(rec[0]["fault"], "core_busy");
}

#[tokio::test]
async fn core_pend_then_notify_with_the_final_278_and_answer_it_to_a_retransmit() {
    let (url, got) = receiver(0).await;
    let m = start_with(Rules::parse(PEND_RULES).unwrap(), Some(url)).await;
    let req = request("mri-lumbar-outpatient", "T-CORE-PEND");
    let env = envelope(x12("mri-lumbar-outpatient", "T-CORE-PEND", 31), PAYLOAD_1);
    let r = response_278(&m.core(Style::Mime, &env).await);
    assert_eq!(r.decision.status, Status::Pended);
    let (ct, body) = wait_for(&got).await;
    assert_eq!(ct, "application/edi-x12");
    let d = decode_all(&body);
    let Some(Message278::Response(fin)) = d.transactions[0].message.clone() else {
        panic!("the notification is a 278 response");
    };
    assert!(fin.answers(&req));
    assert_eq!(fin.decision.status, Status::Approved);
    let again = response_278(&m.core(Style::Mime, &env).await);
    assert_eq!(again.decision.status, Status::Approved);
    assert_eq!(
        again.decision.certification_number,
        fin.decision.certification_number
    );
}

// ---------------------------------------------------------------------------------------------
// The gateway's own transports against the mock: each fault mode gives the outcome the outbox
// relies on (NotDelivered: safe to send again; Unknown: may have been processed).

use priorauth::payers::{Format, PayerConfig};
use priorauth::transport::core::client::CoreClient;
use priorauth::transport::fhir::FhirClient;
use priorauth::transport::{Delivery, Operation, Outgoing, SendError, Transport, http_client};

#[tokio::test]
async fn the_gateway_transports_see_each_fault_as_the_outbox_expects() {
    let m = start(
        r#"
        [[fault]]
        kind = "core_busy"
        times = 1
        [[fault]]
        kind = "drop"
        match = { channel = "core" }
        times = 1
        [[fault]]
        kind = "wrong_control"
        match = { channel = "core" }
        times = 1
        [[fault]]
        kind = "status"
        status = 503
        retry_after = 3
        match = { channel = "pas" }
        times = 1
        [[fault]]
        kind = "malformed"
        match = { channel = "pas" }
        times = 1
        "#,
    )
    .await;
    let core_cfg = PayerConfig::core("SYNPLAN01", &format!("{}/core", m.base));
    let core = CoreClient::new(http_client());
    let body = x12("mri-lumbar-outpatient", "T-TRANSPORT", 41).into_bytes();
    let send_core = || {
        core.send(Outgoing {
            payer: &core_cfg,
            operation: Operation::Submit,
            payload_id: PAYLOAD_1,
            body: &body,
        })
    };
    assert!(
        matches!(send_core().await, Err(SendError::NotDelivered { .. })),
        "busy"
    );
    assert!(
        matches!(send_core().await, Err(SendError::Unknown { .. })),
        "dropped"
    );
    assert!(
        matches!(send_core().await, Err(SendError::Unknown { .. })),
        "another PayloadID"
    );
    match send_core().await {
        Ok(Delivery::Answered(a)) => {
            let d = decode_all(&a.body);
            assert!(matches!(
                d.transactions[0].message,
                Some(Message278::Response(_))
            ));
        }
        other => panic!("expected an answer: {other:?}"),
    }
    let mut pas_cfg = PayerConfig::core("SYNPLAN01", &format!("{}/fhir", m.base));
    pas_cfg.format = Format::FhirPas;
    let pas = FhirClient::new(http_client());
    let bundle = serde_json::to_vec(&mri("T-TRANSPORT-PAS")).unwrap();
    let send_pas = || {
        pas.send(Outgoing {
            payer: &pas_cfg,
            operation: Operation::Submit,
            payload_id: PAYLOAD_2,
            body: &bundle,
        })
    };
    match send_pas().await {
        Err(SendError::NotDelivered { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(3)))
        }
        other => panic!("503 is not delivered: {other:?}"),
    }
    // A 200 whose body is not JSON cannot be read: the payer may have acted, so the outcome
    // is unknown (the outbox retransmits the same bytes).
    match send_pas().await {
        Err(SendError::Unknown { reason, .. }) => assert!(reason.contains("not JSON"), "{reason}"),
        other => panic!("malformed: {other:?}"),
    }
    assert!(matches!(send_pas().await, Ok(Delivery::Answered(_))));
    let s = m.stats().await;
    // Busy and 503 created nothing; the dropped and mislabelled exchanges were processed, so
    // what followed were retransmits.
    assert_eq!(s["by_channel"]["core"]["new_authorizations"], 1);
    assert_eq!(s["by_channel"]["core"]["retransmits"], 2);
    assert_eq!(s["by_channel"]["pas"]["new_authorizations"], 1);
    assert_eq!(s["by_channel"]["pas"]["retransmits"], 1);
}
