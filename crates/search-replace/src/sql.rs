//! MySQL string-literal escaping, as the server reads it and as mysqldump writes it.
//!
//! Reading (`unescape_into`) follows the MySQL manual ("String Literals"): `\0 \' \" \b \n \r \t
//! \Z \\` map to one byte each, `\%` and `\_` keep their backslash, any other `\x` is `x`, and a
//! doubled quote (`''` inside `'…'`, `""` inside `"…"`) is one quote.
//!
//! Writing (`escape_into`) is what mysqldump emits (`mysql_real_escape_string`): NUL, `\n`, `\r`,
//! `\`, `'`, `"` and `0x1A` are escaped as `\0 \n \r \\ \' \" \Z`; every other byte, including tab
//! and multibyte UTF-8, is written as is. It is only used for literals whose value changed;
//! unchanged literals are copied byte for byte.

/// Whether `\c` is an escape that maps to exactly one *ambiguous* byte (see
/// `replace::is_ambiguous`). For literals whose escapes are all of this kind (and that have no
/// doubled quotes), every non-ambiguous value byte is the identical raw byte and every value
/// backslash is a raw `\\`; the prefilter and raw-space replacement rely on that. Other escapes
/// (`\/`, `\a`, `\%`, `\_`, …) send the literal to the unescaping slow path.
#[inline]
pub(crate) fn is_canonical_escape(c: u8) -> bool {
    CANONICAL[c as usize]
}

static CANONICAL: [bool; 256] = {
    let mut t = [false; 256];
    let list = *b"0'\"bnrtZ\\";
    let mut i = 0;
    while i < list.len() {
        t[list[i] as usize] = true;
        i += 1;
    }
    t
};

/// Whether raw literal position `p` starts an escape token (an even number of backslashes
/// precedes it within `raw`).
pub(crate) fn is_token_start(raw: &[u8], p: usize) -> bool {
    raw[..p].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
}

/// Appends the value of the raw literal body `raw` (between the quotes, `quote` being `'` or `"`).
pub fn unescape_into(raw: &[u8], quote: u8, out: &mut Vec<u8>) {
    out.reserve(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let Some(off) = memchr::memchr2(b'\\', quote, &raw[i..]) else {
            out.extend_from_slice(&raw[i..]);
            return;
        };
        let j = i + off;
        out.extend_from_slice(&raw[i..j]);
        if raw[j] == quote {
            // Doubled quote; a lone quote cannot occur inside a well-formed body, keep it.
            out.push(quote);
            i = if raw.get(j + 1) == Some(&quote) {
                j + 2
            } else {
                j + 1
            };
            continue;
        }
        let Some(&c) = raw.get(j + 1) else {
            out.push(b'\\');
            return;
        };
        match c {
            b'0' => out.push(0),
            b'b' => out.push(0x08),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'Z' => out.push(0x1a),
            b'%' | b'_' => {
                out.push(b'\\');
                out.push(c);
            }
            _ => out.push(c),
        }
        i = j + 2;
    }
}

const fn escape_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    t[0] = b'0';
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\\' as usize] = b'\\';
    t[b'\'' as usize] = b'\'';
    t[b'"' as usize] = b'"';
    t[0x1a] = b'Z';
    t
}

static ESCAPE: [u8; 256] = escape_table();

/// Appends `value` escaped the way mysqldump escapes it (without surrounding quotes).
pub fn escape_into(value: &[u8], out: &mut Vec<u8>) {
    out.reserve(value.len() + value.len() / 16 + 8);
    let mut start = 0;
    for (i, &b) in value.iter().enumerate() {
        let e = ESCAPE[b as usize];
        if e != 0 {
            out.extend_from_slice(&value[start..i]);
            out.push(b'\\');
            out.push(e);
            start = i + 1;
        }
    }
    out.extend_from_slice(&value[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unesc(raw: &[u8], q: u8) -> Vec<u8> {
        let mut v = Vec::new();
        unescape_into(raw, q, &mut v);
        v
    }

    #[test]
    fn unescape_all_mysql_escapes() {
        assert_eq!(
            unesc(br#"a\0b\'c\"d\be\nf\rg\th\Zi\\j\%k\_l\/m\x''"#, b'\''),
            b"a\0b'c\"d\x08e\nf\rg\th\x1ai\\j\\%k\\_l/mx'".to_vec()
        );
        assert_eq!(unesc(br#"say ""hi"" '"#, b'"'), b"say \"hi\" '".to_vec());
        assert_eq!(unesc("ünï\\'cødé".as_bytes(), b'\''), "ünï'cødé".as_bytes());
        assert_eq!(unesc(b"trailing\\", b'\''), b"trailing\\".to_vec());
    }

    #[test]
    fn escape_is_mysqldump() {
        let mut v = Vec::new();
        escape_into(b"a\0b'c\"d\x08e\nf\rg\th\x1ai\\j", &mut v);
        assert_eq!(v, br#"a\0b\'c\"d"#.iter().chain(b"\x08e").chain(br#"\nf\rg"#).chain(b"\th").chain(br#"\Zi\\j"#).copied().collect::<Vec<u8>>());
    }

    #[test]
    fn escape_roundtrip() {
        let all: Vec<u8> = (0..=255u8).collect();
        let mut e = Vec::new();
        escape_into(&all, &mut e);
        assert_eq!(unesc(&e, b'\''), all);
        assert_eq!(unesc(&e, b'"'), all);
    }
}
