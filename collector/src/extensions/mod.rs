//! Extensions: health_check (HTTP readiness), file_storage (state directories), and the client
//! authenticators bearertokenauth and basicauth (a header on each request of an exporter).

pub mod auth;
pub mod file_storage;
pub mod health_check;
