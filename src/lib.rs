pub mod cli;
pub mod domain;
pub mod fhir;
pub mod report;
pub mod x12;
