//! Which certificate authorities the agent's clients trust for `https://` and `wss://`
//! endpoints: one CA file (`--ca-file`) or the system's roots, process-wide, so the ECS API
//! client, the channel and registry authentication all verify the same way.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

static TRUST: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();

/// The CA file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file could not be read.
    #[error("reading the CA file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file holds no usable certificate.
    #[error("the CA file {path} holds no usable PEM certificate{detail}")]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// What the parser said, if anything.
        detail: String,
    },
    /// The trust is already set to something else.
    #[error("the TLS trust of this process is already set")]
    AlreadySet,
}

/// A connection that may or may not be TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Builds a client configuration trusting only the certificates in `path`.
pub fn config_from_ca_file(path: &Path) -> Result<Arc<rustls::ClientConfig>, TrustError> {
    let pem = std::fs::read(path).map_err(|source| TrustError::Read {
        path: path.to_owned(),
        source,
    })?;
    let no_cert = |detail: String| TrustError::NoCertificate {
        path: path.to_owned(),
        detail,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| no_cert(format!(": {e}")))?;
        roots.add(cert).map_err(|e| no_cert(format!(": {e}")))?;
    }
    if roots.is_empty() {
        return Err(no_cert(String::new()));
    }
    Ok(with_roots(roots))
}

/// The rustls crypto provider every Stevedore endpoint uses: *ring*, which builds with just
/// a C compiler and quickly (aws-lc-rs needs a long native build); rustls marks it
/// deprecated only for lacking post-quantum key exchange.
#[allow(deprecated)]
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn with_roots(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = crypto_provider();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // Not input: the ring provider supports every default protocol version.
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn system_roots() -> Arc<rustls::ClientConfig> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "Could not load a system CA certificate.");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "Loaded the system's CA certificates.");
    with_roots(roots)
}

/// Makes every client of this process trust only the CAs in `path` (call once, at start).
pub fn trust_ca_file(path: &Path) -> Result<(), TrustError> {
    let config = config_from_ca_file(path)?;
    TRUST.set(config).map_err(|_| TrustError::AlreadySet)?;
    tracing::info!(ca_file = %path.display(), "TLS endpoints are verified with this CA file.");
    Ok(())
}

/// The process's client configuration: the CA file given to [`trust_ca_file`], else the
/// system's roots.
pub fn client_config() -> Arc<rustls::ClientConfig> {
    TRUST.get_or_init(system_roots).clone()
}

/// Runs the TLS handshake over `tcp` for `host` with the process's trust.
pub async fn connect(tcp: TcpStream, host: &str) -> Result<Box<dyn Io>, std::io::Error> {
    let name = ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    )
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let tls = tokio_rustls::TlsConnector::from(client_config())
        .connect(name, tcp)
        .await?;
    Ok(Box::new(tls))
}

/// The endpoint's certificate is not trusted.
#[derive(Debug, thiserror::Error)]
#[error(
    "the server at {endpoint} presented a certificate this host does not trust ({detail}); \
     pass the server's CA with --ca-file (STEVEDORE_AGENT_CA_FILE, or STEVEDORE_CA_FILE in the \
     config file)"
)]
pub struct UntrustedEndpoint {
    /// The endpoint.
    pub endpoint: String,
    /// What the handshake said.
    pub detail: String,
}

/// For an `https://` endpoint, runs one TLS handshake and fails when the certificate is
/// not trusted. A server that cannot be reached yet is not an error here (the agent
/// retries its calls); plain `http://` endpoints pass.
pub async fn verify_endpoint(endpoint: &str) -> Result<(), UntrustedEndpoint> {
    let Ok(uri) = endpoint.parse::<http::Uri>() else {
        return Ok(());
    };
    if uri.scheme_str() != Some("https") {
        return Ok(());
    }
    let Some(host) = uri.host() else {
        return Ok(());
    };
    let port = uri.port_u16().unwrap_or(443);
    let target = format!("{}:{port}", host);
    let tcp = match tokio::time::timeout(
        std::time::Duration::from_secs(10),
        TcpStream::connect(&target),
    )
    .await
    {
        Ok(Ok(tcp)) => tcp,
        _ => return Ok(()),
    };
    let handshake = tokio::time::timeout(std::time::Duration::from_secs(10), connect(tcp, host));
    match handshake.await {
        Ok(Err(error)) if is_trust_failure(&error) => Err(UntrustedEndpoint {
            endpoint: endpoint.to_owned(),
            detail: error.to_string(),
        }),
        _ => Ok(()),
    }
}

fn is_trust_failure(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("ca.crt");
        std::fs::write(&p, "not a certificate").expect("write");
        let err = config_from_ca_file(&p).expect_err("empty");
        assert!(err.to_string().contains("ca.crt"), "{err}");
    }

    #[test]
    fn a_missing_file_is_refused_naming_it() {
        let err = config_from_ca_file(Path::new("/nonexistent/ca.crt")).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/ca.crt"), "{err}");
    }
}
