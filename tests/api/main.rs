//! API, dashboard and CLI tests against the real server over real HTTP, one fresh SQLite file
//! per test (one binary, so the suite links once).

mod ansible;
mod auth;
mod backup_schedule;
mod browser;
mod cli;
mod dashboard;
mod e2e;
mod e2e_backup_cleanup;
mod e2e_clone_attacks;
mod e2e_health;
mod e2e_injection;
mod e2e_isolation;
mod e2e_sites;
mod errors;
mod events;
mod health_check;
mod helpers;
mod job_states;
mod jobs;
mod login_redirect;
mod migrations;
mod nodes;
mod openapi;
mod proxy_socket;
mod proxy_vhost;
mod queue;
mod sites;
mod sources;
mod stand_in;
mod streams;
mod test_guard;
