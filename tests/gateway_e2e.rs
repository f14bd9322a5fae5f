//! Black-box: `priorauth serve` and `priorauth mock-payer` as processes on loopback ports, a
//! fresh database each. A REST request reaches an X12 CORE payer (SOAP and MIME) and a FHIR PAS
//! payer and comes back approved; pended decisions complete later (CORE by the payer's push to
//! `/v1/inbound`, PAS by `$inquire`); every fault mode ends in a definite state with a reason;
//! no patient data in any log.

mod db;
mod harness;

use std::time::Duration;

use harness::*;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

async fn approved_through(format: &str, path: &str, extra: &str) {
    let dir = temp_dir(&format!("e2e-{format}"));
    let mock = mock_payer(&dir, None, None);
    let payers = payers_file(&dir, format, &format!("{}{path}", mock.url()), extra);
    let gw = serve(&dir, &db::sqlite_url(), Some(&payers), free_port(), &[]);
    let c = Client::clinician(&gw);
    let id = c.create_and_submit(&request(1, None, None)).await;
    let rec = c.wait_status(&id, &["approved"], LIMIT).await;
    let d = &rec["decisions"][0];
    assert_eq!(d["status"], "approved", "{rec}");
    assert!(
        d["certification_number"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{rec}"
    );
    // The payer saw one new authorization; submitting again sends nothing.
    let (s, v) = c
        .post(
            &format!("/v1/authorizations/{id}/submit"),
            String::new(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (s, &v["already_submitted"]),
        (200, &Value::Bool(true)),
        "{v}"
    );
    let stats = mock_json(&mock, "/mock/stats").await;
    assert_eq!(stats["new_authorizations"], 1, "{stats}");
    let (_, outbox) = c.get("/v1/outbox?state=answered").await.unwrap();
    assert_eq!(outbox["messages"].as_array().unwrap().len(), 1, "{outbox}");
    drop(gw);
    assert_no_phi(&dir.join("serve.log"), &[]);
    assert_no_phi(&dir.join("mock.log"), &[]);
}

#[tokio::test]
async fn x12_core_soap_payer_approves() {
    approved_through("x12-core", "/core", "").await;
}

#[tokio::test]
async fn x12_core_mime_payer_approves() {
    approved_through("x12-core", "/core", "core_style = \"mime\"").await;
}

#[tokio::test]
async fn fhir_pas_payer_approves() {
    approved_through("fhir-pas", "/fhir", "").await;
}

const PEND: &str = r#"
[[rule]]
name = "pend-mri"
match = { procedure = "72148" }
action = "pend"
then = "approve"
after_ms = 1500
"#;

#[tokio::test]
async fn pended_core_decision_arrives_by_push() {
    let dir = temp_dir("e2e-pend-core");
    let port = free_port();
    let inbound = format!("http://127.0.0.1:{port}/v1/inbound");
    // The payer's pushes are authenticated like any caller: a billing key of the gateway.
    let url = db::sqlite_url();
    let push_key = dir.join("push.key");
    std::fs::write(
        &push_key,
        create_key(&url, "default", "billing", "payer-push"),
    )
    .unwrap();
    let mock = mock_payer_with(&dir, Some(PEND), Some(&inbound), Some(&push_key));
    let payers = payers_file(&dir, "x12-core", &format!("{}/core", mock.url()), "");
    let gw = serve(&dir, &url, Some(&payers), port, &[]);
    let c = Client::clinician(&gw);
    let id = c.create_and_submit(&request(2, None, None)).await;
    c.wait_status(&id, &["pended"], LIMIT).await;
    let rec = c.wait_status(&id, &["approved"], LIMIT).await;
    let statuses: Vec<&str> = rec["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pended", "approved"], "{rec}");
    drop(gw);
    assert_no_phi(&dir.join("serve.log"), &[]);
}

#[tokio::test]
async fn pended_pas_decision_arrives_by_inquiry() {
    let dir = temp_dir("e2e-pend-pas");
    let mock = mock_payer(&dir, Some(PEND), None);
    let payers = payers_file(&dir, "fhir-pas", &format!("{}/fhir", mock.url()), "");
    let gw = serve(&dir, &db::sqlite_url(), Some(&payers), free_port(), &[]);
    let c = Client::clinician(&gw);
    let id = c.create_and_submit(&request(3, None, None)).await;
    c.wait_status(&id, &["pended"], LIMIT).await;
    c.wait_status(&id, &["approved"], LIMIT).await;
    let stats = mock_json(&mock, "/mock/stats").await;
    assert_eq!(stats["new_authorizations"], 1, "{stats}");
    assert!(stats["inquiries"].as_u64().unwrap() >= 1, "{stats}");
}

/// Each fault hits the first request of one synthetic member; the gateway must end every
/// record in a definite state: approved after a retransmit or retry, or rejected / denied with
/// the payer's reason, or (a payer that always fails) a dead letter with the reason.
#[tokio::test]
async fn every_fault_mode_ends_in_a_definite_state() {
    let faults = [
        ("SYN000000501", "kind = \"status\"\nstatus = 500\ntimes = 1"),
        (
            "SYN000000502",
            "kind = \"status\"\nstatus = 429\nretry_after = 1\ntimes = 1",
        ),
        ("SYN000000503", "kind = \"status\"\nstatus = 503\ntimes = 1"),
        ("SYN000000504", "kind = \"drop\"\ntimes = 1"),
        ("SYN000000505", "kind = \"slow\"\nms = 5000\ntimes = 1"),
        ("SYN000000506", "kind = \"malformed\"\ntimes = 1"),
        ("SYN000000507", "kind = \"wrong_control\"\ntimes = 1"),
        ("SYN000000508", "kind = \"core_busy\"\ntimes = 1"),
    ];
    let mut rules = String::new();
    for (member, f) in &faults {
        rules.push_str(&format!(
            "[[fault]]\nmatch = {{ member = \"{member}\" }}\n{f}\n\n"
        ));
    }
    rules.push_str(
        "[[fault]]\nmatch = { member = \"SYN000000599\" }\nkind = \"status\"\nstatus = 500\n\n",
    );
    rules.push_str(
        r#"[[rule]]
match = { member = "SYN000000601" }
action = "reject"
aaa = "72"
follow_up = "correct_and_resubmit"
level = "subscriber"

[[rule]]
match = { member = "SYN000000602" }
action = "deny"
reason = "0U"
"#,
    );
    let dir = temp_dir("e2e-faults");
    let mock = mock_payer(&dir, Some(&rules), None);
    let payers = payers_file(&dir, "x12-core", &format!("{}/core", mock.url()), "");
    let gw = serve(&dir, &db::sqlite_url(), Some(&payers), free_port(), &[]);
    let c = Client::clinician(&gw);
    let mut ids = vec![];
    for (n, (member, _)) in faults.iter().enumerate() {
        let id = c
            .create_and_submit(&request(100 + n, None, Some(member)))
            .await;
        ids.push((member.to_string(), id));
    }
    let always = c
        .create_and_submit(&request(200, None, Some("SYN000000599")))
        .await;
    let rejected = c
        .create_and_submit(&request(201, None, Some("SYN000000601")))
        .await;
    let denied = c
        .create_and_submit(&request(202, None, Some("SYN000000602")))
        .await;
    for (member, id) in &ids {
        let rec = c.wait_status(id, &["approved"], LIMIT).await;
        assert!(
            rec["history"].as_array().unwrap().len() >= 3,
            "{member}: {rec}"
        );
    }
    let rec = c.wait_status(&rejected, &["rejected"], LIMIT).await;
    assert!(
        rec["decisions"][0]["reason"].is_string() || rec["history"].to_string().contains("72"),
        "{rec}"
    );
    c.wait_status(&denied, &["denied"], LIMIT).await;
    // The payer that always fails: a dead letter with the reason, which a person can retry.
    let started = std::time::Instant::now();
    let dead = loop {
        let (_, v) = c.get("/v1/outbox?state=dead").await.unwrap();
        let found = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["request_id"] == always.as_str())
            .cloned();
        if let Some(m) = found {
            break m;
        }
        assert!(
            started.elapsed() < LIMIT,
            "no dead letter for the failing payer: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        dead["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{dead}"
    );
    let (s, v) = c
        .post(
            &format!("/v1/outbox/{}/retry", dead["id"]),
            String::new(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{v}");
    // Every request is one authorization at the payer, however many times it was sent.
    let received = mock_json(&mock, "/mock/received").await;
    let stats = mock_json(&mock, "/mock/stats").await;
    // Every fault fired (the first request of each faulty member, and the failing payer's
    // attempts), so the states above were reached through them.
    for kind in [
        "status",
        "drop",
        "slow",
        "malformed",
        "wrong_control",
        "core_busy",
    ] {
        assert!(
            stats["faults_by_kind"][kind].as_u64().unwrap_or(0) >= 1,
            "{kind} never fired: {stats}"
        );
    }
    assert!(
        stats["faults_by_kind"]["status"].as_u64().unwrap() >= 3 + 6,
        "{stats}"
    );
    let new_by_trace = new_authorizations_by_trace(&received);
    // Eight faulty members, the failing payer, the rejected and the denied request.
    assert_eq!(new_by_trace.len(), 11, "{new_by_trace:?}");
    assert!(new_by_trace.values().all(|n| *n == 1), "{new_by_trace:?}");
    drop(gw);
    let mut members: Vec<&str> = faults.iter().map(|f| f.0).collect();
    members.extend(["SYN000000599", "SYN000000601", "SYN000000602"]);
    assert_no_phi(&dir.join("serve.log"), &members);
    assert_no_phi(&dir.join("mock.log"), &members);
}

/// `priorauth serve` with no configuration: SQLite and the built-in mock payer, approved end
/// to end (the README's first set-up command).
#[tokio::test]
async fn serve_without_configuration_approves_with_the_built_in_mock_payer() {
    let dir = temp_dir("e2e-default");
    let db = format!("sqlite://{}", dir.join("priorauth.db").display());
    let gw = serve(&dir, &db, None, free_port(), &[]);
    // The first start printed the bootstrap admin key once and wrote it beside the database.
    let key_file = gw.key_file.clone().unwrap();
    let admin = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_owned();
    assert!(admin.starts_with("pa_"), "the key file holds a key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the key file is readable by its owner only"
        );
    }
    let admin_key = admin.clone();
    let admin = Client::new(gw.url()).with_token(admin);
    let (s, v) = admin
        .post(
            "/v1/keys",
            r#"{"role": "clinician", "name": "dr-e2e"}"#.into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "{v}");
    let c = Client::new(gw.url()).with_token(v["key"].as_str().unwrap());
    let body: Value = serde_json::from_str(MRI).unwrap();
    let id = c.create_and_submit(&body).await;
    c.wait_status(&id, &["approved"], LIMIT).await;
    let (s, _) = c.get("/readyz").await.unwrap();
    assert_eq!(s, 200);
    // A delivered service counts the authorized unit down; one more is refused with the reason.
    let visit = r#"{"code":"72148","units":1,"date":"2026-12-05"}"#;
    let (s, v) = c
        .post(
            &format!("/v1/authorizations/{id}/services"),
            visit.into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!((s, v["remaining"].as_str()), (201, Some("0")), "{v}");
    let (s, v) = c
        .post(
            &format!("/v1/authorizations/{id}/services"),
            visit.into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("refused")),
        "{v}"
    );
    let (_, rec) = c.get(&format!("/v1/authorizations/{id}")).await.unwrap();
    assert_eq!(rec["status"], "exhausted", "{rec}");
    assert_eq!(rec["services"].as_array().unwrap().len(), 1, "{rec}");
    let (s, alerts) = c.get("/v1/alerts").await.unwrap();
    assert_eq!(s, 200, "{alerts}");
    assert!(alerts["alerts"].is_array(), "{alerts}");
    drop(gw);
    // The log says where the key is, never the key.
    assert_no_phi(&dir.join("serve.log"), &[&admin_key]);
    let log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    assert!(log.contains("bootstrap admin key created"), "{log}");
}

/// A payer that certifies one line now and pends the other: the record is partially approved
/// at once, and approved when the pended line's decision is pushed later.
#[tokio::test]
async fn a_pended_line_decided_later_completes_the_record() {
    let dir = temp_dir("e2e-pend-line");
    let port = free_port();
    let inbound = format!("http://127.0.0.1:{port}/v1/inbound");
    let url = db::sqlite_url();
    let push_key = dir.join("push.key");
    std::fs::write(
        &push_key,
        create_key(&url, "default", "billing", "payer-push"),
    )
    .unwrap();
    let rules = r#"
[[rule]]
name = "pend-the-second-line"
match = { procedure = "72149" }
action = "pend"
then = "approve"
after_ms = 1500
"#;
    let mock = mock_payer_with(&dir, Some(rules), Some(&inbound), Some(&push_key));
    let payers = payers_file(&dir, "x12-core", &format!("{}/core", mock.url()), "");
    let gw = serve(&dir, &url, Some(&payers), port, &[]);
    let c = Client::clinician(&gw);
    let mut r = request(7, None, None);
    let mut second = r["services"][0].clone();
    second["service"]["professional"]["procedure"]["code"] = "72149".into();
    r["services"].as_array_mut().unwrap().push(second);
    let id = c.create_and_submit(&r).await;
    c.wait_status(&id, &["partially_approved"], LIMIT).await;
    let rec = c.wait_status(&id, &["approved"], LIMIT).await;
    let statuses: Vec<&str> = rec["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["partially_approved", "approved"], "{rec}");
}
