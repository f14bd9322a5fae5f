//! The payer directory: for each payer id, how to reach it (format, endpoint, envelope ids,
//! credentials by reference), how patiently (timeouts, retry policy, circuit breaker) and when to
//! warn about renewals. Read from a TOML file, then overridden from the environment
//! (`PRIORAUTH_PAYER__<ID>__<FIELD>=value`, `<ID>` upper-cased, `-` as `_`).
//!
//! Secrets are never written in the file: a credential is `{ env = "NAME" }` or
//! `{ file = "/path" }`, resolved when it is used, and a plain string there is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::tracking::policy::RenewalRule;
use crate::x12::writer::EnvelopeSettings;

#[derive(Debug, thiserror::Error)]
pub enum PayerError {
    #[error("payer directory {path}: {message}")]
    File { path: String, message: String },
    #[error("payer {payer}: {message}")]
    Invalid { payer: String, message: String },
    #[error("environment {name}: {message}")]
    Env { name: String, message: String },
    #[error("no route for payer {0:?} in the payer directory (and no \"*\" default entry)")]
    NoRoute(String),
    #[error("credential {what}: {message}")]
    Credential { what: String, message: String },
}

/// How a payer is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    /// X12 278 over CAQH CORE real-time connectivity (SOAP 1.2 or HTTP MIME multipart).
    #[serde(rename = "x12-core")]
    X12Core,
    /// X12 278 interchanges written to a folder; answers picked up from another.
    #[serde(rename = "x12-batch")]
    X12Batch,
    /// Da Vinci PAS: `Claim/$submit` and `Claim/$inquire` over HTTPS.
    #[serde(rename = "fhir-pas")]
    FhirPas,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::X12Core => "x12-core",
            Format::X12Batch => "x12-batch",
            Format::FhirPas => "fhir-pas",
        }
    }

    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "x12-core" => Ok(Format::X12Core),
            "x12-batch" => Ok(Format::X12Batch),
            "fhir-pas" => Ok(Format::FhirPas),
            other => Err(format!(
                "unknown format {other:?} (expected x12-core, x12-batch or fhir-pas)"
            )),
        }
    }
}

/// The CORE envelope style a client uses (a CORE server must accept both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CoreStyle {
    #[default]
    Soap,
    Mime,
}

/// A secret named, never written: an environment variable or a file (trailing newline trimmed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            env: Option<String>,
            file: Option<PathBuf>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Table(Table),
            // Only its shape matters: a secret written inline is refused, never read.
            Inline(#[allow(dead_code)] String),
        }
        match Raw::deserialize(d)? {
            Raw::Inline(_) => Err(serde::de::Error::custom(
                "credentials are given by reference only: { env = \"NAME\" } or { file = \"/path\" }, never inline",
            )),
            Raw::Table(Table {
                env: Some(e),
                file: None,
            }) => Ok(SecretRef::Env(e)),
            Raw::Table(Table {
                env: None,
                file: Some(f),
            }) => Ok(SecretRef::File(f)),
            Raw::Table(_) => Err(serde::de::Error::custom(
                "a credential names exactly one of env or file",
            )),
        }
    }
}

impl SecretRef {
    /// Reads the secret now (so a rotated file or variable is picked up without a restart).
    pub fn resolve(&self) -> Result<String, PayerError> {
        match self {
            SecretRef::Env(name) => std::env::var(name).map_err(|_| PayerError::Credential {
                what: format!("env {name}"),
                message: "the environment variable is not set".into(),
            }),
            SecretRef::File(path) => std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
                .map_err(|e| PayerError::Credential {
                    what: format!("file {}", path.display()),
                    message: e.to_string(),
                }),
        }
    }

    /// Where the secret lives, for messages (never its value).
    pub fn describe(&self) -> String {
        match self {
            SecretRef::Env(n) => format!("env {n}"),
            SecretRef::File(p) => format!("file {}", p.display()),
        }
    }
}

/// How the gateway authenticates to a payer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Auth {
    /// No credentials (a local mock payer, or mutual TLS handled outside).
    None,
    /// CORE: WS-Security UsernameToken (SOAP) or UserName/Password parts (MIME).
    CoreUsername {
        username: SecretRef,
        password: SecretRef,
    },
    /// OAuth2 client credentials grant.
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: SecretRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
        /// How the client authenticates to the token endpoint (HTTP Basic by default).
        #[serde(default)]
        client_auth: ClientAuth,
    },
    /// SMART Backend Services: a JWT assertion signed with our private key (RS384 or ES384).
    SmartBackend {
        token_url: String,
        client_id: String,
        /// PEM private key.
        private_key: SecretRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_id: Option<String>,
        /// RS384 (default) or ES384.
        #[serde(default = "default_alg")]
        algorithm: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
    },
}

/// OAuth2 client authentication at the token endpoint (RFC 6749 section 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// `Authorization: Basic` with client id and secret.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
}

fn default_alg() -> String {
    "RS384".into()
}

/// Retries, backoff and the circuit breaker for one payer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts before a message goes to the dead letters (a person can retry it from there).
    pub max_attempts: u32,
    /// The first backoff; each further failure doubles it, up to `max_backoff_ms`, with jitter.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// The least time before the same payload is transmitted again after an attempt whose
    /// outcome is unknown (CORE: at least 90 seconds).
    pub retransmit_min_ms: u64,
    /// Consecutive failures that open the circuit breaker.
    pub circuit_failures: u32,
    /// How long the breaker stays open before one trial send.
    pub circuit_open_ms: u64,
    /// How often a pended authorization is asked about again (PAS `$inquire`).
    pub inquire_every_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff_ms: 2_000,
            max_backoff_ms: 10 * 60_000,
            retransmit_min_ms: 90_000,
            circuit_failures: 5,
            circuit_open_ms: 60_000,
            inquire_every_ms: 15 * 60_000,
        }
    }
}

impl RetryPolicy {
    /// The backoff before attempt `attempt + 1` (attempt counts from 1), with up to 25 % jitter.
    pub fn backoff(&self, attempt: u32, retransmit: bool) -> Duration {
        let exp = self
            .initial_backoff_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
            .min(self.max_backoff_ms);
        let jitter = if exp >= 4 {
            fastrand::u64(0..=exp / 4)
        } else {
            0
        };
        let mut ms = exp.saturating_add(jitter);
        if retransmit {
            ms = ms.max(self.retransmit_min_ms);
        }
        Duration::from_millis(ms)
    }
}

/// Renewal alert thresholds for one payer (the records' policy, per payer).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Renewal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_units: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_before_end: Option<u32>,
}

/// One payer (or the `*` default route).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayerConfig {
    /// The payer id (2010A NM109 / the PAS insurer identifier), filled from the table key.
    #[serde(default, skip_serializing)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub format: Format,
    /// HTTPS endpoint (x12-core: the CORE URL; fhir-pas: the FHIR base, `Claim/$submit` is
    /// appended). Unused for x12-batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// ISA05/ISA06, ISA07/ISA08, GS02/GS03.
    #[serde(default = "zz")]
    pub sender_qualifier: String,
    #[serde(default = "default_sender")]
    pub sender_id: String,
    #[serde(default = "zz")]
    pub receiver_qualifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_sender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_receiver: Option<String>,
    /// ISA15 P rather than T.
    #[serde(default)]
    pub production: bool,
    /// CORE envelope SenderID / ReceiverID (default ISA06 / ISA08).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_sender_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_receiver_id: Option<String>,
    #[serde(default)]
    pub core_style: CoreStyle,
    /// SOAP action (receivers differ: `RealTimeTransaction` or the long CORE URL).
    #[serde(default = "default_soap_action")]
    pub soap_action: String,
    #[serde(default = "default_auth")]
    pub auth: Auth,
    /// Whole-exchange timeout; CORE real time aims at 20 s, so a little above that.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    #[serde(default)]
    pub retry: RetryPolicy,
    #[serde(default)]
    pub renewal: Renewal,
    /// x12-batch: where interchanges are written, and where answers (278, 999, TA1) arrive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound_dir: Option<PathBuf>,
}

fn zz() -> String {
    "ZZ".into()
}
fn default_sender() -> String {
    "PRIORAUTHGW".into()
}
fn default_soap_action() -> String {
    "RealTimeTransaction".into()
}
fn default_auth() -> Auth {
    Auth::None
}
fn default_timeout() -> u64 {
    25_000
}
fn default_connect_timeout() -> u64 {
    5_000
}

impl PayerConfig {
    /// A payer reached over CORE at `endpoint` with defaults for everything else.
    pub fn core(id: &str, endpoint: &str) -> PayerConfig {
        PayerConfig {
            id: id.to_owned(),
            name: None,
            format: Format::X12Core,
            endpoint: Some(endpoint.to_owned()),
            sender_qualifier: zz(),
            sender_id: default_sender(),
            receiver_qualifier: zz(),
            receiver_id: None,
            application_sender: None,
            application_receiver: None,
            production: false,
            core_sender_id: None,
            core_receiver_id: None,
            core_style: CoreStyle::Soap,
            soap_action: default_soap_action(),
            auth: Auth::None,
            timeout_ms: default_timeout(),
            connect_timeout_ms: default_connect_timeout(),
            retry: RetryPolicy::default(),
            renewal: Renewal::default(),
            outbound_dir: None,
            inbound_dir: None,
        }
    }

    /// The X12 envelope for this payer. ISA08 defaults to the payer id (cut to 15 characters).
    pub fn envelope(&self) -> EnvelopeSettings {
        let receiver = self
            .receiver_id
            .clone()
            .unwrap_or_else(|| self.id.chars().take(15).collect());
        EnvelopeSettings {
            sender_qualifier: self.sender_qualifier.clone(),
            sender_id: self.sender_id.clone(),
            receiver_qualifier: self.receiver_qualifier.clone(),
            receiver_id: receiver,
            application_sender: self.application_sender.clone(),
            application_receiver: self.application_receiver.clone(),
            production: self.production,
            ..EnvelopeSettings::default()
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// The renewal rule for this payer, to merge into the records' policy.
    pub fn renewal_rule(&self) -> Option<RenewalRule> {
        let r = &self.renewal;
        (r.remaining_units.is_some()
            || r.remaining_percent.is_some()
            || r.days_before_end.is_some())
        .then(|| RenewalRule {
            payer: (self.id != "*").then(|| self.id.clone()),
            service_type: None,
            remaining_units: r.remaining_units,
            remaining_percent: r.remaining_percent,
            days_before_end: r.days_before_end,
        })
    }

    fn check(&self) -> Result<(), String> {
        match self.format {
            Format::X12Core | Format::FhirPas => {
                let Some(url) = &self.endpoint else {
                    return Err(format!("format {} needs an endpoint", self.format.as_str()));
                };
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(format!("endpoint {url:?} is not an http(s) URL"));
                }
            }
            Format::X12Batch => {
                if self.outbound_dir.is_none() {
                    return Err("format x12-batch needs outbound_dir".into());
                }
            }
        }
        if self.sender_id.is_empty() || self.sender_id.len() > 15 {
            return Err(format!(
                "sender_id {:?} must be 1 to 15 characters (ISA06)",
                self.sender_id
            ));
        }
        if let Some(r) = &self.receiver_id
            && (r.is_empty() || r.len() > 15)
        {
            return Err(format!(
                "receiver_id {r:?} must be 1 to 15 characters (ISA08)"
            ));
        }
        if self.timeout_ms == 0 {
            return Err("timeout_ms must be above 0".into());
        }
        if self.retry.max_attempts == 0 {
            return Err("retry.max_attempts must be at least 1".into());
        }
        if let Auth::SmartBackend { algorithm, .. } = &self.auth
            && !matches!(algorithm.as_str(), "RS384" | "ES384")
        {
            return Err(format!(
                "auth.algorithm {algorithm:?}: SMART Backend Services signs with RS384 or ES384"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    payers: BTreeMap<String, toml::Value>,
}

/// Every payer the gateway can reach, by payer id.
#[derive(Debug, Clone, Default)]
pub struct PayerDirectory {
    payers: BTreeMap<String, PayerConfig>,
}

pub const ENV_PREFIX: &str = "PRIORAUTH_PAYER__";

impl PayerDirectory {
    /// Reads a directory file and applies the process environment's overrides.
    pub fn load(path: &Path) -> Result<PayerDirectory, PayerError> {
        let text = std::fs::read_to_string(path).map_err(|e| PayerError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text, std::env::vars()).map_err(|e| match e {
            PayerError::File { message, .. } => PayerError::File {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses a directory from TOML text, then applies `PRIORAUTH_PAYER__<ID>__<FIELD>`
    /// overrides from `env` (a field path may go deeper: `..__RETRY__MAX_ATTEMPTS`).
    pub fn parse(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<PayerDirectory, PayerError> {
        let file: File = toml::from_str(text).map_err(|e| PayerError::File {
            path: String::new(),
            message: e.to_string(),
        })?;
        let mut tables = file.payers;
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let mut parts = rest.split("__");
            let key = parts.next().unwrap_or_default();
            let path: Vec<String> = parts.map(|p| p.to_ascii_lowercase()).collect();
            if key.is_empty() || path.is_empty() {
                return Err(PayerError::Env {
                    name,
                    message: "expected PRIORAUTH_PAYER__<ID>__<FIELD>".into(),
                });
            }
            // The payer whose id matches ignoring case and '-'/'_' ("DEFAULT" names "*").
            let norm = |s: &str| s.to_ascii_uppercase().replace('-', "_");
            let id = if key == "DEFAULT" {
                "*".to_owned()
            } else {
                tables
                    .keys()
                    .find(|k| norm(k) == key)
                    .cloned()
                    .unwrap_or_else(|| key.to_owned())
            };
            let table = tables
                .entry(id)
                .or_insert_with(|| toml::Value::Table(Default::default()));
            set_path(table, &path, &value).map_err(|message| PayerError::Env {
                name: name.clone(),
                message,
            })?;
        }
        let mut payers = BTreeMap::new();
        for (id, value) in tables {
            let mut cfg: PayerConfig =
                value
                    .try_into()
                    .map_err(|e: toml::de::Error| PayerError::Invalid {
                        payer: id.clone(),
                        message: e.message().to_owned(),
                    })?;
            cfg.id = id.clone();
            cfg.check().map_err(|message| PayerError::Invalid {
                payer: id.clone(),
                message,
            })?;
            payers.insert(id, cfg);
        }
        Ok(PayerDirectory { payers })
    }

    /// A directory with one `*` entry that sends every payer to `cfg`.
    pub fn single(mut cfg: PayerConfig) -> PayerDirectory {
        cfg.id = "*".into();
        PayerDirectory {
            payers: BTreeMap::from([("*".to_owned(), cfg)]),
        }
    }

    pub fn insert(&mut self, cfg: PayerConfig) {
        self.payers.insert(cfg.id.clone(), cfg);
    }

    /// The route for a payer id: its own entry, else the `*` default.
    pub fn route(&self, payer: &str) -> Result<&PayerConfig, PayerError> {
        self.payers
            .get(payer)
            .or_else(|| self.payers.get("*"))
            .ok_or_else(|| PayerError::NoRoute(payer.to_owned()))
    }

    /// The entry named exactly `id` (`*` for the default).
    pub fn get(&self, id: &str) -> Option<&PayerConfig> {
        self.payers.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &PayerConfig> {
        self.payers.values()
    }

    pub fn is_empty(&self) -> bool {
        self.payers.is_empty()
    }

    /// The renewal rules of every payer that sets one.
    pub fn renewal_rules(&self) -> Vec<RenewalRule> {
        self.payers
            .values()
            .filter_map(PayerConfig::renewal_rule)
            .collect()
    }
}

/// Sets `table.a.b = value`, typing the value like TOML would (integer, boolean, else string).
fn set_path(table: &mut toml::Value, path: &[String], value: &str) -> Result<(), String> {
    let mut cur = table;
    for (i, key) in path.iter().enumerate() {
        let toml::Value::Table(t) = cur else {
            return Err(format!("{} is not a table", path[..i].join(".")));
        };
        if i + 1 == path.len() {
            let v = if let Ok(n) = value.parse::<i64>() {
                toml::Value::Integer(n)
            } else if let Ok(b) = value.parse::<bool>() {
                toml::Value::Boolean(b)
            } else {
                toml::Value::String(value.to_owned())
            };
            // Keep strings strings where the file had a string (ids that look like numbers).
            let v = match (t.get(key), v) {
                (Some(toml::Value::String(_)), toml::Value::Integer(n)) => {
                    toml::Value::String(n.to_string())
                }
                (_, v) => v,
            };
            t.insert(key.clone(), v);
            return Ok(());
        }
        cur = t
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(Default::default()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[payers.SYNTHPAYER01]
format = "x12-core"
endpoint = "https://core.payer.example/278"
receiver_id = "SYNTHPAYER01"
auth = { kind = "core-username", username = { env = "P1_USER" }, password = { file = "/run/secrets/p1" } }
retry = { max_attempts = 3 }
renewal = { remaining_units = 2, days_before_end = 14 }

[payers."*"]
format = "fhir-pas"
endpoint = "https://fhir.payer.example/r4"
"#;

    #[test]
    fn reads_routes_and_defaults() {
        let d = PayerDirectory::parse(SAMPLE, []).unwrap();
        let p = d.route("SYNTHPAYER01").unwrap();
        assert_eq!(p.format, Format::X12Core);
        assert_eq!(p.retry.max_attempts, 3);
        assert_eq!(p.retry.retransmit_min_ms, 90_000);
        assert_eq!(p.envelope().receiver_id, "SYNTHPAYER01");
        assert_eq!(d.route("OTHER").unwrap().format, Format::FhirPas);
        assert_eq!(d.renewal_rules().len(), 1);
    }

    #[test]
    fn inline_secret_is_refused() {
        let text = r#"
[payers.P]
format = "x12-core"
endpoint = "https://x.example"
auth = { kind = "core-username", username = "alice", password = { env = "X" } }
"#;
        let e = PayerDirectory::parse(text, []).unwrap_err().to_string();
        assert!(e.contains("by reference only"), "{e}");
    }

    #[test]
    fn environment_overrides_fields() {
        let env = [
            (
                "PRIORAUTH_PAYER__SYNTHPAYER01__ENDPOINT".to_owned(),
                "http://127.0.0.1:9/core".to_owned(),
            ),
            (
                "PRIORAUTH_PAYER__SYNTHPAYER01__RETRY__MAX_ATTEMPTS".to_owned(),
                "9".to_owned(),
            ),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let d = PayerDirectory::parse(SAMPLE, env).unwrap();
        let p = d.route("SYNTHPAYER01").unwrap();
        assert_eq!(p.endpoint.as_deref(), Some("http://127.0.0.1:9/core"));
        assert_eq!(p.retry.max_attempts, 9);
    }

    #[test]
    fn missing_endpoint_and_unknown_field_are_errors() {
        let e = PayerDirectory::parse("[payers.P]\nformat = \"fhir-pas\"\n", [])
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs an endpoint"), "{e}");
        let e = PayerDirectory::parse(
            "[payers.P]\nformat = \"fhir-pas\"\nendpoint = \"https://x\"\ntimeout = 3\n",
            [],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("timeout"), "{e}");
        assert!(PayerDirectory::parse("", []).unwrap().route("X").is_err());
    }

    #[test]
    fn client_auth_defaults_to_basic_and_reads_body() {
        let text = r#"
[payers.A]
format = "fhir-pas"
endpoint = "https://fhir.payer.example/r4"
auth = { kind = "client-credentials", token_url = "https://auth.example/token", client_id = "c", client_secret = { env = "S" } }

[payers.B]
format = "fhir-pas"
endpoint = "https://fhir.payer.example/r4"
auth = { kind = "client-credentials", token_url = "https://auth.example/token", client_id = "c", client_secret = { env = "S" }, client_auth = "body" }
"#;
        let d = PayerDirectory::parse(text, []).unwrap();
        let auth = |id: &str| match &d.get(id).unwrap().auth {
            Auth::ClientCredentials { client_auth, .. } => *client_auth,
            other => panic!("{other:?}"),
        };
        assert_eq!(auth("A"), ClientAuth::Basic);
        assert_eq!(auth("B"), ClientAuth::Body);
    }

    #[test]
    fn backoff_grows_and_respects_retransmit_floor() {
        let r = RetryPolicy {
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
            retransmit_min_ms: 90_000,
            ..RetryPolicy::default()
        };
        let b1 = r.backoff(1, false).as_millis();
        let b3 = r.backoff(3, false).as_millis();
        assert!((100..=125).contains(&b1), "{b1}");
        assert!((400..=500).contains(&b3), "{b3}");
        assert!(r.backoff(20, false).as_millis() <= 1_250);
        assert!(r.backoff(1, true).as_millis() >= 90_000);
    }
}
