//! The decision JSON that `priorauth parse` prints (and the server returns): the domain
//! decision with the X12 codes beside the words, one object per response.

use serde_json::{Map, Value, json};

use crate::domain::*;

fn action(m: &mut Map<String, Value>, a: Option<ActionCode>) {
    if let Some(a) = a {
        m.insert("action_code".into(), a.code().into());
        m.insert("action".into(), a.description().into());
    }
}

fn put<T: serde::Serialize>(m: &mut Map<String, Value>, k: &str, v: &T) {
    let v = serde_json::to_value(v).unwrap_or(Value::Null);
    let empty = match &v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if !empty {
        m.insert(k.into(), v);
    }
}

fn rejects(rs: &[Reject]) -> Value {
    rs.iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("level".into(), r.level.word().into());
            m.insert("loop".into(), r.level.code().into());
            if let Some(l) = r.line {
                m.insert("line".into(), l.into());
            }
            m.insert("valid".into(), (r.validity == Validity::Valid).into());
            if let Some(c) = &r.reason {
                m.insert("reason_code".into(), c.as_str().into());
            }
            if let Some(f) = r.follow_up {
                m.insert("follow_up_code".into(), f.code().into());
                m.insert("follow_up".into(), f.word().into());
                m.insert("follow_up_description".into(), f.description().into());
            }
            Value::Object(m)
        })
        .collect()
}

/// The decision of one response as printed by `priorauth parse`.
pub fn decision_view(r: &AuthorizationResponse) -> Value {
    let d = &r.decision;
    let mut m = Map::new();
    m.insert(
        "submitter_reference".into(),
        r.submitter_reference.as_str().into(),
    );
    put(&mut m, "trace_numbers", &d.trace_numbers);
    m.insert("status".into(), d.status.word().into());
    action(&mut m, d.action);
    put(&mut m, "certification_number", &d.certification_number);
    if let Some(c) = &d.reason {
        m.insert("reason_code".into(), c.as_str().into());
    }
    put(
        &mut m,
        "second_surgical_opinion",
        &d.second_surgical_opinion,
    );
    put(&mut m, "certification", &d.certification);
    put(&mut m, "approved_quantity", &d.approved_quantity);
    put(
        &mut m,
        "administrative_reference",
        &d.administrative_reference,
    );
    if let Some(ev) = &r.event {
        m.insert("request_category".into(), ev.review.category.word().into());
        m.insert(
            "certification_type".into(),
            ev.review.certification_type.word().into(),
        );
    }
    let rj = rejects(&d.rejects);
    if rj.as_array().is_some_and(|a| !a.is_empty()) {
        m.insert("rejects".into(), rj);
    }
    put(&mut m, "messages", &d.messages);
    let lines: Vec<Value> = d
        .lines
        .iter()
        .map(|l| {
            let mut lm = Map::new();
            lm.insert("line".into(), l.line.into());
            if let Some(p) = r
                .services
                .get(l.line - 1)
                .and_then(|s| s.service.as_ref())
                .and_then(Service::procedure)
            {
                let mut code = format!("{}:{}", p.qualifier.code(), p.code);
                for m in &p.modifiers {
                    code.push(':');
                    code.push_str(m.as_str());
                }
                lm.insert("procedure".into(), code.into());
            }
            lm.insert("status".into(), l.status.word().into());
            action(&mut lm, l.action);
            put(&mut lm, "certification_number", &l.certification_number);
            if let Some(c) = &l.reason {
                lm.insert("reason_code".into(), c.as_str().into());
            }
            put(&mut lm, "certification", &l.certification);
            put(&mut lm, "approved_quantity", &l.approved_quantity);
            put(&mut lm, "approved_units", &l.approved_units);
            put(
                &mut lm,
                "administrative_reference",
                &l.administrative_reference,
            );
            put(&mut lm, "trace_numbers", &l.trace_numbers);
            let rj = rejects(&l.rejects);
            if rj.as_array().is_some_and(|a| !a.is_empty()) {
                lm.insert("rejects".into(), rj);
            }
            put(&mut lm, "messages", &l.messages);
            Value::Object(lm)
        })
        .collect();
    if !lines.is_empty() {
        m.insert("lines".into(), lines.into());
    }
    Value::Object(m)
}

/// A short JSON description of a request (for listings), without patient data.
pub fn request_summary(r: &AuthorizationRequest) -> Value {
    json!({
        "submitter_reference": r.submitter_reference.as_str(),
        "purpose": r.purpose.word(),
        "request_category": r.event.review.category.word(),
        "certification_type": r.event.review.certification_type.word(),
        "service_lines": r.services.len(),
    })
}
