//! The tracking scenario, driven through the `priorauth` binary end to end, on SQLite and on
//! the real PostgreSQL: approval chain, submission, 999 and 278 ingest, units ledger, renewal
//! alert, over-authorization refusal and flag, expiry, denial and resubmission, report.

mod db;
mod driver;

use std::path::Path;
use std::process::Command;

use priorauth::domain::*;
use priorauth::x12::tx278;
use priorauth::x12::writer::{EnvelopeSettings, MemoryControlNumbers, Stamp};
use serde_json::Value;

use driver::{Cli, through_chain};

fn fixture(name: &str) -> AuthorizationRequest {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/requests")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn line(n: usize, status: Status, action: ActionCode) -> LineDecision {
    LineDecision {
        line: n,
        status,
        action: Some(action),
        certification_number: None,
        reason: None,
        second_surgical_opinion: None,
        certification: Certification::default(),
        approved_quantity: None,
        approved_units: None,
        administrative_reference: None,
        trace_numbers: vec![],
        rejects: vec![],
        messages: vec![],
    }
}

fn decision(status: Status, action: ActionCode, lines: Vec<LineDecision>) -> Decision {
    Decision {
        status,
        action: Some(action),
        certification_number: None,
        reason: None,
        second_surgical_opinion: None,
        certification: Certification::default(),
        approved_quantity: None,
        administrative_reference: None,
        trace_numbers: vec![],
        rejects: vec![],
        messages: vec![],
        lines,
    }
}

fn date(s: &str) -> Date {
    Date::parse(s).unwrap()
}

fn responses_file(responses: &[AuthorizationResponse]) -> Vec<u8> {
    let payer = EnvelopeSettings {
        sender_id: "SYNPLAN01".into(),
        receiver_id: "PRIORAUTHGW".into(),
        ..EnvelopeSettings::default()
    };
    tx278::encode_responses(
        responses,
        &payer,
        &MemoryControlNumbers::starting_after(500),
        Stamp {
            date: date("2027-01-03"),
            hour: 9,
            minute: 30,
        },
    )
    .unwrap()
}

fn scenario(db: String) {
    let cli = Cli::new("scenario", db);
    for (name, role) in [
        ("alice", "clinician"),
        ("bob", "supervisor"),
        ("fran", "finance"),
    ] {
        cli.ok("2027-01-01", "admin", &["actors", "add", name, role]);
    }

    // 1. A physical-therapy request above the finance threshold goes through the chain.
    let mut pt = fixture("physical-therapy-visits.json");
    if let Some(Service::Professional { charge, .. }) = &mut pt.services[0].service {
        *charge = Some(Decimal::parse("1500.00").unwrap());
    }
    let f = cli.file("pt.json", serde_json::to_string(&pt).unwrap().as_bytes());
    let id = cli
        .ok("2027-01-02", "alice", &["records", "create", &f])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 36, "a uuid: {id}");
    let (_, e) = cli.fails("2027-01-02", "alice", &["records", "submit", &id]);
    assert!(
        e.contains("only a request approved through the chain"),
        "{e}"
    );
    cli.ok("2027-01-02", "alice", &["records", "review", &id]);
    let (_, e) = cli.fails("2027-01-02", "alice", &["records", "approve", &id]);
    assert!(e.contains("alice (clinician) may not approve"), "{e}");
    // The supervisor sends it back with a reason; the clinician modifies and resends.
    cli.ok(
        "2027-01-02",
        "bob",
        &["records", "deny", &id, "--reason", "add the plan of care"],
    );
    let mut pt2 = pt.clone();
    pt2.event.message = Some(Text::parse("PLAN OF CARE ATTACHED").unwrap());
    let f2 = cli.file("pt2.json", serde_json::to_string(&pt2).unwrap().as_bytes());
    let v = cli.json("2027-01-02", "alice", &["records", "modify", &id, &f2]);
    assert_eq!(v["version"], 2);
    cli.ok("2027-01-02", "alice", &["records", "review", &id]);
    let v = cli.json("2027-01-02", "bob", &["records", "approve", &id]);
    assert_eq!(
        (v["status"].as_str(), v["awaiting"].as_str()),
        (Some("internal_review"), Some("finance"))
    );
    let (_, e) = cli.fails("2027-01-02", "bob", &["records", "approve", &id]);
    assert!(e.contains("needs one of finance"), "{e}");
    let v = cli.json("2027-01-02", "fran", &["records", "approve", &id]);
    assert_eq!(v["status"], "ready");
    let out = cli.dir.join("pt.x12");
    cli.ok(
        "2027-01-02T10:00:00Z",
        "alice",
        &[
            "records",
            "submit",
            &id,
            "--receiver",
            "ZZ:SYNPLAN01",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let sent = std::fs::read(&out).unwrap();
    assert!(String::from_utf8_lossy(&sent).contains("ST*278*"));

    // 2. The payer's 999 for our 278 (written by `validate --ack 999` as the payer would).
    let ack = Command::new(env!("CARGO_BIN_EXE_priorauth"))
        .args(["validate", "--ack", "999", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        ack.status.success(),
        "{}",
        String::from_utf8_lossy(&ack.stderr)
    );
    let ack_file = cli.file("pt.999", &ack.stdout);
    let r = cli.json("2027-01-02T11:00:00Z", "system", &["ingest", &ack_file]);
    assert_eq!(r["counts"]["applied"], 1, "{r}");
    let show = cli.json("2027-01-02", "alice", &["records", "show", &id]);
    assert_eq!(show["record"]["status"], "acknowledged");

    // 3. The 278 response: approved, 12 visits on line 1, dates; plus one nobody asked for.
    let mut l1 = line(1, Status::Approved, ActionCode::Certified);
    l1.approved_quantity = Some(ServiceQuantity {
        unit: Some(UnitType::Visits),
        quantity: Some(Decimal::parse("12").unwrap()),
        per: None,
        sample_count: None,
        period: None,
        period_count: None,
        delivery_pattern: None,
        delivery_time: None,
    });
    l1.certification.effective = Some(DateOrRange::Range(
        DateRange::new(date("2027-01-04"), date("2027-03-31")).unwrap(),
    ));
    // Line 2 (manual therapy) is not certified: the visits of line 1 are the authorization.
    let mut d = decision(
        Status::PartiallyApproved,
        ActionCode::CertifiedPartial,
        vec![l1, line(2, Status::Denied, ActionCode::NotCertified)],
    );
    d.certification_number = Some(Text::parse("AUTH778899").unwrap());
    let approved = AuthorizationResponse::answering(&pt2, d);
    let mut stranger_req = pt2.clone();
    stranger_req.submitter_reference = Text::parse("NOBODY-ASKED").unwrap();
    let stranger = AuthorizationResponse::answering(
        &stranger_req,
        decision(Status::Denied, ActionCode::NotCertified, vec![]),
    );
    let file = cli.file("responses.x12", &responses_file(&[approved, stranger]));
    let r = cli.json("2027-01-03T10:00:00Z", "system", &["ingest", &file]);
    assert_eq!(r["counts"]["applied"], 1, "{r}");
    assert_eq!(r["counts"]["unmatched"], 1, "{r}");
    let items = r["items"].as_array().unwrap();
    assert_eq!(items[0]["request_id"], id.as_str());
    assert_eq!(items[1]["outcome"], "unmatched");
    assert!(
        items[1]["detail"]
            .as_str()
            .unwrap()
            .contains("NOBODY-ASKED")
    );
    // The same file again applies nothing twice.
    let again = cli.json("2027-01-03T10:05:00Z", "system", &["ingest", &file]);
    assert_eq!(again["already_ingested"], true);
    let show = cli.json("2027-01-03", "alice", &["records", "show", &id]);
    assert_eq!(show["record"]["status"], "partially_approved");
    assert_eq!(show["lines"][1]["status"], "denied");
    assert_eq!(show["record"]["certification_number"], "AUTH778899");
    assert_eq!(show["lines"][0]["authorized"], "12");
    assert_eq!(show["lines"][0]["unit"], "visits");
    assert_eq!(show["lines"][0]["start_date"], "2027-01-04");
    assert_eq!(show["lines"][0]["end_date"], "2027-03-31");

    // 4. Ten visits.
    for i in 0..10 {
        let day = date("2027-01-05").add_days(i * 7).unwrap().to_string();
        let v = cli.json(
            "2027-03-20",
            "alice",
            &[
                "services", "record", &id, "--code", "97110", "--units", "1", "--date", &day,
            ],
        );
        assert_eq!(v["state"], "recorded", "{v}");
        assert_eq!(v["remaining"], (11 - i).to_string());
        assert_eq!(v["status"], "active");
    }
    // 5. A renewal alert.
    let a = cli.json("2027-03-20", "system", &["alerts"]);
    let alerts = a["alerts"].as_array().unwrap();
    let renewal = alerts
        .iter()
        .find(|x| x["kind"] == "renewal_units" && x["request_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no renewal alert: {a}"));
    assert!(
        renewal["message"]
            .as_str()
            .unwrap()
            .contains("2 of 12 visits left"),
        "{renewal}"
    );
    assert!(
        alerts.iter().any(|x| x["kind"] == "unmatched"),
        "the unmatched response is reported"
    );

    // The renewal names the original certification; the alert closes once it exists.
    let mut renewal_req = pt2.clone();
    renewal_req.submitter_reference = Text::parse("REQ-2026-0002-R").unwrap();
    renewal_req.event.review.certification_type = CertificationType::Renewal;
    let rf = cli.file(
        "renewal-no-ref.json",
        serde_json::to_string(&renewal_req).unwrap().as_bytes(),
    );
    let (_, e) = cli.fails("2027-03-20", "alice", &["records", "renew", &id, &rf]);
    assert!(e.contains("add REF*BB AUTH778899"), "{e}");
    renewal_req.event.references.push(Reference {
        qualifier: Code::parse("BB").unwrap(),
        value: Text::parse("AUTH778899").unwrap(),
        description: None,
        system: None,
    });
    let rf = cli.file(
        "renewal.json",
        serde_json::to_string(&renewal_req).unwrap().as_bytes(),
    );
    let v = cli.json("2027-03-20", "alice", &["records", "renew", &id, &rf]);
    let renewal_id = v["id"].as_str().unwrap().to_owned();
    let show = cli.json("2027-03-20", "alice", &["records", "show", &renewal_id]);
    assert_eq!(show["record"]["link_kind"], "renewal");
    assert_eq!(show["record"]["original_id"], id.as_str());
    let a = cli.json("2027-03-20", "system", &["alerts"]);
    assert!(
        !a["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["kind"] == "renewal_units"),
        "the renewal alert closes once a renewal is drafted: {a}"
    );

    // 6. Three more visits are over the authorization: refused (the default), then flagged.
    let (code, e) = cli.fails(
        "2027-03-20",
        "alice",
        &[
            "services",
            "record",
            &id,
            "--code",
            "97110",
            "--units",
            "3",
            "--date",
            "2027-03-16",
        ],
    );
    assert_eq!(code, 3);
    assert!(
        e.contains("over the authorization: 3 visits asked, 2 of 12 left on line 1"),
        "{e}"
    );
    let (_, e) = cli.fails(
        "2027-03-20",
        "alice",
        &[
            "services",
            "record",
            &id,
            "--code",
            "99213",
            "--units",
            "1",
            "--date",
            "2027-03-16",
        ],
    );
    assert!(e.contains("procedure 99213 is not authorized"), "{e}");
    let policy: Value =
        serde_json::from_str(&cli.ok("2027-03-20", "admin", &["policy", "show"])).unwrap();
    let mut flag = policy.clone();
    flag["out_of_authorization"] = "flag".into();
    let pf = cli.file("policy.json", flag.to_string().as_bytes());
    cli.ok("2027-03-20", "admin", &["policy", "set", &pf]);
    let v = cli.json(
        "2027-03-20",
        "alice",
        &[
            "services",
            "record",
            &id,
            "--code",
            "97110",
            "--units",
            "3",
            "--date",
            "2027-03-16",
        ],
    );
    assert_eq!(v["state"], "flagged");
    assert!(
        v["flag"]
            .as_str()
            .unwrap()
            .contains("over the authorization")
    );
    assert_eq!(v["status"], "exhausted");
    let flagged_id = v["service_id"].as_i64().unwrap().to_string();
    // A void gives the units back.
    let v = cli.json(
        "2027-03-21",
        "alice",
        &[
            "services",
            "void",
            &flagged_id,
            "--reason",
            "entered in error",
        ],
    );
    assert_eq!(v["status"], "active");
    let show = cli.json("2027-03-21", "alice", &["records", "show", &id]);
    assert_eq!(show["lines"][0]["used"], "10");
    assert_eq!(show["lines"][0]["remaining"], "2");

    // 7. After the end date the authorization expires and refuses a visit.
    let (code, e) = cli.fails(
        "2027-04-05",
        "alice",
        &[
            "services",
            "record",
            &id,
            "--code",
            "97110",
            "--units",
            "1",
            "--date",
            "2027-04-02",
        ],
    );
    assert_eq!(code, 3);
    assert!(e.contains("the authorization expired on 2027-03-31"), "{e}");
    let show = cli.json("2027-04-05", "alice", &["records", "show", &id]);
    assert_eq!(show["record"]["status"], "expired");
    let history: Vec<&str> = show["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for step in [
        "created",
        "sent_to_review",
        "returned_to_clinician",
        "modified",
        "forwarded",
        "approved_internally",
        "submitted",
        "acknowledged",
        "decision_received",
        "service_recorded",
        "service_refused",
        "service_flagged",
        "service_voided",
        "expired",
    ] {
        assert!(history.contains(&step), "{step} missing from {history:?}");
    }

    // 8. A denial, resubmitted as a new version linked to the first.
    let mri = fixture("mri-lumbar-outpatient.json");
    let (mri_id, _) = through_chain(&cli, &mri, "mri");
    let denied = AuthorizationResponse::answering(
        &mri,
        decision(Status::Denied, ActionCode::NotCertified, vec![]),
    );
    let file = cli.file("denied.x12", &responses_file(&[denied]));
    let r = cli.json("2027-01-05T10:00:00Z", "system", &["ingest", &file]);
    assert_eq!(r["counts"]["applied"], 1, "{r}");
    let a = cli.json("2027-01-05", "system", &["alerts"]);
    assert!(
        a["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["kind"] == "denied" && x["request_id"] == mri_id.as_str()),
        "{a}"
    );
    let mut fixed = mri.clone();
    fixed.submitter_reference = Text::parse("REQ-2026-0001-B").unwrap();
    let ff = cli.file(
        "mri-fixed.json",
        serde_json::to_string(&fixed).unwrap().as_bytes(),
    );
    let (_, e) = cli.fails("2027-01-05", "alice", &["records", "appeal", &mri_id, &ff]);
    assert!(e.contains("certification type"), "{e}");
    let v = cli.json(
        "2027-01-05",
        "alice",
        &["records", "resubmit", &mri_id, &ff],
    );
    let new_id = v["id"].as_str().unwrap().to_owned();
    let show = cli.json("2027-01-05", "alice", &["records", "show", &new_id]);
    assert_eq!(show["record"]["previous_id"], mri_id.as_str());
    assert_eq!(show["record"]["link_kind"], "resubmission");
    assert_eq!(show["record"]["status"], "draft");
    let show = cli.json("2027-01-05", "alice", &["records", "show", &mri_id]);
    assert_eq!(show["followers"][0], new_id.as_str());
    let a = cli.json("2027-01-05", "system", &["alerts"]);
    assert!(
        !a["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["kind"] == "denied"),
        "the denial alert closes once resubmitted: {a}"
    );

    // The corrected request goes through the chain; the payer does not answer in 7 days.
    cli.ok("2027-01-05", "alice", &["records", "review", &new_id]);
    cli.ok("2027-01-05", "bob", &["records", "approve", &new_id]);
    cli.ok("2027-01-05", "fran", &["records", "approve", &new_id]);
    let out = cli.dir.join("mri-fixed.x12");
    cli.ok(
        "2027-01-05T10:00:00Z",
        "alice",
        &[
            "records",
            "submit",
            &new_id,
            "--receiver",
            "ZZ:SYNPLAN01",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let a = cli.json("2027-01-12T09:00:00Z", "system", &["alerts"]);
    assert!(
        !a["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["kind"] == "payer_late"),
        "not late before 7 days: {a}"
    );
    let a = cli.json("2027-01-12T11:00:00Z", "system", &["alerts"]);
    let late = a["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["kind"] == "payer_late")
        .unwrap_or_else(|| panic!("no late-payer alert: {a}"));
    assert_eq!(late["request_id"], new_id.as_str());
    assert_eq!(late["due"], "2027-01-12T10:00:00Z");

    // 9. Lists and the report.
    let list = cli.json(
        "2027-01-05",
        "alice",
        &["records", "list", "--status", "expired"],
    );
    assert_eq!(list.as_array().unwrap().len(), 1);
    let rep = cli.json(
        "2027-06-01",
        "system",
        &["report", "--from", "2027-01-01", "--to", "2028-01-01"],
    );
    let all = &rep["cms0057"]["all"];
    assert_eq!(all["decided"], 2, "{rep}");
    assert_eq!(all["approved"], 1);
    assert_eq!(all["denied"], 1);
    assert_eq!(all["percent_approved"], 50.0);
    // PT: sent 01-02 10:00, decided 01-03 10:00 (24 h); MRI: sent 01-02 10:00, 01-05 10:00.
    assert_eq!(all["median_decision_hours"], 48.0);
    assert_eq!(rep["by_status"]["expired"], 1);
    assert_eq!(rep["by_payer"]["SYNPLAN01"], 4);
    assert_eq!(rep["by_status"]["submitted"], 1);

    // Nothing personal in what the commands print.
    let human = cli.ok("2027-06-01", "alice", &["records", "show", &id]);
    let listing = cli.ok("2027-06-01", "alice", &["records", "list"]);
    for secret in ["SYN000333444", "2015-06-15", "SYNTHETIC"] {
        assert!(
            !human.contains(secret) && !listing.contains(secret),
            "{secret} printed"
        );
    }
}

#[test]
fn scenario_on_sqlite() {
    scenario(db::sqlite_url());
}

#[test]
fn scenario_on_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    if let Some(url) = rt.block_on(db::pg_url()) {
        scenario(url);
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let cli = Cli::new("scenario", db::sqlite_url());
    // Creation with an idempotency key happens once.
    let pt = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/requests/physical-therapy-visits.json");
    let pt = pt.to_str().unwrap();
    let a = cli.json(
        "2027-01-01",
        "alice",
        &["records", "create", pt, "--idempotency-key", "k1"],
    );
    let b = cli.json(
        "2027-01-01",
        "alice",
        &["records", "create", pt, "--idempotency-key", "k1"],
    );
    assert_eq!(a["id"], b["id"]);
    assert_eq!(
        (a["created"].as_bool(), b["created"].as_bool()),
        (Some(true), Some(false))
    );
    let c = cli.json(
        "2027-01-01",
        "alice",
        &["records", "create", pt, "--idempotency-key", "k2"],
    );
    assert_ne!(a["id"], c["id"]);
    assert_eq!(
        cli.json("2027-01-01", "alice", &["records", "list"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (_, e) = cli.fails("2027-01-01", "alice", &["records", "show", "no-such-id"]);
    assert!(e.contains("no record no-such-id"), "{e}");
    let (_, e) = cli.fails(
        "2027-01-01",
        "alice",
        &["records", "list", "--status", "approvedd"],
    );
    assert!(e.contains("unknown status"), "{e}");
    let junk = cli.file("junk.json", b"{\"not\": \"a request\"}");
    let (_, e) = cli.fails("2027-01-01", "alice", &["records", "create", &junk]);
    assert!(e.contains("error:"), "{e}");
    let (_, e) = cli.fails("2027-01-01", "alice", &["alerts", "--db", "mysql://x"]);
    assert!(e.contains("unsupported database URL"), "{e}");
    let (_, e) = cli.fails("yesterday", "alice", &["alerts"]);
    assert!(e.contains("YYYY-MM-DD"), "{e}");
    // A file that is not X12 is still stored, and reported as unreadable.
    let r = cli.json("2027-01-01", "system", &["ingest", &junk]);
    assert_eq!(r["counts"]["unreadable"], 1, "{r}");
    let (_, e) = cli.fails(
        "2027-01-01",
        "alice",
        &[
            "services",
            "record",
            "x",
            "--code",
            "97110",
            "--units",
            "1.234",
            "--date",
            "2027-01-01",
        ],
    );
    assert!(e.contains("--units"), "{e}");
}
