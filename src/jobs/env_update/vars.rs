//! Variables of `env-update.yml`: the [`crate::node_helper::spec::EnvUpdateSpec`] the node
//! helper reads, with the secret values among them.

use crate::jobs::kinds::{ResolvedVars, VarsContext, VarsError};
use crate::store::JobRecord;

pub(super) async fn extra_vars(
    _cx: &VarsContext<'_>,
    _job: &JobRecord,
) -> Result<ResolvedVars, VarsError> {
    Err(VarsError::Missing("the update variables (not built yet)"))
}
