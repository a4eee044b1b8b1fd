//! Config errors: each names the path of the offending key, as the user wrote it.

use std::fmt;

/// What kind of problem a [`ConfigError`] is, so callers (the operator's status reasons) need not
/// read the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// A value that is wrong in any collector: bad syntax, out of range, a bad regex.
    Invalid,
    /// A component type kotel does not implement (it may exist upstream).
    UnknownType,
    /// A reference to a component (or extension) the config does not define.
    Undefined,
    /// Valid upstream, but an option or value kotel does not implement, named.
    Unsupported,
}

/// One problem in a config, at a dotted path such as `receivers.otlp.protocols.grpc.endpoint`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub kind: ErrorKind,
    pub path: String,
    pub message: String,
}

impl ConfigError {
    /// An [`ErrorKind::Invalid`] value.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::of(ErrorKind::Invalid, path, message)
    }

    /// An option or value upstream has and kotel does not.
    pub fn unsupported(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::of(ErrorKind::Unsupported, path, message)
    }

    pub fn of(kind: ErrorKind, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in a config; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn single(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![ConfigError::new(path, message)])
    }

    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Deserializes `value` into `T`, reporting the failing key's path under `prefix`.
pub(crate) fn typed<T: serde::de::DeserializeOwned>(
    prefix: &str,
    value: serde_json::Value,
) -> Result<T, ConfigError> {
    // `batch:` with no body means "defaults", as upstream.
    let value = if value.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        value
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." || inner.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{inner}")
        };
        ConfigError::new(path, e.into_inner().to_string())
    })
}

/// A regular expression as the components compile it (the `regex` crate's syntax, which is Go's
/// RE2 syntax), checked here so a bad one is a config error, not a collector that cannot start.
pub(crate) fn check_regex(path: impl Into<String>, re: &str) -> Result<(), ConfigError> {
    regex::Regex::new(re)
        .map(drop)
        .map_err(|e| ConfigError::new(path, format!("invalid regex {re:?}: {e}")))
}
