//! The server's TLS material: its own CA and a server certificate signed by it, kept in the
//! data directory and reused across restarts, or the user's certificate and key; and the
//! rustls configuration built from either.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Server certificates are issued for this long.
const SERVER_CERT_DAYS: u64 = 397;
/// The CA lives this long (it is the trust anchor users install once).
const CA_DAYS: u64 = 3650;
/// A server certificate expiring within this is renewed at start.
const RENEW_WITHIN: Duration = Duration::from_secs(30 * 24 * 3600);
/// Common name of the generated CA; its key tells two Stevedore CAs apart.
const CA_NAME: &str = "Stevedore local CA";

/// Failure to produce or load TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A PEM file did not hold what it should.
    #[error("{path} does not hold a PEM {what}: {detail}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What it should hold.
        what: &'static str,
        /// Why it was refused.
        detail: String,
    },
    /// Generating a key or certificate failed.
    #[error("generating {what}: {source}")]
    Generate {
        /// What was being generated.
        what: &'static str,
        /// The underlying error.
        source: rcgen::Error,
    },
    /// rustls refused the certificate and key.
    #[error("the TLS certificate and key do not make a server configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Where the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// The server's own CA in the data directory issues it.
    Generated {
        /// The data directory.
        data_dir: PathBuf,
        /// Names and addresses the certificate must be valid for.
        sans: Vec<String>,
    },
    /// The user's PEM certificate chain and private key.
    User {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
}

/// The TLS material the server serves with.
pub struct ServerTls {
    /// The rustls configuration (HTTP/1.1 only, like the plain listener).
    pub config: Arc<rustls::ServerConfig>,
    /// The CA clients should trust, when the server generated it.
    pub ca_file: Option<PathBuf>,
    /// `sha256:<hex>` of that CA's certificate.
    pub ca_cert_hash: Option<String>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

/// Loads or creates the TLS material `source` names and builds the server configuration.
pub fn load(source: &CertSource) -> Result<ServerTls, TlsError> {
    let (cert, key, ca_file) = match source {
        CertSource::Generated { data_dir, sans } => {
            let files = ensure_generated(data_dir, sans, SystemTime::now())?;
            (files.server_crt, files.server_key, Some(files.ca_crt))
        }
        CertSource::User { cert, key } => (cert.clone(), key.clone(), None),
    };
    let mut chain = read_certs(&cert)?;
    // A CA of our own is sent after the server's certificate: an agent given only its
    // hash (`--ca-cert-hash`) takes it from there (clients that trust it ignore it).
    let ca_cert_hash = match &ca_file {
        Some(ca) => {
            let ca_chain = read_certs(ca)?;
            let hash = ca_chain.first().map(|c| agent::tls_pin::ca_cert_hash(c));
            chain.extend(ca_chain);
            hash
        }
        None => None,
    };
    let key = read_key(&key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(agent::tls::crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServerTls {
        config: Arc::new(config),
        ca_file,
        ca_cert_hash,
    })
}

/// The generated files in the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFiles {
    /// The CA certificate clients trust.
    pub ca_crt: PathBuf,
    /// The server certificate.
    pub server_crt: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
}

/// Makes sure the data directory holds a CA and a server certificate valid for `sans` at
/// `now` for at least [`RENEW_WITHIN`]; keeps what is there when it still fits.
pub fn ensure_generated(
    dir: &Path,
    sans: &[String],
    now: SystemTime,
) -> Result<GeneratedFiles, TlsError> {
    let files = GeneratedFiles {
        ca_crt: dir.join("ca.crt"),
        server_crt: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    };
    let ca_key_path = dir.join("ca.key");
    let meta_path = dir.join("server.meta");
    let ca_key = if ca_key_path.exists() && files.ca_crt.exists() {
        let pem = read_text(&ca_key_path)?;
        KeyPair::from_pem(&pem).map_err(|e| TlsError::Pem {
            path: ca_key_path.clone(),
            what: "private key",
            detail: e.to_string(),
        })?
    } else {
        let key = generate_key("the CA key")?;
        let ca = ca_params(now)
            .self_signed(&key)
            .map_err(|source| TlsError::Generate {
                what: "the CA certificate",
                source,
            })?;
        write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
        write_private(&files.ca_crt, ca.pem().as_bytes())?;
        // A new CA invalidates every certificate the old one issued.
        let _ = std::fs::remove_file(&meta_path);
        tracing::info!(path = %files.ca_crt.display(), "Created the server's certificate authority.");
        key
    };
    let wanted = Meta::new(sans, now);
    let current = std::fs::read_to_string(&meta_path)
        .ok()
        .and_then(|s| Meta::parse(&s));
    let fits = current.as_ref().is_some_and(|m| {
        m.sans == wanted.sans
            && m.not_after > unix(now) + RENEW_WITHIN.as_secs()
            && files.server_crt.exists()
            && files.server_key.exists()
    });
    if fits {
        return Ok(files);
    }
    // The CA certificate is re-derived from its key and fixed name: a certificate it
    // signs carries the same issuer and key identifier as the ca.crt users installed.
    let issuer = ca_params(now)
        .self_signed(&ca_key)
        .map_err(|source| TlsError::Generate {
            what: "the CA certificate",
            source,
        })?;
    let key = generate_key("the server key")?;
    let cert = server_params(&wanted.sans, now)?
        .signed_by(&key, &issuer, &ca_key)
        .map_err(|source| TlsError::Generate {
            what: "the server certificate",
            source,
        })?;
    write_private(&files.server_key, key.serialize_pem().as_bytes())?;
    write_private(&files.server_crt, cert.pem().as_bytes())?;
    write_private(&meta_path, wanted.render().as_bytes())?;
    tracing::info!(
        path = %files.server_crt.display(),
        sans = %wanted.sans.join(","),
        reason = if current.is_some() { "names changed or expiring" } else { "none yet" },
        "Issued the server certificate."
    );
    Ok(files)
}

/// What the server certificate was issued for, kept beside it to decide on reuse.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Meta {
    sans: Vec<String>,
    not_after: u64,
}

impl Meta {
    fn new(sans: &[String], now: SystemTime) -> Self {
        let mut sans: Vec<String> = sans.iter().map(|s| s.trim().to_owned()).collect();
        sans.retain(|s| !s.is_empty());
        sans.sort();
        sans.dedup();
        Self {
            sans,
            not_after: unix(now) + SERVER_CERT_DAYS * 86_400,
        }
    }

    fn render(&self) -> String {
        format!(
            "not_after={}\nsans={}\n",
            self.not_after,
            self.sans.join(",")
        )
    }

    fn parse(text: &str) -> Option<Self> {
        let (mut sans, mut not_after) = (None, None);
        for line in text.lines() {
            match line.split_once('=') {
                Some(("not_after", v)) => not_after = v.parse().ok(),
                Some(("sans", v)) => {
                    sans = Some(
                        v.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    )
                }
                _ => {}
            }
        }
        Some(Self {
            sans: sans?,
            not_after: not_after?,
        })
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    agent::modes::write_private(path, bytes).map_err(|source| TlsError::Io {
        action: "writing",
        path: path.to_owned(),
        source,
    })
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn generate_key(what: &'static str) -> Result<KeyPair, TlsError> {
    KeyPair::generate().map_err(|source| TlsError::Generate { what, source })
}

fn ca_params(now: SystemTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    dn.push(DnType::OrganizationName, "Stevedore");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = (now - Duration::from_secs(3600)).into();
    params.not_after = (now + Duration::from_secs(CA_DAYS * 86_400)).into();
    params
}

fn server_params(sans: &[String], now: SystemTime) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Stevedore server");
    params.distinguished_name = dn;
    params.subject_alt_names = sans
        .iter()
        .map(|s| match s.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => s
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .map_err(|source| TlsError::Generate {
                    what: "the server certificate's names",
                    source,
                }),
        })
        .collect::<Result<_, _>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = (now - Duration::from_secs(3600)).into();
    params.not_after = (now + Duration::from_secs(SERVER_CERT_DAYS * 86_400)).into();
    Ok(params)
}

/// The names the generated server certificate covers: loopback, the listen address when
/// it is specific, this host's name, and the user's extras.
pub fn default_sans(listen: std::net::SocketAddr, extra: &[String]) -> Vec<String> {
    let mut sans = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if !listen.ip().is_unspecified() {
        sans.push(listen.ip().to_string());
    }
    if let Some(host) = host_name() {
        sans.push(host);
    }
    sans.extend(extra.iter().cloned());
    Meta::new(&sans, SystemTime::now()).sans
}

fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())?;
    let name = name.trim().to_owned();
    (!name.is_empty() && rcgen::Ia5String::try_from(name.clone()).is_ok()).then_some(name)
}

fn read_text(path: &Path) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Io {
        action: "reading",
        path: path.to_owned(),
        source,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_text(path)?;
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            what: "certificate",
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: "certificate",
            detail: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_text(path)?;
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        what: "private key",
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sans(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
    }

    #[test]
    fn first_start_creates_owner_only_ca_and_server_files_and_restart_reuses_them() {
        let dir = tempfile::tempdir().expect("tmp");
        let now = SystemTime::now();
        let files =
            ensure_generated(dir.path(), &sans(&["localhost", "127.0.0.1"]), now).expect("gen");
        for name in ["ca.crt", "ca.key", "server.crt", "server.key"] {
            assert_eq!(mode(&dir.path().join(name)), 0o600, "{name}");
        }
        let before = std::fs::read(&files.server_crt).expect("read");
        let ca_before = std::fs::read(&files.ca_crt).expect("read");
        ensure_generated(dir.path(), &sans(&["127.0.0.1", "localhost"]), now).expect("again");
        assert_eq!(std::fs::read(&files.server_crt).expect("read"), before);
        assert_eq!(std::fs::read(&files.ca_crt).expect("read"), ca_before);
    }

    #[test]
    fn changed_names_or_near_expiry_reissue_the_server_certificate_under_the_same_ca() {
        let dir = tempfile::tempdir().expect("tmp");
        let now = SystemTime::now();
        let files = ensure_generated(dir.path(), &sans(&["localhost"]), now).expect("gen");
        let (ca, first) = (
            std::fs::read(&files.ca_crt).expect("read"),
            std::fs::read(&files.server_crt).expect("read"),
        );
        ensure_generated(dir.path(), &sans(&["localhost", "stevedore.lan"]), now).expect("sans");
        let second = std::fs::read(&files.server_crt).expect("read");
        assert_ne!(second, first);
        let later = now + Duration::from_secs((SERVER_CERT_DAYS - 10) * 86_400);
        ensure_generated(dir.path(), &sans(&["localhost", "stevedore.lan"]), later).expect("renew");
        assert_ne!(std::fs::read(&files.server_crt).expect("read"), second);
        assert_eq!(std::fs::read(&files.ca_crt).expect("read"), ca);
    }

    /// One TLS handshake between `server` and a client trusting `ca`, for `name`.
    async fn handshake(server: &ServerTls, ca: &Path, name: &str) -> Result<(), String> {
        let client = agent::tls::config_from_ca_file(ca).map_err(|e| e.to_string())?;
        let (a, b) = tokio::io::duplex(64 * 1024);
        let acceptor = tokio_rustls::TlsAcceptor::from(server.config.clone());
        let srv = tokio::spawn(async move { acceptor.accept(b).await.map(|_| ()) });
        let name =
            rustls_pki_types::ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
        let out = tokio_rustls::TlsConnector::from(client)
            .connect(name, a)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        drop(srv);
        out
    }

    #[tokio::test]
    async fn clients_trusting_the_ca_accept_the_server_and_another_ca_is_refused() {
        let (one, two) = (
            tempfile::tempdir().expect("tmp"),
            tempfile::tempdir().expect("tmp"),
        );
        let names = sans(&["localhost", "127.0.0.1"]);
        let source = |d: &Path| CertSource::Generated {
            data_dir: d.to_owned(),
            sans: names.clone(),
        };
        let server = load(&source(one.path())).expect("load");
        let ca = server.ca_file.clone().expect("generated CA");
        handshake(&server, &ca, "localhost").await.expect("trusted");
        handshake(&server, &ca, "127.0.0.1")
            .await
            .expect("trusted by address");
        // A certificate from another Stevedore CA (same names): a man in the middle.
        let other = load(&source(two.path())).expect("load");
        let err = handshake(&other, &ca, "localhost").await.expect_err("mitm");
        assert!(err.contains("certificate"), "{err}");
        // A name the certificate was not issued for.
        let err = handshake(&server, &ca, "example.com")
            .await
            .expect_err("name");
        assert!(err.contains("certificate"), "{err}");
    }

    #[test]
    fn user_certificates_are_used_as_given_and_a_missing_key_is_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let files =
            ensure_generated(dir.path(), &sans(&["localhost"]), SystemTime::now()).expect("gen");
        let user = CertSource::User {
            cert: files.server_crt.clone(),
            key: files.server_key.clone(),
        };
        assert!(load(&user).expect("user").ca_file.is_none());
        let missing = CertSource::User {
            cert: files.server_crt,
            key: dir.path().join("nope.key"),
        };
        let err = load(&missing).expect_err("missing");
        assert!(err.to_string().contains("nope.key"), "{err}");
    }

    #[test]
    fn default_names_cover_loopback_a_specific_listen_address_and_extras() {
        let any = default_sans("0.0.0.0:4747".parse().expect("addr"), &sans(&["ecs.lan"]));
        for want in ["localhost", "127.0.0.1", "::1", "ecs.lan"] {
            assert!(any.contains(&want.to_owned()), "{want} in {any:?}");
        }
        assert!(!any.contains(&"0.0.0.0".to_owned()));
        let specific = default_sans("10.1.2.3:4747".parse().expect("addr"), &[]);
        assert!(specific.contains(&"10.1.2.3".to_owned()));
    }
}
