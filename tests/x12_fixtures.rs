//! Every 278 sample in ../shared/fixtures/x12 yields the right outcome; the malformed ones are
//! reported with their location (see that folder's SOURCES.md).

mod common;

use priorauth::domain::*;
use priorauth::x12::tx278::{DecodedFile, Message278, decode_all};
use priorauth::x12::{Issue, Severity};

fn load(name: &str) -> Option<DecodedFile> {
    let dir = common::shared_dir()?;
    let data = std::fs::read(dir.join("fixtures/x12").join(name)).expect("fixture readable");
    Some(decode_all(&data))
}

fn errors(f: &DecodedFile) -> Vec<&Issue> {
    f.all_issues()
        .filter(|i| i.severity == Severity::Error)
        .collect()
}

fn response(f: &DecodedFile) -> &AuthorizationResponse {
    match &f.transactions[0].message {
        Some(Message278::Response(r)) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn request(f: &DecodedFile) -> &AuthorizationRequest {
    match &f.transactions[0].message {
        Some(Message278::Request(r)) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

#[test]
fn admission_response_is_modified_at_event_and_certified_on_the_line() {
    let Some(f) = load("X217-admission-response-to-request-for-review.edi") else {
        return;
    };
    assert!(errors(&f).is_empty(), "{:#?}", errors(&f));
    let r = response(&f);
    assert_eq!(r.submitter_reference.as_str(), "B56789");
    assert_eq!(r.decision.status, Status::Modified);
    assert_eq!(r.decision.action, Some(ActionCode::Modified));
    assert_eq!(
        r.decision.certification_number.as_ref().unwrap().as_str(),
        "AUTH0002"
    );
    assert_eq!(
        r.decision
            .approved_quantity
            .as_ref()
            .unwrap()
            .quantity
            .as_ref()
            .unwrap()
            .as_str(),
        "5"
    );
    assert_eq!(r.decision.lines.len(), 1);
    assert_eq!(r.decision.lines[0].action, Some(ActionCode::Certified));
    assert_eq!(r.decision.lines[0].status, Status::Approved);
    assert_eq!(r.decision.trace_numbers[0].kind, TraceType::Referenced);
    assert_eq!(r.decision.trace_numbers[0].reference.as_str(), "97021001");
    let ev = r.event.as_ref().unwrap();
    assert_eq!(ev.review.category, RequestCategory::AdmissionReview);
    assert_eq!(ev.diagnoses[0].qualifier, DiagnosisQualifier::Icd9Other);
    assert_eq!(ev.providers[0].role.as_str(), "FA");
}

#[test]
fn referral_and_reservation_and_transport_responses_are_certified() {
    for name in [
        "X217-referral-response-to-request-for-review.edi",
        "X217-response-to-medical-services-reservation.edi",
        "X217-response-to-non-emergency-transportation.edi",
    ] {
        let Some(f) = load(name) else { return };
        assert!(errors(&f).is_empty(), "{name}: {:#?}", errors(&f));
        let r = response(&f);
        assert_eq!(r.decision.status, Status::Approved, "{name}");
        assert_eq!(r.decision.action, Some(ActionCode::Certified), "{name}");
    }
    let f = load("X217-referral-response-to-request-for-review.edi").unwrap();
    let r = response(&f);
    // The referral response returns the approved period as DTP*AAH.
    let aah = r
        .event
        .as_ref()
        .unwrap()
        .dates
        .iter()
        .find(|d| d.qualifier.as_str() == "AAH")
        .unwrap();
    assert!(matches!(aah.date, DateOrRange::Range(_)));
}

#[test]
fn requests_decode_with_their_categories() {
    for (name, category, level) in [
        (
            "X217-emergency-admission-request-for-review.edi",
            RequestCategory::AdmissionReview,
            Some(LevelOfService::Emergency),
        ),
        (
            "X217-referral-request-for-review.edi",
            RequestCategory::SpecialtyCareReview,
            None,
        ),
        (
            "X217-request-for-medical-services-reservation.edi",
            RequestCategory::Individual,
            None,
        ),
    ] {
        let Some(f) = load(name) else { return };
        assert!(errors(&f).is_empty(), "{name}: {:#?}", errors(&f));
        let r = request(&f);
        assert_eq!(r.purpose, Purpose::Request, "{name}");
        assert_eq!(r.event.review.category, category, "{name}");
        if level.is_some() {
            assert_eq!(r.event.review.level_of_service, level, "{name}");
        }
    }
}

#[test]
fn admission_request_with_wrong_se_count_is_located() {
    let Some(f) = load("X217-admission-request-for-review.edi") else {
        return;
    };
    let e = errors(&f);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].code, "se_count");
    assert_eq!(e[0].location.segment_id.as_deref(), Some("SE"));
    assert_eq!(e[0].location.segment_position, Some(26));
    assert_eq!(e[0].location.element, Some(1));
    assert_eq!(e[0].value.as_deref(), Some("25"));
    // The content is still understood.
    let r = request(&f);
    assert_eq!(
        r.event
            .institutional
            .as_ref()
            .unwrap()
            .admission_type
            .as_ref()
            .unwrap()
            .as_str(),
        "2"
    );
    assert!(matches!(
        r.services[0].service,
        Some(Service::Institutional { .. })
    ));
}

#[test]
fn pended_tmhp_response_keeps_its_tracking_number() {
    let Some(f) = load("x12types-parse_278_6.edi") else {
        return;
    };
    let e = errors(&f);
    assert_eq!(
        e.iter().map(|i| i.code).collect::<Vec<_>>(),
        ["isa_layout"],
        "{e:#?}"
    );
    assert_eq!(e[0].location.segment_index, Some(1));
    let r = response(&f);
    assert_eq!(r.decision.status, Status::Pended);
    assert_eq!(r.decision.reason.as_ref().unwrap().as_str(), "0B");
    assert_eq!(
        r.decision
            .administrative_reference
            .as_ref()
            .unwrap()
            .as_str(),
        "170905306915"
    );
    assert_eq!(r.decision.lines.len(), 2);
    assert!(r.decision.lines.iter().all(|l| l.status == Status::Pended));
    assert_eq!(
        r.decision.lines[1]
            .approved_quantity
            .as_ref()
            .unwrap()
            .quantity
            .as_ref()
            .unwrap()
            .as_str(),
        "3"
    );
}

#[test]
fn herophilus_response_is_approved_and_its_fake_npis_are_located() {
    let Some(f) = load("herophilus-278PAResponseSample.txt") else {
        return;
    };
    let r = response(&f);
    assert_eq!(r.decision.status, Status::Approved);
    assert_eq!(r.decision.lines[0].action, Some(ActionCode::Certified));
    let e = errors(&f);
    let npis: Vec<_> = f.all_issues().filter(|i| i.code == "invalid_npi").collect();
    assert!(npis.iter().all(|i| i.severity == Severity::Warning));
    assert_eq!(npis.len(), 3, "{e:#?}");
    assert!(
        npis.iter()
            .all(|i| i.location.element == Some(9) && i.value.as_deref() == Some("1234567891"))
    );
    assert_eq!(npis[0].location.loop_id.as_deref(), Some("2010B"));
    // The subscriber's birth date 1001-01-01 is refused with its location.
    let dob = e.iter().find(|i| i.code == "invalid_date").unwrap();
    assert_eq!(dob.location.loop_id.as_deref(), Some("2010C"));
    assert_eq!(dob.location.segment_id.as_deref(), Some("DMG"));
}

#[test]
fn tmhp_requests_are_read_despite_their_loose_isa() {
    for name in [
        "x12types-parse_278_1.edi",
        "x12types-parse_278_2.edi",
        "x12types-parse_278_3.edi",
    ] {
        let Some(f) = load(name) else { return };
        let e = errors(&f);
        assert_eq!(e[0].code, "isa_layout", "{name}");
        let r = request(&f);
        assert_eq!(r.umo.name.as_ref().unwrap().as_str(), "TMHP", "{name}");
    }
    let f = load("x12types-parse_278_2.edi").unwrap();
    let e = errors(&f);
    let se = e
        .iter()
        .find(|i| i.code == "se_control_number")
        .expect("ST02/SE02 mismatch");
    assert_eq!(se.value.as_deref(), Some("10002"));
    assert_eq!(request(&f).services.len(), 7);
    let f = load("x12types-parse_278_3.edi").unwrap();
    let w: Vec<_> = f
        .all_issues()
        .filter(|i| i.code == "unconfirmed_code")
        .collect();
    assert_eq!(w[0].location.element, Some(2));
    assert_eq!(w[0].severity, Severity::Warning);
    let f = load("x12types-parse_278_1.edi").unwrap();
    let r = request(&f);
    assert_eq!(r.event.message.as_ref().unwrap().as_str(), "NFSS");
    assert_eq!(
        r.event.attachments[0]
            .control_number
            .as_ref()
            .unwrap()
            .as_str(),
        "ABC100001"
    );
}

#[test]
fn php_edi_request_reports_its_hc_coded_drug() {
    let Some(f) = load("x12types-parse_278_9.edi") else {
        return;
    };
    let e = errors(&f);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].code, "invalid_procedure");
    assert_eq!(e[0].location.segment_id.as_deref(), Some("SV1"));
    assert_eq!(e[0].location.loop_id.as_deref(), Some("2000F"));
    assert_eq!(request(&f).services.len(), 1);
}

#[test]
fn malformed_jithendra_request_is_reported_everywhere() {
    let Some(f) = load("jithendra43-Sample_X12N_278_Request.edi") else {
        return;
    };
    let e = errors(&f);
    let find = |code: &str, seg: &str| {
        e.iter()
            .find(|i| i.code == code && i.location.segment_id.as_deref() == Some(seg))
            .copied()
    };
    assert_eq!(
        find("isa_layout", "ISA").unwrap().location.segment_index,
        Some(1)
    );
    let nm1 = find("conditional_element_missing", "NM1").expect("NM1 short");
    assert_eq!(nm1.location.loop_id.as_deref(), Some("2010A"));
    let um = find("invalid_code", "UM").expect("UM06 misplaced");
    assert_eq!(um.location.element, Some(6));
    let sv1 = find("segment_misplaced", "SV1").expect("SV1 in 2000E");
    assert_eq!(sv1.location.loop_id.as_deref(), Some("2000E"));
    assert!(
        find("invalid_value", "HI").is_some(),
        "M54.16 under an ICD-9 qualifier"
    );
}
