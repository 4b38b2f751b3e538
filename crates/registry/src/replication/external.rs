//! Replication to another Stevedore server: an *external destination*.
//!
//! A replication rule names a destination only by `region` and `registryId` (that is
//! the whole of ECR's `ReplicationDestination`), so an external server is named the same
//! way: the destination's `registryId` is the other server's account id, and this
//! server finds where that registry is served in the destinations directory
//! (`STEVEDORE_REPLICATION_DESTINATIONS_DIR`), one file per registry id:
//!
//! ```json
//! // <dir>/444455556666.json, mode 0600
//! {"endpoint": "https://registry-b.example:4747",
//!  "accessKeyId": "AKIA…", "secretAccessKey": "…"}
//! ```
//!
//! A registry id with a file there is external (whatever accounts this server has);
//! any other is an account of this server. The file is read on every attempt, so
//! rotated keys need no restart; it is refused when its group or others may read it.
//!
//! The copy speaks only public APIs, as any client would: ECR's DescribeRepositories /
//! CreateRepository / GetAuthorizationToken (SigV4-signed for the rule's region), then
//! the OCI distribution API with the token (blobs the destination lacks, child
//! manifests, the manifest, its tags). The destination authorizes the credentials'
//! principal with its own IAM policies; it cannot know this server's accounts, so its
//! registry policy is not what admits the copy (unlike a destination of this server).
//! Each manifest carries [`super::REPLICA_HEADER`], so the destination stores it
//! without replicating it again (one hop, as on AWS); it takes that mark only from a
//! principal allowed `ecr:ReplicateImage`. Blob bodies stream from the blob store to
//! the socket, never through memory, each in one monolithic upload, several at once.
//!
//! Plain `http://` is accepted only for a loopback endpoint (the registry token travels
//! in a Basic header); `https://` is verified against the system's CA certificates.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

/// Largest destination file read.
const MAX_FILE_BYTES: u64 = 64 * 1024;
/// How long an API call or a manifest upload has, end to end.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest API response read.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Bytes per frame of a blob upload: large, since each is one file read on tokio's
/// blocking pool.
pub(crate) const UPLOAD_CHUNK: usize = 1024 * 1024;
/// ECR's JSON 1.1 target prefix.
const TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921";

// Unsync: a blob body reads from the blob store's reader, which is `Send` only.
type Body = UnsyncBoxBody<Bytes, std::io::Error>;
type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

/// Another Stevedore server that serves a destination registry.
#[derive(Clone)]
pub(crate) struct Destination {
    /// `https`, or `http` for a loopback host.
    scheme: &'static str,
    /// `host[:port]`.
    host: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("endpoint", &format_args!("{}://{}", self.scheme, self.host))
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// What a destination file holds.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DestinationFile {
    endpoint: String,
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
}

/// The external destination `registry_id` names in `dir`, `None` when it names none
/// (the destination is then an account of this server); the reason when the file is
/// unusable.
pub(crate) async fn load(dir: &Path, registry_id: &str) -> Result<Option<Destination>, String> {
    // Stored configurations were checked, but the id becomes a file name: check again.
    if registry_id.len() != 12 || !registry_id.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let path = dir.join(format!("{registry_id}.json"));
    let meta = match tokio::fs::metadata(&path).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "The destination file {} could not be read: {e}",
                path.display()
            ))
        }
    };
    check_private(&meta)
        .map_err(|why| format!("The destination file {}: {why}", path.display()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "The destination file {} is larger than {MAX_FILE_BYTES} bytes.",
            path.display()
        ));
    }
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        format!(
            "The destination file {} could not be read: {e}",
            path.display()
        )
    })?;
    compute_destination(&bytes)
        .map(Some)
        .map_err(|why| format!("The destination file {}: {why}", path.display()))
}

/// Credentials may be read by their owner only (as ssh insists for keys).
#[cfg(unix)]
fn check_private(meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "it holds credentials and may be read by its owner only (mode {:o}; chmod 600 it).",
            mode & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

/// Parses a destination file's text.
fn compute_destination(bytes: &[u8]) -> Result<Destination, String> {
    let file: DestinationFile = serde_json::from_slice(bytes).map_err(|e| {
        format!("it is not JSON with 'endpoint', 'accessKeyId' and 'secretAccessKey' strings: {e}")
    })?;
    let (scheme, host) = parse_endpoint(&file.endpoint)?;
    if file.access_key_id.is_empty() || file.secret_access_key.is_empty() {
        return Err("'accessKeyId' and 'secretAccessKey' must not be empty.".into());
    }
    Ok(Destination {
        scheme,
        host,
        access_key_id: file.access_key_id,
        secret_access_key: file.secret_access_key,
        session_token: file.session_token.filter(|t| !t.is_empty()),
    })
}

/// `https://host[:port]`, or `http://host[:port]` for a loopback host.
fn parse_endpoint(url: &str) -> Result<(&'static str, String), String> {
    let (scheme, rest) = match url.split_once("://") {
        Some(("https", rest)) => ("https", rest),
        Some(("http", rest)) => ("http", rest),
        _ => {
            return Err(format!(
            "the endpoint '{url}' must be https://host[:port] (or http:// for a loopback host)."
        ))
        }
    };
    let host = rest.trim_end_matches('/');
    let parsed: Option<http::uri::Authority> = host.parse().ok();
    let Some(authority) = parsed.filter(|_| !host.is_empty() && !host.contains(['/', '@'])) else {
        return Err(format!(
            "the endpoint '{url}' must be https://host[:port] (or http:// for a loopback host)."
        ));
    };
    if scheme == "http" && !crate::pull_through::is_loopback(authority.host()) {
        return Err(format!(
            "the endpoint '{url}' would carry registry tokens over plain HTTP; only a loopback endpoint may use http://."
        ));
    }
    Ok((scheme, host.to_owned()))
}

/// One connection pool for every external destination of this process.
fn http() -> &'static HttpClient {
    static CLIENT: OnceLock<HttpClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CALL_TIMEOUT));
        connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::pull_through::tls_config())
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https)
    })
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: std::convert::Infallible| -> std::io::Error { match never {} })
        .boxed_unsync()
}

/// An ECR error answer: its `__type` (without a namespace) and message.
struct ApiError {
    code: String,
    message: String,
}

/// A session with one external destination, for one region: the registry token it
/// earned is reused for every blob and manifest of an image.
pub(crate) struct Remote<'a> {
    dest: &'a Destination,
    region: &'a str,
    basic: Option<HeaderValue>,
    /// `<region>/<registryId>` of this (the source) registry, sent with each manifest
    /// as [`super::REPLICA_HEADER`] so the destination does not replicate it again.
    source: HeaderValue,
}

impl<'a> Remote<'a> {
    /// A session with `dest` in `region` for copies from registry `source_registry` in
    /// `source_region` (both validated names: a region and 12 digits).
    pub(crate) fn new(
        dest: &'a Destination,
        region: &'a str,
        source_region: &str,
        source_registry: &str,
    ) -> Result<Self, String> {
        let source =
            HeaderValue::from_str(&format!("{source_region}/{source_registry}")).map_err(|_| {
                format!(
                    "the source registry {source_region}/{source_registry} is not a header value"
                )
            })?;
        Ok(Self {
            dest,
            region,
            basic: None,
            source,
        })
    }

    fn origin(&self) -> String {
        format!("{}://{}", self.dest.scheme, self.dest.host)
    }

    fn unreachable(&self, detail: impl std::fmt::Display) -> String {
        format!(
            "The destination server {} could not be reached: {detail}",
            self.origin()
        )
    }

    async fn send(
        &self,
        req: Request<Body>,
        within: Duration,
    ) -> Result<http::Response<hyper::body::Incoming>, String> {
        tokio::time::timeout(within, http().request(req))
            .await
            .map_err(|_| {
                self.unreachable(format!("no answer within {} seconds", within.as_secs()))
            })?
            .map_err(|e| self.unreachable(e))
    }

    /// The SigV4 headers for an ECR call with `headers` (which include `host`).
    fn sign(&self, headers: &[(&str, &str)], body: &[u8]) -> Result<Vec<(String, String)>, String> {
        let creds = aws_credential_types::Credentials::new(
            &self.dest.access_key_id,
            &self.dest.secret_access_key,
            self.dest.session_token.clone(),
            None,
            "stevedore-replication",
        );
        let identity: aws_smithy_runtime_api::client::identity::Identity = creds.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name("ecr")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("could not sign a request to the destination: {e}"))?
            .into();
        let uri = format!("{}/", self.origin());
        let signable = SignableRequest::new(
            "POST",
            uri.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| format!("could not sign a request to the destination: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("could not sign a request to the destination: {e}"))?
            .into_parts();
        Ok(instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }

    /// Calls ECR operation `op` on the destination.
    async fn ecr(
        &self,
        op: &str,
        input: serde_json::Value,
    ) -> Result<Result<serde_json::Value, ApiError>, String> {
        let body = serde_json::to_vec(&input).map_err(|e| e.to_string())?;
        let target = format!("{TARGET_PREFIX}.{op}");
        let headers = [
            ("host", self.dest.host.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
        ];
        let signature = self.sign(&headers, &body)?;
        let mut builder = Request::post(format!("{}/", self.origin()));
        for (k, v) in headers {
            builder = builder.header(k, v);
        }
        for (k, v) in &signature {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let req = builder.body(full(body)).map_err(|e| e.to_string())?;
        let resp = self.send(req, CALL_TIMEOUT).await?;
        let status = resp.status();
        let bytes = read_limited(resp.into_body(), MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| self.unreachable(e))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
            format!(
                "The destination server answered {op} with {status} and a body that is not JSON."
            )
        })?;
        if status.is_success() {
            return Ok(Ok(value));
        }
        let code = value
            .get("__type")
            .and_then(|t| t.as_str())
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
            .unwrap_or_else(|| status.to_string());
        let message = value
            .get("message")
            .or_else(|| value.get("Message"))
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_owned();
        Ok(Err(ApiError { code, message }))
    }

    fn refused(op: &str, e: &ApiError) -> String {
        format!(
            "The destination server refused {op}: {}: {}",
            e.code, e.message
        )
    }

    /// Fetches a registry token (GetAuthorizationToken) for the `/v2/` calls.
    pub(crate) async fn login(&mut self) -> Result<(), String> {
        let op = "GetAuthorizationToken";
        let reply = self
            .ecr(op, serde_json::json!({}))
            .await?
            .map_err(|e| Self::refused(op, &e))?;
        let token = reply
            .pointer("/authorizationData/0/authorizationToken")
            .and_then(|t| t.as_str())
            .ok_or_else(|| format!("The destination server's {op} answer holds no token."))?;
        self.basic = Some(
            HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| {
                format!("The destination server's {op} token is not a header value.")
            })?,
        );
        Ok(())
    }

    /// Creates repository `name` on the destination when it does not exist there (as
    /// replication does on AWS).
    pub(crate) async fn ensure_repository(&self, name: &str) -> Result<(), String> {
        let op = "DescribeRepositories";
        match self
            .ecr(op, serde_json::json!({ "repositoryNames": [name] }))
            .await?
        {
            Ok(_) => return Ok(()),
            Err(e) if e.code == "RepositoryNotFoundException" => {}
            Err(e) => return Err(Self::refused(op, &e)),
        }
        let op = "CreateRepository";
        match self
            .ecr(op, serde_json::json!({ "repositoryName": name }))
            .await?
        {
            Ok(_) => {
                tracing::info!(repository = name, destination = %self.origin(), "Replication created a repository on the destination server.");
                Ok(())
            }
            Err(e) if e.code == "RepositoryAlreadyExistsException" => Ok(()),
            Err(e) => Err(Self::refused(op, &e)),
        }
    }

    fn v2(&self, method: Method, url: &str) -> http::request::Builder {
        let mut builder = Request::builder().method(method).uri(url);
        if let Some(auth) = &self.basic {
            builder = builder.header(header::AUTHORIZATION, auth.clone());
        }
        builder
    }

    fn v2_failed(&self, what: &str, status: StatusCode) -> String {
        format!("The destination server answered {status} to {what}.")
    }

    /// Whether repository `name` on the destination already holds blob `digest`.
    pub(crate) async fn has_blob(&self, name: &str, digest: &oci::Digest) -> Result<bool, String> {
        let url = format!("{}/v2/{name}/blobs/{digest}", self.origin());
        let req = self
            .v2(Method::HEAD, &url)
            .body(full(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let resp = self.send(req, CALL_TIMEOUT).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(self.v2_failed(&format!("HEAD of blob {digest}"), s)),
        }
    }

    /// Uploads blob `digest` (streamed from `read`) into repository `name`, in one
    /// monolithic `POST …/blobs/uploads/?digest=` (the distribution spec's single-request
    /// upload: one round trip, where a session and its closing `PUT` take two).
    pub(crate) async fn put_blob(
        &self,
        name: &str,
        digest: &oci::Digest,
        read: blobstore::BlobStream,
    ) -> Result<(), String> {
        let url = format!("{}/v2/{name}/blobs/uploads/?digest={digest}", self.origin());
        let stream = read.chunks.map_ok(hyper::body::Frame::data);
        let body: Body = BodyExt::boxed_unsync(StreamBody::new(stream));
        let req = self
            .v2(Method::POST, &url)
            .header(header::CONTENT_LENGTH, read.len)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(body)
            .map_err(|e| e.to_string())?;
        // The whole body must go in this time: generous for a slow link (1 MiB/s).
        let within = CALL_TIMEOUT + Duration::from_secs(read.len / (1024 * 1024));
        let resp = self.send(req, within).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.v2_failed(&format!("the upload of blob {digest}"), resp.status()));
        }
        Ok(())
    }

    /// Puts a manifest under `reference` (a digest or a tag) in repository `name`.
    pub(crate) async fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<(), String> {
        let url = format!("{}/v2/{name}/manifests/{reference}", self.origin());
        let req = self
            .v2(Method::PUT, &url)
            .header(header::CONTENT_TYPE, media_type)
            .header(super::REPLICA_HEADER, self.source.clone())
            .body(full(bytes))
            .map_err(|e| e.to_string())?;
        let resp = self.send(req, CALL_TIMEOUT).await?;
        if resp.status() == StatusCode::CREATED {
            return Ok(());
        }
        let status = resp.status();
        // Distribution errors say why (a tag that is immutable there, say).
        let detail = read_limited(resp.into_body(), 64 * 1024)
            .await
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| {
                v.pointer("/errors/0/message")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
            });
        Err(match detail {
            Some(d) => {
                format!("The destination server answered {status} to manifest {reference}: {d}")
            }
            None => self.v2_failed(&format!("manifest {reference}"), status),
        })
    }
}

async fn read_limited(body: hyper::body::Incoming, limit: usize) -> Result<Bytes, String> {
    http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| format!("reading the answer failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_files_name_an_endpoint_and_keys() {
        let d = compute_destination(
            br#"{"endpoint":"https://b.example:4747/","accessKeyId":"AK","secretAccessKey":"S"}"#,
        )
        .expect("ok");
        assert_eq!((d.scheme, d.host.as_str()), ("https", "b.example:4747"));
        assert!(d.session_token.is_none());
        let local = compute_destination(
            br#"{"endpoint":"http://127.0.0.1:5000","accessKeyId":"AK","secretAccessKey":"S","sessionToken":"T"}"#,
        )
        .expect("ok");
        assert_eq!(
            (local.scheme, local.session_token.as_deref()),
            ("http", Some("T"))
        );
    }

    #[test]
    fn plain_http_leaves_the_machine_never_and_bad_files_say_why() {
        let remote_http = compute_destination(
            br#"{"endpoint":"http://b.example:4747","accessKeyId":"AK","secretAccessKey":"S"}"#,
        );
        assert!(remote_http.expect_err("refused").contains("plain HTTP"));
        for bad in [
            &br#"{"endpoint":"ftp://x","accessKeyId":"AK","secretAccessKey":"S"}"#[..],
            br#"{"endpoint":"https://u@x","accessKeyId":"AK","secretAccessKey":"S"}"#,
            br#"{"endpoint":"https://x/path","accessKeyId":"AK","secretAccessKey":"S"}"#,
            br#"{"endpoint":"https://x","accessKeyId":"","secretAccessKey":"S"}"#,
            br#"{"endpoint":"https://x","accessKeyId":"AK"}"#,
            br#"{"endpoint":"https://x","accessKeyId":"AK","secretAccessKey":"S","extra":1}"#,
            b"not json",
        ] {
            assert!(
                compute_destination(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[tokio::test]
    async fn only_owner_readable_files_are_used_and_absent_ones_mean_local() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("ok");
        assert!(load(dir.path(), "444455556666")
            .await
            .expect("ok")
            .is_none());
        assert!(load(dir.path(), "../../etc/x").await.expect("ok").is_none());
        let path = dir.path().join("444455556666.json");
        std::fs::write(
            &path,
            br#"{"endpoint":"http://127.0.0.1:1","accessKeyId":"AK","secretAccessKey":"S"}"#,
        )
        .expect("ok");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("ok");
        let open = load(dir.path(), "444455556666").await.expect_err("refused");
        assert!(open.contains("chmod 600"), "{open}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("ok");
        let d = load(dir.path(), "444455556666")
            .await
            .expect("ok")
            .expect("ok");
        assert_eq!(d.host, "127.0.0.1:1");
    }
}
