//! `priorauth serve`: the store (group commit), the payer directory (or, with none configured,
//! the built-in mock payer on a loopback port), the outbox worker, the batch pick-up, the alert
//! runs, the notification dispatcher and delivery worker, and the HTTP API, until SIGINT /
//! SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{ApiConfig, AppState};
use crate::outbox::{Worker, WorkerOptions, default_owner};
use crate::payers::{PayerConfig, PayerDirectory, RetryPolicy};
use crate::tracking::{Clock, Tracker};

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub db: String,
    /// The payer directory; none: every payer goes to the built-in mock payer.
    pub payers: Option<PathBuf>,
    /// Rules for the built-in mock payer (approve everything when absent).
    pub mock_rules: Option<PathBuf>,
    pub api: ApiConfig,
    /// Run the outbox worker in this process (several processes may on PostgreSQL).
    pub worker: bool,
    /// How often the outbox is polled when nobody pokes it.
    pub poll_ms: u64,
    /// How often the alert rules run.
    pub alerts_every: Duration,
    /// Write sets committed together at most.
    pub group_commit: usize,
    /// The notification delivery worker's settings (attempts, backoff, timeout; the owner is
    /// made unique per process when empty).
    pub notify: crate::notify::DeliveryOptions,
    /// Where the bootstrap admin key is written on the first start (default: next to the
    /// SQLite database as `<db>.admin-key`, or `priorauth.admin-key` in the working directory
    /// for PostgreSQL).
    pub key_file: Option<PathBuf>,
}

/// What `serve` tells its caller once it listens.
pub struct Listening {
    pub addr: SocketAddr,
    /// The built-in mock payer's address, when no payer directory was given.
    pub mock: Option<SocketAddr>,
    /// On the first start with no key at all: the bootstrap admin key (print it once) and the
    /// file it was written to.
    pub bootstrap: Option<(String, PathBuf)>,
}

/// The default place of the bootstrap key file for a database URL.
pub fn default_key_file(db: &str) -> PathBuf {
    let path = db
        .strip_prefix("sqlite://")
        .or_else(|| db.strip_prefix("sqlite:"))
        .map(|p| p.split('?').next().unwrap_or(p))
        .filter(|p| !p.is_empty() && !p.contains(":memory:"));
    match path {
        Some(p) => PathBuf::from(format!("{p}.admin-key")),
        None => PathBuf::from("priorauth.admin-key"),
    }
}

/// Writes `key` to `path` readable by its owner only.
fn write_key_file(path: &std::path::Path, key: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    writeln!(f, "{key}")?;
    f.sync_all()
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            db: "sqlite://priorauth.db".into(),
            payers: None,
            mock_rules: None,
            api: ApiConfig::default(),
            worker: true,
            poll_ms: 1_000,
            alerts_every: Duration::from_secs(300),
            group_commit: 512,
            notify: crate::notify::DeliveryOptions::new(String::new()),
            key_file: None,
        }
    }
}

/// Tracing to stderr as JSON lines (`PRIORAUTH_LOG` filters, default `info`). Log lines carry
/// routes, ids, payer ids, states and durations, never bodies or patient data.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PRIORAUTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(false)
        .try_init();
}

/// Runs the gateway; `on_listen` hears the bound address (and the mock payer's, when built in)
/// once the listener is open.
pub async fn serve(opts: ServeOptions, on_listen: impl FnOnce(&Listening)) -> Result<(), String> {
    let mut tracker = Tracker::open(&opts.db, Clock::system())
        .await
        .map_err(|e| format!("cannot open the records store: {e}"))?;
    tracker.store = tracker.store.with_group_commit(opts.group_commit);
    if !opts.api.approval_chain {
        tracker.policy.approval.clear();
    }
    if tracker
        .store
        .actor_role(&opts.api.default_actor)
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        tracker
            .set_actor(&opts.api.default_actor, "clinician", "serve")
            .await
            .map_err(|e| e.to_string())?;
    }
    // Every request is authenticated; a fresh store gets one admin key to start with.
    let mut api = opts.api.clone();
    api.auth = true;
    let mut bootstrap = None;
    if tracker
        .store
        .api_key_count()
        .await
        .map_err(|e| e.to_string())?
        == 0
    {
        let made = crate::auth::create_key(
            &tracker.store,
            crate::tracking::DEFAULT_TENANT,
            "admin",
            Some("bootstrap-admin"),
            None,
            tracker.clock.now_ms(),
        )
        .await
        .map_err(|e| format!("cannot create the bootstrap admin key: {e}"))?;
        let file = opts
            .key_file
            .clone()
            .unwrap_or_else(|| default_key_file(&opts.db));
        write_key_file(&file, &made.key).map_err(|e| {
            format!(
                "cannot write the bootstrap key file {}: {e}",
                file.display()
            )
        })?;
        tracing::info!(
            prefix = %made.row.key_prefix,
            tenant = crate::tracking::DEFAULT_TENANT,
            key_file = %file.display(),
            "bootstrap admin key created (printed once on standard output and written to key_file)"
        );
        bootstrap = Some((made.key, file));
    }
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("listener: {e}"))?;

    let (directory, mock) = match &opts.payers {
        Some(path) => (PayerDirectory::load(path).map_err(|e| e.to_string())?, None),
        None => {
            let mut rules = match &opts.mock_rules {
                Some(p) => crate::mockpayer::Rules::load(p).map_err(|e| e.to_string())?,
                None => crate::mockpayer::Rules::default(),
            };
            let notify = format!("http://{addr}/v1/inbound");
            // The built-in mock pushes answers as a billing principal of its own.
            let token = crate::auth::issue_internal(
                &tracker.store,
                crate::tracking::DEFAULT_TENANT,
                "builtin-mock-payer",
                "billing",
                tracker.clock.now_ms(),
                30 * 86_400,
            )
            .await
            .map_err(|e| format!("cannot issue the built-in mock payer's token: {e}"))?;
            rules.notify_bearer = Some(crate::mockpayer::rules::NotifyBearer(token));
            let (mock_addr, _handle) =
                crate::mockpayer::spawn(rules, SocketAddr::from(([127, 0, 0, 1], 0)), Some(notify))
                    .await
                    .map_err(|e| format!("cannot start the built-in mock payer: {e}"))?;
            let mut cfg = PayerConfig::core("*", &format!("http://{mock_addr}/core"));
            // A local simulator: retry quickly.
            cfg.retry = RetryPolicy {
                initial_backoff_ms: 200,
                max_backoff_ms: 5_000,
                retransmit_min_ms: 1_000,
                inquire_every_ms: 2_000,
                ..RetryPolicy::default()
            };
            cfg.timeout_ms = 10_000;
            (PayerDirectory::single(cfg), Some(mock_addr))
        }
    };
    for rule in directory.renewal_rules() {
        tracker.policy.renewal.insert(0, rule);
    }
    let directory = Arc::new(directory);
    let tracker = Arc::new(tracker);
    let (stop_tx, stop_rx) = watch::channel(false);

    let http = crate::transport::http_client();
    let factory: crate::outbox::TransportFactory =
        Arc::new(move |cfg: &PayerConfig| crate::transport::for_payer(cfg, &http));
    let mut options = WorkerOptions::new(default_owner());
    options.poll_ms = opts.poll_ms;
    // Sends wait on the network, not the CPU: several at once (answers still commit in groups).
    options.concurrency = 16;
    options.batch = 64;
    let worker = Worker::new(&tracker, directory.clone(), factory, options);
    let wake = worker.notifier();
    let mut tasks = Vec::new();
    if opts.worker {
        let w = worker.clone();
        let rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = w.run(rx).await {
                tracing::error!(error = %e, "outbox worker stopped");
            }
        }));
    }
    // Notifications: the dispatcher turns status changes into deliveries, the delivery worker
    // POSTs them (webhooks; other target kinds register on `registry`).
    let registry = crate::notify::Registry::new();
    // FHIR backport Subscriptions (rest-hook): the full PAS Response Bundle of a record answered
    // pended, on each later status change.
    registry.register(
        crate::notify::FHIR_SUBSCRIPTION,
        super::fhir::subscription_kind(),
    );
    if opts.worker {
        let mut options = opts.notify.clone();
        if options.owner.trim().is_empty() {
            options.owner = crate::notify::default_owner();
        }
        let deliverer =
            crate::notify::DeliveryWorker::new(tracker.store.clone(), registry.clone(), options);
        let dispatcher = crate::notify::Dispatcher::new(
            tracker.store.clone(),
            registry.clone(),
            crate::notify::DispatcherOptions::default(),
        )
        .waking(deliverer.notifier());
        let rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move { dispatcher.run(rx).await }));
        let rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move { deliverer.run(rx).await }));
    }
    {
        let t = tracker.clone();
        let mut rx = stop_rx.clone();
        let every = opts.alerts_every;
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = rx.changed() => break,
                }
                match t.attention().await {
                    Ok(a) => tracing::info!(
                        open = a.alerts.len(),
                        expired = a.expired.len(),
                        "alerts run"
                    ),
                    Err(e) => tracing::warn!(error = %e, "alerts run failed"),
                }
            }
        }));
    }

    let state = Arc::new(AppState {
        tracker,
        directory,
        config: api,
        metrics: Default::default(),
        outbox_wake: wake,
    });
    tracing::info!(
        listen = %addr,
        db = %crate::store::redact_url(&opts.db),
        mock_payer = ?mock,
        worker = opts.worker,
        "priorauth serve started"
    );
    on_listen(&Listening {
        addr,
        mock,
        bootstrap,
    });
    let app = super::router(state);
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| format!("server: {e}"));
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    result
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
