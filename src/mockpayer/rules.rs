//! The mock payer's rules file: ordered decision rules, fault modes, OAuth settings.
//!
//! ```toml
//! notify_url = "http://127.0.0.1:8080/inbound"   # optional
//! require_token = false
//! [[rule]]
//! match = { procedure = "72148" }
//! action = "deny"
//! reason = "0U"
//! ```
//! A request is decided line by line: each service line takes the first rule that matches it
//! (request-level criteria and the line's procedure and units); a line no rule matches is
//! approved. A request without service lines is matched on its request-level criteria only.

use std::path::Path;

use serde::Deserialize;

use crate::domain::{CertificationType, Code, Decimal, FollowUpAction, Level};

/// Everything the mock payer is told to do. `Rules::default()` approves everything.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Where final decisions of pended authorizations are POSTed.
    #[serde(default)]
    pub notify_url: Option<String>,
    /// The bearer credential sent with notifications (a gateway API key or access token); set
    /// by `--notify-bearer-file` or by `serve` for its built-in mock, never from the file.
    #[serde(skip)]
    pub notify_bearer: Option<NotifyBearer>,
    /// The `/fhir` endpoints ask for `Authorization: Bearer <token from /oauth/token>`.
    #[serde(default)]
    pub require_token: bool,
    /// PAS bundles must pass the guide's rules (`fhir::validate_bundle`) besides being readable.
    #[serde(default)]
    pub strict_pas: bool,
    /// Lifetime of an issued access token (expires_in), seconds.
    #[serde(default = "default_ttl")]
    pub token_ttl_s: u64,
    /// Prefix of the certification numbers the mock issues (HCR02, preAuthRef).
    #[serde(default = "default_prefix")]
    pub certification_prefix: String,
    #[serde(default)]
    pub oauth: OAuth,
    #[serde(default)]
    pub core: CoreAuth,
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
}

/// A bearer credential whose `Debug` never shows it.
#[derive(Clone)]
pub struct NotifyBearer(pub String);

impl std::fmt::Debug for NotifyBearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NotifyBearer(***)")
    }
}

fn default_ttl() -> u64 {
    300
}

fn default_prefix() -> String {
    "MOCK".into()
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            notify_url: None,
            notify_bearer: None,
            require_token: false,
            strict_pas: false,
            token_ttl_s: default_ttl(),
            certification_prefix: default_prefix(),
            oauth: OAuth::default(),
            core: CoreAuth::default(),
            rules: vec![],
            faults: vec![],
        }
    }
}

/// CORE credentials (WS-Security UsernameToken, or the MIME UserName / Password parts) the
/// `/core` endpoint requires; none configured accepts any or none.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreAuth {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

/// Who may get a token at `/oauth/token`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth {
    /// Client credentials grant: the client id and secret accepted.
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    /// SMART Backend Services: the client id the JWT assertion names (iss and sub).
    #[serde(default)]
    pub smart_client_id: Option<String>,
    /// The client's public key (PEM, RSA or EC) the assertion is verified with.
    #[serde(default)]
    pub smart_public_key_pem: Option<String>,
    /// Or the path of that PEM file (read when the rules are loaded).
    #[serde(default)]
    pub smart_public_key_file: Option<String>,
    /// RS384 (default) or ES384.
    #[serde(default)]
    pub smart_algorithm: Option<String>,
}

/// What a rule or a fault applies to. Every criterion given must hold; none given matches all.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// The service line's procedure code (SV101-2 / SV202-2 / SV301-2, Claim.item.productOrService).
    #[serde(default)]
    pub procedure: Option<String>,
    /// The patient's member id (2010C NM109, Coverage member id).
    #[serde(default)]
    pub member: Option<String>,
    /// The line's units (SV104 / SV205 / SV306, else its HSD02) are above this.
    #[serde(default)]
    pub units_above: Option<f64>,
    /// The payer: the UMO's id (2010A NM109, the insurer's identifier) or the CORE ReceiverID / ISA08.
    #[serde(default)]
    pub payer: Option<String>,
    /// UM02 of the event (or of the line): word or X12 code.
    #[serde(default)]
    pub certification_type: Option<CertificationType>,
    /// `core` or `pas` (for faults mostly).
    #[serde(default)]
    pub channel: Option<super::Channel>,
}

impl Match {
    /// Whether the match needs to look inside the payload (anything but the channel).
    pub fn needs_payload(&self) -> bool {
        self.procedure.is_some()
            || self.member.is_some()
            || self.units_above.is_some()
            || self.payer.is_some()
            || self.certification_type.is_some()
    }
}

/// A decision the mock can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A1, certified in total.
    Approve,
    /// A2 with `approved_units`.
    Partial,
    /// A6 with `approved_units` and/or a different procedure `code`.
    Modify,
    /// A3 with HCR03 `reason`.
    Deny,
    /// AAA at request level (`aaa`, `follow_up`, `level`): no review took place.
    Reject,
    /// A4, then `then` after `after_ms`.
    Pend,
}

/// One decision rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A name shown in /mock/received.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, rename = "match")]
    pub when: Match,
    pub action: Action,
    /// partial / modify: the units approved.
    #[serde(default)]
    pub approved_units: Option<Decimal>,
    /// modify: the procedure code approved instead of the one asked for.
    #[serde(default)]
    pub code: Option<Code>,
    /// deny (or any HCR): HCR03, the X12 review decision reason code.
    #[serde(default)]
    pub reason: Option<Code>,
    /// reject: AAA03, the reject reason code (15, 33, 72, 75...).
    #[serde(default)]
    pub aaa: Option<Code>,
    /// reject: AAA04 (word or code; default `correct_and_resubmit`).
    #[serde(default)]
    pub follow_up: Option<FollowUpAction>,
    /// reject: the loop the AAA goes in (default `event`).
    #[serde(default)]
    pub level: Option<Level>,
    /// pend: the final decision.
    #[serde(default)]
    pub then: Option<Action>,
    /// pend: how long until the final decision.
    #[serde(default)]
    pub after_ms: Option<u64>,
    /// A payer message (MSG / processNote) added to the decision.
    #[serde(default)]
    pub message: Option<String>,
}

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer normally, after `ms`.
    Slow,
    /// Answer HTTP `status` (500, 429 or 503; 429 and 503 carry Retry-After: `retry_after` s).
    Status,
    /// Close the connection without an answer.
    Drop,
    /// A 200 whose body is not valid XML / JSON / X12.
    Malformed,
    /// A 278 response whose BHT03 and TRN (and the CORE PayloadID, the PAS identifiers)
    /// do not match the request.
    WrongControl,
    /// CORE envelope ErrorCode ReceiverServerBusy.
    CoreBusy,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Slow => "slow",
            FaultKind::Status => "status",
            FaultKind::Drop => "drop",
            FaultKind::Malformed => "malformed",
            FaultKind::WrongControl => "wrong_control",
            FaultKind::CoreBusy => "core_busy",
        }
    }
    /// Decided before the payload is read: such a fault never creates an authorization.
    pub fn before_payload(self, status: Option<u16>) -> bool {
        match self {
            FaultKind::CoreBusy => true,
            FaultKind::Status => matches!(status, Some(429 | 503)),
            _ => false,
        }
    }
}

/// One fault mode.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub kind: FaultKind,
    #[serde(default, rename = "match")]
    pub when: Match,
    /// Only the first N matching requests.
    #[serde(default)]
    pub times: Option<u64>,
    /// Every Nth matching request (the Nth, 2Nth...).
    #[serde(default)]
    pub every: Option<u64>,
    /// slow: the delay.
    #[serde(default)]
    pub ms: Option<u64>,
    /// status: the HTTP status.
    #[serde(default)]
    pub status: Option<u16>,
    /// status 429 / 503: Retry-After seconds.
    #[serde(default)]
    pub retry_after: Option<u64>,
}

/// Why a rules file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("rules: {0}")]
    Toml(String),
    #[error("rules: {0}")]
    Invalid(String),
}

impl Rules {
    /// Reads and checks a rules file.
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|e| RulesError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        let at = path.display();
        let mut r = Rules::parse(&text).map_err(|e| match e {
            RulesError::Toml(m) => RulesError::Toml(format!("{at}: {m}")),
            RulesError::Invalid(m) => RulesError::Invalid(format!("{at}: {m}")),
            other => other,
        })?;
        if let Some(file) = r.oauth.smart_public_key_file.clone() {
            let p = match path.parent() {
                Some(dir) if Path::new(&file).is_relative() => dir.join(&file),
                _ => Path::new(&file).to_path_buf(),
            };
            let pem = std::fs::read_to_string(&p).map_err(|e| RulesError::Io {
                path: p.display().to_string(),
                source: e,
            })?;
            r.oauth.smart_public_key_pem = Some(pem);
        }
        Ok(r)
    }

    /// Reads and checks rules from TOML text.
    pub fn parse(text: &str) -> Result<Rules, RulesError> {
        let r: Rules = toml::from_str(text).map_err(|e| RulesError::Toml(e.to_string()))?;
        r.check()?;
        Ok(r)
    }

    /// Refuses rules that cannot be carried out, naming the entry and the field.
    pub fn check(&self) -> Result<(), RulesError> {
        let bad = |what: String| Err(RulesError::Invalid(what));
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!(
                "rule[{i}]{}",
                rule.name
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            );
            check_action(&at, rule.action, rule)?;
            if let Some(m) = &rule.message
                && let Err(e) = crate::domain::Text::parse(m)
            {
                return bad(format!("{at}: message: {e}"));
            }
            match rule.action {
                Action::Pend => {
                    let Some(then) = rule.then else {
                        return bad(format!(
                            "{at}: action pend needs `then` (the final decision: approve, partial, modify, deny or reject)"
                        ));
                    };
                    if then == Action::Pend {
                        return bad(format!("{at}: `then` cannot be pend again"));
                    }
                    if rule.after_ms.is_none() {
                        return bad(format!(
                            "{at}: action pend needs `after_ms` (when the final decision is taken)"
                        ));
                    }
                    check_action(&at, then, rule)?;
                }
                _ => {
                    if rule.then.is_some() || rule.after_ms.is_some() {
                        return bad(format!(
                            "{at}: `then` and `after_ms` belong to action pend only"
                        ));
                    }
                }
            }
        }
        let p = &self.certification_prefix;
        if p.len() > 30 || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return bad(format!(
                "certification_prefix {p:?}: up to 30 letters, digits or dashes (it starts HCR02)"
            ));
        }
        for (i, f) in self.faults.iter().enumerate() {
            let at = format!("fault[{i}] ({})", f.kind.name());
            if f.times.is_some() && f.every.is_some() {
                return bad(format!("{at}: give `times` or `every`, not both"));
            }
            if f.every == Some(0) {
                return bad(format!("{at}: `every` must be at least 1"));
            }
            match f.kind {
                FaultKind::Slow if f.ms.is_none() => {
                    return bad(format!("{at}: kind slow needs `ms`"));
                }
                FaultKind::Status => match f.status {
                    Some(s) if (400..=599).contains(&s) => {}
                    Some(s) => {
                        return bad(format!(
                            "{at}: status {s} is not an error status (400 to 599; 500, 429 and 503 are the usual ones)"
                        ));
                    }
                    None => return bad(format!("{at}: kind status needs `status`")),
                },
                _ => {}
            }
        }
        match (
            &self.oauth.client_id.is_some(),
            &self.oauth.client_secret.is_some(),
        ) {
            (true, false) | (false, true) => {
                return bad("oauth: client_id and client_secret go together".into());
            }
            _ => {}
        }
        if self.core.username.is_some() != self.core.password.is_some() {
            return bad("core: username and password go together".into());
        }
        if let Some(a) = &self.oauth.smart_algorithm
            && !matches!(a.as_str(), "RS384" | "ES384")
        {
            return bad(format!(
                "oauth.smart_algorithm {a:?}: SMART Backend Services signs with RS384 or ES384"
            ));
        }
        if self.oauth.smart_client_id.is_some()
            && self.oauth.smart_public_key_pem.is_none()
            && self.oauth.smart_public_key_file.is_none()
        {
            return bad(
                "oauth: smart_client_id needs smart_public_key_pem or smart_public_key_file".into(),
            );
        }
        if let Some(u) = &self.notify_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return bad(format!(
                "notify_url {u:?}: an http:// or https:// URL is expected"
            ));
        }
        Ok(())
    }
}

fn check_action(at: &str, action: Action, rule: &Rule) -> Result<(), RulesError> {
    let bad = |what: String| Err(RulesError::Invalid(what));
    match action {
        Action::Partial if rule.approved_units.is_none() => {
            bad(format!("{at}: action partial needs `approved_units`"))
        }
        Action::Modify if rule.approved_units.is_none() && rule.code.is_none() => bad(format!(
            "{at}: action modify needs `approved_units` or `code` (what is approved instead)"
        )),
        Action::Reject if rule.aaa.is_none() => bad(format!(
            "{at}: action reject needs `aaa` (the AAA03 reject reason code, e.g. 72 invalid member id)"
        )),
        _ => Ok(()),
    }
}
