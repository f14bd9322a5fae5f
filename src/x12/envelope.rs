//! Envelopes: ISA/IEA, GS/GE, ST/SE. The tracker follows the units a reader yields, checks
//! counts and control numbers, and gives each transaction set its location.

use compact_str::CompactString;
use serde::Serialize;

use super::error::{AckCode, Issue, Location};
use super::syntax::{Delimiters, Segment, SliceReader, Transaction, Unit};

fn s(b: &[u8]) -> String {
    trimmed(b).into_owned()
}

/// `s` without allocating for a short value (ST01-03 are at most 9 or 12 characters), and
/// without the trimming work for a plain one (starting and ending with an ASCII letter or
/// digit: nothing to trim).
fn short(b: &[u8]) -> CompactString {
    if let (Some(first), Some(last)) = (b.first(), b.last())
        && first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && let Ok(plain) = std::str::from_utf8(b)
    {
        return CompactString::new(plain);
    }
    CompactString::from(trimmed(b))
}

/// What `s` gives, borrowed when it can be.
fn trimmed(b: &[u8]) -> std::borrow::Cow<'_, str> {
    // Valid UTF-8 (nearly always): `from_utf8_lossy` would borrow it too, at a higher cost.
    if let Ok(t) = std::str::from_utf8(b) {
        return std::borrow::Cow::Borrowed(t.trim());
    }
    match String::from_utf8_lossy(b) {
        std::borrow::Cow::Borrowed(t) => std::borrow::Cow::Borrowed(t.trim()),
        std::borrow::Cow::Owned(t) => std::borrow::Cow::Owned(t.trim().to_owned()),
    }
}

/// Whether `s(b)` is `n` written in decimal.
fn same_number(b: &[u8], n: usize) -> bool {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    trimmed(b).as_bytes() == &digits[i..]
}

/// The last segment of a set that ends with its terminator, found from the end; the same
/// segment `Transaction::segments` ends with (its position is not known).
fn last_segment<'a>(tx: &Transaction<'a>) -> Option<Segment<'a>> {
    let d = tx.delimiters;
    let line_break = |b: &u8| *b == b'\r' || *b == b'\n';
    let body = tx.bytes.strip_suffix(&[d.segment])?;
    let start = memchr::memrchr(d.segment, body).map_or(0, |i| i + 1);
    let mut raw = &body[start..];
    while let [first, rest @ ..] = raw
        && line_break(first)
    {
        raw = rest;
    }
    while let [rest @ .., last] = raw
        && line_break(last)
    {
        raw = rest;
    }
    let se = Segment::new(raw, d, 0, 0);
    se.is(b"SE").then_some(se)
}

/// What an ISA says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterchangeHeader {
    /// 1-based position of the interchange in the input.
    pub index: usize,
    pub sender_qualifier: String,
    pub sender_id: String,
    pub receiver_qualifier: String,
    pub receiver_id: String,
    /// ISA09 YYMMDD.
    pub date: String,
    /// ISA10 HHMM.
    pub time: String,
    /// ISA12.
    pub version: String,
    /// ISA13.
    pub control_number: String,
    pub ack_requested: bool,
    /// ISA15: P production, T test.
    pub usage: String,
    #[serde(skip)]
    pub delimiters: Delimiters,
}

/// What a GS says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupHeader {
    /// 1-based position in the interchange.
    pub index: usize,
    /// GS01 (HI for 278, FA for 999).
    pub functional_id: String,
    pub sender: String,
    pub receiver: String,
    pub date: String,
    pub time: String,
    /// GS06.
    pub control_number: String,
    /// GS08 (005010X217).
    pub version: String,
}

/// What an ST says, and where the set is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransactionHeader {
    /// 1-based position in the group.
    pub index: usize,
    /// ST01 (278, 999). (Short strings kept inline: headers are built by the million.)
    pub id: CompactString,
    /// ST02.
    pub control_number: CompactString,
    /// ST03 (005010X217).
    pub reference: CompactString,
    pub segment_count: usize,
    #[serde(skip)]
    pub location: Location,
}

/// A TA1 found in the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ta1 {
    /// TA101: the acknowledged interchange's ISA13.
    pub control_number: String,
    pub date: String,
    pub time: String,
    /// TA104: A accepted, E accepted with errors, R rejected.
    pub ack_code: String,
    /// TA105: note code.
    pub note_code: String,
    #[serde(skip)]
    pub location: Location,
}

/// A group and its transaction sets, as found.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    pub header: GroupHeader,
    pub transactions: Vec<TransactionHeader>,
    /// GE01 as sent.
    pub trailer_count: Option<String>,
}

/// An interchange and its groups, as found.
#[derive(Debug, Clone, Serialize)]
pub struct InterchangeSummary {
    pub header: InterchangeHeader,
    pub groups: Vec<GroupSummary>,
    pub ta1: Vec<Ta1>,
    pub closed: bool,
}

/// Follows the envelope structure unit by unit.
#[derive(Default)]
pub struct EnvelopeTracker {
    issues: Vec<Issue>,
    interchanges: usize,
    isa: Option<InterchangeHeader>,
    isa_location: Location,
    groups_in_isa: usize,
    group: Option<GroupHeader>,
    group_location: Location,
    tx_in_group: usize,
    keep_summary: bool,
    summary: Vec<InterchangeSummary>,
}

impl EnvelopeTracker {
    pub fn new() -> Self {
        Self::default()
    }
    /// Also keeps the headers of every interchange, group and transaction set (for
    /// acknowledgements; leave it off when streaming huge files).
    pub fn with_summary() -> Self {
        EnvelopeTracker {
            keep_summary: true,
            ..Self::default()
        }
    }
    pub fn take_issues(&mut self) -> Vec<Issue> {
        std::mem::take(&mut self.issues)
    }
    pub fn summary(&self) -> &[InterchangeSummary] {
        &self.summary
    }
    pub fn interchange(&self) -> Option<&InterchangeHeader> {
        self.isa.as_ref()
    }
    pub fn group(&self) -> Option<&GroupHeader> {
        self.group.as_ref()
    }

    fn loc(&self, seg: &Segment) -> Location {
        Location {
            interchange: self.isa.as_ref().map(|i| i.index),
            group: self.group.as_ref().map(|g| g.index),
            segment_index: Some(seg.index),
            segment_id: Some(seg.id_str().to_owned()),
            byte_offset: Some(seg.offset),
            ..Location::default()
        }
    }

    /// An envelope segment (or a stray one) outside any transaction set.
    pub fn segment(&mut self, seg: &Segment) {
        match seg.id() {
            b"ISA" => self.isa(seg),
            b"GS" => self.gs(seg),
            b"GE" => self.ge(seg),
            b"IEA" => self.iea(seg),
            b"TA1" => self.ta1(seg),
            b"SE" => {
                let loc = self.loc(seg);
                self.issues.push(
                    Issue::error("se_without_st", loc, "an SE without a matching ST")
                        .ack(AckCode::Group("6")),
                );
            }
            _ => {
                let loc = self.loc(seg);
                self.issues.push(
                    Issue::error(
                        "segment_outside_transaction",
                        loc,
                        format!(
                            "segment {} is outside any transaction set (ST..SE)",
                            seg.id_str()
                        ),
                    )
                    .ack(AckCode::Interchange("024")),
                );
            }
        }
    }

    fn isa(&mut self, seg: &Segment) {
        self.close_interchange(Some(seg));
        self.interchanges += 1;
        let e = seg.split::<16>();
        let header = InterchangeHeader {
            index: self.interchanges,
            sender_qualifier: s(e[4]),
            sender_id: s(e[5]),
            receiver_qualifier: s(e[6]),
            receiver_id: s(e[7]),
            date: s(e[8]),
            time: s(e[9]),
            version: s(e[11]),
            control_number: s(e[12]),
            ack_requested: s(e[13]) == "1",
            usage: s(e[14]),
            delimiters: seg.delimiters(),
        };
        let loc = Location {
            interchange: Some(header.index),
            segment_index: Some(seg.index),
            segment_id: Some("ISA".into()),
            byte_offset: Some(seg.offset),
            ..Location::default()
        };
        let checks: [(usize, bool, &'static str, &'static str, &str); 6] = [
            (
                9,
                header.date.len() == 6 && header.date.bytes().all(|b| b.is_ascii_digit()),
                "isa_date",
                "014",
                "ISA09 must be a YYMMDD date",
            ),
            (
                10,
                header.time.len() == 4 && header.time.bytes().all(|b| b.is_ascii_digit()),
                "isa_time",
                "015",
                "ISA10 must be an HHMM time",
            ),
            (
                12,
                header.version == "00501",
                "isa_version",
                "017",
                "ISA12 must be 00501 for 5010 transactions",
            ),
            (
                13,
                header.control_number.len() == 9
                    && header.control_number.bytes().all(|b| b.is_ascii_digit()),
                "isa_control_number",
                "018",
                "ISA13 must be 9 digits",
            ),
            (
                14,
                matches!(header.ack_requested, true | false)
                    && matches!(s(e[13]).as_str(), "0" | "1"),
                "isa_ack_requested",
                "019",
                "ISA14 must be 0 or 1",
            ),
            (
                15,
                matches!(header.usage.as_str(), "P" | "T"),
                "isa_usage",
                "020",
                "ISA15 must be P (production) or T (test)",
            ),
        ];
        for (el, ok, code, ta1, msg) in checks {
            if !ok {
                self.issues.push(
                    Issue::error(code, loc.with_element(el), msg)
                        .value(e[el - 1])
                        .ack(AckCode::Interchange(ta1)),
                );
            }
        }
        if self.keep_summary {
            self.summary.push(InterchangeSummary {
                header: header.clone(),
                groups: vec![],
                ta1: vec![],
                closed: false,
            });
        }
        self.isa = Some(header);
        self.isa_location = loc;
        self.groups_in_isa = 0;
    }

    fn gs(&mut self, seg: &Segment) {
        if self.group.is_some() {
            let loc = self.loc(seg);
            self.issues.push(
                Issue::error(
                    "ge_missing",
                    loc,
                    "a GS starts before the previous group's GE",
                )
                .ack(AckCode::Group("3")),
            );
            self.group = None;
        }
        if self.isa.is_none() {
            let loc = self.loc(seg);
            self.issues.push(Issue::error(
                "gs_outside_interchange",
                loc,
                "a GS outside an interchange (no ISA before it)",
            ));
        }
        self.groups_in_isa += 1;
        let e = seg.split::<8>();
        let header = GroupHeader {
            index: self.groups_in_isa,
            functional_id: s(e[0]),
            sender: s(e[1]),
            receiver: s(e[2]),
            date: s(e[3]),
            time: s(e[4]),
            control_number: s(e[5]),
            version: s(e[7]),
        };
        let mut loc = self.loc(seg);
        loc.group = Some(header.index);
        if crate::domain::Date::from_x12(&header.date).is_err() {
            self.issues.push(
                Issue::error(
                    "gs_date",
                    loc.with_element(4),
                    "GS04 must be a CCYYMMDD date",
                )
                .value(e[3]),
            );
        }
        if crate::domain::Time::parse(&header.time).is_err() {
            self.issues.push(
                Issue::error(
                    "gs_time",
                    loc.with_element(5),
                    "GS05 must be an HHMM[SS[D[D]]] time",
                )
                .value(e[4]),
            );
        }
        if header.control_number.is_empty()
            || header.control_number.len() > 9
            || !header.control_number.bytes().all(|b| b.is_ascii_digit())
        {
            self.issues.push(
                Issue::error(
                    "gs_control_number",
                    loc.with_element(6),
                    "GS06 must be 1 to 9 digits",
                )
                .value(e[5])
                .ack(AckCode::Group("6")),
            );
        }
        if self.keep_summary
            && let Some(i) = self.summary.last_mut()
        {
            i.groups.push(GroupSummary {
                header: header.clone(),
                transactions: vec![],
                trailer_count: None,
            });
        }
        self.group = Some(header);
        self.group_location = loc;
        self.tx_in_group = 0;
    }

    fn ge(&mut self, seg: &Segment) {
        let loc = self.loc(seg);
        let Some(group) = self.group.take() else {
            self.issues.push(
                Issue::error("ge_without_gs", loc, "a GE without a matching GS")
                    .ack(AckCode::Interchange("024")),
            );
            return;
        };
        let e = seg.split::<2>();
        if s(e[0]) != self.tx_in_group.to_string() {
            self.issues.push(
                Issue::error(
                    "ge_count",
                    loc.with_element(1),
                    format!(
                        "GE01 says {} transaction sets but the group has {}",
                        s(e[0]),
                        self.tx_in_group
                    ),
                )
                .value(e[0])
                .ack(AckCode::Group("5")),
            );
        }
        if s(e[1]) != group.control_number {
            self.issues.push(
                Issue::error(
                    "ge_control_number",
                    loc.with_element(2),
                    format!("GE02 does not match GS06 {}", group.control_number),
                )
                .value(e[1])
                .ack(AckCode::Group("4")),
            );
        }
        if self.keep_summary
            && let Some(g) = self.summary.last_mut().and_then(|i| i.groups.last_mut())
        {
            g.trailer_count = Some(s(e[0]));
        }
    }

    fn iea(&mut self, seg: &Segment) {
        let loc = self.loc(seg);
        if self.group.take().is_some() {
            self.issues.push(
                Issue::error(
                    "ge_missing",
                    loc.clone(),
                    "the interchange ends before the group's GE",
                )
                .ack(AckCode::Group("3")),
            );
        }
        let Some(isa) = self.isa.take() else {
            self.issues.push(
                Issue::error("iea_without_isa", loc, "an IEA without a matching ISA")
                    .ack(AckCode::Interchange("024")),
            );
            return;
        };
        let e = seg.split::<2>();
        if s(e[0]) != self.groups_in_isa.to_string() {
            self.issues.push(
                Issue::error(
                    "iea_count",
                    loc.with_element(1),
                    format!(
                        "IEA01 says {} groups but the interchange has {}",
                        s(e[0]),
                        self.groups_in_isa
                    ),
                )
                .value(e[0])
                .ack(AckCode::Interchange("021")),
            );
        }
        if s(e[1]) != isa.control_number {
            self.issues.push(
                Issue::error(
                    "iea_control_number",
                    loc.with_element(2),
                    format!("IEA02 does not match ISA13 {}", isa.control_number),
                )
                .value(e[1])
                .ack(AckCode::Interchange("001")),
            );
        }
        if self.keep_summary
            && let Some(i) = self.summary.last_mut()
        {
            i.closed = true;
        }
    }

    fn ta1(&mut self, seg: &Segment) {
        let loc = self.loc(seg);
        let e = seg.split::<5>();
        let t = Ta1 {
            control_number: s(e[0]),
            date: s(e[1]),
            time: s(e[2]),
            ack_code: s(e[3]),
            note_code: s(e[4]),
            location: loc.clone(),
        };
        if self.group.is_some() {
            self.issues.push(Issue::error(
                "ta1_position",
                loc.clone(),
                "a TA1 must come before the first GS or after the last GE",
            ));
        }
        let checks = [
            (
                1,
                t.control_number.len() == 9 && t.control_number.bytes().all(|b| b.is_ascii_digit()),
                "TA101 must be the 9-digit interchange control number",
            ),
            (
                2,
                t.date.len() == 6 && t.date.bytes().all(|b| b.is_ascii_digit()),
                "TA102 must be a YYMMDD date",
            ),
            (
                3,
                t.time.len() == 4 && t.time.bytes().all(|b| b.is_ascii_digit()),
                "TA103 must be an HHMM time",
            ),
            (
                4,
                matches!(t.ack_code.as_str(), "A" | "E" | "R"),
                "TA104 must be A, E or R",
            ),
            (
                5,
                t.note_code.len() == 3 && t.note_code.bytes().all(|b| b.is_ascii_digit()),
                "TA105 must be a 3-digit note code",
            ),
        ];
        for (el, ok, msg) in checks {
            if !ok {
                self.issues
                    .push(Issue::error("ta1_element", loc.with_element(el), msg).value(e[el - 1]));
            }
        }
        if self.keep_summary
            && let Some(i) = self.summary.last_mut()
        {
            i.ta1.push(t);
        }
    }

    /// A transaction set: checks ST/SE and returns its header (with its location).
    pub fn transaction(&mut self, tx: &Transaction) -> TransactionHeader {
        self.tx_in_group += 1;
        let mut segs = tx.segments();
        let st = segs.next();
        let (id, control, reference) = match &st {
            Some(st) => {
                let e = st.split::<3>();
                (short(e[0]), short(e[1]), short(e[2]))
            }
            None => Default::default(),
        };
        let location = Location {
            interchange: self.isa.as_ref().map(|i| i.index),
            group: self.group.as_ref().map(|g| g.index),
            transaction: Some(self.tx_in_group),
            control_number: Some(control.clone()),
            ..Location::default()
        };
        // Locations are built only for an issue (sets are read by the million).
        let st_loc = || Location {
            segment_index: Some(tx.first_index),
            segment_position: Some(1),
            segment_id: Some("ST".into()),
            byte_offset: Some(tx.offset),
            ..location.clone()
        };
        if self.group.is_none() {
            self.issues.push(Issue::error(
                "st_outside_group",
                st_loc(),
                "a transaction set outside a functional group (no GS before it)",
            ));
        }
        if control.len() < 4 || control.len() > 9 {
            self.issues.push(
                Issue::error(
                    "st_control_number",
                    st_loc().with_element(2),
                    "ST02 must be 4 to 9 characters",
                )
                .value(&control)
                .ack(AckCode::Element("4")),
            );
        }
        // The SE is the last segment: read from the end, it is checked without walking the
        // set; only a set with an SE problem is walked for the SE's position.
        let se_ok = tx.has_se
            && last_segment(tx).is_some_and(|se| {
                let e = se.split::<2>();
                same_number(e[0], tx.segment_count)
                    && (e[1] == control.as_bytes() || trimmed(e[1]) == control.as_str())
            });
        if tx.has_se && !se_ok {
            let se = segs.last().expect("a transaction with SE has segments");
            let e = se.split::<2>();
            let se_loc = Location {
                segment_index: Some(se.index),
                segment_position: Some(tx.segment_count),
                segment_id: Some("SE".into()),
                byte_offset: Some(se.offset),
                ..location.clone()
            };
            if s(e[0]) != tx.segment_count.to_string() {
                self.issues.push(
                    Issue::error(
                        "se_count",
                        se_loc.with_element(1),
                        format!(
                            "SE01 says {} segments but the transaction set has {} (ST through SE)",
                            s(e[0]),
                            tx.segment_count
                        ),
                    )
                    .value(e[0])
                    .ack(AckCode::Transaction("4")),
                );
            }
            if s(e[1]) != control {
                self.issues.push(
                    Issue::error(
                        "se_control_number",
                        se_loc.with_element(2),
                        format!("SE02 does not match ST02 {control}"),
                    )
                    .value(e[1])
                    .ack(AckCode::Transaction("3")),
                );
            }
        } else if !tx.has_se {
            let end = Location {
                segment_index: Some(tx.first_index + tx.segment_count - 1),
                ..location.clone()
            };
            self.issues.push(
                Issue::error("se_missing", end, "the transaction set has no SE trailer")
                    .ack(AckCode::Transaction("2")),
            );
        }
        let header = TransactionHeader {
            index: self.tx_in_group,
            id,
            control_number: control,
            reference,
            segment_count: tx.segment_count,
            location,
        };
        if self.keep_summary
            && let Some(g) = self.summary.last_mut().and_then(|i| i.groups.last_mut())
        {
            g.transactions.push(header.clone());
        }
        header
    }

    fn close_interchange(&mut self, next: Option<&Segment>) {
        if let Some(isa) = &self.isa {
            let loc = match next {
                Some(seg) => self.loc(seg),
                None => self.isa_location.clone(),
            };
            if self.group.is_some() {
                self.issues.push(
                    Issue::error("ge_missing", loc.clone(), "the group has no GE trailer")
                        .ack(AckCode::Group("3")),
                );
            }
            self.issues.push(
                Issue::error(
                    "iea_missing",
                    loc,
                    format!("interchange {} has no IEA trailer", isa.control_number),
                )
                .ack(AckCode::Interchange("023")),
            );
            self.isa = None;
            self.group = None;
        }
    }

    /// The input ended: anything still open is missing its trailer.
    pub fn finish(&mut self) {
        self.close_interchange(None);
        if self.interchanges == 0 {
            self.issues.push(Issue::error(
                "isa_missing",
                Location::default(),
                "the input holds no interchange",
            ));
        }
    }
}

/// Drives a reader and an envelope tracker over `data`. Issues the reader finds (ISA layout,
/// missing terminator) get the interchange index they belong to. `on` sees each unit after the
/// tracker has, with the transaction header when the unit is a transaction set.
pub fn walk<'a>(
    data: &'a [u8],
    tracker: &mut EnvelopeTracker,
    issues: &mut Vec<Issue>,
    mut on: impl FnMut(&EnvelopeTracker, &Unit<'a>, Option<&TransactionHeader>, &mut Vec<Issue>),
) {
    let mut reader = SliceReader::new(data);
    while let Some(unit) = reader.next() {
        let unit = match unit {
            Ok(u) => u,
            Err(e) => {
                let current = tracker.interchange().map(|h| h.index);
                for mut i in e.issues {
                    i.location.interchange = i.location.interchange.or(current);
                    issues.push(i);
                }
                break;
            }
        };
        let before = tracker.interchange().map(|h| h.index);
        let header = match &unit {
            Unit::Segment(s) => {
                tracker.segment(s);
                None
            }
            Unit::Transaction(tx) => Some(tracker.transaction(tx)),
        };
        let after = tracker.interchange().map(|h| h.index);
        let is_isa = matches!(&unit, Unit::Segment(s) if s.is(b"ISA"));
        let owner = if is_isa { after } else { before.or(after) };
        for mut i in reader.take_issues() {
            i.location.interchange = i.location.interchange.or(owner);
            issues.push(i);
        }
        issues.extend(tracker.take_issues());
        on(tracker, &unit, header.as_ref(), issues);
    }
    tracker.finish();
    for mut i in reader.take_issues() {
        i.location.interchange = i
            .location
            .interchange
            .or(tracker.interchange().map(|h| h.index));
        issues.push(i);
    }
    issues.extend(tracker.take_issues());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x12::syntax::{SliceReader, Unit};

    fn run(data: &[u8]) -> (Vec<TransactionHeader>, Vec<Issue>) {
        let mut t = EnvelopeTracker::new();
        let mut txs = vec![];
        let mut r = SliceReader::new(data);
        for u in r.by_ref() {
            match u.unwrap() {
                Unit::Segment(s) => t.segment(&s),
                Unit::Transaction(tx) => txs.push(t.transaction(&tx)),
            }
        }
        t.finish();
        let mut issues = r.take_issues();
        issues.extend(t.take_issues());
        (txs, issues)
    }

    const ISA: &str = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*T*:~";

    #[test]
    fn clean_envelope() {
        let d = format!(
            "{ISA}GS*HI*S*R*20240101*1200*5*X*005010X217~ST*278*0001*005010X217~BHT*0007*13~SE*3*0001~GE*1*5~IEA*1*000000001~"
        );
        let (txs, issues) = run(d.as_bytes());
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(txs[0].control_number, "0001");
        assert_eq!(txs[0].location.transaction, Some(1));
    }

    #[test]
    fn wrong_counts_are_located() {
        let d = format!(
            "{ISA}GS*HI*S*R*20240101*1200*5*X*005010X217~ST*278*0001*005010X217~BHT*0007*13~SE*4*0002~GE*2*6~IEA*2*000000009~"
        );
        let (_, issues) = run(d.as_bytes());
        let codes: Vec<&str> = issues.iter().map(|i| i.code).collect();
        assert_eq!(
            codes,
            [
                "se_count",
                "se_control_number",
                "ge_count",
                "ge_control_number",
                "iea_count",
                "iea_control_number"
            ]
        );
        assert_eq!(issues[0].location.segment_index, Some(5));
        assert_eq!(issues[0].location.segment_position, Some(3));
        assert_eq!(issues[0].location.element, Some(1));
        assert_eq!(issues[0].ack, Some(AckCode::Transaction("4")));
    }

    #[test]
    fn missing_trailers() {
        let d = format!(
            "{ISA}GS*HI*S*R*20240101*1200*5*X*005010X217~ST*278*0001*005010X217~BHT*0007*13~"
        );
        let (_, issues) = run(d.as_bytes());
        let codes: Vec<&str> = issues.iter().map(|i| i.code).collect();
        assert_eq!(codes, ["se_missing", "ge_missing", "iea_missing"]);
    }
}
