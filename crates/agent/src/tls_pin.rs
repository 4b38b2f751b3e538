//! Trust on a pinned hash: an agent host given `--ca-cert-hash sha256:<hex>` (printed by
//! `stevedore join-token`) takes the server's CA from the chain the server presents,
//! keeps it only when its SHA-256 is the pin and the server's certificate verifies
//! against it for the endpoint's name, and trusts it from then on. A man in the middle
//! cannot present a CA with the pinned hash, so no `ca.crt` has to be copied by hand
//! (kubeadm's discovery hash works the same way).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;

/// How long reaching the endpoint may take.
const WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the pinned CA could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The pin is not `sha256:` and 64 hex digits.
    #[error("--ca-cert-hash must be sha256: and 64 hex digits, got '{0}'")]
    BadPin(String),
    /// The endpoint is not an `https://` URL with a host.
    #[error("--ca-cert-hash needs an https:// endpoint, got '{0}'")]
    NotHttps(String),
    /// The endpoint did not complete a TLS handshake.
    #[error("could not reach {endpoint} over TLS: {detail}")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// What failed.
        detail: String,
    },
    /// No certificate the endpoint presented has the pinned hash, or its certificate
    /// does not verify against that one.
    #[error("the server at {endpoint} presented no CA certificate with hash {pin} that its certificate verifies against ({detail}); check the hash `stevedore join-token` printed, or that this host reaches the right server")]
    Mismatch {
        /// The endpoint.
        endpoint: String,
        /// The pin.
        pin: String,
        /// Why.
        detail: String,
    },
}

/// `sha256:<hex>` of a certificate's DER encoding.
pub fn ca_cert_hash(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The PEM of the CA certificate with hash `pin` that `endpoint` (`https://host:port`)
/// presents, once the server's certificate verifies against it for the host's name.
pub async fn fetch_pinned_ca(endpoint: &str, pin: &str) -> Result<String, PinError> {
    let pin = pin.trim().to_ascii_lowercase();
    let hex = pin.strip_prefix("sha256:").unwrap_or("");
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PinError::BadPin(pin));
    }
    let not_https = || PinError::NotHttps(endpoint.to_owned());
    let uri = endpoint.parse::<http::Uri>().map_err(|_| not_https())?;
    if uri.scheme_str() != Some("https") {
        return Err(not_https());
    }
    let host = uri.host().ok_or_else(not_https)?;
    let port = uri.port_u16().unwrap_or(443);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(bare.to_owned()).map_err(|_| not_https())?;
    let unreachable = |detail: String| PinError::Unreachable {
        endpoint: endpoint.to_owned(),
        detail,
    };
    let provider = crate::tls::crypto_provider();
    let capture = Arc::new(Capture {
        chain: Mutex::default(),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| unreachable(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(capture.clone())
        .with_no_client_auth();
    let tcp = tokio::time::timeout(WITHIN, TcpStream::connect(format!("{host}:{port}")))
        .await
        .map_err(|_| unreachable("timed out connecting".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    // The handshake proves the server holds its certificate's key (its signature is
    // checked); whom the certificate belongs to is checked below, against the pin.
    tokio::time::timeout(
        WITHIN,
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name.clone(), tcp),
    )
    .await
    .map_err(|_| unreachable("timed out in the TLS handshake".into()))?
    .map_err(|e| unreachable(e.to_string()))?;
    let chain = capture
        .chain
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mismatch = |detail: String| PinError::Mismatch {
        endpoint: endpoint.to_owned(),
        pin: pin.clone(),
        detail,
    };
    let Some((leaf, rest)) = chain.split_first() else {
        return Err(mismatch("it presented no certificate".into()));
    };
    let ca = chain
        .iter()
        .find(|c| ca_cert_hash(c) == pin)
        .ok_or_else(|| {
            mismatch(format!(
                "it presented {} certificate(s), none with that hash",
                chain.len()
            ))
        })?;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|e| mismatch(format!("the pinned certificate is not a usable CA: {e}")))?;
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| mismatch(e.to_string()))?;
    let intermediates: Vec<CertificateDer<'static>> =
        rest.iter().filter(|c| *c != ca).cloned().collect();
    verifier
        .verify_server_cert(leaf, &intermediates, &name, &[], UnixTime::now())
        .map_err(|e| mismatch(e.to_string()))?;
    Ok(pem(ca))
}

fn pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Accepts any chain for one handshake and keeps it, so [`fetch_pinned_ca`] can judge it
/// against the pin; the handshake signatures are still verified.
#[derive(Debug)]
struct Capture {
    chain: Mutex<Vec<CertificateDer<'static>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        *self
            .chain
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = chain;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_sha256_of_the_der_in_lowercase_hex() {
        assert_eq!(
            ca_cert_hash(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[tokio::test]
    async fn malformed_pins_and_plain_endpoints_are_refused_before_connecting() {
        for pin in [
            "",
            "sha256:",
            "md5:00",
            "sha256:xyz",
            &format!("sha256:{}", "0".repeat(63)),
        ] {
            assert!(matches!(
                fetch_pinned_ca("https://127.0.0.1:1", pin).await,
                Err(PinError::BadPin(_))
            ));
        }
        let pin = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(
            fetch_pinned_ca("http://127.0.0.1:1", &pin).await,
            Err(PinError::NotHttps(_))
        ));
    }
}
