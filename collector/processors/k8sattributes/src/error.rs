//! Why the processor could not be built or started.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {reason}")]
    InvalidConfig { path: String, reason: String },

    #[error("{path}: invalid regular expression: {source}")]
    InvalidRegex {
        path: String,
        #[source]
        source: regex::Error,
    },

    #[error(
        "{path}.filter.node_from_env_var: environment variable {var} is unset or empty; set it from \
         the downward API (fieldRef spec.nodeName) so the processor watches only its node's pods"
    )]
    NodeEnvUnset { path: String, var: String },

    #[error(
        "{path}: auth_type serviceAccount needs the in-cluster service account \
         (KUBERNETES_SERVICE_HOST and the mounted token): {source}"
    )]
    InCluster {
        path: String,
        #[source]
        source: kube::config::InClusterError,
    },

    #[error("{path}: auth_type kubeConfig could not load KUBECONFIG or ~/.kube/config: {source}")]
    KubeConfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },

    #[error("{path}: could not create the Kubernetes client: {source}")]
    Client {
        path: String,
        #[source]
        source: kube::Error,
    },

    #[error(
        "{path}: wait_for_metadata: {what} did not sync within {timeout:?}; check that the API \
         server is reachable and the service account may list and watch them, or raise \
         wait_for_metadata_timeout"
    )]
    SyncTimeout {
        path: String,
        what: String,
        timeout: Duration,
    },
}
