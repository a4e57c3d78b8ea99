//! `pressluft node …`: the helper commands that run **on a node**, invoked by playbooks
//! (provisioning.md §12). They need no control-plane configuration, database or secrets:
//! input comes from arguments and environment variables, results go to stdout as JSON (or a
//! stream), diagnostics to stderr.

pub mod backup;
pub mod bridge;
pub mod cache;
pub mod database;
pub mod db_copy;
pub mod delete;
pub mod deploy;
pub mod domains;
pub mod drift;
pub mod drill;
pub mod dump_import;
pub mod env_clone;
pub mod env_restore;
pub mod environment;
pub mod fetch;
pub mod files;
pub mod health;
pub mod import;
pub mod magic_login;
pub mod menu_paths;
pub mod nofollow;
pub mod php_fatals;
pub mod process;
pub mod promote;
pub mod releases;
pub mod rollback;
pub mod search_replace;
pub mod services;
pub mod site_create;
pub mod spec;
pub mod switch;
pub mod update;
pub mod users;
pub mod wp_config;
