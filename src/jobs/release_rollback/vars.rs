//! Variables of `release-rollback.yml`: the [`crate::node_helper::spec::ReleaseRollbackSpec`] the node
//! helper reads, with the secret values among them.

use crate::jobs::kinds::{ResolvedVars, VarsContext, VarsError};
use crate::store::JobRecord;

pub(super) async fn extra_vars(
    _cx: &VarsContext<'_>,
    _job: &JobRecord,
) -> Result<ResolvedVars, VarsError> {
    Err(VarsError::Missing("the rollback variables (not built yet)"))
}
