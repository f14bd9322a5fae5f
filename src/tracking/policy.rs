//! Configuration of the rules, kept as data (in the store's settings, key `policy`):
//! the approval chain, who may draft and send, renewal thresholds, clocks, what to do with a
//! service outside its authorization.

use serde::{Deserialize, Serialize};

/// One step of the internal approval chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStep {
    /// The role that decides at this step (an actor's role, see `priorauth actors`).
    pub role: String,
    /// The step applies only when the estimated cost is above this many cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above_cost_cents: Option<i64>,
}

/// What happens to a service outside its authorization (dates, code, units, expiry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutOfAuthorization {
    /// Not recorded; the attempt is logged with the reason.
    Refuse,
    /// Recorded, marked `flagged` with the reason.
    Flag,
}

/// When to raise a renewal alert. The most specific matching rule wins (payer and service type,
/// then payer, then service type, then the default with neither).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewalRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
    /// Alert when the remaining units of a line fall to this count or below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_units: Option<u32>,
    /// Alert when the remaining units of a line fall to this percent of the authorized or below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_percent: Option<u32>,
    /// Alert when the authorization ends within this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_before_end: Option<u32>,
}

/// CMS-0057-F decision clocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clocks {
    pub expedited_hours: u32,
    pub standard_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Roles that may draft and send a record into review.
    pub drafter_roles: Vec<String>,
    /// Roles that may send a ready (approved) record to the payer.
    pub sender_roles: Vec<String>,
    /// The review steps, in order; a step whose cost condition does not hold is skipped.
    pub approval: Vec<ApprovalStep>,
    pub out_of_authorization: OutOfAuthorization,
    pub renewal: Vec<RenewalRule>,
    pub clocks: Clocks,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            drafter_roles: vec!["clinician".into()],
            sender_roles: vec!["clinician".into(), "supervisor".into()],
            approval: vec![
                ApprovalStep {
                    role: "supervisor".into(),
                    above_cost_cents: None,
                },
                ApprovalStep {
                    role: "finance".into(),
                    above_cost_cents: Some(100_000),
                },
            ],
            out_of_authorization: OutOfAuthorization::Refuse,
            renewal: vec![RenewalRule {
                payer: None,
                service_type: None,
                remaining_units: Some(2),
                remaining_percent: Some(20),
                days_before_end: Some(14),
            }],
            clocks: Clocks {
                expedited_hours: 72,
                standard_days: 7,
            },
        }
    }
}

impl Policy {
    /// The first step at or after `from` that applies to a request of this cost.
    pub fn next_step(&self, from: usize, cost_cents: i64) -> Option<usize> {
        (from..self.approval.len()).find(|&i| match self.approval[i].above_cost_cents {
            Some(t) => cost_cents > t,
            None => true,
        })
    }

    /// The renewal rule for a payer and service type.
    pub fn renewal_rule(&self, payer: &str, service_type: &str) -> Option<&RenewalRule> {
        let score = |r: &RenewalRule| -> Option<u8> {
            let p = match &r.payer {
                Some(p) if p == payer => 2,
                Some(_) => return None,
                None => 0,
            };
            let s = match &r.service_type {
                Some(s) if s == service_type => 1,
                Some(_) => return None,
                None => 0,
            };
            Some(p + s)
        };
        self.renewal
            .iter()
            .filter_map(|r| score(r).map(|s| (s, r)))
            .max_by_key(|(s, _)| *s)
            .map(|(_, r)| r)
    }

    /// The CMS-0057-F decision deadline of a request sent at `submitted_at` (Unix ms):
    /// 72 hours when expedited, 7 calendar days when standard (as configured).
    pub fn decision_due(&self, urgency: &str, submitted_at: i64) -> i64 {
        if urgency == "expedited" {
            submitted_at + i64::from(self.clocks.expedited_hours) * 3_600_000
        } else {
            submitted_at + i64::from(self.clocks.standard_days) * 86_400_000
        }
    }

    pub fn from_json(s: &str) -> Result<Policy, String> {
        let p: Policy = serde_json::from_str(s).map_err(|e| format!("policy: {e}"))?;
        for step in &p.approval {
            if step.role.trim().is_empty() {
                return Err("policy: an approval step needs a role".into());
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_cost() {
        let p = Policy::default();
        assert_eq!(p.next_step(0, 50_000), Some(0));
        assert_eq!(
            p.next_step(1, 50_000),
            None,
            "finance only above the threshold"
        );
        assert_eq!(p.next_step(1, 150_000), Some(1));
    }

    #[test]
    fn decision_clocks() {
        let p = Policy::default();
        assert_eq!(p.decision_due("expedited", 0), 72 * 3_600_000);
        assert_eq!(p.decision_due("standard", 1_000), 1_000 + 7 * 86_400_000);
    }

    #[test]
    fn most_specific_renewal_rule() {
        let mut p = Policy::default();
        p.renewal.push(RenewalRule {
            payer: Some("SYNPLAN01".into()),
            service_type: Some("PT".into()),
            remaining_units: Some(4),
            remaining_percent: None,
            days_before_end: None,
        });
        assert_eq!(
            p.renewal_rule("SYNPLAN01", "PT").unwrap().remaining_units,
            Some(4)
        );
        assert_eq!(
            p.renewal_rule("OTHER", "PT").unwrap().remaining_units,
            Some(2)
        );
    }
}
