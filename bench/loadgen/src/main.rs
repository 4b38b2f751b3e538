//! `loadgen`: a closed-loop load generator for ECS-compatible endpoints.
//!
//! Every request carries a fresh SigV4 signature (as a real SDK would send), connections
//! are kept alive, and `--concurrency` workers each keep one request in flight for
//! `--duration-secs`. The result is one JSON line on stdout:
//! `{"op","requests","errors","rps","p50_ms","p99_ms"}`. Non-2xx responses and transport
//! failures count as errors; latencies are measured for every completed request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

const TARGET_PREFIX: &str = "AmazonEC2ContainerServiceV20141113";

/// The operation to drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Op {
    /// `DescribeTaskDefinition` of one family registered in the prepare step.
    DescribeTaskDefinition,
    /// `RegisterTaskDefinition` with a realistic one-container definition.
    RegisterTaskDefinition,
    /// `RunTask` of `--family` in `--cluster`, `--count` tasks per call.
    RunTask,
    /// STS `AssumeRole` (query protocol) of `--role-arn`, a new session name per call.
    AssumeRole,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::DescribeTaskDefinition => "describe-task-definition",
            Op::RegisterTaskDefinition => "register-task-definition",
            Op::RunTask => "run-task",
            Op::AssumeRole => "assume-role",
        }
    }
}

/// Signed-request load generator for the ECS JSON API.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Base URL, e.g. http://127.0.0.1:4747 or https://127.0.0.1:4747
    #[arg(long)]
    endpoint: String,
    /// PEM CA file that an https endpoint's certificate must chain to (e.g. the server's
    /// generated ca.crt).
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    /// Access key id used to sign requests.
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key: String,
    /// Secret access key used to sign requests.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY")]
    secret_key: String,
    /// Signing region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Operation to run.
    #[arg(long, value_enum)]
    op: Op,
    /// Number of concurrent workers (each keeps one request in flight).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Register the family that `describe-task-definition` targets before the run
    /// (done automatically for describe when `--family` is not given).
    #[arg(long)]
    prepare: bool,
    /// Family to describe (or the family prefix to register under).
    #[arg(long)]
    family: Option<String>,
    /// For register: spread writes over this many families (0 = a new family per request).
    #[arg(long, default_value_t = 0)]
    families: u64,
    /// Stop after this many requests in total (0 = run for the full duration).
    #[arg(long, default_value_t = 0)]
    max_requests: u64,
    /// For run-task: the cluster.
    #[arg(long, default_value = "default")]
    cluster: String,
    /// For run-task: tasks per call (1-10).
    #[arg(long, default_value_t = 10)]
    count: u32,
    /// For assume-role: the role to assume (its trust policy must name the signer).
    #[arg(long)]
    role_arn: Option<String>,
}

struct Signer {
    identity: Identity,
    region: String,
    uri: String,
    host: String,
}

impl Signer {
    /// A signed request: ECS's JSON protocol for ECS operations, STS's query protocol
    /// (the action in the form body) for `AssumeRole`.
    fn request(&self, op: &str, body: Bytes) -> anyhow::Result<http::Request<Full<Bytes>>> {
        let builder = http::Request::builder()
            .method("POST")
            .uri(&self.uri)
            .header("host", &self.host);
        let (builder, signing_name) = if op == "AssumeRole" {
            let form = "application/x-www-form-urlencoded; charset=utf-8";
            (builder.header("content-type", form), "sts")
        } else {
            let builder = builder
                .header("content-type", "application/x-amz-json-1.1")
                .header("x-amz-target", format!("{TARGET_PREFIX}.{op}"));
            (builder, "ecs")
        };
        let mut req = builder.body(())?;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&self.region)
            .name(signing_name)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let headers: Vec<(&str, &str)> = req
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
            .collect();
        let signable = SignableRequest::new(
            "POST",
            &self.uri,
            headers.into_iter(),
            SignableBody::Bytes(&body),
        )?;
        let (instructions, _signature) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(&mut req);
        let (parts, ()) = req.into_parts();
        Ok(http::Request::from_parts(parts, Full::new(body)))
    }
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// TLS that trusts only the certificates in `ca_file` (no file: none, so https fails).
#[allow(deprecated)] // ring: see agent::tls::crypto_provider.
fn tls_config(ca_file: Option<&std::path::Path>) -> anyhow::Result<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.with_context(|| format!("parsing {}", path.display()))?)?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn container_definition_body(family: &str) -> Bytes {
    let body = json!({
        "family": family,
        "networkMode": "bridge",
        "containerDefinitions": [{
            "name": "web",
            "image": "public.ecr.aws/nginx/nginx:1.27",
            "cpu": 256,
            "memory": 512,
            "memoryReservation": 256,
            "essential": true,
            "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}],
            "environment": [
                {"name": "APP_ENV", "value": "bench"},
                {"name": "LOG_LEVEL", "value": "info"}
            ],
            "healthCheck": {
                "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                "interval": 30, "timeout": 5, "retries": 3
            },
            "logConfiguration": {
                "logDriver": "json-file",
                "options": {"max-size": "10m", "max-file": "3"}
            }
        }],
        "tags": [{"key": "bench", "value": "loadgen"}]
    });
    Bytes::from(body.to_string())
}

/// One request; returns Ok(status) or Err for transport errors. Reads the whole body so
/// the connection goes back to the pool.
async fn call(
    client: &HttpClient,
    signer: &Signer,
    op: &str,
    body: Bytes,
) -> anyhow::Result<(u16, Bytes)> {
    let req = signer.request(op, body)?;
    let resp = client.request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

struct Shared {
    args: Args,
    signer: Signer,
    client: HttpClient,
    run_id: String,
    issued: AtomicU64,
    describe_body: Bytes,
}

struct WorkerResult {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    /// Tasks a RunTask response listed as started.
    placed: u64,
}

async fn worker(shared: Arc<Shared>, id: usize, deadline: Instant) -> WorkerResult {
    let mut out = WorkerResult {
        latencies_us: Vec::with_capacity(1 << 16),
        errors: 0,
        first_error: None,
        placed: 0,
    };
    let mut i: u64 = 0;
    while Instant::now() < deadline {
        let n = shared.issued.fetch_add(1, Ordering::Relaxed);
        if shared.args.max_requests > 0 && n >= shared.args.max_requests {
            break;
        }
        i += 1;
        let (op, body) = match shared.args.op {
            Op::DescribeTaskDefinition => ("DescribeTaskDefinition", shared.describe_body.clone()),
            Op::RegisterTaskDefinition => {
                let prefix = shared.args.family.as_deref().unwrap_or("lg");
                let family = if shared.args.families == 0 {
                    format!("{prefix}-{}-{id}-{i}", shared.run_id)
                } else {
                    format!("{prefix}-{}-{}", shared.run_id, n % shared.args.families)
                };
                ("RegisterTaskDefinition", container_definition_body(&family))
            }
            Op::RunTask => {
                let family = shared.args.family.as_deref().unwrap_or("lg");
                let body = json!({"cluster": shared.args.cluster, "taskDefinition": family, "count": shared.args.count});
                ("RunTask", Bytes::from(body.to_string()))
            }
            Op::AssumeRole => {
                let role = shared.args.role_arn.as_deref().unwrap_or("");
                // An ARN's only characters a form value must escape.
                let role = role.replace(':', "%3A").replace('/', "%2F");
                let body = format!(
                    "Action=AssumeRole&Version=2011-06-15&RoleArn={role}&RoleSessionName=lg-{id}-{i}"
                );
                ("AssumeRole", Bytes::from(body))
            }
        };
        let start = Instant::now();
        let result = call(&shared.client, &shared.signer, op, body).await;
        let elapsed = start.elapsed();
        out.latencies_us
            .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
        match result {
            Ok((status, body)) if (200..300).contains(&status) => {
                if shared.args.op == Op::RunTask {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    out.placed += v["tasks"].as_array().map_or(0, |t| t.len() as u64);
                }
            }
            Ok((status, body)) => {
                out.errors += 1;
                if out.first_error.is_none() {
                    out.first_error = Some(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(300)])
                    ));
                }
            }
            Err(e) => {
                out.errors += 1;
                if out.first_error.is_none() {
                    out.first_error = Some(format!("transport: {e:#}"));
                }
            }
        }
    }
    out
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted_us.len()) - 1;
    f64::from(sorted_us[idx]) / 1000.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if args.op == Op::AssumeRole && args.role_arn.is_none() {
        bail!("--op assume-role needs --role-arn");
    }
    let uri: http::Uri = args.endpoint.parse().context("parsing --endpoint")?;
    let host = uri
        .authority()
        .context("--endpoint needs host:port")?
        .to_string();
    let base = format!("{}://{}/", uri.scheme_str().unwrap_or("http"), host);
    let identity: Identity =
        Credentials::new(&args.access_key, &args.secret_key, None, None, "loadgen").into();
    let signer = Signer {
        identity,
        region: args.region.clone(),
        uri: base,
        host,
    };
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(args.ca_file.as_deref())?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.concurrency)
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let run_id = format!("{:x}", nanos & 0xffff_ffff_ffff);

    let mut describe_body = Bytes::new();
    if args.op == Op::DescribeTaskDefinition {
        let family = match (&args.family, args.prepare) {
            (Some(f), false) => f.clone(),
            (f, _) => {
                let family = f.clone().unwrap_or_else(|| format!("lg-describe-{run_id}"));
                let (status, body) = call(
                    &client,
                    &signer,
                    "RegisterTaskDefinition",
                    container_definition_body(&family),
                )
                .await
                .context("prepare: RegisterTaskDefinition")?;
                if !(200..300).contains(&status) {
                    bail!(
                        "prepare: RegisterTaskDefinition returned HTTP {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                family
            }
        };
        describe_body = Bytes::from(json!({ "taskDefinition": family }).to_string());
    }

    let shared = Arc::new(Shared {
        args,
        signer,
        client,
        run_id,
        issued: AtomicU64::new(0),
        describe_body,
    });
    let started = Instant::now();
    let deadline = started + Duration::from_secs(shared.args.duration_secs);
    let handles: Vec<_> = (0..shared.args.concurrency)
        .map(|id| tokio::spawn(worker(Arc::clone(&shared), id, deadline)))
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut placed = 0;
    for h in handles {
        let r = h.await.context("worker panicked")?;
        latencies.extend(r.latencies_us);
        errors += r.errors;
        placed += r.placed;
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let requests = latencies.len() as u64;
    if let Some(e) = first_error {
        eprintln!("loadgen: first error: {e}");
    }
    let line = json!({
        "op": shared.args.op.name(),
        "requests": requests,
        "errors": errors,
        "rps": round2(requests as f64 / wall.max(1e-9)),
        "p50_ms": round2(percentile_ms(&latencies, 50.0)),
        "p99_ms": round2(percentile_ms(&latencies, 99.0)),
        "placed": placed,
        "wall_s": round2(wall),
    });
    println!("{line}");
    Ok(())
}
