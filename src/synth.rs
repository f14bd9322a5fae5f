//! Synthetic 278 batches for benchmarks and memory tests: realistic requests and responses,
//! deterministic from a seed, written through the real encoders to any `Write` without holding
//! the batch in memory. Every value is made up (names, NPIs with valid check digits, member ids).
//!
//! Responses answer generated requests (`AuthorizationResponse::answering`) with a mix of
//! decisions: certified (A1), partially certified (A2), not certified (A3), pended (A4),
//! modified (A6), cancelled (C), contact payer (CT), no action required (NA), and AAA rejects
//! at the subscriber, dependent, event and service levels.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::domain::*;
use crate::x12::tx278::{self, VERSION, encode_requests, encode_responses};
use crate::x12::writer::{
    ControlKind, ControlNumbers, EnvelopeSettings, InterchangeWriter, MemoryControlNumbers, Stamp,
};

/// SplitMix64: small, fast, and the same sequence everywhere for a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    /// A string of `n` decimal digits.
    pub fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
}

const LAST_NAMES: &[&str] = &[
    "SMITH",
    "JOHNSON",
    "WILLIAMS",
    "BROWN",
    "JONES",
    "GARCIA",
    "MILLER",
    "DAVIS",
    "RODRIGUEZ",
    "MARTINEZ",
    "HERNANDEZ",
    "LOPEZ",
    "GONZALEZ",
    "WILSON",
    "ANDERSON",
    "THOMAS",
    "TAYLOR",
    "MOORE",
    "JACKSON",
    "MARTIN",
    "LEE",
    "PEREZ",
    "THOMPSON",
    "WHITE",
    "HARRIS",
    "NGUYEN",
];
const FIRST_NAMES: &[&str] = &[
    "JAMES",
    "MARY",
    "ROBERT",
    "PATRICIA",
    "JOHN",
    "JENNIFER",
    "MICHAEL",
    "LINDA",
    "DAVID",
    "ELIZABETH",
    "WILLIAM",
    "BARBARA",
    "RICHARD",
    "SUSAN",
    "JOSEPH",
    "JESSICA",
    "MARIA",
    "WEI",
    "AISHA",
    "CARLOS",
    "PRIYA",
    "OMAR",
    "SOFIA",
    "LIAM",
];
const PAYERS: &[(&str, &str)] = &[
    ("SYNTHETIC HEALTH PLAN", "SYNPLAN01"),
    ("NORTHWIND MUTUAL HEALTH", "NWMH0042"),
    ("CONTOSO CARE UMO", "CONTOSO7"),
    ("FABRIKAM BENEFITS", "FABBEN11"),
];
const ORGS: &[&str] = &[
    "SAMPLE IMAGING CENTER",
    "RIVERSIDE ORTHOPEDICS",
    "LAKEVIEW GENERAL HOSPITAL",
    "SUMMIT PHYSICAL THERAPY",
    "MAPLE HOME HEALTH",
    "HARBOR CARDIOLOGY ASSOC",
];
const PLACES: &[(&str, &str, &str)] = &[
    ("SPRINGFIELD", "IL", "62701"),
    ("FAIRVIEW", "TN", "37062"),
    ("RIVERTON", "WY", "82501"),
    ("GEORGETOWN", "TX", "78626"),
    ("SALEM", "OR", "97301"),
    ("MADISON", "WI", "53703"),
    ("ARLINGTON", "VA", "22201"),
];
const STREETS: &[&str] = &["MAIN ST", "OAK AVE", "MAPLE DR", "EXAMPLE WAY", "PARK BLVD"];
const ICD10: &[&str] = &[
    "M5416", "M5136", "G4733", "I10", "E119", "J449", "M170", "M1711", "S83511A", "Z9889",
    "C50911", "F329", "K219", "N390", "R0789", "M545", "I2510", "E6601",
];
const CPT: &[&str] = &[
    "72148", "73721", "97110", "97140", "99213", "27447", "29881", "70553", "93306", "43239",
    "J1745", "E0601", "G0283", "97530", "77067", "0001U",
];
const MODIFIERS: &[&str] = &["RT", "LT", "59", "GP", "26", "TC"];
const TAXONOMIES: &[&str] = &["207Q00000X", "207X00000X", "208600000X", "225100000X"];
const SERVICE_TYPES: &[&str] = &["1", "2", "3", "4", "12", "42", "AD", "PT", "MH"];
const DENIAL_REASONS: &[&str] = &["0A", "0F", "0L", "0U", "35", "N1", "16", "17"];
const PEND_REASONS: &[&str] = &["0P", "0V", "16", "17"];
const MESSAGES: &[&str] = &[
    "ADDITIONAL CLINICAL DOCUMENTATION REQUIRED",
    "CERTIFIED AS REQUESTED",
    "APPROVED FOR REDUCED NUMBER OF VISITS",
    "CALL THE UM DEPARTMENT AT 5555550100",
    "NO AUTHORIZATION REQUIRED FOR THIS SERVICE",
    "PEER TO PEER REVIEW AVAILABLE ON REQUEST",
];

fn text(s: &str) -> Text {
    Text::parse(s).expect("generator text is valid")
}
fn code(s: &str) -> Code {
    Code::parse(s).expect("generator code is valid")
}
fn decimal(s: &str) -> Decimal {
    Decimal::parse(s).expect("generator decimal is valid")
}

/// Makes requests and responses from a seed.
#[derive(Debug, Clone)]
pub struct Synth {
    rng: Rng,
    base: Date,
}

impl Synth {
    pub fn new(seed: u64) -> Self {
        Synth {
            rng: Rng::new(seed),
            base: Date::new(2026, 1, 5).expect("date"),
        }
    }

    fn npi(&mut self) -> Npi {
        let body = format!("1{}", self.rng.digits(8));
        (0..10)
            .find_map(|c| Npi::parse(&format!("{body}{c}")).ok())
            .expect("one check digit fits")
    }

    fn date_within(&mut self, days: u64) -> Date {
        self.base
            .add_days(self.rng.below(days) as i64)
            .expect("date in range")
    }

    fn person(&mut self, role: &str) -> Entity {
        let mut e = Entity::new(role, EntityType::Person).expect("role");
        e.name = Some(text(self.rng.pick(LAST_NAMES)));
        e.first_name = Some(text(self.rng.pick(FIRST_NAMES)));
        if self.rng.chance(20) {
            e.middle_name = Some(text(&self.rng.pick(FIRST_NAMES)[..1]));
        }
        e
    }

    fn address(&mut self) -> Address {
        let (city, state, zip) = self.rng.pick(PLACES);
        let mut lines = vec![text(&format!(
            "{} {}",
            1 + self.rng.below(9899),
            self.rng.pick(STREETS)
        ))];
        if self.rng.chance(15) {
            lines.push(text(&format!("SUITE {}", 100 + self.rng.below(800))));
        }
        Address {
            lines,
            city: Some(text(city)),
            state: Some(code(state)),
            postal_code: Some(code(zip)),
            country: None,
            country_subdivision: None,
        }
    }

    fn umo(&mut self) -> Entity {
        let (name, id) = self.rng.pick(PAYERS);
        let mut e = Entity::new("X3", EntityType::Organization).expect("role");
        e.name = Some(text(name));
        e.id = Some(Identification::Other {
            qualifier: code("PI"),
            value: text(id),
        });
        e
    }

    fn requester(&mut self) -> Entity {
        let mut e = if self.rng.chance(60) {
            self.person("1P")
        } else {
            let mut e = Entity::new("FA", EntityType::Organization).expect("role");
            e.name = Some(text(self.rng.pick(ORGS)));
            e
        };
        e.id = Some(Identification::Npi(self.npi()));
        e.address = Some(self.address());
        e.contacts = vec![Contact {
            function: code("IC"),
            name: Some(text("AUTH DESK")),
            numbers: vec![ContactNumber {
                qualifier: code("TE"),
                number: text(&format!("555555{}", self.rng.digits(4))),
            }],
        }];
        e.provider_info = Some(ProviderInfo {
            role: code("RF"),
            qualifier: code("PXC"),
            taxonomy: code(self.rng.pick(TAXONOMIES)),
        });
        e
    }

    fn demographics(&mut self, oldest: u16, youngest: u16) -> Demographics {
        let year = oldest + self.rng.below(u64::from(youngest - oldest)) as u16;
        let month = 1 + self.rng.below(12) as u8;
        let day = 1 + self.rng.below(28) as u8;
        Demographics {
            birth_date: Some(Date::new(year, month, day).expect("date")),
            gender: Some(code(self.rng.pick(&["F", "M", "U"]))),
        }
    }

    fn diagnoses(&mut self) -> Vec<Diagnosis> {
        let n = 1 + self.rng.below(4) as usize;
        (0..n)
            .map(|i| Diagnosis {
                qualifier: if i == 0 {
                    DiagnosisQualifier::Principal
                } else {
                    DiagnosisQualifier::Other
                },
                code: DiagnosisCode::Icd10Cm(Icd10Cm::parse(self.rng.pick(ICD10)).expect("ICD-10")),
                date: None,
            })
            .collect()
    }

    fn service_line(&mut self, admission: bool, start: Date, end: Date) -> ServiceLine {
        let units = (1 + self.rng.below(24)).to_string();
        let charge = format!("{}.{:02}", 50 + self.rng.below(4950), self.rng.below(100));
        let service = if admission {
            Service::Institutional {
                revenue_code: Some(code(self.rng.pick(&["0120", "0450", "0360", "0420"]))),
                procedure: None,
                charge: Some(decimal(&charge)),
                unit: Some(UnitType::Days),
                quantity: Some(decimal(&units)),
                rate: None,
                nursing_home_residential_status: None,
                nursing_home_level_of_care: None,
            }
        } else {
            let mut modifiers = vec![];
            if self.rng.chance(25) {
                modifiers.push(code(self.rng.pick(MODIFIERS)));
            }
            let cpt = self.rng.pick(CPT);
            Service::Professional {
                procedure: Procedure::new(ProcedureQualifier::Hcpcs, cpt, modifiers, None)
                    .expect("valid procedure"),
                charge: Some(decimal(&charge)),
                unit: Some(UnitType::Units),
                quantity: Some(decimal(&units)),
                place_of_service: Some(code(self.rng.pick(&["11", "22", "12", "19"]))),
                epsdt: None,
                nursing_home_level_of_care: None,
            }
        };
        let mut providers = vec![];
        if self.rng.chance(30) {
            let mut p = Entity::new("SJ", EntityType::Organization).expect("role");
            p.name = Some(text(self.rng.pick(ORGS)));
            p.id = Some(Identification::Npi(self.npi()));
            providers.push(p);
        }
        ServiceLine {
            change: None,
            trace_numbers: vec![],
            review: Some(ReviewInfo {
                category: RequestCategory::HealthServicesReview,
                certification_type: CertificationType::Initial,
                service_type: Some(code(self.rng.pick(SERVICE_TYPES))),
                location: None,
                related_causes: None,
                level_of_service: None,
                release_of_information: None,
            }),
            references: vec![],
            dates: vec![EventDate {
                qualifier: code("472"),
                date: DateOrRange::Range(DateRange::new(start, end).expect("range")),
            }],
            service: Some(service),
            teeth: vec![],
            quantity: None,
            attachments: vec![],
            message: None,
            providers,
            terms: None,
        }
    }

    /// Request number `n` of a batch.
    pub fn request(&mut self, n: u64) -> AuthorizationRequest {
        let admission = self.rng.chance(15);
        let start = self.date_within(330);
        let end = start
            .add_days(1 + self.rng.below(60) as i64)
            .expect("date in range");
        let mut subscriber = self.person("IL");
        subscriber.id = Some(Identification::MemberId(
            MemberId::parse(&format!(
                "{}{}",
                self.rng.pick(&["W", "XJH", "MBR", "Z"]),
                self.rng.digits(9)
            ))
            .expect("member id"),
        ));
        let dependent = if self.rng.chance(20) {
            let mut d = self.person("QC");
            d.demographics = Some(self.demographics(2006, 2024));
            d.relationship = Some(Relationship {
                is_subscriber: false,
                code: code(self.rng.pick(&["19", "01"])),
                birth_sequence: None,
            });
            Some(d)
        } else {
            subscriber.demographics = Some(self.demographics(1940, 2005));
            None
        };
        let mut providers = vec![];
        let mut p = if admission {
            let mut p = Entity::new("FA", EntityType::Organization).expect("role");
            p.name = Some(text(self.rng.pick(ORGS)));
            p
        } else {
            self.person("SJ")
        };
        p.id = Some(Identification::Npi(self.npi()));
        if self.rng.chance(50) {
            p.address = Some(self.address());
        }
        providers.push(p);
        let mut attachments = vec![];
        if self.rng.chance(20) {
            attachments.push(Attachment {
                report_type: code(self.rng.pick(&["M1", "OZ", "77", "CT"])),
                transmission: code("EL"),
                control_number: Some(text(&format!("ATT{}", self.rng.digits(8)))),
                description: None,
                document: None,
            });
        }
        let event = PatientEvent {
            trace_numbers: vec![TraceNumber {
                kind: TraceType::Current,
                reference: text(&format!("TRC{n:010}")),
                originator: code(&format!("9{}", self.rng.digits(9))),
                secondary: None,
                system: None,
                originator_system: None,
                jurisdiction: None,
            }],
            review: ReviewInfo {
                category: if admission {
                    RequestCategory::AdmissionReview
                } else {
                    self.rng.pick(&[
                        RequestCategory::HealthServicesReview,
                        RequestCategory::HealthServicesReview,
                        RequestCategory::SpecialtyCareReview,
                    ])
                },
                certification_type: self.rng.pick(&[
                    CertificationType::Initial,
                    CertificationType::Initial,
                    CertificationType::Initial,
                    CertificationType::Renewal,
                    CertificationType::Extension,
                ]),
                service_type: Some(code(self.rng.pick(SERVICE_TYPES))),
                location: Some(ServiceLocation {
                    code: code(if admission { "21" } else { "22" }),
                    qualifier: code("B"),
                }),
                related_causes: None,
                level_of_service: Some(if admission && self.rng.chance(30) {
                    LevelOfService::Urgent
                } else {
                    LevelOfService::Elective
                }),
                release_of_information: None,
            },
            references: vec![],
            dates: vec![EventDate {
                qualifier: code(if admission { "435" } else { "AAH" }),
                date: if admission {
                    DateOrRange::Date(start)
                } else {
                    DateOrRange::Range(DateRange::new(start, end).expect("range"))
                },
            }],
            diagnoses: self.diagnoses(),
            quantity: if admission {
                Some(ServiceQuantity {
                    unit: Some(UnitType::DaysCount),
                    quantity: Some(decimal(&(1 + self.rng.below(10)).to_string())),
                    per: None,
                    sample_count: None,
                    period: None,
                    period_count: None,
                    delivery_pattern: None,
                    delivery_time: None,
                })
            } else {
                None
            },
            conditions: vec![],
            institutional: if admission {
                Some(InstitutionalInfo {
                    admission_type: Some(code(self.rng.pick(&["1", "2", "3"]))),
                    admission_source: Some(code("1")),
                    patient_status: Some(code("30")),
                    nursing_home_status: None,
                    encounter_class: None,
                })
            } else {
                None
            },
            clinical: vec![],
            attachments,
            message: if self.rng.chance(20) {
                Some(text(self.rng.pick(&[
                    "PERSISTENT SYMPTOMS AFTER CONSERVATIVE THERAPY",
                    "FOLLOW UP OF ABNORMAL IMAGING",
                    "POST OPERATIVE REHABILITATION",
                ])))
            } else {
                None
            },
            providers,
        };
        let lines = 1 + self.rng.below(if admission { 2 } else { 5 }) as usize;
        let services = (0..lines)
            .map(|_| self.service_line(admission, start, end))
            .collect();
        AuthorizationRequest {
            revises: None,
            purpose: Purpose::Request,
            submitter_reference: text(&format!("REQ{n:010}")),
            created_date: Some(self.date_within(30)),
            created_time: Some(
                Time::parse(&format!(
                    "{:02}{:02}",
                    7 + self.rng.below(11),
                    self.rng.below(60)
                ))
                .expect("time"),
            ),
            transaction_type: None,
            umo: self.umo(),
            requester: self.requester(),
            subscriber,
            dependent,
            event,
            services,
            submitter_reference_system: None,
            created_utc_offset: None,
            revises_reference: None,
        }
    }

    fn certification(&mut self, from: Date) -> Certification {
        let until = from
            .add_days(30 + self.rng.below(150) as i64)
            .expect("date in range");
        Certification {
            issued: Some(self.date_within(30)),
            effective: Some(DateOrRange::Range(
                DateRange::new(from, until).expect("range"),
            )),
            expires: if self.rng.chance(50) {
                Some(until)
            } else {
                None
            },
        }
    }

    fn reject(&mut self, level: Level, line: Option<usize>) -> Reject {
        let reason = match level {
            Level::Subscriber | Level::Dependent => self.rng.pick(&["72", "73", "75", "58"]),
            Level::Service => self.rng.pick(&["AF", "AG", "57", "33"]),
            _ => self.rng.pick(&["15", "33", "57", "T5"]),
        };
        Reject {
            level,
            line,
            validity: Validity::Invalid,
            reason: Some(code(reason)),
            follow_up: Some(self.rng.pick(&[
                FollowUpAction::CorrectAndResubmit,
                FollowUpAction::CorrectAndResubmit,
                FollowUpAction::ResubmissionNotAllowed,
            ])),
        }
    }

    fn line_decision(
        &mut self,
        line: usize,
        action: ActionCode,
        units: Option<&Decimal>,
        from: Date,
    ) -> LineDecision {
        let certified = matches!(
            action,
            ActionCode::Certified | ActionCode::CertifiedPartial | ActionCode::Modified
        );
        let approved_units = match (action, units) {
            (ActionCode::Modified | ActionCode::CertifiedPartial, Some(u)) => {
                let v = u.as_str().parse::<u64>().unwrap_or(2);
                Some(Decimal::from_u64(v.div_ceil(2)))
            }
            (_, u) => u.cloned(),
        };
        LineDecision {
            line,
            status: action.into(),
            action: Some(action),
            certification_number: if certified {
                Some(text(&format!("AUTH{}", self.rng.digits(8))))
            } else {
                None
            },
            reason: match action {
                ActionCode::NotCertified => Some(code(self.rng.pick(DENIAL_REASONS))),
                ActionCode::Pended => Some(code(self.rng.pick(PEND_REASONS))),
                _ => None,
            },
            second_surgical_opinion: None,
            certification: if certified {
                self.certification(from)
            } else {
                Certification::default()
            },
            approved_quantity: None,
            approved_units,
            administrative_reference: None,
            trace_numbers: vec![],
            rejects: vec![],
            messages: vec![],
        }
    }

    /// A response to request number `n` (the request is generated first, so the response
    /// echoes it as a payer would).
    pub fn response(&mut self, n: u64) -> AuthorizationResponse {
        let request = self.request(n);
        let from = request
            .event
            .dates
            .first()
            .map_or(self.base, |d| d.date.start());
        let units: Vec<Option<Decimal>> = request
            .services
            .iter()
            .map(|l| l.service.as_ref().and_then(Service::quantity).cloned())
            .collect();
        let roll = self.rng.below(100);
        let mut rejects = vec![];
        let mut lines = vec![];
        let mut event_action = None;
        let mut drop_echo = false;
        let mut drop_lines = false;
        let line_actions = |this: &mut Self, a: ActionCode, lines: &mut Vec<LineDecision>| {
            for (i, u) in units.iter().enumerate() {
                lines.push(this.line_decision(i + 1, a, u.as_ref(), from));
            }
        };
        match roll {
            // Certified in total at the event and on every line.
            0..=29 => {
                event_action = Some(ActionCode::Certified);
                line_actions(self, ActionCode::Certified, &mut lines);
            }
            // Partially certified: some lines certified, the others not (or rejected).
            30..=39 => {
                let deny = self.rng.below(units.len() as u64) as usize;
                for (i, u) in units.iter().enumerate() {
                    let a = if i == deny {
                        ActionCode::NotCertified
                    } else {
                        ActionCode::Certified
                    };
                    let mut d = self.line_decision(i + 1, a, u.as_ref(), from);
                    if i == deny && units.len() > 1 && self.rng.chance(30) {
                        d.action = None;
                        d.status = Status::Rejected;
                        d.reason = None;
                        d.rejects = vec![self.reject(Level::Service, Some(i + 1))];
                    }
                    lines.push(d);
                }
                if self.rng.chance(50) {
                    event_action = Some(ActionCode::CertifiedPartial);
                }
            }
            40..=49 => {
                event_action = Some(ActionCode::NotCertified);
                line_actions(self, ActionCode::NotCertified, &mut lines);
            }
            50..=64 => {
                event_action = Some(ActionCode::Pended);
                line_actions(self, ActionCode::Pended, &mut lines);
            }
            65..=73 => {
                event_action = Some(ActionCode::Modified);
                line_actions(self, ActionCode::Modified, &mut lines);
            }
            74..=76 => {
                event_action = Some(ActionCode::Cancelled);
                line_actions(self, ActionCode::Cancelled, &mut lines);
            }
            77..=81 => {
                event_action = Some(ActionCode::ContactPayer);
                line_actions(self, ActionCode::ContactPayer, &mut lines);
            }
            82..=86 => {
                event_action = Some(ActionCode::NoActionRequired);
                line_actions(self, ActionCode::NoActionRequired, &mut lines);
            }
            // Rejected before review: the patient was not found (nothing below it is echoed),
            // or the event was invalid (the lines are not reviewed).
            _ => {
                if self.rng.chance(60) {
                    let level = if request.dependent.is_some() {
                        Level::Dependent
                    } else {
                        Level::Subscriber
                    };
                    rejects.push(self.reject(level, None));
                    drop_echo = true;
                } else {
                    rejects.push(self.reject(Level::Event, None));
                    drop_lines = true;
                }
            }
        }
        let status = overall_status(event_action, &lines, &rejects);
        let certified = matches!(
            event_action,
            Some(ActionCode::Certified | ActionCode::CertifiedPartial | ActionCode::Modified)
        );
        let mut messages = vec![];
        if self.rng.chance(25) || event_action == Some(ActionCode::Pended) {
            messages.push(text(self.rng.pick(MESSAGES)));
        }
        let decision = Decision {
            status,
            action: event_action,
            certification_number: if certified {
                Some(text(&format!("AUTH{}", self.rng.digits(8))))
            } else {
                None
            },
            reason: match event_action {
                Some(ActionCode::NotCertified) => Some(code(self.rng.pick(DENIAL_REASONS))),
                Some(ActionCode::Pended) => Some(code(self.rng.pick(PEND_REASONS))),
                _ => None,
            },
            second_surgical_opinion: None,
            certification: if certified {
                self.certification(from)
            } else {
                Certification::default()
            },
            approved_quantity: None,
            administrative_reference: if event_action == Some(ActionCode::Pended) {
                Some(text(&format!("PEND{}", self.rng.digits(10))))
            } else {
                None
            },
            trace_numbers: vec![TraceNumber {
                kind: TraceType::Current,
                reference: text(&format!("UMO{}", self.rng.digits(12))),
                originator: code(&format!("1{}", self.rng.digits(9))),
                secondary: None,
                system: None,
                originator_system: None,
                jurisdiction: None,
            }],
            rejects,
            messages,
            lines,
        };
        let mut response = AuthorizationResponse::answering(&request, decision);
        response.transaction_type = Some(code(if event_action == Some(ActionCode::Pended) {
            "19"
        } else {
            "18"
        }));
        if drop_echo {
            response.event = None;
            response.services = vec![];
            response.decision.lines = vec![];
            response.decision.trace_numbers = vec![];
        }
        if drop_lines {
            response.services = vec![];
            response.decision.lines = vec![];
        }
        response
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct BatchSpec {
    pub seed: u64,
    /// Stop once at least this many bytes are written (at an interchange boundary when
    /// interchanges hold a fixed number of sets).
    pub target_bytes: u64,
    /// Transaction sets per interchange; 0 writes one interchange holding every set.
    pub per_interchange: usize,
    /// A line break after each segment terminator.
    pub newline: bool,
}

impl Default for BatchSpec {
    fn default() -> Self {
        BatchSpec {
            seed: 278,
            target_bytes: 64 << 20,
            per_interchange: 500,
            newline: true,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchStats {
    pub bytes: u64,
    pub interchanges: u64,
    pub transactions: u64,
    pub service_lines: u64,
    pub dependents: u64,
    /// Responses by the status a reader must find (`Status::word`).
    pub statuses: BTreeMap<String, u64>,
}

struct Counting<'a, W: Write + ?Sized> {
    inner: &'a mut W,
    bytes: u64,
}

impl<W: Write + ?Sized> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn settings(spec: &BatchSpec, responses: bool) -> EnvelopeSettings {
    let s = EnvelopeSettings {
        sender_id: "SYNTHPROVIDER".into(),
        receiver_id: "SYNTHPAYER".into(),
        newline: spec.newline,
        ..EnvelopeSettings::default()
    };
    if responses { s.reversed() } else { s }
}

fn stamp() -> Stamp {
    Stamp {
        date: Date::new(2026, 2, 2).expect("date"),
        hour: 8,
        minute: 30,
    }
}

fn x12_failure(e: crate::x12::X12Error) -> io::Error {
    io::Error::other(format!("the generator made data the encoder refused: {e}"))
}

/// Item kinds the batch writer knows how to encode.
trait Item: Sized {
    fn make(synth: &mut Synth, n: u64) -> Self;
    fn encode_many(
        items: &[Self],
        s: &EnvelopeSettings,
        c: &dyn ControlNumbers,
        stamp: Stamp,
    ) -> Result<Vec<u8>, crate::x12::X12Error>;
    fn body(w: &mut crate::x12::writer::Writer, item: &Self, stamp: Stamp);
    fn count(&self, stats: &mut BatchStats);
}

impl Item for AuthorizationRequest {
    fn make(synth: &mut Synth, n: u64) -> Self {
        synth.request(n)
    }
    fn encode_many(
        items: &[Self],
        s: &EnvelopeSettings,
        c: &dyn ControlNumbers,
        stamp: Stamp,
    ) -> Result<Vec<u8>, crate::x12::X12Error> {
        encode_requests(items, s, c, stamp)
    }
    fn body(w: &mut crate::x12::writer::Writer, item: &Self, stamp: Stamp) {
        tx278::write_request(w, item, stamp)
    }
    fn count(&self, stats: &mut BatchStats) {
        stats.service_lines += self.services.len() as u64;
        stats.dependents += u64::from(self.dependent.is_some());
    }
}

impl Item for AuthorizationResponse {
    fn make(synth: &mut Synth, n: u64) -> Self {
        synth.response(n)
    }
    fn encode_many(
        items: &[Self],
        s: &EnvelopeSettings,
        c: &dyn ControlNumbers,
        stamp: Stamp,
    ) -> Result<Vec<u8>, crate::x12::X12Error> {
        encode_responses(items, s, c, stamp)
    }
    fn body(w: &mut crate::x12::writer::Writer, item: &Self, stamp: Stamp) {
        tx278::write_response(w, item, stamp)
    }
    fn count(&self, stats: &mut BatchStats) {
        stats.service_lines += self.services.len() as u64;
        stats.dependents += u64::from(self.dependent.is_some());
        *stats
            .statuses
            .entry(self.decision.status.word().to_owned())
            .or_default() += 1;
    }
}

fn write_batch<T: Item>(
    spec: &BatchSpec,
    responses: bool,
    out: &mut dyn Write,
) -> io::Result<BatchStats> {
    let mut out = Counting {
        inner: out,
        bytes: 0,
    };
    let settings = settings(spec, responses);
    let controls = MemoryControlNumbers::new();
    let mut synth = Synth::new(spec.seed);
    let mut stats = BatchStats::default();
    let mut n = 0u64;
    if spec.per_interchange > 0 {
        // Whole interchanges through the batch encoder, one at a time.
        let mut items = Vec::with_capacity(spec.per_interchange);
        while out.bytes < spec.target_bytes {
            items.clear();
            for _ in 0..spec.per_interchange {
                n += 1;
                let item = T::make(&mut synth, n);
                item.count(&mut stats);
                items.push(item);
            }
            let bytes =
                T::encode_many(&items, &settings, &controls, stamp()).map_err(x12_failure)?;
            out.write_all(&bytes)?;
            stats.interchanges += 1;
            stats.transactions += items.len() as u64;
        }
    } else {
        // One interchange, drained after every transaction set.
        let partner = settings.partner();
        let next = |k| controls.next(k, &partner).map_err(io::Error::other);
        let mut iw = InterchangeWriter::begin(&settings, next(ControlKind::Interchange)?, stamp())
            .map_err(x12_failure)?;
        iw.begin_group(&settings, "HI", VERSION, next(ControlKind::Group)?, stamp());
        while out.bytes < spec.target_bytes {
            n += 1;
            let item = T::make(&mut synth, n);
            item.count(&mut stats);
            let w = iw.begin_transaction("278", next(ControlKind::Transaction)?, VERSION);
            T::body(w, &item, stamp());
            if let Some(e) = w.error() {
                return Err(x12_failure(crate::x12::X12Error::one(e.clone())));
            }
            iw.drain_to(&mut out)?;
            stats.transactions += 1;
        }
        let rest = iw.finish().map_err(x12_failure)?;
        out.write_all(&rest)?;
        stats.interchanges = 1;
    }
    out.flush()?;
    stats.bytes = out.bytes;
    Ok(stats)
}

/// Writes a batch of 278 responses (see the module documentation for the mix).
pub fn write_responses(spec: &BatchSpec, out: &mut dyn Write) -> io::Result<BatchStats> {
    write_batch::<AuthorizationResponse>(spec, true, out)
}

/// Writes a batch of 278 requests.
pub fn write_requests(spec: &BatchSpec, out: &mut dyn Write) -> io::Result<BatchStats> {
    write_batch::<AuthorizationRequest>(spec, false, out)
}

/// `n` generated requests (for encoding benchmarks).
pub fn requests(seed: u64, n: usize) -> Vec<AuthorizationRequest> {
    let mut s = Synth::new(seed);
    (1..=n as u64).map(|i| s.request(i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x12::Severity;
    use crate::x12::stream::{Event, read_278s};
    use crate::x12::tx278::Message278;

    fn check(spec: &BatchSpec, responses: bool) -> BatchStats {
        let mut data = vec![];
        let stats = if responses {
            write_responses(spec, &mut data).unwrap()
        } else {
            write_requests(spec, &mut data).unwrap()
        };
        assert_eq!(stats.bytes, data.len() as u64);
        assert!(stats.bytes >= spec.target_bytes);
        let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
        let mut problems = vec![];
        let read = read_278s(&data[..], |e| {
            match e {
                Event::Transaction(d) => {
                    problems.extend(d.issues.into_iter().map(|i| i.to_string()));
                    match d.message {
                        Some(Message278::Response(r)) => {
                            *statuses
                                .entry(r.decision.status.word().to_owned())
                                .or_default() += 1;
                        }
                        Some(Message278::Request(_)) => {}
                        None => problems.push("undecoded".into()),
                    }
                }
                Event::Issue { issue, .. } => {
                    if issue.severity == Severity::Error {
                        problems.push(issue.to_string())
                    }
                }
                Event::Acknowledgement { .. } => problems.push("an acknowledgement".into()),
            }
            Ok(())
        })
        .unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
        assert_eq!(read.transactions, stats.transactions);
        assert_eq!(statuses, stats.statuses);
        stats
    }

    #[test]
    fn responses_are_valid_and_mixed() {
        for per in [0, 7] {
            let spec = BatchSpec {
                seed: 9,
                target_bytes: 600_000,
                per_interchange: per,
                newline: per == 0,
            };
            let stats = check(&spec, true);
            for word in [
                "approved",
                "partially_approved",
                "denied",
                "pended",
                "modified",
                "cancelled",
                "contact_payer",
                "no_action_required",
                "rejected",
            ] {
                assert!(stats.statuses.get(word).copied().unwrap_or(0) > 0, "{word}");
            }
            assert!(stats.dependents > 0);
            assert!(stats.service_lines > stats.transactions);
        }
    }

    #[test]
    fn requests_are_valid() {
        let spec = BatchSpec {
            seed: 1,
            target_bytes: 200_000,
            ..BatchSpec::default()
        };
        let stats = check(&spec, false);
        assert_eq!(stats.interchanges, 1);
    }

    #[test]
    fn deterministic_from_the_seed() {
        let spec = BatchSpec {
            target_bytes: 50_000,
            ..BatchSpec::default()
        };
        let (mut a, mut b, mut c) = (vec![], vec![], vec![]);
        write_responses(&spec, &mut a).unwrap();
        write_responses(&spec, &mut b).unwrap();
        write_responses(
            &BatchSpec {
                seed: 7,
                ..spec.clone()
            },
            &mut c,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
