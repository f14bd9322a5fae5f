//! Shared test helpers: synthetic data generators and the shared fixtures folder.
#![allow(dead_code)]

use std::path::PathBuf;

use proptest::prelude::*;
use proptest::sample::select;

use priorauth::domain::*;

/// `$PRIORAUTH_SHARED` (default `../shared`), or None with a printed reason.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PRIORAUTH_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    if dir.join("fixtures").is_dir() {
        Some(dir)
    } else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "CI=true but the shared fixtures are missing at {}",
                dir.display()
            );
        }
        eprintln!(
            "SKIPPED: shared fixtures not found at {} (set PRIORAUTH_SHARED)",
            dir.display()
        );
        None
    }
}

pub fn text() -> impl Strategy<Value = Text> {
    "[A-Za-z0-9][A-Za-z0-9 .,&#/-]{0,18}[A-Za-z0-9]".prop_map(|s| Text::parse(&s).unwrap())
}
pub fn code() -> impl Strategy<Value = Code> {
    "[A-Z0-9]{1,3}".prop_map(|s| Code::parse(&s).unwrap())
}
fn codes(list: &'static [&'static str]) -> impl Strategy<Value = Code> {
    select(list).prop_map(|s| Code::parse(s).unwrap())
}
pub fn decimal() -> impl Strategy<Value = Decimal> {
    "[0-9]{1,5}(\\.[0-9]{1,2})?".prop_map(|s| Decimal::parse(&s).unwrap())
}
pub fn date() -> impl Strategy<Value = Date> {
    (1900u16..2100, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| Date::new(y, m, d).unwrap())
}
pub fn date_or_range() -> impl Strategy<Value = DateOrRange> {
    prop_oneof![
        date().prop_map(DateOrRange::Date),
        (date(), 0i64..400).prop_map(|(d, n)| DateOrRange::Range(
            DateRange::new(d, d.add_days(n).unwrap()).unwrap()
        )),
    ]
}
pub fn npi() -> impl Strategy<Value = Npi> {
    "1[0-9]{8}".prop_map(|body| {
        (0..10)
            .map(|c| format!("{body}{c}"))
            .find_map(|s| Npi::parse(&s).ok())
            .unwrap()
    })
}
fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    proptest::option::of(s).boxed()
}
fn all<T: CodeList + std::fmt::Debug + 'static>(list: &'static [T]) -> impl Strategy<Value = T> {
    select(list)
}

pub fn entity(roles: &'static [&'static str]) -> impl Strategy<Value = Entity> {
    let id = prop_oneof![
        npi().prop_map(Identification::Npi),
        "[A-Z0-9]{2,12}".prop_map(|s| Identification::MemberId(MemberId::parse(&s).unwrap())),
        (codes(&["PI", "46", "24", "34", "SV"]), text())
            .prop_map(|(qualifier, value)| Identification::Other { qualifier, value }),
    ];
    let address = (
        proptest::collection::vec(text(), 1..=2),
        opt(text()),
        opt(codes(&["PA", "TX", "CA"])),
        opt("[0-9]{5}".prop_map(|s| Code::parse(&s).unwrap())),
        opt(codes(&["US"])),
        opt(code()),
    )
        .prop_map(
            |(lines, city, state, postal_code, country, country_subdivision)| Address {
                lines,
                city,
                state,
                postal_code,
                country,
                country_subdivision,
            },
        );
    let contact = (
        codes(&["IC"]),
        opt(text()),
        proptest::collection::vec((codes(&["TE", "FX", "EM", "EX"]), text()), 0..=3),
    )
        .prop_map(|(function, name, numbers)| Contact {
            function,
            name,
            numbers: numbers
                .into_iter()
                .map(|(qualifier, number)| ContactNumber { qualifier, number })
                .collect(),
        });
    let names = (
        opt(text()),
        opt(text()),
        opt(text()),
        opt(text()),
        opt(text()),
    );
    let details = (
        proptest::collection::vec(
            (code(), text(), opt(text())).prop_map(|(qualifier, value, description)| Reference {
                qualifier,
                value,
                description,
                system: None,
            }),
            0..=2,
        ),
        opt(address),
        proptest::collection::vec(contact, 0..=1),
        opt((
            code(),
            codes(&["PXC"]),
            "[0-9A-Z]{10}".prop_map(|s| Code::parse(&s).unwrap()),
        )
            .prop_map(|(role, qualifier, taxonomy)| ProviderInfo {
                role,
                qualifier,
                taxonomy,
            })),
        opt((date().prop_map(Some), opt(codes(&["F", "M", "U"])))
            .prop_map(|(birth_date, gender)| Demographics { birth_date, gender })),
        opt((
            any::<bool>(),
            codes(&["18", "01", "19", "G8"]),
            opt("[1-9]".prop_map(|s| Decimal::parse(&s).unwrap())),
        )
            .prop_map(|(is_subscriber, code, birth_sequence)| Relationship {
                is_subscriber,
                code,
                birth_sequence,
            })),
    );
    (codes(roles), all(EntityType::ALL), names, opt(id), details).prop_map(
        |(
            role,
            kind,
            (name, first_name, middle_name, prefix, suffix),
            id,
            (references, address, contacts, provider_info, demographics, relationship),
        )| Entity {
            role,
            kind,
            name,
            first_name,
            middle_name,
            prefix,
            suffix,
            id,
            references,
            address,
            contacts,
            provider_info,
            demographics,
            relationship,
            id_system: None,
            stated_role: None,
            locations: vec![],
        },
    )
}

pub fn trace(kind: TraceType) -> impl Strategy<Value = TraceNumber> {
    (
        text(),
        "9[0-9]{9}".prop_map(|s| Code::parse(&s).unwrap()),
        opt(text()),
    )
        .prop_map(move |(reference, originator, secondary)| TraceNumber {
            kind,
            reference,
            originator,
            secondary,
            system: None,
            originator_system: None,
            jurisdiction: None,
        })
}

pub fn review() -> impl Strategy<Value = ReviewInfo> {
    (
        all(RequestCategory::ALL),
        all(&CertificationType::ALL[..7]),
        opt(code()),
        opt((codes(&["11", "21", "12", "22"]), codes(&["B", "A"]))
            .prop_map(|(code, qualifier)| ServiceLocation { code, qualifier })),
        opt((
            proptest::collection::vec(codes(&["AA", "AP", "EM", "OA"]), 1..=3),
            opt(codes(&["PA", "NY"])),
            opt(codes(&["US"])),
        )
            .prop_map(|(causes, state, country)| RelatedCauses {
                causes,
                state,
                country,
            })),
        opt(all(LevelOfService::ALL)),
        opt(codes(&["Y", "N"])),
    )
        .prop_map(
            |(
                category,
                certification_type,
                service_type,
                location,
                related_causes,
                level_of_service,
                release_of_information,
            )| ReviewInfo {
                category,
                certification_type,
                service_type,
                location,
                related_causes,
                level_of_service,
                release_of_information,
            },
        )
}

/// Dates that stay with the echoed event in a response (not 102/036/007).
pub fn event_date() -> impl Strategy<Value = EventDate> {
    (
        codes(&["AAH", "435", "096", "439", "484", "431", "ABC", "472"]),
        date_or_range(),
    )
        .prop_map(|(qualifier, date)| EventDate { qualifier, date })
}

pub fn diagnosis() -> impl Strategy<Value = Diagnosis> {
    let icd10 = (
        select(
            &[
                DiagnosisQualifier::Principal,
                DiagnosisQualifier::Other,
                DiagnosisQualifier::Admitting,
            ][..],
        ),
        "[A-TV-Z][0-9][0-9A-Z]([0-9A-Z]{1,4})?"
            .prop_map(|s| DiagnosisCode::Icd10Cm(Icd10Cm::parse(&s).unwrap())),
    );
    let other = (
        select(&[DiagnosisQualifier::Icd9Other, DiagnosisQualifier::Drg][..]),
        "[0-9]{3,5}".prop_map(|s| DiagnosisCode::Other(Code::parse(&s).unwrap())),
    );
    (prop_oneof![icd10, other], opt(date())).prop_map(|((qualifier, code), date)| Diagnosis {
        qualifier,
        code,
        date,
    })
}

pub fn quantity() -> impl Strategy<Value = ServiceQuantity> {
    (
        opt(select(
            &[
                UnitType::Visits,
                UnitType::DaysCount,
                UnitType::UnitCount,
                UnitType::Hours,
            ][..],
        )),
        opt(decimal()),
        opt(codes(&["DA", "WK", "MO"])),
        opt(decimal()),
        opt(codes(&["7", "34", "35"])),
        opt(decimal()),
        opt(code()),
        opt(code()),
    )
        .prop_map(
            |(
                unit,
                quantity,
                per,
                sample_count,
                period,
                period_count,
                delivery_pattern,
                delivery_time,
            )| ServiceQuantity {
                unit,
                quantity,
                per,
                sample_count,
                period,
                period_count,
                delivery_pattern,
                delivery_time,
            },
        )
        .prop_filter("an HSD carries a value", |q| !q.is_empty())
}

pub fn attachment() -> impl Strategy<Value = Attachment> {
    (
        codes(&["03", "04", "77", "M1", "OZ"]),
        codes(&["AA", "BM", "EL", "FX"]),
        opt(text()),
        opt(text()),
    )
        .prop_map(
            |(report_type, transmission, control_number, description)| Attachment {
                report_type,
                transmission,
                control_number,
                description,
                document: None,
            },
        )
}

pub fn procedure() -> impl Strategy<Value = Procedure> {
    let hc = prop_oneof!["[0-9]{5}", "[0-9]{4}[FTU]", "[A-V][0-9]{4}"]
        .prop_map(|c| (ProcedureQualifier::Hcpcs, c));
    let ad = "D[0-9]{4}".prop_map(|c| (ProcedureQualifier::Dental, c));
    let n4 = "[0-9]{11}".prop_map(|c| (ProcedureQualifier::Ndc, c));
    (
        prop_oneof![hc, ad, n4],
        proptest::collection::vec("[A-Z0-9]{2}".prop_map(|s| Code::parse(&s).unwrap()), 0..=4),
        opt(text()),
    )
        .prop_map(|((q, c), modifiers, description)| {
            Procedure::new(q, &c, modifiers, description).unwrap()
        })
}

pub fn service() -> impl Strategy<Value = Service> {
    prop_oneof![
        (
            procedure(),
            opt(decimal()),
            opt(select(&[UnitType::Units, UnitType::Minutes][..])),
            opt(decimal()),
            opt(codes(&["11", "12", "22"])),
            opt(any::<bool>()),
            opt(codes(&["1", "2", "3"]))
        )
            .prop_map(
                |(procedure, charge, unit, quantity, place_of_service, epsdt, level)| {
                    Service::Professional {
                        procedure,
                        charge,
                        unit,
                        quantity,
                        place_of_service,
                        epsdt,
                        nursing_home_level_of_care: level,
                    }
                }
            ),
        (
            "0[0-9]{3}".prop_map(|s| Code::parse(&s).unwrap()),
            opt(procedure()),
            opt(decimal()),
            opt(select(&[UnitType::Units, UnitType::Days][..])),
            opt(decimal()),
            opt(decimal()),
            opt(codes(&["1", "2", "3", "4"])),
            opt(codes(&["1", "2", "3"]))
        )
            .prop_map(
                |(rc, procedure, charge, unit, quantity, rate, status, level)| {
                    Service::Institutional {
                        revenue_code: Some(rc),
                        procedure,
                        charge,
                        unit,
                        quantity,
                        rate,
                        nursing_home_residential_status: status,
                        nursing_home_level_of_care: level,
                    }
                }
            ),
        (
            procedure(),
            opt(decimal()),
            opt(codes(&["11"])),
            opt(decimal())
        )
            .prop_map(
                |(procedure, charge, place_of_service, quantity)| Service::Dental {
                    procedure,
                    charge,
                    place_of_service,
                    quantity
                }
            ),
    ]
}

const EA_ROLES: &[&str] = &["71", "72", "AAJ", "DK", "DN", "FA", "SJ", "P3"];
const EB_ROLES: &[&str] = &["PW", "45", "FS"];

pub fn event(response: bool) -> impl Strategy<Value = PatientEvent> {
    let providers = if response {
        proptest::collection::vec(entity(EA_ROLES), 0..=2).boxed()
    } else {
        (
            proptest::collection::vec(entity(EA_ROLES), 0..=2),
            proptest::collection::vec(entity(EB_ROLES), 0..=1),
            proptest::collection::vec(entity(&["X3"]), 0..=1),
        )
            .prop_map(|(mut a, b, c)| {
                a.extend(b);
                a.extend(c);
                a
            })
            .boxed()
    };
    // Clinical segments as a 278 carries them: each at most once, in the TR3's order, with the
    // elements each one requires.
    let cr = |id: &'static str, elements: BoxedStrategy<Vec<String>>| {
        proptest::option::of(elements.prop_map(move |elements| ClinicalSegment {
            segment: Code::parse(id).unwrap(),
            elements,
        }))
    };
    let n = || "[1-9][0-9]{0,2}".prop_map(String::from);
    let clinical = (
        cr(
            "CR1",
            (Just("LB".to_owned()), n())
                .prop_map(|(a, b)| vec![a, b])
                .boxed(),
        ),
        cr("CR2", n().prop_map(|a| vec![a]).boxed()),
        cr(
            "CR5",
            (select(&["I", "R", "S"][..]), n())
                .prop_map(|(a, b)| vec![a.to_owned(), b])
                .boxed(),
        ),
        cr(
            "CR6",
            (select(&["1", "2", "8"][..]), date())
                .prop_map(|(a, d)| vec![a.to_owned(), d.to_x12()])
                .boxed(),
        ),
        cr(
            "CR7",
            (select(&["AI", "PT", "SN"][..]), n(), n())
                .prop_map(|(a, b, c)| vec![a.to_owned(), b, c])
                .boxed(),
        ),
    )
        .prop_map(|(a, b, c, d, e)| [a, b, c, d, e].into_iter().flatten().collect::<Vec<_>>());
    (
        proptest::collection::vec(trace(TraceType::Current), 0..=2),
        review(),
        proptest::collection::vec(
            (codes(&["BB", "NT", "1J", "EJ"]), text(), opt(text())).prop_map(
                |(qualifier, value, description)| Reference {
                    qualifier,
                    value,
                    description,
                    system: None,
                },
            ),
            0..=2,
        ),
        proptest::collection::vec(event_date(), 0..=3),
        proptest::collection::vec(diagnosis(), 0..=12),
        opt(quantity()),
        (
            proptest::collection::vec(
                (
                    codes(&["07", "09", "11", "75"]),
                    any::<bool>(),
                    proptest::collection::vec(code(), 1..=5),
                )
                    .prop_map(|(category, applies, codes)| Condition {
                        category,
                        applies,
                        codes,
                    }),
                0..=2,
            ),
            opt((opt(code()), opt(code()), opt(code()), opt(code()))
                .prop_map(
                    |(admission_type, admission_source, patient_status, nursing_home_status)| {
                        InstitutionalInfo {
                            admission_type,
                            admission_source,
                            patient_status,
                            nursing_home_status,
                            encounter_class: None,
                        }
                    },
                )
                .prop_filter("a CL1 carries a code", |i| !i.is_empty())),
            clinical,
            proptest::collection::vec(attachment(), 0..=3),
            opt(text()),
        ),
        providers,
    )
        .prop_map(
            move |(
                trace_numbers,
                review,
                references,
                dates,
                diagnoses,
                quantity,
                (conditions, institutional, clinical, attachments, message),
                providers,
            )| PatientEvent {
                trace_numbers,
                review,
                references,
                dates,
                diagnoses,
                quantity: if response { None } else { quantity },
                conditions,
                institutional,
                clinical,
                attachments,
                message: if response { None } else { message },
                providers,
            },
        )
}

pub fn line(response: bool) -> impl Strategy<Value = ServiceLine> {
    (
        proptest::collection::vec(trace(TraceType::Current), 0..=1),
        opt(review()),
        proptest::collection::vec(
            (codes(&["BB", "NT", "1J"]), text(), opt(text())).prop_map(
                |(qualifier, value, description)| Reference {
                    qualifier,
                    value,
                    description,
                    system: None,
                },
            ),
            0..=1,
        ),
        proptest::collection::vec(event_date(), 0..=2),
        opt(service()),
        proptest::collection::vec(
            (
                codes(&["JP"]),
                "[0-9]{1,2}".prop_map(|s| Code::parse(&s).unwrap()),
                proptest::collection::vec(codes(&["M", "O", "D"]), 0..=3),
            )
                .prop_map(|(qualifier, number, surfaces)| Tooth {
                    qualifier,
                    number,
                    surfaces,
                }),
            0..=2,
        ),
        opt(quantity()),
        proptest::collection::vec(attachment(), 0..=2),
        opt(text()),
        proptest::collection::vec(entity(EA_ROLES), 0..=2),
    )
        .prop_map(
            move |(
                trace_numbers,
                review,
                references,
                dates,
                service,
                teeth,
                quantity,
                attachments,
                message,
                providers,
            )| ServiceLine {
                trace_numbers: if response { vec![] } else { trace_numbers },
                review,
                references,
                dates,
                service,
                teeth,
                quantity: if response { None } else { quantity },
                attachments,
                message: if response { None } else { message },
                providers,
                // PAS-only (no 278 element): left to the PAS tests.
                change: None,
                terms: None,
            },
        )
}

pub fn request() -> impl Strategy<Value = AuthorizationRequest> {
    (
        select(
            &[
                Purpose::Request,
                Purpose::Cancellation,
                Purpose::AuthorityToDeduct,
            ][..],
        ),
        text(),
        date().prop_map(Some),
        select(&["1200", "0930", "235959"][..]).prop_map(|t| Some(Time::parse(t).unwrap())),
        opt(codes(&["RU", "18"])),
        (
            entity(&["X3"]),
            entity(&["1P", "FA"]),
            entity(&["IL"]),
            opt(entity(&["QC"])),
        ),
        event(false),
        proptest::collection::vec(line(false), 0..=3),
    )
        .prop_map(
            |(
                purpose,
                submitter_reference,
                created_date,
                created_time,
                transaction_type,
                (umo, requester, subscriber, dependent),
                event,
                services,
            )| AuthorizationRequest {
                purpose,
                submitter_reference,
                created_date,
                created_time,
                transaction_type,
                umo,
                requester,
                subscriber,
                dependent,
                event,
                services,
                revises: None,
                submitter_reference_system: None,
                created_utc_offset: None,
                revises_reference: None,
            },
        )
}

fn uri() -> impl Strategy<Value = Text> {
    "http://example\\.org/[a-z]{1,10}".prop_map(|s| Text::parse(&s).unwrap())
}

fn system_code() -> impl Strategy<Value = SystemCode> {
    (
        opt(uri()),
        "[0-9]{1,5}-[0-9]".prop_map(|s| Text::parse(&s).unwrap()),
    )
        .prop_map(|(system, code)| SystemCode { system, code })
}

fn system_identifier() -> impl Strategy<Value = SystemIdentifier> {
    (opt(uri()), text()).prop_map(|(system, value)| SystemIdentifier { system, value })
}

/// A service site (PAS Location).
pub fn site() -> impl Strategy<Value = Site> {
    (
        opt(text()),
        proptest::collection::vec(system_identifier(), 0..=2),
        opt(codes(&["active", "inactive"])),
        proptest::collection::vec(system_code(), 0..=2),
        opt((
            proptest::collection::vec(text(), 1..=2),
            opt(text()),
            opt(codes(&["PA", "TX", "CA"])),
            opt("[0-9]{5}".prop_map(|s| Code::parse(&s).unwrap())),
        )
            .prop_map(|(lines, city, state, postal_code)| Address {
                lines,
                city,
                state,
                postal_code,
                country: None,
                country_subdivision: None,
            })),
        proptest::collection::vec((codes(&["TE", "FX", "EM", "UR"]), text()), 0..=2),
    )
        .prop_map(
            |(name, identifiers, status, kinds, address, numbers)| Site {
                name,
                identifiers,
                status,
                kinds,
                address,
                numbers: numbers
                    .into_iter()
                    .map(|(qualifier, number)| ContactNumber { qualifier, number })
                    .collect(),
            },
        )
}

/// A document sent with a request (PAS DocumentReference).
pub fn document() -> impl Strategy<Value = Document> {
    (
        proptest::collection::vec(system_identifier(), 0..=1),
        select(
            &[
                DocumentStatus::Current,
                DocumentStatus::Superseded,
                DocumentStatus::EnteredInError,
            ][..],
        ),
        proptest::collection::vec(system_code(), 0..=1),
        proptest::collection::vec(system_code(), 0..=2),
        opt(
            select(&["2026-11-20T09:15:00Z", "2026-01-02T03:04:05+05:00"][..])
                .prop_map(|s| Text::parse(s).unwrap()),
        ),
        opt((date(), 0i64..60).prop_map(|(d, n)| {
            DateOrRange::Range(DateRange::new(d, d.add_days(n).unwrap()).unwrap())
        })),
        proptest::collection::vec(
            (
                select(&["text/plain", "application/pdf"][..])
                    .prop_map(|s| Text::parse(s).unwrap()),
                opt("[A-Za-z0-9+/]{4,40}={0,2}"),
                opt("https://example\\.org/doc/[0-9]{1,6}"),
                opt(system_code()),
            )
                .prop_map(|(content_type, data, url, format)| DocumentContent {
                    content_type: Some(content_type),
                    data,
                    url,
                    format,
                }),
            1..=2,
        ),
    )
        .prop_map(
            |(identifiers, status, kinds, categories, date, period, content)| Document {
                identifiers,
                status,
                kinds,
                categories,
                date,
                period,
                content,
            },
        )
}

/// The values of a hub request that no 278 element carries (PAS has them).
#[derive(Debug, Clone)]
pub struct HubOnly {
    pub submitter_reference_system: Option<Text>,
    pub created_utc_offset: Option<UtcOffset>,
    pub trace_system: Option<Text>,
    pub originator_system: Option<Text>,
    pub jurisdiction: Option<Code>,
    pub member_system: Option<Text>,
    pub umo_stated_role: Option<Code>,
    pub encounter_class: Code,
    pub document: Option<Document>,
    pub locations: Vec<Site>,
    pub terms: Option<ServiceTerms>,
    pub prior: Option<(TraceNumber, Option<Text>)>,
    pub reference_system: Option<Text>,
}

pub fn hub_only() -> impl Strategy<Value = HubOnly> {
    (
        (
            opt(uri()),
            opt(select(&["+05:00", "-03:30", "+00:00", "-12:00"][..])
                .prop_map(|s| UtcOffset::parse(s).unwrap())),
            opt(uri()),
            opt(uri()),
            opt(codes(&["MA", "CA"])),
            opt(uri()),
            opt(codes(&["PR"])),
        ),
        (
            codes(&["IMP", "AMB", "EMER"]),
            opt(document()),
            proptest::collection::vec(site(), 0..=2),
            opt((
                opt(any::<bool>()),
                opt(codes(&["1", "2"])),
                opt(codes(&["1", "2"])),
                opt(decimal()),
            )
                .prop_map(|(epsdt, status, level, rate)| ServiceTerms {
                    epsdt,
                    nursing_home_residential_status: status,
                    nursing_home_level_of_care: level,
                    rate,
                })
                .prop_filter("terms say something", |t| !t.is_empty())),
            opt((
                trace(TraceType::Current),
                opt("http://example\\.org/fhir/Claim/P[0-9]{1,6}"
                    .prop_map(|s| Text::parse(&s).unwrap())),
            )),
            opt(uri()),
        ),
    )
        .prop_map(
            |(
                (
                    submitter_reference_system,
                    created_utc_offset,
                    trace_system,
                    originator_system,
                    jurisdiction,
                    member_system,
                    umo_stated_role,
                ),
                (encounter_class, document, locations, terms, prior, reference_system),
            )| HubOnly {
                submitter_reference_system,
                created_utc_offset,
                trace_system,
                originator_system,
                jurisdiction,
                member_system,
                umo_stated_role,
                encounter_class,
                document,
                locations,
                terms,
                prior,
                reference_system,
            },
        )
}

impl HubOnly {
    /// Puts these values where they belong in `r`.
    pub fn apply(self, r: &mut AuthorizationRequest) {
        r.submitter_reference_system = self.submitter_reference_system;
        r.created_utc_offset = self.created_utc_offset;
        for t in r.event.trace_numbers.iter_mut() {
            t.system = self.trace_system.clone();
            t.originator_system = self.originator_system.clone();
            t.jurisdiction = self.jurisdiction.clone();
        }
        for l in r.services.iter_mut() {
            for t in l.trace_numbers.iter_mut() {
                t.system = self.trace_system.clone();
            }
            if l.service.is_none() {
                l.terms = self.terms.clone();
            }
        }
        if matches!(r.subscriber.id, Some(Identification::MemberId(_))) {
            r.subscriber.id_system = self.member_system;
        }
        if r.umo.kind == EntityType::Organization {
            r.umo.stated_role = self.umo_stated_role;
        }
        for e in std::iter::once(&mut r.subscriber).chain(r.dependent.as_mut()) {
            for x in e.references.iter_mut() {
                x.system = self.reference_system.clone();
            }
        }
        if let Some(i) = r.event.institutional.as_mut() {
            i.encounter_class = Some(self.encounter_class);
        }
        if let Some(a) = r.event.attachments.first_mut() {
            a.document = self.document;
        }
        if let Some(p) = r
            .event
            .providers
            .iter_mut()
            .find(|p| p.kind == EntityType::Person && (p.name.is_some() || p.id.is_some()))
        {
            p.locations = self.locations;
        }
        if let Some((t, reference)) = self.prior {
            r.revises = Some(t);
            r.revises_reference = reference;
        }
    }
}

/// A hub request with values of every kind, including those only PAS carries.
pub fn hub_request() -> impl Strategy<Value = AuthorizationRequest> {
    (request(), hub_only()).prop_map(|(mut r, h)| {
        h.apply(&mut r);
        r
    })
}

fn entity_projection(e: &mut Entity) {
    e.id_system = None;
    e.stated_role = None;
    e.locations.clear();
    for r in e.references.iter_mut() {
        r.system = None;
    }
}

fn trace_projection(t: &mut TraceNumber) {
    t.system = None;
    t.originator_system = None;
    t.jurisdiction = None;
}

/// What a 278 carries of a hub request: the request without the values no 278 element holds
/// (the encoder reports those with `request_not_carried`).
pub fn x12_projection(r: &AuthorizationRequest) -> AuthorizationRequest {
    let mut r = r.clone();
    r.submitter_reference_system = None;
    r.created_utc_offset = None;
    r.revises = None;
    r.revises_reference = None;
    for e in [&mut r.umo, &mut r.requester, &mut r.subscriber]
        .into_iter()
        .chain(r.dependent.as_mut())
        .chain(r.event.providers.iter_mut())
    {
        entity_projection(e);
    }
    r.event.trace_numbers.iter_mut().for_each(trace_projection);
    if let Some(i) = r.event.institutional.as_mut() {
        i.encounter_class = None;
    }
    for a in r.event.attachments.iter_mut() {
        a.document = None;
    }
    for l in r.services.iter_mut() {
        l.trace_numbers.iter_mut().for_each(trace_projection);
        l.providers.iter_mut().for_each(entity_projection);
        for a in l.attachments.iter_mut() {
            a.document = None;
        }
        l.terms = None;
        l.change = None;
    }
    r
}

// Responses: a generated request answered with a generated decision whose status follows
// from its actions as the decoder derives it.

pub fn reject(level: Level, line: Option<usize>) -> impl Strategy<Value = Reject> {
    (
        prop_oneof![Just(Validity::Invalid), Just(Validity::Valid)],
        proptest::option::of(select(&["15", "33", "72", "75", "AF"][..])),
        proptest::option::of(select(FollowUpAction::ALL)),
    )
        .prop_map(move |(validity, reason, follow_up)| Reject {
            level,
            line,
            validity,
            reason: reason.map(|r| Code::parse(r).unwrap()),
            follow_up,
        })
}

pub fn certification() -> impl Strategy<Value = Certification> {
    (
        proptest::option::of(date()),
        proptest::option::of(date_or_range()),
        proptest::option::of(date()),
    )
        .prop_map(|(issued, effective, expires)| Certification {
            issued,
            effective,
            expires,
        })
}

pub fn line_decision(i: usize, quantity: Option<Decimal>) -> impl Strategy<Value = LineDecision> {
    (
        proptest::option::of(select(ActionCode::ALL)),
        proptest::option::of(text()),
        proptest::option::of(code()),
        proptest::option::of(any::<bool>()),
        certification(),
        proptest::option::of(quantity_strategy()),
        proptest::option::of(text()),
        proptest::collection::vec(trace(TraceType::Referenced), 0..=1),
        proptest::collection::vec(reject(Level::Service, Some(i)), 0..=1),
        proptest::collection::vec(text(), 0..=2),
    )
        .prop_map(
            move |(
                action,
                certification_number,
                reason,
                ssop,
                certification,
                approved_quantity,
                administrative_reference,
                trace_numbers,
                rejects,
                messages,
            )| LineDecision {
                line: i,
                status: Status::ContactPayer,
                action,
                certification_number: if action.is_some() {
                    certification_number
                } else {
                    None
                },
                reason: if action.is_some() { reason } else { None },
                second_surgical_opinion: if action.is_some() { ssop } else { None },
                certification,
                approved_quantity,
                approved_units: quantity.clone(),
                administrative_reference,
                trace_numbers,
                rejects,
                messages,
            },
        )
}

pub fn quantity_strategy() -> impl Strategy<Value = ServiceQuantity> {
    quantity()
}

pub fn response() -> impl Strategy<Value = AuthorizationResponse> {
    (
        request(),
        event(true),
        proptest::collection::vec(line(true), 0..=3),
    )
        .prop_flat_map(|(mut req, ev, lines)| {
            req.event = ev;
            req.services = lines;
            let quantities: Vec<Option<Decimal>> = req
                .services
                .iter()
                .map(|l| l.service.as_ref().and_then(Service::quantity).cloned())
                .collect();
            let line_strats: Vec<_> = quantities
                .into_iter()
                .enumerate()
                .map(|(i, q)| line_decision(i + 1, q))
                .collect();
            let has_dep = req.dependent.is_some();
            let levels: Vec<Level> = [
                Level::Umo,
                Level::Requester,
                Level::Subscriber,
                Level::Dependent,
                Level::Event,
            ]
            .into_iter()
            .filter(|l| has_dep || *l != Level::Dependent)
            .collect();
            (
                Just(req),
                (
                    proptest::option::of(select(ActionCode::ALL)),
                    proptest::option::of(text()),
                    proptest::option::of(code()),
                    proptest::option::of(any::<bool>()),
                ),
                certification(),
                proptest::option::of(quantity_strategy()),
                proptest::option::of(text()),
                proptest::collection::vec(trace(TraceType::Current), 0..=1),
                proptest::collection::vec(select(levels).prop_flat_map(|l| reject(l, None)), 0..=3),
                proptest::collection::vec(text(), 0..=2),
                line_strats,
                (date(), proptest::option::of(select(&["18", "19"][..]))),
            )
        })
        .prop_map(
            |(
                req,
                (action, cert, reason, ssop),
                certification,
                approved_quantity,
                admin,
                traces,
                mut rejects,
                messages,
                mut lines,
                (date, ttype),
            )| {
                let order = |l: &Level| {
                    [
                        Level::Umo,
                        Level::Requester,
                        Level::Subscriber,
                        Level::Dependent,
                        Level::Event,
                    ]
                    .iter()
                    .position(|x| x == l)
                };
                rejects.sort_by_key(|r| order(&r.level));
                for l in &mut lines {
                    l.status = match (l.action, l.rejects.is_empty()) {
                        (Some(a), _) => a.into(),
                        (None, false) => Status::Rejected,
                        (None, true) => action.map_or(Status::ContactPayer, Status::from),
                    };
                }
                let status = overall_status(action, &lines, &rejects);
                let decision = Decision {
                    status,
                    action,
                    certification_number: action.and(cert),
                    reason: action.and(reason),
                    second_surgical_opinion: action.and(ssop),
                    certification,
                    approved_quantity,
                    administrative_reference: admin,
                    trace_numbers: traces,
                    rejects,
                    messages,
                    lines,
                };
                let mut r = AuthorizationResponse::answering(&req, decision);
                // What a 278 response's 2010A and 2010B do not carry (the TR3's response loops:
                // the UMO with no REF, address or PRV; the requester with no address or PER).
                if let Some(u) = &mut r.umo {
                    u.references.clear();
                    u.address = None;
                    u.provider_info = None;
                }
                if let Some(q) = &mut r.requester {
                    q.address = None;
                    q.contacts.clear();
                }
                // A response's REF*NT is the UMO's administrative reference number, so the
                // request's previous-review REF*NT is not echoed.
                let not_nt = |x: &Reference| x.qualifier.as_str() != "NT";
                if let Some(e) = &mut r.event {
                    e.references.retain(not_nt);
                }
                for l in &mut r.services {
                    l.references.retain(not_nt);
                }
                r.created_date = Some(date);
                r.created_time = Some(Time::parse("1045").unwrap());
                r.transaction_type = ttype.map(|t| Code::parse(t).unwrap());
                r
            },
        )
}
