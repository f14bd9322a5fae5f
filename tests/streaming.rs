//! `priorauth parse` reads files of any size in bounded memory: a generated batch of 278
//! responses is written to a temporary file (streamed, never held whole), parsed by the binary
//! as a child process whose peak resident memory (`VmHWM` in `/proc/<pid>/status`, sampled
//! until it exits) must stay small, and whose output must hold every decision.
//!
//! The 1 GiB run needs a release build and about 1 GiB of disk, so it is ignored by default:
//!
//!     cargo test --release --test streaming -- --ignored
//!
//! The default run checks the same on 50 MiB (any build).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use priorauth::synth::{BatchSpec, BatchStats, write_responses};

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn generate(name: &str, mib: u64) -> (TempFile, BatchStats) {
    let path = std::env::temp_dir().join(format!("priorauth-{name}-{}.x12", std::process::id()));
    let file = TempFile(path);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&file.0).unwrap());
    let stats = write_responses(
        &BatchSpec {
            seed: 1_000_003,
            target_bytes: mib << 20,
            per_interchange: 1000,
            newline: true,
        },
        &mut out,
    )
    .unwrap();
    out.flush().unwrap();
    (file, stats)
}

/// Peak resident memory of a live process, in KiB (None once it is gone).
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

struct Parsed {
    peak_kib: u64,
    samples: u64,
    decisions: u64,
    statuses: BTreeMap<String, u64>,
    errors_empty: bool,
    stderr: String,
    success: bool,
    elapsed: Duration,
}

/// Runs `priorauth parse FILE`, sampling its peak RSS while reading its output.
fn parse(file: &TempFile) -> Parsed {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_priorauth"))
        .arg("parse")
        .arg(&file.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let pid = child.id();
    let peak = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (peak, samples, done) = (peak.clone(), samples.clone(), done.clone());
        std::thread::spawn(move || {
            // VmHWM is the high-water mark: the last sample before the exit is the peak.
            while !done.load(Ordering::Relaxed) {
                if let Some(kib) = vm_hwm_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                    samples.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // The decisions are the objects of the top-level array: their members are indented by
    // six spaces, their lines' members by ten.
    let mut decisions = 0;
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut errors_empty = false;
    for line in BufReader::with_capacity(1 << 16, child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "      \"transaction\": {" {
            decisions += 1;
        } else if let Some(s) = line.strip_prefix("      \"status\": \"") {
            *statuses
                .entry(s.trim_end_matches("\",").to_owned())
                .or_default() += 1;
        } else if line == "  \"errors\": []" {
            errors_empty = true;
        }
    }
    let status = child.wait().unwrap();
    done.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    Parsed {
        peak_kib: peak.load(Ordering::Relaxed),
        samples: samples.load(Ordering::Relaxed),
        decisions,
        statuses,
        errors_empty,
        stderr: err_reader.join().unwrap(),
        success: status.success(),
        elapsed: start.elapsed(),
    }
}

fn check(name: &str, mib: u64, max_peak_mib: u64) -> u64 {
    let t = Instant::now();
    let (file, stats) = generate(name, mib);
    let generated = t.elapsed();
    assert!(stats.bytes >= mib << 20);
    let p = parse(&file);
    eprintln!(
        "{name}: {} bytes, {} transaction sets generated in {:.1} s; parsed in {:.1} s, peak RSS {:.1} MiB ({} samples)",
        stats.bytes,
        stats.transactions,
        generated.as_secs_f64(),
        p.elapsed.as_secs_f64(),
        p.peak_kib as f64 / 1024.0,
        p.samples
    );
    assert!(p.success, "parse failed: {}", p.stderr);
    assert_eq!(p.stderr, "", "a generated batch is valid");
    assert!(p.errors_empty);
    assert_eq!(p.decisions, stats.transactions, "every decision is printed");
    assert_eq!(p.statuses, stats.statuses, "with the status it was given");
    assert!(p.samples > 0, "the child's memory was sampled");
    assert!(
        p.peak_kib < max_peak_mib * 1024,
        "peak RSS {} KiB is not under {max_peak_mib} MiB for a {} byte input",
        p.peak_kib,
        stats.bytes
    );
    p.peak_kib
}

#[cfg(target_os = "linux")]
#[test]
fn parse_streams_50_mib_in_little_memory() {
    // The binary links the whole service (HTTP, TLS, SQL), so its own pages are a good part of
    // the peak: what streaming promises is that 50 times the input costs (almost) nothing more.
    let small = check("streaming-1mib", 1, 48);
    let large = check("streaming-50mib", 50, 48);
    assert!(
        large.saturating_sub(small) < 8 * 1024,
        "50 MiB of input took {} KiB more than 1 MiB did ({small} KiB -> {large} KiB)",
        large.saturating_sub(small)
    );
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "writes a 1 GiB file and wants a release build: cargo test --release --test streaming -- --ignored"]
fn parse_streams_1_gib_under_64_mib() {
    check("streaming-1gib", 1024, 64);
}
