//! The agent's durable state: one small JSON document in the state directory, rewritten
//! atomically (temp file 0600, fsync, rename, directory fsync). It holds the container
//! instance ARN (so a restarted agent stays the same instance) and, per task, the payload,
//! the Docker names chosen for its containers (recorded before create) and what was
//! reported.
//!
//! The file is written by one dedicated thread, never on the async runtime: a slow disk
//! delays the file, not the agent's event loop. Changes apply to the in-memory document
//! at once; the writer then writes the newest document, so a burst of changes costs one
//! write. [`StateFile::update`] returns without waiting for the disk;
//! [`StateFile::update_durable`] waits (asynchronously) until a write that includes its
//! change is on disk, for changes that must survive a crash before the agent acts on them
//! (a Docker name before the container is created, the instance ARN after registering).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use model::acs;
use serde::{Deserialize, Serialize};

/// The whole document.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateDoc {
    /// Schema version of this document.
    #[serde(default)]
    pub version: u32,
    /// The registered container instance.
    #[serde(default)]
    pub container_instance_arn: Option<String>,
    /// Tasks by ARN.
    #[serde(default)]
    pub tasks: BTreeMap<String, TaskRecord>,
}

/// One task as saved.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    /// The latest payload for it.
    pub task: acs::Task,
    /// Container name → Docker name (chosen before create).
    #[serde(default)]
    pub docker_names: BTreeMap<String, String>,
    /// The last status the server accepted (`RUNNING` or `STOPPED`).
    #[serde(default)]
    pub sent: Option<String>,
    /// Epoch seconds when the task stopped, for the cleanup timer.
    #[serde(default)]
    pub stopped_at: Option<u64>,
    /// Container name → its task metadata endpoint token (chosen before create).
    #[serde(default)]
    pub metadata_tokens: BTreeMap<String, String>,
    /// Container name → timestamp (epoch ns) of the last log line shipped (`awslogs`).
    #[serde(default)]
    pub log_cursors: BTreeMap<String, u64>,
}

/// A state-file failure.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing the file failed.
    #[error("state file {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The file is not a state document.
    #[error("state file {path} is corrupt: {error}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: serde_json::Error,
    },
}

/// The state file, shared by the task actors. The lock is never held across an await or
/// a disk write.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    shared: Arc<Shared>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// What the callers and the writer thread share.
#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the writer: a change or closing.
    wake: Condvar,
    /// The newest write's outcome.
    written: tokio::sync::watch::Sender<Written>,
}

/// The document and how far the writer has taken it.
#[derive(Debug)]
struct Pending {
    doc: StateDoc,
    /// Bumped by every change.
    generation: u64,
    /// The generation of the document the writer last took.
    taken: u64,
    /// No more changes: the writer writes what is pending and stops.
    closing: bool,
    /// Writes done (for tests of coalescing).
    writes: u64,
}

/// The outcome of the newest write.
#[derive(Clone, Debug, Default)]
struct Written {
    /// The generation it wrote.
    generation: u64,
    /// Why it failed, if it did.
    error: Option<String>,
}

const SCHEMA_VERSION: u32 = 1;

impl StateFile {
    /// Opens (creating the directory if needed) `dir/state.json` and starts its writer.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        let io = |error| StateError::Io {
            path: dir.to_owned(),
            error,
        };
        crate::modes::private_dir(dir).map_err(io)?;
        let path = dir.join("state.json");
        let doc = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| StateError::Corrupt {
                path: path.clone(),
                error,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateDoc {
                version: SCHEMA_VERSION,
                ..StateDoc::default()
            },
            Err(error) => return Err(StateError::Io { path, error }),
        };
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                doc,
                generation: 0,
                taken: 0,
                closing: false,
                writes: 0,
            }),
            wake: Condvar::new(),
            written: tokio::sync::watch::Sender::new(Written::default()),
        });
        let writer = {
            let (shared, path) = (Arc::clone(&shared), path.clone());
            std::thread::Builder::new()
                .name("agent-state".into())
                .spawn(move || write_loop(&shared, &path))
                .map_err(io)?
        };
        Ok(Self {
            path,
            shared,
            writer: Some(writer),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A copy of the document (with every change made so far, written or not).
    pub fn snapshot(&self) -> StateDoc {
        self.lock().doc.clone()
    }

    /// Applies `f` now and has the writer write it soon; does not wait for the disk.
    pub fn update<T>(&self, f: impl FnOnce(&mut StateDoc) -> T) -> T {
        self.apply(f).0
    }

    /// Applies `f` and waits until a write that includes it is on disk.
    pub async fn update_durable<T>(
        &self,
        f: impl FnOnce(&mut StateDoc) -> T,
    ) -> Result<T, StateError> {
        let (out, generation) = self.apply(f);
        self.wait_written(generation).await?;
        Ok(out)
    }

    /// Waits until everything changed so far is on disk.
    pub async fn flush(&self) -> Result<(), StateError> {
        let generation = self.lock().generation;
        self.wait_written(generation).await
    }

    fn apply<T>(&self, f: impl FnOnce(&mut StateDoc) -> T) -> (T, u64) {
        let mut p = self.lock();
        let out = f(&mut p.doc);
        p.doc.version = SCHEMA_VERSION;
        p.generation += 1;
        let generation = p.generation;
        drop(p);
        self.shared.wake.notify_one();
        (out, generation)
    }

    async fn wait_written(&self, generation: u64) -> Result<(), StateError> {
        let mut rx = self.shared.written.subscribe();
        let failed = |error: String| StateError::Io {
            path: self.path.clone(),
            error: std::io::Error::other(error),
        };
        let w = rx
            .wait_for(|w| w.generation >= generation)
            .await
            .map_err(|_| failed("the state writer has stopped".into()))?
            .clone();
        match w.error {
            Some(e) => Err(failed(e)),
            None => Ok(()),
        }
    }

    /// Writes done so far (coalescing means fewer than changes).
    #[cfg(test)]
    fn writes(&self) -> u64 {
        self.lock().writes
    }
}

impl Drop for StateFile {
    /// Writes what is pending, then stops the writer.
    fn drop(&mut self) {
        self.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(w) = self.writer.take() {
            if w.join().is_err() {
                tracing::error!(path = %self.path.display(), "The agent state writer panicked.");
            }
        }
    }
}

/// The writer thread: waits for a change, serializes the newest document under the lock,
/// writes it outside the lock, publishes the outcome; until closed with nothing pending.
fn write_loop(shared: &Shared, path: &Path) {
    loop {
        let (generation, bytes) = {
            let mut p = shared
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while p.generation == p.taken && !p.closing {
                p = shared
                    .wake
                    .wait(p)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if p.generation == p.taken {
                return;
            }
            p.taken = p.generation;
            p.writes += 1;
            (p.generation, serde_json::to_vec_pretty(&p.doc))
        };
        let outcome = match bytes {
            Ok(bytes) => write_atomically(path, &bytes).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = &outcome {
            tracing::error!(path = %path.display(), %error, "Could not write the agent state.");
        }
        shared.written.send_replace(Written {
            generation,
            error: outcome.err(),
        });
    }
}

/// Temporary file with mode 0600, fsync, rename, then the directory's fsync so the
/// rename itself survives a crash.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::modes::write_private(path, bytes)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn on_disk(dir: &Path) -> StateDoc {
        let bytes = std::fs::read(dir.join("state.json")).expect("written");
        serde_json::from_slice(&bytes).expect("a state document")
    }

    #[tokio::test]
    async fn a_durable_update_is_on_disk_owner_only_when_it_returns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateFile::open(dir.path()).expect("opens");
        state
            .update_durable(|d| d.container_instance_arn = Some("arn:i".into()))
            .await
            .expect("written");
        assert_eq!(
            on_disk(dir.path()).container_instance_arn.as_deref(),
            Some("arn:i")
        );
        let mode = std::fs::metadata(dir.path().join("state.json"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[tokio::test]
    async fn a_burst_of_updates_is_coalesced_into_few_writes_and_the_last_one_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateFile::open(dir.path()).expect("opens");
        for n in 0..1000 {
            state.update(|d| d.container_instance_arn = Some(format!("arn:{n}")));
        }
        state.flush().await.expect("flushed");
        assert_eq!(
            on_disk(dir.path()).container_instance_arn.as_deref(),
            Some("arn:999")
        );
        assert!(
            state.writes() < 1000,
            "{} writes for 1000 updates",
            state.writes()
        );
    }

    #[tokio::test]
    async fn pending_changes_are_written_when_the_file_is_dropped_and_read_back_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let state = StateFile::open(dir.path()).expect("opens");
            state.update(|d| {
                d.tasks.insert("arn:t".into(), TaskRecord::default());
            });
        }
        let again = StateFile::open(dir.path()).expect("reopens");
        assert!(again.snapshot().tasks.contains_key("arn:t"));
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_to_the_durable_caller() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateFile::open(dir.path()).expect("opens");
        // A directory where the temporary file goes makes every write fail.
        std::fs::create_dir(dir.path().join("state.tmp-write")).expect("blocker");
        let err = state
            .update_durable(|d| d.container_instance_arn = Some("x".into()))
            .await
            .expect_err("the write fails");
        assert!(matches!(err, StateError::Io { .. }), "{err}");
    }
}
