//! Newtypes that parse once: a value of one of these types is valid by construction.
//! JSON (the internal model's wire form) uses their string forms; X12 and FHIR forms are the
//! codecs' business.

use std::borrow::Cow;
use std::fmt;

use compact_str::CompactString;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a value was refused: which kind of value, the offending text, and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct ValueError {
    pub kind: &'static str,
    pub value: String,
    pub reason: String,
}

impl ValueError {
    pub fn new(kind: &'static str, value: &str, reason: impl Into<String>) -> Self {
        ValueError {
            kind,
            value: value.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Declares a string newtype with a validating constructor, serde via that constructor and a
/// JSON Schema of `type: string` with a pattern and a description.
macro_rules! string_newtype {
    ($(#[$m:meta])* $name:ident, $kind:literal, $pattern:literal, $check:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(CompactString);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, ValueError> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(s).map_err(|reason| ValueError::new($kind, s, reason))?;
                Ok($name(CompactString::new(s)))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl std::str::FromStr for $name {
            type Err = ValueError;
            fn from_str(s: &str) -> Result<Self, ValueError> {
                Self::parse(s)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = Cow::<'de, str>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "pattern": $pattern, "description": $kind })
            }
        }
    };
}

fn is_x12_text(s: &str) -> Result<(), String> {
    if s.chars().any(|c| c.is_control()) {
        return Err("contains a control character".into());
    }
    Ok(())
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether every byte is printable ASCII (0x20..=0x7e), eight bytes at a time.
#[inline(always)]
fn printable_ascii(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(8);
    let mut bad = 0u64;
    for c in chunks.by_ref() {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        // With no byte >= 0x80 the additions carry into no other byte: a byte below 0x20
        // leaves the high bit of `w + 0x60` clear, 0x7f sets the high bit of `w + 0x01`.
        bad |= (w & HI) | (!(w.wrapping_add(LO * 0x60)) & HI) | (w.wrapping_add(LO) & HI);
    }
    bad == 0
        && chunks
            .remainder()
            .iter()
            .all(|&c| (0x20..0x7f).contains(&c))
}

/// Whether every byte is an ASCII letter or digit.
#[inline(always)]
fn alphanumeric_ascii(b: &[u8]) -> bool {
    b.iter().all(|c| c.is_ascii_alphanumeric())
}

/// The quick test of `bounded_text`: printable ASCII, length within bounds, no space first
/// or last. A value that passes it passes the full check.
#[inline(always)]
fn bounded_ascii(b: &[u8], min: usize, max: usize) -> bool {
    b.len() >= min
        && b.len() <= max
        && b.first() != Some(&b' ')
        && b.last() != Some(&b' ')
        && printable_ascii(b)
}

fn bounded_text(s: &str, min: usize, max: usize) -> Result<(), String> {
    // ASCII (nearly all X12 text): one pass over the bytes gives the same answer as the
    // general checks below: length in characters, no leading or trailing white space unless
    // it is all white space, no control character.
    if bounded_ascii(s.as_bytes(), min, max) {
        return Ok(());
    }
    let n = s.chars().count();
    if n < min || n > max {
        return Err(format!("length {n} is outside {min}..={max}"));
    }
    if s.trim() != s && !s.trim().is_empty() {
        return Err("has leading or trailing spaces".into());
    }
    is_x12_text(s)
}

/// Luhn check of an NPI: the 10 digits prefixed by the card issuer prefix 80840.
pub fn npi_check(s: &str) -> Result<(), String> {
    if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("an NPI is exactly 10 digits".into());
    }
    if !matches!(s.as_bytes()[0], b'1' | b'2') {
        return Err("an NPI starts with 1 or 2".into());
    }
    // The prefix 80840 and the first nine digits, from the right, every other one doubled.
    let mut digits = [0u32; 14];
    for (d, b) in digits
        .iter_mut()
        .zip(b"80840".iter().chain(&s.as_bytes()[..9]))
    {
        *d = u32::from(b - b'0');
    }
    let check = u32::from(s.as_bytes()[9] - b'0');
    let mut sum = 0;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = *d;
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    let expected = (10 - sum % 10) % 10;
    if expected != check {
        return Err(format!("check digit is {check} but should be {expected}"));
    }
    Ok(())
}

string_newtype!(
    /// National Provider Identifier, 10 digits with a valid Luhn check digit.
    Npi, "NPI", "^[12][0-9]{9}$", npi_check
);

/// ICD-10-CM: a letter, a digit, a letter or digit, then optionally up to four more letters or
/// digits (X12 carries codes without the dot; a dot after the third character is accepted and
/// kept, since X12 HI forbids it the 278 encoder strips it).
fn icd10_check(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    // The code without its dot (a longer code is refused below whatever it holds).
    let mut buf = [0u8; 8];
    let mut n = 0;
    for &c in b.iter().filter(|&&c| c != b'.') {
        if n < buf.len() {
            buf[n] = c;
        }
        n += 1;
    }
    // More than eight characters keeps eight: the length check refuses it all the same.
    let compact = &buf[..n.min(buf.len())];
    if b.iter().filter(|&&c| c == b'.').count() > 1
        || (b.contains(&b'.') && b.get(3) != Some(&b'.'))
    {
        return Err("a dot may only follow the third character".into());
    }
    if compact.len() < 3 || compact.len() > 7 {
        return Err("an ICD-10-CM code has 3 to 7 characters".into());
    }
    if !compact[0].is_ascii_uppercase() || compact[0] == b'U' && compact[1] != b'0' {
        return Err("an ICD-10-CM code starts with an upper-case letter".into());
    }
    if !compact[1].is_ascii_digit() {
        return Err("the second character of an ICD-10-CM code is a digit".into());
    }
    if !compact[2..]
        .iter()
        .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    {
        return Err("ICD-10-CM characters 3 to 7 are digits or upper-case letters".into());
    }
    Ok(())
}

string_newtype!(
    /// ICD-10-CM diagnosis code, e.g. `M5416` or `M54.16`.
    Icd10Cm, "ICD-10-CM code", "^[A-Z][0-9][0-9A-Z](\\.?[0-9A-Z]{1,4})?$", icd10_check
);

impl Icd10Cm {
    /// The code without a dot, as X12 carries it.
    pub fn compact(&self) -> String {
        self.0.replace('.', "")
    }
}

fn member_id_check(s: &str) -> Result<(), String> {
    bounded_text(s, 2, 80)
}
string_newtype!(
    /// A payer's member identifier (NM109 with NM108 = MI).
    MemberId, "member id", "^\\S(.*\\S)?$", member_id_check
);

fn code_check(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 30 || !alphanumeric_ascii(s.as_bytes()) {
        return Err("a code is 1 to 30 letters or digits".into());
    }
    Ok(())
}
string_newtype!(
    /// A code from an external or long X12 code list (service type, reason, place of service...).
    Code, "code", "^[A-Za-z0-9]{1,30}$", code_check
);

fn text_check(s: &str) -> Result<(), String> {
    bounded_text(s, 1, 264)
}
string_newtype!(
    /// Free text as X12 carries it: 1 to 264 characters, no control characters.
    Text, "text", "^\\S(.*\\S)?$", text_check
);

impl Text {
    /// `parse` for the common case (printable ASCII), without building an error: `None` means
    /// only that `parse` must decide.
    #[inline(always)]
    pub fn parse_quick(s: &str) -> Option<Text> {
        bounded_ascii(s.as_bytes(), 1, 264).then(|| Text(CompactString::new(s)))
    }
}

impl Code {
    /// `parse` without building an error: `None` when `parse` would refuse the value.
    #[inline(always)]
    pub fn parse_quick(s: &str) -> Option<Code> {
        (!s.is_empty() && s.len() <= 30 && alphanumeric_ascii(s.as_bytes()))
            .then(|| Code(CompactString::new(s)))
    }
}

fn time_check(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    if !matches!(b.len(), 4 | 6 | 7 | 8) || !b.iter().all(u8::is_ascii_digit) {
        return Err("a time is HHMM, HHMMSS, HHMMSSD or HHMMSSDD".into());
    }
    let hh = (b[0] - b'0') * 10 + (b[1] - b'0');
    let mm = (b[2] - b'0') * 10 + (b[3] - b'0');
    let ss = if b.len() >= 6 {
        (b[4] - b'0') * 10 + (b[5] - b'0')
    } else {
        0
    };
    if hh > 23 || mm > 59 || ss > 59 {
        return Err("hour, minute or second out of range".into());
    }
    Ok(())
}
string_newtype!(
    /// A time of day as X12 writes it (HHMM[SS[D[D]]]).
    Time, "time", "^[0-9]{4}([0-9]{2}([0-9]{1,2})?)?$", time_check
);

fn decimal_check(s: &str) -> Result<(), String> {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = int.len() + frac.map_or(0, str::len);
    let ok = !body.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
        && (1..=18).contains(&digits);
    if !ok {
        return Err(
            "a decimal number is an optional minus, 1 to 18 digits and an optional decimal point"
                .into(),
        );
    }
    Ok(())
}

/// A decimal number kept exactly as written (units, quantities, amounts): `12`, `1.5`, `150.00`.
/// JSON accepts a string or a number and writes a string, so no digit is ever lost.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decimal(CompactString);

impl Decimal {
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        decimal_check(s).map_err(|r| ValueError::new("decimal number", s, r))?;
        Ok(Decimal(CompactString::new(s)))
    }
    pub fn from_u64(v: u64) -> Self {
        Decimal(CompactString::new(v.to_string()))
    }
    /// `parse` for the common case (digits and at most one inner or leading point), without
    /// building an error: `None` means only that `parse` must decide.
    #[inline]
    pub fn parse_quick(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let mut dots = 0;
        for &c in b {
            if c == b'.' {
                dots += 1;
            } else if !c.is_ascii_digit() {
                return None;
            }
        }
        let digits = b.len() - dots;
        (dots <= 1 && b.last() != Some(&b'.') && (1..=18).contains(&digits))
            .then(|| Decimal(CompactString::new(s)))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The value as f64 (for arithmetic such as a units count-down, never for storage).
    pub fn to_f64(&self) -> f64 {
        self.0.parse().unwrap_or(0.0)
    }
}
impl AsRef<str> for Decimal {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}
impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'v> serde::de::Visitor<'v> for V {
            type Value = Decimal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a decimal number as a string or a JSON number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
                Decimal::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
                Ok(Decimal::from_u64(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
                Decimal::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Decimal, E> {
                Decimal::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'v>>(
                self,
                mut map: A,
            ) -> Result<Decimal, A::Error> {
                // serde_json with arbitrary_precision hands numbers over as a one-entry map.
                let (_, v): (String, String) = map
                    .next_entry()?
                    .ok_or_else(|| serde::de::Error::custom("empty number"))?;
                Decimal::parse(&v).map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}
impl JsonSchema for Decimal {
    fn schema_name() -> Cow<'static, str> {
        "Decimal".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "decimal number, kept exactly as written",
            "anyOf": [
                { "type": "string", "pattern": "^-?[0-9]*(\\.[0-9]+)?$" },
                { "type": "number" }
            ]
        })
    }
}

/// A calendar date. JSON: `YYYY-MM-DD`; X12: `CCYYMMDD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

pub fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

impl Date {
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, ValueError> {
        // The text is only made for an error (dates are parsed by the million).
        let err = |reason: &str| {
            let text = format!("{year:04}-{month:02}-{day:02}");
            Err(ValueError::new("date", &text, reason))
        };
        if !(1800..=2999).contains(&year) {
            return err("year outside 1800..=2999");
        }
        if !(1..=12).contains(&month) {
            return err("month outside 1..=12");
        }
        if day == 0 || day > days_in_month(year, month) {
            return err("no such day in that month");
        }
        Ok(Date { year, month, day })
    }
    fn digits(s: &str, what: &'static str) -> Result<u32, ValueError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ValueError::new("date", what, "expected digits"));
        }
        Ok(s.parse().unwrap_or(0))
    }
    /// `from_x12` without building an error: `None` when `from_x12` would refuse the value.
    #[inline]
    pub fn from_x12_quick(b: &[u8]) -> Option<Self> {
        let b: &[u8; 8] = b.try_into().ok()?;
        // All eight bytes are digits when each is 0x30..=0x39: its high nibble is 3, and
        // adding 6 leaves it 3 (no byte carries into the next: none is above 0x39).
        let w = u64::from_le_bytes(*b);
        const NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
        const THREES: u64 = 0x3030_3030_3030_3030;
        if w & NIBBLES != THREES || w.wrapping_add(0x0606_0606_0606_0606) & NIBBLES != THREES {
            return None;
        }
        let x = w - THREES;
        let d = |i: u32| ((x >> (8 * i)) & 0xff) as u32;
        let year = (d(0) * 1000 + d(1) * 100 + d(2) * 10 + d(3)) as u16;
        let month = (d(4) * 10 + d(5)) as u8;
        let day = (d(6) * 10 + d(7)) as u8;
        ((1800..=2999).contains(&year)
            && (1..=12).contains(&month)
            && day != 0
            && day <= days_in_month(year, month))
        .then_some(Date { year, month, day })
    }
    /// Parses X12 `CCYYMMDD`.
    pub fn from_x12(s: &str) -> Result<Self, ValueError> {
        let b = s.as_bytes();
        if b.len() != 8 || !b.iter().all(u8::is_ascii_digit) {
            return Err(ValueError::new("date", s, "an X12 date is CCYYMMDD"));
        }
        // Eight digits: the number is read straight from them.
        let n = |r: std::ops::Range<usize>| {
            b[r].iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
        };
        Self::new(n(0..4) as u16, n(4..6) as u8, n(6..8) as u8)
            .map_err(|e| ValueError::new("date", s, e.reason))
    }
    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(ValueError::new("date", s, "a date is YYYY-MM-DD"));
        }
        Self::new(
            Self::digits(&s[0..4], "year")? as u16,
            Self::digits(&s[5..7], "month")? as u8,
            Self::digits(&s[8..10], "day")? as u8,
        )
        .map_err(|e| ValueError::new("date", s, e.reason))
    }
    pub fn to_x12(self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }
    pub fn year(self) -> u16 {
        self.year
    }
    pub fn month(self) -> u8 {
        self.month
    }
    pub fn day(self) -> u8 {
        self.day
    }
    /// Days since 1970-01-01 (negative before).
    pub fn days_since_epoch(self) -> i64 {
        let (y, m, d) = (self.year as i64, self.month as i64, self.day as i64);
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146097 + doe - 719468
    }
    /// The date `days` days after 1970-01-01.
    pub fn from_days_since_epoch(days: i64) -> Result<Self, ValueError> {
        let z = days + 719468;
        let era = z.div_euclid(146097);
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        Self::new(y.clamp(0, 9999) as u16, m as u8, d as u8)
    }
    pub fn add_days(self, days: i64) -> Result<Self, ValueError> {
        Self::from_days_since_epoch(self.days_since_epoch() + days)
    }
}
impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}
impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        Date::parse(&s).map_err(serde::de::Error::custom)
    }
}
impl JsonSchema for Date {
    fn schema_name() -> Cow<'static, str> {
        "Date".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$" })
    }
}

/// One date or an inclusive range (X12 D8 or RD8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DateOrRange {
    Date(Date),
    Range(DateRange),
}

impl DateOrRange {
    pub fn start(&self) -> Date {
        match self {
            DateOrRange::Date(d) => *d,
            DateOrRange::Range(r) => r.start,
        }
    }
    pub fn end(&self) -> Date {
        match self {
            DateOrRange::Date(d) => *d,
            DateOrRange::Range(r) => r.end,
        }
    }
}

/// An inclusive date range; the constructor refuses an end before the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DateRange {
    pub start: Date,
    pub end: Date,
}

impl DateRange {
    pub fn new(start: Date, end: Date) -> Result<Self, ValueError> {
        if end < start {
            return Err(ValueError::new(
                "date range",
                &format!("{start}..{end}"),
                "ends before it starts",
            ));
        }
        Ok(DateRange { start, end })
    }
    pub fn contains(&self, d: Date) -> bool {
        self.start <= d && d <= self.end
    }
}
impl<'de> Deserialize<'de> for DateRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            start: Date,
            end: Date,
        }
        let r = Raw::deserialize(d)?;
        DateRange::new(r.start, r.end).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npi_check_digit() {
        assert!(Npi::parse("1234567893").is_ok());
        assert!(Npi::parse("1234567890").is_err());
        assert!(Npi::parse("123456789").is_err());
        assert!(Npi::parse("3234567893").is_err());
    }

    #[test]
    fn icd10() {
        for ok in ["M5416", "M54.16", "Z00", "S72001A", "U071"] {
            assert!(Icd10Cm::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["m5416", "5416", "M5", "M54161234", "M5.416", "41090"] {
            assert!(Icd10Cm::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Icd10Cm::parse("M54.16").unwrap().compact(), "M5416");
    }

    #[test]
    fn dates() {
        assert_eq!(
            Date::from_x12("20240229").unwrap().to_string(),
            "2024-02-29"
        );
        assert!(Date::from_x12("20230229").is_err());
        assert!(Date::parse("2024-13-01").is_err());
        let d = Date::parse("2026-11-23").unwrap();
        assert_eq!(
            Date::from_days_since_epoch(d.days_since_epoch()).unwrap(),
            d
        );
        assert_eq!(Date::parse("1970-01-01").unwrap().days_since_epoch(), 0);
        assert_eq!(d.add_days(10).unwrap().to_string(), "2026-12-03");
        assert!(DateRange::new(d, Date::parse("2026-01-01").unwrap()).is_err());
    }

    #[test]
    fn quick_parses_agree_with_the_full_ones() {
        let mut values: Vec<String> = [
            "",
            " ",
            "A",
            " A",
            "A ",
            "A B",
            "ABC123",
            "abc",
            "a-b",
            "A\u{7f}",
            "A\tB",
            "\u{e9}t\u{e9}",
            "0",
            "12",
            "1.5",
            ".5",
            "5.",
            ".",
            "-1",
            "1.2.3",
            "150.00",
            "1234567890123456789",
            "123456789012345678",
            "12345678.901234567",
            "20240229",
            "20230229",
            "18000101",
            "17991231",
            "30000101",
            "20241301",
            "20240100",
            "20240431",
            "2024022",
            "2024022a",
            "1234567893",
            "1234567890",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        values.push("X".repeat(264));
        values.push("X".repeat(265));
        values.push("C".repeat(30));
        values.push("C".repeat(31));
        for b in 0u8..=0x7f {
            values.push(format!("AB{}CDEFGHIJ", b as char));
            values.push(format!("{}", b as char));
        }
        for v in &values {
            if let Some(t) = Text::parse_quick(v) {
                assert_eq!(Text::parse(v).as_ref(), Ok(&t), "{v:?}");
            }
            if v.is_ascii() && !v.is_empty() {
                // The quick test refuses only what it must leave to the full parse.
                let b = v.as_bytes();
                let plain = b.iter().all(|&c| (0x20..0x7f).contains(&c))
                    && b[0] != b' '
                    && b[b.len() - 1] != b' '
                    && b.len() <= 264;
                assert_eq!(Text::parse_quick(v).is_some(), plain, "{v:?}");
            }
            assert_eq!(Code::parse_quick(v), Code::parse(v).ok(), "{v:?}");
            if let Some(d) = Decimal::parse_quick(v) {
                assert_eq!(Decimal::parse(v).as_ref(), Ok(&d), "{v:?}");
            } else if !v.contains('-') {
                assert!(Decimal::parse(v).is_err(), "{v:?}");
            }
            assert_eq!(
                Date::from_x12_quick(v.as_bytes()),
                Date::from_x12(v).ok(),
                "{v:?}"
            );
        }
    }

    #[test]
    fn quick_dates_agree_with_the_full_parse_for_every_byte() {
        for base in [
            "20260228", "20240229", "19991231", "20261301", "18000101", "29991231",
        ] {
            for at in 0..8 {
                for b in 0u8..=255 {
                    let mut v = base.as_bytes().to_vec();
                    v[at] = b;
                    let full = std::str::from_utf8(&v)
                        .ok()
                        .and_then(|s| Date::from_x12(s).ok());
                    assert_eq!(Date::from_x12_quick(&v), full, "{v:?}");
                }
            }
        }
    }

    #[test]
    fn decimals_keep_their_digits() {
        let v: Decimal = serde_json::from_str("\"150.00\"").unwrap();
        assert_eq!(v.as_str(), "150.00");
        let v: Decimal = serde_json::from_str("12").unwrap();
        assert_eq!(v.as_str(), "12");
        let v: Decimal = serde_json::from_str("1.50").unwrap();
        assert_eq!(v.as_str(), "1.50");
        assert!(Decimal::parse("1.").is_err());
        assert!(Decimal::parse("abc").is_err());
    }
}
