//! The registry's vulnerability database from both ends: `stevedore scan-db import PATH`
//! reads OSV records from a folder or zip (OSV's per-ecosystem `all.zip` files) and sends
//! them in batches, signed with the caller's AWS credentials, to the server's
//! `POST /stevedore/scan-db/import`, which stores them in the signed region's `scan.db`.
//! Importing is an administrator's act: only the account's root may do it.

use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use scan::db::{ImportReport, SourceFile};
use wire::AwsError;

use crate::http::{aws_error, client_error, App};

/// The import route.
pub const IMPORT_PATH: &str = "/stevedore/scan-db/import";
/// Largest import request: one batch, or one record up to the scanner's cap, in JSON.
pub const MAX_BODY: usize = 20 * 1024 * 1024;
/// Bytes of OSV JSON the CLI sends per request (a batch closes once past this).
const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// One import request's body.
#[derive(serde::Serialize, serde::Deserialize)]
struct ImportRequest {
    files: Vec<SourceFile>,
}

/// `stevedore scan-db …`.
#[derive(clap::Subcommand, Debug)]
pub enum ScanDbCommand {
    /// Import OSV records (a folder of JSON files or a zip of them) into the server's
    /// vulnerability database; a record whose id is stored already replaces it.
    Import(ImportArgs),
}

/// Options of `stevedore scan-db import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// A folder of OSV JSON files (searched recursively) or a zip of them.
    path: std::path::PathBuf,
    #[command(flatten)]
    to: crate::admin_client::Endpoint,
}

/// Runs a `scan-db` command.
pub async fn run(command: ScanDbCommand) -> anyhow::Result<()> {
    match command {
        ScanDbCommand::Import(args) => import_command(args).await,
    }
}

async fn import_command(args: ImportArgs) -> anyhow::Result<()> {
    let api = crate::admin_client::client(&args.to)?;
    let path = args.path.clone();
    let (files, mut skipped) = tokio::task::spawn_blocking(move || scan::db::read_source(&path))
        .await
        .context("reading the import source")??;
    let mut imported = 0u64;
    let mut last: Option<ImportReport> = None;
    for batch in batches(files) {
        let body = serde_json::to_vec(&ImportRequest { files: batch })?;
        let answer =
            crate::admin_client::post(&api, "ecr", IMPORT_PATH, "the import", body).await?;
        let report: ImportReport =
            serde_json::from_slice(&answer).context("reading the server's answer")?;
        imported += report.imported;
        skipped.extend(report.skipped.iter().cloned());
        last = Some(report);
    }
    for s in &skipped {
        eprintln!("skipped {}: {}", s.file, s.reason);
    }
    let summary = serde_json::json!({
        "imported": imported,
        "skipped": skipped.len(),
        "total": last.as_ref().map(|r| r.total),
        "updatedAt": last.as_ref().map(|r| r.updated_at),
    });
    println!("{summary}");
    Ok(())
}

/// Splits files into requests of about [`BATCH_BYTES`] each.
fn batches(files: Vec<SourceFile>) -> Vec<Vec<SourceFile>> {
    let mut out: Vec<Vec<SourceFile>> = Vec::new();
    let mut size = 0;
    for f in files {
        if out.is_empty() || size >= BATCH_BYTES {
            out.push(Vec::new());
            size = 0;
        }
        size += f.content.len() + f.name.len();
        if let Some(b) = out.last_mut() {
            b.push(f);
        }
    }
    out
}

/// `POST /stevedore/scan-db/import`.
pub async fn import(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (caller, region) =
        match crate::http::authenticate_request(&app, &method, &uri, &headers, &body, None).await {
            Ok(r) => r,
            Err(e) => return aws_error(&e),
        };
    if !caller.is_root() {
        return aws_error(&AwsError::client(
            "AccessDeniedException",
            "Only the account's root may import into the vulnerability database.",
        ));
    }
    let req: ImportRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return client_error(
                "InvalidParameterException",
                &format!("The body must be {{\"files\": [{{\"name\", \"content\"}}]}}: {e}"),
            )
        }
    };
    let Some(registry) = &region.registry else {
        return client_error("InvalidAction", "This server does not serve the registry.");
    };
    match registry.import_vulnerabilities(req.files).await {
        Ok(report) => {
            tracing::info!(
                region = %region.scope.region,
                imported = report.imported,
                skipped = report.skipped.len(),
                total = report.total,
                "Vulnerability records imported."
            );
            match serde_json::to_vec(&report) {
                Ok(b) => ([(http::header::CONTENT_TYPE, "application/json")], b).into_response(),
                Err(e) => aws_error(&AwsError::server("InternalFailure", e.to_string())),
            }
        }
        Err(e) => aws_error(&e.to_aws()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_close_past_the_size() {
        let file = |n: usize| SourceFile {
            name: n.to_string(),
            content: "x".repeat(BATCH_BYTES / 2),
        };
        let b = batches((0..5).map(file).collect());
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        assert!(batches(Vec::new()).is_empty());
    }
}
