//! Extension configs.

pub mod auth;
pub mod file_storage;
pub mod health_check;
