//! Row types and the writes the store applies. Plain data: no rule lives here.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Transaction};

use super::{Result, StoreError, get};

pub(crate) const REQUEST_COLUMNS: &str = "id, submitter_reference, payer, service_type, urgency, \
    estimated_cost_cents, status, version, previous_id, original_id, link_kind, approval_step, \
    certification_number, start_date, end_date, created_by, created_at, updated_at, submitted_at, \
    decided_at, tenant";
pub(crate) const EVENT_COLUMNS: &str =
    "id, request_id, at, actor, action, from_status, to_status, reason, detail";
pub(crate) const SERVICE_COLUMNS: &str = "id, request_id, line, procedure_code, units, \
    service_date, provider, state, flag, corrects_id, actor, recorded_at, voided_at, void_reason";
pub(crate) const OUTBOUND_COLUMNS: &str = "id, request_id, format, partner, destination, \
    interchange_control, group_control, transaction_control, submitter_reference, trace_number, \
    created_at";

/// One tracked authorization record (the current state; the body is in its versions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRow {
    pub id: String,
    pub submitter_reference: String,
    pub payer: String,
    pub service_type: String,
    pub urgency: String,
    pub estimated_cost_cents: i64,
    pub status: String,
    pub version: i64,
    pub previous_id: Option<String>,
    pub original_id: Option<String>,
    pub link_kind: Option<String>,
    pub approval_step: Option<i64>,
    pub certification_number: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub submitted_at: Option<i64>,
    pub decided_at: Option<i64>,
    /// The tenant the record belongs to (a caller of another tenant never sees it).
    pub tenant: String,
}

impl RequestRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(RequestRow {
            id: get(r, 0)?,
            submitter_reference: get(r, 1)?,
            payer: get(r, 2)?,
            service_type: get(r, 3)?,
            urgency: get(r, 4)?,
            estimated_cost_cents: get(r, 5)?,
            status: get(r, 6)?,
            version: get(r, 7)?,
            previous_id: get(r, 8)?,
            original_id: get(r, 9)?,
            link_kind: get(r, 10)?,
            approval_step: get(r, 11)?,
            certification_number: get(r, 12)?,
            start_date: get(r, 13)?,
            end_date: get(r, 14)?,
            created_by: get(r, 15)?,
            created_at: get(r, 16)?,
            updated_at: get(r, 17)?,
            submitted_at: get(r, 18)?,
            decided_at: get(r, 19)?,
            tenant: get(r, 20)?,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub status: Option<String>,
    /// Only this tenant's records (all tenants when None).
    pub tenant: Option<String>,
    pub created_from: Option<i64>,
    pub created_to: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionRow {
    pub version: i64,
    pub created_by: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountRow {
    pub status: String,
    pub payer: String,
    pub service_type: String,
    pub count: i64,
}

/// One entry of the append-only event log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub request_id: Option<String>,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

impl EventRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(EventRow {
            id: get(r, 0)?,
            request_id: get(r, 1)?,
            at: get(r, 2)?,
            actor: get(r, 3)?,
            action: get(r, 4)?,
            from_status: get(r, 5)?,
            to_status: get(r, 6)?,
            reason: get(r, 7)?,
            detail: get(r, 8)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionRow {
    pub id: i64,
    pub key: String,
    pub request_id: String,
    pub inbound_message_id: Option<i64>,
    pub inbound_position: Option<i64>,
    pub status: String,
    pub action: Option<String>,
    pub certification_number: Option<String>,
    pub reason: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub body: String,
    pub decided_at: i64,
}

impl DecisionRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(DecisionRow {
            id: get(r, 0)?,
            key: get(r, 1)?,
            request_id: get(r, 2)?,
            inbound_message_id: get(r, 3)?,
            inbound_position: get(r, 4)?,
            status: get(r, 5)?,
            action: get(r, 6)?,
            certification_number: get(r, 7)?,
            reason: get(r, 8)?,
            start_date: get(r, 9)?,
            end_date: get(r, 10)?,
            body: get(r, 11)?,
            decided_at: get(r, 12)?,
        })
    }
}

/// The decision on one line, with what the ledger counts against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineRow {
    pub decision_key: String,
    pub request_id: String,
    pub line: i64,
    pub status: String,
    pub action: Option<String>,
    pub procedure_code: Option<String>,
    pub unit: Option<String>,
    /// Hundredths of a unit.
    pub authorized_units: Option<i64>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub certification_number: Option<String>,
}

impl LineRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(LineRow {
            decision_key: get(r, 0)?,
            request_id: get(r, 1)?,
            line: get(r, 2)?,
            status: get(r, 3)?,
            action: get(r, 4)?,
            procedure_code: get(r, 5)?,
            unit: get(r, 6)?,
            authorized_units: get(r, 7)?,
            start_date: get(r, 8)?,
            end_date: get(r, 9)?,
            certification_number: get(r, 10)?,
        })
    }
}

/// A service delivered against an authorization.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceRow {
    pub id: i64,
    pub request_id: String,
    pub line: Option<i64>,
    pub procedure_code: String,
    /// Hundredths of a unit.
    pub units: i64,
    pub service_date: String,
    pub provider: Option<String>,
    /// `recorded`, `flagged` or `voided`.
    pub state: String,
    pub flag: Option<String>,
    pub corrects_id: Option<i64>,
    pub actor: String,
    pub recorded_at: i64,
    pub voided_at: Option<i64>,
    pub void_reason: Option<String>,
}

impl ServiceRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(ServiceRow {
            id: get(r, 0)?,
            request_id: get(r, 1)?,
            line: get(r, 2)?,
            procedure_code: get(r, 3)?,
            units: get(r, 4)?,
            service_date: get(r, 5)?,
            provider: get(r, 6)?,
            state: get(r, 7)?,
            flag: get(r, 8)?,
            corrects_id: get(r, 9)?,
            actor: get(r, 10)?,
            recorded_at: get(r, 11)?,
            voided_at: get(r, 12)?,
            void_reason: get(r, 13)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboundRow {
    pub id: i64,
    pub request_id: Option<String>,
    pub format: String,
    pub partner: String,
    pub destination: Option<String>,
    pub interchange_control: Option<i64>,
    pub group_control: Option<i64>,
    pub transaction_control: Option<i64>,
    pub submitter_reference: Option<String>,
    pub trace_number: Option<String>,
    pub created_at: i64,
}

impl OutboundRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(OutboundRow {
            id: get(r, 0)?,
            request_id: get(r, 1)?,
            format: get(r, 2)?,
            partner: get(r, 3)?,
            destination: get(r, 4)?,
            interchange_control: get(r, 5)?,
            group_control: get(r, 6)?,
            transaction_control: get(r, 7)?,
            submitter_reference: get(r, 8)?,
            trace_number: get(r, 9)?,
            created_at: get(r, 10)?,
        })
    }
}

/// A received file: `received` (bytes stored, not yet applied), `applying`, `applied`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboundRow {
    pub id: i64,
    pub state: String,
    pub items_total: Option<i64>,
    pub items_applied: i64,
    /// Whether this call stored it (false: the same bytes were received before).
    pub new: bool,
}

/// One item read from a received file (a 278 response, a 999, a TA1) and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemRow {
    pub message_id: i64,
    pub position: i64,
    pub kind: String,
    pub request_id: Option<String>,
    pub outcome: String,
    pub reference: Option<String>,
    pub detail: Option<String>,
}

impl ItemRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(ItemRow {
            message_id: get(r, 0)?,
            position: get(r, 1)?,
            kind: get(r, 2)?,
            request_id: get(r, 3)?,
            outcome: get(r, 4)?,
            reference: get(r, 5)?,
            detail: get(r, 6)?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub request_id: Option<String>,
    pub kind: String,
    pub dedupe_key: String,
    pub message: String,
    pub due: Option<String>,
    pub created_at: i64,
    pub resolved_at: Option<i64>,
}

impl AlertRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(AlertRow {
            id: get(r, 0)?,
            request_id: get(r, 1)?,
            kind: get(r, 2)?,
            dedupe_key: get(r, 3)?,
            message: get(r, 4)?,
            due: get(r, 5)?,
            created_at: get(r, 6)?,
            resolved_at: get(r, 7)?,
        })
    }
}

/// A new record.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub id: String,
    pub tenant: String,
    pub submitter_reference: String,
    pub payer: String,
    pub service_type: String,
    pub urgency: String,
    pub estimated_cost_cents: i64,
    pub status: String,
    pub previous_id: Option<String>,
    pub original_id: Option<String>,
    pub link_kind: Option<String>,
    pub body: String,
    pub created_by: String,
    pub at: i64,
}

/// A change to a record, applied only when its status is still `expected_status`
/// (compare-and-set: a concurrent change makes the whole transaction fail).
#[derive(Debug, Clone, Default)]
pub struct RequestChange {
    pub id: String,
    pub expected_status: String,
    pub status: Option<String>,
    /// Some(None) clears the step.
    pub approval_step: Option<Option<i64>>,
    pub certification_number: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub submitted_at: Option<i64>,
    pub decided_at: Option<i64>,
    /// A new body version (JSON) by `version_by`.
    pub new_body: Option<String>,
    pub version_by: Option<String>,
    /// New facts kept beside the body (payer, service type, urgency, estimated cost).
    pub facts: Option<(String, String, String, i64)>,
    /// Also require this `updated_at` (a stricter compare-and-set: any change moves it).
    pub expected_updated_at: Option<i64>,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub request_id: Option<String>,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewLine {
    pub line: i64,
    pub status: String,
    pub action: Option<String>,
    pub procedure_code: Option<String>,
    pub unit: Option<String>,
    pub authorized_units: Option<i64>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub certification_number: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewDecision {
    /// A unique key chosen by the caller (the lines refer to it).
    pub key: String,
    pub request_id: String,
    pub inbound_message_id: Option<i64>,
    pub inbound_position: Option<i64>,
    pub status: String,
    pub action: Option<String>,
    pub certification_number: Option<String>,
    pub reason: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub body: String,
    pub decided_at: i64,
    pub lines: Vec<NewLine>,
}

#[derive(Debug, Clone)]
pub struct NewService {
    pub request_id: String,
    pub line: Option<i64>,
    pub procedure_code: String,
    pub units: i64,
    pub service_date: String,
    pub provider: Option<String>,
    pub state: String,
    pub flag: Option<String>,
    pub corrects_id: Option<i64>,
    pub actor: String,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct NewOutbound {
    pub request_id: Option<String>,
    pub format: String,
    pub partner: String,
    pub destination: Option<String>,
    pub interchange_control: Option<i64>,
    pub group_control: Option<i64>,
    pub transaction_control: Option<i64>,
    pub submitter_reference: Option<String>,
    pub trace_number: Option<String>,
    pub raw: Vec<u8>,
    pub at: i64,
    /// Queue it in the outbox (same transaction): a worker sends it to the payer.
    pub outbox: Option<NewOutbox>,
}

/// An outbox entry for an outbound message: who gets it, how, and from when.
#[derive(Debug, Clone)]
pub struct NewOutbox {
    pub payer: String,
    /// `x12-core`, `x12-batch` or `fhir-pas`.
    pub format: String,
    /// `submit` or `inquire`.
    pub operation: String,
    /// The CORE PayloadID (a UUID), kept for every retransmit.
    pub payload_id: String,
    pub next_attempt_at: i64,
}

pub(crate) const OUTBOX_COLUMNS: &str = "id, request_id, payer, format, operation, payload_id, \
    state, attempts, claims, retransmit, next_attempt_at, lease_owner, lease_until, last_error, \
    last_attempt_at, answered_at, inbound_message_id, created_at, updated_at";

/// One outbox message (its bytes are the outbound message's `raw`, never rewritten).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxRow {
    /// The outbound message id.
    pub id: i64,
    pub request_id: Option<String>,
    pub payer: String,
    pub format: String,
    pub operation: String,
    pub payload_id: String,
    /// `queued`, `sending`, `delivered`, `answered`, `refused` or `dead`.
    pub state: String,
    /// Sends begun (each recorded before its first byte).
    pub attempts: i64,
    /// Leases taken; a worker's writes name the lease they hold.
    pub claims: i64,
    /// The next send repeats bytes that may have reached the payer.
    pub retransmit: bool,
    pub next_attempt_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<i64>,
    pub answered_at: Option<i64>,
    pub inbound_message_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl OutboxRow {
    pub(crate) fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(OutboxRow {
            id: get(r, 0)?,
            request_id: get(r, 1)?,
            payer: get(r, 2)?,
            format: get(r, 3)?,
            operation: get(r, 4)?,
            payload_id: get(r, 5)?,
            state: get(r, 6)?,
            attempts: get(r, 7)?,
            claims: get(r, 8)?,
            retransmit: get::<i64>(r, 9)? != 0,
            next_attempt_at: get(r, 10)?,
            lease_owner: get(r, 11)?,
            lease_until: get(r, 12)?,
            last_error: get(r, 13)?,
            last_attempt_at: get(r, 14)?,
            answered_at: get(r, 15)?,
            inbound_message_id: get(r, 16)?,
            created_at: get(r, 17)?,
            updated_at: get(r, 18)?,
        })
    }
}

/// A change of an outbox message, applied only while it is in `expected_state` and, when
/// `lease` is given, while that lease (owner, claim number) is still the message's: a worker
/// that lost its lease gets a conflict instead of overwriting the new owner's result.
#[derive(Debug, Clone, Default)]
pub struct OutboxChange {
    pub id: i64,
    pub expected_state: String,
    pub lease: Option<(String, i64)>,
    pub state: String,
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    /// Clears `last_error` (a person's retry).
    pub clear_error: bool,
    pub retransmit: Option<bool>,
    /// A send begins now: attempts + 1, `last_attempt_at` = `at`.
    pub begin_attempt: bool,
    pub reset_attempts: bool,
    /// Keeps the lease (state `sending`) until then; any other state drops the lease.
    pub lease_until: Option<i64>,
    pub answered_at: Option<i64>,
    pub inbound_message_id: Option<i64>,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct NewItem {
    pub message_id: i64,
    pub position: i64,
    pub kind: String,
    pub request_id: Option<String>,
    pub outcome: String,
    pub reference: Option<String>,
    pub detail: Option<String>,
    pub body: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct NewAlert {
    pub request_id: Option<String>,
    pub kind: String,
    pub dedupe_key: String,
    pub message: String,
    pub due: Option<String>,
    pub at: i64,
}

/// One write of a transaction.
#[derive(Debug, Clone)]
pub enum Write {
    InsertRequest(NewRequest),
    ChangeRequest(RequestChange),
    Event(NewEvent),
    Decision(NewDecision),
    Service(NewService),
    /// Voids a service still in `recorded` or `flagged` state.
    VoidService {
        id: i64,
        reason: String,
        at: i64,
    },
    Outbound(NewOutbound),
    /// Moves an outbox message (conditional: see [`OutboxChange`]).
    Outbox(OutboxChange),
    Item(NewItem),
    /// Moves a received file's progress forward: only from `from_applied` (so two ingests of
    /// the same file cannot both apply a chunk), to `state`.
    InboundProgress {
        message_id: i64,
        from_applied: i64,
        to_applied: i64,
        total: i64,
        state: String,
        at: i64,
    },
    /// Inserts an alert unless one with the same key exists.
    Alert(NewAlert),
    ResolveAlert {
        dedupe_key: String,
        at: i64,
    },
    Idempotency {
        key: String,
        result: String,
        at: i64,
    },
    SetActor {
        name: String,
        role: String,
    },
    /// An audit line (append-only).
    Audit(super::NewAudit),
    SetSetting {
        key: String,
        value: String,
    },
}

/// What a write produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    Done,
    Id(i64),
    /// How many rows changed (an alert already present: 0).
    Rows(u64),
}

pub(crate) async fn apply_one(tx: &mut Transaction<'static, Any>, w: &Write) -> Result<Applied> {
    match w {
        Write::InsertRequest(n) => {
            sqlx::query(
                "INSERT INTO requests (id, submitter_reference, payer, service_type, urgency, \
                 estimated_cost_cents, status, version, previous_id, original_id, link_kind, \
                 created_by, created_at, updated_at, tenant) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $11, $12, $12, $13)",
            )
            .bind(&n.id)
            .bind(&n.submitter_reference)
            .bind(&n.payer)
            .bind(&n.service_type)
            .bind(&n.urgency)
            .bind(n.estimated_cost_cents)
            .bind(&n.status)
            .bind(n.previous_id.clone())
            .bind(n.original_id.clone())
            .bind(n.link_kind.clone())
            .bind(&n.created_by)
            .bind(n.at)
            .bind(&n.tenant)
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "INSERT INTO request_versions (request_id, version, body, created_by, created_at) \
                 VALUES ($1, 1, $2, $3, $4)",
            )
            .bind(&n.id)
            .bind(&n.body)
            .bind(&n.created_by)
            .bind(n.at)
            .execute(&mut **tx)
            .await?;
            Ok(Applied::Done)
        }
        Write::ChangeRequest(c) => {
            let (set_step, step) = match c.approval_step {
                Some(s) => (1i64, s),
                None => (0, None),
            };
            let r = sqlx::query(
                "UPDATE requests SET status = COALESCE($3, status), \
                 approval_step = CASE WHEN $4 = 1 THEN $5 ELSE approval_step END, \
                 certification_number = COALESCE($6, certification_number), \
                 start_date = COALESCE($7, start_date), end_date = COALESCE($8, end_date), \
                 submitted_at = COALESCE($9, submitted_at), decided_at = COALESCE($10, decided_at), \
                 version = version + $11, \
                 updated_at = CASE WHEN $12 > updated_at THEN $12 ELSE updated_at + 1 END, \
                 payer = COALESCE($14, payer), service_type = COALESCE($15, service_type), \
                 urgency = COALESCE($16, urgency), \
                 estimated_cost_cents = COALESCE($17, estimated_cost_cents) \
                 WHERE id = $1 AND status = $2 AND ($13 IS NULL OR updated_at = $13)",
            )
            .bind(&c.id)
            .bind(&c.expected_status)
            .bind(c.status.clone())
            .bind(set_step)
            .bind(step)
            .bind(c.certification_number.clone())
            .bind(c.start_date.clone())
            .bind(c.end_date.clone())
            .bind(c.submitted_at)
            .bind(c.decided_at)
            .bind(if c.new_body.is_some() { 1i64 } else { 0 })
            .bind(c.at)
            .bind(c.expected_updated_at)
            .bind(c.facts.as_ref().map(|f| f.0.clone()))
            .bind(c.facts.as_ref().map(|f| f.1.clone()))
            .bind(c.facts.as_ref().map(|f| f.2.clone()))
            .bind(c.facts.as_ref().map(|f| f.3))
            .execute(&mut **tx)
            .await?;
            if r.rows_affected() != 1 {
                return Err(StoreError::Conflict(format!(
                    "record {} is no longer {} (changed concurrently, or missing)",
                    c.id, c.expected_status
                )));
            }
            if let Some(body) = &c.new_body {
                sqlx::query(
                    "INSERT INTO request_versions (request_id, version, body, created_by, created_at) \
                     SELECT id, version, $2, $3, $4 FROM requests WHERE id = $1",
                )
                .bind(&c.id)
                .bind(body)
                .bind(c.version_by.clone().unwrap_or_default())
                .bind(c.at)
                .execute(&mut **tx)
                .await?;
            }
            Ok(Applied::Done)
        }
        Write::Event(e) => {
            insert_events(tx, std::slice::from_ref(e)).await?;
            Ok(Applied::Done)
        }
        Write::Decision(d) => {
            insert_decisions(tx, std::slice::from_ref(d)).await?;
            Ok(Applied::Done)
        }
        Write::Service(s) => {
            let r = sqlx::query(
                "INSERT INTO service_events (request_id, line, procedure_code, units, service_date, \
                 provider, state, flag, corrects_id, actor, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            )
            .bind(&s.request_id)
            .bind(s.line)
            .bind(&s.procedure_code)
            .bind(s.units)
            .bind(&s.service_date)
            .bind(s.provider.clone())
            .bind(&s.state)
            .bind(s.flag.clone())
            .bind(s.corrects_id)
            .bind(&s.actor)
            .bind(s.at)
            .fetch_one(&mut **tx)
            .await?;
            Ok(Applied::Id(get(&r, 0)?))
        }
        Write::VoidService { id, reason, at } => {
            let r = sqlx::query(
                "UPDATE service_events SET state = 'voided', voided_at = $2, void_reason = $3 \
                 WHERE id = $1 AND state <> 'voided'",
            )
            .bind(id)
            .bind(at)
            .bind(reason)
            .execute(&mut **tx)
            .await?;
            if r.rows_affected() != 1 {
                return Err(StoreError::Conflict(format!(
                    "service {id} is missing or already voided"
                )));
            }
            Ok(Applied::Done)
        }
        Write::Outbound(o) => {
            let r = sqlx::query(
                "INSERT INTO outbound_messages (request_id, format, partner, destination, \
                 interchange_control, group_control, transaction_control, submitter_reference, \
                 trace_number, raw, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            )
            .bind(o.request_id.clone())
            .bind(&o.format)
            .bind(&o.partner)
            .bind(o.destination.clone())
            .bind(o.interchange_control)
            .bind(o.group_control)
            .bind(o.transaction_control)
            .bind(o.submitter_reference.clone())
            .bind(o.trace_number.clone())
            .bind(&o.raw)
            .bind(o.at)
            .fetch_one(&mut **tx)
            .await?;
            let id: i64 = get(&r, 0)?;
            if let Some(q) = &o.outbox {
                sqlx::query(
                    "INSERT INTO outbox (id, request_id, payer, format, operation, payload_id, \
                     state, attempts, claims, retransmit, next_attempt_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, 0, 0, $7, $8, $8)",
                )
                .bind(id)
                .bind(o.request_id.clone())
                .bind(&q.payer)
                .bind(&q.format)
                .bind(&q.operation)
                .bind(&q.payload_id)
                .bind(q.next_attempt_at)
                .bind(o.at)
                .execute(&mut **tx)
                .await?;
            }
            Ok(Applied::Id(id))
        }
        Write::Outbox(c) => {
            let (owner, claim) = match &c.lease {
                Some((o, n)) => (Some(o.clone()), Some(*n)),
                None => (None, None),
            };
            let r = sqlx::query(
                "UPDATE outbox SET state = $3, \
                 next_attempt_at = COALESCE($4, next_attempt_at), \
                 last_error = CASE WHEN $5 = 1 THEN NULL ELSE COALESCE($6, last_error) END, \
                 retransmit = COALESCE($7, retransmit), \
                 attempts = CASE WHEN $8 = 1 THEN 0 ELSE attempts + $9 END, \
                 last_attempt_at = CASE WHEN $9 = 1 THEN $10 ELSE last_attempt_at END, \
                 lease_owner = CASE WHEN $3 = 'sending' THEN lease_owner ELSE NULL END, \
                 lease_until = CASE WHEN $3 = 'sending' THEN COALESCE($11, lease_until) \
                 ELSE NULL END, \
                 answered_at = COALESCE($12, answered_at), \
                 inbound_message_id = COALESCE($13, inbound_message_id), \
                 updated_at = $10 \
                 WHERE id = $1 AND state = $2 AND ($14 IS NULL OR lease_owner = $14) \
                 AND ($15 IS NULL OR claims = $15)",
            )
            .bind(c.id)
            .bind(&c.expected_state)
            .bind(&c.state)
            .bind(c.next_attempt_at)
            .bind(i64::from(c.clear_error))
            .bind(c.last_error.clone())
            .bind(c.retransmit.map(i64::from))
            .bind(i64::from(c.reset_attempts))
            .bind(i64::from(c.begin_attempt))
            .bind(c.at)
            .bind(c.lease_until)
            .bind(c.answered_at)
            .bind(c.inbound_message_id)
            .bind(owner.clone())
            .bind(claim)
            .execute(&mut **tx)
            .await?;
            if r.rows_affected() != 1 {
                return Err(StoreError::Conflict(match owner {
                    Some(o) => format!(
                        "outbox message {} is no longer leased to {o} (claim {}): another \
                         worker took it over",
                        c.id,
                        claim.unwrap_or(0)
                    ),
                    None => format!(
                        "outbox message {} is no longer {} (changed concurrently, or missing)",
                        c.id, c.expected_state
                    ),
                }));
            }
            Ok(Applied::Done)
        }
        Write::Item(i) => {
            insert_items(tx, std::slice::from_ref(i)).await?;
            Ok(Applied::Done)
        }
        Write::InboundProgress {
            message_id,
            from_applied,
            to_applied,
            total,
            state,
            at,
        } => {
            let r = sqlx::query(
                "UPDATE inbound_messages SET items_applied = $3, items_total = $4, state = $5, \
                 completed_at = CASE WHEN $5 = 'applied' THEN $6 ELSE completed_at END \
                 WHERE id = $1 AND items_applied = $2",
            )
            .bind(message_id)
            .bind(from_applied)
            .bind(to_applied)
            .bind(total)
            .bind(state)
            .bind(at)
            .execute(&mut **tx)
            .await?;
            if r.rows_affected() != 1 {
                return Err(StoreError::Conflict(format!(
                    "inbound message {message_id} moved on (another ingest is applying it)"
                )));
            }
            Ok(Applied::Done)
        }
        Write::Alert(a) => {
            let r = sqlx::query(
                "INSERT INTO alerts (request_id, kind, dedupe_key, message, due, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dedupe_key) DO NOTHING",
            )
            .bind(a.request_id.clone())
            .bind(&a.kind)
            .bind(&a.dedupe_key)
            .bind(&a.message)
            .bind(a.due.clone())
            .bind(a.at)
            .execute(&mut **tx)
            .await?;
            Ok(Applied::Rows(r.rows_affected()))
        }
        Write::ResolveAlert { dedupe_key, at } => {
            let r = sqlx::query(
                "UPDATE alerts SET resolved_at = $2 WHERE dedupe_key = $1 AND resolved_at IS NULL",
            )
            .bind(dedupe_key)
            .bind(at)
            .execute(&mut **tx)
            .await?;
            Ok(Applied::Rows(r.rows_affected()))
        }
        Write::Idempotency { key, result, at } => {
            sqlx::query(
                "INSERT INTO idempotency_keys (key, result, created_at) VALUES ($1, $2, $3)",
            )
            .bind(key)
            .bind(result)
            .bind(at)
            .execute(&mut **tx)
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(d) if d.is_unique_violation() => {
                    StoreError::Conflict(format!("idempotency key {key:?} was already used"))
                }
                e => e.into(),
            })?;
            Ok(Applied::Done)
        }
        Write::SetActor { name, role } => {
            sqlx::query(
                "INSERT INTO actors (name, role) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET role = excluded.role",
            )
            .bind(name)
            .bind(role)
            .execute(&mut **tx)
            .await?;
            Ok(Applied::Done)
        }
        Write::Audit(a) => {
            super::access::insert_audit(tx, a).await?;
            Ok(Applied::Done)
        }
        Write::SetSetting { key, value } => {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(key)
            .bind(value)
            .execute(&mut **tx)
            .await?;
            Ok(Applied::Done)
        }
    }
}

/// Appends `($1, $2, ...), (...)` for `rows` rows of `cols` parameters.
pub(crate) fn push_values(sql: &mut String, rows: usize, cols: usize) {
    use std::fmt::Write as _;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${}", r * cols + c + 1);
        }
        sql.push(')');
    }
}

/// Rows per multi-row INSERT (well under SQLite's and PostgreSQL's parameter limits).
const BATCH_ROWS: usize = 100;

pub(crate) async fn insert_events(
    tx: &mut Transaction<'static, Any>,
    events: &[NewEvent],
) -> Result<()> {
    for part in events.chunks(BATCH_ROWS) {
        let mut sql = String::from(
            "INSERT INTO events (request_id, at, actor, action, from_status, to_status, reason, \
             detail) VALUES ",
        );
        push_values(&mut sql, part.len(), 8);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for e in part {
            q = q
                .bind(e.request_id.clone())
                .bind(e.at)
                .bind(&e.actor)
                .bind(&e.action)
                .bind(e.from_status.clone())
                .bind(e.to_status.clone())
                .bind(e.reason.clone())
                .bind(e.detail.clone());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

pub(crate) async fn insert_items(
    tx: &mut Transaction<'static, Any>,
    items: &[NewItem],
) -> Result<()> {
    for part in items.chunks(BATCH_ROWS) {
        let mut sql = String::from(
            "INSERT INTO inbound_items (message_id, position, kind, request_id, outcome, \
             reference, detail, body, created_at) VALUES ",
        );
        push_values(&mut sql, part.len(), 9);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for i in part {
            q = q
                .bind(i.message_id)
                .bind(i.position)
                .bind(&i.kind)
                .bind(i.request_id.clone())
                .bind(&i.outcome)
                .bind(i.reference.clone())
                .bind(i.detail.clone())
                .bind(i.body.clone())
                .bind(i.at);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

pub(crate) async fn insert_decisions(
    tx: &mut Transaction<'static, Any>,
    decisions: &[NewDecision],
) -> Result<()> {
    for part in decisions.chunks(BATCH_ROWS / 2) {
        let mut sql = String::from(
            "INSERT INTO decisions (key, request_id, inbound_message_id, inbound_position, \
             status, action, certification_number, reason, start_date, end_date, body, \
             decided_at) VALUES ",
        );
        push_values(&mut sql, part.len(), 12);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for d in part {
            q = q
                .bind(&d.key)
                .bind(&d.request_id)
                .bind(d.inbound_message_id)
                .bind(d.inbound_position)
                .bind(&d.status)
                .bind(d.action.clone())
                .bind(d.certification_number.clone())
                .bind(d.reason.clone())
                .bind(d.start_date.clone())
                .bind(d.end_date.clone())
                .bind(&d.body)
                .bind(d.decided_at);
        }
        q.execute(&mut **tx).await?;
    }
    let lines: Vec<(&NewDecision, &NewLine)> = decisions
        .iter()
        .flat_map(|d| d.lines.iter().map(move |l| (d, l)))
        .collect();
    for part in lines.chunks(BATCH_ROWS / 2) {
        let mut sql = String::from(
            "INSERT INTO line_decisions (decision_key, request_id, line, status, action, \
             procedure_code, unit, authorized_units, start_date, end_date, \
             certification_number) VALUES ",
        );
        push_values(&mut sql, part.len(), 11);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (d, l) in part {
            q = q
                .bind(&d.key)
                .bind(&d.request_id)
                .bind(l.line)
                .bind(&l.status)
                .bind(l.action.clone())
                .bind(l.procedure_code.clone())
                .bind(l.unit.clone())
                .bind(l.authorized_units)
                .bind(l.start_date.clone())
                .bind(l.end_date.clone())
                .bind(l.certification_number.clone());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// New records (with their first version) in multi-row inserts.
pub(crate) async fn insert_requests(
    tx: &mut Transaction<'static, Any>,
    reqs: &[&NewRequest],
) -> Result<()> {
    for part in reqs.chunks(BATCH_ROWS / 2) {
        let mut sql = String::from(
            "INSERT INTO requests (id, submitter_reference, payer, service_type, urgency, \
             estimated_cost_cents, status, version, previous_id, original_id, link_kind, \
             created_by, created_at, updated_at, tenant) VALUES ",
        );
        push_values(&mut sql, part.len(), 15);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for n in part {
            q = q
                .bind(&n.id)
                .bind(&n.submitter_reference)
                .bind(&n.payer)
                .bind(&n.service_type)
                .bind(&n.urgency)
                .bind(n.estimated_cost_cents)
                .bind(&n.status)
                .bind(1i64)
                .bind(n.previous_id.clone())
                .bind(n.original_id.clone())
                .bind(n.link_kind.clone())
                .bind(&n.created_by)
                .bind(n.at)
                .bind(n.at)
                .bind(&n.tenant);
        }
        q.execute(&mut **tx).await?;
        let mut sql = String::from(
            "INSERT INTO request_versions (request_id, version, body, created_by, created_at) VALUES ",
        );
        push_values(&mut sql, part.len(), 5);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for n in part {
            q = q
                .bind(&n.id)
                .bind(1i64)
                .bind(&n.body)
                .bind(&n.created_by)
                .bind(n.at);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Idempotency keys in multi-row inserts; a key already used fails the whole insert.
pub(crate) async fn insert_idempotency(
    tx: &mut Transaction<'static, Any>,
    keys: &[(&str, &str, i64)],
) -> Result<()> {
    for part in keys.chunks(BATCH_ROWS) {
        let mut sql =
            String::from("INSERT INTO idempotency_keys (key, result, created_at) VALUES ");
        push_values(&mut sql, part.len(), 3);
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (k, r, at) in part {
            q = q.bind(*k).bind(*r).bind(*at);
        }
        q.execute(&mut **tx).await.map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Conflict("an idempotency key of the group was already used".into())
            }
            e => e.into(),
        })?;
    }
    Ok(())
}
