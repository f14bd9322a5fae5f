//! The CAQH CORE real-time envelope (Phase II Connectivity Rule, CORE rule version 2.2.0) as
//! data, both sides: SOAP 1.2 (built and read with quick-xml) and HTTP MIME multipart/form-data.
//!
//! A client builds a request and reads a response or a SOAP fault; a server (the mock payer)
//! reads a request and builds a response or a fault. Reading is tolerant of namespace prefixes,
//! whitespace and element order, and every failure names the element and why. The payload is
//! carried in CDATA (split where it contains `]]>`); an escaped text payload is read as well.
//! Nothing here does I/O or logs.

use std::borrow::Cow;
use std::fmt::Write as _;

use quick_xml::escape::unescape;
use quick_xml::events::{BytesCData, BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};

/// The CORE rule 2.2.0 schema namespace of the envelope elements.
pub const CORE_NS: &str = "http://www.caqh.org/SOAP/WSDL/CORERule2.2.0.xsd";
/// SOAP 1.2 envelope namespace.
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
/// WS-Security 1.0 secext namespace (UsernameToken).
pub const WSSE_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// The UsernameToken password type for a clear-text password (over TLS).
pub const PASSWORD_TEXT: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText";
/// The long SOAP action some receivers ask for (others want `RealTimeTransaction`).
pub const SOAP_ACTION_REAL_TIME: &str =
    "http://www.caqh.org/SOAP/WSDL/CORERule2.2.0.xsd/COREEnvelopeRealTimeRequest";

pub const REQUEST_ELEMENT: &str = "COREEnvelopeRealTimeRequest";
pub const RESPONSE_ELEMENT: &str = "COREEnvelopeRealTimeResponse";

pub const RULE_VERSION: &str = "2.2.0";
pub const REAL_TIME: &str = "RealTime";

/// Payload types a 278 exchange uses.
pub mod payload_type {
    pub const X12_278_REQUEST: &str = "X12_278_Request_005010X217E1_2";
    pub const X12_278_RESPONSE: &str = "X12_278_Response_005010X217E1_2";
    pub const X12_999_RESPONSE: &str = "X12_999_Response_005010X231A1";
    pub const X12_TA1_RESPONSE: &str = "X12_TA1_Response_00501X231A1";
}

/// Envelope ErrorCode values (CORE 2.2.0; the list beyond `Success` is from the rule's table).
pub mod error_code {
    pub const SUCCESS: &str = "Success";
    pub const RECEIVER_SERVER_BUSY: &str = "ReceiverServerBusy";
    pub const UNAUTHORIZED: &str = "UnAuthorized";
    pub const VERSION_MISMATCH: &str = "VersionMismatch";
    pub const PAYLOAD_REQUIRED: &str = "PayloadRequired";
    pub const PAYLOAD_TYPE_ILLEGAL: &str = "PayloadTypeIllegal";
    pub const PAYLOAD_ID_ILLEGAL: &str = "PayloadIDIllegal";
    pub const TIMESTAMP_ILLEGAL: &str = "TimeStampIllegal";
    pub const PROCESSING_MODE_ILLEGAL: &str = "ProcessingModeIllegal";
    pub const SENDER_ID_ILLEGAL: &str = "SenderIDIllegal";
    pub const RECEIVER_ID_ILLEGAL: &str = "ReceiverIDIllegal";
    pub const CORE_RULE_VERSION_ILLEGAL: &str = "CORERuleVersionIllegal";
}

/// `COREEnvelopeRealTimeRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreRequest {
    pub payload_type: String,
    pub processing_mode: String,
    pub payload_id: String,
    /// xs:dateTime in UTC (`2026-11-23T18:30:00Z`).
    pub timestamp: String,
    pub sender_id: String,
    pub receiver_id: String,
    pub core_rule_version: String,
    /// The X12 interchange as text.
    pub payload: String,
}

/// `COREEnvelopeRealTimeResponse`: the request's fields (echoed or answered) plus the envelope
/// outcome. A field the server left out reads as an empty string; `payload` is `None` when the
/// element is absent or empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoreResponse {
    pub payload_type: String,
    pub processing_mode: String,
    pub payload_id: String,
    pub timestamp: String,
    pub sender_id: String,
    pub receiver_id: String,
    pub core_rule_version: String,
    pub payload: Option<String>,
    pub error_code: String,
    pub error_message: String,
}

/// WS-Security UsernameToken (SOAP) or the UserName / Password parts (MIME).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<withheld>")
            .finish()
    }
}

/// A SOAP 1.2 fault. `code` is the local name of the fault code value (`Sender`, `Receiver`,
/// `VersionMismatch`, `MustUnderstand`, `DataEncodingUnknown`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapFault {
    pub code: String,
    pub subcode: Option<String>,
    pub reason: String,
}

impl SoapFault {
    pub fn sender(reason: impl Into<String>) -> SoapFault {
        SoapFault {
            code: "Sender".into(),
            subcode: None,
            reason: reason.into(),
        }
    }
    pub fn receiver(reason: impl Into<String>) -> SoapFault {
        SoapFault {
            code: "Receiver".into(),
            subcode: None,
            reason: reason.into(),
        }
    }

    /// The HTTP status a SOAP 1.2 server answers this fault with (400 for Sender, else 500).
    pub fn http_status(&self) -> u16 {
        if self.code == "Sender" { 400 } else { 500 }
    }
}

/// What a SOAP response body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoapReply {
    Response(CoreResponse),
    Fault(SoapFault),
}

/// Why an envelope could not be read: the element (or MIME part) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CORE envelope, {element}: {message}")]
pub struct EnvelopeError {
    pub element: String,
    pub kind: EnvelopeErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeErrorKind {
    /// Not well-formed XML / multipart.
    Malformed,
    /// A required element or part is absent.
    Missing,
    /// Present but empty.
    Empty,
    /// Present twice.
    Duplicate,
    /// Not what the envelope allows here (wrong root, wrong body element).
    Unexpected,
}

impl EnvelopeError {
    fn new(element: &str, kind: EnvelopeErrorKind, message: impl Into<String>) -> EnvelopeError {
        EnvelopeError {
            element: element.to_owned(),
            kind,
            message: message.into(),
        }
    }

    /// The envelope ErrorCode a server answers with for this problem: `<Field>Required` for a
    /// missing or empty field (`PayloadRequired` for the payload), `None` when the message is
    /// not a readable envelope at all (answer with a SOAP Sender fault or HTTP 400).
    pub fn error_code(&self) -> Option<String> {
        let field = FIELDS.iter().find(|f| **f == self.element)?;
        match self.kind {
            EnvelopeErrorKind::Missing | EnvelopeErrorKind::Empty => Some(if *field == "Payload" {
                error_code::PAYLOAD_REQUIRED.to_owned()
            } else {
                format!("{field}Required")
            }),
            EnvelopeErrorKind::Duplicate => Some(format!("{field}Illegal")),
            _ => None,
        }
    }
}

/// The request fields, in schema order.
pub const FIELDS: [&str; 8] = [
    "PayloadType",
    "ProcessingMode",
    "PayloadID",
    "TimeStamp",
    "SenderID",
    "ReceiverID",
    "CORERuleVersion",
    "Payload",
];

/// A UTC xs:dateTime for TimeStamp.
pub fn timestamp_now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl CoreRequest {
    /// A real-time 278 request with the current time and rule version 2.2.0.
    pub fn x12_278(payload_id: &str, sender_id: &str, receiver_id: &str, payload: String) -> Self {
        CoreRequest {
            payload_type: payload_type::X12_278_REQUEST.into(),
            processing_mode: REAL_TIME.into(),
            payload_id: payload_id.into(),
            timestamp: timestamp_now(),
            sender_id: sender_id.into(),
            receiver_id: receiver_id.into(),
            core_rule_version: RULE_VERSION.into(),
            payload,
        }
    }

    fn values(&self) -> [&str; 8] {
        [
            &self.payload_type,
            &self.processing_mode,
            &self.payload_id,
            &self.timestamp,
            &self.sender_id,
            &self.receiver_id,
            &self.core_rule_version,
            &self.payload,
        ]
    }

    /// The server's check of the field values (beyond presence): ProcessingMode RealTime,
    /// PayloadID a UUID, TimeStamp an xs:dateTime, CORERuleVersion 2.2.0. On failure, the
    /// ErrorCode to answer with and a message.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.processing_mode != REAL_TIME {
            return Err((
                error_code::PROCESSING_MODE_ILLEGAL,
                format!(
                    "ProcessingMode {:?}: this endpoint takes RealTime",
                    self.processing_mode
                ),
            ));
        }
        if uuid::Uuid::parse_str(&self.payload_id).is_err() {
            return Err((
                error_code::PAYLOAD_ID_ILLEGAL,
                format!("PayloadID {:?} is not a UUID", self.payload_id),
            ));
        }
        if chrono::DateTime::parse_from_rfc3339(&self.timestamp).is_err() {
            return Err((
                error_code::TIMESTAMP_ILLEGAL,
                format!("TimeStamp {:?} is not an xs:dateTime", self.timestamp),
            ));
        }
        if self.core_rule_version != RULE_VERSION && self.core_rule_version != "v2.2.0" {
            return Err((
                error_code::VERSION_MISMATCH,
                format!(
                    "CORERuleVersion {:?} is not supported (2.2.0)",
                    self.core_rule_version
                ),
            ));
        }
        Ok(())
    }
}

impl CoreResponse {
    /// A response echoing `req`'s ids with `error_code` / `error_message` and a payload.
    pub fn answer(
        req: &CoreRequest,
        payload_type: &str,
        payload: Option<String>,
        error_code: &str,
        error_message: &str,
    ) -> CoreResponse {
        CoreResponse {
            payload_type: payload_type.into(),
            processing_mode: req.processing_mode.clone(),
            payload_id: req.payload_id.clone(),
            timestamp: timestamp_now(),
            // The response comes from the receiver.
            sender_id: req.receiver_id.clone(),
            receiver_id: req.sender_id.clone(),
            core_rule_version: req.core_rule_version.clone(),
            payload,
            error_code: error_code.into(),
            error_message: error_message.into(),
        }
    }

    fn fields(&self) -> Vec<(&'static str, &str)> {
        let mut v = vec![
            ("PayloadType", self.payload_type.as_str()),
            ("ProcessingMode", &self.processing_mode),
            ("PayloadID", &self.payload_id),
            ("TimeStamp", &self.timestamp),
            ("SenderID", &self.sender_id),
            ("ReceiverID", &self.receiver_id),
            ("CORERuleVersion", &self.core_rule_version),
        ];
        if let Some(p) = &self.payload {
            v.push(("Payload", p));
        }
        v.push(("ErrorCode", &self.error_code));
        v.push(("ErrorMessage", &self.error_message));
        v
    }
}

// ---------------------------------------------------------------------------------------------
// SOAP: writing

fn xml_writer() -> Writer<Vec<u8>> {
    let mut w = Writer::new(Vec::with_capacity(1024));
    // Writing into a Vec cannot fail.
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    w
}

fn start(w: &mut Writer<Vec<u8>>, tag: BytesStart<'_>) {
    let _ = w.write_event(Event::Start(tag));
}

fn end(w: &mut Writer<Vec<u8>>, name: &str) {
    let _ = w.write_event(Event::End(BytesEnd::new(name)));
}

fn text_element(w: &mut Writer<Vec<u8>>, name: &str, value: &str) {
    start(w, BytesStart::new(name));
    let _ = w.write_event(Event::Text(BytesText::new(value)));
    end(w, name);
}

fn cdata_element(w: &mut Writer<Vec<u8>>, name: &str, value: &str) {
    start(w, BytesStart::new(name));
    for part in BytesCData::escaped(value) {
        let _ = w.write_event(Event::CData(part));
    }
    end(w, name);
}

fn envelope_start(w: &mut Writer<Vec<u8>>, with_core_ns: bool) {
    let mut env = BytesStart::new("soapenv:Envelope");
    env.push_attribute(("xmlns:soapenv", SOAP12_NS));
    if with_core_ns {
        env.push_attribute(("xmlns:cor", CORE_NS));
    }
    start(w, env);
}

fn finish(w: Writer<Vec<u8>>) -> String {
    // Only &str went in, so the bytes are UTF-8.
    String::from_utf8(w.into_inner()).unwrap_or_default()
}

/// The SOAP 1.2 request; a WS-Security UsernameToken (PasswordText) in the header when
/// `credentials` are given, no header otherwise.
pub fn build_soap_request(req: &CoreRequest, credentials: Option<&Credentials>) -> String {
    let mut w = xml_writer();
    envelope_start(&mut w, true);
    if let Some(c) = credentials {
        start(&mut w, BytesStart::new("soapenv:Header"));
        let mut sec = BytesStart::new("wsse:Security");
        sec.push_attribute(("xmlns:wsse", WSSE_NS));
        sec.push_attribute(("soapenv:mustUnderstand", "true"));
        start(&mut w, sec);
        start(&mut w, BytesStart::new("wsse:UsernameToken"));
        text_element(&mut w, "wsse:Username", &c.username);
        let mut pw = BytesStart::new("wsse:Password");
        pw.push_attribute(("Type", PASSWORD_TEXT));
        start(&mut w, pw);
        let _ = w.write_event(Event::Text(BytesText::new(&c.password)));
        end(&mut w, "wsse:Password");
        end(&mut w, "wsse:UsernameToken");
        end(&mut w, "wsse:Security");
        end(&mut w, "soapenv:Header");
    }
    start(&mut w, BytesStart::new("soapenv:Body"));
    let el = format!("cor:{REQUEST_ELEMENT}");
    start(&mut w, BytesStart::new(el.as_str()));
    for (name, value) in FIELDS.iter().zip(req.values()) {
        let tag = format!("cor:{name}");
        if *name == "Payload" {
            cdata_element(&mut w, &tag, value);
        } else {
            text_element(&mut w, &tag, value);
        }
    }
    end(&mut w, &el);
    end(&mut w, "soapenv:Body");
    end(&mut w, "soapenv:Envelope");
    finish(w)
}

/// The SOAP 1.2 response (server side).
pub fn build_soap_response(resp: &CoreResponse) -> String {
    let mut w = xml_writer();
    envelope_start(&mut w, true);
    start(&mut w, BytesStart::new("soapenv:Body"));
    let el = format!("cor:{RESPONSE_ELEMENT}");
    start(&mut w, BytesStart::new(el.as_str()));
    for (name, value) in resp.fields() {
        let tag = format!("cor:{name}");
        if name == "Payload" {
            cdata_element(&mut w, &tag, value);
        } else {
            text_element(&mut w, &tag, value);
        }
    }
    end(&mut w, &el);
    end(&mut w, "soapenv:Body");
    end(&mut w, "soapenv:Envelope");
    finish(w)
}

/// A SOAP 1.2 fault (server side). Answer it with HTTP 400 for `Sender`, 500 otherwise.
pub fn build_soap_fault(fault: &SoapFault) -> String {
    let mut w = xml_writer();
    envelope_start(&mut w, false);
    start(&mut w, BytesStart::new("soapenv:Body"));
    start(&mut w, BytesStart::new("soapenv:Fault"));
    start(&mut w, BytesStart::new("soapenv:Code"));
    text_element(&mut w, "soapenv:Value", &format!("soapenv:{}", fault.code));
    if let Some(sub) = &fault.subcode {
        start(&mut w, BytesStart::new("soapenv:Subcode"));
        text_element(&mut w, "soapenv:Value", sub);
        end(&mut w, "soapenv:Subcode");
    }
    end(&mut w, "soapenv:Code");
    start(&mut w, BytesStart::new("soapenv:Reason"));
    let mut t = BytesStart::new("soapenv:Text");
    t.push_attribute(("xml:lang", "en"));
    start(&mut w, t);
    let _ = w.write_event(Event::Text(BytesText::new(&fault.reason)));
    end(&mut w, "soapenv:Text");
    end(&mut w, "soapenv:Reason");
    end(&mut w, "soapenv:Fault");
    end(&mut w, "soapenv:Body");
    end(&mut w, "soapenv:Envelope");
    finish(w)
}

// ---------------------------------------------------------------------------------------------
// SOAP: reading

/// One element of a parsed document: local name (prefix dropped), attributes by local name,
/// text (character data, entities resolved) and child elements.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    has_cdata: bool,
    /// Text outside CDATA sections (to tell formatting whitespace from content).
    loose_text: String,
    children: Vec<Node>,
}

const MAX_DEPTH: usize = 64;

fn local(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

fn malformed(at: &str, message: impl Into<String>) -> EnvelopeError {
    EnvelopeError::new(at, EnvelopeErrorKind::Malformed, message)
}

fn parse_tree(xml: &str) -> Result<Node, EnvelopeError> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let here = |stack: &Vec<Node>| {
        stack
            .last()
            .map(|n| n.name.clone())
            .unwrap_or_else(|| "document".into())
    };
    loop {
        let pos = reader.buffer_position();
        let ev = reader.read_event().map_err(|e| {
            malformed(
                &here(&stack),
                format!("not well-formed XML near byte {pos}: {e}"),
            )
        })?;
        match ev {
            Event::Start(s) | Event::Empty(s) if root.is_some() => {
                return Err(malformed(
                    local(s.name().into_inner()),
                    "content after the document element",
                ));
            }
            Event::Start(s) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed(&here(&stack), "elements nested too deeply"));
                }
                stack.push(node_of(&s)?);
            }
            Event::Empty(s) => {
                let n = node_of(&s)?;
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => root = Some(n),
                }
            }
            Event::End(_) => {
                let Some(n) = stack.pop() else {
                    return Err(malformed("document", "end tag without a start tag"));
                };
                match stack.last_mut() {
                    Some(p) => p.children.push(n),
                    None => root = Some(n),
                }
            }
            Event::Text(t) => {
                let s = t.into_inner();
                match stack.last_mut() {
                    Some(n) => {
                        n.text.push_str(&s);
                        n.loose_text.push_str(&s);
                    }
                    None if s.trim().is_empty() => {}
                    None => return Err(malformed("document", "text outside the document element")),
                }
            }
            Event::CData(c) => {
                let s = c.into_inner();
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(&s);
                    n.has_cdata = true;
                } else {
                    return Err(malformed("document", "CDATA outside the document element"));
                }
            }
            Event::GeneralRef(r) => {
                let at = here(&stack);
                let ch: Cow<'_, str> = match r.resolve_char_ref() {
                    Ok(Some(c)) => Cow::Owned(c.to_string()),
                    Ok(None) => match &*r.into_inner() {
                        "lt" => "<".into(),
                        "gt" => ">".into(),
                        "amp" => "&".into(),
                        "quot" => "\"".into(),
                        "apos" => "'".into(),
                        other => {
                            return Err(malformed(&at, format!("unknown entity &{other};")));
                        }
                    },
                    Err(e) => return Err(malformed(&at, format!("bad character reference: {e}"))),
                };
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(&ch);
                    n.loose_text.push_str(&ch);
                }
            }
            Event::DocType(_) => {
                return Err(malformed(
                    "document",
                    "a DOCTYPE is not allowed in a SOAP message",
                ));
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(malformed(
            &open.name,
            "the document ends before this element is closed",
        ));
    }
    root.ok_or_else(|| malformed("document", "no XML element (empty body?)"))
}

fn node_of(s: &BytesStart<'_>) -> Result<Node, EnvelopeError> {
    let name = local(s.name().into_inner()).to_owned();
    let mut attrs = Vec::new();
    for a in s.attributes() {
        let a = a.map_err(|e| malformed(&name, format!("bad attribute: {e}")))?;
        let key = a.key.into_inner();
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let value = unescape(&a.value)
            .map_err(|e| malformed(&name, format!("bad attribute value: {e}")))?
            .into_owned();
        attrs.push((local(key).to_owned(), value));
    }
    Ok(Node {
        name,
        attrs,
        ..Node::default()
    })
}

impl Node {
    fn child(&self, name: &str) -> Result<Option<&Node>, EnvelopeError> {
        let mut it = self.children.iter().filter(|c| c.name == name);
        let first = it.next();
        if first.is_some() && it.next().is_some() {
            return Err(EnvelopeError::new(
                name,
                EnvelopeErrorKind::Duplicate,
                format!("appears more than once in {}", self.name),
            ));
        }
        Ok(first)
    }

    fn require(&self, name: &str) -> Result<&Node, EnvelopeError> {
        self.child(name)?.ok_or_else(|| {
            EnvelopeError::new(
                name,
                EnvelopeErrorKind::Missing,
                format!("missing from {}", self.name),
            )
        })
    }

    /// Text of a simple field, whitespace trimmed.
    fn value(&self) -> String {
        self.text.trim().to_owned()
    }

    /// The payload: CDATA kept exactly (formatting whitespace around it dropped); plain text
    /// trimmed.
    fn payload(&self) -> String {
        if self.has_cdata && self.loose_text.trim().is_empty() {
            // Text outside CDATA is only formatting whitespace: drop it, keep the CDATA bytes.
            trim_outer_ws(&self.text, &self.loose_text).to_owned()
        } else {
            self.text.trim().to_owned()
        }
    }
}

/// With `loose` only whitespace, cut from `text` its leading and trailing whitespace that came
/// from outside CDATA (at most `loose.len()` bytes in total).
fn trim_outer_ws<'a>(text: &'a str, loose: &str) -> &'a str {
    let mut budget = loose.len();
    let lead = text.len() - text.trim_start().len();
    let cut_lead = lead.min(budget);
    budget -= cut_lead;
    let rest = &text[cut_lead..];
    let trail = rest.len() - rest.trim_end().len();
    let cut_trail = trail.min(budget);
    &rest[..rest.len() - cut_trail]
}

fn soap_body(xml: &str) -> Result<(Node, Option<Node>), EnvelopeError> {
    let root = parse_tree(xml)?;
    if root.name != "Envelope" {
        return Err(EnvelopeError::new(
            &root.name,
            EnvelopeErrorKind::Unexpected,
            "the document element is not a SOAP Envelope",
        ));
    }
    let mut header = None;
    let mut body = None;
    for c in root.children {
        match c.name.as_str() {
            "Header" if header.is_none() => header = Some(c),
            "Body" if body.is_none() => body = Some(c),
            "Header" | "Body" => {
                return Err(EnvelopeError::new(
                    &c.name,
                    EnvelopeErrorKind::Duplicate,
                    "appears more than once in Envelope",
                ));
            }
            _ => {}
        }
    }
    let body = body.ok_or_else(|| {
        EnvelopeError::new("Body", EnvelopeErrorKind::Missing, "missing from Envelope")
    })?;
    let mut elements = body.children.into_iter();
    let first = elements.next().ok_or_else(|| {
        EnvelopeError::new(
            "Body",
            EnvelopeErrorKind::Empty,
            "the SOAP Body holds no element",
        )
    })?;
    Ok((first, header))
}

fn fields_of(node: &Node, required: bool) -> Result<Vec<String>, EnvelopeError> {
    FIELDS
        .iter()
        .map(|f| {
            let n = if required {
                Some(node.require(f)?)
            } else {
                node.child(f)?
            };
            let v = match n {
                Some(n) if *f == "Payload" => n.payload(),
                Some(n) => n.value(),
                None => String::new(),
            };
            if required && v.is_empty() {
                return Err(EnvelopeError::new(
                    f,
                    EnvelopeErrorKind::Empty,
                    format!("is empty in {}", node.name),
                ));
            }
            Ok(v)
        })
        .collect()
}

fn request_from(values: Vec<String>) -> CoreRequest {
    let mut v = values.into_iter();
    let mut next = || v.next().unwrap_or_default();
    CoreRequest {
        payload_type: next(),
        processing_mode: next(),
        payload_id: next(),
        timestamp: next(),
        sender_id: next(),
        receiver_id: next(),
        core_rule_version: next(),
        payload: next(),
    }
}

/// Reads a SOAP request (server side): the envelope fields (each required and non-empty) and
/// the UsernameToken when the header carries one.
pub fn parse_soap_request(xml: &str) -> Result<(CoreRequest, Option<Credentials>), EnvelopeError> {
    let (el, header) = soap_body(xml)?;
    if el.name != REQUEST_ELEMENT {
        return Err(EnvelopeError::new(
            &el.name,
            EnvelopeErrorKind::Unexpected,
            format!(
                "the SOAP Body holds {} instead of {REQUEST_ELEMENT}",
                el.name
            ),
        ));
    }
    let req = request_from(fields_of(&el, true)?);
    let creds = match header {
        Some(h) => match h.child("Security")? {
            Some(sec) => {
                let tok = sec.require("UsernameToken")?;
                let user = tok.require("Username")?;
                let pw = tok.require("Password")?;
                if let Some((_, t)) = pw.attrs.iter().find(|(k, _)| k == "Type")
                    && !t.ends_with("#PasswordText")
                {
                    return Err(EnvelopeError::new(
                        "Password",
                        EnvelopeErrorKind::Unexpected,
                        format!("password type {t:?} is not PasswordText"),
                    ));
                }
                Some(Credentials {
                    username: user.value(),
                    password: pw.text.clone(),
                })
            }
            None => None,
        },
        None => None,
    };
    Ok((req, creds))
}

/// Reads a SOAP response (client side): the envelope response or a SOAP fault. Missing fields
/// read as empty; the caller decides what it needs.
pub fn parse_soap_response(xml: &str) -> Result<SoapReply, EnvelopeError> {
    let (el, _) = soap_body(xml)?;
    match el.name.as_str() {
        "Fault" => Ok(SoapReply::Fault(fault_from(&el)?)),
        RESPONSE_ELEMENT => {
            let v = fields_of(&el, false)?;
            let mut r = CoreResponse::default();
            let req = request_from(v);
            r.payload_type = req.payload_type;
            r.processing_mode = req.processing_mode;
            r.payload_id = req.payload_id;
            r.timestamp = req.timestamp;
            r.sender_id = req.sender_id;
            r.receiver_id = req.receiver_id;
            r.core_rule_version = req.core_rule_version;
            r.payload = (!req.payload.is_empty()).then_some(req.payload);
            r.error_code = el.child("ErrorCode")?.map(Node::value).unwrap_or_default();
            r.error_message = el
                .child("ErrorMessage")?
                .map(Node::value)
                .unwrap_or_default();
            Ok(SoapReply::Response(r))
        }
        other => Err(EnvelopeError::new(
            other,
            EnvelopeErrorKind::Unexpected,
            format!("the SOAP Body holds {other} instead of {RESPONSE_ELEMENT} or a Fault"),
        )),
    }
}

fn fault_from(el: &Node) -> Result<SoapFault, EnvelopeError> {
    // SOAP 1.2: Code/Value, Code/Subcode/Value, Reason/Text; SOAP 1.1 style faultcode /
    // faultstring is read too (some servers answer 1.1 faults).
    if let Some(code) = el.child("Code")? {
        let value = code.require("Value")?.value();
        let subcode = match code.child("Subcode")? {
            Some(s) => s.child("Value")?.map(Node::value),
            None => None,
        };
        let reason = match el.child("Reason")? {
            Some(r) => r
                .children
                .iter()
                .find(|c| c.name == "Text")
                .map(Node::value)
                .unwrap_or_else(|| r.value()),
            None => String::new(),
        };
        Ok(SoapFault {
            code: local(&value).to_owned(),
            subcode,
            reason,
        })
    } else if let Some(code) = el.child("faultcode")? {
        let v = code.value();
        let code = match local(&v) {
            "Client" => "Sender",
            "Server" => "Receiver",
            other => other,
        };
        Ok(SoapFault {
            code: code.to_owned(),
            subcode: None,
            reason: el
                .child("faultstring")?
                .map(Node::value)
                .unwrap_or_default(),
        })
    } else {
        Err(EnvelopeError::new(
            "Code",
            EnvelopeErrorKind::Missing,
            "missing from Fault",
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// MIME multipart/form-data

/// The form parts of a MIME request, in order (credentials as UserName / Password).
pub fn mime_request_parts(
    req: &CoreRequest,
    credentials: Option<&Credentials>,
) -> Vec<(&'static str, String)> {
    let v = req.values();
    let mut parts: Vec<(&'static str, String)> = FIELDS[..4]
        .iter()
        .zip(&v[..4])
        .map(|(n, v)| (*n, (*v).to_owned()))
        .collect();
    if let Some(c) = credentials {
        parts.push(("UserName", c.username.clone()));
        parts.push(("Password", c.password.clone()));
    }
    parts.extend(
        FIELDS[4..]
            .iter()
            .zip(&v[4..])
            .map(|(n, v)| (*n, (*v).to_owned())),
    );
    parts
}

/// The form parts of a MIME response.
pub fn mime_response_parts(resp: &CoreResponse) -> Vec<(&'static str, String)> {
    resp.fields()
        .into_iter()
        .map(|(n, v)| (n, v.to_owned()))
        .collect()
}

fn find_part<'a>(
    parts: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, EnvelopeError> {
    // Part names are matched ignoring case: some clients send PayloadId / SenderId.
    let mut it = parts.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
    let first = it.next();
    if first.is_some() && it.next().is_some() {
        return Err(EnvelopeError::new(
            name,
            EnvelopeErrorKind::Duplicate,
            "form part appears more than once",
        ));
    }
    Ok(first.map(|(_, v)| v.as_str()))
}

/// Reads the form parts of a MIME request (server side). Every envelope field is required.
pub fn parse_mime_request(
    parts: &[(String, String)],
) -> Result<(CoreRequest, Option<Credentials>), EnvelopeError> {
    let mut values = Vec::with_capacity(FIELDS.len());
    for f in FIELDS {
        let v = find_part(parts, f)?.ok_or_else(|| {
            EnvelopeError::new(f, EnvelopeErrorKind::Missing, "form part missing")
        })?;
        let v = if f == "Payload" {
            v.to_owned()
        } else {
            v.trim().to_owned()
        };
        if v.trim().is_empty() {
            return Err(EnvelopeError::new(
                f,
                EnvelopeErrorKind::Empty,
                "form part is empty",
            ));
        }
        values.push(v);
    }
    let creds = match (find_part(parts, "UserName")?, find_part(parts, "Password")?) {
        (Some(u), Some(p)) => Some(Credentials {
            username: u.trim().to_owned(),
            password: p.to_owned(),
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(EnvelopeError::new(
                "Password",
                EnvelopeErrorKind::Missing,
                "UserName given without Password",
            ));
        }
        (None, Some(_)) => {
            return Err(EnvelopeError::new(
                "UserName",
                EnvelopeErrorKind::Missing,
                "Password given without UserName",
            ));
        }
    };
    Ok((request_from(values), creds))
}

/// Reads the form parts of a MIME response (client side); absent parts read as empty.
pub fn parse_mime_response(parts: &[(String, String)]) -> Result<CoreResponse, EnvelopeError> {
    let get = |n: &str| -> Result<String, EnvelopeError> {
        Ok(find_part(parts, n)?
            .map(|v| v.trim().to_owned())
            .unwrap_or_default())
    };
    let payload = find_part(parts, "Payload")?
        .filter(|p| !p.trim().is_empty())
        .map(str::to_owned);
    Ok(CoreResponse {
        payload_type: get("PayloadType")?,
        processing_mode: get("ProcessingMode")?,
        payload_id: get("PayloadID")?,
        timestamp: get("TimeStamp")?,
        sender_id: get("SenderID")?,
        receiver_id: get("ReceiverID")?,
        core_rule_version: get("CORERuleVersion")?,
        payload,
        error_code: get("ErrorCode")?,
        error_message: get("ErrorMessage")?,
    })
}

/// Encodes form parts as a multipart/form-data body; returns the Content-Type (with its
/// boundary) and the body. The boundary is random and checked against the values.
pub fn encode_form_data<N: AsRef<str>, V: AsRef<str>>(parts: &[(N, V)]) -> (String, Vec<u8>) {
    let boundary = loop {
        let b = format!(
            "----CoreBoundary{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        if !parts.iter().any(|(_, v)| v.as_ref().contains(&b)) {
            break b;
        }
    };
    let mut out = String::new();
    for (name, value) in parts {
        let _ = write!(
            out,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
            name.as_ref(),
            value.as_ref()
        );
    }
    let _ = write!(out, "--{boundary}--\r\n");
    (
        format!("multipart/form-data; boundary={boundary}"),
        out.into_bytes(),
    )
}

/// The boundary parameter of a multipart Content-Type.
pub fn multipart_boundary(content_type: &str) -> Option<&str> {
    let mut params = content_type.split(';');
    let mime = params.next()?.trim();
    if !mime.to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"'))
    })
}

/// Decodes a multipart/form-data body into (name, value) pairs (values must be UTF-8 text).
pub fn decode_form_data(
    content_type: &str,
    body: &[u8],
) -> Result<Vec<(String, String)>, EnvelopeError> {
    let boundary = multipart_boundary(content_type).ok_or_else(|| {
        malformed(
            "Content-Type",
            format!("{content_type:?} is not multipart with a boundary"),
        )
    })?;
    let body = std::str::from_utf8(body)
        .map_err(|e| malformed("multipart body", format!("not UTF-8 text: {e}")))?;
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let Some(first) = body.find(&delim) else {
        return Err(malformed("multipart body", "the boundary never appears"));
    };
    let mut rest = &body[first + delim.len()..];
    loop {
        if rest.starts_with("--") {
            return Ok(parts);
        }
        let rest_part = rest
            .strip_prefix("\r\n")
            .or_else(|| rest.strip_prefix('\n'))
            .ok_or_else(|| malformed("multipart body", "no line break after a boundary"))?;
        let end = rest_part.find(&delim).ok_or_else(|| {
            malformed(
                "multipart body",
                "a part is not closed by a boundary (truncated?)",
            )
        })?;
        let part = &rest_part[..end];
        let part = part
            .strip_suffix("\r\n")
            .or_else(|| part.strip_suffix('\n'))
            .unwrap_or(part);
        let (head, value) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))
            .ok_or_else(|| {
                malformed(
                    "multipart body",
                    "a part has no blank line after its headers",
                )
            })?;
        let name = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                if !k.trim().eq_ignore_ascii_case("content-disposition") {
                    return None;
                }
                v.split(';').find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    (k.trim() == "name").then(|| v.trim().trim_matches('"').to_owned())
                })
            })
            .ok_or_else(|| malformed("multipart body", "a part has no Content-Disposition name"))?;
        parts.push((name, value.to_owned()));
        rest = &rest_part[end + delim.len()..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(payload: &str) -> CoreRequest {
        CoreRequest {
            payload_type: payload_type::X12_278_REQUEST.into(),
            processing_mode: REAL_TIME.into(),
            payload_id: "f81d4fae-7dec-11d0-a765-00a0c91e6bf6".into(),
            timestamp: "2026-11-23T18:30:00Z".into(),
            sender_id: "SENDER1".into(),
            receiver_id: "RECEIVER1".into(),
            core_rule_version: RULE_VERSION.into(),
            payload: payload.into(),
        }
    }

    const X12: &str = "ISA*00*          *00*          *ZZ*SENDER1        *ZZ*RECEIVER1      *261123*1830*^*00501*000000001*0*T*:~IEA*0*000000001~";

    #[test]
    fn soap_request_round_trip_with_and_without_credentials() {
        let r = req(X12);
        let creds = Credentials {
            username: "user<1>".into(),
            password: "p&ss\"w]]>rd".into(),
        };
        let xml = build_soap_request(&r, Some(&creds));
        assert!(
            xml.contains("UsernameToken") && xml.contains("#PasswordText"),
            "{xml}"
        );
        assert!(xml.contains(CORE_NS));
        let (back, c) = parse_soap_request(&xml).unwrap();
        assert_eq!(back, r);
        assert_eq!(c, Some(creds));
        let xml = build_soap_request(&r, None);
        assert!(
            !xml.contains("Security") && !xml.contains("Header"),
            "{xml}"
        );
        let (back, c) = parse_soap_request(&xml).unwrap();
        assert_eq!(back, r);
        assert_eq!(c, None);
    }

    #[test]
    fn payload_with_cdata_end_survives() {
        let p = "ISA*a]]>b]]]]>c~\r\nIEA*x~\n";
        let r = req(p);
        let xml = build_soap_request(&r, None);
        assert_eq!(parse_soap_request(&xml).unwrap().0.payload, p);
        let resp = CoreResponse::answer(
            &r,
            payload_type::X12_278_RESPONSE,
            Some(p.into()),
            "Success",
            "ok",
        );
        match parse_soap_response(&build_soap_response(&resp)).unwrap() {
            SoapReply::Response(back) => assert_eq!(back, resp),
            f => panic!("{f:?}"),
        }
    }

    #[test]
    fn tolerant_of_prefixes_whitespace_and_escaped_payload() {
        let xml = format!(
            r#"<?xml version="1.0"?>
<S:Envelope xmlns:S="{SOAP12_NS}">
  <S:Header/>
  <S:Body>
    <COREEnvelopeRealTimeRequest xmlns="{CORE_NS}">
      <PayloadType> X12_278_Request_005010X217E1_2 </PayloadType>
      <ProcessingMode>RealTime</ProcessingMode>
      <PayloadID>f81d4fae-7dec-11d0-a765-00a0c91e6bf6</PayloadID>
      <TimeStamp>2026-11-23T18:30:00Z</TimeStamp>
      <SenderID>SENDER1</SenderID>
      <ReceiverID>RECEIVER1</ReceiverID>
      <CORERuleVersion>2.2.0</CORERuleVersion>
      <Payload>
        ISA*a&amp;b&lt;c&#62;~
      </Payload>
    </COREEnvelopeRealTimeRequest>
  </S:Body>
</S:Envelope>"#
        );
        let (r, c) = parse_soap_request(&xml).unwrap();
        assert_eq!(r.payload_type, payload_type::X12_278_REQUEST);
        assert_eq!(r.payload, "ISA*a&b<c>~");
        assert!(c.is_none());
        assert!(r.check().is_ok());
    }

    #[test]
    fn clear_errors_for_missing_and_malformed() {
        let xml =
            build_soap_request(&req(X12), None).replace("<cor:SenderID>SENDER1</cor:SenderID>", "");
        let e = parse_soap_request(&xml).unwrap_err();
        assert_eq!(e.element, "SenderID");
        assert_eq!(e.error_code().as_deref(), Some("SenderIDRequired"));
        let xml = build_soap_request(&req(X12), None)
            .replace("<cor:Payload>", "<cor:Payload></cor:Payload><x>");
        let e = parse_soap_request(&xml).unwrap_err();
        assert_eq!(e.kind, EnvelopeErrorKind::Malformed, "{e}");
        let e = parse_soap_request("<a><b></a>").unwrap_err();
        assert_eq!(e.kind, EnvelopeErrorKind::Malformed);
        assert!(e.to_string().contains("not well-formed"), "{e}");
        let e = parse_soap_request("").unwrap_err();
        assert!(e.to_string().contains("no XML element"), "{e}");
        let e = parse_soap_response("<Envelope><Body><Other/></Body></Envelope>").unwrap_err();
        assert_eq!(e.element, "Other");
        let xml = build_soap_request(&req(""), None);
        let e = parse_soap_request(&xml).unwrap_err();
        assert_eq!(e.error_code().as_deref(), Some("PayloadRequired"));
    }

    #[test]
    fn faults_round_trip_and_soap11_reads() {
        let f = SoapFault {
            code: "Receiver".into(),
            subcode: Some("cor:Busy".into()),
            reason: "down <for> maintenance".into(),
        };
        assert_eq!(
            parse_soap_response(&build_soap_fault(&f)).unwrap(),
            SoapReply::Fault(f)
        );
        let x = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>bad</faultstring></soap:Fault></soap:Body></soap:Envelope>"#;
        assert_eq!(
            parse_soap_response(x).unwrap(),
            SoapReply::Fault(SoapFault::sender("bad"))
        );
    }

    #[test]
    fn mime_round_trip() {
        let r = req("ISA*x~\r\nIEA~\r\n");
        let creds = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        let parts = mime_request_parts(&r, Some(&creds));
        let (ct, body) = encode_form_data(&parts);
        let decoded = decode_form_data(&ct, &body).unwrap();
        let (back, c) = parse_mime_request(&decoded).unwrap();
        assert_eq!(back, r);
        assert_eq!(c, Some(creds));
        let resp = CoreResponse::answer(
            &r,
            payload_type::X12_999_RESPONSE,
            Some("ISA~".into()),
            "Success",
            "",
        );
        let (ct, body) = encode_form_data(&mime_response_parts(&resp));
        assert_eq!(
            parse_mime_response(&decode_form_data(&ct, &body).unwrap()).unwrap(),
            resp
        );
        let e = decode_form_data(&ct, &body[..body.len() / 2]).unwrap_err();
        assert_eq!(e.kind, EnvelopeErrorKind::Malformed);
        let mut missing = decoded.clone();
        missing.retain(|(n, _)| n != "PayloadType");
        assert_eq!(
            parse_mime_request(&missing)
                .unwrap_err()
                .error_code()
                .as_deref(),
            Some("PayloadTypeRequired")
        );
    }

    #[test]
    fn check_flags_bad_values() {
        let mut r = req(X12);
        assert!(r.check().is_ok());
        r.payload_id = "not-a-uuid".into();
        assert_eq!(r.check().unwrap_err().0, error_code::PAYLOAD_ID_ILLEGAL);
        let mut r = req(X12);
        r.core_rule_version = "2.1.0".into();
        assert_eq!(r.check().unwrap_err().0, error_code::VERSION_MISMATCH);
    }
}
