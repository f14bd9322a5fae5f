//! Property: any synthetic hub request written as a PAS bundle reads back with the same
//! parties' identifiers, review, diagnoses, trace numbers and service lines, and the bundle
//! passes our PAS rules (apart from what the hub request itself lacks).

mod common;

use proptest::prelude::*;

use priorauth::domain::*;
use priorauth::fhir::validate::validate_bundle;
use priorauth::fhir::{bundle_from_request, request_from_bundle};

fn ids(e: &Entity) -> Option<(String, String)> {
    e.id.as_ref()
        .map(|i| (i.qualifier().to_owned(), i.value().to_owned()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn hub_to_pas_to_hub_keeps_the_essentials(mut req in common::hub_request(), line in common::line(false)) {
        // A PAS request names the member (Coverage) and has at least one item.
        if req.member_id().is_none() {
            req.subscriber.id = Some(Identification::MemberId(MemberId::parse("M123456").unwrap()));
        }
        if req.services.is_empty() {
            req.services.push(line);
        }
        // PAS carries UM01 per item; the event's is read from the first item (known limit).
        if let Some(r) = req.services[0].review.as_mut() {
            r.category = req.event.review.category;
        }
        let b = bundle_from_request(&req);
        let v = serde_json::to_value(&b).unwrap();
        // Structure rules never fail on what we write (fullUrls, references, sequences).
        for i in validate_bundle(&v).iter().filter(|i| i.is_error()) {
            prop_assert!(
                !matches!(i.code, "not-found" | "multiple-matches" | "structure")
                    && !i.message.contains("sequence"),
                "{i}"
            );
        }
        let (back, issues) = request_from_bundle(&b);
        let back = back.ok_or_else(|| TestCaseError::fail(format!("{issues:#?}")))?;
        prop_assert_eq!(&back.submitter_reference, &req.submitter_reference);
        prop_assert_eq!(back.member_id(), req.member_id());
        prop_assert_eq!(ids(&back.umo), ids(&req.umo));
        prop_assert_eq!(ids(&back.requester), ids(&req.requester));
        prop_assert_eq!(back.event.review.category, req.event.review.category);
        prop_assert_eq!(back.event.review.certification_type, req.event.review.certification_type);
        prop_assert_eq!(back.event.review.level_of_service, req.event.review.level_of_service);
        let currents: Vec<_> = req.event.trace_numbers.iter().filter(|t| t.kind == TraceType::Current).take(2).cloned().collect();
        prop_assert_eq!(&back.event.trace_numbers, &currents);
        let icd: Vec<_> = req.event.diagnoses.iter().filter(|d| d.qualifier.is_icd10()).map(|d| d.code.as_str().replace('.', "")).collect();
        let back_icd: Vec<_> = back.event.diagnoses.iter().map(|d| d.code.as_str().replace('.', "")).collect();
        prop_assert_eq!(back_icd, icd);
        // What only the hub and PAS carry (no 278 element) comes back exactly.
        prop_assert_eq!(&back.submitter_reference_system, &req.submitter_reference_system);
        prop_assert_eq!(back.created_utc_offset, req.created_utc_offset);
        prop_assert_eq!(&back.subscriber.id_system, &req.subscriber.id_system);
        if req.umo.stated_role.is_some() {
            prop_assert_eq!(&back.umo.stated_role, &req.umo.stated_role);
        }
        prop_assert_eq!(&back.revises, &req.revises);
        prop_assert_eq!(&back.revises_reference, &req.revises_reference);
        let class = |r: &AuthorizationRequest| r.event.institutional.as_ref().and_then(|i| i.encounter_class.clone());
        prop_assert_eq!(class(&back), class(&req));
        let docs = |r: &AuthorizationRequest| r.event.attachments.iter().map(|a| a.document.clone()).collect::<Vec<_>>();
        prop_assert_eq!(docs(&back), docs(&req));
        let sites = |r: &AuthorizationRequest| r.event.providers.iter().flat_map(|p| p.locations.clone()).collect::<Vec<_>>();
        prop_assert_eq!(sites(&back), sites(&req));
        let ref_systems = |e: &Entity| e.references.iter().map(|r| r.system.clone()).collect::<Vec<_>>();
        // (A dependent without a relationship code is written as the subscriber's self.)
        if back.dependent.is_some() == req.dependent.is_some() {
            prop_assert_eq!(ref_systems(back.patient()), ref_systems(req.patient()));
        }
        prop_assert_eq!(back.services.len(), req.services.len());
        for (a, b) in req.services.iter().zip(&back.services) {
            prop_assert_eq!(
                a.service.as_ref().and_then(Service::procedure).map(|p| (p.code.clone(), p.modifiers.clone())),
                b.service.as_ref().and_then(Service::procedure).map(|p| (p.code.clone(), p.modifiers.clone()))
            );
            // Same value (JSON numbers have no leading zeros: X12 `007` reads back as `7`).
            prop_assert_eq!(
                a.service.as_ref().and_then(Service::quantity).map(Decimal::to_f64),
                b.service.as_ref().and_then(Service::quantity).map(Decimal::to_f64)
            );
            let cert = |l: &ServiceLine| l.review.as_ref().map(|r| r.certification_type);
            prop_assert_eq!(cert(a).unwrap_or(req.event.review.certification_type), cert(b).unwrap());
            // REF03 (description) has no PAS element.
            let numbers = |l: &ServiceLine| l.references.iter().filter(|r| matches!(r.qualifier.as_str(), "BB" | "NT")).map(|r| (r.qualifier.clone(), r.value.clone())).collect::<Vec<_>>();
            prop_assert_eq!(numbers(a), numbers(b));
            prop_assert_eq!(a.service_dates(), b.service_dates());
            if a.service.is_none() {
                // Same value (a JSON number has no leading zeros).
                let terms = |l: &ServiceLine| l.terms.as_ref().map(|t| (
                    t.epsdt,
                    t.nursing_home_residential_status.clone(),
                    t.nursing_home_level_of_care.clone(),
                    t.rate.as_ref().map(Decimal::to_f64),
                ));
                prop_assert_eq!(terms(a), terms(b));
            }
        }
    }
}
