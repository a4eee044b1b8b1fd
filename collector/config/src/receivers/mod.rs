//! Receiver configs.

pub mod filelog;
pub mod kubeletstats;
pub mod otlp;
