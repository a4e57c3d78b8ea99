//! Source URLs (the WordPress source; later deploy and import archives): where they may point,
//! and how their credentials are hidden.
//!
//! - Credentials in a URL's user-info (`https://user:token@host/…`) are a secret: every API
//!   response, page, job output line and `error_message` shows `***` in their place
//!   ([`redact_userinfo`]).
//! - A source never reaches a link-local address (169.254.0.0/16, fe80::/10: cloud metadata
//!   services) and reaches loopback only when the operator allows it
//!   (`--allow-loopback-sources`); private ranges stay allowed. [`check_source_host`] checks the
//!   host as written, when the setting is saved; the playbook checks the addresses the node
//!   resolves, just before the download (docs/decisions.md).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Replaces the user-info of every `scheme://user-info@host` in `text` with `***`.
pub fn redact_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`' | '\\')
                    || c.is_whitespace()
                    || c.is_control()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) if &authority[..at] != "***" => {
                out.push_str("***");
                out.push_str(&authority[at..]);
                changed = true;
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// The user-info of a URL (`user:password`), if it has one.
pub fn userinfo(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest[..end].rsplit_once('@').map(|(u, _)| u)
}

/// The host of an `http(s)://` URL as written (brackets of an IPv6 literal removed), lowercase,
/// without a trailing dot.
pub fn url_host(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split_once(']')?.0
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// Link-local addresses (IPv4 169.254.0.0/16, IPv6 fe80::/10, and their IPv4-mapped forms).
pub fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.to_ipv4_mapped().is_some_and(|v4| v4.is_link_local())
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Loopback (127.0.0.0/8, ::1) and the unspecified address (which connects to this host).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4 == Ipv4Addr::UNSPECIFIED,
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6 == Ipv6Addr::UNSPECIFIED
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4 == Ipv4Addr::UNSPECIFIED)
        }
    }
}

/// Checks a source URL's host as written: an IP literal must not be link-local (nor loopback
/// unless `allow_loopback`); `localhost` names count as loopback; a host that is not a dotted
/// IPv4 address but whose last label is numeric (`2852039166`, `0xa9fea9fe`, `0251.0376.0.1`,
/// forms the resolver turns into addresses) is refused. Names are resolved later, on the node.
pub fn check_source_host(host: &str, allow_loopback: bool) -> Result<(), &'static str> {
    let loopback_refused =
        "points to a loopback address (allowed only with --allow-loopback-sources)";
    if let Ok(ip) = host.parse::<IpAddr>() {
        if is_link_local(ip) {
            return Err("points to a link-local address (cloud metadata), which is never allowed");
        }
        if is_loopback(ip) && !allow_loopback {
            return Err(loopback_refused);
        }
        return Ok(());
    }
    let last = host.rsplit('.').next().unwrap_or(host);
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (last.starts_with("0x") && last[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        return Err("has a numeric host that is not a dotted IPv4 address");
    }
    if (host == "localhost" || host.ends_with(".localhost")) && !allow_loopback {
        return Err(loopback_refused);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_userinfo_in_text() {
        let cases = [
            (
                "https://u:secret@h.test/a.tgz",
                "https://***@h.test/a.tgz",
            ),
            ("https://token@h.test/a.tgz", "https://***@h.test/a.tgz"),
            (
                "WordPress could not be fetched from https://u:p%40ss@h.test:8443/x?y=1: 401 from http://a:b@c/",
                "WordPress could not be fetched from https://***@h.test:8443/x?y=1: 401 from http://***@c/",
            ),
            ("https://h.test/p@x", "https://h.test/p@x"),
            ("dir:/usr/share/wordpress", "dir:/usr/share/wordpress"),
            ("mail a@b.test", "mail a@b.test"),
            ("'url': 'https://u:pw@h/x'", "'url': 'https://***@h/x'"),
            ("https://***@h.test/x", "https://***@h.test/x"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_userinfo(input), want, "{input}");
        }
        assert!(matches!(redact_userinfo("plain"), Cow::Borrowed(_)));
        assert_eq!(userinfo("https://u:p@h/x"), Some("u:p"));
        assert_eq!(userinfo("https://h/x@y"), None);
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            url_host("https://U:P@Mirror.Test.:8080/x").unwrap(),
            "mirror.test"
        );
        assert_eq!(url_host("http://[fe80::1]:80/x").unwrap(), "fe80::1");
        assert_eq!(
            url_host("http://169.254.169.254/latest").unwrap(),
            "169.254.169.254"
        );
        assert_eq!(url_host("http:///x"), None);
    }

    #[test]
    fn link_local_never_loopback_only_when_allowed_private_always() {
        for bad in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "febf::1",
            "::ffff:169.254.169.254",
            "2852039166",
            "0xa9fea9fe",
            "0251.0376.0251.0376",
        ] {
            assert!(check_source_host(bad, true).is_err(), "{bad}");
        }
        for lo in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "0.0.0.0",
            "localhost",
            "a.localhost",
        ] {
            assert!(check_source_host(lo, false).is_err(), "{lo}");
            assert!(check_source_host(lo, true).is_ok(), "{lo}");
        }
        for ok in [
            "10.0.0.5",
            "192.168.1.10",
            "172.16.0.1",
            "fd00::1",
            "wordpress.org",
            "build.internal",
        ] {
            assert!(check_source_host(ok, false).is_ok(), "{ok}");
        }
    }
}
