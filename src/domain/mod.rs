//! Domain vocabulary shared by every layer: the enums of `data-model.md` and validated value types.
//!
//! Each enum's wire form (JSON, database, query strings) is its snake_case name; the database
//! enforces the same values with CHECK constraints, so the two lists must change together.

mod email;
mod enums;

pub use email::Email;
pub use enums::*;
