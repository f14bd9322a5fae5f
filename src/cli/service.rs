//! The service commands: `serve` (the gateway) and `bench-serve` (the intake benchmark).
//! Wiring only: the service is in `server`, the rules in `tracking`.

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway: REST API, outbox worker, alerts; with no payer directory, every payer
    /// is the built-in mock payer (so a request is approved end to end on a fresh machine).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "PRIORAUTH_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// The records database: sqlite://PATH or postgres://USER@HOST/DB.
        #[arg(long, env = "PRIORAUTH_DB", default_value = "sqlite://priorauth.db")]
        db: String,
        /// The payer directory (TOML); without it the built-in mock payer answers every payer.
        #[arg(long, env = "PRIORAUTH_PAYERS")]
        payers: Option<std::path::PathBuf>,
        /// Rules for the built-in mock payer (see fixtures/mock-payer/rules.toml).
        #[arg(long)]
        mock_rules: Option<std::path::PathBuf>,
        /// Requests go through the internal approval chain before they can be submitted.
        #[arg(long, env = "PRIORAUTH_APPROVAL_CHAIN")]
        approval_chain: bool,
        /// Do not run the outbox worker in this process.
        #[arg(long)]
        no_worker: bool,
        /// Outbox poll interval when idle, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        poll_ms: u64,
        /// How often the alert rules run, in seconds.
        #[arg(long, default_value_t = 300)]
        alerts_every_secs: u64,
        /// How long `POST /fhir/Claim/$submit` waits for the payer's decision before it
        /// answers pended (A4) with the tracking number, in milliseconds.
        #[arg(long, env = "PRIORAUTH_FHIR_WAIT_MS", default_value_t = 15_000)]
        fhir_wait_ms: u64,
        /// Webhook / subscription notifications: attempts before a delivery is dead.
        #[arg(long, env = "PRIORAUTH_NOTIFY_MAX_ATTEMPTS", default_value_t = 10)]
        notify_max_attempts: i64,
        /// Notifications: the first retry's backoff in milliseconds (doubles, with jitter).
        #[arg(long, env = "PRIORAUTH_NOTIFY_BACKOFF_MS", default_value_t = 1_000)]
        notify_backoff_ms: i64,
        /// Notifications: the longest backoff in milliseconds.
        #[arg(
            long,
            env = "PRIORAUTH_NOTIFY_MAX_BACKOFF_MS",
            default_value_t = 3_600_000
        )]
        notify_max_backoff_ms: i64,
        /// Notifications: the whole POST's timeout in milliseconds (a claim holds a delivery
        /// 5 s longer).
        #[arg(long, env = "PRIORAUTH_NOTIFY_TIMEOUT_MS", default_value_t = 10_000)]
        notify_timeout_ms: u64,
        /// Where the first start writes the bootstrap admin key (mode 0600; default next to
        /// the SQLite database as <db>.admin-key).
        #[arg(long)]
        key_file: Option<std::path::PathBuf>,
        /// The gateway's public base URL (SMART assertions name {public_url}/oauth/token).
        #[arg(long, env = "PRIORAUTH_PUBLIC_URL")]
        public_url: Option<String>,
    },
    /// Benchmark intake: requests/s and p50/p99 of `POST /v1/authorizations` (validated,
    /// durably stored, group commit) beside a naive one-insert-per-request floor, same run.
    BenchServe {
        /// The database for our API: sqlite://PATH or postgres://...
        #[arg(long, default_value = "sqlite:///tmp/priorauth-bench-serve.db")]
        db: String,
        /// The database for the naive floor (default: next to --db for SQLite, the same
        /// database for PostgreSQL).
        #[arg(long)]
        floor_db: Option<String>,
        #[arg(long, default_value_t = 5000)]
        requests: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Also measure end-to-end decisions/s against the mock payer (x12-core or fhir-pas).
        #[arg(long)]
        e2e: Option<String>,
        /// Requests for the end-to-end run.
        #[arg(long, default_value_t = 1000)]
        e2e_requests: usize,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(c: Command) -> Result<ExitCode, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    match c {
        Command::Serve {
            listen,
            db,
            payers,
            mock_rules,
            approval_chain,
            no_worker,
            poll_ms,
            alerts_every_secs,
            fhir_wait_ms,
            notify_max_attempts,
            notify_backoff_ms,
            notify_max_backoff_ms,
            notify_timeout_ms,
            key_file,
            public_url,
        } => {
            if notify_max_attempts < 1 || notify_backoff_ms < 1 || notify_timeout_ms < 1 {
                return Err(
                    "--notify-max-attempts, --notify-backoff-ms and --notify-timeout-ms must be at least 1"
                        .into(),
                );
            }
            if notify_max_backoff_ms < notify_backoff_ms {
                return Err(
                    "--notify-max-backoff-ms must not be less than --notify-backoff-ms".into(),
                );
            }
            let mut notify = crate::notify::DeliveryOptions::new(String::new());
            notify.max_attempts = notify_max_attempts;
            notify.initial_backoff_ms = notify_backoff_ms;
            notify.max_backoff_ms = notify_max_backoff_ms;
            notify.timeout_ms = notify_timeout_ms;
            notify.lease_ms = notify_timeout_ms.saturating_add(5_000);
            crate::server::serve::init_logging();
            let opts = crate::server::serve::ServeOptions {
                listen,
                db,
                payers,
                mock_rules,
                api: crate::server::ApiConfig {
                    approval_chain,
                    fhir_wait: std::time::Duration::from_millis(fhir_wait_ms),
                    public_url,
                    ..Default::default()
                },
                key_file,
                worker: !no_worker,
                poll_ms: poll_ms.max(10),
                alerts_every: std::time::Duration::from_secs(alerts_every_secs.max(1)),
                notify,
                ..Default::default()
            };
            rt.block_on(crate::server::serve::serve(opts, |l| {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "listening on http://{}", l.addr);
                if let Some((key, file)) = &l.bootstrap {
                    let _ = writeln!(
                        out,
                        "bootstrap admin key for tenant default (shown once, also in {}): {key}",
                        file.display()
                    );
                }
                if let Some(m) = l.mock {
                    let _ = writeln!(
                        out,
                        "built-in mock payer on http://{m} (no payer directory given)"
                    );
                }
                let _ = out.flush();
            }))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BenchServe {
            db,
            floor_db,
            requests,
            concurrency,
            e2e,
            e2e_requests,
            json,
        } => {
            let floor = floor_db.unwrap_or_else(|| {
                if db.starts_with("sqlite:") {
                    format!("{db}-floor")
                } else {
                    db.clone()
                }
            });
            let r = rt.block_on(crate::server::bench::intake(
                &floor,
                &db,
                requests,
                concurrency.max(1),
            ))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?
                );
            } else {
                println!("database {} , {} clients", r.database, r.concurrency);
                for l in [&r.naive, &r.ours] {
                    println!(
                        "{:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms  errors {}  {}",
                        l.per_second, l.p50_ms, l.p99_ms, l.max_ms, l.errors, l.name
                    );
                }
                println!("ratio ours/naive: {:.2}x", r.ratio);
            }
            if let Some(f) = e2e {
                let format = crate::payers::Format::parse(&f)?;
                let e2e_db = if db.starts_with("sqlite:") {
                    format!("{db}-e2e")
                } else {
                    db.clone()
                };
                let e = rt.block_on(crate::server::bench::end_to_end(
                    &e2e_db,
                    format,
                    e2e_requests,
                    concurrency.max(1),
                ))?;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&e).map_err(|e| e.to_string())?
                    );
                } else {
                    println!(
                        "end to end ({}, {}): {} submitted, {} decided in {:.2} s: {:.0} decisions/s, submit->decision p50 {:.0} ms p99 {:.0} ms",
                        e.format,
                        e.database,
                        e.submitted,
                        e.decided,
                        e.seconds,
                        e.decisions_per_second,
                        e.p50_ms,
                        e.p99_ms
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
