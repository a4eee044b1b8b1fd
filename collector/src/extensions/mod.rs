//! Extensions: health_check (HTTP readiness) and file_storage (state directories).

pub mod file_storage;
pub mod health_check;
