//! Alerts and clocks: renewals (units or days left), CMS-0057-F decision clocks, expiries,
//! and everything else that needs someone's attention today.

use std::collections::HashSet;

use serde::Serialize;

use super::ledger::balances;
use super::{Result, State, Tracker, fmt_centi, iso};
use crate::domain::Date;
use crate::store::{AlertRow, NewAlert, RequestChange, Write};

/// What `priorauth alerts` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Attention {
    pub today: String,
    /// Open alerts (raised now or earlier and still true).
    pub alerts: Vec<AlertRow>,
    /// Alerts that no longer hold and were closed by this run.
    pub resolved: u64,
    /// Records moved to expired by this run.
    pub expired: Vec<String>,
}

fn days_between(a: &str, b: &str) -> Option<i64> {
    Some(Date::parse(b).ok()?.days_since_epoch() - Date::parse(a).ok()?.days_since_epoch())
}

impl Tracker {
    /// The decision deadline of a record sent at `submitted_at` (Unix ms).
    pub fn decision_due(&self, urgency: &str, submitted_at: i64) -> i64 {
        self.policy.decision_due(urgency, submitted_at)
    }

    /// Evaluates every rule now: raises new alerts, closes those that no longer hold, expires
    /// authorizations past their end date; returns what needs attention today.
    pub async fn attention(&self) -> Result<Attention> {
        let today = self.clock.today().to_string();
        let now = self.clock.now_ms();
        let mut raise: Vec<NewAlert> = Vec::new();
        let mut writes: Vec<Write> = Vec::new();
        let mut expired = Vec::new();
        let alert = |id: &str, kind: &str, message: String, due: Option<String>| NewAlert {
            request_id: Some(id.to_owned()),
            kind: kind.to_owned(),
            dedupe_key: format!("{kind}:{id}"),
            message,
            due,
            at: now,
        };

        let certified: Vec<&str> = [
            State::Approved,
            State::PartiallyApproved,
            State::Modified,
            State::Active,
            State::Exhausted,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect();
        for row in self.store.requests_in(&certified).await? {
            let state = State::parse(&row.status).map_err(super::TrackingError::Invalid)?;
            if let Some(end) = &row.end_date
                && today.as_str() > end.as_str()
            {
                writes.push(Write::ChangeRequest(RequestChange {
                    id: row.id.clone(),
                    expected_status: row.status.clone(),
                    status: Some(State::Expired.as_str().into()),
                    at: now,
                    ..Default::default()
                }));
                writes.push(self.event(
                    Some(&row.id),
                    "system",
                    "expired",
                    Some(state),
                    Some(State::Expired),
                    Some(format!("the authorization ended on {end}")),
                    None,
                ));
                expired.push(row.id.clone());
                continue;
            }
            let followed = !self.store.followers(&row.id).await?.is_empty();
            let Some(rule) = self.policy.renewal_rule(&row.payer, &row.service_type) else {
                continue;
            };
            if followed {
                continue; // a renewal or extension is already on its way
            }
            let lines = self.store.current_lines(&row.id).await?;
            let services = self.store.services(&row.id).await?;
            for b in balances(&lines, &services) {
                let (Some(auth), Some(left)) = (b.authorized_centi, b.remaining_centi()) else {
                    continue;
                };
                if auth <= 0 {
                    continue;
                }
                let by_count = rule
                    .remaining_units
                    .is_some_and(|n| left <= i64::from(n) * 100);
                let by_percent = rule
                    .remaining_percent
                    .is_some_and(|p| left * 100 <= auth * i64::from(p));
                if by_count || by_percent {
                    let mut a = alert(
                        &row.id,
                        "renewal_units",
                        format!(
                            "line {} ({}): {} of {} {} left; request a renewal",
                            b.line,
                            b.procedure_code.as_deref().unwrap_or("?"),
                            fmt_centi(left.max(0)),
                            fmt_centi(auth),
                            b.unit.as_deref().unwrap_or("units")
                        ),
                        row.end_date.clone(),
                    );
                    a.dedupe_key = format!("renewal_units:{}:{}", row.id, b.line);
                    raise.push(a);
                }
            }
            if let (Some(days), Some(end)) = (rule.days_before_end, &row.end_date)
                && let Some(left) = days_between(&today, end)
                && left <= i64::from(days)
            {
                raise.push(alert(
                    &row.id,
                    "renewal_date",
                    format!("the authorization ends on {end} ({left} days); request a renewal"),
                    Some(end.clone()),
                ));
            }
        }

        for row in self
            .store
            .requests_in(&["submitted", "acknowledged", "pended"])
            .await?
        {
            let Some(sent) = row.submitted_at else {
                continue;
            };
            let due = self.decision_due(&row.urgency, sent);
            if now > due {
                raise.push(alert(
                    &row.id,
                    "payer_late",
                    format!(
                        "{} decision overdue: sent {}, due {} (CMS-0057-F)",
                        row.urgency,
                        iso(sent),
                        iso(due)
                    ),
                    Some(iso(due)),
                ));
            }
        }
        for row in self.store.requests_in(&["denied", "rejected"]).await? {
            if self.store.followers(&row.id).await?.is_empty() {
                raise.push(alert(
                    &row.id,
                    row.status.as_str(),
                    format!(
                        "{}: correct and resubmit, or appeal",
                        if row.status == "denied" {
                            "denied by the payer"
                        } else {
                            "rejected (errors)"
                        }
                    ),
                    None,
                ));
            }
        }
        for row in self.store.requests_in(&["internal_review"]).await? {
            let role = row
                .approval_step
                .and_then(|s| self.policy.approval.get(s as usize))
                .map(|s| s.role.clone())
                .unwrap_or_else(|| "?".into());
            raise.push(alert(
                &row.id,
                "review",
                format!("awaiting {role} review"),
                None,
            ));
        }
        for item in self.store.items_with_outcome("unmatched").await? {
            raise.push(NewAlert {
                request_id: None,
                kind: "unmatched".into(),
                dedupe_key: format!("unmatched:{}:{}", item.message_id, item.position),
                message: format!(
                    "received {} ({}) matches no record: {}",
                    item.kind,
                    item.reference.unwrap_or_default(),
                    item.detail.unwrap_or_default()
                ),
                due: None,
                at: now,
            });
        }

        // Close what no longer holds.
        let keys: HashSet<&str> = raise.iter().map(|a| a.dedupe_key.as_str()).collect();
        let mut resolve = Vec::new();
        for open in self.store.open_alerts().await? {
            if !keys.contains(open.dedupe_key.as_str()) {
                resolve.push(Write::ResolveAlert {
                    dedupe_key: open.dedupe_key.clone(),
                    at: now,
                });
            }
        }
        let resolved = resolve.len() as u64;
        writes.extend(resolve);
        writes.extend(raise.into_iter().map(Write::Alert));
        self.store.apply(&writes).await?;
        Ok(Attention {
            today,
            alerts: self.store.open_alerts().await?,
            resolved,
            expired,
        })
    }
}
