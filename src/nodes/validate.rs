//! The validation of node input (api.md Nodes): the patterns the API document states, taken
//! as sent.

use std::net::{IpAddr, Ipv4Addr};

use uuid::Uuid;

use crate::services::ServiceError;
use crate::store::nodes::NewNode;

/// Registration input, before validation.
#[derive(Debug, Clone, Default)]
pub struct NodeInput {
    pub name: String,
    pub hostname: String,
    pub public_ip: Option<String>,
    pub ssh_port: Option<i64>,
    pub ssh_user: Option<String>,
    pub is_local: bool,
}

/// A DNS name: labels of `[a-z0-9-]` (1–63, no edge hyphen), at most 253 characters.
pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The SSH user pattern `^[a-z_][a-z0-9_-]{0,31}$`.
pub fn is_ssh_user(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && s.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

impl NodeInput {
    /// Validates every field, naming the first bad one.
    pub fn validate(self) -> Result<NewNode, ServiceError> {
        let name = crate::domain::parse_name(&self.name)
            .ok_or_else(|| ServiceError::invalid("name", crate::domain::NAME_RULE))?;
        // Taken as sent (the dashboard trims its form fields): the API document states these
        // patterns exactly, so the server accepts nothing it does not describe.
        let hostname = self.hostname.to_ascii_lowercase();
        if hostname.parse::<IpAddr>().is_err() && !is_dns_name(&hostname) {
            return Err(ServiceError::invalid(
                "hostname",
                "must be an IP address or a DNS name",
            ));
        }
        let public_ip = match self.public_ip.filter(|s| !s.is_empty()) {
            None => None,
            Some(ip) => Some(
                ip.parse::<Ipv4Addr>()
                    .map_err(|_| ServiceError::invalid("public_ip", "must be an IPv4 address"))?
                    .to_string(),
            ),
        };
        let ssh_port = self.ssh_port.unwrap_or(22);
        if !(1..=65535).contains(&ssh_port) {
            return Err(ServiceError::invalid("ssh_port", "must be from 1 to 65535"));
        }
        let ssh_user = self.ssh_user.unwrap_or_else(|| "root".into());
        if !is_ssh_user(&ssh_user) {
            return Err(ServiceError::invalid(
                "ssh_user",
                "must match ^[a-z_][a-z0-9_-]{0,31}$",
            ));
        }
        Ok(NewNode {
            id: Uuid::new_v4().to_string(),
            name,
            hostname,
            public_ip,
            ssh_port,
            ssh_user,
            is_local: self.is_local,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> NodeInput {
        NodeInput {
            name: "edge-1".into(),
            hostname: "Edge-1.Example.com".into(),
            ..Default::default()
        }
    }

    #[test]
    fn validates_and_normalises() {
        let n = input().validate().unwrap();
        assert_eq!(n.hostname, "edge-1.example.com");
        assert_eq!((n.ssh_port, n.ssh_user.as_str()), (22, "root"));
        let field = |i: NodeInput| match i.validate() {
            Err(e @ ServiceError::Invalid { .. }) => e.field().unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(NodeInput {
                name: " ".into(),
                ..input()
            }),
            "name"
        );
        assert_eq!(
            field(NodeInput {
                hostname: "bad host".into(),
                ..input()
            }),
            "hostname"
        );
        // Taken as sent: the API document's pattern has no room for padding or a root dot.
        for padded in [" x.com", "x.com.", "x.com\n"] {
            assert_eq!(
                field(NodeInput {
                    hostname: padded.into(),
                    ..input()
                }),
                "hostname"
            );
        }
        assert_eq!(
            field(NodeInput {
                name: "a\u{7}b".into(),
                ..input()
            }),
            "name"
        );
        assert_eq!(
            field(NodeInput {
                hostname: "-x.com".into(),
                ..input()
            }),
            "hostname"
        );
        assert_eq!(
            field(NodeInput {
                public_ip: Some("::1".into()),
                ..input()
            }),
            "public_ip"
        );
        assert_eq!(
            field(NodeInput {
                ssh_port: Some(0),
                ..input()
            }),
            "ssh_port"
        );
        assert_eq!(
            field(NodeInput {
                ssh_user: Some("Root".into()),
                ..input()
            }),
            "ssh_user"
        );
        assert!(NodeInput {
            hostname: "10.0.0.5".into(),
            ..input()
        }
        .validate()
        .is_ok());
        assert!(NodeInput {
            hostname: "::1".into(),
            ..input()
        }
        .validate()
        .is_ok());
    }
}
