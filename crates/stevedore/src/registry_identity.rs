//! The registry's view of IAM: resolves the principal a registry token was issued to
//! (a user or a role session) into the caller it acts as now, with its current
//! identity policies from IAM's directory, so a permission removed from a user stops
//! its live registry tokens at once.

//!
//! Tokens a registry issued to another account's principal (a repository shared by its
//! policy) resolve through that account's directory, found with IAM's peers.

use std::sync::Arc;

/// [`registry::IdentityResolver`] over IAM's directories.
pub struct RegistryIdentity {
    directory: Arc<iam::Directory>,
    /// The other accounts' directories, for tokens issued to their principals.
    peers: Option<iam::Peers>,
}

impl RegistryIdentity {
    /// Resolves principals through `directory`.
    pub fn new(directory: Arc<iam::Directory>) -> Self {
        Self {
            directory,
            peers: None,
        }
    }

    /// Also resolves the principals of the other accounts `peers` finds.
    #[must_use]
    pub fn with_peers(mut self, peers: iam::Peers) -> Self {
        self.peers = Some(peers);
        self
    }
}

impl registry::IdentityResolver for RegistryIdentity {
    fn resolve(&self, arn: &str, user_id: &str) -> Option<wire::Caller> {
        let account = arn.split(':').nth(4)?;
        let peer;
        let directory = if account == self.directory.account() {
            &self.directory
        } else {
            peer = self.peers.as_ref()?(account)?;
            &peer
        };
        if arn == format!("arn:aws:iam::{account}:root") {
            // Another account's root (its own root's tokens are `Root` subjects).
            return (user_id == account).then(|| wire::Caller::root(account));
        }
        let session_prefix = format!("arn:aws:sts::{account}:assumed-role/");
        if let Some(rest) = arn.strip_prefix(&session_prefix) {
            // `<role>/<session>` with unique id `<role id>:<session>`: a role deleted and
            // recreated under the same name has another id, and its old tokens stop.
            let (role, session) = rest.split_once('/')?;
            let (role_id, id_session) = user_id.split_once(':')?;
            let entry = directory.role(role)?;
            return (entry.record.id == role_id && id_session == session)
                .then(|| directory.session_caller(&entry.record, session, &[]));
        }
        let name = arn.rsplit('/').next()?;
        let user = directory.user(name)?;
        (user.arn == arn && user.id == user_id).then(|| directory.user_caller(&user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry::IdentityResolver;

    const ALICE: &str = "arn:aws:iam::000000000000:user/team/alice";

    fn directory_with_alice(id: &str, inline: &[(&str, &str)]) -> Arc<iam::Directory> {
        let d = Arc::new(iam::Directory::new(
            "000000000000",
            iam::token::TokenKey::new([1; 32]),
            Arc::new(|| 0),
        ));
        put_alice(&d, id, inline);
        d
    }

    fn put_alice(d: &iam::Directory, id: &str, inline: &[(&str, &str)]) {
        let user = iam::records::UserRecord {
            name: "alice".into(),
            id: id.into(),
            path: "/team/".into(),
            arn: ALICE.into(),
            created: 0,
            inline: inline
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            attached: Vec::new(),
            tags: Vec::new(),
            keys: Vec::new(),
        };
        let json = serde_json::to_vec(&user).expect("test value");
        d.apply("iam/user/alice", Some(&json));
    }

    #[test]
    fn a_user_resolves_with_its_current_policies_and_only_while_it_is_the_same_user() {
        let d = directory_with_alice("AIDAONE", &[]);
        let resolver = RegistryIdentity::new(d.clone());
        let caller = resolver.resolve(ALICE, "AIDAONE").expect("alice");
        assert_eq!(caller.principal_arn(), ALICE);
        assert!(caller.policies().is_empty());
        let allow = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"*"}}"#;
        put_alice(&d, "AIDAONE", &[("pull", allow)]);
        assert_eq!(
            resolver
                .resolve(ALICE, "AIDAONE")
                .expect("test value")
                .policies()
                .len(),
            1
        );
        // Recreated under the same name: the old unique id no longer resolves.
        put_alice(&d, "AIDATWO", &[]);
        assert!(resolver.resolve(ALICE, "AIDAONE").is_none());
        d.apply("iam/user/alice", None);
        assert!(resolver.resolve(ALICE, "AIDATWO").is_none());
    }
}
