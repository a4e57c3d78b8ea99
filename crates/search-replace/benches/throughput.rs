//! Throughput benchmark: generates a realistic WordPress + WooCommerce mysqldump (default
//! 256 MB, `SR_BENCH_MB` to change) in a temp file, then rewrites it on one thread with a longer
//! and a shorter replacement URL (and once with a URL that does not occur), reporting MB/s and
//! peak RSS (VmHWM, reset before each run via /proc/self/clear_refs).
//!
//! Run: `CARGO_TARGET_DIR=/tmp/sr-target cargo bench --bench throughput`

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::time::Instant;

use search_replace::{sql::escape_into, Replacements, Rewriter};

const FROM: &str = "https://old-shop.example.com";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "Größe",
    "Straße",
    "café",
    "naïve",
    "日本語",
    "😀",
    "Ελληνικά",
    "“quoted”",
    "it's",
    "don't",
    "50%",
    "a_b",
    "C:\\path",
    "\"hi\"",
];

fn words(rng: &mut Rng, n: usize, out: &mut String) {
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(rng.pick(WORDS));
    }
}

fn ser_str(out: &mut String, s: &str) {
    out.push_str(&format!("s:{}:\"{}\";", s.len(), s));
}

/// Gutenberg post content with links, images and block attributes.
fn post_content(rng: &mut Rng, id: u64) -> String {
    let mut s = String::new();
    let blocks = 3 + rng.below(12);
    for b in 0..blocks {
        match rng.below(6) {
            0 => s.push_str(&format!(
                "<!-- wp:image {{\"id\":{id},\"sizeSlug\":\"large\"}} -->\n<figure class=\"wp-block-image size-large\"><img src=\"{FROM}/wp-content/uploads/2024/0{}/img-{id}-{b}.jpg\" alt=\"\" class=\"wp-image-{id}\"/></figure>\n<!-- /wp:image -->\n\n",
                1 + b % 9
            )),
            1 => {
                s.push_str("<!-- wp:paragraph -->\n<p>");
                words(rng, 20, &mut s);
                s.push_str(&format!(" <a href=\"{FROM}/product/item-{}/\">", rng.below(5000)));
                words(rng, 3, &mut s);
                s.push_str("</a></p>\n<!-- /wp:paragraph -->\n\n");
            }
            _ => {
                s.push_str("<!-- wp:paragraph -->\n<p>");
                let n = 40 + rng.below(80) as usize;
                words(rng, n, &mut s);
                s.push_str("</p>\n<!-- /wp:paragraph -->\n\n");
            }
        }
    }
    s
}

fn attachment_metadata(rng: &mut Rng, id: u64) -> String {
    let mut s = String::from("a:6:{s:5:\"width\";i:1920;s:6:\"height\";i:1080;s:4:\"file\";");
    ser_str(&mut s, &format!("2024/01/img-{id}.jpg"));
    s.push_str("s:8:\"filesize\";i:");
    s.push_str(&rng.below(900_000).to_string());
    s.push_str(";s:5:\"sizes\";a:3:{");
    for (name, w) in [("thumbnail", 150), ("medium", 300), ("large", 1024)] {
        ser_str(&mut s, name);
        s.push_str("a:4:{s:4:\"file\";");
        ser_str(&mut s, &format!("img-{id}-{w}x{w}.jpg"));
        s.push_str(&format!(
            "s:5:\"width\";i:{w};s:6:\"height\";i:{w};s:9:\"mime-type\";s:10:\"image/jpeg\";}}"
        ));
    }
    s.push_str("}s:10:\"image_meta\";a:2:{s:7:\"caption\";s:0:\"\";s:9:\"copyright\";");
    ser_str(&mut s, "© Größe");
    s.push_str("}}");
    s
}

fn elementor_json(rng: &mut Rng) -> String {
    let url = FROM.replace('/', "\\/");
    let mut s = String::from("[");
    for i in 0..(2 + rng.below(6)) {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"id\":\"{:x}\",\"elType\":\"widget\",\"settings\":{{\"image\":{{\"url\":\"{url}\\/wp-content\\/uploads\\/e{i}.png\",\"id\":{}}},\"title\":\"Caf\\u00e9 {}\"}},\"widgetType\":\"image\"}}",
            rng.next() & 0xffffff,
            rng.below(9999),
            rng.below(100)
        ));
    }
    s.push(']');
    s
}

fn wc_session(rng: &mut Rng) -> String {
    let mut cart = String::from("a:1:{");
    ser_str(&mut cart, &format!("{:032x}", rng.next() as u128 * 7919));
    cart.push_str("a:4:{s:10:\"product_id\";i:");
    cart.push_str(&rng.below(5000).to_string());
    cart.push_str(";s:8:\"quantity\";i:1;s:10:\"line_total\";d:19.99;s:9:\"permalink\";");
    ser_str(
        &mut cart,
        &format!("{FROM}/product/item-{}/", rng.below(5000)),
    );
    cart.push_str("}}");
    let mut customer =
        String::from("a:3:{s:2:\"id\";s:1:\"0\";s:7:\"country\";s:2:\"DE\";s:4:\"city\";");
    ser_str(&mut customer, "München");
    customer.push('}');
    let mut s = String::from("a:3:{s:4:\"cart\";");
    ser_str(&mut s, &cart);
    s.push_str("s:8:\"customer\";");
    ser_str(&mut s, &customer);
    s.push_str("s:11:\"cart_totals\";");
    ser_str(
        &mut s,
        "a:2:{s:8:\"subtotal\";s:5:\"19.99\";s:5:\"total\";d:19.99;}",
    );
    s.push('}');
    s
}

fn action_schedule(rng: &mut Rng) -> String {
    let t = 1_700_000_000 + rng.below(10_000_000);
    format!(
        "O:30:\"ActionScheduler_SimpleSchedule\":2:{{s:22:\"\0*\0scheduled_timestamp\";i:{t};s:41:\"\0ActionScheduler_SimpleSchedule\0timestamp\";i:{t};}}"
    )
}

fn lit(out: &mut Vec<u8>, v: &str) {
    out.push(b'\'');
    escape_into(v.as_bytes(), out);
    out.push(b'\'');
}

/// Writes extended INSERTs of roughly `line_bytes` each, mysqldump style.
struct Table<'a, W: Write> {
    w: &'a mut W,
    name: &'static str,
    line: Vec<u8>,
    line_bytes: usize,
}

impl<'a, W: Write> Table<'a, W> {
    /// A table `name` written to `w` in INSERT lines of up to 1 MiB, as mysqldump does.
    fn new(w: &'a mut W, name: &'static str) -> Self {
        Table {
            w,
            name,
            line: Vec::new(),
            line_bytes: 1 << 20,
        }
    }

    fn row(&mut self, row: &[u8]) -> io::Result<()> {
        if self.line.is_empty() {
            self.line
                .extend_from_slice(format!("INSERT INTO `{}` VALUES ", self.name).as_bytes());
        } else {
            self.line.push(b',');
        }
        self.line.extend_from_slice(row);
        if self.line.len() >= self.line_bytes {
            self.flush()?;
        }
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.line.is_empty() {
            self.line.extend_from_slice(b";\n");
            self.w.write_all(&self.line)?;
            self.line.clear();
        }
        Ok(())
    }
}

fn generate(path: &std::path::Path, target: u64) -> io::Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut rng = Rng(0x9e3779b97f4a7c15);
    w.write_all(b"-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n-- Host: localhost    Database: wordpress\n\
        /*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!50503 SET NAMES utf8mb4 */;\n\
        /*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;\n")?;
    let mut written: u64 = 0;
    let mut id: u64 = 1;
    // Options: a few big serialized values.
    {
        let mut t = Table::new(&mut w, "wp_options");
        for (k, v) in [("siteurl", FROM.to_string()), ("home", FROM.to_string())] {
            let mut r = format!("({id},'{k}',").into_bytes();
            lit(&mut r, &v);
            r.extend_from_slice(b",'yes')");
            t.row(&r)?;
            id += 1;
        }
        let mut cron = format!("a:{}:{{", 400);
        for i in 0..400 {
            cron.push_str(&format!("i:{};a:1:{{s:20:\"wp_scheduled_delete{:x}\";a:1:{{s:32:\"40cd750bba9870f18aada2478b24840a\";a:3:{{s:8:\"schedule\";s:5:\"daily\";s:4:\"args\";a:1:{{i:0;", 1_700_000_000 + i, i % 16));
            ser_str(&mut cron, &format!("{FROM}/?cron={i}"));
            cron.push_str("}s:8:\"interval\";i:86400;}}}");
        }
        cron.push('}');
        let mut r = format!("({id},'cron',").into_bytes();
        lit(&mut r, &cron);
        r.extend_from_slice(b",'yes')");
        t.row(&r)?;
        t.flush()?;
    }
    while written < target {
        // wp_posts
        {
            let mut t = Table::new(&mut w, "wp_posts");
            for _ in 0..400 {
                let mut r =
                    format!("({id},1,'2024-01-02 03:04:05','2024-01-02 03:04:05',").into_bytes();
                lit(&mut r, &post_content(&mut rng, id));
                r.push(b',');
                lit(&mut r, &format!("Post {id} — Größe"));
                r.extend_from_slice(b",'','publish','open','open','',");
                lit(&mut r, &format!("post-{id}"));
                r.extend_from_slice(b",'','','2024-01-02 03:04:05','2024-01-02 03:04:05','',0,");
                lit(&mut r, &format!("{FROM}/?p={id}"));
                r.extend_from_slice(b",0,'post','',0)");
                t.row(&r)?;
                id += 1;
            }
            t.flush()?;
        }
        // wp_postmeta; every 8th round as one very long (~32 MB) INSERT line.
        {
            let line_bytes = if (id / 400) & 7 == 0 {
                32 << 20
            } else {
                1 << 20
            };
            let mut t = Table {
                w: &mut w,
                name: "wp_postmeta",
                line: Vec::new(),
                line_bytes,
            };
            for _ in 0..2500 {
                let pid = rng.below(id);
                let (k, v) = match rng.below(10) {
                    0 => ("_wp_attachment_metadata", attachment_metadata(&mut rng, pid)),
                    1 => ("_elementor_data", elementor_json(&mut rng)),
                    2 => ("_menu_item_url", format!("{FROM}/category/c{}/", rng.below(50))),
                    3 => ("_wp_attached_file", format!("2024/01/img-{pid}.jpg")),
                    4 => ("_price", format!("{}.{:02}", rng.below(500), rng.below(100))),
                    5 => ("_product_attributes", "a:1:{s:5:\"color\";a:6:{s:4:\"name\";s:5:\"Color\";s:5:\"value\";s:14:\"Red | Blue | ü\";s:8:\"position\";i:0;s:10:\"is_visible\";i:1;s:12:\"is_variation\";i:1;s:11:\"is_taxonomy\";i:0;}}".to_string()),
                    6 => ("_edit_lock", format!("{}:1", 1_700_000_000 + rng.below(1000))),
                    _ => ("_yoast_wpseo_metadesc", { let mut s = String::new(); words(&mut rng, 25, &mut s); s }),
                };
                let mut r = format!("({id},{pid},'{k}',").into_bytes();
                lit(&mut r, &v);
                r.push(b')');
                t.row(&r)?;
                id += 1;
            }
            t.flush()?;
        }
        // WooCommerce sessions (double serialized) and Action Scheduler (NUL property names).
        {
            let mut t = Table::new(&mut w, "wp_woocommerce_sessions");
            for _ in 0..300 {
                let mut r = format!("({id},'t_{:x}',", rng.next()).into_bytes();
                lit(&mut r, &wc_session(&mut rng));
                r.extend_from_slice(format!(",{})", 1_700_000_000 + rng.below(99999)).as_bytes());
                t.row(&r)?;
                id += 1;
            }
            t.flush()?;
            let mut t = Table::new(&mut w, "wp_actionscheduler_actions");
            for _ in 0..500 {
                let mut r = format!("({id},'woocommerce_cleanup_draft_orders','pending','2024-01-01 00:00:00','2024-01-01 00:00:00',").into_bytes();
                lit(
                    &mut r,
                    &format!(
                        "{{\"url\":\"{}\\/wc-api\\/{}\"}}",
                        FROM.replace('/', "\\/"),
                        rng.below(99)
                    ),
                );
                r.push(b',');
                lit(&mut r, &action_schedule(&mut rng));
                r.extend_from_slice(b",2,0,'0000-00-00 00:00:00','0000-00-00 00:00:00',NULL)");
                t.row(&r)?;
                id += 1;
            }
            t.flush()?;
            let mut t = Table::new(&mut w, "wp_comments");
            for _ in 0..300 {
                let mut r = format!("({id},{},'Jörg','j@example.org',", rng.below(id)).into_bytes();
                lit(
                    &mut r,
                    if rng.below(3) == 0 {
                        FROM
                    } else {
                        "https://someone-else.example.net"
                    },
                );
                r.extend_from_slice(b",'192.0.2.1','2024-01-01 00:00:00','2024-01-01 00:00:00',");
                let mut c = String::new();
                words(&mut rng, 30, &mut c);
                lit(&mut r, &c);
                r.extend_from_slice(b",0,'1','Mozilla/5.0','comment',0,0)");
                t.row(&r)?;
                id += 1;
            }
            t.flush()?;
        }
        w.flush()?;
        written = w.get_ref().metadata()?.len();
    }
    w.write_all(
        b"/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;\n-- Dump completed on 2024-01-02  3:04:05\n",
    )?;
    w.flush()?;
    Ok(w.get_ref().metadata()?.len())
}

/// On-CPU time of this (single-threaded) process in seconds, from /proc/self/schedstat; unlike
/// wall time it does not grow when other builds share the cores.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(f64::NAN, |ns| ns as f64 / 1e9)
}

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Counts bytes written without keeping them.
struct Count(u64);
impl Write for Count {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One measurement, run in a fresh child process so that VmHWM is the rewriter's own peak.
fn measure(path: &str, from: &str, to: &str, size: u64) -> io::Result<()> {
    let mut rw = Rewriter::new(Replacements::url(from, to).unwrap());
    let mut best = f64::MAX;
    let mut best_cpu = f64::MAX;
    let mut last = None;
    for _ in 0..5 {
        let f = File::open(path)?;
        let mut sink = Count(0);
        let t = Instant::now();
        let c = cpu_seconds();
        let r = rw.rewrite(f, &mut sink)?;
        best_cpu = best_cpu.min(cpu_seconds() - c);
        best = best.min(t.elapsed().as_secs_f64());
        last = Some((r, sink.0));
    }
    let (r, out_bytes) = last.unwrap();
    println!(
        "  {from} -> {to}: {:.0} MB/s wall, {:.0} MB/s CPU time (best of 5: {:.3}s wall for {:.1} MB), peak RSS {:.1} MiB, out {:.1} MB, buffer peak {} KiB\n    {}",
        size as f64 / 1e6 / best,
        size as f64 / 1e6 / best_cpu,
        best,
        size as f64 / 1e6,
        vm_hwm_kib().unwrap_or(0) as f64 / 1024.0,
        out_bytes as f64 / 1e6,
        r.peak_buffer / 1024,
        r
    );
    assert_eq!(r.warnings_total, 0, "{:?}", r.warnings.first());
    Ok(())
}

/// A writer that checks its input against another stream.
struct Compare<R: Read> {
    other: R,
    pos: u64,
}
impl<R: Read> Write for Compare<R> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let mut expect = vec![0u8; b.len()];
        self.other.read_exact(&mut expect)?;
        if expect != b {
            let i = expect.iter().zip(b).position(|(x, y)| x != y).unwrap();
            panic!("round trip differs at byte {}", self.pos + i as u64);
        }
        self.pos += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn main() -> io::Result<()> {
    if let Ok(spec) = std::env::var("SR_BENCH_CHILD") {
        let parts: Vec<&str> = spec.splitn(4, '\t').collect();
        return measure(parts[0], parts[1], parts[2], parts[3].parse().unwrap());
    }
    let mb: u64 = std::env::var("SR_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    // SR_BENCH_FILE: generate into (or reuse) this file and keep it.
    let keep = std::env::var_os("SR_BENCH_FILE");
    let path = keep
        .clone()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("sr-bench-{}.sql", std::process::id()))
        });
    let t0 = Instant::now();
    let size = match std::fs::metadata(&path) {
        Ok(m) if keep.is_some() => m.len(),
        _ => generate(&path, mb << 20)?,
    };
    println!(
        "generated {:.1} MB WordPress + WooCommerce dump in {:.1}s",
        size as f64 / 1e6,
        t0.elapsed().as_secs_f64()
    );
    {
        // Warm the page cache.
        let mut f = File::open(&path)?;
        let mut buf = vec![0u8; 1 << 20];
        while f.read(&mut buf)? > 0 {}
    }
    let cases = [
        (
            "longer replacement URL",
            FROM,
            "https://www.new-production-shop.example.org",
        ),
        ("shorter replacement URL", FROM, "https://n.io"),
        (
            "from URL absent (scan only)",
            "https://not-in-dump.example",
            "https://x.example",
        ),
    ];
    let exe = std::env::current_exe()?;
    let mut ok = true;
    for (label, from, to) in cases {
        println!("{label}:");
        let status = std::process::Command::new(&exe)
            .env(
                "SR_BENCH_CHILD",
                format!("{}\t{from}\t{to}\t{size}", path.display()),
            )
            .status()?;
        ok &= status.success();
    }
    // Sanity check on the whole dump: A→B then B→A restores it byte for byte.
    let mid = path.with_extension("mid.sql");
    let fwd = Rewriter::new(Replacements::url(FROM, "https://n.io").unwrap())
        .rewrite(File::open(&path)?, File::create(&mid)?)?;
    let back = Rewriter::new(Replacements::url("https://n.io", FROM).unwrap()).rewrite(
        File::open(&mid)?,
        Compare {
            other: io::BufReader::new(File::open(&path)?),
            pos: 0,
        },
    )?;
    std::fs::remove_file(&mid)?;
    assert_eq!(back.bytes_out, size);
    assert_eq!(
        (fwd.values_changed, fwd.replacements),
        (back.values_changed, back.replacements)
    );
    println!(
        "round trip {FROM} -> https://n.io -> {FROM}: identical ({} values changed each way)",
        fwd.values_changed
    );
    if keep.is_none() {
        std::fs::remove_file(&path)?;
    }
    assert!(ok, "a measurement failed");
    Ok(())
}
