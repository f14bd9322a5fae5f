//! The small X12 code lists of the 278 as enums. JSON writes the word (`health_services_review`)
//! and accepts the word or the X12 code (`HS`); the codecs use `code()` and `from_code()`.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What the codecs need of a code list enum.
pub trait CodeList: Sized + Copy {
    const WHAT: &'static str;
    fn from_code(c: &str) -> Option<Self>;
    fn code(self) -> &'static str;
    fn codes() -> String;
}

macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident, $what:literal, { $($var:ident = $code:literal, $word:literal, $desc:literal;)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $(#[doc = $desc] $var),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            /// What this code list is (for error messages).
            pub const WHAT: &'static str = $what;
            /// The X12 code.
            pub fn code(self) -> &'static str { match self { $($name::$var => $code),+ } }
            /// The JSON word.
            pub fn word(self) -> &'static str { match self { $($name::$var => $word),+ } }
            /// A plain-English description.
            pub fn description(self) -> &'static str { match self { $($name::$var => $desc),+ } }
            pub fn from_code(c: &str) -> Option<Self> {
                match c { $($code => Some($name::$var),)+ _ => None }
            }
            pub fn from_word_or_code(w: &str) -> Option<Self> {
                match w { $($word => Some($name::$var),)+ _ => Self::from_code(w) }
            }
            /// The valid codes, for error messages.
            pub fn codes() -> String {
                let v: Vec<&str> = Self::ALL.iter().map(|c| c.code()).collect();
                v.join(", ")
            }
        }
        impl CodeList for $name {
            const WHAT: &'static str = $what;
            fn from_code(c: &str) -> Option<Self> { $name::from_code(c) }
            fn code(self) -> &'static str { $name::code(self) }
            fn codes() -> String { $name::codes() }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.word()) }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> { s.serialize_str(self.word()) }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = Cow::<'de, str>::deserialize(d)?;
                $name::from_word_or_code(&s).ok_or_else(|| {
                    let words: Vec<&str> = $name::ALL.iter().map(|c| c.word()).collect();
                    serde::de::Error::custom(format!(
                        "unknown {} {:?}: expected one of {} (or the X12 codes {})",
                        $what, s, words.join(", "), $name::codes()
                    ))
                })
            }
        }
        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> { stringify!($name).into() }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                let mut values: Vec<&str> = vec![$($word),+];
                for c in [$($code),+] { if !values.contains(&c) { values.push(c); } }
                let desc: Vec<String> = vec![$(format!("{} ({}): {}", $word, $code, $desc)),+];
                let mut m = serde_json::Map::new();
                m.insert("type".into(), "string".into());
                m.insert("description".into(), format!("{}. {}", $what, desc.join("; ")).into());
                m.insert("enum".into(), values.into_iter().map(serde_json::Value::from).collect::<Vec<_>>().into());
                Schema::from(m)
            }
        }
    };
}

code_enum!(
    /// BHT02: the purpose of the transaction.
    Purpose, "transaction purpose (BHT02)", {
        Request = "13", "request", "Request for review";
        Cancellation = "01", "cancellation", "Cancellation of a previous request";
        AuthorityToDeduct = "36", "authority_to_deduct", "Authority to deduct";
        Response = "11", "response", "Response to a request";
    }
);

code_enum!(
    /// UM01: the request category.
    RequestCategory, "request category (UM01)", {
        AdmissionReview = "AR", "admission_review", "Admission review";
        HealthServicesReview = "HS", "health_services_review", "Health services review";
        SpecialtyCareReview = "SC", "specialty_care_review", "Specialty care review (referral)";
        Individual = "IN", "individual", "Individual (medical services reservation)";
    }
);

code_enum!(
    /// UM02: the certification type.
    CertificationType, "certification type (UM02)", {
        Initial = "I", "initial", "Initial";
        Renewal = "R", "renewal", "Renewal";
        Revised = "S", "revised", "Revised";
        Extension = "4", "extension", "Extension";
        Cancel = "3", "cancel", "Cancel";
        AppealImmediate = "1", "appeal_immediate", "Appeal - immediate";
        AppealStandard = "2", "appeal_standard", "Appeal - standard";
        Reconsideration = "N", "reconsideration", "Reconsideration (seen in payer guides; not confirmed for X217)";
    }
);

code_enum!(
    /// UM06: the level of service.
    LevelOfService, "level of service (UM06)", {
        Emergency = "03", "emergency", "Emergency";
        Elective = "E", "elective", "Elective";
        Urgent = "U", "urgent", "Urgent";
    }
);

code_enum!(
    /// HCR01: the action the reviewer took.
    ActionCode, "action code (HCR01)", {
        Certified = "A1", "certified", "Certified in total";
        CertifiedPartial = "A2", "certified_partial", "Certified - partial";
        NotCertified = "A3", "not_certified", "Not certified";
        Pended = "A4", "pended", "Pended";
        Modified = "A6", "modified", "Modified";
        Cancelled = "C", "cancelled", "Cancelled";
        ContactPayer = "CT", "contact_payer", "Contact payer";
        NoActionRequired = "NA", "no_action_required", "No action required";
    }
);

code_enum!(
    /// The status word of a decision, derived from the action code (or AAA rejects).
    Status, "decision status", {
        Approved = "A1", "approved", "Everything requested was certified";
        PartiallyApproved = "A2", "partially_approved", "Part of what was requested was certified";
        Denied = "A3", "denied", "Not certified";
        Pended = "A4", "pended", "The payer pended the request; a decision follows";
        Modified = "A6", "modified", "Certified with modifications";
        Cancelled = "C", "cancelled", "Cancelled";
        ContactPayer = "CT", "contact_payer", "Contact the payer";
        NoActionRequired = "NA", "no_action_required", "No action required (e.g. no authorization needed)";
        Rejected = "AAA", "rejected", "The request was rejected as invalid (AAA), no review took place";
    }
);

impl From<ActionCode> for Status {
    fn from(a: ActionCode) -> Status {
        match a {
            ActionCode::Certified => Status::Approved,
            ActionCode::CertifiedPartial => Status::PartiallyApproved,
            ActionCode::NotCertified => Status::Denied,
            ActionCode::Pended => Status::Pended,
            ActionCode::Modified => Status::Modified,
            ActionCode::Cancelled => Status::Cancelled,
            ActionCode::ContactPayer => Status::ContactPayer,
            ActionCode::NoActionRequired => Status::NoActionRequired,
        }
    }
}

code_enum!(
    /// AAA04: what the submitter should do after a reject.
    FollowUpAction, "follow-up action (AAA04)", {
        CorrectAndResubmit = "C", "correct_and_resubmit", "Please correct and resubmit";
        ResubmissionNotAllowed = "N", "resubmission_not_allowed", "Resubmission not allowed";
        ResubmitOriginal = "P", "resubmit_original", "Please resubmit original transaction";
        ResubmissionAllowed = "R", "resubmission_allowed", "Resubmission allowed";
        DoNotResubmitInquiryInitiated = "S", "do_not_resubmit_inquiry_initiated", "Do not resubmit; inquiry initiated to a third party";
        WaitThirtyDays = "W", "wait_30_days", "Please wait 30 days and resubmit";
        WaitTenDays = "X", "wait_10_days", "Please wait 10 days and resubmit";
        DoNotResubmitWillRespond = "Y", "do_not_resubmit_will_respond", "Do not resubmit; we will hold your request and respond again shortly";
    }
);

code_enum!(
    /// TRN01: whose trace number this is.
    TraceType, "trace type (TRN01)", {
        Current = "1", "current", "Current transaction trace number (the requester's)";
        Referenced = "2", "referenced", "Referenced transaction trace number (echoed by the UMO)";
    }
);

code_enum!(
    /// NM102: person or organisation.
    EntityType, "entity type (NM102)", {
        Person = "1", "person", "Person";
        Organization = "2", "organization", "Non-person entity";
    }
);

code_enum!(
    /// HI composite qualifier: which kind of diagnosis code.
    DiagnosisQualifier, "diagnosis code qualifier (HI0x-1)", {
        Principal = "ABK", "principal", "ICD-10-CM principal diagnosis";
        Other = "ABF", "other", "ICD-10-CM diagnosis";
        Admitting = "ABJ", "admitting", "ICD-10-CM admitting diagnosis";
        PatientReason = "APR", "patient_reason", "ICD-10-CM patient's reason for visit";
        ExternalCause = "ABN", "external_cause", "ICD-10-CM external cause of injury";
        Icd9Principal = "BK", "icd9_principal", "ICD-9-CM principal diagnosis";
        Icd9Other = "BF", "icd9_other", "ICD-9-CM diagnosis";
        Icd9Admitting = "BJ", "icd9_admitting", "ICD-9-CM admitting diagnosis";
        Icd9PatientReason = "PR", "icd9_patient_reason", "ICD-9-CM patient's reason for visit";
        Icd9ExternalCause = "BN", "icd9_external_cause", "ICD-9-CM external cause of injury";
        Drg = "DR", "drg", "Diagnosis related group";
        Lexicon = "LOI", "loinc", "LOINC";
    }
);

impl DiagnosisQualifier {
    /// Whether codes under this qualifier are ICD-10-CM (and so must parse as such).
    pub fn is_icd10(self) -> bool {
        matches!(
            self,
            DiagnosisQualifier::Principal
                | DiagnosisQualifier::Other
                | DiagnosisQualifier::Admitting
                | DiagnosisQualifier::PatientReason
                | DiagnosisQualifier::ExternalCause
        )
    }
}

code_enum!(
    /// SV101-1 / SV202-1 / SV301-1: the procedure code's code system.
    ProcedureQualifier, "procedure code qualifier", {
        Hcpcs = "HC", "hcpcs", "CPT or HCPCS Level II";
        Dental = "AD", "dental", "American Dental Association (CDT) code";
        Ndc = "N4", "ndc", "National Drug Code, 5-4-2 format";
        Jurisdiction = "ER", "jurisdiction", "Jurisdiction-specific procedure code";
        Hiec = "IV", "hiec", "Home infusion EDI coalition code";
        Abc = "WK", "abc", "Advanced billing concepts code";
        MutuallyDefined = "ZZ", "mutually_defined", "Mutually defined";
        Icd10Pcs = "BBR", "icd10_pcs", "ICD-10-PCS principal procedure";
        Icd10PcsOther = "BBQ", "icd10_pcs_other", "ICD-10-PCS other procedure";
    }
);

code_enum!(
    /// SV103 / SV204 / HSD01: what the quantity counts.
    UnitType, "unit or basis for measurement", {
        Units = "UN", "units", "Unit";
        Minutes = "MJ", "minutes", "Minutes";
        Days = "DA", "days", "Days";
        InternationalUnits = "F2", "international_units", "International unit";
        Visits = "VS", "visits", "Visits";
        DaysCount = "DY", "day_count", "Days (HSD)";
        Hours = "HS", "hours", "Hours";
        Months = "MN", "months", "Month";
        UnitCount = "FL", "unit_count", "Units (HSD)";
    }
);

code_enum!(
    /// AAA01: whether the request was valid at this level.
    Validity, "validity (AAA01)", {
        Valid = "Y", "valid", "The request was valid at this level";
        Invalid = "N", "invalid", "The request was invalid at this level";
    }
);

code_enum!(
    /// The loop a reject (AAA) or an error belongs to, by hierarchical level.
    Level, "hierarchical level", {
        Umo = "2000A", "umo", "Utilization management organization (2000A/2010A)";
        Requester = "2000B", "requester", "Requester (2000B/2010B)";
        Subscriber = "2000C", "subscriber", "Subscriber (2000C/2010C)";
        Dependent = "2000D", "dependent", "Dependent (2000D/2010D)";
        Event = "2000E", "event", "Patient event (2000E/2010E*)";
        Service = "2000F", "service", "Service (2000F/2010F*)";
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_codes() {
        assert_eq!(
            RequestCategory::from_code("HS"),
            Some(RequestCategory::HealthServicesReview)
        );
        let v: RequestCategory = serde_json::from_str("\"HS\"").unwrap();
        assert_eq!(v, RequestCategory::HealthServicesReview);
        let v: RequestCategory = serde_json::from_str("\"admission_review\"").unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"admission_review\"");
        let e = serde_json::from_str::<CertificationType>("\"Q\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("certification type (UM02)") && e.contains("initial"),
            "{e}"
        );
        assert_eq!(Status::from(ActionCode::Modified).word(), "modified");
    }
}
