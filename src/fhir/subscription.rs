//! R4 Subscriptions Backport (1.1.0) as PAS uses it: a rest-hook Subscription on the
//! PASSubscriptionTopic with payload content `full-resource` and a filter on the submitting
//! organization (`org-identifier=`, also spelled `orgIdentifier=`); the handshake and the
//! event-notification history Bundles. Pure functions: no I/O, the time is passed in.

use serde_json::{Value, json};

use super::outcome::FhirIssue;

/// The topic of PAS notifications.
pub const TOPIC: &str = "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic";
pub const FILTER_EXT: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria";
pub const CONTENT_EXT: &str =
    "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content";
pub const PROFILE: &str =
    "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-subscription";

/// What we keep of a Subscription a client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRequest {
    pub endpoint: String,
    /// The organization identifier value the filter names.
    pub org: String,
}

/// Reads and checks a Subscription: resourceType, criteria (the PAS topic), channel type
/// rest-hook with an http(s) endpoint, payload `application/fhir+json` with content
/// `full-resource`, and one filter `org-identifier=` / `orgIdentifier=` with a value.
pub fn read_subscription(v: &Value) -> (Option<SubscriptionRequest>, Vec<FhirIssue>) {
    let mut issues = vec![];
    if v.get("resourceType").and_then(Value::as_str) != Some("Subscription") {
        issues.push(FhirIssue::error(
            "structure",
            "Subscription",
            "a Subscription resource is expected (resourceType Subscription)",
        ));
        return (None, issues);
    }
    match v.get("criteria").and_then(Value::as_str) {
        Some(TOPIC) => {}
        Some(other) => issues.push(FhirIssue::error(
            "not-supported",
            "Subscription.criteria",
            format!("only the PAS topic {TOPIC} is supported, not {other:?}"),
        )),
        None => issues.push(FhirIssue::error(
            "required",
            "Subscription.criteria",
            format!("criteria is required: the topic canonical {TOPIC}"),
        )),
    }
    let filters: Vec<&str> = v
        .pointer("/_criteria/extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.get("url").and_then(Value::as_str) == Some(FILTER_EXT))
        .filter_map(|e| e.get("valueString").and_then(Value::as_str))
        .collect();
    let mut org = None;
    for (i, f) in filters.iter().enumerate() {
        let at = format!("Subscription.criteria.extension[{i}].valueString");
        let value = f
            .strip_prefix("org-identifier=")
            .or_else(|| f.strip_prefix("orgIdentifier="))
            .or_else(|| {
                // A search-style filter: `Claim?org-identifier=123`.
                f.split_once('?').and_then(|(_, q)| {
                    q.strip_prefix("org-identifier=")
                        .or_else(|| q.strip_prefix("orgIdentifier="))
                })
            });
        match value.map(str::trim) {
            Some(v) if !v.is_empty() => {
                // A token may carry a system: `system|value`; we match on the value.
                org = Some(v.rsplit('|').next().unwrap_or(v).to_owned());
            }
            Some(_) => issues.push(FhirIssue::error(
                "value",
                at,
                "the org-identifier filter has no value",
            )),
            None => issues.push(FhirIssue::error(
                "not-supported",
                at,
                format!("unsupported filter {f:?}: only org-identifier=<id> (or orgIdentifier=)"),
            )),
        }
    }
    if filters.is_empty() {
        issues.push(FhirIssue::error(
            "required",
            "Subscription.criteria.extension",
            "a backport-filter-criteria extension org-identifier=<organization identifier> is required",
        ));
    }
    let channel = v.get("channel");
    match channel.and_then(|c| c.get("type")).and_then(Value::as_str) {
        Some("rest-hook") => {}
        Some(t) => issues.push(FhirIssue::error(
            "not-supported",
            "Subscription.channel.type",
            format!("only rest-hook channels are supported, not {t:?}"),
        )),
        None => issues.push(FhirIssue::error(
            "required",
            "Subscription.channel.type",
            "channel.type is required (rest-hook)",
        )),
    }
    let endpoint = channel
        .and_then(|c| c.get("endpoint"))
        .and_then(Value::as_str);
    match endpoint {
        Some(e) if (e.starts_with("http://") || e.starts_with("https://")) && !e.contains(' ') => {}
        Some(_) => issues.push(FhirIssue::error(
            "value",
            "Subscription.channel.endpoint",
            "the endpoint must be an absolute http(s) URL",
        )),
        None => issues.push(FhirIssue::error(
            "required",
            "Subscription.channel.endpoint",
            "a rest-hook channel needs an endpoint",
        )),
    }
    match channel
        .and_then(|c| c.get("payload"))
        .and_then(Value::as_str)
    {
        Some("application/fhir+json") | Some("application/json") | None => {}
        Some(p) => issues.push(FhirIssue::error(
            "not-supported",
            "Subscription.channel.payload",
            format!("only application/fhir+json payloads are sent, not {p:?}"),
        )),
    }
    let content = channel
        .and_then(|c| c.pointer("/_payload/extension"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| e.get("url").and_then(Value::as_str) == Some(CONTENT_EXT))
        .and_then(|e| e.get("valueCode").and_then(Value::as_str));
    match content {
        Some("full-resource") | None => {}
        Some(c) => issues.push(FhirIssue::error(
            "not-supported",
            "Subscription.channel.payload.extension",
            format!(
                "PAS notifications carry the full resource: payload content {c:?} is not supported"
            ),
        )),
    }
    if issues.iter().any(FhirIssue::is_error) {
        return (None, issues);
    }
    match (endpoint, org) {
        (Some(e), Some(o)) => (
            Some(SubscriptionRequest {
                endpoint: e.to_owned(),
                org: o,
            }),
            issues,
        ),
        _ => (None, issues),
    }
}

/// The Subscription as we answer it: the client's resource with our id, status and error.
pub fn subscription_resource(stored: &str, id: &str, status: &str, error: Option<&str>) -> Value {
    let mut v: Value = serde_json::from_str(stored).unwrap_or_else(|_| json!({}));
    if !v.is_object() {
        v = json!({});
    }
    v["resourceType"] = json!("Subscription");
    v["id"] = json!(id);
    v["status"] = json!(status);
    if v.get("meta").is_none() {
        v["meta"] = json!({"profile": [PROFILE]});
    }
    match error {
        Some(e) => v["error"] = json!(e),
        None => {
            if let Some(o) = v.as_object_mut() {
                o.remove("error");
            }
        }
    }
    v
}

/// The SubscriptionStatus Parameters of a notification.
fn status_parameters(
    subscription_id: &str,
    status: &str,
    kind: &str,
    events_since_start: i64,
    event: Option<(i64, &str, &str)>,
) -> Value {
    let mut params = vec![
        json!({"name": "subscription", "valueReference": {"reference": format!("Subscription/{subscription_id}")}}),
        json!({"name": "topic", "valueCanonical": TOPIC}),
        json!({"name": "status", "valueCode": status}),
        json!({"name": "type", "valueCode": kind}),
        json!({"name": "events-since-subscription-start", "valueString": events_since_start.to_string()}),
    ];
    if let Some((number, timestamp, focus)) = event {
        params.push(json!({"name": "notification-event", "part": [
            {"name": "event-number", "valueString": number.to_string()},
            {"name": "timestamp", "valueInstant": timestamp},
            {"name": "focus", "valueReference": {"reference": focus}},
        ]}));
    }
    json!({"resourceType": "Parameters", "parameter": params})
}

/// The handshake notification: a history Bundle holding only the SubscriptionStatus.
pub fn handshake_bundle(base: &str, subscription_id: &str, timestamp: &str) -> Value {
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "history",
        "timestamp": timestamp,
        "entry": [{
            "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            "resource": status_parameters(subscription_id, "requested", "handshake", 0, None),
            "request": {"method": "GET", "url": format!("{base}/Subscription/{subscription_id}/$status")},
            "response": {"status": "200"},
        }],
    })
}

/// An event notification carrying the full PAS Response Bundle (`focus`).
pub fn event_bundle(
    base: &str,
    subscription_id: &str,
    event_number: i64,
    timestamp: &str,
    focus_url: &str,
    focus: Value,
) -> Value {
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "history",
        "timestamp": timestamp,
        "entry": [
            {
                "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                "resource": status_parameters(
                    subscription_id, "active", "event-notification", event_number,
                    Some((event_number, timestamp, focus_url)),
                ),
                "request": {"method": "GET", "url": format!("{base}/Subscription/{subscription_id}/$status")},
                "response": {"status": "200"},
            },
            {
                "fullUrl": focus_url,
                "resource": focus,
                "request": {"method": "GET", "url": focus_url},
                "response": {"status": "200"},
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(filter: &str) -> Value {
        json!({"resourceType": "Subscription", "status": "requested", "criteria": TOPIC,
            "_criteria": {"extension": [{"url": FILTER_EXT, "valueString": filter}]},
            "channel": {"type": "rest-hook", "endpoint": "http://127.0.0.1:9/hook",
                "payload": "application/fhir+json",
                "_payload": {"extension": [{"url": CONTENT_EXT, "valueCode": "full-resource"}]}}})
    }

    #[test]
    fn both_filter_spellings() {
        for f in ["org-identifier=1234567893", "orgIdentifier=1234567893"] {
            let (s, issues) = read_subscription(&sub(f));
            assert!(issues.is_empty(), "{issues:?}");
            assert_eq!(s.unwrap().org, "1234567893");
        }
    }

    #[test]
    fn refuses_what_we_cannot_do() {
        let mut v = sub("status=active");
        v["channel"]["type"] = json!("websocket");
        let (s, issues) = read_subscription(&v);
        assert!(s.is_none());
        let at: Vec<_> = issues.iter().map(|i| i.expression.as_str()).collect();
        assert!(at.contains(&"Subscription.channel.type"), "{at:?}");
        assert!(
            at.contains(&"Subscription.criteria.extension[0].valueString"),
            "{at:?}"
        );
        let mut v = sub("org-identifier=1");
        v["_criteria"] = json!(null);
        v["channel"]["_payload"]["extension"][0]["valueCode"] = json!("id-only");
        let (_, issues) = read_subscription(&v);
        assert_eq!(issues.len(), 2, "{issues:?}");
    }

    #[test]
    fn notification_shape() {
        let b = event_bundle(
            "http://x/fhir",
            "s1",
            3,
            "2026-01-01T00:00:00Z",
            "urn:uuid:0",
            json!({"resourceType": "Bundle"}),
        );
        assert_eq!(b["type"], "history");
        let p = &b["entry"][0]["resource"]["parameter"];
        assert_eq!(p[3]["valueCode"], "event-notification");
        assert_eq!(p[5]["part"][0]["valueString"], "3");
        assert_eq!(b["entry"][1]["resource"]["resourceType"], "Bundle");
        let h = handshake_bundle("http://x/fhir", "s1", "2026-01-01T00:00:00Z");
        assert_eq!(
            h["entry"][0]["resource"]["parameter"][3]["valueCode"],
            "handshake"
        );
    }
}
