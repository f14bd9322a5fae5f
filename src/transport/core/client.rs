//! `CoreClient`: a 278 to a payer over CAQH CORE real time, SOAP 1.2 or MIME multipart, and the
//! envelope's answer mapped to a send outcome.

use std::time::Instant;

use super::envelope::{
    self, CoreRequest, CoreResponse, Credentials, SoapFault, SoapReply, error_code,
};
use crate::payers::{Auth, CoreStyle, PayerConfig};
use crate::transport::{
    Answer, BoxFuture, Delivery, Outgoing, SendError, Transport, clip, http_failure, read_body,
    retry_after,
};

/// Sends X12 interchanges in the CORE real-time envelope to `PayerConfig.endpoint`.
#[derive(Debug, Clone)]
pub struct CoreClient {
    http: reqwest::Client,
}

impl CoreClient {
    pub fn new(http: reqwest::Client) -> CoreClient {
        CoreClient { http }
    }

    async fn exchange(&self, msg: Outgoing<'_>) -> Result<Delivery, SendError> {
        let cfg = msg.payer;
        let endpoint = cfg.endpoint.as_deref().ok_or_else(|| SendError::Config {
            reason: format!("payer {}: x12-core needs an endpoint", cfg.id),
        })?;
        let payload = std::str::from_utf8(msg.body).map_err(|e| SendError::Refused {
            reason: format!(
                "the interchange is not UTF-8 text (byte {}), it cannot go in a CORE envelope",
                e.valid_up_to()
            ),
            body: None,
        })?;
        let credentials = credentials(cfg)?;
        let (sender, receiver) = ids(cfg);
        let req = CoreRequest::x12_278(msg.payload_id, &sender, &receiver, payload.to_owned());

        let builder = self.http.post(endpoint).timeout(cfg.timeout());
        let builder = match cfg.core_style {
            CoreStyle::Soap => builder
                .header(
                    reqwest::header::CONTENT_TYPE,
                    format!(
                        "application/soap+xml; charset=utf-8; action=\"{}\"",
                        cfg.soap_action
                    ),
                )
                .body(envelope::build_soap_request(&req, credentials.as_ref())),
            CoreStyle::Mime => {
                let form = envelope::mime_request_parts(&req, credentials.as_ref())
                    .into_iter()
                    .fold(reqwest::multipart::Form::new(), |f, (name, value)| {
                        f.text(name, value)
                    });
                builder.multipart(form)
            }
        };
        let started = Instant::now();
        let style = match cfg.core_style {
            CoreStyle::Soap => "soap",
            CoreStyle::Mime => "mime",
        };
        tracing::debug!(payer = %cfg.id, payload_id = msg.payload_id, style, bytes = msg.body.len(), "CORE send");
        let resp = builder
            .send()
            .await
            .map_err(|e| http_failure(&e, "CORE request"))?;
        let status = resp.status();
        let after = retry_after(resp.headers());
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = read_body(resp, "CORE response").await?;
        let outcome = outcome(
            cfg.core_style,
            status.as_u16(),
            &content_type,
            &body,
            msg.payload_id,
            after,
        );
        tracing::info!(
            payer = %cfg.id,
            payload_id = msg.payload_id,
            style,
            status = status.as_u16(),
            bytes = body.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            outcome = match &outcome {
                Ok(_) => "answered",
                Err(SendError::NotDelivered { .. }) => "not_delivered",
                Err(SendError::Unknown { .. }) => "unknown",
                Err(SendError::Refused { .. }) => "refused",
                Err(SendError::Config { .. }) => "config",
            },
            "CORE exchange"
        );
        outcome
    }
}

impl Transport for CoreClient {
    fn send<'a>(&'a self, msg: Outgoing<'a>) -> BoxFuture<'a, Result<Delivery, SendError>> {
        Box::pin(self.exchange(msg))
    }
}

fn credentials(cfg: &PayerConfig) -> Result<Option<Credentials>, SendError> {
    match &cfg.auth {
        Auth::None => Ok(None),
        Auth::CoreUsername { username, password } => {
            let resolve = |s: &crate::payers::SecretRef| {
                s.resolve().map_err(|e| SendError::Config {
                    reason: format!("payer {}: {e}", cfg.id),
                })
            };
            Ok(Some(Credentials {
                username: resolve(username)?,
                password: resolve(password)?,
            }))
        }
        other => Err(SendError::Config {
            reason: format!(
                "payer {}: auth kind {} cannot be used with CAQH CORE (use core-username or none)",
                cfg.id,
                auth_kind(other)
            ),
        }),
    }
}

fn auth_kind(a: &Auth) -> &'static str {
    match a {
        Auth::None => "none",
        Auth::CoreUsername { .. } => "core-username",
        Auth::ClientCredentials { .. } => "client-credentials",
        Auth::SmartBackend { .. } => "smart-backend",
    }
}

/// The CORE SenderID / ReceiverID: the configured ones, else ISA06 / ISA08.
pub fn ids(cfg: &PayerConfig) -> (String, String) {
    let env = cfg.envelope();
    (
        cfg.core_sender_id.clone().unwrap_or(env.sender_id),
        cfg.core_receiver_id.clone().unwrap_or(env.receiver_id),
    )
}

/// Maps an HTTP exchange's result (status, body) to the send outcome. Public so the mapping can
/// be tested on its own and reused by tools.
pub fn outcome(
    style: CoreStyle,
    status: u16,
    content_type: &str,
    body: &[u8],
    payload_id: &str,
    retry_after: Option<std::time::Duration>,
) -> Result<Delivery, SendError> {
    match status {
        401 | 403 => {
            return Err(SendError::Config {
                reason: format!(
                    "HTTP {status}: the payer did not accept our credentials{}",
                    read(style, content_type, body)
                        .ok()
                        .and_then(|r| match r {
                            SoapReply::Response(r) if !r.error_code.is_empty() =>
                                Some(format!(" ({} {})", r.error_code, clip(&r.error_message))),
                            _ => None,
                        })
                        .unwrap_or_default()
                ),
            });
        }
        429 | 503 => {
            return Err(SendError::NotDelivered {
                reason: format!("HTTP {status}: the payer is busy"),
                retry_after,
            });
        }
        _ => {}
    }
    match read(style, content_type, body) {
        Ok(SoapReply::Response(r)) => envelope_outcome(r, status, body, payload_id, retry_after),
        Ok(SoapReply::Fault(f)) => Err(fault_outcome(&f, status, body, retry_after)),
        Err(e) => Err(match status {
            200..=299 => SendError::Unknown {
                reason: format!("HTTP {status} with an unreadable CORE response: {e}"),
                retry_after: None,
            },
            400 | 413 | 422 => SendError::Refused {
                reason: format!("HTTP {status}: the payer refused the envelope"),
                body: Some(body.to_vec()),
            },
            500..=599 => SendError::Unknown {
                reason: format!("HTTP {status} from the payer"),
                retry_after,
            },
            _ => SendError::Config {
                reason: format!(
                    "HTTP {status}: unexpected answer from the CORE endpoint (check the URL)"
                ),
            },
        }),
    }
}

fn read(
    style: CoreStyle,
    content_type: &str,
    body: &[u8],
) -> Result<SoapReply, envelope::EnvelopeError> {
    // A MIME client may still get a SOAP fault or envelope back, and the reverse: read by the
    // content, not by what was sent.
    let multipart = envelope::multipart_boundary(content_type).is_some();
    if multipart || (style == CoreStyle::Mime && !looks_like_xml(body)) {
        let parts = envelope::decode_form_data(content_type, body)?;
        return envelope::parse_mime_response(&parts).map(SoapReply::Response);
    }
    let text = std::str::from_utf8(body).map_err(|e| envelope::EnvelopeError {
        element: "document".into(),
        kind: envelope::EnvelopeErrorKind::Malformed,
        message: format!("not UTF-8 (byte {})", e.valid_up_to()),
    })?;
    envelope::parse_soap_response(text)
}

fn looks_like_xml(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

fn fault_outcome(
    f: &SoapFault,
    status: u16,
    body: &[u8],
    retry_after: Option<std::time::Duration>,
) -> SendError {
    let what = format!(
        "SOAP {} fault{} (HTTP {status}): {}",
        f.code,
        f.subcode
            .as_deref()
            .map(|s| format!(" {s}"))
            .unwrap_or_default(),
        clip(&f.reason)
    );
    match f.code.as_str() {
        "Sender" | "DataEncodingUnknown" => SendError::Refused {
            reason: what,
            body: Some(body.to_vec()),
        },
        "VersionMismatch" | "MustUnderstand" => SendError::Config { reason: what },
        _ => SendError::Unknown {
            reason: what,
            retry_after,
        },
    }
}

fn envelope_outcome(
    r: CoreResponse,
    status: u16,
    body: &[u8],
    payload_id: &str,
    retry_after: Option<std::time::Duration>,
) -> Result<Delivery, SendError> {
    let code = r.error_code.trim();
    let said = || {
        if r.error_message.is_empty() {
            format!("CORE ErrorCode {code} (HTTP {status})")
        } else {
            format!(
                "CORE ErrorCode {code} (HTTP {status}): {}",
                clip(&r.error_message)
            )
        }
    };
    match code {
        error_code::SUCCESS | "" => {
            let Some(payload) = r.payload else {
                return Err(SendError::Unknown {
                    reason: if code.is_empty() {
                        format!("CORE response with no ErrorCode and no Payload (HTTP {status})")
                    } else {
                        format!("CORE Success without a Payload (HTTP {status})")
                    },
                    retry_after: None,
                });
            };
            if r.payload_id != payload_id {
                return Err(SendError::Unknown {
                    reason: format!(
                        "PayloadID mismatch: sent {payload_id}, the response names {:?}",
                        r.payload_id
                    ),
                    retry_after: None,
                });
            }
            Ok(Delivery::Answered(Answer {
                body: payload.into_bytes(),
                detail: format!("CORE {} {code}", r.payload_type)
                    .trim_end()
                    .to_owned(),
            }))
        }
        "ReceiverServerBusy" | "Receiver Server Busy" => Err(SendError::NotDelivered {
            reason: said(),
            retry_after,
        }),
        "UnAuthorized" | "Unauthorized" | error_code::VERSION_MISMATCH => {
            Err(SendError::Config { reason: said() })
        }
        c if [
            "SenderID",
            "ReceiverID",
            "CORERuleVersion",
            "ProcessingMode",
        ]
        .iter()
        .any(|f| c.starts_with(f)) =>
        {
            Err(SendError::Config { reason: said() })
        }
        c if ["PayloadType", "PayloadID", "Payload", "TimeStamp"]
            .iter()
            .any(|f| c.starts_with(f)) =>
        {
            Err(SendError::Refused {
                reason: said(),
                body: Some(body.to_vec()),
            })
        }
        _ => Err(SendError::Config {
            reason: format!("unrecognised {}", said()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::core::envelope::{build_soap_fault, build_soap_response, payload_type};

    const ID: &str = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6";

    fn resp(code: &str, payload: Option<&str>, id: &str) -> Vec<u8> {
        let req = CoreRequest::x12_278(id, "S", "R", "ISA~".into());
        build_soap_response(&CoreResponse::answer(
            &req,
            payload_type::X12_278_RESPONSE,
            payload.map(str::to_owned),
            code,
            "msg",
        ))
        .into_bytes()
    }

    fn map(status: u16, body: &[u8]) -> Result<Delivery, SendError> {
        outcome(
            CoreStyle::Soap,
            status,
            "application/soap+xml",
            body,
            ID,
            None,
        )
    }

    #[test]
    fn error_codes_map_to_outcomes() {
        assert!(
            matches!(map(200, &resp("Success", Some("ISA~"), ID)), Ok(Delivery::Answered(a)) if a.detail == "CORE X12_278_Response_005010X217E1_2 Success")
        );
        assert!(matches!(
            map(200, &resp("", Some("ISA~"), ID)),
            Ok(Delivery::Answered(_))
        ));
        assert!(matches!(
            map(200, &resp("", None, ID)),
            Err(SendError::Unknown { .. })
        ));
        assert!(matches!(
            map(200, &resp("ReceiverServerBusy", None, ID)),
            Err(SendError::NotDelivered { .. })
        ));
        assert!(matches!(
            map(200, &resp("UnAuthorized", None, ID)),
            Err(SendError::Config { .. })
        ));
        assert!(matches!(
            map(200, &resp("SenderIDIllegal", None, ID)),
            Err(SendError::Config { .. })
        ));
        assert!(matches!(
            map(200, &resp("VersionMismatch", None, ID)),
            Err(SendError::Config { .. })
        ));
        assert!(matches!(
            map(200, &resp("PayloadTypeIllegal", None, ID)),
            Err(SendError::Refused { .. })
        ));
        assert!(matches!(
            map(200, &resp("PayloadRequired", None, ID)),
            Err(SendError::Refused { .. })
        ));
        let e = map(
            200,
            &resp(
                "Success",
                Some("ISA~"),
                "00000000-0000-0000-0000-000000000000",
            ),
        )
        .unwrap_err();
        assert!(
            matches!(&e, SendError::Unknown { reason, .. } if reason.contains("PayloadID mismatch")),
            "{e}"
        );
        assert!(matches!(map(500, b"oops"), Err(SendError::Unknown { .. })));
        assert!(matches!(map(400, b"oops"), Err(SendError::Refused { .. })));
        assert!(matches!(map(200, b"<x"), Err(SendError::Unknown { .. })));
        assert!(matches!(map(401, b""), Err(SendError::Config { .. })));
        assert!(matches!(map(403, b""), Err(SendError::Config { .. })));
        assert!(matches!(map(503, b""), Err(SendError::NotDelivered { .. })));
        assert!(matches!(map(429, b""), Err(SendError::NotDelivered { .. })));
        let sender = build_soap_fault(&SoapFault::sender("bad envelope")).into_bytes();
        assert!(matches!(map(400, &sender), Err(SendError::Refused { .. })));
        let receiver = build_soap_fault(&SoapFault::receiver("down")).into_bytes();
        assert!(matches!(
            map(500, &receiver),
            Err(SendError::Unknown { .. })
        ));
    }
}
