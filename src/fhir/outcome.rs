//! Problems found in FHIR input, each with a FHIRPath location, and the OperationOutcome that
//! reports them.

use serde::Serialize;

use super::types::{CodeableConcept, OperationOutcome, OutcomeIssue};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueSeverity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl IssueSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueSeverity::Fatal => "fatal",
            IssueSeverity::Error => "error",
            IssueSeverity::Warning => "warning",
            IssueSeverity::Information => "information",
        }
    }
}

/// One problem: severity, FHIR issue type (`structure`, `required`, `value`, `invalid`,
/// `not-found`, `too-long`, `not-supported`...), a message and where (a FHIRPath expression).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FhirIssue {
    pub severity: IssueSeverity,
    pub code: &'static str,
    pub message: String,
    pub expression: String,
}

impl FhirIssue {
    pub fn error(
        code: &'static str,
        expression: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        FhirIssue {
            severity: IssueSeverity::Error,
            code,
            message: message.into(),
            expression: expression.into(),
        }
    }
    pub fn warning(
        code: &'static str,
        expression: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        FhirIssue {
            severity: IssueSeverity::Warning,
            code,
            message: message.into(),
            expression: expression.into(),
        }
    }
    pub fn is_error(&self) -> bool {
        matches!(self.severity, IssueSeverity::Error | IssueSeverity::Fatal)
    }
}

impl std::fmt::Display for FhirIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{}] at {}: {}",
            self.severity.as_str(),
            self.code,
            self.expression,
            self.message
        )
    }
}

/// The OperationOutcome reporting `issues` (an `informational` "all ok" issue when empty, as a
/// FHIR OperationOutcome needs at least one).
pub fn operation_outcome(issues: &[FhirIssue]) -> OperationOutcome {
    let mut out: Vec<OutcomeIssue> = issues
        .iter()
        .map(|i| OutcomeIssue {
            severity: i.severity.as_str().to_owned(),
            code: i.code.to_owned(),
            details: Some(CodeableConcept {
                text: Some(i.message.clone()),
                ..Default::default()
            }),
            diagnostics: None,
            expression: if i.expression.is_empty() {
                vec![]
            } else {
                vec![i.expression.clone()]
            },
            extra: Default::default(),
        })
        .collect();
    if out.is_empty() {
        out.push(OutcomeIssue {
            severity: "information".into(),
            code: "informational".into(),
            details: Some(CodeableConcept {
                text: Some("no problems found".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    OperationOutcome {
        resource_type: "OperationOutcome".into(),
        id: None,
        issue: out,
        extra: Default::default(),
    }
}
