//! `priorauth parse` and `translate --to json` stream their input; their output must stay what
//! printing the whole in-memory `decode_all` (and, for `parse`, `parse_acks`) result gives
//! (the reference below is the code those commands had before streaming): the same standard output byte for byte, the same
//! standard error lines and the same exit code, on good, broken and mixed inputs.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use priorauth::synth::{BatchSpec, write_requests, write_responses};
use priorauth::x12::ack::parse_acks;
use priorauth::x12::tx278::{Message278, decode_all};
use priorauth::x12::{Issue, Severity};
use serde_json::{Value, json};

struct Out {
    stdout: String,
    stderr: String,
    code: i32,
}

fn reference_parse(data: &[u8]) -> Out {
    let decoded = decode_all(data);
    let mut decisions = vec![];
    let mut requests = vec![];
    let mut failed = false;
    for t in &decoded.transactions {
        match &t.message {
            Some(Message278::Response(r)) => {
                let mut v = priorauth::report::decision_view(r);
                v["transaction"] = json!({"control_number": t.transaction.control_number, "index": t.transaction.index});
                decisions.push(v);
            }
            Some(Message278::Request(r)) => requests.push(priorauth::report::request_summary(r)),
            None if t.transaction.id == "278" => failed = true,
            None => {}
        }
    }
    // 999 sets are read as acknowledgements (with their content problems), not skipped.
    let (acks, ack_issues) = parse_acks(data);
    let content: Vec<&Issue> = ack_issues
        .iter()
        .filter(|i| !decoded.issues.contains(i))
        .collect();
    let mut issues: Vec<&Issue> = decoded.issues.iter().collect();
    for t in &decoded.transactions {
        if t.transaction.id == "999" {
            let here = |i: &&Issue| {
                let (a, b) = (&i.location, &t.transaction.location);
                (a.interchange, a.group, a.transaction) == (b.interchange, b.group, b.transaction)
            };
            issues.extend(content.iter().copied().filter(here));
        } else {
            issues.extend(t.issues.iter());
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("decisions".into(), decisions.into());
    if !requests.is_empty() {
        out.insert("requests".into(), requests.into());
    }
    if !acks.is_empty() {
        out.insert(
            "acknowledgements".into(),
            serde_json::to_value(&acks).unwrap(),
        );
    }
    let errors: Vec<&Issue> = issues
        .iter()
        .copied()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    out.insert("errors".into(), serde_json::to_value(&errors).unwrap());
    Out {
        stdout: serde_json::to_string_pretty(&Value::Object(out)).unwrap() + "\n",
        stderr: issues.iter().map(|i| format!("{i}\n")).collect(),
        code: i32::from(failed || (decoded.transactions.is_empty() && acks.is_empty())),
    }
}

fn reference_translate(data: &[u8]) -> Out {
    let decoded = decode_all(data);
    let failed = decoded
        .transactions
        .iter()
        .any(|t| t.message.is_none() && t.transaction.id == "278")
        || decoded.transactions.is_empty();
    Out {
        stdout: serde_json::to_string_pretty(&decoded).unwrap() + "\n",
        stderr: decoded.all_issues().map(|i| format!("{i}\n")).collect(),
        code: i32::from(failed),
    }
}

fn run(args: &[&str], data: &[u8]) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_priorauth"))
        .args(args)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    Out {
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        code: out.status.code().unwrap(),
    }
}

fn check(name: &str, data: &[u8]) {
    for (args, reference) in [
        (&["parse"][..], reference_parse(data)),
        (
            &["translate", "--to", "json"][..],
            reference_translate(data),
        ),
    ] {
        let got = run(args, data);
        assert!(
            got.stdout == reference.stdout,
            "{name}: {args:?} standard output differs:\n--- streamed\n{}\n--- reference\n{}",
            got.stdout,
            reference.stdout
        );
        assert_eq!(got.stderr, reference.stderr, "{name}: {args:?} stderr");
        assert_eq!(got.code, reference.code, "{name}: {args:?} exit code");
    }
}

const ISA: &str = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*^*00501*000000001*0*T*:~";

#[test]
fn streamed_output_is_the_in_memory_output() {
    let mut responses = vec![];
    write_responses(
        &BatchSpec {
            seed: 5,
            target_bytes: 200_000,
            per_interchange: 40,
            newline: true,
        },
        &mut responses,
    )
    .unwrap();
    check("responses", &responses);
    let mut requests = vec![];
    write_requests(
        &BatchSpec {
            seed: 6,
            target_bytes: 30_000,
            per_interchange: 0,
            newline: false,
        },
        &mut requests,
    )
    .unwrap();
    check("requests", &requests);
    let mut mixed = requests.clone();
    mixed.extend_from_slice(&responses[..responses.len() / 3]);
    check("mixed, cut in the middle", &mixed);
    let broken = format!(
        "{ISA}GS*HI*S*R*20240101*1200*5*X*005010X217~ST*278*0001~BHT*0007*11~HL*1**20*0~ZZZ*1~SE*9*0001~FOO*1~ST*999*0002~AK1*HI*1~SE*3*0002~ST*278*0003~BHT*0007*11*R2~GE*3*6~{ISA}GS*HI*S*R*20240101*1200*5*X*005010X217~ST*278*0004~BHT*0007*13*R3"
    );
    check("broken envelopes", broken.as_bytes());
    check("loose ISA", b"ISA*00* *00* *ZZ*146111111 *ZZ*617591011LTCPP\n*170406*1130*|*00501*100000001*0*P*:~\nGS*HI*A*B*20170406*1130*1*X*005010X217~");
    check("truncated ISA", b"ISA*00*");
    check(
        "byte-order mark",
        &[b"\xEF\xBB\xBF\r\n".as_slice(), broken.as_bytes()].concat(),
    );
}

#[test]
fn shared_fixtures_stream_as_they_read_in_memory() {
    let Some(dir) = common::shared_dir() else {
        return;
    };
    let mut n = 0;
    for entry in std::fs::read_dir(dir.join("fixtures/x12")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        check(&path.display().to_string(), &data);
        n += 1;
    }
    assert!(n > 0);
}

#[test]
fn not_x12_and_missing_files_are_refused_as_before() {
    let out = run(&["parse"], b"{\"not\": \"x12\"}");
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: -: not an X12 interchange (it does not start with ISA)\n"
    );
    assert_eq!(out.stdout, "");
    let out = Command::new(env!("CARGO_BIN_EXE_priorauth"))
        .args(["parse", "/nonexistent/file.x12"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: /nonexistent/file.x12: No such file or directory (os error 2)\n"
    );
}
