//! `taskhost dashboard`: the web dashboard (crate `taskhost-dashboard`) over the configured
//! backends.

use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;

/// `dashboard`: serve the web dashboard.
#[derive(Args, Debug, Clone)]
pub struct DashboardArgs {
    /// The address to listen on. Anything but a loopback address needs --token.
    #[arg(long, default_value = "127.0.0.1:8000", value_name = "ADDR")]
    pub bind: SocketAddr,
    /// Require this token: the browser asks for it (any user name, the token as password), or
    /// send `Authorization: Bearer <token>`. Prefer the environment variable to the option,
    /// which other users can see in the process list.
    #[arg(
        long,
        env = "TASKHOST_DASHBOARD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Show only: refuse every action (prune).
    #[arg(long)]
    pub read_only: bool,
    /// Seconds between reloads of a page in live mode; 0 turns live refresh off.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub refresh_secs: u32,
}

/// Serve until Ctrl-C or SIGTERM.
pub fn run(config: Option<&std::path::Path>, args: &DashboardArgs) -> Result<(), String> {
    let config = taskhost::Config::load(config).map_err(|e| e.to_string())?;
    let backends = Arc::new(taskhost::TaskBackends::new(config));
    let options = taskhost_dashboard::Options {
        bind: args.bind,
        token: args.token.clone(),
        read_only: args.read_only,
        refresh_secs: args.refresh_secs,
    };
    taskhost_dashboard::run(backends, options, |addr| {
        eprintln!("taskhost dashboard on http://{addr}/ (Ctrl-C stops it)");
    })
    .map_err(|e| e.to_string())
}
