//! Feeds arbitrary bytes through the rewriter (with a 64 KiB and a 17-byte read chunk) and through
//! the value-level API; asserts no panic and that the output does not depend on chunking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use search_replace::{serialized, Replacements, Rewriter};

fuzz_target!(|data: &[u8]| {
    let r = Replacements::url("https://a.test", "https://bb.example").unwrap();
    let mut big = Vec::new();
    // A 64 KiB chunk holds any input libFuzzer makes here (-max_len below 64 KiB) in one read.
    let rep = Rewriter::new(r.clone())
        .with_chunk_size(1 << 16)
        .rewrite(data, &mut big)
        .unwrap();
    assert_eq!(rep.bytes_in, data.len() as u64);
    assert_eq!(rep.bytes_out, big.len() as u64);
    let mut small = Vec::new();
    Rewriter::new(r.clone())
        .with_chunk_size(17)
        .rewrite(data, &mut small)
        .unwrap();
    assert_eq!(big, small);

    let mut out = Vec::new();
    Rewriter::new(r).rewrite_value(data, &mut out, &mut Vec::new());
    let _ = serialized::validate_deep(data);
    // Generic pairs without a prefilter key take the slow path everywhere.
    let g = Replacements::new()
        .pair("'", "\\")
        .unwrap()
        .pair("s:", "")
        .unwrap();
    let mut out = Vec::new();
    let _ = Rewriter::new(g)
        .with_chunk_size(1 << 16)
        .rewrite(data, &mut out)
        .unwrap();
});
