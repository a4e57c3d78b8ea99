//! Streaming, PHP-serialization-safe search-replace for MySQL dumps.
//!
//! This is the engine behind `pressluft node search-replace` (backups-restore-promotion.md §8),
//! kept free of WordPress or Pressluft specifics so it can be used on any mysqldump stream:
//!
//! * only quoted string literals change; SQL code, identifiers, comments and numbers are copied
//!   byte for byte, and so is every literal whose value does not change;
//! * a literal that may contain a match is unescaped (MySQL rules), rewritten, and re-escaped
//!   the way mysqldump escapes;
//! * values that are PHP serialized are parsed and rewritten recursively with correct `s:<n>:`
//!   byte lengths, including serialized strings inside serialized values; values that look
//!   serialized but do not parse are left untouched and reported;
//! * other values get plain substring replacement.
//!
//! ```
//! use search_replace::{Replacements, Rewriter};
//!
//! let mut rw = Rewriter::new(Replacements::url("https://old.test", "https://new.example").unwrap());
//! let dump = b"INSERT INTO `wp_options` VALUES (1,'home','http://old.test/'),\
//!              (2,'w','a:1:{s:3:\\\"url\\\";s:15:\\\"https://old.test\\\";}');\n";
//! let mut out = Vec::new();
//! let report = rw.rewrite(&dump[..], &mut out).unwrap();
//! assert_eq!(
//!     out,
//!     b"INSERT INTO `wp_options` VALUES (1,'home','https://new.example/'),\
//!       (2,'w','a:1:{s:3:\\\"url\\\";s:15:\\\"https://old.test\\\";}');\n".to_vec()
//! );
//! // The second value's length was wrong (15 for 16 bytes): left untouched, with a warning.
//! assert_eq!(report.values_changed, 1);
//! assert_eq!(report.warnings_total, 1);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod replace;
pub mod serialized;
pub mod sql;
mod stream;

use std::fmt;
use std::io::{self, Read, Write};

pub use replace::{json_escape, ReplacementError, Replacements};
pub use serialized::SerializedError;

/// A value left untouched (or partly untouched) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Byte offset in the input stream of the opening quote of the string literal
    /// (for [`Rewriter::rewrite_value`]: 0).
    pub offset: u64,
    /// Human-readable reason.
    pub message: String,
}

/// Counters for one [`Rewriter::rewrite`] call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Quoted string literals seen.
    pub literals: u64,
    /// Literals whose value changed.
    pub values_changed: u64,
    /// Of those, literals whose value was rewritten as PHP serialized data.
    pub serialized_rewritten: u64,
    /// Individual occurrences replaced.
    pub replacements: u64,
    /// The first 1000 warnings.
    pub warnings: Vec<Warning>,
    /// All warnings, including those not kept in `warnings`.
    pub warnings_total: u64,
    /// Largest size the internal read buffer reached (bytes); grows only for literals over 1 MiB.
    pub peak_buffer: usize,
}

impl Report {
    /// Adds another run's counters to this one (several streams rewritten as one job), keeping
    /// at most the first 1000 warnings.
    pub fn merge(&mut self, other: Report) {
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.literals += other.literals;
        self.values_changed += other.values_changed;
        self.serialized_rewritten += other.serialized_rewritten;
        self.replacements += other.replacements;
        let room = stream::MAX_WARNINGS.saturating_sub(self.warnings.len());
        self.warnings.extend(other.warnings.into_iter().take(room));
        self.warnings_total += other.warnings_total;
        self.peak_buffer = self.peak_buffer.max(other.peak_buffer);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "search-replace: {} values changed ({} serialized rewrites, {} replacements) in {} string literals, {} warnings",
            self.values_changed, self.serialized_rewritten, self.replacements, self.literals, self.warnings_total
        )
    }
}

/// Result of [`Rewriter::rewrite_value`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueChange {
    /// No match; the output equals the input.
    Unchanged,
    /// Plain substring replacement.
    Plain {
        /// Occurrences replaced.
        replacements: usize,
    },
    /// Parsed and rewritten as PHP serialized data.
    Serialized {
        /// Occurrences replaced.
        replacements: usize,
    },
    /// Looks serialized and contains a match but does not parse: copied untouched.
    Untouched(SerializedError),
}

/// The rewriter. Reusable across streams; keeps its scratch buffers.
pub struct Rewriter {
    engine: stream::Engine,
    chunk: usize,
}

impl Rewriter {
    /// A rewriter for the given replacement pairs.
    pub fn new(replacements: Replacements) -> Self {
        Rewriter {
            engine: stream::Engine::new(replace::Matcher::new(&replacements)),
            chunk: stream::CHUNK,
        }
    }

    /// Sets the read chunk size (default 1 MiB; mainly for tests that exercise chunk boundaries).
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk = bytes.max(16);
        self
    }

    /// Rewrites a mysqldump stream from `input` to `output`.
    ///
    /// Memory stays bounded by the chunk size plus a small multiple of the longest single
    /// string literal (see the crate README); extended INSERT lines of any length are fine.
    /// `input` need not be buffered; `output` is wrapped in a 256 KiB `BufWriter` and flushed.
    pub fn rewrite<R: Read, W: Write>(&mut self, input: R, output: W) -> io::Result<Report> {
        stream::run(&mut self.engine, input, output, self.chunk)
    }

    /// Rewrites one already-unescaped value (not SQL), appending the result to `out`:
    /// serialized-aware if it looks serialized, plain replacement otherwise. Nested warnings
    /// are appended to `warnings` with offset 0.
    pub fn rewrite_value(
        &mut self,
        value: &[u8],
        out: &mut Vec<u8>,
        warnings: &mut Vec<Warning>,
    ) -> ValueChange {
        let (o, replacements, notes) = self.engine.value(value, out);
        warnings.extend(
            notes
                .into_iter()
                .map(|message| Warning { offset: 0, message }),
        );
        match o {
            serialized::Outcome::Unchanged => ValueChange::Unchanged,
            serialized::Outcome::Plain => ValueChange::Plain { replacements },
            serialized::Outcome::Serialized => ValueChange::Serialized { replacements },
            serialized::Outcome::Untouched(e) => ValueChange::Untouched(e),
        }
    }
}
