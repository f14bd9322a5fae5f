//! The decision engine: a request and the rules give a domain `AuthorizationResponse` now, and
//! for a pend, the one that follows after a delay.

use std::time::Duration;

use super::Channel;
use super::rules::{Action, Match, Rule, Rules};
use crate::domain::*;

/// What a request is matched on.
pub struct Subject<'a> {
    pub request: &'a AuthorizationRequest,
    pub channel: Channel,
    /// The CORE ReceiverID or ISA08 (an alias of the payer besides the UMO's id).
    pub receiver: Option<&'a str>,
}

fn line_units(line: &ServiceLine) -> Option<f64> {
    line.service
        .as_ref()
        .and_then(Service::quantity)
        .or_else(|| line.quantity.as_ref().and_then(|q| q.quantity.as_ref()))
        .map(Decimal::to_f64)
}

impl Match {
    /// The criteria that concern the whole request (member, payer, event UM02, channel).
    fn request_holds(&self, s: &Subject) -> bool {
        let r = s.request;
        if let Some(c) = self.channel
            && c != s.channel
        {
            return false;
        }
        if let Some(m) = &self.member
            && r.member_id().map(|x| x.as_str()) != Some(m.as_str())
        {
            return false;
        }
        if let Some(p) = &self.payer {
            let umo = r.umo.id.as_ref().map(|i| i.value());
            if umo != Some(p.as_str()) && s.receiver != Some(p.as_str()) {
                return false;
            }
        }
        true
    }

    /// Whether the rule applies to one service line of the request.
    pub fn holds_for_line(&self, s: &Subject, line: &ServiceLine) -> bool {
        if !self.request_holds(s) {
            return false;
        }
        if let Some(c) = &self.procedure {
            let code = line
                .service
                .as_ref()
                .and_then(Service::procedure)
                .map(|p| p.code.as_str());
            if code != Some(c.as_str()) {
                return false;
            }
        }
        if let Some(n) = self.units_above
            && !line_units(line).is_some_and(|u| u > n)
        {
            return false;
        }
        if let Some(t) = self.certification_type {
            let ct = line
                .review
                .as_ref()
                .map(|r| r.certification_type)
                .unwrap_or(s.request.event.review.certification_type);
            if ct != t {
                return false;
            }
        }
        true
    }

    /// Whether the rule applies to a request without service lines (a line criterion
    /// never holds; units are the event's HSD02).
    pub fn holds_for_event(&self, s: &Subject) -> bool {
        if !self.request_holds(s) || self.procedure.is_some() {
            return false;
        }
        if let Some(n) = self.units_above {
            let u = s
                .request
                .event
                .quantity
                .as_ref()
                .and_then(|q| q.quantity.as_ref())
                .map(Decimal::to_f64);
            if !u.is_some_and(|u| u > n) {
                return false;
            }
        }
        if let Some(t) = self.certification_type
            && s.request.event.review.certification_type != t
        {
            return false;
        }
        true
    }

    /// Whether the request as a whole is concerned: the event, or any of its lines.
    pub fn holds(&self, s: &Subject) -> bool {
        if s.request.services.is_empty() {
            self.holds_for_event(s)
        } else {
            s.request.services.iter().any(|l| self.holds_for_line(s, l))
        }
    }
}

/// The mock's answer to a new request.
pub struct Decided {
    /// The response given now.
    pub now: AuthorizationResponse,
    /// For a pend: when, and the final response.
    pub later: Option<(Duration, AuthorizationResponse)>,
    /// The names (or positions) of the rules that applied.
    pub rules: Vec<String>,
}

type Pick<'r> = (Action, Option<&'r Rule>);

/// Decides a new request. `number` makes the certification number of this authorization.
pub fn decide(rules: &Rules, s: &Subject, number: u64, today: Date) -> Decided {
    let r = s.request;
    let cert = format!("{}{:08}", rules.certification_prefix, number);
    let name = |rule: &Rule| -> String {
        rule.name.clone().unwrap_or_else(|| {
            let i = rules
                .rules
                .iter()
                .position(|x| std::ptr::eq(x, rule))
                .unwrap_or(0);
            format!("rule[{i}]")
        })
    };
    let picks: Vec<Pick> = if r.services.is_empty() {
        let rule = rules.rules.iter().find(|x| x.when.holds_for_event(s));
        vec![(rule.map_or(Action::Approve, |x| x.action), rule)]
    } else {
        r.services
            .iter()
            .map(|l| {
                let rule = rules.rules.iter().find(|x| x.when.holds_for_line(s, l));
                (rule.map_or(Action::Approve, |x| x.action), rule)
            })
            .collect()
    };
    let mut applied: Vec<String> = vec![];
    for (_, rule) in &picks {
        if let Some(rule) = rule {
            let n = name(rule);
            if !applied.contains(&n) {
                applied.push(n);
            }
        }
    }
    let pend = picks
        .iter()
        .filter(|(a, _)| *a == Action::Pend)
        .filter_map(|(_, rule)| rule.and_then(|x| x.after_ms))
        .max();
    // A reject now settles everything (no review took place), pend or not.
    let now_reject = picks.iter().any(|(a, _)| *a == Action::Reject);
    match pend {
        Some(ms) if !now_reject => {
            let finals: Vec<Pick> = picks
                .iter()
                .map(|(a, rule)| match (a, rule) {
                    (Action::Pend, Some(x)) => (x.then.unwrap_or(Action::Approve), *rule),
                    _ => (*a, *rule),
                })
                .collect();
            Decided {
                now: build(s, &picks, &cert, today),
                later: Some((Duration::from_millis(ms), build(s, &finals, &cert, today))),
                rules: applied,
            }
        }
        _ => Decided {
            now: build(s, &picks, &cert, today),
            later: None,
            rules: applied,
        },
    }
}

fn code(a: Action) -> Option<ActionCode> {
    match a {
        Action::Approve => Some(ActionCode::Certified),
        Action::Partial => Some(ActionCode::CertifiedPartial),
        Action::Modify => Some(ActionCode::Modified),
        Action::Deny => Some(ActionCode::NotCertified),
        Action::Pend => Some(ActionCode::Pended),
        Action::Reject => None,
    }
}

fn certifies(a: ActionCode) -> bool {
    matches!(
        a,
        ActionCode::Certified | ActionCode::CertifiedPartial | ActionCode::Modified
    )
}

fn text(s: &str) -> Option<Text> {
    Text::parse(s).ok()
}

fn build(s: &Subject, picks: &[Pick], cert: &str, today: Date) -> AuthorizationResponse {
    let r = s.request;
    let empty = Decision {
        status: Status::ContactPayer,
        action: None,
        certification_number: None,
        reason: None,
        second_surgical_opinion: None,
        certification: Certification::default(),
        approved_quantity: None,
        administrative_reference: None,
        trace_numbers: vec![],
        rejects: vec![],
        messages: vec![],
        lines: vec![],
    };
    let mut resp = AuthorizationResponse::answering(r, empty);
    let mut messages: Vec<Text> = vec![];
    for (_, rule) in picks {
        if let Some(m) = rule.and_then(|x| x.message.as_deref()).and_then(text)
            && !messages.contains(&m)
        {
            messages.push(m);
        }
    }
    let d = &mut resp.decision;
    let reject = picks.iter().find_map(|(a, rule)| match (a, rule) {
        (Action::Reject, Some(rule)) => Some(*rule),
        _ => None,
    });
    if let Some(rule) = reject {
        d.rejects.push(Reject {
            level: rule.level.unwrap_or(Level::Event),
            line: None,
            validity: Validity::Invalid,
            reason: rule.aaa.clone(),
            follow_up: Some(rule.follow_up.unwrap_or(FollowUpAction::CorrectAndResubmit)),
        });
        d.messages = messages;
        d.status = overall_status(None, &[], &d.rejects);
        return resp;
    }
    let cert_text = text(cert);
    let admin = text(&format!("ADM{cert}"));
    let pended_any = picks.iter().any(|(a, _)| *a == Action::Pend);
    if r.services.is_empty() {
        let (a, rule) = picks[0];
        let action = code(a);
        d.action = action;
        d.reason = rule.and_then(|x| x.reason.clone());
        if action.is_some_and(certifies) {
            d.certification_number.clone_from(&cert_text);
            d.certification.issued = Some(today);
            d.certification.effective = r
                .event
                .dates
                .iter()
                .find(|x| x.qualifier.as_str() == "AAH")
                .map(|x| x.date);
            if let Some(units) = rule.and_then(|x| x.approved_units.clone()) {
                d.approved_quantity = Some(ServiceQuantity {
                    unit: r
                        .event
                        .quantity
                        .as_ref()
                        .and_then(|q| q.unit)
                        .or(Some(UnitType::UnitCount)),
                    quantity: Some(units),
                    per: None,
                    sample_count: None,
                    period: None,
                    period_count: None,
                    delivery_pattern: None,
                    delivery_time: None,
                });
            }
        }
    } else {
        for (i, ((a, rule), line)) in picks.iter().zip(&r.services).enumerate() {
            let action = code(*a);
            let mut ld = LineDecision {
                line: i + 1,
                status: Status::ContactPayer,
                action,
                certification_number: None,
                reason: rule.and_then(|x| x.reason.clone()),
                second_surgical_opinion: None,
                certification: Certification::default(),
                approved_quantity: None,
                approved_units: None,
                administrative_reference: None,
                trace_numbers: line
                    .trace_numbers
                    .iter()
                    .map(|t| TraceNumber {
                        kind: TraceType::Referenced,
                        ..t.clone()
                    })
                    .collect(),
                rejects: vec![],
                messages: vec![],
            };
            ld.status = overall_status(action, &[], &[]);
            if action.is_some_and(certifies) {
                ld.certification_number.clone_from(&cert_text);
                ld.certification.issued = Some(today);
                ld.certification.effective = line.service_dates();
            }
            if *a == Action::Pend {
                ld.administrative_reference.clone_from(&admin);
            }
            if matches!(a, Action::Partial | Action::Modify)
                && let Some(rule) = rule
            {
                if let Some(units) = &rule.approved_units {
                    ld.approved_units = Some(units.clone());
                    ld.approved_quantity = Some(ServiceQuantity {
                        unit: line
                            .quantity
                            .as_ref()
                            .and_then(|q| q.unit)
                            .or(Some(UnitType::UnitCount)),
                        quantity: Some(units.clone()),
                        per: None,
                        sample_count: None,
                        period: None,
                        period_count: None,
                        delivery_pattern: None,
                        delivery_time: None,
                    });
                }
                if *a == Action::Modify
                    && let Some(c) = &rule.code
                {
                    modify_code(&mut resp.services[i], c);
                }
            }
            d.lines.push(ld);
        }
        let first = d.lines[0].action;
        if d.lines.iter().all(|l| l.action == first) {
            d.action = first;
            let reason = d.lines[0].reason.clone();
            if d.lines.iter().all(|l| l.reason == reason) {
                d.reason = reason;
            }
        }
        // With lines decided differently there is no event-level HCR, so the numbers are on
        // the certified lines only.
        if d.action.is_some_and(certifies) {
            d.certification_number.clone_from(&cert_text);
        }
    }
    if pended_any {
        d.administrative_reference = admin;
    }
    d.messages = messages;
    d.status = overall_status(d.action, &d.lines, &d.rejects);
    resp
}

/// A modified line approves another procedure code: the echoed service carries it.
fn modify_code(line: &mut ServiceLine, c: &Code) {
    let Some(service) = line.service.as_mut() else {
        return;
    };
    let proc = match service {
        Service::Professional { procedure, .. } | Service::Dental { procedure, .. } => {
            Some(procedure)
        }
        Service::Institutional { procedure, .. } => procedure.as_mut(),
    };
    if let Some(p) = proc {
        p.code = c.clone();
        p.modifiers.clear();
        p.description = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt() -> AuthorizationRequest {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/requests/physical-therapy-visits.json"
        ))
        .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn run(rules: &str, r: &AuthorizationRequest, receiver: Option<&str>) -> Decided {
        let rules = Rules::parse(rules).unwrap();
        let s = Subject {
            request: r,
            channel: Channel::Core,
            receiver,
        };
        decide(&rules, &s, 7, Date::new(2026, 11, 23).unwrap())
    }

    fn actions(d: &Decision) -> Vec<Option<ActionCode>> {
        d.lines.iter().map(|l| l.action).collect()
    }

    #[test]
    fn units_above_and_the_first_matching_rule_per_line() {
        // 97110 asks 24 units, 97140 asks 12.
        let rules = r#"
            [[rule]]
            match = { units_above = 20 }
            action = "deny"
            reason = "0U"
            [[rule]]
            action = "partial"
            approved_units = 3
        "#;
        let d = run(rules, &pt(), None).now.decision;
        use ActionCode::*;
        assert_eq!(
            actions(&d),
            vec![Some(NotCertified), Some(CertifiedPartial)]
        );
        assert_eq!(d.status, Status::PartiallyApproved);
        assert_eq!(
            d.lines[1].certification_number.as_ref().unwrap().as_str(),
            "MOCK00000007"
        );
        assert!(d.lines[0].certification_number.is_none());
        assert_eq!(d.lines[1].approved_units.as_ref().unwrap().as_str(), "3");
    }

    #[test]
    fn payer_matches_the_umo_id_or_the_receiver_id() {
        let rules = "[[rule]]\nmatch = { payer = \"OTHERPLAN\" }\naction = \"deny\"\n";
        assert_eq!(
            run(rules, &pt(), None).now.decision.status,
            Status::Approved
        );
        assert_eq!(
            run(rules, &pt(), Some("OTHERPLAN")).now.decision.status,
            Status::Denied
        );
        let rules = "[[rule]]\nmatch = { payer = \"SYNPLAN01\" }\naction = \"deny\"\n";
        assert_eq!(run(rules, &pt(), None).now.decision.status, Status::Denied);
    }

    #[test]
    fn certification_type_by_word_or_code() {
        for ct in ["renewal", "R"] {
            let rules = format!(
                "[[rule]]\nmatch = {{ certification_type = \"{ct}\" }}\naction = \"deny\"\n"
            );
            assert_eq!(
                run(&rules, &pt(), None).now.decision.status,
                Status::Approved
            );
            let mut r = pt();
            r.event.review.certification_type = CertificationType::Renewal;
            for l in &mut r.services {
                if let Some(rv) = l.review.as_mut() {
                    rv.certification_type = CertificationType::Renewal;
                }
            }
            assert_eq!(run(&rules, &r, None).now.decision.status, Status::Denied);
        }
    }

    #[test]
    fn a_pend_holds_every_line_and_the_others_keep_their_decision_after() {
        let rules = r#"
            [[rule]]
            match = { procedure = "97110" }
            action = "pend"
            then = "deny"
            after_ms = 50
        "#;
        let d = run(rules, &pt(), None);
        use ActionCode::*;
        assert_eq!(d.now.decision.status, Status::PartiallyApproved);
        assert_eq!(
            actions(&d.now.decision),
            vec![Some(Pended), Some(Certified)]
        );
        assert!(d.now.decision.administrative_reference.is_some());
        let (after, fin) = d.later.unwrap();
        assert_eq!(after, Duration::from_millis(50));
        assert_eq!(
            actions(&fin.decision),
            vec![Some(NotCertified), Some(Certified)]
        );
    }

    #[test]
    fn a_reject_settles_the_request_even_beside_a_pend() {
        let rules = r#"
            [[rule]]
            match = { procedure = "97110" }
            action = "pend"
            then = "approve"
            after_ms = 50
            [[rule]]
            match = { procedure = "97140" }
            action = "reject"
            aaa = "33"
        "#;
        let d = run(rules, &pt(), None);
        assert!(d.later.is_none());
        assert_eq!(d.now.decision.status, Status::Rejected);
        assert!(d.now.decision.lines.is_empty());
        assert_eq!(d.now.decision.rejects[0].level, Level::Event);
    }

    #[test]
    fn a_request_without_lines_is_decided_at_the_event() {
        let mut r = pt();
        r.services.clear();
        let rules = r#"
            [[rule]]
            match = { procedure = "97110" }
            action = "deny"
            [[rule]]
            match = { units_above = 10 }
            action = "partial"
            approved_units = 8
        "#;
        let d = run(rules, &r, None).now.decision;
        assert_eq!(d.status, Status::PartiallyApproved);
        assert_eq!(d.action, Some(ActionCode::CertifiedPartial));
        assert_eq!(d.approved_quantity.unwrap().quantity.unwrap().as_str(), "8");
        assert!(d.certification_number.is_some());
    }
}
