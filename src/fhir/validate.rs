//! Validation of incoming PAS bundles: the FHIR R4 structure basics (JSON object, resource
//! types, the typed elements the codecs read), the bundle rules of the PAS guide (type
//! collection, identifier and timestamp, first entry, fullUrl forms, every reference resolving
//! to exactly one entry, no request/response/search on entries), and the profile rules that
//! matter for a 278 (required elements and fixed values of Claim, Coverage, Patient and
//! ClaimResponse, unique sequences, sequence pointers, certificationType 1 requiring
//! levelOfServiceCode, X12 code systems and codes of the PAS extensions).
//! Every problem carries a FHIRPath expression.

use serde_json::Value;

use super::outcome::FhirIssue;
use super::request::RequestContext;
use super::types::*;
use super::{MAX_BODY, ext_url as u, system as sys};
use crate::domain::{ActionCode, CertificationType, CodeList, LevelOfService, RequestCategory};

/// What a PAS JSON document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasKind {
    /// A $submit request bundle (Claim first).
    RequestBundle,
    /// A $inquire request bundle (Claim first with the inquiry profile).
    InquiryBundle,
    /// A response bundle (ClaimResponse first).
    ResponseBundle,
    /// A bare ClaimResponse.
    ClaimResponse,
    /// A Parameters resource (the $inquire output wrapper).
    Parameters,
    /// An OperationOutcome.
    OperationOutcome,
    /// Something else.
    Other,
}

/// Reads JSON bytes as a FHIR resource: refuses bodies over [`MAX_BODY`], malformed JSON
/// (with line and column) and anything that is not a JSON object with a resourceType.
pub fn parse_json(data: &[u8]) -> Result<Value, FhirIssue> {
    if data.len() > MAX_BODY {
        return Err(FhirIssue::error(
            "too-long",
            "",
            format!(
                "the body is {} bytes; the limit is {} bytes",
                data.len(),
                MAX_BODY
            ),
        ));
    }
    let data = data.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(data);
    let v: Value = serde_json::from_slice(data).map_err(|e| {
        FhirIssue::error(
            "structure",
            "",
            format!(
                "malformed JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    match v.get("resourceType").and_then(Value::as_str) {
        Some(_) => Ok(v),
        None => Err(FhirIssue::error(
            "structure",
            "",
            "not a FHIR resource: a JSON object with resourceType is expected",
        )),
    }
}

/// Whether JSON bytes look like FHIR (a JSON object naming a resourceType near the start).
pub fn looks_like_fhir(data: &[u8]) -> bool {
    let t = data.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(data);
    let start = t.iter().position(|b| !b.is_ascii_whitespace());
    start.is_some_and(|i| t[i] == b'{')
        && memchr::memmem::find(&t[..t.len().min(4096)], b"\"resourceType\"").is_some()
}

pub fn kind_of(v: &Value) -> PasKind {
    match v.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") => {
            let first = v.pointer("/entry/0/resource");
            match first
                .and_then(|r| r.get("resourceType"))
                .and_then(Value::as_str)
            {
                Some("Claim") => {
                    let inquiry = first
                        .and_then(|r| r.pointer("/meta/profile"))
                        .and_then(Value::as_array)
                        .is_some_and(|a| {
                            a.iter()
                                .any(|p| p.as_str().is_some_and(|p| p.contains("claim-inquiry")))
                        })
                        || v.pointer("/meta/profile")
                            .and_then(Value::as_array)
                            .is_some_and(|a| {
                                a.iter()
                                    .any(|p| p.as_str().is_some_and(|p| p.contains("inquiry")))
                            });
                    if inquiry {
                        PasKind::InquiryBundle
                    } else {
                        PasKind::RequestBundle
                    }
                }
                Some("ClaimResponse") => PasKind::ResponseBundle,
                _ => PasKind::Other,
            }
        }
        Some("ClaimResponse") => PasKind::ClaimResponse,
        Some("Parameters") => PasKind::Parameters,
        Some("OperationOutcome") => PasKind::OperationOutcome,
        _ => PasKind::Other,
    }
}

fn err(
    out: &mut Vec<FhirIssue>,
    code: &'static str,
    path: impl Into<String>,
    msg: impl Into<String>,
) {
    out.push(FhirIssue::error(code, path, msg));
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// fullUrl forms the guide allows: an absolute http(s) URL, or `urn:uuid:` with a UUID.
fn check_full_url(u: &str) -> Result<(), &'static str> {
    if let Some(id) = u.strip_prefix("urn:uuid:") {
        if is_uuid(id) {
            return Ok(());
        }
        return Err("a urn:uuid: fullUrl needs a UUID (8-4-4-4-12 hexadecimal digits)");
    }
    if u.starts_with("urn:oid:") {
        return Ok(());
    }
    if (u.starts_with("http://") || u.starts_with("https://")) && !u.contains(' ') {
        return Ok(());
    }
    Err("fullUrl must be an absolute http(s) URL or urn:uuid:<uuid>")
}

/// Walks a resource's JSON and calls `f` with every Reference.reference string and its path.
fn references<'v>(v: &'v Value, path: &mut String, f: &mut dyn FnMut(&str, &'v str)) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("reference") {
                f(path, r);
            }
            for (k, x) in m {
                if k == "reference" || k == "text" {
                    continue;
                }
                let len = path.len();
                path.push('.');
                path.push_str(k);
                references(x, path, f);
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                references(x, path, f);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Validates a PAS document. Returns every problem found; `is_error()` ones make it invalid.
pub fn validate_bundle(v: &Value) -> Vec<FhirIssue> {
    let mut out = vec![];
    let kind = kind_of(v);
    match kind {
        PasKind::ClaimResponse => {
            match serde_path_to_error::deserialize::<_, ClaimResponse>(v.clone()) {
                Ok(cr) => check_claim_response(&cr, "ClaimResponse", None, &mut out),
                Err(e) => err(
                    &mut out,
                    "structure",
                    format!("ClaimResponse.{}", e.path()),
                    e.inner().to_string(),
                ),
            }
            return out;
        }
        PasKind::RequestBundle | PasKind::InquiryBundle | PasKind::ResponseBundle => {}
        PasKind::Other if v.get("resourceType").and_then(Value::as_str) == Some("Bundle") => {
            err(
                &mut out,
                "structure",
                "Bundle.entry[0].resource",
                "the first entry of a PAS bundle must be a Claim (request) or a ClaimResponse (response)",
            );
        }
        _ => {
            err(
                &mut out,
                "not-supported",
                "",
                format!(
                    "a {} is not a PAS request or response",
                    v.get("resourceType")
                        .and_then(Value::as_str)
                        .unwrap_or("document")
                ),
            );
            return out;
        }
    }
    // Generic bundle structure on the JSON (so entries that fail typing are still checked).
    let Some(entries) = v.get("entry").and_then(Value::as_array) else {
        err(
            &mut out,
            "required",
            "Bundle.entry",
            "a PAS bundle has at least one entry",
        );
        return out;
    };
    if v.get("type").and_then(Value::as_str) != Some("collection") {
        err(
            &mut out,
            "value",
            "Bundle.type",
            "a PAS bundle has type collection",
        );
    }
    if kind != PasKind::ResponseBundle || v.get("identifier").is_some() {
        match v.pointer("/identifier/value").and_then(Value::as_str) {
            Some(s) if !s.trim().is_empty() => {}
            _ => err(
                &mut out,
                "required",
                "Bundle.identifier",
                "Bundle.identifier with a value is required",
            ),
        }
    }
    match v.get("timestamp").and_then(Value::as_str) {
        Some(t) if is_instant(t) => {}
        Some(_) => err(
            &mut out,
            "value",
            "Bundle.timestamp",
            "timestamp must be an instant (YYYY-MM-DDThh:mm:ss with a time zone)",
        ),
        None => err(
            &mut out,
            "required",
            "Bundle.timestamp",
            "Bundle.timestamp is required",
        ),
    }
    let mut seen_urls: Vec<&str> = vec![];
    for (i, e) in entries.iter().enumerate() {
        let p = format!("Bundle.entry[{i}]");
        for k in ["request", "response", "search"] {
            if e.get(k).is_some() {
                err(
                    &mut out,
                    "structure",
                    format!("{p}.{k}"),
                    format!("entry.{k} is not allowed in a PAS bundle"),
                );
            }
        }
        match e.get("fullUrl").and_then(Value::as_str) {
            Some(u) => {
                if let Err(m) = check_full_url(u) {
                    err(&mut out, "value", format!("{p}.fullUrl"), m);
                }
                if seen_urls.contains(&u) {
                    err(
                        &mut out,
                        "structure",
                        format!("{p}.fullUrl"),
                        "the fullUrl is used by another entry",
                    );
                }
                seen_urls.push(u);
                if let Some(r) = e.get("resource")
                    && (u.starts_with("http://") || u.starts_with("https://"))
                    && let (Some(t), Some(id)) = (
                        r.get("resourceType").and_then(Value::as_str),
                        r.get("id").and_then(Value::as_str),
                    )
                    && !u.ends_with(&format!("/{t}/{id}"))
                {
                    err(
                        &mut out,
                        "value",
                        format!("{p}.fullUrl"),
                        format!(
                            "the fullUrl does not end with {t}/{id}, the resource's type and id"
                        ),
                    );
                }
            }
            None => err(
                &mut out,
                "required",
                format!("{p}.fullUrl"),
                "every entry needs a fullUrl",
            ),
        }
        match e.get("resource") {
            Some(r) if r.get("resourceType").and_then(Value::as_str).is_some() => {}
            Some(_) => err(
                &mut out,
                "structure",
                format!("{p}.resource"),
                "the resource has no resourceType",
            ),
            None => err(
                &mut out,
                "required",
                format!("{p}.resource"),
                "every entry needs a resource",
            ),
        }
    }
    // Typed reading: wrong element types are located by the typed structs.
    let bundle: Bundle = match serde_path_to_error::deserialize(v.clone()) {
        Ok(b) => b,
        Err(e) => {
            // A resource's own error names the element inside it: `item[0].sequence: ...`.
            let msg = e.inner().to_string();
            let (expr, msg) = match msg.split_once(": ") {
                Some((p, m)) if !p.contains(' ') && p != "." => {
                    (format!("Bundle.{}.{p}", e.path()), m.to_owned())
                }
                _ => (format!("Bundle.{}", e.path()), msg.clone()),
            };
            err(&mut out, "structure", expr, msg);
            return out;
        }
    };
    let ctx = RequestContext::new(&bundle);
    for (i, e) in entries.iter().enumerate() {
        let Some(r) = e.get("resource") else { continue };
        let rt = r.get("resourceType").and_then(Value::as_str).unwrap_or("");
        let mut path = format!("Bundle.entry[{i}].resource");
        references(r, &mut path, &mut |p, reference| {
            if reference.starts_with('#') {
                return;
            }
            // The kit skips ClaimResponse.request and the prior Claim of an update.
            if (rt == "ClaimResponse" && p.ends_with(".request"))
                || (rt == "Claim" && p.contains(".related[") && p.ends_with(".claim"))
            {
                return;
            }
            let n = ctx.targets(reference).len();
            if n == 0 {
                out.push(FhirIssue::error(
                    "not-found",
                    format!("{p}.reference"),
                    format!(
                        "the reference {reference:?} does not resolve to an entry of the bundle"
                    ),
                ));
            } else if n > 1 {
                out.push(FhirIssue::error(
                    "multiple-matches",
                    format!("{p}.reference"),
                    format!("the reference {reference:?} resolves to {n} entries"),
                ));
            }
        });
    }
    for (i, e) in bundle.entry.iter().enumerate() {
        let p = format!("Bundle.entry[{i}].resource");
        match &e.resource {
            Some(Resource::Claim(c)) if i == 0 => {
                check_claim(c, &p, &ctx, kind == PasKind::InquiryBundle, &mut out)
            }
            Some(Resource::ClaimResponse(c)) if i == 0 => {
                check_claim_response(c, &p, Some(&ctx), &mut out)
            }
            Some(Resource::Coverage(c)) => check_coverage(c, &p, &mut out),
            Some(Resource::Patient(pt)) => check_patient(pt, &p, &mut out),
            Some(Resource::Organization(o)) => {
                if o.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
                    err(
                        &mut out,
                        "required",
                        format!("{p}.name"),
                        "a PAS Organization needs a name",
                    );
                }
                check_identifiers(&o.identifier, &format!("{p}.identifier"), &mut out);
            }
            Some(Resource::Practitioner(pr)) => {
                check_identifiers(&pr.identifier, &format!("{p}.identifier"), &mut out);
                if pr.name.iter().all(|n| n.family.is_none()) {
                    err(
                        &mut out,
                        "required",
                        format!("{p}.name"),
                        "a PAS Practitioner needs a name with a family name",
                    );
                }
            }
            Some(Resource::PractitionerRole(pr)) if pr.practitioner.is_none() => {
                err(
                    &mut out,
                    "required",
                    format!("{p}.practitioner"),
                    "PractitionerRole.practitioner is required",
                );
            }
            _ => {}
        }
    }
    if kind == PasKind::RequestBundle || kind == PasKind::InquiryBundle {
        // The first entry must be a Claim; a Claim elsewhere is allowed (Claim Update's prior).
        if !matches!(
            bundle.entry.first().and_then(|e| e.resource.as_ref()),
            Some(Resource::Claim(_))
        ) {
            err(
                &mut out,
                "structure",
                "Bundle.entry[0].resource",
                "the first entry must be a Claim",
            );
        }
    }
    out
}

fn is_instant(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (t.ends_with('Z') || matches!(b[b.len() - 6], b'+' | b'-'))
        && crate::domain::Date::parse(&t[..10]).is_ok()
}

fn check_identifiers(ids: &[Identifier], p: &str, out: &mut Vec<FhirIssue>) {
    for (k, i) in ids.iter().enumerate() {
        if i.system.is_some() != i.value.is_some() && i.type_.is_none() {
            err(
                out,
                "required",
                format!("{p}[{k}]"),
                "a PAS Identifier has both system and value",
            );
        }
        if i.system.as_deref() == Some(sys::NPI)
            && let Some(v) = &i.value
            && let Err(e) = crate::domain::npi_check(v)
        {
            out.push(FhirIssue::warning(
                "value",
                format!("{p}[{k}].value"),
                format!("not a valid NPI: {e}"),
            ));
        }
    }
}

/// An X12-coded extension: the code must be in `system` and in the code list.
fn check_x12_ext<C: CodeList>(
    list: &[Extension],
    url: &str,
    system: &str,
    p: &str,
    out: &mut Vec<FhirIssue>,
) -> Option<C> {
    let e = ext(list, url)?;
    let path = format!("{p}.extension('{url}').valueCodeableConcept");
    let Some(cc) = e.value_cc() else {
        err(
            out,
            "required",
            path,
            "the extension needs a valueCodeableConcept",
        );
        return None;
    };
    let Some(code) = cc.code_in(system) else {
        err(
            out,
            "code-invalid",
            path,
            format!("the code must be in the X12 system {system}"),
        );
        return None;
    };
    let c = C::from_code(code);
    if c.is_none() {
        err(
            out,
            "code-invalid",
            path,
            format!("{code:?} is not a {} code ({})", C::WHAT, C::codes()),
        );
    }
    c
}

fn seqs<'a>(
    it: impl Iterator<Item = Option<&'a serde_json::Number>>,
    what: &str,
    p: &str,
    out: &mut Vec<FhirIssue>,
) -> Vec<u32> {
    let mut v = vec![];
    for (k, s) in it.enumerate() {
        match s.and_then(seq) {
            Some(n) if n > 0 => {
                if v.contains(&n) {
                    err(
                        out,
                        "value",
                        format!("{p}[{k}].sequence"),
                        format!("{what} sequence {n} is used twice"),
                    );
                }
                v.push(n);
            }
            _ => err(
                out,
                "required",
                format!("{p}[{k}].sequence"),
                format!("every {what} needs a positive sequence"),
            ),
        }
    }
    v
}

fn check_claim(c: &Claim, p: &str, ctx: &RequestContext, inquiry: bool, out: &mut Vec<FhirIssue>) {
    if c.status.as_deref() != Some("active") {
        err(
            out,
            "value",
            format!("{p}.status"),
            "Claim.status is fixed to active",
        );
    }
    if c.use_.as_deref() != Some("preauthorization") {
        err(
            out,
            "value",
            format!("{p}.use"),
            "Claim.use is fixed to preauthorization",
        );
    }
    if c.identifier.is_empty() {
        err(
            out,
            "required",
            format!("{p}.identifier"),
            "the PAS Claim needs an identifier (the 2000E TRN)",
        );
    }
    check_identifiers(&c.identifier, &format!("{p}.identifier"), out);
    for (k, what) in [
        (&c.patient, "patient"),
        (&c.insurer, "insurer"),
        (&c.provider, "provider"),
    ] {
        if k.is_none() {
            err(
                out,
                "required",
                format!("{p}.{what}"),
                format!("Claim.{what} is required"),
            );
        }
    }
    if let Some((_, r)) = ctx.resolve(c.insurer.as_ref())
        && !matches!(r, Resource::Organization(_))
    {
        err(
            out,
            "invalid",
            format!("{p}.insurer"),
            format!(
                "the insurer must be an Organization, not a {}",
                r.resource_type()
            ),
        );
    }
    if let Some((_, r)) = ctx.resolve(c.patient.as_ref())
        && !matches!(r, Resource::Patient(_))
    {
        err(
            out,
            "invalid",
            format!("{p}.patient"),
            format!("the patient must be a Patient, not a {}", r.resource_type()),
        );
    }
    if let Some((_, r)) = ctx.resolve(c.provider.as_ref())
        && !matches!(r, Resource::Organization(_) | Resource::PractitionerRole(_))
    {
        err(
            out,
            "invalid",
            format!("{p}.provider"),
            format!(
                "the provider must be an Organization or PractitionerRole, not a {}",
                r.resource_type()
            ),
        );
    }
    if c.insurance.is_empty() {
        err(
            out,
            "required",
            format!("{p}.insurance"),
            "Claim.insurance is required",
        );
    }
    for (k, i) in c.insurance.iter().enumerate() {
        match ctx.resolve(i.coverage.as_ref()) {
            Some((_, Resource::Coverage(_))) => {}
            Some((_, r)) => err(
                out,
                "invalid",
                format!("{p}.insurance[{k}].coverage"),
                format!(
                    "insurance.coverage must be a Coverage, not a {}",
                    r.resource_type()
                ),
            ),
            None if i.coverage.is_none() => err(
                out,
                "required",
                format!("{p}.insurance[{k}].coverage"),
                "insurance.coverage is required",
            ),
            None => {}
        }
    }
    if !inquiry && c.item.is_empty() {
        err(
            out,
            "required",
            format!("{p}.item"),
            "a PAS Claim has at least one item",
        );
    }
    let team = seqs(
        c.care_team.iter().map(|x| x.sequence.as_ref()),
        "careTeam",
        &format!("{p}.careTeam"),
        out,
    );
    let info = seqs(
        c.supporting_info.iter().map(|x| x.sequence.as_ref()),
        "supportingInfo",
        &format!("{p}.supportingInfo"),
        out,
    );
    let diag = seqs(
        c.diagnosis.iter().map(|x| x.sequence.as_ref()),
        "diagnosis",
        &format!("{p}.diagnosis"),
        out,
    );
    seqs(
        c.item.iter().map(|x| x.sequence.as_ref()),
        "item",
        &format!("{p}.item"),
        out,
    );
    for (k, ct) in c.care_team.iter().enumerate() {
        if ct.provider.is_none() {
            err(
                out,
                "required",
                format!("{p}.careTeam[{k}].provider"),
                "careTeam.provider is required",
            );
        }
    }
    for (k, si) in c.supporting_info.iter().enumerate() {
        if si.category.is_none() {
            err(
                out,
                "required",
                format!("{p}.supportingInfo[{k}].category"),
                "supportingInfo.category is required",
            );
        }
    }
    let claim_level_cert: Option<CertificationType> = check_x12_ext(
        &c.extension,
        u::CERTIFICATION_TYPE,
        sys::X12_CERTIFICATION_TYPE,
        p,
        out,
    );
    let los: Option<LevelOfService> = check_x12_ext(
        &c.extension,
        u::LEVEL_OF_SERVICE,
        sys::X12_LEVEL_OF_SERVICE,
        p,
        out,
    );
    let has_los = los.is_some() || ext(&c.extension, u::LEVEL_OF_SERVICE).is_some();
    if claim_level_cert == Some(CertificationType::AppealImmediate) && !has_los {
        err(
            out,
            "invariant",
            format!("{p}.extension"),
            "certificationType 1 (appeal - immediate) requires levelOfServiceCode",
        );
    }
    for (k, it) in c.item.iter().enumerate() {
        let ip = format!("{p}.item[{k}]");
        let cat: Option<RequestCategory> = check_x12_ext(
            &it.extension,
            u::REQUEST_TYPE,
            sys::X12_REQUEST_CATEGORY,
            &ip,
            out,
        );
        let cert: Option<CertificationType> = check_x12_ext(
            &it.extension,
            u::CERTIFICATION_TYPE,
            sys::X12_CERTIFICATION_TYPE,
            &ip,
            out,
        );
        if !inquiry {
            if ext(&it.extension, u::REQUEST_TYPE).is_none() && cat.is_none() {
                err(
                    out,
                    "required",
                    format!("{ip}.extension"),
                    "each item needs serviceItemRequestType (UM01)",
                );
            }
            if ext(&it.extension, u::CERTIFICATION_TYPE).is_none() {
                err(
                    out,
                    "required",
                    format!("{ip}.extension"),
                    "each item needs certificationType (UM02)",
                );
            }
            if it.category.is_none() {
                err(
                    out,
                    "required",
                    format!("{ip}.category"),
                    "item.category is required",
                );
            }
            if it.location_codeable_concept.is_none()
                && !it.extra.contains_key("locationAddress")
                && !it.extra.contains_key("locationReference")
            {
                err(
                    out,
                    "required",
                    format!("{ip}.location"),
                    "item.location[x] is required",
                );
            }
        }
        if cert == Some(CertificationType::AppealImmediate) && !has_los {
            err(
                out,
                "invariant",
                format!("{ip}.extension"),
                "certificationType 1 (appeal - immediate) requires levelOfServiceCode on the Claim",
            );
        }
        if it.product_or_service.is_none() {
            err(
                out,
                "required",
                format!("{ip}.productOrService"),
                "item.productOrService is required",
            );
        }
        for (what, list, known) in [
            ("careTeamSequence", &it.care_team_sequence, &team),
            ("diagnosisSequence", &it.diagnosis_sequence, &diag),
            ("informationSequence", &it.information_sequence, &info),
        ] {
            for (j, s) in list.iter().enumerate() {
                if seq(s).is_none_or(|s| !known.contains(&s)) {
                    err(
                        out,
                        "value",
                        format!("{ip}.{what}[{j}]"),
                        format!("{what} {s} points at no entry of the Claim"),
                    );
                }
            }
        }
        if let Some(q) = &it.quantity {
            check_quantity(q, &format!("{ip}.quantity"), out);
        }
    }
    if !c.related.is_empty() {
        for (k, r) in c.related.iter().enumerate() {
            if r.claim.is_none() {
                err(
                    out,
                    "required",
                    format!("{p}.related[{k}].claim"),
                    "related.claim is required in a Claim Update",
                );
            }
            if r.relationship
                .as_ref()
                .and_then(|x| x.first())
                .and_then(|x| x.code.as_deref())
                != Some("prior")
            {
                err(
                    out,
                    "value",
                    format!("{p}.related[{k}].relationship"),
                    "related.relationship is fixed to prior",
                );
            }
        }
    }
}

fn check_quantity(q: &Quantity, p: &str, out: &mut Vec<FhirIssue>) {
    if q.value.is_none() {
        err(
            out,
            "required",
            format!("{p}.value"),
            "a PAS Quantity has a value",
        );
    }
    if q.code.is_some() && q.system.is_none() {
        err(
            out,
            "required",
            format!("{p}.system"),
            "a Quantity with a code needs its system",
        );
    }
}

fn check_coverage(c: &Coverage, p: &str, out: &mut Vec<FhirIssue>) {
    if c.status.as_deref() != Some("active") {
        err(
            out,
            "value",
            format!("{p}.status"),
            "Coverage.status is fixed to active",
        );
    }
    if c.beneficiary.is_none() {
        err(
            out,
            "required",
            format!("{p}.beneficiary"),
            "Coverage.beneficiary is required",
        );
    }
    if c.payor.is_empty() {
        err(
            out,
            "required",
            format!("{p}.payor"),
            "Coverage.payor is required",
        );
    }
    let rel = c.relationship.as_ref();
    if rel.is_none() {
        err(
            out,
            "required",
            format!("{p}.relationship"),
            "Coverage.relationship is required",
        );
    }
    let is_self = rel.is_some_and(|r| {
        r.code_in(sys::X12_RELATIONSHIP) == Some("18")
            || r.code_in(sys::SUBSCRIBER_RELATIONSHIP) == Some("self")
    });
    if !is_self && c.subscriber.is_none() {
        err(
            out,
            "required",
            format!("{p}.subscriber"),
            "Coverage.subscriber is required unless the relationship is 18 (self)",
        );
    }
    let has_member = c.subscriber_id.is_some()
        || c.identifier
            .iter()
            .any(|i| i.type_.as_ref().and_then(|t| t.code_in(sys::V2_0203)) == Some("MB"));
    if !has_member {
        err(
            out,
            "required",
            format!("{p}.identifier"),
            "Coverage needs a member id identifier (type MB) or subscriberId",
        );
    }
}

fn check_patient(pt: &Patient, p: &str, out: &mut Vec<FhirIssue>) {
    if pt.name.is_empty() {
        err(
            out,
            "required",
            format!("{p}.name"),
            "a PAS Patient has a name",
        );
    }
    if pt.gender.is_none() {
        err(
            out,
            "required",
            format!("{p}.gender"),
            "a PAS Patient has a gender",
        );
    }
    match pt.birth_date.as_deref() {
        None => out.push(FhirIssue::warning(
            "required",
            format!("{p}.birthDate"),
            "PAS expects a full birthDate (DMG02)",
        )),
        Some(d) if crate::domain::Date::parse(d).is_err() => err(
            out,
            "value",
            format!("{p}.birthDate"),
            "birthDate must be a full date YYYY-MM-DD",
        ),
        _ => {}
    }
    if pt.identifier.is_empty() {
        err(
            out,
            "required",
            format!("{p}.identifier"),
            "a PAS Patient has an identifier",
        );
    }
    check_identifiers(&pt.identifier, &format!("{p}.identifier"), out);
}

fn check_claim_response(
    c: &ClaimResponse,
    p: &str,
    ctx: Option<&RequestContext>,
    out: &mut Vec<FhirIssue>,
) {
    if c.status.as_deref() != Some("active") {
        err(
            out,
            "value",
            format!("{p}.status"),
            "ClaimResponse.status is active",
        );
    }
    if c.use_.as_deref() != Some("preauthorization") {
        err(
            out,
            "value",
            format!("{p}.use"),
            "ClaimResponse.use is fixed to preauthorization",
        );
    }
    if !matches!(
        c.outcome.as_deref(),
        Some("queued" | "complete" | "error" | "partial")
    ) {
        err(
            out,
            "required",
            format!("{p}.outcome"),
            "ClaimResponse.outcome is queued, complete, error or partial",
        );
    }
    if c.request.is_none() {
        err(
            out,
            "required",
            format!("{p}.request"),
            "ClaimResponse.request is required",
        );
    }
    for (k, what) in [(&c.patient, "patient"), (&c.insurer, "insurer")] {
        if k.is_none() {
            err(
                out,
                "required",
                format!("{p}.{what}"),
                format!("ClaimResponse.{what} is required"),
            );
        }
    }
    let _ = ctx;
    let check_adj = |adj: &[Adjudication], ap: &str, out: &mut Vec<FhirIssue>| {
        for (j, a) in adj.iter().enumerate() {
            let jp = format!("{ap}[{j}]");
            if a.category
                .as_ref()
                .and_then(|c| c.code_in(sys::ADJUDICATION))
                != Some("submitted")
            {
                err(
                    out,
                    "value",
                    format!("{jp}.category"),
                    "adjudication.category is fixed to submitted",
                );
            }
            if let Some(ra) = ext(&a.extension, u::REVIEW_ACTION)
                && let Some(code) = ra.part(u::REVIEW_ACTION_CODE)
            {
                let cp = format!(
                    "{jp}.extension('{}').extension('{}')",
                    u::REVIEW_ACTION,
                    u::REVIEW_ACTION_CODE
                );
                match code
                    .value_cc()
                    .and_then(|cc| cc.code_in(sys::X12_ACTION).map(str::to_owned))
                {
                    Some(x) if ActionCode::from_code(&x).is_some() => {}
                    Some(x) => err(
                        out,
                        "code-invalid",
                        cp,
                        format!(
                            "{x:?} is not an X12 306 action code ({})",
                            ActionCode::codes()
                        ),
                    ),
                    None => err(
                        out,
                        "code-invalid",
                        cp,
                        format!("reviewActionCode must be coded in {}", sys::X12_ACTION),
                    ),
                }
            }
        }
    };
    for (k, it) in c.item.iter().enumerate() {
        let ip = format!("{p}.item[{k}]");
        if it.item_sequence.as_ref().and_then(seq).is_none() {
            err(
                out,
                "required",
                format!("{ip}.itemSequence"),
                "item.itemSequence is required",
            );
        }
        if it.adjudication.is_empty() {
            err(
                out,
                "required",
                format!("{ip}.adjudication"),
                "item.adjudication is required",
            );
        }
        check_adj(&it.adjudication, &format!("{ip}.adjudication"), out);
    }
    for (k, a) in c.add_item.iter().enumerate() {
        let ip = format!("{p}.addItem[{k}]");
        if a.item_sequence.is_empty() {
            err(
                out,
                "required",
                format!("{ip}.itemSequence"),
                "addItem.itemSequence is required",
            );
        }
        check_adj(&a.adjudication, &format!("{ip}.adjudication"), out);
    }
    check_adj(&c.adjudication, &format!("{p}.adjudication"), out);
    for (k, n) in c.process_note.iter().enumerate() {
        if n.number.is_none() {
            err(
                out,
                "required",
                format!("{p}.processNote[{k}].number"),
                "processNote.number is required",
            );
        }
        if n.text.is_none() {
            err(
                out,
                "required",
                format!("{p}.processNote[{k}].text"),
                "processNote.text is required",
            );
        }
    }
    for (k, e) in c.error.iter().enumerate() {
        if e.code.is_none() {
            err(
                out,
                "required",
                format!("{p}.error[{k}].code"),
                "error.code (X12 901) is required",
            );
        }
    }
}
