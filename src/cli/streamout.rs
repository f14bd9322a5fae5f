//! `parse` and `translate --to json` over inputs of any size: the 278s are read one
//! transaction set at a time (`x12::stream`) and the JSON is printed as they come. What must
//! come after them in the output (issues, request summaries) waits in spools: in memory up to a
//! limit, then in an unnamed temporary file. The output is the same, byte for byte, as printing
//! the whole decoded file at once; the issues go to standard error at the end.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use crate::x12::error::{Issue, Severity};
use crate::x12::stream::{Event, Origin, read_278s};
use crate::x12::tx278::Message278;

/// In-memory spool size before spilling to a temporary file.
const SPOOL_MEMORY: usize = 4 << 20;

/// Records kept in order for later: in memory up to a limit, then in a temporary file that is
/// removed as soon as it is created (it goes away with the process).
pub struct Spool {
    mem: Vec<u8>,
    file: Option<io::BufWriter<File>>,
    limit: usize,
    records: u64,
}

impl Spool {
    pub fn new(limit: usize) -> Self {
        Spool {
            mem: Vec::new(),
            file: None,
            limit,
            records: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    fn spill() -> io::Result<File> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir();
        loop {
            let path = dir.join(format!(
                "priorauth-spool-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => {
                    // Unnamed from now on: nothing to clean up, whatever happens.
                    let _ = std::fs::remove_file(&path);
                    return Ok(f);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends a record of parts (each part may be empty).
    pub fn push(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        self.records += 1;
        if self.file.is_none() && self.mem.len() > self.limit {
            let mut f = io::BufWriter::with_capacity(1 << 16, Self::spill()?);
            f.write_all(&self.mem)?;
            self.mem = Vec::new();
            self.file = Some(f);
        }
        let out: &mut dyn Write = match &mut self.file {
            Some(f) => f,
            None => &mut self.mem,
        };
        for p in parts {
            out.write_all(&(p.len() as u64).to_le_bytes())?;
            out.write_all(p)?;
        }
        Ok(())
    }

    /// Calls `f` with the parts of every record, in order (`n` parts per record).
    pub fn replay(
        &mut self,
        n: usize,
        mut f: impl FnMut(&[Vec<u8>]) -> io::Result<()>,
    ) -> io::Result<()> {
        let reader: Box<dyn BufRead + '_> = match &mut self.file {
            Some(w) => {
                w.flush()?;
                let file = w.get_mut();
                file.seek(SeekFrom::Start(0))?;
                Box::new(BufReader::with_capacity(1 << 16, &*file))
            }
            None => Box::new(&self.mem[..]),
        };
        let mut reader = reader;
        let mut parts = vec![Vec::new(); n];
        for _ in 0..self.records {
            for p in parts.iter_mut() {
                let mut len = [0u8; 8];
                reader.read_exact(&mut len)?;
                p.clear();
                reader
                    .by_ref()
                    .take(u64::from_le_bytes(len))
                    .read_to_end(p)?;
            }
            f(&parts)?;
        }
        drop(reader);
        if let Some(w) = &mut self.file {
            w.get_mut().seek(SeekFrom::End(0))?;
        }
        Ok(())
    }
}

/// Writes through to `inner`, indenting every line after the first by `indent` (JSON text
/// has no raw line break inside strings, so this nests a pretty-printed value).
struct Indent<'a, W: Write> {
    inner: &'a mut W,
    indent: &'static [u8],
}

impl<W: Write> Write for Indent<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            self.inner.write_all(&rest[..=i])?;
            self.inner.write_all(self.indent)?;
            rest = &rest[i + 1..];
        }
        self.inner.write_all(rest)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A value pretty-printed as an element of an array that is a member of the top object.
fn item_json<T: Serialize + ?Sized>(v: &T) -> io::Result<Vec<u8>> {
    let mut out = b"    ".to_vec();
    serde_json::to_writer_pretty(
        &mut Indent {
            inner: &mut out,
            indent: b"    ",
        },
        v,
    )
    .map_err(io::Error::other)?;
    Ok(out)
}

/// `"key": [ ... ]` inside the top object, written item by item as serde_json's pretty
/// printer writes the whole object.
struct JsonArray {
    items: u64,
}

impl JsonArray {
    fn begin(out: &mut impl Write, first_member: bool, key: &str) -> io::Result<JsonArray> {
        if first_member {
            out.write_all(b"{\n")?;
        } else {
            out.write_all(b",\n")?;
        }
        write!(
            out,
            "  {}: [",
            serde_json::to_string(key).map_err(io::Error::other)?
        )?;
        Ok(JsonArray { items: 0 })
    }
    fn item(&mut self, out: &mut impl Write, pretty: &[u8]) -> io::Result<()> {
        out.write_all(if self.items == 0 { b"\n" } else { b",\n" })?;
        self.items += 1;
        out.write_all(pretty)
    }
    fn end(self, out: &mut impl Write) -> io::Result<()> {
        if self.items == 0 {
            out.write_all(b"]")
        } else {
            out.write_all(b"\n  ]")
        }
    }
}

/// Issues by where `decode_all` lists them: outside the sets by origin, then in the sets.
/// Each record: the stderr line, and the issue as a JSON array item (when it is wanted).
struct IssueLog {
    stop: Spool,
    syntax: Spool,
    envelope: Spool,
    transactions: Spool,
}

impl IssueLog {
    fn new() -> Self {
        IssueLog {
            stop: Spool::new(SPOOL_MEMORY),
            syntax: Spool::new(SPOOL_MEMORY),
            envelope: Spool::new(SPOOL_MEMORY),
            transactions: Spool::new(SPOOL_MEMORY),
        }
    }
    fn spool(&mut self, origin: Option<Origin>) -> &mut Spool {
        match origin {
            Some(Origin::Stop) => &mut self.stop,
            Some(Origin::Syntax) => &mut self.syntax,
            Some(Origin::Envelope) => &mut self.envelope,
            None => &mut self.transactions,
        }
    }
    fn push(&mut self, origin: Option<Origin>, issue: &Issue, json: bool) -> io::Result<()> {
        let line = issue.to_string();
        let item = if json { item_json(issue)? } else { vec![] };
        self.spool(origin).push(&[line.as_bytes(), &item])
    }
    /// Every line to `err`, in `decode_all` order.
    fn print_lines(&mut self, err: &mut impl Write) -> io::Result<()> {
        for spool in [
            &mut self.stop,
            &mut self.syntax,
            &mut self.envelope,
            &mut self.transactions,
        ] {
            spool.replay(2, |p| {
                err.write_all(&p[0])?;
                err.write_all(b"\n")
            })?;
        }
        Ok(())
    }
    /// The JSON items of the given spools, in order.
    fn json_items(
        &mut self,
        with_transactions: bool,
        out: &mut impl Write,
        array: &mut JsonArray,
    ) -> io::Result<()> {
        let mut spools = vec![&mut self.stop, &mut self.syntax, &mut self.envelope];
        if with_transactions {
            spools.push(&mut self.transactions);
        }
        for spool in spools {
            spool.replay(2, |p| {
                if p[1].is_empty() {
                    return Ok(());
                }
                array.item(out, &p[1])
            })?;
        }
        Ok(())
    }
}

/// An input opened for streaming, with its first bytes looked at.
pub struct Input {
    reader: Box<dyn Read>,
    label: String,
    /// Whether the input starts (after a byte-order mark and white space) with `ISA`.
    pub is_x12: bool,
}

impl Input {
    pub fn open(path: &PathBuf) -> Result<Input, String> {
        let (inner, label): (Box<dyn Read>, String) = if path.as_os_str() == "-" {
            (Box::new(io::stdin()), "reading standard input".into())
        } else {
            let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            (Box::new(f), path.display().to_string())
        };
        let mut input = Input {
            reader: inner,
            label,
            is_x12: false,
        };
        // Read until the first byte that is not white space, and three from there.
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let t: &[u8] = head.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(&head);
            if let Some(i) = t.iter().position(|b: &u8| !b.is_ascii_whitespace())
                && t.len() >= i + 3
            {
                break;
            }
            let n = loop {
                match input.reader.read(&mut buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(input.error(e)),
                }
            };
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        input.is_x12 = super::x12cmd::looks_like_x12(&head);
        input.reader = Box::new(io::Cursor::new(head).chain(input.reader));
        Ok(input)
    }

    pub fn error(&self, e: io::Error) -> String {
        format!("{}: {e}", self.label)
    }

    /// The whole input in memory (for JSON input).
    pub fn read_all(mut self) -> Result<Vec<u8>, String> {
        let mut v = Vec::new();
        self.reader.read_to_end(&mut v).map_err(|e| self.error(e))?;
        Ok(v)
    }
}

/// Input errors and output errors are told apart for the message.
enum Failure {
    Input(io::Error),
    Output(io::Error),
}

fn run_stream(
    input: Input,
    mut on: impl FnMut(Event) -> io::Result<()>,
) -> Result<crate::x12::stream::StreamStats, String> {
    // Errors of `on` are output errors; they are marked to be told apart from input ones.
    let mut output_error = None;
    let label = input.label.clone();
    let result = read_278s(input.reader, |e| {
        on(e).map_err(|err| {
            let again = io::Error::new(err.kind(), err.to_string());
            output_error = Some(err);
            again
        })
    });
    match result {
        Ok(stats) => Ok(stats),
        Err(e) => Err(match output_error {
            Some(o) => failure_message(Failure::Output(o), &label),
            None => failure_message(Failure::Input(e), &label),
        }),
    }
}

fn failure_message(f: Failure, label: &str) -> String {
    match f {
        Failure::Input(e) => format!("{label}: {e}"),
        Failure::Output(e) => format!("writing the output: {e}"),
    }
}

fn out_err(e: io::Error) -> String {
    failure_message(Failure::Output(e), "")
}

/// `priorauth parse`: the decisions of the 278 responses (and a summary of requests) as JSON.
pub fn parse(input: Input) -> Result<ExitCode, String> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut log = IssueLog::new();
    let mut requests = Spool::new(SPOOL_MEMORY);
    let mut acks = Spool::new(SPOOL_MEMORY);
    let mut failed = false;
    let mut decisions = JsonArray::begin(&mut out, true, "decisions").map_err(out_err)?;
    let stats = run_stream(input, |e| match e {
        Event::Transaction(t) => {
            match &t.message {
                Some(Message278::Response(r)) => {
                    let mut v = crate::report::decision_view(r);
                    v["transaction"] = serde_json::json!({
                        "control_number": t.transaction.control_number,
                        "index": t.transaction.index,
                    });
                    decisions.item(&mut out, &item_json(&v)?)?;
                }
                Some(Message278::Request(r)) => {
                    requests.push(&[&item_json(&crate::report::request_summary(r))?])?;
                }
                None if t.transaction.id == "278" => failed = true,
                None => {}
            }
            // A 999 is not skipped here: it comes next as an acknowledgement.
            if t.transaction.id != "999" {
                for i in &t.issues {
                    log.push(None, i, i.severity == Severity::Error)?;
                }
            }
            Ok(())
        }
        Event::Issue { origin, issue } => {
            log.push(Some(origin), &issue, issue.severity == Severity::Error)
        }
        Event::Acknowledgement { ack, issues } => {
            acks.push(&[&item_json(&ack)?])?;
            for i in &issues {
                log.push(None, i, i.severity == Severity::Error)?;
            }
            Ok(())
        }
    })?;
    let finish = |out: &mut io::BufWriter<io::StdoutLock>| -> io::Result<()> {
        decisions.end(out)?;
        if !requests.is_empty() {
            let mut a = JsonArray::begin(out, false, "requests")?;
            requests.replay(1, |p| a.item(out, &p[0]))?;
            a.end(out)?;
        }
        if !acks.is_empty() {
            let mut a = JsonArray::begin(out, false, "acknowledgements")?;
            acks.replay(1, |p| a.item(out, &p[0]))?;
            a.end(out)?;
        }
        let mut errors = JsonArray::begin(out, false, "errors")?;
        log.json_items(true, out, &mut errors)?;
        errors.end(out)?;
        out.write_all(b"\n}\n")?;
        out.flush()?;
        log.print_lines(&mut io::stderr().lock())
    };
    finish(&mut out).map_err(out_err)?;
    Ok(if failed || (stats.transactions == 0 && acks.is_empty()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `priorauth translate --to json` of X12: every transaction set and the file's issues, as
/// `tx278::DecodedFile` serializes.
pub fn translate_to_json(input: Input) -> Result<ExitCode, String> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut log = IssueLog::new();
    let mut failed = false;
    let mut transactions = JsonArray::begin(&mut out, true, "transactions").map_err(out_err)?;
    let stats = run_stream(input, |e| match e {
        Event::Transaction(t) => {
            if t.message.is_none() && t.transaction.id == "278" {
                failed = true;
            }
            transactions.item(&mut out, &item_json(&t)?)?;
            for i in &t.issues {
                log.push(None, i, false)?;
            }
            Ok(())
        }
        Event::Issue { origin, issue } => log.push(Some(origin), &issue, true),
        // The 999 was listed as a set above; its content is `parse`'s business.
        Event::Acknowledgement { .. } => Ok(()),
    })?;
    let finish = |out: &mut io::BufWriter<io::StdoutLock>| -> io::Result<()> {
        transactions.end(out)?;
        let mut issues = JsonArray::begin(out, false, "issues")?;
        log.json_items(false, out, &mut issues)?;
        issues.end(out)?;
        out.write_all(b"\n}\n")?;
        out.flush()?;
        log.print_lines(&mut io::stderr().lock())
    };
    finish(&mut out).map_err(out_err)?;
    Ok(if failed || stats.transactions == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_keeps_order_in_memory_and_on_disk() {
        for limit in [0, 10, 1 << 20] {
            let mut s = Spool::new(limit);
            for i in 0..1000 {
                let a = format!("line {i}");
                let b = if i % 3 == 0 { vec![] } else { vec![b'x'; i] };
                s.push(&[a.as_bytes(), &b]).unwrap();
            }
            for _ in 0..2 {
                let mut i = 0;
                s.replay(2, |p| {
                    assert_eq!(p[0], format!("line {i}").into_bytes());
                    assert_eq!(p[1].len(), if i % 3 == 0 { 0 } else { i });
                    i += 1;
                    Ok(())
                })
                .unwrap();
                assert_eq!(i, 1000);
            }
            // Records pushed after a replay come after the others.
            s.push(&[b"last", b""]).unwrap();
            let mut n = 0;
            let mut last = vec![];
            s.replay(2, |p| {
                n += 1;
                last = p[0].clone();
                Ok(())
            })
            .unwrap();
            assert_eq!((n, last), (1001, b"last".to_vec()));
        }
    }

    #[test]
    fn arrays_print_as_serde_json_prints_the_object() {
        let items = [
            serde_json::json!({"a": 1, "b": [1, 2], "c": {}, "d": []}),
            serde_json::json!({"x": "multi\nline"}),
        ];
        for n in [0, 1, 2] {
            let mut out = vec![];
            let mut a = JsonArray::begin(&mut out, true, "decisions").unwrap();
            for v in &items[..n] {
                a.item(&mut out, &item_json(v).unwrap()).unwrap();
            }
            a.end(&mut out).unwrap();
            let b = JsonArray::begin(&mut out, false, "errors").unwrap();
            b.end(&mut out).unwrap();
            out.extend_from_slice(b"\n}");
            let mut whole = serde_json::Map::new();
            whole.insert("decisions".into(), items[..n].to_vec().into());
            whole.insert("errors".into(), serde_json::Value::Array(vec![]));
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string_pretty(&whole).unwrap()
            );
        }
    }
}
