//! Config resolution: the user's `KubeletStatsConfig` plus the process environment → the concrete
//! URL, credentials and timings a scraper runs with.

use std::path::PathBuf;
use std::time::Duration;

use kotel_config::receivers::kubeletstats::{AuthType, KubeletStatsConfig};

/// Where the service account's files live in a pod.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Facts from outside the config: the node name and the service account mount. Tests point these
/// at their own files.
#[derive(Debug, Clone)]
pub struct Environment {
    /// `K8S_NODE_NAME`, the default endpoint's host.
    pub node_name: Option<String>,
    /// The host name, used when `K8S_NODE_NAME` is unset (as upstream uses `os.Hostname()`).
    pub hostname: Option<String>,
    /// Bearer token file for `auth_type: serviceAccount`.
    pub token_file: PathBuf,
    /// CA bundle for `auth_type: serviceAccount` when `ca_file` is not set.
    pub service_account_ca_file: PathBuf,
}

impl Environment {
    /// The collector's own environment.
    pub fn from_process() -> Self {
        let non_empty = |v: String| (!v.trim().is_empty()).then(|| v.trim().to_string());
        Self {
            node_name: std::env::var("K8S_NODE_NAME").ok().and_then(non_empty),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .and_then(non_empty)
                .or_else(|| std::env::var("HOSTNAME").ok().and_then(non_empty)),
            token_file: PathBuf::from(SERVICE_ACCOUNT_DIR).join("token"),
            service_account_ca_file: PathBuf::from(SERVICE_ACCOUNT_DIR).join("ca.crt"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// The kubelet's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// Host name or IP address, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// A path prefix before `/stats/summary`, without the trailing slash (usually empty).
    pub base_path: String,
}

impl Endpoint {
    /// `host:port` as the `Host` header wants it.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}{}{path}", self.authority(), self.base_path)
    }
}

/// How requests prove who the collector is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// A bearer token read from `token_file` (re-read when it changes).
    ServiceAccount {
        token_file: PathBuf,
    },
    /// A client certificate.
    Tls {
        cert_file: PathBuf,
        key_file: PathBuf,
    },
    None,
}

/// Everything a scraper needs, resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub endpoint: Endpoint,
    pub auth: Auth,
    /// Extra CA bundle trusted besides the system roots.
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
    pub collection_interval: Duration,
    pub initial_delay: Duration,
    pub timeout: Duration,
    /// Whether each scrape also reads the kubelet's `/pods`.
    pub needs_pods: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no kubelet endpoint: set `endpoint`, or K8S_NODE_NAME in the collector's environment")]
    NoHost,
    #[error("endpoint {endpoint:?} is not a valid URL: {reason}")]
    BadEndpoint { endpoint: String, reason: String },
    #[error("auth_type kubeConfig is not supported by kotel; use serviceAccount or tls")]
    KubeConfigUnsupported,
    #[error("auth_type tls needs cert_file and key_file")]
    TlsWithoutCertificate,
    #[error("auth_type tls sends a client certificate and needs an https endpoint, not {0:?}")]
    TlsOverHttp(String),
}

/// Resolves the config against the environment.
pub fn resolve(c: &KubeletStatsConfig, env: &Environment) -> Result<Resolved, ConfigError> {
    let auth = match c.auth_type {
        AuthType::ServiceAccount => Auth::ServiceAccount {
            token_file: env.token_file.clone(),
        },
        AuthType::Tls => match (&c.cert_file, &c.key_file) {
            (Some(cert), Some(key)) => Auth::Tls {
                cert_file: cert.into(),
                key_file: key.into(),
            },
            _ => return Err(ConfigError::TlsWithoutCertificate),
        },
        AuthType::None => Auth::None,
        AuthType::KubeConfig => return Err(ConfigError::KubeConfigUnsupported),
    };
    let secure = c.auth_type != AuthType::None;
    let endpoint = endpoint(c.endpoint.as_deref(), secure, env)?;
    if endpoint.scheme == Scheme::Http && matches!(auth, Auth::Tls { .. }) {
        return Err(ConfigError::TlsOverHttp(endpoint.url("")));
    }
    let ca_file = match (&c.ca_file, c.auth_type) {
        (Some(f), _) => Some(PathBuf::from(f)),
        (None, AuthType::ServiceAccount) => Some(env.service_account_ca_file.clone()),
        (None, _) => None,
    };
    Ok(Resolved {
        endpoint,
        auth,
        ca_file,
        insecure_skip_verify: c.insecure_skip_verify,
        collection_interval: c.collection_interval,
        initial_delay: c.initial_delay,
        timeout: c.timeout.unwrap_or(c.collection_interval),
        needs_pods: c.needs_pods_endpoint(),
    })
}

/// Upstream's rules: no endpoint → `https://<node>:10250`, or `http://<node>:10255` for
/// `auth_type: none`; an endpoint without a scheme gets `https://`, or `http://` for `none`.
fn endpoint(
    configured: Option<&str>,
    secure: bool,
    env: &Environment,
) -> Result<Endpoint, ConfigError> {
    let configured = configured.map(str::trim).filter(|e| !e.is_empty());
    let text = match configured {
        Some(e) if e.contains("://") => e.to_string(),
        Some(e) if secure => format!("https://{e}"),
        Some(e) => format!("http://{e}"),
        None => {
            let host = env
                .node_name
                .as_deref()
                .or(env.hostname.as_deref())
                .ok_or(ConfigError::NoHost)?;
            if secure {
                format!("https://{host}:10250")
            } else {
                format!("http://{host}:10255")
            }
        }
    };
    let bad = |reason: &str| ConfigError::BadEndpoint {
        endpoint: text.clone(),
        reason: reason.to_string(),
    };
    let uri: http::Uri = text
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    let scheme = match uri.scheme_str() {
        Some("https") => Scheme::Https,
        Some("http") => Scheme::Http,
        _ => return Err(bad("the scheme must be http or https")),
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(match scheme {
        Scheme::Https => 443,
        Scheme::Http => 80,
    });
    if uri.query().is_some() {
        return Err(bad("a query is not allowed"));
    }
    let base_path = uri.path().trim_end_matches('/').to_string();
    Ok(Endpoint {
        scheme,
        host,
        port,
        base_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment {
            node_name: Some("node-1".into()),
            hostname: Some("host-1".into()),
            token_file: "/sa/token".into(),
            service_account_ca_file: "/sa/ca.crt".into(),
        }
    }

    fn cfg(yaml: &str) -> KubeletStatsConfig {
        let v: serde_json::Value = serde_json::from_str(yaml).unwrap();
        serde_json::from_value(v).unwrap()
    }

    fn url(yaml: &str, env: &Environment) -> String {
        resolve(&cfg(yaml), env)
            .unwrap()
            .endpoint
            .url("/stats/summary")
    }

    #[test]
    fn default_endpoint_is_the_node_name() {
        let sa = r#"{"auth_type":"serviceAccount"}"#;
        assert_eq!(url(sa, &env()), "https://node-1:10250/stats/summary");
        let mut e = env();
        e.node_name = None;
        assert_eq!(url(sa, &e), "https://host-1:10250/stats/summary");
        e.hostname = None;
        assert!(matches!(resolve(&cfg(sa), &e), Err(ConfigError::NoHost)));
        assert_eq!(
            url(r#"{"auth_type":"none"}"#, &env()),
            "http://node-1:10255/stats/summary"
        );
    }

    #[test]
    fn scheme_is_inferred_from_the_auth_type() {
        assert_eq!(
            url(
                r#"{"auth_type":"serviceAccount","endpoint":"10.0.0.1:10250"}"#,
                &env()
            ),
            "https://10.0.0.1:10250/stats/summary"
        );
        assert_eq!(
            url(
                r#"{"auth_type":"none","endpoint":"10.0.0.1:10255"}"#,
                &env()
            ),
            "http://10.0.0.1:10255/stats/summary"
        );
        assert_eq!(
            url(
                r#"{"auth_type":"serviceAccount","endpoint":"http://[::1]:10255/"}"#,
                &env()
            ),
            "http://[::1]:10255/stats/summary"
        );
    }

    #[test]
    fn service_account_uses_its_ca_unless_overridden() {
        let r = resolve(&cfg(r#"{"auth_type":"serviceAccount"}"#), &env()).unwrap();
        assert_eq!(r.ca_file, Some(PathBuf::from("/sa/ca.crt")));
        assert_eq!(
            r.auth,
            Auth::ServiceAccount {
                token_file: "/sa/token".into()
            }
        );
        assert_eq!(r.timeout, Duration::from_secs(10));
        let r = resolve(
            &cfg(r#"{"auth_type":"serviceAccount","ca_file":"/etc/k/ca.pem","timeout":"3s"}"#),
            &env(),
        )
        .unwrap();
        assert_eq!(r.ca_file, Some(PathBuf::from("/etc/k/ca.pem")));
        assert_eq!(r.timeout, Duration::from_secs(3));
    }

    #[test]
    fn unusable_configs_are_errors() {
        assert!(matches!(
            resolve(&cfg("{}"), &env()),
            Err(ConfigError::TlsWithoutCertificate)
        ));
        assert!(matches!(
            resolve(&cfg(r#"{"auth_type":"kubeConfig"}"#), &env()),
            Err(ConfigError::KubeConfigUnsupported)
        ));
        assert!(matches!(
            resolve(
                &cfg(r#"{"cert_file":"c","key_file":"k","endpoint":"http://n:10255"}"#),
                &env()
            ),
            Err(ConfigError::TlsOverHttp(_))
        ));
        assert!(matches!(
            resolve(&cfg(r#"{"auth_type":"none","endpoint":"ftp://n"}"#), &env()),
            Err(ConfigError::BadEndpoint { .. })
        ));
    }
}
