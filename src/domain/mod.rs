//! Domain vocabulary shared by every layer: the enums of `data-model.md` and validated value types.
//!
//! Each enum's wire form (JSON, database, query strings) is its snake_case name; the database
//! enforces the same values with CHECK constraints, so the two lists must change together.

pub mod drift;
mod email;
mod enums;
pub mod hostname;

pub use email::Email;
pub use enums::*;

/// A display name (site, environment, node) as the API documents it (`api::schema::NAME`):
/// 1–100 characters as sent, no control characters, not only whitespace. Returns it trimmed.
pub fn parse_name(raw: &str) -> Option<String> {
    let count = raw.chars().count();
    if count == 0 || count > 100 || raw.chars().any(char::is_control) {
        return None;
    }
    let trimmed = raw.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// The message of a name [`parse_name`] refuses.
pub const NAME_RULE: &str =
    "must have 1 to 100 characters, no control characters, and not only spaces";
