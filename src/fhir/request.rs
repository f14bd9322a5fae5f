//! PAS request Bundle ($submit) <-> `AuthorizationRequest`.
//!
//! Reading resolves every reference inside the bundle, takes the parties from the insurer,
//! provider, Coverage and Patients, the event from the Claim and one service line per
//! `Claim.item`. Writing builds a bundle with `urn:uuid:` fullUrls derived from the request
//! (deterministic: the same request gives the same bundle).

use serde_json::{Number, Value, json};

use super::outcome::FhirIssue;
use super::types::Reference;
use super::types::*;
use super::{ext_url as u, system as sys};
use crate::domain::*;

/// Where the resources of a bundle are, for reference resolution.
pub struct RequestContext<'a> {
    pub bundle: &'a Bundle,
    keys: Vec<(String, usize)>,
}

fn type_id_suffix(url: &str) -> Option<&str> {
    // `.../Type/id` -> `Type/id` (also with a `_history/n` tail dropped).
    let url = match url.find("/_history/") {
        Some(i) => &url[..i],
        None => url,
    };
    let mut parts = url.rsplitn(3, '/');
    let id = parts.next()?;
    let ty = parts.next()?;
    if ty.is_empty() || !ty.as_bytes()[0].is_ascii_uppercase() || id.is_empty() {
        return None;
    }
    let start = url.len() - id.len() - ty.len() - 1;
    Some(&url[start..])
}

impl<'a> RequestContext<'a> {
    pub fn new(bundle: &'a Bundle) -> Self {
        let mut keys = Vec::new();
        for (i, e) in bundle.entry.iter().enumerate() {
            if let Some(f) = &e.full_url {
                keys.push((f.clone(), i));
                if let Some(s) = type_id_suffix(f)
                    && s != f
                {
                    keys.push((s.to_owned(), i));
                }
            } else if let Some(r) = &e.resource
                && let Some(id) = r.id()
            {
                keys.push((format!("{}/{}", r.resource_type(), id), i));
            }
        }
        RequestContext { bundle, keys }
    }
    /// The entries a reference string points at (exact fullUrl first, then `Type/id`).
    pub fn targets(&self, reference: &str) -> Vec<usize> {
        let exact: Vec<usize> = self
            .keys
            .iter()
            .filter(|(k, _)| k == reference)
            .map(|(_, i)| *i)
            .collect();
        let mut v = if !exact.is_empty() {
            exact
        } else if let Some(s) = type_id_suffix(reference) {
            self.keys
                .iter()
                .filter(|(k, _)| k == s)
                .map(|(_, i)| *i)
                .collect()
        } else {
            vec![]
        };
        v.sort_unstable();
        v.dedup();
        v
    }
    pub fn resolve(&self, r: Option<&Reference>) -> Option<(usize, &'a Resource)> {
        let s = r?.reference.as_deref()?;
        let t = self.targets(s);
        let i = *t.first()?;
        self.bundle.entry[i].resource.as_ref().map(|r| (i, r))
    }
}

struct Reader<'a> {
    ctx: RequestContext<'a>,
    issues: Vec<FhirIssue>,
}

// ------------------------------------------------------------------ small conversions

pub(crate) fn text(s: Option<&str>) -> Option<Text> {
    let s = s?.trim();
    if s.is_empty() {
        return None;
    }
    let s: String = s.chars().take(264).collect();
    Text::parse(&s).ok()
}

pub(crate) fn code(s: Option<&str>) -> Option<Code> {
    Code::parse(s?.trim()).ok()
}

/// A URI (an identifier or code system) kept whole: one that does not fit `Text` is not cut.
pub(crate) fn uri(s: Option<&str>) -> Option<Text> {
    Text::parse(s?).ok()
}

/// The offset of a FHIR dateTime or instant (`...+05:00`); `Z` or none is UTC (`None`).
fn fhir_offset(s: &str) -> Option<UtcOffset> {
    if s.len() <= 19 || s.ends_with('Z') {
        return None;
    }
    UtcOffset::parse(s.get(s.len() - 6..)?).ok()
}

fn system_code(c: &Coding) -> Option<SystemCode> {
    Some(SystemCode {
        system: uri(c.system.as_deref()),
        code: text(c.code.as_deref())?,
    })
}

fn fhir_coding(c: &SystemCode) -> Coding {
    Coding {
        system: c.system.as_ref().map(|s| s.to_string()),
        code: Some(c.code.to_string()),
        ..Default::default()
    }
}

fn system_identifier(i: &Identifier) -> Option<SystemIdentifier> {
    Some(SystemIdentifier {
        system: uri(i.system.as_deref()),
        value: text(i.value.as_deref())?,
    })
}

fn fhir_system_identifier(i: &SystemIdentifier) -> Identifier {
    Identifier {
        system: i.system.as_ref().map(|s| s.to_string()),
        value: Some(i.value.to_string()),
        ..Default::default()
    }
}

/// A JSON member of a resource read as one of our typed datatypes.
fn member<T: serde::de::DeserializeOwned>(m: &Extra, key: &str) -> Option<T> {
    serde_json::from_value(m.get(key)?.clone()).ok()
}

fn members<T: serde::de::DeserializeOwned>(m: &Extra, key: &str) -> Vec<T> {
    member::<Vec<T>>(m, key).unwrap_or_default()
}

/// A Location as a service site.
fn site(m: &Extra) -> Site {
    let kinds: Vec<CodeableConcept> = members(m, "type");
    let telecom: Vec<ContactPoint> = members(m, "telecom");
    Site {
        name: text(m.get("name").and_then(Value::as_str)),
        identifiers: members::<Identifier>(m, "identifier")
            .iter()
            .filter_map(system_identifier)
            .collect(),
        status: code(m.get("status").and_then(Value::as_str)),
        kinds: kinds
            .iter()
            .flat_map(|c| c.coding.iter())
            .filter_map(system_code)
            .collect(),
        address: member::<super::types::Address>(m, "address")
            .as_ref()
            .and_then(address),
        numbers: telecom
            .iter()
            .filter_map(|t| {
                Some(ContactNumber {
                    qualifier: Code::parse(telecom_qualifier(t.system.as_deref())).ok()?,
                    number: text(t.value.as_deref())?,
                })
            })
            .collect(),
    }
}

fn fhir_site(s: &Site) -> Value {
    let mut m = Extra::new();
    m.insert("resourceType".into(), json!("Location"));
    m.insert("meta".into(), profile("profile-location"));
    if !s.identifiers.is_empty() {
        let ids: Vec<Identifier> = s.identifiers.iter().map(fhir_system_identifier).collect();
        m.insert("identifier".into(), json!(ids));
    }
    if let Some(st) = &s.status {
        m.insert("status".into(), json!(st.as_str()));
    }
    if let Some(n) = &s.name {
        m.insert("name".into(), json!(n.as_str()));
    }
    if !s.kinds.is_empty() {
        let cc: Vec<CodeableConcept> = s
            .kinds
            .iter()
            .map(|k| CodeableConcept {
                coding: vec![fhir_coding(k)],
                ..Default::default()
            })
            .collect();
        m.insert("type".into(), json!(cc));
    }
    if !s.numbers.is_empty() {
        let t: Vec<ContactPoint> = s
            .numbers
            .iter()
            .map(|n| ContactPoint {
                system: Some(telecom_system(n.qualifier.as_str()).to_owned()),
                value: Some(n.number.to_string()),
                ..Default::default()
            })
            .collect();
        m.insert("telecom".into(), json!(t));
    }
    if let Some(a) = &s.address {
        m.insert("address".into(), json!(fhir_address(a)));
    }
    Value::Object(m)
}

/// A DocumentReference as a document.
fn document(m: &Extra) -> Document {
    let cc = |key: &str| -> Vec<SystemCode> {
        let v: Vec<CodeableConcept> = if key == "type" {
            member::<CodeableConcept>(m, key).into_iter().collect()
        } else {
            members(m, key)
        };
        v.iter()
            .flat_map(|c| c.coding.iter())
            .filter_map(system_code)
            .collect()
    };
    let content = m
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let a = c.get("attachment");
            let s = |k: &str| {
                a.and_then(|a| a.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            DocumentContent {
                content_type: text(s("contentType").as_deref()),
                data: s("data"),
                url: s("url"),
                format: c
                    .get("format")
                    .and_then(|f| serde_json::from_value::<Coding>(f.clone()).ok())
                    .as_ref()
                    .and_then(system_code),
            }
        })
        .collect();
    Document {
        identifiers: members::<Identifier>(m, "identifier")
            .iter()
            .filter_map(system_identifier)
            .collect(),
        status: m
            .get("status")
            .and_then(Value::as_str)
            .and_then(DocumentStatus::parse)
            .unwrap_or_default(),
        kinds: cc("type"),
        categories: cc("category"),
        date: text(m.get("date").and_then(Value::as_str)),
        period: m
            .get("context")
            .and_then(|c| c.get("period"))
            .and_then(|p| serde_json::from_value::<Period>(p.clone()).ok())
            .as_ref()
            .and_then(period_range),
        content,
    }
}

fn fhir_document(d: &Document, subject: Option<&Reference>) -> Value {
    let mut m = Extra::new();
    m.insert("resourceType".into(), json!("DocumentReference"));
    m.insert("meta".into(), profile("profile-documentreference"));
    if !d.identifiers.is_empty() {
        let ids: Vec<Identifier> = d.identifiers.iter().map(fhir_system_identifier).collect();
        m.insert("identifier".into(), json!(ids));
    }
    m.insert("status".into(), json!(d.status.as_str()));
    let cc = |v: &[SystemCode]| CodeableConcept {
        coding: v.iter().map(fhir_coding).collect(),
        ..Default::default()
    };
    if !d.kinds.is_empty() {
        m.insert("type".into(), json!(cc(&d.kinds)));
    }
    if !d.categories.is_empty() {
        let cats: Vec<CodeableConcept> = d
            .categories
            .iter()
            .map(|c| cc(std::slice::from_ref(c)))
            .collect();
        m.insert("category".into(), json!(cats));
    }
    if let Some(s) = subject {
        m.insert("subject".into(), json!(s));
    }
    if let Some(t) = &d.date {
        m.insert("date".into(), json!(t.as_str()));
    }
    let content: Vec<Value> = d
        .content
        .iter()
        .map(|c| {
            let mut a = Extra::new();
            if let Some(t) = &c.content_type {
                a.insert("contentType".into(), json!(t.as_str()));
            }
            if let Some(x) = &c.data {
                a.insert("data".into(), json!(x));
            }
            if let Some(x) = &c.url {
                a.insert("url".into(), json!(x));
            }
            let mut o = json!({ "attachment": a });
            if let Some(f) = &c.format {
                o["format"] = json!(fhir_coding(f));
            }
            o
        })
        .collect();
    // A DocumentReference has at least one content; a document known only by its metadata
    // says so with a data-absent attachment.
    m.insert(
        "content".into(),
        if content.is_empty() {
            json!([{ "attachment": { "extension": [{
                "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                "valueCode": "unknown"
            }] } }])
        } else {
            json!(content)
        },
    );
    if let Some(p) = &d.period {
        m.insert("context".into(), json!({ "period": range_period(p) }));
    }
    Value::Object(m)
}

/// `YYYY-MM-DD` (or the date part of a dateTime).
pub(crate) fn fhir_date(s: &str) -> Option<Date> {
    Date::parse(s.get(..10)?).ok()
}

/// The `hh:mm[:ss]` part of a dateTime, as X12 writes it.
fn fhir_time(s: &str) -> Option<Time> {
    let t = s.get(11..19)?;
    Time::parse(&t.replace(':', "")).ok()
}

fn number_decimal(n: &Number) -> Option<Decimal> {
    Decimal::parse(&n.to_string()).ok()
}

/// A decimal as a JSON number, digits kept. JSON has no leading zeros (X12 allows `007.50`),
/// so those are dropped: the value is the same.
pub(crate) fn decimal_number(d: &Decimal) -> Number {
    let s = d.as_str();
    let (sign, body) = match s.strip_prefix('-') {
        Some(b) => ("-", b),
        None => ("", s),
    };
    let trimmed = body.trim_start_matches('0');
    let body = if trimmed.is_empty() || trimmed.starts_with('.') {
        format!("0{trimmed}")
    } else {
        trimmed.to_owned()
    };
    let text = format!("{sign}{body}");
    serde_json::from_str(&text).unwrap_or_else(|_| Number::from(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_become_json_numbers_with_their_digits() {
        for (x12, json) in [
            ("007.50", "7.50"),
            ("00", "0"),
            ("-0.10", "-0.10"),
            ("150.00", "150.00"),
            (".5", "0.5"),
        ] {
            let d = Decimal::parse(x12).unwrap();
            assert_eq!(decimal_number(&d).to_string(), json, "{x12}");
        }
    }
}

fn period_range(p: &Period) -> Option<DateOrRange> {
    let s = p.start.as_deref().and_then(fhir_date);
    let e = p.end.as_deref().and_then(fhir_date);
    match (s, e) {
        (Some(s), Some(e)) if s == e => Some(DateOrRange::Range(DateRange::new(s, e).ok()?)),
        (Some(s), Some(e)) => DateRange::new(s, e).ok().map(DateOrRange::Range),
        (Some(s), None) | (None, Some(s)) => Some(DateOrRange::Date(s)),
        _ => None,
    }
}

fn range_period(d: &DateOrRange) -> Period {
    match d {
        DateOrRange::Date(d) => Period {
            start: Some(d.to_string()),
            end: Some(d.to_string()),
            ..Default::default()
        },
        DateOrRange::Range(r) => Period {
            start: Some(r.start.to_string()),
            end: Some(r.end.to_string()),
            ..Default::default()
        },
    }
}

fn gender_code(g: &str) -> &'static str {
    match g {
        "male" => "M",
        "female" => "F",
        _ => "U",
    }
}

fn gender_word(g: &str) -> &'static str {
    match g {
        "M" => "male",
        "F" => "female",
        _ => "unknown",
    }
}

fn relationship_from_fhir(c: &CodeableConcept) -> Option<&'static str> {
    Some(match c.code_in(sys::SUBSCRIBER_RELATIONSHIP)? {
        "self" => "18",
        "spouse" => "01",
        "child" => "19",
        "parent" => "32",
        "common" => "53",
        "injured" => "41",
        _ => "G8",
    })
}

fn relationship_to_fhir(x12: &str) -> &'static str {
    match x12 {
        "18" => "self",
        "01" => "spouse",
        "19" => "child",
        "32" => "parent",
        "53" => "common",
        "41" => "injured",
        _ => "other",
    }
}

fn telecom_qualifier(system: Option<&str>) -> &'static str {
    match system {
        Some("fax") => "FX",
        Some("email") => "EM",
        Some("url") => "UR",
        _ => "TE",
    }
}

fn telecom_system(q: &str) -> &'static str {
    match q {
        "FX" => "fax",
        "EM" => "email",
        "UR" => "url",
        _ => "phone",
    }
}

fn address(a: &super::types::Address) -> Option<crate::domain::Address> {
    let out = crate::domain::Address {
        lines: a
            .line
            .iter()
            .filter_map(|l| text(Some(l)))
            .take(2)
            .collect(),
        city: text(a.city.as_deref()),
        state: code(a.state.as_deref()),
        postal_code: a
            .postal_code
            .as_deref()
            .and_then(|p| code(Some(&p.replace('-', "")))),
        country: code(a.country.as_deref()),
        country_subdivision: code(a.district.as_deref()),
    };
    let empty = out.lines.is_empty()
        && out.city.is_none()
        && out.state.is_none()
        && out.postal_code.is_none()
        && out.country.is_none()
        && out.country_subdivision.is_none();
    (!empty).then_some(out)
}

fn fhir_address(a: &crate::domain::Address) -> super::types::Address {
    super::types::Address {
        line: a.lines.iter().map(|l| l.to_string()).collect(),
        city: a.city.as_ref().map(|c| c.to_string()),
        district: a.country_subdivision.as_ref().map(|c| c.to_string()),
        state: a.state.as_ref().map(|c| c.to_string()),
        postal_code: a.postal_code.as_ref().map(|c| c.to_string()),
        country: a.country.as_ref().map(|c| c.to_string()),
        extra: Default::default(),
    }
}

fn contacts(telecom: &[ContactPoint], name: Option<Text>) -> Option<Contact> {
    let numbers: Vec<ContactNumber> = telecom
        .iter()
        .filter_map(|t| {
            Some(ContactNumber {
                qualifier: Code::parse(telecom_qualifier(t.system.as_deref())).ok()?,
                number: text(t.value.as_deref())?,
            })
        })
        .take(3)
        .collect();
    if numbers.is_empty() && name.is_none() {
        return None;
    }
    Some(Contact {
        function: Code::parse("IC").expect("IC is a code"),
        name,
        numbers,
    })
}

fn fhir_telecom(c: &Contact) -> Vec<ContactPoint> {
    c.numbers
        .iter()
        .map(|n| ContactPoint {
            system: Some(telecom_system(n.qualifier.as_str()).to_owned()),
            value: Some(n.number.to_string()),
            ..Default::default()
        })
        .collect()
}

/// An identifier of a provider or payer as NM108/NM109.
fn identification(ids: &[Identifier]) -> Option<Identification> {
    let find = |s: &str| {
        ids.iter()
            .find(|i| i.system.as_deref() == Some(s))
            .and_then(|i| i.value.as_deref())
    };
    if let Some(v) = find(sys::NPI) {
        return Some(match Npi::parse(v) {
            Ok(n) => Identification::Npi(n),
            Err(_) => Identification::Other {
                qualifier: Code::parse("XX").ok()?,
                value: text(Some(v))?,
            },
        });
    }
    // Our own writing of other NM108 qualifiers: `urn:x12:NM108:<qualifier>`.
    for i in ids {
        if let (Some(q), Some(v)) = (
            i.system
                .as_deref()
                .and_then(|s| s.strip_prefix("urn:x12:NM108:")),
            i.value.as_deref(),
        ) {
            return Some(match q {
                "MI" => Identification::MemberId(MemberId::parse(v).ok()?),
                "XX" => match Npi::parse(v) {
                    Ok(n) => Identification::Npi(n),
                    Err(_) => Identification::Other {
                        qualifier: Code::parse("XX").ok()?,
                        value: text(Some(v))?,
                    },
                },
                q => Identification::Other {
                    qualifier: Code::parse(q).ok()?,
                    value: text(Some(v))?,
                },
            });
        }
    }
    let ein = ids.iter().any(|i| {
        i.system.as_deref() == Some(sys::TIN)
            && i.type_.as_ref().and_then(|t| t.code_in(sys::V2_0203)) == Some("EN")
    });
    for (s, q) in [(sys::TIN, if ein { "24" } else { "FI" }), (sys::NAIC, "NI")] {
        if let Some(v) = find(s) {
            return Some(Identification::Other {
                qualifier: Code::parse(q).ok()?,
                value: text(Some(v))?,
            });
        }
    }
    // A payer id (type PI / PRN) or any other identifier with a value.
    let i = ids.iter().find(|i| {
        i.type_
            .as_ref()
            .and_then(|t| t.code_in(sys::V2_0203))
            .is_some_and(|c| c == "PI" || c == "PRN" || c == "NIIP")
    })?;
    Some(Identification::Other {
        qualifier: Code::parse("PI").ok()?,
        value: text(i.value.as_deref())?,
    })
}

/// The system of the identifier `id` was read from, when it is not the one its qualifier
/// implies (NPI, TIN, NAIC, or our `urn:x12:NM108:` form).
fn id_system(ids: &[Identifier], id: Option<&Identification>) -> Option<Text> {
    let id = id?;
    let s = ids
        .iter()
        .find(|i| i.value.as_deref().map(str::trim) == Some(id.value()))?
        .system
        .as_deref()?;
    if [sys::NPI, sys::TIN, sys::NAIC].contains(&s) || s.starts_with("urn:x12:NM108:") {
        return None;
    }
    uri(Some(s))
}

/// The identifiers of an entity: its NM108/NM109 in FHIR form, in its own system if it had one.
fn entity_identifiers(e: &Entity) -> Vec<Identifier> {
    let mut ids = e.id.as_ref().map(fhir_identifiers).unwrap_or_default();
    if let (Some(s), Some(first)) = (&e.id_system, ids.first_mut()) {
        first.system = Some(s.to_string());
    }
    ids
}

fn fhir_identifiers(id: &Identification) -> Vec<Identifier> {
    match id {
        Identification::Npi(n) => vec![Identifier::new(sys::NPI, n.as_str())],
        Identification::MemberId(m) => vec![Identifier::new("urn:x12:NM108:MI", m.as_str())],
        Identification::Other { qualifier, value } => vec![match qualifier.as_str() {
            "XX" => Identifier::new(sys::NPI, value.as_str()),
            "FI" => Identifier::new(sys::TIN, value.as_str()),
            "24" => {
                // An EIN: the TIN system, typed as an employer number.
                let mut i = Identifier::new(sys::TIN, value.as_str());
                i.type_ = Some(CodeableConcept::new(sys::V2_0203, "EN"));
                i
            }
            "NI" => Identifier::new(sys::NAIC, value.as_str()),
            q => {
                let mut i = Identifier::new(&format!("urn:x12:NM108:{q}"), value.as_str());
                if q == "PI" {
                    i.type_ = Some(CodeableConcept::new(sys::V2_0203, "PI"));
                }
                i
            }
        }],
    }
}

fn person_name(e: &mut Entity, n: &HumanName) {
    e.name = text(n.family.as_deref());
    e.first_name = text(n.given.first().map(String::as_str));
    e.middle_name = text(n.given.get(1).map(String::as_str));
    e.prefix = text(n.prefix.first().map(String::as_str));
    e.suffix = text(n.suffix.first().map(String::as_str));
}

fn fhir_name(e: &Entity) -> Option<HumanName> {
    e.name.as_ref()?;
    let mut given = vec![];
    if let Some(f) = &e.first_name {
        given.push(f.to_string());
    }
    if let Some(m) = &e.middle_name {
        given.push(m.to_string());
    }
    Some(HumanName {
        family: e.name.as_ref().map(|n| n.to_string()),
        given,
        prefix: e.prefix.iter().map(|p| p.to_string()).collect(),
        suffix: e.suffix.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    })
}

fn entity(role: &str, kind: EntityType) -> Entity {
    Entity::new(role, kind).expect("role codes are valid")
}

fn cc_code(c: Option<&CodeableConcept>, system: &str) -> Option<Code> {
    code(c?.code_in(system))
}

fn ext_cc_code(list: &[Extension], url: &str, system: &str) -> Option<String> {
    let e = ext(list, url)?.value_cc()?;
    e.code_in(system)
        .or_else(|| e.first().and_then(|c| c.code.as_deref()))
        .map(str::to_owned)
}

// ------------------------------------------------------------------ reading

impl<'a> Reader<'a> {
    fn err(&mut self, path: String, msg: impl Into<String>) {
        self.issues.push(FhirIssue::error("required", path, msg));
    }
    fn warn(&mut self, code: &'static str, path: String, msg: impl Into<String>) {
        self.issues.push(FhirIssue::warning(code, path, msg));
    }
    fn path(&self, i: usize) -> String {
        format!("Bundle.entry[{i}].resource")
    }

    /// An Organization as an NM1 entity. `allowed` are the NM101 codes of the loop: an
    /// Organization.type outside them (e.g. PR on the insurer, whose 2010A NM101 is always X3)
    /// gives way to `default_role`.
    fn org_entity(&mut self, o: &Organization, default_role: &str, allowed: &[&str]) -> Entity {
        let given = o.type_.iter().find_map(|t| t.code_in(sys::X12_ENTITY));
        let role = given
            .filter(|c| allowed.is_empty() || allowed.contains(c))
            .unwrap_or(default_role);
        let mut e = Entity::new(role, EntityType::Organization)
            .unwrap_or_else(|_| entity(default_role, EntityType::Organization));
        // A type that is not an NM101 of this loop (PR on the insurer, X3 on a requester) is
        // the party's own word for itself: the hub keeps it beside the loop's code.
        e.stated_role = given.filter(|g| *g != role).and_then(|g| code(Some(g)));
        e.name = text(o.name.as_deref());
        e.id = identification(&o.identifier);
        e.id_system = id_system(&o.identifier, e.id.as_ref());
        e.address = o.address.first().and_then(address);
        e.contacts.extend(contacts(&o.telecom, None));
        for c in &o.contact {
            let name = c
                .name
                .as_ref()
                .and_then(|n| n.text.as_deref().or(n.family.as_deref()));
            e.contacts.extend(contacts(&c.telecom, text(name)));
        }
        e
    }

    fn practitioner_entity(
        &mut self,
        p: Option<&Practitioner>,
        role: Option<&PractitionerRole>,
        default_role: &str,
    ) -> Entity {
        let r = role
            .and_then(|r| r.code.iter().find_map(|c| c.code_in(sys::X12_ENTITY)))
            .unwrap_or(default_role);
        let mut e = Entity::new(r, EntityType::Person)
            .unwrap_or_else(|_| entity(default_role, EntityType::Person));
        if let Some(p) = p {
            if let Some(n) = p.name.first() {
                person_name(&mut e, n);
            }
            e.id = identification(&p.identifier);
            e.id_system = id_system(&p.identifier, e.id.as_ref());
            e.address = p.address.first().and_then(address);
        }
        if let Some(role) = role {
            for (k, l) in role.location.iter().enumerate() {
                match self.ctx.resolve(Some(l)) {
                    Some((_, Resource::Other(m)))
                        if m.get("resourceType").and_then(Value::as_str) == Some("Location") =>
                    {
                        e.locations.push(site(m));
                    }
                    _ => self.warn(
                        "not-found",
                        format!(
                            "Bundle.entry.resource.ofType(PractitionerRole).where(id = '{}').location[{k}]",
                            role.id.as_deref().unwrap_or("?")
                        ),
                        "the location is not a Location in the bundle and is not carried",
                    ),
                }
            }
        }
        // One PER for the person: the practitioner's numbers, then the role's new ones
        // (X12 allows one PER in a provider name loop, with up to three numbers).
        let mut telecom: Vec<ContactPoint> = p.map(|p| p.telecom.clone()).unwrap_or_default();
        for t in role.iter().flat_map(|r| r.telecom.iter()) {
            if !telecom.iter().any(|x| x.value == t.value) {
                telecom.push(t.clone());
            }
        }
        e.contacts.extend(contacts(&telecom, None));
        if let Some(role) = role
            && let Some(t) = role.specialty.iter().find_map(|s| s.code_in(sys::NUCC))
        {
            e.provider_info = code(Some(t)).map(|taxonomy| ProviderInfo {
                role: Code::parse("PE").expect("PE"),
                qualifier: Code::parse("PXC").expect("PXC"),
                taxonomy,
            });
        }
        e
    }

    /// A provider of any kind (Organization, PractitionerRole, Practitioner) as an entity.
    fn provider(
        &mut self,
        r: Option<&Reference>,
        path: String,
        default_role: &str,
        allowed: &[&str],
    ) -> Option<Entity> {
        let Some((i, res)) = self.ctx.resolve(r) else {
            self.err(
                path,
                "the reference does not resolve to an entry of the bundle",
            );
            return None;
        };
        Some(match res {
            Resource::Organization(o) => self.org_entity(o, default_role, allowed),
            Resource::PractitionerRole(pr) => {
                let p = match self.ctx.resolve(pr.practitioner.as_ref()) {
                    Some((_, Resource::Practitioner(p))) => Some(&**p),
                    _ => {
                        self.warn(
                            "not-found",
                            format!("{}.practitioner", self.path(i)),
                            "the practitioner is not in the bundle",
                        );
                        None
                    }
                };
                self.practitioner_entity(p, Some(pr), default_role)
            }
            Resource::Practitioner(p) => self.practitioner_entity(Some(p), None, default_role),
            other => {
                self.issues.push(FhirIssue::error(
                    "invalid",
                    path,
                    format!(
                        "expected an Organization, PractitionerRole or Practitioner, found {}",
                        other.resource_type()
                    ),
                ));
                return None;
            }
        })
    }

    fn patient_entity(&mut self, p: &Patient, role: &str) -> Entity {
        let mut e = entity(role, EntityType::Person);
        if let Some(n) = p.name.first() {
            person_name(&mut e, n);
        }
        e.address = p.address.first().and_then(address);
        let birth = p.birth_date.as_deref().and_then(fhir_date);
        let gender = p
            .gender
            .as_deref()
            .map(gender_code)
            .and_then(|g| code(Some(g)));
        if birth.is_some() || gender.is_some() {
            e.demographics = Some(Demographics {
                birth_date: birth,
                gender,
            });
        }
        e.contacts.extend(contacts(&p.telecom, None));
        e
    }
}

/// Reads a PAS request bundle into the hub. Returns the request when the essentials are there,
/// with every problem found (errors and warnings) located by FHIRPath.
pub fn request_from_bundle(bundle: &Bundle) -> (Option<AuthorizationRequest>, Vec<FhirIssue>) {
    let mut r = Reader {
        ctx: RequestContext::new(bundle),
        issues: vec![],
    };
    let out = read_request(&mut r);
    (out, r.issues)
}

fn read_request(r: &mut Reader) -> Option<AuthorizationRequest> {
    let bundle = r.ctx.bundle;
    let Some(Resource::Claim(claim)) = bundle.entry.first().and_then(|e| e.resource.as_ref())
    else {
        r.issues.push(FhirIssue::error(
            "structure",
            "Bundle.entry[0].resource",
            "the first entry of a PAS request bundle must be a Claim",
        ));
        return None;
    };
    let cp = "Bundle.entry[0].resource";
    let submitter_reference = bundle
        .identifier
        .as_ref()
        .and_then(|i| text(i.value.as_deref()))
        .or_else(|| {
            claim
                .identifier
                .first()
                .and_then(|i| text(i.value.as_deref()))
        });
    let Some(submitter_reference) = submitter_reference else {
        r.err(
            "Bundle.identifier".into(),
            "the bundle has no identifier value (BHT03)",
        );
        return None;
    };
    let submitter_reference_system = match &bundle.identifier {
        Some(i) if text(i.value.as_deref()).is_some() => i.system.as_deref(),
        _ => claim.identifier.first().and_then(|i| i.system.as_deref()),
    }
    .filter(|s| *s != "urn:x12:BHT03")
    .and_then(|s| uri(Some(s)));
    let stamp = bundle.timestamp.as_deref().or(claim.created.as_deref());

    // Parties.
    let umo = match r.ctx.resolve(claim.insurer.as_ref()) {
        Some((_, Resource::Organization(o))) => Some(r.org_entity(o, "X3", &["X3"])),
        Some((i, other)) => {
            let t = other.resource_type().to_owned();
            r.issues.push(FhirIssue::error(
                "invalid",
                format!("{cp}.insurer"),
                format!("the insurer must be an Organization, entry {i} is a {t}"),
            ));
            None
        }
        None => {
            r.err(
                format!("{cp}.insurer"),
                "the insurer is missing or not in the bundle",
            );
            None
        }
    };
    let requester = r.provider(
        claim.provider.as_ref(),
        format!("{cp}.provider"),
        "1P",
        &["1P", "FA"],
    );

    let coverage = claim
        .insurance
        .iter()
        .find(|i| i.focal != Some(false))
        .and_then(|i| match r.ctx.resolve(i.coverage.as_ref()) {
            Some((_, Resource::Coverage(c))) => Some(&**c),
            _ => None,
        });
    if coverage.is_none() {
        r.err(
            format!("{cp}.insurance"),
            "Claim.insurance.coverage must point to a Coverage in the bundle",
        );
    }
    let beneficiary = match r.ctx.resolve(claim.patient.as_ref()) {
        Some((_, Resource::Patient(p))) => Some(&**p),
        _ => {
            r.err(
                format!("{cp}.patient"),
                "the patient is missing or not a Patient in the bundle",
            );
            None
        }
    };
    let rel = coverage
        .and_then(|c| c.relationship.as_ref())
        .and_then(|c| {
            c.code_in(sys::X12_RELATIONSHIP)
                .map(str::to_owned)
                .or_else(|| relationship_from_fhir(c).map(str::to_owned))
        })
        .unwrap_or_else(|| "18".to_owned());
    let subscriber_patient = coverage
        .and_then(|c| c.subscriber.as_ref())
        .and_then(|s| match r.ctx.resolve(Some(s)) {
            Some((_, Resource::Patient(p))) => Some(&**p),
            _ => None,
        })
        .or(if rel == "18" { beneficiary } else { None });
    let member_system = coverage
        .and_then(|c| {
            c.identifier.iter().find(|i| {
                i.type_
                    .as_ref()
                    .is_some_and(|t| t.code_in(sys::V2_0203) == Some("MB"))
                    || (i.value.is_some() && i.value == c.subscriber_id)
            })
        })
        .and_then(|i| i.system.as_deref());
    let member = coverage.and_then(|c| {
        c.subscriber_id.clone().or_else(|| {
            c.identifier
                .iter()
                .find(|i| {
                    i.type_
                        .as_ref()
                        .is_some_and(|t| t.code_in(sys::V2_0203) == Some("MB"))
                })
                .and_then(|i| i.value.clone())
        })
    });
    let member = member.or_else(|| {
        let p = subscriber_patient?;
        let v = p.identifier.iter().find_map(|i| i.value.clone())?;
        r.warn(
            "incomplete",
            "Bundle.entry.resource.ofType(Coverage).subscriberId".into(),
            "the Coverage has no member id; the subscriber Patient's identifier is used",
        );
        Some(v)
    });
    let mut subscriber = match subscriber_patient {
        Some(p) => r.patient_entity(p, "IL"),
        None => entity("IL", EntityType::Person),
    };
    subscriber.id = member
        .as_deref()
        .and_then(|m| MemberId::parse(m.trim()).ok())
        .map(Identification::MemberId);
    if subscriber.id.is_none() {
        r.err(
            "Bundle.entry.resource.ofType(Coverage).subscriberId".into(),
            "the Coverage has no member id (subscriberId or an identifier of type MB)",
        );
    }
    // The member id's system: the Coverage's, else that of the subscriber's own identifier
    // with the member id's value.
    subscriber.id_system = member_system
        .or_else(|| {
            let m = member.as_deref()?.trim();
            subscriber_patient?
                .identifier
                .iter()
                .find(|i| i.value.as_deref().map(str::trim) == Some(m))?
                .system
                .as_deref()
        })
        .filter(|s| *s != "urn:x12:NM108:MI")
        .and_then(|s| uri(Some(s)));
    if let Some(p) = subscriber_patient {
        push_patient_refs(&mut subscriber, p);
    }
    let mut dependent = None;
    if rel != "18" {
        if let Some(b) = beneficiary {
            let mut d = r.patient_entity(b, "QC");
            d.relationship = Code::parse(&rel).ok().map(|code| Relationship {
                is_subscriber: false,
                code,
                birth_sequence: None,
            });
            push_patient_refs(&mut d, b);
            dependent = Some(d);
        }
    } else {
        subscriber.relationship = Some(Relationship {
            is_subscriber: true,
            code: Code::parse("18").expect("18"),
            birth_sequence: None,
        });
    }

    // Event.
    let first_item = claim.item.first();
    let item_code = |it: Option<&ClaimItem>, url: &str, system: &str| {
        it.and_then(|i| ext_cc_code(&i.extension, url, system))
    };
    let category = item_code(first_item, u::REQUEST_TYPE, sys::X12_REQUEST_CATEGORY)
        .and_then(|c| RequestCategory::from_code(&c));
    let cert = ext_cc_code(
        &claim.extension,
        u::CERTIFICATION_TYPE,
        sys::X12_CERTIFICATION_TYPE,
    )
    .or_else(|| {
        item_code(
            first_item,
            u::CERTIFICATION_TYPE,
            sys::X12_CERTIFICATION_TYPE,
        )
    })
    .and_then(|c| CertificationType::from_code(&c));
    let (Some(category), Some(certification_type)) = (category, cert) else {
        r.err(
            format!("{cp}.item[0].extension"),
            "the first item needs serviceItemRequestType (UM01) and certificationType (UM02) with X12 codes",
        );
        return None;
    };
    let level_of_service = ext_cc_code(
        &claim.extension,
        u::LEVEL_OF_SERVICE,
        sys::X12_LEVEL_OF_SERVICE,
    )
    .and_then(|c| LevelOfService::from_code(&c));
    let related_causes = claim.accident.as_ref().and_then(|a| {
        let causes: Vec<Code> = a
            .type_
            .iter()
            .flat_map(|t| t.coding.iter())
            .filter_map(|c| code(c.code.as_deref()))
            .take(3)
            .collect();
        (!causes.is_empty()).then(|| RelatedCauses {
            causes,
            state: a
                .location_address
                .as_ref()
                .and_then(|l| code(l.state.as_deref())),
            country: a
                .location_address
                .as_ref()
                .and_then(|l| code(l.country.as_deref())),
        })
    });
    let review = ReviewInfo {
        category,
        certification_type,
        service_type: first_item.and_then(|i| cc_code(i.category.as_ref(), sys::X12_SERVICE_TYPE)),
        location: first_item.and_then(|i| location(i.location_codeable_concept.as_ref())),
        related_causes,
        level_of_service,
        release_of_information: None,
    };
    let mut event = PatientEvent {
        trace_numbers: claim
            .identifier
            .iter()
            .filter_map(|i| trace_number(i, None))
            .take(2)
            .collect(),
        review,
        references: refs_from(&claim.extension),
        dates: vec![],
        diagnoses: vec![],
        quantity: None,
        conditions: vec![],
        institutional: None,
        clinical: vec![],
        attachments: vec![],
        message: None,
        providers: vec![],
    };
    if event.trace_numbers.is_empty() {
        r.warn(
            "required",
            format!("{cp}.identifier"),
            "no Claim.identifier could be read as a trace number (TRN): it needs a value and an originator (urn:trnorg:<id> system or an assigner identifier)",
        );
    }
    if let Some(a) = &claim.accident
        && let Some(d) = a.date.as_deref().and_then(fhir_date)
    {
        event.dates.push(EventDate {
            qualifier: Code::parse("439").expect("439"),
            date: DateOrRange::Date(d),
        });
    }
    for (k, si) in claim.supporting_info.iter().enumerate() {
        let cat = si
            .category
            .as_ref()
            .and_then(|c| c.code_in(sys::PAS_TEMP))
            .unwrap_or("");
        let when = si
            .timing_period
            .as_ref()
            .and_then(period_range)
            .or_else(|| {
                si.timing_date
                    .as_deref()
                    .and_then(fhir_date)
                    .map(DateOrRange::Date)
            });
        let before = event.attachments.len();
        let q = match cat {
            "patientEvent" => Some("AAH"),
            "admissionDates" => Some("435"),
            "dischargeDates" => Some("096"),
            _ => None,
        };
        match (q, cat) {
            (Some(q), _) => match when {
                Some(date) => event.dates.push(EventDate {
                    qualifier: Code::parse(q).expect("qualifier"),
                    date,
                }),
                None => r.err(
                    format!("{cp}.supportingInfo[{k}].timing"),
                    "a dated supportingInfo needs timingDate or timingPeriod",
                ),
            },
            (None, "additionalInformation") => {
                if let Some(d) = ext(&si.extension, u::DOCUMENT_INFORMATION) {
                    let part = |n: &str, s: &str| {
                        d.part(n).and_then(|p| p.value_cc()).and_then(|c| {
                            code(
                                c.code_in(s)
                                    .or_else(|| c.first().and_then(|x| x.code.as_deref())),
                            )
                        })
                    };
                    if let (Some(report_type), Some(transmission)) = (
                        part("reportTypeCode", sys::X12_REPORT_TYPE),
                        part("transmissionMethod", sys::X12_TRANSMISSION),
                    ) {
                        event.attachments.push(Attachment {
                            report_type,
                            transmission,
                            control_number: text(
                                d.part("controlNumber").and_then(|p| p.value_str()),
                            ),
                            description: text(d.part("description").and_then(|p| p.value_str())),
                            document: supporting_document(r, si),
                        });
                    }
                }
                if event.attachments.len() == before && si.value_reference.is_some() {
                    r.warn(
                        "not-supported",
                        format!("{cp}.supportingInfo[{k}].valueReference"),
                        "a document is carried with the documentInformation extension (report type and transmission method) that names it; this one has none and is not carried",
                    );
                }
            }
            (None, "freeFormMessage") | (None, "messageText") => {
                event.message = text(si.value_string.as_deref());
            }
            _ => {}
        }
        // X12 free text holds 264 characters: say so when more is cut.
        let long = si
            .value_string
            .iter()
            .chain(
                ext(&si.extension, u::DOCUMENT_INFORMATION)
                    .and_then(|d| d.part("description"))
                    .and_then(|p| p.value_str().map(str::to_owned))
                    .iter(),
            )
            .any(|t| t.trim().chars().count() > 264);
        if long {
            r.warn(
                "too-long",
                format!("{cp}.supportingInfo[{k}]"),
                "text longer than the 264 characters X12 carries is cut to 264",
            );
        }
        let description_len = ext(&si.extension, u::DOCUMENT_INFORMATION)
            .and_then(|d| d.part("description"))
            .and_then(|p| p.value_str().map(|t| t.trim().chars().count()))
            .unwrap_or(0);
        if description_len > crate::x12::tx278::PWK07_MAX {
            r.warn(
                "too-long",
                format!("{cp}.supportingInfo[{k}].extension(documentInformation).description"),
                "a 278 carries the first 80 characters of an attachment description (PWK07)",
            );
        }
        match (q, cat) {
            (Some(_), _)
            | (None, "additionalInformation")
            | (None, "freeFormMessage")
            | (None, "messageText") => {}
            _ => r.warn(
                "not-supported",
                format!("{cp}.supportingInfo[{k}].category"),
                format!(
                    "supportingInfo category {cat:?} has no 278 counterpart and is not carried"
                ),
            ),
        }
    }
    let mut diags: Vec<&ClaimDiagnosis> = claim.diagnosis.iter().collect();
    diags.sort_by_key(|d| d.sequence.as_ref().and_then(seq).unwrap_or(u32::MAX));
    for (k, d) in diags.iter().enumerate().take(12) {
        let Some(cc) = &d.diagnosis_codeable_concept else {
            r.warn(
                "not-supported",
                format!("{cp}.diagnosis[{k}]"),
                "only diagnosisCodeableConcept is carried to X12 HI",
            );
            continue;
        };
        let dtype = d
            .type_
            .iter()
            .find_map(|t| t.first().and_then(|c| c.code.as_deref()));
        let qualifier = match dtype {
            Some("admitting") => DiagnosisQualifier::Admitting,
            Some("patientreasonforvisit") => DiagnosisQualifier::PatientReason,
            Some("principal") => DiagnosisQualifier::Principal,
            Some(_) => DiagnosisQualifier::Other,
            None if k == 0 => DiagnosisQualifier::Principal,
            None => DiagnosisQualifier::Other,
        };
        let code = if let Some(c) = cc.code_in(sys::ICD10CM) {
            match Icd10Cm::parse(c) {
                Ok(c) => DiagnosisCode::Icd10Cm(c),
                Err(e) => {
                    r.issues.push(FhirIssue::error(
                        "value",
                        format!("{cp}.diagnosis[{k}].diagnosisCodeableConcept"),
                        e.to_string(),
                    ));
                    continue;
                }
            }
        } else {
            r.warn(
                "not-supported",
                format!("{cp}.diagnosis[{k}].diagnosisCodeableConcept"),
                "only ICD-10-CM diagnoses are carried",
            );
            continue;
        };
        event.diagnoses.push(Diagnosis {
            qualifier,
            code,
            date: ext(&d.extension, u::DIAGNOSIS_RECORDED_DATE)
                .and_then(|e| e.value_str())
                .and_then(fhir_date),
        });
    }
    for c in exts(&claim.extension, u::CONDITION_CODE) {
        let cat = c.part("category").and_then(|p| p.value_cc());
        let Some(category) = cat
            .as_ref()
            .and_then(|c| code(c.first().and_then(|x| x.code.as_deref())))
        else {
            continue;
        };
        event.conditions.push(Condition {
            category,
            applies: c
                .part("indicator")
                .and_then(|p| p.value_bool())
                .unwrap_or(true),
            codes: c
                .extension
                .iter()
                .filter(|p| p.url == "code")
                .filter_map(|p| p.value_cc())
                .filter_map(|cc| code(cc.first().and_then(|x| x.code.as_deref())))
                .take(5)
                .collect(),
        });
    }
    if let Some(h) = ext(&claim.extension, u::HOME_HEALTH) {
        let prognosis = h
            .part("prognosis")
            .and_then(|p| p.value_cc())
            .and_then(|c| c.first().and_then(|x| x.code.clone()))
            .unwrap_or_default();
        let date = h
            .part("date")
            .and_then(|p| p.value_str())
            .and_then(fhir_date)
            .map(|d| d.to_x12())
            .unwrap_or_default();
        event.clinical.push(ClinicalSegment {
            segment: Code::parse("CR6").expect("CR6"),
            elements: vec![prognosis, date],
        });
    }
    if let Some(enc) = ext(&claim.extension, u::CLAIM_ENCOUNTER).and_then(|e| e.value_ref())
        && let Some((_, Resource::Encounter(enc))) = r.ctx.resolve(Some(&enc))
    {
        let inst = InstitutionalInfo {
            admission_type: enc
                .type_
                .iter()
                .find_map(|t| code(t.code_in(sys::NUBC_ADMIT_TYPE))),
            admission_source: enc
                .hospitalization
                .as_ref()
                .and_then(|h| cc_code(h.admit_source.as_ref(), sys::NUBC_POINT_OF_ORIGIN)),
            patient_status: ext_cc_code(
                &enc.extension,
                u::PATIENT_STATUS,
                sys::NUBC_DISCHARGE_STATUS,
            )
            .and_then(|c| code(Some(&c))),
            nursing_home_status: ext_cc_code(
                &enc.extension,
                u::NURSING_HOME_STATUS,
                sys::X12_NURSING_HOME_STATUS,
            )
            .and_then(|c| code(Some(&c))),
            encounter_class: enc.class.as_ref().and_then(|c| code(c.code.as_deref())),
        };
        event.institutional = Some(inst);
    }

    // Care team: overall members go to 2010E, item members to 2010F.
    let mut item_team: Vec<(u32, Entity)> = vec![];
    for (k, ct) in claim.care_team.iter().enumerate() {
        let path = format!("{cp}.careTeam[{k}].provider");
        let role = ct
            .role
            .as_ref()
            .and_then(|c| c.code_in(sys::X12_ENTITY))
            .unwrap_or("SJ")
            .to_owned();
        let Some(mut e) = r.provider(ct.provider.as_ref(), path.clone(), "SJ", &[]) else {
            continue;
        };
        if e.name.is_none() && e.id.is_none() {
            r.warn(
                "incomplete",
                path,
                "the care team member has neither a name nor an identifier, so it cannot be named in a 278 NM1 and is not carried",
            );
            continue;
        }
        if let Ok(c) = Code::parse(&role) {
            e.role = c;
        }
        // An Organization's own type beside its care-team role, when they differ.
        if let Some((_, Resource::Organization(o))) = r.ctx.resolve(ct.provider.as_ref()) {
            e.stated_role = o
                .type_
                .iter()
                .find_map(|t| t.code_in(sys::X12_ENTITY))
                .filter(|g| *g != e.role.as_str())
                .and_then(|g| code(Some(g)));
        }
        if let Some(q) = ct.qualification.as_ref().and_then(|q| q.code_in(sys::NUCC)) {
            e.provider_info = code(Some(q)).map(|taxonomy| ProviderInfo {
                role: Code::parse("PE").expect("PE"),
                qualifier: Code::parse("PXC").expect("PXC"),
                taxonomy,
            });
        }
        let overall = ext(&ct.extension, u::CARE_TEAM_SCOPE)
            .and_then(|x| x.value_bool())
            .unwrap_or(true);
        if overall {
            event.providers.push(e);
        } else {
            item_team.push((ct.sequence.as_ref().and_then(seq).unwrap_or(0), e));
        }
    }

    let institutional = claim
        .type_
        .as_ref()
        .and_then(|t| t.code_in(sys::CLAIM_TYPE))
        .is_some_and(|t| t == "institutional");
    let dental = claim
        .type_
        .as_ref()
        .and_then(|t| t.code_in(sys::CLAIM_TYPE))
        .is_some_and(|t| t == "oral");
    let mut services = vec![];
    for (k, it) in claim.item.iter().enumerate() {
        services.push(read_item(
            r,
            it,
            k,
            institutional,
            dental,
            &item_team,
            &event,
        ));
    }
    let (Some(umo), Some(requester)) = (umo, requester) else {
        return None;
    };
    subscriber.id.as_ref()?;
    // A Claim Update: the prior Claim (in the bundle, or named by its identifier).
    let mut revises_reference = None;
    let revises = claim.related.iter().find_map(|rel| {
        let c = rel.claim.as_ref()?;
        let id = match r.ctx.resolve(Some(c)) {
            Some((i, Resource::Claim(prior))) => {
                // Kept as the fullUrl of the prior Claim's entry (an absolute URL or URN).
                revises_reference = bundle.entry[i]
                    .full_url
                    .as_deref()
                    .filter(|u| u.contains(':'))
                    .and_then(|u| uri(Some(u)));
                prior.identifier.first().cloned()
            }
            _ => c.identifier.clone(),
        }?;
        trace_number(&id, event.trace_numbers.first().map(|t| &t.originator))
    });
    if revises.is_none() {
        revises_reference = None;
    }
    if !claim.related.is_empty() && revises.is_none() {
        r.warn(
            "not-found",
            format!("{cp}.related"),
            "the prior Claim of this update has no identifier that could be read",
        );
    }
    // Claim-level certificationType 3 cancels the whole request.
    let purpose = if event.review.certification_type == CertificationType::Cancel
        && ext(&claim.extension, u::CERTIFICATION_TYPE).is_some()
    {
        Purpose::Cancellation
    } else {
        Purpose::Request
    };
    Some(AuthorizationRequest {
        revises,
        revises_reference,
        purpose,
        submitter_reference,
        submitter_reference_system,
        created_date: stamp.and_then(fhir_date),
        created_time: stamp.and_then(fhir_time),
        created_utc_offset: stamp.and_then(fhir_offset),
        transaction_type: None,
        umo,
        requester,
        subscriber,
        dependent,
        event,
        services,
    })
}

/// Patient identifiers other than the member id travel as REF*EJ (patient account number).
fn push_patient_refs(e: &mut Entity, p: &Patient) {
    for i in &p.identifier {
        let member = matches!(&e.id, Some(Identification::MemberId(m)) if Some(m.as_str()) == i.value.as_deref());
        if member {
            continue;
        }
        // Our own writing of a patient's member id (a dependent with one of its own).
        if e.id.is_none()
            && i.system.as_deref() == Some("urn:x12:NM108:MI")
            && let Some(m) = i
                .value
                .as_deref()
                .and_then(|v| MemberId::parse(v.trim()).ok())
        {
            e.id = Some(Identification::MemberId(m));
            continue;
        }
        if let Some(value) = text(i.value.as_deref()) {
            // Our own writing of a REF: `urn:x12:REF:<qualifier>`; any other system is kept.
            let ours = i
                .system
                .as_deref()
                .and_then(|s| s.strip_prefix("urn:x12:REF:"))
                .and_then(|q| code(Some(q)));
            e.references.push(crate::domain::Reference {
                system: match ours {
                    Some(_) => None,
                    None => uri(i.system.as_deref()),
                },
                qualifier: ours.unwrap_or_else(|| Code::parse("EJ").expect("EJ")),
                value,
                description: None,
            });
        }
    }
}

fn location(c: Option<&CodeableConcept>) -> Option<ServiceLocation> {
    let c = c?;
    if let Some(p) = c.code_in(sys::POS) {
        return Some(ServiceLocation {
            code: code(Some(p))?,
            qualifier: Code::parse("B").ok()?,
        });
    }
    c.code_in(sys::BILL_TYPE).and_then(|b| {
        Some(ServiceLocation {
            code: code(Some(b))?,
            qualifier: Code::parse("A").ok()?,
        })
    })
}

fn fhir_location(l: &ServiceLocation) -> CodeableConcept {
    let s = if l.qualifier.as_str() == "A" {
        sys::BILL_TYPE
    } else {
        sys::POS
    };
    CodeableConcept::new(s, l.code.as_str())
}

/// A Claim.identifier or itemTraceNumber as a TRN: the originator (TRN03) is the id after
/// `urn:trnorg:` in the system, else the assigner's identifier value, else `fallback`.
fn trace_number(i: &Identifier, fallback: Option<&Code>) -> Option<TraceNumber> {
    let reference = text(i.value.as_deref())?;
    let originator = i
        .system
        .as_deref()
        .and_then(|s| s.strip_prefix("urn:trnorg:"))
        .and_then(|s| code(Some(s)))
        .or_else(|| {
            i.assigner
                .as_ref()
                .and_then(|a| a.identifier.as_ref())
                .and_then(|a| code(a.value.as_deref()))
        })
        .or_else(|| fallback.cloned())?;
    let system = i
        .system
        .as_deref()
        .filter(|s| *s != format!("urn:trnorg:{originator}"))
        .and_then(|s| uri(Some(s)));
    Some(TraceNumber {
        kind: TraceType::Current,
        reference,
        secondary: ext(&i.extension, u::SUB_DEPARTMENT)
            .and_then(|e| e.value_str())
            .and_then(|s| text(Some(s))),
        system,
        originator_system: i
            .assigner
            .as_ref()
            .and_then(|a| a.identifier.as_ref())
            .filter(|a| a.value.as_deref().map(str::trim) == Some(originator.as_str()))
            .and_then(|a| uri(a.system.as_deref())),
        jurisdiction: ext(&i.extension, u::JURISDICTION)
            .and_then(|e| e.value_cc())
            .and_then(|c| code(c.code_in(sys::USPS).or_else(|| c.first()?.code.as_deref()))),
        originator,
    })
}

/// The DocumentReference a supportingInfo points at, as a document.
fn supporting_document(r: &Reader, si: &SupportingInfo) -> Option<Document> {
    match r.ctx.resolve(si.value_reference.as_ref()) {
        Some((_, Resource::Other(m)))
            if m.get("resourceType").and_then(Value::as_str) == Some("DocumentReference") =>
        {
            Some(document(m))
        }
        _ => None,
    }
}

fn fhir_trace(t: &TraceNumber) -> Identifier {
    let system = t
        .system
        .as_ref()
        .map_or_else(|| format!("urn:trnorg:{}", t.originator), |s| s.to_string());
    let mut i = Identifier::new(&system, t.reference.as_str());
    // TRN03, the originating company, is also the identifier's assigner.
    i.assigner = Some(Box::new(Reference {
        identifier: Some(Identifier {
            system: t.originator_system.as_ref().map(|s| s.to_string()),
            value: Some(t.originator.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }));
    if let Some(j) = &t.jurisdiction {
        i.extension.push(Extension::typed(
            u::JURISDICTION,
            "valueCodeableConcept",
            &CodeableConcept::new(sys::USPS, j.as_str()),
        ));
    }
    if let Some(s) = &t.secondary {
        i.extension
            .push(Extension::string(u::SUB_DEPARTMENT, s.as_str()));
    }
    i
}

fn refs_from(list: &[Extension]) -> Vec<crate::domain::Reference> {
    let mut out = vec![];
    for (url, q) in [(u::AUTHORIZATION_NUMBER, "BB"), (u::ADMIN_REFERENCE, "NT")] {
        if let Some(v) = ext(list, url)
            .and_then(|e| e.value_str())
            .and_then(|s| text(Some(s)))
        {
            out.push(crate::domain::Reference {
                qualifier: Code::parse(q).expect("qualifier"),
                value: v,
                description: None,
                system: None,
            });
        }
    }
    out
}

fn procedure(
    c: Option<&CodeableConcept>,
    modifiers: &[CodeableConcept],
) -> Option<Result<Procedure, ValueError>> {
    let c = c?;
    let (q, v) = c.coding.iter().find_map(|cd| {
        let q = match cd.system.as_deref()? {
            sys::HCPCS | sys::CPT => ProcedureQualifier::Hcpcs,
            sys::CDT => ProcedureQualifier::Dental,
            sys::NDC => ProcedureQualifier::Ndc,
            sys::ICD10PCS => ProcedureQualifier::Icd10Pcs,
            _ => return None,
        };
        Some((q, cd.code.as_deref()?))
    })?;
    let mods: Vec<Code> = modifiers
        .iter()
        .filter_map(|m| code(m.first().and_then(|c| c.code.as_deref())))
        .collect();
    Some(Procedure::new(q, &v.replace('-', ""), mods, None))
}

fn fhir_procedure(p: &Procedure) -> (CodeableConcept, Vec<CodeableConcept>) {
    let s = match p.qualifier {
        ProcedureQualifier::Dental => sys::CDT,
        ProcedureQualifier::Ndc => sys::NDC,
        ProcedureQualifier::Icd10Pcs | ProcedureQualifier::Icd10PcsOther => sys::ICD10PCS,
        _ => sys::HCPCS,
    };
    (
        CodeableConcept::new(s, p.code.as_str()),
        p.modifiers
            .iter()
            .map(|m| CodeableConcept::new(sys::HCPCS, m.as_str()))
            .collect(),
    )
}

fn unit_of(q: &Quantity) -> Option<UnitType> {
    if q.system.as_deref().is_some_and(|s| s != sys::X12_UNITS) {
        return None;
    }
    q.code.as_deref().and_then(UnitType::from_code)
}

/// HSD01 for a UCUM-style quantity of a requested service.
fn hsd_unit(q: &Quantity) -> Option<UnitType> {
    let u = q.unit.as_deref().unwrap_or("").to_ascii_lowercase();
    Some(match u.trim_end_matches('s') {
        "visit" => UnitType::Visits,
        "day" => UnitType::DaysCount,
        "hour" => UnitType::Hours,
        "month" => UnitType::Months,
        _ => match q.code.as_deref() {
            Some("d") => UnitType::DaysCount,
            Some("h") => UnitType::Hours,
            Some("mo") => UnitType::Months,
            _ => UnitType::UnitCount,
        },
    })
}

/// The UCUM form of an HSD01 unit: (unit, code).
fn ucum_of(u: Option<UnitType>) -> (&'static str, &'static str) {
    match u {
        Some(UnitType::Visits) => ("visit", "1"),
        Some(UnitType::DaysCount | UnitType::Days) => ("day", "d"),
        Some(UnitType::Hours) => ("hour", "h"),
        Some(UnitType::Months) => ("month", "mo"),
        Some(UnitType::Minutes) => ("minute", "min"),
        _ => ("unit", "1"),
    }
}

fn read_item(
    r: &mut Reader,
    it: &ClaimItem,
    k: usize,
    institutional: bool,
    dental: bool,
    item_team: &[(u32, Entity)],
    event: &PatientEvent,
) -> ServiceLine {
    let cp = format!("Bundle.entry[0].resource.item[{k}]");
    let category = ext_cc_code(&it.extension, u::REQUEST_TYPE, sys::X12_REQUEST_CATEGORY)
        .and_then(|c| RequestCategory::from_code(&c))
        .unwrap_or(event.review.category);
    let cert = ext_cc_code(
        &it.extension,
        u::CERTIFICATION_TYPE,
        sys::X12_CERTIFICATION_TYPE,
    )
    .and_then(|c| CertificationType::from_code(&c))
    .unwrap_or(event.review.certification_type);
    let review = ReviewInfo {
        category,
        certification_type: cert,
        service_type: cc_code(it.category.as_ref(), sys::X12_SERVICE_TYPE),
        location: location(it.location_codeable_concept.as_ref()),
        related_causes: None,
        level_of_service: None,
        release_of_information: None,
    };
    let fallback = event.trace_numbers.first().map(|t| &t.originator);
    let trace_numbers = ext(&it.extension, u::ITEM_TRACE_NUMBER)
        .and_then(|e| e.value_identifier())
        .and_then(|i| trace_number(&i, fallback))
        .into_iter()
        .collect();
    let mut dates = vec![];
    let served = it
        .serviced_period
        .as_ref()
        .and_then(period_range)
        .or_else(|| {
            it.serviced_date
                .as_deref()
                .and_then(fhir_date)
                .map(DateOrRange::Date)
        });
    if let Some(d) = served {
        dates.push(EventDate {
            qualifier: Code::parse("472").expect("472"),
            date: d,
        });
    }
    let qty = it.quantity.as_ref();
    let quantity = qty.and_then(|q| q.value.as_ref()).and_then(number_decimal);
    let unit = qty.and_then(unit_of);
    let charge = it
        .unit_price
        .as_ref()
        .and_then(|m| m.value.as_ref())
        .and_then(number_decimal);
    let proc_ = match procedure(it.product_or_service.as_ref(), &it.modifier) {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            r.issues.push(FhirIssue::error(
                "value",
                format!("{cp}.productOrService"),
                e.to_string(),
            ));
            None
        }
        None => None,
    };
    let revenue = it
        .revenue
        .as_ref()
        .and_then(|c| code(c.first().and_then(|x| x.code.as_deref())));
    let nh_level = ext_cc_code(
        &it.extension,
        u::NURSING_HOME_LEVEL,
        sys::X12_NURSING_HOME_LEVEL,
    )
    .and_then(|c| code(Some(&c)));
    let nh_status = ext_cc_code(
        &it.extension,
        u::NURSING_HOME_STATUS,
        sys::X12_NURSING_HOME_STATUS,
    )
    .and_then(|c| code(Some(&c)));
    let rate = ext(&it.extension, u::REVENUE_UNIT_RATE_LIMIT)
        .and_then(|e| e.value_number())
        .and_then(|n| number_decimal(&n));
    let epsdt = ext(&it.extension, u::EPSDT).and_then(|e| e.value_bool());
    // What the service segment has no element for stays on the line (all of it when there is
    // no SV1/SV2: a line asking for a service type only).
    let mut terms = ServiceTerms {
        epsdt,
        nursing_home_residential_status: nh_status.clone(),
        nursing_home_level_of_care: nh_level.clone(),
        rate: rate.clone(),
    };
    let service = if institutional && (proc_.is_some() || revenue.is_some()) {
        terms.rate = None;
        terms.nursing_home_residential_status = None;
        terms.nursing_home_level_of_care = None;
        Some(Service::Institutional {
            revenue_code: revenue,
            procedure: proc_,
            charge,
            unit,
            quantity: quantity.clone(),
            rate,
            nursing_home_residential_status: nh_status,
            nursing_home_level_of_care: nh_level,
        })
    } else if let Some(procedure) = proc_ {
        if dental || procedure.qualifier == ProcedureQualifier::Dental {
            Some(Service::Dental {
                procedure,
                charge,
                place_of_service: None,
                quantity: quantity.clone(),
            })
        } else {
            terms.epsdt = None;
            terms.nursing_home_level_of_care = None;
            Some(Service::Professional {
                procedure,
                charge,
                unit,
                quantity: quantity.clone(),
                place_of_service: None,
                epsdt,
                nursing_home_level_of_care: nh_level,
            })
        }
    } else {
        if it
            .product_or_service
            .as_ref()
            .and_then(|c| c.code_in(sys::X12_SERVICE_TYPE))
            .is_none()
        {
            r.warn(
                "not-supported",
                format!("{cp}.productOrService"),
                "the productOrService code system is not one the 278 carries (CPT/HCPCS, CDT, NDC, ICD-10-PCS, or an X12 service type)",
            );
        }
        None
    };
    // The requested service (ServiceRequest) quantity travels in HSD, as does the item's
    // quantity when there is no service segment to carry it.
    let requested = ext(&it.extension, u::REQUESTED_SERVICE)
        .and_then(|e| e.value_ref())
        .and_then(|rf| r.ctx.resolve(Some(&rf)))
        .and_then(|(_, res)| match res {
            Resource::Other(m) => m.get("quantityQuantity").cloned(),
            _ => None,
        })
        .and_then(|q| serde_json::from_value::<Quantity>(q).ok());
    let (quantity, unit) = match (&requested, service.is_none()) {
        (Some(q), _) => (
            q.value.as_ref().and_then(number_decimal),
            unit_of(q).or_else(|| hsd_unit(q)),
        ),
        (None, true) => (quantity, unit),
        (None, false) => (None, None),
    };
    let hsd = if quantity.is_some() {
        quantity.map(|q| ServiceQuantity {
            unit,
            quantity: Some(q),
            per: None,
            sample_count: None,
            period: None,
            period_count: None,
            delivery_pattern: None,
            delivery_time: None,
        })
    } else {
        None
    };
    let providers = it
        .care_team_sequence
        .iter()
        .filter_map(seq)
        .filter_map(|s| {
            item_team
                .iter()
                .find(|(q, _)| *q == s)
                .map(|(_, e)| e.clone())
        })
        .collect();
    let cancelled = ext(&it.modifier_extension, u::INFO_CANCELLED)
        .and_then(|e| e.value_bool())
        .unwrap_or(false);
    let change = if cancelled {
        Some(LineChange::Cancelled)
    } else {
        match ext(&it.extension, u::INFO_CHANGED).and_then(|e| e.value_str()) {
            Some("changed") => Some(LineChange::Changed),
            Some("added") => Some(LineChange::Added),
            _ => None,
        }
    };
    ServiceLine {
        terms: (!terms.is_empty()).then_some(terms),
        change,
        trace_numbers,
        review: Some(review),
        references: refs_from(&it.extension),
        dates,
        service,
        teeth: vec![],
        quantity: hsd,
        attachments: vec![],
        message: None,
        providers,
    }
}

// ------------------------------------------------------------------ writing

/// A deterministic `urn:uuid:` (version 4 layout) from a seed, so the same request always
/// gives the same bundle.
pub fn uuid_from(seed: &str) -> String {
    let mut h1: u64 = 0xcbf2_9ce4_8422_2325;
    let mut h2: u64 = 0x8422_2325_cbf2_9ce4;
    for b in seed.bytes() {
        h1 = (h1 ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        h2 = (h2 ^ b as u64)
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(7);
    }
    let hex = format!("{h1:016x}{h2:016x}");
    format!(
        "urn:uuid:{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        ["8", "9", "a", "b"][(h2 as usize) & 3],
        &hex[17..20],
        &hex[20..32]
    )
}

fn profile(name: &str) -> Value {
    json!({ "profile": [format!("{}/StructureDefinition/{name}", super::PAS)] })
}

pub(crate) struct Builder {
    seed: String,
    pub entries: Vec<BundleEntry>,
}

impl Builder {
    pub(crate) fn new(seed: &str) -> Builder {
        Builder {
            seed: seed.to_owned(),
            entries: vec![],
        }
    }
    pub(crate) fn url(&self, role: &str) -> String {
        uuid_from(&format!("{}|{role}", self.seed))
    }
    pub(crate) fn push(&mut self, role: &str, r: Resource) -> Reference {
        let url = self.url(role);
        self.entries.push(BundleEntry {
            full_url: Some(url.clone()),
            resource: Some(r),
            extra: Default::default(),
        });
        Reference::to(&url)
    }

    fn organization(&mut self, role: &str, e: &Entity, prof: &str) -> Reference {
        let mut o = Organization {
            resource_type: "Organization".into(),
            meta: Some(profile(prof)),
            active: Some(true),
            name: e.name.as_ref().map(|n| n.to_string()),
            type_: vec![CodeableConcept::new(
                sys::X12_ENTITY,
                e.stated_role.as_ref().unwrap_or(&e.role).as_str(),
            )],
            identifier: entity_identifiers(e),
            ..Default::default()
        };
        o.address = e.address.iter().map(fhir_address).collect();
        for (k, c) in e.contacts.iter().enumerate() {
            if k == 0 && c.name.is_none() {
                o.telecom = fhir_telecom(c);
            } else {
                o.contact.push(OrgContact {
                    name: c.name.as_ref().map(|n| HumanName {
                        text: Some(n.to_string()),
                        ..Default::default()
                    }),
                    telecom: fhir_telecom(c),
                    extra: Default::default(),
                });
            }
        }
        self.push(role, Resource::Organization(Box::new(o)))
    }

    /// A person provider: a PractitionerRole pointing at a Practitioner.
    fn practitioner_role(&mut self, role: &str, e: &Entity) -> Reference {
        let p = Practitioner {
            resource_type: "Practitioner".into(),
            meta: Some(profile("profile-practitioner")),
            identifier: entity_identifiers(e),
            name: fhir_name(e).into_iter().collect(),
            address: e.address.iter().map(fhir_address).collect(),
            // PER does not say whether a number is the person's or the role's: both get it.
            telecom: e.contacts.iter().flat_map(fhir_telecom).collect(),
            ..Default::default()
        };
        let pref = self.push(
            &format!("{role}/practitioner"),
            Resource::Practitioner(Box::new(p)),
        );
        let location = e
            .locations
            .iter()
            .enumerate()
            .filter_map(|(k, l)| match fhir_site(l) {
                Value::Object(m) => {
                    Some(self.push(&format!("{role}/location/{k}"), Resource::Other(m)))
                }
                _ => None,
            })
            .collect();
        let pr = PractitionerRole {
            resource_type: "PractitionerRole".into(),
            meta: Some(profile("profile-practitionerrole")),
            practitioner: Some(pref),
            location,
            code: vec![CodeableConcept::new(sys::X12_ENTITY, e.role.as_str())],
            specialty: e
                .provider_info
                .iter()
                .map(|p| CodeableConcept::new(sys::NUCC, p.taxonomy.as_str()))
                .collect(),
            telecom: e.contacts.iter().flat_map(fhir_telecom).collect(),
            ..Default::default()
        };
        self.push(role, Resource::PractitionerRole(Box::new(pr)))
    }

    fn provider(&mut self, role: &str, e: &Entity, org_profile: &str) -> Reference {
        match e.kind {
            EntityType::Organization => self.organization(role, e, org_profile),
            EntityType::Person => self.practitioner_role(role, e),
        }
    }

    fn patient(&mut self, role: &str, e: &Entity, prof: &str) -> Reference {
        let mut p = Patient {
            resource_type: "Patient".into(),
            meta: Some(profile(prof)),
            name: fhir_name(e).into_iter().collect(),
            address: e.address.iter().map(fhir_address).collect(),
            telecom: e.contacts.iter().flat_map(fhir_telecom).collect(),
            ..Default::default()
        };
        for r in &e.references {
            p.identifier.push(Identifier::new(
                &r.system
                    .as_ref()
                    .map_or_else(|| format!("urn:x12:REF:{}", r.qualifier), |s| s.to_string()),
                r.value.as_str(),
            ));
        }
        if let Some(Identification::MemberId(m)) = &e.id
            && p.identifier.is_empty()
        {
            let s = e
                .id_system
                .as_ref()
                .map_or("urn:x12:NM108:MI", |s| s.as_str());
            let mut i = Identifier::new(s, m.as_str());
            i.type_ = Some(CodeableConcept::new(sys::V2_0203, "MB"));
            p.identifier.push(i);
        }
        if let Some(d) = &e.demographics {
            p.birth_date = d.birth_date.map(|d| d.to_string());
            p.gender = d
                .gender
                .as_ref()
                .map(|g| gender_word(g.as_str()).to_owned());
        }
        // PAS requires a gender; a 278 without DMG03 leaves it unknown, which FHIR can say.
        if p.gender.is_none() {
            p.gender = Some("unknown".to_owned());
        }
        self.push(role, Resource::Patient(Box::new(p)))
    }
}

fn x12_cc(system: &str, code: &str, display: &str) -> CodeableConcept {
    CodeableConcept::with_display(system, code, Some(display))
}

fn ref_ext(r: &crate::domain::Reference) -> Option<Extension> {
    match r.qualifier.as_str() {
        "BB" => Some(Extension::string(u::AUTHORIZATION_NUMBER, r.value.as_str())),
        "NT" => Some(Extension::string(u::ADMIN_REFERENCE, r.value.as_str())),
        _ => None,
    }
}

/// The TransmissionIdentifiers extension: the interchange (ISA06/ISA08) and application
/// (GS02/GS03) ids. They belong to the envelope, not to one request, so they travel beside
/// the hub request (the CLI sets the X12 envelope from them and reads them back from it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transmission {
    pub interchange_sender: Option<String>,
    pub interchange_receiver: Option<String>,
    pub application_sender: Option<String>,
    pub application_receiver: Option<String>,
}

const TRANSMISSION_PARTS: [&str; 4] = [
    "interchangeSenderID",
    "interchangeReceiverID",
    "applicationSenderCode",
    "applicationReceiverCode",
];

impl Transmission {
    /// The ids of a request bundle's Claim, if it has the extension.
    pub fn of(b: &Bundle) -> Option<Transmission> {
        let Some(Resource::Claim(c)) = b.entry.first().and_then(|e| e.resource.as_ref()) else {
            return None;
        };
        let e = ext(&c.extension, u::TRANSMISSION_IDS)?;
        let get = |n: &str| e.part(n).and_then(|p| p.value_str()).map(str::to_owned);
        Some(Transmission {
            interchange_sender: get(TRANSMISSION_PARTS[0]),
            interchange_receiver: get(TRANSMISSION_PARTS[1]),
            application_sender: get(TRANSMISSION_PARTS[2]),
            application_receiver: get(TRANSMISSION_PARTS[3]),
        })
    }
    fn extension(&self) -> Extension {
        let vals = [
            &self.interchange_sender,
            &self.interchange_receiver,
            &self.application_sender,
            &self.application_receiver,
        ];
        let parts = TRANSMISSION_PARTS
            .iter()
            .zip(vals)
            .filter_map(|(n, v)| v.as_deref().map(|v| Extension::string(n, v)))
            .collect();
        Extension::complex(u::TRANSMISSION_IDS, parts)
    }
}

/// Writes a PAS request bundle for a hub request.
pub fn bundle_from_request(req: &AuthorizationRequest) -> Bundle {
    bundle_from_request_with(req, None)
}

/// Writes a PAS request bundle for a hub request, with the envelope's transmission ids.
pub fn bundle_from_request_with(
    req: &AuthorizationRequest,
    transmission: Option<&Transmission>,
) -> Bundle {
    let mut b = Builder::new(req.submitter_reference.as_str());
    let claim_url = b.url("claim");
    // Claim first: a placeholder replaced below once the references are known.
    b.entries.push(BundleEntry {
        full_url: Some(claim_url),
        resource: None,
        extra: Default::default(),
    });
    let insurer = b.organization("umo", &req.umo, "profile-insurer");
    let provider = b.provider("requester", &req.requester, "profile-requestor");
    let subscriber = b.patient("subscriber", &req.subscriber, "profile-subscriber");
    let beneficiary = match &req.dependent {
        Some(d) => b.patient("dependent", d, "profile-beneficiary"),
        None => subscriber.clone(),
    };
    let rel = req
        .dependent
        .as_ref()
        .and_then(|d| d.relationship.as_ref())
        .map_or("18", |r| r.code.as_str())
        .to_owned();
    let member = req.member_id().map(|m| m.to_string());
    let mut cov = Coverage {
        resource_type: "Coverage".into(),
        meta: Some(profile("profile-coverage")),
        status: Some("active".into()),
        subscriber: Some(subscriber.clone()),
        subscriber_id: member.clone(),
        beneficiary: Some(beneficiary.clone()),
        relationship: Some(CodeableConcept {
            coding: vec![
                Coding::new(sys::SUBSCRIBER_RELATIONSHIP, relationship_to_fhir(&rel)),
                Coding::new(sys::X12_RELATIONSHIP, &rel),
            ],
            ..Default::default()
        }),
        payor: vec![insurer.clone()],
        ..Default::default()
    };
    let mut mid = Identifier {
        type_: Some(CodeableConcept::new(sys::V2_0203, "MB")),
        ..Default::default()
    };
    if let Some(m) = &member {
        mid.system = Some(
            req.subscriber
                .id_system
                .as_ref()
                .map_or("urn:x12:NM108:MI", |s| s.as_str())
                .into(),
        );
        mid.value = Some(m.clone());
    }
    cov.identifier.push(mid);
    let coverage = b.push("coverage", Resource::Coverage(Box::new(cov)));

    let ev = &req.event;
    let mut claim = Claim {
        resource_type: "Claim".into(),
        meta: Some(profile("profile-claim")),
        status: Some("active".into()),
        use_: Some("preauthorization".into()),
        patient: Some(beneficiary),
        insurer: Some(insurer),
        provider: Some(provider),
        identifier: ev
            .trace_numbers
            .iter()
            .filter(|t| t.kind == TraceType::Current)
            .map(fhir_trace)
            .collect(),
        created: Some(zoned_timestamp(
            req.created_date,
            req.created_time.as_ref(),
            req.created_utc_offset,
        )),
        priority: Some(CodeableConcept::new(
            "http://terminology.hl7.org/CodeSystem/processpriority",
            "normal",
        )),
        insurance: vec![ClaimInsurance {
            sequence: Some(num(1)),
            focal: Some(true),
            coverage: Some(coverage),
            extra: Default::default(),
        }],
        ..Default::default()
    };
    let institutional = req
        .services
        .iter()
        .any(|s| matches!(s.service, Some(Service::Institutional { .. })))
        || ev.institutional.is_some()
        || ev.review.category == RequestCategory::AdmissionReview;
    let dental = req
        .services
        .iter()
        .any(|s| matches!(s.service, Some(Service::Dental { .. })));
    claim.type_ = Some(CodeableConcept::new(
        sys::CLAIM_TYPE,
        if institutional {
            "institutional"
        } else if dental {
            "oral"
        } else {
            "professional"
        },
    ));
    if let Some(l) = ev.review.level_of_service {
        claim.extension.push(Extension::typed(
            u::LEVEL_OF_SERVICE,
            "valueCodeableConcept",
            &x12_cc(sys::X12_LEVEL_OF_SERVICE, l.code(), l.description()),
        ));
    }
    claim
        .extension
        .extend(ev.references.iter().filter_map(ref_ext));
    if let Some(t) = transmission {
        claim.extension.push(t.extension());
    }
    for c in &ev.conditions {
        let mut parts = vec![
            Extension::typed(
                "category",
                "valueCodeableConcept",
                &CodeableConcept::new(sys::X12_CONDITION_CATEGORY, c.category.as_str()),
            ),
            Extension::boolean("indicator", c.applies),
        ];
        for code in &c.codes {
            parts.push(Extension::typed(
                "code",
                "valueCodeableConcept",
                &CodeableConcept::new(sys::X12_CONDITION, code.as_str()),
            ));
        }
        claim
            .extension
            .push(Extension::complex(u::CONDITION_CODE, parts));
    }
    for cs in ev.clinical.iter().filter(|c| c.segment.as_str() == "CR6") {
        let mut parts = vec![];
        if let Some(p) = cs.elements.first().filter(|p| !p.is_empty()) {
            parts.push(Extension::typed(
                "prognosis",
                "valueCodeableConcept",
                &CodeableConcept::new(sys::X12_PROGNOSIS, p),
            ));
        }
        if let Some(d) = cs.elements.get(1).and_then(|d| Date::from_x12(d).ok()) {
            parts.push(Extension::date("date", &d.to_string()));
        }
        claim
            .extension
            .push(Extension::complex(u::HOME_HEALTH, parts));
    }
    if let Some(inst) = &ev.institutional {
        let mut enc = Encounter {
            resource_type: "Encounter".into(),
            meta: Some(profile("profile-encounter")),
            status: Some("planned".into()),
            class: Some(Coding::new(
                "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                inst.encounter_class.as_ref().map_or("IMP", |c| c.as_str()),
            )),
            subject: claim.patient.clone(),
            ..Default::default()
        };
        if let Some(t) = &inst.admission_type {
            enc.type_
                .push(CodeableConcept::new(sys::NUBC_ADMIT_TYPE, t.as_str()));
        }
        if let Some(s) = &inst.admission_source {
            enc.hospitalization = Some(Hospitalization {
                admit_source: Some(CodeableConcept::new(sys::NUBC_POINT_OF_ORIGIN, s.as_str())),
                ..Default::default()
            });
        }
        if let Some(s) = &inst.patient_status {
            enc.extension.push(Extension::typed(
                u::PATIENT_STATUS,
                "valueCodeableConcept",
                &CodeableConcept::new(sys::NUBC_DISCHARGE_STATUS, s.as_str()),
            ));
        }
        if let Some(s) = &inst.nursing_home_status {
            enc.extension.push(Extension::typed(
                u::NURSING_HOME_STATUS,
                "valueCodeableConcept",
                &CodeableConcept::new(sys::X12_NURSING_HOME_STATUS, s.as_str()),
            ));
        }
        if let Some(adm) = ev.dates.iter().find(|d| d.qualifier.as_str() == "435") {
            enc.period = Some(range_period(&adm.date));
        }
        let r = b.push("encounter", Resource::Encounter(Box::new(enc)));
        claim
            .extension
            .push(Extension::typed(u::CLAIM_ENCOUNTER, "valueReference", &r));
    }
    // supportingInfo: dates, attachments, message.
    let mut si_seq = 0u32;
    let mut next = || {
        si_seq += 1;
        Some(num(si_seq))
    };
    for d in &ev.dates {
        let cat = match d.qualifier.as_str() {
            "AAH" => "patientEvent",
            "435" => "admissionDates",
            "096" => "dischargeDates",
            "439" => {
                claim.accident.get_or_insert_with(Accident::default).date =
                    Some(d.date.start().to_string());
                continue;
            }
            _ => continue,
        };
        let mut si = SupportingInfo {
            sequence: next(),
            category: Some(CodeableConcept::new(sys::PAS_TEMP, cat)),
            ..Default::default()
        };
        match d.date {
            DateOrRange::Date(x) => si.timing_date = Some(x.to_string()),
            DateOrRange::Range(_) => si.timing_period = Some(range_period(&d.date)),
        }
        claim.supporting_info.push(si);
    }
    for a in &ev.attachments {
        let mut parts = vec![
            Extension::typed(
                "reportTypeCode",
                "valueCodeableConcept",
                &CodeableConcept::new(sys::X12_REPORT_TYPE, a.report_type.as_str()),
            ),
            Extension::typed(
                "transmissionMethod",
                "valueCodeableConcept",
                &CodeableConcept::new(sys::X12_TRANSMISSION, a.transmission.as_str()),
            ),
        ];
        if let Some(c) = &a.control_number {
            parts.push(Extension::string("controlNumber", c.as_str()));
        }
        if let Some(d) = &a.description {
            parts.push(Extension::string("description", d.as_str()));
        }
        // The document itself, when it travels with the request; else it travels separately
        // (a 275) and the control number names it.
        let document =
            a.document
                .as_ref()
                .and_then(|d| match fhir_document(d, claim.patient.as_ref()) {
                    Value::Object(m) => Some(b.push(
                        &format!("document/{}", claim.supporting_info.len()),
                        Resource::Other(m),
                    )),
                    _ => None,
                });
        claim.supporting_info.push(SupportingInfo {
            extension: vec![Extension::complex(u::DOCUMENT_INFORMATION, parts)],
            sequence: next(),
            category: Some(CodeableConcept::new(sys::PAS_TEMP, "additionalInformation")),
            value_string: document.is_none().then(|| {
                a.control_number
                    .as_ref()
                    .map_or("attachment sent separately", |c| c.as_str())
                    .to_owned()
            }),
            value_reference: document,
            ..Default::default()
        });
    }
    if let Some(m) = &ev.message {
        claim.supporting_info.push(SupportingInfo {
            sequence: next(),
            category: Some(CodeableConcept::new(sys::PAS_TEMP, "freeFormMessage")),
            value_string: Some(m.to_string()),
            ..Default::default()
        });
    }
    if let Some(rc) = &ev.review.related_causes {
        let acc = claim.accident.get_or_insert_with(Accident::default);
        acc.type_ = Some(CodeableConcept {
            coding: rc
                .causes
                .iter()
                .map(|c| Coding::new(sys::X12_ACCIDENT, c.as_str()))
                .collect(),
            ..Default::default()
        });
        if rc.state.is_some() || rc.country.is_some() {
            acc.location_address = Some(super::types::Address {
                state: rc.state.as_ref().map(|s| s.to_string()),
                country: rc.country.as_ref().map(|s| s.to_string()),
                ..Default::default()
            });
        }
    }
    for (k, d) in ev.diagnoses.iter().enumerate() {
        let c = match &d.code {
            // FHIR writes ICD-10-CM with its dot; X12 HI without.
            DiagnosisCode::Icd10Cm(c) if c.as_str().len() > 3 && !c.as_str().contains('.') => {
                format!("{}.{}", &c.as_str()[..3], &c.as_str()[3..])
            }
            DiagnosisCode::Icd10Cm(c) => c.as_str().to_owned(),
            DiagnosisCode::Other(c) => c.as_str().to_owned(),
        };
        let t = match d.qualifier {
            DiagnosisQualifier::Principal | DiagnosisQualifier::Icd9Principal => Some("principal"),
            DiagnosisQualifier::Admitting | DiagnosisQualifier::Icd9Admitting => Some("admitting"),
            DiagnosisQualifier::PatientReason | DiagnosisQualifier::Icd9PatientReason => {
                Some("patientreasonforvisit")
            }
            _ => None,
        };
        claim.diagnosis.push(ClaimDiagnosis {
            extension: d
                .date
                .iter()
                .map(|x| Extension::date(u::DIAGNOSIS_RECORDED_DATE, &x.to_string()))
                .collect(),
            sequence: Some(num(k as u32 + 1)),
            diagnosis_codeable_concept: Some(CodeableConcept::new(sys::ICD10CM, &c)),
            type_: t
                .map(|t| CodeableConcept::new(sys::PAS_TEMP, t))
                .into_iter()
                .collect(),
            extra: Default::default(),
        });
    }
    let mut team_seq = 0u32;
    let mut overall = vec![];
    for (k, p) in ev.providers.iter().enumerate() {
        team_seq += 1;
        let r = b.provider(&format!("event-provider/{k}"), p, "profile-organization");
        claim.care_team.push(care_team(team_seq, r, p, true));
        overall.push(team_seq);
    }
    // A PAS Claim has at least one item: a 278 reviewed at the event level only (no 2000F)
    // becomes one item carrying the event's review.
    let event_only = [ServiceLine {
        trace_numbers: vec![],
        review: Some(ev.review.clone()),
        references: vec![],
        dates: vec![],
        service: None,
        teeth: vec![],
        quantity: None,
        attachments: vec![],
        message: None,
        providers: vec![],
        change: None,
        terms: None,
    }];
    let lines: &[ServiceLine] = if req.services.is_empty() {
        &event_only
    } else {
        &req.services
    };
    for (k, line) in lines.iter().enumerate() {
        let mut it = ClaimItem {
            sequence: Some(num(k as u32 + 1)),
            ..Default::default()
        };
        let review = line.review.as_ref().unwrap_or(&ev.review);
        it.extension.push(Extension::typed(
            u::REQUEST_TYPE,
            "valueCodeableConcept",
            &x12_cc(
                sys::X12_REQUEST_CATEGORY,
                review.category.code(),
                review.category.description(),
            ),
        ));
        it.extension.push(Extension::typed(
            u::CERTIFICATION_TYPE,
            "valueCodeableConcept",
            &x12_cc(
                sys::X12_CERTIFICATION_TYPE,
                review.certification_type.code(),
                review.certification_type.description(),
            ),
        ));
        if let Some(t) = line.trace_numbers.first() {
            it.extension.push(Extension::typed(
                u::ITEM_TRACE_NUMBER,
                "valueIdentifier",
                &fhir_trace(t),
            ));
        }
        it.extension
            .extend(line.references.iter().filter_map(ref_ext));
        let st = review
            .service_type
            .as_ref()
            .or(ev.review.service_type.as_ref());
        it.category = st.map(|s| CodeableConcept::new(sys::X12_SERVICE_TYPE, s.as_str()));
        let loc = review.location.as_ref().or(ev.review.location.as_ref());
        it.location_codeable_concept = loc.map(fhir_location);
        if let Some(d) = line.service_dates() {
            match d {
                DateOrRange::Date(x) => it.serviced_date = Some(x.to_string()),
                DateOrRange::Range(_) => it.serviced_period = Some(range_period(&d)),
            }
        }
        let quantity = |q: Option<&Decimal>, u: Option<UnitType>| {
            q.map(|q| Quantity {
                value: Some(decimal_number(q)),
                system: u.map(|_| sys::X12_UNITS.to_owned()),
                code: u.map(|u| u.code().to_owned()),
                ..Default::default()
            })
        };
        let money = |c: Option<&Decimal>| {
            c.map(|c| Money {
                value: Some(decimal_number(c)),
                currency: Some("USD".into()),
                ..Default::default()
            })
        };
        match &line.service {
            Some(Service::Professional {
                procedure,
                charge,
                unit,
                quantity: q,
                epsdt,
                nursing_home_level_of_care,
                ..
            }) => {
                let (p, m) = fhir_procedure(procedure);
                it.product_or_service = Some(p);
                it.modifier = m;
                it.quantity = quantity(q.as_ref(), *unit);
                it.unit_price = money(charge.as_ref());
                if let Some(e) = epsdt {
                    it.extension.push(Extension::boolean(u::EPSDT, *e));
                }
                nursing_home_exts(&mut it.extension, None, nursing_home_level_of_care.as_ref());
            }
            Some(Service::Institutional {
                revenue_code,
                procedure,
                charge,
                unit,
                quantity: q,
                rate,
                nursing_home_residential_status,
                nursing_home_level_of_care,
            }) => {
                nursing_home_exts(
                    &mut it.extension,
                    nursing_home_residential_status.as_ref(),
                    nursing_home_level_of_care.as_ref(),
                );
                if let Some(p) = procedure {
                    let (p, m) = fhir_procedure(p);
                    it.product_or_service = Some(p);
                    it.modifier = m;
                }
                it.revenue = revenue_code
                    .as_ref()
                    .map(|r| CodeableConcept::new(sys::NUBC_REVENUE, r.as_str()));
                it.quantity = quantity(q.as_ref(), *unit);
                it.unit_price = money(charge.as_ref());
                if let Some(r) = rate {
                    it.extension.push(Extension::with_value(
                        u::REVENUE_UNIT_RATE_LIMIT,
                        "valueDecimal",
                        Value::Number(decimal_number(r)),
                    ));
                }
            }
            Some(Service::Dental {
                procedure,
                charge,
                quantity: q,
                ..
            }) => {
                let (p, m) = fhir_procedure(procedure);
                it.product_or_service = Some(p);
                it.modifier = m;
                it.quantity = quantity(q.as_ref(), None);
                it.unit_price = money(charge.as_ref());
            }
            None => {
                // No service segment: the service type stands for what is asked.
                it.product_or_service = it.category.clone();
            }
        }
        if let Some(t) = &line.terms {
            if let Some(e) = t.epsdt {
                it.extension.push(Extension::boolean(u::EPSDT, e));
            }
            nursing_home_exts(
                &mut it.extension,
                t.nursing_home_residential_status.as_ref(),
                t.nursing_home_level_of_care.as_ref(),
            );
            if let Some(r) = &t.rate {
                it.extension.push(Extension::with_value(
                    u::REVENUE_UNIT_RATE_LIMIT,
                    "valueDecimal",
                    Value::Number(decimal_number(r)),
                ));
            }
        }
        if it.product_or_service.is_none() {
            it.product_or_service = Some(CodeableConcept::new(sys::X12_SERVICE_TYPE, "1"));
        }
        // HSD: the requested service with its quantity.
        if let Some(h) = &line.quantity
            && let Some(q) = &h.quantity
        {
            let (unit, code) = ucum_of(h.unit);
            let sr = json!({
                "resourceType": "ServiceRequest",
                "meta": profile("profile-servicerequest"),
                "status": "active",
                "intent": "order",
                "code": it.product_or_service,
                "quantityQuantity": {
                    "value": decimal_number(q),
                    "unit": unit,
                    "system": sys::UCUM,
                    "code": code,
                },
                "subject": claim.patient,
            });
            if let Value::Object(m) = sr {
                let r = b.push(&format!("service-request/{k}"), Resource::Other(m));
                it.extension
                    .push(Extension::typed(u::REQUESTED_SERVICE, "valueReference", &r));
            }
        }
        it.care_team_sequence = overall.iter().map(|s| num(*s)).collect();
        for (j, p) in line.providers.iter().enumerate() {
            team_seq += 1;
            let r = b.provider(&format!("line-provider/{k}/{j}"), p, "profile-organization");
            claim.care_team.push(care_team(team_seq, r, p, false));
            it.care_team_sequence.push(num(team_seq));
        }
        it.diagnosis_sequence = (1..=claim.diagnosis.len().min(4) as u32).map(num).collect();
        match line.change {
            Some(LineChange::Cancelled) => {
                it.modifier_extension
                    .push(Extension::boolean(u::INFO_CANCELLED, true));
            }
            Some(LineChange::Changed) => it
                .extension
                .push(Extension::code(u::INFO_CHANGED, "changed")),
            Some(LineChange::Added) => it.extension.push(Extension::code(u::INFO_CHANGED, "added")),
            None => {}
        }
        claim.item.push(it);
    }
    if let Some(prior) = &req.revises {
        // A Claim Update names the Claim it revises and repeats the certification type. When
        // the prior Claim came with the update, it goes with it again (under its fullUrl),
        // naming the prior request by its identifier; its content is the earlier request's,
        // which the update does not carry.
        claim.meta = Some(profile("profile-claim-update"));
        let target = match &req.revises_reference {
            Some(url) => {
                let p = Claim {
                    resource_type: "Claim".into(),
                    meta: Some(profile("profile-claim")),
                    identifier: vec![fhir_trace(prior)],
                    status: claim.status.clone(),
                    type_: claim.type_.clone(),
                    use_: claim.use_.clone(),
                    patient: claim.patient.clone(),
                    created: claim.created.clone(),
                    insurer: claim.insurer.clone(),
                    provider: claim.provider.clone(),
                    priority: claim.priority.clone(),
                    insurance: claim.insurance.clone(),
                    ..Default::default()
                };
                b.entries.push(BundleEntry {
                    full_url: Some(url.to_string()),
                    resource: Some(Resource::Claim(Box::new(p))),
                    extra: Default::default(),
                });
                Reference::to(url.as_str())
            }
            None => Reference {
                identifier: Some(fhir_trace(prior)),
                ..Default::default()
            },
        };
        claim.related.push(ClaimRelated {
            claim: Some(target),
            relationship: Some(CodeableConcept::new(
                "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship",
                "prior",
            )),
            extra: Default::default(),
        });
    }
    {
        // UM02 of the event: claim-level certificationType (3 cancels the whole request).
        let c = ev.review.certification_type;
        claim.extension.push(Extension::typed(
            u::CERTIFICATION_TYPE,
            "valueCodeableConcept",
            &x12_cc(sys::X12_CERTIFICATION_TYPE, c.code(), c.description()),
        ));
    }
    b.entries[0].resource = Some(Resource::Claim(Box::new(claim)));
    Bundle {
        resource_type: "Bundle".into(),
        id: None,
        meta: Some(profile("profile-pas-request-bundle")),
        identifier: Some(Identifier::new(
            req.submitter_reference_system
                .as_ref()
                .map_or("urn:x12:BHT03", |s| s.as_str()),
            req.submitter_reference.as_str(),
        )),
        type_: Some("collection".into()),
        timestamp: Some(zoned_timestamp(
            req.created_date,
            req.created_time.as_ref(),
            req.created_utc_offset,
        )),
        entry: b.entries,
        extra: Default::default(),
    }
}

fn nursing_home_exts(list: &mut Vec<Extension>, status: Option<&Code>, level: Option<&Code>) {
    if let Some(s) = status {
        list.push(Extension::typed(
            u::NURSING_HOME_STATUS,
            "valueCodeableConcept",
            &CodeableConcept::new(sys::X12_NURSING_HOME_STATUS, s.as_str()),
        ));
    }
    if let Some(l) = level {
        list.push(Extension::typed(
            u::NURSING_HOME_LEVEL,
            "valueCodeableConcept",
            &CodeableConcept::new(sys::X12_NURSING_HOME_LEVEL, l.as_str()),
        ));
    }
}

fn care_team(sequence: u32, provider: Reference, e: &Entity, overall: bool) -> CareTeam {
    CareTeam {
        extension: vec![Extension::boolean(u::CARE_TEAM_SCOPE, overall)],
        sequence: Some(num(sequence)),
        provider: Some(provider),
        role: Some(CodeableConcept::new(sys::X12_ENTITY, e.role.as_str())),
        qualification: e
            .provider_info
            .as_ref()
            .map(|p| CodeableConcept::new(sys::NUCC, p.taxonomy.as_str())),
        extra: Default::default(),
    }
}

/// An instant from an X12 date and time. X12 carries no time zone, so the time is written as
/// UTC: a documented loss.
pub(crate) fn timestamp(date: Option<Date>, time: Option<&Time>) -> String {
    let d = date.map_or_else(|| "1970-01-01".to_owned(), |d| d.to_string());
    let t = time.map(|t| t.as_str()).unwrap_or("0000");
    let hh = &t[0..2];
    let mm = &t[2..4];
    let ss = t.get(4..6).unwrap_or("00");
    format!("{d}T{hh}:{mm}:{ss}Z")
}

/// An instant from a date, time and offset from UTC (UTC when there is none).
pub(crate) fn zoned_timestamp(
    date: Option<Date>,
    time: Option<&Time>,
    offset: Option<UtcOffset>,
) -> String {
    let t = timestamp(date, time);
    match offset {
        Some(o) => format!("{}{o}", &t[..t.len() - 1]),
        None => t,
    }
}

impl Transmission {
    /// Sets the X12 envelope ids (ISA06/ISA08, GS02/GS03) from the transmission ids.
    pub fn apply_to(&self, s: &mut crate::x12::writer::EnvelopeSettings) {
        if let Some(v) = &self.interchange_sender {
            s.sender_id.clone_from(v);
        }
        if let Some(v) = &self.interchange_receiver {
            s.receiver_id.clone_from(v);
        }
        s.application_sender.clone_from(&self.application_sender);
        s.application_receiver
            .clone_from(&self.application_receiver);
    }
    /// The transmission ids of a received interchange (its first functional group's GS).
    pub fn from_interchange(i: &crate::x12::envelope::InterchangeSummary) -> Transmission {
        let g = i.groups.first();
        Transmission {
            interchange_sender: Some(i.header.sender_id.trim().to_owned()),
            interchange_receiver: Some(i.header.receiver_id.trim().to_owned()),
            application_sender: g.map(|g| g.header.sender.clone()),
            application_receiver: g.map(|g| g.header.receiver.clone()),
        }
    }
}
