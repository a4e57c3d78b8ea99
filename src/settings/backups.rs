//! The `backups` settings group (api.md §7, data-model.md settings): retention, schedule and the
//! S3-compatible bucket with its credentials. Validation here is shared by
//! `PUT /_admin/settings/backups` and the Settings page; the credentials go only to the secrets
//! store (`backup_s3_credentials`), the settings row holds a reference to them.

use crate::backups::storage::S3Credentials;
use crate::services::ServiceError;

use super::invalid;

/// The settings row's value when credentials are stored (data-model.md).
pub const CREDENTIALS_REFERENCE: &str = "secret:backup_s3_credentials";

/// The settings key that refers to the stored credentials.
pub const CREDENTIALS_KEY: &str = "backup_s3_credentials_json";

/// What a save does with the stored S3 credentials.
#[derive(Debug, Default)]
pub enum CredentialsChange {
    /// Omitted (API) or left empty (form): keep what is stored.
    #[default]
    Keep,
    /// `null` (API) or "remove credentials" (form).
    Delete,
    Set(S3Credentials),
}

/// The `backups` group, before validation (`None` or an empty string = unset, the default).
#[derive(Debug, Default)]
pub struct BackupSettings {
    pub backup_retention_days: Option<String>,
    pub backup_schedule_hours: Option<String>,
    pub backup_s3_endpoint: Option<String>,
    pub backup_s3_region: Option<String>,
    pub backup_s3_bucket: Option<String>,
    pub backup_s3_prefix: Option<String>,
    pub backup_s3_credentials: CredentialsChange,
}

/// The group after validation: the values to store (`None` = delete the row: the default).
#[derive(Debug)]
pub struct ValidBackupSettings {
    pub values: [(&'static str, Option<String>); 6],
    pub credentials: CredentialsChange,
}

fn clean(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// A whole number in `range` (as text), or unset; else `settings_invalid` naming `field`.
pub(super) fn integer_in(
    field: &'static str,
    value: Option<String>,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<String>, ServiceError> {
    let Some(v) = clean(value) else {
        return Ok(None);
    };
    let message = format!(
        "must be a whole number from {} to {}",
        range.start(),
        range.end()
    );
    match v.parse::<i64>() {
        Ok(n) if range.contains(&n) && v.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Some(n.to_string()))
        }
        _ => Err(invalid(field, &message)),
    }
}

/// An S3 endpoint: `http(s)://host[:port]` (a trailing `/` is dropped), without credentials,
/// path, query or fragment; the host as for downloads: never link-local, loopback only with
/// `--allow-loopback-sources`.
pub fn validate_endpoint(s: &str, allow_loopback: bool) -> Result<String, &'static str> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters");
    }
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or("must be an http:// or https:// URL")?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('@') {
        return Err("must not contain credentials (use the access key fields)");
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err("the URL has no host");
    }
    if authority.contains(['/', '?', '#', '\\']) {
        return Err("must be scheme://host[:port] without a path");
    }
    let port = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').ok_or("has an invalid IPv6 host")?.1,
        None => authority.find(':').map_or("", |i| &authority[i..]),
    };
    if let Some(port) = port.strip_prefix(':') {
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err("has an invalid port");
        }
    } else if !port.is_empty() {
        return Err("has an invalid host");
    }
    let host = crate::sources::url_host(s).ok_or("the URL has no host")?;
    crate::sources::check_source_host(&host, allow_loopback)?;
    Ok(s.strip_suffix('/').unwrap_or(s).to_string())
}

/// An S3 region name (`us-east-1`, `auto`, `garage`, …).
fn validate_region(s: &str) -> Result<(), &'static str> {
    let ok = s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(())
        .ok_or("must be 1-64 letters, digits, '-' or '_'")
}

/// Amazon's bucket naming rules (which S3-compatible servers accept too): 3-63 characters of
/// lowercase letters, digits, '.' and '-', starting and ending with a letter or digit, no
/// adjacent dots, not an IPv4 address, none of the reserved prefixes and suffixes.
pub fn validate_bucket(s: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&s.len()) {
        return Err("must be 3-63 characters long");
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err("may contain only lowercase letters, digits, '.' and '-'");
    }
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge(s.as_bytes()[0]) || !edge(s.as_bytes()[s.len() - 1]) {
        return Err("must start and end with a letter or digit");
    }
    if s.contains("..") {
        return Err("must not contain two adjacent dots");
    }
    if s.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("must not be formatted as an IP address");
    }
    let reserved_prefix = ["xn--", "sthree-", "amzn-s3-demo-"];
    let reserved_suffix = ["-s3alias", "--ol-s3", "--x-s3", ".mrap", "--table-s3"];
    if reserved_prefix.iter().any(|p| s.starts_with(p))
        || reserved_suffix.iter().any(|x| s.ends_with(x))
    {
        return Err("uses a prefix or suffix reserved by S3");
    }
    Ok(())
}

/// A key prefix inside the bucket: segments of letters, digits, '.', '_' and '-' separated by
/// '/', no '..' segment, no leading '/' (a trailing one is dropped).
pub fn validate_prefix(s: &str) -> Result<String, &'static str> {
    if s.starts_with('/') {
        return Err("must not start with '/'");
    }
    let s = s.strip_suffix('/').unwrap_or(s);
    if s.len() > 200 {
        return Err("must be at most 200 characters");
    }
    for segment in s.split('/') {
        if segment.is_empty() {
            return Err("must not contain empty segments ('//')");
        }
        if segment == ".." || segment == "." {
            return Err("must not contain '.' or '..' segments");
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err("may contain only letters, digits, '.', '_', '-' and '/'");
        }
    }
    Ok(s.to_string())
}

fn validate_credentials(c: &S3Credentials) -> Result<(), &'static str> {
    let id = &c.access_key_id;
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the access key id must be 1-128 visible ASCII characters");
    }
    let key = &c.secret_access_key;
    if key.is_empty() || key.len() > 256 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the secret access key must be 1-256 visible ASCII characters");
    }
    Ok(())
}

impl BackupSettings {
    /// Trims, treats empty strings as unset, validates and normalises. `credentials_stored`
    /// says whether credentials are in the secrets store now (a bucket needs them).
    pub fn validate(
        self,
        allow_loopback: bool,
        credentials_stored: bool,
    ) -> Result<ValidBackupSettings, ServiceError> {
        let retention = integer_in(
            "backup_retention_days",
            self.backup_retention_days,
            1..=3650,
        )?;
        let schedule = integer_in("backup_schedule_hours", self.backup_schedule_hours, 0..=168)?;
        let endpoint = clean(self.backup_s3_endpoint)
            .map(|e| validate_endpoint(&e, allow_loopback))
            .transpose()
            .map_err(|m| invalid("backup_s3_endpoint", m))?;
        let region = clean(self.backup_s3_region);
        if let Some(r) = &region {
            validate_region(r).map_err(|m| invalid("backup_s3_region", m))?;
        }
        let bucket = clean(self.backup_s3_bucket);
        if let Some(b) = &bucket {
            validate_bucket(b).map_err(|m| invalid("backup_s3_bucket", m))?;
        }
        let prefix = clean(self.backup_s3_prefix)
            .map(|p| validate_prefix(&p))
            .transpose()
            .map_err(|m| invalid("backup_s3_prefix", m))?;
        let has_credentials = match &self.backup_s3_credentials {
            CredentialsChange::Keep => credentials_stored,
            CredentialsChange::Delete => false,
            CredentialsChange::Set(c) => {
                validate_credentials(c).map_err(|m| invalid("backup_s3_credentials", m))?;
                true
            }
        };
        if bucket.is_some() && !has_credentials {
            return Err(invalid(
                "backup_s3_credentials",
                "a bucket needs credentials (an access key id and a secret access key)",
            ));
        }
        Ok(ValidBackupSettings {
            values: [
                ("backup_retention_days", retention),
                ("backup_schedule_hours", schedule),
                ("backup_s3_endpoint", endpoint),
                ("backup_s3_region", region),
                ("backup_s3_bucket", bucket),
                ("backup_s3_prefix", prefix),
            ],
            credentials: self.backup_s3_credentials,
        })
    }
}

/// The secret's JSON (`{"access_key_id", "secret_access_key"}`, data-model.md).
pub fn credentials_json(c: &S3Credentials) -> String {
    serde_json::json!({
        "access_key_id": c.access_key_id,
        "secret_access_key": c.secret_access_key,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> CredentialsChange {
        CredentialsChange::Set(S3Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG".into(),
        })
    }

    fn field(s: BackupSettings, stored: bool) -> &'static str {
        match s.validate(false, stored) {
            Err(e) => e.field().expect("a field error"),
            Ok(v) => panic!("accepted: {v:?}"),
        }
    }

    #[test]
    fn each_refusal_names_its_field() {
        #[rustfmt::skip]
        let table = [
            ("backup_retention_days", "0"), ("backup_retention_days", "3651"),
            ("backup_retention_days", "+5"), ("backup_schedule_hours", "169"),
            ("backup_schedule_hours", "-1"), ("backup_schedule_hours", "1.5"),
            ("backup_s3_endpoint", "ftp://s3.test"),
            ("backup_s3_endpoint", "http://169.254.169.254"),
            ("backup_s3_endpoint", "http://127.0.0.1:9900"),
            ("backup_s3_endpoint", "https://u:p@s3.test"),
            ("backup_s3_endpoint", "https://s3.test/path"),
            ("backup_s3_endpoint", "https://s3.test:99999"),
            ("backup_s3_region", "us east"),
            ("backup_s3_bucket", "Upper"), ("backup_s3_bucket", "ab"),
            ("backup_s3_bucket", "a..b"), ("backup_s3_bucket", "192.168.1.1"),
            ("backup_s3_bucket", "xn--abc"), ("backup_s3_bucket", "-abc"),
            ("backup_s3_prefix", "/abs"), ("backup_s3_prefix", "a/../b"),
            ("backup_s3_prefix", "a//b"), ("backup_s3_prefix", "a b"),
        ];
        for (name, value) in table {
            // Each value alone in its field; a bucket comes with credentials.
            let v = Some(value.to_string());
            let mut s = BackupSettings::default();
            match name {
                "backup_retention_days" => s.backup_retention_days = v,
                "backup_schedule_hours" => s.backup_schedule_hours = v,
                "backup_s3_endpoint" => s.backup_s3_endpoint = v,
                "backup_s3_region" => s.backup_s3_region = v,
                "backup_s3_prefix" => s.backup_s3_prefix = v,
                _ => {
                    s.backup_s3_bucket = v;
                    s.backup_s3_credentials = creds();
                }
            }
            assert_eq!(field(s, false), name, "{value}");
        }
        let bucket = || BackupSettings {
            backup_s3_bucket: Some("bk1".into()),
            ..Default::default()
        };
        let with = |access_key_id: &str, secret_access_key: &str| BackupSettings {
            backup_s3_credentials: CredentialsChange::Set(S3Credentials {
                access_key_id: access_key_id.into(),
                secret_access_key: secret_access_key.into(),
            }),
            ..bucket()
        };
        assert_eq!(field(bucket(), false), "backup_s3_credentials");
        assert_eq!(field(with("", "x"), false), "backup_s3_credentials");
        assert_eq!(field(with("id", "a b"), false), "backup_s3_credentials");
        // A stored secret counts; deleting it with a bucket set does not.
        assert!(bucket().validate(false, true).is_ok());
        let delete = BackupSettings {
            backup_s3_credentials: CredentialsChange::Delete,
            ..bucket()
        };
        assert_eq!(field(delete, true), "backup_s3_credentials");
    }

    #[test]
    fn accepted_values_are_normalised() {
        let v = BackupSettings {
            backup_retention_days: Some(" 7 ".into()),
            backup_schedule_hours: Some("0".into()),
            backup_s3_endpoint: Some("http://127.0.0.1:9900/".into()),
            backup_s3_region: Some("".into()),
            backup_s3_bucket: Some("my.bucket-1".into()),
            backup_s3_prefix: Some("pressluft/prod/".into()),
            backup_s3_credentials: creds(),
        }
        .validate(true, false)
        .unwrap();
        let get = |k: &str| {
            v.values
                .iter()
                .find(|(key, _)| *key == k)
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(get("backup_retention_days").as_deref(), Some("7"));
        assert_eq!(get("backup_schedule_hours").as_deref(), Some("0"));
        assert_eq!(
            get("backup_s3_endpoint").as_deref(),
            Some("http://127.0.0.1:9900")
        );
        assert_eq!(get("backup_s3_region"), None);
        assert_eq!(get("backup_s3_prefix").as_deref(), Some("pressluft/prod"));
        assert!(validate_endpoint("https://[::1]:9000", true).is_ok());
        assert!(validate_endpoint("https://s3.eu-central-1.amazonaws.com", false).is_ok());
        assert!(validate_endpoint("http://[fe80::1]", true).is_err());
        // Credentials never show in Debug output.
        assert!(!format!("{v:?}").contains("wJalrXUtnFEMI"));
    }
}
