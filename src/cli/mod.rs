//! The `priorauth` command line. Wiring only: every command calls the library.

mod pascmd;
mod records;
mod service;
mod streamout;
mod x12cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "priorauth",
    version,
    about = "Electronic prior-authorization gateway: X12 278, Da Vinci PAS, tracking"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// X12 278 (005010X217).
    X12,
    /// The internal JSON model (schemas/authorization-request.schema.json).
    Json,
    /// Da Vinci PAS 2.2.1 (FHIR R4) request / response Bundles.
    Pas,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AckKind {
    #[value(name = "999")]
    Ack999,
    #[value(name = "ta1")]
    Ta1,
}

#[derive(clap::Args, Clone, Debug)]
pub struct EnvelopeArgs {
    /// Our interchange id as QUALIFIER:ID (ISA05/ISA06).
    #[arg(long, default_value = "ZZ:PRIORAUTHGW")]
    pub sender: String,
    /// The receiver as QUALIFIER:ID (ISA07/ISA08).
    #[arg(long, default_value = "ZZ:PAYER")]
    pub receiver: String,
    /// Mark the interchange as production (ISA15 = P) instead of test.
    #[arg(long)]
    pub production: bool,
    /// Ask for a TA1 (ISA14 = 1).
    #[arg(long)]
    pub ack_requested: bool,
    /// The first control number to use (ISA13, GS06, ST02 count up from it).
    #[arg(long, default_value_t = 1)]
    pub control_number: u64,
    /// Write every segment on one line (no line break after terminators).
    #[arg(long)]
    pub compact: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Translate between the internal JSON model and X12 278.
    Translate {
        /// Output format.
        #[arg(long)]
        to: Format,
        /// Input format (guessed from the content when omitted).
        #[arg(long)]
        from: Option<Format>,
        #[command(flatten)]
        envelope: EnvelopeArgs,
        /// With `--from x12 --to pas`: the PAS request Bundle the 278 response answers (its
        /// item sequences, identifiers and fullUrls are echoed).
        #[arg(long)]
        response_to: Option<PathBuf>,
        /// Input file (`-` for standard input).
        file: PathBuf,
    },
    /// Print the decisions of 278 responses, and 999 / TA1 acknowledgements, as JSON.
    Parse {
        /// Input file (`-` for standard input).
        file: PathBuf,
    },
    /// Validate an X12 file; exit 1 with one line per error when it is not valid.
    Validate {
        /// Write an acknowledgement of the file to standard output.
        #[arg(long)]
        ack: Option<AckKind>,
        /// Reject only what cannot be understood (the default is strict: any error rejects).
        #[arg(long)]
        lenient: bool,
        /// Print the problems as JSON instead of lines.
        #[arg(long)]
        json: bool,
        /// Input file (`-` for standard input).
        file: PathBuf,
    },
    /// Benchmark tokenizing, 278 decision mapping and request encoding on a generated batch.
    Bench {
        /// Size of the generated 278 response batch, in MiB.
        #[arg(long, default_value_t = 200)]
        mb: u64,
        /// Timed runs of each measurement (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Seed of the generated data.
        #[arg(long, default_value_t = 278)]
        seed: u64,
        /// Transaction sets per interchange (0: one interchange).
        #[arg(long, default_value_t = 500)]
        per_interchange: usize,
        /// Requests encoded per run of the encoding measurement.
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a synthetic batch of 278 responses (or requests) for tests and benchmarks.
    Generate {
        /// Stop once at least this many MiB are written.
        #[arg(long, default_value_t = 10)]
        mb: u64,
        /// Write requests instead of responses.
        #[arg(long)]
        requests: bool,
        /// Seed of the generated data.
        #[arg(long, default_value_t = 278)]
        seed: u64,
        /// Transaction sets per interchange (0: one interchange holding every set).
        #[arg(long, default_value_t = 500)]
        per_interchange: usize,
        /// Write every segment on one line (no line break after terminators).
        #[arg(long)]
        compact: bool,
        /// Output file (`-` for standard output).
        #[arg(short, long, default_value = "-")]
        output: PathBuf,
    },
    /// Print the JSON Schema of the internal model.
    Schema {
        /// `request` or `response`.
        #[arg(default_value = "request")]
        which: String,
    },
    /// Run a mock payer (CORE 278 and PAS $submit / $inquire) driven by a rules file.
    MockPayer {
        /// Address to listen on (port 0 picks a free port; the bound address is printed first).
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: std::net::SocketAddr,
        /// Rules file (TOML, see fixtures/mock-payer/rules.toml); without it everything is approved.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// URL the final decisions of pended authorizations are POSTed to (overrides the rules' notify_url).
        #[arg(long)]
        notify: Option<String>,
        /// A file holding the gateway API key (or access token) sent as `Authorization: Bearer`
        /// with each notification.
        #[arg(long)]
        notify_bearer_file: Option<PathBuf>,
    },
    #[command(flatten)]
    Tracking(records::Command),
    #[command(flatten)]
    Service(service::Command),
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &PathBuf) -> Result<Vec<u8>, String> {
    if path.as_os_str() == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
            .map_err(|e| format!("reading standard input: {e}"))?;
        Ok(v)
    } else {
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Translate {
            to,
            from,
            envelope,
            response_to,
            file,
        } => {
            if to == Format::Pas
                || from == Some(Format::Pas)
                || response_to.is_some()
                || (from.is_none() && pascmd::is_pas_file(&file))
            {
                pascmd::translate(to, from, &envelope, response_to.as_ref(), &file)
            } else {
                x12cmd::translate(to, from, &envelope, &file)
            }
        }
        Command::Parse { file } if pascmd::is_pas_file(&file) => pascmd::parse(&file),
        Command::Parse { file } => x12cmd::parse(&file),
        Command::Validate { file, .. } if pascmd::is_pas_file(&file) => pascmd::validate(&file),
        Command::Validate {
            ack,
            lenient,
            json,
            file,
        } => x12cmd::validate(&file, ack, lenient, json),
        Command::Schema { which } => schema(&which),
        Command::Bench {
            mb,
            runs,
            seed,
            per_interchange,
            requests,
            json,
        } => bench(
            &crate::bench::BenchConfig {
                mb,
                runs,
                seed,
                per_interchange,
                requests,
            },
            json,
        ),
        Command::Generate {
            mb,
            requests,
            seed,
            per_interchange,
            compact,
            output,
        } => generate(
            &crate::synth::BatchSpec {
                seed,
                target_bytes: mb << 20,
                per_interchange,
                newline: !compact,
            },
            requests,
            &output,
        ),
        Command::MockPayer {
            listen,
            rules,
            notify,
            notify_bearer_file,
        } => mock_payer(listen, rules.as_ref(), notify, notify_bearer_file.as_ref()),
        Command::Tracking(c) => records::run(c),
        Command::Service(c) => service::run(c),
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the mock payer until interrupted. The first line on standard output is the address.
fn mock_payer(
    listen: std::net::SocketAddr,
    rules: Option<&PathBuf>,
    notify: Option<String>,
    notify_bearer_file: Option<&PathBuf>,
) -> Result<ExitCode, String> {
    use std::io::Write;
    let mut rules = match rules {
        Some(p) => crate::mockpayer::Rules::load(p).map_err(|e| e.to_string())?,
        None => crate::mockpayer::Rules::default(),
    };
    if let Some(f) = notify_bearer_file {
        let b = std::fs::read_to_string(f)
            .map_err(|e| format!("--notify-bearer-file {}: {e}", f.display()))?;
        let b = b.trim();
        if b.is_empty() {
            return Err(format!(
                "--notify-bearer-file {}: the file is empty",
                f.display()
            ));
        }
        rules.notify_bearer = Some(crate::mockpayer::rules::NotifyBearer(b.to_owned()));
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(async {
        let (addr, task) = crate::mockpayer::spawn(rules, listen, notify)
            .await
            .map_err(|e| format!("mock payer on {listen}: {e}"))?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on {addr}").map_err(|e| e.to_string())?;
            out.flush().map_err(|e| e.to_string())?;
        }
        tokio::select! {
            r = task => r.map_err(|e| format!("mock payer stopped: {e}"))?,
            r = tokio::signal::ctrl_c() => r.map_err(|e| format!("waiting for Ctrl-C: {e}"))?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn schema(which: &str) -> Result<ExitCode, String> {
    let v = match which {
        "request" => crate::domain::request_schema(),
        "response" => crate::domain::response_schema(),
        other => return Err(format!("unknown schema {other:?}: use request or response")),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
}

fn bench(config: &crate::bench::BenchConfig, json: bool) -> Result<ExitCode, String> {
    let report = crate::bench::run(config, |step| eprintln!("bench: {step}"))
        .map_err(|e| format!("benchmark failed: {e}"))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.to_json()).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", report.table());
    }
    Ok(ExitCode::SUCCESS)
}

fn generate(
    spec: &crate::synth::BatchSpec,
    requests: bool,
    output: &PathBuf,
) -> Result<ExitCode, String> {
    use std::io::Write;
    let write = |out: &mut dyn Write| {
        if requests {
            crate::synth::write_requests(spec, out)
        } else {
            crate::synth::write_responses(spec, out)
        }
    };
    let stats = if output.as_os_str() == "-" {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        write(&mut out).and_then(|s| out.flush().map(|_| s))
    } else {
        let file =
            std::fs::File::create(output).map_err(|e| format!("{}: {e}", output.display()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        write(&mut out).and_then(|s| out.flush().map(|_| s))
    }
    .map_err(|e| format!("{}: {e}", output.display()))?;
    eprintln!(
        "wrote {} bytes: {} interchanges, {} transaction sets, {} service lines",
        stats.bytes, stats.interchanges, stats.transactions, stats.service_lines
    );
    Ok(ExitCode::SUCCESS)
}
