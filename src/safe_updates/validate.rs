//! The site's safe-update settings as `PATCH /api/sites/{id}` and the dashboard accept them.
//! Every rule names its field: the window (`HH:MM-HH:MM`, 24 h, UTC, start ≠ end; it may wrap
//! past midnight), the check pages (at most 10 same-site paths), the threshold (0–100 %) and
//! the masks (regions per listed page, integers within the screenshot's bounds). The paths go
//! into a URL the control plane's browser opens, so anything that could leave the site's host
//! or its document root (`//host`, `\`, `..`, control characters) is refused here, not
//! escaped later.

use serde_json::{Map, Value};

use crate::services::ServiceError;

/// At most this many operator-chosen check pages.
pub const MAX_PATHS: usize = 10;
/// At most this long, each.
pub const MAX_PATH_LEN: usize = 200;
/// At most this many masks per page.
pub const MAX_MASKS: usize = 20;
/// Mask coordinates and sizes lie within 0..=this (CSS pixels).
pub const MAX_COORD: u64 = 10_000;

/// A window `HH:MM-HH:MM` as minutes of the UTC day `(start, end)`.
pub fn parse_window(s: &str) -> Result<(u32, u32), &'static str> {
    const MESSAGE: &str = "must be HH:MM-HH:MM (24-hour, UTC) with two different times";
    let (a, b) = s.split_once('-').ok_or(MESSAGE)?;
    let minutes = |t: &str| -> Option<u32> {
        let (h, m) = t.split_once(':')?;
        if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|c| c.is_ascii_digit())
        {
            return None;
        }
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    match (minutes(a), minutes(b)) {
        (Some(a), Some(b)) if a != b => Ok((a, b)),
        _ => Err(MESSAGE),
    }
}

/// Whether `minute` (of the UTC day) lies in the window `[start, end)`, which may wrap.
pub fn in_window((start, end): (u32, u32), minute: u32) -> bool {
    if start < end {
        (start..end).contains(&minute)
    } else {
        minute >= start || minute < end
    }
}

/// One check page's path: `/`-rooted, same host, at most [`MAX_PATH_LEN`] characters.
pub fn check_path(p: &str) -> Result<(), &'static str> {
    if !p.starts_with('/') {
        return Err("each path must start with /");
    }
    if p.len() > MAX_PATH_LEN {
        return Err("each path must be at most 200 characters");
    }
    if p.starts_with("//") {
        return Err("a path must not start with // (another host)");
    }
    if p.contains('\\') {
        return Err("a path must not contain \\");
    }
    if p.contains("..") {
        return Err("a path must not contain ..");
    }
    if p.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("a path must not contain spaces or control characters");
    }
    if p.contains('#') {
        return Err("a path must not contain a fragment (#)");
    }
    Ok(())
}

/// The check pages: a JSON array of at most [`MAX_PATHS`] distinct paths.
pub fn paths(v: &Value) -> Result<Vec<String>, ServiceError> {
    let field = "safe_updates_paths";
    let list = v
        .as_array()
        .ok_or_else(|| ServiceError::invalid(field, "must be an array of paths"))?;
    if list.len() > MAX_PATHS {
        return Err(ServiceError::invalid(field, "at most 10 paths"));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for p in list {
        let p = p
            .as_str()
            .ok_or_else(|| ServiceError::invalid(field, "each path must be a string"))?;
        check_path(p).map_err(|m| ServiceError::invalid(field, m))?;
        if out.iter().any(|q| q == p) {
            return Err(ServiceError::invalid(field, "a path is listed twice"));
        }
        out.push(p.to_string());
    }
    Ok(out)
}

/// The threshold: a number from 0 to 100 (percent of a page's pixels).
pub fn threshold(v: &Value) -> Result<f64, ServiceError> {
    match v.as_f64() {
        Some(t) if (0.0..=100.0).contains(&t) && t.is_finite() => Ok(t),
        _ => Err(ServiceError::invalid(
            "safe_updates_threshold",
            "must be a number from 0 to 100",
        )),
    }
}

/// The masks: `{path: [{x, y, width, height}, …]}` for `/` or a listed path, at most
/// [`MAX_MASKS`] per page, integers within 0..=[`MAX_COORD`], width and height at least 1.
/// Answers the normalized object (only the four keys).
pub fn masks(v: &Value, paths: &[String]) -> Result<Value, ServiceError> {
    let field = "safe_updates_masks";
    let invalid = |m: &str| ServiceError::invalid(field, m);
    let object = v
        .as_object()
        .ok_or_else(|| invalid("must be an object of path: [mask, …]"))?;
    let mut out = Map::new();
    for (path, list) in object {
        if path != "/" && !paths.iter().any(|p| p == path) {
            return Err(invalid(
                "masks are only for / or a path listed in safe_updates_paths",
            ));
        }
        let list = list
            .as_array()
            .ok_or_else(|| invalid("each page's masks must be an array"))?;
        if list.len() > MAX_MASKS {
            return Err(invalid("at most 20 masks per page"));
        }
        let mut masks = Vec::with_capacity(list.len());
        for m in list {
            let m = m
                .as_object()
                .ok_or_else(|| invalid("each mask must be an object {x, y, width, height}"))?;
            if m.keys()
                .any(|k| !["x", "y", "width", "height"].contains(&k.as_str()))
            {
                return Err(invalid("a mask has only x, y, width and height"));
            }
            let mut mask = Map::new();
            for key in ["x", "y", "width", "height"] {
                let n = m
                    .get(key)
                    .and_then(Value::as_u64)
                    .filter(|n| *n <= MAX_COORD);
                let min = if key == "width" || key == "height" {
                    1
                } else {
                    0
                };
                match n {
                    Some(n) if n >= min => {
                        mask.insert(key.into(), n.into());
                    }
                    _ => {
                        return Err(invalid(
                            "x, y, width and height must be whole numbers from 0 to 10000 \
                             (width and height at least 1)",
                        ))
                    }
                }
            }
            masks.push(Value::Object(mask));
        }
        out.insert(path.clone(), Value::Array(masks));
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn windows_are_24_hour_utc_and_may_wrap() {
        assert_eq!(parse_window("02:00-04:30"), Ok((120, 270)));
        assert_eq!(parse_window("22:00-02:00"), Ok((1320, 120)));
        for bad in [
            "2:00-04:00",
            "24:00-01:00",
            "01:60-02:00",
            "01:00-01:00",
            "01:00",
            "",
            "aa:bb-cc:dd",
            "01:00-02:00-03:00",
            "+1:00-02:00",
        ] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
        assert!(in_window((120, 270), 120));
        assert!(!in_window((120, 270), 270));
        assert!(in_window((1320, 120), 1400));
        assert!(in_window((1320, 120), 0));
        assert!(!in_window((1320, 120), 600));
    }

    #[test]
    fn paths_stay_on_the_site() {
        assert_eq!(
            paths(&json!(["/", "/about/", "/shop?x=1"])).unwrap().len(),
            3
        );
        for bad in [
            json!(["about"]),
            json!(["//evil.example/"]),
            json!(["/a\\b"]),
            json!(["/../etc/passwd"]),
            json!(["/a/.."]),
            json!(["/a b"]),
            json!(["/a\u{7}"]),
            json!(["/a#b"]),
            json!(["/", "/"]),
            json!([format!("/{}", "a".repeat(200))]),
            json!(["/1", "/2", "/3", "/4", "/5", "/6", "/7", "/8", "/9", "/10", "/11"]),
            json!("/"),
            json!([1]),
        ] {
            let e = paths(&bad).unwrap_err();
            assert_eq!(e.field(), Some("safe_updates_paths"), "{bad}");
        }
    }

    #[test]
    fn thresholds_are_percentages() {
        assert_eq!(threshold(&json!(0)).unwrap(), 0.0);
        assert_eq!(threshold(&json!(100)).unwrap(), 100.0);
        assert_eq!(threshold(&json!(0.5)).unwrap(), 0.5);
        for bad in [json!(-0.1), json!(100.01), json!("0.5"), json!(null)] {
            assert_eq!(
                threshold(&bad).unwrap_err().field(),
                Some("safe_updates_threshold")
            );
        }
    }

    #[test]
    fn masks_are_bounded_regions_of_listed_pages() {
        let listed = vec!["/about/".to_string()];
        let ok = json!({"/": [{"x": 0, "y": 0, "width": 10, "height": 10}],
            "/about/": [{"x": 10000, "y": 5, "width": 1, "height": 10000}]});
        assert_eq!(masks(&ok, &listed).unwrap(), ok);
        let one = json!({"x": 0, "y": 0, "width": 1, "height": 1});
        for bad in [
            json!({"/other/": [one]}),
            json!({"/": [{"x": -1, "y": 0, "width": 1, "height": 1}]}),
            json!({"/": [{"x": 0, "y": 0, "width": 0, "height": 1}]}),
            json!({"/": [{"x": 0, "y": 0, "width": 1, "height": 10001}]}),
            json!({"/": [{"x": 0.5, "y": 0, "width": 1, "height": 1}]}),
            json!({"/": [{"x": "0", "y": 0, "width": 1, "height": 1}]}),
            json!({"/": [{"x": 0, "y": 0, "width": 1}]}),
            json!({"/": [{"x": 0, "y": 0, "width": 1, "height": 1, "z": 1}]}),
            json!({"/": one}),
            json!({"/": vec![one.clone(); 21]}),
            json!([one]),
        ] {
            assert_eq!(
                masks(&bad, &listed).unwrap_err().field(),
                Some("safe_updates_masks"),
                "{bad}"
            );
        }
    }
}
