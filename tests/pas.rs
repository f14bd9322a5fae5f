//! Da Vinci PAS: every request example of the shared fixtures (v2.2.1 and v2.0.1) goes
//! PAS -> hub -> PAS and PAS -> X12 278 -> PAS without losing a must-support element (the
//! mustSupport flags of the StructureDefinitions in conformance-v2.2.1 drive the comparison);
//! the 278 produced passes `priorauth validate`; every response example yields its decision;
//! our PAS output passes our PAS rules; bad bundles get located OperationOutcome issues.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use priorauth::domain::*;
use priorauth::fhir::validate::{PasKind, kind_of, parse_json};
use priorauth::fhir::*;
use priorauth::x12::tx278::{self, Message278};
use priorauth::x12::writer::{EnvelopeSettings, MemoryControlNumbers, Stamp};

fn pas_dir() -> Option<PathBuf> {
    Some(common::shared_dir()?.join("fixtures/pas"))
}

fn read(p: &Path) -> Value {
    parse_json(&std::fs::read(p).expect("fixture readable")).expect("fixture is FHIR JSON")
}

/// The example files of one kind, in both versions.
fn examples(kind: PasKind) -> Vec<(PathBuf, Value)> {
    let Some(dir) = pas_dir() else { return vec![] };
    let mut out = vec![];
    for v in ["v2.2.1", "v2.0.1"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(v))
            .expect("fixture folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for p in files {
            let j = read(&p);
            if kind_of(&j) == kind {
                out.push((p, j));
            }
        }
    }
    out
}

fn name(p: &Path) -> String {
    let v = p
        .parent()
        .and_then(|d| d.file_name())
        .unwrap()
        .to_string_lossy();
    format!("{v}/{}", p.file_name().unwrap().to_string_lossy())
}

fn bundle(v: &Value) -> Bundle {
    serde_json::from_value(v.clone()).expect("typed bundle")
}

fn to_hub(v: &Value) -> AuthorizationRequest {
    let (r, issues) = request_from_bundle(&bundle(v));
    let errors: Vec<_> = issues.iter().filter(|i| i.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    r.expect("a request")
}

fn via_x12(
    r: &AuthorizationRequest,
    t: Option<&Transmission>,
) -> (Vec<u8>, AuthorizationRequest, Transmission) {
    let stamp = Stamp {
        date: Date::new(2026, 11, 23).unwrap(),
        hour: 10,
        minute: 0,
    };
    let mut settings = EnvelopeSettings::default();
    if let Some(t) = t {
        t.apply_to(&mut settings);
    }
    let bytes = tx278::encode_requests(
        std::slice::from_ref(r),
        &settings,
        &MemoryControlNumbers::new(),
        stamp,
    )
    .expect("encodes");
    let d = tx278::decode_all(&bytes);
    // The only errors allowed are NPIs that were already invalid in the source bundle (the
    // official examples use made-up NPIs such as 8189991234, which PAS validation flags).
    let errors: Vec<_> = d
        .all_issues()
        .filter(|i| i.severity == priorauth::x12::Severity::Error)
        .filter(|i| {
            !(i.code == "invalid_npi" && i.value.as_deref().is_some_and(|v| npi_check(v).is_err()))
        })
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    match &d.transactions[0].message {
        Some(Message278::Request(back)) => (
            bytes.clone(),
            (**back).clone(),
            Transmission::from_interchange(&d.summary[0]),
        ),
        other => panic!("expected a request back, got {other:?}"),
    }
}

// ------------------------------------------------------------------ must-support comparison

/// The must-support element ids of each profile, and the URL of every extension slice.
struct Profiles {
    ms: BTreeMap<String, Vec<String>>,
    slice_urls: BTreeMap<String, String>,
    by_type: BTreeMap<String, String>,
}

fn profiles() -> Option<Profiles> {
    let dir = pas_dir()?.join("conformance-v2.2.1");
    let mut p = Profiles {
        ms: BTreeMap::new(),
        slice_urls: BTreeMap::new(),
        by_type: BTreeMap::new(),
    };
    for e in std::fs::read_dir(&dir).expect("conformance folder") {
        let path = e.expect("entry").path();
        let f = path.file_name().unwrap().to_string_lossy().to_string();
        if !f.starts_with("StructureDefinition-profile-") {
            continue;
        }
        let sd = read(&path);
        let url = sd["url"].as_str().unwrap().to_owned();
        let ty = sd["type"].as_str().unwrap().to_owned();
        let mut ids = vec![];
        for el in sd["snapshot"]["element"].as_array().unwrap() {
            let id = el["id"].as_str().unwrap();
            if let Some(u) = el.pointer("/type/0/profile/0").and_then(Value::as_str)
                && id.rsplit('.').next().is_some_and(|s| {
                    s.starts_with("extension:") || s.starts_with("modifierExtension:")
                })
            {
                p.slice_urls.insert(format!("{url}#{id}"), u.to_owned());
            }
            if el["mustSupport"].as_bool() == Some(true) {
                ids.push(id.to_owned());
            }
        }
        // The default profile of a resource type without meta.profile.
        let default = matches!(
            f.as_str(),
            "StructureDefinition-profile-claim.json"
                | "StructureDefinition-profile-claimresponse.json"
                | "StructureDefinition-profile-subscriber.json"
                | "StructureDefinition-profile-coverage.json"
                | "StructureDefinition-profile-organization.json"
                | "StructureDefinition-profile-practitioner.json"
                | "StructureDefinition-profile-practitionerrole.json"
                | "StructureDefinition-profile-encounter.json"
        );
        if default {
            p.by_type.insert(ty, url.clone());
        }
        p.ms.insert(url, ids);
    }
    Some(p)
}

type Facts = BTreeSet<(String, String)>;

/// The target of a reference inside its bundle: its resource type (references are compared
/// through the resources they point at, never by their text).
fn target_type(bundle: &Value, reference: &str) -> String {
    let entries = bundle["entry"].as_array().unwrap();
    for e in entries {
        let fu = e["fullUrl"].as_str().unwrap_or("");
        if fu == reference || fu.ends_with(&format!("/{reference}")) {
            return e["resource"]["resourceType"]
                .as_str()
                .unwrap_or("")
                .to_owned();
        }
    }
    "(unresolved)".into()
}

/// Every primitive leaf under `v`, path-qualified. Extensions nested below a non-extension
/// element belong to their own must-support slices and are skipped; display text, ids and
/// narrative are presentation, not data.
fn leaves(bundle: &Value, v: &Value, path: String, inside_ext: bool, out: &mut Facts) {
    match v {
        Value::Object(m) => {
            let is_ext = m.contains_key("url") && inside_ext;
            for (k, x) in m {
                match k.as_str() {
                    "display" | "id" | "div" | "url" | "meta" => continue,
                    "extension" | "modifierExtension" if !is_ext => continue,
                    "reference" => {
                        out.insert((
                            format!("{path}.reference"),
                            target_type(bundle, x.as_str().unwrap_or("")),
                        ));
                        continue;
                    }
                    _ => {}
                }
                if let Value::Array(a) = x
                    && (k == "extension" || k == "modifierExtension")
                {
                    for e in a {
                        let u = e["url"].as_str().unwrap_or("");
                        leaves(bundle, e, format!("{path}.{k}({u})"), true, out);
                    }
                    continue;
                }
                leaves(bundle, x, format!("{path}.{k}"), inside_ext, out);
            }
        }
        Value::Array(a) => {
            for x in a {
                leaves(bundle, x, path.clone(), inside_ext, out);
            }
        }
        Value::Null => {}
        other => {
            let s = match other {
                Value::String(s) => s.clone(),
                o => o.to_string(),
            };
            out.insert((path, s));
        }
    }
}

/// Follows one must-support element id (`Claim.item.extension:certificationType`,
/// `Claim.item.serviced[x]:servicedDate`, `Claim.careTeam:ItemClaimMember.role`) into a
/// resource and collects the leaves it reaches.
fn ms_facts(
    bundle: &Value,
    profile: &str,
    p: &Profiles,
    id: &str,
    resource: &Value,
    out: &mut Facts,
) {
    let segs: Vec<&str> = id.split('.').collect();
    let mut nodes: Vec<(String, &Value, bool)> = vec![(segs[0].to_owned(), resource, false)];
    for (k, seg) in segs.iter().enumerate().skip(1) {
        let (name, slice) = match seg.split_once(':') {
            Some((n, s)) => (n, Some(s)),
            None => (*seg, None),
        };
        let prefix = segs[..=k].join(".");
        let mut next = vec![];
        for (path, node, in_ext) in nodes {
            let Value::Object(m) = node else { continue };
            if (name == "extension" || name == "modifierExtension") && slice.is_some() {
                let Some(url) = p.slice_urls.get(&format!("{profile}#{prefix}")) else {
                    continue;
                };
                for e in m.get(name).and_then(Value::as_array).into_iter().flatten() {
                    if e["url"].as_str() == Some(url) {
                        next.push((format!("{path}.{name}({url})"), e, true));
                    }
                }
                continue;
            }
            let keys: Vec<&String> = if let Some(base) = name.strip_suffix("[x]") {
                match slice {
                    Some(s) => m.keys().filter(|key| key.as_str() == s).collect(),
                    None => m
                        .keys()
                        .filter(|key| {
                            key.strip_prefix(base)
                                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_uppercase()))
                        })
                        .collect(),
                }
            } else {
                m.keys().filter(|key| key.as_str() == name).collect()
            };
            for key in keys {
                match &m[key] {
                    Value::Array(a) => {
                        for x in a {
                            next.push((format!("{path}.{key}"), x, in_ext));
                        }
                    }
                    x => next.push((format!("{path}.{key}"), x, in_ext)),
                }
            }
        }
        nodes = next;
    }
    for (path, node, in_ext) in nodes {
        leaves(bundle, node, path, in_ext, out);
    }
}

fn resource_facts(bundle: &Value, resource: &Value, profile: &str, p: &Profiles) -> Facts {
    let mut out = Facts::new();
    for id in p.ms.get(profile).into_iter().flatten() {
        ms_facts(bundle, profile, p, id, resource, &mut out);
    }
    out
}

/// Must-support facts that cannot survive, each with the reason. A fact is excluded when its
/// path starts with the prefix (and, when given, its value is the one named).
struct Exclusion {
    path: &'static str,
    value: Option<&'static str>,
    /// Only for this example file (a defect of that example).
    file: Option<&'static str>,
    why: &'static str,
}

const fn ex(path: &'static str, value: Option<&'static str>, why: &'static str) -> Exclusion {
    Exclusion {
        path,
        value,
        file: None,
        why,
    }
}

const SURGICAL: &str = "Bundle-SurgicalRequestBundleExample.json";
const SURGICAL_DEFECT: &str = "defect of the official example: PractitionerRole/SurgicalPractitionerRoleExample points at Practitioner/ReferralPractitionerExample and Location/ReferralLocationExample, which are not in the bundle (our validation reports both as not-found), so the care-team member has no name or identifier for an NM1 and the unreferenced Practitioner is not part of the request";

const EXCLUDED: &[Exclusion] = &[
    ex(
        "Claim.identifier.system",
        None,
        "TRN has no system: the trace number's value (TRN02) and originator (TRN03) are kept, written back as urn:trnorg:<TRN03>",
    ),
    ex(
        "Claim.identifier.assigner.identifier.system",
        None,
        "TRN03 keeps the assigner's identifier value, not its system",
    ),
    ex(
        "Organization.type.coding.code",
        Some("PR"),
        "the insurer is the 2010A UMO, whose NM101 is X3 in the 278; PR has no place there",
    ),
    ex(
        "Organization.type.coding.code",
        Some("X3"),
        "the requester is 2010B, whose NM101 is 1P or FA; the example's X3 (a UMO) is replaced by 1P with a warning",
    ),
    ex(
        "Patient.identifier.system",
        None,
        "a patient identifier other than the member id travels as REF*EJ, which has no system",
    ),
    ex(
        "Claim.supportingInfo.valueReference.reference",
        Some("DocumentReference"),
        "the document itself travels outside the 278 (a 275 or the attachment channel); PWK keeps its report type, transmission, control number and description",
    ),
    ex(
        "DocumentReference.",
        None,
        "the document itself travels outside the 278; PWK06 names it by its control number",
    ),
    ex(
        "PractitionerRole.location.reference",
        Some("Location"),
        "2010EA carries one address per provider; a separate service Location has no 278 loop in a request",
    ),
    ex(
        "Location.",
        None,
        "2010EA carries one address per provider; a separate service Location has no 278 loop in a request",
    ),
    ex(
        "Encounter.class.code",
        None,
        "CL1 has no encounter class; written back as IMP",
    ),
    Exclusion {
        path: "Claim.careTeam",
        value: None,
        file: Some(SURGICAL),
        why: SURGICAL_DEFECT,
    },
    Exclusion {
        path: "Claim.item.careTeamSequence",
        value: None,
        file: Some(SURGICAL),
        why: SURGICAL_DEFECT,
    },
    Exclusion {
        path: "PractitionerRole.",
        value: None,
        file: Some(SURGICAL),
        why: SURGICAL_DEFECT,
    },
    Exclusion {
        path: "Practitioner.",
        value: None,
        file: Some(SURGICAL),
        why: SURGICAL_DEFECT,
    },
];

fn excluded(path: &str, value: &str, file: &str) -> Option<&'static str> {
    EXCLUDED
        .iter()
        .find(|e| {
            path.starts_with(e.path)
                && e.value.is_none_or(|v| v == value)
                && e.file.is_none_or(|f| file.ends_with(f))
        })
        .map(|e| e.why)
}

/// Every must-support fact of every resource of `orig` is found in a resource of the same
/// type in `back`. Returns the facts lost (not excluded) and the excluded ones seen.
fn compare(
    orig: &Value,
    back: &Value,
    p: &Profiles,
    file: &str,
) -> (Vec<String>, BTreeSet<String>) {
    let mut lost = vec![];
    let mut used = BTreeSet::new();
    let back_entries = back["entry"].as_array().unwrap();
    for e in orig["entry"].as_array().unwrap() {
        let r = &e["resource"];
        let ty = r["resourceType"].as_str().unwrap();
        let profile = r
            .pointer("/meta/profile/0")
            .and_then(Value::as_str)
            .map(|s| s.split('|').next().unwrap().to_owned())
            .or_else(|| p.by_type.get(ty).cloned());
        let Some(profile) = profile.filter(|pr| p.ms.contains_key(pr)) else {
            continue;
        };
        let want = resource_facts(orig, r, &profile, p);
        let mut best: Option<Vec<(String, String)>> = None;
        for b in back_entries.iter().map(|e| &e["resource"]) {
            if b["resourceType"].as_str() != Some(ty) {
                continue;
            }
            let have = resource_facts(back, b, &profile, p);
            let missing: Vec<(String, String)> = want.difference(&have).cloned().collect();
            if best.as_ref().is_none_or(|m| missing.len() < m.len()) {
                best = Some(missing);
            }
        }
        let missing = best.unwrap_or_else(|| want.iter().cloned().collect());
        for (path, value) in missing {
            match excluded(&path, &value, file) {
                Some(why) => {
                    used.insert(format!("{path} = {value:?}: {why}"));
                }
                None => lost.push(format!("{path} = {value:?}")),
            }
        }
    }
    (lost, used)
}

#[test]
fn request_examples_keep_every_must_support_element_through_the_hub_and_x12() {
    let Some(p) = profiles() else { return };
    let ex = examples(PasKind::RequestBundle);
    assert!(
        ex.len() >= 7,
        "expected the request examples, found {}",
        ex.len()
    );
    let mut failures = vec![];
    let mut all_used = BTreeSet::new();
    let mut compared = 0;
    for (path, orig) in &ex {
        let hub = to_hub(orig);
        let t = Transmission::of(&bundle(orig));
        let direct = serde_json::to_value(bundle_from_request_with(&hub, t.as_ref())).unwrap();
        let (_, back, t_back) = via_x12(&hub, t.as_ref());
        let t_back = t.as_ref().map(|_| t_back);
        let through_x12 =
            serde_json::to_value(bundle_from_request_with(&back, t_back.as_ref())).unwrap();
        for (label, out) in [("hub", &direct), ("x12", &through_x12)] {
            let (lost, used) = compare(orig, out, &p, &name(path));
            compared += 1;
            all_used.extend(used);
            if !lost.is_empty() {
                failures.push(format!(
                    "{} via {label}:\n    {}",
                    name(path),
                    lost.join("\n    ")
                ));
            }
        }
    }
    let mut reasons: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for u in &all_used {
        let (fact, why) = u.split_once(": ").unwrap();
        reasons
            .entry(why)
            .or_default()
            .insert(fact.split(" = ").next().unwrap());
    }
    for (why, facts) in &reasons {
        eprintln!(
            "excluded ({why}):\n    {}",
            facts.iter().copied().collect::<Vec<_>>().join("\n    ")
        );
    }
    assert_eq!(compared, ex.len() * 2);
    assert!(
        failures.is_empty(),
        "must-support elements lost:\n{}",
        failures.join("\n")
    );
}
