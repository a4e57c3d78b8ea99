//! Property tests: random nested serialized structures with multibyte strings and SQL-special
//! bytes, embedded in mysqldump INSERT lines, against an independent oracle; A→B→A round trip;
//! chunk-boundary independence; no panic on arbitrary input.

mod common;

use std::io::{self, Read};

use common::*;
use proptest::prelude::*;
use search_replace::{serialized, Replacements, Rewriter};

fn run(r: &Replacements, input: &[u8], chunk: usize) -> (Vec<u8>, search_replace::Report) {
    let mut out = Vec::new();
    let report = Rewriter::new(r.clone())
        .with_chunk_size(chunk)
        .rewrite(input, &mut out)
        .unwrap();
    (out, report)
}

/// A reader that hands out at most `step` bytes per call.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn all_forms(url: &str) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = Replacements::url(url, "x:unused")
        .unwrap()
        .pairs()
        .iter()
        .map(|(f, _)| f.clone())
        .collect();
    v.push(url.as_bytes().to_vec());
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// (a) The output is exactly the oracle's dump: replacements in every string value, keys
    /// and property values; class/property names kept; all `s:<n>:` lengths correct (every
    /// serialized literal of the output parses, nested ones included).
    #[test]
    fn rewrite_matches_oracle(
        (from, rows) in proptest::sample::select(FROMS).prop_flat_map(|f| (Just(f), rows(f, true))),
        to in proptest::sample::select(TOS),
        chunk in prop_oneof![Just(1usize << 20), 16usize..200],
    ) {
        let r = url_pairs(from, to);
        let input = dump(&rows, None);
        let expected = dump(&rows, Some(r.pairs()));
        let (out, report) = run(&r, &input, chunk);
        prop_assert_eq!(&String::from_utf8_lossy(&out), &String::from_utf8_lossy(&expected));
        prop_assert_eq!(out.len() as u64, report.bytes_out);
        prop_assert_eq!(report.warnings_total, 0);
        for v in literals(&out) {
            if serialized::looks_serialized(&v) {
                prop_assert!(serialized::validate_deep(&v).is_ok(), "{}", String::from_utf8_lossy(&v));
            }
        }
    }

    /// (b) Replacing A→B and then B→A restores the input byte for byte when B did not occur.
    #[test]
    fn round_trip_restores_input(
        (from, rows) in proptest::sample::select(FROMS).prop_flat_map(|f| (Just(f), rows(f, false))),
        to in proptest::sample::select(TOS),
        chunk in prop_oneof![Just(1usize << 20), 16usize..300],
    ) {
        let input = dump(&rows, None);
        for form in all_forms(to) {
            prop_assume!(!contains(&input, &form));
        }
        let fwd = url_pairs(from, to);
        let other: Vec<Vec<u8>> = fwd.pairs().iter().map(|(f, _)| f.clone()).filter(|f| !f.starts_with(from.as_bytes()) && !f.starts_with(search_replace::json_escape(from).as_bytes())).collect();
        for o in &other {
            prop_assume!(!contains(&input, o));
        }
        let (mid, rep) = run(&fwd, &input, chunk);
        let back = url_pairs(to, from);
        let (restored, rep2) = run(&back, &mid, chunk);
        prop_assert_eq!(rep.values_changed, rep2.values_changed);
        prop_assert_eq!(&String::from_utf8_lossy(&restored), &String::from_utf8_lossy(&input));
    }

    /// Output does not depend on how the input is split into reads or on the chunk size.
    #[test]
    fn chunking_does_not_matter(
        parts in proptest::collection::vec(prop_oneof![
            3 => proptest::sample::select(vec![
                &b"'"[..], b"\"", b"\\", b"\\'", b"''", b"`", b"-- ", b"--", b"#", b"/*", b"*/", b"/*!", b"/*M!",
                b"x'", b"\n", b"s:", b"a:1:{", b"s:21:\"", b"\";", b"}", b";", b"https://old-site.test",
                b"https:\\\\/\\\\/old-site.test", b"http:\\/\\/old-site.test", b"\\0", "ü".as_bytes(), b"(1,", b"),(",
            ]).prop_map(|s| s.to_vec()),
            1 => proptest::collection::vec(any::<u8>(), 0..10),
        ], 0..80),
        chunk in 16usize..100,
        step in 1usize..13,
    ) {
        let input: Vec<u8> = parts.concat();
        let r = url_pairs("https://old-site.test", "https://n.io");
        let (reference, rep) = run(&r, &input, 1 << 20);
        let (small, rep2) = run(&r, &input, chunk);
        prop_assert_eq!(&reference, &small);
        prop_assert_eq!(rep.warnings, rep2.warnings);
        let mut out = Vec::new();
        Rewriter::new(r).with_chunk_size(chunk).rewrite(Trickle { data: &input, step }, &mut out).unwrap();
        prop_assert_eq!(&reference, &out);
    }

    /// Arbitrary bytes never panic (the deterministic stand-in for the fuzz target).
    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..2000), chunk in 16usize..64) {
        let r = url_pairs("https://a.b", "https://cc.dd");
        let (out, report) = run(&r, &input, chunk);
        prop_assert_eq!(out.len() as u64, report.bytes_out);
        prop_assert_eq!(input.len() as u64, report.bytes_in);
        // Pairs without a usable prefilter key take the slow path for every literal.
        let r = Replacements::new().pair("'", "\\").unwrap().pair("a", "").unwrap();
        let _ = run(&r, &input, chunk);
    }
}

fn small_text() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        proptest::sample::select(vec![b'a', b'b', b'\\', b'\'', b'"', b'\n', b'x', 0u8]),
        0..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// Generic pairs (overlapping, sharing or not sharing a key, with SQL-special bytes):
    /// leftmost-longest replacement equals the naive oracle, in value space and in raw SQL.
    #[test]
    fn generic_pairs_match_oracle(
        pairs in proptest::collection::vec((proptest::collection::vec(proptest::sample::select(vec![b'a', b'b', b'\\', b'\'', b'x']), 1..4), small_text()), 1..5),
        value in small_text(),
    ) {
        let mut r = Replacements::new();
        let mut kept = Vec::new();
        for (f, t) in &pairs {
            if r.add(f, t).is_ok() && f != t {
                kept.push((f.clone(), t.clone()));
            }
        }
        let expected = oracle_replace(&kept, &value);
        let mut out = Vec::new();
        Rewriter::new(r.clone()).rewrite_value(&value, &mut out, &mut Vec::new());
        prop_assert_eq!(&out, &expected);
        let lit = |v: &[u8]| {
            let mut o = b"INSERT INTO t VALUES (1,'".to_vec();
            search_replace::sql::escape_into(v, &mut o);
            o.extend_from_slice(b"');\n");
            o
        };
        let (sql_out, _) = run(&r, &lit(&value), 1 << 20);
        prop_assert_eq!(sql_out, lit(&expected));
    }
}
