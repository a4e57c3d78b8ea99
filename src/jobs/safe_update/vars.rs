//! What `safe-update.yml` gets (docs/node-helper.md): filled in with the playbook.

use super::super::kinds::{ResolvedVars, VarsContext, VarsError};
use crate::store::JobRecord;

/// Variables of `safe-update.yml`.
pub(super) async fn extra_vars(
    _cx: &VarsContext<'_>,
    _job: &JobRecord,
) -> Result<ResolvedVars, VarsError> {
    Err(VarsError::Missing("the safe-update playbook's variables"))
}
