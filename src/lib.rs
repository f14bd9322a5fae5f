pub mod cli;
pub mod domain;
pub mod report;
pub mod store;
pub mod tracking;
pub mod x12;
