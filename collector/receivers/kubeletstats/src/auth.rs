//! Credentials: the service-account bearer token (re-read when the file changes, since projected
//! tokens rotate) and the rustls client config (trusted CAs, client certificate, or no
//! verification for `insecure_skip_verify`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use http::HeaderValue;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Even an unchanged-looking token file is re-read this often, in case a rewrite kept its size
/// and modification time.
const TOKEN_MAX_AGE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading the bearer token {path}: {source}")]
    Token {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the bearer token file {path} is empty")]
    EmptyToken { path: PathBuf },
    #[error("the bearer token in {path} is not a valid header value")]
    BadToken { path: PathBuf },
    #[error("reading PEM file {path}: {source}")]
    Pem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
}

/// The service account's token, cached until its file changes.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    cached: Mutex<Option<Cached>>,
}

#[derive(Debug, Clone)]
struct Cached {
    modified: Option<SystemTime>,
    len: u64,
    read_at: Instant,
    header: HeaderValue,
}

impl TokenFile {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            cached: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `Authorization` header value. A stat per request; a read when the file changed.
    pub fn header(&self) -> Result<HeaderValue, AuthError> {
        let err = |source| AuthError::Token {
            path: self.path.clone(),
            source,
        };
        // metadata() follows the `..data` symlink a projected volume swaps on rotation.
        let meta = std::fs::metadata(&self.path).map_err(err)?;
        let modified = meta.modified().ok();
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cached.as_ref()
            && c.modified == modified
            && c.len == meta.len()
            && c.read_at.elapsed() < TOKEN_MAX_AGE
        {
            return Ok(c.header.clone());
        }
        let token = std::fs::read_to_string(&self.path).map_err(err)?;
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::EmptyToken {
                path: self.path.clone(),
            });
        }
        let mut header =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| AuthError::BadToken {
                path: self.path.clone(),
            })?;
        header.set_sensitive(true);
        *cached = Some(Cached {
            modified,
            len: meta.len(),
            read_at: Instant::now(),
            header: header.clone(),
        });
        Ok(header)
    }
}

/// What the TLS client trusts and presents.
pub struct TlsSettings<'a> {
    pub ca_file: Option<&'a Path>,
    pub client_cert: Option<(&'a Path, &'a Path)>,
    pub insecure_skip_verify: bool,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls client config: system roots plus `ca_file`, an optional client certificate.
pub fn client_config(s: &TlsSettings<'_>) -> Result<ClientConfig, AuthError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if s.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(
                provider.signature_verification_algorithms,
            )))
    } else {
        builder.with_root_certificates(roots(s.ca_file)?)
    };
    let mut config = match s.client_cert {
        Some((cert, key)) => builder.with_client_auth_cert(certs(cert)?, private_key(key)?)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, AuthError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "skipping unreadable system CA certificates");
    }
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let (added, ignored) = roots.add_parsable_certificates(certs(path)?);
        tracing::debug!(path = %path.display(), added, ignored, "loaded CA file");
    }
    Ok(roots)
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, AuthError> {
    let pem = |source| AuthError::Pem {
        path: path.to_path_buf(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(AuthError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, AuthError> {
    PrivateKeyDer::from_pem_file(path).map_err(|source| AuthError::Pem {
        path: path.to_path_buf(),
        source,
    })
}

/// `insecure_skip_verify`: any server certificate is accepted, as upstream's Go client does with
/// `InsecureSkipVerify`. Handshake signatures are still checked, so the peer holds the key of the
/// certificate it sent.
#[derive(Debug)]
struct NoVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_reread_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let t = TokenFile::new(path.clone());
        assert_eq!(t.header().unwrap(), "Bearer first");
        // A rotated token has a different size here, so the change is seen even when the
        // modification time has a coarse granularity.
        std::fs::write(&path, "second-token").unwrap();
        assert_eq!(t.header().unwrap(), "Bearer second-token");
        std::fs::write(&path, "  ").unwrap();
        assert!(matches!(t.header(), Err(AuthError::EmptyToken { .. })));
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(t.header(), Err(AuthError::Token { .. })));
    }
}
