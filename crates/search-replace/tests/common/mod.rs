//! Test support: a model of PHP values, its serializer, proptest strategies, a mysqldump-style
//! dump builder, and an independent oracle for the expected rewrite.
#![allow(dead_code)]

use proptest::prelude::*;
use search_replace::{serialized::looks_serialized, sql, Replacements};

/// A PHP value.
#[derive(Clone, Debug)]
pub enum PVal {
    Null,
    Bool(bool),
    Int(i64),
    /// Quarters, so that the value prints exactly as PHP prints it.
    Float(i32),
    Str(Vec<u8>),
    Arr(Vec<(bool, Vec<u8>, PVal)>), // (string key?, key text, value); keys made unique on output
    Obj(&'static str, Vec<(Vis, Vec<u8>, PVal)>),
    /// A string whose content is the serialization of the inner value (double serialization).
    Ser(Box<PVal>),
}

#[derive(Clone, Copy, Debug)]
pub enum Vis {
    Public,
    Protected,
    Private,
}

pub const CLASSES: &[&str] = &[
    "WC_Session_Data",
    "ActionScheduler_SimpleSchedule",
    "WP_Block_Meta",
    "Ünïcode_Klasse",
];

fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("s:{}:\"", s.len()).as_bytes());
    out.extend_from_slice(s);
    out.extend_from_slice(b"\";");
}

/// PHP `serialize()` of the model.
pub fn serialize(v: &PVal, out: &mut Vec<u8>) {
    match v {
        PVal::Null => out.extend_from_slice(b"N;"),
        PVal::Bool(b) => out.extend_from_slice(if *b { b"b:1;" } else { b"b:0;" }),
        PVal::Int(i) => out.extend_from_slice(format!("i:{i};").as_bytes()),
        PVal::Float(q) => {
            let f = *q as f64 / 4.0;
            if f.fract() == 0.0 {
                out.extend_from_slice(format!("d:{};", f as i64).as_bytes())
            } else {
                out.extend_from_slice(format!("d:{f};").as_bytes())
            }
        }
        PVal::Str(s) => push_str(out, s),
        PVal::Arr(items) => {
            out.extend_from_slice(format!("a:{}:{{", items.len()).as_bytes());
            for (i, (is_str, k, v)) in items.iter().enumerate() {
                if *is_str {
                    let mut key = format!("k{i}_").into_bytes();
                    key.extend_from_slice(k);
                    push_str(out, &key);
                } else {
                    out.extend_from_slice(format!("i:{i};").as_bytes());
                }
                serialize(v, out);
            }
            out.push(b'}');
        }
        PVal::Obj(class, props) => {
            out.extend_from_slice(
                format!("O:{}:\"{}\":{}:{{", class.len(), class, props.len()).as_bytes(),
            );
            for (i, (vis, name, v)) in props.iter().enumerate() {
                let mut n = Vec::new();
                match vis {
                    Vis::Public => {}
                    Vis::Protected => n.extend_from_slice(b"\0*\0"),
                    Vis::Private => {
                        n.push(0);
                        n.extend_from_slice(class.as_bytes());
                        n.push(0);
                    }
                }
                n.extend_from_slice(format!("p{i}_").as_bytes());
                n.extend_from_slice(name);
                push_str(out, &n);
                serialize(v, out);
            }
            out.push(b'}');
        }
        PVal::Ser(inner) => {
            let mut s = Vec::new();
            serialize(inner, &mut s);
            push_str(out, &s);
        }
    }
}

pub fn ser(v: &PVal) -> Vec<u8> {
    let mut out = Vec::new();
    serialize(v, &mut out);
    out
}

/// Naive reference replacement: leftmost, longest `from` first, non-overlapping.
pub fn oracle_replace(pairs: &[(Vec<u8>, Vec<u8>)], s: &[u8]) -> Vec<u8> {
    let mut sorted: Vec<&(Vec<u8>, Vec<u8>)> = pairs.iter().collect();
    sorted.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
    let mut out = Vec::new();
    let mut i = 0;
    'outer: while i < s.len() {
        for (f, t) in &sorted {
            if s[i..].starts_with(f) {
                out.extend_from_slice(t);
                i += f.len();
                continue 'outer;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// The model with replacements applied where the rewriter must apply them.
pub fn transform(pairs: &[(Vec<u8>, Vec<u8>)], v: &PVal) -> PVal {
    match v {
        PVal::Str(s) => PVal::Str(oracle_replace(pairs, s)),
        PVal::Arr(items) => PVal::Arr(
            items
                .iter()
                .map(|(is_str, k, v)| {
                    (
                        *is_str,
                        if *is_str {
                            oracle_replace(pairs, k)
                        } else {
                            k.clone()
                        },
                        transform(pairs, v),
                    )
                })
                .collect(),
        ),
        PVal::Obj(c, props) => PVal::Obj(
            c,
            props
                .iter()
                .map(|(vis, n, v)| (*vis, n.clone(), transform(pairs, v)))
                .collect(),
        ),
        PVal::Ser(inner) => PVal::Ser(Box::new(transform(pairs, inner))),
        other => other.clone(),
    }
}

/// URL pairs used by the property tests: `from`, and `to` of several lengths. All are
/// border-free (no proper suffix equals a prefix), which the round-trip property needs.
pub const FROMS: &[&str] = &[
    "https://old-site.test",
    "https://staging.old-site.test/blog",
    "http://ölo.test",
];
pub const TOS: &[&str] = &[
    "https://www.new-production-domain.example.org",
    "https://n.io",
    "https://bücher.example/shop",
    "http://new-site.test",
];

/// Text fragments for strings. `from` forms appear (exact and JSON-escaped; the other-scheme
/// form only when `other_scheme`), with multibyte text, SQL-special bytes and look-alike syntax.
pub fn fragment(from: &'static str, other_scheme: bool) -> BoxedStrategy<Vec<u8>> {
    let json = search_replace::json_escape(from);
    let other = if let Some(r) = from.strip_prefix("https://") {
        format!("http://{r}")
    } else {
        format!("https://{}", from.strip_prefix("http://").unwrap_or(from))
    };
    let host = from.split("//").nth(1).unwrap_or(from).to_string();
    let mut fixed: Vec<Vec<u8>> = vec![
        from.as_bytes().to_vec(),
        format!("{from}/wp-content/uploads/2024/01/bild-ä.jpg").into_bytes(),
        json.clone().into_bytes(),
        format!("{json}\\/p\\/1").into_bytes(),
        format!("<a href=\"{from}/?p=1\">Link</a>").into_bytes(),
        host.into_bytes(),
        "//".into(),
        "é".into(),
        "日本語".into(),
        "😀".into(),
        "Ω≈ç".into(),
        "'".into(),
        "\"".into(),
        "\\".into(),
        "\\'".into(),
        b"\0".to_vec(),
        "\n".into(),
        "\r\n".into(),
        "\t".into(),
        b"\x1a".to_vec(),
        b"\x08".to_vec(),
        "%_".into(),
        "s:5:\"".into(),
        "a:2:{".into(),
        "\";}".into(),
        "-- ".into(),
        "/*".into(),
        "`".into(),
        " lorem ipsum ".into(),
    ];
    if other_scheme {
        fixed.push(other.clone().into_bytes());
        fixed.push(search_replace::json_escape(&other).into_bytes());
    }
    prop_oneof![
        4 => proptest::sample::select(fixed),
        1 => proptest::collection::vec(any::<u8>(), 0..6),
        1 => "[a-z0-9 .:/]{0,8}".prop_map(|s| s.into_bytes()),
    ]
    .boxed()
}

pub fn text(from: &'static str, other_scheme: bool) -> BoxedStrategy<Vec<u8>> {
    proptest::collection::vec(fragment(from, other_scheme), 0..8)
        .prop_map(|frags| {
            let mut s: Vec<u8> = frags.concat();
            if looks_serialized(&s) {
                s.insert(0, b'x');
            }
            s
        })
        .boxed()
}

pub fn pval(from: &'static str, other_scheme: bool) -> BoxedStrategy<PVal> {
    let leaf = prop_oneof![
        Just(PVal::Null),
        any::<bool>().prop_map(PVal::Bool),
        any::<i64>().prop_map(PVal::Int),
        (-4000i32..4000).prop_map(PVal::Float),
        text(from, other_scheme).prop_map(PVal::Str),
        text(from, other_scheme).prop_map(PVal::Str),
    ];
    leaf.prop_recursive(5, 48, 6, move |inner| {
        let key = text(from, other_scheme);
        let name = text(from, other_scheme);
        prop_oneof![
            proptest::collection::vec((any::<bool>(), key, inner.clone()), 0..6)
                .prop_map(PVal::Arr),
            (
                proptest::sample::select(CLASSES),
                proptest::collection::vec(
                    (
                        prop_oneof![Just(Vis::Public), Just(Vis::Protected), Just(Vis::Private)],
                        name,
                        inner.clone()
                    ),
                    0..5
                )
            )
                .prop_map(|(c, p)| PVal::Obj(c, p)),
            inner.prop_map(|v| PVal::Ser(Box::new(v))),
        ]
    })
    .boxed()
}

/// One cell of a dump row.
#[derive(Clone, Debug)]
pub enum Cell {
    Num(i64),
    Null,
    Plain(Vec<u8>),
    Serialized(PVal),
}

pub fn cell(from: &'static str, other_scheme: bool) -> BoxedStrategy<Cell> {
    prop_oneof![
        1 => any::<i64>().prop_map(Cell::Num),
        1 => Just(Cell::Null),
        3 => text(from, other_scheme).prop_map(Cell::Plain),
        3 => pval(from, other_scheme).prop_map(Cell::Serialized),
    ]
    .boxed()
}

pub fn rows(from: &'static str, other_scheme: bool) -> BoxedStrategy<Vec<Vec<Cell>>> {
    proptest::collection::vec(
        proptest::collection::vec(cell(from, other_scheme), 1..5),
        1..12,
    )
    .boxed()
}

/// Value bytes of a cell, optionally transformed.
pub fn cell_value(c: &Cell, pairs: Option<&[(Vec<u8>, Vec<u8>)]>) -> Option<Vec<u8>> {
    match (c, pairs) {
        (Cell::Plain(s), None) => Some(s.clone()),
        (Cell::Plain(s), Some(p)) => Some(oracle_replace(p, s)),
        (Cell::Serialized(v), None) => Some(ser(v)),
        (Cell::Serialized(v), Some(p)) => Some(ser(&transform(p, v))),
        _ => None,
    }
}

/// A mysqldump-like dump of the rows (header comments, DDL, extended INSERTs of 3 rows),
/// with `pairs` applied by the oracle if given.
pub fn dump(rows: &[Vec<Cell>], pairs: Option<&[(Vec<u8>, Vec<u8>)]>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(
        b"-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64) -- it's https://old-site.test\n\
          /*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n\
          /*!40101 SET NAMES utf8mb4 */;\n\
          /* a comment with a quote ' and https://old-site.test */\n\
          DROP TABLE IF EXISTS `wp_it's`;\n\
          CREATE TABLE `wp_it's` (`a` longtext) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='x';\n\
          LOCK TABLES `wp_it's` WRITE;\n",
    );
    for chunk in rows.chunks(3) {
        out.extend_from_slice(b"INSERT INTO `wp_it's` VALUES ");
        for (ri, row) in chunk.iter().enumerate() {
            if ri > 0 {
                out.push(b',');
            }
            out.push(b'(');
            for (ci, c) in row.iter().enumerate() {
                if ci > 0 {
                    out.push(b',');
                }
                match c {
                    Cell::Num(n) => out.extend_from_slice(n.to_string().as_bytes()),
                    Cell::Null => out.extend_from_slice(b"NULL"),
                    _ => {
                        let v = cell_value(c, pairs).unwrap();
                        out.push(b'\'');
                        sql::escape_into(&v, &mut out);
                        out.push(b'\'');
                    }
                }
            }
            out.push(b')');
        }
        out.extend_from_slice(b";\n");
    }
    out.extend_from_slice(b"UNLOCK TABLES;\n/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;\n-- Dump completed\n");
    out
}

/// String-literal values of a dump produced by [`dump`] (test-side scanner: single quotes,
/// backslash escapes; skips `--` lines, `/* */` comments and backtick identifiers).
pub fn literals(d: &[u8]) -> Vec<Vec<u8>> {
    let mut vals = Vec::new();
    let mut i = 0;
    while i < d.len() {
        match d[i] {
            b'-' if d[i..].starts_with(b"-- ") => {
                i += d[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(d.len() - i, |p| p + 1);
            }
            b'/' if d[i..].starts_with(b"/* ") => {
                i += d[i..].windows(2).position(|w| w == b"*/").unwrap() + 2;
            }
            b'`' => {
                i += 1 + d[i + 1..].iter().position(|&b| b == b'`').unwrap() + 1;
            }
            b'\'' => {
                let start = i + 1;
                let mut j = start;
                while d[j] != b'\'' {
                    j += if d[j] == b'\\' { 2 } else { 1 };
                }
                let mut v = Vec::new();
                sql::unescape_into(&d[start..j], b'\'', &mut v);
                vals.push(v);
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    vals
}

pub fn url_pairs(from: &str, to: &str) -> Replacements {
    Replacements::url(from, to).unwrap()
}

pub fn contains(h: &[u8], n: &[u8]) -> bool {
    h.windows(n.len()).any(|w| w == n)
}
