//! Tracked records on the command line: records, ingest, services, alerts, report, actors,
//! policy, control numbers, the ingest benchmark. Wiring only: the rules are in `tracking`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;

use super::read_input;
use crate::domain::AuthorizationRequest;
use crate::store::{RequestRow, redact_url};
use crate::tracking::ledger::Delivered;
use crate::tracking::{Clock, Link, Policy, State, Tracker, TrackingError, fmt_centi, iso};

/// Options every tracking command takes.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// The records database: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(
        long,
        env = "PRIORAUTH_DB",
        default_value = "sqlite://priorauth.db",
        global = true
    )]
    pub db: String,
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Who is acting (an actor with a role, see `priorauth actors`).
    #[arg(long, env = "PRIORAUTH_ACTOR", default_value = "cli", global = true)]
    pub actor: String,
    /// The time the rules use (YYYY-MM-DD or RFC 3339); the system clock when absent.
    #[arg(long, env = "PRIORAUTH_NOW", global = true)]
    pub now: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Tracked authorization records.
    Records {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: RecordsCmd,
    },
    /// Store and apply a received file (278 responses, 999, TA1), matching each to its record.
    Ingest {
        #[command(flatten)]
        common: Common,
        /// Print each committed chunk to stderr (`applied N of T`).
        #[arg(long)]
        progress: bool,
        file: PathBuf,
    },
    /// Services delivered against an authorization (the units ledger).
    Services {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: ServicesCmd,
    },
    /// What needs attention today: renewals, late payers, expiries, denials, reviews.
    Alerts {
        #[command(flatten)]
        common: Common,
    },
    /// Counts by status, payer and service type; CMS-0057-F figures from the event log.
    Report {
        #[command(flatten)]
        common: Common,
        /// First day (YYYY-MM-DD); default 1 January of this year.
        #[arg(long)]
        from: Option<String>,
        /// Day after the last (YYYY-MM-DD); default 1 January of next year.
        #[arg(long)]
        to: Option<String>,
    },
    /// People and their roles in the approval chain.
    Actors {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: ActorsCmd,
    },
    /// API keys: create (printed once, stored hashed), list, revoke.
    Keys {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// The rules as data: approval steps, renewal thresholds, clocks, out-of-authorization mode.
    Policy {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
    /// Durable control numbers (ISA13 / GS06 / ST02) per trading partner.
    ControlNumbers {
        #[command(flatten)]
        common: Common,
        /// Trading partner, QUALIFIER:ID.
        #[arg(long)]
        partner: String,
        /// interchange, group or transaction.
        #[arg(long, default_value = "interchange")]
        kind: String,
        /// How many to take.
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// The outbox: messages queued for payers, their states, dead letters to retry.
    Outbox {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        cmd: OutboxCmd,
    },
    /// Benchmark: generate N submitted records and a batch of N 278 responses, ingest it.
    BenchIngest {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 100_000)]
        count: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum OutboxCmd {
    /// Outbox messages, optionally in one state (queued, sending, delivered, answered,
    /// refused, dead).
    List {
        #[arg(long)]
        state: Option<String>,
    },
    /// How many messages are in each state.
    Counts,
    /// Send a dead letter again (attempts reset).
    Retry { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum RecordsCmd {
    /// Create a draft record from a request (internal JSON); prints its id.
    Create {
        file: PathBuf,
        /// A retry with the same key prints the same id and creates nothing.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// List records.
    List {
        #[arg(long)]
        status: Option<String>,
    },
    /// A record: decisions, remaining units per line, services, history.
    Show { id: String },
    /// The clinician sends a draft into the approval chain.
    Review { id: String },
    /// The reviewer of the current step approves (forwards to the next step or makes it ready).
    Approve {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// The reviewer of the current step denies: back to the clinician.
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// The clinician replaces the request with a new version.
    Modify { id: String, file: PathBuf },
    /// Send a ready record to the payer: as a 278 written to --out or stdout, or, with
    /// --payers, queued in the outbox for the payer's route (a worker sends it).
    Submit {
        id: String,
        /// The payer directory (TOML): queue the request in the outbox in the payer's format.
        #[arg(long, conflicts_with = "out")]
        payers: Option<PathBuf>,
        /// Our interchange id, QUALIFIER:ID.
        #[arg(long, default_value = "ZZ:PRIORAUTHGW")]
        sender: String,
        /// The payer's interchange id, QUALIFIER:ID.
        #[arg(long, default_value = "ZZ:PAYER")]
        receiver: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Cancel a record.
    Cancel {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// A denied or rejected request corrected and sent again, as a new linked version.
    Resubmit { id: String, file: PathBuf },
    /// An appeal of a denial (certification type 1 or 2).
    Appeal { id: String, file: PathBuf },
    /// A renewal of a certification (certification type R).
    Renew { id: String, file: PathBuf },
    /// An extension of a certification (certification type 4).
    Extend { id: String, file: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum ServicesCmd {
    /// Record a delivered service against record ID.
    Record {
        id: String,
        #[arg(long)]
        code: String,
        #[arg(long)]
        units: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        date: String,
        /// Rendering provider (NPI or name of the organization).
        #[arg(long)]
        provider: Option<String>,
        /// Replace service SERVICE_ID (voided in the same transaction).
        #[arg(long)]
        corrects: Option<i64>,
    },
    /// Void a recorded service.
    Void {
        service_id: i64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ActorsCmd {
    /// Give NAME the role ROLE (clinician, supervisor, finance, or any role the policy names).
    Add {
        name: String,
        role: String,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// A new API key for TENANT with ROLE, printed once; only its SHA-256 is stored. Clients
    /// send it as `Authorization: Bearer KEY`, or use it as an OAuth2 client secret (client id:
    /// the prefix) at `POST /oauth/token`.
    Create {
        #[arg(long)]
        tenant: String,
        /// clinician, supervisor, finance, billing or admin.
        #[arg(long)]
        role: String,
        /// A label (the principal's actor name is LABEL@TENANT); default key-<prefix>.
        #[arg(long)]
        name: Option<String>,
        /// A SMART Backend Services client: its public key (PEM, EC P-384 for ES384 or RSA for
        /// RS384) verifies its JWT assertions at /oauth/token.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// Every key: prefix, tenant, role, name, created, revoked (never the key).
    List,
    /// Revokes the key with this prefix (and the access tokens issued to it).
    Revoke { prefix: String },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    Show,
    /// Replace the policy with FILE (JSON, as `policy show --json` prints it).
    Set {
        file: PathBuf,
    },
}

fn common(c: &Command) -> &Common {
    match c {
        Command::Records { common, .. }
        | Command::Ingest { common, .. }
        | Command::Services { common, .. }
        | Command::Alerts { common }
        | Command::Report { common, .. }
        | Command::Actors { common, .. }
        | Command::Keys { common, .. }
        | Command::Policy { common, .. }
        | Command::ControlNumbers { common, .. }
        | Command::Outbox { common, .. }
        | Command::BenchIngest { common, .. } => common,
    }
}

/// Runs a tracking command on a multi-thread runtime.
pub fn run(cmd: Command) -> Result<ExitCode, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    rt.block_on(run_async(cmd))
}

fn err(e: TrackingError) -> String {
    e.to_string()
}

fn print<T: Serialize>(json: bool, v: &T, human: impl FnOnce() -> String) -> Result<(), String> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(v).map_err(|e| e.to_string())?
        );
    } else {
        let s = human();
        if !s.is_empty() {
            println!("{s}");
        }
    }
    Ok(())
}

fn load_request(file: &PathBuf) -> Result<AuthorizationRequest, String> {
    let data = read_input(file)?;
    let mut all = super::x12cmd::requests_from_json(&data)?;
    match all.len() {
        1 => Ok(all.remove(0)),
        n => Err(format!(
            "{}: expected one request, found {n}",
            file.display()
        )),
    }
}

fn row_line(r: &RequestRow) -> String {
    format!(
        "{}  {:<18} {:<14} {:<6} {:<9} {}",
        r.id,
        r.status,
        r.payer,
        r.service_type,
        r.urgency,
        match (&r.start_date, &r.end_date) {
            (Some(s), Some(e)) => format!("{s}..{e}"),
            _ => String::new(),
        }
    )
}

fn day_ms(s: &str, what: &str) -> Result<i64, String> {
    Clock::parse(s)
        .map(|c| c.now_ms())
        .map_err(|e| format!("--{what}: {e}"))
}

async fn run_async(cmd: Command) -> Result<ExitCode, String> {
    let c = common(&cmd).clone();
    let clock = match &c.now {
        Some(s) => Clock::parse(s)?,
        None => Clock::system(),
    };
    let mut t = Tracker::open(&c.db, clock)
        .await
        .map_err(|e| format!("{} ({})", err(e), redact_url(&c.db)))?;
    let json = c.json;
    let actor = c.actor.as_str();
    let code = match cmd {
        Command::Records { cmd, .. } => records(&t, cmd, json, actor).await?,
        Command::Ingest { file, progress, .. } => {
            let data = read_input(&file)?;
            let mut on = |n: i64, total: i64| {
                if progress {
                    eprintln!("applied {n} of {total}");
                }
            };
            let r = t
                .ingest(&data, &file.display().to_string(), &mut on)
                .await
                .map_err(err)?;
            print(json, &r, || {
                let mut s = format!(
                    "inbound message {}: {} item(s){}",
                    r.message_id,
                    r.total,
                    if r.already_ingested {
                        ", already ingested (nothing applied again)".to_owned()
                    } else if r.resumed_after > 0 {
                        format!(", resumed after {}", r.resumed_after)
                    } else {
                        String::new()
                    }
                );
                let mut counts: Vec<_> = r.counts.iter().collect();
                counts.sort();
                for (k, v) in counts {
                    s.push_str(&format!("\n  {k}: {v}"));
                }
                for i in r.items.iter().filter(|i| i.outcome != "applied") {
                    s.push_str(&format!(
                        "\n  item {} {} {}: {} {}",
                        i.position,
                        i.kind,
                        i.reference.as_deref().unwrap_or(""),
                        i.outcome,
                        i.detail.as_deref().unwrap_or("")
                    ));
                }
                for i in r.items.iter().filter(|i| i.outcome == "applied").take(20) {
                    s.push_str(&format!(
                        "\n  item {} {} {} -> record {} {}",
                        i.position,
                        i.kind,
                        i.reference.as_deref().unwrap_or(""),
                        i.request_id.as_deref().unwrap_or(""),
                        i.status.as_deref().unwrap_or("")
                    ));
                }
                s
            })?;
            // Unmatched items are kept and reported; the ingest itself succeeded.
            ExitCode::SUCCESS
        }
        Command::Services { cmd, .. } => match cmd {
            ServicesCmd::Record {
                id,
                code,
                units,
                date,
                provider,
                corrects,
            } => {
                let d = Delivered {
                    code,
                    units,
                    date,
                    provider,
                };
                match t.record_service(&id, &d, actor, corrects).await {
                    Ok(r) => {
                        print(json, &r, || {
                            format!(
                                "service {} {}{} on line {}; remaining {}; record {}",
                                r.service_id,
                                r.state,
                                r.flag
                                    .as_ref()
                                    .map(|f| format!(" ({f})"))
                                    .unwrap_or_default(),
                                r.line.map(|l| l.to_string()).unwrap_or("-".into()),
                                r.remaining.as_deref().unwrap_or("-"),
                                r.status
                            )
                        })?;
                        ExitCode::SUCCESS
                    }
                    Err(TrackingError::Refused(reason)) => {
                        if json {
                            println!("{}", json!({"refused": true, "reason": reason}));
                        }
                        eprintln!("refused: {reason}");
                        ExitCode::from(3)
                    }
                    Err(e) => return Err(err(e)),
                }
            }
            ServicesCmd::Void { service_id, reason } => {
                let s = t
                    .void_service(service_id, actor, &reason)
                    .await
                    .map_err(err)?;
                print(json, &json!({"voided": service_id, "status": s}), || {
                    format!("service {service_id} voided; record {s}")
                })?;
                ExitCode::SUCCESS
            }
        },
        Command::Alerts { .. } => {
            let a = t.attention().await.map_err(err)?;
            print(json, &a, || {
                let mut s = format!("{} open alert(s) on {}", a.alerts.len(), a.today);
                for x in &a.alerts {
                    s.push_str(&format!(
                        "\n  [{}] {} {}",
                        x.kind,
                        x.request_id.as_deref().unwrap_or("-"),
                        x.message
                    ));
                }
                s
            })?;
            ExitCode::SUCCESS
        }
        Command::Report { from, to, .. } => {
            let year = t.clock.today().year();
            let from = match from {
                Some(f) => day_ms(&f, "from")?,
                None => day_ms(&format!("{year:04}-01-01"), "from")?,
            };
            let to = match to {
                Some(x) => day_ms(&x, "to")?,
                None => day_ms(&format!("{:04}-01-01", year + 1), "to")?,
            };
            if to <= from {
                return Err("--to must be after --from".into());
            }
            let r = t.report(from, to).await.map_err(err)?;
            print(json, &r, || {
                let mut s = format!("records created {} to {}", r.from, r.to);
                for c in &r.counts {
                    s.push_str(&format!(
                        "\n  {:<18} {:<14} {:<6} {}",
                        c.status, c.payer, c.service_type, c.count
                    ));
                }
                for k in ["all", "standard", "expedited"] {
                    if let Some(f) = r.cms0057.get(k) {
                        s.push_str(&format!(
                            "\n  CMS-0057-F {k}: {} decided, {:?}% approved, {:?}% denied, {:?}% approved after appeal, average {:?} h, median {:?} h",
                            f.decided,
                            f.percent_approved,
                            f.percent_denied,
                            f.percent_approved_after_appeal,
                            f.average_decision_hours,
                            f.median_decision_hours
                        ));
                    }
                }
                s
            })?;
            ExitCode::SUCCESS
        }
        Command::Keys { cmd, .. } => {
            let now = t.clock.now_ms();
            match cmd {
                KeysCmd::Create {
                    tenant,
                    role,
                    name,
                    public_key,
                } => {
                    let pem = match &public_key {
                        Some(f) => Some(
                            std::fs::read_to_string(f)
                                .map_err(|e| format!("--public-key {}: {e}", f.display()))?,
                        ),
                        None => None,
                    };
                    let made = crate::auth::create_key(
                        &t.store,
                        &tenant,
                        &role,
                        name.as_deref(),
                        pem.as_deref(),
                        now,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    let r = &made.row;
                    print(
                        json,
                        &json!({"key": made.key, "prefix": r.key_prefix, "tenant": r.tenant,
                                "role": r.role, "name": r.name}),
                        || {
                            format!(
                                "{}\n(shown once; prefix {} = OAuth2 client id; {}@{} is {})",
                                made.key, r.key_prefix, r.name, r.tenant, r.role
                            )
                        },
                    )?;
                }
                KeysCmd::List => {
                    let all = t.store.api_keys().await.map_err(|e| e.to_string())?;
                    print(json, &all, || {
                        all.iter()
                            .map(|k| {
                                format!(
                                    "{}  {:<16} {:<10} {:<24} {}{}{}",
                                    k.key_prefix,
                                    k.tenant,
                                    k.role,
                                    k.name,
                                    iso(k.created_at),
                                    k.revoked_at
                                        .map(|r| format!("  revoked {}", iso(r)))
                                        .unwrap_or_default(),
                                    if k.jwks_public_key.is_some() {
                                        "  smart"
                                    } else {
                                        ""
                                    }
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                    })?;
                }
                KeysCmd::Revoke { prefix } => {
                    if !t
                        .store
                        .revoke_api_key(&prefix, now)
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        return Err(format!("no unrevoked key with prefix {prefix:?}"));
                    }
                    print(json, &json!({"prefix": prefix, "revoked": true}), || {
                        format!("{prefix} revoked")
                    })?;
                }
            }
            ExitCode::SUCCESS
        }
        Command::Actors { cmd, .. } => {
            match cmd {
                ActorsCmd::Add { name, role } => {
                    t.set_actor(&name, &role, actor).await.map_err(err)?;
                    print(json, &json!({"name": name, "role": role}), || {
                        format!("{name} is {role}")
                    })?;
                }
                ActorsCmd::List => {
                    let all = t.store.actors().await.map_err(|e| e.to_string())?;
                    let v: Vec<_> = all
                        .iter()
                        .map(|(n, r)| json!({"name": n, "role": r}))
                        .collect();
                    print(json, &v, || {
                        all.iter()
                            .map(|(n, r)| format!("{n}\t{r}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    })?;
                }
            }
            ExitCode::SUCCESS
        }
        Command::Policy { cmd, .. } => {
            match cmd {
                PolicyCmd::Show => {
                    let p = t.policy.clone();
                    print(true, &p, String::new)?;
                }
                PolicyCmd::Set { file } => {
                    let data = read_input(&file)?;
                    let p = Policy::from_json(&String::from_utf8_lossy(&data))?;
                    t.set_policy(p).await.map_err(err)?;
                    print(json, &json!({"policy": "set"}), || "policy set".into())?;
                }
            }
            ExitCode::SUCCESS
        }
        Command::ControlNumbers {
            partner,
            kind,
            count,
            ..
        } => {
            if !matches!(kind.as_str(), "interchange" | "group" | "transaction") {
                return Err(format!(
                    "--kind {kind:?}: use interchange, group or transaction"
                ));
            }
            let mut v = Vec::new();
            for _ in 0..count {
                v.push(
                    t.store
                        .next_control_number(&partner, &kind, 999_999_999)
                        .await
                        .map_err(|e| e.to_string())?,
                );
            }
            print(json, &v, || {
                v.iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
            ExitCode::SUCCESS
        }
        Command::Outbox { cmd, .. } => {
            match cmd {
                OutboxCmd::List { state } => {
                    let rows = t
                        .store
                        .outbox_list(state.as_deref())
                        .await
                        .map_err(|e| e.to_string())?;
                    print(json, &rows, || {
                        rows.iter()
                            .map(|m| {
                                format!(
                                    "{}  {}  {} {}  record {}  attempts {}  next {}{}",
                                    m.id,
                                    m.state,
                                    m.operation,
                                    m.payer,
                                    m.request_id.as_deref().unwrap_or("-"),
                                    m.attempts,
                                    iso(m.next_attempt_at),
                                    m.last_error
                                        .as_deref()
                                        .map(|e| format!("  last error: {e}"))
                                        .unwrap_or_default()
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                    })?;
                }
                OutboxCmd::Counts => {
                    let counts = t.store.outbox_counts().await.map_err(|e| e.to_string())?;
                    let map: serde_json::Map<String, serde_json::Value> =
                        counts.iter().map(|(s, n)| (s.clone(), json!(n))).collect();
                    print(json, &map, || {
                        counts
                            .iter()
                            .map(|(s, n)| format!("{s} {n}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    })?;
                }
                OutboxCmd::Retry { id } => {
                    t.outbox_retry(id, actor).await.map_err(err)?;
                    print(json, &json!({"outbox": id, "state": "queued"}), || {
                        format!("outbox message {id} queued again")
                    })?;
                }
            }
            ExitCode::SUCCESS
        }
        Command::BenchIngest { count, .. } => {
            let r = crate::tracking::bench::ingest(&t, count)
                .await
                .map_err(err)?;
            print(json, &r, || {
                format!(
                    "{} responses ({} bytes) into {}: seeded in {:.1} s, ingested in {:.2} s = {:.0} records/s ({} applied)",
                    r.count,
                    r.bytes,
                    r.backend,
                    r.seed_seconds,
                    r.ingest_seconds,
                    r.records_per_second,
                    r.applied
                )
            })?;
            ExitCode::SUCCESS
        }
    };
    let _ = &mut t;
    t.store.close().await;
    Ok(code)
}

async fn records(
    t: &Tracker,
    cmd: RecordsCmd,
    json: bool,
    actor: &str,
) -> Result<ExitCode, String> {
    match cmd {
        RecordsCmd::Create {
            file,
            idempotency_key,
        } => {
            let req = load_request(&file)?;
            let (id, created) = match idempotency_key {
                Some(k) => t.create_once(&req, actor, &k).await.map_err(err)?,
                None => (t.create(&req, actor).await.map_err(err)?, true),
            };
            print(json, &json!({"id": id, "created": created}), || id.clone())?;
        }
        RecordsCmd::List { status } => {
            let s = status.as_deref().map(State::parse).transpose()?;
            let rows = t.list(s).await.map_err(err)?;
            print(json, &rows, || {
                rows.iter().map(row_line).collect::<Vec<_>>().join("\n")
            })?;
        }
        RecordsCmd::Show { id } => {
            let v = t.show(&id).await.map_err(err)?;
            print(json, &v, || {
                let r = &v.record;
                let mut s = format!(
                    "record {}\n  status {}  version {}  payer {}  service type {}  {}\n  submitter reference {}",
                    r.id,
                    r.status,
                    r.version,
                    r.payer,
                    r.service_type,
                    r.urgency,
                    r.submitter_reference
                );
                if let Some(c) = &r.certification_number {
                    s.push_str(&format!("\n  certification {c}"));
                }
                if let (Some(a), Some(b)) = (&r.start_date, &r.end_date) {
                    s.push_str(&format!("  {a}..{b}"));
                }
                if let (Some(p), Some(k)) = (&r.previous_id, &r.link_kind) {
                    s.push_str(&format!("\n  {k} of {p}"));
                }
                for f in &v.followers {
                    s.push_str(&format!("\n  followed by {f}"));
                }
                for l in &v.lines {
                    s.push_str(&format!(
                        "\n  line {} {} {}: authorized {} {}, used {}, remaining {} ({}..{})",
                        l.line,
                        l.procedure_code.as_deref().unwrap_or("-"),
                        l.status,
                        l.authorized.as_deref().unwrap_or("-"),
                        l.unit.as_deref().unwrap_or(""),
                        l.used,
                        l.remaining.as_deref().unwrap_or("-"),
                        l.start_date.as_deref().unwrap_or("?"),
                        l.end_date.as_deref().unwrap_or("?")
                    ));
                }
                for x in &v.services {
                    s.push_str(&format!(
                        "\n  service {} {} {} x{} {}{}",
                        x.id,
                        x.service_date,
                        x.procedure_code,
                        fmt_centi(x.units),
                        x.state,
                        x.flag
                            .as_ref()
                            .map(|f| format!(" ({f})"))
                            .unwrap_or_default()
                    ));
                }
                for e in &v.history {
                    s.push_str(&format!(
                        "\n  {} {} {}{}{}",
                        iso(e.at),
                        e.actor,
                        e.action,
                        match (&e.from_status, &e.to_status) {
                            (Some(a), Some(b)) => format!(" {a} -> {b}"),
                            _ => String::new(),
                        },
                        e.reason
                            .as_ref()
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default()
                    ));
                }
                s
            })?;
        }
        RecordsCmd::Review { id } => {
            let s = t.send_to_review(&id, actor).await.map_err(err)?;
            print(json, &json!({"id": id, "status": s}), || s.to_string())?;
        }
        RecordsCmd::Approve { id, reason } => {
            let s = t.approve(&id, actor, reason).await.map_err(err)?;
            let r = t.record(&id).await.map_err(err)?;
            let waiting = r
                .approval_step
                .and_then(|i| t.policy.approval.get(i as usize))
                .map(|x| x.role.clone());
            print(
                json,
                &json!({"id": id, "status": s, "awaiting": waiting}),
                || match &waiting {
                    Some(w) => format!("{s}: awaiting {w}"),
                    None => s.to_string(),
                },
            )?;
        }
        RecordsCmd::Deny { id, reason } => {
            let s = t.deny(&id, actor, &reason).await.map_err(err)?;
            print(json, &json!({"id": id, "status": s}), || s.to_string())?;
        }
        RecordsCmd::Modify { id, file } => {
            let req = load_request(&file)?;
            let v = t.modify(&id, &req, actor).await.map_err(err)?;
            print(json, &json!({"id": id, "version": v}), || {
                format!("version {v}")
            })?;
        }
        RecordsCmd::Submit {
            id,
            payers: Some(p),
            ..
        } => {
            let dir = crate::payers::PayerDirectory::load(&p).map_err(|e| e.to_string())?;
            let row = t.record(&id).await.map_err(err)?;
            let payer = dir.route(&row.payer).map_err(|e| e.to_string())?;
            let ob = t.submit_to(&id, actor, payer).await.map_err(err)?;
            print(
                json,
                &json!({"id": id, "status": "submitted", "outbox": ob, "payer": row.payer,
                        "format": payer.format.as_str()}),
                || {
                    format!(
                        "submitted; queued as outbox message {ob} for payer {}",
                        row.payer
                    )
                },
            )?;
        }
        RecordsCmd::Submit {
            id,
            sender,
            receiver,
            out,
            payers: None,
        } => {
            let settings = super::x12cmd::envelope_settings(&super::EnvelopeArgs {
                sender,
                receiver,
                production: false,
                ack_requested: false,
                control_number: 1,
                compact: false,
            })?;
            let dest = out.as_ref().map(|p| p.display().to_string());
            let raw = t
                .submit(&id, actor, &settings, dest.as_deref())
                .await
                .map_err(err)?;
            match out {
                Some(p) => {
                    std::fs::write(&p, &raw).map_err(|e| format!("{}: {e}", p.display()))?;
                    print(
                        json,
                        &json!({"id": id, "status": "submitted", "file": p}),
                        || format!("submitted; 278 written to {}", p.display()),
                    )?;
                }
                None => {
                    use std::io::Write;
                    std::io::stdout()
                        .write_all(&raw)
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        RecordsCmd::Cancel { id, reason } => {
            t.cancel(&id, actor, &reason).await.map_err(err)?;
            print(json, &json!({"id": id, "status": "cancelled"}), || {
                "cancelled".into()
            })?;
        }
        RecordsCmd::Resubmit { id, file } => {
            follow(t, Link::Resubmission, &id, &file, actor, json).await?
        }
        RecordsCmd::Appeal { id, file } => follow(t, Link::Appeal, &id, &file, actor, json).await?,
        RecordsCmd::Renew { id, file } => follow(t, Link::Renewal, &id, &file, actor, json).await?,
        RecordsCmd::Extend { id, file } => {
            follow(t, Link::Extension, &id, &file, actor, json).await?
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates the record that follows `id`.
pub async fn follow(
    t: &Tracker,
    link: Link,
    id: &str,
    file: &PathBuf,
    actor: &str,
    json: bool,
) -> Result<(), String> {
    let req = load_request(file)?;
    let new = t.follow(id, link, &req, actor).await.map_err(err)?;
    print(
        json,
        &json!({"id": new, "follows": id, "link": link.as_str()}),
        || new.clone(),
    )
}
