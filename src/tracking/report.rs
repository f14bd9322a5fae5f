//! Reporting: counts by status, payer and service type; the CMS-0057-F yearly figures computed
//! from the event log.

use std::collections::HashMap;

use serde::Serialize;

use super::{Result, State, Tracker};
use crate::store::CountRow;

#[derive(Debug, Clone, Default, Serialize)]
pub struct DecisionFigures {
    pub decided: i64,
    pub approved: i64,
    pub denied: i64,
    pub approved_after_appeal: i64,
    pub percent_approved: Option<f64>,
    pub percent_denied: Option<f64>,
    pub percent_approved_after_appeal: Option<f64>,
    pub average_decision_hours: Option<f64>,
    pub median_decision_hours: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    /// Records created in the period, by status, payer and service type.
    pub counts: Vec<CountRow>,
    pub by_status: HashMap<String, i64>,
    pub by_payer: HashMap<String, i64>,
    pub by_service_type: HashMap<String, i64>,
    /// First final payer decisions (approved, partially approved, modified, denied) in the
    /// period: all, standard and expedited.
    pub cms0057: HashMap<String, DecisionFigures>,
}

fn pct(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| (n as f64 * 1000.0 / d as f64).round() / 10.0)
}

/// One decided record: approved, after an appeal, hours from submission to decision.
type Decided = (bool, bool, Option<f64>);

fn figures(rows: &[Decided]) -> DecisionFigures {
    let decided = rows.len() as i64;
    let approved = rows.iter().filter(|r| r.0).count() as i64;
    let after_appeal = rows.iter().filter(|r| r.0 && r.1).count() as i64;
    let mut hours: Vec<f64> = rows.iter().filter_map(|r| r.2).collect();
    hours.sort_by(|a, b| a.total_cmp(b));
    let avg = (!hours.is_empty())
        .then(|| (hours.iter().sum::<f64>() / hours.len() as f64 * 10.0).round() / 10.0);
    let median = (!hours.is_empty()).then(|| {
        let n = hours.len();
        let m = if n % 2 == 1 {
            hours[n / 2]
        } else {
            (hours[n / 2 - 1] + hours[n / 2]) / 2.0
        };
        (m * 10.0).round() / 10.0
    });
    DecisionFigures {
        decided,
        approved,
        denied: decided - approved,
        approved_after_appeal: after_appeal,
        percent_approved: pct(approved, decided),
        percent_denied: pct(decided - approved, decided),
        percent_approved_after_appeal: pct(after_appeal, decided),
        average_decision_hours: avg,
        median_decision_hours: median,
    }
}

impl Tracker {
    /// The report for `[from, to)` (Unix ms).
    pub async fn report(&self, from: i64, to: i64) -> Result<Report> {
        let counts = self.store.request_counts(from, to).await?;
        let mut by_status = HashMap::new();
        let mut by_payer = HashMap::new();
        let mut by_service_type = HashMap::new();
        for c in &counts {
            *by_status.entry(c.status.clone()).or_default() += c.count;
            *by_payer.entry(c.payer.clone()).or_default() += c.count;
            *by_service_type.entry(c.service_type.clone()).or_default() += c.count;
        }

        // From the event log: the first final decision of each record in the period, and the
        // time since its (latest earlier) submission.
        let events = self.store.events_between(0, to).await?;
        let mut submitted: HashMap<String, i64> = HashMap::new();
        let mut seen: HashMap<String, ()> = HashMap::new();
        let mut rows: HashMap<&'static str, Vec<Decided>> = HashMap::new();
        for e in &events {
            let Some(id) = &e.request_id else { continue };
            if e.action == "submitted" {
                submitted.insert(id.clone(), e.at);
                continue;
            }
            if e.action != "decision_received" || e.at < from || seen.contains_key(id) {
                continue;
            }
            let Some(to_state) = e.to_status.as_deref().and_then(|s| State::parse(s).ok()) else {
                continue;
            };
            if !to_state.is_final_decision() {
                continue;
            }
            seen.insert(id.clone(), ());
            let Some(row) = self.store.request(id).await? else {
                continue;
            };
            let approved = to_state != State::Denied;
            let appeal = row.link_kind.as_deref() == Some("appeal");
            let hours = submitted.get(id).map(|s| (e.at - s) as f64 / 3_600_000.0);
            let r = (approved, appeal, hours);
            rows.entry("all").or_default().push(r);
            rows.entry(if row.urgency == "expedited" {
                "expedited"
            } else {
                "standard"
            })
            .or_default()
            .push(r);
        }
        let mut cms0057 = HashMap::new();
        for k in ["all", "standard", "expedited"] {
            cms0057.insert(
                k.to_owned(),
                figures(rows.get(k).map(Vec::as_slice).unwrap_or(&[])),
            );
        }
        Ok(Report {
            from: super::iso(from),
            to: super::iso(to),
            counts,
            by_status,
            by_payer,
            by_service_type,
            cms0057,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percent() {
        let f = figures(&[
            (true, false, Some(10.0)),
            (false, false, Some(30.0)),
            (true, true, Some(20.0)),
            (true, false, None),
        ]);
        assert_eq!(f.decided, 4);
        assert_eq!(f.approved, 3);
        assert_eq!(f.denied, 1);
        assert_eq!(f.approved_after_appeal, 1);
        assert_eq!(f.percent_approved, Some(75.0));
        assert_eq!(f.median_decision_hours, Some(20.0));
        assert_eq!(f.average_decision_hours, Some(20.0));
        assert_eq!(figures(&[]).percent_approved, None);
    }
}
