//! kotel-operator: reconciles `OpenTelemetryCollector` resources (opentelemetry.io/v1beta1) into
//! kotelcol DaemonSets with their ConfigMaps, RBAC and Services.
//!
//! Pure domain (no client): [`crd`], [`names`], [`validate`], [`facts`], [`rbac`], [`build`],
//! [`status`], [`quantity`]. Adapters that talk to the API server: [`apply`], [`controller`],
//! [`lease`]. Process plumbing: [`http`], [`metrics`], [`run`].

pub mod apply;
pub mod build;
pub mod controller;
pub mod crd;
pub mod diagnose;
pub mod facts;
pub mod http;
pub mod lease;
pub mod metrics;
pub mod names;
pub mod quantity;
pub mod rbac;
pub mod run;
pub mod status;
pub mod validate;
