//! The X12 benchmark shared by `priorauth bench` and `cargo bench --bench x12`: generate a
//! response batch in memory, then time, on one thread, each as the median of several runs:
//!
//! - a baseline: counting the segment terminator with `memchr` over the same bytes, about the
//!   memory-bandwidth ceiling of any reader, so the other figures can be read as ratios that
//!   carry across machines;
//! - tokenizing: cutting the batch into envelope segments and transaction sets and every set
//!   into segments (the syntax layer only);
//! - decision mapping: every 278 decoded into domain values with its envelope checked (the
//!   streaming API over the in-memory batch, and over a `Read` of it);
//! - request encoding: domain requests written as X12.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::domain::Date;
use crate::synth::{self, BatchSpec, BatchStats};
use crate::x12::stream::{Event, read_278s, read_278s_slice};
use crate::x12::syntax::{SliceReader, Unit};
use crate::x12::tx278::{Message278, encode_requests};
use crate::x12::writer::{EnvelopeSettings, MemoryControlNumbers, Stamp};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Size of the generated response batch, in MiB.
    pub mb: u64,
    /// Timed runs of each measurement (the median is reported).
    pub runs: usize,
    pub seed: u64,
    /// Transaction sets per interchange in the batch (0: one interchange).
    pub per_interchange: usize,
    /// Requests encoded per run of the encoding measurement.
    pub requests: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            mb: 200,
            runs: 5,
            seed: 278,
            per_interchange: 500,
            requests: 20_000,
        }
    }
}

/// One measurement: what was processed per run, and how long each run took.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub name: &'static str,
    /// Input bytes per run (output bytes for encoding).
    pub bytes: u64,
    /// Items per run (segments, transaction sets...).
    pub items: u64,
    pub item_name: &'static str,
    pub times: Vec<Duration>,
}

impl Measurement {
    pub fn median(&self) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        if t.is_empty() {
            return Duration::ZERO;
        }
        t[t.len() / 2]
    }
    pub fn best(&self) -> Duration {
        self.times.iter().min().copied().unwrap_or(Duration::ZERO)
    }
    fn secs(&self) -> f64 {
        self.median().as_secs_f64().max(1e-9)
    }
    /// MB/s (10^6 bytes) at the median.
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.secs()
    }
    pub fn items_per_s(&self) -> f64 {
        self.items as f64 / self.secs()
    }
    /// MB/s of the fastest run (the least disturbed by other load).
    pub fn best_mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.best().as_secs_f64().max(1e-9)
    }
}

/// Everything measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub config: BenchConfig,
    /// The machine's load averages (1, 5, 15 minutes) when the runs started and ended, where
    /// known: figures taken on a busy machine are lower.
    pub load: Option<([f64; 3], [f64; 3])>,
    pub batch: BatchStats,
    pub generate: Duration,
    pub baseline: Measurement,
    pub tokenize: Measurement,
    pub decode: Measurement,
    pub decode_read: Measurement,
    pub encode: Measurement,
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Vec<Duration>, T) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let out = black_box(f());
        times.push(start.elapsed());
        last = Some(out);
    }
    (times, last.expect("at least one run"))
}

/// Segments of an input, counted by the syntax layer alone.
pub fn count_segments(data: &[u8]) -> u64 {
    let mut n = 0u64;
    for unit in SliceReader::new(data) {
        match unit {
            Ok(Unit::Segment(_)) => n += 1,
            Ok(Unit::Transaction(tx)) => n += tx.segments().count() as u64,
            Err(_) => break,
        }
    }
    n
}

/// Decodes every 278 of an in-memory input; returns (transaction sets, responses).
pub fn decode_slice(data: &[u8]) -> (u64, u64) {
    let mut responses = 0u64;
    let stats = read_278s_slice(data, |e| {
        if let Event::Transaction(d) = e
            && let Some(Message278::Response(r)) = d.message
        {
            black_box(&r.decision.status);
            responses += 1;
        }
        Ok(())
    })
    .expect("an in-memory input cannot fail to read");
    (stats.transactions, responses)
}

fn decode_read(data: &[u8]) -> (u64, u64) {
    let mut responses = 0u64;
    let stats = read_278s(data, |e| {
        if let Event::Transaction(d) = e
            && let Some(Message278::Response(r)) = d.message
        {
            black_box(&r.decision.status);
            responses += 1;
        }
        Ok(())
    })
    .expect("an in-memory input cannot fail to read");
    (stats.transactions, responses)
}

/// Runs the benchmark; `progress` hears what is being done (for a terminal).
pub fn run(config: &BenchConfig, mut progress: impl FnMut(&str)) -> std::io::Result<BenchReport> {
    let spec = BatchSpec {
        seed: config.seed,
        target_bytes: config.mb << 20,
        per_interchange: config.per_interchange,
        newline: true,
    };
    progress(&format!("generating a {} MiB response batch", config.mb));
    let start = Instant::now();
    let mut data = Vec::with_capacity((config.mb as usize) << 20 | 1 << 20);
    let batch = synth::write_responses(&spec, &mut data)?;
    let generate = start.elapsed();
    let bytes = data.len() as u64;
    let runs = config.runs;

    let load_start = load_average();
    progress("baseline: memchr count of the segment terminator");
    let (times, terminators) = time(runs, || memchr::memchr_iter(b'~', &data).count() as u64);
    let baseline = Measurement {
        name: "baseline (memchr '~')",
        bytes,
        items: terminators,
        item_name: "segments",
        times,
    };

    progress("tokenizing");
    let (times, segments) = time(runs, || count_segments(&data));
    if segments != terminators {
        return Err(std::io::Error::other(format!(
            "the tokenizer counted {segments} segments, memchr {terminators} terminators"
        )));
    }
    let tokenize = Measurement {
        name: "tokenize (syntax layer)",
        bytes,
        items: segments,
        item_name: "segments",
        times,
    };

    progress("decision mapping (in memory)");
    let (times, (txs, responses)) = time(runs, || decode_slice(&data));
    if txs != batch.transactions || responses != batch.transactions {
        return Err(std::io::Error::other(format!(
            "decoded {responses} responses of {txs} sets, the batch has {}",
            batch.transactions
        )));
    }
    let decode = Measurement {
        name: "decode 278 responses",
        bytes,
        items: txs,
        item_name: "transactions",
        times,
    };

    progress("decision mapping (streaming from a Read)");
    let (times, (txs, _)) = time(runs, || decode_read(&data));
    let decode_read = Measurement {
        name: "decode, streaming Read",
        bytes,
        items: txs,
        item_name: "transactions",
        times,
    };

    progress("request encoding");
    let requests = synth::requests(config.seed, config.requests);
    let settings = EnvelopeSettings::default();
    let stamp = Stamp {
        date: Date::new(2026, 2, 2).expect("date"),
        hour: 8,
        minute: 30,
    };
    let (times, out_bytes) = time(runs, || {
        let controls = MemoryControlNumbers::new();
        encode_requests(&requests, &settings, &controls, stamp)
            .map(|v| v.len() as u64)
            .unwrap_or(0)
    });
    let encode = Measurement {
        name: "encode 278 requests",
        bytes: out_bytes,
        items: requests.len() as u64,
        item_name: "transactions",
        times,
    };
    drop(data);
    Ok(BenchReport {
        config: config.clone(),
        load: load_start.zip(load_average()),
        batch,
        generate,
        baseline,
        tokenize,
        decode,
        decode_read,
        encode,
    })
}

impl BenchReport {
    fn rows(&self) -> [&Measurement; 5] {
        [
            &self.baseline,
            &self.tokenize,
            &self.decode,
            &self.decode_read,
            &self.encode,
        ]
    }

    /// A plain-text table.
    pub fn table(&self) -> String {
        let b = &self.batch;
        let mut s = format!(
            "batch: {:.1} MB, {} interchanges, {} transaction sets, {} service lines, seed {} (generated in {:.2} s)\n",
            b.bytes as f64 / 1e6,
            b.interchanges,
            b.transactions,
            b.service_lines,
            self.config.seed,
            self.generate.as_secs_f64()
        );
        s.push_str(&format!(
            "{} build; single thread, median of {} runs (best run's MB/s beside it)",
            build_kind(),
            self.config.runs
        ));
        if let Some((a, b)) = self.load {
            s.push_str(&format!(
                "; load average {:.2} at the start, {:.2} at the end on {} cores",
                a[0],
                b[0],
                std::thread::available_parallelism().map_or(0, |n| n.get())
            ));
        }
        s.push_str("\n\n");
        s.push_str(&format!(
            "{:<26} {:>10} {:>10} {:>10} {:>14} {:>16} {:>10}\n",
            "measurement", "median ms", "MB/s", "best MB/s", "items/s", "items", "x baseline"
        ));
        let base = self.baseline.mb_per_s();
        for m in self.rows() {
            s.push_str(&format!(
                "{:<26} {:>10.1} {:>10.1} {:>10.1} {:>14.0} {:>16} {:>10.4}\n",
                m.name,
                m.median().as_secs_f64() * 1e3,
                m.mb_per_s(),
                m.best_mb_per_s(),
                m.items_per_s(),
                format!("{} {}", m.items, short(m.item_name)),
                m.mb_per_s() / base
            ));
        }
        s.push_str(
            "\nMB = 10^6 bytes; encoding counts the X12 bytes written; x baseline = MB/s over the memchr baseline's.\n",
        );
        s
    }

    pub fn to_json(&self) -> Value {
        let base = self.baseline.mb_per_s();
        let m = |m: &Measurement| {
            json!({
                "name": m.name,
                "bytes": m.bytes,
                "items": m.items,
                "item": m.item_name,
                "runs_ms": m.times.iter().map(|t| t.as_secs_f64() * 1e3).collect::<Vec<_>>(),
                "median_ms": m.median().as_secs_f64() * 1e3,
                "mb_per_s": m.mb_per_s(),
                "best_mb_per_s": m.best_mb_per_s(),
                "items_per_s": m.items_per_s(),
                "ratio_to_baseline": m.mb_per_s() / base,
            })
        };
        json!({
            "build": build_kind(),
            "config": {
                "mb": self.config.mb,
                "runs": self.config.runs,
                "seed": self.config.seed,
                "per_interchange": self.config.per_interchange,
                "requests": self.config.requests,
                "threads": 1,
            },
            "load_average": self.load.map(|(a, b)| json!({"start": a, "end": b})),
            "batch": {
                "bytes": self.batch.bytes,
                "interchanges": self.batch.interchanges,
                "transactions": self.batch.transactions,
                "service_lines": self.batch.service_lines,
                "dependents": self.batch.dependents,
                "statuses": self.batch.statuses,
                "generate_ms": self.generate.as_secs_f64() * 1e3,
            },
            "baseline": m(&self.baseline),
            "tokenize": m(&self.tokenize),
            "decode": m(&self.decode),
            "decode_read": m(&self.decode_read),
            "encode": m(&self.encode),
        })
    }
}

/// How this binary was built, printed beside its figures: a debug build is many times
/// slower, and `.ci/pgo-build` sets `PRIORAUTH_BUILD=pgo` at compile time for the release
/// build it optimizes with a profile.
pub fn build_kind() -> &'static str {
    match (cfg!(debug_assertions), option_env!("PRIORAUTH_BUILD")) {
        (true, _) => "debug",
        (false, Some("pgo")) => "profile-guided release",
        (false, _) => "release",
    }
}

/// `/proc/loadavg` where there is one.
fn load_average() -> Option<[f64; 3]> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut v = s.split_whitespace().map(|x| x.parse::<f64>().ok());
    Some([v.next()??, v.next()??, v.next()??])
}

fn short(item: &str) -> &str {
    match item {
        "transactions" => "tx",
        "segments" => "seg",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tiny_run_reports_everything() {
        let config = BenchConfig {
            mb: 1,
            runs: 1,
            requests: 20,
            ..BenchConfig::default()
        };
        let r = run(&config, |_| {}).unwrap();
        assert!(r.batch.bytes >= 1 << 20);
        assert_eq!(r.decode.items, r.batch.transactions);
        assert_eq!(r.tokenize.items, r.baseline.items);
        assert_eq!(r.encode.items, 20);
        let table = r.table();
        assert!(table.contains("decode 278 responses"), "{table}");
        assert_eq!(r.to_json()["decode"]["items"], r.batch.transactions);
    }
}
