//! What the resource services ([`crate::nodes`], [`crate::sites`], [`crate::settings`]) share:
//! their one error type ([`ServiceError`]) and the one way they accept a mutation or record its
//! refusal ([`accept::Mutations`]), so that a new action writes its rows and nothing else.

pub mod accept;
pub mod error;

pub use accept::{AuditEntry, JobRequest, Mutation, Mutations};
pub use error::ServiceError;
