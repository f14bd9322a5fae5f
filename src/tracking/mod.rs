//! Tracked authorization records: the lifecycle, the approval chain, the units ledger,
//! ingest of payer answers, alerts and clocks, reports.
//!
//! Every rule lives here; the store only keeps rows and applies a list of writes atomically.
//! No SQL and no wire format here: X12 goes through `x12`, rows through `store`.

pub mod alerts;
pub mod bench;
pub mod ingest;
pub mod ledger;
pub mod lifecycle;
pub mod outbox;
pub mod policy;
pub mod report;
pub mod scope;

use serde::Serialize;

use crate::domain::{AuthorizationRequest, CertificationType, LevelOfService, Service, TraceType};
use crate::store::{
    DecisionRow, EventRow, LineRow, NewEvent, NewOutbound, NewRequest, RequestChange, RequestRow,
    ServiceRow, Store, StoreError, VersionRow, Write,
};
use crate::x12::tx278;
use crate::x12::writer::{EnvelopeSettings, Stamp};

pub use lifecycle::State;
pub use policy::Policy;
pub use scope::{DEFAULT_TENANT, Scoped};

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Illegal(String),
    /// A service refused by the ledger, with the reason.
    #[error("refused: {0}")]
    Refused(String),
}

pub type Result<T> = std::result::Result<T, TrackingError>;

/// The time the rules use: the system clock (read at each use, for a long-running service), or
/// a fixed instant (for tests and replays).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    fixed: Option<i64>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock { fixed: None }
    }

    /// A clock stopped at `ms` (Unix milliseconds).
    pub fn fixed(ms: i64) -> Clock {
        Clock { fixed: Some(ms) }
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        self.fixed.unwrap_or_else(crate::store::now_ms)
    }

    /// `YYYY-MM-DD` (midnight UTC) or RFC 3339.
    pub fn parse(s: &str) -> std::result::Result<Clock, String> {
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            let t = d.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
            return Ok(Clock::fixed(t.timestamp_millis()));
        }
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Clock::fixed(t.timestamp_millis()))
            .map_err(|_| format!("time {s:?}: use YYYY-MM-DD or RFC 3339"))
    }

    pub fn today(&self) -> crate::domain::Date {
        Self::date_of(self.now_ms())
    }

    fn date_of(ms: i64) -> crate::domain::Date {
        crate::domain::Date::from_days_since_epoch(ms.div_euclid(86_400_000))
            .unwrap_or_else(|_| crate::domain::Date::new(2000, 1, 1).expect("valid"))
    }

    pub fn stamp(&self) -> Stamp {
        let now = self.now_ms();
        let rem = now.rem_euclid(86_400_000) / 1000;
        Stamp {
            date: Self::date_of(now),
            hour: (rem / 3600) as u8,
            minute: ((rem % 3600) / 60) as u8,
        }
    }
}

/// Formats Unix milliseconds as RFC 3339 (UTC).
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

/// Units are kept in hundredths (1.5 hours = 150).
pub fn to_centi(s: &str) -> std::result::Result<i64, String> {
    let s = s.trim();
    let bad = || format!("{s:?} is not a quantity (digits, at most two decimals)");
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || whole.len() > 12
    {
        return Err(bad());
    }
    let frac_trim = frac.trim_end_matches('0');
    if frac_trim.len() > 2 {
        return Err(bad());
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let f: i64 = format!("{frac_trim:0<2}").parse().map_err(|_| bad())?;
    Ok(w * 100 + f)
}

pub fn fmt_centi(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    if a.is_multiple_of(100) {
        format!("{sign}{}", a / 100)
    } else if a.is_multiple_of(10) {
        format!("{sign}{}.{}", a / 100, (a % 100) / 10)
    } else {
        format!("{sign}{}.{:02}", a / 100, a % 100)
    }
}

/// Everything known about one record.
#[derive(Debug, Clone, Serialize)]
pub struct RecordView {
    pub record: RequestRow,
    pub versions: Vec<VersionRow>,
    pub decisions: Vec<DecisionRow>,
    pub lines: Vec<ledger::LineBalance>,
    pub services: Vec<ServiceRow>,
    pub followers: Vec<String>,
    pub history: Vec<EventRow>,
}

/// The service that applies the rules over a store.
pub struct Tracker {
    pub store: Store,
    pub policy: Policy,
    pub clock: Clock,
}

/// How a new record relates to an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// A denied (or rejected) request corrected and sent again.
    Resubmission,
    /// An appeal of a denial (certification type 1 immediate or 2 standard).
    Appeal,
    /// A renewal of a certification (certification type R).
    Renewal,
    /// An extension of a certification (certification type 4).
    Extension,
}

impl Link {
    pub fn as_str(self) -> &'static str {
        match self {
            Link::Resubmission => "resubmission",
            Link::Appeal => "appeal",
            Link::Renewal => "renewal",
            Link::Extension => "extension",
        }
    }
}

fn cents_of(d: &str) -> Option<i64> {
    to_centi(d).ok()
}

/// Facts of a request the records keep beside the body.
pub struct Facts {
    pub payer: String,
    pub service_type: String,
    pub urgency: &'static str,
    pub cost_cents: i64,
}

pub fn facts(r: &AuthorizationRequest) -> Facts {
    let payer = r
        .umo
        .id
        .as_ref()
        .map(|i| i.value().to_owned())
        .or_else(|| r.umo.name.as_ref().map(|n| n.as_str().to_owned()))
        .unwrap_or_else(|| "unknown".into());
    let service_type = r
        .event
        .review
        .service_type
        .as_ref()
        .map(|c| c.as_str().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let expedited = matches!(
        r.event.review.level_of_service,
        Some(LevelOfService::Urgent) | Some(LevelOfService::Emergency)
    ) || r.event.review.certification_type == CertificationType::AppealImmediate;
    let cost_cents = r
        .services
        .iter()
        .filter_map(|l| match &l.service {
            Some(Service::Professional { charge, .. })
            | Some(Service::Institutional { charge, .. })
            | Some(Service::Dental { charge, .. }) => {
                charge.as_ref().and_then(|c| cents_of(c.as_str()))
            }
            None => None,
        })
        .sum();
    Facts {
        payer,
        service_type,
        urgency: if expedited { "expedited" } else { "standard" },
        cost_cents,
    }
}

impl Tracker {
    /// Opens the store and reads the policy kept in it (the default when none is set).
    pub async fn open(url: &str, clock: Clock) -> Result<Tracker> {
        let store = Store::open(url).await?;
        let policy = match store.setting("policy").await? {
            Some(s) => Policy::from_json(&s).map_err(TrackingError::Invalid)?,
            None => Policy::default(),
        };
        Ok(Tracker {
            store,
            policy,
            clock,
        })
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub async fn set_policy(&mut self, policy: Policy) -> Result<()> {
        let value =
            serde_json::to_string(&policy).map_err(|e| TrackingError::Invalid(e.to_string()))?;
        self.store
            .apply(&[
                Write::SetSetting {
                    key: "policy".into(),
                    value: value.clone(),
                },
                self.event(
                    None,
                    "system",
                    "policy_changed",
                    None,
                    None,
                    None,
                    Some(value),
                ),
            ])
            .await?;
        self.policy = policy;
        Ok(())
    }

    pub async fn set_actor(&self, name: &str, role: &str, by: &str) -> Result<()> {
        if name.trim().is_empty() || role.trim().is_empty() {
            return Err(TrackingError::Invalid(
                "an actor needs a name and a role".into(),
            ));
        }
        self.store
            .apply(&[
                Write::SetActor {
                    name: name.into(),
                    role: role.into(),
                },
                self.event(
                    None,
                    by,
                    "actor_role_set",
                    None,
                    None,
                    Some(format!("{name} is {role}")),
                    None,
                ),
            ])
            .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn event(
        &self,
        request_id: Option<&str>,
        actor: &str,
        action: &str,
        from: Option<State>,
        to: Option<State>,
        reason: Option<String>,
        detail: Option<String>,
    ) -> Write {
        Write::Event(NewEvent {
            request_id: request_id.map(str::to_owned),
            at: self.now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            from_status: from.map(|s| s.as_str().to_owned()),
            to_status: to.map(|s| s.as_str().to_owned()),
            reason,
            detail,
        })
    }

    pub async fn record(&self, id: &str) -> Result<RequestRow> {
        self.store
            .request(id)
            .await?
            .ok_or_else(|| TrackingError::NotFound(format!("no record {id}")))
    }

    pub async fn body(&self, id: &str) -> Result<AuthorizationRequest> {
        let body = self
            .store
            .request_body(id, None)
            .await?
            .ok_or_else(|| TrackingError::NotFound(format!("no body for record {id}")))?;
        serde_json::from_str(&body)
            .map_err(|e| TrackingError::Invalid(format!("stored body of {id}: {e}")))
    }

    async fn role_of(&self, actor: &str) -> Result<String> {
        self.store.actor_role(actor).await?.ok_or_else(|| {
            TrackingError::Forbidden(format!(
                "{actor} has no role (add one with `priorauth actors add {actor} ROLE`)"
            ))
        })
    }

    async fn require_role(&self, actor: &str, roles: &[String], what: &str) -> Result<()> {
        let role = self.role_of(actor).await?;
        if roles.iter().any(|r| r == &role) {
            Ok(())
        } else {
            Err(TrackingError::Forbidden(format!(
                "{actor} ({role}) may not {what}: that needs one of {}",
                roles.join(", ")
            )))
        }
    }

    fn state(row: &RequestRow) -> Result<State> {
        State::parse(&row.status).map_err(TrackingError::Invalid)
    }

    fn check(from: State, to: State) -> Result<()> {
        from.check(to).map_err(TrackingError::Illegal)
    }

    fn change(&self, row: &RequestRow, to: Option<State>) -> RequestChange {
        RequestChange {
            id: row.id.clone(),
            expected_status: row.status.clone(),
            status: to.map(|s| s.as_str().to_owned()),
            at: self.now(),
            ..Default::default()
        }
    }

    /// Creates a draft record from a request; returns its id.
    pub async fn create(&self, request: &AuthorizationRequest, actor: &str) -> Result<String> {
        self.create_linked(DEFAULT_TENANT, request, actor, None, None, None)
            .await
    }

    /// Creates a draft record once per idempotency key: a retry with the same key returns the
    /// record the first call created (and `false`: nothing new).
    pub async fn create_once(
        &self,
        request: &AuthorizationRequest,
        actor: &str,
        key: &str,
    ) -> Result<(String, bool)> {
        self.create_once_in(DEFAULT_TENANT, request, actor, key)
            .await
    }

    /// `create_once` in a tenant: keys are per tenant, so one tenant's key never finds
    /// another tenant's record.
    pub(crate) async fn create_once_in(
        &self,
        tenant: &str,
        request: &AuthorizationRequest,
        actor: &str,
        key: &str,
    ) -> Result<(String, bool)> {
        if key.trim().is_empty() {
            return Err(TrackingError::Invalid(
                "an idempotency key cannot be empty".into(),
            ));
        }
        let scoped = if tenant == DEFAULT_TENANT {
            format!("records.create:{key}")
        } else {
            format!("records.create:{tenant}:{key}")
        };
        // Written first and read only on a conflict: a new key (the common case) costs no
        // read, and the unique key decides between racing callers.
        match self
            .create_linked(tenant, request, actor, None, None, Some(&scoped))
            .await
        {
            Ok(id) => Ok((id, true)),
            // The key exists (an earlier call, or a racing one): that call's record it is.
            Err(TrackingError::Store(StoreError::Conflict(_))) => {
                match self.store.idempotent_result(&scoped).await? {
                    Some(id) => Ok((id, false)),
                    None => Err(TrackingError::Invalid(format!(
                        "idempotency key {key:?} conflicted but holds no record"
                    ))),
                }
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn create_linked(
        &self,
        tenant: &str,
        request: &AuthorizationRequest,
        actor: &str,
        previous: Option<&RequestRow>,
        link: Option<Link>,
        idempotency_key: Option<&str>,
    ) -> Result<String> {
        let f = facts(request);
        let id = uuid::Uuid::new_v4().to_string();
        let body =
            serde_json::to_string(request).map_err(|e| TrackingError::Invalid(e.to_string()))?;
        let mut writes = vec![Write::InsertRequest(NewRequest {
            id: id.clone(),
            tenant: tenant.to_owned(),
            submitter_reference: request.submitter_reference.as_str().to_owned(),
            payer: f.payer,
            service_type: f.service_type,
            urgency: f.urgency.to_owned(),
            estimated_cost_cents: f.cost_cents,
            status: State::Draft.as_str().to_owned(),
            previous_id: previous.map(|p| p.id.clone()),
            original_id: previous.map(|p| p.original_id.clone().unwrap_or_else(|| p.id.clone())),
            link_kind: link.map(|l| l.as_str().to_owned()),
            body,
            created_by: actor.to_owned(),
            at: self.now(),
        })];
        writes.push(self.event(
            Some(&id),
            actor,
            "created",
            None,
            Some(State::Draft),
            link.map(|l| {
                format!(
                    "{} of {}",
                    l.as_str(),
                    previous.map(|p| p.id.as_str()).unwrap_or("")
                )
            }),
            None,
        ));
        if let (Some(p), Some(l)) = (previous, link) {
            writes.push(self.event(
                Some(&p.id),
                actor,
                &format!("{}_created", l.as_str()),
                None,
                None,
                Some(format!("followed by {id}")),
                None,
            ));
        }
        if let Some(key) = idempotency_key {
            writes.push(Write::Idempotency {
                key: key.to_owned(),
                result: id.clone(),
                at: self.now(),
            });
        }
        self.store.apply(&writes).await?;
        Ok(id)
    }

    /// The clinician sends a draft into the approval chain (or straight to ready when no
    /// step applies).
    pub async fn send_to_review(&self, id: &str, actor: &str) -> Result<State> {
        self.require_role(
            actor,
            &self.policy.drafter_roles,
            "send a request to review",
        )
        .await?;
        let row = self.record(id).await?;
        let from = Self::state(&row)?;
        let step = self.policy.next_step(0, row.estimated_cost_cents);
        let to = if step.is_some() {
            State::InternalReview
        } else {
            State::Ready
        };
        Self::check(from, to)?;
        let mut c = self.change(&row, Some(to));
        c.approval_step = Some(step.map(|s| s as i64));
        let reason = step.map(|s| format!("awaiting {}", self.policy.approval[s].role));
        self.store
            .apply(&[
                Write::ChangeRequest(c),
                self.event(
                    Some(id),
                    actor,
                    "sent_to_review",
                    Some(from),
                    Some(to),
                    reason,
                    None,
                ),
            ])
            .await?;
        Ok(to)
    }

    fn current_step(&self, row: &RequestRow) -> Result<usize> {
        let step = row.approval_step.ok_or_else(|| {
            TrackingError::Illegal(format!("record {} awaits no review step", row.id))
        })? as usize;
        if step >= self.policy.approval.len() {
            return Err(TrackingError::Invalid(format!(
                "record {} is at review step {step}, which the policy no longer has",
                row.id
            )));
        }
        Ok(step)
    }

    /// The reviewer of the current step approves: on to the next step that applies (e.g.
    /// finance above the cost threshold), or ready to send.
    pub async fn approve(&self, id: &str, actor: &str, reason: Option<String>) -> Result<State> {
        let row = self.record(id).await?;
        let from = Self::state(&row)?;
        if from != State::InternalReview {
            return Err(TrackingError::Illegal(format!(
                "record {id} is {from}, not in internal review"
            )));
        }
        let step = self.current_step(&row)?;
        let role = self.policy.approval[step].role.clone();
        self.require_role(actor, std::slice::from_ref(&role), "approve at this step")
            .await?;
        let next = self.policy.next_step(step + 1, row.estimated_cost_cents);
        let to = if next.is_some() {
            State::InternalReview
        } else {
            State::Ready
        };
        let mut c = self.change(&row, Some(to));
        c.approval_step = Some(next.map(|s| s as i64));
        let (action, why) = match next {
            Some(n) => (
                "forwarded",
                format!(
                    "approved by {role}; forwarded to {} (estimated cost {} above {})",
                    self.policy.approval[n].role,
                    fmt_centi(row.estimated_cost_cents),
                    self.policy.approval[n]
                        .above_cost_cents
                        .map(fmt_centi)
                        .unwrap_or_else(|| "0".into())
                ),
            ),
            None => ("approved_internally", format!("approved by {role}")),
        };
        let why = match reason {
            Some(r) => format!("{why}: {r}"),
            None => why,
        };
        self.store
            .apply(&[
                Write::ChangeRequest(c),
                self.event(
                    Some(id),
                    actor,
                    action,
                    Some(from),
                    Some(to),
                    Some(why),
                    None,
                ),
            ])
            .await?;
        Ok(to)
    }

    /// The reviewer of the current step denies: back to the clinician as a draft, with a reason.
    pub async fn deny(&self, id: &str, actor: &str, reason: &str) -> Result<State> {
        if reason.trim().is_empty() {
            return Err(TrackingError::Invalid("a denial needs a reason".into()));
        }
        let row = self.record(id).await?;
        let from = Self::state(&row)?;
        if from != State::InternalReview {
            return Err(TrackingError::Illegal(format!(
                "record {id} is {from}, not in internal review"
            )));
        }
        let step = self.current_step(&row)?;
        let role = self.policy.approval[step].role.clone();
        self.require_role(actor, std::slice::from_ref(&role), "deny at this step")
            .await?;
        let mut c = self.change(&row, Some(State::Draft));
        c.approval_step = Some(None);
        self.store
            .apply(&[
                Write::ChangeRequest(c),
                self.event(
                    Some(id),
                    actor,
                    "returned_to_clinician",
                    Some(from),
                    Some(State::Draft),
                    Some(reason.to_owned()),
                    None,
                ),
            ])
            .await?;
        Ok(State::Draft)
    }

    /// The clinician changes the request (a new body version); a ready record goes back to draft.
    pub async fn modify(
        &self,
        id: &str,
        request: &AuthorizationRequest,
        actor: &str,
    ) -> Result<i64> {
        self.require_role(actor, &self.policy.drafter_roles, "modify a request")
            .await?;
        let row = self.record(id).await?;
        let from = Self::state(&row)?;
        if !matches!(from, State::Draft | State::Ready) {
            return Err(TrackingError::Illegal(format!(
                "record {id} is {from}: only a draft or a ready request can be modified \
                 (after a payer's denial, resubmit it as a new version)"
            )));
        }
        let f = facts(request);
        if request.submitter_reference.as_str() != row.submitter_reference {
            return Err(TrackingError::Invalid(
                "a modification keeps the submitter reference (BHT03)".into(),
            ));
        }
        let mut c = self.change(&row, (from == State::Ready).then_some(State::Draft));
        c.new_body = Some(
            serde_json::to_string(request).map_err(|e| TrackingError::Invalid(e.to_string()))?,
        );
        c.version_by = Some(actor.to_owned());
        let _ = f;
        self.store
            .apply(&[
                Write::ChangeRequest(c),
                self.event(
                    Some(id),
                    actor,
                    "modified",
                    Some(from),
                    Some(State::Draft),
                    Some(format!("version {}", row.version + 1)),
                    None,
                ),
            ])
            .await?;
        Ok(row.version + 1)
    }

    /// The record `id` if `actor` may send it and it is ready (approved through the chain).
    pub(crate) async fn ready_to_send(&self, id: &str, actor: &str) -> Result<(RequestRow, State)> {
        self.require_role(
            actor,
            &self.policy.sender_roles,
            "send a request to the payer",
        )
        .await?;
        let row = self.record(id).await?;
        let from = Self::state(&row)?;
        if from != State::Ready {
            return Err(TrackingError::Illegal(format!(
                "record {id} is {from}: only a request approved through the chain (ready) is sent"
            )));
        }
        Ok((row, from))
    }

    /// Sends a ready record to the payer by hand: the 278 is written with control numbers from
    /// the store, kept as an outbound message, and the record becomes `submitted`, atomically;
    /// the caller hands the bytes over (`records submit`). Nothing is queued in the outbox:
    /// [`Tracker::submit_to`] queues the message for the outbox worker instead.
    pub async fn submit(
        &self,
        id: &str,
        actor: &str,
        settings: &EnvelopeSettings,
        destination: Option<&str>,
    ) -> Result<Vec<u8>> {
        let (row, from) = self.ready_to_send(id, actor).await?;
        let request = self.body(id).await?;
        let (raw, used, trace) = self.write_278(&request, settings).await?;
        let mut c = self.change(&row, Some(State::Submitted));
        c.submitted_at = Some(self.now());
        self.store
            .apply(&[
                Write::Outbound(NewOutbound {
                    request_id: Some(id.to_owned()),
                    format: "x12-278".into(),
                    partner: settings.partner(),
                    destination: destination.map(str::to_owned),
                    interchange_control: used.0,
                    group_control: used.1,
                    transaction_control: used.2,
                    submitter_reference: Some(row.submitter_reference.clone()),
                    trace_number: trace,
                    raw: raw.clone(),
                    at: self.now(),
                    outbox: None,
                }),
                Write::ChangeRequest(c),
                self.event(
                    Some(id),
                    actor,
                    "submitted",
                    Some(from),
                    Some(State::Submitted),
                    None,
                    Some(format!(
                        "ISA13 {} GS06 {} ST02 {} to {}",
                        used.0.unwrap_or(0),
                        used.1.unwrap_or(0),
                        used.2.unwrap_or(0),
                        settings.partner()
                    )),
                ),
            ])
            .await?;
        Ok(raw)
    }

    /// Writes the 278 of `request` with control numbers reserved durably up front (one
    /// interchange, one group, one transaction set; a number taken and then not used is
    /// skipped, never reused). Returns the bytes, the numbers used and the current trace number.
    pub(crate) async fn write_278(
        &self,
        request: &AuthorizationRequest,
        settings: &EnvelopeSettings,
    ) -> Result<(Vec<u8>, Used, Option<String>)> {
        let partner = settings.partner();
        let max = crate::x12::writer::ControlKind::Interchange.max() as i64;
        let mut reserved = [0i64; 3];
        for (slot, kind) in reserved
            .iter_mut()
            .zip(["interchange", "group", "transaction"])
        {
            *slot = self.store.next_control_number(&partner, kind, max).await?;
        }
        let controls = Recording::new(Reserved(reserved));
        let raw = tx278::encode_request(request, settings, &controls, self.clock.stamp())
            .map_err(|e| TrackingError::Invalid(format!("cannot write the 278: {e}")))?;
        Ok((raw, controls.used(), current_trace(request)))
    }

    /// Cancels a record that is not closed.
    pub async fn cancel(&self, id: &str, actor: &str, reason: &str) -> Result<()> {
        let row = self.record(id).await?;
        let from = Self::state(&row)?;
        Self::check(from, State::Cancelled)?;
        self.store
            .apply(&[
                Write::ChangeRequest(self.change(&row, Some(State::Cancelled))),
                self.event(
                    Some(id),
                    actor,
                    "cancelled",
                    Some(from),
                    Some(State::Cancelled),
                    Some(reason.to_owned()),
                    None,
                ),
            ])
            .await?;
        Ok(())
    }

    /// A new record following `id`: a resubmission after a denial or rejection, an appeal
    /// of a denial, a renewal or extension of a certification. The new request's
    /// certification type must fit (appeal 1/2, renewal R, extension 4). Returns the new id.
    pub async fn follow(
        &self,
        id: &str,
        link: Link,
        request: &AuthorizationRequest,
        actor: &str,
    ) -> Result<String> {
        self.require_role(actor, &self.policy.drafter_roles, "draft a request")
            .await?;
        let row = self.record(id).await?;
        let from = Self::state(&row)?;
        let ct = request.event.review.certification_type;
        let ok_state = match link {
            Link::Resubmission => matches!(from, State::Denied | State::Rejected),
            Link::Appeal => {
                from == State::Denied || from == State::PartiallyApproved || from == State::Modified
            }
            Link::Renewal | Link::Extension => from.certified() || from == State::Expired,
        };
        if !ok_state {
            return Err(TrackingError::Illegal(format!(
                "a {} cannot follow a record in {from}",
                link.as_str()
            )));
        }
        let ok_type = match link {
            Link::Resubmission => !matches!(
                ct,
                CertificationType::AppealImmediate | CertificationType::AppealStandard
            ),
            Link::Appeal => matches!(
                ct,
                CertificationType::AppealImmediate | CertificationType::AppealStandard
            ),
            Link::Renewal => ct == CertificationType::Renewal,
            Link::Extension => ct == CertificationType::Extension,
        };
        if !ok_type {
            return Err(TrackingError::Invalid(format!(
                "a {} needs certification type (UM02) {}; the request has {}",
                link.as_str(),
                match link {
                    Link::Resubmission => "other than an appeal",
                    Link::Appeal => "1 (appeal immediate) or 2 (appeal standard)",
                    Link::Renewal => "R (renewal)",
                    Link::Extension => "4 (extension)",
                },
                ct.code()
            )));
        }
        if matches!(link, Link::Renewal | Link::Extension | Link::Appeal) {
            let cert = row.certification_number.clone();
            let has_ref =
                request.event.references.iter().any(|r| {
                    r.qualifier.as_str() == "BB" && Some(r.value.as_str()) == cert.as_deref()
                });
            if cert.is_some() && !has_ref && link != Link::Appeal {
                return Err(TrackingError::Invalid(format!(
                    "a {} names the original certification: add REF*BB {} to the event",
                    link.as_str(),
                    cert.unwrap_or_default()
                )));
            }
        }
        if request.submitter_reference.as_str() == row.submitter_reference {
            return Err(TrackingError::Invalid(
                "the new request needs its own submitter reference (BHT03)".into(),
            ));
        }
        self.create_linked(&row.tenant, request, actor, Some(&row), Some(link), None)
            .await
    }

    pub async fn list(&self, status: Option<State>) -> Result<Vec<RequestRow>> {
        Ok(self
            .store
            .list_requests(&crate::store::RequestFilter {
                status: status.map(|s| s.as_str().to_owned()),
                ..Default::default()
            })
            .await?)
    }

    pub async fn show(&self, id: &str) -> Result<RecordView> {
        let record = self.record(id).await?;
        let lines: Vec<LineRow> = self.store.current_lines(id).await?;
        let services = self.store.services(id).await?;
        Ok(RecordView {
            versions: self.store.versions(id).await?,
            decisions: self.store.decisions(id).await?,
            lines: ledger::balances(&lines, &services),
            followers: self
                .store
                .followers(id)
                .await?
                .into_iter()
                .map(|r| r.id)
                .collect(),
            history: self.store.events(id).await?,
            services,
            record,
        })
    }
}

/// The control numbers an interchange used: ISA13, GS06, ST02.
pub(crate) type Used = (Option<i64>, Option<i64>, Option<i64>);

/// The current trace number (TRN02 of a TRN01 1) of a request.
pub(crate) fn current_trace(request: &AuthorizationRequest) -> Option<String> {
    request
        .event
        .trace_numbers
        .iter()
        .find(|t| t.kind == TraceType::Current)
        .map(|t| t.reference.as_str().to_owned())
}

/// Control numbers reserved in the store beforehand: one of each kind.
struct Reserved([i64; 3]);

impl crate::x12::writer::ControlNumbers for Reserved {
    fn next(
        &self,
        kind: crate::x12::writer::ControlKind,
        _partner: &str,
    ) -> std::result::Result<u64, String> {
        use crate::x12::writer::ControlKind;
        Ok(match kind {
            ControlKind::Interchange => self.0[0],
            ControlKind::Group => self.0[1],
            ControlKind::Transaction => self.0[2],
        } as u64)
    }
}

/// Remembers the control numbers handed out while writing one interchange.
struct Recording<C> {
    inner: C,
    used: std::sync::Mutex<(Option<i64>, Option<i64>, Option<i64>)>,
}

impl<C> Recording<C> {
    fn new(inner: C) -> Self {
        Recording {
            inner,
            used: std::sync::Mutex::new((None, None, None)),
        }
    }
    fn used(&self) -> (Option<i64>, Option<i64>, Option<i64>) {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<C: crate::x12::writer::ControlNumbers> crate::x12::writer::ControlNumbers for Recording<C> {
    fn next(
        &self,
        kind: crate::x12::writer::ControlKind,
        partner: &str,
    ) -> std::result::Result<u64, String> {
        use crate::x12::writer::ControlKind;
        let v = self.inner.next(kind, partner)?;
        let mut u = self.used.lock().unwrap_or_else(|e| e.into_inner());
        match kind {
            ControlKind::Interchange => u.0 = Some(v as i64),
            ControlKind::Group => u.1 = Some(v as i64),
            ControlKind::Transaction => u.2 = Some(v as i64),
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centi_units() {
        assert_eq!(to_centi("12").unwrap(), 1200);
        assert_eq!(to_centi("1.5").unwrap(), 150);
        assert_eq!(to_centi("0.25").unwrap(), 25);
        assert_eq!(to_centi("12.00").unwrap(), 1200);
        assert!(to_centi("1.234").is_err());
        assert!(to_centi("-1").is_err());
        assert!(to_centi("abc").is_err());
        assert!(to_centi("").is_err());
        assert_eq!(fmt_centi(1200), "12");
        assert_eq!(fmt_centi(150), "1.5");
        assert_eq!(fmt_centi(25), "0.25");
    }

    #[test]
    fn clock_parses() {
        let c = Clock::parse("2027-03-01").unwrap();
        assert_eq!(c.today().to_string(), "2027-03-01");
        assert!(Clock::parse("yesterday").is_err());
    }
}
