//! Domain -> 278 transaction set body (BHT through the last service loop). The envelope
//! (ST/SE, GS/GE, ISA/IEA) is the caller's, through `InterchangeWriter`.

use crate::domain::*;
use crate::x12::error::{Issue, Location};
use crate::x12::guide::Usage;
use crate::x12::writer::{Stamp, Writer};

use super::decode::event_provider_loop;

fn date_element(d: &DateOrRange) -> (&'static str, String) {
    match d {
        DateOrRange::Date(d) => ("D8", d.to_x12()),
        DateOrRange::Range(r) => ("RD8", format!("{}-{}", r.start.to_x12(), r.end.to_x12())),
    }
}

fn nm1(w: &mut Writer, e: &Entity) {
    w.seg("NM1")
        .e(e.role.as_str())
        .e(e.kind.code())
        .opt(e.name.as_ref())
        .opt(e.first_name.as_ref())
        .opt(e.middle_name.as_ref())
        .opt(e.prefix.as_ref())
        .opt(e.suffix.as_ref());
    if let Some(id) = &e.id {
        w.e(id.qualifier()).e(id.value());
    }
}

fn refs(w: &mut Writer, refs: &[Reference]) {
    for r in refs {
        w.seg("REF")
            .e(r.qualifier.as_str())
            .e(r.value.as_str())
            .opt(r.description.as_ref());
    }
}

/// The 2000E/2000F REFs of a response: the request's previous review authorization number
/// (REF*BB) echoed, then the UMO's administrative reference number (REF*NT). In a response,
/// REF*NT is the number the UMO assigned (the TR3 allows two REFs there, one of each), so the
/// request's previous-review REF*NT is not echoed: a reader would take it for the UMO's.
fn response_refs(w: &mut Writer, echoed: &[Reference], admin: Option<&Text>) {
    for r in echoed.iter().filter(|r| r.qualifier.as_str() != "NT") {
        refs(w, std::slice::from_ref(r));
    }
    if let Some(a) = admin {
        w.seg("REF").e("NT").e(a.as_str());
    }
}

fn address(w: &mut Writer, e: &Entity) {
    if let Some(a) = &e.address {
        if !a.lines.is_empty() {
            w.seg("N3");
            for l in a.lines.iter().take(2) {
                w.e(l.as_str());
            }
        }
        if a.city.is_some()
            || a.state.is_some()
            || a.postal_code.is_some()
            || a.country.is_some()
            || a.country_subdivision.is_some()
        {
            w.seg("N4")
                .opt(a.city.as_ref())
                .opt(a.state.as_ref())
                .opt(a.postal_code.as_ref())
                .opt(a.country.as_ref())
                .e("")
                .e("")
                .opt(a.country_subdivision.as_ref());
        }
    }
}

fn contacts(w: &mut Writer, e: &Entity) {
    for c in &e.contacts {
        w.seg("PER").e(c.function.as_str()).opt(c.name.as_ref());
        for n in c.numbers.iter().take(3) {
            w.e(n.qualifier.as_str()).e(n.number.as_str());
        }
    }
}

fn prv(w: &mut Writer, e: &Entity) {
    if let Some(p) = &e.provider_info {
        w.seg("PRV")
            .e(p.role.as_str())
            .e(p.qualifier.as_str())
            .e(p.taxonomy.as_str());
    }
}

fn aaa(w: &mut Writer, rejects: &[&Reject]) {
    for r in rejects {
        w.seg("AAA")
            .e(r.validity.code())
            .e("")
            .opt(r.reason.as_ref())
            .opt(r.follow_up.map(|f| f.code()));
    }
}

/// Which segments of a name loop a 278 response echoes: the response's 2010A carries no REF,
/// N3, N4 or PRV and its 2010B no N3, N4 or PER (the TR3's response loops, as in
/// `schemas/x12-005010X217.json`); other loops echo all they have.
#[derive(Clone, Copy)]
struct Echo {
    refs: bool,
    address: bool,
    contacts: bool,
    prv: bool,
}

const ECHO_ALL: Echo = Echo {
    refs: true,
    address: true,
    contacts: true,
    prv: true,
};

/// A name loop in the TR3's order. `rejects` are the AAA of that loop (responses).
fn entity(w: &mut Writer, e: &Entity, rejects: &[&Reject]) {
    entity_echo(w, e, rejects, ECHO_ALL);
}

fn entity_echo(w: &mut Writer, e: &Entity, rejects: &[&Reject], echo: Echo) {
    nm1(w, e);
    if echo.refs {
        refs(w, &e.references);
    }
    if echo.address {
        address(w, e);
    }
    if echo.contacts {
        contacts(w, e);
    }
    aaa(w, rejects);
    if echo.prv {
        prv(w, e);
    }
    // X12 requires DMG02: without a birth date there is no DMG (a gender alone cannot travel).
    if let Some((d, birth)) = e
        .demographics
        .as_ref()
        .and_then(|d| d.birth_date.map(|b| (d, b)))
    {
        w.seg("DMG")
            .e("D8")
            .e(&birth.to_x12())
            .opt(d.gender.as_ref());
    }
    if let Some(r) = &e.relationship {
        w.seg("INS")
            .e(if r.is_subscriber { "Y" } else { "N" })
            .e(r.code.as_str());
        for _ in 3..=16 {
            w.e("");
        }
        w.opt(r.birth_sequence.as_ref());
    }
}

fn trn(w: &mut Writer, traces: &[TraceNumber]) {
    for t in traces {
        w.seg("TRN")
            .e(t.kind.code())
            .e(t.reference.as_str())
            .e(t.originator.as_str())
            .opt(t.secondary.as_ref());
    }
}

fn um(w: &mut Writer, r: &ReviewInfo) {
    w.seg("UM")
        .e(r.category.code())
        .e(r.certification_type.code())
        .opt(r.service_type.as_ref());
    match &r.location {
        Some(l) => w.c(&[l.code.as_str(), l.qualifier.as_str()]),
        None => w.e(""),
    };
    match &r.related_causes {
        Some(rc) => {
            let mut parts: Vec<&str> = rc.causes.iter().take(3).map(Code::as_str).collect();
            parts.resize(3, "");
            parts.push(rc.state.as_ref().map_or("", Code::as_str));
            parts.push(rc.country.as_ref().map_or("", Code::as_str));
            w.c(&parts)
        }
        None => w.e(""),
    };
    w.opt(r.level_of_service.map(|l| l.code()))
        .e("")
        .e("")
        .opt(r.release_of_information.as_ref());
}

#[allow(clippy::too_many_arguments)]
fn hcr(
    w: &mut Writer,
    action: Option<ActionCode>,
    cert: Option<&Text>,
    reason: Option<&Code>,
    ssop: Option<bool>,
) {
    if let Some(a) = action {
        w.seg("HCR")
            .e(a.code())
            .opt(cert)
            .opt(reason)
            .opt(ssop.map(|b| if b { "Y" } else { "N" }));
    }
}

fn dtp(w: &mut Writer, dates: &[EventDate]) {
    for d in dates {
        let (f, v) = date_element(&d.date);
        w.seg("DTP").e(d.qualifier.as_str()).e(f).e(&v);
    }
}

fn certification_dates(w: &mut Writer, c: &Certification) {
    if let Some(d) = c.issued {
        w.seg("DTP").e("102").e("D8").e(&d.to_x12());
    }
    if let Some(d) = &c.effective {
        let (f, v) = date_element(d);
        w.seg("DTP").e("007").e(f).e(&v);
    }
    if let Some(d) = c.expires {
        w.seg("DTP").e("036").e("D8").e(&d.to_x12());
    }
}

fn hi(w: &mut Writer, diagnoses: &[Diagnosis]) {
    if diagnoses.is_empty() {
        return;
    }
    w.seg("HI");
    for d in diagnoses.iter().take(12) {
        let code = match &d.code {
            DiagnosisCode::Icd10Cm(c) => c.compact(),
            DiagnosisCode::Other(c) => c.as_str().to_owned(),
        };
        match d.date {
            Some(date) => w.c(&[d.qualifier.code(), &code, "D8", &date.to_x12()]),
            None => w.c(&[d.qualifier.code(), &code]),
        };
    }
}

fn hsd(w: &mut Writer, q: &ServiceQuantity) {
    if q.is_empty() {
        w.refuse(refusal(
            "HSD",
            1,
            "a quantity (HSD) needs at least one value".into(),
        ));
    }
    w.seg("HSD")
        .opt(q.unit.map(|u| u.code()))
        .opt(q.quantity.as_ref())
        .opt(q.per.as_ref())
        .opt(q.sample_count.as_ref())
        .opt(q.period.as_ref())
        .opt(q.period_count.as_ref())
        .opt(q.delivery_pattern.as_ref())
        .opt(q.delivery_time.as_ref());
}

fn attachments(w: &mut Writer, atts: &[Attachment]) {
    for a in atts {
        w.seg("PWK")
            .e(a.report_type.as_str())
            .e(a.transmission.as_str())
            .e("")
            .e("")
            .opt(a.control_number.as_ref().map(|_| "AC"))
            .opt(a.control_number.as_ref())
            // PWK07 holds 80 characters; the intake that accepted a longer description (PAS)
            // has warned that the 278 carries its first 80.
            .opt(
                a.description
                    .as_ref()
                    .map(|d| first_chars(d.as_str(), PWK07_MAX).trim_end()),
            );
    }
}

/// PWK07's maximum length in 005010X217.
pub const PWK07_MAX: usize = 80;

fn first_chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

fn procedure(p: &Procedure) -> Vec<&str> {
    let mut parts = vec![p.qualifier.code(), p.code.as_str()];
    for i in 0..4 {
        parts.push(p.modifiers.get(i).map_or("", Code::as_str));
    }
    parts.push(p.description.as_ref().map_or("", Text::as_str));
    parts
}

fn service(w: &mut Writer, s: &Service, units: Option<&Decimal>) {
    match s {
        Service::Professional {
            procedure: p,
            charge,
            unit,
            quantity,
            place_of_service,
            epsdt,
            nursing_home_level_of_care,
        } => {
            w.seg("SV1")
                .c(&procedure(p))
                .opt(charge.as_ref())
                .opt(unit.map(|u| u.code()))
                .opt(units.or(quantity.as_ref()))
                .opt(place_of_service.as_ref());
            for _ in 6..=10 {
                w.e("");
            }
            w.opt(epsdt.map(|b| if b { "Y" } else { "N" }));
            for _ in 12..=19 {
                w.e("");
            }
            w.opt(nursing_home_level_of_care.as_ref());
        }
        Service::Institutional {
            revenue_code,
            procedure: p,
            charge,
            unit,
            quantity,
            rate,
            nursing_home_residential_status,
            nursing_home_level_of_care,
        } => {
            w.seg("SV2").opt(revenue_code.as_ref());
            match p {
                Some(p) => w.c(&procedure(p)),
                None => w.e(""),
            };
            w.opt(charge.as_ref())
                .opt(unit.map(|u| u.code()))
                .opt(units.or(quantity.as_ref()))
                .opt(rate.as_ref())
                .e("")
                .e("")
                .opt(nursing_home_residential_status.as_ref())
                .opt(nursing_home_level_of_care.as_ref());
        }
        Service::Dental {
            procedure: p,
            charge,
            place_of_service,
            quantity,
        } => {
            w.seg("SV3")
                .c(&procedure(p))
                .opt(charge.as_ref())
                .opt(place_of_service.as_ref())
                .e("")
                .e("")
                .opt(units.or(quantity.as_ref()));
        }
    }
}

fn teeth(w: &mut Writer, teeth: &[Tooth]) {
    for t in teeth {
        w.seg("TOO").e(t.qualifier.as_str()).e(t.number.as_str());
        let s: Vec<&str> = t.surfaces.iter().map(Code::as_str).collect();
        w.c(&s);
    }
}

fn msg(w: &mut Writer, m: &Text) {
    w.seg("MSG").e(m.as_str());
}

/// The event level's segments in TR3 order; decision parts are given for responses.
struct EventParts<'a> {
    traces: &'a [TraceNumber],
    rejects: Vec<&'a Reject>,
    review: Option<&'a ReviewInfo>,
    hcr: (
        Option<ActionCode>,
        Option<&'a Text>,
        Option<&'a Code>,
        Option<bool>,
    ),
    references: &'a [Reference],
    /// `Some` in a response (the UMO's administrative reference, if any); `None` in a request.
    admin_ref: Option<Option<&'a Text>>,
    dates: &'a [EventDate],
    certification: Option<&'a Certification>,
    quantity: Option<&'a ServiceQuantity>,
    messages: Vec<&'a Text>,
}

fn event_level(w: &mut Writer, ev: Option<&PatientEvent>, p: EventParts) {
    trn(w, p.traces);
    aaa(w, &p.rejects);
    if let Some(r) = p.review {
        um(w, r);
    }
    hcr(w, p.hcr.0, p.hcr.1, p.hcr.2, p.hcr.3);
    match p.admin_ref {
        Some(admin) => response_refs(w, p.references, admin),
        None => refs(w, p.references),
    }
    dtp(w, p.dates);
    if let Some(c) = p.certification {
        certification_dates(w, c);
    }
    if let Some(ev) = ev {
        hi(w, &ev.diagnoses);
    }
    if let Some(q) = p.quantity {
        hsd(w, q);
    }
    if let Some(ev) = ev {
        for c in &ev.conditions {
            if c.codes.is_empty() || c.codes.len() > 5 {
                w.refuse(refusal(
                    "CRC",
                    3,
                    format!(
                        "a condition carries 1 to 5 codes (CRC03..CRC07), not {}",
                        c.codes.len()
                    ),
                ));
            }
            w.seg("CRC")
                .e(c.category.as_str())
                .e(if c.applies { "Y" } else { "N" });
            for code in c.codes.iter().take(5) {
                w.e(code.as_str());
            }
        }
        if let Some(i) = ev.institutional.as_ref().filter(|i| !i.is_empty()) {
            w.seg("CL1")
                .opt(i.admission_type.as_ref())
                .opt(i.admission_source.as_ref())
                .opt(i.patient_status.as_ref())
                .opt(i.nursing_home_status.as_ref());
        }
        check_clinical(w, &ev.clinical);
        for c in &ev.clinical {
            w.seg(c.segment.as_str());
            for e in &c.elements {
                w.e(e);
            }
        }
        attachments(w, &ev.attachments);
    }
    for m in p.messages {
        msg(w, m);
    }
}

fn refusal(segment: &str, element: usize, message: String) -> Issue {
    Issue::error(
        "invalid_for_x12",
        Location {
            segment_id: Some(segment.into()),
            element: Some(element),
            ..Location::default()
        },
        message,
    )
}

/// Clinical segments pass through element by element, so they are checked against the guide's
/// segment definitions: each at most once, in the TR3's order, required elements present, no
/// element the segment does not define or does not use.
fn check_clinical(w: &mut Writer, clinical: &[ClinicalSegment]) {
    let mut last: Option<usize> = None;
    for c in clinical {
        let id = c.segment.as_str();
        let Some(rank) = CLINICAL_SEGMENTS.iter().position(|s| *s == id) else {
            w.refuse(refusal(
                id,
                1,
                format!("{id} is not a clinical segment of a 278 (CR1, CR2, CR5, CR6, CR7)"),
            ));
            return;
        };
        if last.is_some_and(|l| l >= rank) {
            w.refuse(refusal(
                id,
                1,
                format!(
                    "clinical segments go once each in the order {}",
                    CLINICAL_SEGMENTS.join(", ")
                ),
            ));
            return;
        }
        last = Some(rank);
        let Some(def) = crate::x12::guide::guide().segment(id) else {
            continue;
        };
        if c.elements.len() > def.elements.len() {
            w.refuse(refusal(
                id,
                c.elements.len(),
                format!("{id} has {} elements", def.elements.len()),
            ));
            return;
        }
        for el in &def.elements {
            let v = c.elements.get(el.pos - 1).map_or("", String::as_str);
            match el.usage {
                Usage::Required if v.is_empty() => {
                    w.refuse(refusal(
                        id,
                        el.pos,
                        format!("{id}{:02} ({}) is required", el.pos, el.name),
                    ));
                    return;
                }
                Usage::NotUsed if !v.is_empty() => {
                    w.refuse(refusal(
                        id,
                        el.pos,
                        format!("{id}{:02} ({}) is not used in a 278", el.pos, el.name),
                    ));
                    return;
                }
                _ => {}
            }
        }
    }
}

struct Hl {
    next: usize,
}

impl Hl {
    fn write(
        &mut self,
        w: &mut Writer,
        parent: Option<usize>,
        code: &str,
        children: bool,
    ) -> usize {
        let id = self.next;
        self.next += 1;
        w.seg("HL")
            .e(&id.to_string())
            .opt(parent.map(|p| p.to_string()))
            .e(code)
            .e(if children { "1" } else { "0" });
        id
    }
}

fn sort_providers(providers: &[Entity], response: bool) -> Vec<&Entity> {
    // 2010EA, then 2010EB, then 2010EC, each in the order given.
    let mut v: Vec<&Entity> = providers.iter().collect();
    v.sort_by_key(|e| event_provider_loop(e.role.as_str(), response));
    v
}

/// Writes a 278 request body (BHT through the last 2000F). BHT04/05 are required: without a
/// creation date and time in the request, `stamp` fills them.
pub fn write_request(w: &mut Writer, r: &AuthorizationRequest, stamp: Stamp) {
    w.seg("BHT")
        .e("0007")
        .e(r.purpose.code())
        .e(r.submitter_reference.as_str())
        .e(&r.created_date.unwrap_or(stamp.date).to_x12())
        .e(r.created_time
            .as_ref()
            .map_or(stamp.hhmm(), |t| t.as_str().to_owned())
            .as_str())
        .opt(r.transaction_type.as_ref());
    let mut hl = Hl { next: 1 };
    let a = hl.write(w, None, "20", true);
    entity(w, &r.umo, &[]);
    let b = hl.write(w, Some(a), "21", true);
    entity(w, &r.requester, &[]);
    let c = hl.write(w, Some(b), "22", true);
    entity(w, &r.subscriber, &[]);
    let parent = match &r.dependent {
        Some(d) => {
            let id = hl.write(w, Some(c), "23", true);
            entity(w, d, &[]);
            id
        }
        None => c,
    };
    let ev = &r.event;
    let e = hl.write(w, Some(parent), "EV", !r.services.is_empty());
    event_level(
        w,
        Some(ev),
        EventParts {
            traces: &ev.trace_numbers,
            rejects: vec![],
            review: Some(&ev.review),
            hcr: (None, None, None, None),
            references: &ev.references,
            admin_ref: None,
            dates: &ev.dates,
            certification: None,
            quantity: ev.quantity.as_ref(),
            messages: ev.message.iter().collect(),
        },
    );
    for p in sort_providers(&ev.providers, false) {
        entity(w, p, &[]);
    }
    for line in &r.services {
        hl.write(w, Some(e), "SS", false);
        service_level(w, line, None, false);
    }
}

fn service_level(w: &mut Writer, line: &ServiceLine, d: Option<&LineDecision>, response: bool) {
    let traces = d.map_or(&line.trace_numbers[..], |d| &d.trace_numbers[..]);
    trn(w, traces);
    if let Some(d) = d {
        aaa(w, &d.rejects.iter().collect::<Vec<_>>());
    }
    if let Some(r) = &line.review {
        um(w, r);
    }
    if let Some(d) = d {
        hcr(
            w,
            d.action,
            d.certification_number.as_ref(),
            d.reason.as_ref(),
            d.second_surgical_opinion,
        );
    }
    if response {
        response_refs(
            w,
            &line.references,
            d.and_then(|d| d.administrative_reference.as_ref()),
        );
    } else {
        refs(w, &line.references);
    }
    dtp(w, &line.dates);
    if let Some(d) = d {
        certification_dates(w, &d.certification);
    }
    if let Some(s) = &line.service {
        service(w, s, d.and_then(|d| d.approved_units.as_ref()));
    }
    teeth(w, &line.teeth);
    let quantity = if response {
        d.and_then(|d| d.approved_quantity.as_ref())
    } else {
        line.quantity.as_ref()
    };
    if let Some(q) = quantity {
        hsd(w, q);
    }
    attachments(w, &line.attachments);
    match d {
        Some(d) => d.messages.iter().for_each(|m| msg(w, m)),
        None => {
            if let Some(m) = &line.message {
                msg(w, m);
            }
        }
    }
    for p in &line.providers {
        entity(w, p, &[]);
    }
}

/// Writes a 278 response body: the echoed request with the decision at each level.
/// Without a creation date and time in the response, `stamp` fills BHT04/05.
pub fn write_response(w: &mut Writer, r: &AuthorizationResponse, stamp: Stamp) {
    let d = &r.decision;
    w.seg("BHT")
        .e("0007")
        .e("11")
        .e(r.submitter_reference.as_str())
        .e(&r.created_date.unwrap_or(stamp.date).to_x12())
        .e(r.created_time
            .as_ref()
            .map_or(stamp.hhmm(), |t| t.as_str().to_owned())
            .as_str())
        .opt(r.transaction_type.as_ref());
    let at =
        |level: Level| -> Vec<&Reject> { d.rejects.iter().filter(|x| x.level == level).collect() };
    let mut hl = Hl { next: 1 };
    let has_event = r.event.is_some() || d.action.is_some() || !at(Level::Event).is_empty();
    let has_sub = r.subscriber.is_some() || has_event;
    let has_req = r.requester.is_some() || has_sub;
    let a = hl.write(w, None, "20", has_req);
    if let Some(u) = &r.umo {
        let umo = Echo {
            refs: false,
            address: false,
            contacts: true,
            prv: false,
        };
        entity_echo(w, u, &at(Level::Umo), umo);
    } else {
        aaa(w, &at(Level::Umo));
    }
    if !has_req {
        return;
    }
    let b = hl.write(w, Some(a), "21", has_sub);
    match &r.requester {
        Some(e) => {
            let requester = Echo {
                refs: true,
                address: false,
                contacts: false,
                prv: true,
            };
            entity_echo(w, e, &at(Level::Requester), requester)
        }
        None => aaa(w, &at(Level::Requester)),
    }
    if !has_sub {
        return;
    }
    let c = hl.write(w, Some(b), "22", has_event || r.dependent.is_some());
    match &r.subscriber {
        Some(e) => entity(w, e, &at(Level::Subscriber)),
        None => aaa(w, &at(Level::Subscriber)),
    }
    let parent = match &r.dependent {
        Some(dep) => {
            let id = hl.write(w, Some(c), "23", has_event);
            entity(w, dep, &at(Level::Dependent));
            id
        }
        None => c,
    };
    if !has_event {
        return;
    }
    let ev = r.event.as_ref();
    let e = hl.write(w, Some(parent), "EV", !r.services.is_empty());
    event_level(
        w,
        ev,
        EventParts {
            traces: &d.trace_numbers,
            rejects: at(Level::Event),
            review: ev.map(|e| &e.review),
            hcr: (
                d.action,
                d.certification_number.as_ref(),
                d.reason.as_ref(),
                d.second_surgical_opinion,
            ),
            references: ev.map_or(&[][..], |e| &e.references[..]),
            admin_ref: Some(d.administrative_reference.as_ref()),
            dates: ev.map_or(&[][..], |e| &e.dates[..]),
            certification: Some(&d.certification),
            quantity: d.approved_quantity.as_ref(),
            messages: d.messages.iter().collect(),
        },
    );
    if let Some(ev) = ev {
        for p in sort_providers(&ev.providers, true) {
            entity(w, p, &[]);
        }
    }
    for (i, line) in r.services.iter().enumerate() {
        hl.write(w, Some(e), "SS", false);
        let ld = d.lines.iter().find(|l| l.line == i + 1);
        let echo_rejects: Vec<&Reject> = d
            .rejects
            .iter()
            .filter(|x| x.level == Level::Service && x.line == Some(i + 1))
            .collect();
        if ld.is_none() && !echo_rejects.is_empty() {
            trn(w, &[]);
            aaa(w, &echo_rejects);
        }
        service_level(w, line, ld, true);
    }
}

/// What of a hub request a 278 cannot carry: one `element_not_kept` warning per value the
/// encoder leaves out, located at the loop and segment it would belong to. The encoder itself
/// writes what the 278 has room for; callers that translate (`translate --from pas --to x12`)
/// report these so nothing is dropped silently. Values are never put in the issue (they may be
/// patient data); the message names what is lost.
pub fn request_not_carried(r: &AuthorizationRequest) -> Vec<Issue> {
    let mut out = vec![];
    let mut warn = |loop_id: &str, seg: &str, element: Option<usize>, msg: String| {
        out.push(Issue::warning(
            "element_not_kept",
            Location {
                // The header (BHT) is in no loop.
                loop_id: (!loop_id.is_empty()).then(|| loop_id.to_owned()),
                segment_id: Some(seg.to_owned()),
                element,
                ..Default::default()
            },
            msg,
        ));
    };
    if r.submitter_reference_system.is_some() {
        warn(
            "",
            "BHT",
            Some(3),
            "BHT03 has no identifier system: the submitter reference's system (Bundle.identifier.system) is not carried".into(),
        );
    }
    if let Some(o) = r.created_utc_offset {
        warn(
            "",
            "BHT",
            Some(5),
            format!(
                "BHT04/BHT05 have no time zone: the creation time is written as the clock time, its offset {o} from UTC is not carried"
            ),
        );
    }
    if r.revises.is_some() || r.revises_reference.is_some() {
        warn(
            "2000E",
            "REF",
            None,
            "the 278 has no element for the prior request of an update (Claim.related; a revision names the prior authorization by REF*BB / REF*NT): not carried".into(),
        );
    }
    let mut entity_losses = |e: &Entity, loop_id: &str| {
        if e.id_system.is_some() {
            warn(
                loop_id,
                "NM1",
                Some(9),
                "NM109 has no identifier system: the identifier's system is not carried".into(),
            );
        }
        if let Some(s) = &e.stated_role {
            warn(
                loop_id,
                "NM1",
                Some(1),
                format!(
                    "NM101 is the loop's entity code {}: the party's own entity type {s} is not carried",
                    e.role
                ),
            );
        }
        for _ in e.references.iter().filter(|r| r.system.is_some()) {
            warn(
                loop_id,
                "REF",
                Some(2),
                "REF02 has no identifier system: the reference's system is not carried".into(),
            );
        }
        if !e.locations.is_empty() {
            warn(
                loop_id,
                "N3",
                None,
                format!(
                    "a 278 request has no loop for a provider's service locations: {} location(s) not carried",
                    e.locations.len()
                ),
            );
        }
    };
    entity_losses(&r.umo, "2010A");
    entity_losses(&r.requester, "2010B");
    entity_losses(&r.subscriber, "2010C");
    if let Some(d) = &r.dependent {
        entity_losses(d, "2010D");
    }
    for p in &r.event.providers {
        entity_losses(
            p,
            super::decode::event_provider_loop(p.role.as_str(), false),
        );
    }
    for l in &r.services {
        for p in &l.providers {
            entity_losses(p, "2010F");
        }
    }
    let mut trace_losses = |t: &TraceNumber, loop_id: &str| {
        if t.system.is_some() || t.originator_system.is_some() {
            warn(
                loop_id,
                "TRN",
                Some(2),
                "TRN has no identifier systems: the trace number's system and its originator's are not carried".into(),
            );
        }
        if t.jurisdiction.is_some() {
            warn(
                loop_id,
                "TRN",
                None,
                "TRN has no jurisdiction (identifierJurisdiction): not carried".into(),
            );
        }
    };
    for t in &r.event.trace_numbers {
        trace_losses(t, "2000E");
    }
    if let Some(t) = &r.revises {
        trace_losses(t, "2000E");
    }
    for l in &r.services {
        for t in &l.trace_numbers {
            trace_losses(t, "2000F");
        }
    }
    let mut other = |loop_id: &str, seg: &str, msg: String| {
        out.push(Issue::warning(
            "element_not_kept",
            Location {
                loop_id: Some(loop_id.to_owned()),
                segment_id: Some(seg.to_owned()),
                ..Default::default()
            },
            msg,
        ));
    };
    if let Some(c) = r
        .event
        .institutional
        .as_ref()
        .and_then(|i| i.encounter_class.as_ref())
    {
        other(
            "2000E",
            "CL1",
            format!("CL1 has no encounter class: {c} is not carried"),
        );
    }
    let documents = |atts: &[Attachment]| atts.iter().filter(|a| a.document.is_some()).count();
    let n = documents(&r.event.attachments);
    if n > 0 {
        other(
            "2000E",
            "PWK",
            format!(
                "a 278 names a document by its control number (PWK06) only: {n} document(s) sent with the request are not carried"
            ),
        );
    }
    for l in &r.services {
        let n = documents(&l.attachments);
        if n > 0 {
            other(
                "2000F",
                "PWK",
                format!(
                    "a 278 names a document by its control number (PWK06) only: {n} document(s) sent with the request are not carried"
                ),
            );
        }
        if l.terms.as_ref().is_some_and(|t| !t.is_empty()) {
            other(
                "2000F",
                if l.service.is_some() { "SV1" } else { "UM" },
                "EPSDT, nursing home status or level of care and unit rate limit travel in SV1/SV2 beside a procedure or revenue code; those this line has no SV1/SV2 element for are not carried".into(),
            );
        }
        if l.change.is_some() {
            other(
                "2000F",
                "UM",
                "the 278 has no per-line change mark (PAS infoChanged / infoCancelled; a cancel travels as UM02 = 3): not carried".into(),
            );
        }
    }
    out
}
