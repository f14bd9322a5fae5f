//! 278 files of any size, one transaction set at a time: a `StreamReader` cuts the input, an
//! `EnvelopeTracker` that keeps no summary checks the envelopes, and every 278 is decoded and
//! handed to a callback, then dropped. Memory is bounded by the largest transaction set (the
//! reader's buffer), whatever the size of the input.
//!
//! What the callback sees is what `tx278::decode_all` returns, in input order: each
//! transaction set as a `Decoded` (a set that is not a 278 carries a `not_a_278` warning),
//! each 999 set (after its `Decoded`) and TA1 segment as an `Event::Acknowledgement`, and
//! each problem found outside the sets as an `Event::Issue` tagged with where it came from, so
//! a caller can order them as `decode_all` does (see `Origin`).

use std::io::{self, Read};

use super::ack::{Acknowledgement, parse_999, parse_ta1};
use super::envelope::EnvelopeTracker;
use super::error::Issue;
use super::syntax::{SliceReader, StreamReader, Unit};
use super::tx278::{Decoded, Message278, decode_unit};

/// Where an issue outside the transaction sets came from. `decode_all` lists them in this
/// order: every `Stop` issue, then every `Syntax` issue, then every `Envelope` issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// The reader could not go on (no ISA, a broken ISA, a transaction set too large): the
    /// input is not read past this point.
    Stop,
    /// Found while cutting the input (an ISA not in the fixed layout, no final terminator).
    Syntax,
    /// Envelope structure: ISA/IEA, GS/GE, ST/SE counts and control numbers, stray segments.
    Envelope,
}

/// What the stream reports, in input order.
#[derive(Debug)]
pub enum Event {
    /// One transaction set: its header and location, what it meant (`None` when it could not
    /// be understood, or is not a 278), and its issues.
    Transaction(Decoded),
    /// A problem outside any transaction set.
    Issue { origin: Origin, issue: Issue },
    /// A 999 transaction set or a TA1 segment, read as an acknowledgement, with the problems
    /// found in its content.
    Acknowledgement {
        ack: Box<Acknowledgement>,
        issues: Vec<Issue>,
    },
}

/// Counts of what was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Bytes read from the input.
    pub bytes: u64,
    /// Transaction sets, 278 or not.
    pub transactions: u64,
    /// 278 responses decoded.
    pub responses: u64,
    /// 278 requests decoded.
    pub requests: u64,
    /// Transaction sets without a message (not a 278, or a 278 that could not be understood).
    pub undecoded: u64,
    /// Issues outside the transaction sets.
    pub file_issues: u64,
    /// The reader's largest buffer, in bytes (the memory the input itself needed).
    pub buffer_bytes: usize,
}

/// Counts bytes and keeps the first read error, so that an I/O failure is returned as one
/// (the reader itself would turn it into an X12 issue).
struct Tap<R> {
    inner: R,
    bytes: u64,
    error: Option<io::Error>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let again = io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(again)
            }
        }
    }
}

/// The shared per-unit work of both readers.
struct Core<F> {
    tracker: EnvelopeTracker,
    last_interchange: Option<usize>,
    stats: StreamStats,
    on: F,
}

impl<F: FnMut(Event) -> io::Result<()>> Core<F> {
    fn new(on: F) -> Self {
        Core {
            tracker: EnvelopeTracker::new(),
            last_interchange: None,
            stats: StreamStats::default(),
            on,
        }
    }

    fn unit(&mut self, unit: Unit) -> io::Result<()> {
        if let Some(h) = self.tracker.interchange() {
            self.last_interchange = Some(h.index);
        }
        match unit {
            Unit::Segment(s) if s.is(b"TA1") => {
                self.tracker.segment(&s);
                self.envelope_issues()?;
                let mut issues = Vec::new();
                let ack = Box::new(Acknowledgement::Interchange(parse_ta1(
                    &s,
                    &self.tracker,
                    &mut issues,
                )));
                return (self.on)(Event::Acknowledgement { ack, issues });
            }
            Unit::Segment(s) => self.tracker.segment(&s),
            Unit::Transaction(tx) => {
                let d = decode_unit(&mut self.tracker, &tx);
                self.stats.transactions += 1;
                if d.transaction.id == "999" {
                    // Reported as a set (not a 278), then read as the acknowledgement it is.
                    self.stats.undecoded += 1;
                    self.envelope_issues()?;
                    let mut issues = Vec::new();
                    let ack = Box::new(Acknowledgement::Implementation(parse_999(
                        &tx,
                        &d.transaction,
                        &self.tracker,
                        &mut issues,
                    )));
                    (self.on)(Event::Transaction(d))?;
                    return (self.on)(Event::Acknowledgement { ack, issues });
                }
                match &d.message {
                    Some(Message278::Response(_)) => self.stats.responses += 1,
                    Some(Message278::Request(_)) => self.stats.requests += 1,
                    None => self.stats.undecoded += 1,
                }
                // The tracker's issues about this set's envelope come before the set.
                self.envelope_issues()?;
                return (self.on)(Event::Transaction(d));
            }
        }
        self.envelope_issues()
    }

    fn issues(&mut self, origin: Origin, issues: Vec<Issue>) -> io::Result<()> {
        // Issues found while cutting the input belong to the interchange being read (as in
        // `envelope::walk`): the current one, or the one just closed.
        if let Some(h) = self.tracker.interchange() {
            self.last_interchange = Some(h.index);
        }
        for mut issue in issues {
            issue.location.interchange = issue.location.interchange.or(self.last_interchange);
            self.stats.file_issues += 1;
            (self.on)(Event::Issue { origin, issue })?;
        }
        Ok(())
    }

    fn envelope_issues(&mut self) -> io::Result<()> {
        let issues = self.tracker.take_issues();
        if issues.is_empty() {
            return Ok(());
        }
        self.issues(Origin::Envelope, issues)
    }

    fn finish(mut self) -> io::Result<StreamStats> {
        self.tracker.finish();
        self.envelope_issues()?;
        Ok(self.stats)
    }
}

/// Reads every 278 of `input` in bounded memory, calling `on` for each transaction set and
/// each issue outside them, in input order. Stops early only when `on` returns an error or
/// the input cannot be read (both returned as they are); bad X12 is reported through `on`.
pub fn read_278s<R: Read>(
    input: R,
    on: impl FnMut(Event) -> io::Result<()>,
) -> io::Result<StreamStats> {
    read_278s_with_capacity(input, 1 << 20, on)
}

/// `read_278s` with the reader's initial buffer size (it grows only for a larger set).
pub fn read_278s_with_capacity<R: Read>(
    input: R,
    capacity: usize,
    on: impl FnMut(Event) -> io::Result<()>,
) -> io::Result<StreamStats> {
    let mut tap = Tap {
        inner: input,
        bytes: 0,
        error: None,
    };
    let mut core = Core::new(on);
    let mut buffer = 0;
    {
        let mut reader = StreamReader::with_capacity(&mut tap, capacity);
        while let Some(next) = reader.next() {
            match next {
                Ok(unit) => core.unit(unit)?,
                Err(e) => core.issues(Origin::Stop, e.issues)?,
            }
            let soft = reader.take_issues();
            if !soft.is_empty() {
                core.issues(Origin::Syntax, soft)?;
            }
            buffer = buffer.max(reader.buffer_capacity());
        }
        buffer = buffer.max(reader.buffer_capacity());
        let soft = reader.take_issues();
        core.issues(Origin::Syntax, soft)?;
    }
    if let Some(e) = tap.error.take() {
        return Err(e);
    }
    let mut stats = core.finish()?;
    stats.bytes = tap.bytes;
    stats.buffer_bytes = buffer;
    Ok(stats)
}

/// The same over an in-memory input (no copy into a buffer).
pub fn read_278s_slice(
    data: &[u8],
    on: impl FnMut(Event) -> io::Result<()>,
) -> io::Result<StreamStats> {
    let mut core = Core::new(on);
    let mut reader = SliceReader::new(data);
    while let Some(next) = reader.next() {
        match next {
            Ok(unit) => core.unit(unit)?,
            Err(e) => core.issues(Origin::Stop, e.issues)?,
        }
        let soft = reader.take_issues();
        if !soft.is_empty() {
            core.issues(Origin::Syntax, soft)?;
        }
    }
    let soft = reader.take_issues();
    core.issues(Origin::Syntax, soft)?;
    let mut stats = core.finish()?;
    stats.bytes = data.len() as u64;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x12::tx278::decode_all;

    const ISA: &str = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*T*:~";

    /// Everything `decode_all` says, in its order, from the events.
    fn collect(events: Vec<Event>) -> (Vec<Decoded>, Vec<Issue>) {
        let mut txs = vec![];
        let mut file: Vec<(Origin, Issue)> = vec![];
        for e in events {
            match e {
                Event::Transaction(d) => txs.push(d),
                Event::Issue { origin, issue } => file.push((origin, issue)),
                Event::Acknowledgement { .. } => {}
            }
        }
        file.sort_by_key(|(o, _)| *o);
        (txs, file.into_iter().map(|(_, i)| i).collect())
    }

    fn check_agrees(data: &[u8]) {
        let all = decode_all(data);
        for cap in [16, 4096, 1 << 20] {
            let mut events = vec![];
            let stats = read_278s_with_capacity(data, cap, |e| {
                events.push(e);
                Ok(())
            })
            .unwrap();
            assert_eq!(stats.bytes, data.len() as u64);
            assert_eq!(stats.transactions as usize, all.transactions.len());
            let (txs, issues) = collect(events);
            assert_eq!(issues, all.issues, "capacity {cap}");
            assert_eq!(txs.len(), all.transactions.len());
            for (a, b) in txs.iter().zip(&all.transactions) {
                assert_eq!(a.transaction, b.transaction);
                assert_eq!(a.message, b.message);
                assert_eq!(a.issues, b.issues);
            }
        }
        let mut events = vec![];
        read_278s_slice(data, |e| {
            events.push(e);
            Ok(())
        })
        .unwrap();
        let (_, issues) = collect(events);
        assert_eq!(issues, all.issues);
        // Validation's reading: the same issues, sets and envelope summary, no messages.
        let lean = crate::x12::tx278::decode_issues(data);
        assert_eq!(lean.issues, all.issues);
        assert_eq!(format!("{:?}", lean.summary), format!("{:?}", all.summary));
        assert_eq!(lean.transactions.len(), all.transactions.len());
        for (a, b) in lean.transactions.iter().zip(&all.transactions) {
            assert_eq!(a.transaction, b.transaction);
            assert_eq!(a.issues, b.issues);
            assert!(a.message.is_none());
        }
    }

    #[test]
    fn agrees_with_decode_all() {
        let good = format!(
            "{ISA}\nGS*HI*S*R*20240101*1200*5*X*005010X217~\nST*278*0001*005010X217~BHT*0007*11*REF1*20240101*1200~HL*1**20*1~NM1*X3*2*PAYER~HL*2*1*21*1~NM1*1P*2*DOC~HL*3*2*22*1~NM1*IL*1*DOE~HL*4*3*EV*0~HCR*A1*AUTH1~SE*11*0001~\nST*999*0002~AK1*HI*1~SE*3*0002~\nGE*2*5~IEA*1*000000001~\n"
        );
        check_agrees(good.as_bytes());
        // Broken envelopes and sets: missing trailers, wrong counts, stray segments, no SE.
        let broken = format!(
            "{ISA}GS*HI*S*R*20240101*1200*5*X*005010X217~ST*278*0001~BHT*0007*11~HL*1**20*0~ZZZ*1~SE*9*0001~FOO*1~ST*278*0002~BHT*0007*11*R2~GE*3*6~{ISA}GS*HI*S*R*20240101*1200*5*X*005010X217~ST*278*0003~BHT*0007*13*R3"
        );
        check_agrees(broken.as_bytes());
        check_agrees(b"HELLO*WORLD~");
        check_agrees(b"");
        check_agrees(b"ISA*00*");
    }

    #[test]
    fn read_errors_are_returned() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let err = read_278s(Failing, |_| Ok(())).unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
    }

    #[test]
    fn callback_errors_stop_the_stream() {
        let data = format!(
            "{ISA}GS*HI*S*R*20240101*1200*5*X*005010X217~ST*278*0001~BHT*0007*11*R~SE*3*0001~ST*278*0002~BHT*0007*11*R~SE*3*0002~GE*2*5~IEA*1*000000001~"
        );
        let mut seen = 0;
        let err = read_278s(data.as_bytes(), |e| {
            if matches!(e, Event::Transaction(_)) {
                seen += 1;
                return Err(io::Error::other("stop"));
            }
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "stop");
        assert_eq!(seen, 1);
    }
}
