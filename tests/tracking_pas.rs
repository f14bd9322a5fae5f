//! Da Vinci PAS responses through `priorauth ingest`, end to end on the binary: records created
//! from PAS request bundles are submitted, then answered by a PAS response Bundle, a bare
//! ClaimResponse and the `$inquire` Parameters output; what is not a response is kept as
//! unreadable with its reason. On SQLite and on the real PostgreSQL.

mod db;
mod driver;

use std::path::Path;

use priorauth::domain::*;
use priorauth::fhir::inquiry::inquiry_parameters;
use priorauth::fhir::validate::parse_json;
use priorauth::fhir::{Bundle, Resource, ResponseInput, request_from_bundle, response_bundle};
use serde_json::Value;

use driver::{Cli, through_chain};

/// One of our synthetic PAS request bundles, as raw bytes, typed, and in hub terms.
fn pas_request(name: &str) -> (Vec<u8>, Bundle, AuthorizationRequest) {
    let raw = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/pas")
            .join(name),
    )
    .unwrap();
    let b: Bundle = serde_json::from_value(parse_json(&raw).unwrap()).unwrap();
    let (r, issues) = request_from_bundle(&b);
    assert!(!issues.iter().any(|i| i.is_error()), "{issues:#?}");
    (raw, b, r.expect("a request"))
}

/// Creates the record, takes it through the approval chain and submits it; returns its id.
fn submitted(cli: &Cli, req: &AuthorizationRequest, name: &str) -> String {
    let (id, _) = through_chain(cli, req, name);
    assert_eq!(cli.record(&id)["record"]["status"], "submitted");
    id
}

fn line(n: usize, action: ActionCode, cert: Option<&str>) -> LineDecision {
    LineDecision {
        line: n,
        status: action.into(),
        action: Some(action),
        certification_number: cert.map(|c| Text::parse(c).unwrap()),
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

/// The same action on the request and on each of its lines.
fn decision(req: &AuthorizationRequest, action: ActionCode, cert: Option<&str>) -> Decision {
    let lines: Vec<LineDecision> = (1..=req.services.len())
        .map(|n| line(n, action, cert))
        .collect();
    Decision {
        status: overall_status(Some(action), &lines, &[]),
        action: Some(action),
        certification_number: cert.map(|c| Text::parse(c).unwrap()),
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

/// The ClaimResponse of a response bundle, alone.
fn claim_response(b: &Bundle) -> Value {
    let Some(Resource::ClaimResponse(cr)) = &b.entry[0].resource else {
        panic!("a ClaimResponse first")
    };
    serde_json::to_value(cr).unwrap()
}

fn to_json(b: &Bundle) -> Vec<u8> {
    serde_json::to_vec_pretty(b).unwrap()
}

fn pas_scenario(db: String) {
    let cli = Cli::new("pas-ingest", db);
    for (name, role) in [
        ("alice", "clinician"),
        ("bob", "supervisor"),
        ("fran", "finance"),
    ] {
        cli.ok("2027-01-01", "admin", &["actors", "add", name, role]);
    }

    // 1. A record made from a PAS request bundle, approved by a PAS response Bundle that echoes
    //    the request (Bundle.identifier as the submitter reference, Claim.identifier as TRN).
    let (_, pt_bundle, pt) = pas_request("synthetic-professional-therapy-request.json");
    let pt_id = submitted(&cli, &pt, "pt");
    let resp = AuthorizationResponse::answering(
        &pt,
        decision(&pt, ActionCode::Certified, Some("PAS-AUTH-0001")),
    );
    let bundle = response_bundle(ResponseInput {
        response: &resp,
        request: Some(&pt_bundle),
    });
    let approved = to_json(&bundle);
    let r = cli.ingest("2027-01-03T10:00:00Z", "pt-response.json", &approved);
    assert_eq!(r["counts"]["applied"], 1, "{r}");
    assert_eq!(r["items"][0]["kind"], "pas_response", "{r}");
    assert_eq!(r["items"][0]["request_id"], pt_id.as_str(), "{r}");
    assert_eq!(r["items"][0]["reference"], pt.submitter_reference.as_str());
    let show = cli.record(&pt_id);
    assert_eq!(show["record"]["status"], "approved", "{show}");
    assert_eq!(show["record"]["certification_number"], "PAS-AUTH-0001");
    for l in show["lines"].as_array().unwrap() {
        assert_eq!(l["status"], "approved", "{show}");
    }
    // The same bytes again: nothing applied twice.
    let again = cli.ingest("2027-01-03T10:05:00Z", "pt-response-again.json", &approved);
    assert_eq!(again["already_ingested"], true, "{again}");

    // A response Bundle whose ClaimResponse names other trace numbers does not apply.
    let mut other = pt.clone();
    other.event.trace_numbers[0].reference = Text::parse("SYN-9999").unwrap();
    let stray = response_bundle(ResponseInput {
        response: &AuthorizationResponse::answering(
            &other,
            decision(&other, ActionCode::NotCertified, None),
        ),
        request: None,
    });
    let r = cli.ingest("2027-01-03T11:00:00Z", "stray.json", &to_json(&stray));
    assert_eq!(r["counts"]["unmatched"], 1, "{r}");
    let detail = r["items"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("other trace numbers"), "{detail}");
    assert_eq!(cli.record(&pt_id)["record"]["status"], "approved");

    // 2. Pended first (a bare ClaimResponse echoing the request: it points at the Claim's
    //    fullUrl, not the request's BHT03, so it is matched by the trace number it echoes),
    //    approved later (the $inquire output, which also holds a response for a request nobody
    //    tracks).
    let (_, adm_bundle, adm) = pas_request("synthetic-institutional-admission-request.json");
    let adm_id = submitted(&cli, &adm, "adm");
    let pended = AuthorizationResponse::answering(&adm, decision(&adm, ActionCode::Pended, None));
    let cr = claim_response(&response_bundle(ResponseInput {
        response: &pended,
        request: Some(&adm_bundle),
    }));
    assert!(cr["request"]["identifier"].is_null(), "{cr}");
    let r = cli.ingest(
        "2027-01-04T10:00:00Z",
        "adm-pended.json",
        cr.to_string().as_bytes(),
    );
    assert_eq!(r["counts"]["applied"], 1, "{r}");
    assert_eq!(r["items"][0]["kind"], "pas_response", "{r}");
    assert_eq!(r["items"][0]["request_id"], adm_id.as_str(), "{r}");
    assert_eq!(r["items"][0]["status"], "pended", "{r}");
    assert_eq!(cli.record(&adm_id)["record"]["status"], "pended");
    // One whose trace number we never sent stays unmatched, and says why.
    let approve = AuthorizationResponse::answering(
        &adm,
        decision(&adm, ActionCode::Certified, Some("PAS-AUTH-0009")),
    );
    let cr = claim_response(&response_bundle(ResponseInput {
        response: &approve,
        request: Some(&adm_bundle),
    }));
    assert_eq!(cr["identifier"][0]["value"], "SYN-0002", "{cr}");
    let r = cli.ingest(
        "2027-01-04T10:30:00Z",
        "unknown-trace.json",
        cr.to_string().replace("SYN-0002", "SYN-7777").as_bytes(),
    );
    assert_eq!(r["counts"]["unmatched"], 1, "{r}");
    let detail = r["items"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("SYN-7777"), "{detail}");
    assert_eq!(cli.record(&adm_id)["record"]["status"], "pended");

    let approved = AuthorizationResponse::answering(
        &adm,
        decision(&adm, ActionCode::Certified, Some("PAS-AUTH-0002")),
    );
    let mut nobody = adm.clone();
    nobody.submitter_reference = Text::parse("NOBODY-ASKED").unwrap();
    let nobody = AuthorizationResponse::answering(
        &nobody,
        decision(&nobody, ActionCode::NotCertified, None),
    );
    let params = inquiry_parameters(&[(approved, Some(&adm_bundle)), (nobody, None)]);
    let r = cli.ingest(
        "2027-01-05T10:00:00Z",
        "inquire.json",
        params.to_string().as_bytes(),
    );
    assert_eq!(r["counts"]["applied"], 1, "{r}");
    assert_eq!(r["counts"]["unmatched"], 1, "{r}");
    assert_eq!(r["items"][0]["request_id"], adm_id.as_str(), "{r}");
    assert!(
        r["items"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("NOBODY-ASKED"),
        "{r}"
    );
    let show = cli.record(&adm_id);
    assert_eq!(show["record"]["status"], "approved", "{show}");
    assert_eq!(show["record"]["certification_number"], "PAS-AUTH-0002");
    let history: Vec<&str> = show["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        history
            .iter()
            .filter(|a| **a == "decision_received")
            .count(),
        2,
        "{history:?}"
    );

    // A bare ClaimResponse naming the request's BHT03 in request.identifier is matched by it.
    let (_, _, upd) = pas_request("synthetic-professional-therapy-update.json");
    let upd_id = submitted(&cli, &upd, "upd");
    let denied =
        AuthorizationResponse::answering(&upd, decision(&upd, ActionCode::NotCertified, None));
    let cr = claim_response(&response_bundle(ResponseInput {
        response: &denied,
        request: None,
    }));
    assert_eq!(
        cr["request"]["identifier"]["value"],
        upd.submitter_reference.as_str()
    );
    let r = cli.ingest(
        "2027-01-05T11:00:00Z",
        "upd-denied.json",
        cr.to_string().as_bytes(),
    );
    assert_eq!(r["counts"]["applied"], 1, "{r}");
    assert_eq!(r["items"][0]["request_id"], upd_id.as_str(), "{r}");
    assert_eq!(cli.record(&upd_id)["record"]["status"], "denied");

    // 3. What is not a response is stored and kept as unreadable, with the reason.
    let (request_raw, _, _) = pas_request("synthetic-professional-therapy-request.json");
    let r = cli.ingest("2027-01-06T10:00:00Z", "a-request.json", &request_raw);
    assert_eq!(r["counts"]["unreadable"], 1, "{r}");
    assert!(r["message_id"].as_i64().is_some(), "{r}");
    let detail = r["items"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("is a PAS request bundle"), "{detail}");
    assert!(detail.contains("not a response"), "{detail}");

    // A response whose decision cannot be read is not applied; the reason names issue codes and
    // FHIRPath expressions, never values.
    let mut bad: Value = serde_json::to_value(response_bundle(ResponseInput {
        response: &AuthorizationResponse::answering(
            &pt,
            decision(&pt, ActionCode::NotCertified, None),
        ),
        request: Some(&pt_bundle),
    }))
    .unwrap();
    let coding = bad
        .pointer_mut("/entry/0/resource/item/0/adjudication/0/extension/0/extension")
        .and_then(Value::as_array_mut)
        .and_then(|parts| {
            parts
                .iter_mut()
                .find(|p| p["url"] == "reviewActionCode" || p["valueCodeableConcept"].is_object())
        })
        .and_then(|p| p.pointer_mut("/valueCodeableConcept/coding/0"))
        .expect("a reviewActionCode coding");
    coding["system"] = "http://example.org/not-x12".into();
    let r = cli.ingest(
        "2027-01-06T11:00:00Z",
        "bad-response.json",
        bad.to_string().as_bytes(),
    );
    assert_eq!(r["counts"]["unreadable"], 1, "{r}");
    let detail = r["items"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("code-invalid at Bundle.entry[0].resource.item[0].adjudication"),
        "{detail}"
    );
    assert_eq!(cli.record(&pt_id)["record"]["status"], "approved");

    // Nothing personal in what ingest reported.
    let all = format!("{r}");
    for secret in ["W000111222", "SYNTHETIC"] {
        assert!(!all.contains(secret), "{secret} printed: {all}");
    }
}

#[test]
fn pas_responses_on_sqlite() {
    pas_scenario(db::sqlite_url());
}

#[test]
fn pas_responses_on_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    if let Some(url) = rt.block_on(db::pg_url()) {
        pas_scenario(url);
    }
}
