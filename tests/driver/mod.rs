//! Drives the `priorauth` binary for the tracking tests: one database and folder per test,
//! the clock and the actor given on each call.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use priorauth::domain::AuthorizationRequest;
use serde_json::Value;

pub struct Cli {
    pub db: String,
    pub dir: PathBuf,
}

impl Cli {
    /// `tag` names the test in the temporary folder's name.
    pub fn new(tag: &str, db: String) -> Cli {
        let dir = std::env::temp_dir().join(format!(
            "priorauth-{tag}-{}-{}",
            std::process::id(),
            db.len() + db.bytes().map(usize::from).sum::<usize>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Cli { db, dir }
    }

    pub fn run(&self, now: &str, actor: &str, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_priorauth"))
            .args(args)
            .env("PRIORAUTH_DB", &self.db)
            .env("PRIORAUTH_NOW", now)
            .env("PRIORAUTH_ACTOR", actor)
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "panic: {stderr}");
        out
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, now: &str, actor: &str, args: &[&str]) -> String {
        let out = self.run(now, actor, args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects failure; returns stderr.
    pub fn fails(&self, now: &str, actor: &str, args: &[&str]) -> (i32, String) {
        let out = self.run(now, actor, args);
        assert!(!out.status.success(), "{args:?} should fail");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn json(&self, now: &str, actor: &str, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let s = self.ok(now, actor, &a);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
    }

    pub fn file(&self, name: &str, data: &[u8]) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, data).unwrap();
        p.display().to_string()
    }

    pub fn ingest(&self, now: &str, name: &str, data: &[u8]) -> Value {
        let f = self.file(name, data);
        self.json(now, "system", &["ingest", &f])
    }

    pub fn record(&self, id: &str) -> Value {
        self.json("2027-01-06", "alice", &["records", "show", id])
    }
}

/// Takes a request through the chain (clinician, supervisor, finance when above the threshold)
/// and submits it; returns the record id and the submitted 278.
pub fn through_chain(cli: &Cli, req: &AuthorizationRequest, name: &str) -> (String, Vec<u8>) {
    let f = cli.file(name, serde_json::to_string(req).unwrap().as_bytes());
    let id = cli
        .ok("2027-01-02", "alice", &["records", "create", &f])
        .trim()
        .to_owned();
    cli.ok("2027-01-02", "alice", &["records", "review", &id]);
    let mut status = cli.json("2027-01-02", "bob", &["records", "approve", &id]);
    if status["awaiting"] == "finance" {
        status = cli.json("2027-01-02", "fran", &["records", "approve", &id]);
    }
    assert_eq!(status["status"], "ready", "{status}");
    let out = cli.dir.join(format!("{name}.x12"));
    cli.ok(
        "2027-01-02T10:00:00Z",
        "alice",
        &[
            "records",
            "submit",
            &id,
            "--receiver",
            "ZZ:SYNPLAN01",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    (id, std::fs::read(out).unwrap())
}
