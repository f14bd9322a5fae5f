//! Located, machine-readable problems found in X12 data.

use std::fmt;

use compact_str::CompactString;
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
    pub control_number: Option<CompactString>,
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
///
/// Patient data never leaves through an issue's text: where the location holds it (the
/// subscriber and dependent loops, DMG, INS, MSG), `Display` and serialization withhold the
/// value and cut it out of the message. The field itself keeps it for the acknowledgement
/// returned to the sender, who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    /// A stable machine-readable code (`isa_layout`, `required_element_missing`...).
    pub code: &'static str,
    pub location: Location,
    pub value: Option<String>,
    pub message: String,
    pub ack: Option<AckCode>,
}

const WITHHELD: &str = "[withheld: patient data]";

impl Location {
    /// Whether this place holds patient data (names, member ids, birth dates, addresses,
    /// free text).
    pub fn holds_patient_data(&self) -> bool {
        let in_loop = |l: &str| self.loop_id.as_deref().is_some_and(|x| x.starts_with(l));
        in_loop("2010C")
            || in_loop("2010D")
            || matches!(self.segment_id.as_deref(), Some("DMG" | "INS" | "MSG"))
    }
}

impl Issue {
    /// The message as it may be shown or logged.
    pub fn public_message(&self) -> String {
        match &self.value {
            Some(v) if !v.trim().is_empty() && self.location.holds_patient_data() => {
                self.message.replace(v.trim(), WITHHELD)
            }
            _ => self.message.clone(),
        }
    }
    /// The value as it may be shown or logged.
    pub fn public_value(&self) -> Option<&str> {
        match &self.value {
            Some(_) if self.location.holds_patient_data() => Some(WITHHELD),
            Some(v) => Some(v.as_str()),
            None => None,
        }
    }
}

impl Serialize for Issue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let n = 4 + usize::from(self.value.is_some()) + usize::from(self.ack.is_some());
        let mut st = s.serialize_struct("Issue", n)?;
        st.serialize_field("severity", &self.severity)?;
        st.serialize_field("code", self.code)?;
        st.serialize_field("location", &self.location)?;
        if let Some(v) = self.public_value() {
            st.serialize_field("value", v)?;
        }
        st.serialize_field("message", &self.public_message())?;
        if let Some(a) = &self.ack {
            st.serialize_field("ack", a)?;
        }
        st.end()
    }
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
            self.code,
            self.location,
            self.public_message()
        )?;
        match self.public_value() {
            Some(WITHHELD) => write!(f, " (value {WITHHELD})")?,
            Some(v) => write!(f, " (value {v:?})")?,
            None => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_values_are_withheld_from_text() {
        let loc = Location {
            loop_id: Some("2010C".into()),
            segment_id: Some("NM1".into()),
            element: Some(9),
            ..Location::default()
        };
        let i = Issue::error(
            "invalid_value",
            loc,
            "NM109: invalid member id \"SYN123\": too short",
        )
        .value("SYN123");
        let shown = i.to_string();
        assert!(!shown.contains("SYN123"), "{shown}");
        let json = serde_json::to_string(&i).unwrap();
        assert!(!json.contains("SYN123"), "{json}");
        assert_eq!(
            i.value.as_deref(),
            Some("SYN123"),
            "kept for the acknowledgement"
        );
        let payer = Issue::error(
            "invalid_code",
            Location {
                loop_id: Some("2010A".into()),
                ..Location::default()
            },
            "bad PI",
        )
        .value("PAYER1");
        assert!(payer.to_string().contains("PAYER1"));
    }
}
