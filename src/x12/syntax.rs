//! X12 syntax: delimiters read from the ISA, zero-copy segments borrowed from the input, a
//! scanner that cuts input into envelope segments and whole transaction sets, and a streaming
//! reader that does the same over any `Read` in bounded memory.

use std::io::Read;

use memchr::memchr;

use super::error::{AckCode, Issue, Location, X12Error};

/// The four delimiters of an interchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub element: u8,
    /// ISA11 in 00501; `None` when ISA11 is not a separator (e.g. `U` in 00401).
    pub repetition: Option<u8>,
    pub component: u8,
    pub segment: u8,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters {
            element: b'*',
            repetition: Some(b'^'),
            component: b':',
            segment: b'~',
        }
    }
}

impl Delimiters {
    /// Whether a byte is one of the delimiters.
    #[inline]
    pub fn is_delimiter(&self, b: u8) -> bool {
        b == self.element || b == self.component || b == self.segment || Some(b) == self.repetition
    }
}

/// Element widths of the fixed-length ISA (ISA01..ISA16).
pub const ISA_WIDTHS: [usize; 16] = [2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1];

/// What the ISA told us.
#[derive(Debug, Clone)]
pub struct IsaHeader {
    pub delimiters: Delimiters,
    /// Bytes from `ISA` through the segment terminator.
    pub len: usize,
    /// Whether the ISA has the fixed 106-byte layout the standard requires.
    pub fixed_layout: bool,
    /// The width of each element as found.
    pub widths: Vec<usize>,
}

/// Reads the delimiters from an ISA at the start of `b`. Returns `Ok(None)` when more bytes are
/// needed (and `eof` is false). A non-fixed-width ISA is still read (its widths are reported),
/// so files re-typed by hand can be understood and their problem located.
pub fn parse_isa(b: &[u8], eof: bool) -> Result<Option<IsaHeader>, Box<Issue>> {
    let loc = Location {
        segment_id: Some("ISA".into()),
        ..Location::default()
    };
    if b.len() < 4 {
        return if eof {
            Err(Box::new(Issue::error(
                "isa_truncated",
                loc,
                "the input ends inside the ISA segment",
            )))
        } else {
            Ok(None)
        };
    }
    let el = b[3];
    if el.is_ascii_alphanumeric() || el == b' ' || el == b'\r' || el == b'\n' {
        return Err(Box::new(
            Issue::error(
                "isa_element_separator",
                loc.with_element(1),
                format!(
                    "the element separator (4th byte of the ISA) cannot be {:?}",
                    el as char
                ),
            )
            .ack(AckCode::Interchange("026")),
        ));
    }
    // Fixed layout first: the separators at their fixed offsets.
    if b.len() >= 106 {
        let mut pos = 3;
        let mut fixed = true;
        for w in ISA_WIDTHS.iter().take(15) {
            if b[pos] != el {
                fixed = false;
                break;
            }
            pos += 1 + w;
        }
        if fixed && b[103] == el && b[..104].iter().filter(|&&c| c == el).count() == 16 {
            let d = Delimiters {
                element: el,
                repetition: repetition_of(b[82]),
                component: b[104],
                segment: b[105],
            };
            check_delimiters(&d, &loc)?;
            return Ok(Some(IsaHeader {
                delimiters: d,
                len: 106,
                fixed_layout: true,
                widths: ISA_WIDTHS.to_vec(),
            }));
        }
    }
    // Otherwise: find the 16 element separators, ISA16 is the next byte, the terminator after it.
    let limit = b.len().min(1024);
    let mut seps = Vec::with_capacity(16);
    for (i, &c) in b[..limit].iter().enumerate().skip(3) {
        if c == el {
            seps.push(i);
            if seps.len() == 16 {
                break;
            }
        }
    }
    if seps.len() < 16 || seps[15] + 2 >= b.len() {
        if !eof && b.len() < 1024 {
            return Ok(None);
        }
        return Err(Box::new(
            Issue::error(
                "isa_truncated",
                loc,
                format!(
                    "the ISA has {} of its 16 elements before the data ends",
                    seps.len().min(16)
                ),
            )
            .ack(AckCode::Interchange("022")),
        ));
    }
    let s16 = seps[15];
    let mut widths: Vec<usize> = seps.windows(2).map(|w| w[1] - w[0] - 1).collect();
    widths.push(1);
    let isa11 = &b[seps[10] + 1..seps[11]];
    let d = Delimiters {
        element: el,
        repetition: if isa11.len() == 1 {
            repetition_of(isa11[0])
        } else {
            None
        },
        component: b[s16 + 1],
        segment: b[s16 + 2],
    };
    check_delimiters(&d, &loc)?;
    Ok(Some(IsaHeader {
        delimiters: d,
        len: s16 + 3,
        fixed_layout: false,
        widths,
    }))
}

fn repetition_of(b: u8) -> Option<u8> {
    if b.is_ascii_alphanumeric() || b == b' ' {
        None
    } else {
        Some(b)
    }
}

fn check_delimiters(d: &Delimiters, loc: &Location) -> Result<(), Box<Issue>> {
    let bad = |c: u8| c.is_ascii_alphanumeric() || c == b' ';
    if bad(d.component) || d.component == d.element {
        return Err(Box::new(
            Issue::error(
                "isa_component_separator",
                loc.with_element(16),
                format!(
                    "ISA16 {:?} cannot be the component separator",
                    d.component as char
                ),
            )
            .ack(AckCode::Interchange("027")),
        ));
    }
    if bad(d.segment) || d.segment == d.element || d.segment == d.component {
        return Err(Box::new(
            Issue::error(
                "isa_segment_terminator",
                loc.clone(),
                format!(
                    "{:?} after ISA16 cannot be the segment terminator",
                    d.segment as char
                ),
            )
            .ack(AckCode::Interchange("022")),
        ));
    }
    if let Some(r) = d.repetition
        && (r == d.element || r == d.component || r == d.segment)
    {
        return Err(Box::new(
            Issue::error(
                "isa_repetition_separator",
                loc.with_element(11),
                "ISA11, the repetition separator, repeats another delimiter",
            )
            .ack(AckCode::Interchange("022")),
        ));
    }
    Ok(())
}

/// Whether the input is an X12 interchange: after an optional byte-order mark and white space,
/// it starts with `ISA`.
pub fn looks_like_x12(data: &[u8]) -> bool {
    let t = data.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(data);
    t.iter()
        .position(|b| !b.is_ascii_whitespace())
        .is_some_and(|i| t[i..].starts_with(b"ISA"))
}

/// A segment borrowed from the input: no copy, no allocation.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    raw: &'a [u8],
    delimiters: Delimiters,
    /// Position of the segment in the input (first segment = 1).
    pub index: usize,
    /// Byte offset of the segment in the input.
    pub offset: usize,
}

impl<'a> Segment<'a> {
    pub fn new(raw: &'a [u8], delimiters: Delimiters, index: usize, offset: usize) -> Self {
        Segment {
            raw,
            delimiters,
            index,
            offset,
        }
    }
    /// The segment without its terminator.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
    pub fn delimiters(&self) -> Delimiters {
        self.delimiters
    }
    /// The segment id (`NM1`).
    #[inline]
    pub fn id(&self) -> &'a [u8] {
        // Ids are two or three characters: look there before searching.
        let el = self.delimiters.element;
        match self.raw {
            [_, _, e, ..] if *e == el => return &self.raw[..2],
            [_, _, _, e, ..] if *e == el => return &self.raw[..3],
            _ => {}
        }
        match memchr(el, self.raw) {
            Some(i) => &self.raw[..i],
            None => self.raw,
        }
    }
    pub fn id_str(&self) -> &'a str {
        std::str::from_utf8(self.id()).unwrap_or("?")
    }
    #[inline]
    pub fn is(&self, id: &[u8]) -> bool {
        self.raw.starts_with(id)
            && (self.raw.len() == id.len() || self.raw[id.len()] == self.delimiters.element)
    }
    /// The elements after the id, in order (`NM1*X3*2` gives `X3`, `2`).
    pub fn elements(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let el = self.delimiters.element;
        let mut parts = self.raw.split(move |&c| c == el);
        parts.next();
        parts
    }
    /// How many elements follow the id (trailing empty ones included).
    #[inline]
    pub fn element_count(&self) -> usize {
        count_byte(self.raw, self.delimiters.element)
    }
    /// Element `n` (1-based, so `element(1)` of `NM1*X3` is `X3`); empty when absent.
    #[inline]
    pub fn element(&self, n: usize) -> &'a [u8] {
        self.elements().nth(n.wrapping_sub(1)).unwrap_or(&[])
    }
    /// Elements 1..=N in an array (absent ones empty): one pass over the segment.
    #[inline]
    pub fn split<const N: usize>(&self) -> [&'a [u8]; N] {
        self.split_rest().0
    }
    /// Elements 1..=N, and what follows the separator after element N (empty when the
    /// segment has no more than N elements), for telling whether more carry data.
    #[inline]
    pub fn split_rest<const N: usize>(&self) -> ([&'a [u8]; N], &'a [u8]) {
        // The array is filled where the caller keeps it, by one function for every N.
        let mut out: [&'a [u8]; N] = [&[]; N];
        let rest = self.split_into(&mut out);
        (out, rest)
    }

    /// Fills `out` with elements 1..=out.len() (left as they are when absent) and returns what
    /// follows the separator after the last of them (empty when there is no more).
    fn split_into(&self, out: &mut [&'a [u8]]) -> &'a [u8] {
        let el = self.delimiters.element;
        let id = self.id().len();
        if id >= self.raw.len() {
            return &[];
        }
        // The separators are found 64 bytes at a time (nearly every segment is shorter), each
        // block's matches taken in order from its mask.
        let bytes = &self.raw[id + 1..];
        if out.is_empty() {
            return bytes;
        }
        let len = bytes.len();
        let mut filled = 0;
        let mut start = 0;
        let mut block = 0;
        loop {
            let mut hits = eq_mask(&bytes[block..len.min(block + 64)], el);
            while hits != 0 {
                let i = block + hits.trailing_zeros() as usize;
                // With all taken, what follows the last one's separator is the rest.
                let Some(slot) = out.get_mut(filled) else {
                    return &bytes[start..];
                };
                *slot = &bytes[start..i];
                filled += 1;
                start = i + 1;
                hits &= hits - 1;
            }
            block += 64;
            if block >= len {
                break;
            }
        }
        match out.get_mut(filled) {
            Some(slot) => {
                *slot = &bytes[start..];
                &[]
            }
            None => &bytes[start..],
        }
    }
    /// The components of an element value of this segment.
    pub fn components(&self, element: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let c = self.delimiters.component;
        element.split(move |&b| b == c)
    }
    /// Components 1..=N of an element value.
    pub fn split_components<const N: usize>(&self, element: &'a [u8]) -> [&'a [u8]; N] {
        let mut out: [&'a [u8]; N] = [&[]; N];
        for (slot, e) in out.iter_mut().zip(self.components(element)) {
            *slot = e;
        }
        out
    }
    /// The repetitions of an element value (one when there is no repetition separator).
    pub fn repetitions(&self, element: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        let r = self.delimiters.repetition;
        element.split(move |&b| Some(b) == r)
    }
    /// The segment as text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.raw).into_owned()
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The high bit of each zero byte of `x` set, every other bit clear (exact: no carries
/// across bytes).
#[inline]
fn zero_bytes(x: u64) -> u64 {
    !((((x & HI7) + HI7) | x) | HI7)
}

/// The first `b` in `s`. Segments are short: the first 64 bytes are searched a word at a time
/// (a vector search costs more to set up than that), the rest with `memchr`.
#[inline]
pub fn find_byte(s: &[u8], b: u8) -> Option<usize> {
    let pattern = LO * u64::from(b);
    let mut base = 0;
    while base + 8 <= s.len() && base < 64 {
        let hits = zero_bytes(word_at(s, base) ^ pattern);
        if hits != 0 {
            return Some(base + (hits.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    if base < 64 {
        // Fewer than eight bytes left.
        return s[base..].iter().position(|&c| c == b).map(|i| base + i);
    }
    memchr(b, &s[base..]).map(|i| base + i)
}

/// Eight bytes of `s` from `at`, as a little-endian word.
#[inline]
fn word_at(s: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"))
}

/// How many times `b` occurs in `s`, eight bytes at a time (segments are short: this beats a
/// vector search there).
#[inline]
pub fn count_byte(s: &[u8], b: u8) -> usize {
    let pattern = LO * u64::from(b);
    let mut chunks = s.chunks_exact(8);
    let mut n = 0;
    for c in chunks.by_ref() {
        let x = u64::from_le_bytes(c.try_into().expect("8 bytes")) ^ pattern;
        // High bit of each byte set when that byte of x is non-zero (exact, no carries across).
        let nonzero = (((x & HI7) + HI7) | x) & !HI7;
        n += 8 - nonzero.count_ones() as usize;
    }
    n + chunks.remainder().iter().filter(|&&c| c == b).count()
}

/// Bits `0..16` set where the 16 bytes of `c` equal `b`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn eq_mask16(c: &[u8; 16], b: u8) -> u32 {
    // SAFETY: `eq_mask16_sse2` needs SSE2, which every x86_64 processor has (it is part of the
    // x86_64 baseline, enabled for this target); it reads only the array it is given.
    unsafe { eq_mask16_sse2(c, b) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
#[inline]
fn eq_mask16_sse2(c: &[u8; 16], b: u8) -> u32 {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set_epi64x, _mm_set1_epi8};
    let lo = u64::from_le_bytes(c[..8].try_into().expect("8 bytes"));
    let hi = u64::from_le_bytes(c[8..].try_into().expect("8 bytes"));
    let v = _mm_set_epi64x(hi as i64, lo as i64);
    _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8))) as u32
}

/// Bits `0..16` set where the 16 bytes of `c` equal `b` (two words, portable).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn eq_mask16(c: &[u8; 16], b: u8) -> u32 {
    let pattern = LO * u64::from(b);
    let lo = gather(zero_bytes(word_at(c, 0) ^ pattern));
    let hi = gather(zero_bytes(word_at(c, 8) ^ pattern));
    (lo | (hi << 8)) as u32
}

/// The high bits of the eight bytes of `hits` (as `zero_bytes` gives them) gathered into bits
/// `0..8`, byte `k` to bit `k`.
#[inline]
fn gather(hits: u64) -> u64 {
    ((hits >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Bit `i` set where `s[i] == b`.
#[inline]
fn eq_mask64(s: &[u8; 64], b: u8) -> u64 {
    let mut m = 0u64;
    for k in 0..4 {
        let c: &[u8; 16] = s[k * 16..k * 16 + 16].try_into().expect("16 bytes");
        m |= u64::from(eq_mask16(c, b)) << (k * 16);
    }
    m
}

/// Bit `i` set where `s[i] == b`, for `s` of at most 64 bytes (only its first 64 are looked at).
/// Sixteen bytes at a time, the last sixteen overlapping the ones before (same bits, so or-ed);
/// fewer than sixteen a word at a time the same way.
#[inline]
fn eq_mask(s: &[u8], b: u8) -> u64 {
    let len = s.len();
    if len >= 64 {
        return eq_mask64(s[..64].try_into().expect("64 bytes"), b);
    }
    if len >= 16 {
        let chunk = |a: usize| {
            let c: &[u8; 16] = s[a..a + 16].try_into().expect("16 bytes");
            u64::from(eq_mask16(c, b)) << a
        };
        let mut m = chunk(0) | chunk(len - 16);
        if len > 32 {
            m |= chunk(16);
        }
        if len > 48 {
            m |= chunk(32);
        }
        return m;
    }
    let pattern = LO * u64::from(b);
    if len >= 8 {
        let lo = gather(zero_bytes(word_at(s, 0) ^ pattern));
        let hi = gather(zero_bytes(word_at(s, len - 8) ^ pattern));
        return lo | (hi << (len - 8));
    }
    // Fewer than eight bytes: one word from two overlapping loads, the bytes past the end zero.
    let w = if len >= 4 {
        let lo = u32::from_le_bytes(s[..4].try_into().expect("4 bytes"));
        let hi = u32::from_le_bytes(s[len - 4..].try_into().expect("4 bytes"));
        u64::from(lo) | (u64::from(hi) << ((len - 4) * 8))
    } else if len >= 2 {
        let lo = u16::from_le_bytes(s[..2].try_into().expect("2 bytes"));
        let hi = u16::from_le_bytes(s[len - 2..].try_into().expect("2 bytes"));
        u64::from(lo) | (u64::from(hi) << ((len - 2) * 8))
    } else if len == 1 {
        u64::from(s[0])
    } else {
        return 0;
    };
    gather(zero_bytes(w ^ pattern)) & ((1u64 << len) - 1)
}

/// Finds the occurrences of one byte in one input in order, 64 bytes at a time: the mask of a
/// block is kept, so each next occurrence costs a `trailing_zeros`. Valid for one input only:
/// a new finder is needed when the input changes (or moves).
#[derive(Debug, Clone, Copy, Default)]
struct BlockFinder {
    /// Where the block whose matches are in `mask` starts (bit `i` for `base + i`; the block
    /// is at most 64 bytes and ends at the end of the input at the latest).
    base: usize,
    mask: u64,
}

impl BlockFinder {
    /// The first `b` in `s` at or after `pos`.
    #[inline(always)]
    fn find(&mut self, s: &[u8], b: u8, pos: usize) -> Option<usize> {
        let off = pos.wrapping_sub(self.base);
        if off < 64 {
            let m = self.mask & (!0u64 << off);
            if m != 0 {
                return Some(self.base + m.trailing_zeros() as usize);
            }
        }
        self.find_in_next_blocks(s, b, pos)
    }

    /// `find` when the block held has no `b` at or after `pos`: the blocks from `pos` on (out
    /// of line, so that the usual case stays small where it is inlined).
    #[inline(never)]
    fn find_in_next_blocks(&mut self, s: &[u8], b: u8, mut pos: usize) -> Option<usize> {
        while let Some(block) = s.get(pos..pos + 64) {
            let mask = eq_mask64(block.try_into().expect("64 bytes"), b);
            self.base = pos;
            self.mask = mask;
            if mask != 0 {
                return Some(pos + mask.trailing_zeros() as usize);
            }
            pos += 64;
        }
        self.find_in_tail(s, b, pos)
    }

    /// `find` in the last bytes, fewer than 64 from `pos`: the last block ends at the end of
    /// `s` (overlapping the one before).
    #[cold]
    fn find_in_tail(&mut self, s: &[u8], b: u8, pos: usize) -> Option<usize> {
        let len = s.len();
        if pos >= len {
            return None;
        }
        let base = len.saturating_sub(64);
        self.base = base;
        self.mask = eq_mask(&s[base..], b) & (!0u64 << (pos - base));
        if self.mask != 0 {
            return Some(base + self.mask.trailing_zeros() as usize);
        }
        None
    }
}

#[inline]
fn is_line_break(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

/// Iterates the segments of a byte slice whose delimiters are known (e.g. one transaction set).
pub struct Segments<'a> {
    data: &'a [u8],
    pos: usize,
    delimiters: Delimiters,
    index: usize,
    base_offset: usize,
    terminators: BlockFinder,
}

impl<'a> Segments<'a> {
    /// `first_index` and `base_offset` say where `data` starts in the whole input.
    pub fn new(
        data: &'a [u8],
        delimiters: Delimiters,
        first_index: usize,
        base_offset: usize,
    ) -> Self {
        Segments {
            data,
            pos: 0,
            delimiters,
            index: first_index,
            base_offset,
            terminators: BlockFinder::default(),
        }
    }
}

impl<'a> Iterator for Segments<'a> {
    type Item = Segment<'a>;
    #[inline(always)]
    fn next(&mut self) -> Option<Segment<'a>> {
        loop {
            while self.pos < self.data.len() && is_line_break(self.data[self.pos]) {
                self.pos += 1;
            }
            if self.pos >= self.data.len() {
                return None;
            }
            let (end, next) =
                match self
                    .terminators
                    .find(self.data, self.delimiters.segment, self.pos)
                {
                    Some(i) => (i, i + 1),
                    None => (self.data.len(), self.data.len()),
                };
            let mut raw = &self.data[self.pos..end];
            while let [body @ .., last] = raw {
                if is_line_break(*last) {
                    raw = body
                } else {
                    break;
                }
            }
            let start = self.pos;
            self.pos = next;
            if raw.is_empty() {
                continue;
            }
            let seg = Segment::new(raw, self.delimiters, self.index, self.base_offset + start);
            self.index += 1;
            return Some(seg);
        }
    }
}

/// What the scanner cuts the input into.
#[derive(Debug, Clone, Copy)]
pub enum Unit<'a> {
    /// A segment outside a transaction set: ISA, GS, GE, IEA, TA1, or a stray one.
    Segment(Segment<'a>),
    /// A transaction set from ST through SE (or up to the next envelope segment when SE is missing).
    Transaction(Transaction<'a>),
}

/// A whole transaction set, borrowed from the input.
#[derive(Debug, Clone, Copy)]
pub struct Transaction<'a> {
    pub bytes: &'a [u8],
    pub delimiters: Delimiters,
    /// Position of its ST in the input.
    pub first_index: usize,
    /// Byte offset of its ST in the input.
    pub offset: usize,
    /// How many segments it has, ST and SE included.
    pub segment_count: usize,
    /// Whether it ended with an SE.
    pub has_se: bool,
}

impl<'a> Transaction<'a> {
    pub fn segments(&self) -> Segments<'a> {
        Segments::new(self.bytes, self.delimiters, self.first_index, self.offset)
    }
}

/// The result of looking for the next unit in a buffer.
enum Scan {
    /// A unit spans `start..end` of the buffer, holding `segments` segments.
    Found {
        start: usize,
        end: usize,
        segments: usize,
        is_tx: bool,
        has_se: bool,
    },
    /// Only line breaks or nothing left.
    End,
    /// More bytes are needed.
    More,
}

/// The state shared by the slice and streaming readers: delimiters in force, segment count.
#[derive(Debug, Clone, Default)]
struct ScanState {
    delimiters: Option<Delimiters>,
    next_index: usize,
    /// Byte offset of buffer position 0 in the whole input.
    base: usize,
}

const ENVELOPE_IDS: [&[u8]; 5] = [b"ISA", b"GS", b"GE", b"IEA", b"ST"];

fn starts_envelope(seg: &[u8], el: u8) -> bool {
    matches!(seg.first(), Some(b'I' | b'G' | b'S'))
        && ENVELOPE_IDS
            .iter()
            .any(|id| seg.starts_with(id) && (seg.len() == id.len() || seg[id.len()] == el))
}

impl ScanState {
    /// Finds the next unit at `buf[pos..]`. ISA segments set the delimiters.
    fn scan(
        &mut self,
        buf: &[u8],
        mut pos: usize,
        eof: bool,
        issues: &mut Vec<Issue>,
    ) -> Result<Scan, X12Error> {
        while pos < buf.len() && (is_line_break(buf[pos]) || buf[pos] == b' ' || buf[pos] == b'\t')
        {
            pos += 1;
        }
        // A byte-order mark before the first ISA.
        if buf[pos..].starts_with(&[0xEF, 0xBB, 0xBF]) {
            pos += 3;
        }
        if pos >= buf.len() {
            return Ok(if eof { Scan::End } else { Scan::More });
        }
        let rest = &buf[pos..];
        if rest.len() < 3 && !eof {
            return Ok(Scan::More);
        }
        if rest.starts_with(b"ISA") {
            let isa = match parse_isa(rest, eof) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(Scan::More),
                Err(issue) => {
                    let mut issue = *issue;
                    issue.location.segment_index = Some(self.next_index);
                    issue.location.byte_offset = Some(self.base + pos);
                    return Err(X12Error::one(issue));
                }
            };
            if !isa.fixed_layout {
                issues.push(
                    Issue::error(
                        "isa_layout",
                        Location {
                            segment_index: Some(self.next_index),
                            segment_id: Some("ISA".into()),
                            byte_offset: Some(self.base + pos),
                            ..Location::default()
                        },
                        format!(
                            "the ISA is not the fixed 106-character layout (element widths {:?}, expected {:?}); read anyway",
                            isa.widths, ISA_WIDTHS
                        ),
                    )
                    .ack(AckCode::Interchange("022")),
                );
            }
            self.delimiters = Some(isa.delimiters);
            return Ok(Scan::Found {
                start: pos,
                end: pos + isa.len,
                segments: 1,
                is_tx: false,
                has_se: false,
            });
        }
        let Some(d) = self.delimiters else {
            return Err(X12Error::one(
                Issue::error(
                    "isa_missing",
                    Location {
                        byte_offset: Some(self.base + pos),
                        segment_index: Some(self.next_index),
                        ..Location::default()
                    },
                    "the data does not start with an ISA segment, so its delimiters are unknown",
                )
                .value(&rest[..rest.len().min(20)]),
            ));
        };
        let mut terminators = BlockFinder::default();
        let Some(first_len) = terminators.find(rest, d.segment, 0) else {
            if !eof {
                return Ok(Scan::More);
            }
            // The last segment has no terminator: take it as it is, and say so.
            issues.push(Issue::error(
                "segment_unterminated",
                Location {
                    byte_offset: Some(self.base + pos),
                    segment_index: Some(self.next_index),
                    ..Location::default()
                },
                "the input ends without a segment terminator",
            ));
            let trimmed = rest
                .iter()
                .rposition(|&b| !is_line_break(b))
                .map_or(0, |i| i + 1);
            let is_tx = rest.starts_with(b"ST") && rest.get(2) == Some(&d.element);
            return Ok(Scan::Found {
                start: pos,
                end: pos + trimmed,
                segments: 1,
                is_tx,
                has_se: false,
            });
        };
        let is_st = rest.starts_with(b"ST") && rest.get(2) == Some(&d.element);
        if !is_st {
            return Ok(Scan::Found {
                start: pos,
                end: pos + first_len + 1,
                segments: 1,
                is_tx: false,
                has_se: false,
            });
        }
        // A transaction set: take segments until SE, or until an envelope segment says SE is missing.
        let mut p = first_len + 1;
        let mut count = 1;
        loop {
            while p < rest.len() && is_line_break(rest[p]) {
                p += 1;
            }
            if p >= rest.len() {
                if !eof {
                    return Ok(Scan::More);
                }
                return Ok(Scan::Found {
                    start: pos,
                    end: pos + p,
                    segments: count,
                    is_tx: true,
                    has_se: false,
                });
            }
            let seg_rest = &rest[p..];
            if starts_envelope(seg_rest, d.element) {
                return Ok(Scan::Found {
                    start: pos,
                    end: pos + p,
                    segments: count,
                    is_tx: true,
                    has_se: false,
                });
            }
            match terminators.find(rest, d.segment, p) {
                Some(i) => {
                    count += 1;
                    let is_se = seg_rest.starts_with(b"SE") && seg_rest.get(2) == Some(&d.element);
                    p = i + 1;
                    if is_se {
                        return Ok(Scan::Found {
                            start: pos,
                            end: pos + p,
                            segments: count,
                            is_tx: true,
                            has_se: true,
                        });
                    }
                }
                None => {
                    if !eof {
                        return Ok(Scan::More);
                    }
                    count += 1;
                    return Ok(Scan::Found {
                        start: pos,
                        end: rest.len() + pos,
                        segments: count,
                        is_tx: true,
                        has_se: false,
                    });
                }
            }
        }
    }

    fn unit<'a>(
        &mut self,
        buf: &'a [u8],
        start: usize,
        end: usize,
        segments: usize,
        is_tx: bool,
        has_se: bool,
    ) -> Unit<'a> {
        let d = self.delimiters.unwrap_or_default();
        let index = self.next_index;
        self.next_index += segments;
        let bytes = &buf[start..end];
        if is_tx {
            Unit::Transaction(Transaction {
                bytes,
                delimiters: d,
                first_index: index,
                offset: self.base + start,
                segment_count: segments,
                has_se,
            })
        } else {
            let mut raw = bytes.strip_suffix(&[d.segment]).unwrap_or(bytes);
            while let [body @ .., last] = raw {
                if is_line_break(*last) {
                    raw = body
                } else {
                    break;
                }
            }
            Unit::Segment(Segment::new(raw, d, index, self.base + start))
        }
    }
}

/// Cuts an in-memory input into units.
pub struct SliceReader<'a> {
    data: &'a [u8],
    pos: usize,
    state: ScanState,
    issues: Vec<Issue>,
    failed: bool,
}

impl<'a> SliceReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        SliceReader {
            data,
            pos: 0,
            state: ScanState {
                next_index: 1,
                ..ScanState::default()
            },
            issues: vec![],
            failed: false,
        }
    }
    /// Issues found while cutting (ISA layout, missing terminator); drained by the caller.
    pub fn take_issues(&mut self) -> Vec<Issue> {
        std::mem::take(&mut self.issues)
    }
    pub fn delimiters(&self) -> Option<Delimiters> {
        self.state.delimiters
    }
}

impl<'a> Iterator for SliceReader<'a> {
    type Item = Result<Unit<'a>, X12Error>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.state.scan(self.data, self.pos, true, &mut self.issues) {
            Ok(Scan::Found {
                start,
                end,
                segments,
                is_tx,
                has_se,
            }) => {
                self.pos = end;
                Some(Ok(self
                    .state
                    .unit(self.data, start, end, segments, is_tx, has_se)))
            }
            Ok(Scan::End) | Ok(Scan::More) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Cuts any `Read` into units in bounded memory: the buffer holds the unit being read and
/// grows only for a transaction set larger than it (up to `max_unit` bytes).
pub struct StreamReader<R: Read> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    state: ScanState,
    issues: Vec<Issue>,
    max_unit: usize,
    failed: bool,
}

impl<R: Read> StreamReader<R> {
    pub fn new(inner: R) -> Self {
        Self::with_capacity(inner, 1 << 20)
    }
    pub fn with_capacity(inner: R, capacity: usize) -> Self {
        StreamReader {
            inner,
            buf: vec![0; capacity.max(4096)],
            start: 0,
            end: 0,
            eof: false,
            state: ScanState {
                next_index: 1,
                ..ScanState::default()
            },
            issues: vec![],
            max_unit: 256 << 20,
            failed: false,
        }
    }
    /// The largest transaction set accepted (default 256 MiB).
    pub fn max_unit(mut self, bytes: usize) -> Self {
        self.max_unit = bytes;
        self
    }
    pub fn take_issues(&mut self) -> Vec<Issue> {
        std::mem::take(&mut self.issues)
    }
    /// Bytes of buffer held (for memory checks).
    pub fn buffer_capacity(&self) -> usize {
        self.buf.len()
    }

    fn fill(&mut self) -> Result<(), X12Error> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.state.base += self.start;
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= self.max_unit {
                return Err(X12Error::one(Issue::error(
                    "unit_too_large",
                    Location {
                        byte_offset: Some(self.state.base),
                        segment_index: Some(self.state.next_index),
                        ..Location::default()
                    },
                    format!("a transaction set is larger than {} bytes", self.max_unit),
                )));
            }
            let n = (self.buf.len() * 2).min(self.max_unit);
            self.buf.resize(n, 0);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(X12Error::one(Issue::error(
                        "io",
                        Location {
                            byte_offset: Some(self.state.base + self.end),
                            ..Location::default()
                        },
                        format!("reading the input failed: {e}"),
                    )));
                }
            }
        }
    }

    /// The next unit, borrowed from the reader's buffer until the next call.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<Unit<'_>, X12Error>> {
        if self.failed {
            return None;
        }
        loop {
            let scan = self.state.scan(
                &self.buf[..self.end],
                self.start,
                self.eof,
                &mut self.issues,
            );
            match scan {
                Ok(Scan::Found {
                    start,
                    end,
                    segments,
                    is_tx,
                    has_se,
                }) => {
                    self.start = end;
                    return Some(Ok(self.state.unit(
                        &self.buf[..self.end],
                        start,
                        end,
                        segments,
                        is_tx,
                        has_se,
                    )));
                }
                Ok(Scan::End) => return None,
                Ok(Scan::More) => {
                    if self.eof {
                        return None;
                    }
                    if let Err(e) = self.fill() {
                        self.failed = true;
                        return Some(Err(e));
                    }
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*T*:~\r\nGS*HI*S*R*20240101*1200*1*X*005010X217~\r\nST*278*0001*005010X217~BHT*0007*13*REF1*20240101*1200~SE*3*0001~\r\nGE*1*1~IEA*1*000000001~\r\n";

    fn ids(units: &[Unit]) -> Vec<String> {
        units
            .iter()
            .map(|u| match u {
                Unit::Segment(s) => s.id_str().to_owned(),
                Unit::Transaction(t) => format!("TX{}", t.segment_count),
            })
            .collect()
    }

    #[test]
    fn fixed_isa_and_units() {
        let h = parse_isa(SAMPLE, true).unwrap().unwrap();
        assert!(h.fixed_layout);
        assert_eq!(
            h.delimiters,
            Delimiters {
                element: b'*',
                repetition: Some(b'^'),
                component: b':',
                segment: b'~'
            }
        );
        let units: Vec<Unit> = SliceReader::new(SAMPLE).map(Result::unwrap).collect();
        assert_eq!(ids(&units), ["ISA", "GS", "TX3", "GE", "IEA"]);
        let Unit::Transaction(t) = units[2] else {
            panic!()
        };
        let segs: Vec<_> = t.segments().collect();
        assert_eq!(segs[1].id(), b"BHT");
        assert_eq!(segs[1].index, 4);
        assert_eq!(segs[1].element(3), b"REF1");
        assert_eq!(segs[1].split::<6>()[5], b"");
        let Unit::Segment(iea) = units[4] else {
            panic!()
        };
        assert_eq!(iea.index, 7);
        assert_eq!(iea.raw(), b"IEA*1*000000001");
    }

    #[test]
    fn other_delimiters_and_streaming_agree() {
        let text = String::from_utf8(SAMPLE.to_vec())
            .unwrap()
            .replace('*', "|")
            .replace('~', "'")
            .replace(":~", "");
        let data = text.into_bytes();
        let h = parse_isa(&data, true).unwrap().unwrap();
        assert_eq!(h.delimiters.element, b'|');
        assert_eq!(h.delimiters.segment, b'\'');
        let slice: Vec<String> = ids(&SliceReader::new(&data)
            .map(Result::unwrap)
            .collect::<Vec<_>>());
        // A tiny buffer forces refills and growth in the middle of segments.
        let mut r = StreamReader::with_capacity(&data[..], 16);
        let mut streamed = vec![];
        while let Some(u) = r.next() {
            streamed.push(ids(&[u.unwrap()]).remove(0));
        }
        assert_eq!(slice, streamed);
    }

    /// `split_rest` as a plain loop over the elements.
    fn split_rest_reference<const N: usize>(raw: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut parts = raw.split(|&b| b == b'*');
        parts.next();
        let all: Vec<&[u8]> = parts.collect();
        let out = (0..N)
            .map(|i| all.get(i).copied().unwrap_or(b"").to_vec())
            .collect();
        let rest = if all.len() > N {
            all[N..].join(&b'*')
        } else {
            vec![]
        };
        (out, rest)
    }

    #[test]
    fn find_byte_agrees_with_memchr() {
        for len in 0..150usize {
            for at in (0..len).chain([usize::MAX]) {
                let mut s = vec![b'A'; len];
                if at < len {
                    s[at] = b'~';
                    if at + 3 < len {
                        s[at + 3] = b'~';
                    }
                }
                assert_eq!(find_byte(&s, b'~'), memchr(b'~', &s), "{len} {at}");
            }
        }
    }

    /// A small xorshift generator for the tests' random inputs.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        /// Random bytes from `alphabet`.
        fn bytes(&mut self, len: usize, alphabet: &[u8]) -> Vec<u8> {
            (0..len)
                .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
                .collect()
        }
    }

    #[test]
    fn eq_mask_agrees_with_a_plain_loop() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for len in 0..=80usize {
            let mut inputs = vec![vec![b'A'; len], vec![b'~'; len]];
            for at in 0..len {
                // One match at every offset, and one next to a high byte.
                let mut s = vec![b'A'; len];
                s[at] = b'~';
                inputs.push(s.clone());
                s[(at + 1) % len] = 0xFE;
                inputs.push(s);
            }
            for _ in 0..20 {
                inputs.push(rng.bytes(len, b"~A*\n\r\x00\xff\x7e\x7f"));
            }
            for s in &inputs {
                for b in [b'~', b'\n', 0u8, 0xFF] {
                    let want = s
                        .iter()
                        .take(64)
                        .enumerate()
                        .filter(|&(_, &c)| c == b)
                        .fold(0u64, |m, (i, _)| m | 1 << i);
                    assert_eq!(eq_mask(s, b), want, "{s:?} {b}");
                }
            }
        }
    }

    #[test]
    fn block_finder_agrees_with_memchr() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut inputs: Vec<Vec<u8>> = vec![vec![], b"~".to_vec(), b"ABC".to_vec()];
        for len in [
            1usize, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 200, 1000,
        ] {
            inputs.push(vec![b'A'; len]);
            inputs.push(vec![b'~'; len]);
            for at in [0, 1, 62, 63, 64, 65, 127, 128, len - 1] {
                if at < len {
                    let mut s = vec![b'A'; len];
                    s[at] = b'~';
                    inputs.push(s);
                }
            }
            for density in [2u64, 5, 23, 70] {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        if rng.next().is_multiple_of(density) {
                            b'~'
                        } else {
                            b'A'
                        }
                    })
                    .collect();
                inputs.push(s);
            }
        }
        for s in &inputs {
            // Every occurrence in order from the start, as the iterators take them.
            let mut f = BlockFinder::default();
            let mut pos = 0;
            let mut got = vec![];
            while let Some(i) = f.find(s, b'~', pos) {
                got.push(i);
                pos = i + 1;
            }
            let want: Vec<usize> = memchr::memchr_iter(b'~', s).collect();
            assert_eq!(got, want, "{s:?}");
            // Searches from any position, forward jumps and all, with one finder.
            let mut f = BlockFinder::default();
            let mut pos = 0;
            while pos <= s.len() + 1 {
                let want = s.get(pos..).and_then(|r| memchr(b'~', r)).map(|i| pos + i);
                assert_eq!(f.find(s, b'~', pos), want, "{s:?} {pos}");
                pos += 1 + (rng.next() % 9) as usize;
            }
        }
    }

    /// `Segments` as a plain loop: cut at each terminator, line breaks around segments dropped,
    /// empty segments skipped.
    fn segments_reference(data: &[u8], term: u8) -> Vec<(Vec<u8>, usize, usize)> {
        let mut out = vec![];
        let mut pos = 0;
        let mut index = 1;
        while pos < data.len() {
            while pos < data.len() && (data[pos] == b'\r' || data[pos] == b'\n') {
                pos += 1;
            }
            if pos >= data.len() {
                break;
            }
            let end = data[pos..]
                .iter()
                .position(|&c| c == term)
                .map_or(data.len(), |i| pos + i);
            let mut raw = &data[pos..end];
            while let [body @ .., b'\r' | b'\n'] = raw {
                raw = body;
            }
            if !raw.is_empty() {
                out.push((raw.to_vec(), index, 100 + pos));
                index += 1;
            }
            pos = (end + 1).min(data.len().max(end));
        }
        out
    }

    #[test]
    fn segments_agree_with_a_plain_loop() {
        let mut rng = Rng(0x5851_f42d_4c95_7f2d);
        let mut inputs: Vec<Vec<u8>> = vec![
            vec![],
            b"~".to_vec(),
            b"\n".to_vec(),
            b"\r\n\r\n".to_vec(),
            b"ST*278~".to_vec(),
            b"ST*278".to_vec(),
            b"ST*278~\r\nBHT*0007~\nSE*3*1~\r".to_vec(),
            b"~~\n~\r\n~A~".to_vec(),
        ];
        for len in [1usize, 10, 62, 63, 64, 65, 66, 127, 128, 129, 300, 1000] {
            for _ in 0..12 {
                inputs.push(rng.bytes(len, b"AB*~~\n\r"));
                inputs.push(rng.bytes(len, b"ABCDEFGH*:^~"));
            }
            // Generated batches: a line break after every terminator, segments of every length.
            let mut s = vec![];
            while s.len() < len {
                let n = (rng.next() % 40) as usize;
                s.extend(rng.bytes(n, b"ABC*"));
                s.extend_from_slice(match rng.next() % 3 {
                    0 => b"~",
                    1 => b"~\n",
                    _ => b"~\r\n",
                });
            }
            inputs.push(s);
        }
        for term in [b'~', b'\n'] {
            let d = Delimiters {
                segment: term,
                ..Delimiters::default()
            };
            for s in &inputs {
                let got: Vec<(Vec<u8>, usize, usize)> = Segments::new(s, d, 1, 100)
                    .map(|g| (g.raw().to_vec(), g.index, g.offset))
                    .collect();
                assert_eq!(got, segments_reference(s, term), "{s:?}");
            }
        }
    }

    #[test]
    fn transactions_are_cut_the_same_at_every_length() {
        // Segments of every length put the terminators at every offset of a block; the
        // streaming reader with small buffers cuts them in the middle.
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let head = &SAMPLE[..SAMPLE.windows(2).position(|w| w == b"ST").unwrap()];
        for breaks in [&b""[..], b"\n", b"\r\n"] {
            let mut data = head.to_vec();
            let mut want = vec!["ISA".to_owned(), "GS".to_owned()];
            for tx in 0..30 {
                let n = (rng.next() % 12) as usize;
                data.extend_from_slice(b"ST*278*0001~");
                data.extend_from_slice(breaks);
                for k in 0..n {
                    let len = (tx * 7 + k * 13) % 90;
                    data.extend_from_slice(b"REF*");
                    data.extend(rng.bytes(len, b"AB*:"));
                    data.push(b'~');
                    data.extend_from_slice(breaks);
                }
                if tx % 10 == 9 {
                    // No SE: the set ends at the GE.
                    want.push(format!("TX{}", n + 1));
                } else {
                    data.extend_from_slice(b"SE*3*0001~");
                    data.extend_from_slice(breaks);
                    want.push(format!("TX{}", n + 2));
                }
                if tx % 10 == 9 {
                    data.extend_from_slice(b"GE*1*1~");
                    data.extend_from_slice(breaks);
                    data.extend_from_slice(b"GS*HI*S*R*20240101*1200*1*X*005010X217~");
                    want.push("GE".to_owned());
                    want.push("GS".to_owned());
                }
            }
            data.extend_from_slice(b"GE*1*1~IEA*1*000000001");
            want.push("GE".to_owned());
            want.push("IEA".to_owned());
            // Sets cut off at the end of the input, in their last segment (of every length).
            for cut in 0..200usize {
                let mut tail = b"GS*HI*S*R*20240101*1200*1*X*005010X217~ST*278*0001~".to_vec();
                tail.extend_from_slice(breaks);
                for k in 0..6 {
                    tail.extend_from_slice(b"REF*");
                    tail.extend(rng.bytes((k * 11 + cut) % 70, b"AB*"));
                    tail.push(b'~');
                    tail.extend_from_slice(breaks);
                }
                let whole = tail.len();
                let tail = &tail[..(whole - cut % 150).max(52)];
                let mut input = head.to_vec();
                input.extend_from_slice(tail);
                let units: Vec<Unit> = SliceReader::new(&input).map(Result::unwrap).collect();
                // The plain per-segment count: terminators after the ST, plus an unterminated rest.
                let st = head.len() + tail.windows(2).position(|w| w == b"ST").unwrap();
                let body = &input[st..];
                let mut want_count = body.iter().filter(|&&b| b == b'~').count();
                let after = &body[body.iter().rposition(|&b| b == b'~').unwrap() + 1..];
                if after.iter().any(|&b| b != b'\r' && b != b'\n') {
                    want_count += 1;
                }
                let Some(Unit::Transaction(t)) = units.last() else {
                    panic!("{cut}")
                };
                assert_eq!(t.segment_count, want_count, "{cut}");
                assert_eq!(t.segments().count(), want_count, "{cut}");
                assert!(!t.has_se);
            }
            let units: Vec<Unit> = SliceReader::new(&data).map(Result::unwrap).collect();
            assert_eq!(ids(&units), want);
            let mut index = 1;
            for u in &units {
                match u {
                    Unit::Segment(s) => {
                        assert_eq!(s.index, index);
                        index += 1;
                    }
                    Unit::Transaction(t) => {
                        assert_eq!(t.first_index, index);
                        let segs: Vec<Segment> = t.segments().collect();
                        assert_eq!(segs.len(), t.segment_count);
                        for (k, s) in segs.iter().enumerate() {
                            assert_eq!(s.index, index + k);
                            assert_eq!(&data[s.offset..s.offset + s.raw().len()], s.raw());
                        }
                        index += t.segment_count;
                    }
                }
            }
            // What a unit is and where, for comparing the two readers.
            let entry = |u: &Unit| match u {
                Unit::Segment(s) => (s.id_str().to_owned(), s.index, s.offset, 0),
                Unit::Transaction(t) => (
                    format!("TX{}", t.segment_count),
                    t.first_index,
                    t.offset,
                    t.segments().count(),
                ),
            };
            let sliced: Vec<_> = units.iter().map(entry).collect();
            for cap in [16, 64, 100, 4096] {
                let mut r = StreamReader::with_capacity(&data[..], cap);
                let mut streamed = vec![];
                while let Some(u) = r.next() {
                    streamed.push(entry(&u.unwrap()));
                }
                assert_eq!(streamed, sliced, "{cap}");
            }
        }
    }

    #[test]
    fn split_rest_agrees_with_a_plain_loop() {
        let d = Delimiters::default();
        let mut raws: Vec<Vec<u8>> = vec![];
        for len in 0..150usize {
            for seed in 0..12u64 {
                // Ids and element lengths that put separators at every offset of a word.
                let mut raw = b"NM1".to_vec();
                let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ len as u64;
                for _ in 0..len {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    raw.push(if x.is_multiple_of(3) {
                        b'*'
                    } else {
                        b'A' + (x % 26) as u8
                    });
                }
                raws.push(raw);
            }
        }
        raws.push(b"HL*1**20*1".to_vec());
        raws.push(b"SV1*HC:99213*100*UN*1*11*****************Y*".to_vec());
        for raw in &raws {
            let seg = Segment::new(raw, d, 1, 0);
            fn check<const N: usize>(seg: &Segment, raw: &[u8]) {
                let (got, rest) = seg.split_rest::<N>();
                let (want, want_rest) = split_rest_reference::<N>(raw);
                let got: Vec<Vec<u8>> = got.iter().map(|g| g.to_vec()).collect();
                assert_eq!(got, want, "{:?} {N}", String::from_utf8_lossy(raw));
                assert_eq!(rest, want_rest, "{:?} {N}", String::from_utf8_lossy(raw));
            }
            check::<1>(&seg, raw);
            check::<2>(&seg, raw);
            check::<3>(&seg, raw);
            check::<4>(&seg, raw);
            check::<7>(&seg, raw);
            check::<9>(&seg, raw);
            check::<21>(&seg, raw);
        }
    }

    #[test]
    fn split_and_count_agree_with_the_element_iterator() {
        let d = Delimiters::default();
        for raw in [
            &b"NM1*X3*2*NAME"[..],
            b"NM1",
            b"NM1*",
            b"NM1**",
            b"HL*1**20*1",
            b"SV1*HC:99213*100*UN*1*11*****************Y*",
            b"X",
            b"",
            b"AB*",
            b"ABCD*E",
        ] {
            let seg = Segment::new(raw, d, 1, 0);
            let want: Vec<&[u8]> = seg.elements().collect();
            let got = seg.split::<24>();
            for (i, g) in got.iter().enumerate() {
                assert_eq!(*g, want.get(i).copied().unwrap_or(b""), "{raw:?} {i}");
            }
            assert_eq!(seg.split::<2>(), [seg.element(1), seg.element(2)]);
            let (_, rest) = seg.split_rest::<2>();
            let more: Vec<&[u8]> = want.iter().skip(2).copied().collect();
            assert_eq!(
                rest.is_empty(),
                more.len() <= 1 && more.iter().all(|m| m.is_empty()),
                "{raw:?}"
            );
            assert_eq!(seg.element_count(), want.len(), "{raw:?}");
            assert_eq!(
                count_byte(raw, b'*'),
                raw.iter().filter(|&&b| b == b'*').count()
            );
        }
    }

    #[test]
    fn loose_isa_is_read_and_reported() {
        let data = b"ISA*00* *00* *ZZ*146111111 *ZZ*617591011LTCPP\n*170406*1130*|*00501*100000001*0*P*:~\nGS*HI*A*B*20170406*1130*1*X*005010X217~";
        let mut r = SliceReader::new(data);
        let units: Vec<_> = r.by_ref().map(Result::unwrap).collect();
        assert_eq!(ids(&units), ["ISA", "GS"]);
        let issues = r.take_issues();
        assert_eq!(issues[0].code, "isa_layout");
        assert_eq!(issues[0].location.segment_index, Some(1));
    }

    #[test]
    fn garbage_is_located() {
        let err = SliceReader::new(b"HELLO*WORLD~")
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(err.issues[0].code, "isa_missing");
        let err = SliceReader::new(b"ISA*00*").next().unwrap().unwrap_err();
        assert_eq!(err.issues[0].code, "isa_truncated");
    }

    #[test]
    fn missing_se_stops_at_the_envelope() {
        let data = b"ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*T*:~GS*HI*S*R*20240101*1200*1*X*005010X217~ST*278*0001~BHT*0007~GE*1*1~IEA*1*000000001~";
        let units: Vec<Unit> = SliceReader::new(data).map(Result::unwrap).collect();
        assert_eq!(ids(&units), ["ISA", "GS", "TX2", "GE", "IEA"]);
        let Unit::Transaction(t) = units[2] else {
            panic!()
        };
        assert!(!t.has_se);
    }
}
