//! E-mail addresses as the control plane stores them: trimmed and lower-cased.

use std::fmt;

/// A syntactically plausible e-mail address, normalised to lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Accepts `local@domain.tld`-shaped addresses up to 254 characters, without spaces.
    pub fn parse(raw: &str) -> Result<Email, &'static str> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err("is required");
        }
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must be a valid e-mail address");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err("must be a valid e-mail address");
        };
        let domain_ok = !domain.is_empty()
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.split('.').all(|l| !l.is_empty());
        if local.is_empty() || local.contains('@') || !domain_ok {
            return Err("must be a valid e-mail address");
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`, used as the default display name.
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_space() {
        let e = Email::parse("  Admin@Pressluft.LOCAL ").unwrap();
        assert_eq!(e.as_str(), "admin@pressluft.local");
        assert_eq!(e.local_part(), "admin");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "admin", "@x.y", "a@", "a@.x", "a@x..y", "a b@x.y", "a@x.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Email::parse("admin@localhost").is_ok());
    }
}
