//! PAS request bundle throughput: bytes -> typed Bundle -> hub `AuthorizationRequest`.
//! `cargo bench --bench pas [-- FILE.json]` (default: the v2.2.1 referral example in
//! `$PRIORAUTH_SHARED`, default `../shared`). Prints MB/s and bundles/s; asserts nothing
//! about time.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use priorauth::fhir::{Bundle, request_from_bundle};

fn measure(label: &str, data: &[u8], mut f: impl FnMut(&[u8])) {
    // Warm up, then run for about two seconds.
    for _ in 0..50 {
        f(data);
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..100 {
            f(data);
        }
        n += 100;
    }
    let secs = start.elapsed().as_secs_f64();
    let mb = (data.len() as f64 * n as f64) / 1e6 / secs;
    println!(
        "{label:<44} {:>8.1} MB/s {:>10.0} bundles/s ({} bytes, {n} runs)",
        mb,
        n as f64 / secs,
        data.len()
    );
}

fn main() {
    let arg = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let path = arg.map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("PRIORAUTH_SHARED")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
            .join("fixtures/pas/v2.2.1/Bundle-ReferralAuthorizationBundleExample.json")
    });
    let Ok(data) = std::fs::read(&path) else {
        eprintln!(
            "SKIPPED: {} not found (set PRIORAUTH_SHARED or pass a file)",
            path.display()
        );
        return;
    };
    println!("input: {}", path.display());
    measure("serde_json::Value only (reference)", &data, |d| {
        black_box(serde_json::from_slice::<serde_json::Value>(d).unwrap());
    });
    measure("parse to typed Bundle", &data, |d| {
        black_box(serde_json::from_slice::<Bundle>(d).unwrap());
    });
    measure("parse + map to the hub request", &data, |d| {
        let b: Bundle = serde_json::from_slice(d).unwrap();
        let (r, _) = request_from_bundle(&b);
        black_box(r.unwrap());
    });
}
