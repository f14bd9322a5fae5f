//! What the payer answered: per request and per service line.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::codes::*;
use super::request::*;
use super::values::*;

/// A 278 response (or PAS ClaimResponse): what it echoes of the request, and the decision.
/// A payer may reject a request before the event level, so every echoed part is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationResponse {
    /// BHT03: the submitter reference of the request this answers.
    pub submitter_reference: Text,
    /// BHT04/05: when the response was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<Time>,
    /// BHT06: 18 (final), 19 (further updates to follow), RU...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_type: Option<Code>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub umo: Option<Entity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<Entity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<Entity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependent: Option<Entity>,
    /// The echoed patient event (without what belongs to the decision: HCR, AAA, TRN,
    /// certification dates, REF*NT, HSD, MSG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<PatientEvent>,
    /// The echoed service lines, in order; `decision.lines[i].line` points into this list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceLine>,
    pub decision: Decision,
}

impl AuthorizationResponse {
    /// A response to `request` carrying `decision`: the parties, event and lines are echoed,
    /// the requester's trace numbers are returned as referenced (TRN01 = 2) ahead of any the
    /// decision already has.
    pub fn answering(
        request: &AuthorizationRequest,
        mut decision: Decision,
    ) -> AuthorizationResponse {
        let mut event = request.event.clone();
        let mut traces: Vec<TraceNumber> = event
            .trace_numbers
            .drain(..)
            .map(|t| TraceNumber {
                kind: TraceType::Referenced,
                ..t
            })
            .collect();
        traces.append(&mut decision.trace_numbers);
        decision.trace_numbers = traces;
        event.message = None;
        event.quantity = None;
        let services = request
            .services
            .iter()
            .map(|l| {
                let mut l = l.clone();
                l.trace_numbers = vec![];
                l.message = None;
                l.quantity = None;
                l
            })
            .collect();
        AuthorizationResponse {
            submitter_reference: request.submitter_reference.clone(),
            created_date: None,
            created_time: None,
            transaction_type: None,
            umo: Some(request.umo.clone()),
            requester: Some(request.requester.clone()),
            subscriber: Some(request.subscriber.clone()),
            dependent: request.dependent.clone(),
            event: Some(event),
            services,
            decision,
        }
    }

    /// Whether this response answers `request`: the same BHT03, and every trace number the
    /// requester sent (TRN01 = 1) echoed back (TRN01 = 2) with the same originator.
    pub fn answers(&self, request: &AuthorizationRequest) -> bool {
        if self.submitter_reference != request.submitter_reference {
            return false;
        }
        request
            .event
            .trace_numbers
            .iter()
            .filter(|t| t.kind == TraceType::Current)
            .all(|t| {
                self.decision.trace_numbers.iter().any(|r| {
                    r.kind == TraceType::Referenced
                        && r.reference == t.reference
                        && r.originator == t.originator
                })
            })
    }
}

/// The decision on a whole request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// The status word: approved, partially_approved, denied, pended, modified, cancelled,
    /// contact_payer, no_action_required or rejected.
    pub status: Status,
    /// HCR01 at the event level (absent when the payer rejected the request with AAA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionCode>,
    /// HCR02: the certification (authorization) number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certification_number: Option<Text>,
    /// HCR03: the reason for the decision (X12 review decision reason code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Code>,
    /// HCR04: second surgical opinion required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_surgical_opinion: Option<bool>,
    /// DTP*102 / 007 / 036 at the event level.
    #[serde(default, skip_serializing_if = "Certification::is_empty")]
    pub certification: Certification,
    /// HSD at the event level in a response: what was approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_quantity: Option<ServiceQuantity>,
    /// REF*NT: the payer's administrative reference (tracking number of a pended request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub administrative_reference: Option<Text>,
    /// TRN: the payer's trace numbers (TRN01 = 1 from the UMO) and the echoed ones (TRN01 = 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace_numbers: Vec<TraceNumber>,
    /// AAA at any level: why the request (or a part of it) was rejected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejects: Vec<Reject>,
    /// MSG: the payer's free text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Text>,
    /// The decision on each service line, in the order of the 2000F loops.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<LineDecision>,
}

/// Certification dates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Certification {
    /// DTP*102: when the certification was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<Date>,
    /// DTP*007: effective date (or period).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<DateOrRange>,
    /// DTP*036: expiration date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Date>,
}

impl Certification {
    pub fn is_empty(&self) -> bool {
        self.issued.is_none() && self.effective.is_none() && self.expires.is_none()
    }
}

/// The decision on one service line (2000F).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LineDecision {
    /// 1-based position of the service line in the request.
    pub line: usize,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certification_number: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Code>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_surgical_opinion: Option<bool>,
    #[serde(default, skip_serializing_if = "Certification::is_empty")]
    pub certification: Certification,
    /// HSD on the line in a response: the approved quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_quantity: Option<ServiceQuantity>,
    /// The units on the echoed SV1/SV2/SV3 (SV104 / SV205 / SV306), as the payer returned them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_units: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub administrative_reference: Option<Text>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace_numbers: Vec<TraceNumber>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejects: Vec<Reject>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Text>,
}

/// AAA: a request validation failure reported by the payer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    /// The loop the AAA was in (umo, requester, subscriber, dependent, event, service).
    pub level: Level,
    /// For a service-level reject, which line (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// AAA01.
    pub validity: Validity,
    /// AAA03: the reject reason code (e.g. 15 required data missing, 33 input errors,
    /// 72 invalid member id, 75 subscriber not found...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Code>,
    /// AAA04.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<FollowUpAction>,
}

/// How the whole request's status follows from what the payer sent.
/// An event-level HCR decides; with none, the lines decide; with no HCR anywhere, an AAA
/// reject makes it `rejected`; a response with neither is `contact_payer`.
pub fn overall_status(
    event: Option<ActionCode>,
    lines: &[LineDecision],
    rejects: &[Reject],
) -> Status {
    if let Some(a) = event {
        return a.into();
    }
    let actions: Vec<ActionCode> = lines.iter().filter_map(|l| l.action).collect();
    if actions.is_empty() {
        if !rejects.is_empty() || lines.iter().any(|l| !l.rejects.is_empty()) {
            return Status::Rejected;
        }
        return Status::ContactPayer;
    }
    let all = |a: ActionCode| actions.iter().all(|x| *x == a);
    if all(actions[0]) && actions.len() == lines.len() {
        return actions[0].into();
    }
    let any_certified = actions.iter().any(|a| {
        matches!(
            a,
            ActionCode::Certified | ActionCode::CertifiedPartial | ActionCode::Modified
        )
    });
    if any_certified {
        return Status::PartiallyApproved;
    }
    if actions.contains(&ActionCode::Pended) {
        return Status::Pended;
    }
    actions[0].into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(a: Option<ActionCode>) -> LineDecision {
        LineDecision {
            line: 1,
            status: a.map(Status::from).unwrap_or(Status::Rejected),
            action: a,
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
        }
    }

    #[test]
    fn status_rules() {
        use ActionCode::*;
        assert_eq!(
            overall_status(Some(Modified), &[line(Some(Certified))], &[]),
            Status::Modified
        );
        assert_eq!(
            overall_status(None, &[line(Some(Certified)), line(Some(Certified))], &[]),
            Status::Approved
        );
        assert_eq!(
            overall_status(
                None,
                &[line(Some(Certified)), line(Some(NotCertified))],
                &[]
            ),
            Status::PartiallyApproved
        );
        assert_eq!(
            overall_status(None, &[line(Some(NotCertified)), line(Some(Pended))], &[]),
            Status::Pended
        );
        let r = Reject {
            level: Level::Event,
            line: None,
            validity: Validity::Invalid,
            reason: Some(Code::parse("33").unwrap()),
            follow_up: Some(FollowUpAction::CorrectAndResubmit),
        };
        assert_eq!(overall_status(None, &[], &[r]), Status::Rejected);
        assert_eq!(overall_status(None, &[], &[]), Status::ContactPayer);
    }
}
