pub mod cli;
pub mod domain;
pub mod report;
pub mod x12;
