//! Black-box harness: the `priorauth` binary run as `serve` and `mock-payer` processes on
//! loopback ports, spoken to over HTTP, killed and restarted.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_priorauth");
pub const MRI: &str = include_str!("../../fixtures/requests/mri-lumbar-outpatient.json");

/// A child process that is killed when dropped; its stderr goes to `log`.
pub struct Proc {
    pub child: Child,
    /// host:port it listens on.
    pub addr: String,
    pub log: PathBuf,
    /// The database of a `serve` process (to create keys in it).
    pub db: Option<String>,
    /// Where a `serve` process writes its bootstrap admin key.
    pub key_file: Option<PathBuf>,
}

impl Proc {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "priorauth-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Starts `priorauth ARGS`, waits for its first stdout line (`listening on ...`) and reads the
/// address from its last word.
pub fn start(args: &[&str], log: &Path, env: &[(&str, &str)]) -> Proc {
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(err))
        .env_remove("PRIORAUTH_PAYERS")
        .env_remove("PRIORAUTH_DB");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        // Keep draining so the child never blocks on a full pipe.
        for _ in lines {}
    });
    let first = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            panic!(
                "priorauth {args:?} did not start; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    };
    let addr = first
        .split_whitespace()
        .find(|w| w.contains(':') && w.chars().any(|c| c.is_ascii_digit()))
        .map(|w| w.trim_start_matches("http://").to_owned())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    Proc {
        child,
        addr,
        log: log.to_owned(),
        db: None,
        key_file: None,
    }
}

/// A new API key in `db` (`priorauth keys create`), the key itself.
pub fn create_key(db: &str, tenant: &str, role: &str, name: &str) -> String {
    let out = Command::new(BIN)
        .args([
            "keys", "create", "--db", db, "--tenant", tenant, "--role", role, "--name", name,
            "--json",
        ])
        .env_remove("PRIORAUTH_DB")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keys create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["key"].as_str().unwrap().to_owned()
}

pub fn mock_payer(dir: &Path, rules: Option<&str>, notify: Option<&str>) -> Proc {
    mock_payer_with(dir, rules, notify, None)
}

/// A mock payer whose notifications carry `Authorization: Bearer <the key in bearer_file>`.
pub fn mock_payer_with(
    dir: &Path,
    rules: Option<&str>,
    notify: Option<&str>,
    bearer_file: Option<&Path>,
) -> Proc {
    let mut args = vec!["mock-payer", "--listen", "127.0.0.1:0"];
    let bearer = bearer_file.map(|p| p.to_str().unwrap().to_owned());
    if let Some(b) = &bearer {
        args.push("--notify-bearer-file");
        args.push(b);
    }
    let rules_path = dir.join("rules.toml");
    if let Some(r) = rules {
        std::fs::write(&rules_path, r).unwrap();
        args.push("--rules");
        args.push(rules_path.to_str().unwrap());
    }
    if let Some(n) = notify {
        args.push("--notify");
        args.push(n);
    }
    start(&args, &dir.join("mock.log"), &[])
}

/// A free loopback port (bound and released; good enough for a test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn serve(dir: &Path, db: &str, payers: Option<&Path>, port: u16, extra: &[&str]) -> Proc {
    let listen = format!("127.0.0.1:{port}");
    let key_file = dir.join("admin.key");
    let kf = key_file.to_str().unwrap().to_owned();
    let mut args = vec![
        "serve",
        "--listen",
        &listen,
        "--db",
        db,
        "--poll-ms",
        "100",
        "--key-file",
        &kf,
    ];
    let p;
    if let Some(path) = payers {
        p = path.to_str().unwrap().to_owned();
        args.push("--payers");
        args.push(&p);
    }
    args.extend_from_slice(extra);
    let mut p = start(&args, &dir.join("serve.log"), &[("PRIORAUTH_LOG", "info")]);
    p.db = Some(db.to_owned());
    p.key_file = Some(key_file);
    p
}

/// A payer directory sending every payer to `endpoint` in `format`, with fast retries.
pub fn payers_file(dir: &Path, format: &str, endpoint: &str, extra: &str) -> PathBuf {
    let path = dir.join("payers.toml");
    std::fs::write(
        &path,
        format!(
            r#"[payers."*"]
format = "{format}"
endpoint = "{endpoint}"
timeout_ms = 3000
{extra}
[payers."*".retry]
max_attempts = 6
initial_backoff_ms = 100
max_backoff_ms = 1000
retransmit_min_ms = 500
circuit_failures = 50
circuit_open_ms = 500
inquire_every_ms = 500
"#
        ),
    )
    .unwrap();
    path
}

/// The sample request with its own submitter reference and trace number.
pub fn request(n: usize, procedure: Option<&str>, member: Option<&str>) -> Value {
    let mut r: Value = serde_json::from_str(MRI).unwrap();
    r["submitter_reference"] = json!(format!("E2E{n:07}"));
    r["event"]["trace_numbers"][0]["reference"] = json!(format!("TRCE2E{n:07}"));
    if let Some(p) = procedure {
        r["services"][0]["service"]["professional"]["procedure"]["code"] = json!(p);
    }
    if let Some(m) = member {
        r["subscriber"]["id"]["member_id"] = json!(m);
    }
    r
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    /// Sent as `Authorization: Bearer`.
    pub token: Option<String>,
}

impl Client {
    pub fn new(base: String) -> Client {
        Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base,
            token: None,
        }
    }

    pub fn with_token(mut self, token: impl Into<String>) -> Client {
        self.token = Some(token.into());
        self
    }

    /// A client of a `serve` process acting as a clinician of the tenant `default` (a key
    /// made with `priorauth keys create` in its database).
    pub fn clinician(gw: &Proc) -> Client {
        let db = gw.db.as_deref().expect("a serve process");
        let key = create_key(db, "default", "clinician", "e2e-clinician");
        Client::new(gw.url()).with_token(key)
    }

    fn auth(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub async fn post(
        &self,
        path: &str,
        body: String,
        key: Option<&str>,
    ) -> reqwest::Result<(u16, Value)> {
        let mut r = self.auth(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/json")
                .body(body),
        );
        if let Some(k) = key {
            r = r.header("Idempotency-Key", k);
        }
        let resp = r.send().await?;
        let s = resp.status().as_u16();
        let v = resp.json().await.unwrap_or(Value::Null);
        Ok((s, v))
    }

    pub async fn delete(&self, path: &str) -> reqwest::Result<u16> {
        let resp = self
            .auth(self.http.delete(format!("{}{path}", self.base)))
            .send()
            .await?;
        Ok(resp.status().as_u16())
    }

    pub async fn get(&self, path: &str) -> reqwest::Result<(u16, Value)> {
        let resp = self
            .auth(self.http.get(format!("{}{path}", self.base)))
            .send()
            .await?;
        let s = resp.status().as_u16();
        let v = resp.json().await.unwrap_or(Value::Null);
        Ok((s, v))
    }

    /// Creates and submits; returns the record id.
    pub async fn create_and_submit(&self, r: &Value) -> String {
        let (s, v) = self
            .post("/v1/authorizations", r.to_string(), None)
            .await
            .unwrap();
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        let (s, v) = self
            .post(
                &format!("/v1/authorizations/{id}/submit"),
                String::new(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(s, 202, "{v}");
        id
    }

    /// Polls the record until its status is one of `want` (panics after `limit`).
    pub async fn wait_status(&self, id: &str, want: &[&str], limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let (_, v) = self.get(&format!("/v1/authorizations/{id}")).await.unwrap();
            if want.contains(&v["status"].as_str().unwrap_or("")) {
                return v;
            }
            if started.elapsed() > limit {
                let (_, outbox) = self.get("/v1/outbox").await.unwrap();
                panic!(
                    "record {id} is {} after {limit:?}, not one of {want:?}\nhistory: {}\noutbox: {outbox}",
                    v["status"], v["history"]
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The synthetic patient data of the sample requests, which must never reach a log.
pub const PHI: &[&str] = &["SYN000111222", "1980-02-29", "\"PAT\"", "SYNTHETIC*PAT"];

/// Panics when a log holds patient data.
pub fn assert_no_phi(log: &Path, extra: &[&str]) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    for p in PHI.iter().chain(extra) {
        assert!(
            !text.contains(p),
            "{} holds patient data {p:?}",
            log.display()
        );
    }
}

/// GET a mock payer's JSON endpoint (`/mock/stats`, `/mock/received`).
pub async fn mock_json(mock: &Proc, path: &str) -> Value {
    reqwest::get(format!("{}{path}", mock.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// How many times each authorization (trace number) was created at the mock payer.
pub fn new_authorizations_by_trace(received: &Value) -> std::collections::HashMap<String, u32> {
    let mut n = std::collections::HashMap::new();
    for r in received.as_array().unwrap() {
        if r["outcome"] == "new" {
            *n.entry(r["authorization"].as_str().unwrap_or("").to_owned())
                .or_default() += 1;
        }
    }
    n
}
