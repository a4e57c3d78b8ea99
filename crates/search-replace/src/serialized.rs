//! PHP `serialize()` format: a strict parser that rewrites strings while copying everything else.
//!
//! Grammar accepted (PHP 7.4–8.4 `unserialize`): `N;`, `b:0;`/`b:1;`, `i:<int>;`,
//! `d:<float|INF|-INF|NAN>;`, `s:<bytes>:"…";`, `a:<n>:{<key><value>…}` (keys `i:` or `s:`),
//! `O:<len>:"Class":<n>:{<name><value>…}`, `C:<len>:"Class":<bytes>:{…}`, `E:<len>:"Enum:Case";`,
//! and `r:<n>;`/`R:<n>;` inside containers. Lengths are byte counts; a value parses only if it is
//! consumed completely.
//!
//! Rewriting (spec §8.3): replacements apply to array keys and values and object property values;
//! class names, enum names and property names (including `\0*\0name` and `\0Class\0name`, whose
//! NULs are one byte each) are copied untouched. A string whose content is itself serialized is
//! parsed and rewritten recursively (double serialization), then re-emitted with its new byte
//! length, so inner and outer lengths both change. A nested string that looks serialized but does
//! not parse is kept byte for byte with a warning (§8.4). `C:` payloads are rewritten when they are
//! a sequence of serialized values and otherwise kept (warning if they contain a match).

use std::fmt;

use crate::replace::Matcher;

/// Maximum container/nesting depth; deeper values are treated as unparsable (left untouched).
pub const MAX_DEPTH: usize = 512;

/// Why a value that looks serialized did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerializedError {
    /// Byte offset in the (unescaped) value where parsing failed.
    pub offset: usize,
    /// What was expected there.
    pub reason: &'static str,
}

impl fmt::Display for SerializedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for SerializedError {}

fn err<T>(offset: usize, reason: &'static str) -> Result<T, SerializedError> {
    Err(SerializedError { offset, reason })
}

/// Whether `v` looks like a PHP serialized value (the test that decides between serialized
/// rewriting and plain replacement). Compound values are recognised by their header
/// (`a:<n>:{`, `O:<n>:"`, `C:<n>:"`, `E:<n>:"`, `s:<n>:"`, `S:<n>:"`), scalars and references
/// only if the whole value is one (`i:5;`, `N;`, …), so text like `i:5 reasons` stays plain text.
pub fn looks_serialized(v: &[u8]) -> bool {
    if v.len() < 2 {
        return false;
    }
    match v[0] {
        b'N' => v == b"N;",
        b'b' | b'i' | b'd' => {
            let mut p = 0;
            v[1] == b':' && scalar(v, &mut p).is_ok() && p == v.len()
        }
        b'r' | b'R' => {
            let mut p = 2;
            v[1] == b':' && uint(v, &mut p).is_ok() && v.get(p) == Some(&b';') && p + 1 == v.len()
        }
        b'a' | b'O' | b'C' | b'E' | b's' | b'S' => {
            if v[1] != b':' {
                return false;
            }
            let mut p = 2;
            if uint(v, &mut p).is_err() || v.get(p) != Some(&b':') {
                return false;
            }
            let open = if v[0] == b'a' { b'{' } else { b'"' };
            v.get(p + 1) == Some(&open)
        }
        _ => false,
    }
}

/// Classification of a value from a prefix of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Plain,
    Serialized,
    /// The prefix is too short to decide.
    Unknown,
}

/// [`looks_serialized`] on a prefix of a value (`complete`: the prefix is the whole value).
pub(crate) fn classify_prefix(v: &[u8], complete: bool) -> Kind {
    let verdict = |b: bool| if b { Kind::Serialized } else { Kind::Plain };
    if complete {
        return verdict(looks_serialized(v));
    }
    if v.len() < 2 || v[1] != b':' {
        return Kind::Plain;
    }
    match v[0] {
        b'a' | b'O' | b'C' | b'E' | b's' | b'S' => {
            let digits = v[2..].iter().take_while(|c| c.is_ascii_digit()).count();
            if 2 + digits + 2 > v.len() {
                Kind::Unknown
            } else {
                verdict(looks_serialized(v))
            }
        }
        b'b' | b'i' | b'd' | b'r' | b'R' => Kind::Unknown,
        _ => Kind::Plain,
    }
}

/// Checks that `v` is one complete, well-formed serialized value (all lengths correct).
/// Nested serialized strings are not descended into; see [`validate_deep`].
pub fn validate(v: &[u8]) -> Result<(), SerializedError> {
    let mut p = 0;
    skip_value(v, &mut p, 0, false, &mut |_| Ok(()))?;
    if p != v.len() {
        return err(p, "trailing bytes after value");
    }
    Ok(())
}

/// Like [`validate`], and additionally validates every string content that itself
/// [looks serialized](looks_serialized), recursively.
pub fn validate_deep(v: &[u8]) -> Result<(), SerializedError> {
    fn deep(v: &[u8], depth: usize) -> Result<(), SerializedError> {
        let mut p = 0;
        skip_value(v, &mut p, depth, false, &mut |s| {
            if looks_serialized(s) {
                deep(s, depth + 1)
            } else {
                Ok(())
            }
        })?;
        if p != v.len() {
            return err(p, "trailing bytes after value");
        }
        Ok(())
    }
    deep(v, 0)
}

fn expect(
    s: &[u8],
    p: &mut usize,
    lit: &[u8],
    reason: &'static str,
) -> Result<(), SerializedError> {
    if s.len() >= *p + lit.len() && &s[*p..*p + lit.len()] == lit {
        *p += lit.len();
        Ok(())
    } else {
        err(*p, reason)
    }
}

/// `[0-9]+` as usize.
fn uint(s: &[u8], p: &mut usize) -> Result<usize, SerializedError> {
    let start = *p;
    let mut n: usize = 0;
    while let Some(&c) = s.get(*p) {
        if !c.is_ascii_digit() {
            break;
        }
        n = match n
            .checked_mul(10)
            .and_then(|n| n.checked_add((c - b'0') as usize))
        {
            Some(n) => n,
            None => return err(start, "length out of range"),
        };
        *p += 1;
    }
    if *p == start {
        return err(start, "expected digits");
    }
    Ok(n)
}

/// `N;`, `b:`, `i:`, `d:` — advances past the `;`.
fn scalar(s: &[u8], p: &mut usize) -> Result<(), SerializedError> {
    let start = *p;
    match s.get(start) {
        Some(b'N') => expect(s, p, b"N;", "expected `N;`"),
        Some(b'b') => {
            expect(s, p, b"b:", "expected `b:`")?;
            match s.get(*p) {
                Some(b'0') | Some(b'1') => *p += 1,
                _ => return err(*p, "expected 0 or 1"),
            }
            expect(s, p, b";", "expected `;`")
        }
        Some(b'i') => {
            expect(s, p, b"i:", "expected `i:`")?;
            if matches!(s.get(*p), Some(b'+') | Some(b'-')) {
                *p += 1;
            }
            let d = *p;
            while s.get(*p).is_some_and(|c| c.is_ascii_digit()) {
                *p += 1;
            }
            if *p == d {
                return err(*p, "expected integer");
            }
            expect(s, p, b";", "expected `;`")
        }
        Some(b'd') => {
            expect(s, p, b"d:", "expected `d:`")?;
            let d = *p;
            for special in [&b"INF;"[..], b"-INF;", b"NAN;"] {
                if s[d..].starts_with(special) {
                    *p += special.len();
                    return Ok(());
                }
            }
            while s.get(*p).is_some_and(|&c| {
                c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')
            }) {
                *p += 1;
            }
            if *p == d || !s[d..*p].iter().any(|c| c.is_ascii_digit()) {
                return err(*p, "expected float");
            }
            expect(s, p, b";", "expected `;`")
        }
        _ => err(start, "expected scalar"),
    }
}

/// `s:<n>:"<n bytes>";` — returns the content range, advances past `";`.
fn string_token(s: &[u8], p: &mut usize) -> Result<(usize, usize), SerializedError> {
    expect(s, p, b"s:", "expected `s:`")?;
    let n = uint(s, p)?;
    expect(s, p, b":\"", "expected `:\"`")?;
    sized(
        s,
        p,
        n,
        b"\";",
        "string length runs past the end",
        "string length mismatch (expected `\";`)",
    )
}

/// `<len>:"<len bytes>"` after a type letter and colon — returns the name range.
fn quoted_name(s: &[u8], p: &mut usize) -> Result<(usize, usize), SerializedError> {
    let n = uint(s, p)?;
    expect(s, p, b":\"", "expected `:\"`")?;
    sized(
        s,
        p,
        n,
        b"\"",
        "name length runs past the end",
        "name length mismatch (expected `\"`)",
    )
}

/// `n` bytes from `*p`, then `close`: returns their range and advances past `close`.
fn sized(
    s: &[u8],
    p: &mut usize,
    n: usize,
    close: &[u8],
    past_end: &'static str,
    mismatch: &'static str,
) -> Result<(usize, usize), SerializedError> {
    let start = *p;
    let end = match start.checked_add(n) {
        Some(end) if end <= s.len() => end,
        _ => return err(start, past_end),
    };
    *p = end;
    expect(s, p, close, mismatch)?;
    Ok((start, end))
}

/// A custom object's payload (`n` bytes, then `}`): returns its range.
fn payload(s: &[u8], p: &mut usize, n: usize) -> Result<(usize, usize), SerializedError> {
    sized(
        s,
        p,
        n,
        b"}",
        "custom payload length runs past the end",
        "custom payload length mismatch (expected `}`)",
    )
}

/// Parses one value without output; `on_string` sees each string content that a rewrite would
/// touch (array keys/values, property values), for deep validation.
/// A container's header after its type letter: `:<n>:{` (array) or `:"<class>":<n>:{`
/// (`named`: object, custom object); returns `n`.
fn container_header(s: &[u8], p: &mut usize, named: bool) -> Result<usize, SerializedError> {
    *p += 1;
    expect(s, p, b":", "expected `:`")?;
    if named {
        quoted_name(s, p)?;
        expect(s, p, b":", "expected `:`")?;
    }
    let n = uint(s, p)?;
    expect(s, p, b":{", "expected `:{`")?;
    Ok(n)
}

fn skip_value(
    s: &[u8],
    p: &mut usize,
    depth: usize,
    in_container: bool,
    on_string: &mut dyn FnMut(&[u8]) -> Result<(), SerializedError>,
) -> Result<(), SerializedError> {
    if depth > MAX_DEPTH {
        return err(*p, "nesting too deep");
    }
    match s.get(*p) {
        Some(b'N') | Some(b'b') | Some(b'i') | Some(b'd') => scalar(s, p),
        Some(b'r') | Some(b'R') if in_container => {
            *p += 1;
            expect(s, p, b":", "expected `:`")?;
            uint(s, p)?;
            expect(s, p, b";", "expected `;`")
        }
        Some(b's') => {
            let (cs, ce) = string_token(s, p)?;
            on_string(&s[cs..ce])
        }
        Some(b'E') => {
            *p += 1;
            expect(s, p, b":", "expected `:`")?;
            quoted_name(s, p)?;
            expect(s, p, b";", "expected `;`")
        }
        Some(b'a') => {
            let n = container_header(s, p, false)?;
            for _ in 0..n {
                match s.get(*p) {
                    Some(b'i') => scalar(s, p)?,
                    Some(b's') => {
                        let (cs, ce) = string_token(s, p)?;
                        on_string(&s[cs..ce])?;
                    }
                    _ => return err(*p, "expected array key (`i:` or `s:`)"),
                }
                skip_value(s, p, depth + 1, true, on_string)?;
            }
            expect(s, p, b"}", "expected `}` (element count mismatch)")
        }
        Some(b'O') => {
            let n = container_header(s, p, true)?;
            for _ in 0..n {
                match s.get(*p) {
                    Some(b'i') => scalar(s, p)?,
                    Some(b's') => {
                        string_token(s, p)?;
                    }
                    _ => return err(*p, "expected property name (`s:` or `i:`)"),
                }
                skip_value(s, p, depth + 1, true, on_string)?;
            }
            expect(s, p, b"}", "expected `}` (property count mismatch)")
        }
        Some(b'C') => {
            let n = container_header(s, p, true)?;
            payload(s, p, n).map(drop)
        }
        Some(_) => err(*p, "unknown type"),
        None => err(*p, "unexpected end"),
    }
}

/// What happened to one string value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Output equals input.
    Unchanged,
    /// Plain substring replacement changed it.
    Plain,
    /// Parsed as serialized and rewritten.
    Serialized,
    /// Looked serialized, contained a match, did not parse: copied untouched.
    Untouched(SerializedError),
}

/// The rewriting parser. Holds scratch buffers reused across values.
pub(crate) struct SerRewriter {
    pub(crate) replacements: usize,
    /// Warnings for nested look-alikes and opaque payloads within the current value.
    pub(crate) notes: Vec<String>,
    pool: Vec<Vec<u8>>,
    found: Vec<(usize, usize)>,
}

impl SerRewriter {
    pub(crate) fn new() -> Self {
        SerRewriter {
            replacements: 0,
            notes: Vec::new(),
            pool: Vec::new(),
            found: Vec::new(),
        }
    }

    fn take_buf(&mut self) -> Vec<u8> {
        let mut b = self.pool.pop().unwrap_or_default();
        b.clear();
        b
    }

    fn give_buf(&mut self, b: Vec<u8>) {
        if b.capacity() <= 1 << 20 {
            self.pool.push(b);
        }
    }

    /// Processes one string value `v` (top level or nested), appending the result to `out`.
    pub(crate) fn process(
        &mut self,
        m: &Matcher,
        v: &[u8],
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Outcome {
        if !m.contains_any(v) {
            out.extend_from_slice(v);
            return Outcome::Unchanged;
        }
        if looks_serialized(v) {
            let mark = out.len();
            let (reps, notes) = (self.replacements, self.notes.len());
            let mut p = 0;
            let r = self.value(m, v, &mut p, out, depth, false).and_then(|()| {
                if p == v.len() {
                    Ok(())
                } else {
                    err(p, "trailing bytes after value")
                }
            });
            match r {
                Ok(()) if out[mark..] == *v => Outcome::Unchanged,
                Ok(()) => Outcome::Serialized,
                Err(e) => {
                    out.truncate(mark);
                    out.extend_from_slice(v);
                    self.replacements = reps;
                    self.notes.truncate(notes);
                    Outcome::Untouched(e)
                }
            }
        } else {
            self.replacements += m.replace_into(v, out, &mut self.found);
            Outcome::Plain
        }
    }

    /// A string token whose content gets processed (array key/value, property value).
    fn string(
        &mut self,
        m: &Matcher,
        s: &[u8],
        p: &mut usize,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), SerializedError> {
        let start = *p;
        let (cs, ce) = string_token(s, p)?;
        let content = &s[cs..ce];
        if !m.contains_any(content) {
            out.extend_from_slice(&s[start..*p]);
            return Ok(());
        }
        let mut tmp = self.take_buf();
        if let Outcome::Untouched(e) = self.process(m, content, &mut tmp, depth + 1) {
            self.notes.push(format!(
                "nested string at byte {cs} looks serialized but does not parse ({e}); left untouched"
            ));
        }
        out.extend_from_slice(b"s:");
        out.extend_from_slice(tmp.len().to_string().as_bytes());
        out.extend_from_slice(b":\"");
        out.extend_from_slice(&tmp);
        out.extend_from_slice(b"\";");
        self.give_buf(tmp);
        Ok(())
    }

    fn value(
        &mut self,
        m: &Matcher,
        s: &[u8],
        p: &mut usize,
        out: &mut Vec<u8>,
        depth: usize,
        in_container: bool,
    ) -> Result<(), SerializedError> {
        if depth > MAX_DEPTH {
            return err(*p, "nesting too deep");
        }
        let start = *p;
        match s.get(start) {
            Some(b's') => return self.string(m, s, p, out, depth),
            Some(b'a') => {
                let n = container_header(s, p, false)?;
                out.extend_from_slice(&s[start..*p]);
                for _ in 0..n {
                    match s.get(*p) {
                        Some(b'i') => {
                            let k = *p;
                            scalar(s, p)?;
                            out.extend_from_slice(&s[k..*p]);
                        }
                        Some(b's') => self.string(m, s, p, out, depth + 1)?,
                        _ => return err(*p, "expected array key (`i:` or `s:`)"),
                    }
                    self.value(m, s, p, out, depth + 1, true)?;
                }
                expect(s, p, b"}", "expected `}` (element count mismatch)")?;
                out.push(b'}');
                return Ok(());
            }
            Some(b'O') => {
                let n = container_header(s, p, true)?;
                out.extend_from_slice(&s[start..*p]);
                for _ in 0..n {
                    let k = *p;
                    match s.get(*p) {
                        Some(b'i') => scalar(s, p)?,
                        Some(b's') => {
                            string_token(s, p)?;
                        }
                        _ => return err(*p, "expected property name (`s:` or `i:`)"),
                    }
                    out.extend_from_slice(&s[k..*p]);
                    self.value(m, s, p, out, depth + 1, true)?;
                }
                expect(s, p, b"}", "expected `}` (property count mismatch)")?;
                out.push(b'}');
                return Ok(());
            }
            Some(b'C') => {
                *p += 1;
                expect(s, p, b":", "expected `:`")?;
                quoted_name(s, p)?;
                let name_end = *p;
                expect(s, p, b":", "expected `:`")?;
                let n = uint(s, p)?;
                expect(s, p, b":{", "expected `:{`")?;
                let (ds, de) = payload(s, p, n)?;
                let data = &s[ds..de];
                if !m.contains_any(data) {
                    out.extend_from_slice(&s[start..*p]);
                    return Ok(());
                }
                let mut tmp = self.take_buf();
                let (reps, notes) = (self.replacements, self.notes.len());
                let mut dp = 0;
                let mut ok = true;
                while dp < data.len() {
                    if self
                        .value(m, data, &mut dp, &mut tmp, depth + 1, true)
                        .is_err()
                    {
                        ok = false;
                        break;
                    }
                }
                if ok {
                    out.extend_from_slice(&s[start..name_end]);
                    out.push(b':');
                    out.extend_from_slice(tmp.len().to_string().as_bytes());
                    out.extend_from_slice(b":{");
                    out.extend_from_slice(&tmp);
                    out.push(b'}');
                } else {
                    self.replacements = reps;
                    self.notes.truncate(notes);
                    self.notes.push(format!(
                        "custom-serialized (C:) payload at byte {ds} contains a match but is opaque; left untouched"
                    ));
                    out.extend_from_slice(&s[start..*p]);
                }
                self.give_buf(tmp);
                return Ok(());
            }
            _ => {}
        }
        skip_value(s, p, depth, in_container, &mut |_| Ok(()))?;
        out.extend_from_slice(&s[start..*p]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replace::Replacements;

    fn rw(from: &str, to: &str, v: &[u8]) -> (Vec<u8>, Outcome, Vec<String>) {
        let m = Matcher::new(&Replacements::new().pair(from, to).unwrap());
        let mut r = SerRewriter::new();
        let mut out = Vec::new();
        let o = r.process(&m, v, &mut out, 0);
        (out, o, r.notes)
    }

    #[test]
    fn looks_serialized_cases() {
        for yes in [
            &b"N;"[..],
            b"b:1;",
            b"i:-5;",
            b"d:0.5;",
            b"d:-INF;",
            b"a:0:{}",
            b"a:1:{broken",
            b"s:3:\"abc\";",
            b"O:8:\"stdClass\":0:{}",
            b"C:11:\"ArrayObject\":0:{}",
            b"E:7:\"Foo:Bar\";",
            b"r:1;",
        ] {
            assert!(looks_serialized(yes), "{}", String::from_utf8_lossy(yes));
        }
        for no in [
            &b""[..],
            b"N",
            b"i:5 reasons",
            b"a:b",
            b"s:x",
            b"hello",
            b"a: 1",
            b"b:2;",
            b"d:;",
            b"x:1;",
        ] {
            assert!(!looks_serialized(no), "{}", String::from_utf8_lossy(no));
        }
    }

    #[test]
    fn validate_cases() {
        assert!(validate(b"a:2:{i:0;s:1:\"x\";s:1:\"k\";a:1:{i:0;N;}}").is_ok());
        assert!(validate(b"O:8:\"stdClass\":1:{s:1:\"a\";r:1;}").is_ok());
        assert!(validate(b"r:1;").is_err());
        assert!(validate(b"s:2:\"abc\";").is_err());
        assert!(validate(b"a:2:{i:0;N;}").is_err());
        assert!(validate(b"a:1:{d:1;N;}").is_err());
        assert!(validate(b"i:1;x").is_err());
        assert!(validate(b"d:1.5E+25;").is_ok());
        assert!(validate(b"C:11:\"ArrayObject\":3:{abc}").is_ok());
        assert!(validate(b"C:11:\"ArrayObject\":4:{abc}").is_err());
        assert!(validate(b"a:99999999999999999999999:{}").is_err());
    }

    #[test]
    fn string_lengths_recomputed_in_bytes() {
        let (out, o, _) = rw(
            "http://a.test",
            "https://bé.test",
            b"a:1:{s:3:\"url\";s:17:\"http://a.test/x/y\";}",
        );
        assert_eq!(o, Outcome::Serialized);
        assert_eq!(
            out,
            "a:1:{s:3:\"url\";s:20:\"https://bé.test/x/y\";}".as_bytes()
        );
        assert!(validate(&out).is_ok());
    }

    #[test]
    fn keys_replaced_class_and_property_names_not() {
        let v = b"O:6:\"a.test\":2:{s:6:\"a.test\";s:6:\"a.test\";s:9:\"\0*\0a.test\";a:1:{s:6:\"a.test\";i:1;}}";
        let (out, o, _) = rw("a.test", "bb.test", v);
        assert_eq!(o, Outcome::Serialized);
        assert_eq!(
            out,
            b"O:6:\"a.test\":2:{s:6:\"a.test\";s:7:\"bb.test\";s:9:\"\0*\0a.test\";a:1:{s:7:\"bb.test\";i:1;}}".to_vec()
        );
    }

    #[test]
    fn double_serialized_inner_and_outer_lengths() {
        let inner = b"a:1:{s:3:\"img\";s:17:\"http://a.test/1.j\";}";
        let outer = format!(
            "a:1:{{s:4:\"cart\";s:{}:\"{}\";}}",
            inner.len(),
            std::str::from_utf8(inner).unwrap()
        );
        let (out, o, _) = rw("http://a.test", "https://www.b.test", outer.as_bytes());
        assert_eq!(o, Outcome::Serialized);
        let new_inner = b"a:1:{s:3:\"img\";s:22:\"https://www.b.test/1.j\";}";
        let expect = format!(
            "a:1:{{s:4:\"cart\";s:{}:\"{}\";}}",
            new_inner.len(),
            std::str::from_utf8(new_inner).unwrap()
        );
        assert_eq!(String::from_utf8(out.clone()).unwrap(), expect);
        assert!(validate_deep(&out).is_ok());
    }

    #[test]
    fn broken_look_alike_untouched() {
        let v = b"a:1:{s:3:\"url\";s:99:\"http://a.test\";}";
        let (out, o, _) = rw("http://a.test", "x", v);
        assert!(matches!(o, Outcome::Untouched(_)));
        assert_eq!(out, v.to_vec());
    }

    #[test]
    fn nested_broken_look_alike_untouched_with_note() {
        let inner = "a:1:{s:1:\"u\";s:5:\"http://a.test\";}";
        let v = format!(
            "a:2:{{i:0;s:{}:\"{}\";i:1;s:13:\"http://a.test\";}}",
            inner.len(),
            inner
        );
        let (out, o, notes) = rw("http://a.test", "x", v.as_bytes());
        assert_eq!(o, Outcome::Serialized);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("a:2:{{i:0;s:{}:\"{}\";i:1;s:1:\"x\";}}", inner.len(), inner)
        );
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn custom_payload() {
        let (out, o, _) = rw("a.test", "b.test", b"C:3:\"Foo\":15:{s:6:\"a.test\";N;}");
        assert_eq!(o, Outcome::Serialized);
        assert_eq!(out, b"C:3:\"Foo\":15:{s:6:\"b.test\";N;}".to_vec());
        let (out, _, notes) = rw("a.test", "bb.test", b"C:3:\"Foo\":12:{x:i:0;a.test}");
        assert_eq!(out, b"C:3:\"Foo\":12:{x:i:0;a.test}".to_vec());
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn depth_limit() {
        let mut v = Vec::new();
        for _ in 0..MAX_DEPTH + 5 {
            v.extend_from_slice(b"a:1:{i:0;");
        }
        v.extend_from_slice(b"s:6:\"a.test\";");
        v.extend(std::iter::repeat_n(b'}', MAX_DEPTH + 5));
        let (out, o, _) = rw("a.test", "b.test", &v);
        assert!(matches!(o, Outcome::Untouched(_)));
        assert_eq!(out, v);
    }

    #[test]
    fn plain_and_scalars() {
        let (out, o, _) = rw("a.test", "b.test", b"see a.test and a.test");
        assert_eq!(
            (out, o),
            (b"see b.test and b.test".to_vec(), Outcome::Plain)
        );
        let (out, o, _) = rw("1", "2", b"i:1;");
        assert_eq!((out, o), (b"i:1;".to_vec(), Outcome::Unchanged));
    }
}
