//! The committed JSON Schemas are the ones the code generates, and our sample requests
//! conform to them (checked by an independent JSON Schema validator).

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check_current(file: &str, generated: serde_json::Value) {
    let path = root().join("schemas").join(file);
    let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    if std::env::var("UPDATE_SCHEMAS").as_deref() == Ok("1") {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} is out of date with the code: run `UPDATE_SCHEMAS=1 cargo test --test schema` and commit it",
        path.display()
    );
}

#[test]
fn request_schema_is_current() {
    check_current(
        "authorization-request.schema.json",
        priorauth::domain::request_schema(),
    );
}

#[test]
fn response_schema_is_current() {
    check_current(
        "authorization-response.schema.json",
        priorauth::domain::response_schema(),
    );
}

#[test]
fn sample_requests_conform_to_the_schema_and_the_model() {
    let schema = priorauth::domain::request_schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let dir = root().join("fixtures/requests");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        let parsed: Result<priorauth::domain::AuthorizationRequest, _> =
            serde_json::from_str(&text);
        assert!(parsed.is_ok(), "{}: {:?}", path.display(), parsed.err());
        n += 1;
    }
    assert!(n >= 2, "expected sample requests in {}", dir.display());
}

#[test]
fn the_schema_rejects_what_the_model_rejects() {
    let schema = priorauth::domain::request_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let text = std::fs::read_to_string(root().join("fixtures/requests/mri-lumbar-outpatient.json"))
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["event"]["review"]["category"] = "not_a_category".into();
    assert!(!validator.is_valid(&v));
    assert!(serde_json::from_value::<priorauth::domain::AuthorizationRequest>(v).is_err());
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["unexpected"] = 1.into();
    assert!(!validator.is_valid(&v));
    assert!(serde_json::from_value::<priorauth::domain::AuthorizationRequest>(v).is_err());
}
