//! The command line as a user drives it: the contract commands, exit codes, stderr.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use priorauth::x12::ack::{Acknowledgement, parse_acks};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_priorauth"))
}

fn run(args: &[&str]) -> Output {
    let out = bin().args(args).output().expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    out
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/requests")
        .join(name)
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("priorauth-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn translate_json_to_x12_and_back() {
    let req = fixture("mri-lumbar-outpatient.json");
    let out = run(&[
        "translate",
        "--to",
        "x12",
        req.to_str().unwrap(),
        "--receiver",
        "ZZ:SYNPLAN01",
        "--control-number",
        "42",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let x12 = String::from_utf8(out.stdout).unwrap();
    assert!(x12.starts_with("ISA*00*"), "{x12}");
    assert!(x12.contains("*000000042*0*T*:~"), "{x12}");
    assert!(x12.contains("ST*278*0042*005010X217~"), "{x12}");
    assert!(x12.contains("HI*ABK:M5416*ABF:M5136~"), "{x12}");
    assert!(x12.contains("SV1*HC:72148*1200.00*UN*1*22~"), "{x12}");
    let path = tmp("mri.x12");
    std::fs::write(&path, &x12).unwrap();
    let out = run(&["translate", "--to", "json", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let back: priorauth::domain::AuthorizationRequest =
        serde_json::from_value(v["transactions"][0]["message"]["request"].clone()).unwrap();
    let original: priorauth::domain::AuthorizationRequest =
        serde_json::from_str(&std::fs::read_to_string(&req).unwrap()).unwrap();
    // The 278 carries ICD-10 codes without their dot: the only difference is that normal form.
    let mut expected = original.clone();
    for d in &mut expected.event.diagnoses {
        if let priorauth::domain::DiagnosisCode::Icd10Cm(c) = &d.code {
            d.code = priorauth::domain::DiagnosisCode::Icd10Cm(
                priorauth::domain::Icd10Cm::parse(&c.compact()).unwrap(),
            );
        }
    }
    assert_eq!(back, expected);
    // And the JSON output feeds straight back into --to x12, giving the same transaction set.
    let jpath = tmp("mri.json");
    std::fs::write(&jpath, &out.stdout).unwrap();
    let again = run(&[
        "translate",
        "--to",
        "x12",
        jpath.to_str().unwrap(),
        "--receiver",
        "ZZ:SYNPLAN01",
        "--control-number",
        "42",
    ]);
    let again = String::from_utf8(again.stdout).unwrap();
    let body = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with("ISA") && !l.starts_with("GS"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&again), body(&x12));
}

#[test]
fn bad_json_says_which_field() {
    let path = tmp("bad.json");
    let mut v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("mri-lumbar-outpatient.json")).unwrap(),
    )
    .unwrap();
    v["requester"]["id"] = serde_json::json!({"npi": "1234567890"});
    std::fs::write(&path, v.to_string()).unwrap();
    let out = run(&["translate", "--to", "x12", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("requester.id.npi") && err.contains("check digit"),
        "{err}"
    );
    std::fs::write(&path, "{ not json").unwrap();
    let out = run(&["translate", "--to", "x12", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
    let out = run(&["translate", "--to", "x12", "/nonexistent/file.json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/file.json"));
}

#[test]
fn parse_prints_decisions_with_codes_and_words() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let f = shared.join("fixtures/x12/X217-admission-response-to-request-for-review.edi");
    let out = run(&["parse", f.to_str().unwrap()]);
    assert!(out.status.success());
    let v = json(&out);
    let d = &v["decisions"][0];
    assert_eq!(d["status"], "modified");
    assert_eq!(d["action_code"], "A6");
    assert_eq!(d["certification_number"], "AUTH0002");
    assert_eq!(d["lines"][0]["status"], "approved");
    assert_eq!(d["lines"][0]["action_code"], "A1");
    assert_eq!(d["lines"][0]["procedure"], "HC:33510");
}

#[test]
fn parse_prints_999_acknowledgements() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let f = shared.join("fixtures/x12/imsweb-x12_999_rejected.txt");
    let out = run(&["parse", f.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let t = &v["acknowledgements"][0]["group"]["transactions"][0];
    assert_eq!(t["accepted"], false);
    assert_eq!(t["status"]["code"], "R");
    assert_eq!(t["segment_errors"][0]["position"], 17);
    assert!(
        String::from_utf8_lossy(&out.stderr).is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn validate_exit_codes_lines_and_acks() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("fixtures/x12");
    let good = dir.join("X217-referral-request-for-review.edi");
    let out = run(&["validate", good.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = dir.join("X217-admission-request-for-review.edi");
    let out = run(&["validate", bad.to_str().unwrap(), "--ack", "999"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let se = err
        .lines()
        .find(|l| l.contains("[se_count]"))
        .expect("one line per error");
    assert!(se.contains("segment 28 SE") && se.contains("SE01"), "{se}");
    let (acks, issues) = parse_acks(&out.stdout);
    assert!(issues.is_empty(), "{issues:?}");
    let Acknowledgement::Implementation(a) = &acks[0] else {
        panic!("expected a 999")
    };
    let t = &a.group.transactions[0];
    assert!(!t.accepted);
    let status = t.status.as_ref().expect("IK5");
    assert_eq!(status.code, "R");
    assert!(status.errors.iter().any(|e| e.code == "4"), "{t:?}");
    // Lenient mode reads the same file as acceptable with errors.
    let out = run(&[
        "validate",
        bad.to_str().unwrap(),
        "--ack",
        "999",
        "--lenient",
    ]);
    assert!(out.status.success());
    let (acks, _) = parse_acks(&out.stdout);
    let Acknowledgement::Implementation(a) = &acks[0] else {
        panic!("expected a 999")
    };
    assert_eq!(a.group.transactions[0].status.as_ref().unwrap().code, "E");
    // The guide's rules are part of validation: an event HL that claims children it lacks.
    let tmhp = dir.join("x12types-parse_278_1.edi");
    let out = run(&["validate", tmhp.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let hl = err
        .lines()
        .find(|l| l.contains("[hl_child_flag]"))
        .expect("guide issue");
    assert!(hl.contains("loop 2000E") && hl.contains("HL04"), "{hl}");
    // A TA1 for a hand-typed ISA rejects the interchange with note 022.
    let loose = dir.join("x12types-parse_278_6.edi");
    let out = run(&["validate", loose.to_str().unwrap(), "--ack", "ta1"]);
    assert_eq!(out.status.code(), Some(1));
    let (acks, _) = parse_acks(&out.stdout);
    let Acknowledgement::Interchange(t) = &acks[0] else {
        panic!("expected a TA1")
    };
    assert_eq!(t.code, "R");
    assert_eq!(t.note.code, "022");
}

#[test]
fn garbage_is_refused_with_a_message() {
    let path = tmp("garbage.x12");
    for data in [&b"ISA*00*"[..], b"HELLO", b"", &[0xff, 0xfe, 0x00][..]] {
        std::fs::write(&path, data).unwrap();
        for cmd in ["parse", "validate"] {
            let out = run(&[cmd, path.to_str().unwrap()]);
            assert!(!out.status.success(), "{cmd} {data:?}");
            assert!(!out.stderr.is_empty(), "{cmd} {data:?}");
        }
    }
    assert!(Path::new(env!("CARGO_BIN_EXE_priorauth")).exists());
}
