//! The ingest benchmark: N synthetic submitted records, one interchange of N approving 278
//! responses, timed through the real ingest path (store raw, decode, match, apply in chunks).

use std::time::Instant;

use serde::Serialize;

use super::{Result, State, Tracker, TrackingError, facts};
use crate::domain::*;
use crate::store::{NewRequest, Write};
use crate::x12::tx278;
use crate::x12::writer::{EnvelopeSettings, MemoryControlNumbers};

/// A synthetic physical-therapy request (no real person).
const TEMPLATE: &str = include_str!("../../fixtures/requests/physical-therapy-visits.json");

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub backend: String,
    pub count: usize,
    pub bytes: usize,
    pub seed_seconds: f64,
    pub ingest_seconds: f64,
    pub records_per_second: f64,
    pub applied: i64,
}

fn invalid(e: impl std::fmt::Display) -> TrackingError {
    TrackingError::Invalid(e.to_string())
}

/// The synthetic request number `i` of run `run`.
pub fn request(run: &str, i: usize) -> Result<AuthorizationRequest> {
    let mut r: AuthorizationRequest = serde_json::from_str(TEMPLATE).map_err(invalid)?;
    r.submitter_reference = Text::parse(&format!("B{run}{i:07}")).map_err(invalid)?;
    if let Some(t) = r.event.trace_numbers.first_mut() {
        t.reference = Text::parse(&format!("T{run}{i:07}")).map_err(invalid)?;
    }
    Ok(r)
}

/// An approval of `r`: every line certified, 12 visits on line 1, the request's dates.
pub fn approval(r: &AuthorizationRequest, cert: &str) -> Result<AuthorizationResponse> {
    let lines = (1..=r.services.len())
        .map(|n| LineDecision {
            line: n,
            status: Status::Approved,
            action: Some(ActionCode::Certified),
            certification_number: None,
            reason: None,
            second_surgical_opinion: None,
            certification: Certification::default(),
            approved_quantity: None,
            approved_units: None,
            administrative_reference: None,
            trace_numbers: vec![],
            rejects: vec![],
            messages: vec![],
        })
        .collect();
    let d = Decision {
        status: Status::Approved,
        action: Some(ActionCode::Certified),
        certification_number: Some(Text::parse(cert).map_err(invalid)?),
        reason: None,
        second_surgical_opinion: None,
        certification: Certification::default(),
        approved_quantity: None,
        administrative_reference: None,
        trace_numbers: vec![],
        rejects: vec![],
        messages: vec![],
        lines,
    };
    Ok(AuthorizationResponse::answering(r, d))
}

/// Seeds `count` submitted records (run tag `run`, 6 digits) and returns one interchange of
/// `count` 278 responses approving them.
pub async fn seed(t: &Tracker, run: &str, count: usize) -> Result<Vec<u8>> {
    let mut responses = Vec::with_capacity(count);
    let mut batch = Vec::new();
    for i in 0..count {
        let r = request(run, i)?;
        responses.push(approval(&r, &format!("AUTH{run}{i:07}"))?);
        let f = facts(&r);
        let id = uuid::Uuid::new_v4().to_string();
        // Seeded as already sent: the benchmark measures ingest, not the approval chain.
        batch.push(Write::InsertRequest(NewRequest {
            id: id.clone(),
            tenant: super::DEFAULT_TENANT.into(),
            submitter_reference: r.submitter_reference.as_str().to_owned(),
            payer: f.payer,
            service_type: f.service_type,
            urgency: f.urgency.into(),
            estimated_cost_cents: f.cost_cents,
            status: State::Submitted.as_str().into(),
            previous_id: None,
            original_id: None,
            link_kind: None,
            body: serde_json::to_string(&r).map_err(invalid)?,
            created_by: "bench".into(),
            at: t.clock.now_ms(),
        }));
        batch.push(t.event(
            Some(&id),
            "bench",
            "submitted",
            None,
            Some(State::Submitted),
            Some("seeded by bench-ingest".into()),
            None,
        ));
        if batch.len() >= 2000 {
            t.store.apply(&batch).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        t.store.apply(&batch).await?;
    }
    let settings = EnvelopeSettings::default().reversed();
    tx278::encode_responses(
        &responses,
        &settings,
        &MemoryControlNumbers::new(),
        t.clock.stamp(),
    )
    .map_err(invalid)
}

pub async fn ingest(t: &Tracker, count: usize) -> Result<BenchResult> {
    if count == 0 {
        return Err(TrackingError::Invalid("--count must be above 0".into()));
    }
    let run: String = uuid::Uuid::new_v4().simple().to_string()[..6].to_ascii_uppercase();
    let seed_started = Instant::now();
    let data = seed(t, &run, count).await?;
    let seed_seconds = seed_started.elapsed().as_secs_f64();

    let started = Instant::now();
    let report = t.ingest(&data, "bench-ingest", &mut |_, _| {}).await?;
    let secs = started.elapsed().as_secs_f64();
    let applied = report.counts.get("applied").copied().unwrap_or(0);
    if applied != count as i64 {
        return Err(TrackingError::Invalid(format!(
            "only {applied} of {count} responses were applied: {:?}",
            report.counts
        )));
    }
    Ok(BenchResult {
        backend: format!("{:?}", t.store.backend()).to_lowercase(),
        count,
        bytes: data.len(),
        seed_seconds,
        ingest_seconds: secs,
        records_per_second: count as f64 / secs,
        applied,
    })
}
