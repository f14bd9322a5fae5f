//! Writing X12: a segment writer that refuses delimiters in data and counts segments, envelope
//! writing with computed SE/GE/IEA counts, and the control-number allocator trait.

use std::collections::HashMap;
use std::sync::Mutex;

use super::error::{Issue, Location, X12Error};
use super::syntax::Delimiters;
use crate::domain::{Date, Time};

/// Writes segments. Trailing empty elements and components are dropped, as X12 requires.
/// The first data error is kept and returned by `finish` (later calls still run, so a caller
/// can write a whole structure and check once).
pub struct Writer {
    d: Delimiters,
    out: Vec<u8>,
    newline: bool,
    in_segment: bool,
    pending: usize,
    has_data: bool,
    seg_id: String,
    position: usize,
    since_mark: usize,
    error: Option<Issue>,
}

impl Writer {
    /// `newline`: write a line break after each segment terminator (readable; allowed by X12).
    pub fn new(d: Delimiters, newline: bool) -> Self {
        Writer {
            d,
            out: Vec::with_capacity(4096),
            newline,
            in_segment: false,
            pending: 0,
            has_data: false,
            seg_id: String::new(),
            position: 0,
            since_mark: 0,
            error: None,
        }
    }
    pub fn delimiters(&self) -> Delimiters {
        self.d
    }
    fn close(&mut self) {
        if self.in_segment {
            if !self.has_data && self.error.is_none() {
                // X12: a segment carries at least one element; `DMG~` is not a segment.
                self.error = Some(Issue::error(
                    "segment_without_data",
                    Location {
                        segment_id: Some(self.seg_id.clone()),
                        ..Location::default()
                    },
                    format!("segment {} would carry no data", self.seg_id),
                ));
            }
            self.out.push(self.d.segment);
            if self.newline {
                self.out.push(b'\n');
            }
            self.in_segment = false;
            self.since_mark += 1;
        }
    }
    /// Starts a segment (closing the previous one).
    pub fn seg(&mut self, id: &str) -> &mut Self {
        self.close();
        self.out.extend_from_slice(id.as_bytes());
        self.in_segment = true;
        self.pending = 0;
        self.position = 0;
        self.has_data = false;
        self.seg_id.clear();
        self.seg_id.push_str(id);
        self
    }
    fn check(&mut self, v: &str, component: Option<usize>) -> bool {
        let bad = v
            .bytes()
            .find(|&b| self.d.is_delimiter(b) || b == b'\r' || b == b'\n');
        if let Some(b) = bad {
            if self.error.is_none() {
                let what = if b == self.d.element {
                    "the element separator"
                } else if b == self.d.component {
                    "the component separator"
                } else if b == self.d.segment {
                    "the segment terminator"
                } else if Some(b) == self.d.repetition {
                    "the repetition separator"
                } else {
                    "a line break"
                };
                let mut loc = Location {
                    segment_id: Some(self.seg_id.clone()),
                    element: Some(self.position),
                    ..Location::default()
                };
                loc.component = component;
                self.error = Some(
                    Issue::error(
                        "delimiter_in_data",
                        loc,
                        format!(
                            "the value contains {what} {:?}, which would corrupt the interchange",
                            b as char
                        ),
                    )
                    .value(v),
                );
            }
            return false;
        }
        true
    }
    /// Writes the next element (an empty one is written only if a later element follows).
    pub fn e(&mut self, v: &str) -> &mut Self {
        self.position += 1;
        if v.is_empty() {
            self.pending += 1;
            return self;
        }
        if !self.check(v, None) {
            return self;
        }
        for _ in 0..=self.pending {
            self.out.push(self.d.element);
        }
        self.pending = 0;
        self.has_data = true;
        self.out.extend_from_slice(v.as_bytes());
        self
    }
    /// Writes an optional element.
    pub fn opt<S: AsRef<str>>(&mut self, v: Option<S>) -> &mut Self {
        match v {
            Some(s) => self.e(s.as_ref()),
            None => self.e(""),
        }
    }
    /// Writes a composite element from its components.
    pub fn c(&mut self, parts: &[&str]) -> &mut Self {
        let n = parts
            .iter()
            .rposition(|p| !p.is_empty())
            .map_or(0, |i| i + 1);
        if n == 0 {
            return self.e("");
        }
        self.position += 1;
        for (i, p) in parts[..n].iter().enumerate() {
            if !self.check(p, Some(i + 1)) {
                return self;
            }
        }
        for _ in 0..=self.pending {
            self.out.push(self.d.element);
        }
        self.pending = 0;
        self.has_data = true;
        for (i, p) in parts[..n].iter().enumerate() {
            if i > 0 {
                self.out.push(self.d.component);
            }
            self.out.extend_from_slice(p.as_bytes());
        }
        self
    }
    /// Writes an element whose value is raw bytes already laid out (the fixed-width ISA).
    pub(crate) fn raw_element(&mut self, v: &str) -> &mut Self {
        self.position += 1;
        self.has_data = true;
        self.out.push(self.d.element);
        self.out.extend_from_slice(v.as_bytes());
        self
    }
    /// Starts counting segments (for SE01).
    pub fn mark(&mut self) {
        self.close();
        self.since_mark = 0;
    }
    /// Segments closed since `mark`, plus the open one.
    pub fn since_mark(&self) -> usize {
        self.since_mark + usize::from(self.in_segment)
    }
    pub fn finish(mut self) -> Result<Vec<u8>, X12Error> {
        self.close();
        match self.error {
            Some(e) => Err(X12Error::one(e)),
            None => Ok(self.out),
        }
    }
    pub fn error(&self) -> Option<&Issue> {
        self.error.as_ref()
    }
    /// Refuses the output: `issue` is returned by `finish` (the first refusal wins).
    pub fn refuse(&mut self, issue: Issue) {
        if self.error.is_none() {
            self.error = Some(issue);
        }
    }
    /// Closes the open segment and moves everything written so far to `out` (counts go on),
    /// so that output of any size can be written in bounded memory.
    pub fn drain_to(&mut self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.close();
        out.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }
}

/// A moment, as the envelopes write it (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub date: Date,
    /// Hours and minutes.
    pub hour: u8,
    pub minute: u8,
}

impl Stamp {
    pub fn now() -> Stamp {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let date = Date::from_days_since_epoch(secs.div_euclid(86_400))
            .unwrap_or_else(|_| Date::new(2000, 1, 1).unwrap());
        let rem = secs.rem_euclid(86_400);
        Stamp {
            date,
            hour: (rem / 3600) as u8,
            minute: ((rem % 3600) / 60) as u8,
        }
    }
    pub fn ccyymmdd(&self) -> String {
        self.date.to_x12()
    }
    pub fn yymmdd(&self) -> String {
        self.date.to_x12()[2..].to_owned()
    }
    pub fn hhmm(&self) -> String {
        format!("{:02}{:02}", self.hour, self.minute)
    }
    pub fn time(&self) -> Time {
        Time::parse(&self.hhmm()).expect("valid time")
    }
}

/// Which control number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlKind {
    /// ISA13: 9 digits.
    Interchange,
    /// GS06: up to 9 digits.
    Group,
    /// ST02: 4 to 9 characters, unique within the group.
    Transaction,
}

impl ControlKind {
    pub fn max(self) -> u64 {
        999_999_999
    }
}

/// Hands out control numbers, unique per trading partner and kind. The store implements it
/// durably; `MemoryControlNumbers` serves tools and tests.
pub trait ControlNumbers: Send + Sync {
    fn next(&self, kind: ControlKind, partner: &str) -> Result<u64, String>;
}

/// Control numbers counted in memory from 1 (wrapping after 999,999,999).
#[derive(Default)]
pub struct MemoryControlNumbers {
    counters: Mutex<HashMap<(ControlKind, String), u64>>,
}

impl MemoryControlNumbers {
    pub fn new() -> Self {
        Self::default()
    }
    /// Starts every counter after `last` (so the next number is `last + 1`).
    pub fn starting_after(last: u64) -> Self {
        let m = Self::default();
        for k in [
            ControlKind::Interchange,
            ControlKind::Group,
            ControlKind::Transaction,
        ] {
            m.counters
                .lock()
                .expect("lock")
                .insert((k, String::new()), last);
        }
        m
    }
}

impl ControlNumbers for MemoryControlNumbers {
    fn next(&self, kind: ControlKind, partner: &str) -> Result<u64, String> {
        let mut c = self
            .counters
            .lock()
            .map_err(|_| "control number lock poisoned".to_owned())?;
        let start = c.get(&(kind, String::new())).copied().unwrap_or(0);
        let v = c.entry((kind, partner.to_owned())).or_insert(start);
        *v = if *v >= kind.max() { 1 } else { *v + 1 };
        Ok(*v)
    }
}

/// Who sends to whom, and how: everything the ISA and GS need besides control numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeSettings {
    /// ISA05 (ZZ mutually defined, 01 DUNS, 30 federal tax id...).
    pub sender_qualifier: String,
    /// ISA06 (up to 15 characters).
    pub sender_id: String,
    /// ISA07.
    pub receiver_qualifier: String,
    /// ISA08.
    pub receiver_id: String,
    /// GS02 (defaults to ISA06).
    pub application_sender: Option<String>,
    /// GS03 (defaults to ISA08).
    pub application_receiver: Option<String>,
    /// ISA15: true for production (P), false for test (T).
    pub production: bool,
    /// ISA14: ask for a TA1.
    pub ack_requested: bool,
    pub delimiters: Delimiters,
    /// A line break after each segment.
    pub newline: bool,
}

impl Default for EnvelopeSettings {
    fn default() -> Self {
        EnvelopeSettings {
            sender_qualifier: "ZZ".into(),
            sender_id: "PRIORAUTHGW".into(),
            receiver_qualifier: "ZZ".into(),
            receiver_id: "PAYER".into(),
            application_sender: None,
            application_receiver: None,
            production: false,
            ack_requested: false,
            delimiters: Delimiters::default(),
            newline: true,
        }
    }
}

impl EnvelopeSettings {
    /// The same envelope with sender and receiver swapped (for answering).
    pub fn reversed(&self) -> EnvelopeSettings {
        EnvelopeSettings {
            sender_qualifier: self.receiver_qualifier.clone(),
            sender_id: self.receiver_id.clone(),
            receiver_qualifier: self.sender_qualifier.clone(),
            receiver_id: self.sender_id.clone(),
            application_sender: self.application_receiver.clone(),
            application_receiver: self.application_sender.clone(),
            ..self.clone()
        }
    }
    /// The trading-partner key control numbers are counted under.
    pub fn partner(&self) -> String {
        format!("{}:{}", self.receiver_qualifier, self.receiver_id)
    }
}

fn pad(v: &str, width: usize, what: &str) -> Result<String, X12Error> {
    if v.chars().count() > width || v.is_empty() && width != 10 {
        return Err(X12Error::one(
            Issue::error(
                "isa_value_width",
                Location {
                    segment_id: Some("ISA".into()),
                    ..Location::default()
                },
                format!("{what} must be 1 to {width} characters"),
            )
            .value(v),
        ));
    }
    Ok(format!("{v:<width$}"))
}

/// Writes one interchange: ISA, then groups of transaction sets, then IEA, with all counts and
/// control numbers filled in.
pub struct InterchangeWriter {
    w: Writer,
    isa13: u64,
    groups: usize,
    group: Option<(u64, usize)>,
    transaction: Option<String>,
}

impl InterchangeWriter {
    pub fn begin(
        settings: &EnvelopeSettings,
        control: u64,
        stamp: Stamp,
    ) -> Result<Self, X12Error> {
        let d = settings.delimiters;
        let mut w = Writer::new(d, settings.newline);
        let rep = d
            .repetition
            .map(|r| (r as char).to_string())
            .unwrap_or_else(|| "U".into());
        w.seg("ISA");
        for v in [
            "00".to_owned(),
            pad("", 10, "ISA02")?,
            "00".to_owned(),
            pad("", 10, "ISA04")?,
            pad(&settings.sender_qualifier, 2, "ISA05")?,
            pad(&settings.sender_id, 15, "ISA06 (sender id)")?,
            pad(&settings.receiver_qualifier, 2, "ISA07")?,
            pad(&settings.receiver_id, 15, "ISA08 (receiver id)")?,
            stamp.yymmdd(),
            stamp.hhmm(),
            rep,
            "00501".to_owned(),
            format!("{control:09}"),
            if settings.ack_requested { "1" } else { "0" }.to_owned(),
            if settings.production { "P" } else { "T" }.to_owned(),
            (d.component as char).to_string(),
        ] {
            w.raw_element(&v);
        }
        for (i, v) in [&settings.sender_id, &settings.receiver_id]
            .iter()
            .enumerate()
        {
            if v.bytes().any(|b| d.is_delimiter(b)) {
                return Err(X12Error::one(
                    Issue::error(
                        "delimiter_in_data",
                        Location {
                            segment_id: Some("ISA".into()),
                            element: Some(6 + 2 * i),
                            ..Location::default()
                        },
                        "the id contains a delimiter",
                    )
                    .value(v.as_str()),
                ));
            }
        }
        Ok(InterchangeWriter {
            w,
            isa13: control,
            groups: 0,
            group: None,
            transaction: None,
        })
    }

    /// GS: `functional_id` (HI for 278, FA for 999), `version` (005010X217).
    pub fn begin_group(
        &mut self,
        settings: &EnvelopeSettings,
        functional_id: &str,
        version: &str,
        control: u64,
        stamp: Stamp,
    ) {
        self.end_group();
        let sender = settings
            .application_sender
            .as_deref()
            .unwrap_or(&settings.sender_id);
        let receiver = settings
            .application_receiver
            .as_deref()
            .unwrap_or(&settings.receiver_id);
        self.w
            .seg("GS")
            .e(functional_id)
            .e(sender)
            .e(receiver)
            .e(&stamp.ccyymmdd())
            .e(&stamp.hhmm())
            .e(&control.to_string())
            .e("X")
            .e(version);
        self.groups += 1;
        self.group = Some((control, 0));
    }

    /// ST: the caller then writes the body with `writer()`, and `end_transaction` writes SE.
    pub fn begin_transaction(&mut self, id: &str, control: u64, reference: &str) -> &mut Writer {
        self.end_transaction();
        let st02 = format!("{control:04}");
        self.w.mark();
        self.w.seg("ST").e(id).e(&st02).e(reference);
        self.transaction = Some(st02);
        if let Some((_, n)) = &mut self.group {
            *n += 1;
        }
        &mut self.w
    }

    pub fn writer(&mut self) -> &mut Writer {
        &mut self.w
    }

    /// Moves what is written so far to `out` (see `Writer::drain_to`): an interchange of any
    /// number of transaction sets can be written in bounded memory; `finish` returns the rest.
    pub fn drain_to(&mut self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.w.drain_to(out)
    }

    pub fn end_transaction(&mut self) {
        if let Some(st02) = self.transaction.take() {
            let count = self.w.since_mark() + 1;
            self.w.seg("SE").e(&count.to_string()).e(&st02);
        }
    }

    pub fn end_group(&mut self) {
        self.end_transaction();
        if let Some((control, n)) = self.group.take() {
            self.w.seg("GE").e(&n.to_string()).e(&control.to_string());
        }
    }

    pub fn finish(mut self) -> Result<Vec<u8>, X12Error> {
        self.end_group();
        self.w
            .seg("IEA")
            .e(&self.groups.to_string())
            .e(&format!("{:09}", self.isa13));
        self.w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x12::syntax::{SliceReader, Unit, parse_isa};

    fn stamp() -> Stamp {
        Stamp {
            date: Date::new(2026, 11, 23).unwrap(),
            hour: 9,
            minute: 5,
        }
    }

    #[test]
    fn writes_counts_and_fixed_isa() {
        let s = EnvelopeSettings::default();
        let mut iw = InterchangeWriter::begin(&s, 7, stamp()).unwrap();
        iw.begin_group(&s, "HI", "005010X217", 3, stamp());
        iw.begin_transaction("278", 1, "005010X217")
            .seg("BHT")
            .e("0007")
            .e("13")
            .e("R1");
        iw.writer().seg("HL").e("1").e("").e("20").e("1");
        let out = iw.finish().unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            parse_isa(&out, true).unwrap().unwrap().fixed_layout,
            "{text}"
        );
        assert!(text.contains("HL*1**20*1~"), "{text}");
        assert!(text.contains("SE*4*0001~"), "{text}");
        assert!(text.contains("GE*1*3~"), "{text}");
        assert!(text.ends_with("IEA*1*000000007~\n"), "{text}");
        assert_eq!(SliceReader::new(&out).count(), 5);
        let units: Vec<_> = SliceReader::new(&out).map(Result::unwrap).collect();
        assert!(matches!(units[2], Unit::Transaction(t) if t.segment_count == 4));
    }

    #[test]
    fn draining_keeps_the_counts() {
        let s = EnvelopeSettings::default();
        let write = |drain: bool| {
            let mut out = vec![];
            let mut iw = InterchangeWriter::begin(&s, 7, stamp()).unwrap();
            iw.begin_group(&s, "HI", "005010X217", 3, stamp());
            for st in 1..=3 {
                iw.begin_transaction("278", st, "005010X217")
                    .seg("BHT")
                    .e("0007");
                if drain {
                    iw.drain_to(&mut out).unwrap();
                }
                iw.writer().seg("HL").e("1").e("").e("20").e("0");
            }
            out.extend(iw.finish().unwrap());
            out
        };
        assert_eq!(write(true), write(false));
    }

    #[test]
    fn refuses_delimiters_in_data() {
        let mut w = Writer::new(Delimiters::default(), false);
        w.seg("NM1").e("IL").e("1").e("O*BRIEN");
        let err = w.finish().unwrap_err();
        assert_eq!(err.issues[0].code, "delimiter_in_data");
        assert_eq!(err.issues[0].location.element, Some(3));
        let mut w = Writer::new(Delimiters::default(), false);
        w.seg("SV1").c(&["HC", "99213", "2:5"]);
        assert_eq!(
            w.finish().unwrap_err().issues[0].location.component,
            Some(3)
        );
    }

    #[test]
    fn a_segment_needs_data() {
        let mut w = Writer::new(Delimiters::default(), false);
        w.seg("DMG").e("").e("");
        w.seg("HL").e("1");
        let err = w.finish().unwrap_err();
        assert_eq!(err.issues[0].code, "segment_without_data");
        assert_eq!(err.issues[0].location.segment_id.as_deref(), Some("DMG"));
    }

    #[test]
    fn trailing_empties_are_dropped() {
        let mut w = Writer::new(Delimiters::default(), false);
        w.seg("UM")
            .e("HS")
            .e("I")
            .e("")
            .c(&["11", "B", ""])
            .e("")
            .opt(None::<&str>);
        assert_eq!(w.finish().unwrap(), b"UM*HS*I**11:B~");
    }

    #[test]
    fn control_numbers_per_partner() {
        let c = MemoryControlNumbers::new();
        assert_eq!(c.next(ControlKind::Interchange, "A").unwrap(), 1);
        assert_eq!(c.next(ControlKind::Interchange, "A").unwrap(), 2);
        assert_eq!(c.next(ControlKind::Interchange, "B").unwrap(), 1);
        assert_eq!(c.next(ControlKind::Group, "A").unwrap(), 1);
        let c = MemoryControlNumbers::starting_after(999_999_999);
        assert_eq!(c.next(ControlKind::Interchange, "A").unwrap(), 1);
    }
}
