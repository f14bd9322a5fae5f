//! Tenants, authentication, roles and audit, over HTTP against the API in process (SQLite and
//! PostgreSQL): another tenant's record is 404 exactly like a missing one (read, modify,
//! review, approve, submit, services), missing / invalid / revoked credentials are 401 with
//! `WWW-Authenticate: Bearer`, a wrong role is 403, and the audit log holds each attempt with
//! its outcome. The OAuth2 token endpoint (client credentials, SMART Backend Services with an
//! EC key made by the `openssl` CLI) and `priorauth keys` (printed once, stored hashed).

mod db;
mod harness;

use std::net::SocketAddr;
use std::sync::Arc;

use priorauth::auth;
use priorauth::payers::{PayerConfig, PayerDirectory};
use priorauth::server::{self, ApiConfig, AppState};
use priorauth::tracking::{Clock, Tracker};
use serde_json::{Value, json};

const MRI: &str = include_str!("../fixtures/requests/mri-lumbar-outpatient.json");
const BIN: &str = env!("CARGO_BIN_EXE_priorauth");

struct Api {
    base: String,
    http: reqwest::Client,
    state: Arc<AppState>,
}

async fn start(url: &str) -> Api {
    let tracker = Tracker::open(url, Clock::system()).await.unwrap();
    let state = Arc::new(AppState {
        tracker: Arc::new(tracker),
        // Nothing is sent in these tests (the outbox worker does not run).
        directory: Arc::new(PayerDirectory::single(PayerConfig::core(
            "*",
            "http://127.0.0.1:9/core",
        ))),
        config: ApiConfig {
            approval_chain: true,
            auth: true,
            ..Default::default()
        },
        metrics: Default::default(),
        outbox_wake: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = server::router(state.clone());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    Api {
        base: format!("http://{addr}"),
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap(),
        state,
    }
}

impl Api {
    async fn key(&self, tenant: &str, role: &str, name: &str) -> String {
        auth::create_key(
            &self.state.tracker.store,
            tenant,
            role,
            Some(name),
            None,
            priorauth::store::now_ms(),
        )
        .await
        .unwrap()
        .key
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self.http.request(m, format!("{}{path}", self.base));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            headers,
        )
    }
}

/// The error of a 404 with the record id blanked (so two answers can be compared).
fn without_id(v: &Value, id: &str) -> String {
    v.to_string().replace(id, "ID")
}

#[tokio::test]
async fn tenants_roles_credentials_and_audit() {
    for url in db::both().await {
        let api = start(&url).await;
        let a_clin = api.key("clinic-a", "clinician", "dr-a").await;
        let a_sup = api.key("clinic-a", "supervisor", "sup-a").await;
        let a_bill = api.key("clinic-a", "billing", "bill-a").await;
        let a_admin = api.key("clinic-a", "admin", "admin-a").await;
        let b_clin = api.key("clinic-b", "clinician", "dr-b").await;
        let b_admin = api.key("clinic-b", "admin", "admin-b").await;

        // A's clinician creates a record in A.
        let (s, v, _) = api
            .call("POST", "/v1/authorizations", Some(&a_clin), Some(MRI))
            .await;
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        let (s, v, _) = api
            .call(
                "GET",
                &format!("/v1/authorizations/{id}"),
                Some(&a_clin),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");

        // B sees nothing of it: every by-id route answers exactly like a missing record.
        let missing = "00000000-0000-4000-8000-000000000000";
        let service = r#"{"code": "72148", "units": 1, "date": "2027-01-10"}"#;
        let reason = r#"{"reason": "x"}"#;
        for (method, suffix, body) in [
            ("GET", "", None),
            ("GET", "/request", None),
            ("PUT", "", Some(MRI)),
            ("POST", "/review", None),
            ("POST", "/approve", None),
            ("POST", "/deny", Some(reason)),
            ("POST", "/cancel", Some(reason)),
            ("POST", "/submit", None),
            ("POST", "/services", Some(service)),
        ] {
            let (s, theirs, _) = api
                .call(
                    method,
                    &format!("/v1/authorizations/{id}{suffix}"),
                    Some(&b_clin),
                    body,
                )
                .await;
            assert_eq!(s, 404, "{method} {suffix}: {theirs}");
            let (s2, none, _) = api
                .call(
                    method,
                    &format!("/v1/authorizations/{missing}{suffix}"),
                    Some(&b_clin),
                    body,
                )
                .await;
            assert_eq!(s2, 404);
            assert_eq!(
                without_id(&theirs, &id),
                without_id(&none, missing),
                "{method} {suffix}: another tenant's record must look missing"
            );
        }
        let (s, v, _) = api
            .call("GET", "/v1/authorizations", Some(&b_clin), None)
            .await;
        assert_eq!(s, 200);
        assert!(
            !v.to_string().contains(&id),
            "B's list shows A's record: {v}"
        );
        let (_, v, _) = api
            .call("GET", "/v1/authorizations", Some(&a_clin), None)
            .await;
        assert!(v.to_string().contains(&id), "{v}");
        // B's own record under the same Idempotency-Key as A's is B's, not A's.
        let mut r = api
            .http
            .post(format!("{}/v1/authorizations", api.base))
            .header("content-type", "application/json")
            .header("Idempotency-Key", "same-key")
            .body(MRI);
        r = r.bearer_auth(&a_clin);
        let first: Value = r.send().await.unwrap().json().await.unwrap();
        let second: Value = api
            .http
            .post(format!("{}/v1/authorizations", api.base))
            .header("content-type", "application/json")
            .header("Idempotency-Key", "same-key")
            .bearer_auth(&b_clin)
            .body(MRI)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_ne!(first["id"], second["id"], "{first} {second}");
        assert_eq!(second["created"], true);

        // Credentials: missing, malformed, unknown, revoked -> 401 with the challenge.
        let revoked = api.key("clinic-a", "clinician", "dr-gone").await;
        let prefix = &revoked[..auth::PREFIX_LEN];
        assert!(
            api.state
                .tracker
                .store
                .revoke_api_key(prefix, priorauth::store::now_ms())
                .await
                .unwrap()
        );
        let forged = format!("{}{}", &a_clin[..auth::PREFIX_LEN], "0".repeat(55));
        let path = format!("/v1/authorizations/{id}");
        for key in [
            None,
            Some("not-a-key"),
            Some(forged.as_str()),
            Some(revoked.as_str()),
        ] {
            let (s, v, h) = api.call("GET", &path, key, None).await;
            assert_eq!(s, 401, "{key:?}: {v}");
            assert!(
                h.get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("Bearer")),
                "{h:?}"
            );
            assert_eq!(v["error"]["code"], "unauthenticated", "{v}");
        }
        // Under /fhir the 401 is an OperationOutcome.
        let (s, v, _) = api
            .call("POST", "/fhir/Claim/$submit", None, Some("{}"))
            .await;
        assert_eq!(s, 401);
        assert_eq!(v["resourceType"], "OperationOutcome", "{v}");
        // Open routes need nothing.
        for p in ["/healthz", "/readyz", "/openapi.json"] {
            let (s, _, _) = api.call("GET", p, None, None).await;
            assert_eq!(s, 200, "{p}");
        }

        // Roles gate the approval chain: billing may not approve; the supervisor may.
        let (s, v, _) = api
            .call("POST", &format!("{path}/review"), Some(&a_clin), None)
            .await;
        assert_eq!(s, 200, "{v}");
        let (s, v, _) = api
            .call("POST", &format!("{path}/approve"), Some(&a_bill), None)
            .await;
        assert_eq!(s, 403, "{v}");
        let (s, v, _) = api
            .call("POST", &format!("{path}/approve"), Some(&a_sup), None)
            .await;
        assert_eq!(s, 200, "{v}");
        // Payer answers: billing or admin only.
        let (s, v, _) = api
            .call("POST", "/v1/inbound", Some(&a_clin), Some("ISA*"))
            .await;
        assert_eq!(s, 403, "{v}");
        // The audit log and keys are for admins.
        let (s, _, _) = api
            .call("GET", &format!("/v1/audit?record={id}"), Some(&a_sup), None)
            .await;
        assert_eq!(s, 403);

        // A's admin sees every attempt on A's record, with its outcome.
        let (s, v, _) = api
            .call(
                "GET",
                &format!("/v1/audit?record={id}"),
                Some(&a_admin),
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let events = v["events"].as_array().unwrap();
        let has = |action: &str, outcome: &str, principal: Option<&str>| {
            events.iter().any(|e| {
                e["action"] == action
                    && e["outcome"] == outcome
                    && principal.is_none_or(|p| e["principal"] == p)
            })
        };
        assert!(
            has("records.create", "allowed", Some("dr-a@clinic-a")),
            "{v}"
        );
        assert!(has("records.read", "allowed", Some("dr-a@clinic-a")), "{v}");
        for action in [
            "records.read",
            "records.modify",
            "records.approve",
            "records.submit",
            "records.services",
        ] {
            assert!(
                has(action, "not_found", Some("dr-b@clinic-b")),
                "{action}: {v}"
            );
        }
        assert!(has("records.read", "unauthenticated", None), "{v}");
        assert!(
            has("records.approve", "denied", Some("bill-a@clinic-a")),
            "{v}"
        );
        assert!(
            has("records.approve", "allowed", Some("sup-a@clinic-a")),
            "{v}"
        );
        let e = events
            .iter()
            .find(|e| e["action"] == "records.create")
            .unwrap();
        assert_eq!(e["tenant"], "clinic-a");
        assert_eq!(e["role"], "clinician");
        assert_eq!(e["resource_id"], id.as_str());
        assert_eq!(e["http_status"], 201);
        assert_eq!(e["remote_addr"], "127.0.0.1", "{e}");
        assert!(e["request_id"].as_str().is_some_and(|r| !r.is_empty()));
        // Never a body or patient data in the audit log.
        for phi in ["SYN000111222", "1980-02-29", "SYNTHETIC"] {
            assert!(!v.to_string().contains(phi), "the audit log holds {phi}");
        }
        // B's admin asking about A's record sees only B's own attempts (as for a missing one).
        let (s, v, _) = api
            .call(
                "GET",
                &format!("/v1/audit?record={id}"),
                Some(&b_admin),
                None,
            )
            .await;
        assert_eq!(s, 200);
        let theirs = v["events"].as_array().unwrap();
        assert!(!theirs.is_empty());
        assert!(
            theirs.iter().all(|e| e["tenant"] == "clinic-b"),
            "B's admin sees A's audit lines: {v}"
        );

        // Keys over the API: an admin makes a key in its own tenant, shown once.
        let (s, v, _) = api
            .call(
                "POST",
                "/v1/keys",
                Some(&a_admin),
                Some(r#"{"role": "finance", "name": "fin-a"}"#),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["tenant"], "clinic-a");
        let fin = v["key"].as_str().unwrap().to_owned();
        let (s, v, _) = api.call("GET", "/v1/keys", Some(&a_admin), None).await;
        assert_eq!(s, 200);
        assert!(!v.to_string().contains(&fin), "a listing shows a key");
        assert!(
            !v.to_string().contains("dr-b"),
            "A's admin lists B's keys: {v}"
        );
        let (s, v, _) = api
            .call(
                "POST",
                "/v1/keys",
                Some(&a_admin),
                Some(r#"{"role": "root"}"#),
            )
            .await;
        assert_eq!(s, 422, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("root"));
        let (s, _, _) = api
            .call(
                "POST",
                "/v1/keys",
                Some(&a_clin),
                Some(r#"{"role": "admin"}"#),
            )
            .await;
        assert_eq!(s, 403);
        api.state.tracker.store.close().await;
    }
}

async fn token(api: &Api, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = api
        .http
        .post(format!("{}/oauth/token", api.base))
        .form(form)
        .send()
        .await
        .unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

/// EC P-384 private key (PKCS#8 PEM) and public key (PEM) made by the openssl CLI.
fn ec_keys(dir: &std::path::Path) -> Option<(String, String)> {
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
        "-out",
        "client.pem",
    ])?;
    run(&[
        "pkey",
        "-in",
        "client.pem",
        "-pubout",
        "-out",
        "client.pub.pem",
    ])?;
    Some((
        std::fs::read_to_string(dir.join("client.pem")).ok()?,
        std::fs::read_to_string(dir.join("client.pub.pem")).ok()?,
    ))
}

#[tokio::test]
async fn oauth_token_endpoint_client_credentials_and_smart() {
    let url = db::sqlite_url();
    let api = start(&url).await;
    let key = api.key("clinic-a", "clinician", "fhir-app").await;
    let prefix = key[..auth::PREFIX_LEN].to_owned();

    // Client credentials: id = prefix, secret = the key.
    let (s, v) = token(
        &api,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &prefix),
            ("client_secret", &key),
            ("scope", "system/*.read"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["expires_in"], 300);
    assert_eq!(v["token_type"], "bearer");
    let access = v["access_token"].as_str().unwrap().to_owned();
    let (s, v, _) = api
        .call("POST", "/v1/authorizations", Some(&access), Some(MRI))
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let rec = api.state.tracker.record(&id).await.unwrap();
    assert_eq!(rec.tenant, "clinic-a");
    // Only the hash of the token is kept.
    assert!(
        api.state
            .tracker
            .store
            .access_token(&access)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        api.state
            .tracker
            .store
            .access_token(&auth::hash_secret(&access))
            .await
            .unwrap()
            .is_some()
    );
    // HTTP Basic works too; a wrong secret does not.
    let basic = api
        .http
        .post(format!("{}/oauth/token", api.base))
        .basic_auth(&prefix, Some(&key))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status().as_u16(), 200);
    let other = api.key("clinic-a", "clinician", "other-app").await;
    for (id, secret) in [
        (prefix.as_str(), other.as_str()),
        (prefix.as_str(), "pa_nope"),
    ] {
        let (s, v) = token(
            &api,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ],
        )
        .await;
        assert_eq!(s, 401, "{v}");
        assert_eq!(v["error"], "invalid_client");
    }
    let (s, v) = token(&api, &[("grant_type", "password")]).await;
    assert_eq!(s, 400);
    assert_eq!(v["error"], "unsupported_grant_type");

    // SMART Backend Services.
    let dir = std::env::temp_dir().join(format!("priorauth-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let Some((private, public)) = ec_keys(&dir) else {
        eprintln!("SKIPPED (SMART assertion): the openssl CLI is not available");
        return;
    };
    let smart = auth::create_key(
        &api.state.tracker.store,
        "clinic-b",
        "clinician",
        Some("smart-app"),
        Some(&public),
        priorauth::store::now_ms(),
    )
    .await
    .unwrap();
    let client = smart.row.key_prefix.clone();
    let signing = jsonwebtoken::EncodingKey::from_ec_pem(private.as_bytes()).unwrap();
    let token_url = format!("{}/oauth/token", api.base);
    let now = priorauth::store::now_ms() / 1000;
    let assertion = |aud: &str, exp: i64, jti: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES384),
            &json!({"iss": client, "sub": client, "aud": aud, "exp": exp, "jti": jti}),
            &signing,
        )
        .unwrap()
    };
    let post = |jwt: String| {
        let api = &api;
        async move {
            token(
                api,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", auth::JWT_BEARER),
                    ("client_assertion", &jwt),
                ],
            )
            .await
        }
    };
    let (s, v) = post(assertion(&token_url, now + 240, "jti-1")).await;
    assert_eq!(s, 200, "{v}");
    let smart_token = v["access_token"].as_str().unwrap().to_owned();
    let (s, v, _) = api
        .call("GET", "/v1/authorizations", Some(&smart_token), None)
        .await;
    assert_eq!(s, 200);
    assert!(
        !v.to_string().contains(&id),
        "clinic-b's token sees clinic-a: {v}"
    );
    // The same jti twice, a wrong audience, a far expiry, an expired one: refused.
    for (jwt, why) in [
        (assertion(&token_url, now + 240, "jti-1"), "jti"),
        (
            assertion("http://elsewhere/oauth/token", now + 240, "jti-2"),
            "aud",
        ),
        (assertion(&token_url, now + 3600, "jti-3"), "five minutes"),
        (assertion(&token_url, now - 600, "jti-4"), "xpired"),
    ] {
        let (s, v) = post(jwt).await;
        assert_eq!(s, 401, "{why}: {v}");
        assert_eq!(v["error"], "invalid_client");
        let d = v["error_description"].as_str().unwrap();
        assert!(
            d.contains(why) || why == "aud" || why == "xpired",
            "{why}: {d}"
        );
    }
    // Signed by another key: refused.
    let _ = std::fs::remove_file(dir.join("client.pem"));
    if let Some((other_private, _)) = ec_keys(&dir) {
        let k = jsonwebtoken::EncodingKey::from_ec_pem(other_private.as_bytes()).unwrap();
        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES384),
            &json!({"iss": client, "sub": client, "aud": token_url, "exp": now + 240, "jti": "jti-5"}),
            &k,
        )
        .unwrap();
        let (s, _) = post(jwt).await;
        assert_eq!(s, 401);
    }
    // An RSA client signs RS384.
    let rsa = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ])
        .current_dir(&dir)
        .status()
        .is_ok_and(|s| s.success())
        && std::process::Command::new("openssl")
            .args(["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub.pem"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
    if rsa {
        let public = std::fs::read_to_string(dir.join("rsa.pub.pem")).unwrap();
        let private = std::fs::read_to_string(dir.join("rsa.pem")).unwrap();
        let made = auth::create_key(
            &api.state.tracker.store,
            "clinic-b",
            "clinician",
            Some("rsa-app"),
            Some(&public),
            priorauth::store::now_ms(),
        )
        .await
        .unwrap();
        let c = made.row.key_prefix.clone();
        let k = jsonwebtoken::EncodingKey::from_rsa_pem(private.as_bytes()).unwrap();
        let sign = |alg| {
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(alg),
                &json!({"iss": c, "sub": c, "aud": token_url, "exp": now + 240,
                        "jti": format!("{alg:?}")}),
                &k,
            )
            .unwrap()
        };
        let (s, v) = post(sign(jsonwebtoken::Algorithm::RS384)).await;
        assert_eq!(s, 200, "{v}");
        // RS256 is not what SMART Backend Services asks for.
        let (s, v) = post(sign(jsonwebtoken::Algorithm::RS256)).await;
        assert_eq!(s, 401, "{v}");
    } else {
        eprintln!("SKIPPED (RS384 assertion): openssl could not make an RSA key");
    }
    // Revoking the key ends its tokens.
    api.state
        .tracker
        .store
        .revoke_api_key(&client, priorauth::store::now_ms())
        .await
        .unwrap();
    let (s, _, _) = api
        .call("GET", "/v1/authorizations", Some(&smart_token), None)
        .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn keys_cli_prints_the_key_once_and_stores_its_hash() {
    let url = db::sqlite_url();
    let run = |args: &[&str]| {
        let mut a = vec!["keys"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--db", &url]);
        std::process::Command::new(BIN)
            .args(&a)
            .env_remove("PRIORAUTH_DB")
            .output()
            .unwrap()
    };
    let out = run(&[
        "create", "--tenant", "clinic-a", "--role", "billing", "--name", "bill",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let key = text.lines().next().unwrap().trim().to_owned();
    assert!(key.starts_with("pa_") && key.len() >= 60, "{text}");
    let prefix = &key[..auth::PREFIX_LEN];

    let store = priorauth::store::Store::open(&url).await.unwrap();
    let rows = store.api_keys().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].key_hash, auth::hash_secret(&key));
    assert_eq!(rows[0].key_prefix, prefix);
    assert_eq!(
        (rows[0].tenant.as_str(), rows[0].role.as_str()),
        ("clinic-a", "billing")
    );
    let p = auth::authenticate(&store, &key, priorauth::store::now_ms())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.tenant, "clinic-a");
    assert_eq!(p.name, "bill@clinic-a");
    assert_eq!(p.role.as_deref(), Some("billing"));
    // The database file does not hold the key.
    let file = url.trim_start_matches("sqlite://");
    store.close().await;
    let raw = std::fs::read(file).unwrap();
    let wal = std::fs::read(format!("{file}-wal")).unwrap_or_default();
    for bytes in [&raw, &wal] {
        assert!(
            !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "the database holds the key itself"
        );
    }

    // list shows the prefix, never the key; a second create prints another key.
    let out = run(&["list"]);
    let list = String::from_utf8(out.stdout).unwrap();
    assert!(list.contains(prefix) && !list.contains(&key), "{list}");
    let out = run(&[
        "create", "--tenant", "clinic-a", "--role", "billing", "--name", "bill",
    ]);
    let second = String::from_utf8(out.stdout).unwrap();
    assert!(!second.contains(&key));
    // Bad input is named.
    let out = run(&["create", "--tenant", "clinic-a", "--role", "root"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("root"));
    let out = run(&["create", "--tenant", "clinic a", "--role", "admin"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tenant"));
    let out = run(&[
        "create", "--tenant", "clinic-a", "--role", "admin", "--name", "bill",
    ]);
    assert!(!out.status.success(), "one label, one role");
    // Revoke.
    let out = run(&["revoke", prefix]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["revoke", prefix]);
    assert!(!out.status.success());
    let store = priorauth::store::Store::open(&url).await.unwrap();
    assert!(
        auth::authenticate(&store, &key, priorauth::store::now_ms())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_audit_log_is_append_only() {
    for url in db::both().await {
        let api = start(&url).await;
        let key = api.key("clinic-a", "clinician", "dr-a").await;
        let (s, _, _) = api
            .call("GET", "/v1/authorizations", Some(&key), None)
            .await;
        assert_eq!(s, 200);
        let before = api
            .state
            .tracker
            .store
            .audit_events(None, Some("clinic-a"), 100)
            .await
            .unwrap();
        assert_eq!(before.len(), 1);
        assert_eq!(before[0].action, "records.list");
        api.state.tracker.store.close().await;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let upd = sqlx::query("UPDATE audit_events SET principal = 'someone else'")
            .execute(&pool)
            .await;
        assert!(upd.is_err(), "an audit line was rewritten");
        let del = sqlx::query("DELETE FROM audit_events").execute(&pool).await;
        assert!(del.is_err(), "an audit line was deleted");
        pool.close().await;
        let store = priorauth::store::Store::open(&url).await.unwrap();
        let after = store
            .audit_events(None, Some("clinic-a"), 100)
            .await
            .unwrap();
        assert_eq!(after, before);
    }
}

/// A full `priorauth serve` run with two tenants, refused and allowed calls: its log holds
/// no patient data and no key or token, and the audit lines carry the peer address.
#[tokio::test]
async fn serve_run_logs_no_patient_data_and_no_credentials() {
    use harness::*;
    let dir = temp_dir("auth-serve");
    let url = format!("sqlite://{}", dir.join("gw.db").display());
    let gw = serve(&dir, &url, None, free_port(), &[]);
    let admin_key = std::fs::read_to_string(gw.key_file.as_ref().unwrap())
        .unwrap()
        .trim()
        .to_owned();
    let a = create_key(&url, "clinic-a", "clinician", "dr-a");
    let b = create_key(&url, "clinic-b", "clinician", "dr-b");
    let ca = Client::new(gw.url()).with_token(a.clone());
    let cb = Client::new(gw.url()).with_token(b.clone());
    let anon = Client::new(gw.url());
    let id = ca
        .create_and_submit(&serde_json::from_str(MRI).unwrap())
        .await;
    ca.wait_status(&id, &["approved"], std::time::Duration::from_secs(60))
        .await;
    let (s, _) = cb.get(&format!("/v1/authorizations/{id}")).await.unwrap();
    assert_eq!(s, 404);
    let (s, _) = anon.get(&format!("/v1/authorizations/{id}")).await.unwrap();
    assert_eq!(s, 401);
    let (s, _) = Client::new(gw.url())
        .with_token("pa_wrong")
        .post("/v1/authorizations", MRI.into(), None)
        .await
        .unwrap();
    assert_eq!(s, 401);
    let admin = Client::new(gw.url()).with_token(admin_key.clone());
    let (s, v) = admin.get(&format!("/v1/audit?record={id}")).await.unwrap();
    assert_eq!(s, 200);
    // The default tenant's admin does not see clinic-a's record: only its own attempts.
    assert!(v["events"].as_array().unwrap().is_empty(), "{v}");
    let a_admin = create_key(&url, "clinic-a", "admin", "admin-a");
    let (s, v) = Client::new(gw.url())
        .with_token(a_admin.clone())
        .get(&format!("/v1/audit?record={id}"))
        .await
        .unwrap();
    assert_eq!(s, 200);
    let events = v["events"].as_array().unwrap();
    for (action, outcome) in [
        ("records.create", "allowed"),
        ("records.submit", "allowed"),
        ("records.read", "not_found"),
        ("records.read", "unauthenticated"),
    ] {
        assert!(
            events
                .iter()
                .any(|e| e["action"] == action && e["outcome"] == outcome),
            "{action} {outcome}: {v}"
        );
    }
    assert!(
        events.iter().all(|e| e["remote_addr"] == "127.0.0.1"),
        "{v}"
    );
    drop(gw);
    assert_no_phi(
        &dir.join("serve.log"),
        &[&admin_key, &a, &b, &a_admin, "pa_wrong"],
    );
}
