//! `stevedore`: the one binary. It parses the command line, sets up logging and runs the
//! role asked for. Each role's wiring lives in its own module.

mod account_command;
mod accounts;
mod admin_client;
mod agent;
mod appscaling_wiring;
mod capacity_wiring;
mod channel;
mod console_wiring;
mod credentials;
mod ec2_launch_templates;
mod fargate;
mod health_reports;
mod http;
mod instance_identity;
mod join_token;
mod lb_command;
mod lb_metrics_wiring;
mod lb_wiring;
mod leader_wiring;
mod listener;
mod local_instances;
mod logs_metrics_wiring;
mod metrics;
mod regions;
mod registry_identity;
mod scan_db;
mod server;
mod sim;
mod sim_instances;
mod store_choice;
mod task_roles;
mod tls;
mod usage_wiring;
mod vpc_wiring;

use clap::{Parser, Subcommand};

/// mimalloc rather than glibc's malloc. glibc keeps what its per-thread arenas free, so a
/// server whose state shrank (stopped tasks expired, logs swept) kept its peak RSS: 2.25x
/// its steady size after 20,000 expired tasks, back to 1.27x once `malloc_trim` ran —
/// held, not leaked. mimalloc hands freed pages back to the kernel after a short delay,
/// with no call of ours (and so no `unsafe`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Stevedore: Amazon ECS, ECR and Fargate's APIs on your own machines.
#[derive(Parser, Debug)]
#[command(name = "stevedore", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the control plane: every AWS API on one port, over durable embedded state.
    Server(server::ServerArgs),
    /// Run everything on this machine with the embedded defaults (the quick start).
    Up(server::ServerArgs),
    /// Run the agent: register this machine and run its tasks' containers with Docker.
    Agent(agent::AgentArgs),
    /// Run hollow container instances that register and report without running containers.
    Sim(sim::SimArgs),
    /// Run the load balancer data plane alone, reading its configuration from a server.
    Lb(lb_command::LbArgs),
    /// Mint a one-time token with which an agent host joins as an instance profile.
    JoinToken(join_token::JoinTokenArgs),
    /// Manage the accounts this server holds (each with its own IAM and resources).
    Account(account_command::AccountArgs),
    /// Manage the registry's vulnerability database (OSV records) on a running server.
    #[command(subcommand)]
    ScanDb(scan_db::ScanDbCommand),
}

fn main() -> std::process::ExitCode {
    // Before any file is created: everything this process writes (the state database and
    // its -wal/-shm, registry blobs, keys, the agent's state) is owner-only, whatever the
    // invoking shell's umask. Modes set one by one would miss files other crates create.
    ::agent::modes::restrict_umask();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STEVEDORE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            tracing::error!(%error, "Could not start the async runtime.");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server::run(args, false).await,
            Command::Up(args) => server::run(args, true).await,
            Command::Sim(args) => sim::run(args).await,
            Command::Agent(args) => agent::run(args).await,
            Command::Lb(args) => lb_command::run(args).await,
            Command::JoinToken(args) => join_token::run(args).await,
            Command::Account(args) => account_command::run(args).await,
            Command::ScanDb(command) => scan_db::run(command).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "Stevedore stopped on an error.");
            eprintln!("stevedore: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
