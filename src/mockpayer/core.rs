//! The CORE side: `POST /core` takes a real-time envelope (SOAP 1.2 or MIME multipart, by
//! content type, read with the transport module's envelope codec), decides the 278 requests it
//! carries and answers the 278 response, or a 999 (IK5 R) when the 278 does not decode, or a
//! TA1 when not even a functional group can be acknowledged.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::pas::trace_key;
use super::{
    Authorization, Channel, Fault, FaultKind, MockState, Outcome, Subject, decide, dropped,
    received_entry, status_fault, today,
};
use crate::domain::{AuthorizationResponse, Text, TraceType};
use crate::transport::core::envelope::{
    CoreRequest, CoreResponse, Credentials, REAL_TIME, RULE_VERSION, SoapFault, build_soap_fault,
    build_soap_response, decode_form_data, encode_form_data, error_code, mime_response_parts,
    parse_mime_request, parse_soap_request, payload_type, timestamp_now,
};
use crate::x12::ack::{generate_999, generate_ta1};
use crate::x12::envelope::InterchangeSummary;
use crate::x12::error::{Issue, X12Error};
use crate::x12::tx278::{Message278, decode_all, encode_responses};
use crate::x12::writer::{EnvelopeSettings, Stamp};

const SOAP_CT: &str = "application/soap+xml; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Soap,
    Mime,
}

fn reply(style: Style, resp: &CoreResponse) -> Response {
    match style {
        Style::Soap => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, SOAP_CT)],
            build_soap_response(resp),
        )
            .into_response(),
        Style::Mime => {
            let (ct, body) = encode_form_data(&mime_response_parts(resp));
            (StatusCode::OK, [(header::CONTENT_TYPE, ct)], body).into_response()
        }
    }
}

fn fault(style: Style, f: SoapFault) -> Response {
    let status = StatusCode::from_u16(f.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    match style {
        Style::Soap => (
            status,
            [(header::CONTENT_TYPE, SOAP_CT)],
            build_soap_fault(&f),
        )
            .into_response(),
        Style::Mime => (status, [(header::CONTENT_TYPE, "text/plain")], f.reason).into_response(),
    }
}

/// An envelope answer for a request that could not be read far enough to echo.
fn bare(code: &str, message: String) -> CoreResponse {
    CoreResponse {
        processing_mode: REAL_TIME.into(),
        timestamp: timestamp_now(),
        core_rule_version: RULE_VERSION.into(),
        error_code: code.into(),
        error_message: message,
        ..CoreResponse::default()
    }
}

/// The envelope our answers go out in: the received ISA's and GS's ids swapped, its delimiters.
fn answer_settings(summary: &InterchangeSummary) -> EnvelopeSettings {
    let h = &summary.header;
    let gs = summary.groups.first().map(|g| &g.header);
    EnvelopeSettings {
        sender_qualifier: h.receiver_qualifier.clone(),
        sender_id: h.receiver_id.trim().to_owned(),
        receiver_qualifier: h.sender_qualifier.clone(),
        receiver_id: h.sender_id.trim().to_owned(),
        application_sender: gs.map(|g| g.receiver.clone()),
        application_receiver: gs.map(|g| g.sender.clone()),
        production: h.usage == "P",
        ack_requested: false,
        delimiters: h.delimiters,
        newline: false,
    }
}

/// The 278 response interchange answering an authorization (also what a notification carries).
pub(crate) fn response_interchange(
    s: &MockState,
    auth: &Authorization,
    resp: &AuthorizationResponse,
) -> Result<Vec<u8>, X12Error> {
    let settings = auth.envelope.clone().unwrap_or_default();
    encode_responses(
        std::slice::from_ref(resp),
        &settings,
        &s.inner.controls,
        Stamp::now(),
    )
}

/// The response as the wrong_control fault sends it: BHT03 and the echoed trace numbers altered.
fn mislabel(resp: &mut AuthorizationResponse) {
    if let Ok(t) = Text::parse(&format!("{}X", resp.submitter_reference)) {
        resp.submitter_reference = t;
    }
    for t in resp
        .decision
        .trace_numbers
        .iter_mut()
        .filter(|t| t.kind == TraceType::Referenced)
    {
        if let Ok(r) = Text::parse(&format!("{}X", t.reference)) {
            t.reference = r;
        }
    }
}

fn credentials_ok(s: &MockState, creds: Option<&Credentials>) -> bool {
    let c = &s.inner.rules.core;
    match (&c.username, &c.password) {
        (Some(u), Some(p)) => creds.is_some_and(|x| x.username == *u && x.password == *p),
        _ => true,
    }
}

pub(crate) async fn handle(
    State(s): State<MockState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut rec = received_entry(Channel::Core, "core", body.len());
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let lower = ct.to_ascii_lowercase();
    let style = if lower.starts_with("application/soap+xml") || lower.starts_with("text/xml") {
        Style::Soap
    } else if lower.starts_with("multipart/form-data") {
        Style::Mime
    } else {
        rec.outcome = Outcome::Unreadable;
        rec.http_status = 415;
        s.record(rec);
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "CORE real time takes application/soap+xml (SOAP 1.2) or multipart/form-data (MIME)",
        )
            .into_response();
    };
    let parsed = match style {
        Style::Soap => match std::str::from_utf8(&body) {
            Ok(xml) => parse_soap_request(xml),
            Err(e) => {
                rec.outcome = Outcome::Unreadable;
                rec.http_status = 400;
                s.record(rec);
                return fault(
                    style,
                    SoapFault::sender(format!("the SOAP message is not UTF-8: {e}")),
                );
            }
        },
        Style::Mime => decode_form_data(&ct, &body).and_then(|p| parse_mime_request(&p)),
    };
    let (req, creds) = match parsed {
        Ok(x) => x,
        Err(e) => {
            rec.outcome = Outcome::Unreadable;
            return match e.error_code() {
                Some(code) => {
                    s.record(rec);
                    reply(style, &bare(&code, e.to_string()))
                }
                None => {
                    rec.http_status = 400;
                    s.record(rec);
                    fault(style, SoapFault::sender(e.to_string()))
                }
            };
        }
    };
    rec.payload_id = Some(req.payload_id.clone());
    if !credentials_ok(&s, creds.as_ref()) {
        rec.outcome = Outcome::Unauthorized;
        let msg = "the CORE credentials were missing or refused";
        return if style == Style::Mime {
            rec.http_status = 401;
            s.record(rec);
            (StatusCode::UNAUTHORIZED, msg).into_response()
        } else {
            s.record(rec);
            reply(
                style,
                &CoreResponse::answer(&req, &req.payload_type, None, error_code::UNAUTHORIZED, msg),
            )
        };
    }
    let envelope_error = req.check().err().or_else(|| {
        (req.payload_type != payload_type::X12_278_REQUEST).then(|| {
            (
                error_code::PAYLOAD_TYPE_ILLEGAL,
                format!(
                    "PayloadType {:?}: this endpoint takes {}",
                    req.payload_type,
                    payload_type::X12_278_REQUEST
                ),
            )
        })
    });
    if let Some((code, msg)) = envelope_error {
        rec.outcome = Outcome::Unreadable;
        s.record(rec);
        return reply(
            style,
            &CoreResponse::answer(&req, &req.payload_type, None, code, &msg),
        );
    }
    process(&s, style, &req, rec).await
}

/// The 278s inside an accepted envelope.
async fn process(
    s: &MockState,
    style: Style,
    req: &CoreRequest,
    mut rec: super::Received,
) -> Response {
    let decoded = decode_all(req.payload.as_bytes());
    let Some(summary) = decoded.summary.first() else {
        rec.outcome = Outcome::Unreadable;
        rec.http_status = 400;
        s.record(rec);
        return fault(
            style,
            SoapFault::sender("the Payload is not an X12 interchange (no readable ISA)"),
        );
    };
    rec.interchange_control = Some(summary.header.control_number.clone());
    rec.transaction_control = decoded
        .transactions
        .first()
        .map(|t| t.transaction.control_number.to_string());
    let mut issues: Vec<Issue> = decoded.all_issues().cloned().collect();
    let mut requests = vec![];
    for t in &decoded.transactions {
        match &t.message {
            Some(Message278::Request(r)) => requests.push(&**r),
            Some(Message278::Response(_)) => issues.push(Issue::error(
                "not_a_request",
                t.transaction.location.clone(),
                "this endpoint takes 278 requests (BHT02 13, 01 or 36), not responses",
            )),
            None => {}
        }
    }
    let settings = answer_settings(summary);
    let first = requests.first().copied();
    let subject = first.map(|r| Subject {
        request: r,
        channel: Channel::Core,
        receiver: Some(req.receiver_id.as_str()),
    });
    let fault_picked = s.pick_fault(Channel::Core, subject.as_ref());
    if let Some(f) = &fault_picked {
        rec.fault = Some(f.kind.name());
        if let Some(r) = before_payload(s, style, req, f, &mut rec) {
            return r;
        }
    }
    let rejected = requests.is_empty() || issues.iter().any(Issue::is_error);
    let (payload, ptype) = if rejected {
        rec.outcome = Outcome::Unreadable;
        rec.trace_numbers = requests.iter().flat_map(|r| trace_key(r).1).collect();
        match acknowledge(s, summary, &issues, &settings) {
            Ok(x) => x,
            Err(e) => {
                rec.http_status = 500;
                s.record(rec);
                return fault(
                    style,
                    SoapFault::receiver(format!("the acknowledgement could not be written: {e}")),
                );
            }
        }
    } else {
        let mut responses = vec![];
        let mut any_new = false;
        for r in &requests {
            let (key, traces) = trace_key(r);
            rec.trace_numbers.extend(traces);
            let subject = Subject {
                request: r,
                channel: Channel::Core,
                receiver: Some(req.receiver_id.as_str()),
            };
            let rules = &s.inner.rules;
            let mut applied = vec![];
            let (resp, new, later) = s.admit(&key, |n| {
                let d = decide(rules, &subject, n, today());
                applied = d.rules;
                let auth = Authorization {
                    channel: Channel::Core,
                    request: (*r).clone(),
                    bundle: None,
                    envelope: Some(settings.clone()),
                    response: d.now,
                    pending: d
                        .later
                        .as_ref()
                        .map(|(_, x)| (std::time::Instant::now(), x.clone())),
                };
                (auth, d.later.map(|(t, _)| t))
            });
            if let Some(delay) = later {
                s.schedule(key.clone(), delay);
            }
            if rec.authorization.is_none() {
                rec.authorization = Some(key);
                rec.submitter_reference = Some(r.submitter_reference.to_string());
                rec.decision = Some(resp.decision.status);
                rec.certification_number = resp
                    .decision
                    .certification_number
                    .as_ref()
                    .map(|c| c.to_string());
            }
            rec.rules.extend(applied);
            any_new |= new;
            responses.push(resp);
        }
        rec.outcome = if any_new {
            Outcome::New
        } else {
            Outcome::Retransmit
        };
        if fault_picked
            .as_ref()
            .is_some_and(|f| f.kind == FaultKind::WrongControl)
        {
            responses.iter_mut().for_each(mislabel);
        }
        match encode_responses(&responses, &settings, &s.inner.controls, Stamp::now()) {
            Ok(b) => (
                String::from_utf8_lossy(&b).into_owned(),
                payload_type::X12_278_RESPONSE,
            ),
            Err(e) => {
                rec.http_status = 500;
                s.record(rec);
                return fault(
                    style,
                    SoapFault::receiver(format!("the 278 response could not be written: {e}")),
                );
            }
        }
    };
    let mut answer = CoreResponse::answer(
        req,
        ptype,
        Some(payload),
        error_code::SUCCESS,
        "Envelope was processed successfully.",
    );
    let response = match fault_picked.as_ref().map(|f| (f.kind, f)) {
        Some((FaultKind::Status, f)) => status_fault(f),
        Some((FaultKind::Drop, _)) => dropped(),
        Some((FaultKind::Malformed, _)) => malformed(style),
        Some((FaultKind::WrongControl, _)) => {
            answer.payload_id = uuid::Uuid::new_v4().to_string();
            reply(style, &answer)
        }
        _ => reply(style, &answer),
    };
    rec.http_status = if fault_picked
        .as_ref()
        .is_some_and(|f| f.kind == FaultKind::Drop)
    {
        0
    } else {
        response.status().as_u16()
    };
    s.record(rec);
    // A slow payer has decided (and recorded) before it answers late: a client that gave up
    // meanwhile must retransmit, not create a second authorization.
    if let Some(f) = fault_picked.as_ref().filter(|f| f.kind == FaultKind::Slow) {
        tokio::time::sleep(std::time::Duration::from_millis(f.ms.unwrap_or(0))).await;
    }
    response
}

/// Faults decided before the payload is read: nothing is created.
fn before_payload(
    s: &MockState,
    style: Style,
    req: &CoreRequest,
    f: &Fault,
    rec: &mut super::Received,
) -> Option<Response> {
    if !f.kind.before_payload(f.status) {
        return None;
    }
    rec.outcome = Outcome::NotProcessed;
    let r = match f.kind {
        FaultKind::CoreBusy => reply(
            style,
            &CoreResponse::answer(
                req,
                &req.payload_type,
                None,
                error_code::RECEIVER_SERVER_BUSY,
                "The receiver is busy; try again later.",
            ),
        ),
        _ => status_fault(f),
    };
    rec.http_status = r.status().as_u16();
    s.record(rec.clone());
    Some(r)
}

/// A 999 for what did not decode (or a TA1 when no group can be acknowledged).
fn acknowledge(
    s: &MockState,
    summary: &InterchangeSummary,
    issues: &[Issue],
    settings: &EnvelopeSettings,
) -> Result<(String, &'static str), X12Error> {
    let ours = EnvelopeSettings {
        delimiters: settings.delimiters,
        newline: false,
        ..EnvelopeSettings::default()
    };
    let stamp = Stamp::now();
    match generate_999(summary, issues, &ours, &s.inner.controls, stamp) {
        Ok(g) => Ok((
            String::from_utf8_lossy(&g.bytes).into_owned(),
            payload_type::X12_999_RESPONSE,
        )),
        Err(_) => {
            let g = generate_ta1(&summary.header, issues, &ours, &s.inner.controls, stamp)?;
            Ok((
                String::from_utf8_lossy(&g.bytes).into_owned(),
                payload_type::X12_TA1_RESPONSE,
            ))
        }
    }
}

/// A 200 whose body is not a readable envelope.
fn malformed(style: Style) -> Response {
    match style {
        Style::Soap => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, SOAP_CT)],
            "<?xml version=\"1.0\"?><soapenv:Envelope xmlns:soapenv=\"http://www.w3.org/2003/05/soap-envelope\"><soapenv:Body><COREEnvelopeRealTimeResponse><PayloadType>X12_278_Resp",
        )
            .into_response(),
        Style::Mime => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "multipart/form-data; boundary=----MockBoundaryNeverClosed",
            )],
            "Content-Disposition: form-data; name=\"PayloadType\"\r\n\r\nX12_278_Resp",
        )
            .into_response(),
    }
}
