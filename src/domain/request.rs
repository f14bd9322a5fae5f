//! The internal authorization request: what a provider asks a payer (UMO) to certify.
//! It follows the 278's hierarchy (UMO, requester, subscriber, dependent, event, services)
//! because every other format maps onto the same parties and levels.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::codes::*;
use super::values::*;

/// An authorization request (a 278 request, a PAS request Bundle, or our JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationRequest {
    /// BHT02: request (default), cancellation or authority to deduct.
    #[serde(default = "default_purpose")]
    pub purpose: Purpose,
    /// BHT03: the submitter's reference for this request, echoed in the response.
    pub submitter_reference: Text,
    /// The namespace the submitter's reference belongs to (PAS `Bundle.identifier.system`, a
    /// URI). BHT03 has none, so the 278 does not carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitter_reference_system: Option<Text>,
    /// BHT04: when the request was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date: Option<Date>,
    /// BHT05: the time it was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<Time>,
    /// The offset from UTC of the creation date and time (PAS `Bundle.timestamp`, e.g.
    /// `+05:00`); absent means UTC. BHT04/BHT05 carry no time zone, so the 278 does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_utc_offset: Option<UtcOffset>,
    /// BHT06: transaction type code (e.g. RU medical services reservation, 18 / 19 in responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_type: Option<Code>,
    /// 2010A: the payer or utilization management organization asked to review.
    pub umo: Entity,
    /// 2010B: the provider (or facility) asking.
    pub requester: Entity,
    /// 2010C: the subscriber, holder of the coverage.
    pub subscriber: Entity,
    /// 2010D: the patient, when the patient is a dependent and not the subscriber.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependent: Option<Entity>,
    /// 2000E: the patient event under review.
    pub event: PatientEvent,
    /// 2000F: the services requested (may be empty for an admission reviewed as a whole).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceLine>,
    /// An update of an earlier request (PAS Claim Update, `Claim.related` with relationship
    /// prior): that request's patient-event trace number. The 278 has no element for it (a
    /// revision names the prior authorization by REF*BB / REF*NT), so X12 does not carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revises: Option<TraceNumber>,
    /// Where the prior request of an update is found: the fullUrl of the prior Claim a PAS
    /// Claim Update carries beside it (`Claim.related.claim.reference`; the guide has the
    /// prior Claim included). Absent when the update names the prior request by its trace
    /// number only. The 278 does not carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revises_reference: Option<Text>,
}

/// An offset from UTC, `+hh:mm` or `-hh:mm` (at most 14 hours, as ISO 8601 and FHIR allow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UtcOffset {
    minutes: i16,
}

impl UtcOffset {
    /// `+hh:mm` or `-hh:mm`.
    pub fn parse(s: &str) -> Result<UtcOffset, ValueError> {
        let bad = |why: &str| ValueError::new("UTC offset", s, why);
        let b = s.as_bytes();
        if b.len() != 6
            || !matches!(b[0], b'+' | b'-')
            || b[3] != b':'
            || ![b[1], b[2], b[4], b[5]].iter().all(u8::is_ascii_digit)
        {
            return Err(bad("an offset is +hh:mm or -hh:mm"));
        }
        let hh = i16::from(b[1] - b'0') * 10 + i16::from(b[2] - b'0');
        let mm = i16::from(b[4] - b'0') * 10 + i16::from(b[5] - b'0');
        if mm > 59 || hh * 60 + mm > 14 * 60 {
            return Err(bad("an offset is at most 14:00 and minutes are 00 to 59"));
        }
        let minutes = hh * 60 + mm;
        Ok(UtcOffset {
            minutes: if b[0] == b'-' { -minutes } else { minutes },
        })
    }
    /// The offset in minutes east of UTC.
    pub fn minutes(&self) -> i16 {
        self.minutes
    }
}

impl std::fmt::Display for UtcOffset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.minutes < 0 { '-' } else { '+' };
        let m = self.minutes.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", m / 60, m % 60)
    }
}

impl Serialize for UtcOffset {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UtcOffset {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        UtcOffset::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for UtcOffset {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "UtcOffset".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[+-][0-9]{2}:[0-5][0-9]$",
            "description": "offset from UTC, +hh:mm or -hh:mm"
        })
    }
}

fn default_purpose() -> Purpose {
    Purpose::Request
}

impl AuthorizationRequest {
    /// The member id of the coverage (the subscriber's NM109 with qualifier MI).
    pub fn member_id(&self) -> Option<&MemberId> {
        match &self.subscriber.id {
            Some(Identification::MemberId(m)) => Some(m),
            _ => None,
        }
    }
    /// The patient: the dependent when there is one, else the subscriber.
    pub fn patient(&self) -> &Entity {
        self.dependent.as_ref().unwrap_or(&self.subscriber)
    }
}

/// A party named in an NM1 loop: payer, provider, subscriber, dependent, facility...
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    /// NM101: the entity's role (X3 UMO, 1P provider, FA facility, IL subscriber, QC patient,
    /// SJ service provider, DN referring, 71 attending...).
    pub role: Code,
    /// NM102: person or organization.
    pub kind: EntityType,
    /// NM103: last name or organization name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// NM104.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<Text>,
    /// NM105.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<Text>,
    /// NM106.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<Text>,
    /// NM107.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<Text>,
    /// NM108/NM109: the identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Identification>,
    /// REF: supplemental identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// N3/N4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// PER.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
    /// PRV: provider role and taxonomy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_info: Option<ProviderInfo>,
    /// DMG: birth date and gender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demographics: Option<Demographics>,
    /// INS: the relationship to the subscriber (INS02), for subscriber and dependent loops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<Relationship>,
    /// The namespace of `id` (a FHIR `Identifier.system`: the member id's issuing system on a
    /// Coverage, say) when it is not the one the qualifier implies. NM108/NM109 have no
    /// system, so the 278 does not carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_system: Option<Text>,
    /// The entity identifier code the party gives itself (PAS `Organization.type`) when it
    /// differs from `role`, the NM101 of the loop it is in: PR (payer) on an insurer, whose
    /// 2010A NM101 is X3; X3 on a requester, whose 2010B NM101 is 1P or FA. The 278 writes
    /// the loop's code only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stated_role: Option<Code>,
    /// Where a provider practises (PAS `PractitionerRole.location`). A 278 request has no loop
    /// for a provider's separate service locations, so it does not carry them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Site>,
}

/// A place where services are provided (PAS Location).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// The place's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// Its identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<SystemIdentifier>,
    /// Whether it is active, suspended or inactive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Code>,
    /// What kind of place it is (e.g. a v3 RoleCode such as HOSP).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<SystemCode>,
    /// Its address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// Its phone, fax, e-mail or URL (qualifiers as in PER: TE, FX, EM, UR).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub numbers: Vec<ContactNumber>,
}

/// An identifier with the namespace it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemIdentifier {
    /// The namespace (a URI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Text>,
    /// The identifier.
    pub value: Text,
}

/// A code from a named code system (LOINC, a US Core category, a v3 code...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemCode {
    /// The code system (a URI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Text>,
    /// The code as the system writes it (LOINC codes have a dash, `11505-5`).
    pub code: Text,
}

impl Entity {
    pub fn new(role: &str, kind: EntityType) -> Result<Entity, ValueError> {
        Ok(Entity {
            role: Code::parse(role)?,
            kind,
            name: None,
            first_name: None,
            middle_name: None,
            prefix: None,
            suffix: None,
            id: None,
            references: vec![],
            address: None,
            contacts: vec![],
            provider_info: None,
            demographics: None,
            relationship: None,
            id_system: None,
            stated_role: None,
            locations: vec![],
        })
    }
}

/// NM108/NM109. Identifiers whose form we know are typed (an NPI carries its check digit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Identification {
    /// NM108 = XX.
    Npi(Npi),
    /// NM108 = MI.
    MemberId(MemberId),
    /// Any other qualifier (PI payer id, 46 ETIN, 24 EIN, 34 SSN, SV service provider number...).
    Other { qualifier: Code, value: Text },
}

impl Identification {
    pub fn qualifier(&self) -> &str {
        match self {
            Identification::Npi(_) => "XX",
            Identification::MemberId(_) => "MI",
            Identification::Other { qualifier, .. } => qualifier.as_str(),
        }
    }
    pub fn value(&self) -> &str {
        match self {
            Identification::Npi(v) => v.as_str(),
            Identification::MemberId(v) => v.as_str(),
            Identification::Other { value, .. } => value.as_str(),
        }
    }
}

/// REF: a qualified reference number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// REF01 (e.g. BB authorization number, NT administrative reference, ZH, EI, SY, 1J...).
    pub qualifier: Code,
    /// REF02.
    pub value: Text,
    /// REF03 (description), rarely used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Text>,
    /// The namespace of the number (a FHIR `Identifier.system`, e.g. the issuer of a
    /// patient's record number). REF has none, so the 278 does not carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Text>,
}

/// N3/N4.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// N301, N302.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<Text>,
    /// N401.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<Text>,
    /// N402.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Code>,
    /// N403.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<Code>,
    /// N404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<Code>,
    /// N407: country subdivision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_subdivision: Option<Code>,
}

/// PER: a contact and up to three numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// PER01 (IC information contact).
    pub function: Code,
    /// PER02.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// PER03..PER08: qualifier (TE phone, EX extension, FX fax, EM e-mail, UR URL) and number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub numbers: Vec<ContactNumber>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactNumber {
    pub qualifier: Code,
    pub number: Text,
}

/// PRV: provider information.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderInfo {
    /// PRV01 (AT attending, RF referring, PE performing, OP operating, AD admitting...).
    pub role: Code,
    /// PRV02 (PXC for a taxonomy code).
    pub qualifier: Code,
    /// PRV03: the taxonomy code.
    pub taxonomy: Code,
}

/// DMG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Demographics {
    /// DMG02 (DMG01 = D8). X12 requires it in a DMG: without it the 278 carries no DMG at
    /// all (a gender alone cannot travel in X12; PAS requires a birth date anyway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<Date>,
    /// DMG03: F, M or U.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Code>,
}

/// INS: relationship to the subscriber.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Relationship {
    /// INS01: Y when this person is the subscriber.
    pub is_subscriber: bool,
    /// INS02: individual relationship code (18 self, 01 spouse, 19 child, G8 other...).
    pub code: Code,
    /// INS17: birth sequence number (twins and such).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_sequence: Option<Decimal>,
}

/// TRN: a trace number, how responses are matched to requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceNumber {
    /// TRN01.
    pub kind: TraceType,
    /// TRN02.
    pub reference: Text,
    /// TRN03: the originating company (10 characters, often `9` + EIN).
    pub originator: Code,
    /// TRN04: a second reference (department, division).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary: Option<Text>,
    /// The namespace of the trace number (PAS `Claim.identifier.system` or the
    /// itemTraceNumber's system) when it is not `urn:trnorg:<TRN03>`. TRN has no system, so
    /// the 278 does not carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<Text>,
    /// The namespace of the originator's identifier (PAS
    /// `identifier.assigner.identifier.system`); TRN03 keeps the value only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originator_system: Option<Text>,
    /// The state (USPS code) whose jurisdiction the number belongs to (PAS
    /// identifierJurisdiction). The 278 does not carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<Code>,
}

/// UM: what kind of review is asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInfo {
    /// UM01.
    pub category: RequestCategory,
    /// UM02.
    pub certification_type: CertificationType,
    /// UM03: service type (1 medical care, 2 surgical, 4 diagnostic x-ray, 12 DME purchase,
    /// 42 home health, A9 rehabilitation, AD occupational therapy, PT physical therapy...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<Code>,
    /// UM04: where the service happens (code and qualifier: B place of service, A bill type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<ServiceLocation>,
    /// UM05: related causes (AA auto accident, AP another party, EM employment, OA other accident).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_causes: Option<RelatedCauses>,
    /// UM06.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_of_service: Option<LevelOfService>,
    /// UM09: release of information code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_of_information: Option<Code>,
}

/// UM04 composite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceLocation {
    /// UM04-1: e.g. place-of-service code `11` (office).
    pub code: Code,
    /// UM04-2: `B` place of service, `A` UB bill type.
    pub qualifier: Code,
}

/// UM05 composite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelatedCauses {
    /// UM05-1..3.
    pub causes: Vec<Code>,
    /// UM05-4: state of an auto accident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Code>,
    /// UM05-5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<Code>,
}

/// DTP: a qualified date or date range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventDate {
    /// DTP01: AAH event, 435 admission, 096 discharge, 439 accident, 484 last menstrual period,
    /// 431 onset, ABC estimated birth, 472 service, 102/036/007 certification dates...
    pub qualifier: Code,
    /// DTP02/03: D8 (one date) or RD8 (range).
    pub date: DateOrRange,
}

/// HI composite: one diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Diagnosis {
    /// HI0x-1.
    pub qualifier: DiagnosisQualifier,
    /// HI0x-2: for ICD-10-CM qualifiers an ICD-10-CM code; other code systems are kept as text.
    pub code: DiagnosisCode,
    /// HI0x-4 (with HI0x-3 = D8): the date of the diagnosis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<Date>,
}

/// A diagnosis code: ICD-10-CM validated, or another code system's code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DiagnosisCode {
    Icd10Cm(Icd10Cm),
    Other(Code),
}

impl DiagnosisCode {
    pub fn as_str(&self) -> &str {
        match self {
            DiagnosisCode::Icd10Cm(c) => c.as_str(),
            DiagnosisCode::Other(c) => c.as_str(),
        }
    }
}

/// HSD: quantity and frequency of services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceQuantity {
    /// HSD01: what is counted (VS visits, DY days, FL units, HS hours, MN months).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitType>,
    /// HSD02.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Decimal>,
    /// HSD03: per what (DA days, WK week, MO month...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<Code>,
    /// HSD04: how many per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_count: Option<Decimal>,
    /// HSD05: time period qualifier (7 day, 34 month, 35 week...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Code>,
    /// HSD06: number of periods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_count: Option<Decimal>,
    /// HSD07: delivery pattern (ship/delivery calendar pattern code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_pattern: Option<Code>,
    /// HSD08: delivery time code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_time: Option<Code>,
}

/// The clinical detail segments a 278 event may carry, in the order the TR3 puts them.
pub const CLINICAL_SEGMENTS: [&str; 5] = ["CR1", "CR2", "CR5", "CR6", "CR7"];

impl ServiceQuantity {
    /// Whether nothing is given (an HSD must carry something).
    pub fn is_empty(&self) -> bool {
        self.unit.is_none()
            && self.quantity.is_none()
            && self.per.is_none()
            && self.sample_count.is_none()
            && self.period.is_none()
            && self.period_count.is_none()
            && self.delivery_pattern.is_none()
            && self.delivery_time.is_none()
    }
}

/// CRC: a condition indicator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// CRC01: category (07 ambulance, 08 spinal manipulation, 09 DME, 11 home health, 75...).
    pub category: Code,
    /// CRC02: whether the condition applies.
    pub applies: bool,
    /// CRC03..CRC07: condition codes (one to five).
    pub codes: Vec<Code>,
}

/// CL1: institutional claim codes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstitutionalInfo {
    /// CL101: admission type (1 emergency, 2 urgent, 3 elective...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission_type: Option<Code>,
    /// CL102: admission source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission_source: Option<Code>,
    /// CL103: patient status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_status: Option<Code>,
    /// CL104: nursing home residential status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nursing_home_status: Option<Code>,
    /// The class of the encounter (v3 ActCode: IMP inpatient, AMB ambulatory, EMER
    /// emergency, HH home health...; PAS `Encounter.class`). CL1 has no element for it, so the
    /// 278 does not carry it; a PAS encounter without one is written as IMP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter_class: Option<Code>,
}

impl InstitutionalInfo {
    /// Whether no code is given (a CL1 must carry one).
    pub fn is_empty(&self) -> bool {
        self.admission_type.is_none()
            && self.admission_source.is_none()
            && self.patient_status.is_none()
            && self.nursing_home_status.is_none()
    }
}

/// CR1, CR2, CR5, CR6, CR7: clinical detail segments (ambulance, spinal manipulation, home
/// oxygen, home health care, home health plan), kept element by element as sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClinicalSegment {
    /// The segment id: CR1, CR2, CR5, CR6 or CR7.
    pub segment: Code,
    /// Its elements in order; an empty string is an element left empty.
    pub elements: Vec<String>,
}

/// PWK: an attachment reference (the documentation travels separately, e.g. in a 275).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// PWK01: report type (03 report justifying treatment, 04 drugs administered, 77 support
    /// data for verification, M1 medical record attachment, OZ support data for claim...).
    pub report_type: Code,
    /// PWK02: how it is sent (AA available on request, BM by mail, EL electronically, EM e-mail,
    /// FX fax, FT file transfer, VO voice).
    pub transmission: Code,
    /// PWK06 (with PWK05 = AC): the attachment control number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_number: Option<Text>,
    /// PWK07: description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Text>,
    /// The document itself, when it travels with the request (PAS
    /// `supportingInfo.valueReference` to a DocumentReference). A 278 names a document by
    /// its control number only (the document goes in a 275 or another channel), so the 278
    /// does not carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Document>,
}

/// A clinical document sent with a request (PAS DocumentReference).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Its identifiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<SystemIdentifier>,
    /// current (the default), superseded or entered-in-error.
    #[serde(default)]
    pub status: DocumentStatus,
    /// What kind of document it is (a LOINC document type, e.g. 11505-5 procedure note).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<SystemCode>,
    /// Its categories (e.g. US Core clinical-note).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<SystemCode>,
    /// When it was written (an instant as given, e.g. `2024-03-01T10:00:00Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<Text>,
    /// The period of care it covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<DateOrRange>,
    /// Its content: the data itself or where to fetch it, in one or more forms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<DocumentContent>,
}

/// The status of a document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DocumentStatus {
    #[default]
    Current,
    Superseded,
    EnteredInError,
}

impl DocumentStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            DocumentStatus::Current => "current",
            DocumentStatus::Superseded => "superseded",
            DocumentStatus::EnteredInError => "entered-in-error",
        }
    }
    pub fn parse(s: &str) -> Option<DocumentStatus> {
        Some(match s {
            "current" => DocumentStatus::Current,
            "superseded" => DocumentStatus::Superseded,
            "entered-in-error" => DocumentStatus::EnteredInError,
            _ => return None,
        })
    }
}

/// One form of a document's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentContent {
    /// The media type (`application/pdf`, `text/plain`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<Text>,
    /// The data, base64-encoded as it was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Where the data can be fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The format or template the content follows (e.g. an IHE format code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<SystemCode>,
}

/// 2000E: the patient event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientEvent {
    /// TRN: the requester's trace number(s) (TRN01 = 1); responses add the UMO's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace_numbers: Vec<TraceNumber>,
    /// UM.
    pub review: ReviewInfo,
    /// REF: BB previous authorization number, NT administrative reference...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// DTP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<EventDate>,
    /// HI (up to 12).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnoses: Vec<Diagnosis>,
    /// HSD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<ServiceQuantity>,
    /// CRC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// CL1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub institutional: Option<InstitutionalInfo>,
    /// CR1, CR2, CR5, CR6, CR7.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clinical: Vec<ClinicalSegment>,
    /// PWK (up to 10).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// MSG: free text for the reviewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Text>,
    /// 2010EA/EB/EC: attending, referring, facility, transport locations, other UMO...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<Entity>,
}

/// SV1 / SV2 / SV3 / TOO: what the service line asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Service {
    /// SV1: a professional service.
    Professional {
        procedure: Procedure,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        charge: Option<Decimal>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<UnitType>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quantity: Option<Decimal>,
        /// SV105: place of service.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        place_of_service: Option<Code>,
        /// SV111: EPSDT indicator.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epsdt: Option<bool>,
        /// SV120: nursing home level of care (X12 1337).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nursing_home_level_of_care: Option<Code>,
    },
    /// SV2: an institutional service.
    Institutional {
        /// SV201.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revenue_code: Option<Code>,
        /// SV202.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        procedure: Option<Procedure>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        charge: Option<Decimal>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<UnitType>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quantity: Option<Decimal>,
        /// SV206: unit rate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rate: Option<Decimal>,
        /// SV209: nursing home residential status (X12 1345).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nursing_home_residential_status: Option<Code>,
        /// SV210: nursing home level of care (X12 1337).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nursing_home_level_of_care: Option<Code>,
    },
    /// SV3: a dental service.
    Dental {
        procedure: Procedure,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        charge: Option<Decimal>,
        /// SV303: place of service.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        place_of_service: Option<Code>,
        /// SV306: procedure count.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quantity: Option<Decimal>,
    },
}

impl Service {
    pub fn procedure(&self) -> Option<&Procedure> {
        match self {
            Service::Professional { procedure, .. } | Service::Dental { procedure, .. } => {
                Some(procedure)
            }
            Service::Institutional { procedure, .. } => procedure.as_ref(),
        }
    }
    pub fn quantity(&self) -> Option<&Decimal> {
        match self {
            Service::Professional { quantity, .. }
            | Service::Institutional { quantity, .. }
            | Service::Dental { quantity, .. } => quantity.as_ref(),
        }
    }
}

/// A procedure (composite C003): qualifier, code, up to four modifiers, description.
/// The code is checked against its code system: CPT (5 digits, or 4 digits and F/T/U),
/// HCPCS Level II (a letter and 4 digits), CDT (D and 4 digits), NDC (11 digits).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Procedure {
    pub qualifier: ProcedureQualifier,
    pub code: Code,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modifiers: Vec<Code>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Text>,
}

impl Procedure {
    pub fn new(
        qualifier: ProcedureQualifier,
        code: &str,
        modifiers: Vec<Code>,
        description: Option<Text>,
    ) -> Result<Procedure, ValueError> {
        check_procedure(qualifier, code)?;
        if modifiers.len() > 4 {
            return Err(ValueError::new("procedure", code, "at most four modifiers"));
        }
        for m in &modifiers {
            if m.as_str().len() != 2 {
                return Err(ValueError::new(
                    "procedure modifier",
                    m.as_str(),
                    "a modifier is 2 characters",
                ));
            }
        }
        Ok(Procedure {
            qualifier,
            code: match Code::parse_quick(code) {
                Some(c) => c,
                None => Code::parse(code)?,
            },
            modifiers,
            description,
        })
    }
}

/// Checks a procedure code against the code system its qualifier names.
pub fn check_procedure(qualifier: ProcedureQualifier, code: &str) -> Result<(), ValueError> {
    let b = code.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let ok = match qualifier {
        ProcedureQualifier::Hcpcs => {
            b.len() == 5
                && (digits(b)
                    || (digits(&b[..4]) && matches!(b[4], b'F' | b'T' | b'U'))
                    || (b[0].is_ascii_uppercase() && digits(&b[1..])))
        }
        ProcedureQualifier::Dental => b.len() == 5 && b[0] == b'D' && digits(&b[1..]),
        ProcedureQualifier::Ndc => b.len() == 11 && digits(b),
        _ => !b.is_empty() && b.len() <= 48 && b.iter().all(u8::is_ascii_alphanumeric),
    };
    if ok {
        Ok(())
    } else {
        let want = match qualifier {
            ProcedureQualifier::Hcpcs => {
                "a CPT code (5 digits, or 4 digits and F, T or U) or a HCPCS code (a letter and 4 digits)"
            }
            ProcedureQualifier::Dental => "a CDT code (D and 4 digits)",
            ProcedureQualifier::Ndc => "an NDC in 5-4-2 form without dashes (11 digits)",
            _ => "1 to 48 letters or digits",
        };
        Err(ValueError::new(
            "procedure code",
            code,
            format!("{} codes are {want}", qualifier.code()),
        ))
    }
}

impl<'de> Deserialize<'de> for Procedure {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            qualifier: ProcedureQualifier,
            code: Code,
            #[serde(default)]
            modifiers: Vec<Code>,
            #[serde(default)]
            description: Option<Text>,
        }
        let r = Raw::deserialize(d)?;
        Procedure::new(r.qualifier, r.code.as_str(), r.modifiers, r.description)
            .map_err(serde::de::Error::custom)
    }
}

/// TOO: a tooth and its surfaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tooth {
    /// TOO01: code list qualifier (JP universal national tooth designation).
    pub qualifier: Code,
    /// TOO02: the tooth number.
    pub number: Code,
    /// TOO03: surfaces (M, O, D, B, L...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub surfaces: Vec<Code>,
}

/// 2000F: one requested service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceLine {
    /// TRN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace_numbers: Vec<TraceNumber>,
    /// UM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewInfo>,
    /// REF.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    /// DTP (472 service date).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<EventDate>,
    /// SV1 / SV2 / SV3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// TOO: teeth (dental).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teeth: Vec<Tooth>,
    /// HSD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<ServiceQuantity>,
    /// PWK.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// MSG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Text>,
    /// 2010F: the service providers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<Entity>,
    /// In an update: whether the line changed, was added or is cancelled (PAS infoChanged /
    /// infoCancelled). The 278 carries a cancel as UM02 = 3 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<LineChange>,
    /// The EPSDT indicator, nursing home status and level of care and unit rate limit a PAS
    /// item may carry, where `service` has no element for them: all of them on a line that
    /// asks for a service type only (no procedure or revenue code, so no SV1/SV2), the
    /// residential status and rate beside an SV1, all of them beside an SV3. What `service`
    /// can hold is kept there (SV111, SV120, SV206, SV209, SV210) and travels; these do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms: Option<ServiceTerms>,
}

/// What SV1/SV2 would say about a service beside its code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceTerms {
    /// EPSDT (early and periodic screening) involvement (SV111).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epsdt: Option<bool>,
    /// Nursing home residential status (X12 1345, SV209).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nursing_home_residential_status: Option<Code>,
    /// Nursing home level of care (X12 1337, SV120 / SV210).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nursing_home_level_of_care: Option<Code>,
    /// Unit rate limit (SV206).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Decimal>,
}

impl ServiceTerms {
    /// Whether nothing is given.
    pub fn is_empty(&self) -> bool {
        self.epsdt.is_none()
            && self.nursing_home_residential_status.is_none()
            && self.nursing_home_level_of_care.is_none()
            && self.rate.is_none()
    }
}

/// What an update does to a service line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineChange {
    Changed,
    Added,
    Cancelled,
}

impl ServiceLine {
    /// The service date or period (DTP*472), if given.
    pub fn service_dates(&self) -> Option<DateOrRange> {
        self.dates
            .iter()
            .find(|d| d.qualifier.as_str() == "472")
            .map(|d| d.date)
    }
}
