//! Property tests: domain -> 278 -> domain is the identity on everything X12 carries.

mod common;

use common::*;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;

use priorauth::domain::*;
use priorauth::x12::Severity;
use priorauth::x12::tx278::{Message278, decode_all, encode_requests, encode_responses};
use priorauth::x12::writer::{EnvelopeSettings, MemoryControlNumbers, Stamp};

fn stamp() -> Stamp {
    Stamp {
        date: Date::new(2026, 11, 23).unwrap(),
        hour: 10,
        minute: 30,
    }
}

fn reject(level: Level, line: Option<usize>) -> impl Strategy<Value = Reject> {
    (
        prop_oneof![Just(Validity::Invalid), Just(Validity::Valid)],
        proptest::option::of(select(&["15", "33", "72", "75", "AF"][..])),
        proptest::option::of(select(FollowUpAction::ALL)),
    )
        .prop_map(move |(validity, reason, follow_up)| Reject {
            level,
            line,
            validity,
            reason: reason.map(|r| Code::parse(r).unwrap()),
            follow_up,
        })
}

fn certification() -> impl Strategy<Value = Certification> {
    (
        proptest::option::of(date()),
        proptest::option::of(date_or_range()),
        proptest::option::of(date()),
    )
        .prop_map(|(issued, effective, expires)| Certification {
            issued,
            effective,
            expires,
        })
}

fn line_decision(i: usize, quantity: Option<Decimal>) -> impl Strategy<Value = LineDecision> {
    (
        proptest::option::of(select(ActionCode::ALL)),
        proptest::option::of(text()),
        proptest::option::of(code()),
        proptest::option::of(any::<bool>()),
        certification(),
        proptest::option::of(quantity_strategy()),
        proptest::option::of(text()),
        proptest::collection::vec(trace(TraceType::Referenced), 0..=1),
        proptest::collection::vec(reject(Level::Service, Some(i)), 0..=1),
        proptest::collection::vec(text(), 0..=2),
    )
        .prop_map(
            move |(
                action,
                certification_number,
                reason,
                ssop,
                certification,
                approved_quantity,
                administrative_reference,
                trace_numbers,
                rejects,
                messages,
            )| LineDecision {
                line: i,
                status: Status::ContactPayer,
                action,
                certification_number: if action.is_some() {
                    certification_number
                } else {
                    None
                },
                reason: if action.is_some() { reason } else { None },
                second_surgical_opinion: if action.is_some() { ssop } else { None },
                certification,
                approved_quantity,
                approved_units: quantity.clone(),
                administrative_reference,
                trace_numbers,
                rejects,
                messages,
            },
        )
}

fn quantity_strategy() -> impl Strategy<Value = ServiceQuantity> {
    quantity()
}

fn response() -> impl Strategy<Value = AuthorizationResponse> {
    (
        request(),
        event(true),
        proptest::collection::vec(line(true), 0..=3),
    )
        .prop_flat_map(|(mut req, ev, lines)| {
            req.event = ev;
            req.services = lines;
            let quantities: Vec<Option<Decimal>> = req
                .services
                .iter()
                .map(|l| l.service.as_ref().and_then(Service::quantity).cloned())
                .collect();
            let line_strats: Vec<_> = quantities
                .into_iter()
                .enumerate()
                .map(|(i, q)| line_decision(i + 1, q))
                .collect();
            let has_dep = req.dependent.is_some();
            let levels: Vec<Level> = [
                Level::Umo,
                Level::Requester,
                Level::Subscriber,
                Level::Dependent,
                Level::Event,
            ]
            .into_iter()
            .filter(|l| has_dep || *l != Level::Dependent)
            .collect();
            (
                Just(req),
                (
                    proptest::option::of(select(ActionCode::ALL)),
                    proptest::option::of(text()),
                    proptest::option::of(code()),
                    proptest::option::of(any::<bool>()),
                ),
                certification(),
                proptest::option::of(quantity_strategy()),
                proptest::option::of(text()),
                proptest::collection::vec(trace(TraceType::Current), 0..=1),
                proptest::collection::vec(select(levels).prop_flat_map(|l| reject(l, None)), 0..=3),
                proptest::collection::vec(text(), 0..=2),
                line_strats,
                (date(), proptest::option::of(select(&["18", "19"][..]))),
            )
        })
        .prop_map(
            |(
                req,
                (action, cert, reason, ssop),
                certification,
                approved_quantity,
                admin,
                traces,
                mut rejects,
                messages,
                mut lines,
                (date, ttype),
            )| {
                let order = |l: &Level| {
                    [
                        Level::Umo,
                        Level::Requester,
                        Level::Subscriber,
                        Level::Dependent,
                        Level::Event,
                    ]
                    .iter()
                    .position(|x| x == l)
                };
                rejects.sort_by_key(|r| order(&r.level));
                for l in &mut lines {
                    l.status = match (l.action, l.rejects.is_empty()) {
                        (Some(a), _) => a.into(),
                        (None, false) => Status::Rejected,
                        (None, true) => action.map_or(Status::ContactPayer, Status::from),
                    };
                }
                let status = overall_status(action, &lines, &rejects);
                let decision = Decision {
                    status,
                    action,
                    certification_number: action.and(cert),
                    reason: action.and(reason),
                    second_surgical_opinion: action.and(ssop),
                    certification,
                    approved_quantity,
                    administrative_reference: admin,
                    trace_numbers: traces,
                    rejects,
                    messages,
                    lines,
                };
                let mut r = AuthorizationResponse::answering(&req, decision);
                r.created_date = Some(date);
                r.created_time = Some(Time::parse("1045").unwrap());
                r.transaction_type = ttype.map(|t| Code::parse(t).unwrap());
                r
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn request_survives_x12(reqs in proptest::collection::vec(request(), 1..=3)) {
        let controls = MemoryControlNumbers::new();
        let x12 = encode_requests(&reqs, &EnvelopeSettings::default(), &controls, stamp()).unwrap();
        let decoded = decode_all(&x12);
        let errors: Vec<_> = decoded.all_issues().filter(|i| i.severity == Severity::Error).collect();
        prop_assert!(errors.is_empty(), "{errors:#?}\n{}", String::from_utf8_lossy(&x12));
        prop_assert_eq!(decoded.transactions.len(), reqs.len());
        for (t, r) in decoded.transactions.iter().zip(&reqs) {
            match &t.message {
                Some(Message278::Request(got)) => prop_assert_eq!(got.as_ref(), r, "{}", String::from_utf8_lossy(&x12)),
                other => prop_assert!(false, "expected a request, got {other:?}"),
            }
        }
    }

    #[test]
    fn request_survives_json(r in request()) {
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
