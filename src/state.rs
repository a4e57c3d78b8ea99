//! What every request handler and background task shares.

use std::sync::Arc;

use tokio::sync::watch;

use crate::auth::Auth;
use crate::backups::Backups;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::deploys::Deploys;
use crate::events::Events;
use crate::jobs::Engine;
use crate::nodes::Nodes;
use crate::secrets::Secrets;
use crate::settings::Settings;
use crate::sites::Sites;
use crate::store::Store;

/// Shared application state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub auth: Auth,
    pub clock: SharedClock,
    pub events: Events,
    pub engine: Engine,
    pub nodes: Nodes,
    pub sites: Sites,
    pub backups: Backups,
    pub deploys: Deploys,
    pub deletions: crate::sites::Deletions,
    pub drills: crate::drills::Drills,
    pub safe_updates: crate::safe_updates::SafeUpdates,
    pub domains: crate::domains::Domains,
    pub settings: Settings,
    pub secrets: Secrets,
    /// Open live streams, limited per session and overall.
    pub streams: crate::http::streams::StreamLimits,
    /// Flips to `true` when the server shuts down, so long-lived streams can end.
    pub shutdown: watch::Receiver<bool>,
}
