//! Transports against real HTTP servers on 127.0.0.1 (random ports) that stand in for payers and
//! for the OAuth2 token endpoint: CAQH CORE (SOAP and MIME), FHIR PAS with client credentials and
//! SMART Backend Services, and batch folders.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use priorauth::payers::{Auth, ClientAuth, CoreStyle, Format, PayerConfig, SecretRef};
use priorauth::transport::batch;
use priorauth::transport::core::{
    CoreResponse, SoapFault, build_soap_fault, build_soap_response, encode_form_data,
    mime_response_parts, parse_mime_request, parse_soap_request, payload_type,
};
use priorauth::transport::{
    Delivery, Operation, Outgoing, SendError, Transport, for_payer, http_client,
};
use serde_json::{Value, json};

/// Synthetic interchange (no patient data); the `]]>` checks the CDATA split.
const X12: &str = "ISA*00*          *00*          *ZZ*PRIORAUTHGW    *ZZ*SYNTHPAYER01   *261123*1830*^*00501*000000101*1*T*:~GS*HI*PRIORAUTHGW*SYNTHPAYER01*20261123*1830*101*X*005010X217~ST*278*0001*005010X217~BHT*0007*13*REF]]>47*20261123*1830~SE*3*0001~GE*1*101~IEA*1*000000101~\r\n";

const LIMIT: Duration = Duration::from_secs(30);

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "priorauth-transport-{tag}-{}",
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn secret_file(dir: &Path, name: &str, value: &str) -> SecretRef {
    let p = dir.join(name);
    std::fs::write(&p, format!("{value}\n")).unwrap();
    SecretRef::File(p)
}

async fn send(
    t: &Arc<dyn Transport>,
    cfg: &PayerConfig,
    op: Operation,
    id: &str,
    body: &[u8],
) -> Result<Delivery, SendError> {
    tokio::time::timeout(
        LIMIT,
        t.send(Outgoing {
            payer: cfg,
            operation: op,
            payload_id: id,
            body,
        }),
    )
    .await
    .expect("send did not finish within the test limit")
}

fn answered(r: Result<Delivery, SendError>) -> priorauth::transport::Answer {
    match r {
        Ok(Delivery::Answered(a)) => a,
        other => panic!("expected an answer, got {other:?}"),
    }
}

// ------------------------------------------------------------------------------------ CORE

#[derive(Default)]
struct CoreSeen {
    content_types: Vec<String>,
    /// (username, password) when a UsernameToken / UserName part came.
    credentials: Vec<Option<(String, String)>>,
    payloads: Vec<String>,
    ids: Vec<(String, String)>,
}

type CoreState = Arc<Mutex<CoreSeen>>;

fn soap(status: StatusCode, xml: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/soap+xml; charset=utf-8")],
        xml,
    )
        .into_response()
}

async fn core_ok(State(s): State<CoreState>, headers: HeaderMap, body: String) -> Response {
    match parse_soap_request(&body) {
        Ok((req, creds)) => {
            let mut seen = s.lock().unwrap();
            seen.content_types.push(
                headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
            );
            seen.credentials
                .push(creds.map(|c| (c.username, c.password)));
            seen.payloads.push(req.payload.clone());
            seen.ids
                .push((req.sender_id.clone(), req.receiver_id.clone()));
            let check = req.check();
            let resp = match check {
                Ok(()) => CoreResponse::answer(
                    &req,
                    payload_type::X12_278_RESPONSE,
                    // Echo the payload so the client side of the CDATA split is checked too.
                    Some(req.payload.clone()),
                    "Success",
                    "Envelope was processed successfully.",
                ),
                Err((code, msg)) => CoreResponse::answer(&req, &req.payload_type, None, code, &msg),
            };
            soap(StatusCode::OK, build_soap_response(&resp))
        }
        Err(e) => soap(
            StatusCode::BAD_REQUEST,
            build_soap_fault(&SoapFault::sender(e.to_string())),
        ),
    }
}

async fn core_code(body: String, code: &str, payload: Option<&str>) -> Response {
    let (req, _) = parse_soap_request(&body).unwrap();
    soap(
        StatusCode::OK,
        build_soap_response(&CoreResponse::answer(
            &req,
            payload_type::X12_278_RESPONSE,
            payload.map(str::to_owned),
            code,
            "synthetic",
        )),
    )
}

async fn core_mime(State(s): State<CoreState>, mut mp: Multipart) -> Response {
    let mut parts = Vec::new();
    while let Some(f) = mp.next_field().await.unwrap() {
        let name = f.name().unwrap_or_default().to_owned();
        parts.push((name, f.text().await.unwrap()));
    }
    let (req, creds) = match parse_mime_request(&parts) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    if creds.as_ref().map(|c| c.password.as_str()) != Some("mime-secret") {
        return (StatusCode::UNAUTHORIZED, "UnAuthorized").into_response();
    }
    s.lock().unwrap().payloads.push(req.payload.clone());
    let resp = CoreResponse::answer(
        &req,
        payload_type::X12_999_RESPONSE,
        Some(req.payload.clone()),
        "Success",
        "",
    );
    let (ct, body) = encode_form_data(&mime_response_parts(&resp));
    ([(header::CONTENT_TYPE, ct)], body).into_response()
}

async fn core_server() -> (String, CoreState) {
    let state: CoreState = Arc::default();
    let app = Router::new()
        .route("/ok", post(core_ok))
        .route("/mime", post(core_mime))
        .route(
            "/busy",
            post(|b: String| core_code(b, "ReceiverServerBusy", None)),
        )
        .route(
            "/unauthorized",
            post(|b: String| core_code(b, "UnAuthorized", None)),
        )
        .route(
            "/illegal-sender",
            post(|b: String| core_code(b, "SenderIDIllegal", None)),
        )
        .route(
            "/payload-type",
            post(|b: String| core_code(b, "PayloadTypeIllegal", None)),
        )
        .route(
            "/empty-code",
            post(|b: String| core_code(b, "", Some("ISA*TA1~"))),
        )
        .route(
            "/http503",
            post(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "7")],
                    "busy",
                )
            }),
        )
        .route("/http401", post(|| async { StatusCode::UNAUTHORIZED }))
        .route(
            "/http500",
            post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error") }),
        )
        .route(
            "/receiver-fault",
            post(|| async {
                soap(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    build_soap_fault(&SoapFault::receiver("backend unavailable")),
                )
            }),
        )
        .route(
            "/malformed",
            post(|| async {
                soap(
                    StatusCode::OK,
                    "<soap:Envelope><soap:Body><COREEnvelopeRealTimeResponse>".into(),
                )
            }),
        )
        .route(
            "/mismatch",
            post(|b: String| async move {
                let (mut req, _) = parse_soap_request(&b).unwrap();
                req.payload_id = "00000000-0000-4000-8000-000000000000".into();
                soap(
                    StatusCode::OK,
                    build_soap_response(&CoreResponse::answer(
                        &req,
                        payload_type::X12_278_RESPONSE,
                        Some("ISA~".into()),
                        "Success",
                        "",
                    )),
                )
            }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .with_state(state.clone());
    (serve(app).await, state)
}

fn core_cfg(base: &str, path: &str) -> PayerConfig {
    let mut cfg = PayerConfig::core("SYNTHPAYER01", &format!("{base}{path}"));
    cfg.timeout_ms = 5_000;
    cfg
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn core_soap_round_trip_with_and_without_ws_security() {
    let (base, seen) = core_server().await;
    let dir = tempdir("core-soap");
    let http = http_client();

    let mut cfg = core_cfg(&base, "/ok");
    cfg.soap_action = "RealTimeTransaction".into();
    cfg.core_receiver_id = Some("CORE-RCV".into());
    let t = for_payer(&cfg, &http);
    let id = new_id();
    let a = answered(send(&t, &cfg, Operation::Submit, &id, X12.as_bytes()).await);
    assert_eq!(
        a.body,
        X12.as_bytes(),
        "payload with ]]> and CRLF came back exact"
    );
    assert_eq!(a.detail, "CORE X12_278_Response_005010X217E1_2 Success");

    cfg.auth = Auth::CoreUsername {
        username: secret_file(&dir, "user", "synthetic-user"),
        password: secret_file(&dir, "pass", "s3cr&t<]]>"),
    };
    let t = for_payer(&cfg, &http);
    answered(send(&t, &cfg, Operation::Submit, &new_id(), X12.as_bytes()).await);

    let seen = seen.lock().unwrap();
    assert_eq!(seen.payloads, vec![X12.to_owned(), X12.to_owned()]);
    assert_eq!(
        seen.credentials[0], None,
        "no WS-Security header without credentials"
    );
    assert_eq!(
        seen.credentials[1],
        Some(("synthetic-user".to_owned(), "s3cr&t<]]>".to_owned()))
    );
    assert_eq!(
        seen.content_types[0],
        "application/soap+xml; charset=utf-8; action=\"RealTimeTransaction\""
    );
    // SenderID from ISA06 (sender_id), ReceiverID from core_receiver_id.
    assert_eq!(
        seen.ids[0],
        ("PRIORAUTHGW".to_owned(), "CORE-RCV".to_owned())
    );
}

#[tokio::test]
async fn core_mime_round_trip_and_unauthorized() {
    let (base, seen) = core_server().await;
    let dir = tempdir("core-mime");
    let http = http_client();
    let mut cfg = core_cfg(&base, "/mime");
    cfg.core_style = CoreStyle::Mime;
    cfg.auth = Auth::CoreUsername {
        username: secret_file(&dir, "user", "synthetic-user"),
        password: secret_file(&dir, "pass", "mime-secret"),
    };
    let t = for_payer(&cfg, &http);
    let a = answered(send(&t, &cfg, Operation::Submit, &new_id(), X12.as_bytes()).await);
    assert_eq!(a.body, X12.as_bytes());
    assert_eq!(a.detail, "CORE X12_999_Response_005010X231A1 Success");
    assert_eq!(seen.lock().unwrap().payloads, vec![X12.to_owned()]);

    cfg.auth = Auth::CoreUsername {
        username: secret_file(&dir, "user", "synthetic-user"),
        password: secret_file(&dir, "pass2", "wrong"),
    };
    let e = send(&t, &cfg, Operation::Submit, &new_id(), X12.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Config { .. }), "{e:?}");
}

#[tokio::test]
async fn core_error_mappings() {
    let (base, _) = core_server().await;
    let http = http_client();
    let cases: &[(&str, &str)] = &[
        ("/busy", "not_delivered"),
        ("/http503", "not_delivered"),
        ("/unauthorized", "config"),
        ("/http401", "config"),
        ("/illegal-sender", "config"),
        ("/payload-type", "refused"),
        ("/http500", "unknown"),
        ("/receiver-fault", "unknown"),
        ("/malformed", "unknown"),
        ("/mismatch", "unknown"),
    ];
    for (path, want) in cases {
        let cfg = core_cfg(&base, path);
        let t = for_payer(&cfg, &http);
        let r = send(&t, &cfg, Operation::Submit, &new_id(), X12.as_bytes()).await;
        let got = match &r {
            Ok(_) => "answered",
            Err(SendError::NotDelivered { .. }) => "not_delivered",
            Err(SendError::Unknown { .. }) => "unknown",
            Err(SendError::Refused { .. }) => "refused",
            Err(SendError::Config { .. }) => "config",
        };
        assert_eq!(got, *want, "{path}: {r:?}");
        if *path == "/http503" {
            assert!(
                matches!(r, Err(SendError::NotDelivered { retry_after: Some(d), .. }) if d == Duration::from_secs(7))
            );
        }
        if *path == "/mismatch" {
            assert!(
                r.as_ref()
                    .unwrap_err()
                    .reason()
                    .contains("PayloadID mismatch")
            );
        }
        if *path == "/malformed" {
            let reason = r.as_ref().unwrap_err().reason().to_owned();
            assert!(reason.contains("unreadable CORE response"), "{reason}");
        }
    }
    // An empty ErrorCode with a payload (seen from a Medicaid TA1) is an answer.
    let cfg = core_cfg(&base, "/empty-code");
    let t = for_payer(&cfg, &http);
    let a = answered(send(&t, &cfg, Operation::Submit, &new_id(), X12.as_bytes()).await);
    assert_eq!(a.body, b"ISA*TA1~");
}

#[tokio::test]
async fn core_timeout_dropped_connection_and_refused_connection() {
    let (base, _) = core_server().await;
    let http = http_client();

    let mut cfg = core_cfg(&base, "/slow");
    cfg.timeout_ms = 300;
    let t = for_payer(&cfg, &http);
    let e = send(&t, &cfg, Operation::Submit, &new_id(), X12.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Unknown { .. }), "timeout: {e:?}");
    assert!(e.reason().contains("timed out"), "{e}");

    // A server that reads the whole request, then closes without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = sock.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                if String::from_utf8_lossy(&buf).contains("</soapenv:Envelope>") {
                    break;
                }
            }
            drop(sock);
        }
    });
    let cfg = core_cfg(&format!("http://{addr}"), "/core");
    let t = for_payer(&cfg, &http);
    let e = send(&t, &cfg, Operation::Submit, &new_id(), X12.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Unknown { .. }), "dropped: {e:?}");

    // Nothing listens: never delivered.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let cfg = core_cfg(&format!("http://127.0.0.1:{port}"), "/core");
    let t = for_payer(&cfg, &http);
    let e = send(&t, &cfg, Operation::Submit, &new_id(), X12.as_bytes())
        .await
        .unwrap_err();
    assert!(
        matches!(e, SendError::NotDelivered { .. }),
        "refused: {e:?}"
    );
}

// ------------------------------------------------------------------------------------ FHIR

#[derive(Default)]
struct TokenState {
    requests: AtomicUsize,
    issued: Mutex<Vec<String>>,
    /// Tokens the PAS server refuses (as if revoked).
    revoked: Mutex<HashSet<String>>,
    jtis: Mutex<HashSet<String>>,
    /// SMART: the public key PEM and algorithm to verify assertions with.
    public_pem: Mutex<Option<(String, jsonwebtoken::Algorithm)>>,
    token_url: Mutex<String>,
    fail_with: Mutex<Option<StatusCode>>,
    errors: Mutex<Vec<String>>,
}

type Tok = Arc<TokenState>;

fn b64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

async fn token_endpoint(
    State(s): State<Tok>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let n = s.requests.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(code) = *s.fail_with.lock().unwrap() {
        return (
            code,
            axum::Json(
                json!({"error": "invalid_client", "error_description": "synthetic failure"}),
            ),
        )
            .into_response();
    }
    let mut problem = None;
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        problem = Some("grant_type".to_owned());
    }
    match form.get("client_assertion") {
        Some(assertion) => {
            let key = s.public_pem.lock().unwrap().clone();
            let (pem, alg) = key.expect("SMART test sets a public key");
            let dk = match alg {
                jsonwebtoken::Algorithm::RS384 => {
                    jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes())
                }
                _ => jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes()),
            }
            .unwrap();
            let mut v = jsonwebtoken::Validation::new(alg);
            v.set_audience(&[s.token_url.lock().unwrap().clone()]);
            v.set_issuer(&["smart-client"]);
            v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
            match jsonwebtoken::decode::<Value>(assertion, &dk, &v) {
                Ok(data) => {
                    let c = data.claims;
                    let now = chrono::Utc::now().timestamp();
                    if c["sub"] != "smart-client" {
                        problem = Some("sub".into());
                    }
                    if c["exp"].as_i64().unwrap_or(0) > now + 300 {
                        problem = Some("exp beyond 5 minutes".into());
                    }
                    if data.header.kid.as_deref() != Some("synthetic-kid") {
                        problem = Some("kid".into());
                    }
                    let jti = c["jti"].as_str().unwrap_or_default().to_owned();
                    if jti.is_empty() || !s.jtis.lock().unwrap().insert(jti) {
                        problem = Some("jti missing or reused".into());
                    }
                }
                Err(e) => problem = Some(format!("assertion: {e}")),
            }
            if form.get("client_assertion_type").map(String::as_str)
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            {
                problem = Some("client_assertion_type".into());
            }
            if form.get("scope").map(String::as_str) != Some("system/Claim.write") {
                problem = Some("scope".into());
            }
        }
        None => {
            let basic = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let ok_basic = basic == Some(format!("Basic {}", b64(b"cc-client:cc-secret")));
            let ok_body = form.get("client_id").map(String::as_str) == Some("cc-client")
                && form.get("client_secret").map(String::as_str) == Some("cc-secret");
            if ok_basic == ok_body {
                problem = Some(format!("client auth basic={ok_basic} body={ok_body}"));
            }
        }
    }
    if let Some(p) = problem {
        s.errors.lock().unwrap().push(p.clone());
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client", "error_description": p})),
        )
            .into_response();
    }
    let token = format!("token-{n}");
    s.issued.lock().unwrap().push(token.clone());
    axum::Json(json!({"access_token": token, "token_type": "bearer", "expires_in": 300}))
        .into_response()
}

async fn pas(State(s): State<Tok>, headers: HeaderMap, body: String) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let issued = s.issued.lock().unwrap().contains(&bearer);
    if !issued || s.revoked.lock().unwrap().contains(&bearer) {
        return (StatusCode::UNAUTHORIZED, "token").into_response();
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if ct != Some("application/fhir+json") || accept != Some("application/fhir+json") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "content type").into_response();
    }
    let req: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if req["resourceType"] == "Bundle" && req["entry"].as_array().is_none_or(|e| e.is_empty()) {
        let oo = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "required", "diagnostics": "Bundle.entry: a Claim is required", "expression": ["Bundle.entry"]}]});
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            [(header::CONTENT_TYPE, "application/fhir+json")],
            oo.to_string(),
        )
            .into_response();
    }
    let kind = if req["resourceType"] == "Parameters" {
        "inquire"
    } else {
        "submit"
    };
    (
        [(header::CONTENT_TYPE, "application/fhir+json")],
        json!({"resourceType": "Bundle", "type": "collection", "id": kind}).to_string(),
    )
        .into_response()
}

async fn fhir_server() -> (String, Tok) {
    let state: Tok = Arc::default();
    let app = Router::new()
        .route("/token", post(token_endpoint))
        .route("/fhir/Claim/$submit", post(pas))
        .route("/fhir/Claim/$inquire", post(pas))
        .route(
            "/down/Claim/$submit",
            post(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, "11")],
                    "",
                )
            }),
        )
        .route(
            "/broken/Claim/$submit",
            post(|| async { StatusCode::BAD_GATEWAY }),
        )
        .route(
            "/slow/Claim/$submit",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .with_state(state.clone());
    let base = serve(app).await;
    *state.token_url.lock().unwrap() = format!("{base}/token");
    (base, state)
}

fn fhir_cfg(base: &str, path: &str, auth: Auth) -> PayerConfig {
    PayerConfig {
        format: Format::FhirPas,
        auth,
        timeout_ms: 5_000,
        ..PayerConfig::core("SYNTHPAS", &format!("{base}{path}"))
    }
}

const BUNDLE: &str = r#"{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Claim"}}]}"#;

fn cc_auth(base: &str, dir: &Path, client_auth: ClientAuth) -> Auth {
    Auth::ClientCredentials {
        token_url: format!("{base}/token"),
        client_id: "cc-client".into(),
        client_secret: secret_file(dir, "cc", "cc-secret"),
        scope: Some("system/Claim.write".into()),
        client_auth,
    }
}

#[tokio::test]
async fn fhir_client_credentials_cached_shared_and_refreshed_on_401() {
    let (base, tok) = fhir_server().await;
    let dir = tempdir("fhir-cc");
    let http = http_client();
    for client_auth in [ClientAuth::Basic, ClientAuth::Body] {
        let cfg = fhir_cfg(&base, "/fhir", cc_auth(&base, &dir, client_auth));
        let t = for_payer(&cfg, &http);
        let before = tok.requests.load(Ordering::SeqCst);
        // Concurrent sends share one token request.
        let ids: Vec<String> = (0..4).map(|_| new_id()).collect();
        let sends = ids
            .iter()
            .map(|id| send(&t, &cfg, Operation::Submit, id, BUNDLE.as_bytes()));
        for r in futures_join(sends).await {
            let a = answered(r);
            assert_eq!(a.detail, "FHIR $submit HTTP 200");
            assert!(String::from_utf8(a.body).unwrap().contains("\"submit\""));
        }
        let inq = answered(
            send(
                &t,
                &cfg,
                Operation::Inquire,
                &new_id(),
                br#"{"resourceType":"Parameters"}"#,
            )
            .await,
        );
        assert!(String::from_utf8(inq.body).unwrap().contains("\"inquire\""));
        assert_eq!(
            tok.requests.load(Ordering::SeqCst) - before,
            1,
            "{:?}",
            tok.errors.lock().unwrap()
        );

        // The payer revokes the token: one refresh, then success.
        let current = tok.issued.lock().unwrap().last().unwrap().clone();
        tok.revoked.lock().unwrap().insert(current);
        answered(send(&t, &cfg, Operation::Submit, &new_id(), BUNDLE.as_bytes()).await);
        assert_eq!(tok.requests.load(Ordering::SeqCst) - before, 2);
    }
    assert!(
        tok.errors.lock().unwrap().is_empty(),
        "{:?}",
        tok.errors.lock().unwrap()
    );
}

/// Runs the futures concurrently on this task and returns their results in order.
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let futs: Vec<_> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    let mut futs: Vec<_> = futs.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, slot) in futs.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        out[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.unwrap()).collect()
}

/// A key pair made now with the openssl CLI: (private PEM, public PEM), or None to skip.
fn keypair(dir: &Path, alg: &str) -> Option<(String, String)> {
    use std::process::Command;
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipping: the openssl CLI is not installed (needed to make a test key)");
        return None;
    }
    let key = dir.join(format!("{alg}.key.pem"));
    let public = dir.join(format!("{alg}.pub.pem"));
    let gen_args: &[&str] = if alg == "RS384" {
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ]
    } else {
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ]
    };
    let ok = Command::new("openssl")
        .args(gen_args)
        .arg("-out")
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl genpkey failed");
    let ok = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl pkey failed");
    Some((
        std::fs::read_to_string(&key).unwrap(),
        std::fs::read_to_string(&public).unwrap(),
    ))
}

#[tokio::test]
async fn fhir_smart_backend_assertions_verified_and_token_cached() {
    let (base, tok) = fhir_server().await;
    let dir = tempdir("fhir-smart");
    let http = http_client();
    for (alg, jalg) in [
        ("RS384", jsonwebtoken::Algorithm::RS384),
        ("ES384", jsonwebtoken::Algorithm::ES384),
    ] {
        let Some((private, public)) = keypair(&dir, alg) else {
            return;
        };
        *tok.public_pem.lock().unwrap() = Some((public, jalg));
        let cfg = fhir_cfg(
            &base,
            "/fhir",
            Auth::SmartBackend {
                token_url: format!("{base}/token"),
                client_id: "smart-client".into(),
                private_key: secret_file(&dir, &format!("{alg}.key"), &private),
                key_id: Some("synthetic-kid".into()),
                algorithm: alg.into(),
                scope: Some("system/Claim.write".into()),
            },
        );
        let t = for_payer(&cfg, &http);
        let before = tok.requests.load(Ordering::SeqCst);
        for _ in 0..3 {
            answered(send(&t, &cfg, Operation::Submit, &new_id(), BUNDLE.as_bytes()).await);
        }
        assert!(
            tok.errors.lock().unwrap().is_empty(),
            "{alg}: {:?}",
            tok.errors.lock().unwrap()
        );
        assert_eq!(
            tok.requests.load(Ordering::SeqCst) - before,
            1,
            "{alg}: token cached"
        );
        let current = tok.issued.lock().unwrap().last().unwrap().clone();
        tok.revoked.lock().unwrap().insert(current);
        answered(send(&t, &cfg, Operation::Submit, &new_id(), BUNDLE.as_bytes()).await);
        assert_eq!(
            tok.requests.load(Ordering::SeqCst) - before,
            2,
            "{alg}: one refresh, fresh jti"
        );
        assert!(
            tok.errors.lock().unwrap().is_empty(),
            "{alg}: {:?}",
            tok.errors.lock().unwrap()
        );
    }
    // A key that is not PEM is a configuration error, said before anything is sent.
    let cfg = fhir_cfg(
        &base,
        "/fhir",
        Auth::SmartBackend {
            token_url: format!("{base}/token"),
            client_id: "smart-client".into(),
            private_key: secret_file(&dir, "bad.key", "not a key"),
            key_id: None,
            algorithm: "RS384".into(),
            scope: None,
        },
    );
    let before = tok.requests.load(Ordering::SeqCst);
    let e = send(
        &for_payer(&cfg, &http),
        &cfg,
        Operation::Submit,
        &new_id(),
        BUNDLE.as_bytes(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, SendError::Config { reason } if reason.contains("PEM")),
        "{e:?}"
    );
    assert_eq!(tok.requests.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn fhir_status_and_token_failure_mappings() {
    let (base, tok) = fhir_server().await;
    let dir = tempdir("fhir-map");
    let http = http_client();
    let auth = cc_auth(&base, &dir, ClientAuth::Basic);

    // 4xx with an OperationOutcome: refused with the diagnostics, never the body as reason.
    let cfg = fhir_cfg(&base, "/fhir", auth.clone());
    let t = for_payer(&cfg, &http);
    let empty = br#"{"resourceType":"Bundle","type":"collection","entry":[]}"#;
    match send(&t, &cfg, Operation::Submit, &new_id(), empty).await {
        Err(SendError::Refused { reason, body }) => {
            assert!(
                reason.contains("Bundle.entry: a Claim is required"),
                "{reason}"
            );
            assert!(!reason.contains("resourceType"), "{reason}");
            assert!(body.is_some());
        }
        other => panic!("{other:?}"),
    }

    let cfg = fhir_cfg(&base, "/down", auth.clone());
    let e = send(
        &for_payer(&cfg, &http),
        &cfg,
        Operation::Submit,
        &new_id(),
        BUNDLE.as_bytes(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, SendError::NotDelivered { retry_after: Some(d), .. } if d == Duration::from_secs(11)),
        "{e:?}"
    );

    let cfg = fhir_cfg(&base, "/broken", auth.clone());
    let e = send(
        &for_payer(&cfg, &http),
        &cfg,
        Operation::Submit,
        &new_id(),
        BUNDLE.as_bytes(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, SendError::Unknown { .. }), "{e:?}");

    let mut cfg = fhir_cfg(&base, "/slow", auth.clone());
    cfg.timeout_ms = 300;
    let e = send(
        &for_payer(&cfg, &http),
        &cfg,
        Operation::Submit,
        &new_id(),
        BUNDLE.as_bytes(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, SendError::Unknown { .. }), "{e:?}");

    // Token endpoint failures: rejected credentials are configuration, a busy one is not delivered.
    let cfg = fhir_cfg(&base, "/fhir", auth.clone());
    *tok.fail_with.lock().unwrap() = Some(StatusCode::UNAUTHORIZED);
    let e = send(
        &for_payer(&cfg, &http),
        &cfg,
        Operation::Submit,
        &new_id(),
        BUNDLE.as_bytes(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&e, SendError::Config { reason } if reason.contains("invalid_client")),
        "{e:?}"
    );
    *tok.fail_with.lock().unwrap() = Some(StatusCode::SERVICE_UNAVAILABLE);
    let e = send(
        &for_payer(&cfg, &http),
        &cfg,
        Operation::Submit,
        &new_id(),
        BUNDLE.as_bytes(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, SendError::NotDelivered { .. }), "{e:?}");
    *tok.fail_with.lock().unwrap() = None;

    // The payer keeps refusing a fresh token: one refresh, then configuration.
    let cfg = fhir_cfg(&base, "/fhir", Auth::None);
    let e = send(
        &for_payer(&cfg, &http),
        &cfg,
        Operation::Submit,
        &new_id(),
        BUNDLE.as_bytes(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, SendError::Config { .. }), "{e:?}");
}

// ------------------------------------------------------------------------------------ batch

#[tokio::test]
async fn batch_write_and_pick_up() {
    let dir = tempdir("batch");
    let out = dir.join("out");
    let inbound = dir.join("in");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&inbound).unwrap();
    let cfg = PayerConfig {
        format: Format::X12Batch,
        endpoint: None,
        outbound_dir: Some(out.clone()),
        inbound_dir: Some(inbound.clone()),
        ..PayerConfig::core("SYNTHBATCH", "http://unused")
    };
    let t = for_payer(&cfg, &http_client());
    let id = new_id();
    let r = send(&t, &cfg, Operation::Submit, &id, X12.as_bytes()).await;
    assert_eq!(r, Ok(Delivery::Accepted));
    let written: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(written, vec![format!("{id}.x12")], "no temp file left");
    assert_eq!(
        std::fs::read(out.join(format!("{id}.x12"))).unwrap(),
        X12.as_bytes()
    );

    let e = send(&t, &cfg, Operation::Inquire, &id, b"")
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Refused { .. }), "{e:?}");
    let e = send(&t, &cfg, Operation::Submit, "../escape", X12.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Refused { .. }), "{e:?}");
    let mut missing = cfg.clone();
    missing.outbound_dir = Some(dir.join("does-not-exist"));
    let e = send(&t, &missing, Operation::Submit, &new_id(), X12.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(e, SendError::Config { .. }), "{e:?}");

    for name in [
        "b-999.x12",
        "a-278.x12",
        ".hidden.x12",
        "c.x12.tmp",
        "d.part",
    ] {
        std::fs::write(inbound.join(name), "ISA~").unwrap();
    }
    let files = batch::pick_up(&inbound).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a-278.x12", "b-999.x12"]);
    assert_eq!(files[0].read().unwrap(), b"ISA~");
    let moved = batch::mark_processed(&inbound, &files[0]).unwrap();
    assert_eq!(moved, inbound.join("processed").join("a-278.x12"));
    let failed = batch::mark_failed(&inbound, &files[1], "not an X12 interchange").unwrap();
    assert_eq!(failed, inbound.join("failed").join("b-999.x12"));
    assert_eq!(
        std::fs::read_to_string(inbound.join("failed").join("b-999.x12.reason.txt")).unwrap(),
        "not an X12 interchange\n"
    );
    assert!(batch::pick_up(&inbound).unwrap().is_empty());
    assert!(batch::pick_up(&dir.join("nope")).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The shared X12 fixtures (synthetic TR3 examples), when present, travel through both envelope
/// styles byte for byte.
#[tokio::test]
async fn core_shared_fixtures_round_trip_soap_and_mime() {
    let shared = match std::env::var_os("PRIORAUTH_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"),
    };
    let dir = shared.join("fixtures/x12");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!(
            "SKIPPED: {} is not available; set PRIORAUTH_SHARED to the shared directory",
            dir.display()
        );
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "edi"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .edi fixtures in {}", dir.display());
    let (base, _) = core_server().await;
    let creds = tempdir("core-fixtures");
    let http = http_client();
    for style in [CoreStyle::Soap, CoreStyle::Mime] {
        let mut cfg = core_cfg(
            &base,
            if style == CoreStyle::Soap {
                "/ok"
            } else {
                "/mime"
            },
        );
        cfg.core_style = style;
        if style == CoreStyle::Mime {
            cfg.auth = Auth::CoreUsername {
                username: secret_file(&creds, "user", "synthetic-user"),
                password: secret_file(&creds, "pass", "mime-secret"),
            };
        }
        let t = for_payer(&cfg, &http);
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            let a = answered(send(&t, &cfg, Operation::Submit, &new_id(), &bytes).await);
            assert_eq!(a.body, bytes, "{style:?} {}", f.display());
        }
    }
}
