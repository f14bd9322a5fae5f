//! X12: syntax, envelopes, the 278 codec, acknowledgements and guide-driven validation.

pub mod ack;
pub mod envelope;
pub mod error;
pub mod guide;
pub mod syntax;
pub mod tx278;
pub mod writer;

pub use error::{AckCode, Issue, Location, Severity, X12Error};
pub use syntax::{Delimiters, Segment, Segments, SliceReader, StreamReader, Transaction, Unit};

/// Issue codes that reject even in lenient mode: the content could not be read or mapped.
pub const LENIENT_FATAL: &[&str] = &[
    "isa_missing",
    "isa_truncated",
    "isa_element_separator",
    "isa_component_separator",
    "isa_segment_terminator",
    "isa_repetition_separator",
    "unit_too_large",
    "io",
    "st_missing",
    "not_a_278",
    "required_segment_missing",
    "segment_unterminated",
];
