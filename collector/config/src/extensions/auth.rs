//! Client authenticators: the extensions an exporter names in `auth.authenticator`, each adding
//! one header to every request. `bearertokenauth` (a token, or a file holding it, read again when
//! it changes) and `basicauth` (`client_auth`).

use serde::Deserialize;

use crate::error::ConfigError;

/// `bearertokenauth`: `<header>: <scheme> <token>` on every request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BearerTokenAuthConfig {
    /// Default `Authorization`.
    pub header: String,
    /// Default `Bearer`; empty sends the token alone.
    pub scheme: String,
    pub token: Option<String>,
    /// Tokens a server would accept; a client sends the first.
    pub tokens: Vec<String>,
    /// A file holding the token (a projected service-account token): it takes the place of
    /// `token` and is read again whenever it changes.
    pub filename: Option<String>,
}

impl Default for BearerTokenAuthConfig {
    fn default() -> Self {
        Self {
            header: "Authorization".into(),
            scheme: "Bearer".into(),
            token: None,
            tokens: Vec::new(),
            filename: None,
        }
    }
}

impl BearerTokenAuthConfig {
    pub(crate) fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let token = self.token.as_deref().is_some_and(|t| !t.is_empty());
        if !token && self.tokens.is_empty() && self.filename.is_none() {
            return Err(ConfigError::new(
                path,
                "no bearer token provided: set token, tokens or filename",
            ));
        }
        if token && !self.tokens.is_empty() {
            return Err(ConfigError::new(
                path,
                "either tokens or token should be provided, not both",
            ));
        }
        Ok(())
    }
}

/// `basicauth`: `Authorization: Basic base64(username:password)` on every request.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuthConfig {
    pub client_auth: Option<ClientAuthConfig>,
    /// The server side (receivers' `auth`), accepted in the config; kotel's receivers do not
    /// authenticate yet, so an exporter may name only a `basicauth` with `client_auth`.
    pub htpasswd: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientAuthConfig {
    pub username: String,
    pub password: String,
}

/// An exporter's `auth`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRef {
    /// The id of a `bearertokenauth` or `basicauth` extension listed in `service.extensions`.
    pub authenticator: String,
}
