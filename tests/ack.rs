//! Acknowledgements end to end: the public 999 fixtures read with the right outcome, a 999
//! generated for a 278 with located errors reads back as written, and pyx12 accepts the 999s
//! and TA1s we write (and rejects broken copies of them, so the check itself is checked).
//!
//! Fixtures come from `$PRIORAUTH_SHARED/fixtures/x12` (default `../shared`); tests that need
//! them print a message and pass when they are absent. The pyx12 test needs `python3` with
//! pyx12 (`pip install pyx12`): absent, it prints why and passes, unless `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use priorauth::domain::Date;
use priorauth::x12::ack::{
    AcknowledgedGroup, Acknowledgement, Generated999, ImplementationAck, InterchangeAck, X231A1,
    generate_999, generate_ta1, parse_acks, read_envelopes,
};
use priorauth::x12::envelope::InterchangeSummary;
use priorauth::x12::writer::{EnvelopeSettings, MemoryControlNumbers, Stamp};
use priorauth::x12::{AckCode, Issue, Location};

fn shared() -> PathBuf {
    match std::env::var_os("PRIORAUTH_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"),
    }
}

fn fixture(name: &str) -> Option<Vec<u8>> {
    let path = shared().join("fixtures/x12").join(name);
    match std::fs::read(&path) {
        Ok(d) => Some(d),
        Err(e) => {
            println!(
                "SKIPPED: fixture {} is not available ({e}); set PRIORAUTH_SHARED to the shared directory",
                path.display()
            );
            None
        }
    }
}

fn stamp() -> Stamp {
    Stamp {
        date: Date::new(2026, 1, 5).unwrap(),
        hour: 9,
        minute: 31,
    }
}

fn nines(acks: &[Acknowledgement]) -> Vec<&ImplementationAck> {
    acks.iter()
        .map(|a| match a {
            Acknowledgement::Implementation(i) => i,
            Acknowledgement::Interchange(_) => panic!("unexpected TA1"),
        })
        .collect()
}

fn codes(issues: &[Issue]) -> Vec<&str> {
    issues.iter().map(|i| i.code).collect()
}

// ---------------------------------------------------------------------------------------------
// Public fixtures
// ---------------------------------------------------------------------------------------------

#[test]
fn herophilus_accepted() {
    let Some(data) = fixture("herophilus-999_Sample_Accepted.txt") else {
        return;
    };
    let (acks, issues) = parse_acks(&data);
    assert!(issues.is_empty(), "{issues:?}");
    let a = nines(&acks)[0];
    assert_eq!(
        (a.sender_id.as_str(), a.control_number.as_str()),
        ("EMEDNYBAT", "4001")
    );
    let g = &a.group;
    assert_eq!(
        (
            g.functional_id.as_str(),
            g.control_number.as_str(),
            g.version.as_deref()
        ),
        ("HC", "28", Some("005010X223A2"))
    );
    let t = &g.transactions[0];
    assert_eq!(
        (t.transaction_set_id.as_str(), t.control_number.as_str()),
        ("837", "0028")
    );
    assert!(t.accepted && t.segment_errors.is_empty());
    assert_eq!(t.status.as_ref().unwrap().status, "accepted");
    let ak9 = g.status.as_ref().unwrap();
    assert_eq!(
        (ak9.code.as_str(), ak9.included, ak9.received, ak9.accepted),
        ("A", Some(1), Some(1), Some(1))
    );
    assert!(g.accepted && acks[0].accepted());
}

#[test]
fn imsweb_accepted_reports_the_iea_mismatch() {
    let Some(data) = fixture("imsweb-x12_999_accepted.txt") else {
        return;
    };
    let (acks, issues) = parse_acks(&data);
    let a = nines(&acks)[0];
    assert!(a.group.accepted && a.group.transactions[0].accepted);
    assert_eq!(a.interchange_control_number, "000000286");
    // GS05 102497 has 97 seconds (pyx12 flags it too), and IEA02 does not match ISA13.
    assert_eq!(
        codes(&issues),
        ["gs_time", "iea_control_number"],
        "{issues:?}"
    );
    assert_eq!(issues[0].location.element, Some(5));
    let loc = &issues[1].location;
    assert_eq!(
        (
            loc.interchange,
            loc.segment_index,
            loc.segment_id.as_deref(),
            loc.element
        ),
        (Some(1), Some(10), Some("IEA"), Some(2))
    );
    assert_eq!(issues[1].value.as_deref(), Some("000000001"));
    assert_eq!(issues[1].ack, Some(AckCode::Interchange("001")));
}

#[test]
fn imsweb_rejected() {
    let Some(data) = fixture("imsweb-x12_999_rejected.txt") else {
        return;
    };
    let (acks, issues) = parse_acks(&data);
    assert!(issues.is_empty(), "{issues:?}");
    let a = nines(&acks)[0];
    assert!(!acks[0].accepted() && !a.group.accepted);
    let t = &a.group.transactions[0];
    assert!(!t.accepted);
    // The file says IK3*NM*17**1: segment id "NM" (not NM1), position 17, no loop, code 1.
    let e = &t.segment_errors[0];
    assert_eq!(
        (e.segment_id.as_str(), e.position, e.loop_id.as_deref()),
        ("NM", Some(17), None)
    );
    let ik304 = e.error.as_ref().unwrap();
    assert_eq!(
        (ik304.code.as_str(), ik304.description),
        ("1", Some("Unrecognized segment ID"))
    );
    let ik5 = t.status.as_ref().unwrap();
    assert_eq!((ik5.code.as_str(), ik5.status), ("R", "rejected"));
    assert_eq!(ik5.errors.len(), 1);
    assert_eq!(
        (ik5.errors[0].code.as_str(), ik5.errors[0].description),
        ("5", Some("One or more segments in error"))
    );
    let ak9 = a.group.status.as_ref().unwrap();
    assert_eq!(
        (ak9.code.as_str(), ak9.received, ak9.accepted),
        ("R", Some(1), Some(0))
    );
}

#[test]
fn pyx12_single_group() {
    let Some(data) = fixture("pyx12-834_ls_le_ls_5010.999.txt") else {
        return;
    };
    let (acks, issues) = parse_acks(&data);
    assert!(issues.is_empty(), "{issues:?}");
    let a = nines(&acks)[0];
    assert_eq!(a.implementation_reference.as_deref(), Some("005010X231"));
    assert_eq!(
        (
            a.group.functional_id.as_str(),
            a.group.control_number.as_str()
        ),
        ("BE", "146")
    );
    assert_eq!(a.group.transactions[0].control_number, "146001");
    assert!(a.group.accepted);
}

#[test]
fn pyx12_two_groups_four_999s() {
    let Some(data) = fixture("pyx12-834_lui_id_5010.999.txt") else {
        return;
    };
    let (acks, issues) = parse_acks(&data);
    assert!(issues.is_empty(), "{issues:?}");
    let all = nines(&acks);
    let places: Vec<(Option<usize>, Option<usize>, &str)> = all
        .iter()
        .map(|a| {
            (
                a.location.group,
                a.location.transaction,
                a.control_number.as_str(),
            )
        })
        .collect();
    assert_eq!(
        places,
        [
            (Some(1), Some(1), "0001"),
            (Some(1), Some(2), "0002"),
            (Some(2), Some(1), "0003"),
            (Some(2), Some(2), "0004")
        ]
    );
    assert!(
        all.iter()
            .all(|a| a.group.accepted && a.group.control_number == "13360001")
    );
}

// ---------------------------------------------------------------------------------------------
// Generated acknowledgements
// ---------------------------------------------------------------------------------------------

const RECEIVED_ISA: &str = "ISA*00*          *00*          *ZZ*SYNCLINIC      *ZZ*SYNPAYER       *260105*0930*^*00501*000000321*1*T*:~";

/// The segments of a synthetic 278 request (no real person): ST first, SE last with `se01`.
fn request_278(st02: &str, se01: Option<&str>) -> Vec<String> {
    let body = [
        format!("ST*278*{st02}*005010X217"),
        "BHT*0007*13*TRACE0001*20260105*0930".into(),
        "HL*1**20*1".into(),
        "NM1*X3*2*SYNTHETIC PAYER*****PI*PAYER01".into(),
        "HL*2*1*21*1".into(),
        "NM1*1P*2*SYNTHETIC CLINIC*****XX*1234567893".into(),
        "HL*3*2*22*1".into(),
        "NM1*IL*1*TESTPATIENT*ALEX****MI*MEMBER0001".into(),
        "HL*4*3*EV*0".into(),
        "UM*HS*I*3*11:B".into(),
        "REF*ZZ*NOTUSED".into(),
    ];
    let count = body.len() + 1;
    let mut segs: Vec<String> = body.into_iter().collect();
    segs.push(format!(
        "SE*{}*{st02}",
        se01.map(str::to_owned).unwrap_or(count.to_string())
    ));
    segs
}

fn interchange(groups: &[(&str, &str, &str, Vec<Vec<String>>)]) -> Vec<u8> {
    let mut s = RECEIVED_ISA.to_owned();
    for (sender, receiver, gs06, sets) in groups {
        s.push_str(&format!(
            "GS*HI*{sender}*{receiver}*20260105*0930*{gs06}*X*005010X217~"
        ));
        for set in sets {
            for seg in set {
                s.push_str(seg);
                s.push_str("~\n");
            }
        }
        s.push_str(&format!("GE*{}*{gs06}~", sets.len()));
    }
    s.push_str(&format!("IEA*{}*000000321~", groups.len()));
    s.into_bytes()
}

fn position(set: &[String], starts: &str) -> usize {
    set.iter().position(|s| s.starts_with(starts)).unwrap() + 1
}

fn read_back(g: &Generated999) -> Vec<AcknowledgedGroup> {
    let (acks, issues) = parse_acks(&g.bytes);
    assert!(
        issues.is_empty(),
        "our 999 has problems: {issues:?}\n{}",
        String::from_utf8_lossy(&g.bytes)
    );
    nines(&acks).into_iter().map(|a| a.group.clone()).collect()
}

/// A 278 interchange whose first set has a wrong SE01, a bad UM04-2 code, a "not used" REF and
/// a warning on BHT03; its second set is clean. Returns the summary, all issues and the set.
fn rejected_case() -> (InterchangeSummary, Vec<Issue>, Vec<String>) {
    let bad = request_278("0001", Some("99"));
    let data = interchange(&[(
        "SYNCLINIC",
        "SYNPAYER",
        "55",
        vec![bad.clone(), request_278("0002", None)],
    )]);
    let (summary, mut issues) = read_envelopes(&data);
    assert_eq!(codes(&issues), ["se_count"], "{issues:?}");
    let set = summary[0].groups[0].transactions[0].location.clone();
    let at = |seg: &str,
              element: Option<usize>,
              component: Option<usize>,
              loop_id: Option<&str>| Location {
        segment_position: Some(position(&bad, seg)),
        segment_id: Some(seg.split('*').next().unwrap().to_owned()),
        element,
        component,
        loop_id: loop_id.map(str::to_owned),
        ..set.clone()
    };
    issues.push(
        Issue::error(
            "facility_code",
            at("UM", Some(4), Some(2), Some("2000E")),
            "UM04-2 must be A, B or C",
        )
        .value("B")
        .ack(AckCode::Element("7")),
    );
    issues.push(
        Issue::error(
            "not_used",
            at("REF", None, None, Some("2000E")),
            "REF*ZZ is not used in 2000E",
        )
        .ack(AckCode::Segment("I4")),
    );
    issues.push(
        Issue::warning(
            "trace_format",
            at("BHT", Some(3), None, None),
            "BHT03 is usually a UUID",
        )
        .value("TRACE0001"),
    );
    (summary.into_iter().next().unwrap(), issues, bad)
}

fn rejected_999() -> (Generated999, Vec<String>) {
    let (summary, issues, bad) = rejected_case();
    let g = generate_999(
        &summary,
        &issues,
        &EnvelopeSettings::default(),
        &MemoryControlNumbers::new(),
        stamp(),
    )
    .unwrap();
    (g, bad)
}

#[test]
fn round_trip_of_a_rejected_278() {
    let (g, bad) = rejected_999();
    assert!(g.notes.is_empty(), "{:?}", g.notes);
    let read = read_back(&g);
    assert_eq!(read, g.groups);
    let text = String::from_utf8(g.bytes.clone()).unwrap();
    // Our ids are the received ones reversed; the test interchange is answered in test mode.
    assert!(text.starts_with("ISA*00*          *00*          *ZZ*SYNPAYER       *ZZ*SYNCLINIC      *260105*0931*^*00501*000000001*0*T*:~"), "{text}");
    assert!(
        text.contains(&format!(
            "GS*FA*SYNPAYER*SYNCLINIC*20260105*0931*1*X*{X231A1}~"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("ST*999*0001*{X231A1}~")), "{text}");
    // The same thing, said segment by segment.
    let um = position(&bad, "UM");
    let r#ref = position(&bad, "REF");
    for line in [
        "AK1*HI*55*005010X217~".to_owned(),
        "AK2*278*0001*005010X217~".into(),
        "IK3*BHT*2**8~".into(),
        "IK4*3**I12*TRACE0001~".into(),
        format!("IK3*UM*{um}*2000*8~"),
        "IK4*4:2**7*B~".into(),
        format!("IK3*REF*{}*2000*I4~", r#ref),
        "IK5*R*4*5~".into(),
        "AK2*278*0002*005010X217~".into(),
        "IK5*A~".into(),
        "AK9*P*2*2*1~".into(),
    ] {
        assert!(text.contains(&line), "missing {line}\n{text}");
    }
    let g0 = &read[0];
    assert!(!g0.accepted);
    assert!(!g0.transactions[0].accepted && g0.transactions[1].accepted);
    let ik3 = &g0.transactions[0].segment_errors;
    assert_eq!(
        ik3[1].element_errors[0].error.as_ref().unwrap().description,
        Some("Invalid code value")
    );
    assert_eq!(
        ik3[2].error.as_ref().unwrap().description,
        Some("Implementation \"Not Used\" segment present")
    );
}

#[test]
fn round_trip_of_a_ta1() {
    let mut data = interchange(&[(
        "SYNCLINIC",
        "SYNPAYER",
        "55",
        vec![request_278("0001", None)],
    )]);
    let text = String::from_utf8(data.clone())
        .unwrap()
        .replace("IEA*1*000000321~", "IEA*1*000000322~");
    data = text.into_bytes();
    let (summary, issues) = read_envelopes(&data);
    assert_eq!(codes(&issues), ["iea_control_number"]);
    let t = generate_ta1(
        &summary[0].header,
        &issues,
        &EnvelopeSettings::default(),
        &MemoryControlNumbers::new(),
        stamp(),
    )
    .unwrap();
    assert_eq!(
        (t.code, t.note_code.as_str(), t.acknowledged.as_str()),
        ("R", "001", "000000321")
    );
    let (acks, problems) = parse_acks(&t.bytes);
    assert!(problems.is_empty(), "{problems:?}");
    let Acknowledgement::Interchange(InterchangeAck {
        control_number,
        date,
        time,
        code,
        status,
        note,
        accepted,
        sender_id,
        ..
    }) = &acks[0]
    else {
        panic!("not a TA1")
    };
    assert_eq!(
        (control_number.as_str(), date.as_str(), time.as_str()),
        ("000000321", "260105", "0931")
    );
    assert_eq!(
        (code.as_str(), *status, *accepted, note.code.as_str()),
        ("R", "rejected", false, "001")
    );
    assert_eq!(sender_id, "SYNPAYER");
}

// ---------------------------------------------------------------------------------------------
// pyx12
// ---------------------------------------------------------------------------------------------

/// Validates X12 files with pyx12: interchanges with groups through pyx12's implementation-guide
/// validation (its 005010X231A1 map for 999), TA1-only interchanges through pyx12's envelope
/// reader plus the TA1 element rules. Prints `OK file` or `FAIL file: errors`; exit 1 on failure.
const PYX12_CHECK: &str = r#"
import io, json, logging, re, sys
import pyx12.params, pyx12.x12n_document, pyx12.x12file

class Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.msgs = []
    def emit(self, record):
        self.msgs.append(record.getMessage())

def json_errors(node):
    out = []
    if isinstance(node, dict):
        out += [str(e) for e in node.get("errors", []) or []]
        for k, v in node.items():
            if k != "errors":
                out += json_errors(v)
    elif isinstance(node, list):
        for v in node:
            out += json_errors(v)
    return out

def check(path):
    text = open(path, encoding="latin-1").read()
    if not text.startswith("ISA") or len(text) < 106:
        return ["not an interchange"]
    es, term = text[3], text[105]
    segs = [s.strip("\r\n").split(es) for s in text.split(term) if s.strip("\r\n")]
    errors = []
    log = logging.getLogger("pyx12")
    cap = Capture()
    log.addHandler(cap)
    log.propagate = False
    try:
        if any(s[0] == "GS" for s in segs):
            gs08 = next(s for s in segs if s[0] == "GS")[8]
            if gs08 != "005010X231A1":
                errors.append("GS08 %r is not 005010X231A1" % gs08)
            fd_json, fd_ack = io.StringIO(), io.StringIO()
            ok = pyx12.x12n_document.x12n_document(param=pyx12.params.params(), src_file=io.StringIO(text),
                                                   fd_997=fd_ack, fd_html=None, fd_json=fd_json)
            errors += json_errors(json.loads(fd_json.getvalue() or "{}"))
            if not ok and not errors:
                errors.append("pyx12 reported failure")
        else:
            rdr = pyx12.x12file.X12Reader(io.StringIO(text))
            for seg in rdr:
                errors += ["%s %s" % (e[1], e[2]) for e in rdr.pop_errors()]
            errors += ["%s %s" % (e[1], e[2]) for e in rdr.pop_errors()]
            ta1 = [s for s in segs if s[0] == "TA1"]
            if len(ta1) != 1:
                errors.append("expected one TA1, found %d" % len(ta1))
            for s in ta1:
                s = s + [""] * (6 - len(s))
                if not re.fullmatch(r"\d{9}", s[1]): errors.append("TA101 %r" % s[1])
                if not re.fullmatch(r"\d{6}", s[2]): errors.append("TA102 %r" % s[2])
                if not re.fullmatch(r"\d{4}", s[3]): errors.append("TA103 %r" % s[3])
                if s[4] not in ("A", "E", "R"): errors.append("TA104 %r" % s[4])
                if not re.fullmatch(r"0[0-3]\d", s[5]) or int(s[5]) > 31: errors.append("TA105 %r" % s[5])
    except Exception as e:
        errors.append("pyx12 raised %s: %s" % (type(e).__name__, e))
    finally:
        log.removeHandler(cap)
    return errors + [m for m in cap.msgs if m not in errors]

rc = 0
for path in sys.argv[1:]:
    errors = check(path)
    print(("OK   %s" % path) if not errors else ("FAIL %s: %s" % (path, errors)))
    rc |= bool(errors)
sys.exit(rc)
"#;

/// Whether python3 with pyx12 can run; `None` (after saying why) when the test should skip.
fn pyx12_available() -> Option<()> {
    let ok = Command::new("python3")
        .args(["-c", "import pyx12.x12n_document"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(());
    }
    let why = "python3 with pyx12 is not available (install it with `pip install pyx12`)";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "CI=true and {why}: the pyx12 validation of generated acknowledgements must run in CI"
        );
    }
    println!("SKIPPED pyx12 validation: {why}");
    eprintln!("SKIPPED pyx12 validation: {why}");
    None
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("priorauth-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs the checker; returns (success, output).
fn run_pyx12(dir: &TempDir, files: &[PathBuf]) -> (bool, String) {
    let script = dir.write("check_pyx12.py", PYX12_CHECK.as_bytes());
    let out = Command::new("python3")
        .arg(script)
        .args(files)
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn generated_acknowledgements_pass_pyx12() {
    if pyx12_available().is_none() {
        return;
    }
    let dir = TempDir::new("ack-pyx12");
    let settings = EnvelopeSettings::default();
    let numbers = MemoryControlNumbers::new();
    let mut files = vec![];

    // Accepted: two clean groups from different application senders (two FA groups).
    let clean = interchange(&[
        (
            "SYNCLINIC",
            "SYNPAYER",
            "55",
            vec![request_278("0001", None), request_278("0002", None)],
        ),
        ("SYNLAB", "SYNPAYER", "56", vec![request_278("0001", None)]),
    ]);
    let (summary, issues) = read_envelopes(&clean);
    assert!(issues.is_empty(), "{issues:?}");
    let accepted = generate_999(&summary[0], &issues, &settings, &numbers, stamp()).unwrap();
    assert!(
        accepted
            .groups
            .iter()
            .all(|g| g.accepted && g.status.as_ref().unwrap().code == "A")
    );
    assert_eq!(
        String::from_utf8_lossy(&accepted.bytes)
            .matches("GS*FA*")
            .count(),
        2
    );
    assert_eq!(read_back(&accepted), accepted.groups);
    files.push(dir.write("accepted.999", &accepted.bytes));

    // Rejected: IK3 with IK4 (composite position), an implementation segment code, IK5*R*4*5, AK9*P.
    let (rejected, _) = rejected_999();
    let rejected_text = String::from_utf8(rejected.bytes.clone()).unwrap();
    assert!(rejected_text.contains("IK4*4:2**7*B~") && rejected_text.contains("IK5*R*4*5~"));
    files.push(dir.write("rejected.999", &rejected.bytes));

    // Rejected at the group level (GE01 wrong: AK9*R with AK905 5), without newlines and with
    // other delimiters.
    let bad_ge = String::from_utf8(interchange(&[(
        "SYNCLINIC",
        "SYNPAYER",
        "57",
        vec![request_278("0001", None)],
    )]))
    .unwrap()
    .replace("GE*1*57~", "GE*3*57~");
    let (summary, issues) = read_envelopes(bad_ge.as_bytes());
    assert_eq!(codes(&issues), ["ge_count"]);
    let other = EnvelopeSettings {
        newline: false,
        delimiters: priorauth::x12::Delimiters {
            element: b'|',
            repetition: Some(b'^'),
            component: b'>',
            segment: b'\'',
        },
        ..settings.clone()
    };
    let group_rejected = generate_999(&summary[0], &issues, &other, &numbers, stamp()).unwrap();
    assert!(String::from_utf8_lossy(&group_rejected.bytes).contains("AK9|R|3|1|0|5'"));
    assert_eq!(read_back(&group_rejected), group_rejected.groups);
    files.push(dir.write("group-rejected.999", &group_rejected.bytes));

    // Stress: more element errors than one IK3 holds, bad values too long or holding a
    // delimiter, implementation-guide loop ids, more IK5 codes than fit, issues with no segment.
    let (stress_summary, mut issues, bad) = rejected_case();
    let set = stress_summary.groups[0].transactions[0].location.clone();
    let nm1 = position(&bad, "NM1*IL");
    for e in 1..=130usize {
        let value = match e % 3 {
            0 => "X".repeat(150),
            1 => format!("V{e}*{e}"),
            _ => format!("v{e}"),
        };
        let loc = Location {
            segment_position: Some(nm1),
            segment_id: Some("NM1".into()),
            loop_id: Some("2010CA".into()),
            element: Some(e % 99 + 1),
            component: (e % 5 == 0).then_some(e % 7 + 1),
            ..set.clone()
        };
        let code = ["1", "4", "5", "6", "7", "I12", "I10"][e % 7];
        issues.push(
            Issue::error("stress", loc, "x")
                .value(value)
                .ack(AckCode::Element(code)),
        );
    }
    for code in ["1", "3", "6", "7", "19", "23", "I6"] {
        issues.push(Issue::error("stress_tx", set.clone(), "x").ack(AckCode::Transaction(code)));
    }
    issues.push(Issue::error(
        "no_segment",
        set.clone(),
        "a rule about the whole set",
    ));
    let stress = generate_999(&stress_summary, &issues, &settings, &numbers, stamp()).unwrap();
    assert!(stress.notes.len() > 40, "{}", stress.notes.len());
    let ik4 = &stress.groups[0].transactions[0]
        .segment_errors
        .iter()
        .find(|e| e.segment_id == "NM1")
        .unwrap()
        .element_errors;
    assert_eq!(ik4.len(), 99);
    let ik5 = stress.groups[0].transactions[0].status.clone().unwrap();
    let ik5: Vec<String> = ik5.errors.into_iter().map(|c| c.code).collect();
    assert_eq!(ik5, ["4", "1", "3", "5", "I5"]);
    assert_eq!(read_back(&stress), stress.groups);
    files.push(dir.write("stress.999", &stress.bytes));

    // A TA1 accepting an interchange and one rejecting another.
    let ta1_a = generate_ta1(&summary[0].header, &[], &settings, &numbers, stamp()).unwrap();
    assert_eq!(ta1_a.code, "A");
    files.push(dir.write("accepted.ta1", &ta1_a.bytes));
    let bad_iea = String::from_utf8(clean.clone())
        .unwrap()
        .replace("IEA*2*000000321~", "IEA*2*000000999~");
    let (summary, issues) = read_envelopes(bad_iea.as_bytes());
    let ta1_r = generate_ta1(&summary[0].header, &issues, &settings, &numbers, stamp()).unwrap();
    assert_eq!((ta1_r.code, ta1_r.note_code.as_str()), ("R", "001"));
    files.push(dir.write("rejected.ta1", &ta1_r.bytes));

    let (ok, out) = run_pyx12(&dir, &files);
    println!("{out}");
    assert!(ok, "pyx12 rejected an acknowledgement we generated:\n{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("OK ")).count(),
        files.len(),
        "{out}"
    );

    // The check really checks: broken copies of our output fail it, each for its reason.
    let broken = [
        (
            "bad-ik403.999",
            rejected_text.replace("IK4*4:2**7*B~", "IK4*4:2**ZZ*B~"),
            "IK403",
        ),
        (
            "long-loop.999",
            rejected_text.replace("*2000*I4~", "*2000E*I4~"),
            "IK303",
        ),
        (
            "bad-count.999",
            rejected_text.replace("AK9*P*2*2*1~", "AK9*P*2*2~"),
            "AK904",
        ),
        (
            "bad-se.999",
            rejected_text.replacen("SE*", "SE*1", 1),
            "SE count",
        ),
        (
            "bad-ta1.ta1",
            String::from_utf8(ta1_r.bytes.clone())
                .unwrap()
                .replace("*R*001~", "*Q*001~"),
            "TA104",
        ),
    ];
    for (name, text, reason) in broken {
        assert_ne!(text.as_bytes(), rejected.bytes.as_slice());
        let path = dir.write(name, text.as_bytes());
        let (ok, out) = run_pyx12(&dir, &[path]);
        assert!(
            !ok && out.contains(reason),
            "pyx12 should reject {name} for {reason}:\n{out}"
        );
    }

    // The shared layered validator, when present, agrees.
    let tool = shared().join("tools/validate_x12.py");
    if tool.exists() {
        let out = Command::new("python3")
            .arg(&tool)
            .args(&files)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        println!("{text}");
        assert!(
            out.status.success(),
            "validate_x12.py:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        println!(
            "SKIPPED validate_x12.py: {} is not available",
            tool.display()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

/// Every prefix and a spread of byte mutations of a 999 and a TA1 read without panicking, and
/// every problem found in acknowledgement content is located at a segment.
#[test]
fn bad_input_never_panics_and_is_located() {
    let (g, _) = rejected_999();
    let ta1 = generate_ta1(
        &read_envelopes(&g.bytes).0[0].header,
        &[],
        &EnvelopeSettings::default(),
        &MemoryControlNumbers::new(),
        stamp(),
    )
    .unwrap();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let junk = b"*~:^|'\n\r0A ";
    for original in [&g.bytes, &ta1.bytes] {
        for cut in 0..=original.len() {
            check_located(&original[..cut]);
        }
        for _ in 0..3000 {
            let mut d = original.clone();
            for _ in 0..=(next() % 4) {
                let at = (next() as usize) % d.len();
                match next() % 3 {
                    0 => d[at] = junk[(next() as usize) % junk.len()],
                    1 => {
                        d.remove(at);
                    }
                    _ => d.insert(at, junk[(next() as usize) % junk.len()]),
                }
            }
            check_located(&d);
            // Whatever was read can be answered without panicking either.
            let (summary, issues) = read_envelopes(&d);
            for s in &summary {
                let _ = generate_999(
                    s,
                    &issues,
                    &EnvelopeSettings::default(),
                    &MemoryControlNumbers::new(),
                    stamp(),
                );
                let _ = generate_ta1(
                    &s.header,
                    &issues,
                    &EnvelopeSettings::default(),
                    &MemoryControlNumbers::new(),
                    stamp(),
                );
            }
        }
    }
}

fn check_located(data: &[u8]) {
    let (_, issues) = parse_acks(data);
    for i in issues.iter().filter(|i| i.code.starts_with("ack_")) {
        assert!(
            i.location.segment_index.is_some() && i.location.segment_id.is_some(),
            "unlocated {i} in {}",
            String::from_utf8_lossy(data)
        );
    }
}
