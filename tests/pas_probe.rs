mod common;
use priorauth::fhir::*;
#[test]
fn probe() {
    let dir = common::shared_dir().unwrap().join("fixtures/pas");
    for v in ["v2.2.1", "v2.0.1"] {
        for f in std::fs::read_dir(dir.join(v)).unwrap() {
            let p = f.unwrap().path();
            let data = std::fs::read(&p).unwrap();
            let val = validate::parse_json(&data).unwrap();
            let kind = validate::kind_of(&val);
            let issues = validate::validate_bundle(&val);
            println!("=== {} {:?}", p.display(), kind);
            for i in &issues {
                println!("  V {i}");
            }
            if kind == validate::PasKind::RequestBundle {
                let b: Bundle = serde_json::from_value(val.clone()).unwrap();
                let back = serde_json::to_value(&b).unwrap();
                assert_eq!(back, val, "lossless serde");
                let (r, iss) = request_from_bundle(&b);
                for i in &iss {
                    println!("  R {i}");
                }
                let r = r.unwrap();
                println!("{}", serde_json::to_string(&r).unwrap());
                let out = bundle_from_request(&r);
                let ov = serde_json::to_value(&out).unwrap();
                let oi = validate::validate_bundle(&ov);
                for i in &oi {
                    println!("  OUT {i}");
                }
            }
            if matches!(
                kind,
                validate::PasKind::ResponseBundle | validate::PasKind::ClaimResponse
            ) {
                let (r, iss) = response::decision_from_json(&val);
                for i in &iss {
                    println!("  D {i}");
                }
                if let Some(r) = r {
                    println!("{}", priorauth::report::decision_view(&r));
                }
            }
        }
    }
}
