//! `stevedore account create` asks the server for a new account (signed with the
//! caller's AWS credentials, which must be the first account's root key) and prints its
//! root key once, as JSON on stdout and as a profile for the shared credentials file on
//! stderr. `stevedore account list` lists them (ids, ARNs, creation times).

use anyhow::Context;

use crate::accounts::{
    CreateAccountRequest, CreateAccountResponse, ListAccountsResponse, ACCOUNTS_PATH,
};

/// Options of `stevedore account`.
#[derive(clap::Args, Debug)]
pub struct AccountArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Create an account with its own IAM and resources; prints its root key once.
    Create {
        /// The new account's 12-digit id (default: a random one).
        #[arg(long)]
        account_id: Option<String>,
        #[command(flatten)]
        to: crate::admin_client::Endpoint,
    },
    /// List the accounts this server holds (as JSON).
    List {
        #[command(flatten)]
        to: crate::admin_client::Endpoint,
    },
}

/// Runs the action.
pub async fn run(args: AccountArgs) -> anyhow::Result<()> {
    match args.action {
        Action::Create { account_id, to } => {
            let body = serde_json::to_vec(&CreateAccountRequest { account_id })?;
            let api = crate::admin_client::client(&to)?;
            let answer =
                crate::admin_client::post(&api, "iam", ACCOUNTS_PATH, "the account", body).await?;
            let created: CreateAccountResponse =
                serde_json::from_slice(&answer).context("reading the server's answer")?;
            println!("{}", serde_json::to_string_pretty(&created)?);
            eprintln!(
                "Account {} created. Its root key is shown only now; to use it with the aws CLI, add to your credentials file:\n[account-{}]\naws_access_key_id = {}\naws_secret_access_key = {}",
                created.account_id, created.account_id, created.access_key_id, created.secret_access_key
            );
            Ok(())
        }
        Action::List { to } => {
            let api = crate::admin_client::client(&to)?;
            let answer =
                crate::admin_client::get(&api, "iam", ACCOUNTS_PATH, "the account list").await?;
            let listed: ListAccountsResponse =
                serde_json::from_slice(&answer).context("reading the server's answer")?;
            println!("{}", serde_json::to_string_pretty(&listed)?);
            Ok(())
        }
    }
}
