//! `pressluft node …`: the helper commands that run **on a node**, invoked by playbooks
//! (provisioning.md §12). They need no control-plane configuration, database or secrets:
//! input comes from arguments and environment variables, results go to stdout as JSON (or a
//! stream), diagnostics to stderr.

pub mod drift;
pub mod search_replace;
