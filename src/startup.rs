//! Building and running the application: directories, database, listener, background tasks,
//! graceful shutdown. Tests use [`Application::build`] with port 0 and their own clock.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;

use crate::auth::Auth;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::events::Events;
use crate::http::session::Via;
use crate::jobs::ansible::{extract_embedded, AnsibleRunner};
use crate::jobs::{Engine, Runner};
use crate::nodes::Nodes;
use crate::secrets::Secrets;
use crate::state::AppState;
use crate::store::Store;

/// A built application: migrated database and bound listener, not yet serving.
pub struct Application {
    listener: TcpListener,
    /// The `--proxy-socket` listener, when configured.
    proxy_listener: Option<UnixListener>,
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

/// Opens the secrets store (creating the age identity at `<data_dir>/age.key`) and makes sure
/// the control plane's SSH key pair exists.
pub fn open_secrets(config: &Config) -> anyhow::Result<Secrets> {
    let secrets = Secrets::open(&config.secrets_dir, &config.data_dir.join("age.key"))
        .context("opening the secrets store")?;
    secrets
        .ensure_ssh_key_pair()
        .context("creating the SSH key pair")?;
    Ok(secrets)
}

/// Fills the default Ansible directory from the copy embedded in the binary.
pub fn prepare_ansible_dir(config: &Config) -> anyhow::Result<()> {
    if config.ansible_dir_embedded {
        let n = extract_embedded(&config.ansible_dir)
            .with_context(|| format!("extracting playbooks to {}", config.ansible_dir.display()))?;
        tracing::info!(dir = %config.ansible_dir.display(), files = n, "playbooks extracted");
    } else {
        tracing::info!(dir = %config.ansible_dir.display(), "playbooks used in place");
    }
    Ok(())
}

/// The settings row recording which age identity the stored secrets are encrypted to.
pub const SECRETS_RECIPIENT_KEY: &str = "secrets_recipient";

/// Refuses to start when this process's age identity is not the one the control plane's
/// secrets are encrypted to (another replica's, recorded in the database at its first start):
/// such a replica could not decrypt a single secret and would fail every job later (issue 17).
/// The first start records it.
pub async fn check_secrets_identity(
    store: &Store,
    secrets: &Secrets,
    config: &Config,
) -> anyhow::Result<()> {
    let ours = secrets.recipient();
    // Recorded by the first start (two first starts at once: the first commit wins, the
    // other compares against it).
    let now = crate::clock::format_ts(time::OffsetDateTime::now_utc());
    let mut tx = store.begin_write().await?;
    let theirs =
        crate::store::settings::setting_or_insert(&mut tx, SECRETS_RECIPIENT_KEY, &ours, &now)
            .await?;
    tx.commit().await?;
    if theirs != ours {
        anyhow::bail!(
            "this control plane's age identity ({}, public key {ours}) cannot decrypt the stored \
             secrets, which are encrypted to {theirs}: every replica needs the same identity \
             (copy age.key and the secrets directory from a running replica)",
            config.data_dir.join("age.key").display()
        );
    }
    Ok(())
}

/// Turns the change notifications of every replica into in-process wake-ups: jobs wake an idle
/// worker and the live feed, resources the live feed (issue 17, PostgreSQL).
async fn relay_changes(
    mut listener: crate::store::replicas::ChangeListener,
    engine: crate::jobs::Engine,
    events: crate::events::Events,
    mut shutdown: watch::Receiver<bool>,
) {
    use crate::store::replicas::Change;
    loop {
        let change = tokio::select! {
            change = listener.recv() => change,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        match change {
            // One idle worker looks (as after an in-process finish): a change unblocks at
            // most a job or a few, and a worker that claims keeps claiming.
            Ok(Change::Jobs) => {
                engine.wake_handle().notify_one();
                events.jobs_changed();
            }
            Ok(Change::Resources) => events.jobs_changed(),
            Err(e) => {
                tracing::warn!(error = %e, "change notifications: receive failed");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// Opens the database and applies migrations, logging what happened.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = match &config.database_url {
        Some(url) => Store::connect(url.expose())
            .await
            .with_context(|| format!("opening database {}", url.redacted()))?,
        None => Store::open(&config.db_path)
            .await
            .with_context(|| format!("opening database {}", config.db_path.display()))?,
    };
    let report = store.migrate().await.context("applying migrations")?;
    tracing::info!(
        applied_now = report.applied_now,
        total = report.total,
        "database migrations applied"
    );
    Ok(store)
}

impl Application {
    /// Prepares everything up to a bound listener, with the Ansible runner.
    pub async fn build(config: Config, clock: SharedClock) -> anyhow::Result<Application> {
        Self::build_with_runner(config, clock, None).await
    }

    /// Like [`Application::build`], with another runner (tests of the queue's own logic).
    pub async fn build_with_runner(
        config: Config,
        clock: SharedClock,
        runner: Option<Arc<dyn Runner>>,
    ) -> anyhow::Result<Application> {
        prepare_directories(&config)?;
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            mode = config.mode.as_str(),
            data_dir = %config.data_dir.display(),
            db = %config
                .database_url
                .as_ref()
                .map_or_else(|| config.db_path.display().to_string(), |u| u.redacted()),
            log_dir = %config.log_dir.display(),
            workers = config.workers,
            trusted_proxies = %trusted_proxies_line(&config),
            proxy_socket = %config
                .proxy_socket
                .as_deref()
                .map_or_else(|| "none".into(), |p| p.display().to_string()),
            "pressluft starting"
        );
        let store = open_store(&config).await?;
        let secrets = open_secrets(&config)?;
        check_secrets_identity(&store, &secrets, &config).await?;
        prepare_ansible_dir(&config)?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding {}", config.listen_addr))?;
        // The bound address (port 0 in tests becomes the real one): node_provision tells the
        // control-plane vhost which port to proxy to.
        let mut config = config;
        config.listen_addr = listener.local_addr().context("reading the bound address")?;
        // Bound: no other instance serves this address. Run directories left by an earlier
        // process (killed before it could remove them) hold a decrypted key and secrets.
        crate::jobs::ansible::remove_stale_run_dirs(&config.data_dir);
        let proxy_listener = match &config.proxy_socket {
            Some(path) => Some(bind_proxy_socket(path)?),
            None => None,
        };
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let config = Arc::new(config);
        let events = Events::new();
        let runner = runner.unwrap_or_else(|| {
            Arc::new(AnsibleRunner::new(
                store.clone(),
                secrets.clone(),
                config.clone(),
            ))
        });
        let engine = Engine::new(
            store.clone(),
            clock.clone(),
            events.clone(),
            runner,
            secrets.clone(),
            config.log_dir.clone(),
            config.job_timeout,
        );
        let backups = crate::backups::Backups::new(
            store.clone(),
            engine.clone(),
            secrets.clone(),
            clock.clone(),
        );
        let state = AppState {
            auth: Auth::new(store.clone(), clock.clone()),
            nodes: Nodes::new(store.clone(), engine.clone(), clock.clone()),
            sites: crate::sites::Sites::new(
                store.clone(),
                engine.clone(),
                secrets.clone(),
                clock.clone(),
            ),
            deploys: crate::deploys::Deploys::new(
                store.clone(),
                engine.clone(),
                secrets.clone(),
                clock.clone(),
                backups.clone(),
                config.allow_loopback_sources,
            ),
            deletions: crate::sites::Deletions::new(
                store.clone(),
                engine.clone(),
                clock.clone(),
                backups.clone(),
            ),
            domains: crate::domains::Domains::new(store.clone(), engine.clone(), clock.clone()),
            drills: crate::drills::Drills::new(
                store.clone(),
                engine.clone(),
                secrets.clone(),
                clock.clone(),
            ),
            safe_updates: crate::safe_updates::SafeUpdates::new(
                store.clone(),
                engine.clone(),
                secrets.clone(),
                clock.clone(),
                backups.clone(),
                config.data_dir.clone(),
            ),
            backups,
            settings: crate::settings::Settings::new(
                store.clone(),
                engine.clone(),
                secrets.clone(),
                clock.clone(),
                config.allow_loopback_sources,
            ),
            config,
            store,
            clock,
            events,
            engine,
            secrets,
            streams: Default::default(),
            shutdown: shutdown_rx,
        };
        Ok(Application {
            listener,
            proxy_listener,
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
            proxy_listener,
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
        let mut tasks = vec![watcher];
        match state.store.listen_for_changes().await {
            Ok(Some(listener)) => tasks.push(tokio::spawn(relay_changes(
                listener,
                state.engine.clone(),
                state.events.clone(),
                state.shutdown.clone(),
            ))),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "change notifications unavailable: polling only")
            }
        }
        for index in 0..state.config.workers {
            tasks.push(tokio::spawn(crate::jobs::worker::run(
                state.engine.clone(),
                index,
                state.shutdown.clone(),
            )));
        }
        if state.config.workers > 0 {
            tasks.push(tokio::spawn(crate::jobs::scheduler::run(
                state.engine.clone(),
                state.backups.clone(),
                state.drills.clone(),
                state.safe_updates.clone(),
                state.clock.clone(),
                state.shutdown.clone(),
            )));
            tracing::info!(
                workers = state.config.workers,
                "job workers and scheduler started"
            );
        }
        tracing::info!("listening on http://{addr}");
        let socket_path = state.config.proxy_socket.clone();
        if let Some(path) = &socket_path {
            tracing::info!(socket = %path.display(), "listening for the local proxy");
        }
        let routes = axum::Router::new()
            .nest("/api", crate::api::router())
            .nest("/_admin", crate::api::admin_settings::router())
            .merge(crate::ui::router());
        let app = crate::http::router(state.clone(), routes);
        let shutdown_tx = Arc::new(shutdown_tx);
        let signal_task = {
            let shutdown_tx = shutdown_tx.clone();
            tokio::spawn(async move {
                signal.await;
                tracing::info!("shutting down");
                let _ = shutdown_tx.send(true);
            })
        };
        // Both listeners stop accepting on the same signal and drain their connections.
        let stopping = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let tcp = axum::serve(
            listener,
            app.clone().into_make_service_with_connect_info::<Via>(),
        )
        .with_graceful_shutdown(stopping(state.shutdown.clone()));
        let proxy = async {
            match proxy_listener {
                Some(l) => {
                    axum::serve(l, app.into_make_service_with_connect_info::<Via>())
                        .with_graceful_shutdown(stopping(state.shutdown.clone()))
                        .await
                }
                None => Ok(()),
            }
        };
        let (tcp_result, proxy_result) = tokio::join!(tcp.into_future(), proxy);
        // Whatever ended serving, the background tasks stop too.
        let _ = shutdown_tx.send(true);
        signal_task.abort();
        if let Some(path) = &socket_path {
            remove_socket_file(path);
        }
        tcp_result.context("serving HTTP")?;
        proxy_result.context("serving the proxy socket")?;
        for task in tasks {
            let _ = task.await;
        }
        state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Binds the `--proxy-socket`. Its directory must exist and be writable only by its owner:
/// the installer creates it as `<service user>:www-data` with mode 2750, so only the service
/// user and nginx (group `www-data`, never an environment's `pl_*` user) can reach the socket,
/// and the setgid bit gives the socket the group `www-data`. The socket itself gets mode 0660.
/// A stale socket from an earlier run is removed; a socket something still listens on, or any
/// other file (a symbolic link is never followed), stops start-up.
fn bind_proxy_socket(path: &Path) -> anyhow::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .with_context(|| format!("proxy socket {} has no directory", path.display()))?;
    let meta = std::fs::symlink_metadata(dir).with_context(|| {
        format!(
            "the proxy socket's directory {} is missing (create it: owner the service user, \
             group www-data, mode 2750)",
            dir.display()
        )
    })?;
    if !meta.is_dir() {
        anyhow::bail!(
            "the proxy socket's directory {} is not a directory",
            dir.display()
        );
    }
    if meta.permissions().mode() & 0o022 != 0 {
        anyhow::bail!(
            "the proxy socket's directory {} is writable by group or others (mode {:o}); \
             others could replace the socket: make it 2750",
            dir.display(),
            meta.permissions().mode() & 0o7777
        );
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                anyhow::bail!(
                    "proxy socket {} is in use by another process",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("removing the stale socket {}", path.display()))?;
            tracing::info!(socket = %path.display(), "removed a stale proxy socket");
        }
        Ok(_) => anyhow::bail!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("setting {} to 0660", path.display()))?;
    Ok(listener)
}

/// Removes the proxy socket at shutdown, if it still is a socket.
fn remove_socket_file(path: &Path) {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if is_socket {
        let _ = std::fs::remove_file(path);
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

/// `none`, or the trusted proxy blocks separated by commas (for the start-up block).
fn trusted_proxies_line(config: &Config) -> String {
    if config.trusted_proxies.is_empty() {
        return "none".into();
    }
    let blocks: Vec<String> = config
        .trusted_proxies
        .iter()
        .map(|b| b.to_string())
        .collect();
    blocks.join(",")
}
