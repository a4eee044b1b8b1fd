//! `health_check` extension: an HTTP endpoint that answers 200 once pipelines run.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthCheckConfig {
    /// Default `localhost:13133` upstream; the operator's manifests set `0.0.0.0:13133`.
    pub endpoint: String,
    /// Default `/`.
    pub path: String,
    /// Plain bodies instead of the JSON status, as upstream's `response_body`.
    pub response_body: Option<ResponseBody>,
}

/// What the endpoint answers in place of its JSON status.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseBody {
    pub healthy: String,
    pub unhealthy: String,
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        Self {
            endpoint: "localhost:13133".into(),
            path: "/".into(),
            response_body: None,
        }
    }
}
