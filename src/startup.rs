//! Building and running the application: directories, database, listener, background tasks,
//! graceful shutdown. Tests use [`Application::build`] with port 0 and their own clock.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::Auth;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::events::Events;
use crate::state::AppState;
use crate::store::Store;

/// A built application: migrated database and bound listener, not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    shutdown_tx: watch::Sender<bool>,
}

/// Creates the data, secrets and log directories (secrets 0700).
pub fn prepare_directories(config: &Config) -> anyhow::Result<()> {
    for dir in [&config.data_dir, &config.log_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if let Some(parent) = config
        .db_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    create_private_dir(&config.secrets_dir)
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {} to 0700", dir.display()))
}

/// Opens the database and applies migrations, logging what happened.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::open(&config.db_path)
        .await
        .with_context(|| format!("opening database {}", config.db_path.display()))?;
    let report = store.migrate().await.context("applying migrations")?;
    tracing::info!(
        applied_now = report.applied_now,
        total = report.total,
        "database migrations applied"
    );
    Ok(store)
}

impl Application {
    /// Prepares everything up to a bound listener.
    pub async fn build(config: Config, clock: SharedClock) -> anyhow::Result<Application> {
        prepare_directories(&config)?;
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            mode = config.mode.as_str(),
            data_dir = %config.data_dir.display(),
            db = %config.db_path.display(),
            log_dir = %config.log_dir.display(),
            workers = config.workers,
            "pressluft starting"
        );
        let store = open_store(&config).await?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding {}", config.listen_addr))?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let state = AppState {
            auth: Auth::new(store.clone(), clock.clone()),
            config: Arc::new(config),
            store,
            clock,
            events: Events::new(),
            shutdown: shutdown_rx,
        };
        Ok(Application {
            listener,
            state,
            shutdown_tx,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `signal` completes, then stops background tasks and open streams.
    pub async fn run(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            state,
            shutdown_tx,
        } = self;
        let addr = listener.local_addr()?;
        let watcher = tokio::spawn(
            state
                .events
                .clone()
                .run_job_watcher(state.store.clone(), state.shutdown.clone()),
        );
        tracing::info!("listening on http://{addr}");
        let app = crate::http::router(state.clone());
        let shutdown = async move {
            signal.await;
            tracing::info!("shutting down");
            let _ = shutdown_tx.send(true);
        };
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")?;
        let _ = watcher.await;
        state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
