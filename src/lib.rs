pub mod domain;
pub mod x12;
pub mod cli;
pub mod report;
