//! The agent's durable state: one small JSON document in the state directory, rewritten
//! atomically (temp file, fsync, rename) on every change. It holds the container instance
//! ARN (so a restarted agent stays the same instance) and, per task, the payload, the
//! Docker names chosen for its containers (recorded before create) and what was reported.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

/// The state file, shared by the task actors. Each change is written before it returns;
/// the lock is never held across an await.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    doc: Mutex<StateDoc>,
}

const SCHEMA_VERSION: u32 = 1;

impl StateFile {
    /// Opens (creating the directory if needed) `dir/state.json`.
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
        Ok(Self {
            path,
            doc: Mutex::new(doc),
        })
    }

    /// A copy of the document.
    pub fn snapshot(&self) -> StateDoc {
        self.doc.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies `f` and writes the result durably.
    pub fn update<T>(&self, f: impl FnOnce(&mut StateDoc) -> T) -> Result<T, StateError> {
        let mut doc = self.doc.lock().unwrap_or_else(|p| p.into_inner());
        let out = f(&mut doc);
        doc.version = SCHEMA_VERSION;
        let bytes = serde_json::to_vec_pretty(&*doc).map_err(|error| StateError::Corrupt {
            path: self.path.clone(),
            error,
        })?;
        write_atomically(&self.path, &bytes).map_err(|error| StateError::Io {
            path: self.path.clone(),
            error,
        })?;
        Ok(out)
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
