//! The OpenAPI 3.1 document, generated from the route table below and from the domain types'
//! JSON Schemas (schemars), committed as `schemas/openapi.json` (a test fails when it is stale)
//! and served at `/openapi.json`. A test also sends a request to every route listed here, so the
//! document cannot name an endpoint the router does not have.

use serde_json::{Map, Value, json};

/// One documented operation.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// A component schema name for the JSON body, if any.
    pub body: Option<&'static str>,
    /// Status codes with their meaning, and an optional response component schema.
    pub responses: &'static [(u16, &'static str, Option<&'static str>)],
}

const ERR: Option<&str> = Some("Error");

pub const ROUTES: &[Route] = &[
    Route {
        method: "post",
        path: "/v1/authorizations",
        summary: "Create an authorization record (draft) from the internal request JSON. Send an Idempotency-Key header to make retries safe.",
        body: Some("AuthorizationRequest"),
        responses: &[
            (201, "Created: id and status", Some("Created")),
            (
                200,
                "An earlier call with the same Idempotency-Key created it",
                Some("Created"),
            ),
            (400, "The body is not JSON", ERR),
            (
                422,
                "The request is not valid (field names where), or no payer route",
                ERR,
            ),
        ],
    },
    Route {
        method: "get",
        path: "/v1/authorizations",
        summary: "List records, optionally by ?status=",
        body: None,
        responses: &[(200, "Records", None), (400, "Unknown status", ERR)],
    },
    Route {
        method: "get",
        path: "/v1/authorizations/{id}",
        summary: "A record with its status, versions, decisions, remaining units per line, services, alerts and history",
        body: None,
        responses: &[
            (200, "The record", Some("Record")),
            (404, "No such record", ERR),
        ],
    },
    Route {
        method: "put",
        path: "/v1/authorizations/{id}",
        summary: "Modify a draft or denied/rejected request: the body becomes its next version",
        body: Some("AuthorizationRequest"),
        responses: &[
            (200, "New version", Some("Moved")),
            (409, "Not modifiable in its status", ERR),
            (422, "Invalid request", ERR),
        ],
    },
    Route {
        method: "get",
        path: "/v1/authorizations/{id}/request",
        summary: "The current version of the request",
        body: None,
        responses: &[
            (200, "The request", Some("AuthorizationRequest")),
            (404, "No such record", ERR),
        ],
    },
    Route {
        method: "post",
        path: "/v1/authorizations/{id}/review",
        summary: "Send a draft into the internal approval chain (or to ready when no step applies)",
        body: None,
        responses: &[
            (200, "Moved", Some("Moved")),
            (403, "The actor's role may not", ERR),
            (409, "Illegal in its status", ERR),
        ],
    },
    Route {
        method: "post",
        path: "/v1/authorizations/{id}/approve",
        summary: "The reviewer of the current step approves (optional reason)",
        body: Some("Reason"),
        responses: &[
            (200, "Moved", Some("Moved")),
            (403, "Not this step's role", ERR),
            (409, "Illegal in its status", ERR),
        ],
    },
    Route {
        method: "post",
        path: "/v1/authorizations/{id}/deny",
        summary: "The reviewer sends the request back to the clinician (reason required)",
        body: Some("Reason"),
        responses: &[
            (200, "Moved", Some("Moved")),
            (400, "No reason", ERR),
            (409, "Illegal in its status", ERR),
        ],
    },
    Route {
        method: "post",
        path: "/v1/authorizations/{id}/cancel",
        summary: "Cancel a record that is not closed (reason required)",
        body: Some("Reason"),
        responses: &[
            (200, "Cancelled", Some("Moved")),
            (409, "Illegal in its status", ERR),
        ],
    },
    Route {
        method: "post",
        path: "/v1/authorizations/{id}/submit",
        summary: "Queue the request for its payer; the outbox sends it (with the approval chain off, a draft goes straight through)",
        body: None,
        responses: &[
            (202, "Queued: committed before the first byte is sent", None),
            (
                200,
                "Already with the payer or decided: nothing sent again",
                None,
            ),
            (409, "Not ready (the approval chain is on)", ERR),
            (422, "No route to its payer", ERR),
        ],
    },
    Route {
        method: "post",
        path: "/v1/authorizations/{id}/services",
        summary: "Record a delivered service against the authorization (counts units down)",
        body: Some("Service"),
        responses: &[
            (201, "Recorded (or flagged, under the flag policy)", None),
            (
                409,
                "Refused: outside the authorization, with the reason",
                ERR,
            ),
        ],
    },
    Route {
        method: "get",
        path: "/v1/alerts",
        summary: "Evaluate the alert rules now (renewals, late payers, expiries) and list open alerts",
        body: None,
        responses: &[(200, "Open alerts", None)],
    },
    Route {
        method: "post",
        path: "/v1/inbound",
        summary: "Answers pushed by a payer or clearinghouse: X12 278/999/TA1 or PAS JSON; stored before read, applied to the records",
        body: None,
        responses: &[
            (200, "What became of each item", None),
            (400, "Empty body", ERR),
        ],
    },
    Route {
        method: "get",
        path: "/v1/outbox",
        summary: "Messages to payers (?state=queued|sending|delivered|answered|refused|dead) with attempts and the last error",
        body: None,
        responses: &[(200, "Messages", None), (400, "Unknown state", ERR)],
    },
    Route {
        method: "post",
        path: "/v1/outbox/{id}/retry",
        summary: "Send a dead-lettered message again (a person fixed the cause)",
        body: None,
        responses: &[
            (200, "Queued again", None),
            (404, "No such message", ERR),
            (409, "Not dead", ERR),
        ],
    },
    Route {
        method: "post",
        path: "/v1/webhooks",
        summary: "Create a webhook of the caller's tenant: signed POSTs (X-Priorauth-Signature: t=<unix s>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">) on the status changes listed in events (or \"*\"); retried with backoff. The secret is in this answer only",
        body: Some("NewWebhook"),
        responses: &[
            (
                201,
                "Created, with the secret (shown once)",
                Some("WebhookCreated"),
            ),
            (400, "The body is not JSON", ERR),
            (422, "Bad URL or unknown status (field names which)", ERR),
        ],
    },
    Route {
        method: "get",
        path: "/v1/webhooks",
        summary: "The caller's tenant's active webhooks with their consecutive failures (no secrets)",
        body: None,
        responses: &[(200, "Webhooks", None)],
    },
    Route {
        method: "delete",
        path: "/v1/webhooks/{id}",
        summary: "Deactivate a webhook; its queued deliveries end dead",
        body: None,
        responses: &[(204, "Deleted", None), (404, "No such webhook", ERR)],
    },
    Route {
        method: "get",
        path: "/v1/webhooks/{id}/deliveries",
        summary: "A webhook's deliveries: event, state (queued|sending|delivered|dead), attempts, next attempt, last HTTP status and error",
        body: None,
        responses: &[(200, "Deliveries", None), (404, "No such webhook", ERR)],
    },
    Route {
        method: "post",
        path: "/v1/webhooks/{id}/deliveries/{delivery}/retry",
        summary: "Queue a dead delivery again with a fresh attempt budget (a person fixed the receiver)",
        body: None,
        responses: &[
            (200, "Queued again", None),
            (404, "No such webhook or delivery", ERR),
            (409, "Not dead, or the webhook is deleted", ERR),
        ],
    },
    Route {
        method: "get",
        path: "/healthz",
        summary: "The process is up",
        body: None,
        responses: &[(200, "ok", None)],
    },
    Route {
        method: "get",
        path: "/readyz",
        summary: "The store answers",
        body: None,
        responses: &[(200, "ready", None), (503, "not ready", ERR)],
    },
    Route {
        method: "get",
        path: "/metrics",
        summary: "Prometheus text metrics",
        body: None,
        responses: &[(200, "text/plain; version=0.0.4", None)],
    },
    Route {
        method: "get",
        path: "/openapi.json",
        summary: "This document",
        body: None,
        responses: &[(200, "OpenAPI 3.1", None)],
    },
    Route {
        method: "get",
        path: "/fhir/metadata",
        summary: "FHIR R4 CapabilityStatement: Claim $submit / $inquire (Da Vinci PAS), ClaimResponse read and search, backport Subscriptions, security",
        body: None,
        responses: &[(200, "The CapabilityStatement", Some("FhirResource"))],
    },
    Route {
        method: "post",
        path: "/fhir/Claim/$submit",
        summary: "PAS $submit: a PAS request Bundle (or Parameters holding one); a Claim Update (related prior Claim) or a cancel (certificationType 3) maps to the prior record. Answers the PAS Response Bundle with the payer's decision, or A4 pended with the record id as the tracking number when the payer pends or takes longer than the wait limit (15 s by default)",
        body: Some("FhirResource"),
        responses: &[
            (200, "The PAS Response Bundle", Some("FhirResource")),
            (
                400,
                "Not a readable PAS request Bundle",
                Some("OperationOutcome"),
            ),
            (
                422,
                "A PAS rule is broken (FHIRPath expression per issue), no payer route, or an unknown prior Claim",
                Some("OperationOutcome"),
            ),
            (
                409,
                "The prior request cannot be cancelled in its state",
                Some("OperationOutcome"),
            ),
        ],
    },
    Route {
        method: "post",
        path: "/fhir/Claim/$inquire",
        summary: "PAS $inquire: Parameters with one inquiry response Bundle per matching record of the caller's tenant (what is known now; records not final are also asked about at their payer)",
        body: Some("FhirResource"),
        responses: &[
            (
                200,
                "Parameters of inquiry response Bundles",
                Some("FhirResource"),
            ),
            (
                400,
                "Not a readable inquiry Bundle",
                Some("OperationOutcome"),
            ),
            (422, "An inquiry rule is broken", Some("OperationOutcome")),
        ],
    },
    Route {
        method: "get",
        path: "/fhir/ClaimResponse",
        summary: "Search ClaimResponses of the caller's tenant by ?identifier= (Claim or Bundle identifier, preAuthRef, tracking number) and/or ?patient= (reference or member id)",
        body: None,
        responses: &[
            (200, "A searchset Bundle", Some("FhirResource")),
            (400, "No search parameter", Some("OperationOutcome")),
        ],
    },
    Route {
        method: "get",
        path: "/fhir/ClaimResponse/{id}",
        summary: "The current ClaimResponse of a record (id = the tracking number)",
        body: None,
        responses: &[
            (200, "The ClaimResponse", Some("FhirResource")),
            (
                404,
                "No such record in the caller's tenant",
                Some("OperationOutcome"),
            ),
        ],
    },
    Route {
        method: "post",
        path: "/fhir/Subscription",
        summary: "Create a backport Subscription (rest-hook, full-resource, filter org-identifier= or orgIdentifier=); the handshake is sent at once: active on a 2xx answer, else error",
        body: Some("FhirResource"),
        responses: &[
            (
                201,
                "The Subscription with its id and status",
                Some("FhirResource"),
            ),
            (400, "Not JSON", Some("OperationOutcome")),
            (
                422,
                "Unsupported channel, payload, topic or filter",
                Some("OperationOutcome"),
            ),
        ],
    },
    Route {
        method: "get",
        path: "/fhir/Subscription",
        summary: "The caller's tenant's Subscriptions (searchset)",
        body: None,
        responses: &[(200, "A searchset Bundle", Some("FhirResource"))],
    },
    Route {
        method: "get",
        path: "/fhir/Subscription/{id}",
        summary: "A Subscription with its status",
        body: None,
        responses: &[
            (200, "The Subscription", Some("FhirResource")),
            (
                404,
                "No such Subscription in the caller's tenant",
                Some("OperationOutcome"),
            ),
        ],
    },
    Route {
        method: "put",
        path: "/fhir/Subscription/{id}",
        summary: "Update a Subscription (new endpoint or filter: handshake again; status off stops it)",
        body: Some("FhirResource"),
        responses: &[
            (200, "The Subscription", Some("FhirResource")),
            (404, "No such Subscription", Some("OperationOutcome")),
            (
                422,
                "Unsupported channel, payload, topic or filter",
                Some("OperationOutcome"),
            ),
        ],
    },
    Route {
        method: "delete",
        path: "/fhir/Subscription/{id}",
        summary: "Delete a Subscription (notifications still queued for it are not sent)",
        body: None,
        responses: &[
            (204, "Deleted", None),
            (404, "No such Subscription", Some("OperationOutcome")),
        ],
    },
    Route {
        method: "get",
        path: "/fhir/Subscription/{id}/$status",
        summary: "The SubscriptionStatus (status, events since start)",
        body: None,
        responses: &[
            (
                200,
                "A Bundle with the SubscriptionStatus Parameters",
                Some("FhirResource"),
            ),
            (404, "No such Subscription", Some("OperationOutcome")),
        ],
    },
    Route {
        method: "get",
        path: "/v1/audit",
        summary: "Admin: the audit log (who, tenant, action, record, outcome, status, peer address, request id), of one record with ?record=ID. About another tenant's record only the caller's tenant's own attempts are shown.",
        body: None,
        responses: &[
            (200, "Audit lines, oldest first", None),
            (403, "Not an admin", ERR),
        ],
    },
    Route {
        method: "post",
        path: "/v1/keys",
        summary: "Admin: a new API key in the caller's tenant, {\"role\": clinician|supervisor|finance|billing|admin, \"name\": LABEL}; the key is in this answer only (stored hashed)",
        body: Some("NewKey"),
        responses: &[
            (
                201,
                "The key (shown once), its prefix (the OAuth2 client id), tenant, role, name",
                None,
            ),
            (400, "The body is not {\"role\", \"name\"}", ERR),
            (403, "Not an admin", ERR),
            (422, "Unknown role or bad name", ERR),
        ],
    },
    Route {
        method: "get",
        path: "/v1/keys",
        summary: "Admin: the tenant's keys (prefix, role, name, created, revoked; never a key)",
        body: None,
        responses: &[(200, "Keys", None), (403, "Not an admin", ERR)],
    },
    Route {
        method: "post",
        path: "/v1/keys/{prefix}/revoke",
        summary: "Admin: revoke one of the tenant's keys (and the access tokens issued to it)",
        body: None,
        responses: &[
            (200, "Revoked", None),
            (403, "Not an admin", ERR),
            (404, "No such key in this tenant", ERR),
        ],
    },
    Route {
        method: "post",
        path: "/oauth/token",
        summary: "OAuth2 token endpoint (application/x-www-form-urlencoded, grant_type=client_credentials): client_id = key prefix and client_secret = the API key (form or HTTP Basic), or a SMART Backend Services client_assertion (RS384/ES384 JWT, iss = sub = client id, aud = this URL, exp within 5 minutes, jti once). Answers an opaque bearer access token, expires_in 300.",
        body: None,
        responses: &[
            (200, "access_token, token_type bearer, expires_in", None),
            (400, "Not a client_credentials form", None),
            (
                401,
                "invalid_client: unknown client, wrong secret or refused assertion",
                None,
            ),
        ],
    },
];

/// Moves a schemars root schema's `$defs` into `defs` and points its references there.
fn lift(mut schema: Value, defs: &mut Map<String, Value>) -> Value {
    if let Some(Value::Object(d)) = schema.as_object_mut().and_then(|o| o.remove("$defs")) {
        for (k, v) in d {
            defs.insert(k, v);
        }
    }
    if let Some(o) = schema.as_object_mut() {
        o.remove("$schema");
    }
    schema
}

fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get_mut("$ref")
                && let Some(rest) = r.strip_prefix("#/$defs/")
            {
                *r = format!("#/components/schemas/{rest}");
            }
            o.values_mut().for_each(rewrite_refs);
        }
        Value::Array(a) => a.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

/// The whole document.
pub fn document() -> Value {
    let mut schemas = Map::new();
    let request = lift(crate::domain::request_schema(), &mut schemas);
    schemas.insert("AuthorizationRequest".into(), request);
    schemas.insert(
        "Error".into(),
        json!({
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "Stable machine-readable code"},
                    "message": {"type": "string"},
                    "field": {"type": "string", "description": "The JSON path or header at fault"}}}}
        }),
    );
    schemas.insert(
        "Created".into(),
        json!({"type": "object", "required": ["id", "status", "created"],
            "properties": {"id": {"type": "string"}, "status": {"type": "string"},
                "created": {"type": "boolean"}}}),
    );
    schemas.insert(
        "Moved".into(),
        json!({"type": "object", "required": ["id", "status"],
            "properties": {"id": {"type": "string"}, "status": {"type": "string"},
                "version": {"type": "integer"}}}),
    );
    schemas.insert(
        "Reason".into(),
        json!({"type": "object", "additionalProperties": false,
            "properties": {"reason": {"type": "string"}}}),
    );
    schemas.insert(
        "Service".into(),
        json!({"type": "object", "additionalProperties": false, "required": ["code", "units", "date"],
            "properties": {"code": {"type": "string"}, "units": {"type": ["number", "string"]},
                "date": {"type": "string", "format": "date"}, "provider": {"type": "string"},
                "corrects": {"type": "integer", "description": "Service id this one replaces"}}}),
    );
    schemas.insert(
        "NewWebhook".into(),
        json!({"type": "object", "additionalProperties": false, "required": ["url"],
            "properties": {"url": {"type": "string", "format": "uri", "description": "http(s), no credentials"},
                "events": {"type": "array", "items": {"type": "string"},
                    "description": "Record statuses (draft, submitted, pended, approved, ...) or [\"*\"] (the default)"}}}),
    );
    schemas.insert(
        "WebhookCreated".into(),
        json!({"type": "object", "required": ["id", "url", "events", "secret"],
            "properties": {"id": {"type": "string"}, "url": {"type": "string"},
                "events": {"type": "array", "items": {"type": "string"}},
                "active": {"type": "boolean"}, "created_at": {"type": "integer"},
                "secret": {"type": "string", "description": "The HMAC key; shown once"},
                "signature": {"type": "string"}}}),
    );
    schemas.insert(
        "Record".into(),
        json!({"type": "object", "required": ["id", "status"],
            "properties": {"id": {"type": "string"}, "status": {"type": "string"},
                "decisions": {"type": "array"}, "lines": {"type": "array"},
                "services": {"type": "array"}, "history": {"type": "array"},
                "alerts": {"type": "array"}}}),
    );
    schemas.insert(
        "FhirResource".into(),
        json!({"type": "object", "required": ["resourceType"],
            "description": "A FHIR R4 resource (application/fhir+json); PAS profiles per Da Vinci PAS 2.2.1",
            "properties": {"resourceType": {"type": "string"}}}),
    );
    schemas.insert(
        "OperationOutcome".into(),
        json!({"type": "object", "required": ["resourceType", "issue"],
            "properties": {"resourceType": {"const": "OperationOutcome"},
                "issue": {"type": "array", "items": {"type": "object", "required": ["severity", "code"],
                    "properties": {"severity": {"type": "string"}, "code": {"type": "string"},
                        "details": {"type": "object"},
                        "expression": {"type": "array", "items": {"type": "string"},
                            "description": "FHIRPath of the element at fault"}}}}}}),
    );
    schemas.insert(
        "NewKey".into(),
        json!({"type": "object", "additionalProperties": false, "required": ["role"],
            "properties": {"role": {"type": "string", "enum": ["clinician", "supervisor", "finance", "billing", "admin"]},
                "name": {"type": "string", "maxLength": 64}}}),
    );
    let mut paths = Map::new();
    for r in ROUTES {
        let mut op = Map::new();
        op.insert("summary".into(), json!(r.summary));
        let mut params = vec![];
        for name in ["id", "delivery", "prefix"] {
            if r.path.contains(&format!("{{{name}}}")) {
                params.push(json!({"name": name, "in": "path", "required": true,
                    "schema": {"type": "string"}}));
            }
        }
        if r.method == "post" && r.path == "/v1/authorizations" {
            params.push(
                json!({"name": "Idempotency-Key", "in": "header", "required": false,
                "schema": {"type": "string", "maxLength": 255}}),
            );
        }
        let guarded = r.path.starts_with("/v1/") || r.path.starts_with("/fhir/");
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        let media = if r.path.starts_with("/fhir/") {
            "application/fhir+json"
        } else {
            "application/json"
        };
        if let Some(b) = r.body {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {media: {"schema": {"$ref": format!("#/components/schemas/{b}")}}}}),
            );
        }
        let mut responses = Map::new();
        for (code, desc, schema) in r.responses {
            let mut resp = json!({ "description": desc });
            if let Some(s) = schema {
                resp["content"] =
                    json!({media: {"schema": {"$ref": format!("#/components/schemas/{s}")}}});
            }
            responses.insert(code.to_string(), resp);
        }
        if guarded {
            responses
                .entry("401")
                .or_insert_with(|| json!({"description": "Missing, invalid, revoked or expired credential (WWW-Authenticate: Bearer)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}));
            responses
                .entry("403")
                .or_insert_with(|| json!({"description": "The caller's role may not do this",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}));
            op.insert("security".into(), json!([{"bearer": []}, {"oauth2": []}]));
        }
        op.insert("responses".into(), Value::Object(responses));
        let entry = paths
            .entry(r.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(o) = entry.as_object_mut() {
            o.insert(r.method.to_owned(), Value::Object(op));
        }
    }
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "priorauth-gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Electronic prior authorization: records, the approval chain, submission to payers (X12 278 over CAQH CORE, batch, Da Vinci PAS), decisions, delivered services and alerts."
        },
        "paths": Value::Object(paths),
        "components": {
            "schemas": Value::Object(schemas),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                    "description": "An API key (`priorauth keys create --tenant T --role R`, or POST /v1/keys) or an access token from /oauth/token. A caller sees only its tenant's records; another tenant's record answers 404 like a missing one."},
                "oauth2": {"type": "oauth2", "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {}}}}
            }
        },
    });
    rewrite_refs(&mut doc);
    doc
}
