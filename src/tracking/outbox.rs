//! The records' side of the outbox: a submission queued with its bytes in the same
//! transaction as the record's move to `submitted`, `$inquire` messages for pended PAS
//! requests, and the moves the outbox worker makes (each with an event on the record, actor
//! `outbox`, reason included, never a body). A worker's move names the lease it holds, so a
//! worker that lost its lease gets a conflict instead of overwriting the new owner's result.

use super::{Result, State, Tracker, TrackingError};
use crate::payers::{Format, PayerConfig, PayerDirectory};
use crate::store::{NewOutbound, NewOutbox, OutboxChange, OutboxRow, StoreError, Write};

/// The actor of the outbox's events.
pub const ACTOR: &str = "outbox";

impl Tracker {
    /// Sends a ready record to `payer` through the outbox: the request is written in the
    /// payer's format (x12-core / x12-batch: the 278 with the payer's envelope and control
    /// numbers reserved durably; fhir-pas: the PAS request Bundle as JSON), and in one
    /// transaction the outbound message, its outbox entry (queued, with a new PayloadID kept
    /// for every retransmit), the record's move to `submitted` and the events are committed:
    /// before the first byte is sent. Returns the outbox id (the outbound message id).
    pub async fn submit_to(&self, id: &str, actor: &str, payer: &PayerConfig) -> Result<i64> {
        let (row, from) = self.ready_to_send(id, actor).await?;
        // The default route (`*`) is addressed as the record's payer.
        let mut payer = payer.clone();
        if payer.id.is_empty() || payer.id == "*" {
            payer.id = row.payer.clone();
        }
        let request = self.body(id).await?;
        let (raw, format, partner, controls, trace) = match payer.format {
            Format::X12Core | Format::X12Batch => {
                let settings = payer.envelope();
                let (raw, used, trace) = self.write_278(&request, &settings).await?;
                (raw, "x12-278", settings.partner(), used, trace)
            }
            Format::FhirPas => {
                let bundle = crate::fhir::request::bundle_from_request(&request);
                let raw = serde_json::to_vec(&bundle).map_err(|e| {
                    TrackingError::Invalid(format!("cannot write the PAS request Bundle: {e}"))
                })?;
                (
                    raw,
                    "fhir-pas-bundle",
                    payer.id.clone(),
                    (None, None, None),
                    super::current_trace(&request),
                )
            }
        };
        let destination = match payer.format {
            Format::X12Batch => payer.outbound_dir.as_ref().map(|d| d.display().to_string()),
            _ => payer.endpoint.clone(),
        };
        let payload_id = uuid::Uuid::new_v4().to_string();
        let mut c = self.change(&row, Some(State::Submitted));
        c.submitted_at = Some(self.now());
        let size = raw.len();
        let applied = self
            .store
            .apply(&[
                Write::Outbound(NewOutbound {
                    request_id: Some(id.to_owned()),
                    format: format.into(),
                    partner,
                    destination,
                    interchange_control: controls.0,
                    group_control: controls.1,
                    transaction_control: controls.2,
                    submitter_reference: Some(row.submitter_reference.clone()),
                    trace_number: trace,
                    raw,
                    at: self.now(),
                    outbox: Some(NewOutbox {
                        payer: payer.id.clone(),
                        format: payer.format.as_str().into(),
                        operation: "submit".into(),
                        payload_id: payload_id.clone(),
                        next_attempt_at: self.now(),
                    }),
                }),
                Write::ChangeRequest(c),
                self.event(
                    Some(id),
                    actor,
                    "submitted",
                    Some(from),
                    Some(State::Submitted),
                    Some(format!(
                        "queued for payer {} ({})",
                        payer.id,
                        payer.format.as_str()
                    )),
                    controls.0.map(|isa| {
                        format!(
                            "ISA13 {isa} GS06 {} ST02 {}",
                            controls.1.unwrap_or(0),
                            controls.2.unwrap_or(0)
                        )
                    }),
                ),
                self.event(
                    Some(id),
                    ACTOR,
                    "outbox_queued",
                    None,
                    None,
                    None,
                    Some(format!(
                        "submit to {} ({}), {size} bytes, PayloadID {payload_id}",
                        payer.id,
                        payer.format.as_str()
                    )),
                ),
            ])
            .await?;
        outbox_id(&applied)
    }

    /// Queues a `Claim/$inquire` for every record pended at a fhir-pas payer that has nothing
    /// in flight and was last sent to (or asked about) at least `retry.inquire_every_ms` ago.
    /// Processes running this together queue one inquiry per record and period (an
    /// idempotency key). Returns the new outbox ids.
    pub async fn enqueue_inquiries(&self, directory: &PayerDirectory) -> Result<Vec<i64>> {
        let mut out = Vec::new();
        for row in self.store.requests_in(&[State::Pended.as_str()]).await? {
            let Ok(payer) = directory.route(&row.payer) else {
                continue;
            };
            if payer.format != Format::FhirPas {
                continue;
            }
            let every = payer.retry.inquire_every_ms.max(1) as i64;
            let sent = self.store.outbox_for(&row.id).await?;
            if sent
                .iter()
                .any(|m| matches!(m.state.as_str(), "queued" | "sending"))
            {
                continue;
            }
            let last = sent
                .iter()
                .map(|m| m.answered_at.unwrap_or(m.created_at))
                .max()
                .unwrap_or(row.updated_at)
                .max(row.updated_at);
            if self.now() < last.saturating_add(every) {
                continue;
            }
            let request = self.body(&row.id).await?;
            let bundle = crate::fhir::inquiry::inquiry_bundle(&request);
            let raw = serde_json::to_vec(&bundle).map_err(|e| {
                TrackingError::Invalid(format!("cannot write the inquiry Bundle: {e}"))
            })?;
            let payload_id = uuid::Uuid::new_v4().to_string();
            let payer_id = if payer.id == "*" {
                row.payer.clone()
            } else {
                payer.id.clone()
            };
            let size = raw.len();
            let writes = [
                Write::Idempotency {
                    key: format!("outbox.inquire:{}:{}", row.id, self.now() / every),
                    result: payload_id.clone(),
                    at: self.now(),
                },
                Write::Outbound(NewOutbound {
                    request_id: Some(row.id.clone()),
                    format: "fhir-pas-inquiry".into(),
                    partner: payer_id.clone(),
                    destination: payer.endpoint.clone(),
                    interchange_control: None,
                    group_control: None,
                    transaction_control: None,
                    submitter_reference: Some(row.submitter_reference.clone()),
                    trace_number: super::current_trace(&request),
                    raw,
                    at: self.now(),
                    outbox: Some(NewOutbox {
                        payer: payer_id.clone(),
                        format: Format::FhirPas.as_str().into(),
                        operation: "inquire".into(),
                        payload_id: payload_id.clone(),
                        next_attempt_at: self.now(),
                    }),
                }),
                self.event(
                    Some(&row.id),
                    ACTOR,
                    "outbox_queued",
                    None,
                    None,
                    Some("pended: asking the payer about it ($inquire)".into()),
                    Some(format!(
                        "inquire to {payer_id} (fhir-pas), {size} bytes, PayloadID {payload_id}"
                    )),
                ),
            ];
            match self.store.apply(&writes).await {
                Ok(applied) => out.push(outbox_id(&applied[1..])?),
                // Another process queued this period's inquiry first.
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// A person sends a dead-lettered message again: `dead` -> `queued`, attempts reset, due
    /// now (a retransmit still waits for its floor: the worker checks it before sending).
    pub async fn outbox_retry(&self, id: i64, actor: &str) -> Result<()> {
        self.require_role(
            actor,
            &self.policy.sender_roles,
            "send a request to the payer",
        )
        .await?;
        let m = self
            .store
            .outbox_get(id)
            .await?
            .ok_or_else(|| TrackingError::NotFound(format!("no outbox message {id}")))?;
        if m.state != "dead" {
            return Err(TrackingError::Illegal(format!(
                "outbox message {id} is {}: only a dead letter is retried",
                m.state
            )));
        }
        let change = OutboxChange {
            id,
            expected_state: "dead".into(),
            lease: None,
            state: "queued".into(),
            next_attempt_at: Some(self.now()),
            clear_error: true,
            reset_attempts: true,
            at: self.now(),
            ..Default::default()
        };
        self.store
            .apply(&[
                Write::Outbox(change),
                self.outbox_event(
                    &m,
                    actor,
                    "outbox_retried",
                    "queued",
                    m.last_error.as_ref().map(|e| format!("was dead: {e}")),
                ),
            ])
            .await?;
        Ok(())
    }

    // ---- the worker's moves (each conditional on the lease of `m`) ---------------------------

    fn leased(&self, m: &OutboxRow, state: &str) -> OutboxChange {
        OutboxChange {
            id: m.id,
            expected_state: m.state.clone(),
            lease: Some((m.lease_owner.clone().unwrap_or_default(), m.claims)),
            state: state.into(),
            at: self.now(),
            ..Default::default()
        }
    }

    fn outbox_event(
        &self,
        m: &OutboxRow,
        actor: &str,
        action: &str,
        to: &str,
        reason: Option<String>,
    ) -> Write {
        self.event(
            m.request_id.as_deref(),
            actor,
            action,
            None,
            None,
            reason,
            Some(format!(
                "outbox {} ({} {}) {} -> {to}, attempt {}",
                m.id, m.operation, m.payer, m.state, m.attempts
            )),
        )
    }

    /// A send begins now (committed before its first byte): attempts + 1, the lease held until
    /// `lease_until`, and `next_attempt_at` set to `retransmit_at` (now + the retransmit
    /// floor), so if this worker dies mid-send the message is resent no earlier than that.
    /// Returns the row as it now is.
    pub async fn outbox_begin(
        &self,
        m: &OutboxRow,
        lease_until: i64,
        retransmit_at: i64,
    ) -> Result<OutboxRow> {
        let mut c = self.leased(m, "sending");
        c.begin_attempt = true;
        c.lease_until = Some(lease_until);
        c.next_attempt_at = Some(retransmit_at);
        self.store.apply(&[Write::Outbox(c)]).await?;
        let mut now = m.clone();
        now.attempts += 1;
        now.last_attempt_at = Some(self.now());
        now.lease_until = Some(lease_until);
        now.next_attempt_at = retransmit_at;
        Ok(now)
    }

    /// Not sent now (an open circuit, a retransmit floor not reached): back to `queued`,
    /// due at `until`, the attempt count unchanged.
    pub async fn outbox_defer(&self, m: &OutboxRow, until: i64, reason: &str) -> Result<()> {
        let mut c = self.leased(m, "queued");
        c.next_attempt_at = Some(until);
        self.store
            .apply(&[
                Write::Outbox(c),
                self.outbox_event(
                    m,
                    ACTOR,
                    "outbox_deferred",
                    "queued",
                    Some(reason.to_owned()),
                ),
            ])
            .await?;
        Ok(())
    }

    /// An attempt failed (not delivered, or outcome unknown: `retransmit`): queued again for
    /// `next_at`, with the reason.
    pub async fn outbox_reschedule(
        &self,
        m: &OutboxRow,
        next_at: i64,
        reason: &str,
        retransmit: bool,
    ) -> Result<()> {
        let mut c = self.leased(m, "queued");
        c.next_attempt_at = Some(next_at);
        c.last_error = Some(reason.to_owned());
        c.retransmit = Some(retransmit);
        self.store
            .apply(&[
                Write::Outbox(c),
                self.outbox_event(
                    m,
                    ACTOR,
                    "outbox_rescheduled",
                    "queued",
                    Some(format!(
                        "{reason}; next attempt at {}{}",
                        super::iso(next_at),
                        if retransmit { " (retransmit)" } else { "" }
                    )),
                ),
            ])
            .await?;
        Ok(())
    }

    /// The payer answered; the answer is stored (inbound message `inbound_id`) and applied.
    pub async fn outbox_answered(
        &self,
        m: &OutboxRow,
        inbound_id: i64,
        detail: &str,
    ) -> Result<()> {
        let mut c = self.leased(m, "answered");
        c.answered_at = Some(self.now());
        c.inbound_message_id = Some(inbound_id);
        self.store
            .apply(&[
                Write::Outbox(c),
                self.outbox_event(
                    m,
                    ACTOR,
                    "outbox_answered",
                    "answered",
                    (!detail.is_empty()).then(|| format!("inbound message {inbound_id}: {detail}")),
                ),
            ])
            .await?;
        Ok(())
    }

    /// A 278 response picked up from a batch folder (inbound message `inbound_id`) answers
    /// the record's delivered submissions: they become `answered`. Returns how many.
    pub async fn outbox_answered_later(&self, request_id: &str, inbound_id: i64) -> Result<usize> {
        let mut n = 0;
        for m in self.store.outbox_for(request_id).await? {
            if m.state != "delivered" || m.operation != "submit" {
                continue;
            }
            let c = OutboxChange {
                id: m.id,
                expected_state: "delivered".into(),
                state: "answered".into(),
                answered_at: Some(self.now()),
                inbound_message_id: Some(inbound_id),
                at: self.now(),
                ..Default::default()
            };
            match self
                .store
                .apply(&[
                    Write::Outbox(c),
                    self.outbox_event(
                        &m,
                        ACTOR,
                        "outbox_answered",
                        "answered",
                        Some(format!("batch answer, inbound message {inbound_id}")),
                    ),
                ])
                .await
            {
                Ok(_) => n += 1,
                Err(StoreError::Conflict(_)) => {} // another process marked it
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// A submission whose record no longer waits for the payer is not sent (again): `answered`
    /// when the payer's answer already reached the record (say an answer applied just before a
    /// crash, before the outbox row was marked), `dead` when the record was cancelled first.
    /// Returns the state written, or None when the record still waits for the payer.
    pub async fn outbox_settle_stale(&self, m: &OutboxRow) -> Result<Option<&'static str>> {
        let Some(rid) = m.request_id.as_deref() else {
            return Ok(None);
        };
        if m.operation != "submit" {
            return Ok(None);
        }
        let row = self.record(rid).await?;
        let status = Self::state(&row)?;
        if status.awaiting_payer() {
            return Ok(None);
        }
        let (to, action, reason) = if status == State::Cancelled {
            (
                "dead",
                "outbox_dead",
                format!(
                    "the record was cancelled before it was sent (attempt {})",
                    m.attempts
                ),
            )
        } else {
            (
                "answered",
                "outbox_answered",
                format!("the record is already {status}: not sent again"),
            )
        };
        let mut c = self.leased(m, to);
        if to == "dead" {
            c.last_error = Some(reason.clone());
        } else {
            c.answered_at = Some(self.now());
        }
        self.store
            .apply(&[
                Write::Outbox(c),
                self.outbox_event(m, ACTOR, action, to, Some(reason)),
            ])
            .await?;
        Ok(Some(to))
    }

    /// Handed over (a batch folder); the answer arrives later by another path.
    pub async fn outbox_delivered(&self, m: &OutboxRow) -> Result<()> {
        self.store
            .apply(&[
                Write::Outbox(self.leased(m, "delivered")),
                self.outbox_event(m, ACTOR, "outbox_delivered", "delivered", None),
            ])
            .await?;
        Ok(())
    }

    /// A configuration problem, or too many attempts: a dead letter with the reason, for a
    /// person to fix and retry ([`Tracker::outbox_retry`]). The record stays where it is.
    pub async fn outbox_dead(&self, m: &OutboxRow, reason: &str) -> Result<()> {
        let mut c = self.leased(m, "dead");
        c.last_error = Some(reason.to_owned());
        self.store
            .apply(&[
                Write::Outbox(c),
                self.outbox_event(m, ACTOR, "outbox_dead", "dead", Some(reason.to_owned())),
            ])
            .await?;
        Ok(())
    }

    /// The payer refused the message for good. A refused submission makes the record
    /// `rejected` with the reason (unless the payer's answer, stored as `inbound_id`, already
    /// moved it); a refused inquiry leaves the record as it is.
    pub async fn outbox_refused(
        &self,
        m: &OutboxRow,
        reason: &str,
        inbound_id: Option<i64>,
    ) -> Result<()> {
        // The record may move under us (an ingest); read it again once on a conflict.
        let mut tries = 0;
        loop {
            tries += 1;
            let mut c = self.leased(m, "refused");
            c.last_error = Some(reason.to_owned());
            c.inbound_message_id = inbound_id;
            c.answered_at = inbound_id.map(|_| self.now());
            let mut writes = vec![
                Write::Outbox(c),
                self.outbox_event(
                    m,
                    ACTOR,
                    "outbox_refused",
                    "refused",
                    Some(reason.to_owned()),
                ),
            ];
            if m.operation == "submit"
                && let Some(rid) = &m.request_id
            {
                let row = self.record(rid).await?;
                let from = Self::state(&row)?;
                if from.awaiting_payer() {
                    let mut rc = self.change(&row, Some(State::Rejected));
                    rc.decided_at = Some(self.now());
                    writes.push(Write::ChangeRequest(rc));
                    writes.push(self.event(
                        Some(rid),
                        ACTOR,
                        "rejected",
                        Some(from),
                        Some(State::Rejected),
                        Some(format!("refused by payer {}: {reason}", m.payer)),
                        None,
                    ));
                }
            }
            match self.store.apply(&writes).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict(e)) if tries < 2 && !e.contains("no longer leased") => {
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn outbox_id(applied: &[crate::store::Applied]) -> Result<i64> {
    match applied.first() {
        Some(crate::store::Applied::Id(id)) => Ok(*id),
        other => Err(TrackingError::Invalid(format!(
            "the outbound message was stored without an id ({other:?})"
        ))),
    }
}
