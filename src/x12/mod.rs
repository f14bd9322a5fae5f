//! X12: syntax, envelopes, the 278 codec, acknowledgements and guide-driven validation.

pub mod ack;
pub mod envelope;
pub mod error;
pub mod guide;
pub mod stream;
pub mod syntax;
pub mod tx278;
pub mod writer;

pub use error::{AckCode, Issue, Location, Severity, X12Error};
pub use syntax::{Delimiters, Segment, Segments, SliceReader, StreamReader, Transaction, Unit};
