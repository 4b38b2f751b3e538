//! Online garbage collection. It never stops the world and never removes a blob that a
//! manifest references or that a push still needs:
//!
//! 1. read every blob key *with its revision*, then 2. read every manifest (mark). A
//!    manifest put after step 1 rewrote the key of each blob it references, so
//! 3. deleting a candidate with a compare-and-swap on the revision from step 1 fails for
//!    it. Blobs touched within the grace period (a push uploads layers first and puts
//!    its manifest last) are kept.
//! 4. The file goes only after its key, under the digest's lock, which commits hold too.
//! 5. Files with no key (a crash between commit and record) go as well once older than
//!    the grace period (another replica may be between the two), and uploads idle for
//!    longer than the grace period (at least 15 minutes).

use crate::error::RegistryError;
use crate::objects::{
    blob_key, now, upload_key, BlobRecord, ManifestRecord, UploadRecord, ALL_BLOBS, ALL_LINKS,
    ALL_MANIFESTS, ALL_UPLOADS,
};
use crate::Registry;
use oci::Digest;
use std::collections::{BTreeMap, BTreeSet};
use store::Txn;

/// What a collection removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs deleted.
    pub blobs_deleted: usize,
    /// Bytes those blobs held.
    pub bytes_freed: u64,
    /// Idle uploads removed.
    pub uploads_deleted: usize,
}

/// An upload untouched for this long is abandoned, whatever the blob grace period: a
/// client between two chunks must never lose its staged data to a short grace.
const MIN_UPLOAD_IDLE_SECS: f64 = 15.0 * 60.0;

pub(crate) async fn collect(reg: &Registry) -> Result<GcReport, RegistryError> {
    let cutoff = now() - reg.config().gc_grace.as_secs_f64();
    let upload_cutoff = now()
        - reg
            .config()
            .gc_grace
            .as_secs_f64()
            .max(MIN_UPLOAD_IDLE_SECS);
    let mut report = GcReport::default();
    let blobs = reg.objects().list::<BlobRecord>(ALL_BLOBS).await?;
    let mut marked: BTreeSet<Digest> = BTreeSet::new();
    for (_, m, _) in reg.objects().list::<ManifestRecord>(ALL_MANIFESTS).await? {
        marked.extend(m.blobs);
    }
    let mut links: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for (k, _) in reg.objects().keys(ALL_LINKS).await? {
        if let Some(d) = k.rsplit_once('#').and_then(|(_, d)| Digest::parse(d).ok()) {
            links.entry(d).or_default().push(k);
        }
    }
    let mut known = BTreeSet::new();
    for (key, rec, rev) in blobs {
        let Some(d) = key
            .strip_prefix(ALL_BLOBS)
            .and_then(|d| Digest::parse(d).ok())
        else {
            continue;
        };
        known.insert(d.clone());
        if marked.contains(&d) || rec.touched_at > cutoff {
            continue;
        }
        let _guard = reg.blob_lock(&d).lock().await;
        let mut txn = Txn::new().when(blob_key(&d), rev).delete(blob_key(&d));
        for l in links.get(&d).into_iter().flatten() {
            txn = txn.delete(l.clone());
        }
        if reg.objects().commit(txn).await? {
            reg.blobs().delete(&d).await?;
            report.blobs_deleted += 1;
            report.bytes_freed += rec.size;
            tracing::debug!(digest = %d, "Unreferenced blob collected.");
        }
    }
    let grace_start = std::time::SystemTime::now()
        .checked_sub(reg.config().gc_grace)
        .unwrap_or(std::time::UNIX_EPOCH);
    for d in reg.blobs().list().await? {
        if known.contains(&d) {
            continue;
        }
        // Another replica moves a pushed blob into place and records it just after:
        // the digest lock below is this process's only, so a file without a record is
        // left alone until it is older than the grace period.
        if reg
            .blobs()
            .modified(&d)
            .await?
            .is_none_or(|t| t > grace_start)
        {
            continue;
        }
        let _guard = reg.blob_lock(&d).lock().await;
        // "Still no key" is checked in a transaction, not a read: it carries the
        // leader's term (store::fence), so a deposed leader's sweep deletes nothing.
        let absent = Txn::new().when(blob_key(&d), 0).delete(blob_key(&d));
        if reg.objects().commit(absent).await? {
            reg.blobs().delete(&d).await?;
            report.blobs_deleted += 1;
        }
    }
    let sessions: BTreeMap<String, UploadRecord> = reg
        .objects()
        .list::<UploadRecord>(ALL_UPLOADS)
        .await?
        .into_iter()
        .map(|(k, v, _)| (k[ALL_UPLOADS.len()..].to_owned(), v))
        .collect();
    let mut staged = BTreeSet::new();
    for (id, modified) in reg.blobs().uploads().await? {
        staged.insert(id.clone());
        let age_ok = modified
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64() < upload_cutoff)
            .unwrap_or(true);
        if age_ok {
            // The record first: its commit is fenced by the leader's term, so a deposed
            // leader's sweep fails there and leaves the staged file alone.
            reg.objects()
                .commit(Txn::new().delete(upload_key(&id)))
                .await?;
            reg.blobs().remove_upload(&id).await?;
            report.uploads_deleted += 1;
        }
    }
    for (id, rec) in sessions {
        if !staged.contains(&id) && rec.created_at < upload_cutoff {
            reg.objects()
                .commit(Txn::new().delete(upload_key(&id)))
                .await?;
        }
    }
    Ok(report)
}
