//! Typed serde structs for the FHIR R4 (4.0.1) resources and datatypes the PAS profiles use.
//! Each struct names the elements the codecs read or write and keeps everything else in a
//! flattened catch-all (`extra`), so a resource read and written again loses nothing: unknown
//! elements, narrative, `_element` primitive extensions. Numbers are `serde_json::Number` (with
//! `arbitrary_precision` on, `100.00` stays `100.00`); positive integers (sequences) too, read
//! through [`seq`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// What a struct does not model, kept as read.
pub type Extra = Map<String, Value>;

/// A resource's narrative (`text`), kept as the raw JSON it was: the codecs never read it, and
/// not unescaping its XHTML is most of what makes reading fast.
#[derive(Debug, Clone)]
pub struct Narrative(Box<serde_json::value::RawValue>);

impl PartialEq for Narrative {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Serialize for Narrative {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Narrative {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<serde_json::value::RawValue>::deserialize(d).map(Narrative)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Coding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Coding {
    pub fn new(system: &str, code: &str) -> Coding {
        Coding {
            system: Some(system.to_owned()),
            code: Some(code.to_owned()),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CodeableConcept {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coding: Vec<Coding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl CodeableConcept {
    pub fn new(system: &str, code: &str) -> CodeableConcept {
        CodeableConcept {
            coding: vec![Coding::new(system, code)],
            ..Default::default()
        }
    }
    pub fn with_display(system: &str, code: &str, display: Option<&str>) -> CodeableConcept {
        let mut c = CodeableConcept::new(system, code);
        c.coding[0].display = display.map(str::to_owned);
        c
    }
    /// The code of the first coding in `system`.
    pub fn code_in(&self, system: &str) -> Option<&str> {
        self.coding
            .iter()
            .find(|c| c.system.as_deref() == Some(system))
            .and_then(|c| c.code.as_deref())
    }
    /// The first coding that has a code.
    pub fn first(&self) -> Option<&Coding> {
        self.coding.iter().find(|c| c.code.is_some())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Identifier {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigner: Option<Box<Reference>>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Identifier {
    pub fn new(system: &str, value: &str) -> Identifier {
        Identifier {
            system: Some(system.to_owned()),
            value: Some(value.to_owned()),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Reference {
    pub fn to(reference: &str) -> Reference {
        Reference {
            reference: Some(reference.to_owned()),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Period {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Quantity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Money {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HumanName {
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub given: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suffix: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub line: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactPoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An extension: `url`, nested extensions, and `value[x]` kept in `extra` (read through the
/// typed accessors).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extension {
    pub url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Extension {
    pub fn with_value(url: &str, key: &str, value: Value) -> Extension {
        let mut extra = Extra::new();
        extra.insert(key.to_owned(), value);
        Extension {
            url: url.to_owned(),
            extension: vec![],
            extra,
        }
    }
    pub fn complex(url: &str, parts: Vec<Extension>) -> Extension {
        Extension {
            url: url.to_owned(),
            extension: parts,
            extra: Extra::new(),
        }
    }
    pub fn string(url: &str, v: &str) -> Extension {
        Extension::with_value(url, "valueString", Value::String(v.to_owned()))
    }
    pub fn code(url: &str, v: &str) -> Extension {
        Extension::with_value(url, "valueCode", Value::String(v.to_owned()))
    }
    pub fn date(url: &str, v: &str) -> Extension {
        Extension::with_value(url, "valueDate", Value::String(v.to_owned()))
    }
    pub fn boolean(url: &str, v: bool) -> Extension {
        Extension::with_value(url, "valueBoolean", Value::Bool(v))
    }
    pub fn typed<T: Serialize>(url: &str, key: &str, v: &T) -> Extension {
        Extension::with_value(url, key, serde_json::to_value(v).unwrap_or(Value::Null))
    }
    /// The `value[x]` element: its key (`valueCodeableConcept`...) and value.
    pub fn value(&self) -> Option<(&str, &Value)> {
        self.extra
            .iter()
            .find(|(k, _)| k.starts_with("value"))
            .map(|(k, v)| (k.as_str(), v))
    }
    fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        // Deserializing from `&Value` avoids cloning the subtree.
        self.extra.get(key).and_then(|v| T::deserialize(v).ok())
    }
    pub fn value_str(&self) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, v)| k.starts_with("value") && v.is_string())
            .and_then(|(_, v)| v.as_str())
    }
    pub fn value_bool(&self) -> Option<bool> {
        self.extra.get("valueBoolean").and_then(Value::as_bool)
    }
    pub fn value_cc(&self) -> Option<CodeableConcept> {
        self.get("valueCodeableConcept")
    }
    pub fn value_ref(&self) -> Option<Reference> {
        self.get("valueReference")
    }
    pub fn value_identifier(&self) -> Option<Identifier> {
        self.get("valueIdentifier")
    }
    pub fn value_period(&self) -> Option<Period> {
        self.get("valuePeriod")
    }
    pub fn value_quantity(&self) -> Option<Quantity> {
        self.get("valueQuantity")
    }
    pub fn value_money(&self) -> Option<Money> {
        self.get("valueMoney")
    }
    /// A decimal or integer value, as written.
    pub fn value_number(&self) -> Option<Number> {
        self.value().and_then(|(_, v)| match v {
            Value::Number(n) => Some(n.clone()),
            _ => None,
        })
    }
    /// The sub-extension with this url.
    pub fn part(&self, url: &str) -> Option<&Extension> {
        self.extension.iter().find(|e| e.url == url)
    }
}

/// Finds an extension by url in a list.
pub fn ext<'a>(list: &'a [Extension], url: &str) -> Option<&'a Extension> {
    list.iter().find(|e| e.url == url)
}

pub fn exts<'a>(list: &'a [Extension], url: &'a str) -> impl Iterator<Item = &'a Extension> {
    list.iter().filter(move |e| e.url == url)
}

/// A FHIR positiveInt / unsignedInt read from a JSON number however it was written.
pub fn seq(n: &Number) -> Option<u32> {
    n.as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .or_else(|| n.to_string().parse().ok())
}

pub fn num(v: u32) -> Number {
    Number::from(v)
}

// ---------------------------------------------------------------- Bundle

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    #[serde(default)]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry: Vec<BundleEntry>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Resource>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A resource in a bundle: typed when the codecs read it, otherwise kept as JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    Claim(Box<Claim>),
    ClaimResponse(Box<ClaimResponse>),
    Patient(Box<Patient>),
    Coverage(Box<Coverage>),
    Organization(Box<Organization>),
    Practitioner(Box<Practitioner>),
    PractitionerRole(Box<PractitionerRole>),
    Encounter(Box<Encounter>),
    /// Any other resource (ServiceRequest, DocumentReference, Location...), as read.
    Other(Extra),
}

impl Resource {
    pub fn resource_type(&self) -> &str {
        match self {
            Resource::Claim(_) => "Claim",
            Resource::ClaimResponse(_) => "ClaimResponse",
            Resource::Patient(_) => "Patient",
            Resource::Coverage(_) => "Coverage",
            Resource::Organization(_) => "Organization",
            Resource::Practitioner(_) => "Practitioner",
            Resource::PractitionerRole(_) => "PractitionerRole",
            Resource::Encounter(_) => "Encounter",
            Resource::Other(m) => m.get("resourceType").and_then(Value::as_str).unwrap_or(""),
        }
    }
    pub fn id(&self) -> Option<&str> {
        match self {
            Resource::Claim(r) => r.id.as_deref(),
            Resource::ClaimResponse(r) => r.id.as_deref(),
            Resource::Patient(r) => r.id.as_deref(),
            Resource::Coverage(r) => r.id.as_deref(),
            Resource::Organization(r) => r.id.as_deref(),
            Resource::Practitioner(r) => r.id.as_deref(),
            Resource::PractitionerRole(r) => r.id.as_deref(),
            Resource::Encounter(r) => r.id.as_deref(),
            Resource::Other(m) => m.get("id").and_then(Value::as_str),
        }
    }
    /// Reads a resource from its JSON object; a known type that does not fit its struct is an
    /// error naming the element.
    pub fn from_value(v: Value) -> Result<Resource, String> {
        let Value::Object(m) = v else {
            return Err("a resource is a JSON object".into());
        };
        fn typed<T: serde::de::DeserializeOwned>(m: Extra) -> Result<Box<T>, String> {
            serde_path_to_error::deserialize(Value::Object(m))
                .map(Box::new)
                .map_err(|e| format!("{}: {}", e.path(), e.inner()))
        }
        let rt = m.get("resourceType").and_then(Value::as_str).unwrap_or("");
        Ok(match rt {
            "Claim" => Resource::Claim(typed(m)?),
            "ClaimResponse" => Resource::ClaimResponse(typed(m)?),
            "Patient" => Resource::Patient(typed(m)?),
            "Coverage" => Resource::Coverage(typed(m)?),
            "Organization" => Resource::Organization(typed(m)?),
            "Practitioner" => Resource::Practitioner(typed(m)?),
            "PractitionerRole" => Resource::PractitionerRole(typed(m)?),
            "Encounter" => Resource::Encounter(typed(m)?),
            "" => return Err("resourceType is missing".into()),
            _ => Resource::Other(m),
        })
    }
    pub fn to_value(&self) -> Value {
        let r = match self {
            Resource::Claim(r) => serde_json::to_value(r),
            Resource::ClaimResponse(r) => serde_json::to_value(r),
            Resource::Patient(r) => serde_json::to_value(r),
            Resource::Coverage(r) => serde_json::to_value(r),
            Resource::Organization(r) => serde_json::to_value(r),
            Resource::Practitioner(r) => serde_json::to_value(r),
            Resource::PractitionerRole(r) => serde_json::to_value(r),
            Resource::Encounter(r) => serde_json::to_value(r),
            Resource::Other(m) => Ok(Value::Object(m.clone())),
        };
        r.unwrap_or(Value::Null)
    }
}

impl Serialize for Resource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Resource::Claim(r) => r.serialize(s),
            Resource::ClaimResponse(r) => r.serialize(s),
            Resource::Patient(r) => r.serialize(s),
            Resource::Coverage(r) => r.serialize(s),
            Resource::Organization(r) => r.serialize(s),
            Resource::Practitioner(r) => r.serialize(s),
            Resource::PractitionerRole(r) => r.serialize(s),
            Resource::Encounter(r) => r.serialize(s),
            Resource::Other(m) => m.serialize(s),
        }
    }
}

/// Reads a resource straight into its typed struct when `resourceType` comes first (as every
/// FHIR serializer writes it), without an intermediate `Value`; otherwise through a `Value`.
impl<'de> Deserialize<'de> for Resource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::value::MapAccessDeserializer;
        use serde::de::{Error, MapAccess, Visitor};

        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Resource;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a FHIR resource (a JSON object with resourceType)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Resource, A::Error> {
                let Some(first) = map.next_key::<String>()? else {
                    return Err(A::Error::custom("resourceType is missing"));
                };
                if first != "resourceType" {
                    let mut m = Extra::new();
                    m.insert(first, map.next_value()?);
                    while let Some((k, v)) = map.next_entry::<String, Value>()? {
                        m.insert(k, v);
                    }
                    return Resource::from_value(Value::Object(m)).map_err(A::Error::custom);
                }
                let rt: String = map.next_value()?;
                let rest = MapAccessDeserializer::new(map);
                macro_rules! typed {
                    ($variant:ident, $ty:ty) => {{
                        let mut r = <$ty>::deserialize(rest)?;
                        r.resource_type = rt;
                        Resource::$variant(Box::new(r))
                    }};
                }
                Ok(match rt.as_str() {
                    "Claim" => typed!(Claim, Claim),
                    "ClaimResponse" => typed!(ClaimResponse, ClaimResponse),
                    "Patient" => typed!(Patient, Patient),
                    "Coverage" => typed!(Coverage, Coverage),
                    "Organization" => typed!(Organization, Organization),
                    "Practitioner" => typed!(Practitioner, Practitioner),
                    "PractitionerRole" => typed!(PractitionerRole, PractitionerRole),
                    "Encounter" => typed!(Encounter, Encounter),
                    _ => {
                        let rest = Extra::deserialize(rest)?;
                        let mut m = Extra::with_capacity(rest.len() + 1);
                        m.insert("resourceType".into(), Value::String(rt));
                        m.extend(rest);
                        Resource::Other(m)
                    }
                })
            }
        }
        d.deserialize_map(V)
    }
}

// ---------------------------------------------------------------- Claim

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    #[serde(default)]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Narrative>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<CodeableConcept>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billable_period: Option<Period>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insurer: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<ClaimRelated>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub care_team: Vec<CareTeam>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supporting_info: Vec<SupportingInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnosis: Vec<ClaimDiagnosis>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub insurance: Vec<ClaimInsurance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accident: Option<Accident>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item: Vec<ClaimItem>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimRelated {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<CodeableConcept>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CareTeam {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualification: Option<CodeableConcept>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportingInfo {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifier_extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing_period: Option<Period>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_string: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_reference: Option<Reference>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimDiagnosis {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis_codeable_concept: Option<CodeableConcept>,
    #[serde(default, rename = "type", skip_serializing_if = "Vec::is_empty")]
    pub type_: Vec<CodeableConcept>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimInsurance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focal: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Reference>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accident {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_address: Option<Address>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimItem {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifier_extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<Number>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub care_team_sequence: Vec<Number>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnosis_sequence: Vec<Number>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub information_sequence: Vec<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revenue: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_or_service: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifier: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serviced_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serviced_period: Option<Period>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_codeable_concept: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Money>,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------- ClaimResponse

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimResponse {
    #[serde(default)]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Narrative>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<CodeableConcept>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insurer: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requestor: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_auth_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_auth_period: Option<Period>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item: Vec<ResponseItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_item: Vec<AddItem>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adjudication: Vec<Adjudication>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub process_note: Vec<ProcessNote>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communication_request: Vec<Reference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<ResponseError>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseItem {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_sequence: Option<Number>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adjudication: Vec<Adjudication>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddItem {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item_sequence: Vec<Number>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provider: Vec<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_or_service: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifier: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serviced_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serviced_period: Option<Period>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adjudication: Vec<Adjudication>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Adjudication {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<CodeableConcept>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessNote {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<Number>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseError {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_sequence: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------- parties

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    #[serde(default)]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Narrative>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<HumanName>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    #[serde(default)]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Narrative>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beneficiary: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payor: Vec<Reference>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    #[serde(default)]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Narrative>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default, rename = "type", skip_serializing_if = "Vec::is_empty")]
    pub type_: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<OrgContact>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrgContact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<HumanName>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Practitioner {
    #[serde(default)]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Narrative>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<HumanName>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PractitionerRole {
    #[serde(default)]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Narrative>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practitioner: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Reference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub specialty: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub location: Vec<Reference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Encounter {
    #[serde(default)]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Narrative>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, rename = "class", skip_serializing_if = "Option::is_none")]
    pub class: Option<Coding>,
    #[serde(default, rename = "type", skip_serializing_if = "Vec::is_empty")]
    pub type_: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hospitalization: Option<Hospitalization>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hospitalization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admit_source: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discharge_disposition: Option<CodeableConcept>,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------- OperationOutcome

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationOutcome {
    #[serde(default)]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub issue: Vec<OutcomeIssue>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutcomeIssue {
    pub severity: String,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expression: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
