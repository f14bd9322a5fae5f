//! `cargo bench --bench x12 [-- --mb N --runs N --seed N --per-interchange N --requests N --json]`:
//! the same measurements as `priorauth bench` (see `priorauth::bench`).

use priorauth::bench::{BenchConfig, run};

fn main() {
    let mut config = BenchConfig {
        mb: 100,
        ..BenchConfig::default()
    };
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |what: &str| -> u64 {
            let v = args.next().unwrap_or_default();
            v.parse().unwrap_or_else(|_| {
                eprintln!("{what} needs a number, got {v:?}");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--mb" => config.mb = num("--mb"),
            "--runs" => config.runs = num("--runs") as usize,
            "--seed" => config.seed = num("--seed"),
            "--per-interchange" => config.per_interchange = num("--per-interchange") as usize,
            "--requests" => config.requests = num("--requests") as usize,
            "--json" => json = true,
            // cargo passes --bench to harness = false benchmarks; filters are not used.
            _ => {}
        }
    }
    match run(&config, |step| eprintln!("bench: {step}")) {
        Ok(r) if json => println!("{}", r.to_json()),
        Ok(r) => print!("{}", r.table()),
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            std::process::exit(1);
        }
    }
}
