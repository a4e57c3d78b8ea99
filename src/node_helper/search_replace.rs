//! `pressluft node search-replace --from <url> --to <url>`: the serialized-safe URL rewrite
//! of a mysqldump stream (backups-restore-promotion.md §8), stdin → stdout, summary and
//! warnings on stderr. The work is done by the `search-replace` crate.

use std::io::Write;

use anyhow::Context;
use search_replace::{Replacements, Rewriter};

/// At most this many warnings are printed individually; the summary counts all of them.
const WARNINGS_SHOWN: usize = 20;

/// Rewrites standard input to standard output.
pub fn run(from: &str, to: &str) -> anyhow::Result<()> {
    let replacements = Replacements::url(from, to).context("invalid --from/--to")?;
    let mut rewriter = Rewriter::new(replacements);
    let report = rewriter
        .rewrite(std::io::stdin().lock(), std::io::stdout().lock())
        .context("rewriting the dump")?;
    let mut err = std::io::stderr().lock();
    for w in report.warnings.iter().take(WARNINGS_SHOWN) {
        writeln!(err, "warning at byte {}: {}", w.offset, w.message)?;
    }
    writeln!(err, "{report}")?;
    Ok(())
}
