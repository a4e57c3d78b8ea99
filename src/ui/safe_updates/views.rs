//! Safe-update runs as the dashboard shows them. The view models are built from the run's API
//! shape (the contract's run JSON, `GET /api/safe-updates/{id}`), so the page shows exactly what
//! the API answers; and the settings form's text (paths and masks one per line) read into the
//! values `PATCH /api/sites/{id}` takes, with errors under their field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ui::views::short_ts;

/// A masked region as the settings store it (`safe_updates_masks`: path → regions), in pixels
/// of the screenshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct Mask {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// One update a run tried (`kind`, `id`, `from` → `to`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RunUpdate {
    pub kind: String,
    pub id: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl RunUpdate {
    /// `plugin demo/demo.php 1.0 → 1.2`.
    pub fn label(&self) -> String {
        format!(
            "{} {} {} → {}",
            self.kind,
            self.id,
            self.from.as_deref().unwrap_or("?"),
            self.to.as_deref().unwrap_or("?")
        )
    }
}

/// The images of a page: the images endpoint's URLs (`null`: not taken).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PageImages {
    pub before: Option<String>,
    pub after: Option<String>,
    pub diff: Option<String>,
}

/// One check page of a run, as the API answers it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RunPage {
    pub path: String,
    pub status_before: Option<i64>,
    pub status_after: Option<i64>,
    pub changed_percent: Option<f64>,
    pub passed: Option<bool>,
    pub reasons: Vec<String>,
    pub console_errors: Vec<String>,
    pub images: PageImages,
}

/// A run, as the API answers it (unknown fields ignored, missing ones empty).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RunJson {
    pub id: String,
    pub site_id: String,
    pub job_id: Option<String>,
    pub trigger: String,
    pub outcome: String,
    pub updates: Vec<RunUpdate>,
    pub pages: Vec<RunPage>,
    pub fatals: Vec<String>,
    pub temp_environment_id: Option<String>,
    pub apply_job_id: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// The threshold the run compared with, when it says.
    pub threshold_percent: Option<f64>,
    /// Why a failed run failed.
    pub reason: Option<String>,
    /// Not in the API's JSON: the e-mail of `decided_by`, looked up by the page.
    #[serde(skip)]
    pub decided_by_email: Option<String>,
}

impl RunJson {
    /// Reads a run from its API JSON.
    pub fn from_value(v: serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(v)
    }

    /// The run of a stored row exactly as the API answers it
    /// ([`crate::api::safe_updates::SafeUpdateRun`]), read back into the view's shape.
    pub fn from_record(r: &crate::store::safe_updates::SafeUpdateRunRecord) -> Self {
        let api = crate::api::safe_updates::SafeUpdateRun::from(r.clone());
        serde_json::to_value(api)
            .ok()
            .and_then(|v| Self::from_value(v).ok())
            .unwrap_or_else(|| RunJson {
                id: r.id.clone(),
                site_id: r.site_id.clone(),
                outcome: r.outcome.to_string(),
                created_at: r.created_at.clone(),
                ..Default::default()
            })
    }
}

/// The badge class of an outcome (the dashboard's status colours).
pub fn outcome_badge(outcome: &str) -> &'static str {
    match outcome {
        "running" => "running",
        "no_updates" => "passed",
        "applied" | "approved" => "succeeded",
        "held" => "held",
        "dismissed" => "cancelled",
        "failed" => "failed",
        _ => "unknown",
    }
}

/// An outcome in words.
pub fn outcome_words(outcome: &str) -> &'static str {
    match outcome {
        "running" => "Running: trying the updates on a temporary clone…",
        "no_updates" => "Nothing to update.",
        "applied" => {
            "Every page looked the same: the production update job applies the updates tried."
        }
        "held" => "Held for review: production is untouched until someone approves or dismisses.",
        "approved" => "Approved: the production update job applies the updates tried.",
        "dismissed" => "Dismissed: production keeps its versions.",
        "failed" => "The run failed: production is untouched.",
        _ => "",
    }
}

/// One row of a site's run history.
pub struct RunRow {
    pub id: String,
    pub short_id: String,
    pub outcome: String,
    pub badge: &'static str,
    pub trigger: String,
    pub updates: Vec<String>,
    pub started: String,
    pub finished: String,
    pub job_id: String,
}

impl From<&RunJson> for RunRow {
    fn from(r: &RunJson) -> Self {
        RunRow {
            id: r.id.clone(),
            short_id: r.id.chars().take(8).collect(),
            outcome: r.outcome.clone(),
            badge: outcome_badge(&r.outcome),
            trigger: r.trigger.clone(),
            updates: r.updates.iter().map(RunUpdate::label).collect(),
            started: short_ts(Some(&r.created_at)),
            finished: short_ts(r.finished_at.as_deref()),
            job_id: r.job_id.clone().unwrap_or_default(),
        }
    }
}

/// One image of a page: its label and URL (the images endpoint), when the run has it.
pub struct Shot {
    pub label: &'static str,
    /// The file name inside the run's directory.
    pub file: Option<String>,
    pub url: Option<String>,
}

/// One check page of a run's detail.
pub struct PageView {
    pub path: String,
    pub passed: bool,
    pub verdict: &'static str,
    pub status_before: String,
    pub status_after: String,
    /// `12.34 %`, or `—` when not compared.
    pub changed: String,
    pub reasons: Vec<String>,
    pub console_errors: Vec<String>,
    pub shots: Vec<Shot>,
}

/// The file name of an images endpoint URL of run `run_id`, when it is a run image name (one or
/// two digits, `-before`, `-after` or `-diff`, `.png`): anything else is not linked.
pub fn image_file(run_id: &str, url: Option<&str>) -> Option<String> {
    let prefix = format!("/api/safe-updates/{run_id}/images/");
    let file = url?.strip_prefix(&prefix)?;
    image_url(run_id, Some(file)).map(|_| file.to_string())
}

/// The images endpoint's URL of `file`, when `file` is a run image name (digits, `-before`,
/// `-after` or `-diff`, `.png`): anything else is not linked.
pub fn image_url(run_id: &str, file: Option<&str>) -> Option<String> {
    let file = file?;
    let (index, kind) = file.strip_suffix(".png")?.split_once('-')?;
    let index_ok =
        !index.is_empty() && index.len() <= 2 && index.bytes().all(|b| b.is_ascii_digit());
    (index_ok && matches!(kind, "before" | "after" | "diff"))
        .then(|| format!("/api/safe-updates/{run_id}/images/{file}"))
}

fn status_text(s: Option<i64>) -> String {
    s.map(|s| s.to_string()).unwrap_or_else(|| "—".into())
}

impl PageView {
    pub fn new(run_id: &str, p: &RunPage) -> Self {
        let passed = p.passed.unwrap_or(false);
        PageView {
            path: p.path.clone(),
            passed,
            verdict: match p.passed {
                Some(true) => "passed",
                Some(false) => "failed",
                None => "unknown",
            },
            status_before: status_text(p.status_before),
            status_after: status_text(p.status_after),
            changed: p
                .changed_percent
                .map(|c| format!("{c:.2} %"))
                .unwrap_or_else(|| "—".into()),
            reasons: p.reasons.clone(),
            console_errors: p.console_errors.clone(),
            shots: vec![
                Shot {
                    label: "Before",
                    file: image_file(run_id, p.images.before.as_deref()),
                    url: image_url(
                        run_id,
                        image_file(run_id, p.images.before.as_deref()).as_deref(),
                    ),
                },
                Shot {
                    label: "After",
                    file: image_file(run_id, p.images.after.as_deref()),
                    url: image_url(
                        run_id,
                        image_file(run_id, p.images.after.as_deref()).as_deref(),
                    ),
                },
                Shot {
                    label: "Difference",
                    file: image_file(run_id, p.images.diff.as_deref()),
                    url: image_url(
                        run_id,
                        image_file(run_id, p.images.diff.as_deref()).as_deref(),
                    ),
                },
            ],
        }
    }
}

/// `0.5` → `0.5`, `2` → `2` (the threshold as typed back into its field).
pub fn threshold_text(t: f64) -> String {
    let s = format!("{t}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// A form field's refusal: the field's name and the sentence shown under it.
pub type FieldError = (String, String);

/// The check pages textarea: one path per line, blank lines ignored (the service judges the
/// paths themselves).
pub fn parse_paths(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The threshold field: a number (the service judges the range).
pub fn parse_threshold(text: &str) -> Result<f64, FieldError> {
    let t = text.trim();
    t.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            (
                "safe_updates_threshold".into(),
                "must be a number of percent between 0 and 100, e.g. 0.5".into(),
            )
        })
}

/// The window field: empty is "any time".
pub fn parse_window(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// One page's masks textarea (`field` names it for the error): `x,y,width,height` per line,
/// non-negative integers, blank lines ignored. The service judges the ranges.
pub fn parse_masks(field: &str, text: &str) -> Result<Vec<Mask>, FieldError> {
    let mut masks = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let numbers: Option<Vec<u32>> = line
            .split(',')
            .map(|p| p.trim().parse::<u32>().ok())
            .collect();
        match numbers.as_deref() {
            Some([x, y, width, height]) => masks.push(Mask {
                x: *x,
                y: *y,
                width: *width,
                height: *height,
            }),
            _ => {
                return Err((
                    field.to_string(),
                    format!(
                        "line {}: write x,y,width,height as four whole numbers of pixels, e.g. 0,0,1280,90",
                        n + 1
                    ),
                ))
            }
        }
    }
    Ok(masks)
}

/// Masks as their textarea shows them.
pub fn masks_text(masks: &[Mask]) -> String {
    masks
        .iter()
        .map(|m| format!("{},{},{},{}", m.x, m.y, m.width, m.height))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The pages that get a masks textarea: the check pages, or `/` when none are set (the default
/// pages beyond home are found at run time).
pub fn mask_pages(paths: &[String]) -> Vec<String> {
    if paths.is_empty() {
        vec!["/".to_string()]
    } else {
        let mut pages = paths.to_vec();
        if !pages.iter().any(|p| p == "/") {
            pages.insert(0, "/".to_string());
        }
        pages
    }
}

/// The masks of the submitted form, by path: only for the pages of the new paths list (masks of
/// a page removed in the same save go with it).
pub fn collect_masks(
    pages: &[(String, String)],
    new_paths: &[String],
) -> Result<BTreeMap<String, Vec<Mask>>, FieldError> {
    let keep = mask_pages(new_paths);
    let mut out = BTreeMap::new();
    for (i, (path, text)) in pages.iter().enumerate() {
        if !keep.contains(path) {
            continue;
        }
        let masks = parse_masks(&format!("mask_{i}"), text)?;
        if !masks.is_empty() {
            out.insert(path.clone(), masks);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_urls_only_for_run_image_names() {
        assert_eq!(
            image_url("r1", Some("0-before.png")).as_deref(),
            Some("/api/safe-updates/r1/images/0-before.png")
        );
        assert!(image_url("r1", Some("12-diff.png")).is_some());
        for bad in [
            "../0-before.png",
            "0-before.png/../x",
            "123-diff.png",
            "-diff.png",
            "0-other.png",
            "0-before.jpg",
            "a-after.png",
        ] {
            assert!(image_url("r1", Some(bad)).is_none(), "{bad}");
        }
        assert!(image_url("r1", None).is_none());
        assert_eq!(
            image_file("r1", Some("/api/safe-updates/r1/images/3-diff.png")).as_deref(),
            Some("3-diff.png")
        );
        for bad in [
            "/api/safe-updates/r1/images/../0-diff.png",
            "/api/safe-updates/r2/images/0-diff.png",
            "https://evil.example/api/safe-updates/r1/images/0-diff.png",
            "0-diff.png",
        ] {
            assert!(image_file("r1", Some(bad)).is_none(), "{bad}");
        }
    }

    #[test]
    fn masks_read_per_line_and_name_the_bad_line() {
        let m = parse_masks("mask_0", "0,0,1280,90\n\n 10, 20, 30, 40 \n").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!((m[1].x, m[1].y, m[1].width, m[1].height), (10, 20, 30, 40));
        let (field, msg) = parse_masks("mask_1", "0,0,1,1\n1,2,3").unwrap_err();
        assert_eq!(field, "mask_1");
        assert!(msg.starts_with("line 2:"), "{msg}");
        assert!(parse_masks("m", "-1,0,1,1").is_err());
        assert!(parse_masks("m", "a,b,c,d").is_err());
        assert_eq!(masks_text(&m), "0,0,1280,90\n10,20,30,40");
    }

    #[test]
    fn masks_of_removed_pages_go_with_them() {
        let pages = vec![
            ("/".to_string(), "0,0,10,10".to_string()),
            ("/old/".to_string(), "1,1,1,1".to_string()),
        ];
        let m = collect_masks(&pages, &["/new/".to_string()]).unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), vec!["/"]);
    }

    #[test]
    fn threshold_and_paths_read() {
        assert_eq!(parse_threshold(" 0.5 ").unwrap(), 0.5);
        assert!(parse_threshold("abc").is_err());
        assert!(parse_threshold("NaN").is_err());
        assert_eq!(parse_paths("/\n\n /about/ \n"), vec!["/", "/about/"]);
        assert_eq!(threshold_text(2.0), "2");
        assert_eq!(threshold_text(0.5), "0.5");
        assert_eq!(parse_window("  "), None);
    }

    #[test]
    fn a_run_reads_from_its_json() {
        let r = RunJson::from_value(serde_json::json!({
            "id": "abcdef0123", "site_id": "s", "job_id": "j", "trigger": "manual",
            "outcome": "held", "updates": [{"kind": "plugin", "id": "a/a.php", "from": "1.0", "to": "1.2"}],
            "pages": [{"path": "/", "status_before": 200, "status_after": 200, "changed_percent": 12.345,
                       "passed": false, "reasons": ["header changed"], "console_errors": [],
                       "images": {"before": "/api/safe-updates/abcdef0123/images/0-before.png",
                                  "after": "/api/safe-updates/abcdef0123/images/0-after.png",
                                  "diff": "/api/safe-updates/other/images/0-diff.png"}}],
            "fatals": [], "created_at": "2026-12-03T10:00:00.000Z", "extra": 1
        }))
        .unwrap();
        let row = RunRow::from(&r);
        assert_eq!(row.updates, vec!["plugin a/a.php 1.0 → 1.2"]);
        assert_eq!(row.badge, "held");
        let p = PageView::new(&r.id, &r.pages[0]);
        assert_eq!(p.changed, "12.35 %");
        assert!(p.shots[0].url.is_some() && p.shots[1].url.is_some());
        assert_eq!(p.shots[1].file.as_deref(), Some("0-after.png"));
        assert!(
            p.shots[2].url.is_none(),
            "another run's image is not linked"
        );
    }
}
