//! Pressluft: a self-hosted control plane for WordPress.
//!
//! See ARCHITECTURE.md for the map. In short: [`http`] composes the JSON [`api`] and the
//! dashboard [`ui`]; both call the services ([`auth`]) and read through the [`store`], the
//! only module with SQL; [`events`] turns database changes into live updates.

pub mod api;
pub mod auth;
pub mod backups;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control_plane_tls;
pub mod deploys;
pub mod domain;
pub mod domains;
pub mod drills;
pub mod events;
pub mod http;
pub mod jobs;
pub mod logging;
pub mod magic;
pub mod node_helper;
pub mod nodes;
pub mod safe_updates;
pub mod secrets;
pub mod services;
pub mod settings;
pub mod sites;
pub mod sources;
pub mod startup;
pub mod state;
pub mod store;
pub mod ui;
