//! The 005010X217 implementation guide as data, and a validator of 278 transaction sets driven
//! by it.
//!
//! The guide is `schemas/x12-005010X217.json`: our own machine-readable description of the 278
//! request and response, written from public summaries (not the licensed ASC X12 TR3). It holds
//! the segment dictionary (elements with type, length, usage, code lists, X12 syntax rules), the
//! composites, and for each of request and response the loops: HL loops identified by HL03 with
//! their allowed parents, name loops identified by a trigger element (NM101), and the segments of
//! each loop in order with usage and maximum use. Rules we could not confirm are marked with a
//! severity of warning there, and are reported as warnings here.
//!
//! [`validate_278`] walks one transaction set with that guide: every segment is placed in its
//! loop by what the JSON says (no loop is hard-coded here), and every problem is reported as an
//! [`Issue`] located down to the element and component, with its 999 code ([`AckCode::Segment`]
//! for IK304, [`AckCode::Element`] for IK403). [`Mode`] turns a list of issues into accept or
//! reject.
//!
//! The hot path allocates nothing per segment: segment ids are packed into integers and looked
//! up in maps built once, element values are borrowed slices, and strings are only built for the
//! issues reported.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use serde::Deserialize;

use super::envelope::GroupHeader;
use super::error::{AckCode, Issue, Location, Severity};
use super::syntax::{Segment, Transaction};
use crate::domain::values::{days_in_month, npi_check};

/// The guide as written in the repository, embedded at build time.
pub const GUIDE_JSON: &str = include_str!("../../schemas/x12-005010X217.json");

/// The most elements any segment of the guide has (the compiler checks it).
const MAX_ELEMENTS: usize = 32;

// ---------------------------------------------------------------------------------------------
// Public model of the compiled guide

/// Whether an element, segment or loop must, may or must not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Required,
    Situational,
    NotUsed,
}

/// X12 data element types (AN, ID, DT, TM, N0, R) and composites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// AN: string.
    Text,
    /// ID: a code.
    Code,
    /// DT: CCYYMMDD.
    Date,
    /// TM: HHMM[SS[D[D]]].
    Time,
    /// N0: integer.
    Integer,
    /// R: decimal number.
    Decimal,
    /// A composite of components.
    Composite,
}

/// Request (BHT02 01/13/36) or response (BHT02 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Request,
    Response,
}

/// A code list: confirmed codes, codes accepted with a warning, and what a value outside both is.
#[derive(Debug, Clone)]
pub struct CodeList {
    codes: Vec<Box<[u8]>>,
    unconfirmed: Vec<Box<[u8]>>,
    /// The codes of up to 7 bytes packed into integers, sorted: the fast path of a lookup.
    packed: Vec<u64>,
    packed_unconfirmed: Vec<u64>,
    /// Severity of a value in neither list (warning when the list itself is unconfirmed).
    pub severity: Severity,
    pub note: Option<String>,
}

/// A code of up to 7 bytes as an integer (its length in the top bits keeps "1" and "01" apart).
#[inline]
fn pack_code(v: &[u8]) -> Option<u64> {
    (v.len() <= 7).then(|| {
        v.iter()
            .fold(v.len() as u64, |k, &b| (k << 8) | u64::from(b))
    })
}

enum CodeMatch {
    Listed,
    Unconfirmed,
    Absent,
}

impl CodeList {
    fn lookup(&self, v: &[u8]) -> CodeMatch {
        if let Some(k) = pack_code(v) {
            return if self.packed.binary_search(&k).is_ok() {
                CodeMatch::Listed
            } else if self.packed_unconfirmed.binary_search(&k).is_ok() {
                CodeMatch::Unconfirmed
            } else {
                CodeMatch::Absent
            };
        }
        if self.codes.binary_search_by(|c| (**c).cmp(v)).is_ok() {
            CodeMatch::Listed
        } else if self.unconfirmed.binary_search_by(|c| (**c).cmp(v)).is_ok() {
            CodeMatch::Unconfirmed
        } else {
            CodeMatch::Absent
        }
    }
    /// Whether a value is listed, confirmed or not.
    pub fn contains(&self, v: &[u8]) -> bool {
        !matches!(self.lookup(v), CodeMatch::Absent)
    }
    /// The confirmed codes, sorted.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.codes
            .iter()
            .map(|c| std::str::from_utf8(c).unwrap_or("?"))
    }
    /// The codes accepted with a warning, sorted.
    pub fn unconfirmed(&self) -> impl Iterator<Item = &str> {
        self.unconfirmed
            .iter()
            .map(|c| std::str::from_utf8(c).unwrap_or("?"))
    }
    fn describe(&self) -> String {
        let list = |it: &mut dyn Iterator<Item = &str>, n: usize| {
            let mut s = String::new();
            for (i, c) in it.enumerate() {
                if i == 12 {
                    let _ = write!(s, ", ... ({n} codes)");
                    break;
                }
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(c);
            }
            s
        };
        let mut s = list(&mut self.codes(), self.codes.len());
        if !self.unconfirmed.is_empty() {
            let _ = write!(
                s,
                " (accepted with a warning: {})",
                list(&mut self.unconfirmed(), self.unconfirmed.len())
            );
        }
        s
    }
}

/// An element (or a component of a composite) as used in one place of the guide.
#[derive(Debug, Clone)]
pub struct ElementDef {
    pub pos: usize,
    /// X12 data element number, where known.
    pub de: Option<String>,
    pub name: String,
    pub data_type: DataType,
    pub min: usize,
    pub max: usize,
    pub usage: Usage,
    /// Warning when the usage is unconfirmed.
    pub usage_severity: Severity,
    pub codes: Option<CodeList>,
    /// The components, for a composite.
    pub components: Vec<ElementDef>,
    /// An error in this element makes the content unreadable (see [`Mode::Lenient`]).
    pub key: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyntaxKind {
    Paired,
    Required,
    Exclusion,
    Conditional,
    ListConditional,
}

#[derive(Debug, Clone)]
struct SyntaxRule {
    kind: SyntaxKind,
    text: String,
    elements: Vec<usize>,
}

#[derive(Debug, Clone, Copy)]
enum Ref {
    Element(usize),
    Component(usize),
}

#[derive(Debug, Clone)]
struct When {
    at: Ref,
    values: Vec<Box<[u8]>>,
}

#[derive(Debug, Clone, Copy)]
enum CheckKind {
    DatePeriod(Ref),
    RequiredIf,
    NotUsedIf,
    Npi,
    Icd10Cm,
    Icd9Cm,
}

#[derive(Debug, Clone)]
struct Check {
    kind: CheckKind,
    elements: Vec<usize>,
    component: Option<usize>,
    when: Option<When>,
    severity: Severity,
    note: Option<String>,
}

/// A segment of the dictionary.
#[derive(Debug, Clone)]
pub struct SegmentDef {
    pub id: String,
    pub name: String,
    pub elements: Vec<ElementDef>,
    syntax: Vec<SyntaxRule>,
    checks: Vec<Check>,
}

/// A segment's place in a loop.
#[derive(Debug, Clone)]
pub struct Entry {
    pub segment: String,
    key: u32,
    seg: usize,
    pub name: String,
    pub usage: Usage,
    /// Most uses in one loop instance (`None`: no limit we know of).
    pub max: Option<u32>,
    pub max_severity: Severity,
    /// Set when the segment's place here is unconfirmed: each use is reported as a warning.
    pub unconfirmed: Option<String>,
    pub elements: Vec<ElementDef>,
    checks: Vec<Check>,
}

#[derive(Debug, Clone)]
struct OneOf {
    entries: Vec<usize>,
    severity: Severity,
    waivable: bool,
    note: Option<String>,
}

/// A loop of a transaction guide: an HL loop (identified by HL03) or a name loop (identified by
/// the code in its trigger element).
#[derive(Debug, Clone)]
pub struct LoopDef {
    pub id: String,
    pub name: String,
    pub usage: Usage,
    /// Most instances under one parent (`None`: no limit we know of).
    pub max: Option<u32>,
    pub max_severity: Severity,
    /// HL03 of an HL loop.
    pub hl03: Option<String>,
    parents: Vec<usize>,
    /// For a name loop: the trigger element of its first segment.
    trigger: Option<usize>,
    waivable: bool,
    pub entries: Vec<Entry>,
    entry_map: KeyMap<usize>,
    name_loops: Vec<usize>,
    one_of: Vec<OneOf>,
    exclusive: Vec<Vec<usize>>,
}

impl LoopDef {
    /// The ids of the parent loops allowed for an HL loop.
    pub fn parent_ids<'s, 'g>(
        &'s self,
        tx: &'g TxGuide,
    ) -> impl Iterator<Item = &'g str> + use<'s, 'g> {
        self.parents.iter().map(move |&p| tx.loops[p].id.as_str())
    }
    /// The ids of the name loops of an HL loop.
    pub fn name_loop_ids<'s, 'g>(
        &'s self,
        tx: &'g TxGuide,
    ) -> impl Iterator<Item = &'g str> + use<'s, 'g> {
        self.name_loops
            .iter()
            .map(move |&p| tx.loops[p].id.as_str())
    }
}

/// The request or the response guide.
#[derive(Debug, Clone)]
pub struct TxGuide {
    pub purpose: Purpose,
    bht02: Vec<Box<[u8]>>,
    rejection_key: Option<u32>,
    pub header: Vec<Entry>,
    header_map: KeyMap<usize>,
    trailer_key: u32,
    pub loops: Vec<LoopDef>,
    hl03_map: HashMap<Box<[u8]>, usize>,
}

impl TxGuide {
    pub fn loop_def(&self, id: &str) -> Option<&LoopDef> {
        self.loops.iter().find(|l| l.id == id)
    }
}

#[derive(Debug, Clone)]
struct Hierarchy {
    key: u32,
    id: String,
    id_el: usize,
    parent_el: usize,
    level_el: usize,
    child_el: usize,
}

/// The compiled guide.
#[derive(Debug, Clone)]
pub struct Guide {
    pub id: String,
    pub comment: String,
    pub notes: Vec<String>,
    hierarchy: Hierarchy,
    segments: Vec<SegmentDef>,
    segment_map: KeyMap<usize>,
    txs: [TxGuide; 2],
    /// (loop id or "" for every loop, segment id, element) of the key elements.
    keys: Vec<(String, String, usize)>,
}

impl Guide {
    /// A segment of the dictionary.
    pub fn segment(&self, id: &str) -> Option<&SegmentDef> {
        self.segment_map
            .get(&seg_key(id.as_bytes()))
            .map(|&i| &self.segments[i])
    }
    pub fn segments(&self) -> &[SegmentDef] {
        &self.segments
    }
    pub fn transaction(&self, p: Purpose) -> &TxGuide {
        match p {
            Purpose::Request => &self.txs[0],
            Purpose::Response => &self.txs[1],
        }
    }
    /// Whether an error at this place makes the content unreadable (the guide's `key` flags).
    pub fn is_key(&self, loop_id: Option<&str>, segment: &str, element: usize) -> bool {
        let l = loop_id.unwrap_or("");
        self.keys
            .iter()
            .any(|(kl, ks, ke)| *ke == element && ks == segment && (kl.is_empty() || kl == l))
    }
}

static GUIDE: OnceLock<Guide> = OnceLock::new();

/// The guide, parsed and compiled on first use.
pub fn guide() -> &'static Guide {
    GUIDE.get_or_init(|| match load(GUIDE_JSON) {
        Ok(g) => g,
        Err(e) => panic!("schemas/x12-005010X217.json is inconsistent: {e}"),
    })
}

/// Parses and compiles a guide, checking that it is consistent (every segment a loop uses is
/// defined, every override names an existing element, parents and triggers make sense...).
pub fn load(json: &str) -> Result<Guide, String> {
    let raw: RawGuide = serde_json::from_str(json).map_err(|e| format!("JSON: {e}"))?;
    compile(raw)
}

// ---------------------------------------------------------------------------------------------
// Fast maps keyed by packed segment ids

#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        let x = u64::from(v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 29);
    }
}

type KeyMap<V> = HashMap<u32, V, BuildHasherDefault<KeyHasher>>;

/// A segment id packed into an integer (0 for anything that is not a 2-3 byte id).
#[inline]
fn seg_key(id: &[u8]) -> u32 {
    if !(2..=3).contains(&id.len()) {
        return 0;
    }
    id.iter()
        .fold(id.len() as u32, |k, &b| (k << 8) | u32::from(b))
}

// ---------------------------------------------------------------------------------------------
// The JSON as written

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuide {
    #[serde(rename = "$comment")]
    comment: String,
    id: String,
    transaction_set: String,
    #[serde(default)]
    notes: Vec<String>,
    hierarchy: RawHierarchy,
    segments: BTreeMap<String, RawSegment>,
    composites: BTreeMap<String, RawComposite>,
    guides: Vec<RawTxGuide>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHierarchy {
    segment: String,
    id_element: usize,
    parent_element: usize,
    level_element: usize,
    child_element: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSegment {
    name: String,
    elements: Vec<RawElement>,
    #[serde(default)]
    syntax: Vec<String>,
    #[serde(default)]
    checks: Vec<RawCheck>,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComposite {
    name: String,
    components: Vec<RawElement>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawElement {
    pos: usize,
    #[serde(default)]
    de: Option<String>,
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    composite: Option<String>,
    #[serde(default)]
    min: Option<usize>,
    #[serde(default)]
    max: Option<usize>,
    usage: RawUsage,
    #[serde(default)]
    usage_severity: Option<RawSeverity>,
    #[serde(default)]
    codes: Option<RawCodes>,
    #[serde(default)]
    key: bool,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
enum RawUsage {
    R,
    S,
    N,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawSeverity {
    Error,
    Warning,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum RawCodes {
    List(Vec<String>),
    Full(RawCodeList),
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawCodeList {
    codes: Vec<String>,
    #[serde(default)]
    unconfirmed: Vec<String>,
    #[serde(default)]
    severity: Option<RawSeverity>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    kind: String,
    elements: Vec<usize>,
    #[serde(default)]
    component: Option<usize>,
    #[serde(default)]
    when: Option<RawWhen>,
    #[serde(default)]
    format: Option<RawRef>,
    #[serde(default)]
    severity: Option<RawSeverity>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    #[serde(default)]
    element: Option<usize>,
    #[serde(default)]
    component: Option<usize>,
    #[serde(rename = "in")]
    values: Vec<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawRef {
    #[serde(default)]
    element: Option<usize>,
    #[serde(default)]
    component: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTxGuide {
    name: String,
    bht02: Vec<String>,
    #[serde(default)]
    rejection_segment: Option<String>,
    header: Vec<RawEntry>,
    trailer: String,
    loops: Vec<RawLoop>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoop {
    id: String,
    name: String,
    #[serde(default)]
    hl03: Option<String>,
    #[serde(default)]
    parents: Vec<String>,
    #[serde(default)]
    trigger: Option<RawTrigger>,
    usage: RawUsage,
    max: Option<u32>,
    #[serde(default)]
    max_severity: Option<RawSeverity>,
    #[serde(default)]
    waivable: bool,
    segments: Vec<RawEntry>,
    #[serde(default)]
    name_loops: Vec<RawLoop>,
    #[serde(default)]
    one_of: Vec<RawOneOf>,
    #[serde(default)]
    exclusive: Vec<Vec<String>>,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    segment: String,
    element: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    segment: String,
    #[serde(default)]
    name: Option<String>,
    usage: RawUsage,
    max: Option<u32>,
    #[serde(default)]
    max_severity: Option<RawSeverity>,
    #[serde(default)]
    unconfirmed: Option<String>,
    #[serde(default)]
    elements: BTreeMap<String, RawOverride>,
    #[serde(default)]
    checks: Vec<RawCheck>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    usage: Option<RawUsage>,
    #[serde(default)]
    usage_severity: Option<RawSeverity>,
    #[serde(default)]
    codes: Option<RawCodes>,
    #[serde(default)]
    min: Option<usize>,
    #[serde(default)]
    max: Option<usize>,
    #[serde(default)]
    key: Option<bool>,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOneOf {
    segments: Vec<String>,
    #[serde(default)]
    severity: Option<RawSeverity>,
    #[serde(default)]
    waivable: bool,
    #[serde(default)]
    note: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Compilation: resolve names into indices and check consistency

fn usage(u: RawUsage) -> Usage {
    match u {
        RawUsage::R => Usage::Required,
        RawUsage::S => Usage::Situational,
        RawUsage::N => Usage::NotUsed,
    }
}

fn severity(s: Option<RawSeverity>) -> Severity {
    match s {
        Some(RawSeverity::Warning) => Severity::Warning,
        _ => Severity::Error,
    }
}

fn code_list(raw: &RawCodes, what: &str) -> Result<CodeList, String> {
    let (codes, unconfirmed, sev, note) = match raw {
        RawCodes::List(c) => (c.clone(), vec![], None, None),
        RawCodes::Full(f) => (
            f.codes.clone(),
            f.unconfirmed.clone(),
            f.severity,
            f.note.clone(),
        ),
    };
    if codes.is_empty() && unconfirmed.is_empty() {
        return Err(format!("{what}: empty code list"));
    }
    let pack = |v: Vec<String>| -> Vec<Box<[u8]>> {
        let mut v: Vec<Box<[u8]>> = v
            .into_iter()
            .map(|s| s.into_bytes().into_boxed_slice())
            .collect();
        v.sort();
        v
    };
    let (c, u) = (pack(codes), pack(unconfirmed));
    for w in c.windows(2).chain(u.windows(2)) {
        if w[0] == w[1] {
            return Err(format!(
                "{what}: code {:?} listed twice",
                String::from_utf8_lossy(&w[0])
            ));
        }
    }
    if let Some(dup) = c.iter().find(|x| u.contains(x)) {
        return Err(format!(
            "{what}: code {:?} is both confirmed and unconfirmed",
            String::from_utf8_lossy(dup)
        ));
    }
    let packed = |v: &[Box<[u8]>]| -> Vec<u64> {
        let mut p: Vec<u64> = v.iter().filter_map(|c| pack_code(c)).collect();
        p.sort_unstable();
        p
    };
    Ok(CodeList {
        packed: packed(&c),
        packed_unconfirmed: packed(&u),
        codes: c,
        unconfirmed: u,
        severity: severity(sev),
        note,
    })
}

fn compile_element(
    raw: &RawElement,
    composites: &BTreeMap<String, RawComposite>,
    what: &str,
    nested: bool,
) -> Result<ElementDef, String> {
    let data_type = match raw.ty.as_str() {
        "AN" => DataType::Text,
        "ID" => DataType::Code,
        "DT" => DataType::Date,
        "TM" => DataType::Time,
        "N0" => DataType::Integer,
        "R" => DataType::Decimal,
        "composite" => DataType::Composite,
        t => return Err(format!("{what}: unknown type {t:?}")),
    };
    let mut components = vec![];
    if data_type == DataType::Composite {
        if nested {
            return Err(format!("{what}: a component cannot be a composite"));
        }
        let cid = raw
            .composite
            .as_deref()
            .ok_or_else(|| format!("{what}: a composite element needs \"composite\""))?;
        let c = composites
            .get(cid)
            .ok_or_else(|| format!("{what}: composite {cid} is not defined"))?;
        for (i, rc) in c.components.iter().enumerate() {
            if rc.pos != i + 1 {
                return Err(format!(
                    "{what}: composite {cid} ({}) component {} is at position {}",
                    c.name,
                    i + 1,
                    rc.pos
                ));
            }
            components.push(compile_element(
                rc,
                composites,
                &format!("{what}-{}", rc.pos),
                true,
            )?);
        }
        if raw.codes.is_some() || raw.min.is_some() || raw.max.is_some() {
            return Err(format!(
                "{what}: a composite has no codes or lengths of its own"
            ));
        }
    } else if raw.composite.is_some() {
        return Err(format!("{what}: \"composite\" on a simple element"));
    }
    let (min, max) = match data_type {
        DataType::Composite => (0, 0),
        _ => match (raw.min, raw.max) {
            (Some(a), Some(b)) if a >= 1 && a <= b => (a, b),
            _ => return Err(format!("{what}: needs 1 <= min <= max")),
        },
    };
    let codes = match &raw.codes {
        Some(c) => Some(code_list(c, what)?),
        None => None,
    };
    Ok(ElementDef {
        pos: raw.pos,
        de: raw.de.clone(),
        name: raw.name.clone(),
        data_type,
        min,
        max,
        usage: usage(raw.usage),
        usage_severity: severity(raw.usage_severity),
        codes,
        components,
        key: raw.key,
    })
}

fn parse_syntax(s: &str, n: usize, what: &str) -> Result<SyntaxRule, String> {
    let b = s.as_bytes();
    let kind = match b.first() {
        Some(b'P') => SyntaxKind::Paired,
        Some(b'R') => SyntaxKind::Required,
        Some(b'E') => SyntaxKind::Exclusion,
        Some(b'C') => SyntaxKind::Conditional,
        Some(b'L') => SyntaxKind::ListConditional,
        _ => return Err(format!("{what}: syntax rule {s:?} has no P/R/E/C/L")),
    };
    let digits = &s[1..];
    if digits.len() < 4
        || !digits.len().is_multiple_of(2)
        || !digits.bytes().all(|c| c.is_ascii_digit())
    {
        return Err(format!(
            "{what}: syntax rule {s:?} is not a letter and 2-digit element numbers"
        ));
    }
    let elements: Vec<usize> = (0..digits.len())
        .step_by(2)
        .map(|i| digits[i..i + 2].parse().unwrap_or(0))
        .collect();
    if elements.iter().any(|&e| e == 0 || e > n) {
        return Err(format!(
            "{what}: syntax rule {s} names an element the segment does not have"
        ));
    }
    Ok(SyntaxRule {
        kind,
        text: s.to_owned(),
        elements,
    })
}

fn compile_check(raw: &RawCheck, elements: &[ElementDef], what: &str) -> Result<Check, String> {
    let has = |e: usize| e >= 1 && e <= elements.len();
    let has_comp = |e: usize, c: usize| has(e) && c >= 1 && c <= elements[e - 1].components.len();
    if raw.elements.is_empty() || !raw.elements.iter().all(|&e| has(e)) {
        return Err(format!(
            "{what}: check {} names an element the segment does not have",
            raw.kind
        ));
    }
    if let Some(c) = raw.component
        && !raw.elements.iter().all(|&e| has_comp(e, c))
    {
        return Err(format!(
            "{what}: check {} names a component that does not exist",
            raw.kind
        ));
    }
    let to_ref = |element: Option<usize>, component: Option<usize>| -> Result<Ref, String> {
        match (element, component) {
            (Some(e), None) if has(e) => Ok(Ref::Element(e)),
            (None, Some(c)) if raw.elements.iter().all(|&e| has_comp(e, c)) => {
                Ok(Ref::Component(c))
            }
            _ => Err(format!(
                "{what}: check {} refers to a missing element or component",
                raw.kind
            )),
        }
    };
    let when = match &raw.when {
        Some(w) => {
            if w.values.is_empty() {
                return Err(format!("{what}: check {} has an empty \"in\"", raw.kind));
            }
            Some(When {
                at: to_ref(w.element, w.component)?,
                values: w
                    .values
                    .iter()
                    .map(|v| v.as_bytes().to_vec().into_boxed_slice())
                    .collect(),
            })
        }
        None => None,
    };
    let kind = match raw.kind.as_str() {
        "date_period" => {
            let f = raw
                .format
                .as_ref()
                .ok_or_else(|| format!("{what}: date_period needs \"format\""))?;
            CheckKind::DatePeriod(to_ref(f.element, f.component)?)
        }
        "required_if" => CheckKind::RequiredIf,
        "not_used_if" => CheckKind::NotUsedIf,
        "npi" => CheckKind::Npi,
        "icd10cm" => CheckKind::Icd10Cm,
        "icd9cm" => CheckKind::Icd9Cm,
        k => return Err(format!("{what}: unknown check kind {k:?}")),
    };
    if matches!(kind, CheckKind::RequiredIf | CheckKind::NotUsedIf) && when.is_none() {
        return Err(format!("{what}: check {} needs \"when\"", raw.kind));
    }
    Ok(Check {
        kind,
        elements: raw.elements.clone(),
        component: raw.component,
        when,
        severity: severity(raw.severity),
        note: raw.note.clone(),
    })
}

struct Compiler<'r> {
    raw: &'r RawGuide,
    segments: Vec<SegmentDef>,
    segment_map: KeyMap<usize>,
    keys: Vec<(String, String, usize)>,
}

impl Compiler<'_> {
    fn entry(&mut self, raw: &RawEntry, what: &str, loop_id: &str) -> Result<Entry, String> {
        let key = seg_key(raw.segment.as_bytes());
        let &seg = self.segment_map.get(&key).ok_or_else(|| {
            format!(
                "{what}: segment {} is not defined in \"segments\"",
                raw.segment
            )
        })?;
        let base = &self.segments[seg];
        let mut elements = base.elements.clone();
        let what = format!("{what} {}", raw.segment);
        for (k, o) in &raw.elements {
            let (e, c) = match k.split_once('-') {
                Some((e, c)) => (e.parse::<usize>().ok(), c.parse::<usize>().ok().map(Some)),
                None => (k.parse::<usize>().ok(), Some(None)),
            };
            let (Some(e), Some(c)) = (e, c) else {
                return Err(format!("{what}: override key {k:?} is not N or N-M"));
            };
            let Some(el) = elements.get_mut(e.wrapping_sub(1)) else {
                return Err(format!(
                    "{what}: override {k} names an element the segment does not have"
                ));
            };
            let target = match c {
                None => el,
                Some(c) => el.components.get_mut(c.wrapping_sub(1)).ok_or_else(|| {
                    format!("{what}: override {k} names a component that does not exist")
                })?,
            };
            if let Some(n) = &o.name {
                target.name = n.clone();
            }
            if let Some(u) = o.usage {
                target.usage = usage(u);
                target.usage_severity = severity(o.usage_severity);
            } else if o.usage_severity.is_some() {
                target.usage_severity = severity(o.usage_severity);
            }
            if let Some(cl) = &o.codes {
                if target.data_type == DataType::Composite {
                    return Err(format!("{what}: override {k} puts codes on a composite"));
                }
                target.codes = Some(code_list(cl, &format!("{what}{k}"))?);
            }
            if let Some(m) = o.min {
                target.min = m;
            }
            if let Some(m) = o.max {
                target.max = m;
            }
            if target.data_type != DataType::Composite
                && (target.min == 0 || target.min > target.max)
            {
                return Err(format!("{what}: override {k} leaves min > max"));
            }
            if let Some(kf) = o.key {
                target.key = kf;
                if kf && c.is_none() {
                    self.keys.push((loop_id.to_owned(), raw.segment.clone(), e));
                }
            }
        }
        let mut checks = base.checks.clone();
        for rc in &raw.checks {
            checks.push(compile_check(rc, &elements, &what)?);
        }
        let max_severity = severity(raw.max_severity);
        if raw.max == Some(0) {
            return Err(format!("{what}: max 0 (use usage N instead)"));
        }
        Ok(Entry {
            segment: raw.segment.clone(),
            key,
            seg,
            name: raw.name.clone().unwrap_or_else(|| base.name.clone()),
            usage: usage(raw.usage),
            max: raw.max,
            max_severity,
            unconfirmed: raw.unconfirmed.clone(),
            elements,
            checks,
        })
    }

    fn loop_def(
        &mut self,
        raw: &RawLoop,
        tx: &str,
        loops: &mut Vec<LoopDef>,
        parent: Option<usize>,
    ) -> Result<usize, String> {
        let what = format!("{tx} loop {}", raw.id);
        if loops.iter().any(|l| l.id == raw.id) {
            return Err(format!("{what}: loop id used twice"));
        }
        if raw.segments.is_empty() {
            return Err(format!("{what}: no segments"));
        }
        let mut entries = Vec::with_capacity(raw.segments.len());
        let mut entry_map = KeyMap::default();
        for (i, re) in raw.segments.iter().enumerate() {
            let e = self.entry(re, &what, &raw.id)?;
            if entry_map.insert(e.key, i).is_some() {
                return Err(format!(
                    "{what}: segment {} listed twice (merge the uses into one entry)",
                    e.segment
                ));
            }
            entries.push(e);
        }
        let hkey = seg_key(self.raw.hierarchy.segment.as_bytes());
        let trigger = match (parent, &raw.trigger, &raw.hl03) {
            (None, None, Some(_)) => {
                if entries[0].key != hkey {
                    return Err(format!(
                        "{what}: an HL loop starts with {}",
                        self.raw.hierarchy.segment
                    ));
                }
                None
            }
            (Some(_), Some(t), None) => {
                if t.segment != entries[0].segment {
                    return Err(format!(
                        "{what}: the trigger segment {} must be the loop's first segment",
                        t.segment
                    ));
                }
                let el = entries[0].elements.get(t.element.wrapping_sub(1));
                match el {
                    Some(el) if el.codes.is_some() => Some(t.element),
                    _ => {
                        return Err(format!(
                            "{what}: the trigger element {}{:02} needs a code list",
                            t.segment, t.element
                        ));
                    }
                }
            }
            _ => {
                return Err(format!(
                    "{what}: an HL loop has hl03 and no trigger; a name loop has a trigger and no hl03"
                ));
            }
        };
        let find = |names: &[String], entries: &[Entry]| -> Result<Vec<usize>, String> {
            names
                .iter()
                .map(|n| {
                    entries
                        .iter()
                        .position(|e| &e.segment == n)
                        .ok_or_else(|| format!("{what}: {n} is not a segment of the loop"))
                })
                .collect()
        };
        let mut one_of = vec![];
        for o in &raw.one_of {
            one_of.push(OneOf {
                entries: find(&o.segments, &entries)?,
                severity: severity(o.severity),
                waivable: o.waivable,
                note: o.note.clone(),
            });
        }
        let mut exclusive = vec![];
        for x in &raw.exclusive {
            exclusive.push(find(x, &entries)?);
        }
        let ix = loops.len();
        loops.push(LoopDef {
            id: raw.id.clone(),
            name: raw.name.clone(),
            usage: usage(raw.usage),
            max: raw.max,
            max_severity: severity(raw.max_severity),
            hl03: raw.hl03.clone(),
            parents: vec![],
            trigger,
            waivable: raw.waivable,
            entries,
            entry_map,
            name_loops: vec![],
            one_of,
            exclusive,
        });
        let mut names = vec![];
        for nl in &raw.name_loops {
            if parent.is_some() {
                return Err(format!("{what}: a name loop cannot have name loops"));
            }
            names.push(self.loop_def(nl, tx, loops, Some(ix))?);
        }
        // All name loops of an HL loop start with the same segment, which the HL loop itself
        // must not use (it is how a name loop begins).
        if let Some(first) = names.first() {
            let k = loops[*first].entries[0].key;
            if names.iter().any(|&n| loops[n].entries[0].key != k) {
                return Err(format!(
                    "{what}: name loops with different trigger segments"
                ));
            }
            if loops[ix].entry_map.contains_key(&k) {
                return Err(format!(
                    "{what}: the loop uses its name loops' trigger segment itself"
                ));
            }
        }
        loops[ix].name_loops = names;
        Ok(ix)
    }

    fn tx(&mut self, raw: &RawTxGuide) -> Result<TxGuide, String> {
        let purpose = match raw.name.as_str() {
            "request" => Purpose::Request,
            "response" => Purpose::Response,
            n => {
                return Err(format!(
                    "guide {n:?}: the guides are \"request\" and \"response\""
                ));
            }
        };
        let what = raw.name.clone();
        let mut header = vec![];
        let mut header_map = KeyMap::default();
        for (i, re) in raw.header.iter().enumerate() {
            let e = self.entry(re, &format!("{what} header"), "")?;
            header_map.insert(e.key, i);
            header.push(e);
        }
        let trailer_key = seg_key(raw.trailer.as_bytes());
        if !self.segment_map.contains_key(&trailer_key) {
            return Err(format!("{what}: trailer {} is not defined", raw.trailer));
        }
        let mut loops = vec![];
        let mut tops = vec![];
        for rl in &raw.loops {
            tops.push(self.loop_def(rl, &what, &mut loops, None)?);
        }
        let mut hl03_map = HashMap::new();
        for (rl, &ix) in raw.loops.iter().zip(&tops) {
            let code = rl.hl03.clone().unwrap_or_default();
            if hl03_map
                .insert(code.clone().into_bytes().into_boxed_slice(), ix)
                .is_some()
            {
                return Err(format!("{what}: HL03 {code} names two loops"));
            }
            let mut parents = vec![];
            for p in &rl.parents {
                match raw.loops.iter().zip(&tops).find(|(l, _)| &l.id == p) {
                    Some((_, &pix)) => parents.push(pix),
                    None => {
                        return Err(format!(
                            "{what} loop {}: parent {p} is not an HL loop of the guide",
                            rl.id
                        ));
                    }
                }
            }
            loops[ix].parents = parents;
        }
        if !tops.iter().any(|&t| loops[t].parents.is_empty()) {
            return Err(format!("{what}: no HL loop without a parent"));
        }
        // HL03 codes must be in the hierarchy segment's level code list.
        let h = &self.raw.hierarchy;
        if let Some(&hs) = self.segment_map.get(&seg_key(h.segment.as_bytes()))
            && let Some(cl) = &self.segments[hs].elements[h.level_element - 1].codes
        {
            for code in hl03_map.keys() {
                if !cl.contains(code) {
                    return Err(format!(
                        "{what}: HL03 {} is not in the level code list",
                        String::from_utf8_lossy(code)
                    ));
                }
            }
        }
        let rejection_key = match &raw.rejection_segment {
            Some(s) => {
                let k = seg_key(s.as_bytes());
                if !self.segment_map.contains_key(&k) {
                    return Err(format!("{what}: rejection segment {s} is not defined"));
                }
                Some(k)
            }
            None => None,
        };
        if raw.bht02.is_empty() {
            return Err(format!("{what}: bht02 is empty"));
        }
        Ok(TxGuide {
            purpose,
            bht02: raw
                .bht02
                .iter()
                .map(|c| c.as_bytes().to_vec().into_boxed_slice())
                .collect(),
            rejection_key,
            header,
            header_map,
            trailer_key,
            loops,
            hl03_map,
        })
    }
}

fn compile(raw: RawGuide) -> Result<Guide, String> {
    if raw.transaction_set != "278" {
        return Err(format!(
            "transaction_set {} (this validator is for the 278)",
            raw.transaction_set
        ));
    }
    let mut c = Compiler {
        raw: &raw,
        segments: vec![],
        segment_map: KeyMap::default(),
        keys: vec![],
    };
    for (id, rs) in &raw.segments {
        let key = seg_key(id.as_bytes());
        if key == 0
            || !id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(format!(
                "segment id {id:?} is not 2-3 upper-case letters or digits"
            ));
        }
        if rs.elements.is_empty() || rs.elements.len() > MAX_ELEMENTS {
            return Err(format!("{id}: 1 to {MAX_ELEMENTS} elements"));
        }
        let mut elements = vec![];
        for (i, re) in rs.elements.iter().enumerate() {
            if re.pos != i + 1 {
                return Err(format!("{id}: element {} is at position {}", i + 1, re.pos));
            }
            elements.push(compile_element(
                re,
                &raw.composites,
                &format!("{id}{:02}", re.pos),
                false,
            )?);
            if re.key {
                c.keys.push((String::new(), id.clone(), re.pos));
            }
        }
        let syntax = rs
            .syntax
            .iter()
            .map(|s| parse_syntax(s, elements.len(), id))
            .collect::<Result<Vec<_>, _>>()?;
        let checks = rs
            .checks
            .iter()
            .map(|k| compile_check(k, &elements, id))
            .collect::<Result<Vec<_>, _>>()?;
        c.segment_map.insert(key, c.segments.len());
        c.segments.push(SegmentDef {
            id: id.clone(),
            name: rs.name.clone(),
            elements,
            syntax,
            checks,
        });
    }
    let h = &raw.hierarchy;
    let hkey = seg_key(h.segment.as_bytes());
    let Some(&hs) = c.segment_map.get(&hkey) else {
        return Err(format!("hierarchy segment {} is not defined", h.segment));
    };
    let n = c.segments[hs].elements.len();
    for e in [
        h.id_element,
        h.parent_element,
        h.level_element,
        h.child_element,
    ] {
        if e == 0 || e > n {
            return Err(format!(
                "hierarchy element {e} is not an element of {}",
                h.segment
            ));
        }
    }
    if raw.guides.len() != 2 {
        return Err("exactly two guides: request and response".into());
    }
    let req = c.tx(&raw.guides[0])?;
    let resp = c.tx(&raw.guides[1])?;
    if req.purpose != Purpose::Request || resp.purpose != Purpose::Response {
        return Err("the guides are request then response".into());
    }
    if req.bht02.iter().any(|c| resp.bht02.contains(c)) {
        return Err("a BHT02 code selects both guides".into());
    }
    let hierarchy = Hierarchy {
        key: hkey,
        id: h.segment.clone(),
        id_el: h.id_element,
        parent_el: h.parent_element,
        level_el: h.level_element,
        child_el: h.child_element,
    };
    let keys = std::mem::take(&mut c.keys);
    Ok(Guide {
        id: raw.id.clone(),
        comment: raw.comment.clone(),
        notes: raw.notes.clone(),
        hierarchy,
        segments: c.segments,
        segment_map: c.segment_map,
        txs: [req, resp],
        keys,
    })
}

// ---------------------------------------------------------------------------------------------
// Value checks (no allocation)

/// CCYYMMDD: Ok(year) when it is a calendar date.
fn date8(v: &[u8]) -> Option<u16> {
    if v.len() != 8 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n =
        |r: std::ops::Range<usize>| v[r].iter().fold(0u16, |a, &b| a * 10 + u16::from(b - b'0'));
    let (y, m, d) = (n(0..4), n(4..6) as u8, n(6..8) as u8);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some(y)
}

/// HHMM[SS[D[D]]].
fn time_ok(v: &[u8]) -> bool {
    if !matches!(v.len(), 4 | 6 | 7 | 8) || !v.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let two = |i: usize| (v[i] - b'0') * 10 + (v[i + 1] - b'0');
    two(0) <= 23 && two(2) <= 59 && (v.len() < 6 || two(4) <= 59)
}

/// Digits of an N0 value (optional leading minus), or None.
fn integer_digits(v: &[u8]) -> Option<usize> {
    let d = v.strip_prefix(b"-").unwrap_or(v);
    (!d.is_empty() && d.iter().all(u8::is_ascii_digit)).then_some(d.len())
}

/// Digits of an R value (optional minus, at most one decimal point), or None.
fn decimal_digits(v: &[u8]) -> Option<usize> {
    let d = v.strip_prefix(b"-").unwrap_or(v);
    let mut digits = 0;
    let mut points = 0;
    for &b in d {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' => points += 1,
            _ => return None,
        }
    }
    (digits > 0 && points <= 1).then_some(digits)
}

/// An NPI: 10 digits starting with 1 or 2, Luhn check digit over the prefix 80840 (the same
/// rule as `domain::values::npi_check`, without allocating).
fn npi_ok(v: &[u8]) -> bool {
    if v.len() != 10 || !v.iter().all(u8::is_ascii_digit) || !matches!(v[0], b'1' | b'2') {
        return false;
    }
    // Luhn over 80840 + the first 9 digits, doubling from the rightmost of them.
    let body = b"80840".iter().chain(&v[..9]);
    let sum: u32 = body
        .rev()
        .enumerate()
        .map(|(i, &b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10 == u32::from(v[9] - b'0')
}

/// ICD-10-CM as X12 carries it: no decimal point, 3 to 7 characters, a letter, a digit, then
/// letters or digits.
fn icd10_x12(v: &[u8]) -> bool {
    (3..=7).contains(&v.len())
        && v[0].is_ascii_uppercase()
        && v[1].is_ascii_digit()
        && v[2..]
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

/// ICD-9-CM diagnosis codes without the decimal point: 3-5 digits, V + 2-4 digits, E + 3-4 digits.
fn icd9_x12(v: &[u8]) -> bool {
    match v.first() {
        Some(b'V') => (3..=5).contains(&v.len()) && v[1..].iter().all(u8::is_ascii_digit),
        Some(b'E') => (4..=5).contains(&v.len()) && v[1..].iter().all(u8::is_ascii_digit),
        _ => (3..=5).contains(&v.len()) && v.iter().all(u8::is_ascii_digit),
    }
}

enum Period {
    Ok,
    /// Valid, but a year outside 1800..=2999 (the domain model refuses those).
    Implausible,
    Invalid(&'static str),
    /// A format this check does not know (the qualifier's own code list reports it).
    Unknown,
}

fn plausible(y: u16) -> bool {
    (1800..=2999).contains(&y)
}

fn period(format: &[u8], v: &[u8]) -> Period {
    let one = |d: &[u8]| match date8(d) {
        Some(y) if plausible(y) => Period::Ok,
        Some(_) => Period::Implausible,
        None => Period::Invalid("is not a CCYYMMDD calendar date"),
    };
    let dt = |d: &[u8]| -> Option<u16> {
        if d.len() != 12 || !time_ok(&d[8..]) {
            return None;
        }
        date8(&d[..8])
    };
    match format {
        b"D8" => one(v),
        b"RD8" => {
            if v.len() != 17 || v[8] != b'-' {
                return Period::Invalid("is not a CCYYMMDD-CCYYMMDD range");
            }
            match (date8(&v[..8]), date8(&v[9..])) {
                (Some(a), Some(b)) if v[..8] <= v[9..] => {
                    if plausible(a) && plausible(b) {
                        Period::Ok
                    } else {
                        Period::Implausible
                    }
                }
                (Some(_), Some(_)) => Period::Invalid("ends before it starts"),
                _ => Period::Invalid("holds a date that is not a calendar date"),
            }
        }
        b"DT" => match dt(v) {
            Some(y) if plausible(y) => Period::Ok,
            Some(_) => Period::Implausible,
            None => Period::Invalid("is not a CCYYMMDDHHMM date and time"),
        },
        b"RDT" => {
            if v.len() != 25 || v[12] != b'-' {
                return Period::Invalid("is not a CCYYMMDDHHMM-CCYYMMDDHHMM range");
            }
            match (dt(&v[..12]), dt(&v[13..])) {
                (Some(_), Some(_)) if v[..12] <= v[13..] => Period::Ok,
                (Some(_), Some(_)) => Period::Invalid("ends before it starts"),
                _ => Period::Invalid("holds a date or time that is not valid"),
            }
        }
        b"TM" => {
            if v.len() == 4 && time_ok(v) {
                Period::Ok
            } else {
                Period::Invalid("is not an HHMM time")
            }
        }
        _ => Period::Unknown,
    }
}

fn component(v: &[u8], sep: u8, k: usize) -> &[u8] {
    v.split(move |&b| b == sep)
        .nth(k.wrapping_sub(1))
        .unwrap_or(&[])
}

fn text(v: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(v)
}

fn label(seg: &str, el: usize, comp: Option<usize>) -> String {
    match comp {
        Some(c) => format!("{seg}{el:02}-{c}"),
        None => format!("{seg}{el:02}"),
    }
}

fn unconfirmed_note(sev: Severity) -> &'static str {
    match sev {
        Severity::Warning => " (unconfirmed rule, reported as a warning)",
        Severity::Error => "",
    }
}

// ---------------------------------------------------------------------------------------------
// The walker

#[derive(Debug, Clone, Copy)]
struct Mark {
    index: usize,
    pos: usize,
    offset: usize,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    loop_ix: usize,
    cursor: usize,
    start: Mark,
}

struct HlInfo<'a> {
    loop_ix: Option<usize>,
    child: &'a [u8],
    has_child: bool,
    at: Mark,
}

#[derive(Clone, Copy)]
struct Cx<'s, 'a> {
    seg: &'s Segment<'a>,
    at: Mark,
    id: &'a str,
    loop_id: Option<&'static str>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Header,
    Body,
    /// After an HL whose level is unknown: segments are checked against the dictionary only.
    Unknown,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Header,
    Hl,
    Name,
}

struct Walker<'a, 'l> {
    g: &'static Guide,
    tx: Transaction<'a>,
    t: Option<&'static TxGuide>,
    base: &'l Location,
    issues: Vec<Issue>,
    stage: Stage,
    header_cursor: usize,
    header_counts: Vec<u32>,
    hl: Option<Open>,
    name: Option<Open>,
    hl_counts: Vec<u32>,
    name_counts: Vec<u32>,
    /// Instances of each name loop of the current HL loop instance.
    name_instances: Vec<u32>,
    hls: Vec<HlInfo<'a>>,
    hl_ids: HashMap<&'a [u8], usize, BuildHasherDefault<KeyHasher>>,
    root_counts: Vec<u32>,
    /// hls.len() x loops: children of each HL by loop.
    child_counts: Vec<u32>,
    loop_seen: Vec<u32>,
    rejection_seen: bool,
    end: Option<Mark>,
    stop: bool,
}

impl<'a, 'l> Walker<'a, 'l> {
    fn new(g: &'static Guide, tx: Transaction<'a>, base: &'l Location) -> Self {
        Walker {
            g,
            tx,
            t: None,
            base,
            issues: vec![],
            stage: Stage::Header,
            header_cursor: 0,
            header_counts: vec![0; g.txs[0].header.len().max(g.txs[1].header.len())],
            hl: None,
            name: None,
            hl_counts: Vec::with_capacity(24),
            name_counts: Vec::with_capacity(12),
            name_instances: Vec::with_capacity(4),
            hls: Vec::with_capacity(8),
            hl_ids: HashMap::with_capacity_and_hasher(8, BuildHasherDefault::default()),
            root_counts: vec![],
            child_counts: Vec::with_capacity(64),
            loop_seen: vec![],
            rejection_seen: false,
            end: None,
            stop: false,
        }
    }

    fn tg(&self) -> &'static TxGuide {
        self.t.unwrap_or(&self.g.txs[0])
    }

    fn loc(&self, m: Mark, seg_id: &str, loop_id: Option<&str>) -> Location {
        Location {
            segment_index: Some(m.index),
            segment_position: Some(m.pos),
            segment_id: Some(seg_id.to_owned()),
            loop_id: loop_id.map(str::to_owned),
            byte_offset: Some(m.offset),
            ..self.base.clone()
        }
    }

    fn cx_loc(&self, cx: Cx, el: Option<usize>, comp: Option<usize>) -> Location {
        let mut l = self.loc(cx.at, cx.id, cx.loop_id);
        l.element = el;
        l.component = comp;
        l
    }

    fn emit(
        &mut self,
        sev: Severity,
        code: &'static str,
        loc: Location,
        value: Option<&[u8]>,
        ack: Option<AckCode>,
        msg: String,
    ) {
        let mut i = match sev {
            Severity::Error => Issue::error(code, loc, msg),
            Severity::Warning => Issue::warning(code, loc, msg),
        };
        if let Some(v) = value {
            i = i.value(v);
        }
        if let Some(a) = ack {
            i = i.ack(a);
        }
        self.issues.push(i);
    }

    // ----- segments -----

    fn segment(&mut self, seg: &Segment<'a>, pos: usize) {
        if self.stop {
            return;
        }
        let at = Mark {
            index: seg.index,
            pos,
            offset: seg.offset,
        };
        let key = seg_key(seg.id());
        let t = self.tg();
        if key == t.trailer_key {
            self.close_name();
            self.close_hl();
            self.end = Some(at);
            let s = &self.g.segments[self.g.segment_map[&key]];
            let cx = Cx {
                seg,
                at,
                id: seg.id_str(),
                loop_id: None,
            };
            self.check_segment(cx, &s.elements, &s.syntax, &s.checks);
            return;
        }
        self.end = Some(at);
        if key == self.g.hierarchy.key {
            if self.stage == Stage::Header {
                self.close_header(at);
            }
            self.open_hl(seg, at);
            return;
        }
        match self.stage {
            Stage::Header => {
                let Some(&j) = t.header_map.get(&key) else {
                    self.stray(seg, at, None);
                    return;
                };
                if j == 0 && pos == 1 {
                    // Not a 278 at all (ST01): say so once and stop.
                    let st01 = seg.element(1);
                    if t.header[0].elements[0]
                        .codes
                        .as_ref()
                        .is_some_and(|c| !st01.is_empty() && !c.contains(st01))
                    {
                        let loc = Location {
                            element: Some(1),
                            ..self.loc(at, seg.id_str(), None)
                        };
                        self.emit(
                            Severity::Error,
                            "not_a_278",
                            loc,
                            Some(st01),
                            Some(AckCode::Element("7")),
                            format!("the transaction set is a {}, not a 278", text(st01)),
                        );
                        self.stop = true;
                        return;
                    }
                }
                if self.t.is_none() && key == seg_key(b"BHT") {
                    // BHT02 says request or response (the guides' "bht02").
                    self.choose(seg.element(2));
                }
                match self.tg().header_map.get(&key) {
                    Some(&j) => self.place(Level::Header, j, seg, at),
                    None => self.stray(seg, at, None),
                }
            }
            Stage::Unknown => {
                let loop_id = None;
                match self.g.segment_map.get(&key) {
                    Some(&s) => {
                        let s = &self.g.segments[s];
                        let cx = Cx {
                            seg,
                            at,
                            id: seg.id_str(),
                            loop_id,
                        };
                        self.check_segment(cx, &s.elements, &s.syntax, &s.checks);
                    }
                    None => self.stray(seg, at, None),
                }
            }
            Stage::Body => self.body_segment(seg, at, key),
        }
    }

    fn choose(&mut self, bht02: &[u8]) {
        let found = self
            .g
            .txs
            .iter()
            .find(|t| t.bht02.iter().any(|c| **c == *bht02));
        self.t = Some(match found {
            Some(t) => t,
            None => {
                // Unknown purpose (reported on BHT02): a transaction with an HCR is a response.
                let hcr = seg_key(b"HCR");
                if self.tx.segments().any(|s| seg_key(s.id()) == hcr) {
                    &self.g.txs[1]
                } else {
                    &self.g.txs[0]
                }
            }
        });
    }

    fn close_header(&mut self, at: Mark) {
        if self.t.is_none() {
            self.choose(b"");
        }
        self.stage = Stage::Body;
        let t = self.tg();
        for (j, e) in t.header.iter().enumerate() {
            if e.usage == Usage::Required && self.header_counts[j] == 0 {
                let loc = self.loc(at, &e.segment, None);
                self.emit(
                    Severity::Error,
                    "required_segment_missing",
                    loc,
                    None,
                    Some(AckCode::Segment("3")),
                    format!(
                        "the required {} segment ({}) is missing before the first HL",
                        e.segment, e.name
                    ),
                );
            }
        }
    }

    fn body_segment(&mut self, seg: &Segment<'a>, at: Mark, key: u32) {
        let t = self.tg();
        let Some(hl) = self.hl else {
            self.stray(seg, at, None);
            return;
        };
        let hloop = &t.loops[hl.loop_ix];
        let trigger_key = hloop.name_loops.first().map(|&n| t.loops[n].entries[0].key);
        if let Some(name) = self.name {
            let nloop = &t.loops[name.loop_ix];
            if Some(key) == trigger_key {
                self.open_name(seg, at);
            } else if let Some(&j) = nloop.entry_map.get(&key) {
                self.place(Level::Name, j, seg, at);
            } else if let Some(&j) = hloop.entry_map.get(&key) {
                // A segment of the HL loop after its name loops.
                let e = &hloop.entries[j];
                let loc = self.loc(at, &e.segment, Some(&hloop.id));
                self.emit(
                    Severity::Error,
                    "segment_out_of_order",
                    loc,
                    None,
                    Some(AckCode::Segment("7")),
                    format!(
                        "{} belongs to loop {} ({}) before its name loops, but comes after loop {}",
                        e.segment, hloop.id, hloop.name, nloop.id
                    ),
                );
                self.count(Level::Hl, j, seg, at);
            } else {
                self.stray(seg, at, Some(&nloop.id));
            }
        } else if let Some(&j) = hloop.entry_map.get(&key) {
            self.place(Level::Hl, j, seg, at);
        } else if Some(key) == trigger_key {
            self.open_name(seg, at);
        } else {
            self.stray(seg, at, Some(&hloop.id));
        }
    }

    /// A segment with no place here: unexpected if the dictionary knows it, else unrecognized.
    fn stray(&mut self, seg: &Segment<'a>, at: Mark, loop_id: Option<&'static str>) {
        let key = seg_key(seg.id());
        let id = seg.id_str();
        let loc = self.loc(at, id, loop_id);
        match self.g.segment_map.get(&key) {
            Some(&s) => {
                let where_ = match loop_id {
                    Some(l) => format!("in loop {l}"),
                    None if self.stage == Stage::Header => {
                        "in the header (before the first HL)".to_owned()
                    }
                    None => "here".to_owned(),
                };
                self.emit(
                    Severity::Error,
                    "segment_unexpected",
                    loc,
                    None,
                    Some(AckCode::Segment("2")),
                    format!(
                        "{id} ({}) is not expected {where_} of a 278 {}",
                        self.g.segments[s].name,
                        self.purpose_word()
                    ),
                );
                let s = &self.g.segments[s];
                let cx = Cx {
                    seg,
                    at,
                    id,
                    loop_id,
                };
                self.check_segment(cx, &s.elements, &s.syntax, &s.checks);
            }
            None => {
                self.emit(
                    Severity::Error,
                    "segment_unrecognized",
                    loc,
                    Some(seg.id()),
                    Some(AckCode::Segment("1")),
                    format!("segment id {:?} is not a segment of the 278", id),
                );
            }
        }
    }

    fn purpose_word(&self) -> &'static str {
        match self.tg().purpose {
            Purpose::Request => "request",
            Purpose::Response => "response",
        }
    }

    fn level(&self, level: Level) -> (&'static [Entry], Option<&'static LoopDef>, usize) {
        let t = self.tg();
        match level {
            Level::Header => (&t.header, None, self.header_cursor),
            Level::Hl => {
                let o = self.hl.expect("an open HL loop");
                let l = &t.loops[o.loop_ix];
                (&l.entries, Some(l), o.cursor)
            }
            Level::Name => {
                let o = self.name.expect("an open name loop");
                let l = &t.loops[o.loop_ix];
                (&l.entries, Some(l), o.cursor)
            }
        }
    }

    /// Places segment `j` of the open loop at `level`: order, use count, elements.
    fn place(&mut self, level: Level, j: usize, seg: &Segment<'a>, at: Mark) {
        let (entries, lp, cursor) = self.level(level);
        let e = &entries[j];
        if j < cursor {
            let after = &entries[cursor].segment;
            let loc = self.loc(at, &e.segment, lp.map(|l| l.id.as_str()));
            self.emit(
                Severity::Error,
                "segment_out_of_order",
                loc,
                None,
                Some(AckCode::Segment("7")),
                format!(
                    "{} must come before {} in {}",
                    e.segment,
                    after,
                    lp.map_or("the header".to_owned(), |l| format!("loop {}", l.id))
                ),
            );
        } else {
            match level {
                Level::Header => self.header_cursor = j,
                Level::Hl => self.hl.as_mut().expect("open").cursor = j,
                Level::Name => self.name.as_mut().expect("open").cursor = j,
            }
        }
        self.count(level, j, seg, at);
    }

    /// Counts a use of entry `j` and checks its elements.
    fn count(&mut self, level: Level, j: usize, seg: &Segment<'a>, at: Mark) {
        let (entries, lp, _) = self.level(level);
        let e = &entries[j];
        let loop_id = lp.map(|l| l.id.as_str());
        let counts = match level {
            Level::Header => &mut self.header_counts,
            Level::Hl => &mut self.hl_counts,
            Level::Name => &mut self.name_counts,
        };
        counts[j] += 1;
        let n = counts[j];
        let exclusive_clash = lp.and_then(|l| {
            l.exclusive
                .iter()
                .find(|g| g.contains(&j))
                .and_then(|g| g.iter().find(|&&k| k != j && counts[k] > 0).copied())
        });
        if let Some(max) = e.max
            && n == max + 1
        {
            let loc = self.loc(at, &e.segment, loop_id);
            self.emit(
                e.max_severity,
                "segment_over_max",
                loc,
                None,
                Some(AckCode::Segment("5")),
                format!(
                    "{} occurs more than {max} time{} in {}{}",
                    e.segment,
                    if max == 1 { "" } else { "s" },
                    loop_id.map_or("the header".to_owned(), |l| format!("loop {l}")),
                    unconfirmed_note(e.max_severity)
                ),
            );
        }
        if let (Some(k), Some(l)) = (exclusive_clash, lp) {
            let loc = self.loc(at, &e.segment, loop_id);
            self.emit(
                Severity::Error,
                "segment_exclusive",
                loc,
                None,
                Some(AckCode::Segment("2")),
                format!(
                    "{} cannot be used with {} in the same loop {} (only one of them)",
                    e.segment, l.entries[k].segment, l.id
                ),
            );
        }
        if let Some(why) = &e.unconfirmed {
            let loc = self.loc(at, &e.segment, loop_id);
            self.emit(
                Severity::Warning,
                "segment_unconfirmed",
                loc,
                None,
                Some(AckCode::Segment("2")),
                why.clone(),
            );
        }
        if Some(e.key) == self.tg().rejection_key {
            self.rejection_seen = true;
        }
        let cx = Cx {
            seg,
            at,
            id: seg.id_str(),
            loop_id,
        };
        self.check_segment(cx, &e.elements, &self.g.segments[e.seg].syntax, &e.checks);
    }

    // ----- loops -----

    fn open_hl(&mut self, seg: &Segment<'a>, at: Mark) {
        self.close_hl();
        let t = self.tg();
        let h = &self.g.hierarchy;
        let vals = seg.split::<MAX_ELEMENTS>();
        let (id, parent, level, child) = (
            vals[h.id_el - 1],
            vals[h.parent_el - 1],
            vals[h.level_el - 1],
            vals[h.child_el - 1],
        );
        let loop_ix = t.hl03_map.get(level).copied();
        let me = self.hls.len();
        let nloops = t.loops.len();
        if self.loop_seen.len() != nloops {
            self.loop_seen = vec![0; nloops];
            self.root_counts = vec![0; nloops];
        }
        self.child_counts.extend(std::iter::repeat_n(0, nloops));
        let loop_id = loop_ix.map(|l| t.loops[l].id.as_str());
        // HL01: unique, and 1, 2, 3... in order.
        if !id.is_empty() {
            if let Some(&first) = self.hl_ids.get(id) {
                let loc = self.loc(at, &h.id, loop_id);
                let first_pos = self.hls[first].at.pos;
                self.emit(
                    Severity::Error,
                    "hl_id_duplicate",
                    Location {
                        element: Some(h.id_el),
                        ..loc
                    },
                    Some(id),
                    Some(AckCode::Element("7")),
                    format!(
                        "HL01 {} is already the id of the HL at position {first_pos}",
                        text(id)
                    ),
                );
            } else {
                self.hl_ids.insert(id, me);
                let expected = me + 1;
                if integer_digits(id).is_none() || text(id).parse::<usize>().ok() != Some(expected)
                {
                    let loc = self.loc(at, &h.id, loop_id);
                    self.emit(
                        Severity::Warning,
                        "hl_id_sequence",
                        Location { element: Some(h.id_el), ..loc },
                        Some(id),
                        None,
                        format!("HL01 should number the HLs 1, 2, 3... in order; this is HL number {expected}"),
                    );
                }
            }
        }
        self.hls.push(HlInfo {
            loop_ix,
            child,
            has_child: false,
            at,
        });
        let Some(l) = loop_ix else {
            // The level code is reported by the HL03 code list; without a loop, what follows is
            // checked against the dictionary only.
            self.stage = Stage::Unknown;
            let s = &self.g.segments[self.g.segment_map[&h.key]];
            let cx = Cx {
                seg,
                at,
                id: seg.id_str(),
                loop_id: None,
            };
            self.check_segment(cx, &s.elements, &s.syntax, &s.checks);
            if !parent.is_empty()
                && let Some(&p) = self.hl_ids.get(parent)
            {
                self.hls[p].has_child = true;
            }
            return;
        };
        self.stage = Stage::Body;
        let lp = &t.loops[l];
        self.loop_seen[l] += 1;
        // The parent: none for a top loop; otherwise an earlier HL of an allowed level.
        // (instances so far, the parent HL's index) for the loop's maximum.
        let mut over: Option<(u32, Option<usize>)> = None;
        if lp.parents.is_empty() {
            self.root_counts[l] += 1;
            over = Some((self.root_counts[l], None));
        } else if !parent.is_empty() {
            match self.hl_ids.get(parent).copied().filter(|&p| p != me) {
                None => {
                    let loc = self.loc(at, &h.id, loop_id);
                    self.emit(
                        Severity::Error,
                        "hl_parent_missing",
                        Location {
                            element: Some(h.parent_el),
                            ..loc
                        },
                        Some(parent),
                        Some(AckCode::Segment("2")),
                        format!(
                            "HL02 {} points to no earlier HL: loop {} has no parent",
                            text(parent),
                            lp.id
                        ),
                    );
                }
                Some(p) => {
                    self.hls[p].has_child = true;
                    match self.hls[p].loop_ix {
                        Some(pl) if lp.parents.contains(&pl) => {
                            self.child_counts[p * nloops + l] += 1;
                            over = Some((self.child_counts[p * nloops + l], Some(p)));
                        }
                        Some(pl) => {
                            let allowed: Vec<String> = lp
                                .parents
                                .iter()
                                .map(|&x| {
                                    format!(
                                        "{} ({})",
                                        t.loops[x].id,
                                        t.loops[x].hl03.as_deref().unwrap_or("")
                                    )
                                })
                                .collect();
                            let loc = self.loc(at, &h.id, loop_id);
                            self.emit(
                                Severity::Error,
                                "hl_parent_level",
                                Location {
                                    element: Some(h.parent_el),
                                    ..loc
                                },
                                Some(parent),
                                Some(AckCode::Segment("2")),
                                format!(
                                    "a {} ({}) must be under {}, but HL02 {} is a {} ({})",
                                    lp.id,
                                    lp.hl03.as_deref().unwrap_or(""),
                                    allowed.join(" or "),
                                    text(parent),
                                    t.loops[pl].id,
                                    t.loops[pl].hl03.as_deref().unwrap_or("")
                                ),
                            );
                        }
                        None => {} // the parent's own level is already reported
                    }
                }
            }
        }
        if let (Some((n, under)), Some(max)) = (over, lp.max)
            && n == max + 1
        {
            let where_ = match under {
                Some(_) => format!("under HL {}", text(parent)),
                None => "in the transaction".to_owned(),
            };
            let loc = self.loc(at, &h.id, loop_id);
            self.emit(
                lp.max_severity,
                "loop_over_max",
                loc,
                None,
                Some(AckCode::Segment("4")),
                format!(
                    "loop {} ({}) occurs more than {max} time{} {where_}{}",
                    lp.id,
                    lp.name,
                    if max == 1 { "" } else { "s" },
                    unconfirmed_note(lp.max_severity)
                ),
            );
        }
        self.hl = Some(Open {
            loop_ix: l,
            cursor: 0,
            start: at,
        });
        self.hl_counts.clear();
        self.hl_counts.resize(lp.entries.len(), 0);
        self.name_instances.clear();
        self.name_instances.resize(lp.name_loops.len(), 0);
        self.place(Level::Hl, 0, seg, at);
    }

    fn open_name(&mut self, seg: &Segment<'a>, at: Mark) {
        self.close_name();
        let t = self.tg();
        let hl = self.hl.expect("an open HL loop");
        let hloop = &t.loops[hl.loop_ix];
        let first = &t.loops[hloop.name_loops[0]];
        let trig = seg.element(first.trigger.unwrap_or(1));
        let k = hloop
            .name_loops
            .iter()
            .position(|&n| {
                let nl = &t.loops[n];
                nl.entries[0].elements[nl.trigger.unwrap_or(1) - 1]
                    .codes
                    .as_ref()
                    .is_some_and(|c| c.contains(trig))
            })
            .unwrap_or(0);
        let n = hloop.name_loops[k];
        let nl = &t.loops[n];
        self.name_instances[k] += 1;
        if let Some(max) = nl.max
            && self.name_instances[k] == max + 1
        {
            let loc = self.loc(at, &nl.entries[0].segment, Some(&nl.id));
            self.emit(
                nl.max_severity,
                "loop_over_max",
                loc,
                None,
                Some(AckCode::Segment("4")),
                format!(
                    "loop {} ({}) occurs more than {max} time{} in loop {}{}",
                    nl.id,
                    nl.name,
                    if max == 1 { "" } else { "s" },
                    hloop.id,
                    unconfirmed_note(nl.max_severity)
                ),
            );
        }
        self.name = Some(Open {
            loop_ix: n,
            cursor: 0,
            start: at,
        });
        self.name_counts.clear();
        self.name_counts.resize(nl.entries.len(), 0);
        self.place(Level::Name, 0, seg, at);
    }

    fn close_name(&mut self) {
        let Some(o) = self.name.take() else { return };
        let l = &self.tg().loops[o.loop_ix];
        for (j, e) in l.entries.iter().enumerate() {
            if e.usage == Usage::Required && self.name_counts[j] == 0 {
                let loc = self.loc(o.start, &e.segment, Some(&l.id));
                self.emit(
                    Severity::Error,
                    "required_segment_missing",
                    loc,
                    None,
                    Some(AckCode::Segment("3")),
                    format!(
                        "loop {} ({}) starting at position {} has no {} ({})",
                        l.id, l.name, o.start.pos, e.segment, e.name
                    ),
                );
            }
        }
    }

    fn close_hl(&mut self) {
        self.close_name();
        let Some(o) = self.hl.take() else { return };
        let t = self.tg();
        let l = &t.loops[o.loop_ix];
        for (j, e) in l.entries.iter().enumerate() {
            if e.usage == Usage::Required && self.hl_counts[j] == 0 {
                let loc = self.loc(o.start, &e.segment, Some(&l.id));
                self.emit(
                    Severity::Error,
                    "required_segment_missing",
                    loc,
                    None,
                    Some(AckCode::Segment("3")),
                    format!(
                        "loop {} ({}) starting at position {} has no {} ({})",
                        l.id, l.name, o.start.pos, e.segment, e.name
                    ),
                );
            }
        }
        for oo in &l.one_of {
            if oo.entries.iter().all(|&j| self.hl_counts[j] == 0) {
                let names: Vec<&str> = oo
                    .entries
                    .iter()
                    .map(|&j| l.entries[j].segment.as_str())
                    .collect();
                let waived = oo.waivable && self.rejection_seen;
                let sev = if waived {
                    Severity::Warning
                } else {
                    oo.severity
                };
                let first = &l.entries[oo.entries[0]];
                let loc = self.loc(o.start, &first.segment, Some(&l.id));
                let mut msg = format!(
                    "loop {} ({}) starting at position {} needs one of {}",
                    l.id,
                    l.name,
                    o.start.pos,
                    names.join(" or ")
                );
                if waived {
                    msg.push_str("; a rejection (AAA) earlier in the transaction may explain it");
                }
                if let Some(n) = &oo.note {
                    let _ = write!(msg, " ({n})");
                }
                self.emit(
                    sev,
                    "required_segment_missing",
                    loc,
                    None,
                    Some(AckCode::Segment("3")),
                    msg,
                );
            }
        }
        for (k, &n) in l.name_loops.iter().enumerate() {
            let nl = &t.loops[n];
            if nl.usage == Usage::Required && self.name_instances[k] == 0 {
                let loc = self.loc(o.start, &nl.entries[0].segment, Some(&nl.id));
                self.emit(
                    Severity::Error,
                    "required_segment_missing",
                    loc,
                    None,
                    Some(AckCode::Segment("3")),
                    format!(
                        "loop {} ({}) starting at position {} has no loop {} ({}), which starts with {}",
                        l.id, l.name, o.start.pos, nl.id, nl.name, nl.entries[0].segment
                    ),
                );
            }
        }
    }

    fn finish(&mut self) {
        if self.stop {
            return;
        }
        self.close_hl();
        let end = self.end.unwrap_or(Mark {
            index: self.tx.first_index,
            pos: 1,
            offset: self.tx.offset,
        });
        if self.stage == Stage::Header {
            self.close_header(end);
        }
        let t = self.tg();
        let h = &self.g.hierarchy;
        for (ix, l) in t.loops.iter().enumerate() {
            if l.hl03.is_some()
                && l.usage == Usage::Required
                && self.loop_seen.get(ix).copied().unwrap_or(0) == 0
            {
                let waived = l.waivable && self.rejection_seen;
                let loc = self.loc(end, &h.id, Some(&l.id));
                let mut msg = format!(
                    "the transaction has no loop {} ({}, HL03 {})",
                    l.id,
                    l.name,
                    l.hl03.as_deref().unwrap_or("")
                );
                if waived {
                    msg.push_str("; a rejection (AAA) earlier in the response may explain it");
                }
                self.emit(
                    if waived {
                        Severity::Warning
                    } else {
                        Severity::Error
                    },
                    "required_segment_missing",
                    loc,
                    None,
                    Some(AckCode::Segment("3")),
                    msg,
                );
            }
        }
        // HL04 says whether the HL has children.
        let hls = std::mem::take(&mut self.hls);
        for hi in &hls {
            let wrong = match hi.child {
                b"1" => !hi.has_child,
                b"0" => hi.has_child,
                _ => false,
            };
            if wrong {
                let loop_id = hi.loop_ix.map(|l| t.loops[l].id.as_str());
                let loc = self.loc(hi.at, &h.id, loop_id);
                let msg = if hi.has_child {
                    "HL04 is 0 (no children) but later HLs name this HL as their parent".to_owned()
                } else {
                    "HL04 is 1 (has children) but no HL names this HL as its parent".to_owned()
                };
                self.emit(
                    Severity::Error,
                    "hl_child_flag",
                    Location {
                        element: Some(h.child_el),
                        ..loc
                    },
                    Some(hi.child),
                    Some(AckCode::Element("7")),
                    msg,
                );
            }
        }
        self.hls = hls;
    }

    // ----- elements -----

    fn check_segment(
        &mut self,
        cx: Cx<'_, 'a>,
        defs: &'static [ElementDef],
        syntax: &'static [SyntaxRule],
        checks: &'static [Check],
    ) {
        let seg = cx.seg;
        let mut vals: [&'a [u8]; MAX_ELEMENTS] = [&[]; MAX_ELEMENTS];
        let mut count = 0;
        for (slot, e) in vals.iter_mut().zip(seg.elements()) {
            *slot = e;
            count += 1;
        }
        let n = defs.len();
        if (count > n || count == MAX_ELEMENTS)
            && let Some((i, v)) = seg
                .elements()
                .enumerate()
                .skip(n)
                .find(|(_, v)| !v.is_empty())
        {
            let loc = self.cx_loc(cx, Some(i + 1), None);
            self.emit(
                Severity::Error,
                "too_many_elements",
                loc,
                Some(v),
                Some(AckCode::Element("3")),
                format!(
                    "{} has {n} elements, but element {} holds data",
                    cx.id,
                    i + 1
                ),
            );
        }
        let d = seg.delimiters();
        let mut flagged: u64 = 0;
        for (i, def) in defs.iter().enumerate() {
            let v = vals[i];
            let el = i + 1;
            if v.is_empty() {
                if def.usage == Usage::Required {
                    flagged |= 1 << i;
                    let loc = self.cx_loc(cx, Some(el), None);
                    self.emit(
                        def.usage_severity,
                        "element_missing",
                        loc,
                        None,
                        Some(AckCode::Element("1")),
                        format!(
                            "{} ({}) is required{}",
                            label(cx.id, el, None),
                            def.name,
                            unconfirmed_note(def.usage_severity)
                        ),
                    );
                }
                continue;
            }
            if def.usage == Usage::NotUsed {
                flagged |= 1 << i;
                let loc = self.cx_loc(cx, Some(el), None);
                self.emit(
                    def.usage_severity,
                    "element_not_used",
                    loc,
                    Some(v),
                    Some(AckCode::Element("I10")),
                    format!(
                        "{} ({}) is not used in {}{}",
                        label(cx.id, el, None),
                        def.name,
                        cx.loop_id
                            .map_or("the 278".to_owned(), |l| format!("loop {l}")),
                        unconfirmed_note(def.usage_severity)
                    ),
                );
                continue;
            }
            if d.repetition.is_some_and(|r| v.contains(&r)) {
                let loc = self.cx_loc(cx, Some(el), None);
                self.emit(
                    Severity::Error,
                    "too_many_repetitions",
                    loc,
                    Some(v),
                    Some(AckCode::Element("12")),
                    format!(
                        "{} ({}) does not repeat, but holds the repetition separator",
                        label(cx.id, el, None),
                        def.name
                    ),
                );
                continue;
            }
            if def.data_type == DataType::Composite {
                self.check_composite(cx, el, def, v);
            } else if v.contains(&d.component) {
                let loc = self.cx_loc(cx, Some(el), None);
                self.emit(
                    Severity::Error,
                    "too_many_components",
                    loc,
                    Some(v),
                    Some(AckCode::Element("13")),
                    format!(
                        "{} ({}) is a simple element, but holds the component separator",
                        label(cx.id, el, None),
                        def.name
                    ),
                );
            } else {
                self.check_value(cx, el, None, def, v);
            }
        }
        let present = |e: usize| !vals[e - 1].is_empty();
        for r in syntax {
            let els = &r.elements;
            let missing = |this: &mut Self, e: usize, msg: String, flagged: &mut u64| {
                if *flagged & (1 << (e - 1)) == 0 {
                    *flagged |= 1 << (e - 1);
                    let loc = this.cx_loc(cx, Some(e), None);
                    this.emit(
                        Severity::Error,
                        "element_conditional_missing",
                        loc,
                        None,
                        Some(AckCode::Element("2")),
                        msg,
                    );
                }
            };
            let names = || {
                els.iter()
                    .map(|&e| label(cx.id, e, None))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            match r.kind {
                SyntaxKind::Paired if els.iter().any(|&e| present(e)) => {
                    for &e in els.iter().filter(|&&e| !present(e)) {
                        let msg = format!(
                            "{} is required because {} go together (syntax rule {})",
                            label(cx.id, e, None),
                            names(),
                            r.text
                        );
                        missing(self, e, msg, &mut flagged);
                    }
                }
                SyntaxKind::Required if !els.iter().any(|&e| present(e)) => {
                    let msg = format!(
                        "at least one of {} is required (syntax rule {})",
                        names(),
                        r.text
                    );
                    missing(self, els[0], msg, &mut flagged);
                }
                SyntaxKind::Conditional if present(els[0]) => {
                    for &e in els[1..].iter().filter(|&&e| !present(e)) {
                        let msg = format!(
                            "{} is required when {} is present (syntax rule {})",
                            label(cx.id, e, None),
                            label(cx.id, els[0], None),
                            r.text
                        );
                        missing(self, e, msg, &mut flagged);
                    }
                }
                SyntaxKind::ListConditional
                    if present(els[0]) && !els[1..].iter().any(|&e| present(e)) =>
                {
                    let msg = format!(
                        "{} needs at least one of the others of {} (syntax rule {})",
                        label(cx.id, els[0], None),
                        names(),
                        r.text
                    );
                    missing(self, els[1], msg, &mut flagged);
                }
                SyntaxKind::Exclusion => {
                    let mut there = els.iter().filter(|&&e| present(e));
                    if let (Some(&a), Some(&b)) = (there.next(), there.next()) {
                        let loc = self.cx_loc(cx, Some(b), None);
                        self.emit(
                            Severity::Error,
                            "exclusion_violated",
                            loc,
                            Some(vals[b - 1]),
                            Some(AckCode::Element("10")),
                            format!(
                                "only one of {} may be present, but {} and {} are (syntax rule {})",
                                names(),
                                label(cx.id, a, None),
                                label(cx.id, b, None),
                                r.text
                            ),
                        );
                    }
                }
                _ => {}
            }
        }
        for c in checks {
            self.run_check(cx, c, &vals, &mut flagged);
        }
    }

    fn run_check(
        &mut self,
        cx: Cx<'_, 'a>,
        c: &'static Check,
        vals: &[&'a [u8]; MAX_ELEMENTS],
        flagged: &mut u64,
    ) {
        let sep = cx.seg.delimiters().component;
        for &e in &c.elements {
            let v = vals[e - 1];
            if let Some(w) = &c.when {
                let wv = match w.at {
                    Ref::Element(x) => vals[x - 1],
                    Ref::Component(k) => component(v, sep, k),
                };
                if !w.values.iter().any(|x| **x == *wv) {
                    continue;
                }
            }
            let tv = match c.component {
                Some(k) => component(v, sep, k),
                None => v,
            };
            let when_text = || match &c.when {
                Some(w) => {
                    let (l, wv) = match w.at {
                        Ref::Element(x) => (label(cx.id, x, None), vals[x - 1]),
                        Ref::Component(k) => (label(cx.id, e, Some(k)), component(v, sep, k)),
                    };
                    format!(" when {l} is {}", text(wv))
                }
                None => String::new(),
            };
            let note = || {
                c.note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            };
            let lbl = || label(cx.id, e, c.component);
            match c.kind {
                CheckKind::RequiredIf => {
                    if tv.is_empty() && (c.component.is_some() || *flagged & (1 << (e - 1)) == 0) {
                        *flagged |= 1 << (e - 1);
                        let loc = self.cx_loc(cx, Some(e), c.component);
                        let msg = format!(
                            "{} is required{}{}{}",
                            lbl(),
                            when_text(),
                            note(),
                            unconfirmed_note(c.severity)
                        );
                        self.emit(
                            c.severity,
                            "element_conditional_missing",
                            loc,
                            None,
                            Some(AckCode::Element("2")),
                            msg,
                        );
                    }
                }
                CheckKind::NotUsedIf => {
                    if !tv.is_empty() {
                        let loc = self.cx_loc(cx, Some(e), c.component);
                        let msg = format!(
                            "{} is not used{}{}{}",
                            lbl(),
                            when_text(),
                            note(),
                            unconfirmed_note(c.severity)
                        );
                        self.emit(
                            c.severity,
                            "element_not_used_conditional",
                            loc,
                            Some(tv),
                            Some(AckCode::Element("I13")),
                            msg,
                        );
                    }
                }
                CheckKind::Npi => {
                    if !tv.is_empty() && !npi_ok(tv) {
                        // The reason, from the domain's check (allocates, but only for a bad NPI).
                        let why = std::str::from_utf8(tv)
                            .ok()
                            .and_then(|s| npi_check(s).err())
                            .unwrap_or_else(|| "it is not text".into());
                        let loc = self.cx_loc(cx, Some(e), c.component);
                        let msg = format!(
                            "{} is not a valid NPI{}: {why}{}",
                            lbl(),
                            when_text(),
                            note()
                        );
                        self.emit(
                            c.severity,
                            "pattern_mismatch",
                            loc,
                            Some(tv),
                            Some(AckCode::Element("I12")),
                            msg,
                        );
                    }
                }
                CheckKind::Icd10Cm | CheckKind::Icd9Cm => {
                    let (ok, what) = match c.kind {
                        CheckKind::Icd10Cm => (
                            icd10_x12(tv),
                            "an ICD-10-CM code as X12 carries it (no decimal point)",
                        ),
                        _ => (
                            icd9_x12(tv),
                            "an ICD-9-CM diagnosis code as X12 carries it (no decimal point)",
                        ),
                    };
                    if !tv.is_empty() && !ok {
                        let loc = self.cx_loc(cx, Some(e), c.component);
                        let msg = format!(
                            "{} {:?} is not {what}{}{}",
                            lbl(),
                            text(tv),
                            when_text(),
                            unconfirmed_note(c.severity)
                        );
                        self.emit(
                            c.severity,
                            "pattern_mismatch",
                            loc,
                            Some(tv),
                            Some(AckCode::Element("I12")),
                            msg,
                        );
                    }
                }
                CheckKind::DatePeriod(f) => {
                    if tv.is_empty() {
                        continue;
                    }
                    let (fv, flabel) = match f {
                        Ref::Element(x) => (vals[x - 1], (x, None)),
                        Ref::Component(k) => (component(v, sep, k), (e, Some(k))),
                    };
                    match period(fv, tv) {
                        Period::Ok | Period::Unknown => {}
                        Period::Implausible => {
                            let loc = self.cx_loc(cx, Some(e), c.component);
                            let msg =
                                format!("{} {:?} has a year outside 1800-2999", lbl(), text(tv));
                            self.emit(
                                Severity::Warning,
                                "date_implausible",
                                loc,
                                Some(tv),
                                None,
                                msg,
                            );
                        }
                        Period::Invalid(why) => {
                            let loc = self.cx_loc(cx, Some(e), c.component);
                            let msg = format!(
                                "{} {:?} {why} (format {} = {})",
                                lbl(),
                                text(tv),
                                label(cx.id, flabel.0, flabel.1),
                                text(fv)
                            );
                            self.emit(
                                c.severity,
                                "invalid_date",
                                loc,
                                Some(tv),
                                Some(AckCode::Element("8")),
                                msg,
                            );
                        }
                    }
                }
            }
        }
    }

    fn check_composite(
        &mut self,
        cx: Cx<'_, 'a>,
        el: usize,
        def: &'static ElementDef,
        v: &'a [u8],
    ) {
        let sep = cx.seg.delimiters().component;
        let mut count = 0;
        for (k, cv) in v.split(|&b| b == sep).enumerate() {
            count = k + 1;
            let comp = k + 1;
            match def.components.get(k) {
                None => {
                    if !cv.is_empty() {
                        let loc = self.cx_loc(cx, Some(el), Some(comp));
                        self.emit(
                            Severity::Error,
                            "too_many_components",
                            loc,
                            Some(v),
                            Some(AckCode::Element("13")),
                            format!(
                                "{} ({}) has {} components, but component {comp} holds data",
                                label(cx.id, el, None),
                                def.name,
                                def.components.len()
                            ),
                        );
                        break;
                    }
                }
                Some(cd) => {
                    if cv.is_empty() {
                        if cd.usage == Usage::Required {
                            let loc = self.cx_loc(cx, Some(el), Some(comp));
                            self.emit(
                                cd.usage_severity,
                                "element_missing",
                                loc,
                                None,
                                Some(AckCode::Element("1")),
                                format!(
                                    "{} ({}) is required in {}{}",
                                    label(cx.id, el, Some(comp)),
                                    cd.name,
                                    def.name,
                                    unconfirmed_note(cd.usage_severity)
                                ),
                            );
                        }
                    } else if cd.usage == Usage::NotUsed {
                        let loc = self.cx_loc(cx, Some(el), Some(comp));
                        self.emit(
                            cd.usage_severity,
                            "element_not_used",
                            loc,
                            Some(cv),
                            Some(AckCode::Element("I10")),
                            format!(
                                "{} ({}) is not used{}",
                                label(cx.id, el, Some(comp)),
                                cd.name,
                                unconfirmed_note(cd.usage_severity)
                            ),
                        );
                    } else {
                        self.check_value(cx, el, Some(comp), cd, cv);
                    }
                }
            }
        }
        for (k, cd) in def.components.iter().enumerate().skip(count) {
            if cd.usage == Usage::Required {
                let loc = self.cx_loc(cx, Some(el), Some(k + 1));
                self.emit(
                    cd.usage_severity,
                    "element_missing",
                    loc,
                    None,
                    Some(AckCode::Element("1")),
                    format!(
                        "{} ({}) is required in {}",
                        label(cx.id, el, Some(k + 1)),
                        cd.name,
                        def.name
                    ),
                );
            }
        }
    }

    fn check_value(
        &mut self,
        cx: Cx<'_, 'a>,
        el: usize,
        comp: Option<usize>,
        d: &'static ElementDef,
        v: &'a [u8],
    ) {
        let lbl = || label(cx.id, el, comp);
        let mut non_ascii = false;
        for &b in v {
            if b < 0x20 || b == 0x7f {
                let loc = self.cx_loc(cx, Some(el), comp);
                self.emit(
                    Severity::Error,
                    "invalid_character",
                    loc,
                    Some(v),
                    Some(AckCode::Element("6")),
                    format!(
                        "{} ({}) holds the control character 0x{b:02X}",
                        lbl(),
                        d.name
                    ),
                );
                return;
            }
            non_ascii |= b >= 0x80;
        }
        if non_ascii {
            let loc = self.cx_loc(cx, Some(el), comp);
            self.emit(
                Severity::Warning,
                "invalid_character",
                loc,
                Some(v),
                Some(AckCode::Element("6")),
                format!(
                    "{} ({}) holds bytes outside ASCII, which the X12 character sets may not allow",
                    lbl(),
                    d.name
                ),
            );
        }
        if let Some(cl) = &d.codes {
            match cl.lookup(v) {
                CodeMatch::Listed => {}
                CodeMatch::Unconfirmed => {
                    let loc = self.cx_loc(cx, Some(el), comp);
                    let mut msg = format!(
                        "{} ({}) {:?} is accepted but unconfirmed{}; confirmed codes: {}",
                        lbl(),
                        d.name,
                        text(v),
                        cx.loop_id
                            .map(|l| format!(" in loop {l}"))
                            .unwrap_or_default(),
                        cl.describe()
                    );
                    if let Some(n) = &cl.note {
                        let _ = write!(msg, " ({n})");
                    }
                    self.emit(
                        Severity::Warning,
                        "code_unconfirmed",
                        loc,
                        Some(v),
                        Some(AckCode::Element("7")),
                        msg,
                    );
                }
                CodeMatch::Absent => {
                    let loc = self.cx_loc(cx, Some(el), comp);
                    let mut msg = format!(
                        "{} ({}) {:?} is not one of its codes: {}",
                        lbl(),
                        d.name,
                        text(v),
                        cl.describe()
                    );
                    if cl.severity == Severity::Warning {
                        msg.push_str(" (this code list is unconfirmed, reported as a warning)");
                    }
                    self.emit(
                        cl.severity,
                        "invalid_code",
                        loc,
                        Some(v),
                        Some(AckCode::Element("7")),
                        msg,
                    );
                }
            }
            return;
        }
        let len = match d.data_type {
            DataType::Date => {
                match date8(v) {
                    None => {
                        let loc = self.cx_loc(cx, Some(el), comp);
                        self.emit(
                            Severity::Error,
                            "invalid_date",
                            loc,
                            Some(v),
                            Some(AckCode::Element("8")),
                            format!(
                                "{} ({}) {:?} is not a CCYYMMDD calendar date",
                                lbl(),
                                d.name,
                                text(v)
                            ),
                        );
                    }
                    Some(y) if !plausible(y) => {
                        let loc = self.cx_loc(cx, Some(el), comp);
                        self.emit(
                            Severity::Warning,
                            "date_implausible",
                            loc,
                            Some(v),
                            None,
                            format!("{} {:?} has a year outside 1800-2999", lbl(), text(v)),
                        );
                    }
                    Some(_) => {}
                }
                return;
            }
            DataType::Time => {
                if !time_ok(v) {
                    let loc = self.cx_loc(cx, Some(el), comp);
                    self.emit(
                        Severity::Error,
                        "invalid_time",
                        loc,
                        Some(v),
                        Some(AckCode::Element("9")),
                        format!(
                            "{} ({}) {:?} is not an HHMM[SS[D[D]]] time",
                            lbl(),
                            d.name,
                            text(v)
                        ),
                    );
                    return;
                }
                v.len()
            }
            DataType::Integer | DataType::Decimal => {
                let digits = if d.data_type == DataType::Integer {
                    integer_digits(v)
                } else {
                    decimal_digits(v)
                };
                match digits {
                    Some(n) => n,
                    None => {
                        let loc = self.cx_loc(cx, Some(el), comp);
                        let kind = if d.data_type == DataType::Integer {
                            "an integer (N0)"
                        } else {
                            "a decimal number (R)"
                        };
                        self.emit(
                            Severity::Error,
                            "invalid_character",
                            loc,
                            Some(v),
                            Some(AckCode::Element("6")),
                            format!("{} ({}) {:?} is not {kind}", lbl(), d.name, text(v)),
                        );
                        return;
                    }
                }
            }
            _ => {
                if non_ascii {
                    String::from_utf8_lossy(v).chars().count()
                } else {
                    v.len()
                }
            }
        };
        if len < d.min || len > d.max {
            let (code, ack, word) = if len < d.min {
                ("element_too_short", "4", "short")
            } else {
                ("element_too_long", "5", "long")
            };
            let loc = self.cx_loc(cx, Some(el), comp);
            self.emit(
                Severity::Error,
                code,
                loc,
                Some(v),
                Some(AckCode::Element(ack)),
                format!(
                    "{} ({}) is too {word}: {len} characters, {}..{} allowed",
                    lbl(),
                    d.name,
                    d.min,
                    d.max
                ),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points

/// Validates one 278 transaction set (ST through SE) against the guide.
///
/// `location` is where the transaction set is (interchange, group, transaction, control number:
/// the envelope tracker's `TransactionHeader::location`); each issue adds the segment (index in
/// the input, position in the set with ST = 1, id, loop), element, component and offending value.
/// Envelope counts (SE01, control numbers) are the envelope tracker's business, not this one's.
///
/// A set whose ST01 is not 278 gets that one issue and nothing more.
pub fn validate_278(tx: &Transaction, location: &Location) -> Vec<Issue> {
    let mut w = Walker::new(guide(), *tx, location);
    for (i, seg) in tx.segments().enumerate() {
        w.segment(&seg, i + 1);
        if w.stop {
            break;
        }
    }
    w.finish();
    w.issues
}

/// Checks what the 278 needs of its functional group header: GS01 = HI and GS08 = 005010X217
/// (and readable GS04 date and GS05 time). `location` is the GS's location.
pub fn validate_group_header(gs: &GroupHeader, location: &Location) -> Vec<Issue> {
    let mut out = vec![];
    let loc = |el: usize| Location {
        segment_id: Some("GS".into()),
        element: Some(el),
        ..location.clone()
    };
    if gs.functional_id != "HI" {
        out.push(
            Issue::error(
                "gs_functional_id",
                loc(1),
                format!(
                    "GS01 must be HI (health care services review) for a 278, not {:?}",
                    gs.functional_id
                ),
            )
            .value(&gs.functional_id)
            .ack(AckCode::Group("1")),
        );
    }
    if gs.version != guide().id {
        out.push(
            Issue::error(
                "gs_version",
                loc(8),
                format!(
                    "GS08 must be {} for this guide, not {:?}",
                    guide().id,
                    gs.version
                ),
            )
            .value(&gs.version)
            .ack(AckCode::Group("2")),
        );
    }
    if date8(gs.date.as_bytes()).is_none() {
        out.push(
            Issue::error("gs_date", loc(4), "GS04 is not a CCYYMMDD calendar date").value(&gs.date),
        );
    }
    if !time_ok(gs.time.as_bytes()) {
        out.push(
            Issue::error("gs_time", loc(5), "GS05 is not an HHMM[SS[D[D]]] time").value(&gs.time),
        );
    }
    out
}

/// Whether issues reject a transaction.
///
/// - [`Mode::Strict`] rejects on any [`Severity::Error`].
/// - [`Mode::Lenient`] rejects only on errors that leave the content unreadable, that is an
///   error whose code is one of
///   - `not_a_278` (ST01 is not 278),
///   - `required_segment_missing` (IK304 3: a required segment or loop is absent, such as the
///     BHT, an HL level, the NM1 of a required name loop, the UM of a 2000E, or both the HCR and
///     the AAA of a response's 2000E),
///   - `hl_parent_missing`, `hl_parent_level` and `hl_id_duplicate` (the hierarchy cannot be
///     resolved, so what belongs to which patient and event is unknown),
///
///   or an element-level error (IK403: missing, bad code, bad length, bad character, bad date or
///   time, pattern) in an element the guide marks `key`: ST01, ST03, BHT01, BHT02, HL01-HL03,
///   UM01, UM02, HCR01, NM101, TRN01, TRN02, AAA01, AAA03, and NM108/NM109 of 2010A, 2010B and
///   2010C (who the UMO, the requester and the member are).
///
///   Everything else (unknown or misplaced segments, counts over their maximum, bad codes or
///   dates in other elements, element syntax rules) is reported and does not reject. Warnings
///   never reject. Issues of other layers (envelope counts, ISA layout) are not rejecting here;
///   a reader failure that stops reading is an `X12Error` and is the caller's to handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Strict,
    Lenient,
}

/// Issue codes that always reject in lenient mode: the content could not be read, mapped or
/// placed in the hierarchy (the names are shared with the reader, the envelope and the codec).
pub const LENIENT_REJECT_CODES: [&str; 16] = [
    "not_a_278",
    "required_segment_missing",
    "hl_parent_missing",
    "hl_parent_level",
    "hl_id_duplicate",
    "isa_missing",
    "isa_truncated",
    "isa_element_separator",
    "isa_component_separator",
    "isa_segment_terminator",
    "isa_repetition_separator",
    "unit_too_large",
    "io",
    "st_missing",
    "segment_unterminated",
    "no_decision",
];

impl Mode {
    /// Whether this issue alone rejects the transaction.
    pub fn rejects_issue(self, issue: &Issue) -> bool {
        if !issue.is_error() {
            return false;
        }
        match self {
            Mode::Strict => true,
            Mode::Lenient => {
                if LENIENT_REJECT_CODES.contains(&issue.code) {
                    return true;
                }
                let l = &issue.location;
                match (issue.ack, &l.segment_id, l.element) {
                    (Some(AckCode::Element(_)), Some(seg), Some(el)) => {
                        guide().is_key(l.loop_id.as_deref(), seg, el)
                    }
                    _ => false,
                }
            }
        }
    }
    /// Whether these issues reject the transaction.
    pub fn rejects(self, issues: &[Issue]) -> bool {
        issues.iter().any(|i| self.rejects_issue(i))
    }
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x12::syntax::{SliceReader, Unit};

    const ISA: &str = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*T*:~";

    /// Wraps segments (without ST/SE) in an envelope and validates the one transaction set.
    fn run(body: &str) -> Vec<Issue> {
        run_st("278*0001*005010X217", body)
    }

    fn run_st(st: &str, body: &str) -> Vec<Issue> {
        let n = body.matches('~').count() + 2;
        let data = format!(
            "{ISA}GS*HI*S*R*20240101*1200*1*X*005010X217~ST*{st}~{body}SE*{n}*0001~GE*1*1~IEA*1*000000001~"
        );
        let base = Location {
            interchange: Some(1),
            group: Some(1),
            transaction: Some(1),
            control_number: Some("0001".into()),
            ..Location::default()
        };
        let mut out = None;
        for u in SliceReader::new(data.as_bytes()) {
            if let Unit::Transaction(tx) = u.unwrap() {
                out = Some(validate_278(&tx, &base));
            }
        }
        out.expect("a transaction set")
    }

    fn errors(issues: &[Issue]) -> Vec<&Issue> {
        issues.iter().filter(|i| i.is_error()).collect()
    }

    /// (code, position, element) of each issue of a severity.
    fn brief(issues: &[Issue], sev: Severity) -> Vec<(&'static str, usize, Option<usize>)> {
        issues
            .iter()
            .filter(|i| i.severity == sev)
            .map(|i| {
                (
                    i.code,
                    i.location.segment_position.unwrap_or(0),
                    i.location.element,
                )
            })
            .collect()
    }

    const REQ_HEAD: &str = "BHT*0007*13*REF1*20240101*1200~\
HL*1**20*1~NM1*X3*2*PAYER*****PI*12345~\
HL*2*1*21*1~NM1*1P*2*CLINIC*****XX*1234567893~\
HL*3*2*22*1~NM1*IL*1*DOE*JANE****MI*M123~DMG*D8*19800101*F~";

    fn request(event: &str, services: &str) -> String {
        format!(
            "{REQ_HEAD}HL*4*3*EV*{}~{event}{services}",
            if services.is_empty() { 0 } else { 1 }
        )
    }

    const RESP_HEAD: &str = "BHT*0007*11*REF1*20240101*1200*18~\
HL*1**20*1~NM1*X3*2*PAYER*****PI*12345~\
HL*2*1*21*1~NM1*1P*2*CLINIC*****XX*1234567893~\
HL*3*2*22*1~NM1*IL*1*DOE*JANE****MI*M123~";

    #[test]
    fn guide_loads_and_is_consistent() {
        let g = load(GUIDE_JSON).expect("the guide compiles");
        assert_eq!(g.id, "005010X217");
        assert!(g.comment.contains("NOT from the licensed"));
        // Every segment a loop uses is defined, with its elements.
        for p in [Purpose::Request, Purpose::Response] {
            let t = g.transaction(p);
            for l in &t.loops {
                for e in &l.entries {
                    let s = g
                        .segment(&e.segment)
                        .unwrap_or_else(|| panic!("{} of {} is not defined", e.segment, l.id));
                    assert_eq!(e.elements.len(), s.elements.len());
                }
            }
            for e in &t.header {
                assert!(g.segment(&e.segment).is_some());
            }
            let ids: Vec<&str> = t.loops.iter().map(|l| l.id.as_str()).collect();
            for want in [
                "2000A", "2010A", "2000B", "2010B", "2000C", "2010C", "2000D", "2010D", "2000E",
                "2010EA", "2010EB", "2010EC", "2000F",
            ] {
                assert!(ids.contains(&want), "{p:?} lacks {want}");
            }
        }
        let req = g.transaction(Purpose::Request);
        let resp = g.transaction(Purpose::Response);
        assert!(req.loop_def("2010F").is_some() && req.loop_def("2010FA").is_none());
        assert!(resp.loop_def("2010FA").is_some() && resp.loop_def("2010FB").is_some());
        // 2000E's parents, the name loops of 2000F.
        let e = req.loop_def("2000E").unwrap();
        assert_eq!(e.parent_ids(req).collect::<Vec<_>>(), ["2000C", "2000D"]);
        assert_eq!(
            resp.loop_def("2000F")
                .unwrap()
                .name_loop_ids(resp)
                .collect::<Vec<_>>(),
            ["2010FA", "2010FB"]
        );
        // Response 2010EB is the contact, 2010EC the transport.
        assert!(resp.loop_def("2010EB").unwrap().name.contains("Contact"));
        assert!(resp.loop_def("2010EC").unwrap().name.contains("Transport"));
        assert!(req.loop_def("2010EB").unwrap().name.contains("Transport"));
    }

    #[test]
    fn inconsistent_guides_are_refused() {
        let broken = GUIDE_JSON.replacen("{\"segment\": \"MSG\"", "{\"segment\": \"MSX\"", 1);
        assert_ne!(broken, GUIDE_JSON);
        assert!(load(&broken).unwrap_err().contains("MSX is not defined"));
        let broken = GUIDE_JSON.replacen("\"parents\": [\"2000A\"]", "\"parents\": [\"2000Z\"]", 1);
        assert!(load(&broken).unwrap_err().contains("2000Z"));
        let broken = GUIDE_JSON.replacen("\"syntax\": [\"P0809\"", "\"syntax\": [\"P0819\"", 1);
        assert!(load(&broken).unwrap_err().contains("P0819"));
    }

    #[test]
    fn clean_request_and_response() {
        let issues = run(&request(
            "TRN*1*T1*1234567890~UM*HS*I*3*11:B~DTP*AAH*D8*20240105~HI*ABK:M5416~",
            "HL*5*4*SS*0~SV1*HC:99213**UN*1~",
        ));
        assert!(issues.is_empty(), "{issues:#?}");
        let issues = run(&format!(
            "{RESP_HEAD}HL*4*3*EV*0~TRN*2*T1*1234567890~UM*HS*I~HCR*A1*AUTH1~DTP*AAH*RD8*20240105-20240205~"
        ));
        assert!(issues.is_empty(), "{issues:#?}");
    }

    #[test]
    fn missing_required_element() {
        let issues = run(&request("UM**I~", ""));
        let e = errors(&issues);
        assert_eq!(e.len(), 1, "{issues:#?}");
        assert_eq!(e[0].code, "element_missing");
        assert_eq!(e[0].ack, Some(AckCode::Element("1")));
        let l = &e[0].location;
        assert_eq!(
            (l.segment_id.as_deref(), l.element, l.loop_id.as_deref()),
            (Some("UM"), Some(1), Some("2000E"))
        );
        // ST = 1, BHT = 2, the 2000E HL = 10, its UM = 11; ISA and GS come first in the file.
        assert_eq!(l.segment_position, Some(11));
        assert_eq!(l.segment_index, Some(13));
        assert_eq!(
            (l.interchange, l.group, l.transaction),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(l.control_number.as_deref(), Some("0001"));
        assert!(
            e[0].message.contains("UM01 (Request Category Code)"),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn bad_code_and_unconfirmed_code() {
        let issues = run(&format!("{RESP_HEAD}HL*4*3*EV*0~UM*HS*I~HCR*ZZ~"));
        assert_eq!(
            brief(&issues, Severity::Error),
            [("invalid_code", 11, Some(1))]
        );
        assert_eq!(issues[0].value.as_deref(), Some("ZZ"));
        assert_eq!(issues[0].ack, Some(AckCode::Element("7")));
        // UM02 = N: accepted with a warning.
        let issues = run(&request("UM*HS*N~", ""));
        assert_eq!(brief(&issues, Severity::Error), []);
        assert_eq!(
            brief(&issues, Severity::Warning),
            [("code_unconfirmed", 11, Some(2))]
        );
    }

    #[test]
    fn bad_dates_and_times() {
        let issues = run(&request(
            "UM*HS*I~DTP*AAH*D8*20240231~DTP*435*RD8*20240110-20240101~",
            "",
        ));
        assert_eq!(
            brief(&issues, Severity::Error),
            [("invalid_date", 12, Some(3)), ("invalid_date", 13, Some(3))]
        );
        assert_eq!(issues[1].ack, Some(AckCode::Element("8")));
        let issues = run(&request("UM*HS*I~HI*ABK:M5416:D8:20241301~", "")
            .replace("*20240101*1200~", "*20240101*2460~"));
        assert_eq!(
            brief(&issues, Severity::Error),
            [("invalid_time", 2, Some(5)), ("invalid_date", 12, Some(1))]
        );
        assert_eq!(issues[0].ack, Some(AckCode::Element("9")));
        assert_eq!(issues[1].location.component, Some(4));
    }

    #[test]
    fn ss_under_ss() {
        let issues = run(&request(
            "UM*HS*I~",
            "HL*5*4*SS*0~SV1*HC:99213~HL*6*5*SS*0~SV1*HC:99214~",
        ));
        assert_eq!(
            brief(&issues, Severity::Error),
            [
                ("hl_parent_level", 14, Some(2)),
                ("hl_child_flag", 12, Some(4))
            ],
            "{issues:#?}"
        );
        assert_eq!(issues[0].ack, Some(AckCode::Segment("2")));
        assert_eq!(issues[0].value.as_deref(), Some("5"));
        assert_eq!(issues[0].location.loop_id.as_deref(), Some("2000F"));
        assert!(
            issues[0].message.contains("under 2000E (EV)"),
            "{}",
            issues[0].message
        );
        // A parent that does not exist: the event then has no children either.
        let issues = run(&request("UM*HS*I~", "HL*5*9*SS*0~SV1*HC:99213~"));
        assert_eq!(
            brief(&issues, Severity::Error),
            [
                ("hl_parent_missing", 12, Some(2)),
                ("hl_child_flag", 10, Some(4))
            ]
        );
    }

    #[test]
    fn response_without_decision() {
        let issues = run(&format!(
            "{RESP_HEAD}HL*4*3*EV*0~TRN*2*T1*1234567890~UM*HS*I~"
        ));
        let e = errors(&issues);
        assert_eq!(e.len(), 1, "{issues:#?}");
        assert_eq!(e[0].code, "required_segment_missing");
        assert_eq!(e[0].ack, Some(AckCode::Segment("3")));
        assert_eq!(e[0].location.segment_id.as_deref(), Some("HCR"));
        assert_eq!(e[0].location.loop_id.as_deref(), Some("2000E"));
        assert_eq!(e[0].location.segment_position, Some(9));
        // A rejection: AAA instead of HCR is fine.
        let issues = run(&format!(
            "{RESP_HEAD}HL*4*3*EV*0~TRN*2*T1*1234567890~AAA*N**33*C~UM*HS*I~"
        ));
        assert!(issues.is_empty(), "{issues:#?}");
        // An AAA at the subscriber turns the missing decision into a warning.
        let head = RESP_HEAD.replace("MI*M123~", "MI*M123~AAA*N**75*C~");
        let issues = run(&format!("{head}HL*4*3*EV*0~UM*HS*I~"));
        assert_eq!(brief(&issues, Severity::Error), []);
        assert_eq!(
            brief(&issues, Severity::Warning),
            [("required_segment_missing", 10, None)]
        );
    }

    #[test]
    fn segment_and_loop_counts() {
        let issues = run(&request("UM*HS*I~MSG*ONE~MSG*TWO~", ""));
        assert_eq!(
            brief(&issues, Severity::Error),
            [("segment_over_max", 13, None)]
        );
        assert_eq!(issues[0].ack, Some(AckCode::Segment("5")));
        let pwk: String = (0..11).map(|i| format!("PWK*03*FX***AC*A{i}~")).collect();
        let issues = run(&request(&format!("UM*HS*I~{pwk}"), ""));
        assert_eq!(
            brief(&issues, Severity::Error),
            [("segment_over_max", 22, None)]
        );
        // Two 2000A: the loop maximum is unconfirmed, so a warning.
        let issues = run(&format!(
            "{REQ_HEAD}HL*4*3*EV*0~UM*HS*I~HL*5**20*0~NM1*X3*2*OTHER*****PI*99~"
        ));
        assert_eq!(brief(&issues, Severity::Error), []);
        assert_eq!(
            brief(&issues, Severity::Warning),
            [("loop_over_max", 12, None)]
        );
        assert_eq!(issues[0].ack, Some(AckCode::Segment("4")));
    }

    #[test]
    fn placement() {
        // DTP before UM is out of order; SV1 belongs to 2000F, not 2000E; ZZZ is no 278 segment.
        let issues = run(&request(
            "DTP*AAH*D8*20240105~UM*HS*I~SV1*HC:99213~ZZZ*1~",
            "",
        ));
        assert_eq!(
            brief(&issues, Severity::Error),
            [
                ("segment_out_of_order", 12, None),
                ("segment_unexpected", 13, None),
                ("segment_unrecognized", 14, None)
            ]
        );
        let acks: Vec<_> = issues.iter().map(|i| i.ack).collect();
        assert_eq!(
            acks,
            [
                Some(AckCode::Segment("7")),
                Some(AckCode::Segment("2")),
                Some(AckCode::Segment("1"))
            ]
        );
        // A 2000E segment after its name loops.
        let issues = run(&request("UM*HS*I~NM1*SJ*1*DOE*JOHN~MSG*LATE~", ""));
        assert_eq!(
            brief(&issues, Severity::Error),
            [("segment_out_of_order", 13, None)]
        );
        assert_eq!(issues[0].location.loop_id.as_deref(), Some("2000E"));
        // Two service segments in one line.
        let issues = run(&request("UM*HS*I~", "HL*5*4*SS*0~SV1*HC:99213~SV2*0120~"));
        assert_eq!(
            brief(&issues, Severity::Error),
            [("segment_exclusive", 14, None)]
        );
    }

    #[test]
    fn required_segments_and_loops() {
        // 2000A without its 2010A name loop; 2000E without UM.
        let body = REQ_HEAD.replace("NM1*X3*2*PAYER*****PI*12345~", "")
            + "HL*4*3*EV*0~TRN*1*T1*1234567890~";
        let issues = run(&body);
        assert_eq!(
            brief(&issues, Severity::Error),
            [
                ("required_segment_missing", 3, None),
                ("required_segment_missing", 9, None)
            ]
        );
        assert_eq!(issues[0].location.loop_id.as_deref(), Some("2010A"));
        assert_eq!(issues[0].location.segment_id.as_deref(), Some("NM1"));
        assert_eq!(issues[1].location.segment_id.as_deref(), Some("UM"));
        // No 2000E at all (located at the SE), and the subscriber's HL04 promised children.
        let issues = run(REQ_HEAD);
        assert_eq!(
            brief(&issues, Severity::Error),
            [
                ("required_segment_missing", 10, None),
                ("hl_child_flag", 7, Some(4))
            ]
        );
        assert_eq!(issues[0].location.loop_id.as_deref(), Some("2000E"));
        // No BHT.
        let issues =
            run(&request("UM*HS*I~", "").replacen("BHT*0007*13*REF1*20240101*1200~", "", 1));
        assert_eq!(
            brief(&issues, Severity::Error),
            [("required_segment_missing", 2, None)]
        );
        assert_eq!(issues[0].location.segment_id.as_deref(), Some("BHT"));
    }

    #[test]
    fn element_syntax() {
        // Too many elements; N0 with a letter; not used; too long; too short; not used when NM102 = 2.
        let long = "ABCDEFGHIJ".repeat(6);
        let issues = run(&request(
            "UM*HS*I~DTP*AAH*D8*20240105*X~HSD*VS*1***7*X~PWK*03*FX*2**AC*A1~",
            &format!("HL*5*4*SS*0~TRN*1*{long}*123~NM1*SJ*2*ACME*JOHN~"),
        ));
        assert_eq!(
            brief(&issues, Severity::Error),
            [
                ("too_many_elements", 12, Some(4)),
                ("invalid_character", 13, Some(6)),
                ("element_not_used", 14, Some(3)),
                ("element_too_long", 16, Some(2)),
                ("element_too_short", 16, Some(3)),
                ("element_not_used_conditional", 17, Some(4)),
            ],
            "{issues:#?}"
        );
        let acks: Vec<_> = errors(&issues).iter().map(|i| i.ack).collect();
        assert_eq!(
            acks,
            ["3", "6", "I10", "5", "4", "I13"].map(|c| Some(AckCode::Element(c)))
        );
    }

    #[test]
    fn relational_conditions_and_patterns() {
        // An ICD-10 code with a dot; NM108 without NM109 (P0809); N405/N406 not used; N402 with N407 (E0207).
        let issues = run(&request(
            "UM*HS*I~HI*ABK:M54.16~",
            "HL*5*4*SS*0~NM1*SJ*1*DOE*JOHN****XX~N3*1 MAIN ST~N4*CITY*CA*90000*CA*CY*1*ON~",
        ));
        assert_eq!(
            brief(&issues, Severity::Error),
            [
                ("pattern_mismatch", 12, Some(1)),
                ("element_conditional_missing", 14, Some(9)),
                ("element_not_used", 16, Some(5)),
                ("element_not_used", 16, Some(6)),
                ("exclusion_violated", 16, Some(7))
            ],
            "{issues:#?}"
        );
        assert_eq!(issues[0].location.component, Some(2));
        assert_eq!(issues[0].ack, Some(AckCode::Element("I12")));
        assert_eq!(issues[1].ack, Some(AckCode::Element("2")));
        assert_eq!(issues[4].ack, Some(AckCode::Element("10")));
        // An NPI with a wrong check digit: a warning (the NPI standard, not X12 syntax).
        let issues = run(&request(
            "UM*HS*I~",
            "HL*5*4*SS*0~NM1*SJ*1*DOE*JOHN****XX*1234567890~",
        ));
        assert_eq!(
            brief(&issues, Severity::Warning),
            [("pattern_mismatch", 13, Some(9))]
        );
        assert_eq!(brief(&issues, Severity::Error), []);
    }

    #[test]
    fn header_checks() {
        let issues = run(&request("UM*HS*I~", "").replace("BHT*0007*13", "BHT*0010*13"));
        assert_eq!(
            brief(&issues, Severity::Error),
            [("invalid_code", 2, Some(1))]
        );
        // Another guide's version in ST03.
        let issues = run_st("278*0001*005010X216", &request("UM*HS*I~", ""));
        assert_eq!(
            brief(&issues, Severity::Error),
            [("invalid_code", 1, Some(3))]
        );
        // Not a 278: one issue, nothing else.
        let issues = run_st("999*0001*005010X231A1", "AK1*HI*1*005010X217~AK9*A*1*1*1~");
        assert_eq!(brief(&issues, Severity::Error), [("not_a_278", 1, Some(1))]);
        assert!(Mode::Lenient.rejects(&issues));
        // An unknown BHT02: reported, and a set with an HCR is read as a response.
        let issues = run(&format!("{RESP_HEAD}HL*4*3*EV*0~UM*HS*I~HCR*A1*AUTH1~")
            .replace("BHT*0007*11", "BHT*0007*99"));
        assert_eq!(
            brief(&issues, Severity::Error),
            [("invalid_code", 2, Some(2))]
        );
    }

    #[test]
    fn name_loops_by_entity_code() {
        // Request: 71 -> 2010EA, PW (pickup) -> 2010EB transport, X3 -> 2010EC other UMO. The
        // N4s with a not-used N405 and the bad DTP date say which loop each segment landed in.
        let issues = run(&request(
            "UM*HS*I~NM1*71*1*DOE*JOHN~N4*CITY*CA*90000**CY~NM1*PW*2*HOME~N4*CITY*CA*90000**CY~NM1*X3*2*OTHER UMO~DTP*598*D8*20240231~",
            "",
        ));
        let found: Vec<_> = issues
            .iter()
            .map(|i| {
                (
                    i.code,
                    i.location.segment_position.unwrap(),
                    i.location.loop_id.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("element_not_used", 13, "2010EA"),
                ("element_not_used", 15, "2010EB"),
                ("invalid_date", 17, "2010EC")
            ],
            "{issues:#?}"
        );
        // Response: PW -> 2010EC transport, 1P -> 2010EB contact (with a PER).
        let issues = run(&format!(
            "{RESP_HEAD}HL*4*3*EV*0~UM*HS*I~HCR*A1*AUTH1~NM1*PW*2*HOME~N4*CITY*CA*90000**CY~NM1*1P*2*CLINIC~PER*IC*BOB*TE*5555555555*ZZ*1~"
        ));
        let found: Vec<_> = issues
            .iter()
            .map(|i| {
                (
                    i.code,
                    i.location.segment_position.unwrap(),
                    i.location.loop_id.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("element_not_used", 13, "2010EC"),
                ("invalid_code", 15, "2010EB")
            ],
            "{issues:#?}"
        );
        // A dependent: 2000E under 2000D is fine.
        let body = REQ_HEAD.replace("DMG*D8*19800101*F~", "")
            + "HL*4*3*23*1~NM1*QC*1*DOE*JIM~HL*5*4*EV*0~UM*HS*I~";
        assert!(run(&body).is_empty(), "{:#?}", run(&body));
    }

    #[test]
    fn unknown_level() {
        let issues = run(&request("UM*HS*I~", "HL*5*4*XX*0~SV1*HC:99213~ZZZ*1~"));
        assert_eq!(
            brief(&issues, Severity::Error),
            [
                ("invalid_code", 12, Some(3)),
                ("segment_unrecognized", 14, None)
            ],
            "{issues:#?}"
        );
        assert_eq!(issues[0].location.loop_id, None);
        // HL03 is a key element: even the lenient policy rejects.
        assert!(Mode::Lenient.rejects(&issues));
    }

    #[test]
    fn group_header() {
        let gs = GroupHeader {
            index: 1,
            functional_id: "HC".into(),
            sender: "S".into(),
            receiver: "R".into(),
            date: "20240230".into(),
            time: "1200".into(),
            control_number: "1".into(),
            version: "005010X222A1".into(),
        };
        let issues = validate_group_header(
            &gs,
            &Location {
                segment_index: Some(2),
                ..Location::default()
            },
        );
        let codes: Vec<_> = issues
            .iter()
            .map(|i| (i.code, i.ack, i.location.element))
            .collect();
        assert_eq!(
            codes,
            [
                ("gs_functional_id", Some(AckCode::Group("1")), Some(1)),
                ("gs_version", Some(AckCode::Group("2")), Some(8)),
                ("gs_date", None, Some(4))
            ]
        );
        let ok = GroupHeader {
            functional_id: "HI".into(),
            version: "005010X217".into(),
            date: "20240229".into(),
            ..gs
        };
        assert!(validate_group_header(&ok, &Location::default()).is_empty());
    }

    #[test]
    fn modes() {
        let bad_date = run(&request("UM*HS*I~DTP*AAH*D8*20240231~", ""));
        assert!(Mode::Strict.rejects(&bad_date));
        assert!(!Mode::Lenient.rejects(&bad_date));
        let no_um = run(&request("TRN*1*T1*1234567890~", ""));
        assert!(Mode::Lenient.rejects(&no_um));
        let bad_member = run(&request("UM*HS*I~", "").replace("MI*M123", "ZZ*M123"));
        assert_eq!(
            brief(&bad_member, Severity::Error),
            [("invalid_code", 8, Some(8))]
        );
        assert!(Mode::Lenient.rejects(&bad_member));
        // The same element outside a key loop does not reject leniently.
        let bad_provider = run(&request(
            "UM*HS*I~",
            "HL*5*4*SS*0~NM1*SJ*1*DOE*JOHN****ZZ*12~",
        ));
        assert_eq!(
            brief(&bad_provider, Severity::Error),
            [("invalid_code", 13, Some(8))]
        );
        assert!(Mode::Strict.rejects(&bad_provider) && !Mode::Lenient.rejects(&bad_provider));
        let warnings_only = run(&request("UM*HS*N~", ""));
        assert!(!warnings_only.is_empty() && !Mode::Strict.rejects(&warnings_only));
    }

    #[test]
    fn value_helpers() {
        assert_eq!(date8(b"20240229"), Some(2024));
        assert_eq!(date8(b"20230229"), None);
        assert_eq!(date8(b"2024022"), None);
        assert!(time_ok(b"2359") && time_ok(b"235959") && time_ok(b"23595999"));
        assert!(!time_ok(b"2400") && !time_ok(b"12345"));
        assert_eq!(decimal_digits(b"-150.00"), Some(5));
        assert_eq!(decimal_digits(b"1.2.3"), None);
        assert_eq!(integer_digits(b"12a"), None);
        assert!(icd10_x12(b"M5416") && !icd10_x12(b"M54.16") && !icd10_x12(b"41090"));
        assert!(
            icd9_x12(b"41090") && icd9_x12(b"V700") && icd9_x12(b"E8889") && !icd9_x12(b"M5416")
        );
        assert!(matches!(period(b"RD8", b"20240101-20240131"), Period::Ok));
        assert!(matches!(
            period(b"RD8", b"20240131-20240101"),
            Period::Invalid(_)
        ));
        assert!(matches!(period(b"D8", b"10010101"), Period::Implausible));
        assert!(matches!(period(b"XX", b"whatever"), Period::Unknown));
        // The NPI check agrees with the domain's.
        for n in (1_000_000_000u64..1_000_000_400)
            .chain(1_234_567_890..1_234_567_899)
            .chain([2_999_999_999, 3_234_567_893])
        {
            let t = n.to_string();
            assert_eq!(npi_ok(t.as_bytes()), npi_check(&t).is_ok(), "{t}");
        }
        assert!(!npi_ok(b"12345678") && !npi_ok(b"123456789X"));
        assert_ne!(seg_key(b"HL"), seg_key(b"HLL"));
        assert_ne!(pack_code(b"1"), pack_code(b"01"));
        assert_eq!(pack_code(b"12345678"), None);
        // Lookups agree between the packed and the long path.
        let cl = code_list(
            &RawCodes::Full(RawCodeList {
                codes: vec!["01".into(), "005010X217".into()],
                unconfirmed: vec!["N".into()],
                severity: None,
                note: None,
            }),
            "t",
        )
        .unwrap();
        assert!(
            matches!(cl.lookup(b"01"), CodeMatch::Listed)
                && matches!(cl.lookup(b"1"), CodeMatch::Absent)
        );
        assert!(
            matches!(cl.lookup(b"005010X217"), CodeMatch::Listed)
                && matches!(cl.lookup(b"005010X216"), CodeMatch::Absent)
        );
        assert!(matches!(cl.lookup(b"N"), CodeMatch::Unconfirmed));
        assert_eq!(seg_key(b"TOOLONG"), 0);
    }
}
