pub mod bench;
pub mod cli;
pub mod domain;
pub mod fhir;
pub mod report;
pub mod synth;
pub mod x12;
