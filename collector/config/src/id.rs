//! Component and pipeline identifiers: `type[/name]` and `signal[/name]`.

use std::fmt;
use std::str::FromStr;

use crate::signal::Signal;

/// The four sections of a config that hold components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ComponentKind {
    Receiver,
    Processor,
    Exporter,
    Extension,
}

impl ComponentKind {
    /// The config section name (`receivers`, …).
    pub fn section(self) -> &'static str {
        match self {
            Self::Receiver => "receivers",
            Self::Processor => "processors",
            Self::Exporter => "exporters",
            Self::Extension => "extensions",
        }
    }
}

/// A component id as written in the config: `otlp`, `otlp/internal`, `file_log/pods`.
///
/// `ty` keeps the spelling the user chose (old or new upstream name) so references match
/// textually, exactly as upstream; the typed config says which component it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentId {
    pub ty: String,
    pub name: Option<String>,
}

impl ComponentId {
    pub fn new(ty: impl Into<String>, name: Option<&str>) -> Self {
        Self {
            ty: ty.into(),
            name: name.map(str::to_string),
        }
    }
}

impl FromStr for ComponentId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ty, name) = match s.split_once('/') {
            Some((ty, name)) => (ty, Some(name)),
            None => (s, None),
        };
        if ty.is_empty() {
            return Err(format!("id {s:?} has an empty type"));
        }
        if !ty
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "id {s:?}: type must be letters, digits, '_' or '-'"
            ));
        }
        if name.is_some_and(str::is_empty) {
            return Err(format!("id {s:?} has an empty name after '/'"));
        }
        Ok(Self::new(ty, name))
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{}/{}", self.ty, n),
            None => f.write_str(&self.ty),
        }
    }
}

/// A pipeline id: `traces`, `metrics/kubelet`, `logs/pods`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PipelineId {
    pub signal: Signal,
    pub name: Option<String>,
}

impl FromStr for PipelineId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (sig, name) = match s.split_once('/') {
            Some((sig, name)) => (sig, Some(name)),
            None => (s, None),
        };
        let signal = match sig {
            "traces" => Signal::Traces,
            "metrics" => Signal::Metrics,
            "logs" => Signal::Logs,
            other => {
                return Err(format!(
                    "pipeline {s:?}: signal {other:?} is not one of traces, metrics, logs"
                ));
            }
        };
        if name.is_some_and(str::is_empty) {
            return Err(format!("pipeline {s:?} has an empty name after '/'"));
        }
        Ok(Self {
            signal,
            name: name.map(str::to_string),
        })
    }
}

impl fmt::Display for PipelineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.signal.as_str())?;
        if let Some(n) = &self.name {
            write!(f, "/{n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids() {
        let id: ComponentId = "otlp/internal".parse().unwrap();
        assert_eq!(id.ty, "otlp");
        assert_eq!(id.name.as_deref(), Some("internal"));
        assert_eq!(id.to_string(), "otlp/internal");
        assert!("/x".parse::<ComponentId>().is_err());
        assert!("otlp/".parse::<ComponentId>().is_err());
        let p: PipelineId = "logs/pods".parse().unwrap();
        assert_eq!(p.signal, Signal::Logs);
        assert!("spans".parse::<PipelineId>().is_err());
    }
}
