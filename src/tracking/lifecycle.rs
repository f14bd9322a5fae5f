//! The lifecycle of an authorization record: its states and the only legal moves.

use serde::Serialize;

/// Where a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Draft,
    InternalReview,
    Ready,
    Submitted,
    Acknowledged,
    Pended,
    Approved,
    PartiallyApproved,
    Modified,
    Denied,
    Rejected,
    Cancelled,
    Active,
    Exhausted,
    Expired,
}

use State::*;

pub const ALL: &[State] = &[
    Draft,
    InternalReview,
    Ready,
    Submitted,
    Acknowledged,
    Pended,
    Approved,
    PartiallyApproved,
    Modified,
    Denied,
    Rejected,
    Cancelled,
    Active,
    Exhausted,
    Expired,
];

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Draft => "draft",
            InternalReview => "internal_review",
            Ready => "ready",
            Submitted => "submitted",
            Acknowledged => "acknowledged",
            Pended => "pended",
            Approved => "approved",
            PartiallyApproved => "partially_approved",
            Modified => "modified",
            Denied => "denied",
            Rejected => "rejected",
            Cancelled => "cancelled",
            Active => "active",
            Exhausted => "exhausted",
            Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Result<State, String> {
        ALL.iter()
            .copied()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status {s:?}: one of {}",
                    ALL.iter()
                        .map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// Waiting for the payer's decision (the CMS-0057-F clock runs).
    pub fn awaiting_payer(self) -> bool {
        matches!(self, Submitted | Acknowledged | Pended)
    }

    /// A payer's decision may still arrive: awaiting one, or partially approved (lines the
    /// payer pended beside the certified ones are decided later).
    pub fn takes_decision(self) -> bool {
        self.awaiting_payer() || self == PartiallyApproved
    }

    /// Certified (at least in part): services may be counted against it.
    pub fn certified(self) -> bool {
        matches!(
            self,
            Approved | PartiallyApproved | Modified | Active | Exhausted
        )
    }

    /// A payer decision that ends the review.
    pub fn is_final_decision(self) -> bool {
        matches!(self, Approved | PartiallyApproved | Modified | Denied)
    }

    /// The states this one may move to.
    pub fn next(self) -> &'static [State] {
        match self {
            Draft => &[InternalReview, Ready, Cancelled],
            InternalReview => &[Draft, Ready, Cancelled],
            Ready => &[Submitted, Draft, Cancelled],
            Submitted => &[
                Acknowledged,
                Pended,
                Approved,
                PartiallyApproved,
                Modified,
                Denied,
                Rejected,
                Cancelled,
            ],
            Acknowledged => &[
                Pended,
                Approved,
                PartiallyApproved,
                Modified,
                Denied,
                Rejected,
                Cancelled,
            ],
            Pended => &[
                Pended,
                Approved,
                PartiallyApproved,
                Modified,
                Denied,
                Rejected,
                Cancelled,
            ],
            Approved | Modified => &[Active, Exhausted, Expired, Cancelled],
            // Lines the payer pended beside certified ones are decided later: the record moves
            // on to approved (or stays partially approved, with the new decision recorded).
            PartiallyApproved => &[
                Approved,
                PartiallyApproved,
                Active,
                Exhausted,
                Expired,
                Cancelled,
            ],
            Active => &[Exhausted, Expired, Cancelled],
            Exhausted => &[Active, Expired],
            Denied | Rejected | Cancelled | Expired => &[],
        }
    }

    pub fn can_move_to(self, to: State) -> bool {
        self.next().contains(&to)
    }

    /// Checks a move, with a clear reason when it is not legal.
    pub fn check(self, to: State) -> Result<(), String> {
        if self.can_move_to(to) {
            Ok(())
        } else {
            let allowed: Vec<&str> = self.next().iter().map(|s| s.as_str()).collect();
            Err(format!(
                "a record in {} cannot move to {} (allowed: {})",
                self.as_str(),
                to.as_str(),
                if allowed.is_empty() {
                    "none, it is closed".to_owned()
                } else {
                    allowed.join(", ")
                }
            ))
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in ALL {
            assert_eq!(State::parse(s.as_str()).unwrap(), *s);
        }
        assert!(
            State::parse("approvedd")
                .unwrap_err()
                .contains("unknown status")
        );
    }

    #[test]
    fn only_legal_moves() {
        assert!(
            Draft.check(Submitted).is_err(),
            "nothing unapproved goes out"
        );
        assert!(Ready.check(Submitted).is_ok());
        assert!(Denied.check(Approved).is_err());
        assert!(Expired.check(Active).unwrap_err().contains("closed"));
        assert!(Exhausted.check(Active).is_ok(), "a void gives units back");
        // Every state but the closed ones can go somewhere; closed ones go nowhere.
        for s in ALL {
            let closed = matches!(s, Denied | Rejected | Cancelled | Expired);
            assert_eq!(s.next().is_empty(), closed, "{s}");
        }
    }
}
