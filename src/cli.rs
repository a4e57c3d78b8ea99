//! The command line: `serve`, `dev`, `migrate`, `admin create`, `admin set-password`.
//!
//! Thin glue: resolve the configuration, start logging, call into the application or the
//! auth service, and turn failures into a message and a non-zero exit.

use std::io::{BufRead, IsTerminal};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use crate::auth::Auth;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, ConfigFlags, Mode};
use crate::startup::{open_store, prepare_directories, shutdown_signal, Application};

/// Pressluft: a self-hosted control plane for WordPress.
#[derive(Debug, Parser)]
#[command(name = "pressluft", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigFlags,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the control plane as a service (system paths, 127.0.0.1:8080 behind nginx unless given
    /// an address).
    Serve,
    /// Run locally: data in ./.pressluft, 127.0.0.1:8080, a bootstrap admin on first start.
    Dev,
    /// Apply database migrations and exit.
    Migrate(MigrateArgs),
    /// For install.sh: store the given ACME settings, extract the playbooks and print, as one
    /// JSON object, the playbook directory and the variables of playbooks/control-plane-https.yml
    /// (the dashboard's nginx block and certificate, the same the local node_provision uses).
    ControlPlaneVhostVars(ControlPlaneVhostVarsArgs),
    /// Manage admin accounts.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Node helpers.
    #[command(subcommand)]
    Node(NodeCommand),
    /// For the safe-update playbook (control plane): screenshots of a temporary environment's
    /// check pages with the system chromium, compared with the earlier ones in phase `after`;
    /// prints one JSON line.
    #[command(hide = true)]
    SafeUpdateShots {
        /// The spec file (JSON; src/safe_updates/shots.rs).
        #[arg(long, value_name = "FILE")]
        spec: std::path::PathBuf,
    },
}

/// `pressluft control-plane-vhost-vars`: values given are stored; an empty value clears one.
#[derive(Debug, clap::Args)]
pub struct ControlPlaneVhostVarsArgs {
    /// ACME directory URL (setting acme_directory_url; https only).
    #[arg(long, value_name = "URL")]
    pub acme_directory_url: Option<String>,
    /// CA bundle certbot trusts for the ACME server (setting acme_ca_bundle; absolute path).
    #[arg(long, value_name = "FILE")]
    pub acme_ca_bundle: Option<String>,
    /// ACME account e-mail (setting acme_email).
    #[arg(long, value_name = "EMAIL")]
    pub acme_email: Option<String>,
    /// Where the playbook writes its result file (variable pressluft_result_path).
    #[arg(long, value_name = "FILE")]
    pub result_path: String,
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Print the control plane's SSH public key (authorize it on every node).
    Pubkey,
    /// On a node: serialized-safe URL rewrite of a mysqldump stream, stdin to stdout.
    SearchReplace {
        /// The URL to replace (trailing slash ignored).
        #[arg(long)]
        from: String,
        /// The replacement URL (trailing slash ignored).
        #[arg(long)]
        to: String,
    },
    /// On a node: drift checksums of tables (database in PRESSLUFT_DB_NAME) and paths, as JSON.
    DriftChecksums {
        /// Release root the paths are relative to.
        #[arg(long)]
        root: std::path::PathBuf,
        /// Table prefix of the WordPress installation (e.g. `wp_`).
        #[arg(long)]
        table_prefix: String,
        /// A table name without the prefix (repeatable).
        #[arg(long = "table")]
        tables: Vec<String>,
        /// A path relative to the root (repeatable).
        #[arg(long = "path")]
        paths: Vec<String>,
    },
    /// On a node: production's drift checksums of a preset's protected tables and paths (spec
    /// as JSON on stdin, table prefix and checksums as JSON on stdout; exit 3: precondition).
    DriftCheck,
    /// On a node: copy a database into another with the URL rewritten (parallel import).
    DbCopy {
        /// Database copied from.
        #[arg(long)]
        source: String,
        /// Database copied into (tables of the same name are replaced).
        #[arg(long)]
        target: String,
        /// The URL to replace (trailing slash ignored).
        #[arg(long)]
        from: String,
        /// The replacement URL (trailing slash ignored).
        #[arg(long)]
        to: String,
        /// Parallel import connections (default: one per CPU, 2 to 4).
        #[arg(long)]
        connections: Option<usize>,
    },
    /// On a node: the node work of env_create; the job variables as JSON on stdin, the result
    /// as JSON on stdout (exit 3: a precondition failed, nothing changed).
    EnvClone,
    /// On a node: the node work of site_create; the job variables as JSON on stdin, the result
    /// as JSON on stdout (exit 3: a precondition failed, nothing changed; exit 4: the WordPress
    /// source could not be fetched).
    SiteCreate,
    /// On a node: a backup (database dump and/or files archive, encrypted) into its storage;
    /// the spec as JSON on stdin, the result as JSON on stdout (docs: "Backups: node helper").
    BackupCreate,
    /// On a node: re-read a stored backup and check every hash (spec as JSON on stdin).
    BackupVerify,
    /// On a node: one decrypted, decompressed backup artifact to stdout (spec as JSON on stdin).
    BackupRead,
    /// On a node: delete every stored object of expired backups (spec as JSON on stdin; a
    /// per-backup report on stdout).
    BackupDelete,
    /// On a node: the health checks of an environment (HTTP, WordPress installed, database);
    /// the job variables as JSON on stdin, the checks as JSON on stdout (exit 0 whatever their
    /// outcome; exit 3: a precondition failed).
    HealthCheck,
    /// On a node: WordPress updates as a new release (pre-update backup, copy, upgraders, go
    /// live); spec as JSON on stdin, result as JSON on stdout (exit 3: precondition, 4: backup
    /// storage unreachable, 6: update service or download failed; nothing live changed).
    EnvUpdate,
    /// On a node: a non-production environment's release and unprotected tables made
    /// production's (`env_promote`; spec on stdin, result on stdout; exit 3: precondition, 8:
    /// production drifted since the clone; nothing changed then).
    EnvPromote,
    /// On a node: the updates WordPress reports for an environment (spec as JSON on stdin,
    /// AvailableUpdates on stdout; exit 6: the update service could not be reached).
    UpdateCheck,
    /// On a node: an environment back on an earlier release, its database (and uploads)
    /// restored from a backup when set; the spec as JSON on stdin, the result on stdout.
    ReleaseRollback,
    /// On a node: a new release from a git repository or an archive, made live
    /// (`env_deploy`; the spec on stdin).
    ReleaseDeploy,
    /// On a node: an environment's server blocks with or without the FastCGI cache, its Redis
    /// drop-in added or removed, Nginx reloaded, its caches purged (`env_cache_toggle`; the
    /// spec on stdin, the result on stdout; exit 3: a precondition failed, nothing changed).
    EnvCache,
    /// On a node: an environment's FastCGI cache entries and Redis keys deleted, nobody
    /// else's (`cache_purge`; the spec on stdin, the counts on stdout).
    CachePurge,
    /// On a node: an environment's custom-domain server blocks installed or removed, Nginx
    /// reloaded, its database rewritten to a new canonical URL when it changes, its caches
    /// purged (`domain_add`, `domain_remove`; the spec on stdin, the result on stdout; exit 3:
    /// a precondition failed, nothing changed).
    DomainApply,
    /// On a node: a one-time WordPress login token for an environment (magic login; the spec
    /// as JSON on stdin, `{"token", "expires_at"}` on stdout).
    MagicLogin,
    /// On a node: another WordPress imported from an archive (db.sql, files/, meta.json) as a
    /// new release and database, made live (`site_import`; the spec on stdin; exit 6: fetch
    /// failed, 7: archive invalid, 3: precondition, 4: backup storage; nothing live changed).
    SiteImport,
    /// On a node: a completed backup restored into an existing environment (verified first;
    /// pre-restore backup, new release, uploads, database with the URL rewrite, made live;
    /// `env_restore`; the spec on stdin; exit 5: checksum mismatch, 3: precondition, 4: backup
    /// storage; nothing live changed).
    EnvRestore,
    /// On a node: a restore drill (`restore_drill`): a temporary environment created, the
    /// backup restored into it, the health checks run, the environment removed again whatever
    /// they found (the spec on stdin, the report on stdout; exit 0 passed or not, 3:
    /// precondition, 1: the removal failed).
    RestoreDrill,
    /// On a node: the PHP fatal errors an environment logged since a moment (issue 16; the
    /// spec on stdin, `{"fatals": […]}` on stdout; exit 3: a precondition failed).
    PhpFatals,
    /// On a node: `/` and the same-host paths of an environment's primary menu, at most 10
    /// (issue 16; the spec on stdin, `{"paths": […]}` on stdout).
    MenuPaths,
    /// On a node: deletes environments (`env_delete`, `site_delete`): a final backup of each
    /// first, then its pool, server blocks, certificates, database, Redis user and keys, Linux
    /// user and directory (spec as JSON on stdin, result on stdout; exit 3: precondition, 4:
    /// backup storage unreachable; nothing removed before every final backup completed).
    EnvDelete,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin (the password is prompted twice, or read from stdin).
    Create {
        #[arg(long)]
        email: String,
        /// Defaults to the part of the e-mail before `@`.
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the admins' e-mail addresses, one per line (nothing when there is none).
    List,
    /// Replace an admin's password and revoke all of their sessions.
    SetPassword {
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Node helpers run on nodes: no control-plane configuration, data directory or logging.
    match &cli.command {
        Command::Node(NodeCommand::SearchReplace { from, to }) => {
            return crate::node_helper::search_replace::run(from, to);
        }
        Command::Node(NodeCommand::DriftChecksums {
            root,
            table_prefix,
            tables,
            paths,
        }) => {
            return crate::node_helper::drift::run(&crate::node_helper::drift::Request {
                root: root.clone(),
                table_prefix: table_prefix.clone(),
                tables: tables.clone(),
                paths: paths.clone(),
            });
        }
        Command::Node(NodeCommand::DbCopy {
            source,
            target,
            from,
            to,
            connections,
        }) => {
            use crate::node_helper::db_copy;
            return db_copy::run(&db_copy::Request {
                source_db: source.clone(),
                target_db: target.clone(),
                from: from.clone(),
                to: to.clone(),
                connections: connections.unwrap_or_else(db_copy::default_connections),
            });
        }
        Command::Node(NodeCommand::EnvClone) => {
            return crate::node_helper::env_clone::run();
        }
        Command::Node(NodeCommand::SiteCreate) => {
            return crate::node_helper::site_create::run();
        }
        Command::Node(NodeCommand::BackupCreate) => {
            return crate::node_helper::backup::run_create()
        }
        Command::Node(NodeCommand::BackupVerify) => {
            return crate::node_helper::backup::run_verify()
        }
        Command::Node(NodeCommand::BackupRead) => return crate::node_helper::backup::run_read(),
        Command::Node(NodeCommand::BackupDelete) => {
            return crate::node_helper::backup::run_delete()
        }
        Command::Node(NodeCommand::HealthCheck) => {
            return crate::node_helper::health::run();
        }
        Command::Node(NodeCommand::DriftCheck) => return crate::node_helper::drift::run_check(),
        Command::Node(NodeCommand::EnvUpdate) => return crate::node_helper::update::run(),
        Command::Node(NodeCommand::EnvPromote) => return crate::node_helper::promote::run(),
        Command::Node(NodeCommand::UpdateCheck) => return crate::node_helper::update::run_check(),
        Command::Node(NodeCommand::ReleaseRollback) => {
            return crate::node_helper::rollback::run();
        }
        Command::Node(NodeCommand::ReleaseDeploy) => return crate::node_helper::deploy::run(),
        Command::Node(NodeCommand::EnvCache) => return crate::node_helper::cache::run_toggle(),
        Command::Node(NodeCommand::CachePurge) => return crate::node_helper::cache::run_purge(),
        Command::Node(NodeCommand::DomainApply) => return crate::node_helper::domains::run(),
        Command::Node(NodeCommand::MagicLogin) => return crate::node_helper::magic_login::run(),
        Command::Node(NodeCommand::SiteImport) => return crate::node_helper::import::run(),
        Command::Node(NodeCommand::EnvRestore) => return crate::node_helper::env_restore::run(),
        Command::Node(NodeCommand::EnvDelete) => return crate::node_helper::delete::run(),
        Command::Node(NodeCommand::RestoreDrill) => return crate::node_helper::drill::run(),
        Command::Node(NodeCommand::PhpFatals) => return crate::node_helper::php_fatals::run(),
        Command::Node(NodeCommand::MenuPaths) => return crate::node_helper::menu_paths::run(),
        Command::SafeUpdateShots { spec } => {
            return crate::safe_updates::shots::run_cli(spec).await;
        }
        _ => {}
    }
    let mode = match cli.command {
        Command::Dev => Mode::Dev,
        _ => Mode::Serve,
    };
    let config = Config::from_process_env(mode, &cli.config)?;
    let clock: SharedClock = Arc::new(SystemClock);
    match cli.command {
        Command::Serve | Command::Dev => {
            prepare_directories(&config)?;
            let _guard = crate::logging::init(mode, Some(&config.log_dir));
            let app = Application::build(config, clock.clone()).await?;
            match mode {
                Mode::Dev => {
                    bootstrap_dev_admin(&Auth::new(app.state().store.clone(), clock)).await?
                }
                Mode::Serve => {
                    let public_ip = app.state().config.public_ip;
                    app.state()
                        .nodes
                        .register_local_if_missing(public_ip)
                        .await?;
                }
            }
            app.run(shutdown_signal()).await
        }
        Command::ControlPlaneVhostVars(args) => {
            use crate::control_plane_tls as tls;
            let mut options = tls::AcmeOptions {
                directory_url: args.acme_directory_url,
                ca_bundle: args.acme_ca_bundle,
                email: args.acme_email,
            };
            if let Err(message) = tls::validate_acme(&mut options) {
                bail!(message);
            }
            prepare_directories(&config)?;
            let _guard = crate::logging::init(mode, None);
            let store = open_store(&config).await?;
            let now = crate::clock::now_ts(&*clock);
            let stored = tls::store_acme(&store, &options, &now).await?;
            crate::startup::prepare_ansible_dir(&config)?;
            let vars = tls::installer_vars(&store, &config, &args.result_path).await?;
            store.close().await;
            let out = serde_json::json!({
                "ansible_dir": config.ansible_dir.display().to_string(),
                "acme_settings_changed": stored,
                "vars": vars,
            });
            println!("{out}");
            Ok(())
        }
        Command::Migrate(args) => {
            prepare_directories(&config)?;
            let _guard = crate::logging::init(mode, None);
            let store = open_store(&config).await?;
            if let Some(file) = &args.from_sqlite {
                copy_from_sqlite(&config, &store, file).await?;
            }
            store.close().await;
            let secrets = crate::startup::open_secrets(&config)?;
            println!(
                "migrations applied; control-plane SSH public key:\n{}",
                secrets.ssh_public_key()?
            );
            Ok(())
        }
        Command::Node(
            NodeCommand::SearchReplace { .. }
            | NodeCommand::DriftChecksums { .. }
            | NodeCommand::DbCopy { .. }
            | NodeCommand::EnvClone
            | NodeCommand::SiteCreate
            | NodeCommand::BackupCreate
            | NodeCommand::BackupVerify
            | NodeCommand::BackupRead
            | NodeCommand::BackupDelete
            | NodeCommand::HealthCheck
            | NodeCommand::DriftCheck
            | NodeCommand::EnvUpdate
            | NodeCommand::EnvPromote
            | NodeCommand::UpdateCheck
            | NodeCommand::ReleaseRollback
            | NodeCommand::ReleaseDeploy
            | NodeCommand::EnvCache
            | NodeCommand::CachePurge
            | NodeCommand::DomainApply
            | NodeCommand::MagicLogin
            | NodeCommand::SiteImport
            | NodeCommand::EnvRestore
            | NodeCommand::RestoreDrill
            | NodeCommand::PhpFatals
            | NodeCommand::MenuPaths
            | NodeCommand::EnvDelete,
        )
        | Command::SafeUpdateShots { .. } => {
            unreachable!("handled above")
        }
        Command::Node(NodeCommand::Pubkey) => {
            prepare_directories(&config)?;
            let _guard = crate::logging::init(mode, None);
            let secrets = crate::startup::open_secrets(&config)?;
            println!("{}", secrets.ssh_public_key()?);
            Ok(())
        }
        Command::Admin(admin) => {
            prepare_directories(&config)?;
            let _guard = crate::logging::init(mode, None);
            let store = open_store(&config).await?;
            let auth = Auth::new(store.clone(), clock);
            let result = match admin {
                AdminCommand::Create {
                    email,
                    display_name,
                    password_stdin,
                } => {
                    let password = read_password(password_stdin)?;
                    auth.create_admin(&email, display_name.as_deref(), &password)
                        .await
                        .map(|email| println!("admin {email} created"))
                }
                AdminCommand::List => store
                    .admin_emails()
                    .await
                    .map(|emails| emails.iter().for_each(|e| println!("{e}")))
                    .map_err(crate::auth::AuthError::from),
                AdminCommand::SetPassword {
                    email,
                    password_stdin,
                } => {
                    let password = read_password(password_stdin)?;
                    auth.set_password(&email, &password).await.map(|()| {
                        println!("password of {email} replaced; their sessions are revoked")
                    })
                }
            };
            store.close().await;
            result.map_err(anyhow::Error::from)
        }
    }
}

/// In `dev`, with no user yet: creates `admin@pressluft.local` and prints its random password
/// once, on the terminal only (never into a log file).
async fn bootstrap_dev_admin(auth: &Auth) -> anyhow::Result<()> {
    if auth.has_users().await? {
        return Ok(());
    }
    let password = crate::auth::token::random_token()[..20].to_string();
    let email = auth
        .create_admin("admin@pressluft.local", Some("Admin"), &password)
        .await?;
    println!();
    println!("  ┌──────────────────────────────────────────────────────────┐");
    println!("  │ Bootstrap admin created (shown once):                    │");
    println!("  │   e-mail:   {:<45}│", email.as_str());
    println!("  │   password: {:<45}│", password);
    println!("  └──────────────────────────────────────────────────────────┘");
    println!();
    Ok(())
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password")?;
        let password = line.trim_end_matches(['\n', '\r']).to_string();
        if password.is_empty() {
            bail!("no password on standard input");
        }
        return Ok(password);
    }
    let first = rpassword::prompt_password("Password: ").context("reading the password")?;
    let second = rpassword::prompt_password("Repeat password: ").context("reading the password")?;
    if first != second {
        bail!("the passwords do not match");
    }
    Ok(first)
}

/// `pressluft migrate` options.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MigrateArgs {
    /// Copy this SQLite control plane (all tables, one transaction) into the PostgreSQL
    /// database of --database-url, which must be empty
    #[arg(long, value_name = "FILE")]
    pub from_sqlite: Option<std::path::PathBuf>,
}

/// `migrate --from-sqlite FILE`: the file's control plane into the (migrated, empty)
/// PostgreSQL store.
async fn copy_from_sqlite(
    config: &Config,
    target: &crate::store::Store,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    let Some(url) = &config.database_url else {
        anyhow::bail!(
            "--from-sqlite needs the PostgreSQL target: --database-url or PRESSLUFT_DATABASE_URL"
        );
    };
    anyhow::ensure!(file.is_file(), "{} is not a file", file.display());
    let source = crate::store::Store::open(file)
        .await
        .with_context(|| format!("opening {}", file.display()))?;
    source
        .migrate()
        .await
        .with_context(|| format!("bringing {} up to date", file.display()))?;
    let report = target
        .copy_from_sqlite(&source)
        .await
        .with_context(|| format!("copying {} into {}", file.display(), url.redacted()))?;
    source.close().await;
    for (table, n) in &report.tables {
        println!("{table}: {n} rows");
    }
    println!("copied {} into {}", file.display(), url.redacted());
    Ok(())
}
