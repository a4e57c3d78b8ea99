//! The one host-name rule (api.md, domains): custom domains and the domain settings
//! (control-plane and preview domain) both accept exactly these names.

/// A lowercase fully qualified domain name: labels of 1–63 `[a-z0-9-]` without an edge hyphen,
/// at least two, at most 253 characters in all, not an IP address (the last label is not
/// numeric), no wildcard. Callers normalise first where the API allows it (custom domains:
/// lower-cased, one trailing dot dropped); the settings take names exactly as sent.
pub fn check_fqdn(host: &str) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("must not be empty");
    }
    if host.contains('*') {
        return Err("must not be a wildcard");
    }
    if host.contains(':') || host.parse::<std::net::IpAddr>().is_ok() {
        return Err("must be a domain name, not an IP address");
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("must be lowercase");
    }
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if host.len() > 253 || labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err("must be a fully qualified domain name (e.g. shop.example.com): labels of a-z, 0-9 and inner hyphens, at least two, at most 253 characters");
    }
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("must be a domain name, not an IP address");
    }
    Ok(())
}

/// Whether `host` is `parent` or a name under it.
pub fn is_under(host: &str, parent: &str) -> bool {
    host == parent
        || host
            .strip_suffix(parent)
            .is_some_and(|rest| rest.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdns() {
        for ok in [
            "shop.example.com",
            "a.b",
            "xn--bcher-kva.example",
            "1shop.example.com",
        ] {
            assert_eq!(check_fqdn(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "localhost",
            "*.example.com",
            "192.0.2.1",
            "::1",
            "Shop.example.com",
            "-a.example.com",
            "a-.example.com",
            "a..example.com",
            "example.123",
            "shop.example.com.",
            "sh op.example.com",
        ] {
            assert!(check_fqdn(bad).is_err(), "{bad}");
        }
        assert!(check_fqdn(&format!("{}.com", "a".repeat(64))).is_err());
        assert!(is_under("a.wp.example.com", "wp.example.com"));
        assert!(is_under("wp.example.com", "wp.example.com"));
        assert!(!is_under("awp.example.com", "wp.example.com"));
    }
}
