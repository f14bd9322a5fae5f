//! The vocabulary of the gateway: the authorization request and the decision it gets back,
//! with values that parse once. No I/O, no wire format (X12 and FHIR live in their codecs;
//! the serde derives here are the internal JSON model, whose schema is `schemas/`).

pub mod codes;
pub mod decision;
pub mod request;
pub mod values;

pub use codes::*;
pub use decision::*;
pub use request::*;
pub use values::*;

/// The JSON Schema of the internal authorization request, as committed in
/// `schemas/authorization-request.schema.json`.
pub fn request_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(AuthorizationRequest)).expect("schema is JSON")
}

/// The JSON Schema of a parsed response (echoed request + decision), as committed in
/// `schemas/authorization-response.schema.json`.
pub fn response_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(AuthorizationResponse)).expect("schema is JSON")
}
