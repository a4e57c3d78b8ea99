//! The validation of site and environment input: names, slugs (api.md Sites).

use crate::services::ServiceError;

/// The slug pattern `^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$`.
pub fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=40).contains(&b.len())
        && ok(&b[0])
        && ok(&b[b.len() - 1])
        && b.iter().all(|c| ok(c) || *c == b'-')
}

/// A slug suggested for a name (the dashboard pre-fills it).
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.truncate(40);
    out.trim_matches('-').to_string()
}

pub(super) fn validate_name(name: &str) -> Result<String, ServiceError> {
    crate::domain::parse_name(name)
        .ok_or_else(|| ServiceError::invalid("name", crate::domain::NAME_RULE))
}

/// Taken as sent (the dashboard trims its form field), as the API document states it.
pub(super) fn validate_slug(slug: &str) -> Result<String, ServiceError> {
    if !is_slug(slug) {
        return Err(ServiceError::invalid(
            "slug",
            "must be 1 to 40 lowercase letters, digits or hyphens, not starting or ending with a hyphen",
        ));
    }
    Ok(slug.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["a", "my-site", "a1", &"x".repeat(40)] {
            assert!(is_slug(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "ä", &"x".repeat(41)] {
            assert!(!is_slug(bad), "{bad}");
        }
        assert_eq!(slugify("  My Shop: Ünïcode & more!"), "my-shop-n-code-more");
        assert_eq!(slugify("---"), "");
    }
}
