//! Located, machine-readable problems found in X12 data.

use std::fmt;

use serde::Serialize;

/// Where a problem is. Indexes are 1-based; fields that do not apply are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Location {
    /// Which interchange (ISA) of the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interchange: Option<usize>,
    /// Which functional group (GS) of the interchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<usize>,
    /// Which transaction set (ST) of the group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<usize>,
    /// ST02 of that transaction set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_number: Option<String>,
    /// Position of the segment in the file (ISA = 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_index: Option<usize>,
    /// Position of the segment in its transaction set (ST = 1), as 999 IK302 counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_position: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<String>,
    /// The implementation-guide loop (2000A, 2010B, 2000F...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loop_id: Option<String>,
    /// Element position in the segment (the `03` of `UM03`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub element: Option<usize>,
    /// Component position in a composite element.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<usize>,
    /// Byte offset of the segment in the input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub byte_offset: Option<usize>,
}

impl Location {
    pub fn with_element(&self, element: usize) -> Location {
        Location {
            element: Some(element),
            ..self.clone()
        }
    }
    pub fn with_component(&self, element: usize, component: usize) -> Location {
        Location {
            element: Some(element),
            component: Some(component),
            ..self.clone()
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(i) = self.interchange {
            parts.push(format!("interchange {i}"));
        }
        if let Some(g) = self.group {
            parts.push(format!("group {g}"));
        }
        if let Some(t) = self.transaction {
            match &self.control_number {
                Some(c) => parts.push(format!("transaction {t} (ST02 {c})")),
                None => parts.push(format!("transaction {t}")),
            }
        }
        if let Some(s) = self.segment_index {
            let mut p = format!("segment {s}");
            if let Some(id) = &self.segment_id {
                p.push_str(&format!(" {id}"));
            }
            if let Some(pos) = self.segment_position {
                p.push_str(&format!(" (position {pos} in the transaction)"));
            }
            parts.push(p);
        } else if let Some(id) = &self.segment_id {
            parts.push(format!("segment {id}"));
        }
        if let Some(l) = &self.loop_id {
            parts.push(format!("loop {l}"));
        }
        if let Some(e) = self.element {
            let id = self.segment_id.as_deref().unwrap_or("element ");
            match self.component {
                Some(c) => parts.push(format!("{id}{e:02}-{c}")),
                None => parts.push(format!("{id}{e:02}")),
            }
        }
        if parts.is_empty()
            && let Some(b) = self.byte_offset
        {
            parts.push(format!("byte {b}"));
        }
        f.write_str(&parts.join(", "))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// How an issue is reported in an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "level", content = "code", rename_all = "snake_case")]
pub enum AckCode {
    /// TA105 interchange note code (e.g. 001 control numbers do not match).
    Interchange(&'static str),
    /// AK905 functional group syntax error code.
    Group(&'static str),
    /// IK501 transaction set syntax error code (e.g. 4 SE count wrong).
    Transaction(&'static str),
    /// IK304 segment syntax error code (e.g. 3 required segment missing, 8 has element errors).
    Segment(&'static str),
    /// IK403 element syntax error code (e.g. 1 required element missing, 7 invalid code value).
    Element(&'static str),
}

/// One problem: what, where, the offending value, and a plain-English message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub severity: Severity,
    /// A stable machine-readable code (`isa_layout`, `required_element_missing`...).
    pub code: &'static str,
    pub location: Location,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack: Option<AckCode>,
}

impl Issue {
    pub fn error(code: &'static str, location: Location, message: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Error,
            code,
            location,
            value: None,
            message: message.into(),
            ack: None,
        }
    }
    pub fn warning(code: &'static str, location: Location, message: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Warning,
            code,
            location,
            value: None,
            message: message.into(),
            ack: None,
        }
    }
    pub fn value(mut self, v: impl AsRef<[u8]>) -> Issue {
        self.value = Some(String::from_utf8_lossy(v.as_ref()).into_owned());
        self
    }
    pub fn ack(mut self, a: AckCode) -> Issue {
        self.ack = Some(a);
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{sev} [{}] {}: {}",
            self.code, self.location, self.message
        )?;
        if let Some(v) = &self.value {
            write!(f, " (value {v:?})")?;
        }
        Ok(())
    }
}

/// A hard failure of an X12 operation (reading past what can be understood, or writing data
/// that would corrupt the output). Carries every issue found.
#[derive(Debug, Clone, thiserror::Error)]
pub struct X12Error {
    pub issues: Vec<Issue>,
}

impl X12Error {
    pub fn one(issue: Issue) -> X12Error {
        X12Error {
            issues: vec![issue],
        }
    }
}

impl fmt::Display for X12Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}
