//! Da Vinci PAS 2.2.1 (FHIR R4 4.0.1): request and response bundles to and from the domain hub,
//! validation of incoming bundles, and OperationOutcome for what cannot be accepted.
//! Codecs are pure functions of JSON bytes and domain values: no I/O, no clock.

pub mod inquiry;
pub mod outcome;
pub mod request;
pub mod response;
pub mod subscription;
pub mod types;
pub mod validate;

pub use outcome::{FhirIssue, IssueSeverity, operation_outcome};
pub use request::{
    RequestContext, Transmission, bundle_from_request, bundle_from_request_with,
    request_from_bundle,
};
pub use response::{ResponseInput, decision_from_claim_response, response_bundle};
pub use types::*;
pub use validate::{PasKind, validate_bundle};

/// The canonical base of the PAS guide.
pub const PAS: &str = "http://hl7.org/fhir/us/davinci-pas";
/// PAS extension URLs.
pub mod ext_url {
    macro_rules! url {
        ($name:ident, $tail:literal) => {
            pub const $name: &str = concat!(
                "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/",
                $tail
            );
        };
    }
    url!(LEVEL_OF_SERVICE, "extension-levelOfServiceCode");
    url!(TRANSMISSION_IDS, "extension-TransmissionIdentifiers");
    url!(CERTIFICATION_TYPE, "extension-certificationType");
    url!(REQUEST_TYPE, "extension-serviceItemRequestType");
    url!(ITEM_TRACE_NUMBER, "extension-itemTraceNumber");
    url!(AUTHORIZATION_NUMBER, "extension-authorizationNumber");
    url!(ADMIN_REFERENCE, "extension-administrationReferenceNumber");
    url!(REQUESTED_SERVICE, "extension-requestedService");
    url!(EPSDT, "extension-epsdtIndicator");
    url!(
        NURSING_HOME_STATUS,
        "extension-nursingHomeResidentialStatus"
    );
    url!(NURSING_HOME_LEVEL, "extension-nursingHomeLevelOfCare");
    url!(REVENUE_UNIT_RATE_LIMIT, "extension-revenueUnitRateLimit");
    url!(CARE_TEAM_SCOPE, "extension-careTeamClaimScope");
    url!(DOCUMENT_INFORMATION, "extension-documentInformation");
    url!(DIAGNOSIS_RECORDED_DATE, "extension-diagnosisRecordedDate");
    url!(CONDITION_CODE, "extension-conditionCode");
    url!(HOME_HEALTH, "extension-homeHealthCareInformation");
    url!(PATIENT_STATUS, "extension-patientStatus");
    url!(SUB_DEPARTMENT, "extension-identifierSubDepartment");
    url!(JURISDICTION, "extension-identifierJurisdiction");
    url!(PRODUCT_CODE_END, "extension-productOrServiceCodeEnd");
    url!(INFO_CHANGED, "extension-infoChanged");
    url!(INFO_CANCELLED, "modifierextension-infoCancelled");
    url!(MILITARY_STATUS, "extension-militaryStatus");
    url!(REVIEW_ACTION, "extension-reviewAction");
    url!(REVIEW_ACTION_CODE, "extension-reviewActionCode");
    url!(ITEM_PREAUTH_ISSUE_DATE, "extension-itemPreAuthIssueDate");
    url!(ITEM_PREAUTH_PERIOD, "extension-itemPreAuthPeriod");
    url!(
        ITEM_REQUESTED_SERVICE_DATE,
        "extension-itemRequestedServiceDate"
    );
    url!(ITEM_AUTHORIZED_DETAIL, "extension-itemAuthorizedDetail");
    url!(ITEM_AUTHORIZED_PROVIDER, "extension-itemAuthorizedProvider");
    url!(AUTHORIZED_PROVIDER_TYPE, "extension-authorizedProviderType");
    url!(ERROR_ELEMENT, "extension-errorElement");
    url!(ERROR_PATH, "extension-errorPath");
    url!(ERROR_FOLLOWUP, "extension-errorFollowupAction");
    url!(REVENUE_CODE, "extension-revenueCode");
    url!(ITEM_CATEGORY, "extension-itemCategory");
    /// The FHIR R5 cross-version extension PAS uses to point a Claim at its Encounter.
    pub const CLAIM_ENCOUNTER: &str =
        "http://hl7.org/fhir/5.0/StructureDefinition/extension-Claim.encounter";
}

/// Code systems.
pub mod system {
    pub const X12_SERVICE_TYPE: &str = "https://codesystem.x12.org/005010/1365";
    pub const X12_REQUEST_CATEGORY: &str = "https://codesystem.x12.org/005010/1525";
    pub const X12_CERTIFICATION_TYPE: &str = "https://codesystem.x12.org/005010/1322";
    pub const X12_LEVEL_OF_SERVICE: &str = "https://codesystem.x12.org/005010/1338";
    pub const X12_ACTION: &str = "https://codesystem.x12.org/005010/306";
    pub const X12_REASON: &str = "https://codesystem.x12.org/005010/886";
    pub const X12_ENTITY: &str = "https://codesystem.x12.org/005010/98";
    pub const X12_RELATIONSHIP: &str = "https://codesystem.x12.org/005010/1069";
    pub const X12_REJECT_REASON: &str = "https://codesystem.x12.org/005010/901";
    pub const X12_FOLLOW_UP: &str = "https://codesystem.x12.org/005010/889";
    pub const X12_REPORT_TYPE: &str = "https://codesystem.x12.org/005010/755";
    pub const X12_TRANSMISSION: &str = "https://codesystem.x12.org/005010/756";
    pub const X12_CONDITION_CATEGORY: &str = "https://codesystem.x12.org/005010/1136";
    pub const X12_CONDITION: &str = "https://codesystem.x12.org/005010/1321";
    pub const X12_PROGNOSIS: &str = "https://codesystem.x12.org/005010/923";
    pub const X12_NURSING_HOME_STATUS: &str = "https://codesystem.x12.org/005010/1345";
    pub const X12_NURSING_HOME_LEVEL: &str = "https://codesystem.x12.org/005010/1337";
    pub const X12_UNITS: &str = "https://codesystem.x12.org/005010/355";
    pub const X12_ACCIDENT: &str = "https://codesystem.x12.org/005010/1362";
    pub const POS: &str =
        "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set";
    pub const BILL_TYPE: &str = "https://www.nubc.org/CodeSystem/TypeOfBill";
    pub const NUBC_ADMIT_TYPE: &str = "https://www.nubc.org/CodeSystem/PriorityTypeOfAdmitOrVisit";
    pub const NUBC_POINT_OF_ORIGIN: &str = "https://www.nubc.org/CodeSystem/PointOfOrigin";
    pub const NUBC_DISCHARGE_STATUS: &str = "https://www.nubc.org/CodeSystem/PatDischargeStatus";
    pub const NUBC_REVENUE: &str = "https://www.nubc.org/CodeSystem/RevenueCodes";
    pub const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
    pub const ICD10PCS: &str = "http://www.cms.gov/Medicare/Coding/ICD10";
    pub const HCPCS: &str = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets";
    pub const CPT: &str = "http://www.ama-assn.org/go/cpt";
    pub const CDT: &str = "http://www.ada.org/cdt";
    pub const NDC: &str = "http://hl7.org/fhir/sid/ndc";
    pub const NPI: &str = "http://hl7.org/fhir/sid/us-npi";
    pub const TIN: &str = "urn:oid:2.16.840.1.113883.4.4";
    pub const NAIC: &str = "urn:oid:2.16.840.1.113883.6.300";
    pub const NUCC: &str = "http://nucc.org/provider-taxonomy";
    pub const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
    pub const CLAIM_TYPE: &str = "http://terminology.hl7.org/CodeSystem/claim-type";
    pub const SUBSCRIBER_RELATIONSHIP: &str =
        "http://terminology.hl7.org/CodeSystem/subscriber-relationship";
    pub const PAS_TEMP: &str = "http://hl7.org/fhir/us/davinci-pas/CodeSystem/PASTempCodes";
    pub const DIAGNOSIS_TYPE: &str = "http://terminology.hl7.org/CodeSystem/ex-diagnosistype";
    pub const ADJUDICATION: &str = "http://terminology.hl7.org/CodeSystem/adjudication";
    pub const UCUM: &str = "http://unitsofmeasure.org";
    pub const USPS: &str = "https://www.usps.com/";
}

/// The largest body we read (PAS bundles are kilobytes; this leaves room for attachments).
pub const MAX_BODY: usize = 32 * 1024 * 1024;
