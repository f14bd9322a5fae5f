//! $inquire: an inquiry request Bundle read as a query by example over hub requests, and the
//! Parameters-wrapped inquiry response bundles.
//!
//! The guide's inquiry follows the 278 inquiry rules: the patient's member id, the provider and
//! the insurer must be given; matching is on member id plus provider identifier, narrowed by
//! trace numbers, authorization / administrative reference numbers and service codes when the
//! inquiry names them.

use serde_json::{Value, json};

use super::outcome::FhirIssue;
use super::request::request_from_bundle;
use super::response::{ResponseInput, response_bundle};
use super::types::*;
use crate::domain::*;

/// An inquiry: the query by example the inquiry Claim describes, in hub terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Inquiry {
    pub example: AuthorizationRequest,
}

/// Reads an inquiry request bundle. The patient (member id), provider and insurer are required.
pub fn inquiry_from_bundle(b: &Bundle) -> (Option<Inquiry>, Vec<FhirIssue>) {
    let (r, mut issues) = request_from_bundle(b);
    let Some(example) = r else {
        return (None, issues);
    };
    if example.requester.id.is_none() {
        issues.push(FhirIssue::error(
            "required",
            "Bundle.entry[0].resource.provider",
            "an inquiry needs the provider's identifier (NPI) to match on",
        ));
        return (None, issues);
    }
    (Some(Inquiry { example }), issues)
}

fn refs(list: &[crate::domain::Reference]) -> impl Iterator<Item = (&str, &str)> {
    list.iter()
        .filter(|r| matches!(r.qualifier.as_str(), "BB" | "NT"))
        .map(|r| (r.qualifier.as_str(), r.value.as_str()))
}

impl Inquiry {
    /// Whether a stored request (and the decision it got, for its numbers) is what this inquiry
    /// asks about.
    pub fn matches(
        &self,
        req: &AuthorizationRequest,
        resp: Option<&AuthorizationResponse>,
    ) -> bool {
        let q = &self.example;
        if q.member_id() != req.member_id() || q.requester.id != req.requester.id {
            return false;
        }
        let traces = |r: &AuthorizationRequest| {
            r.event
                .trace_numbers
                .iter()
                .map(|t| (t.reference.clone(), t.originator.clone()))
                .collect::<Vec<_>>()
        };
        let want = traces(q);
        if !want.is_empty() && !traces(req).iter().any(|t| want.contains(t)) {
            return false;
        }
        // Numbers the inquiry names: in the request, or given by the payer's decision.
        let mut known: Vec<(String, String)> = req
            .services
            .iter()
            .flat_map(|l| refs(&l.references))
            .chain(refs(&req.event.references))
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect();
        if let Some(d) = resp.map(|r| &r.decision) {
            let certs = d.certification_number.iter().chain(
                d.lines
                    .iter()
                    .filter_map(|l| l.certification_number.as_ref()),
            );
            known.extend(certs.map(|c| ("BB".to_owned(), c.to_string())));
            let admins = d.administrative_reference.iter().chain(
                d.lines
                    .iter()
                    .filter_map(|l| l.administrative_reference.as_ref()),
            );
            known.extend(admins.map(|c| ("NT".to_owned(), c.to_string())));
        }
        let asked: Vec<(&str, &str)> = q
            .services
            .iter()
            .flat_map(|l| refs(&l.references))
            .chain(refs(&q.event.references))
            .collect();
        if !asked
            .iter()
            .all(|(k, v)| known.iter().any(|(a, b)| a == k && b == v))
        {
            return false;
        }
        let codes = |r: &AuthorizationRequest| {
            r.services
                .iter()
                .filter_map(|l| l.service.as_ref().and_then(Service::procedure))
                .map(|p| p.code.clone())
                .collect::<Vec<_>>()
        };
        let wanted = codes(q);
        wanted.is_empty() || codes(req).iter().any(|c| wanted.contains(c))
    }
}

/// The $inquire output: a Parameters resource with one `responseBundle` per matching request,
/// each an inquiry response bundle (ClaimResponse first).
pub fn inquiry_parameters(found: &[(AuthorizationResponse, Option<&Bundle>)]) -> Value {
    let params: Vec<Value> = found
        .iter()
        .map(|(resp, req)| {
            let mut b = response_bundle(ResponseInput {
                response: resp,
                request: *req,
            });
            b.meta = Some(json!({"profile": [format!(
                "{}/StructureDefinition/profile-pas-inquiry-response-bundle",
                super::PAS
            )]}));
            if let Some(Resource::ClaimResponse(cr)) =
                b.entry.first_mut().and_then(|e| e.resource.as_mut())
            {
                cr.meta = Some(json!({"profile": [format!(
                    "{}/StructureDefinition/profile-claiminquiryresponse",
                    super::PAS
                )]}));
            }
            json!({"name": "responseBundle", "resource": b})
        })
        .collect();
    json!({"resourceType": "Parameters", "parameter": params})
}

/// The response bundles inside a $inquire Parameters output.
pub fn response_bundles(parameters: &Value) -> Vec<&Value> {
    parameters["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("resource"))
        .filter(|r| r["resourceType"] == "Bundle")
        .collect()
}

/// The `Claim/$inquire` request for a request sent before: its request Bundle with the inquiry
/// profiles (the same identifier, parties, trace numbers and items, so the payer matches it to
/// the authorization it holds).
pub fn inquiry_bundle(req: &AuthorizationRequest) -> Bundle {
    let mut b = super::request::bundle_from_request(req);
    b.meta = Some(json!({"profile": [format!(
        "{}/StructureDefinition/profile-pas-inquiry-request-bundle",
        super::PAS
    )]}));
    if let Some(Resource::Claim(c)) = b.entry.first_mut().and_then(|e| e.resource.as_mut()) {
        c.meta = Some(json!({"profile": [format!(
            "{}/StructureDefinition/profile-claim-inquiry",
            super::PAS
        )]}));
    }
    b
}
