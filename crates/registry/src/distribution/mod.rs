//! The OCI distribution API under `/v2/`: authentication, route parsing (repository
//! names contain `/`, so routes are parsed from the right), and one handler per
//! endpoint. Blob bodies stream both ways; nothing here buffers a blob.

use crate::access::Action;
use crate::auth::Grant;
use crate::error::RegistryError;
use crate::images::PutMode;
use crate::objects::{
    encode, now, referrer_prefix, upload_key, ManifestRecord, RepoRecord, UploadRecord, REPO_PREFIX,
};
use crate::{now_secs, Registry};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use futures_util::TryStreamExt;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use oci::reference::{validate_name, Reference};
use oci::{media, range, Digest};
use std::collections::HashMap;
use store::Txn;

mod uploads;

pub(crate) use uploads::{begin_session, session};
use uploads::{cancel_upload, patch_upload, put_upload, start_upload, upload_status};

/// Bytes per chunk of a blob sent out: each is one file read on tokio's blocking pool,
/// so larger chunks mean fewer hops (1 MiB: 256 per 256 MiB layer).
const READ_CHUNK: usize = 1024 * 1024;

/// What a `/v2/` path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/blobs/<digest>`
    Blob(String, String),
    /// `/v2/<name>/blobs/uploads/`
    UploadStart(String),
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload(String, String),
    /// `/v2/<name>/manifests/<reference>`
    Manifest(String, String),
    /// `/v2/<name>/tags/list`
    Tags(String),
    /// `/v2/<name>/referrers/<digest>`
    Referrers(String, String),
}

/// Parses the part of the path after `/v2/`.
pub(crate) fn parse_route(rest: &str) -> Option<Route> {
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(name.to_owned()));
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::UploadStart(name.to_owned()));
    }
    if let Some(i) = rest.rfind("/blobs/uploads/") {
        return Some(Route::Upload(
            rest[..i].to_owned(),
            rest[i + 15..].to_owned(),
        ));
    }
    let split = |marker: &str| {
        rest.rfind(marker)
            .map(|i| (rest[..i].to_owned(), rest[i + marker.len()..].to_owned()))
    };
    if let Some((n, r)) = split("/manifests/") {
        return Some(Route::Manifest(n, r));
    }
    if let Some((n, d)) = split("/referrers/") {
        return Some(Route::Referrers(n, d));
    }
    if let Some((n, d)) = split("/blobs/") {
        return Some(Route::Blob(n, d));
    }
    None
}

/// The `/v2/` router.
pub(crate) fn router(reg: Registry) -> Router {
    Router::new()
        .route("/v2", any(entry))
        .route("/v2/", any(entry))
        .route("/v2/{*rest}", any(entry))
        .with_state(reg)
}

fn with_api_version(mut r: Response) -> Response {
    r.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    r
}

fn error_response(reg: &Registry, err: &RegistryError) -> Response {
    let code = err.oci_code();
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST);
    if status.is_server_error() {
        tracing::error!(error = %err, "Registry request failed.");
    }
    let body = serde_json::json!({"errors": [{"code": code.code(), "message": err.to_string(), "detail": serde_json::Value::Null}]});
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let RegistryError::Unauthorized(_) = err {
        let c = reg.config();
        let realm = if c.bearer_challenge {
            format!(
                "Bearer realm=\"{}://{}/v2/token\",service=\"{}\"",
                c.scheme, c.host, c.host
            )
        } else {
            format!(
                "Basic realm=\"{}://{}/\",service=\"ecr.amazonaws.com\"",
                c.scheme, c.host
            )
        };
        if let Ok(v) = HeaderValue::from_str(&realm) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
    }
    if let RegistryError::RangeInvalid { size, .. } = err {
        if let Ok(v) = HeaderValue::from_str(&range_value(*size)) {
            h.insert(header::RANGE, v);
        }
    }
    with_api_version(r)
}

fn range_value(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

fn reply(status: StatusCode, headers: Vec<(&'static str, String)>, body: Body) -> Response {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(k, v);
        }
    }
    with_api_version(r)
}

fn query_map(q: Option<&str>) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let dec = |s: &str| percent_decode(&s.replace('+', " "));
        m.insert(dec(k), dec(v));
    }
    m
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).and_then(|v| u8::try_from(v).ok());
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_digest(s: &str) -> Result<Digest, RegistryError> {
    Digest::parse(s).map_err(|e| RegistryError::DigestInvalid(format!("invalid digest: {e}")))
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn entry(State(reg): State<Registry>, req: Request) -> Response {
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || header_str(req.headers(), header::CONTENT_LENGTH).is_some_and(|n| n != "0");
    match serve(&reg, req).await {
        Ok(r) => r,
        Err(e) => {
            let mut r = error_response(&reg, &e);
            // A refused request's body may be unread; the connection cannot carry another
            // request after it, so say so rather than let the client reuse it and fail.
            if has_body {
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            r
        }
    }
}

async fn serve(reg: &Registry, req: Request) -> Result<Response, RegistryError> {
    let auth = header_str(req.headers(), header::AUTHORIZATION);
    let grant = reg.token_key().await?.verify_header(auth, now_secs())?;
    let path = percent_decode(req.uri().path());
    let rest = path
        .strip_prefix("/v2")
        .unwrap_or("")
        .trim_start_matches('/');
    // Resolved on every request, so a permission removed from the principal (or the
    // principal itself) stops its live tokens at once.
    let caller = reg.caller_for(&grant)?;
    if rest == "token" {
        return issue_bearer(reg, &grant).await;
    }
    if rest.is_empty() {
        return Ok(reply(
            StatusCode::OK,
            vec![("content-type", "application/json".into())],
            Body::from("{}"),
        ));
    }
    let Some(route) = parse_route(rest) else {
        return Err(RegistryError::Unsupported(format!(
            "no registry endpoint at {path}"
        )));
    };
    let method = req.method().clone();
    let mut q = query_map(req.uri().query());
    if let Some(n) = route_name(&route) {
        validate_name(n).map_err(|e| RegistryError::NameInvalid(e.to_string()))?;
        if let (Route::Manifest(_, r), &Method::GET | &Method::HEAD) = (&route, &method) {
            // A pull-through cache repository is filled (or refreshed) from upstream
            // before the pull is served.
            let reference = parse_reference(r)?;
            crate::pull_through::before_pull(reg, &caller, n, &reference).await?;
        }
        let (rec, _) = reg.repo(n).await?;
        let repo_policy = reg.compiled_policy(n, rec.policy.as_deref());
        for action in route_actions(&route, &method, q.contains_key("digest")) {
            reg.authorize(&caller, n, repo_policy.as_deref(), *action)?;
        }
        if matches!((&route, &method), (Route::Manifest(..), &Method::PUT))
            && req
                .headers()
                .contains_key(crate::replication::REPLICA_HEADER)
        {
            // Marking a push as a replica exempts it from this registry's own
            // replication rules (AWS replicates one hop): only a principal allowed to
            // replicate into the repository may claim it.
            reg.authorize(&caller, n, repo_policy.as_deref(), Action::ReplicateImage)?;
        }
    }
    if matches!(route, Route::UploadStart(_)) && !may_mount(reg, &caller, &q).await {
        // A mount from a repository the caller may not pull is an ordinary upload, as
        // the distribution spec lets a registry decline any mount.
        q.remove("mount");
    }
    match (route, method) {
        (Route::Catalog, Method::GET) => catalog(reg, &caller, &q).await,
        (Route::Blob(n, d), m @ (Method::GET | Method::HEAD)) => {
            get_blob(reg, &n, &d, req.headers(), m == Method::HEAD).await
        }
        (Route::Blob(n, d), Method::DELETE) => delete_blob(reg, &n, &d).await,
        (Route::UploadStart(n), Method::POST) => start_upload(reg, &n, &q, req).await,
        (Route::Upload(n, id), Method::PATCH) => patch_upload(reg, &n, &id, req).await,
        (Route::Upload(n, id), Method::PUT) => put_upload(reg, &n, &id, &q, req).await,
        (Route::Upload(n, id), Method::GET) => upload_status(reg, &n, &id).await,
        (Route::Upload(n, id), Method::DELETE) => cancel_upload(reg, &n, &id).await,
        (Route::Manifest(n, r), m @ (Method::GET | Method::HEAD)) => {
            get_manifest(reg, &n, &r, req.headers(), m == Method::HEAD).await
        }
        (Route::Manifest(n, r), Method::PUT) => put_manifest(reg, &n, &r, req).await,
        (Route::Manifest(n, r), Method::DELETE) => delete_manifest(reg, &n, &r).await,
        (Route::Tags(n), Method::GET) => list_tags(reg, &n, &q).await,
        (Route::Referrers(n, d), Method::GET) => referrers(reg, &n, &d, &q).await,
        (_, m) => Err(RegistryError::Unsupported(format!(
            "method {m} is not supported on {path}"
        ))),
    }
}

/// The repository a route names (none for the catalog).
fn route_name(route: &Route) -> Option<&str> {
    match route {
        Route::Catalog => None,
        Route::Blob(n, _)
        | Route::UploadStart(n)
        | Route::Upload(n, _)
        | Route::Manifest(n, _)
        | Route::Tags(n)
        | Route::Referrers(n, _) => Some(n),
    }
}

/// The ECR actions a request needs on its repository, as ECR maps the distribution
/// API; a monolithic upload (`POST` with `digest`) is a whole push of one layer.
pub(crate) fn route_actions(route: &Route, method: &Method, monolithic: bool) -> &'static [Action] {
    use Action as A;
    match (route, method.as_str()) {
        (Route::Blob(..), "GET") => &[A::GetDownloadUrlForLayer],
        (Route::Blob(..), "HEAD") => &[A::BatchCheckLayerAvailability],
        (Route::Blob(..) | Route::Manifest(..), "DELETE") => &[A::BatchDeleteImage],
        (Route::UploadStart(_), "POST") if monolithic => &[
            A::InitiateLayerUpload,
            A::UploadLayerPart,
            A::CompleteLayerUpload,
        ],
        (Route::UploadStart(_), "POST") | (Route::Upload(..), "DELETE") => {
            &[A::InitiateLayerUpload]
        }
        (Route::Upload(..), "PATCH" | "GET") => &[A::UploadLayerPart],
        (Route::Upload(..), "PUT") => &[A::UploadLayerPart, A::CompleteLayerUpload],
        (Route::Manifest(..), "GET" | "HEAD") | (Route::Referrers(..), "GET") => {
            &[A::BatchGetImage]
        }
        (Route::Manifest(..), "PUT") => &[A::PutImage],
        (Route::Tags(_), "GET") => &[A::ListImages],
        _ => &[],
    }
}

/// Whether a cross-repository mount's source may be read by `caller` (true when the
/// request mounts nothing).
async fn may_mount(reg: &Registry, caller: &wire::Caller, q: &HashMap<String, String>) -> bool {
    let (Some(_), Some(from)) = (q.get("mount"), q.get("from")) else {
        return true;
    };
    let Ok((rec, _)) = reg.repo(from).await else {
        return false;
    };
    let p = reg.compiled_policy(from, rec.policy.as_deref());
    reg.authorize(caller, from, p.as_deref(), Action::GetDownloadUrlForLayer)
        .is_ok()
}

/// The token endpoint of the bearer flow: the caller authenticated (Basic `AWS:<token>`)
/// and gets a bearer token back.
/// The bearer token has the same principal and expiry: exchanging never extends.
async fn issue_bearer(reg: &Registry, grant: &Grant) -> Result<Response, RegistryError> {
    let now = now_secs();
    let (token, expires) = reg.token_key().await?.reissue(grant);
    let body =
        serde_json::json!({"token": token, "access_token": token, "expires_in": expires - now});
    Ok(reply(
        StatusCode::OK,
        vec![("content-type", "application/json".into())],
        Body::from(body.to_string()),
    ))
}

async fn get_blob(
    reg: &Registry,
    name: &str,
    d: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, RegistryError> {
    let digest = parse_digest(d)?;
    let Some(size) = reg.blob_in_repo(name, &digest).await? else {
        return Err(RegistryError::BlobUnknown(format!(
            "blob {digest} is unknown to repository {name}"
        )));
    };
    let range = match header_str(headers, header::RANGE) {
        Some(h) => match range::parse_range(h, size) {
            Ok(r) => Some(r),
            Err(oci::RangeError::Unsatisfiable) => {
                return Ok(reply(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    vec![("content-range", format!("bytes */{size}"))],
                    Body::empty(),
                ))
            }
            // A range we do not serve (several ranges): the whole blob, as RFC 9110 allows.
            Err(oci::RangeError::Malformed(_)) => None,
        },
        None => None,
    };
    let mut hdrs = vec![
        ("docker-content-digest", digest.to_string()),
        ("content-type", "application/octet-stream".to_owned()),
        ("accept-ranges", "bytes".to_owned()),
        ("etag", format!("\"{digest}\"")),
    ];
    let status = match range {
        Some(r) => {
            hdrs.push((
                "content-range",
                format!("bytes {}-{}/{size}", r.start, r.end),
            ));
            StatusCode::PARTIAL_CONTENT
        }
        None => StatusCode::OK,
    };
    if head {
        hdrs.push((
            "content-length",
            range.map_or(size, |r| r.len()).to_string(),
        ));
        return Ok(reply(status, hdrs, Body::empty()));
    }
    let read = reg.blobs().read_chunks(&digest, range, READ_CHUNK).await?;
    hdrs.push(("content-length", read.len.to_string()));
    let stream = read
        .chunks
        .inspect_ok(|chunk| telemetry::RegistryBytes::Sent(chunk.len()).emit());
    Ok(reply(status, hdrs, Body::from_stream(stream)))
}

async fn delete_blob(reg: &Registry, name: &str, d: &str) -> Result<Response, RegistryError> {
    let digest = parse_digest(d)?;
    let key = crate::objects::link_key(name, &digest);
    let Some((_, rev)) = reg.objects().get_raw(&key).await? else {
        return Err(RegistryError::BlobUnknown(format!(
            "blob {digest} is unknown to repository {name}"
        )));
    };
    // Only the link goes; garbage collection removes the bytes once nothing needs them.
    reg.objects()
        .commit(Txn::new().when(key.clone(), rev).delete(key))
        .await?;
    Ok(reply(
        StatusCode::ACCEPTED,
        vec![("content-length", "0".into())],
        Body::empty(),
    ))
}

fn parse_reference(r: &str) -> Result<Reference, RegistryError> {
    Reference::parse(r).map_err(|e| match e {
        oci::ReferenceError::Digest(d) => RegistryError::DigestInvalid(d.to_string()),
        other => RegistryError::TagInvalid(other.to_string()),
    })
}

async fn get_manifest(
    reg: &Registry,
    name: &str,
    r: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, RegistryError> {
    let reference = parse_reference(r)?;
    let rec = reg.resolve(name, &reference).await?;
    if let Reference::Tag(t) = &reference {
        let accept: Vec<&str> = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if !media::accepts(&accept, &rec.media_type) {
            return Err(RegistryError::ImageNotFound(format!(
                "the manifest of tag '{t}' is a {}, which the Accept header does not allow",
                rec.media_type
            )));
        }
    }
    let hdrs = vec![
        ("content-type", rec.media_type.clone()),
        ("docker-content-digest", rec.digest.to_string()),
        ("etag", format!("\"{}\"", rec.digest)),
        ("content-length", rec.size.to_string()),
    ];
    if head {
        return Ok(reply(StatusCode::OK, hdrs, Body::empty()));
    }
    let bytes = reg.manifest_bytes(name, &rec.digest).await?;
    telemetry::RegistryBytes::Sent(bytes.len()).emit();
    Ok(reply(StatusCode::OK, hdrs, Body::from(bytes)))
}

async fn put_manifest(
    reg: &Registry,
    name: &str,
    r: &str,
    req: Request,
) -> Result<Response, RegistryError> {
    let reference = parse_reference(r)?;
    let content_type = header_str(req.headers(), header::CONTENT_TYPE).map(str::to_owned);
    let replica_of = req
        .headers()
        .get(crate::replication::REPLICA_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let bytes = axum::body::to_bytes(req.into_body(), oci::manifest::MAX_MANIFEST_BYTES)
        .await
        .map_err(|_| {
            RegistryError::ManifestInvalid(format!(
                "the manifest is larger than {} bytes",
                oci::manifest::MAX_MANIFEST_BYTES
            ))
        })?;
    telemetry::RegistryBytes::Received(bytes.len()).emit();
    let rec = match replica_of {
        // Authorized for ecr:ReplicateImage in `serve`.
        Some(source) => {
            let rec = reg
                .put_manifest_quietly(name, &reference, bytes, content_type.as_deref())
                .await?;
            tracing::info!(repository = name, digest = %rec.digest, reference = %reference, source = %source, "Replicated manifest stored; not replicated again.");
            rec
        }
        None => {
            reg.put_manifest(
                name,
                &reference,
                bytes,
                content_type.as_deref(),
                PutMode::Distribution,
            )
            .await?
        }
    };
    let mut hdrs = vec![
        ("location", format!("/v2/{name}/manifests/{}", rec.digest)),
        ("docker-content-digest", rec.digest.to_string()),
        ("content-length", "0".into()),
    ];
    if let Some(s) = &rec.subject {
        hdrs.push(("oci-subject", s.to_string()));
    }
    Ok(reply(StatusCode::CREATED, hdrs, Body::empty()))
}

async fn delete_manifest(reg: &Registry, name: &str, r: &str) -> Result<Response, RegistryError> {
    match parse_reference(r)? {
        Reference::Tag(t) => {
            reg.delete_tag(name, &t).await?;
        }
        Reference::Digest(d) => {
            reg.delete_manifest(name, &d).await?;
        }
    }
    Ok(reply(
        StatusCode::ACCEPTED,
        vec![("content-length", "0".into())],
        Body::empty(),
    ))
}

/// Applies `n`/`last` to a sorted list; returns the page and whether more follow.
fn paginate(
    items: Vec<String>,
    q: &HashMap<String, String>,
) -> Result<(Vec<String>, Option<usize>), RegistryError> {
    let n = match q.get("n") {
        Some(v) => Some(
            v.parse::<usize>()
                .map_err(|_| RegistryError::InvalidParameter(format!("invalid n '{v}'")))?,
        ),
        None => None,
    };
    let start = match q.get("last") {
        Some(l) => items.partition_point(|t| t.as_str() <= l.as_str()),
        None => 0,
    };
    let rest = &items[start.min(items.len())..];
    match n {
        Some(n) if n < rest.len() => Ok((rest[..n].to_vec(), Some(n))),
        _ => Ok((rest.to_vec(), None)),
    }
}

fn link_next(path: &str, n: usize, last: &str) -> String {
    format!("<{path}?n={n}&last={last}>; rel=\"next\"")
}

async fn list_tags(
    reg: &Registry,
    name: &str,
    q: &HashMap<String, String>,
) -> Result<Response, RegistryError> {
    let tags: Vec<String> = reg.tags(name).await?.into_iter().map(|(t, _)| t).collect();
    let (page, more) = paginate(tags, q)?;
    let mut hdrs = vec![("content-type", "application/json".to_owned())];
    if let (Some(n), Some(last)) = (more, page.last()) {
        if n > 0 {
            hdrs.push(("link", link_next(&format!("/v2/{name}/tags/list"), n, last)));
        }
    }
    let body = serde_json::json!({"name": name, "tags": page});
    Ok(reply(StatusCode::OK, hdrs, Body::from(body.to_string())))
}

/// Lists the repositories `caller` may describe (`ecr:DescribeRepositories`), so the
/// catalog shows no name a principal could not learn through the ECR API.
async fn catalog(
    reg: &Registry,
    caller: &wire::Caller,
    q: &HashMap<String, String>,
) -> Result<Response, RegistryError> {
    let mut names = Vec::new();
    for (k, _) in reg.objects().keys(REPO_PREFIX).await? {
        let name = &k[REPO_PREFIX.len()..];
        let Some((rec, _)) = reg.objects().get::<RepoRecord>(&k).await? else {
            continue;
        };
        let p = reg.compiled_policy(name, rec.policy.as_deref());
        if reg
            .authorize(caller, name, p.as_deref(), Action::DescribeRepositories)
            .is_ok()
        {
            names.push(name.to_owned());
        }
    }
    let (page, more) = paginate(names, q)?;
    let mut hdrs = vec![("content-type", "application/json".to_owned())];
    if let (Some(n), Some(last)) = (more, page.last()) {
        if n > 0 {
            hdrs.push(("link", link_next("/v2/_catalog", n, last)));
        }
    }
    let body = serde_json::json!({"repositories": page});
    Ok(reply(StatusCode::OK, hdrs, Body::from(body.to_string())))
}

async fn referrers(
    reg: &Registry,
    name: &str,
    d: &str,
    q: &HashMap<String, String>,
) -> Result<Response, RegistryError> {
    let subject = parse_digest(d)?;
    let prefix = referrer_prefix(name, &subject);
    let filter = q.get("artifactType").filter(|s| !s.is_empty());
    let mut manifests = Vec::new();
    for (key, _) in reg.objects().keys(&prefix).await? {
        let Ok(digest) = Digest::parse(&key[prefix.len()..]) else {
            continue;
        };
        let Some((rec, _)) = reg
            .objects()
            .get::<ManifestRecord>(&crate::objects::manifest_key(name, &digest))
            .await?
        else {
            continue;
        };
        if filter.is_some_and(|f| rec.artifact_type.as_deref() != Some(f.as_str())) {
            continue;
        }
        let mut desc = serde_json::json!({"mediaType": rec.media_type, "digest": rec.digest.to_string(), "size": rec.size});
        if let Some(a) = &rec.artifact_type {
            desc["artifactType"] = a.clone().into();
        }
        if let Some(a) = &rec.annotations {
            desc["annotations"] = serde_json::to_value(a).unwrap_or_default();
        }
        manifests.push(desc);
    }
    let body = serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests});
    let mut hdrs = vec![("content-type", media::OCI_INDEX.to_owned())];
    if filter.is_some() {
        hdrs.push(("oci-filters-applied", "artifactType".to_owned()));
    }
    Ok(reply(StatusCode::OK, hdrs, Body::from(body.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_from_the_right_so_names_may_contain_slashes() {
        assert_eq!(
            parse_route("a/b/blobs/uploads/"),
            Some(Route::UploadStart("a/b".into()))
        );
        assert_eq!(
            parse_route("a/b/blobs/uploads/xyz"),
            Some(Route::Upload("a/b".into(), "xyz".into()))
        );
        assert_eq!(
            parse_route("a/manifests/v1"),
            Some(Route::Manifest("a".into(), "v1".into()))
        );
        assert_eq!(
            parse_route("a/blobs/sha256:00"),
            Some(Route::Blob("a".into(), "sha256:00".into()))
        );
        assert_eq!(parse_route("x/tags/list"), Some(Route::Tags("x".into())));
        assert_eq!(
            parse_route("x/referrers/sha256:1"),
            Some(Route::Referrers("x".into(), "sha256:1".into()))
        );
        assert_eq!(parse_route("_catalog"), Some(Route::Catalog));
        assert_eq!(parse_route("nothing"), None);
    }

    #[test]
    fn tag_pages_start_after_last_and_report_more() {
        let tags: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let q = |n: &str, last: &str| {
            let mut m = HashMap::new();
            if !n.is_empty() {
                m.insert("n".to_owned(), n.to_owned());
            }
            if !last.is_empty() {
                m.insert("last".to_owned(), last.to_owned());
            }
            m
        };
        assert_eq!(
            paginate(tags.clone(), &q("2", "")).ok(),
            Some((vec!["a".into(), "b".into()], Some(2)))
        );
        assert_eq!(
            paginate(tags.clone(), &q("2", "b")).ok(),
            Some((vec!["c".into(), "d".into()], None))
        );
        assert_eq!(
            paginate(tags.clone(), &q("0", "")).ok(),
            Some((vec![], Some(0)))
        );
        assert_eq!(
            paginate(tags, &q("", "c")).ok(),
            Some((vec!["d".into()], None))
        );
    }
}
