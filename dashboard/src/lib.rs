//! The taskhost web dashboard (crate `taskhost-dashboard`, run by `taskhost dashboard`): an
//! overview per backend and queue, a filtered and paged results list, a page per result, and
//! the actions the stores offer (today: prune) — server-rendered HTML from axum and maud, with
//! its stylesheet compiled into the binary: no JavaScript, nothing fetched from elsewhere —
//! and `/metrics`, the queue gauges for Prometheus.
//!
//! Safe by default: [`Options::check`] refuses a non-loopback address without a token; with a
//! token every request must carry it (HTTP basic auth with the token as password, or
//! `Authorization: Bearer`); without one, requests must name a loopback host (DNS rebinding).
//! Every action is a POST carrying the server's CSRF token; `read_only` refuses them all.
//!
//! ```no_run
//! # async fn run() -> Result<(), taskhost_dashboard::Error> {
//! use std::sync::Arc;
//! let backends = Arc::new(taskhost::TaskBackends::new(taskhost::Config::load(None).unwrap()));
//! let dashboard = taskhost_dashboard::Dashboard::bind(backends, taskhost_dashboard::Options::default()).await?;
//! dashboard.serve(std::future::pending()).await
//! # }
//! ```

mod actions;
mod data;
mod metrics;
mod pages;
mod security;

use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use taskhost::TaskBackends;

/// What can go wrong starting or running the dashboard.
#[derive(thiserror::Error, Debug)]
pub enum Error {
    /// A non-loopback address without a token.
    #[error(
        "refusing to serve the dashboard on {0} without a token: anyone who can reach that \
         address could read the results and run actions. Give --token (or \
         $TASKHOST_DASHBOARD_TOKEN), or bind a loopback address such as 127.0.0.1:8000"
    )]
    UnprotectedBind(SocketAddr),
    /// An empty or blank token.
    #[error(
        "the dashboard token is empty: give a long random string (e.g. `openssl rand -hex 32`)"
    )]
    EmptyToken,
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("the dashboard server failed: {0}")]
    Serve(std::io::Error),
}

/// How the dashboard is served.
#[derive(Clone, Debug)]
pub struct Options {
    /// The address to listen on (default `127.0.0.1:8000`).
    pub bind: SocketAddr,
    /// The token every request must carry (basic-auth password, or `Authorization: Bearer`);
    /// required for a non-loopback `bind`.
    pub token: Option<String>,
    /// Refuse every action (prune, cancel, retry): a view only.
    pub read_only: bool,
    /// Seconds between reloads of a page in live mode (the overview's default); 0 turns live
    /// refresh off everywhere.
    pub refresh_secs: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            token: None,
            read_only: false,
            refresh_secs: 5,
        }
    }
}

impl Options {
    /// Refuse what is unsafe: a non-loopback address without a token, an empty token.
    pub fn check(&self) -> Result<(), Error> {
        match &self.token {
            Some(token) if token.trim().is_empty() => Err(Error::EmptyToken),
            None if !self.bind.ip().is_loopback() => Err(Error::UnprotectedBind(self.bind)),
            _ => Ok(()),
        }
    }
}

/// What every handler reads.
pub(crate) struct App {
    pub backends: Arc<TaskBackends>,
    pub options: Options,
    /// The token every action form carries: random per process, compared in constant time.
    pub csrf: String,
}

/// The dashboard's routes over `backends`, with authentication, CSRF and read-only checks;
/// for tests and for mounting in an application's own server. Does not check `options` (see
/// [`Options::check`]).
pub fn router(backends: Arc<TaskBackends>, options: Options) -> Router {
    let app = Arc::new(App {
        backends,
        options,
        csrf: uuid::Uuid::new_v4().simple().to_string(),
    });
    Router::new()
        .route("/", get(pages::overview))
        .route("/results", get(pages::results))
        .route("/results/{backend}/{id}", get(pages::result))
        .route("/actions/prune", post(actions::prune))
        .route("/actions/cancel", post(actions::cancel))
        .route("/actions/retry", post(actions::retry))
        .route("/static/style.css", get(pages::stylesheet))
        .route("/metrics", get(metrics::metrics))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            security::guard,
        ))
        .with_state(app)
}

/// A dashboard bound to its address, ready to serve.
pub struct Dashboard {
    listener: tokio::net::TcpListener,
    router: Router,
}

impl Dashboard {
    /// Check `options` and listen on `options.bind` (port 0: any free port, see
    /// [`Dashboard::local_addr`]).
    pub async fn bind(backends: Arc<TaskBackends>, options: Options) -> Result<Self, Error> {
        options.check()?;
        let addr = options.bind;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(Self {
            listener,
            router: router(backends, options),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener.local_addr().map_err(Error::Serve)
    }

    /// Serve until `shutdown` completes, then finish the requests under way.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(Error::Serve)
    }
}

/// Serve the dashboard until Ctrl-C or SIGTERM, on a runtime of its own: what `taskhost
/// dashboard` runs. `ready` is called with the address once it listens.
pub fn run(
    backends: Arc<TaskBackends>,
    options: Options,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Serve)?;
    runtime.block_on(async {
        let dashboard = Dashboard::bind(backends, options).await?;
        ready(dashboard.local_addr()?);
        dashboard.serve(stop_signal()).await
    })
}

/// Ctrl-C, or SIGTERM on Unix.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
