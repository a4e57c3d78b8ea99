//! Drift comparison (backups-restore-promotion.md §3–4): what each promotion preset protects
//! and how production's checksums now differ from an environment's clone-time baseline.
//!
//! Pure and shared: the control plane's `drift_check` job compares the checksums its node
//! reported with the stored baseline row, and `env_promote`'s node step re-validates drift on
//! the node with the same function, so the two can never disagree about what "drifted" means.
//! The checksums themselves are computed by `pressluft node drift-checksums` /
//! `drift-check` (src/node_helper/drift.rs), whose JSON output is [`Checksums`]; the
//! `drift_checks` row stores its two halves (`db_checksums_json`, `file_checksums_json`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::PromotionPreset;

/// content-protect's tables (without the table prefix), §4.
const CONTENT_TABLES: &[&str] = &[
    "posts",
    "postmeta",
    "terms",
    "term_taxonomy",
    "term_relationships",
    "comments",
    "commentmeta",
];

/// commerce-protect's tables (without the table prefix), §4: content-protect's, the legacy
/// WooCommerce order tables, WooCommerce's HPOS order tables and the customer accounts.
pub(crate) const COMMERCE_TABLES: &[&str] = &[
    "posts",
    "postmeta",
    "terms",
    "term_taxonomy",
    "term_relationships",
    "comments",
    "commentmeta",
    "woocommerce_orders",
    "woocommerce_order_items",
    "woocommerce_order_itemmeta",
    "wc_customer_lookup",
    "wc_order_stats",
    "wc_orders",
    "wc_orders_meta",
    "wc_order_addresses",
    "wc_order_operational_data",
    "users",
    "usermeta",
];

/// The protected paths of every preset (relative to a release root): uploads are always
/// protected.
const PROTECTED_PATHS: &[&str] = &["wp-content/uploads"];

impl PromotionPreset {
    /// The tables (without the table prefix) a promotion with this preset never overwrites and
    /// a drift check of it compares.
    pub fn protected_tables(self) -> &'static [&'static str] {
        match self {
            PromotionPreset::ContentProtect => CONTENT_TABLES,
            PromotionPreset::CommerceProtect => COMMERCE_TABLES,
        }
    }

    /// The paths (relative to a release root) a promotion never overwrites.
    pub fn protected_paths(self) -> &'static [&'static str] {
        PROTECTED_PATHS
    }

    /// [`Self::protected_tables`] with `prefix` in front: the names the checksums are keyed by.
    pub fn protected_table_names(self, prefix: &str) -> Vec<String> {
        self.protected_tables()
            .iter()
            .map(|t| format!("{prefix}{t}"))
            .collect()
    }
}

/// One table's figures: its row count and its `CHECKSUM TABLE` value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TableChecksum {
    pub rows: u64,
    pub checksum: String,
}

/// Checksums of tables (keyed by the full table name, prefix included; `null` = the table
/// does not exist) and of paths (keyed by the path relative to the release root; the listing
/// digest `sha256:<hex>`). The output of the node helper's drift commands and, split in two,
/// the JSON columns of a `drift_checks` row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksums {
    #[serde(default)]
    pub tables: BTreeMap<String, Option<TableChecksum>>,
    #[serde(default)]
    pub paths: BTreeMap<String, String>,
}

/// What a [`Checksums`] JSON could not be read from.
#[derive(Debug, thiserror::Error)]
#[error("unreadable drift checksums ({what}): {source}")]
pub struct ChecksumsError {
    what: &'static str,
    source: serde_json::Error,
}

impl Checksums {
    /// From a `drift_checks` row's `db_checksums_json` and `file_checksums_json` (either may be
    /// absent: nothing recorded).
    pub fn from_row_json(
        db_checksums_json: Option<&str>,
        file_checksums_json: Option<&str>,
    ) -> Result<Self, ChecksumsError> {
        fn parse<T: serde::de::DeserializeOwned + Default>(
            what: &'static str,
            text: Option<&str>,
        ) -> Result<T, ChecksumsError> {
            match text.map(str::trim) {
                None | Some("") | Some("null") => Ok(T::default()),
                Some(t) => {
                    serde_json::from_str(t).map_err(|source| ChecksumsError { what, source })
                }
            }
        }
        Ok(Checksums {
            tables: parse("tables", db_checksums_json)?,
            paths: parse("paths", file_checksums_json)?,
        })
    }

    /// The `db_checksums_json` column.
    pub fn tables_json(&self) -> String {
        serde_json::to_string(&self.tables).expect("checksums serialize")
    }

    /// The `file_checksums_json` column.
    pub fn paths_json(&self) -> String {
        serde_json::to_string(&self.paths).expect("checksums serialize")
    }

    /// Only what `preset` protects, tables named with `prefix`. A protected table not recorded
    /// here counts as absent (`null`); a protected path not recorded stays unrecorded (it then
    /// differs from a recorded one).
    pub fn for_preset(&self, preset: PromotionPreset, prefix: &str) -> Checksums {
        let tables = preset
            .protected_table_names(prefix)
            .into_iter()
            .map(|name| {
                let value = self.tables.get(&name).cloned().flatten();
                (name, value)
            })
            .collect();
        let paths = preset
            .protected_paths()
            .iter()
            .filter_map(|p| self.paths.get(*p).map(|d| (p.to_string(), d.clone())))
            .collect();
        Checksums { tables, paths }
    }

    /// Only the tables and paths `other` records (a baseline cut down to what a check of one
    /// preset holds).
    pub fn restricted_to(&self, other: &Checksums) -> Checksums {
        Checksums {
            tables: self
                .tables
                .iter()
                .filter(|(k, _)| other.tables.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            paths: self
                .paths
                .iter()
                .filter(|(k, _)| other.paths.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// The table prefix of these checksums: the one for which every protected table name of
    /// content-protect (common to both presets) is a key. `None` when no table was recorded.
    pub fn table_prefix(&self) -> Option<String> {
        let first = CONTENT_TABLES[0];
        self.tables.keys().find_map(|k| {
            let prefix = k.strip_suffix(first)?;
            CONTENT_TABLES
                .iter()
                .all(|t| self.tables.contains_key(&format!("{prefix}{t}")))
                .then(|| prefix.to_string())
        })
    }
}

/// What a difference is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DifferenceKind {
    Table,
    Path,
}

/// One side of a difference: a table's figures or a path's listing digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum DriftValue {
    Table(TableChecksum),
    /// `sha256:<hex>` of the path's listing.
    Path(String),
}

/// A protected table or path that differs between the baseline and now. `baseline` or
/// `current` is `null` when the table (or the path's record) is absent on that side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Difference {
    pub kind: DifferenceKind,
    /// The full table name (prefix included) or the path relative to the release root.
    pub name: String,
    #[schema(required = true)]
    pub baseline: Option<DriftValue>,
    #[schema(required = true)]
    pub current: Option<DriftValue>,
}

impl Difference {
    /// Rows at the baseline and now (tables only; `None` = absent there).
    pub fn rows(&self) -> (Option<u64>, Option<u64>) {
        let rows = |v: &Option<DriftValue>| match v {
            Some(DriftValue::Table(t)) => Some(t.rows),
            _ => None,
        };
        (rows(&self.baseline), rows(&self.current))
    }
}

/// Every table and path of `baseline` or `current` whose figures differ: a table whose row
/// count or checksum differs, or that is absent on one side only (absent on both sides is
/// equal; a key missing from a map counts as absent); a path whose digest differs or that is
/// recorded on one side only. Tables first, then paths, each sorted by name. Restrict both to
/// a preset first ([`Checksums::for_preset`]) to compare only what it protects.
pub fn differences(baseline: &Checksums, current: &Checksums) -> Vec<Difference> {
    let mut out = Vec::new();
    let names: BTreeSet<&String> = baseline
        .tables
        .keys()
        .chain(current.tables.keys())
        .collect();
    for name in names {
        let b = baseline.tables.get(name).cloned().flatten();
        let c = current.tables.get(name).cloned().flatten();
        if b != c {
            out.push(Difference {
                kind: DifferenceKind::Table,
                name: name.clone(),
                baseline: b.map(DriftValue::Table),
                current: c.map(DriftValue::Table),
            });
        }
    }
    let paths: BTreeSet<&String> = baseline.paths.keys().chain(current.paths.keys()).collect();
    for name in paths {
        let b = baseline.paths.get(name);
        let c = current.paths.get(name);
        if b != c {
            out.push(Difference {
                kind: DifferenceKind::Path,
                name: name.clone(),
                baseline: b.cloned().map(DriftValue::Path),
                current: c.cloned().map(DriftValue::Path),
            });
        }
    }
    out
}

/// The drift status of a comparison: `clean` without differences, else `drifted`.
pub fn status_of(differences: &[Difference]) -> super::DriftStatus {
    if differences.is_empty() {
        super::DriftStatus::Clean
    } else {
        super::DriftStatus::Drifted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(rows: u64, checksum: &str) -> Option<TableChecksum> {
        Some(TableChecksum {
            rows,
            checksum: checksum.into(),
        })
    }

    #[test]
    fn the_presets_protect_exactly_the_specified_tables() {
        let content = PromotionPreset::ContentProtect.protected_tables();
        assert_eq!(
            content,
            [
                "posts",
                "postmeta",
                "terms",
                "term_taxonomy",
                "term_relationships",
                "comments",
                "commentmeta"
            ]
        );
        let commerce = PromotionPreset::CommerceProtect.protected_tables();
        assert!(content.iter().all(|t| commerce.contains(t)));
        for hpos in [
            "wc_orders",
            "wc_orders_meta",
            "wc_order_addresses",
            "wc_order_operational_data",
            "woocommerce_orders",
            "woocommerce_order_items",
            "woocommerce_order_itemmeta",
            "wc_customer_lookup",
            "wc_order_stats",
            "users",
            "usermeta",
        ] {
            assert!(commerce.contains(&hpos), "{hpos}");
        }
        assert_eq!(commerce.len(), 18);
        for p in PromotionPreset::ALL {
            assert_eq!(p.protected_paths(), ["wp-content/uploads"]);
        }
        // The clone-time baseline covers both presets (data-model.md).
        let mut union: Vec<&str> = commerce.to_vec();
        union.sort_unstable();
        let mut baseline: Vec<&str> = crate::sites::layout::DRIFT_TABLES.to_vec();
        baseline.sort_unstable();
        assert_eq!(union, baseline);
        assert_eq!(crate::sites::layout::DRIFT_PATHS, PROTECTED_PATHS);
    }

    #[test]
    fn tables_differ_by_rows_checksum_or_presence_and_absent_twice_is_equal() {
        let baseline = Checksums {
            tables: [
                ("wp_posts".to_string(), t(10, "1")),
                ("wp_postmeta".to_string(), t(5, "2")),
                ("wp_wc_orders".to_string(), t(1, "3")),
                ("wp_users".to_string(), None),
                ("wp_usermeta".to_string(), None),
                ("wp_comments".to_string(), t(0, "0")),
            ]
            .into(),
            paths: [("wp-content/uploads".to_string(), "sha256:a".to_string())].into(),
        };
        let current = Checksums {
            tables: [
                ("wp_posts".to_string(), t(11, "9")),
                ("wp_postmeta".to_string(), t(5, "7")),
                ("wp_wc_orders".to_string(), None),
                ("wp_users".to_string(), None),
                ("wp_usermeta".to_string(), t(2, "4")),
                ("wp_comments".to_string(), t(0, "0")),
            ]
            .into(),
            paths: [("wp-content/uploads".to_string(), "sha256:b".to_string())].into(),
        };
        let d = differences(&baseline, &current);
        let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "wp_postmeta",
                "wp_posts",
                "wp_usermeta",
                "wp_wc_orders",
                "wp-content/uploads"
            ]
        );
        assert_eq!(d[1].rows(), (Some(10), Some(11)));
        assert_eq!(d[2].rows(), (None, Some(2)));
        assert_eq!(d[3].rows(), (Some(1), None));
        assert_eq!(d[4].kind, DifferenceKind::Path);
        assert_eq!(
            serde_json::to_value(&d[1]).unwrap(),
            json!({"kind": "table", "name": "wp_posts",
                   "baseline": {"rows": 10, "checksum": "1"},
                   "current": {"rows": 11, "checksum": "9"}})
        );
        assert_eq!(
            serde_json::to_value(&d[4]).unwrap(),
            json!({"kind": "path", "name": "wp-content/uploads",
                   "baseline": "sha256:a", "current": "sha256:b"})
        );
        assert_eq!(status_of(&d), crate::domain::DriftStatus::Drifted);
        assert!(differences(&baseline, &baseline).is_empty());
        assert_eq!(status_of(&[]), crate::domain::DriftStatus::Clean);
        // Round trip through the JSON form of a difference.
        let back: Difference =
            serde_json::from_value(serde_json::to_value(&d[1]).unwrap()).unwrap();
        assert_eq!(back, d[1]);
    }

    #[test]
    fn checksums_read_from_the_row_and_the_helper_output_and_restrict_to_a_preset() {
        let helper = r#"{"tables":{"wp_posts":{"rows":3,"checksum":"77"},"wp_wc_orders":null,
            "wp_postmeta":{"rows":1,"checksum":"5"}},"paths":{"wp-content/uploads":"sha256:e"}}"#;
        let from_helper: Checksums = serde_json::from_str(helper).unwrap();
        let from_row = Checksums::from_row_json(
            Some(&from_helper.tables_json()),
            Some(&from_helper.paths_json()),
        )
        .unwrap();
        assert_eq!(from_row, from_helper);
        assert_eq!(
            Checksums::from_row_json(None, Some("null")).unwrap(),
            Checksums::default()
        );
        assert!(Checksums::from_row_json(Some("{oops"), None).is_err());

        let content = from_row.for_preset(PromotionPreset::ContentProtect, "wp_");
        assert_eq!(content.tables.len(), 7);
        assert!(!content.tables.contains_key("wp_wc_orders"));
        assert_eq!(content.tables["wp_posts"], t(3, "77"));
        assert_eq!(content.tables["wp_comments"], None, "unrecorded = absent");
        assert_eq!(content.paths.len(), 1);
        let commerce = from_row.for_preset(PromotionPreset::CommerceProtect, "wp_");
        assert_eq!(commerce.tables.len(), 18);
        assert!(commerce.tables.contains_key("wp_wc_orders"));
        let cut = commerce.restricted_to(&content);
        assert_eq!(cut.tables.len(), 7);
        assert_eq!(cut, content);
    }

    #[test]
    fn the_table_prefix_is_found_from_the_recorded_names() {
        let names = PromotionPreset::CommerceProtect.protected_table_names("wp7x_");
        let c = Checksums {
            tables: names.into_iter().map(|n| (n, None)).collect(),
            paths: BTreeMap::new(),
        };
        assert_eq!(c.table_prefix().as_deref(), Some("wp7x_"));
        assert_eq!(Checksums::default().table_prefix(), None);
    }
}
