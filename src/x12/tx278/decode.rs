//! 278 transaction set -> domain. One pass over borrowed segments; every value parses into
//! its domain type or becomes a located issue. Nothing is dropped silently: a segment or an
//! element the model does not carry is reported as a warning.

use crate::domain::*;
use crate::x12::error::{AckCode, Issue, Location};
use crate::x12::syntax::{Segment, Transaction};

use super::Message278;

/// A segment id as a number (its first three bytes and its length), so that a segment is
/// dispatched by comparing integers, not slices. Ids longer than three bytes never equal a
/// constant below (their length differs).
#[inline]
const fn id_key(id: &[u8]) -> u32 {
    let n = id.len();
    let b0 = if n > 0 { id[0] as u32 } else { 0 };
    let b1 = if n > 1 { id[1] as u32 } else { 0 };
    let b2 = if n > 2 { id[2] as u32 } else { 0 };
    let len = if n > 255 { 255 } else { n as u32 };
    (b0 << 24) | (b1 << 16) | (b2 << 8) | len
}

/// The keys of the ids the decoder dispatches on.
mod ids {
    pub const AAA: u32 = super::id_key(b"AAA");
    pub const BHT: u32 = super::id_key(b"BHT");
    pub const CL1: u32 = super::id_key(b"CL1");
    pub const CR1: u32 = super::id_key(b"CR1");
    pub const CR2: u32 = super::id_key(b"CR2");
    pub const CR5: u32 = super::id_key(b"CR5");
    pub const CR6: u32 = super::id_key(b"CR6");
    pub const CR7: u32 = super::id_key(b"CR7");
    pub const CRC: u32 = super::id_key(b"CRC");
    pub const DMG: u32 = super::id_key(b"DMG");
    pub const DTP: u32 = super::id_key(b"DTP");
    pub const HCR: u32 = super::id_key(b"HCR");
    pub const HI: u32 = super::id_key(b"HI");
    pub const HL: u32 = super::id_key(b"HL");
    pub const HSD: u32 = super::id_key(b"HSD");
    pub const INS: u32 = super::id_key(b"INS");
    pub const MSG: u32 = super::id_key(b"MSG");
    pub const N3: u32 = super::id_key(b"N3");
    pub const N4: u32 = super::id_key(b"N4");
    pub const NM1: u32 = super::id_key(b"NM1");
    pub const PER: u32 = super::id_key(b"PER");
    pub const PRV: u32 = super::id_key(b"PRV");
    pub const PWK: u32 = super::id_key(b"PWK");
    pub const REF: u32 = super::id_key(b"REF");
    pub const SE: u32 = super::id_key(b"SE");
    pub const ST: u32 = super::id_key(b"ST");
    pub const SV1: u32 = super::id_key(b"SV1");
    pub const SV2: u32 = super::id_key(b"SV2");
    pub const SV3: u32 = super::id_key(b"SV3");
    pub const TOO: u32 = super::id_key(b"TOO");
    pub const TRN: u32 = super::id_key(b"TRN");
    pub const UM: u32 = super::id_key(b"UM");
}

/// Appends the value `make` builds. The value is built where it goes (`push` of a value built
/// first copies it: a line level is over a kilobyte, an entity over 600 bytes).
#[inline(always)]
fn push_built<T>(list: &mut Vec<T>, make: impl FnOnce() -> T) {
    list.extend(std::iter::once_with(make));
}

/// The hierarchical level a segment is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lv {
    Umo,
    Requester,
    Subscriber,
    Dependent,
    Event,
    Service,
}

/// Which entity (NM1 loop) later REF/N3/N4/PER/PRV/DMG/INS segments belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ent {
    Umo,
    Requester,
    Subscriber,
    Dependent,
    EventProvider(usize),
    ServiceProvider(usize),
}

/// What a 2000E or 2000F loop collects, request and response parts together.
#[derive(Default)]
struct LevelData {
    seen: bool,
    trace_numbers: Vec<TraceNumber>,
    review: Option<ReviewInfo>,
    references: Vec<Reference>,
    dates: Vec<EventDate>,
    diagnoses: Vec<Diagnosis>,
    quantity: Option<ServiceQuantity>,
    conditions: Vec<Condition>,
    institutional: Option<InstitutionalInfo>,
    clinical: Vec<ClinicalSegment>,
    attachments: Vec<Attachment>,
    messages: Vec<Text>,
    providers: Vec<Entity>,
    service: Option<Service>,
    teeth: Vec<Tooth>,
    // response only
    hcr: bool,
    action: Option<ActionCode>,
    certification_number: Option<Text>,
    reason: Option<Code>,
    second_opinion: Option<bool>,
    certification: Certification,
    administrative_reference: Option<Text>,
    rejects: Vec<Reject>,
    /// Where the loop's HL is (`None` until one is read).
    hl_location: Option<Seen>,
}

/// Where a segment was, kept without allocating: the `Location` (with its strings) is only
/// built when an issue is reported there.
#[derive(Debug, Clone, Copy)]
struct Seen {
    index: usize,
    offset: usize,
    id: &'static str,
    loop_id: Option<&'static str>,
}

/// The location of a remembered segment (`Location::default()` for one never seen).
fn located(base: &Location, first_index: usize, seen: Option<Seen>) -> Location {
    match seen {
        None => Location::default(),
        Some(s) => Location {
            segment_index: Some(s.index),
            segment_position: Some(s.index + 1 - first_index),
            segment_id: Some(s.id.to_owned()),
            loop_id: s.loop_id.map(str::to_owned),
            byte_offset: Some(s.offset),
            ..base.clone()
        },
    }
}

struct Decoder<'a> {
    base: &'a Location,
    /// The whole transaction set as text when it is valid UTF-8 (values are then sliced
    /// from it instead of being checked one by one).
    whole: Option<&'a str>,
    first_index: usize,
    issues: Vec<Issue>,
    response: bool,
    purpose: Option<Purpose>,
    reference: Option<Text>,
    created_date: Option<Date>,
    created_time: Option<Time>,
    transaction_type: Option<Code>,
    umo: Option<Entity>,
    requester: Option<Entity>,
    subscriber: Option<Entity>,
    dependent: Option<Entity>,
    event: LevelData,
    lines: Vec<LevelData>,
    level: Option<Lv>,
    entity: Option<Ent>,
    rejects: Vec<Reject>,
    bht_location: Option<Seen>,
    /// NM101 of the NM1 being read (names its loop before the entity exists).
    /// (Its first 16 bytes: no role of `event_provider_loop` is longer, so a longer one,
    /// whole or cut, names the same loop.)
    pending_role: [u8; 16],
    pending_role_len: usize,
}

impl<'a> Decoder<'a> {
    /// A value as text, `None` when it is not UTF-8.
    #[inline(always)]
    fn utf8<'v>(&self, v: &'v [u8]) -> Option<&'v str>
    where
        'a: 'v,
    {
        if v.is_empty() {
            return Some("");
        }
        if let Some(whole) = self.whole {
            // A value borrowed from the set: slice the checked text (a slice that does not
            // fall on character boundaries is not UTF-8 by itself either).
            let start = (v.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
            if start < whole.len() && v.len() <= whole.len() - start {
                return whole.get(start..start + v.len());
            }
        }
        std::str::from_utf8(v).ok()
    }

    fn loop_id(&self) -> Option<&'static str> {
        let id = match (self.level, self.entity) {
            (None, _) => return None,
            (_, Some(Ent::Umo)) => "2010A",
            (_, Some(Ent::Requester)) => "2010B",
            (_, Some(Ent::Subscriber)) => "2010C",
            (_, Some(Ent::Dependent)) => "2010D",
            (_, Some(Ent::EventProvider(i))) => {
                let role = match self.event.providers.get(i) {
                    Some(e) => e.role.as_str(),
                    None => std::str::from_utf8(&self.pending_role[..self.pending_role_len])
                        .unwrap_or(""),
                };
                return Some(event_provider_loop(role, self.response));
            }
            (_, Some(Ent::ServiceProvider(_))) => {
                if self.response {
                    "2010FA"
                } else {
                    "2010F"
                }
            }
            (Some(Lv::Umo), None) => "2000A",
            (Some(Lv::Requester), None) => "2000B",
            (Some(Lv::Subscriber), None) => "2000C",
            (Some(Lv::Dependent), None) => "2000D",
            (Some(Lv::Event), None) => "2000E",
            (Some(Lv::Service), None) => "2000F",
        };
        Some(id)
    }

    /// Remembers where `seg` is, with the loop it is in now.
    fn seen(&self, seg: &Segment, id: &'static str) -> Seen {
        Seen {
            index: seg.index,
            offset: seg.offset,
            id,
            loop_id: self.loop_id(),
        }
    }

    fn loc(&self, seg: &Segment) -> Location {
        Location {
            segment_index: Some(seg.index),
            segment_position: Some(seg.index + 1 - self.first_index),
            segment_id: Some(seg.id_str().to_owned()),
            loop_id: self.loop_id().map(str::to_owned),
            byte_offset: Some(seg.offset),
            ..self.base.clone()
        }
    }

    fn issue(
        &mut self,
        seg: &Segment,
        el: usize,
        code: &'static str,
        ack: &'static str,
        msg: String,
        value: &[u8],
    ) {
        let mut i =
            Issue::error(code, self.loc(seg).with_element(el), msg).ack(AckCode::Element(ack));
        if !value.is_empty() {
            i = i.value(value);
        }
        self.issues.push(i);
    }

    fn warn(&mut self, seg: &Segment, el: Option<usize>, code: &'static str, msg: String) {
        let mut loc = self.loc(seg);
        loc.element = el;
        self.issues.push(Issue::warning(code, loc, msg));
    }

    /// `extra` after `split_rest`: nothing to look at when the elements past `max` that were
    /// split and the rest are empty (the case of nearly every segment).
    #[inline]
    fn extra_rest(&mut self, seg: &Segment, max: usize, e: &[&[u8]], rest: &[u8]) {
        let el = seg.delimiters().element;
        if e.iter().skip(max).all(|v| v.is_empty()) && rest.iter().all(|&b| b == el) {
            return;
        }
        self.extra(seg, max);
    }

    /// Elements after `max` that carry data are reported (the model does not keep them).
    fn extra(&mut self, seg: &Segment, max: usize) {
        // Most segments have no more than `max` elements: count them before splitting.
        if seg.element_count() <= max {
            return;
        }
        for (i, v) in seg.elements().enumerate().skip(max) {
            if !v.is_empty() {
                let name = seg.id_str().to_owned();
                self.issues.push(
                    Issue::warning(
                        "element_not_kept",
                        self.loc(seg).with_element(i + 1),
                        format!(
                            "{name}{:02} is not part of the 278 model and is not kept",
                            i + 1
                        ),
                    )
                    .value(v),
                );
            }
        }
    }

    #[inline(always)]
    fn required(&mut self, seg: &Segment, el: usize, v: &[u8], what: &str) -> bool {
        if v.is_empty() {
            self.missing_element(seg, el, what);
            return false;
        }
        true
    }

    #[cold]
    #[inline(never)]
    fn missing_element(&mut self, seg: &Segment, el: usize, what: &str) {
        let v: &[u8] = &[];
        {
            let id = seg.id_str().to_owned();
            self.issue(
                seg,
                el,
                "required_element_missing",
                "1",
                format!("{id}{el:02} ({what}) is required"),
                v,
            );
        }
    }

    fn parse_value<T>(
        &mut self,
        seg: &Segment,
        el: usize,
        v: &[u8],
        parse: impl Fn(&str) -> Result<T, ValueError>,
    ) -> Option<T> {
        if v.is_empty() {
            return None;
        }
        let Some(s) = self.utf8(v) else {
            self.issue(
                seg,
                el,
                "invalid_character",
                "6",
                "the value is not valid UTF-8".into(),
                v,
            );
            return None;
        };
        match parse(s) {
            Ok(t) => Some(t),
            Err(e) => {
                let id = seg.id_str().to_owned();
                self.issue(
                    seg,
                    el,
                    "invalid_value",
                    "7",
                    format!("{id}{el:02}: {e}"),
                    v,
                );
                None
            }
        }
    }

    // Values are read by a quick test first (what nearly every value passes); only a value it
    // does not accept goes through the full parse, which gives the same value or the issue.
    #[inline(always)]
    fn text(&mut self, seg: &Segment, el: usize, v: &[u8]) -> Option<Text> {
        if v.is_empty() {
            return None;
        }
        if let Some(t) = self.utf8(v).and_then(Text::parse_quick) {
            return Some(t);
        }
        self.text_slow(seg, el, v)
    }
    #[cold]
    #[inline(never)]
    fn text_slow(&mut self, seg: &Segment, el: usize, v: &[u8]) -> Option<Text> {
        self.parse_value(seg, el, v, Text::parse)
    }
    #[inline(always)]
    fn code(&mut self, seg: &Segment, el: usize, v: &[u8]) -> Option<Code> {
        if v.is_empty() {
            return None;
        }
        if let Some(c) = self.utf8(v).and_then(Code::parse_quick) {
            return Some(c);
        }
        self.code_slow(seg, el, v)
    }
    #[cold]
    #[inline(never)]
    fn code_slow(&mut self, seg: &Segment, el: usize, v: &[u8]) -> Option<Code> {
        self.parse_value(seg, el, v, Code::parse)
    }
    #[inline(always)]
    fn decimal(&mut self, seg: &Segment, el: usize, v: &[u8]) -> Option<Decimal> {
        if v.is_empty() {
            return None;
        }
        if let Some(d) = self.utf8(v).and_then(Decimal::parse_quick) {
            return Some(d);
        }
        self.decimal_slow(seg, el, v)
    }
    #[cold]
    #[inline(never)]
    fn decimal_slow(&mut self, seg: &Segment, el: usize, v: &[u8]) -> Option<Decimal> {
        self.parse_value(seg, el, v, Decimal::parse)
    }
    #[inline(always)]
    fn list<T: CodeList>(&mut self, seg: &Segment, el: usize, v: &[u8]) -> Option<T> {
        if v.is_empty() {
            return None;
        }
        match self.utf8(v).and_then(T::from_code) {
            Some(t) => Some(t),
            None => {
                self.invalid_code::<T>(seg, el, v);
                None
            }
        }
    }
    #[cold]
    #[inline(never)]
    fn invalid_code<T: CodeList>(&mut self, seg: &Segment, el: usize, v: &[u8]) {
        {
            {
                let id = seg.id_str().to_owned();
                self.issue(
                    seg,
                    el,
                    "invalid_code",
                    "7",
                    format!(
                        "{id}{el:02} is not a valid {} (expected one of {})",
                        T::WHAT,
                        T::codes()
                    ),
                    v,
                );
            }
        }
    }
    fn yes_no(&mut self, seg: &Segment, el: usize, v: &[u8]) -> Option<bool> {
        match v {
            b"" => None,
            b"Y" => Some(true),
            b"N" => Some(false),
            _ => {
                let id = seg.id_str().to_owned();
                self.issue(
                    seg,
                    el,
                    "invalid_code",
                    "7",
                    format!("{id}{el:02} must be Y or N"),
                    v,
                );
                None
            }
        }
    }
    #[inline(always)]
    fn date8(&mut self, seg: &Segment, el: usize, v: &[u8]) -> Option<Date> {
        if v.is_empty() {
            return None;
        }
        if let Some(d) = Date::from_x12_quick(v) {
            return Some(d);
        }
        self.date8_slow(seg, el, v)
    }
    #[cold]
    #[inline(never)]
    fn date8_slow(&mut self, seg: &Segment, el: usize, v: &[u8]) -> Option<Date> {
        match self.utf8(v).map(Date::from_x12) {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                self.issue(seg, el, "invalid_date", "8", e.reason.to_string(), v);
                None
            }
            None => {
                self.issue(
                    seg,
                    el,
                    "invalid_date",
                    "8",
                    "not a CCYYMMDD date".into(),
                    v,
                );
                None
            }
        }
    }
    /// DTP02/03 style: D8 or RD8 and the value.
    fn period(&mut self, seg: &Segment, el: usize, format: &[u8], v: &[u8]) -> Option<DateOrRange> {
        match format {
            b"D8" => self.date8(seg, el, v).map(DateOrRange::Date),
            b"RD8" => {
                let Some(dash) = v.iter().position(|&b| b == b'-') else {
                    self.issue(
                        seg,
                        el,
                        "invalid_date",
                        "8",
                        "an RD8 range is CCYYMMDD-CCYYMMDD".into(),
                        v,
                    );
                    return None;
                };
                let start = self.date8(seg, el, &v[..dash])?;
                let end = self.date8(seg, el, &v[dash + 1..])?;
                if start <= end {
                    return Some(DateOrRange::Range(DateRange { start, end }));
                }
                match DateRange::new(start, end) {
                    Ok(r) => Some(DateOrRange::Range(r)),
                    Err(e) => {
                        self.issue(seg, el, "invalid_date", "8", e.reason, v);
                        None
                    }
                }
            }
            _ => {
                self.issue(
                    seg,
                    el - 1,
                    "invalid_code",
                    "7",
                    "the date format qualifier must be D8 or RD8".into(),
                    format,
                );
                None
            }
        }
    }

    fn level_data(&mut self) -> Option<&mut LevelData> {
        match self.level {
            Some(Lv::Event) => Some(&mut self.event),
            Some(Lv::Service) => self.lines.last_mut(),
            _ => None,
        }
    }

    fn entity_mut(&mut self) -> Option<&mut Entity> {
        match self.entity? {
            Ent::Umo => self.umo.as_mut(),
            Ent::Requester => self.requester.as_mut(),
            Ent::Subscriber => self.subscriber.as_mut(),
            Ent::Dependent => self.dependent.as_mut(),
            Ent::EventProvider(i) => self.event.providers.get_mut(i),
            Ent::ServiceProvider(i) => self.lines.last_mut().and_then(|l| l.providers.get_mut(i)),
        }
    }

    fn segment(&mut self, seg: &Segment) {
        match id_key(seg.id()) {
            ids::ST | ids::SE => {}
            ids::BHT => self.bht(seg),
            ids::HL => self.hl(seg),
            ids::NM1 => self.nm1(seg),
            ids::REF => self.reference(seg),
            ids::N3 | ids::N4 | ids::PER | ids::PRV | ids::DMG | ids::INS => {
                self.entity_detail(seg)
            }
            ids::AAA => self.aaa(seg),
            ids::TRN
            | ids::UM
            | ids::HCR
            | ids::DTP
            | ids::HI
            | ids::HSD
            | ids::CRC
            | ids::CL1
            | ids::CR1
            | ids::CR2
            | ids::CR5
            | ids::CR6
            | ids::CR7
            | ids::PWK
            | ids::MSG
            | ids::SV1
            | ids::SV2
            | ids::SV3
            | ids::TOO => self.level_segment(seg),
            _ => {
                let id = seg.id_str().to_owned();
                let mut loc = self.loc(seg);
                loc.element = None;
                self.issues.push(
                    Issue::error(
                        "segment_not_in_278",
                        loc,
                        format!("segment {id} is not used in a 278 and is not kept"),
                    )
                    .ack(AckCode::Segment("2")),
                );
            }
        }
    }

    fn bht(&mut self, seg: &Segment) {
        self.bht_location = Some(self.seen(seg, "BHT"));
        let (e, rest) = seg.split_rest::<6>();
        if e[0] != b"0007" {
            self.issue(
                seg,
                1,
                "invalid_code",
                "7",
                "BHT01 must be 0007 for a 278".into(),
                e[0],
            );
        }
        if self.required(seg, 2, e[1], "transaction purpose") {
            self.purpose = self.list(seg, 2, e[1]);
        }
        self.response = e[1] == b"11";
        if self.required(seg, 3, e[2], "submitter reference") {
            self.reference = self.text(seg, 3, e[2]);
        }
        self.created_date = self.date8(seg, 4, e[3]);
        self.created_time = self.parse_value(seg, 5, e[4], Time::parse);
        self.transaction_type = self.code(seg, 6, e[5]);
        self.extra_rest(seg, 6, &e, rest);
    }

    fn hl(&mut self, seg: &Segment) {
        self.entity = None;
        let (e, rest) = seg.split_rest::<4>();
        let lv = match e[2] {
            b"20" => Lv::Umo,
            b"21" => Lv::Requester,
            b"22" => Lv::Subscriber,
            b"23" => Lv::Dependent,
            b"EV" => Lv::Event,
            b"SS" => Lv::Service,
            other => {
                self.issue(
                    seg,
                    3,
                    "invalid_code",
                    "7",
                    "HL03 must be 20, 21, 22, 23, EV or SS in a 278".into(),
                    other,
                );
                self.level = None;
                return;
            }
        };
        self.level = Some(lv);
        let loc = Some(self.seen(seg, "HL"));
        match lv {
            Lv::Event => {
                if self.event.seen {
                    self.warn(
                        seg,
                        None,
                        "event_repeated",
                        "a second 2000E patient event: its segments are merged into the first"
                            .into(),
                    );
                }
                self.event.seen = true;
                self.event.hl_location = loc;
            }
            Lv::Service => {
                if self.lines.capacity() == 0 {
                    // Lines are large: grow once to a usual number, not one at a time.
                    self.lines.reserve(4);
                }
                push_built(&mut self.lines, || LevelData {
                    seen: true,
                    hl_location: loc,
                    ..LevelData::default()
                });
            }
            _ => {}
        }
        self.extra_rest(seg, 4, &e, rest);
    }

    fn nm1(&mut self, seg: &Segment) {
        let (e, rest) = seg.split_rest::<9>();
        let Some(lv) = self.level else {
            self.warn(
                seg,
                None,
                "segment_outside_loop",
                "an NM1 before any HL is not kept".into(),
            );
            return;
        };
        // Byte by byte: a role is two or three bytes, not worth a call to `memcpy`.
        let n = e[0].len().min(self.pending_role.len());
        for (to, from) in self.pending_role.iter_mut().zip(&e[0][..n]) {
            *to = *from;
        }
        self.pending_role_len = n;
        // Issues in this NM1 are located in the loop it opens.
        self.entity = match lv {
            Lv::Umo => Some(Ent::Umo),
            Lv::Requester => Some(Ent::Requester),
            Lv::Subscriber => Some(Ent::Subscriber),
            Lv::Dependent => Some(Ent::Dependent),
            Lv::Event => Some(Ent::EventProvider(usize::MAX)),
            Lv::Service => Some(Ent::ServiceProvider(usize::MAX)),
        };
        // The entity is built whatever its values say, so later segments still find it.
        let role = if self.required(seg, 1, e[0], "entity identifier") {
            self.code(seg, 1, e[0])
        } else {
            None
        };
        let kind = if self.required(seg, 2, e[1], "entity type") {
            self.list(seg, 2, e[1])
        } else {
            None
        };
        let kind = kind.unwrap_or(EntityType::Organization);
        // The parts are read first and the entity built once where it goes (an entity is
        // over 500 bytes: each move is a copy).
        let role = match role {
            Some(role) => role,
            None => Entity::new("ZZ", kind).expect("a valid code").role,
        };
        let name = self.text(seg, 3, e[2]);
        let first_name = self.text(seg, 4, e[3]);
        let middle_name = self.text(seg, 5, e[4]);
        let prefix = self.text(seg, 6, e[5]);
        let suffix = self.text(seg, 7, e[6]);
        let id = match (e[7], e[8]) {
            (b"", b"") => None,
            (b"", v) => {
                self.issue(
                    seg,
                    8,
                    "conditional_element_missing",
                    "2",
                    "NM109 needs NM108, its qualifier".into(),
                    v,
                );
                None
            }
            (q, b"") => {
                self.issue(
                    seg,
                    9,
                    "conditional_element_missing",
                    "2",
                    "NM108 needs NM109, the identifier".into(),
                    q,
                );
                None
            }
            (b"XX", v) => match self.utf8(v).map(Npi::parse) {
                Some(Ok(n)) => Some(Identification::Npi(n)),
                other => {
                    let why = match other {
                        Some(Err(e)) => e.reason,
                        _ => "not UTF-8".into(),
                    };
                    // The NPI check digit is a business rule, not X12 syntax: the value is kept
                    // as sent (as a raw XX identifier, never as an `Npi`) with a warning.
                    let loc = self.loc(seg).with_element(9);
                    self.issues.push(
                        Issue::warning(
                            "invalid_npi",
                            loc,
                            format!("NM109 is not a valid NPI: {why}; kept as sent"),
                        )
                        .value(v)
                        .ack(AckCode::Element("I12")),
                    );
                    let value = self.text(seg, 9, v);
                    value.map(|value| Identification::Other {
                        qualifier: Code::parse("XX").expect("code"),
                        value,
                    })
                }
            },
            (b"MI", v) => self
                .parse_value(seg, 9, v, MemberId::parse)
                .map(Identification::MemberId),
            (q, v) => {
                let qualifier = self.code(seg, 8, q);
                let value = self.text(seg, 9, v);
                qualifier
                    .zip(value)
                    .map(|(qualifier, value)| Identification::Other { qualifier, value })
            }
        };
        self.extra_rest(seg, 9, &e, rest);
        // Built where it goes (see `push_built`).
        let entity = move || Entity {
            role,
            kind,
            name,
            first_name,
            middle_name,
            prefix,
            suffix,
            id,
            references: vec![],
            address: None,
            contacts: vec![],
            provider_info: None,
            demographics: None,
            relationship: None,
            id_system: None,
            stated_role: None,
            locations: vec![],
        };
        let which = match lv {
            Lv::Umo => Ent::Umo,
            Lv::Requester => Ent::Requester,
            Lv::Subscriber => Ent::Subscriber,
            Lv::Dependent => Ent::Dependent,
            Lv::Event => {
                // Most levels name one provider: room for one entity is a small allocation,
                // room for the default four is not.
                if self.event.providers.capacity() == 0 {
                    self.event.providers.reserve_exact(1);
                }
                push_built(&mut self.event.providers, entity);
                self.entity = Some(Ent::EventProvider(self.event.providers.len() - 1));
                return;
            }
            Lv::Service => {
                let Some(line) = self.lines.last_mut() else {
                    return;
                };
                if line.providers.capacity() == 0 {
                    line.providers.reserve_exact(1);
                }
                push_built(&mut line.providers, entity);
                self.entity = Some(Ent::ServiceProvider(line.providers.len() - 1));
                return;
            }
        };
        self.entity = Some(which);
        if self.entity_mut().is_some() {
            self.warn(
                seg,
                None,
                "entity_repeated",
                "a second name in this loop replaces the first".into(),
            );
        }
        let slot = match which {
            Ent::Umo => &mut self.umo,
            Ent::Requester => &mut self.requester,
            Ent::Subscriber => &mut self.subscriber,
            _ => &mut self.dependent,
        };
        *slot = Some(entity());
    }

    fn reference(&mut self, seg: &Segment) {
        let (e, rest) = seg.split_rest::<3>();
        let ok = self.required(seg, 1, e[0], "reference qualifier")
            & self.required(seg, 2, e[1], "reference");
        let qualifier = self.code(seg, 1, e[0]);
        let value = self.text(seg, 2, e[1]);
        let description = self.text(seg, 3, e[2]);
        self.extra_rest(seg, 3, &e, rest);
        let (Some(qualifier), Some(value), true) = (qualifier, value, ok) else {
            return;
        };
        let r = Reference {
            qualifier,
            value,
            description,
            system: None,
        };
        if self.entity.is_some() {
            if let Some(ent) = self.entity_mut() {
                ent.references.push(r);
            }
            return;
        }
        let response = self.response;
        match self.level_data() {
            Some(l)
                if response
                    && r.qualifier.as_str() == "NT"
                    && l.administrative_reference.is_none() =>
            {
                l.administrative_reference = Some(r.value)
            }
            Some(l) => l.references.push(r),
            None => self.warn(
                seg,
                None,
                "segment_not_kept",
                "a REF outside a name, event or service loop is not kept".into(),
            ),
        }
    }

    fn entity_detail(&mut self, seg: &Segment) {
        if self.entity.is_none() {
            let id = seg.id_str().to_owned();
            let mut loc = self.loc(seg);
            loc.element = None;
            self.issues.push(
                Issue::error(
                    "segment_misplaced",
                    loc,
                    format!("{id} belongs in a name (NM1) loop; it is not kept"),
                )
                .ack(AckCode::Segment("2")),
            );
            return;
        }
        match seg.id() {
            b"N3" => {
                let (e, rest) = seg.split_rest::<2>();
                let l1 = self.text(seg, 1, e[0]);
                let l2 = self.text(seg, 2, e[1]);
                self.extra_rest(seg, 2, &e, rest);
                let ent = self.entity_mut().expect("entity");
                let addr = ent.address.get_or_insert_with(empty_address);
                addr.lines.extend(l1);
                addr.lines.extend(l2);
            }
            b"N4" => {
                let (e, rest) = seg.split_rest::<7>();
                let city = self.text(seg, 1, e[0]);
                let state = self.code(seg, 2, e[1]);
                let postal = self.code(seg, 3, e[2]);
                let country = self.code(seg, 4, e[3]);
                let sub = self.code(seg, 7, e[6]);
                for (i, v) in [(5, e[4]), (6, e[5])] {
                    if !v.is_empty() {
                        self.warn(
                            seg,
                            Some(i),
                            "element_not_kept",
                            format!("N4{i:02} is not used in a 278 and is not kept"),
                        );
                    }
                }
                self.extra_rest(seg, 7, &e, rest);
                let ent = self.entity_mut().expect("entity");
                let addr = ent.address.get_or_insert_with(empty_address);
                addr.city = city;
                addr.state = state;
                addr.postal_code = postal;
                addr.country = country;
                addr.country_subdivision = sub;
            }
            b"PER" => {
                let (e, rest) = seg.split_rest::<8>();
                let function = if self.required(seg, 1, e[0], "contact function") {
                    self.code(seg, 1, e[0])
                } else {
                    None
                };
                let name = self.text(seg, 2, e[1]);
                let mut numbers = vec![];
                for i in 0..3 {
                    let (q, n) = (e[2 + 2 * i], e[3 + 2 * i]);
                    if q.is_empty() && n.is_empty() {
                        continue;
                    }
                    if q.is_empty() || n.is_empty() {
                        self.issue(
                            seg,
                            3 + 2 * i,
                            "conditional_element_missing",
                            "2",
                            "a PER number needs both qualifier and number".into(),
                            n,
                        );
                        continue;
                    }
                    if let (Some(qualifier), Some(number)) =
                        (self.code(seg, 3 + 2 * i, q), self.text(seg, 4 + 2 * i, n))
                    {
                        numbers.push(ContactNumber { qualifier, number });
                    }
                }
                self.extra_rest(seg, 8, &e, rest);
                if let Some(function) = function {
                    self.entity_mut().expect("entity").contacts.push(Contact {
                        function,
                        name,
                        numbers,
                    });
                }
            }
            b"PRV" => {
                let (e, rest) = seg.split_rest::<3>();
                let ok = self.required(seg, 1, e[0], "provider code")
                    & self.required(seg, 2, e[1], "reference qualifier")
                    & self.required(seg, 3, e[2], "taxonomy");
                let role = self.code(seg, 1, e[0]);
                let qualifier = self.code(seg, 2, e[1]);
                let taxonomy = self.code(seg, 3, e[2]);
                self.extra_rest(seg, 3, &e, rest);
                if let (Some(role), Some(qualifier), Some(taxonomy), true) =
                    (role, qualifier, taxonomy, ok)
                {
                    self.entity_mut().expect("entity").provider_info = Some(ProviderInfo {
                        role,
                        qualifier,
                        taxonomy,
                    });
                }
            }
            b"DMG" => {
                let (e, rest) = seg.split_rest::<3>();
                if !e[0].is_empty() && e[0] != b"D8" {
                    self.issue(seg, 1, "invalid_code", "7", "DMG01 must be D8".into(), e[0]);
                }
                let birth_date = if self.required(seg, 2, e[1], "birth date") {
                    self.date8(seg, 2, e[1])
                } else {
                    None
                };
                let gender = self.code(seg, 3, e[2]);
                self.extra_rest(seg, 3, &e, rest);
                if birth_date.is_some() || gender.is_some() {
                    self.entity_mut().expect("entity").demographics =
                        Some(Demographics { birth_date, gender });
                }
            }
            b"INS" => {
                let (e, rest) = seg.split_rest::<17>();
                let is_subscriber = self.yes_no(seg, 1, e[0]);
                let code = if self.required(seg, 2, e[1], "relationship code") {
                    self.code(seg, 2, e[1])
                } else {
                    None
                };
                let birth_sequence = self.decimal(seg, 17, e[16]);
                for (i, v) in e.iter().enumerate().take(16).skip(2) {
                    if !v.is_empty() {
                        self.warn(
                            seg,
                            Some(i + 1),
                            "element_not_kept",
                            format!("INS{:02} is not used in a 278 and is not kept", i + 1),
                        );
                    }
                }
                self.extra_rest(seg, 17, &e, rest);
                if let (Some(is_subscriber), Some(code)) = (is_subscriber, code) {
                    self.entity_mut().expect("entity").relationship = Some(Relationship {
                        is_subscriber,
                        code,
                        birth_sequence,
                    });
                }
            }
            _ => unreachable!("dispatched above"),
        }
    }

    fn aaa(&mut self, seg: &Segment) {
        let (e, rest) = seg.split_rest::<4>();
        let validity = if self.required(seg, 1, e[0], "valid request indicator") {
            self.list(seg, 1, e[0])
        } else {
            None
        };
        let reason = self.code(seg, 3, e[2]);
        let follow_up = self.list(seg, 4, e[3]);
        if !e[1].is_empty() {
            self.warn(
                seg,
                Some(2),
                "element_not_kept",
                "AAA02 is not used in a 278".into(),
            );
        }
        self.extra_rest(seg, 4, &e, rest);
        let Some(validity) = validity else { return };
        let (level, line) = match self.level {
            Some(Lv::Umo) => (Level::Umo, None),
            Some(Lv::Requester) => (Level::Requester, None),
            Some(Lv::Subscriber) => (Level::Subscriber, None),
            Some(Lv::Dependent) => (Level::Dependent, None),
            Some(Lv::Event) => (Level::Event, None),
            Some(Lv::Service) => (Level::Service, Some(self.lines.len())),
            None => {
                self.warn(
                    seg,
                    None,
                    "segment_outside_loop",
                    "an AAA before any HL is not kept".into(),
                );
                return;
            }
        };
        let r = Reject {
            level,
            line,
            validity,
            reason,
            follow_up,
        };
        match self.level_data() {
            Some(l) => l.rejects.push(r),
            None => self.rejects.push(r),
        }
    }

    fn level_segment(&mut self, seg: &Segment) {
        if !matches!(self.level, Some(Lv::Event | Lv::Service)) {
            let id = seg.id_str().to_owned();
            let mut loc = self.loc(seg);
            loc.element = None;
            self.issues.push(
                Issue::error(
                    "segment_misplaced",
                    loc,
                    format!("{id} belongs in a 2000E or 2000F loop; it is not kept"),
                )
                .ack(AckCode::Segment("2")),
            );
            return;
        }
        if self.entity.is_some() {
            // A level segment after a name loop: back at the level (the guide validator reports
            // the order); the data is kept with its level.
            self.entity = None;
            let id = seg.id_str().to_owned();
            self.warn(
                seg,
                None,
                "segment_order",
                format!("{id} follows a name (NM1) loop; it belongs before the names of its level"),
            );
        }
        let service_level = self.level == Some(Lv::Service);
        let response = self.response;
        match id_key(seg.id()) {
            ids::TRN => {
                let (e, rest) = seg.split_rest::<4>();
                let ok = self.required(seg, 1, e[0], "trace type")
                    & self.required(seg, 2, e[1], "trace number")
                    & self.required(seg, 3, e[2], "originating company");
                let kind = self.list(seg, 1, e[0]);
                let reference = self.text(seg, 2, e[1]);
                let originator = self.code(seg, 3, e[2]);
                let secondary = self.text(seg, 4, e[3]);
                self.extra_rest(seg, 4, &e, rest);
                if let (Some(kind), Some(reference), Some(originator), true) =
                    (kind, reference, originator, ok)
                {
                    push_built(&mut self.level_data().expect("level").trace_numbers, || {
                        TraceNumber {
                            kind,
                            reference,
                            originator,
                            secondary,
                            system: None,
                            originator_system: None,
                            jurisdiction: None,
                        }
                    });
                }
            }
            ids::UM => {
                let review = self.um(seg);
                let l = self.level_data().expect("level");
                if l.review.is_some() {
                    self.warn(
                        seg,
                        None,
                        "segment_repeated",
                        "a second UM in the loop replaces the first".into(),
                    );
                }
                self.level_data().expect("level").review = review;
            }
            ids::HCR => {
                let (e, rest) = seg.split_rest::<4>();
                let action = if self.required(seg, 1, e[0], "action code") {
                    self.list(seg, 1, e[0])
                } else {
                    None
                };
                let cert = self.text(seg, 2, e[1]);
                let reason = self.code(seg, 3, e[2]);
                let ssop = self.yes_no(seg, 4, e[3]);
                self.extra_rest(seg, 4, &e, rest);
                if !response {
                    self.warn(
                        seg,
                        None,
                        "segment_in_request",
                        "HCR belongs in a response (BHT02 = 11)".into(),
                    );
                }
                let l = self.level_data().expect("level");
                l.hcr = true;
                l.action = action;
                l.certification_number = cert;
                l.reason = reason;
                l.second_opinion = ssop;
            }
            ids::DTP => {
                let (e, rest) = seg.split_rest::<3>();
                let ok = self.required(seg, 1, e[0], "date qualifier")
                    & self.required(seg, 2, e[1], "date format")
                    & self.required(seg, 3, e[2], "date");
                // The certification dates of a response need no code value (these codes
                // are valid: parsing them could report nothing).
                let certification = response && matches!(e[0], b"102" | b"036" | b"007");
                let qualifier = if certification {
                    None
                } else {
                    self.code(seg, 1, e[0])
                };
                let date = if ok {
                    self.period(seg, 3, e[1], e[2])
                } else {
                    None
                };
                self.extra_rest(seg, 3, &e, rest);
                let Some(date) = date else { return };
                let qualifier = match qualifier {
                    Some(q) => q,
                    None if certification => {
                        let l = self.level_data().expect("level");
                        match (e[0], date) {
                            (b"102", DateOrRange::Date(d)) => l.certification.issued = Some(d),
                            (b"036", DateOrRange::Date(d)) => l.certification.expires = Some(d),
                            (b"007", d) => l.certification.effective = Some(d),
                            (q, date) => l.dates.push(EventDate {
                                qualifier: Code::parse(std::str::from_utf8(q).unwrap_or_default())
                                    .expect("a certification date qualifier is a code"),
                                date,
                            }),
                        }
                        return;
                    }
                    None => return,
                };
                self.level_data()
                    .expect("level")
                    .dates
                    .push(EventDate { qualifier, date });
            }
            ids::HI => {
                // Read into the level's own list (a list of its own, then appended, would be a
                // second allocation).
                let mut diagnoses =
                    std::mem::take(&mut self.level_data().expect("level").diagnoses);
                for (i, v) in seg.elements().enumerate() {
                    if v.is_empty() {
                        continue;
                    }
                    if i >= 12 {
                        self.issue(
                            seg,
                            i + 1,
                            "too_many_elements",
                            "3",
                            "HI carries at most 12 diagnoses".into(),
                            v,
                        );
                        continue;
                    }
                    let c = seg.split_components::<5>(v);
                    let Some(qualifier) = self.list::<DiagnosisQualifier>(seg, i + 1, c[0]) else {
                        continue;
                    };
                    if c[1].is_empty() {
                        self.issue(
                            seg,
                            i + 1,
                            "required_element_missing",
                            "1",
                            "a diagnosis needs a code after its qualifier".into(),
                            v,
                        );
                        continue;
                    }
                    let code = if qualifier.is_icd10() {
                        self.parse_value(seg, i + 1, c[1], Icd10Cm::parse)
                            .map(DiagnosisCode::Icd10Cm)
                    } else {
                        self.code(seg, i + 1, c[1]).map(DiagnosisCode::Other)
                    };
                    let date = match c[2] {
                        b"" => None,
                        b"D8" => self.date8(seg, i + 1, c[3]),
                        other => {
                            self.issue(
                                seg,
                                i + 1,
                                "invalid_code",
                                "7",
                                "a diagnosis date uses format D8".into(),
                                other,
                            );
                            None
                        }
                    };
                    if !c[4].is_empty() {
                        self.warn(
                            seg,
                            Some(i + 1),
                            "element_not_kept",
                            "components after the date of a diagnosis are not kept".into(),
                        );
                    }
                    if let Some(code) = code {
                        diagnoses.push(Diagnosis {
                            qualifier,
                            code,
                            date,
                        });
                    }
                }
                self.level_data().expect("level").diagnoses = diagnoses;
            }
            ids::HSD => {
                let (e, rest) = seg.split_rest::<8>();
                let q = ServiceQuantity {
                    unit: self.list(seg, 1, e[0]),
                    quantity: self.decimal(seg, 2, e[1]),
                    per: self.code(seg, 3, e[2]),
                    sample_count: self.decimal(seg, 4, e[3]),
                    period: self.code(seg, 5, e[4]),
                    period_count: self.decimal(seg, 6, e[5]),
                    delivery_pattern: self.code(seg, 7, e[6]),
                    delivery_time: self.code(seg, 8, e[7]),
                };
                self.extra_rest(seg, 8, &e, rest);
                if q.is_empty() {
                    self.warn(
                        seg,
                        None,
                        "segment_without_data",
                        "an HSD with no value is not kept".into(),
                    );
                } else {
                    self.level_data().expect("level").quantity = Some(q);
                }
            }
            ids::CRC => {
                let (e, rest) = seg.split_rest::<7>();
                let ok = self.required(seg, 1, e[0], "condition category")
                    & self.required(seg, 2, e[1], "certification condition indicator")
                    & self.required(seg, 3, e[2], "condition code");
                let category = self.code(seg, 1, e[0]);
                let applies = self.yes_no(seg, 2, e[1]);
                let mut codes = vec![];
                for (i, v) in e.iter().enumerate().skip(2) {
                    codes.extend(self.code(seg, i + 1, v));
                }
                self.extra_rest(seg, 7, &e, rest);
                if let (Some(category), Some(applies), true) = (category, applies, ok) {
                    self.level_data()
                        .expect("level")
                        .conditions
                        .push(Condition {
                            category,
                            applies,
                            codes,
                        });
                }
            }
            ids::CL1 => {
                let (e, rest) = seg.split_rest::<4>();
                let info = InstitutionalInfo {
                    admission_type: self.code(seg, 1, e[0]),
                    admission_source: self.code(seg, 2, e[1]),
                    patient_status: self.code(seg, 3, e[2]),
                    nursing_home_status: self.code(seg, 4, e[3]),
                    encounter_class: None,
                };
                self.extra_rest(seg, 4, &e, rest);
                if info.is_empty() {
                    self.warn(
                        seg,
                        None,
                        "segment_without_data",
                        "a CL1 with no code is not kept".into(),
                    );
                } else {
                    self.level_data().expect("level").institutional = Some(info);
                }
            }
            ids::CR1 | ids::CR2 | ids::CR5 | ids::CR6 | ids::CR7 => {
                let mut elements: Vec<String> = vec![];
                for (i, v) in seg.elements().enumerate() {
                    match self.utf8(v) {
                        Some(s) => elements.push(s.to_owned()),
                        None => {
                            self.issue(
                                seg,
                                i + 1,
                                "invalid_character",
                                "6",
                                "the value is not valid UTF-8".into(),
                                v,
                            );
                            elements.push(String::new());
                        }
                    }
                }
                while elements.last().is_some_and(String::is_empty) {
                    elements.pop();
                }
                let segment = Code::parse(seg.id_str()).expect("CRn is a code");
                self.level_data()
                    .expect("level")
                    .clinical
                    .push(ClinicalSegment { segment, elements });
            }
            ids::PWK => {
                let (e, rest) = seg.split_rest::<7>();
                let ok = self.required(seg, 1, e[0], "report type")
                    & self.required(seg, 2, e[1], "report transmission");
                let report_type = self.code(seg, 1, e[0]);
                let transmission = self.code(seg, 2, e[1]);
                for (i, v) in [(3, e[2]), (4, e[3])] {
                    if !v.is_empty() {
                        self.warn(
                            seg,
                            Some(i),
                            "element_not_kept",
                            format!("PWK{i:02} is not used in a 278 and is not kept"),
                        );
                    }
                }
                let control_number = match (e[4], e[5]) {
                    (b"", b"") => None,
                    (b"AC", v) => self.text(seg, 6, v),
                    (q, v) => {
                        self.issue(
                            seg,
                            5,
                            "invalid_code",
                            "7",
                            "PWK05 must be AC (attachment control number) when PWK06 is sent"
                                .into(),
                            q,
                        );
                        self.text(seg, 6, v)
                    }
                };
                let description = self.text(seg, 7, e[6]);
                self.extra_rest(seg, 7, &e, rest);
                if let (Some(report_type), Some(transmission), true) =
                    (report_type, transmission, ok)
                {
                    self.level_data()
                        .expect("level")
                        .attachments
                        .push(Attachment {
                            report_type,
                            transmission,
                            control_number,
                            description,
                            document: None,
                        });
                }
            }
            ids::MSG => {
                let (e, rest) = seg.split_rest::<1>();
                // Payers pad MSG01 (" NFSS"); the text is kept trimmed.
                let trimmed = self.utf8(e[0]).map(str::trim).unwrap_or("");
                let text = if trimmed.is_empty() {
                    None
                } else {
                    self.text(seg, 1, trimmed.as_bytes())
                };
                self.extra_rest(seg, 1, &e, rest);
                if let Some(t) = text {
                    self.level_data().expect("level").messages.push(t);
                }
            }
            ids::SV1 | ids::SV2 | ids::SV3 => {
                if !service_level {
                    let id = seg.id_str().to_owned();
                    let mut loc = self.loc(seg);
                    loc.element = None;
                    self.issues.push(
                        Issue::error(
                            "segment_misplaced",
                            loc,
                            format!("{id} belongs in a 2000F service loop; it is not kept"),
                        )
                        .ack(AckCode::Segment("2")),
                    );
                    return;
                }
                let service = self.service(seg);
                let l = self.level_data().expect("level");
                let dup = l.service.is_some();
                // Moved once (a service is over 200 bytes); a line keeps its last readable one.
                if service.is_some() {
                    l.service = service;
                }
                if dup {
                    self.warn(
                        seg,
                        None,
                        "segment_repeated",
                        "only one SV1/SV2/SV3 per service line; the last one is kept".into(),
                    );
                }
            }
            ids::TOO => {
                let (e, rest) = seg.split_rest::<3>();
                let ok = self.required(seg, 1, e[0], "code list qualifier")
                    & self.required(seg, 2, e[1], "tooth number");
                let qualifier = self.code(seg, 1, e[0]);
                let number = self.code(seg, 2, e[1]);
                let mut surfaces = vec![];
                for c in seg
                    .components(e[2])
                    .filter(|c| !c.is_empty())
                    .collect::<Vec<_>>()
                {
                    surfaces.extend(self.code(seg, 3, c));
                }
                self.extra_rest(seg, 3, &e, rest);
                if let (Some(qualifier), Some(number), true) = (qualifier, number, ok) {
                    self.level_data().expect("level").teeth.push(Tooth {
                        qualifier,
                        number,
                        surfaces,
                    });
                }
            }
            _ => unreachable!("dispatched above"),
        }
    }

    fn um(&mut self, seg: &Segment) -> Option<ReviewInfo> {
        let (e, rest) = seg.split_rest::<9>();
        let ok = self.required(seg, 1, e[0], "request category")
            & self.required(seg, 2, e[1], "certification type");
        let category = self.list(seg, 1, e[0]);
        let certification_type = self.list(seg, 2, e[1]);
        if certification_type == Some(CertificationType::Reconsideration) {
            self.warn(
                seg,
                Some(2),
                "unconfirmed_code",
                "UM02 = N (reconsideration) is not confirmed for 005010X217".into(),
            );
        }
        let service_type = self.code(seg, 3, e[2]);
        let location = if e[3].is_empty() {
            None
        } else {
            let c = seg.split_components::<3>(e[3]);
            let code = self.code(seg, 4, c[0]);
            let qualifier = self.code(seg, 4, c[1]);
            if c[1].is_empty() {
                self.issue(
                    seg,
                    4,
                    "required_element_missing",
                    "1",
                    "UM04 needs a qualifier after the code (e.g. 11:B)".into(),
                    e[3],
                );
            }
            code.zip(qualifier)
                .map(|(code, qualifier)| ServiceLocation { code, qualifier })
        };
        let related_causes = if e[4].is_empty() {
            None
        } else {
            let c = seg.split_components::<5>(e[4]);
            let mut causes = vec![];
            for v in &c[..3] {
                causes.extend(self.code(seg, 5, v));
            }
            Some(RelatedCauses {
                causes,
                state: self.code(seg, 5, c[3]),
                country: self.code(seg, 5, c[4]),
            })
        };
        let level_of_service = self.list(seg, 6, e[5]);
        for (i, v) in [(7, e[6]), (8, e[7])] {
            if !v.is_empty() {
                self.warn(
                    seg,
                    Some(i),
                    "element_not_kept",
                    format!("UM{i:02} is not used in a 278 and is not kept"),
                );
            }
        }
        let release_of_information = self.code(seg, 9, e[8]);
        self.extra_rest(seg, 9, &e, rest);
        match (category, certification_type, ok) {
            (Some(category), Some(certification_type), true) => Some(ReviewInfo {
                category,
                certification_type,
                service_type,
                location,
                related_causes,
                level_of_service,
                release_of_information,
            }),
            _ => None,
        }
    }

    fn procedure(&mut self, seg: &Segment, el: usize, v: &[u8]) -> Option<Procedure> {
        let c = seg.split_components::<8>(v);
        let qualifier = self.list::<ProcedureQualifier>(seg, el, c[0])?;
        if c[1].is_empty() {
            self.issue(
                seg,
                el,
                "required_element_missing",
                "1",
                "the procedure composite needs a code".into(),
                v,
            );
            return None;
        }
        let mut modifiers = vec![];
        for m in &c[2..6] {
            modifiers.extend(self.code(seg, el, m));
        }
        let description = self.text(seg, el, c[6]);
        if !c[7].is_empty() {
            self.warn(
                seg,
                Some(el),
                "element_not_kept",
                "the product/service id (component 8) is not kept".into(),
            );
        }
        let code = self.utf8(c[1]).unwrap_or("");
        match Procedure::new(qualifier, code, modifiers, description) {
            Ok(p) => Some(p),
            Err(e) => {
                self.issue(seg, el, "invalid_procedure", "7", e.to_string(), c[1]);
                None
            }
        }
    }

    fn service(&mut self, seg: &Segment) -> Option<Service> {
        match seg.id() {
            b"SV1" => {
                let (e, rest) = seg.split_rest::<21>();
                let procedure = if self.required(seg, 1, e[0], "procedure") {
                    self.procedure(seg, 1, e[0])
                } else {
                    None
                };
                let charge = self.decimal(seg, 2, e[1]);
                let unit = self.list(seg, 3, e[2]);
                let quantity = self.decimal(seg, 4, e[3]);
                let place_of_service = self.code(seg, 5, e[4]);
                let epsdt = self.yes_no(seg, 11, e[10]);
                let nursing_home_level_of_care = self.code(seg, 20, e[19]);
                for (i, v) in e.iter().enumerate().take(19).skip(5) {
                    if i != 10 && !v.is_empty() {
                        self.warn(
                            seg,
                            Some(i + 1),
                            "element_not_kept",
                            format!("SV1{:02} is not used in a 278 and is not kept", i + 1),
                        );
                    }
                }
                self.extra_rest(seg, 20, &e, rest);
                Some(Service::Professional {
                    procedure: procedure?,
                    charge,
                    unit,
                    quantity,
                    place_of_service,
                    epsdt,
                    nursing_home_level_of_care,
                })
            }
            b"SV2" => {
                let (e, rest) = seg.split_rest::<10>();
                let revenue_code = self.code(seg, 1, e[0]);
                let procedure = if e[1].is_empty() {
                    None
                } else {
                    self.procedure(seg, 2, e[1])
                };
                if e[0].is_empty() && e[1].is_empty() {
                    self.issue(
                        seg,
                        1,
                        "conditional_element_missing",
                        "2",
                        "SV2 needs SV201 (revenue code) or SV202 (procedure)".into(),
                        b"",
                    );
                }
                let charge = self.decimal(seg, 3, e[2]);
                let unit = self.list(seg, 4, e[3]);
                let quantity = self.decimal(seg, 5, e[4]);
                let rate = self.decimal(seg, 6, e[5]);
                for (i, v) in [(7, e[6]), (8, e[7])] {
                    if !v.is_empty() {
                        self.warn(
                            seg,
                            Some(i),
                            "element_not_kept",
                            format!("SV2{i:02} is not used in a 278 and is not kept"),
                        );
                    }
                }
                let nursing_home_residential_status = self.code(seg, 9, e[8]);
                let nursing_home_level_of_care = self.code(seg, 10, e[9]);
                self.extra_rest(seg, 10, &e, rest);
                Some(Service::Institutional {
                    revenue_code,
                    procedure,
                    charge,
                    unit,
                    quantity,
                    rate,
                    nursing_home_residential_status,
                    nursing_home_level_of_care,
                })
            }
            _ => {
                let (e, rest) = seg.split_rest::<6>();
                let procedure = if self.required(seg, 1, e[0], "procedure") {
                    self.procedure(seg, 1, e[0])
                } else {
                    None
                };
                let charge = self.decimal(seg, 2, e[1]);
                let place_of_service = self.code(seg, 3, e[2]);
                for (i, v) in [(4, e[3]), (5, e[4])] {
                    if !v.is_empty() {
                        self.warn(
                            seg,
                            Some(i),
                            "element_not_kept",
                            format!("SV3{i:02} is not used in a 278 and is not kept"),
                        );
                    }
                }
                let quantity = self.decimal(seg, 6, e[5]);
                self.extra_rest(seg, 6, &e, rest);
                Some(Service::Dental {
                    procedure: procedure?,
                    charge,
                    place_of_service,
                    quantity,
                })
            }
        }
    }

    /// Builds the message from what was read (by `&mut self`: moving the decoder, several
    /// kilobytes, into this call would copy it).
    fn finish(&mut self) -> (Option<Message278>, Vec<Issue>) {
        let Some(reference) = self.reference.take() else {
            if self.bht_location.is_none() {
                self.issues.push(
                    Issue::error(
                        "required_segment_missing",
                        self.base.clone(),
                        "the 278 has no BHT segment",
                    )
                    .ack(AckCode::Segment("3")),
                );
            }
            return (None, std::mem::take(&mut self.issues));
        };
        let response = self.response;
        let mut issues = std::mem::take(&mut self.issues);
        let missing = |issues: &mut Vec<Issue>, loc: &Location, what: &str| {
            issues.push(
                Issue::error("required_segment_missing", loc.clone(), what.to_owned())
                    .ack(AckCode::Segment("3")),
            );
        };
        // Each line's parts are taken out where they are (a line is over a kilobyte: moving
        // it out of the vector would copy it).
        let mut lines_data = std::mem::take(&mut self.lines);
        let mut services = Vec::with_capacity(lines_data.len());
        let mut line_decisions = Vec::with_capacity(if response { lines_data.len() } else { 0 });
        for (i, l) in lines_data.iter_mut().enumerate() {
            let mut messages = std::mem::take(&mut l.messages);
            let message = if response { None } else { messages.pop() };
            if !response {
                for m in messages.drain(..) {
                    issues.push(Issue::warning(
                        "segment_repeated",
                        located(self.base, self.first_index, l.hl_location),
                        format!(
                            "only one MSG per service line is kept; dropped {:?}",
                            m.as_str()
                        ),
                    ));
                }
            }
            let traces = std::mem::take(&mut l.trace_numbers);
            let (line_traces, echo_traces) = if response {
                (traces, vec![])
            } else {
                (vec![], traces)
            };
            let approved_units = l.service.as_ref().and_then(Service::quantity).cloned();
            let event_action = self.event.action;
            if response {
                if !l.hcr && l.rejects.is_empty() && !self.event.hcr {
                    issues.push(Issue::warning(
                        "no_decision",
                        located(self.base, self.first_index, l.hl_location),
                        format!("service line {} has neither HCR nor AAA", i + 1),
                    ));
                }
                push_built(&mut line_decisions, || LineDecision {
                    line: i + 1,
                    status: match (l.action, l.rejects.is_empty()) {
                        (Some(a), _) => a.into(),
                        (None, false) => Status::Rejected,
                        (None, true) => event_action.map_or(Status::ContactPayer, Status::from),
                    },
                    action: l.action,
                    certification_number: l.certification_number.take(),
                    reason: l.reason.take(),
                    second_surgical_opinion: l.second_opinion,
                    certification: std::mem::take(&mut l.certification),
                    approved_quantity: l.quantity.take(),
                    approved_units,
                    administrative_reference: l.administrative_reference.take(),
                    trace_numbers: line_traces,
                    rejects: std::mem::take(&mut l.rejects),
                    messages,
                });
            }
            push_built(&mut services, || ServiceLine {
                trace_numbers: echo_traces,
                review: l.review.take(),
                references: std::mem::take(&mut l.references),
                dates: std::mem::take(&mut l.dates),
                service: l.service.take(),
                teeth: std::mem::take(&mut l.teeth),
                quantity: l.quantity.take(),
                attachments: std::mem::take(&mut l.attachments),
                message,
                providers: std::mem::take(&mut l.providers),
                change: None,
                terms: None,
            });
            for (what, n) in [
                ("HI", l.diagnoses.len()),
                ("CRC", l.conditions.len()),
                ("CR*", l.clinical.len()),
            ] {
                if n > 0 {
                    issues.push(Issue::warning(
                        "segment_not_kept",
                        located(self.base, self.first_index, l.hl_location),
                        format!("{what} in a 2000F service loop is not kept"),
                    ));
                }
            }
            if l.institutional.is_some() {
                issues.push(Issue::warning(
                    "segment_not_kept",
                    located(self.base, self.first_index, l.hl_location),
                    "CL1 in a 2000F service loop is not kept".to_owned(),
                ));
            }
        }
        // The event's parts are taken where they are (moving the whole level out would copy
        // a kilobyte and write a default in its place).
        let ev = &mut self.event;
        // Built only for an issue.
        let (base, first_index, ev_seen) = (self.base, self.first_index, ev.hl_location);
        let ev_loc = move || located(base, first_index, ev_seen);
        let mut ev_messages = std::mem::take(&mut ev.messages);
        let event_message = if response { None } else { ev_messages.pop() };
        if !response {
            for m in ev_messages.drain(..) {
                issues.push(Issue::warning(
                    "segment_repeated",
                    ev_loc(),
                    format!("only one MSG per event is kept; dropped {:?}", m.as_str()),
                ));
            }
        }
        if !ev.services_ok() {
            issues.push(Issue::warning(
                "segment_not_kept",
                ev_loc(),
                "SV1/SV2/SV3/TOO in the 2000E event loop are not kept".to_owned(),
            ));
        }
        let ev_traces = std::mem::take(&mut ev.trace_numbers);
        let (dec_traces, echo_traces) = if response {
            (ev_traces, vec![])
        } else {
            (vec![], ev_traces)
        };
        let event = match (ev.seen, ev.review.take()) {
            (true, Some(review)) => Some(PatientEvent {
                trace_numbers: echo_traces,
                review,
                references: std::mem::take(&mut ev.references),
                dates: std::mem::take(&mut ev.dates),
                diagnoses: std::mem::take(&mut ev.diagnoses),
                quantity: if response { None } else { ev.quantity.take() },
                conditions: std::mem::take(&mut ev.conditions),
                institutional: ev.institutional.take(),
                clinical: std::mem::take(&mut ev.clinical),
                attachments: std::mem::take(&mut ev.attachments),
                message: event_message,
                providers: std::mem::take(&mut ev.providers),
            }),
            (true, None) => {
                if !(response && (!ev.rejects.is_empty() || ev.hcr)) || ev.has_echo() {
                    missing(
                        &mut issues,
                        &ev_loc(),
                        "the 2000E patient event has no UM; its echoed details are not kept",
                    );
                }
                None
            }
            (false, _) => None,
        };
        if !response {
            let mut ok = true;
            for (what, present) in [
                ("2010A UMO name (NM1*X3)", self.umo.is_some()),
                ("2010B requester name", self.requester.is_some()),
                ("2010C subscriber name", self.subscriber.is_some()),
                ("2000E patient event with its UM", event.is_some()),
            ] {
                if !present {
                    ok = false;
                    missing(
                        &mut issues,
                        self.base,
                        &format!("the 278 request has no {what}"),
                    );
                }
            }
            if !ok {
                return (None, issues);
            }
            let req = AuthorizationRequest {
                purpose: self.purpose.unwrap_or(Purpose::Request),
                submitter_reference: reference,
                created_date: self.created_date,
                created_time: self.created_time.take(),
                transaction_type: self.transaction_type.take(),
                umo: self.umo.take().expect("checked"),
                requester: self.requester.take().expect("checked"),
                subscriber: self.subscriber.take().expect("checked"),
                dependent: self.dependent.take(),
                event: event.expect("checked"),
                services,
                revises: None,
                submitter_reference_system: None,
                created_utc_offset: None,
                revises_reference: None,
            };
            return (Some(Message278::Request(Box::new(req))), issues);
        }
        let mut rejects = std::mem::take(&mut self.rejects);
        rejects.append(&mut ev.rejects);
        if ev.seen
            && !ev.hcr
            && rejects.is_empty()
            && line_decisions.iter().all(|l| l.action.is_none())
        {
            issues.push(
                Issue::error(
                    "no_decision",
                    ev_loc(),
                    "the response carries no HCR and no AAA: there is no decision in it",
                )
                .ack(AckCode::Segment("3")),
            );
        }
        let status = overall_status(ev.action, &line_decisions, &rejects);
        // Allocated first and built in place (`Box::new` of a built value copies its 3.6 KB).
        let boxed = Box::<AuthorizationResponse>::new_uninit();
        let resp = Box::write(
            boxed,
            AuthorizationResponse {
                submitter_reference: reference,
                created_date: self.created_date,
                created_time: self.created_time.take(),
                transaction_type: self.transaction_type.take(),
                umo: self.umo.take(),
                requester: self.requester.take(),
                subscriber: self.subscriber.take(),
                dependent: self.dependent.take(),
                event,
                services,
                decision: Decision {
                    status,
                    action: ev.action,
                    certification_number: ev.certification_number.take(),
                    reason: ev.reason.take(),
                    second_surgical_opinion: ev.second_opinion,
                    certification: std::mem::take(&mut ev.certification),
                    approved_quantity: ev.quantity.take(),
                    administrative_reference: ev.administrative_reference.take(),
                    trace_numbers: dec_traces,
                    rejects,
                    messages: ev_messages,
                    lines: line_decisions,
                },
            },
        );
        (Some(Message278::Response(resp)), issues)
    }
}

impl LevelData {
    fn services_ok(&self) -> bool {
        self.service.is_none() && self.teeth.is_empty()
    }
    /// Whether the event holds echoed request details that would be lost without its UM.
    fn has_echo(&self) -> bool {
        !self.references.is_empty()
            || !self.dates.is_empty()
            || !self.diagnoses.is_empty()
            || !self.conditions.is_empty()
            || self.institutional.is_some()
            || !self.clinical.is_empty()
            || !self.attachments.is_empty()
            || !self.providers.is_empty()
    }
}

fn empty_address() -> Address {
    Address {
        lines: vec![],
        city: None,
        state: None,
        postal_code: None,
        country: None,
        country_subdivision: None,
    }
}

/// The 2010E loop a patient-event name belongs to, by its NM101 role.
pub(crate) fn event_provider_loop(role: &str, response: bool) -> &'static str {
    match role {
        "PW" | "45" | "FS" | "ND" | "R3" => {
            if response {
                "2010EC"
            } else {
                "2010EB"
            }
        }
        "X3" if !response => "2010EC",
        "1P" | "2B" | "ABG" | "PR" if response => "2010EB",
        _ => "2010EA",
    }
}

/// Maps one 278 transaction set to the domain. `base` locates the set (interchange, group,
/// transaction, ST02); every issue found is returned with what could be understood.
pub fn decode(tx: &Transaction, base: &Location) -> (Option<Message278>, Vec<Issue>) {
    let mut d = Decoder {
        base,
        whole: std::str::from_utf8(tx.bytes).ok(),
        first_index: tx.first_index,
        issues: Vec::new(),
        response: false,
        purpose: None,
        reference: None,
        created_date: None,
        created_time: None,
        transaction_type: None,
        umo: None,
        requester: None,
        subscriber: None,
        dependent: None,
        event: LevelData::default(),
        lines: Vec::new(),
        level: None,
        entity: None,
        rejects: Vec::new(),
        bht_location: None,
        pending_role: [0; 16],
        pending_role_len: 0,
    };
    let mut segs = tx.segments();
    match segs.next() {
        Some(st) if st.is(b"ST") => {
            if st.element(1) != b"278" {
                let loc = d.loc(&st).with_element(1);
                d.issues.push(
                    Issue::error("not_a_278", loc, "the transaction set is not a 278")
                        .value(st.element(1))
                        .ack(AckCode::Element("7")),
                );
                return (None, d.issues);
            }
        }
        _ => {
            d.issues.push(Issue::error(
                "st_missing",
                base.clone(),
                "the transaction set does not start with ST",
            ));
            return (None, d.issues);
        }
    }
    for seg in segs {
        d.segment(&seg);
    }
    d.finish()
}
