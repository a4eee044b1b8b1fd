//! `bearertokenauth` and `basicauth` as client authenticators: the header an exporter that names
//! one in `auth.authenticator` adds to every request.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::Engine;
use http::{HeaderName, HeaderValue};
use kotel_config::extensions::auth::{BasicAuthConfig, BearerTokenAuthConfig};
use kotel_config::{ComponentId, ExtensionConfig};
use kotel_pipeline::ClientAuth;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("extensions.{id}.header: {header:?} is not a valid header name")]
    HeaderName { id: ComponentId, header: String },
    #[error("extensions.{id}: the credentials are not a valid header value")]
    HeaderValue { id: ComponentId },
    #[error("extensions.{id}.filename: cannot read {path}: {source}")]
    File {
        id: ComponentId,
        path: String,
        source: std::io::Error,
    },
    #[error(
        "extensions.{id}: basicauth without client_auth only checks what a server receives; an exporter needs client_auth"
    )]
    NoClientAuth { id: ComponentId },
}

/// The authenticator `ext` describes, if it is one.
pub fn build(
    id: &ComponentId,
    ext: &ExtensionConfig,
) -> Result<Option<Arc<dyn ClientAuth>>, AuthError> {
    match ext {
        ExtensionConfig::BearerTokenAuth(c) => Ok(Some(Arc::new(bearer(id, c)?))),
        ExtensionConfig::BasicAuth(c) => Ok(Some(Arc::new(basic(id, c)?))),
        _ => Ok(None),
    }
}

fn header_name(id: &ComponentId, name: &str) -> Result<HeaderName, AuthError> {
    HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| {
        AuthError::HeaderName {
            id: id.clone(),
            header: name.to_string(),
        }
    })
}

/// `<scheme> <token>` as a (sensitive) header value.
fn credentials(id: &ComponentId, scheme: &str, token: &str) -> Result<HeaderValue, AuthError> {
    let text = if scheme.is_empty() {
        token.to_string()
    } else {
        format!("{scheme} {token}")
    };
    let mut value =
        HeaderValue::from_str(&text).map_err(|_| AuthError::HeaderValue { id: id.clone() })?;
    value.set_sensitive(true);
    Ok(value)
}

fn basic(id: &ComponentId, c: &BasicAuthConfig) -> Result<Fixed, AuthError> {
    let client = c
        .client_auth
        .as_ref()
        .ok_or_else(|| AuthError::NoClientAuth { id: id.clone() })?;
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", client.username, client.password));
    Ok(Fixed {
        name: http::header::AUTHORIZATION,
        value: credentials(id, "Basic", &encoded)?,
    })
}

fn bearer(id: &ComponentId, c: &BearerTokenAuthConfig) -> Result<Bearer, AuthError> {
    let name = header_name(id, &c.header)?;
    match &c.filename {
        Some(path) => {
            let file = TokenFile {
                id: id.clone(),
                path: PathBuf::from(path),
                scheme: c.scheme.clone(),
                last: Mutex::new(None),
            };
            // The file must be readable at start; later failures keep the last token.
            file.read()?;
            Ok(Bearer::File(name, file))
        }
        None => {
            let token = c
                .token
                .clone()
                .filter(|t| !t.is_empty())
                .or_else(|| c.tokens.first().cloned())
                .unwrap_or_default();
            Ok(Bearer::Fixed(Fixed {
                name,
                value: credentials(id, &c.scheme, &token)?,
            }))
        }
    }
}

/// A header that never changes (a token or credentials written in the config).
struct Fixed {
    name: HeaderName,
    value: HeaderValue,
}

impl ClientAuth for Fixed {
    fn header(&self) -> (HeaderName, HeaderValue) {
        (self.name.clone(), self.value.clone())
    }
}

enum Bearer {
    Fixed(Fixed),
    File(HeaderName, TokenFile),
}

impl ClientAuth for Bearer {
    fn header(&self) -> (HeaderName, HeaderValue) {
        match self {
            Self::Fixed(f) => f.header(),
            Self::File(name, file) => (name.clone(), file.current()),
        }
    }
}

/// A token kept in a file that is replaced when it rotates (Kubernetes projected tokens):
/// read again whenever its modification time changes.
struct TokenFile {
    id: ComponentId,
    path: PathBuf,
    scheme: String,
    last: Mutex<Option<(SystemTime, HeaderValue)>>,
}

impl TokenFile {
    /// The header value from the file as it is now (re-read only when it changed).
    fn read(&self) -> Result<HeaderValue, AuthError> {
        let file_err = |source| AuthError::File {
            id: self.id.clone(),
            path: self.path.display().to_string(),
            source,
        };
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .map_err(file_err)?;
        let mut last = self.last.lock().expect("token lock");
        if let Some((at, value)) = &*last
            && *at == modified
        {
            return Ok(value.clone());
        }
        let text = std::fs::read_to_string(&self.path).map_err(file_err)?;
        // The first line: a file of several tokens (a server's) gives the client the first.
        let token = text.lines().next().unwrap_or_default().trim();
        let value = credentials(&self.id, &self.scheme, token)?;
        *last = Some((modified, value.clone()));
        Ok(value)
    }

    /// The current value; when the file cannot be read now, the last one read, with a warning.
    fn current(&self) -> HeaderValue {
        match self.read() {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "keeping the last bearer token");
                let last = self.last.lock().expect("token lock");
                last.as_ref()
                    .map(|(_, v)| v.clone())
                    .expect("read at start")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ComponentId {
        s.parse().unwrap()
    }

    #[test]
    fn basic_credentials_are_base64_of_user_and_password() {
        let c: BasicAuthConfig =
            serde_yaml_ng::from_str("client_auth: {username: alice, password: s3cret}").unwrap();
        let (name, value) = basic(&id("basicauth"), &c).unwrap().header();
        assert_eq!(name, http::header::AUTHORIZATION);
        assert_eq!(value, "Basic YWxpY2U6czNjcmV0");
        assert!(value.is_sensitive());
        let server_only: BasicAuthConfig =
            serde_yaml_ng::from_str("htpasswd: {inline: x}").unwrap();
        assert!(matches!(
            basic(&id("basicauth"), &server_only),
            Err(AuthError::NoClientAuth { .. })
        ));
    }

    #[test]
    fn a_token_file_is_read_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let c = BearerTokenAuthConfig {
            filename: Some(path.display().to_string()),
            header: "X-Token".into(),
            ..Default::default()
        };
        let auth = bearer(&id("bearertokenauth"), &c).unwrap();
        assert_eq!(
            auth.header(),
            (
                HeaderName::from_static("x-token"),
                HeaderValue::from_static("Bearer first")
            )
        );
        // A rotation writes a new file and renames it into place: a new modification time.
        let next = dir.path().join("token.new");
        std::fs::write(&next, "second\n").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&next)
            .unwrap()
            .set_modified(later)
            .unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert_eq!(auth.header().1, "Bearer second");
        // Gone: the last token stays.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(auth.header().1, "Bearer second");
        // A missing file at start is an error that names it.
        let e = bearer(&id("bearertokenauth"), &c)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("filename") && e.contains("token"), "{e}");
    }

    #[test]
    fn a_token_in_the_config_with_its_scheme() {
        let c: BearerTokenAuthConfig = serde_yaml_ng::from_str("token: abc").unwrap();
        assert_eq!(bearer(&id("b"), &c).unwrap().header().1, "Bearer abc");
        let c: BearerTokenAuthConfig =
            serde_yaml_ng::from_str("{scheme: '', tokens: [t1, t2], header: X-Key}").unwrap();
        let (name, value) = bearer(&id("b"), &c).unwrap().header();
        assert_eq!((name.as_str(), value.to_str().unwrap()), ("x-key", "t1"));
    }
}
