//! Applying a compiled script with the `nft` tool (the effect half of this crate): one
//! `nft -f -` run per change, the script on its standard input, so the kernel takes the
//! whole batch in one transaction or none of it.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// The `nft` program: from `$PATH`, as packaged (`/usr/sbin/nft` on Debian).
const NFT: &str = "nft";

/// Why the packet filter could not be used or changed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The `nft` program could not be started (not installed, not on `$PATH`).
    #[error("the nft program could not be run: {0}")]
    Spawn(std::io::Error),
    /// `nft` ran and refused (no permission, no nf_tables in the kernel, a bad batch).
    #[error("nft failed ({status}): {stderr}")]
    Refused {
        /// Its exit status.
        status: String,
        /// What it printed on standard error.
        stderr: String,
    },
}

/// Runs `nft -f -` with `script`. Blocking: call it off the async runtime's threads.
pub fn apply(script: &str) -> Result<(), ApplyError> {
    let mut child = Command::new(NFT)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(ApplyError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(ApplyError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(ApplyError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ApplyError::Refused {
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Whether this host can run the filter: `nft` exists and may list the ruleset's tables
/// (root or CAP_NET_ADMIN, a kernel with nf_tables). Blocking. Reads only.
pub fn probe() -> Result<(), ApplyError> {
    let out = Command::new(NFT)
        .args(["list", "tables"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(ApplyError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ApplyError::Refused {
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}
