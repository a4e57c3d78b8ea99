//! Safe automatic updates (issue 16): try the available updates on a throwaway clone of
//! production, compare the check pages before and after visually, and apply to production only
//! what looks the same (docs/decisions.md "Safe updates (issue 16)").
//!
//! [`compare`] is the perceptual pixel diff of two screenshots; [`shots`] drives the system
//! chromium for the control-plane command `pressluft safe-update-shots`.

pub mod compare;
pub mod shots;
