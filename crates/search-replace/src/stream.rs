//! The streaming mysqldump scanner.
//!
//! The input is read into one buffer that is refilled in place. A small state machine separates
//! SQL code from quoted string literals, backtick identifiers and comments. Code, identifiers,
//! comments and unchanged literals are never copied into another buffer: the scanner only
//! remembers where the pending unchanged span starts and writes it out in bulk when a literal
//! changes or the buffer is refilled.
//!
//! Each complete literal is first checked with the prefilter (does its raw text contain a key,
//! or an escape the prefilter cannot see through?). Only then is it unescaped, rewritten (PHP
//! serialized or plain), and, if its value changed, re-escaped mysqldump style.
//!
//! Memory: the buffer holds at most the unprocessed tail of the last read plus the literal being
//! scanned, so it grows only for a single string literal longer than the read chunk (1 MiB).

use std::io::{self, BufWriter, Read, Write};

use crate::replace::{Matcher, Space};
use crate::serialized::{classify_prefix, Kind, Outcome, SerRewriter};
use crate::sql::{escape_into, is_canonical_escape, unescape_into};
use crate::{Report, Warning};

pub(crate) const CHUNK: usize = 1 << 20;
const OUT_BUF: usize = 256 << 10;
pub(crate) const MAX_WARNINGS: usize = 1000;

#[derive(Clone, Copy, Debug)]
enum State {
    Code,
    LineComment,
    BlockComment,
    Backtick,
    /// Inside a quoted literal that started at buffer index `start`; `scan` is where the search
    /// for its end resumes.
    Literal {
        quote: u8,
        start: usize,
        scan: usize,
        noncanon: bool,
        hex: bool,
    },
}

/// Bytes that end a plain run of SQL code.
static CODE_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'\'' as usize] = true;
    t[b'"' as usize] = true;
    t[b'`' as usize] = true;
    t[b'#' as usize] = true;
    t[b'-' as usize] = true;
    t[b'/' as usize] = true;
    t
};

/// Index of the first `quote` or `\\` in `data[from..]`. Escapes come in dense clusters
/// (serialized data is full of `\"`), so the bytes right after `from` are checked eight at a
/// time in a register first, without a call; longer clean spans go to `memchr2`.
#[inline]
fn find_quote_or_backslash(data: &[u8], from: usize, quote: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let q = LO * quote as u64;
    let b = LO * b'\\' as u64;
    let mut i = from;
    let mut blocks = 0;
    while blocks < 4 && i + 8 <= data.len() {
        let x = u64::from_le_bytes(data[i..i + 8].try_into().unwrap());
        let xq = x ^ q;
        let xb = x ^ b;
        // The lowest set high bit is exact (borrows only run upwards from a true zero byte).
        let m = (xq.wrapping_sub(LO) & !xq & HI) | (xb.wrapping_sub(LO) & !xb & HI);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
        blocks += 1;
    }
    memchr::memchr2(quote, b'\\', &data[i..]).map(|o| i + o)
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Per-call scratch and counters shared between the scanner and the value processor.
pub(crate) struct Engine {
    pub(crate) matcher: Matcher,
    ser: SerRewriter,
    unesc: Vec<u8>,
    work: Vec<u8>,
    esc: Vec<u8>,
    found: Vec<(usize, usize)>,
}

/// Raw bytes of a literal body unescaped to decide serialized vs plain.
const CLASSIFY_RAW: usize = 64;

impl Engine {
    pub(crate) fn new(matcher: Matcher) -> Self {
        Engine {
            matcher,
            ser: SerRewriter::new(),
            unesc: Vec::new(),
            work: Vec::new(),
            esc: Vec::new(),
            found: Vec::new(),
        }
    }

    /// Rewrites one unescaped value into `out`; returns the outcome and any nested warnings.
    pub(crate) fn value(&mut self, v: &[u8], out: &mut Vec<u8>) -> (Outcome, usize, Vec<String>) {
        self.ser.replacements = 0;
        self.ser.notes.clear();
        let o = self.ser.process(&self.matcher, v, out, 0);
        (
            o,
            self.ser.replacements,
            std::mem::take(&mut self.ser.notes),
        )
    }

    fn shrink_scratch(&mut self) {
        for b in [&mut self.unesc, &mut self.work, &mut self.esc] {
            if b.capacity() > 4 * CHUNK {
                *b = Vec::new();
            }
        }
    }
}

struct Out<W: Write> {
    w: BufWriter<W>,
    bytes: u64,
}

impl<W: Write> Out<W> {
    #[inline]
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.bytes += b.len() as u64;
        self.w.write_all(b)
    }
}

fn warn(report: &mut Report, offset: u64, message: String) {
    report.warnings_total += 1;
    if report.warnings.len() < MAX_WARNINGS {
        report.warnings.push(Warning { offset, message });
    }
}

pub(crate) fn run<R: Read, W: Write>(
    engine: &mut Engine,
    mut input: R,
    output: W,
    chunk: usize,
) -> io::Result<Report> {
    let chunk = chunk.max(16);
    let mut report = Report::default();
    let mut out = Out {
        w: BufWriter::with_capacity(OUT_BUF, output),
        bytes: 0,
    };
    let mut buf = vec![0u8; chunk];
    let mut len = 0usize;
    let mut base = 0u64; // stream offset of buf[0]
    let mut pos = 0usize;
    let mut copy_from = 0usize;
    let mut state = State::Code;
    let mut eof = false;
    let mut lookbehind = [b'\n'; 2]; // the two bytes before buf[0]
    let n_keys = engine.matcher.keys().map_or(0, |k| k.len());
    let mut key_next = vec![0usize; n_keys];
    let mut keys_stale = true;
    let disabled = engine.matcher.is_empty();

    loop {
        // ---- scan what we have ----
        let data: &[u8] = &buf[..len];
        'scan: loop {
            match state {
                State::Code => {
                    while pos < len {
                        let b = data[pos];
                        if !CODE_SPECIAL[b as usize] {
                            pos += 1;
                            continue;
                        }
                        match b {
                            b'\'' | b'"' => {
                                let prev = |k: usize| -> u8 {
                                    if pos >= k {
                                        data[pos - k]
                                    } else {
                                        lookbehind[2 + pos - k]
                                    }
                                };
                                let hex = b == b'\''
                                    && matches!(prev(1), b'x' | b'X' | b'b' | b'B')
                                    && !is_ident_byte(prev(2));
                                state = State::Literal {
                                    quote: b,
                                    start: pos,
                                    scan: pos + 1,
                                    noncanon: false,
                                    hex,
                                };
                                pos += 1;
                                continue 'scan;
                            }
                            b'`' => {
                                state = State::Backtick;
                                pos += 1;
                                continue 'scan;
                            }
                            b'#' => {
                                state = State::LineComment;
                                pos += 1;
                                continue 'scan;
                            }
                            b'-' => {
                                if pos + 2 >= len && !eof {
                                    break 'scan;
                                }
                                if data.get(pos + 1) == Some(&b'-')
                                    && (pos + 2 >= len || data[pos + 2] <= b' ')
                                {
                                    state = State::LineComment;
                                    pos += 2;
                                    continue 'scan;
                                }
                                pos += 1;
                            }
                            _ => {
                                // '/'
                                if pos + 3 >= len && !eof {
                                    break 'scan;
                                }
                                if data.get(pos + 1) == Some(&b'*') {
                                    let next = data.get(pos + 2).copied();
                                    let next2 = data.get(pos + 3).copied();
                                    if next == Some(b'!')
                                        || (next == Some(b'M') && next2 == Some(b'!'))
                                    {
                                        // Executable comment: its body is SQL code.
                                        pos += 2;
                                    } else {
                                        state = State::BlockComment;
                                        pos += 2;
                                        continue 'scan;
                                    }
                                } else {
                                    pos += 1;
                                }
                            }
                        }
                    }
                    break 'scan;
                }
                State::LineComment => match memchr::memchr(b'\n', &data[pos..len]) {
                    Some(off) => {
                        pos += off + 1;
                        state = State::Code;
                    }
                    None => {
                        pos = len;
                        break 'scan;
                    }
                },
                State::BlockComment => match memchr::memmem::find(&data[pos..len], b"*/") {
                    Some(off) => {
                        pos += off + 2;
                        state = State::Code;
                    }
                    None => {
                        pos = if eof {
                            len
                        } else {
                            len.saturating_sub(1).max(pos)
                        };
                        break 'scan;
                    }
                },
                State::Backtick => match memchr::memchr(b'`', &data[pos..len]) {
                    Some(off) => {
                        let j = pos + off;
                        if j + 1 >= len && !eof {
                            pos = j;
                            break 'scan;
                        }
                        if data.get(j + 1) == Some(&b'`') {
                            pos = j + 2;
                        } else {
                            pos = j + 1;
                            state = State::Code;
                        }
                    }
                    None => {
                        pos = len;
                        break 'scan;
                    }
                },
                State::Literal {
                    quote,
                    start,
                    mut scan,
                    mut noncanon,
                    hex,
                } => {
                    // Find the closing quote.
                    let end = loop {
                        match find_quote_or_backslash(data, scan, quote) {
                            None => {
                                scan = len;
                                break None;
                            }
                            Some(j) => {
                                if j + 1 >= len && !eof {
                                    scan = j;
                                    break None;
                                }
                                if data[j] == b'\\' {
                                    match data.get(j + 1) {
                                        Some(&c) => {
                                            if !is_canonical_escape(c) {
                                                noncanon = true;
                                            }
                                            scan = j + 2;
                                        }
                                        None => {
                                            scan = len;
                                            break None;
                                        }
                                    }
                                } else if data.get(j + 1) == Some(&quote) {
                                    noncanon = true;
                                    scan = j + 2;
                                } else {
                                    break Some(j + 1);
                                }
                            }
                        }
                    };
                    let Some(end) = end else {
                        state = State::Literal {
                            quote,
                            start,
                            scan,
                            noncanon,
                            hex,
                        };
                        pos = scan;
                        break 'scan;
                    };
                    report.literals += 1;
                    state = State::Code;
                    pos = end;
                    if hex || disabled {
                        continue 'scan;
                    }
                    // Prefilter.
                    let examine = noncanon
                        || match engine.matcher.keys() {
                            None => true,
                            Some(keys) => {
                                let mut hit = false;
                                for (k, f) in keys.iter().enumerate() {
                                    if keys_stale || key_next[k] < start {
                                        key_next[k] = f
                                            .find(&data[start..len])
                                            .map_or(usize::MAX, |o| o + start);
                                    }
                                    if key_next[k] < end {
                                        hit = true;
                                    }
                                }
                                keys_stale = false;
                                hit
                            }
                        };
                    if !examine {
                        continue 'scan;
                    }
                    let raw = &data[start + 1..end - 1];
                    if !noncanon && engine.matcher.raw_ok() {
                        // Fast path for plain values: replace in raw (escaped) space.
                        let mut cut = raw.len().min(CLASSIFY_RAW);
                        if !crate::sql::is_token_start(raw, cut) {
                            cut += 1;
                        }
                        engine.unesc.clear();
                        unescape_into(&raw[..cut], quote, &mut engine.unesc);
                        if classify_prefix(&engine.unesc, cut == raw.len()) == Kind::Plain {
                            engine.found.clear();
                            engine.matcher.find_all(raw, Space::Raw, &mut engine.found);
                            if !engine.found.is_empty() {
                                report.values_changed += 1;
                                report.replacements += engine.found.len() as u64;
                                out.put(&data[copy_from..start + 1])?;
                                let mut last = 0;
                                for &(p, i) in &engine.found {
                                    let (flen, to) = engine.matcher.needle(i, Space::Raw);
                                    out.put(&raw[last..p])?;
                                    out.put(to)?;
                                    last = p + flen;
                                }
                                out.put(&raw[last..])?;
                                copy_from = end - 1;
                            }
                            continue 'scan;
                        }
                    }
                    let mut unesc = std::mem::take(&mut engine.unesc);
                    let mut work = std::mem::take(&mut engine.work);
                    unesc.clear();
                    work.clear();
                    unescape_into(raw, quote, &mut unesc);
                    let (outcome, reps, notes) = engine.value(&unesc, &mut work);
                    let offset = base + start as u64;
                    for n in notes {
                        warn(&mut report, offset, format!("string literal: {n}"));
                    }
                    match outcome {
                        Outcome::Unchanged => {}
                        Outcome::Untouched(e) => warn(
                            &mut report,
                            offset,
                            format!("string literal looks serialized but does not parse ({e}); left untouched"),
                        ),
                        Outcome::Plain | Outcome::Serialized => {
                            report.values_changed += 1;
                            report.replacements += reps as u64;
                            if outcome == Outcome::Serialized {
                                report.serialized_rewritten += 1;
                            }
                            let mut esc = std::mem::take(&mut engine.esc);
                            esc.clear();
                            escape_into(&work, &mut esc);
                            out.put(&data[copy_from..start + 1])?;
                            out.put(&esc)?;
                            copy_from = end - 1;
                            engine.esc = esc;
                        }
                    }
                    engine.unesc = unesc;
                    engine.work = work;
                    engine.shrink_scratch();
                }
            }
        }

        if eof {
            if let State::Literal { start, .. } = state {
                warn(
                    &mut report,
                    base + start as u64,
                    "unterminated string literal; copied as is".into(),
                );
            }
            out.put(&buf[copy_from..len])?;
            break;
        }

        // ---- make room and read more ----
        let keep = match state {
            State::Literal { start, .. } => start,
            _ => pos,
        };
        if keep > copy_from {
            out.put(&buf[copy_from..keep])?;
            copy_from = keep;
        }
        if buf.len() - len < chunk / 4 {
            if keep > 0 {
                lookbehind = match keep {
                    1 => [lookbehind[1], buf[0]],
                    _ => [buf[keep - 2], buf[keep - 1]],
                };
                buf.copy_within(keep..len, 0);
                len -= keep;
                pos -= keep;
                copy_from -= keep;
                base += keep as u64;
                if let State::Literal {
                    ref mut start,
                    ref mut scan,
                    ..
                } = state
                {
                    *start -= keep;
                    *scan -= keep;
                }
            }
            if buf.len() - len < chunk / 4 {
                let new_len = (buf.len() * 2).max(len + chunk);
                buf.resize(new_len, 0);
            } else if buf.len() > 2 * chunk && len < chunk {
                buf.truncate(2 * chunk);
                buf.shrink_to_fit();
            }
        }
        report.peak_buffer = report.peak_buffer.max(buf.len());
        let n = loop {
            match input.read(&mut buf[len..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            eof = true;
        }
        len += n;
        report.bytes_in += n as u64;
        keys_stale = true;
    }
    report.bytes_out = out.bytes;
    out.w.flush()?;
    Ok(report)
}
