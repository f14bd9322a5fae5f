//! Property tests: domain -> 278 -> domain is the identity on everything X12 carries, and the
//! encoder names everything else (`request_not_carried`).

mod common;

use common::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

use priorauth::domain::*;
use priorauth::x12::Severity;
use priorauth::x12::tx278::{
    Message278, decode_all, encode_requests, encode_responses, request_not_carried,
};
use priorauth::x12::writer::{EnvelopeSettings, MemoryControlNumbers, Stamp};

fn stamp() -> Stamp {
    Stamp {
        date: Date::new(2026, 11, 23).unwrap(),
        hour: 10,
        minute: 30,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn request_survives_x12(reqs in proptest::collection::vec(hub_request(), 1..=3)) {
        let controls = MemoryControlNumbers::new();
        let x12 = encode_requests(&reqs, &EnvelopeSettings::default(), &controls, stamp()).unwrap();
        let decoded = decode_all(&x12);
        let errors: Vec<_> = decoded.all_issues().filter(|i| i.severity == Severity::Error).collect();
        prop_assert!(errors.is_empty(), "{errors:#?}\n{}", String::from_utf8_lossy(&x12));
        prop_assert_eq!(decoded.transactions.len(), reqs.len());
        for (t, r) in decoded.transactions.iter().zip(&reqs) {
            match &t.message {
                Some(Message278::Request(got)) => {
                    let carried = x12_projection(r);
                    prop_assert_eq!(got.as_ref(), &carried, "{}", String::from_utf8_lossy(&x12));
                    // What the 278 leaves out is reported, and only that.
                    let lost = request_not_carried(r);
                    prop_assert_eq!(lost.is_empty(), &carried == r, "{:#?}", lost);
                    prop_assert!(lost.iter().all(|i| i.code == "element_not_kept" && !i.is_error()));
                }
                other => prop_assert!(false, "expected a request, got {other:?}"),
            }
        }
    }

    #[test]
    fn request_survives_json(r in hub_request()) {
        let json = serde_json::to_string(&r).unwrap();
        let back: AuthorizationRequest = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, r);
    }

    #[test]
    fn response_survives_x12(resp in response()) {
        let controls = MemoryControlNumbers::new();
        let x12 = encode_responses(std::slice::from_ref(&resp), &EnvelopeSettings::default(), &controls, stamp()).unwrap();
        let decoded = decode_all(&x12);
        let errors: Vec<_> = decoded.all_issues().filter(|i| i.severity == Severity::Error && i.code != "no_decision").collect();
        prop_assert!(errors.is_empty(), "{errors:#?}\n{}", String::from_utf8_lossy(&x12));
        match &decoded.transactions[0].message {
            Some(Message278::Response(got)) => prop_assert_eq!(got.as_ref(), &resp, "{}", String::from_utf8_lossy(&x12)),
            other => prop_assert!(false, "expected a response, got {other:?}"),
        }
    }
}

#[test]
fn response_matches_its_request() {
    let mut runner = proptest::test_runner::TestRunner::default();
    let req = request().new_tree(&mut runner).unwrap().current();
    let mut req = req;
    req.event.trace_numbers = vec![TraceNumber {
        kind: TraceType::Current,
        reference: Text::parse("TRACE-1").unwrap(),
        originator: Code::parse("9123456789").unwrap(),
        secondary: None,
        system: None,
        originator_system: None,
        jurisdiction: None,
    }];
    let decision = Decision {
        status: Status::Approved,
        action: Some(ActionCode::Certified),
        certification_number: Some(Text::parse("AUTH1").unwrap()),
        reason: None,
        second_surgical_opinion: None,
        certification: Certification::default(),
        approved_quantity: None,
        administrative_reference: None,
        trace_numbers: vec![],
        rejects: vec![],
        messages: vec![],
        lines: vec![],
    };
    let resp = AuthorizationResponse::answering(&req, decision);
    assert!(resp.answers(&req));
    let mut other = req.clone();
    other.submitter_reference = Text::parse("SOMETHING-ELSE").unwrap();
    assert!(!resp.answers(&other));
    let mut other = req.clone();
    other.event.trace_numbers[0].reference = Text::parse("TRACE-2").unwrap();
    assert!(!resp.answers(&other));
}
