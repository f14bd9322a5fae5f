pub mod domain;
pub mod x12;
