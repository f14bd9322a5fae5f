//! The units ledger: services delivered against the authorized lines, matched by procedure
//! code and date, counted against the authorized units; refused or flagged with a clear
//! reason when outside the authorization; corrected and voided.

use serde::Serialize;

use super::policy::OutOfAuthorization;
use super::{Result, State, Tracker, TrackingError, fmt_centi, to_centi};
use crate::domain::Date;
use crate::store::{Applied, LineRow, NewService, RequestChange, ServiceRow, Write};

/// What is left on one authorized line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineBalance {
    pub line: i64,
    pub status: String,
    pub procedure_code: Option<String>,
    pub unit: Option<String>,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub authorized: Option<String>,
    pub used: String,
    pub remaining: Option<String>,
    #[serde(skip)]
    pub authorized_centi: Option<i64>,
    #[serde(skip)]
    pub used_centi: i64,
}

impl LineBalance {
    pub fn remaining_centi(&self) -> Option<i64> {
        self.authorized_centi.map(|a| a - self.used_centi)
    }
}

fn counts(s: &ServiceRow) -> bool {
    s.state != "voided"
}

/// The balance of each line of the current decision.
pub fn balances(lines: &[LineRow], services: &[ServiceRow]) -> Vec<LineBalance> {
    lines
        .iter()
        .map(|l| {
            let used: i64 = services
                .iter()
                .filter(|s| counts(s) && s.line == Some(l.line))
                .map(|s| s.units)
                .sum();
            LineBalance {
                line: l.line,
                status: l.status.clone(),
                procedure_code: l.procedure_code.clone(),
                unit: l.unit.clone(),
                start_date: l.start_date.clone(),
                end_date: l.end_date.clone(),
                authorized: l.authorized_units.map(fmt_centi),
                used: fmt_centi(used),
                remaining: l.authorized_units.map(|a| fmt_centi(a - used)),
                authorized_centi: l.authorized_units,
                used_centi: used,
            }
        })
        .collect()
}

/// A delivered service to record.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub code: String,
    pub units: String,
    pub date: String,
    pub provider: Option<String>,
}

/// What became of a recorded service.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub service_id: i64,
    pub request_id: String,
    pub line: Option<i64>,
    /// `recorded` or `flagged`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    pub remaining: Option<String>,
    pub status: String,
}

fn line_certified(l: &LineRow) -> bool {
    matches!(
        l.status.as_str(),
        "approved" | "partially_approved" | "modified"
    ) && l.authorized_units.is_none_or(|u| u > 0)
}

/// Finds the line a service counts against, or why none fits.
fn match_line<'a>(
    lines: &'a [LineBalance],
    rows: &[LineRow],
    code: &str,
    date: &str,
    units: i64,
) -> (Option<&'a LineBalance>, Option<String>) {
    let certified: Vec<&LineBalance> = lines
        .iter()
        .filter(|b| rows.iter().any(|r| r.line == b.line && line_certified(r)))
        .collect();
    let by_code: Vec<&LineBalance> = certified
        .iter()
        .copied()
        .filter(|b| b.procedure_code.as_deref() == Some(code))
        .collect();
    if by_code.is_empty() {
        let known: Vec<&str> = certified
            .iter()
            .filter_map(|b| b.procedure_code.as_deref())
            .collect();
        return (
            None,
            Some(format!(
                "procedure {code} is not authorized (authorized codes: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )),
        );
    }
    let in_dates = |b: &&LineBalance| {
        b.start_date.as_deref().is_none_or(|s| date >= s)
            && b.end_date.as_deref().is_none_or(|e| date <= e)
    };
    let dated: Vec<&LineBalance> = by_code.iter().copied().filter(in_dates).collect();
    let Some(first) = dated.first() else {
        let b = by_code[0];
        return (
            Some(b),
            Some(format!(
                "service date {date} is outside the authorized period {} to {} of line {}",
                b.start_date.as_deref().unwrap_or("?"),
                b.end_date.as_deref().unwrap_or("?"),
                b.line
            )),
        );
    };
    // The first dated line with enough units left, else the first dated line, over.
    if let Some(b) = dated
        .iter()
        .find(|b| b.remaining_centi().is_none_or(|r| r >= units))
    {
        return (Some(b), None);
    }
    let b = *first;
    (
        Some(b),
        Some(format!(
            "over the authorization: {} {} asked, {} of {} left on line {}",
            fmt_centi(units),
            b.unit.as_deref().unwrap_or("units"),
            fmt_centi(b.remaining_centi().unwrap_or(0).max(0)),
            fmt_centi(b.authorized_centi.unwrap_or(0)),
            b.line
        )),
    )
}

impl Tracker {
    /// Records a delivered service against record `id`; `corrects` voids an earlier service
    /// and records this one in its place, in one transaction.
    pub async fn record_service(
        &self,
        id: &str,
        service: &Delivered,
        actor: &str,
        corrects: Option<i64>,
    ) -> Result<Recorded> {
        let units = to_centi(&service.units)
            .map_err(|e| TrackingError::Invalid(format!("--units: {e}")))?;
        if units == 0 {
            return Err(TrackingError::Invalid("--units must be above 0".into()));
        }
        let date = Date::parse(&service.date)
            .map_err(|e| TrackingError::Invalid(format!("--date: {e}")))?
            .to_string();
        let code = service.code.trim().to_ascii_uppercase();
        if code.is_empty() || code.len() > 48 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(TrackingError::Invalid(format!(
                "--code {:?}: a procedure code is letters and digits",
                service.code
            )));
        }
        let row = self.record(id).await?;
        let mut state = State::parse(&row.status).map_err(TrackingError::Invalid)?;
        let mut writes = Vec::new();
        // Strict compare-and-set: a service recorded concurrently against the same record
        // changes `updated_at`, so one of two racing writers fails instead of over-counting.
        let mut change = RequestChange {
            id: row.id.clone(),
            expected_status: row.status.clone(),
            expected_updated_at: Some(row.updated_at),
            at: self.clock.now_ms(),
            ..Default::default()
        };
        let today = self.clock.today().to_string();

        // An authorization past its end date expires first.
        if state.certified() && row.end_date.as_deref().is_some_and(|e| today.as_str() > e) {
            change.status = Some(State::Expired.as_str().into());
            writes.push(Write::ChangeRequest(change.clone()));
            writes.push(self.event(
                Some(id),
                "system",
                "expired",
                Some(state),
                Some(State::Expired),
                Some(format!(
                    "the authorization ended on {}",
                    row.end_date.clone().unwrap_or_default()
                )),
                None,
            ));
            change.expected_status = State::Expired.as_str().into();
            change.expected_updated_at = None;
            change.status = None;
            state = State::Expired;
        }

        let mut services = self.store.services(id).await?;
        if let Some(c) = corrects {
            let old = services.iter().find(|s| s.id == c).ok_or_else(|| {
                TrackingError::NotFound(format!("record {id} has no service {c}"))
            })?;
            if old.state == "voided" {
                return Err(TrackingError::Illegal(format!(
                    "service {c} is already voided"
                )));
            }
            writes.push(Write::VoidService {
                id: c,
                reason: "corrected".into(),
                at: self.clock.now_ms(),
            });
            services.retain(|s| s.id != c);
        }
        let lines = self.store.current_lines(id).await?;
        let balance = balances(&lines, &services);

        let violation: Option<String>;
        let mut line: Option<i64> = None;
        if state == State::Expired {
            violation = Some(format!(
                "the authorization expired on {}",
                row.end_date.clone().unwrap_or_default()
            ));
        } else if !state.certified() {
            violation = Some(format!(
                "record {id} is {state}: services count only against a certified authorization"
            ));
        } else {
            let (l, v) = match_line(&balance, &lines, &code, &date, units);
            line = l.map(|b| b.line);
            violation = v;
        }

        let mode = self.policy.out_of_authorization;
        if let Some(reason) = &violation {
            let refuse = mode == OutOfAuthorization::Refuse || !state.certified();
            if refuse {
                writes.push(self.event(
                    Some(id),
                    actor,
                    "service_refused",
                    None,
                    None,
                    Some(reason.clone()),
                    Some(format!("{code} x{} on {date}", fmt_centi(units))),
                ));
                // The expiry (when found now) and the refusal are kept; the service is not,
                // and a correction that is refused leaves the corrected service alone.
                writes.retain(|w| !matches!(w, Write::VoidService { .. }));
                self.store.apply(&writes).await?;
                return Err(TrackingError::Refused(reason.clone()));
            }
        }

        let svc_state = if violation.is_some() {
            "flagged"
        } else {
            "recorded"
        };
        writes.push(Write::Service(NewService {
            request_id: id.to_owned(),
            line,
            procedure_code: code.clone(),
            units,
            service_date: date.clone(),
            provider: service.provider.clone(),
            state: svc_state.into(),
            flag: violation.clone(),
            corrects_id: corrects,
            actor: actor.to_owned(),
            at: self.clock.now_ms(),
        }));
        let service_index = writes.len() - 1;
        writes.push(self.event(
            Some(id),
            actor,
            if violation.is_some() {
                "service_flagged"
            } else {
                "service_recorded"
            },
            None,
            None,
            violation.clone(),
            Some(format!("{code} x{} on {date}", fmt_centi(units))),
        ));

        // Remaining after this one, and the state that follows.
        let mut after = balance.clone();
        if let Some(l) = line
            && let Some(b) = after.iter_mut().find(|b| b.line == l)
        {
            b.used_centi += units;
        }
        let exhausted = after
            .iter()
            .filter(|b| lines.iter().any(|r| r.line == b.line && line_certified(r)))
            .all(|b| b.remaining_centi().is_some_and(|r| r <= 0));
        let target = if exhausted {
            State::Exhausted
        } else {
            State::Active
        };
        if state != target && state.can_move_to(target) {
            change.status = Some(target.as_str().into());
            writes.push(Write::ChangeRequest(change.clone()));
            writes.push(self.event(
                Some(id),
                "system",
                target.as_str(),
                Some(state),
                Some(target),
                Some(if exhausted {
                    "every authorized unit is used".into()
                } else {
                    "services are being delivered".into()
                }),
                None,
            ));
            state = target;
        } else {
            // Serialize with other changes to the record: the status must still be ours.
            writes.push(Write::ChangeRequest(change.clone()));
        }
        let applied = self.store.apply(&writes).await?;
        let service_id = match applied.get(service_index) {
            Some(Applied::Id(i)) => *i,
            _ => {
                return Err(TrackingError::Invalid(
                    "the store returned no service id".into(),
                ));
            }
        };
        let remaining = line
            .and_then(|l| after.iter().find(|b| b.line == l))
            .and_then(|b| b.remaining_centi())
            .map(fmt_centi);
        Ok(Recorded {
            service_id,
            request_id: id.to_owned(),
            line,
            state: svc_state.into(),
            flag: violation,
            remaining,
            status: state.as_str().into(),
        })
    }

    /// Voids a recorded service; an exhausted authorization with units back becomes active.
    pub async fn void_service(&self, service_id: i64, actor: &str, reason: &str) -> Result<State> {
        if reason.trim().is_empty() {
            return Err(TrackingError::Invalid("a void needs a reason".into()));
        }
        let svc = self
            .store
            .service(service_id)
            .await?
            .ok_or_else(|| TrackingError::NotFound(format!("no service {service_id}")))?;
        if svc.state == "voided" {
            return Err(TrackingError::Illegal(format!(
                "service {service_id} is already voided"
            )));
        }
        let row = self.record(&svc.request_id).await?;
        let state = State::parse(&row.status).map_err(TrackingError::Invalid)?;
        let mut change = RequestChange {
            id: row.id.clone(),
            expected_status: row.status.clone(),
            expected_updated_at: Some(row.updated_at),
            at: self.clock.now_ms(),
            ..Default::default()
        };
        let mut writes = vec![
            Write::VoidService {
                id: service_id,
                reason: reason.to_owned(),
                at: self.clock.now_ms(),
            },
            self.event(
                Some(&row.id),
                actor,
                "service_voided",
                None,
                None,
                Some(reason.to_owned()),
                Some(format!("service {service_id}")),
            ),
        ];
        let mut to = state;
        if state == State::Exhausted {
            to = State::Active;
            change.status = Some(to.as_str().into());
            writes.push(self.event(
                Some(&row.id),
                "system",
                "active",
                Some(state),
                Some(to),
                Some("units given back by a void".into()),
                None,
            ));
        }
        writes.push(Write::ChangeRequest(change));
        self.store.apply(&writes).await?;
        Ok(to)
    }
}
