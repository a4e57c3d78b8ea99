//! API, dashboard and CLI tests against the real server over real HTTP, one fresh SQLite file
//! per test (one binary, so the suite links once).

mod ansible;
mod auth;
mod browser;
mod cli;
mod dashboard;
mod e2e;
mod e2e_isolation;
mod e2e_sites;
mod errors;
mod events;
mod helpers;
mod jobs;
mod migrations;
mod nodes;
mod openapi;
mod queue;
mod sites;
