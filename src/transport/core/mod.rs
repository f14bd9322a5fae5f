//! CAQH CORE real-time connectivity: the envelope codec (`envelope`, both sides, public for the
//! mock payer) and the client (`client`).

pub mod envelope;

pub use envelope::*;
pub mod client;

pub use client::CoreClient;
