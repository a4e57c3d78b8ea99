//! The verdicts of a safe-update run, from what its playbook reported (the result file of
//! `safe-update.yml`): the updates found by `update-check`, the `safe-update-shots` answers of
//! the `before` and `after` phases, and the PHP fatal errors found in the temporary
//! environment's log. A page passes when its HTTP status was 200 both times (or did not
//! change), no console error appeared that was not there before, and its changed pixels stay
//! within the threshold (the comparison's own `passed`). Any page failing or any PHP fatal
//! holds the run for a person; otherwise the same versions are applied to production.
//!
//! Pure functions: the job's `on_success` stores what they answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::SafeUpdateOutcome;

/// One update found (and tried): `kind` `core`, `plugin` or `theme`, `id` as `update-check`
/// reports it, the installed and the offered version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoundUpdate {
    pub kind: String,
    pub id: String,
    pub from: String,
    pub to: String,
}

/// The image files of a page in the run's directory (`None`: not taken).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PageImages {
    pub before: Option<String>,
    pub after: Option<String>,
    pub diff: Option<String>,
}

/// One check page's verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PageVerdict {
    pub path: String,
    pub status_before: Option<u16>,
    pub status_after: Option<u16>,
    pub changed_percent: Option<f64>,
    pub passed: bool,
    pub reasons: Vec<String>,
    /// Console errors after the update that were not there before.
    pub console_errors: Vec<String>,
    /// The bounding box of the changed pixels, if any changed.
    pub changed_box: Option<Value>,
    pub images: PageImages,
}

/// What a run decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub outcome: SafeUpdateOutcome,
    pub updates: Vec<FoundUpdate>,
    pub pages: Vec<PageVerdict>,
    pub fatals: Vec<String>,
}

/// The updates `update-check` reported (`{"core": {…}|null, "plugins": […], "themes": […]}`).
pub fn found_updates(available: &Value) -> Vec<FoundUpdate> {
    let one = |kind: &str, u: &Value| -> Option<FoundUpdate> {
        Some(FoundUpdate {
            kind: kind.to_string(),
            id: u["id"].as_str()?.to_string(),
            from: u["current_version"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            to: u["new_version"].as_str()?.to_string(),
        })
    };
    let mut out = Vec::new();
    if available["core"].is_object() {
        out.extend(one("core", &available["core"]));
    }
    for (kind, list) in [("plugin", "plugins"), ("theme", "themes")] {
        for u in available[list].as_array().into_iter().flatten() {
            out.extend(one(kind, u));
        }
    }
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| s.chars().take(300).collect())
        .collect()
}

fn status(v: &Value) -> Option<u16> {
    v.as_u64().and_then(|s| u16::try_from(s).ok())
}

/// A percentage as people read it: `12.3`, `0.04`, `0`.
fn percent(p: f64) -> String {
    if p == 0.0 {
        "0".into()
    } else if p >= 1.0 {
        format!("{p:.1}")
    } else {
        format!("{p:.2}")
    }
}

/// Where on the page the change is, in words: the top of a page is its header.
fn region(changed_box: &Value) -> &'static str {
    let y = changed_box["y"].as_u64();
    let h = changed_box["height"].as_u64();
    match (y, h) {
        (Some(y), Some(h)) if y + h <= 250 => "header",
        (Some(y), _) if y >= 250 => "content below the header",
        _ => "page",
    }
}

/// One page's verdict from its `before` and `after` answers.
pub fn page_verdict(
    index: usize,
    path: &str,
    before: &Value,
    after: &Value,
    threshold: f64,
) -> PageVerdict {
    let mut reasons = Vec::new();
    let status_before = status(&before["status"]);
    let status_after = status(&after["status"]);
    let file = |phase: &str| Some(format!("{index}-{phase}.png"));
    let mut images = PageImages::default();
    if let Some(e) = before["error"].as_str() {
        reasons.push(format!("the page did not load before the update: {e}"));
    } else if !before.is_null() {
        images.before = file("before");
    }
    if let Some(e) = after["error"].as_str() {
        reasons.push(format!("the page did not load after the update: {e}"));
    } else if after.is_null() {
        reasons.push("the page was not checked after the update".into());
    } else {
        images.after = file("after");
        if images.before.is_some() {
            images.diff = file("diff");
        }
    }
    match (status_before, status_after) {
        (Some(200), Some(200)) | (None, None) => {}
        (Some(b), Some(a)) if a == b => {}
        (Some(200), Some(a)) => reasons.push(format!("HTTP {a} after the update")),
        (Some(b), Some(a)) => reasons.push(format!("HTTP {b} before and {a} after the update")),
        _ => {}
    }
    let known = strings(&before["console_errors"]);
    let console_errors: Vec<String> = strings(&after["console_errors"])
        .into_iter()
        .filter(|e| !known.contains(e))
        .collect();
    for e in console_errors.iter().take(5) {
        reasons.push(format!("console error: {e}"));
    }
    let changed_percent = after["changed_percent"].as_f64();
    let changed_box = Some(after["changed_box"].clone()).filter(Value::is_object);
    if let Some(p) = changed_percent {
        let over = after["passed"] == Value::Bool(false) || p > threshold;
        if over && after["error"].is_null() {
            let at = changed_box.as_ref().map_or("page", region);
            reasons.push(format!(
                "{at} changed {} % > {} %",
                percent(p),
                percent(threshold)
            ));
        }
    } else if after["error"].is_null() && !after.is_null() && images.diff.is_some() {
        reasons.push("the page could not be compared".into());
    }
    PageVerdict {
        path: path.to_string(),
        status_before,
        status_after,
        changed_percent,
        passed: reasons.is_empty(),
        reasons,
        console_errors,
        changed_box,
        images,
    }
}

/// The run's decision from the playbook's result. `None` when the result says nothing was
/// checked (`no_updates`).
pub fn decide(result: &Value) -> Decision {
    let updates = found_updates(&result["updates"]);
    if result["outcome"] == "no_updates" || updates.is_empty() {
        return Decision {
            outcome: SafeUpdateOutcome::NoUpdates,
            updates,
            pages: Vec::new(),
            fatals: Vec::new(),
        };
    }
    let threshold = result["threshold_percent"].as_f64().unwrap_or(0.5);
    let before = result["before"]["pages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let after = result["after"]["pages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let pages: Vec<PageVerdict> = result["pages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .enumerate()
        .map(|(i, path)| {
            let b = before.get(i).cloned().unwrap_or(Value::Null);
            let a = after.get(i).cloned().unwrap_or(Value::Null);
            page_verdict(i, path, &b, &a, threshold)
        })
        .collect();
    let fatals: Vec<String> = strings(&result["fatals"]["fatals"])
        .into_iter()
        .take(20)
        .collect();
    let passed = !pages.is_empty() && pages.iter().all(|p| p.passed) && fatals.is_empty();
    Decision {
        outcome: if passed {
            SafeUpdateOutcome::Applied
        } else {
            SafeUpdateOutcome::Held
        },
        updates,
        pages,
        fatals,
    }
}

/// The reasons a held run shows first (fatals, then each failing page's reasons).
pub fn summary(d: &Decision) -> Vec<String> {
    let mut out: Vec<String> = d
        .fatals
        .iter()
        .map(|f| format!("PHP fatal error: {f}"))
        .collect();
    for p in d.pages.iter().filter(|p| !p.passed) {
        out.extend(p.reasons.iter().map(|r| format!("{}: {r}", p.path)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(after: Value, fatals: Value) -> Value {
        json!({
            "outcome": "checked",
            "updates": {"core": null, "plugins": [{"name": "Fixture", "id": "fx/fx.php",
                "current_version": "1.0", "new_version": "1.1"}], "themes": []},
            "pages": ["/", "/about/"],
            "threshold_percent": 0.5,
            "before": {"pages": [
                {"path": "/", "status": 200, "console_errors": ["old"], "error": null},
                {"path": "/about/", "status": 404, "console_errors": [], "error": null}]},
            "after": after,
            "fatals": {"fatals": fatals},
        })
    }

    fn page(status: u16, pct: f64, errors: Value) -> Value {
        json!({"status": status, "console_errors": errors, "changed_percent": pct,
            "passed": pct <= 0.5, "changed_box": if pct > 0.0 {
                json!({"x": 0, "y": 0, "width": 1280, "height": 90}) } else { Value::Null },
            "error": null})
    }

    #[test]
    fn nothing_offered_is_no_updates() {
        let d = decide(&json!({"outcome": "no_updates", "updates": {"core": null,
            "plugins": [], "themes": []}}));
        assert_eq!(d.outcome, SafeUpdateOutcome::NoUpdates);
        assert!(d.updates.is_empty() && d.pages.is_empty());
    }

    #[test]
    fn unchanged_pages_apply() {
        let after = json!({"pages": [page(200, 0.1, json!(["old"])), page(404, 0.0, json!([]))]});
        let d = decide(&result(after, json!([])));
        assert_eq!(d.outcome, SafeUpdateOutcome::Applied, "{:?}", d.pages);
        assert_eq!(
            d.updates,
            vec![FoundUpdate {
                kind: "plugin".into(),
                id: "fx/fx.php".into(),
                from: "1.0".into(),
                to: "1.1".into()
            }]
        );
        assert_eq!(d.pages[0].images.diff.as_deref(), Some("0-diff.png"));
        assert_eq!(d.pages[1].images.before.as_deref(), Some("1-before.png"));
    }

    #[test]
    fn a_visible_change_holds_naming_the_region() {
        let after = json!({"pages": [page(200, 12.34, json!([])), page(404, 0.0, json!([]))]});
        let d = decide(&result(after, json!([])));
        assert_eq!(d.outcome, SafeUpdateOutcome::Held);
        assert_eq!(d.pages[0].reasons, ["header changed 12.3 % > 0.50 %"]);
        assert!(d.pages[1].passed);
    }

    #[test]
    fn status_console_and_fatals_hold() {
        let after = json!({"pages": [page(500, 0.0, json!(["old", "new TypeError"])),
            {"path": "/about/", "error": "timed out", "status": null}]});
        let d = decide(&result(after, json!(["PHP Fatal error: boom in /x.php:3"])));
        assert_eq!(d.outcome, SafeUpdateOutcome::Held);
        assert_eq!(
            d.pages[0].reasons,
            ["HTTP 500 after the update", "console error: new TypeError"]
        );
        assert_eq!(d.pages[0].console_errors, ["new TypeError"]);
        assert_eq!(
            d.pages[1].reasons,
            ["the page did not load after the update: timed out"]
        );
        assert_eq!(d.fatals, ["PHP Fatal error: boom in /x.php:3"]);
        let s = summary(&d);
        assert_eq!(s[0], "PHP fatal error: PHP Fatal error: boom in /x.php:3");
    }

    #[test]
    fn a_fatal_alone_holds() {
        let after = json!({"pages": [page(200, 0.0, json!([])), page(404, 0.0, json!([]))]});
        let d = decide(&result(after, json!(["PHP Fatal error: x"])));
        assert_eq!(d.outcome, SafeUpdateOutcome::Held);
        assert!(d.pages.iter().all(|p| p.passed));
    }
}
