//! Applying a compiled script (the effect half of this crate): one transaction per
//! change, so the kernel takes the whole batch or none of it: change batches over
//! netlink where it can carry them, anything else through one `nft -f -` run, the
//! script on its standard input.

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

/// Applies `script` in one transaction. Blocking: call it off the async runtime's
/// threads. A change batch netlink can carry (elements, regular chains, group rules: a
/// task came or went, a rule changed) is sent over netlink ([`crate::netlink`]);
/// anything else (a whole table, or a batch netlink could not send) is run by
/// `nft -f -`.
pub fn apply(script: &str) -> Result<(), ApplyError> {
    if let Some(statements) = crate::netlink::parse_batch(script) {
        if statements.is_empty() {
            return Ok(());
        }
        match crate::netlink::apply_batch(&statements) {
            Ok(()) => return Ok(()),
            // nft says the same or better (its message names the statement), and a
            // kernel that takes nft's batch but not ours still gets its change.
            Err(error) => tracing::debug!(%error, "Change batch over netlink failed; running nft."),
        }
    }
    run_nft(script)
}

/// Runs `nft -f -` with `script`.
fn run_nft(script: &str) -> Result<(), ApplyError> {
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
