//! Cross-check with real PHP: every rewritten serialized value (a deterministic sample of random
//! nested structures plus WordPress/WooCommerce/Action Scheduler shapes) must `unserialize()`,
//! nested serialized strings included, must survive `var_export`, and must re-`serialize()` to
//! exactly the same bytes. Skipped, with a message, when `php` is not installed.

mod common;

use std::io::Write;
use std::process::Command;

use common::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use search_replace::{serialized, Rewriter};

const CHECK: &str = r##"
$data = file_get_contents($argv[1]);
$pos = 0; $n = 0; $bad = 0;
function looks($s) { return is_string($s) && preg_match('/^(a|O|s):[0-9]+:/', $s); }
function chk($v, $depth) {
    if (looks($v)) {
        $u = @unserialize($v, ['allowed_classes' => false]);
        if ($u === false) { return "nested value does not unserialize: " . substr($v, 0, 120); }
        return chk($u, $depth + 1);
    }
    if (is_array($v) || is_object($v)) {
        foreach ((array)$v as $k => $x) {
            if (looks($k)) { $e = chk($k, $depth + 1); if ($e) return $e; }
            $e = chk($x, $depth + 1); if ($e) return $e;
        }
    }
    return null;
}
while ($pos < strlen($data)) {
    $nl = strpos($data, "\n", $pos);
    $len = (int)substr($data, $pos, $nl - $pos);
    $s = substr($data, $nl + 1, $len);
    $pos = $nl + 1 + $len;
    $n++;
    $v = @unserialize($s, ['allowed_classes' => false]);
    if ($v === false && $s !== 'b:0;') { $bad++; fwrite(STDERR, "#$n does not unserialize: " . substr($s, 0, 200) . "\n"); continue; }
    var_export($v, true);
    if (serialize($v) !== $s) { $bad++; fwrite(STDERR, "#$n re-serializes differently: " . substr($s, 0, 200) . "\n"); continue; }
    $e = chk($v, 0);
    if ($e) { $bad++; fwrite(STDERR, "#$n $e\n"); }
}
echo "$n checked, $bad bad\n";
exit($bad ? 1 : 0);
"##;

fn wordpress_values() -> Vec<Vec<u8>> {
    use PVal::*;
    let s = |x: &str| Str(x.as_bytes().to_vec());
    let session = Arr(vec![
        (
            true,
            b"cart".to_vec(),
            Ser(Box::new(Arr(vec![(
                true,
                b"0123abcd".to_vec(),
                Arr(vec![
                    (
                        true,
                        b"image".to_vec(),
                        s("https://old-site.test/wp-content/uploads/ä.jpg"),
                    ),
                    (true, b"qty".to_vec(), Int(2)),
                ]),
            )]))),
        ),
        (
            true,
            b"customer".to_vec(),
            Ser(Box::new(Arr(vec![(
                true,
                b"website".to_vec(),
                s("http://old-site.test"),
            )]))),
        ),
    ]);
    let schedule = Obj(
        "ActionScheduler_SimpleSchedule",
        vec![
            (
                Vis::Protected,
                b"scheduled_timestamp".to_vec(),
                Int(1_700_000_000),
            ),
            (Vis::Private, b"timestamp".to_vec(), Int(1_700_000_000)),
            (
                Vis::Protected,
                b"args".to_vec(),
                Arr(vec![(false, vec![], s("https://old-site.test/?wc-api=x"))]),
            ),
        ],
    );
    let theme_mods = Arr(vec![
        (
            true,
            b"header_image".to_vec(),
            s("https:\\/\\/old-site.test\\/h.png"),
        ),
        (
            true,
            b"custom_css".to_vec(),
            s("body{background:url('https://old-site.test/bg.png')} /* \"q\" \\ */"),
        ),
        (false, vec![], Float(3)),
        (false, vec![], Bool(true)),
        (false, vec![], Null),
    ]);
    let mut out = Vec::new();
    for v in [session, schedule, theme_mods] {
        out.push(ser(&v));
    }
    out
}

#[test]
fn rewritten_values_unserialize_in_php() {
    if Command::new("php").arg("-v").output().is_err() {
        eprintln!("SKIPPED: php is not installed; the PHP cross-check did not run");
        return;
    }
    let mut runner = TestRunner::deterministic();
    let mut samples: Vec<Vec<u8>> = Vec::new();
    let mut changed = 0;
    for (i, to) in TOS.iter().cycle().take(120).enumerate() {
        let from = FROMS[i % FROMS.len()];
        let r = url_pairs(from, to);
        let mut rows = rows(from, true).new_tree(&mut runner).unwrap().current();
        if i < FROMS.len() * TOS.len() {
            rows.push(wordpress_values().into_iter().map(Cell::Plain).collect());
        }
        let input = dump(&rows, None);
        let mut out = Vec::new();
        let report = Rewriter::new(r).rewrite(&input[..], &mut out).unwrap();
        assert_eq!(report.warnings_total, 0);
        changed += report.serialized_rewritten;
        for v in literals(&out) {
            if serialized::looks_serialized(&v) {
                samples.push(v);
            }
        }
    }
    assert!(
        changed > 100,
        "too few serialized rewrites in the sample: {changed}"
    );
    let path = std::env::temp_dir().join(format!("sr-php-check-{}.bin", std::process::id()));
    let mut f = std::fs::File::create(&path).unwrap();
    for s in &samples {
        writeln!(f, "{}", s.len()).unwrap();
        f.write_all(s).unwrap();
    }
    drop(f);
    let res = Command::new("php")
        .arg("-r")
        .arg(CHECK)
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&res.stdout);
    let stderr = String::from_utf8_lossy(&res.stderr);
    eprintln!("php: {stdout}");
    assert!(
        res.status.success(),
        "php check failed:\n{stdout}\n{}",
        &stderr[..stderr.len().min(4000)]
    );
    assert!(stdout.contains(&format!("{} checked, 0 bad", samples.len())));
}
