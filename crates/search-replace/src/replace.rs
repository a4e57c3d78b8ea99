//! Replacement pairs and the multi-needle matcher.
//!
//! [`Replacements`] holds the `from → to` byte pairs. [`Replacements::url`] derives the forms
//! that backups-restore-promotion.md §8.6 names from one `--from`/`--to` URL pair;
//! [`Replacements::pair`] adds an exact pair for use outside WordPress.
//!
//! The private [`Matcher`] does leftmost-longest, non-overlapping replacement of all pairs in one
//! left-to-right pass, and computes the *prefilter keys*: substrings that must occur verbatim in
//! the raw (still SQL-escaped) bytes of any string literal whose unescaped value contains a
//! needle. Literals without a key are copied without being unescaped.

use std::fmt;

use memchr::memmem::Finder;

/// Bytes whose SQL-escaped form may differ from the byte itself (mysqldump escapes them, or
/// MySQL accepts an escape sequence producing them). A prefilter key never contains one.
pub(crate) fn is_ambiguous(b: u8) -> bool {
    matches!(
        b,
        0 | b'\'' | b'"' | 0x08 | b'\n' | b'\r' | b'\t' | 0x1a | b'\\'
    )
}

/// Error building a [`Replacements`] set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplacementError {
    /// `from` is empty (after stripping trailing slashes, for URLs).
    EmptyFrom,
    /// Two pairs have the same `from` but different `to`.
    Conflict {
        /// The repeated `from` (lossy UTF-8).
        from: String,
    },
}

impl fmt::Display for ReplacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplacementError::EmptyFrom => write!(f, "the `from` value is empty"),
            ReplacementError::Conflict { from } => {
                write!(f, "`{from}` is given twice with different replacements")
            }
        }
    }
}

impl std::error::Error for ReplacementError {}

/// An ordered set of exact byte replacement pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replacements {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Replacements {
    /// An empty set (rewrites nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// The URL rule of backups-restore-promotion.md §8.6.
    ///
    /// Trailing slashes are stripped from both URLs. The matched forms are, each replaced by the
    /// corresponding form of `to`:
    ///
    /// 1. the exact `from` URL → `to`;
    /// 2. its JSON-escaped form (PHP `json_encode` defaults: `/` → `\/`, non-ASCII → `\uXXXX`)
    ///    → the JSON-escaped `to`;
    /// 3. if `from` starts with `http://` or `https://`: the same URL with the other scheme → `to`
    ///    (so `http://old` also becomes `https://new`), and
    /// 4. that other-scheme URL JSON-escaped → the JSON-escaped `to`.
    ///
    /// Forms identical to their replacement are dropped. Matching is case-sensitive, byte-exact
    /// substring matching (as WP-CLI's `search-replace`): `https://a.test` also matches the
    /// prefix of `https://a.test.example`.
    pub fn url(from: &str, to: &str) -> Result<Self, ReplacementError> {
        let from = from.trim_end_matches('/');
        let to = to.trim_end_matches('/');
        if from.is_empty() {
            return Err(ReplacementError::EmptyFrom);
        }
        let mut forms: Vec<String> = vec![from.to_owned()];
        if let Some(rest) = from.strip_prefix("https://") {
            forms.push(format!("http://{rest}"));
        } else if let Some(rest) = from.strip_prefix("http://") {
            forms.push(format!("https://{rest}"));
        }
        let mut set = Replacements::new();
        let json_to = json_escape(to);
        for form in &forms {
            set.add(form.as_bytes(), to.as_bytes())?;
        }
        for form in &forms {
            let json = json_escape(form);
            if json != *form {
                set.add(json.as_bytes(), json_to.as_bytes())?;
            }
        }
        Ok(set)
    }

    /// Adds one exact pair (builder style).
    pub fn pair(
        mut self,
        from: impl AsRef<[u8]>,
        to: impl AsRef<[u8]>,
    ) -> Result<Self, ReplacementError> {
        self.add(from.as_ref(), to.as_ref())?;
        Ok(self)
    }

    /// Adds one exact pair. Identity pairs are ignored; a repeated identical pair is ignored.
    pub fn add(&mut self, from: &[u8], to: &[u8]) -> Result<(), ReplacementError> {
        if from.is_empty() {
            return Err(ReplacementError::EmptyFrom);
        }
        if from == to {
            return Ok(());
        }
        if let Some((_, existing)) = self.pairs.iter().find(|(f, _)| f == from) {
            if existing == to {
                return Ok(());
            }
            return Err(ReplacementError::Conflict {
                from: String::from_utf8_lossy(from).into_owned(),
            });
        }
        self.pairs.push((from.to_vec(), to.to_vec()));
        Ok(())
    }

    /// The pairs, in the order they were added.
    pub fn pairs(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.pairs
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The set with `from` and `to` swapped in every pair (for round-trip tests).
    pub fn reversed(&self) -> Result<Self, ReplacementError> {
        let mut set = Replacements::new();
        for (f, t) in &self.pairs {
            if t.is_empty() {
                return Err(ReplacementError::EmptyFrom);
            }
            set.add(t, f)?;
        }
        Ok(set)
    }
}

/// PHP `json_encode` (default flags) of a string, without the surrounding quotes.
pub fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{:04x}", u));
                }
            }
            c => out.push(c),
        }
    }
    out
}

struct Needle {
    /// `from`, and `from` as mysqldump escapes it (for raw-space matching).
    from: [Vec<u8>; 2],
    /// `to`, and `to` escaped.
    to: [Vec<u8>; 2],
    /// Per-needle finders (used when there is no common key).
    finder: [Finder<'static>; 2],
    /// Offset of the common key's first occurrence in `from` / escaped `from`.
    key_off: [usize; 2],
}

/// Where a haystack comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Space {
    /// An unescaped value.
    Value = 0,
    /// The raw body of a canonically escaped SQL literal: needles are matched in escaped form
    /// and only at escape-token boundaries.
    Raw = 1,
}

/// Multi-needle leftmost-longest matcher plus raw-SQL prefilter keys.
///
/// When all `from`s share a clean substring (the *common key*; for URL pairs the host), one
/// `memmem` pass finds the key and each occurrence is verified against every needle at its
/// fixed offset, instead of one pass per needle.
pub(crate) struct Matcher {
    /// Sorted by `from` length, longest first (tie-break at equal start).
    needles: Vec<Needle>,
    /// Finders for the prefilter keys; `None` means no usable key: every literal is examined.
    keys: Option<Vec<Finder<'static>>>,
    /// The single key shared by all needles, if any.
    common: Option<Finder<'static>>,
    /// Whether every `from` has no ambiguous byte except `\\`, so that plain values of
    /// canonically escaped literals can be rewritten without unescaping (see [`Space::Raw`]).
    raw_ok: bool,
}

impl Matcher {
    pub(crate) fn new(r: &Replacements) -> Self {
        let mut pairs: Vec<&(Vec<u8>, Vec<u8>)> = r.pairs.iter().collect();
        pairs.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        let esc = |v: &[u8]| {
            let mut o = Vec::new();
            crate::sql::escape_into(v, &mut o);
            o
        };
        let froms: Vec<&[u8]> = pairs.iter().map(|(f, _)| f.as_slice()).collect();
        let keys = prefilter_keys(&froms);
        let common = match &keys {
            Some(k) if k.len() == 1 => Some(k[0].clone()),
            _ => None,
        };
        let needles = pairs
            .iter()
            .map(|(f, t)| {
                let ef = esc(f);
                let off = |h: &[u8]| common.as_ref().and_then(|k| k.find(h)).unwrap_or(0);
                Needle {
                    key_off: [off(f), off(&ef)],
                    finder: [Finder::new(f).into_owned(), Finder::new(&ef).into_owned()],
                    from: [f.clone(), ef],
                    to: [t.clone(), esc(t)],
                }
            })
            .collect();
        let raw_ok = froms
            .iter()
            .all(|f| f.iter().all(|&b| b == b'\\' || !is_ambiguous(b)));
        Matcher {
            needles,
            keys,
            common,
            raw_ok,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    pub(crate) fn keys(&self) -> Option<&[Finder<'static>]> {
        self.keys.as_deref()
    }

    pub(crate) fn raw_ok(&self) -> bool {
        self.raw_ok
    }

    /// Whether needle `i` occurs at `s` (in `space`).
    #[inline]
    fn matches_at(&self, hay: &[u8], s: usize, i: usize, space: Space) -> bool {
        hay[s..].starts_with(&self.needles[i].from[space as usize])
            && (space == Space::Value || crate::sql::is_token_start(hay, s))
    }

    /// Leftmost-longest non-overlapping matches of all needles: appends `(start, needle)`.
    /// In [`Space::Raw`] (only valid if [`raw_ok`](Self::raw_ok) and the literal's escapes are
    /// all canonical), a raw occurrence of an escaped `from` counts only if it starts on an
    /// escape-token boundary; those are exactly the value's occurrences of `from`.
    pub(crate) fn find_all(&self, hay: &[u8], space: Space, found: &mut Vec<(usize, usize)>) {
        let sp = space as usize;
        if let Some(key) = &self.common {
            let first = found.len();
            let mut q = 0;
            while let Some(off) = key.find(&hay[q..]) {
                let k = q + off;
                for (i, n) in self.needles.iter().enumerate() {
                    if k >= n.key_off[sp] && self.matches_at(hay, k - n.key_off[sp], i, space) {
                        found.push((k - n.key_off[sp], i));
                    }
                }
                q = k + 1;
            }
            // Candidates are complete; pick leftmost, then longest (lowest index), greedily.
            let cands = &mut found[first..];
            if cands.windows(2).any(|w| w[0] > w[1]) {
                cands.sort_unstable();
            }
            let mut end = 0;
            let mut w = first;
            for r in first..found.len() {
                let (s, i) = found[r];
                if s >= end {
                    end = s + self.needles[i].from[sp].len();
                    found[w] = (s, i);
                    w += 1;
                }
            }
            found.truncate(w);
            return;
        }
        const NONE: usize = usize::MAX;
        let find = |i: usize, from: usize| -> usize {
            let f = &self.needles[i].finder[sp];
            let mut q = from;
            while let Some(off) = f.find(&hay[q..]) {
                let p = q + off;
                if space == Space::Value || crate::sql::is_token_start(hay, p) {
                    return p;
                }
                q = p + 1;
            }
            NONE
        };
        let k = self.needles.len();
        let mut small = [NONE; 8];
        let mut big;
        let next: &mut [usize] = if k <= 8 {
            &mut small[..k]
        } else {
            big = vec![NONE; k];
            &mut big
        };
        for (i, n) in next.iter_mut().enumerate() {
            *n = find(i, 0);
        }
        loop {
            let mut best = NONE;
            let mut best_i = 0;
            for (i, &p) in next.iter().enumerate() {
                if p < best {
                    best = p;
                    best_i = i;
                }
            }
            if best == NONE {
                return;
            }
            found.push((best, best_i));
            let pos = best + self.needles[best_i].from[sp].len();
            for (i, p) in next.iter_mut().enumerate() {
                if *p != NONE && *p < pos {
                    *p = find(i, pos);
                }
            }
        }
    }

    /// Whether `hay` (a value) contains any `from`.
    pub(crate) fn contains_any(&self, hay: &[u8]) -> bool {
        if let Some(key) = &self.common {
            let mut q = 0;
            while let Some(off) = key.find(&hay[q..]) {
                let k = q + off;
                for (i, n) in self.needles.iter().enumerate() {
                    if k >= n.key_off[0] && self.matches_at(hay, k - n.key_off[0], i, Space::Value)
                    {
                        return true;
                    }
                }
                q = k + 1;
            }
            return false;
        }
        self.needles.iter().any(|n| n.finder[0].find(hay).is_some())
    }

    /// Length of `from` and the `to` of needle `i` in `space`.
    pub(crate) fn needle(&self, i: usize, space: Space) -> (usize, &[u8]) {
        let n = &self.needles[i];
        (n.from[space as usize].len(), &n.to[space as usize])
    }

    /// Appends `hay` (a value) with every occurrence replaced to `out`; returns the count.
    /// `scratch` is reused between calls.
    pub(crate) fn replace_into(
        &self,
        hay: &[u8],
        out: &mut Vec<u8>,
        scratch: &mut Vec<(usize, usize)>,
    ) -> usize {
        scratch.clear();
        self.find_all(hay, Space::Value, scratch);
        let mut last = 0;
        for &(p, i) in scratch.iter() {
            let (flen, to) = self.needle(i, Space::Value);
            out.extend_from_slice(&hay[last..p]);
            out.extend_from_slice(to);
            last = p + flen;
        }
        out.extend_from_slice(&hay[last..]);
        scratch.len()
    }
}

/// Maximal runs of non-ambiguous bytes of `s`.
fn clean_runs(s: &[u8]) -> Vec<&[u8]> {
    s.split(|&b| is_ambiguous(b))
        .filter(|r| !r.is_empty())
        .collect()
}

/// Chooses prefilter keys: one substring common to every `from` if a reasonably long one exists
/// (for URL pairs: the host and path segment shared by all forms), else the longest clean run of
/// each `from`. `None` if some `from` has no clean byte at all.
fn prefilter_keys(froms: &[&[u8]]) -> Option<Vec<Finder<'static>>> {
    if froms.is_empty() {
        return Some(Vec::new());
    }
    // Longest common clean substring.
    let mut best: &[u8] = &[];
    for run in clean_runs(froms[0]) {
        for len in (best.len() + 1..=run.len()).rev() {
            let mut found = None;
            for start in 0..=run.len() - len {
                let cand = &run[start..start + len];
                if froms[1..]
                    .iter()
                    .all(|f| memchr::memmem::find(f, cand).is_some())
                {
                    found = Some(cand);
                    break;
                }
            }
            if let Some(c) = found {
                best = c;
                break;
            }
        }
    }
    let shortest_clean = froms
        .iter()
        .map(|f| clean_runs(f).iter().map(|r| r.len()).max().unwrap_or(0))
        .min()
        .unwrap_or(0);
    if !best.is_empty() && (best.len() >= 4 || best.len() >= shortest_clean) {
        return Some(vec![Finder::new(best).into_owned()]);
    }
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for f in froms {
        let run = clean_runs(f).into_iter().max_by_key(|r| r.len())?;
        if !keys.iter().any(|k| k.as_slice() == run) {
            keys.push(run.to_vec());
        }
    }
    Some(keys.iter().map(|k| Finder::new(k).into_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(r: &Replacements) -> Vec<(String, String)> {
        r.pairs()
            .iter()
            .map(|(f, t)| {
                (
                    String::from_utf8(f.clone()).unwrap(),
                    String::from_utf8(t.clone()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn url_variants_follow_spec() {
        let r = Replacements::url("https://old.example.com/", "https://new.example.org//").unwrap();
        assert_eq!(
            pairs(&r),
            vec![
                (
                    "https://old.example.com".into(),
                    "https://new.example.org".into()
                ),
                (
                    "http://old.example.com".into(),
                    "https://new.example.org".into()
                ),
                (
                    "https:\\/\\/old.example.com".into(),
                    "https:\\/\\/new.example.org".into()
                ),
                (
                    "http:\\/\\/old.example.com".into(),
                    "https:\\/\\/new.example.org".into()
                ),
            ]
        );
    }

    #[test]
    fn url_without_scheme_and_identity_dropped() {
        let r = Replacements::url("old.test", "new.test").unwrap();
        assert_eq!(pairs(&r), vec![("old.test".into(), "new.test".into())]);
        // Scheme upgrade: the other-scheme form equals `to` and is dropped.
        let r = Replacements::url("http://a.test", "https://a.test").unwrap();
        assert_eq!(
            pairs(&r),
            vec![
                ("http://a.test".into(), "https://a.test".into()),
                ("http:\\/\\/a.test".into(), "https:\\/\\/a.test".into()),
            ]
        );
        assert_eq!(
            Replacements::url("///", "x"),
            Err(ReplacementError::EmptyFrom)
        );
    }

    #[test]
    fn json_escape_matches_php() {
        assert_eq!(
            json_escape("https://bücher.de/ä"),
            "https:\\/\\/b\\u00fccher.de\\/\\u00e4"
        );
        assert_eq!(json_escape("a\"b\\c😀"), "a\\\"b\\\\c\\ud83d\\ude00");
    }

    #[test]
    fn leftmost_longest_non_overlapping() {
        let r = Replacements::new()
            .pair("ab", "X")
            .unwrap()
            .pair("abc", "Y")
            .unwrap()
            .pair("bcd", "Z")
            .unwrap();
        let m = Matcher::new(&r);
        assert!(m.common.is_none());
        let mut out = Vec::new();
        assert_eq!(
            m.replace_into(b"abcd abd bcd ab", &mut out, &mut Vec::new()),
            4
        );
        assert_eq!(out, b"Yd Xd Z X");
        // With a common key ("b"), the same result through the key strategy.
        let r = Replacements::new()
            .pair("ab", "X")
            .unwrap()
            .pair("abc", "Y")
            .unwrap()
            .pair("b", "Z")
            .unwrap();
        let m = Matcher::new(&r);
        assert!(m.common.is_some());
        let mut out = Vec::new();
        assert_eq!(
            m.replace_into(b"abcd abd bcd ab bb", &mut out, &mut Vec::new()),
            6
        );
        assert_eq!(out, b"Yd Xd Zcd X ZZ");
    }

    #[test]
    fn keys_for_url_forms_are_the_host() {
        let r = Replacements::url("https://old.example.com/sub", "https://x").unwrap();
        let m = Matcher::new(&r);
        let keys = m.keys().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].needle(), b"/old.example.com");
    }

    #[test]
    fn keys_fallback() {
        let r = Replacements::new()
            .pair("abc", "1")
            .unwrap()
            .pair("xyz", "2")
            .unwrap();
        assert_eq!(Matcher::new(&r).keys().unwrap().len(), 2);
        let r = Replacements::new().pair("'", "1").unwrap();
        assert!(Matcher::new(&r).keys().is_none());
    }
}
