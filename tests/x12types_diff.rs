#![cfg(feature = "x12types")]
//! Differential test: our 278 output read again by an independent parser, `x12-types` 0.12.0.
//! Built only with `--features x12types`, because x12-types takes minutes to compile.
//!
//! The inputs are the sample requests in `fixtures/requests` alone and together, responses to
//! them, 300 generated interchanges of 1 to 3 requests, and 300 generated responses. All are
//! written with `*` `:` `~` `^` and no line breaks, which is the only form x12-types reads.
//! Each interchange goes through two checks:
//!
//! 1. **Segment content.** Our syntax layer (`SliceReader`, `Segments`) lists the segments.
//!    x12-types parses the same bytes into `Transmission<_278>`, and we flatten that back into
//!    segments in its struct order (ISA, GS, ST, BHT, each HL loop and its NM1 loops, SE, GE,
//!    IEA). Both lists must have the same segment ids in the same order. Every element
//!    x12-types models must match ours: both present with the same value, or both absent.
//!    x12-types never splits composites or repetitions, so we compare a composite as our
//!    components joined by `:`. The test fails with our bytes if x12-types returns a parse
//!    error, panics (`vars.get(n).unwrap()` on a missing mandatory element), or stops before
//!    the end of the input.
//! 2. **Writing back.** x12-types writes its parsed interchange out again with `Display`
//!    (`*`, `~` and a line break after each segment). Our decoder must read that with no error,
//!    into the same messages it reads from our own bytes.
//!
//! **What is not compared.** x12-types' parser drops every element past the last field of
//! its segment struct, so those elements can't be compared. For what our encoder writes,
//! that is HCR04 only (second surgical opinion): x12-types' `HCR` stops at HCR03. While it
//! compares, the test collects every (segment, element) it could not compare. If one is not
//! in `UNMODELED`, the test fails, so a new gap can't pass silently. The copy x12-types writes
//! back has no HCR04 either, so part 2 expects `second_surgical_opinion` to come back empty.
//! x12-types also loses structure: one flat HL loop, with UM and HCR as plain strings. That
//! doesn't matter here, because the test compares segments and elements, not loops.
//!
//! **Former defects of our output** that x12-types exposed (segments with no data: `DMG~`,
//! `CL1~`, `HSD~`; a CRC without CRC03; clinical CR segments out of order, repeated, without
//! their mandatory elements or with too many) are now refused by the encoder with a located
//! error, or made impossible by the domain types; `former_defects_are_refused` keeps it so.
//!
//! The generators write ASCII text only. x12-types cuts an element short at a character that
//! is neither alphanumeric, whitespace nor ASCII punctuation (`€`, `°`, `—`), and it drops the
//! rest of that segment. `the_comparison_catches_differences` shows the comparison reports this
//! as a mismatch.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use serde::Serialize;

use x12_types::util::Parser as _;
use x12_types::v005010::*;

use priorauth::domain::*;
use priorauth::x12::tx278::{Message278, decode_all, encode_requests, encode_responses};
use priorauth::x12::writer::{EnvelopeSettings, MemoryControlNumbers, Stamp};
use priorauth::x12::{Delimiters, Segment, Severity, SliceReader, Unit};

use common::*;

/// (segment id, 1-based element position) that we write and x12-types does not model.
const UNMODELED: &[(&str, usize, &str)] = &[(
    "HCR",
    4,
    "x12-types' HCR has fields 01..03 only; HCR04 (second surgical opinion) is dropped",
)];

// ---------------------------------------------------------------------------------------------
// Our side: the segments as our syntax layer reads them.

#[derive(Debug, Clone)]
struct OurSegment {
    id: String,
    /// Elements after the id; a composite's components joined by `:`.
    elements: Vec<String>,
}

fn utf8(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).expect("our output is UTF-8")
}

fn our_segment(s: &Segment<'_>) -> OurSegment {
    assert_eq!(
        s.delimiters(),
        Delimiters::default(),
        "x12-types reads only * and ~, and composites are compared joined by :"
    );
    OurSegment {
        id: s.id_str().to_owned(),
        elements: s
            .elements()
            .map(|e| s.components(e).map(utf8).collect::<Vec<_>>().join(":"))
            .collect(),
    }
}

fn our_segments(x12: &[u8]) -> Result<Vec<OurSegment>, String> {
    let mut reader = SliceReader::new(x12);
    let mut out = vec![];
    for unit in reader.by_ref() {
        match unit {
            Ok(Unit::Segment(s)) => out.push(our_segment(&s)),
            Ok(Unit::Transaction(t)) => out.extend(t.segments().map(|s| our_segment(&s))),
            Err(e) => {
                return Err(format!(
                    "our reader failed on our output: {e:?}\n{}",
                    show(x12)
                ));
            }
        }
    }
    let issues = reader.take_issues();
    if !issues.is_empty() {
        return Err(format!(
            "our reader has issues with our output: {issues:#?}\n{}",
            show(x12)
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Their side: x12-types' parse, flattened back into segments.

#[derive(Debug, Clone)]
struct TheirSegment {
    id: &'static str,
    /// One entry per field of x12-types' segment struct, in order: `None` when absent.
    elements: Vec<Option<String>>,
}

/// A field of an x12-types segment as text. All of its field types (String, the typed code,
/// date, time and numeric elements, and their Options) serialize as a string or null.
fn field<T: Serialize>(v: &T) -> Option<String> {
    match serde_json::to_value(v).expect("an x12-types field serializes") {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => panic!("unexpected x12-types field representation {other:?}"),
    }
}

/// Flattens one segment. The struct pattern has no `..`, so a field of x12-types' struct that
/// is not listed here is a compile error: every field it models is compared.
macro_rules! seg {
    ($out:expr, $v:expr, $ty:ident { $($f:ident),+ }) => {{
        let $ty { $($f),+ } = $v;
        $out.push(TheirSegment { id: stringify!($ty), elements: vec![$(field($f)),+] });
    }};
}

#[rustfmt::skip]
fn flatten_nm1(out: &mut Vec<TheirSegment>, l: &_278LoopNM1) {
    let _278LoopNM1 { nm1, r#ref, n2, n3, n4, per, aaa, prv, dmg, ins, dtp } = l;
    seg!(out, nm1, NM1 { _01, _02, _03, _04, _05, _06, _07, _08, _09, _10, _11, _12 });
    for s in r#ref { seg!(out, s, REF { _01, _02, _03, _04 }); }
    if let Some(s) = n2 { seg!(out, s, N2 { _01, _02 }); }
    if let Some(s) = n3 { seg!(out, s, N3 { _01, _02 }); }
    if let Some(s) = n4 { seg!(out, s, N4 { _01, _02, _03, _04, _05, _06, _07 }); }
    for s in per { seg!(out, s, PER { _01, _02, _03, _04, _05, _06, _07, _08, _09 }); }
    for s in aaa { seg!(out, s, AAA { _01, _02, _03, _04, _05, _06 }); }
    if let Some(s) = prv { seg!(out, s, PRV { _01, _02, _03, _04, _05, _06 }); }
    if let Some(s) = dmg { seg!(out, s, DMG { _01, _02, _03, _04, _05, _06, _07, _08, _09, _10, _11 }); }
    if let Some(s) = ins {
        seg!(out, s, INS { _01, _02, _03, _04, _05, _06, _07, _08, _09, _10, _11, _12, _13, _14, _15, _16, _17 });
    }
    for s in dtp { seg!(out, s, DTP { _01, _02, _03 }); }
}

#[rustfmt::skip]
fn flatten_hl(out: &mut Vec<TheirSegment>, l: &_278Loop2000) {
    let _278Loop2000 {
        hl, trn, aaa, um, hcr, r#ref, dtp, hi, sv1, sv2, sv3, too, hsd, crc, cl1,
        cr1, cr2, cr4, cr5, cr6, cr7, cr8, pwk, msg, loop_nm1,
    } = l;
    seg!(out, hl, HL { _01, _02, _03, _04 });
    for s in trn { seg!(out, s, TRN { _01, _02, _03, _04 }); }
    for s in aaa { seg!(out, s, AAA { _01, _02, _03, _04, _05, _06 }); }
    if let Some(s) = um {
        seg!(out, s, UM { _01, _02, _03, _04, _05, _06, _07, _08, _09, _10, _11, _12, _13, _14, _15, _16, _17, _18, _19, _20 });
    }
    if let Some(s) = hcr { seg!(out, s, HCR { _01, _02, _03 }); }
    for s in r#ref { seg!(out, s, REF { _01, _02, _03, _04 }); }
    for s in dtp { seg!(out, s, DTP { _01, _02, _03 }); }
    if let Some(s) = hi { seg!(out, s, HI { _01, _02, _03, _04, _05, _06, _07, _08, _09, _10, _11, _12 }); }
    if let Some(s) = sv1 {
        seg!(out, s, SV1 { _01, _02, _03, _04, _05, _06, _07, _08, _09, _10, _11, _12, _13, _14, _15, _16, _17, _18, _19, _20, _21 });
    }
    if let Some(s) = sv2 { seg!(out, s, SV2 { _01, _02, _03, _04, _05, _06, _07, _08, _09, _10 }); }
    if let Some(s) = sv3 { seg!(out, s, SV3 { _01, _02, _03, _04, _05, _06, _07, _08, _09, _10 }); }
    for s in too { seg!(out, s, TOO { _01, _02, _03 }); }
    if let Some(s) = hsd { seg!(out, s, HSD { _01, _02, _03, _04, _05, _06, _07, _08 }); }
    for s in crc { seg!(out, s, CRC { _01, _02, _03, _04, _05, _06, _07 }); }
    if let Some(s) = cl1 { seg!(out, s, CL1 { _01, _02, _03, _04 }); }
    if let Some(s) = cr1 { seg!(out, s, CR1 { _01, _02, _03, _04, _05, _06, _07, _08, _09, _10 }); }
    if let Some(s) = cr2 { seg!(out, s, CR2 { _01, _02, _03, _04, _05, _06, _07, _08, _09, _10, _11, _12 }); }
    if let Some(s) = cr4 {
        seg!(out, s, CR4 { _01, _02, _03, _04, _05, _06, _07, _08, _09, _10, _11, _12, _13, _14, _15,
                           _16, _17, _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29 });
    }
    if let Some(s) = cr5 {
        seg!(out, s, CR5 { _01, _02, _03, _04, _05, _06, _07, _08, _09, _10, _11, _12, _13, _14, _15, _16, _17, _18 });
    }
    if let Some(s) = cr6 {
        seg!(out, s, CR6 { _01, _02, _03, _04, _05, _06, _07, _08, _09, _10, _11, _12, _13, _14, _15, _16, _17, _18, _19, _20, _21 });
    }
    if let Some(s) = cr7 { seg!(out, s, CR7 { _01, _02, _03 }); }
    if let Some(s) = cr8 { seg!(out, s, CR8 { _01, _02, _03, _04, _05, _06, _07, _08, _09 }); }
    for s in pwk { seg!(out, s, PWK { _01, _02, _03, _04, _05, _06, _07, _08, _09 }); }
    for s in msg { seg!(out, s, MSG { _01, _02, _03 }); }
    for l in loop_nm1 { flatten_nm1(out, l); }
}

#[rustfmt::skip]
fn flatten(t: &Transmission<_278>) -> Vec<TheirSegment> {
    let mut out = vec![];
    let Transmission { isa, functional_group, iea } = t;
    seg!(out, isa, ISA { _01, _02, _03, _04, _05, _06, _07, _08, _09, _10, _11, _12, _13, _14, _15, _16 });
    for FunctionalGroup { gs, segments, ge } in functional_group {
        seg!(out, gs, GS { _01, _02, _03, _04, _05, _06, _07, _08 });
        for _278 { st, bht, loops, se } in segments {
            seg!(out, st, ST { _01, _02, _03 });
            seg!(out, bht, BHT { _01, _02, _03, _04, _05, _06 });
            for l in loops { flatten_hl(&mut out, l); }
            seg!(out, se, SE { _01, _02 });
        }
        seg!(out, ge, GE { _01, _02 });
    }
    seg!(out, iea, IEA { _01, _02 });
    out
}

thread_local! {
    /// Set while `guarded` runs x12-types: its panics are reported by us, not by the hook.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// Runs x12-types code, turning a panic into an `Err` with its message. The default panic
/// hook stays silent for these panics only (shrinking would print hundreds of them).
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                default(info);
            }
        }));
    });
    GUARDED.with(|g| g.set(true));
    let outcome = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(false));
    outcome.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(a panic without a message)".into())
    })
}

/// Parses with x12-types. A nom error, a panic inside x12-types, or unread input is an `Err`
/// that says where and shows our bytes.
fn their_parse(x12: &[u8]) -> Result<Transmission<_278>, String> {
    let text = std::str::from_utf8(x12).map_err(|e| format!("not UTF-8: {e}\n{}", show(x12)))?;
    let parsed = guarded(|| Transmission::<_278>::parse(text))
        .map_err(|p| format!("x12-types panicked: {p}\n{}", show(x12)))?;
    match parsed {
        Err(e) => {
            // nom's error carries the unparsed rest: its length gives the position.
            let mut rest_len = None;
            let _ = e.map(|inner| rest_len = Some(inner.input.len()));
            let at = match rest_len {
                Some(n) => {
                    let at = text.len() - n;
                    format!(
                        "it stopped at byte {at}, segment #{} `{}`",
                        text[..at].matches('~').count() + 1,
                        text[at..].split('~').next().unwrap_or("")
                    )
                }
                None => "incomplete input".to_owned(),
            };
            Err(format!(
                "x12-types could not parse our bytes: {at}\n{}",
                show(x12)
            ))
        }
        Ok((rest, _)) if !rest.is_empty() => Err(format!(
            "x12-types stopped {} bytes before the end, at `{}`\n{}",
            rest.len(),
            rest.split('~').next().unwrap_or(""),
            show(x12)
        )),
        Ok((_, t)) => Ok(t),
    }
}

// ---------------------------------------------------------------------------------------------
// Part 1: the comparison.

/// What was compared, for the coverage check and the summary.
#[derive(Debug, Default)]
struct Tally {
    interchanges: usize,
    /// Segment id -> (segments, elements compared).
    compared: BTreeMap<String, (usize, usize)>,
    /// (segment id, position) -> times our element was outside x12-types' struct.
    unmodeled: BTreeMap<(String, usize), usize>,
    /// Interchanges that x12-types wrote back and our decoder read to the same messages.
    written_back: usize,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} interchanges compared, {} written back by x12-types and read the same",
            self.interchanges, self.written_back
        )?;
        let compared: Vec<String> = self
            .compared
            .iter()
            .map(|(id, (n, e))| format!("{id} {n}/{e}"))
            .collect();
        writeln!(f, "segments/elements compared: {}", compared.join(", "))?;
        let unmodeled: Vec<String> = self
            .unmodeled
            .iter()
            .map(|((id, p), n)| format!("{id}{p:02} x{n}"))
            .collect();
        write!(
            f,
            "outside x12-types' model, not compared: {}",
            unmodeled.join(", ")
        )
    }
}

/// Our bytes, one segment a line with its number, for failure messages.
fn show(x12: &[u8]) -> String {
    let text = String::from_utf8_lossy(x12);
    let mut s = String::from("--- our bytes, one segment a line ---\n");
    for (i, seg) in text.split_inclusive('~').enumerate() {
        s.push_str(&format!("{:>4}  {seg}\n", i + 1));
    }
    s
}

fn show_ours(s: &OurSegment) -> String {
    format!("{} {:?}", s.id, s.elements)
}

fn show_theirs(s: &TheirSegment) -> String {
    let els: Vec<String> = s
        .elements
        .iter()
        .map(|e| {
            e.as_deref()
                .map_or("<absent>".to_owned(), |v| format!("{v:?}"))
        })
        .collect();
    format!("{} [{}]", s.id, els.join(", "))
}

fn shown(e: Option<&String>) -> String {
    e.map_or("<absent>".to_owned(), |v| format!("{v:?}"))
}

/// Compares our segments with x12-types' and adds what was compared to `tally`.
fn compare(x12: &[u8], tally: &mut Tally) -> Result<Transmission<_278>, String> {
    let ours = our_segments(x12)?;
    let parsed = their_parse(x12)?;
    compare_segments(&ours, &flatten(&parsed), x12, tally)?;
    Ok(parsed)
}

/// The comparison proper; `x12` is only shown in messages.
fn compare_segments(
    ours: &[OurSegment],
    theirs: &[TheirSegment],
    x12: &[u8],
    tally: &mut Tally,
) -> Result<(), String> {
    let ids_ours: Vec<&str> = ours.iter().map(|s| s.id.as_str()).collect();
    let ids_theirs: Vec<&str> = theirs.iter().map(|s| s.id).collect();
    if ids_ours != ids_theirs {
        let first = ids_ours
            .iter()
            .zip(&ids_theirs)
            .position(|(a, b)| a != b)
            .unwrap_or(ids_ours.len().min(ids_theirs.len()));
        return Err(format!(
            "the segment ids differ from segment #{}: ours {:?}, x12-types {:?}\n\
             ours:      {ids_ours:?}\nx12-types: {ids_theirs:?}\n{}",
            first + 1,
            ids_ours.get(first),
            ids_theirs.get(first),
            show(x12)
        ));
    }
    let mut unmodeled = vec![];
    for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
        for (k, theirs_el) in t.elements.iter().enumerate() {
            let ours_el = o.elements.get(k);
            if ours_el != theirs_el.as_ref() {
                return Err(format!(
                    "segment #{} {}, element {:02}: ours {}, x12-types {}\n\
                     ours:      {}\nx12-types: {}\n{}",
                    i + 1,
                    o.id,
                    k + 1,
                    shown(ours_el),
                    shown(theirs_el.as_ref()),
                    show_ours(o),
                    show_theirs(t),
                    show(x12)
                ));
            }
        }
        let width = t.elements.len();
        let entry = tally.compared.entry(o.id.clone()).or_default();
        entry.0 += 1;
        entry.1 += o.elements.len().min(width);
        unmodeled.extend((width..o.elements.len()).map(|k| (i, o, k + 1)));
    }
    for (i, o, pos) in unmodeled {
        if !UNMODELED.iter().any(|(id, p, _)| *id == o.id && *p == pos) {
            return Err(format!(
                "segment #{} {}, element {pos:02} ({:?}) is outside x12-types' model and not in \
                 UNMODELED: it would go uncompared\nours: {}\n{}",
                i + 1,
                o.id,
                o.elements[pos - 1],
                show_ours(o),
                show(x12)
            ));
        }
        *tally.unmodeled.entry((o.id.clone(), pos)).or_default() += 1;
    }
    tally.interchanges += 1;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Part 2: x12-types writes it back, our decoder reads it.

/// What the written-back interchange can still say: HCR04 is gone (see UNMODELED).
fn forget_hcr04(m: &mut Message278) {
    if let Message278::Response(r) = m {
        r.decision.second_surgical_opinion = None;
        for l in &mut r.decision.lines {
            l.second_surgical_opinion = None;
        }
    }
}

/// Our decoder on some bytes: the messages, or the errors.
fn decode_clean(x12: &[u8]) -> Result<Vec<Message278>, String> {
    let decoded = decode_all(x12);
    // `no_decision` (a response with no HCR and no AAA anywhere) is what such a generated
    // decision is; roundtrip.rs allows it the same way. Every other error fails.
    let errors: Vec<_> = decoded
        .all_issues()
        .filter(|i| i.severity == Severity::Error && i.code != "no_decision")
        .collect();
    if !errors.is_empty() {
        return Err(format!("{errors:#?}"));
    }
    decoded
        .transactions
        .into_iter()
        .map(|t| {
            t.message
                .ok_or_else(|| "a transaction set without a message".to_owned())
        })
        .collect()
}

/// Lines of `a` and `b` (pretty Debug) that differ, with two lines of context.
fn diff(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    // Longest common subsequence table, then a walk that emits - / + / context lines.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops = vec![];
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(('+', b[j]));
            j += 1;
        } else {
            ops.push(('-', a[i]));
            i += 1;
        }
    }
    let near = |k: usize| {
        ops[k.saturating_sub(2)..(k + 3).min(ops.len())]
            .iter()
            .any(|(c, _)| *c != ' ')
    };
    let mut out = String::new();
    for (k, (c, line)) in ops.iter().enumerate() {
        if near(k) {
            out.push_str(&format!("{c} {line}\n"));
        }
    }
    out
}

/// x12-types writes back what it parsed. From that, our decoder must read the messages it
/// reads from our own bytes (less HCR04).
fn check_written_back(parsed: &Transmission<_278>, x12: &[u8]) -> Result<(), String> {
    let mut expected = decode_clean(x12).map_err(|e| {
        format!(
            "our decoder has errors on our own bytes: {e}\n{}",
            show(x12)
        )
    })?;
    expected.iter_mut().for_each(forget_hcr04);
    let written = guarded(|| parsed.to_string())
        .map_err(|p| format!("x12-types panicked writing back: {p}\n{}", show(x12)))?;
    let got = decode_clean(written.as_bytes()).map_err(|e| {
        format!(
            "our decoder has errors on what x12-types wrote back: {e}\n\
             --- x12-types wrote ---\n{written}\n{}",
            show(x12)
        )
    })?;
    if got != expected {
        return Err(format!(
            "what x12-types wrote back decodes to other messages (- from our bytes, + from \
             x12-types'):\n{}\n--- x12-types wrote ---\n{written}\n{}",
            diff(&format!("{expected:#?}"), &format!("{got:#?}")),
            show(x12)
        ));
    }
    Ok(())
}

fn check(x12: &[u8], tally: &mut Tally) -> Result<(), String> {
    let parsed = compare(x12, tally)?;
    check_written_back(&parsed, x12)?;
    tally.written_back += 1;
    Ok(())
}

fn check_requests(reqs: &[AuthorizationRequest], tally: &mut Tally) -> Result<(), String> {
    let x12 = encode_requests(reqs, &settings(), &MemoryControlNumbers::new(), stamp())
        .map_err(|e| format!("our encoder refused the requests: {e:?}"))?;
    check(&x12, tally)
}

fn check_response(resp: &AuthorizationResponse, tally: &mut Tally) -> Result<(), String> {
    let x12 = encode_responses(
        std::slice::from_ref(resp),
        &settings(),
        &MemoryControlNumbers::new(),
        stamp(),
    )
    .map_err(|e| format!("our encoder refused the response: {e:?}"))?;
    check(&x12, tally)
}

// ---------------------------------------------------------------------------------------------
// Inputs.

fn stamp() -> Stamp {
    Stamp {
        date: Date::new(2026, 11, 23).unwrap(),
        hour: 10,
        minute: 30,
    }
}

/// Our envelope as x12-types can read it: default `*` `:` `~` `^`, no line breaks.
fn settings() -> EnvelopeSettings {
    EnvelopeSettings {
        delimiters: Delimiters::default(),
        newline: false,
        ..EnvelopeSettings::default()
    }
}

fn sample_requests() -> Vec<(String, AuthorizationRequest)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/requests");
    let mut out = vec![];
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let r: AuthorizationRequest =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push((path.file_name().unwrap().to_string_lossy().into_owned(), r));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 2,
        "expected sample requests in {}",
        dir.display()
    );
    out
}

/// A response to a sample request: `action` at the event and on every line.
fn sample_response(r: &AuthorizationRequest, action: ActionCode) -> AuthorizationResponse {
    let lines: Vec<LineDecision> = (1..=r.services.len())
        .map(|i| LineDecision {
            line: i,
            status: action.into(),
            action: Some(action),
            certification_number: Some(Text::parse(&format!("AUTH-{i}")).unwrap()),
            reason: None,
            second_surgical_opinion: Some(i % 2 == 0),
            certification: Certification::default(),
            approved_quantity: None,
            approved_units: None,
            administrative_reference: None,
            trace_numbers: vec![],
            rejects: vec![],
            messages: vec![],
        })
        .collect();
    let decision = Decision {
        status: overall_status(Some(action), &lines, &[]),
        action: Some(action),
        certification_number: Some(Text::parse("AUTH-0").unwrap()),
        reason: None,
        second_surgical_opinion: Some(true),
        certification: Certification {
            issued: Some(Date::new(2026, 11, 23).unwrap()),
            effective: None,
            expires: Some(Date::new(2027, 5, 23).unwrap()),
        },
        approved_quantity: None,
        administrative_reference: Some(Text::parse("ADMIN-1").unwrap()),
        trace_numbers: vec![],
        rejects: vec![],
        messages: vec![Text::parse("SEE LETTER").unwrap()],
        lines,
    };
    AuthorizationResponse::answering(r, decision)
}

/// A former defect of our output that x12-types exposed.
struct Defect {
    id: &'static str,
    what: &'static str,
    /// Puts the defect into a clean sample request.
    inject: fn(&mut AuthorizationRequest),
    /// The segment the encoder's refusal names.
    segment: &'static str,
}

fn clinical(segment: &str, elements: &[&str]) -> ClinicalSegment {
    ClinicalSegment {
        segment: Code::parse(segment).unwrap(),
        elements: elements.iter().map(|e| e.to_string()).collect(),
    }
}

fn defects() -> Vec<Defect> {
    vec![
        Defect {
            id: "D2",
            what: "a CRC with no condition code (CRC03 is mandatory)",
            inject: |r| {
                r.event.conditions = vec![Condition {
                    category: Code::parse("09").unwrap(),
                    applies: true,
                    codes: vec![],
                }]
            },
            segment: "CRC",
        },
        Defect {
            id: "D4",
            what: "clinical CR segments out of the 278's order",
            inject: |r| {
                r.event.clinical = vec![
                    clinical("CR5", &["I", "1"]),
                    clinical("CR1", &["LB", "150"]),
                ]
            },
            segment: "CR1",
        },
        Defect {
            id: "D4b",
            what: "a clinical CR segment repeated",
            inject: |r| r.event.clinical = vec![clinical("CR2", &["1"]), clinical("CR2", &["2"])],
            segment: "CR2",
        },
        Defect {
            id: "D5",
            what: "CR7 without its mandatory elements (CR701-703)",
            inject: |r| r.event.clinical = vec![clinical("CR7", &["PT"])],
            segment: "CR7",
        },
        Defect {
            id: "D5b",
            what: "CR6 without its start of care date (CR602)",
            inject: |r| r.event.clinical = vec![clinical("CR6", &["1"])],
            segment: "CR6",
        },
        Defect {
            id: "D6",
            what: "an HSD with no value",
            inject: |r| {
                r.event.quantity = Some(ServiceQuantity {
                    unit: None,
                    quantity: None,
                    per: None,
                    sample_count: None,
                    period: None,
                    period_count: None,
                    delivery_pattern: None,
                    delivery_time: None,
                })
            },
            segment: "HSD",
        },
        Defect {
            id: "D7",
            what: "CR7 with more than its three elements",
            inject: |r| r.event.clinical = vec![clinical("CR7", &["PT", "2", "3", "4"])],
            segment: "CR7",
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// Deterministic, so CI sees the same cases on every run and the coverage check can't flake.
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    TestRunner::new_with_rng(config, rng)
}

fn fail_with<T: std::fmt::Debug>(e: TestError<T>) -> ! {
    match e {
        TestError::Fail(reason, value) => {
            panic!("{reason}\n--- minimal failing input ---\n{value:#?}")
        }
        TestError::Abort(reason) => panic!("aborted: {reason}"),
    }
}

const CASES: u32 = 300;

#[test]
fn sample_requests_and_responses_read_the_same_in_x12_types() {
    let mut tally = Tally::default();
    let samples = sample_requests();
    for (name, r) in &samples {
        check_requests(std::slice::from_ref(r), &mut tally)
            .unwrap_or_else(|e| panic!("{name}:\n{e}"));
        for action in ActionCode::ALL {
            check_response(&sample_response(r, *action), &mut tally)
                .unwrap_or_else(|e| panic!("{name}, answered {action:?}:\n{e}"));
        }
    }
    let all: Vec<AuthorizationRequest> = samples.into_iter().map(|(_, r)| r).collect();
    check_requests(&all, &mut tally).unwrap_or_else(|e| panic!("all samples in one group:\n{e}"));
    eprintln!("{tally}");
    assert!(
        tally.unmodeled.contains_key(&("HCR".to_owned(), 4)),
        "{tally}"
    );
}

#[test]
fn generated_requests_read_the_same_in_x12_types() {
    let tally = RefCell::new(Tally::default());
    let strategy = proptest::collection::vec(request(), 1..=3);
    runner(CASES)
        .run(&strategy, |reqs| {
            let tally = &mut *tally.borrow_mut();
            check_requests(&reqs, tally).map_err(TestCaseError::fail)
        })
        .unwrap_or_else(|e| fail_with(e));
    let tally = tally.into_inner();
    eprintln!("{tally}");
    assert_covered(&tally, REQUEST_SEGMENTS);
}

#[test]
fn generated_responses_read_the_same_in_x12_types() {
    let tally = RefCell::new(Tally::default());
    runner(CASES)
        .run(&response(), |resp| {
            let tally = &mut *tally.borrow_mut();
            check_response(&resp, tally).map_err(TestCaseError::fail)
        })
        .unwrap_or_else(|e| fail_with(e));
    let tally = tally.into_inner();
    eprintln!("{tally}");
    assert_covered(&tally, RESPONSE_SEGMENTS);
    assert!(
        tally.unmodeled.contains_key(&("HCR".to_owned(), 4)),
        "HCR04 never occurred, so UNMODELED is not exercised\n{tally}"
    );
}

/// Each former defect is refused by our encoder with an error naming the segment, so no
/// invalid 278 reaches a payer; the sample without it passes x12-types.
#[test]
fn former_defects_are_refused() {
    let (name, base) = sample_requests()
        .into_iter()
        .find(|(n, _)| n == "physical-therapy-visits.json")
        .expect("the physical therapy sample");
    let mut tally = Tally::default();
    check_requests(std::slice::from_ref(&base), &mut tally)
        .unwrap_or_else(|e| panic!("{name}:\n{e}"));
    for d in defects() {
        let mut r = base.clone();
        (d.inject)(&mut r);
        match encode_requests(
            std::slice::from_ref(&r),
            &settings(),
            &MemoryControlNumbers::new(),
            stamp(),
        ) {
            Ok(x12) => panic!("{} ({}) was written:\n{}", d.id, d.what, show(&x12)),
            Err(e) => assert_eq!(
                e.issues[0].location.segment_id.as_deref(),
                Some(d.segment),
                "{} ({}): {e}",
                d.id,
                d.what
            ),
        }
    }
}

/// The comparison can fail: a one-byte difference on x12-types' side, a segment missing
/// there, and a real disagreement of the two parsers on the same bytes are all caught.
#[test]
fn the_comparison_catches_differences() {
    let (name, r) = sample_requests()
        .into_iter()
        .find(|(n, _)| n == "mri-lumbar-outpatient.json")
        .expect("the MRI sample");
    let x12 = encode_requests(
        std::slice::from_ref(&r),
        &settings(),
        &MemoryControlNumbers::new(),
        stamp(),
    )
    .unwrap();
    let text = String::from_utf8(x12.clone()).unwrap();
    let ours = our_segments(&x12).unwrap();
    let mut tally = Tally::default();
    compare(&x12, &mut tally).unwrap_or_else(|e| panic!("{name}:\n{e}"));

    let one_byte = text.replacen("NM1*X3*2*SYNTHETIC", "NM1*X3*2*SYNTHETIX", 1);
    assert_ne!(one_byte, text);
    let theirs = flatten(&their_parse(one_byte.as_bytes()).unwrap());
    let e = compare_segments(&ours, &theirs, &x12, &mut tally).unwrap_err();
    let expected = r#"segment #6 NM1, element 03: ours "SYNTHETIC HEALTH PLAN", x12-types "SYNTHETIX HEALTH PLAN""#;
    assert!(e.contains(expected), "{e}");

    let msg = text.find("~MSG*").expect("the MRI sample has an MSG") + 1;
    let end = msg + text[msg..].find('~').unwrap() + 1;
    let fewer = format!("{}{}", &text[..msg], &text[end..]);
    let theirs = flatten(&their_parse(fewer.as_bytes()).unwrap());
    let e = compare_segments(&ours, &theirs, &x12, &mut tally).unwrap_err();
    assert!(
        e.contains(
            r#"the segment ids differ from segment #22: ours Some("MSG"), x12-types Some("HL")"#
        ),
        "{e}"
    );

    // Same bytes for both: x12-types ends an element at a character that is neither
    // alphanumeric, whitespace nor ASCII punctuation, and drops the rest of the segment.
    // Our `Text` allows such characters (it refuses only control characters).
    let mut euro = r.clone();
    euro.umo.name = Some(Text::parse("SYNTHETIC € PLAN").unwrap());
    let e = check_requests(&[euro], &mut tally).unwrap_err();
    assert!(
        e.contains(r#"NM1, element 03: ours "SYNTHETIC € PLAN", x12-types "SYNTHETIC ""#),
        "{e}"
    );
}

const ENVELOPE: &[&str] = &["ISA", "GS", "ST", "BHT", "SE", "GE", "IEA"];
const REQUEST_SEGMENTS: &[&str] = &[
    "HL", "NM1", "REF", "N3", "N4", "PER", "PRV", "DMG", "INS", "TRN", "UM", "DTP", "HI", "HSD",
    "CRC", "CL1", "CR1", "CR2", "CR5", "CR6", "CR7", "PWK", "MSG", "SV1", "SV2", "SV3", "TOO",
];
const RESPONSE_SEGMENTS: &[&str] = &[
    "HL", "NM1", "REF", "N3", "N4", "PER", "AAA", "PRV", "DMG", "INS", "TRN", "UM", "HCR", "DTP",
    "HI", "HSD", "CRC", "CL1", "CR1", "CR2", "CR5", "CR6", "CR7", "PWK", "MSG", "SV1", "SV2",
    "SV3", "TOO",
];

/// The generated cases really took every segment we write through x12-types, and all of
/// them through the writing back.
fn assert_covered(tally: &Tally, segments: &[&str]) {
    assert_eq!(tally.interchanges, CASES as usize, "{tally}");
    assert_eq!(tally.written_back, tally.interchanges, "{tally}");
    let missing: Vec<&&str> = ENVELOPE
        .iter()
        .chain(segments)
        .filter(|id| tally.compared.get(**id).is_none_or(|(_, n)| *n == 0))
        .collect();
    assert!(missing.is_empty(), "never compared: {missing:?}\n{tally}");
}

/// The 278s the PAS intermediary writes (every request example of the PAS guide, both
/// versions, and our synthetic PAS samples, mapped through the hub) read the same in x12-types.
#[test]
fn requests_from_pas_examples_read_the_same_in_x12_types() {
    use priorauth::fhir::request::request_from_bundle;
    use priorauth::fhir::types::Bundle;
    use priorauth::fhir::validate::{PasKind, kind_of, parse_json};
    let Some(shared) = shared_dir() else { return };
    let ours = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/pas");
    let dirs = [
        shared.join("fixtures/pas/v2.2.1"),
        shared.join("fixtures/pas/v2.0.1"),
        ours,
    ];
    let mut tally = Tally::default();
    let mut seen = 0;
    for dir in dirs {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for path in files {
            let json = parse_json(&std::fs::read(&path).unwrap()).unwrap();
            if !matches!(kind_of(&json), PasKind::RequestBundle) {
                continue;
            }
            let bundle: Bundle = serde_json::from_value(json).unwrap();
            let (req, _) = request_from_bundle(&bundle);
            let req = req.unwrap_or_else(|| panic!("{} maps to a request", path.display()));
            check_requests(std::slice::from_ref(&req), &mut tally)
                .unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
            seen += 1;
        }
    }
    eprintln!("{seen} PAS request examples; {tally}");
    assert!(seen >= 10, "expected the PAS request examples, saw {seen}");
}
