//! Typed configuration of the control plane, resolved once at start-up.
//!
//! Every setting has a `PRESSLUFT_*` environment variable and a command-line flag; the flag wins
//! over the variable, the variable over the mode's default (`serve` and `dev` differ). Resolution
//! is a pure function of the flags and an injected environment lookup, so precedence is unit
//! tested without touching the process environment. Invalid values stop start-up with a message
//! naming the flag or variable, the value and what was expected.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the binary runs; decides the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Production service: system paths, listens on loopback only (nginx terminates TLS in
    /// front of it, domains-and-tls.md §5 as revised by issue 15) unless given an address.
    Serve,
    /// Local development: everything under `./.pressluft`, loopback only.
    Dev,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Serve => "serve",
            Mode::Dev => "dev",
        }
    }
}

/// Raw values given as flags; `None` = not given.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigFlags {
    /// Address to listen on [env: PRESSLUFT_LISTEN_ADDR] [default: 127.0.0.1:8080]
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen_addr: Option<String>,
    /// Data directory [env: PRESSLUFT_DATA_DIR] [default: /var/lib/pressluft, dev ./.pressluft]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// SQLite database file [env: PRESSLUFT_DB_PATH] [default: <data dir>/pressluft.db]
    #[arg(long, global = true, value_name = "FILE")]
    pub db_path: Option<String>,
    /// PostgreSQL database (postgres://user:password@host:port/db); wins over the SQLite file
    /// [env: PRESSLUFT_DATABASE_URL] [default: none: SQLite]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Encrypted secrets store [env: PRESSLUFT_SECRETS_DIR] [default: <data dir>/secrets]
    #[arg(long, global = true, value_name = "DIR")]
    pub secrets_dir: Option<String>,
    /// Log directory [env: PRESSLUFT_LOG_DIR] [default: /var/log/pressluft, dev <data dir>/logs]
    #[arg(long, global = true, value_name = "DIR")]
    pub log_dir: Option<String>,
    /// Public IPv4 address of this host [env: PRESSLUFT_PUBLIC_IP] [default: none]
    #[arg(long, global = true, value_name = "IPV4")]
    pub public_ip: Option<String>,
    /// Number of job workers, 1–64 [env: PRESSLUFT_WORKERS] [default: 4]
    #[arg(long, global = true, value_name = "N")]
    pub workers: Option<String>,
    /// Job timeout in seconds, 60–86400 [env: PRESSLUFT_JOB_TIMEOUT_SECS] [default: 1800]
    #[arg(long, global = true, value_name = "SECS")]
    pub job_timeout_secs: Option<String>,
    /// Directory holding ansible.cfg, playbooks and roles [env: PRESSLUFT_ANSIBLE_DIR]
    /// [default: <data dir>/ansible/<version>, dev ./ansible when present]
    #[arg(long, global = true, value_name = "DIR")]
    pub ansible_dir: Option<String>,
    /// Let node provisioning manage the firewall (true/false) [env: PRESSLUFT_MANAGE_FIREWALL]
    /// [default: true]
    #[arg(long, global = true, value_name = "BOOL")]
    pub manage_firewall: Option<String>,
    /// Let source URLs (the WordPress source, later archives) reach loopback addresses
    /// (true/false; the bare flag means true) [env: PRESSLUFT_ALLOW_LOOPBACK_SOURCES]
    /// [default: false]
    #[arg(long, global = true, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub allow_loopback_sources: Option<String>,

    /// Proxies whose `X-Forwarded-For`/`X-Forwarded-Proto` are believed: IP addresses or CIDR
    /// blocks, comma-separated [env: PRESSLUFT_TRUSTED_PROXY] [default: none]
    #[arg(long, global = true, value_name = "IP[/BITS],…")]
    pub trusted_proxy: Option<String>,
    /// Unix socket for the local reverse proxy (the control-plane vhost); requests on it take
    /// the client from `X-Forwarded-For` [env: PRESSLUFT_PROXY_SOCKET] [default: none]
    #[arg(long, global = true, value_name = "PATH")]
    pub proxy_socket: Option<String>,
    /// The chromium binary safe updates take screenshots with [env: PRESSLUFT_CHROMIUM_PATH]
    /// [default: /usr/lib/chromium/chromium]
    #[arg(long, global = true, value_name = "FILE")]
    pub chromium_path: Option<String>,
}

/// The resolved, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub listen_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub db_path: PathBuf,
    /// A PostgreSQL database instead of the SQLite file at `db_path` (issue 17).
    pub database_url: Option<DatabaseUrl>,
    pub secrets_dir: PathBuf,
    pub log_dir: PathBuf,
    pub public_ip: Option<Ipv4Addr>,
    pub workers: usize,
    pub job_timeout: Duration,
    pub ansible_dir: PathBuf,
    /// True when `ansible_dir` is the default extraction directory, which start-up fills from
    /// the playbooks embedded in the binary (false: an operator's or the source tree's copy).
    pub ansible_dir_embedded: bool,
    pub manage_firewall: bool,
    /// Source URLs may name loopback addresses (link-local ones never).
    pub allow_loopback_sources: bool,

    /// Peers whose forwarding headers are believed (empty: none; the TCP peer is the client).
    pub trusted_proxies: Vec<IpBlock>,
    /// A Unix socket served besides `listen_addr`, for the reverse proxy on this host only
    /// (its directory decides who may connect); `None` = TCP only.
    pub proxy_socket: Option<PathBuf>,
    /// The system chromium that `pressluft safe-update-shots` drives (absolute; existence is
    /// checked when a run needs it, not at start-up: safe updates are optional).
    pub chromium_path: PathBuf,
    /// The binary installed on nodes as the node helper; `None` = this executable. Not a
    /// setting: tests point it at the built `pressluft` binary.
    pub node_binary: Option<PathBuf>,
}

/// The database URL setting's type (defined with the store, which connects with it).
pub use crate::store::DatabaseUrl;

/// The control plane's port when no listen address is given.
pub const DEFAULT_PORT: u16 = 8080;

/// A setting that could not be accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {origin} value {value:?}: {expected}")]
pub struct ConfigError {
    /// The flag or variable the value came from, e.g. `--workers` or `PRESSLUFT_WORKERS`.
    pub origin: String,
    pub value: String,
    pub expected: &'static str,
}

/// One setting's name in both places.
struct Key {
    flag: &'static str,
    env: &'static str,
}

const LISTEN_ADDR: Key = Key {
    flag: "--listen-addr",
    env: "PRESSLUFT_LISTEN_ADDR",
};
const DATA_DIR: Key = Key {
    flag: "--data-dir",
    env: "PRESSLUFT_DATA_DIR",
};
const DB_PATH: Key = Key {
    flag: "--db-path",
    env: "PRESSLUFT_DB_PATH",
};
const DATABASE_URL: Key = Key {
    flag: "--database-url",
    env: "PRESSLUFT_DATABASE_URL",
};
const SECRETS_DIR: Key = Key {
    flag: "--secrets-dir",
    env: "PRESSLUFT_SECRETS_DIR",
};
const LOG_DIR: Key = Key {
    flag: "--log-dir",
    env: "PRESSLUFT_LOG_DIR",
};
const PUBLIC_IP: Key = Key {
    flag: "--public-ip",
    env: "PRESSLUFT_PUBLIC_IP",
};
const WORKERS: Key = Key {
    flag: "--workers",
    env: "PRESSLUFT_WORKERS",
};
const JOB_TIMEOUT: Key = Key {
    flag: "--job-timeout-secs",
    env: "PRESSLUFT_JOB_TIMEOUT_SECS",
};
const ANSIBLE_DIR: Key = Key {
    flag: "--ansible-dir",
    env: "PRESSLUFT_ANSIBLE_DIR",
};
const MANAGE_FIREWALL: Key = Key {
    flag: "--manage-firewall",
    env: "PRESSLUFT_MANAGE_FIREWALL",
};
const ALLOW_LOOPBACK_SOURCES: Key = Key {
    flag: "--allow-loopback-sources",
    env: "PRESSLUFT_ALLOW_LOOPBACK_SOURCES",
};

const TRUSTED_PROXY: Key = Key {
    flag: "--trusted-proxy",
    env: "PRESSLUFT_TRUSTED_PROXY",
};
const PROXY_SOCKET: Key = Key {
    flag: "--proxy-socket",
    env: "PRESSLUFT_PROXY_SOCKET",
};
const CHROMIUM_PATH: Key = Key {
    flag: "--chromium-path",
    env: "PRESSLUFT_CHROMIUM_PATH",
};

/// The distribution's chromium (Debian's package `chromium`).
pub const DEFAULT_CHROMIUM_PATH: &str = "/usr/lib/chromium/chromium";

/// Every variable the control plane reads, for documentation and `--help`.
pub const ENV_VARS: [&str; 15] = [
    LISTEN_ADDR.env,
    DATA_DIR.env,
    DB_PATH.env,
    DATABASE_URL.env,
    SECRETS_DIR.env,
    LOG_DIR.env,
    PUBLIC_IP.env,
    WORKERS.env,
    JOB_TIMEOUT.env,
    ANSIBLE_DIR.env,
    MANAGE_FIREWALL.env,
    ALLOW_LOOPBACK_SOURCES.env,
    TRUSTED_PROXY.env,
    PROXY_SOCKET.env,
    CHROMIUM_PATH.env,
];

struct Resolver<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Resolver<'_> {
    /// The given value and where it came from: flag first, then the environment.
    fn raw(&self, key: &Key, flag: &Option<String>) -> Option<(String, String)> {
        if let Some(v) = flag {
            return Some((v.clone(), key.flag.to_string()));
        }
        (self.env)(key.env)
            .filter(|v| !v.is_empty())
            .map(|v| (v, key.env.to_string()))
    }

    fn parse<T>(
        &self,
        key: &Key,
        flag: &Option<String>,
        expected: &'static str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        match self.raw(key, flag) {
            None => Ok(None),
            Some((value, origin)) => parse(value.trim()).map(Some).ok_or(ConfigError {
                origin,
                value,
                expected,
            }),
        }
    }

    fn path(&self, key: &Key, flag: &Option<String>) -> Result<Option<PathBuf>, ConfigError> {
        self.parse(key, flag, "a non-empty path", |v| {
            (!v.is_empty()).then(|| PathBuf::from(v))
        })
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn in_range<T: std::str::FromStr + PartialOrd>(v: &str, lo: T, hi: T) -> Option<T> {
    v.parse::<T>().ok().filter(|n| *n >= lo && *n <= hi)
}

impl Config {
    /// Resolves flags > environment > defaults for `mode`, validating every value.
    pub fn resolve(
        mode: Mode,
        flags: &ConfigFlags,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let r = Resolver { env };
        let listen_addr = r
            .parse(
                &LISTEN_ADDR,
                &flags.listen_addr,
                "an address like 0.0.0.0:8080",
                |v| v.parse::<SocketAddr>().ok(),
            )?
            .unwrap_or_else(|| match mode {
                // Both modes: loopback. `serve` is reached through the local nginx (TLS, the
                // proxy socket); an explicit address keeps plain HTTP there (tests, own proxies,
                // the installer's fallback when no certificate could be issued).
                Mode::Serve | Mode::Dev => SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            });
        let data_dir = r
            .path(&DATA_DIR, &flags.data_dir)?
            .unwrap_or_else(|| match mode {
                Mode::Serve => PathBuf::from("/var/lib/pressluft"),
                Mode::Dev => PathBuf::from("./.pressluft"),
            });
        let db_path = r
            .path(&DB_PATH, &flags.db_path)?
            .unwrap_or_else(|| data_dir.join("pressluft.db"));
        let database_url = r
            .parse(
                &DATABASE_URL,
                &flags.database_url,
                "a postgres:// or postgresql:// URL",
                DatabaseUrl::parse,
            )
            // The value may hold a password: never echoed.
            .map_err(|e| ConfigError {
                value: "(not shown: may hold a password)".into(),
                ..e
            })?;
        let secrets_dir = r
            .path(&SECRETS_DIR, &flags.secrets_dir)?
            .unwrap_or_else(|| data_dir.join("secrets"));
        let log_dir = r
            .path(&LOG_DIR, &flags.log_dir)?
            .unwrap_or_else(|| match mode {
                Mode::Serve => PathBuf::from("/var/log/pressluft"),
                Mode::Dev => data_dir.join("logs"),
            });
        let public_ip = r.parse(&PUBLIC_IP, &flags.public_ip, "an IPv4 address", |v| {
            v.parse::<Ipv4Addr>().ok()
        })?;
        let workers = r
            .parse(&WORKERS, &flags.workers, "an integer from 1 to 64", |v| {
                in_range::<usize>(v, 1, 64)
            })?
            .unwrap_or(4);
        let job_timeout_secs = r
            .parse(
                &JOB_TIMEOUT,
                &flags.job_timeout_secs,
                "an integer from 60 to 86400",
                |v| in_range::<u64>(v, 60, 86_400),
            )?
            .unwrap_or(1800);
        let (ansible_dir, ansible_dir_embedded) = match r.path(&ANSIBLE_DIR, &flags.ansible_dir)? {
            Some(dir) => (dir, false),
            None => default_ansible_dir(mode, &data_dir),
        };
        let manage_firewall = r
            .parse(
                &MANAGE_FIREWALL,
                &flags.manage_firewall,
                "true or false",
                parse_bool,
            )?
            .unwrap_or(true);
        let allow_loopback_sources = r
            .parse(
                &ALLOW_LOOPBACK_SOURCES,
                &flags.allow_loopback_sources,
                "true or false",
                parse_bool,
            )?
            .unwrap_or(false);

        let trusted_proxies = r
            .parse(
                &TRUSTED_PROXY,
                &flags.trusted_proxy,
                "IP addresses or CIDR blocks separated by commas, like 127.0.0.1,10.0.0.0/8",
                IpBlock::parse_list,
            )?
            .unwrap_or_default();
        let proxy_socket = r.parse(
            &PROXY_SOCKET,
            &flags.proxy_socket,
            "an absolute path of letters, digits and . _ - / like /run/pressluft/proxy.sock",
            |v| {
                // It is written into the nginx server block: no quoting is ever needed.
                let plain = v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b));
                let p = Path::new(v);
                (plain && p.is_absolute() && p.file_name().is_some()).then(|| p.to_path_buf())
            },
        )?;
        let chromium_path = r
            .parse(
                &CHROMIUM_PATH,
                &flags.chromium_path,
                "an absolute path like /usr/lib/chromium/chromium",
                |v| {
                    let p = Path::new(v);
                    p.is_absolute().then(|| p.to_path_buf())
                },
            )?
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM_PATH));
        Ok(Config {
            mode,
            listen_addr,
            data_dir,
            db_path,
            database_url,
            secrets_dir,
            log_dir,
            public_ip,
            workers,
            job_timeout: Duration::from_secs(job_timeout_secs),
            ansible_dir,
            ansible_dir_embedded,
            manage_firewall,
            allow_loopback_sources,

            trusted_proxies,
            proxy_socket,
            chromium_path,
            node_binary: None,
        })
    }

    /// Resolves against the process environment.
    pub fn from_process_env(mode: Mode, flags: &ConfigFlags) -> Result<Config, ConfigError> {
        Self::resolve(mode, flags, &|k| std::env::var(k).ok())
    }

    /// A configuration for tests: everything under `dir`, port 0 on loopback.
    pub fn for_tests(dir: &Path) -> Config {
        Config {
            mode: Mode::Dev,
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.to_path_buf(),
            db_path: dir.join("pressluft.db"),
            database_url: None,
            secrets_dir: dir.join("secrets"),
            log_dir: dir.join("logs"),
            public_ip: None,
            // Tests drive the engine themselves unless they start workers.
            workers: 0,
            job_timeout: Duration::from_secs(1800),
            ansible_dir: dir.join("ansible"),
            ansible_dir_embedded: true,
            manage_firewall: true,
            allow_loopback_sources: false,

            trusted_proxies: Vec::new(),
            proxy_socket: None,
            chromium_path: PathBuf::from(DEFAULT_CHROMIUM_PATH),
            node_binary: None,
        }
    }

    /// Whether `ip` is a proxy the operator told us to believe.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted_proxies.iter().any(|b| b.contains(ip))
    }
}

/// An IP address or a CIDR block: `127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpBlock {
    addr: IpAddr,
    prefix: u8,
}

impl IpBlock {
    /// One address or block; `None` when unreadable or the prefix is too long.
    pub fn parse(s: &str) -> Option<IpBlock> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().ok()?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max)?
            }
            Some(_) => return None,
        };
        Some(IpBlock { addr, prefix })
    }

    /// A comma-separated list of at least one address or block.
    pub fn parse_list(s: &str) -> Option<Vec<IpBlock>> {
        s.split(',').map(|p| IpBlock::parse(p.trim())).collect()
    }

    /// Whether the block holds `ip` (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for IpBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `./ansible` in `dev` when present (edit playbooks without rebuilding), else the extraction
/// directory of the embedded copy.
fn default_ansible_dir(mode: Mode, data_dir: &Path) -> (PathBuf, bool) {
    let local = PathBuf::from("./ansible");
    if mode == Mode::Dev && local.join("ansible.cfg").is_file() {
        return (local, false);
    }
    (
        data_dir.join("ansible").join(env!("CARGO_PKG_VERSION")),
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn an_explicit_listen_address_is_kept_in_both_modes() {
        for mode in [Mode::Serve, Mode::Dev] {
            let flags = ConfigFlags {
                listen_addr: Some("0.0.0.0:9090".into()),
                ..ConfigFlags::default()
            };
            let c = Config::resolve(mode, &flags, &env_of(&[])).unwrap();
            assert_eq!(c.listen_addr.to_string(), "0.0.0.0:9090", "{mode:?}");
            let env = env_of(&[("PRESSLUFT_LISTEN_ADDR", "0.0.0.0:8080")]);
            let c = Config::resolve(mode, &ConfigFlags::default(), &env).unwrap();
            assert_eq!(c.listen_addr.to_string(), "0.0.0.0:8080", "{mode:?}");
        }
    }

    #[test]
    fn defaults_differ_by_mode() {
        let none = env_of(&[]);
        let serve = Config::resolve(Mode::Serve, &ConfigFlags::default(), &none).unwrap();
        // Issue 15: `serve` listens on loopback only; nginx terminates TLS in front of it.
        assert_eq!(serve.listen_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(
            serve.db_path,
            PathBuf::from("/var/lib/pressluft/pressluft.db")
        );
        assert_eq!(
            serve.secrets_dir,
            PathBuf::from("/var/lib/pressluft/secrets")
        );
        assert_eq!(serve.log_dir, PathBuf::from("/var/log/pressluft"));
        assert_eq!(serve.workers, 4);
        assert_eq!(serve.job_timeout, Duration::from_secs(1800));
        assert!(serve.manage_firewall);
        assert!(!serve.allow_loopback_sources);
        assert_eq!(serve.public_ip, None);

        let dev = Config::resolve(Mode::Dev, &ConfigFlags::default(), &none).unwrap();
        assert_eq!(dev.listen_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(dev.db_path, PathBuf::from("./.pressluft/pressluft.db"));
        assert_eq!(dev.log_dir, PathBuf::from("./.pressluft/logs"));
    }

    #[test]
    fn flag_beats_env_beats_default() {
        let env = env_of(&[
            ("PRESSLUFT_WORKERS", "8"),
            ("PRESSLUFT_DATA_DIR", "/srv/pl"),
        ]);
        let flags = ConfigFlags {
            workers: Some("2".into()),
            ..Default::default()
        };
        let c = Config::resolve(Mode::Serve, &flags, &env).unwrap();
        assert_eq!(c.workers, 2, "flag wins over env");
        assert_eq!(
            c.data_dir,
            PathBuf::from("/srv/pl"),
            "env wins over default"
        );
        assert_eq!(
            c.db_path,
            PathBuf::from("/srv/pl/pressluft.db"),
            "derived from data dir"
        );
        assert_eq!(
            c.job_timeout,
            Duration::from_secs(1800),
            "default when neither is set"
        );
    }

    #[test]
    fn derived_paths_follow_explicit_ones() {
        let env = env_of(&[("PRESSLUFT_DB_PATH", "/tmp/x.db")]);
        let c = Config::resolve(Mode::Dev, &ConfigFlags::default(), &env).unwrap();
        assert_eq!(c.db_path, PathBuf::from("/tmp/x.db"));
        assert_eq!(c.secrets_dir, PathBuf::from("./.pressluft/secrets"));
    }

    /// Issue 17: a PostgreSQL URL selects PostgreSQL; its password shows nowhere.
    #[test]
    fn database_url_is_postgres_only_and_never_shows_its_password() {
        let env = env_of(&[
            ("PRESSLUFT_DB_PATH", "/tmp/x.db"),
            (
                "PRESSLUFT_DATABASE_URL",
                "postgres://pl:s3cret-pw@db.internal:5433/pressluft",
            ),
        ]);
        let c = Config::resolve(Mode::Serve, &ConfigFlags::default(), &env).unwrap();
        let url = c.database_url.as_ref().expect("set");
        assert_eq!(
            url.expose(),
            "postgres://pl:s3cret-pw@db.internal:5433/pressluft"
        );
        assert_eq!(url.redacted(), "postgres://db.internal:5433/pressluft");
        assert!(!format!("{c:?}").contains("s3cret-pw"));

        for bad in [
            "mysql://pl:s3cret-pw@db/x",
            "sqlite:///tmp/x.db",
            "postgres://pl:s3cret-pw@[bad",
        ] {
            let env = env_of(&[("PRESSLUFT_DATABASE_URL", bad)]);
            let err = Config::resolve(Mode::Serve, &ConfigFlags::default(), &env).unwrap_err();
            assert_eq!(err.origin, "PRESSLUFT_DATABASE_URL");
            assert!(!err.to_string().contains("s3cret-pw"), "{err}");
        }
    }

    #[test]
    fn invalid_values_name_their_origin() {
        let env = env_of(&[("PRESSLUFT_WORKERS", "lots")]);
        let err = Config::resolve(Mode::Serve, &ConfigFlags::default(), &env).unwrap_err();
        assert_eq!(err.origin, "PRESSLUFT_WORKERS");
        assert_eq!(
            err.to_string(),
            "invalid PRESSLUFT_WORKERS value \"lots\": an integer from 1 to 64"
        );

        let flags = ConfigFlags {
            listen_addr: Some("localhost".into()),
            ..Default::default()
        };
        let err = Config::resolve(Mode::Serve, &flags, &env_of(&[])).unwrap_err();
        assert_eq!(err.origin, "--listen-addr");

        for (k, v) in [
            ("PRESSLUFT_PUBLIC_IP", "::1"),
            ("PRESSLUFT_JOB_TIMEOUT_SECS", "5"),
            ("PRESSLUFT_MANAGE_FIREWALL", "maybe"),
            ("PRESSLUFT_ALLOW_LOOPBACK_SOURCES", "maybe"),
            ("PRESSLUFT_WORKERS", "0"),
        ] {
            let err = Config::resolve(Mode::Serve, &ConfigFlags::default(), &env_of(&[(k, v)]))
                .unwrap_err();
            assert_eq!(err.origin, k);
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_blocks() {
        let none = Config::resolve(Mode::Serve, &ConfigFlags::default(), &env_of(&[])).unwrap();
        assert!(
            none.trusted_proxies.is_empty(),
            "nobody is trusted by default"
        );
        assert!(!none.is_trusted_proxy("127.0.0.1".parse().unwrap()));

        let env = env_of(&[("PRESSLUFT_TRUSTED_PROXY", "127.0.0.1, 10.0.0.0/8,fd00::/8")]);
        let c = Config::resolve(Mode::Serve, &ConfigFlags::default(), &env).unwrap();
        for ip in ["127.0.0.1", "::ffff:127.0.0.1", "10.200.3.4", "fd12::1"] {
            assert!(c.is_trusted_proxy(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["127.0.0.2", "11.0.0.1", "::1", "fe80::1", "192.168.1.1"] {
            assert!(!c.is_trusted_proxy(ip.parse().unwrap()), "{ip}");
        }
        let all = IpBlock::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));

        for bad in [
            "localhost",
            "10.0.0.0/33",
            "10.0.0.0/",
            "1.2.3.4,",
            "::1/129",
            "10.0.0.0/+8",
        ] {
            let env = env_of(&[("PRESSLUFT_TRUSTED_PROXY", bad)]);
            let err = Config::resolve(Mode::Serve, &ConfigFlags::default(), &env).unwrap_err();
            assert_eq!(err.origin, "PRESSLUFT_TRUSTED_PROXY", "{bad}");
        }
        let flags = ConfigFlags {
            trusted_proxy: Some("192.0.2.1".into()),
            ..Default::default()
        };
        let c = Config::resolve(Mode::Serve, &flags, &env_of(&[])).unwrap();
        assert!(c.is_trusted_proxy("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn proxy_socket_is_an_absolute_path() {
        let none = Config::resolve(Mode::Serve, &ConfigFlags::default(), &env_of(&[])).unwrap();
        assert_eq!(none.proxy_socket, None, "no socket by default");
        let env = env_of(&[("PRESSLUFT_PROXY_SOCKET", "/run/pressluft/proxy.sock")]);
        let c = Config::resolve(Mode::Serve, &ConfigFlags::default(), &env).unwrap();
        assert_eq!(
            c.proxy_socket,
            Some(PathBuf::from("/run/pressluft/proxy.sock"))
        );
        for bad in [
            "proxy.sock",
            "./run/p.sock",
            "/",
            "/run/a b.sock",
            "/run/x;.sock",
        ] {
            let env = env_of(&[("PRESSLUFT_PROXY_SOCKET", bad)]);
            let err = Config::resolve(Mode::Serve, &ConfigFlags::default(), &env).unwrap_err();
            assert_eq!(err.origin, "PRESSLUFT_PROXY_SOCKET", "{bad}");
        }
    }

    #[test]
    fn chromium_path_defaults_to_the_distribution_s_and_must_be_absolute() {
        let c = Config::resolve(Mode::Serve, &ConfigFlags::default(), &env_of(&[])).unwrap();
        assert_eq!(c.chromium_path, PathBuf::from("/usr/lib/chromium/chromium"));
        let env = env_of(&[("PRESSLUFT_CHROMIUM_PATH", "/opt/chrome/chrome")]);
        let flags = ConfigFlags {
            chromium_path: Some("/usr/bin/chromium-x".into()),
            ..ConfigFlags::default()
        };
        let c = Config::resolve(Mode::Serve, &ConfigFlags::default(), &env).unwrap();
        assert_eq!(c.chromium_path, PathBuf::from("/opt/chrome/chrome"));
        let c = Config::resolve(Mode::Serve, &flags, &env).unwrap();
        assert_eq!(
            c.chromium_path,
            PathBuf::from("/usr/bin/chromium-x"),
            "the flag wins"
        );
        let env = env_of(&[("PRESSLUFT_CHROMIUM_PATH", "chromium")]);
        let err = Config::resolve(Mode::Serve, &ConfigFlags::default(), &env).unwrap_err();
        assert_eq!(err.origin, "PRESSLUFT_CHROMIUM_PATH");
    }

    #[test]
    fn accepts_boolean_spellings_and_ipv4() {
        let env = env_of(&[
            ("PRESSLUFT_MANAGE_FIREWALL", "false"),
            ("PRESSLUFT_PUBLIC_IP", "203.0.113.7"),
            ("PRESSLUFT_ALLOW_LOOPBACK_SOURCES", "true"),
        ]);
        let c = Config::resolve(Mode::Serve, &ConfigFlags::default(), &env).unwrap();
        assert!(!c.manage_firewall);
        assert!(c.allow_loopback_sources);
        assert_eq!(c.public_ip, Some(Ipv4Addr::new(203, 0, 113, 7)));
    }
}
