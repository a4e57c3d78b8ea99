//! Dump-level tests: the cases real WordPress data hits, SQL structure, streaming bounds.

use search_replace::{Replacements, Report, Rewriter};

fn rw_with(r: Replacements, input: &[u8], chunk: usize) -> (String, Report) {
    let mut out = Vec::new();
    let report = Rewriter::new(r)
        .with_chunk_size(chunk)
        .rewrite(input, &mut out)
        .unwrap();
    (String::from_utf8(out).unwrap(), report)
}

fn rw(input: &str) -> (String, Report) {
    let r = Replacements::url("https://old.test", "https://www.new-site.example").unwrap();
    let (a, rep) = rw_with(r.clone(), input.as_bytes(), 1 << 20);
    // Every test also runs with a tiny chunk to cross buffer boundaries everywhere.
    let (b, rep_b) = rw_with(r, input.as_bytes(), 17);
    assert_eq!(a, b, "chunk size changed the output");
    assert_eq!(rep.warnings, rep_b.warnings);
    (a, rep)
}

#[test]
fn plain_values_all_forms() {
    let (out, rep) = rw(
        "INSERT INTO `wp_posts` VALUES (1,'<a href=\"https://old.test/a\">x</a> http://old.test/b','https://old.test/?p=1',\
         '{\"url\":\"https:\\\\/\\\\/old.test\\\\/c\",\"u2\":\"http:\\\\/\\\\/old.test\"}','//old.test stays','https://old.testing');\n",
    );
    // Unchanged bytes of a changed literal keep their original escaping (here: bare `"`).
    assert_eq!(
        out,
        "INSERT INTO `wp_posts` VALUES (1,'<a href=\"https://www.new-site.example/a\">x</a> https://www.new-site.example/b','https://www.new-site.example/?p=1',\
         '{\"url\":\"https:\\\\/\\\\/www.new-site.example\\\\/c\",\"u2\":\"https:\\\\/\\\\/www.new-site.example\"}','//old.test stays','https://www.new-site.exampleing');\n"
    );
    assert_eq!(rep.values_changed, 4);
    assert_eq!(rep.replacements, 6);
    assert_eq!(rep.literals, 5);
}

#[test]
fn unchanged_literals_are_copied_byte_for_byte() {
    // Non-canonical escapes, doubled quotes, raw newlines: untouched when nothing matches,
    // even though their value contains the host.
    let input = "INSERT INTO t VALUES ('it''s \\a\\/ old.test\n','x\\%y\\_z','\\Z\\b\\t\\0');\n";
    let (out, rep) = rw(input);
    assert_eq!(out, input);
    assert_eq!(rep.values_changed, 0);
}

#[test]
fn noncanonical_escapes_are_seen_through() {
    // `\/` is `/` to MySQL: the value is the URL even though the raw text is not.
    let (out, rep) =
        rw("INSERT INTO t VALUES ('https:\\/\\/old.test\\/x','it''s https://old.test');\n");
    assert_eq!(out, "INSERT INTO t VALUES ('https://www.new-site.example/x','it\\'s https://www.new-site.example');\n");
    assert_eq!(rep.values_changed, 2);
}

#[test]
fn structure_is_never_touched() {
    let input = "-- Host: https://old.test it's\n\
                 # https://old.test '\n\
                 /* https://old.test ' */\n\
                 /*!40101 SET NAMES 'utf8mb4' */;\n\
                 /*M!999999\\- enable the sandbox mode */\n\
                 CREATE TABLE `it's https://old.test` (`a``'` int) COMMENT 'https://old.test';\n\
                 INSERT INTO `it's https://old.test` VALUES (X'6f6c642e74657374',x'27',b'1',-1,1--1\n,'https://old.test');\n\
                 /*!50003 CREATE*/ /*!50003 TRIGGER x BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 'https://old.test' */;;\n";
    let (out, rep) = rw(input);
    let expected = input
        .replace(
            "COMMENT 'https://old.test'",
            "COMMENT 'https://www.new-site.example'",
        )
        .replace(",'https://old.test');", ",'https://www.new-site.example');")
        .replace(
            "NEW.a = 'https://old.test'",
            "NEW.a = 'https://www.new-site.example'",
        );
    assert_eq!(out, expected);
    assert_eq!(rep.values_changed, 3);
}

#[test]
fn double_quoted_literals() {
    let (out, _) = rw("INSERT INTO t VALUES (\"say \"\"hi\"\" https://old.test\");\n");
    assert_eq!(
        out,
        "INSERT INTO t VALUES (\"say \\\"hi\\\" https://www.new-site.example\");\n"
    );
}

fn esc(v: &str) -> String {
    let mut o = Vec::new();
    search_replace::sql::escape_into(v.as_bytes(), &mut o);
    String::from_utf8(o).unwrap()
}

#[test]
fn serialized_option_lengths_recomputed() {
    // widget_text with a multibyte title and a text containing quotes; the title has no match.
    let text = "<a href=\"https://old.test/x\">ä</a> <img src='http://old.test/i.png'>";
    let new_text = text
        .replace("https://old.test", "https://www.new-site.example")
        .replace("http://old.test", "https://www.new-site.example");
    let value = |t: &str| {
        format!("a:2:{{i:2;a:2:{{s:5:\"title\";s:5:\"Über\";s:4:\"text\";s:{}:\"{}\";}}s:12:\"_multiwidget\";i:1;}}", t.len(), t)
    };
    let (out, rep) = rw(&format!(
        "INSERT INTO `wp_options` VALUES (1,'widget_text','{}','yes');\n",
        esc(&value(text))
    ));
    assert_eq!(
        out,
        format!(
            "INSERT INTO `wp_options` VALUES (1,'widget_text','{}','yes');\n",
            esc(&value(&new_text))
        )
    );
    assert_eq!(new_text.len(), text.len() + 12 + 13);
    assert_eq!(
        (
            rep.values_changed,
            rep.serialized_rewritten,
            rep.replacements
        ),
        (1, 1, 2)
    );
    // With a wrong length (6 for the 5 bytes of "Über"), the whole value is left untouched.
    let broken = format!(
        "INSERT INTO `wp_options` VALUES (1,'widget_text','{}','yes');\n",
        esc(&value(text).replace("s:5:\"Über", "s:6:\"Über"))
    );
    let (out, rep) = rw(&broken);
    assert_eq!(out, broken);
    assert_eq!((rep.values_changed, rep.warnings_total), (0, 1));
}

#[test]
fn serialized_with_escaped_quotes_backslashes_multibyte() {
    // Value: a:1:{s:4:"text";s:N:"He said "hi" \o/ — 日本 https://old.test";}
    let text = "He said \"hi\" \\o/ — 日本 https://old.test";
    let new_text = "He said \"hi\" \\o/ — 日本 https://www.new-site.example";
    let value = format!("a:1:{{s:4:\"text\";s:{}:\"{}\";}}", text.len(), text);
    let expected_value = format!(
        "a:1:{{s:4:\"text\";s:{}:\"{}\";}}",
        new_text.len(),
        new_text
    );
    let (out, rep) = rw(&format!("INSERT INTO t VALUES ('{}');\n", esc(&value)));
    assert_eq!(
        out,
        format!("INSERT INTO t VALUES ('{}');\n", esc(&expected_value))
    );
    assert_eq!(
        (
            rep.values_changed,
            rep.serialized_rewritten,
            rep.warnings_total
        ),
        (1, 1, 0)
    );
}

#[test]
fn woocommerce_session_double_serialized() {
    // wp_woocommerce_sessions.session_value: an array whose values are serialized strings.
    let cart_inner = "a:1:{s:32:\"0123456789abcdef0123456789abcdef\";a:2:{s:10:\"product_id\";i:42;s:5:\"image\";s:29:\"https://old.test/img/tshirt.j\";}}";
    let customer_inner = "a:2:{s:2:\"id\";s:1:\"0\";s:7:\"website\";s:16:\"https://old.test\";}";
    let outer = format!(
        "a:2:{{s:4:\"cart\";s:{}:\"{}\";s:8:\"customer\";s:{}:\"{}\";}}",
        cart_inner.len(),
        cart_inner,
        customer_inner.len(),
        customer_inner
    );
    let mut sql = Vec::new();
    search_replace::sql::escape_into(outer.as_bytes(), &mut sql);
    let input = format!(
        "INSERT INTO `wp_woocommerce_sessions` VALUES (1,'t_abc','{}',1700000000);\n",
        String::from_utf8(sql).unwrap()
    );
    let (out, rep) = rw(&input);
    let new_cart = cart_inner.replace(
        "s:29:\"https://old.test",
        "s:41:\"https://www.new-site.example",
    );
    let new_customer = customer_inner.replace(
        "s:16:\"https://old.test",
        "s:28:\"https://www.new-site.example",
    );
    let new_outer = format!(
        "a:2:{{s:4:\"cart\";s:{}:\"{}\";s:8:\"customer\";s:{}:\"{}\";}}",
        new_cart.len(),
        new_cart,
        new_customer.len(),
        new_customer
    );
    assert_eq!(new_cart.len(), cart_inner.len() + 12);
    let mut sql = Vec::new();
    search_replace::sql::escape_into(new_outer.as_bytes(), &mut sql);
    assert_eq!(
        out,
        format!(
            "INSERT INTO `wp_woocommerce_sessions` VALUES (1,'t_abc','{}',1700000000);\n",
            String::from_utf8(sql).unwrap()
        )
    );
    assert_eq!(
        (
            rep.serialized_rewritten,
            rep.replacements,
            rep.warnings_total
        ),
        (1, 2, 0)
    );
    assert!(search_replace::serialized::validate_deep(new_outer.as_bytes()).is_ok());
}

#[test]
fn action_scheduler_nul_property_names() {
    // As mysqldump writes it: each NUL is the two-character escape \0 but one byte of the value.
    let input = "INSERT INTO `wp_actionscheduler_actions` VALUES (7,'woocommerce_cleanup','pending',\
        'O:30:\\\"ActionScheduler_SimpleSchedule\\\":3:{s:22:\\\"\\0*\\0scheduled_timestamp\\\";i:1700000000;\
        s:41:\\\"\\0ActionScheduler_SimpleSchedule\\0timestamp\\\";i:1700000000;s:7:\\\"\\0*\\0hook\\\";s:19:\\\"https://old.test/cb\\\";}');\n";
    let (out, rep) = rw(input);
    let expected = input.replace(
        "s:19:\\\"https://old.test/cb",
        "s:31:\\\"https://www.new-site.example/cb",
    );
    assert_eq!(out, expected);
    assert_eq!((rep.serialized_rewritten, rep.warnings_total), (1, 0));
    // The same value with NULs miscounted as two bytes each does not parse: untouched + warning.
    let broken = input.replace("s:22:", "s:24:");
    let (out, rep) = rw(&broken);
    assert_eq!(out, broken);
    assert_eq!((rep.values_changed, rep.warnings_total), (0, 1));
    assert_eq!(rep.warnings[0].offset, broken.find("'O:30").unwrap() as u64);
}

#[test]
fn look_alikes_and_warnings() {
    let input = "INSERT INTO t VALUES ('a:1:{s:3:\\\"url\\\";s:99:\\\"https://old.test\\\";}','a:1:{broken','s:3:\\\"abc\\\";',\
                 'i:5 reasons https://old.test','a:1:{s:1:\\\"u\\\";s:16:\\\"https://old.test\\\";} trailing');\n";
    let (out, rep) = rw(input);
    let expected = input.replace(
        "'i:5 reasons https://old.test'",
        "'i:5 reasons https://www.new-site.example'",
    );
    assert_eq!(out, expected);
    // Only look-alikes that contain a match warn.
    assert_eq!(rep.warnings_total, 2);
    assert!(
        rep.warnings[0].message.contains("string length"),
        "{:?}",
        rep.warnings
    );
    assert!(
        rep.warnings[1].message.contains("trailing"),
        "{:?}",
        rep.warnings
    );
}

#[test]
fn unterminated_literal_copied_with_warning() {
    let input = "INSERT INTO t VALUES ('https://old.test";
    let (out, rep) = rw(input);
    assert_eq!(out, input);
    assert_eq!(rep.warnings_total, 1);
    assert_eq!(rep.warnings[0].offset, 22);
}

#[test]
fn empty_and_no_pairs() {
    let (out, _) = rw("");
    assert_eq!(out, "");
    let input = b"INSERT INTO t VALUES ('https://old.test');\n";
    let (out, rep) = rw_with(Replacements::new(), input, 1 << 20);
    assert_eq!(out.as_bytes(), input);
    assert_eq!(rep.values_changed, 0);
}

#[test]
fn generic_pairs_outside_wordpress() {
    let r = Replacements::new()
        .pair("foo", "quux")
        .unwrap()
        .pair("'", "\"")
        .unwrap();
    let (out, rep) = rw_with(
        r,
        b"INSERT INTO t VALUES ('foo''s','s:3:\\\"foo\\\";');\n",
        1 << 20,
    );
    assert_eq!(
        out,
        "INSERT INTO t VALUES ('quux\\\"s','s:4:\\\"quux\\\";');\n"
    );
    assert_eq!(rep.serialized_rewritten, 1);
}

#[test]
fn very_long_extended_insert_line_bounded_buffer() {
    // One 60 MB INSERT line of small rows: the buffer never grows beyond the chunk.
    let row = "(12345,'post','https://old.test/?p=12345','a:1:{s:3:\\\"url\\\";s:22:\\\"https://old.test/x.jpg\\\";}',NULL),";
    let n = 60_000_000 / row.len();
    let mut input = String::with_capacity(n * row.len() + 64);
    input.push_str("INSERT INTO `wp_posts` VALUES ");
    for _ in 0..n {
        input.push_str(row);
    }
    input.pop();
    input.push_str(";\n");
    let r = Replacements::url("https://old.test", "https://www.new-site.example").unwrap();
    let mut out = Vec::new();
    let rep = Rewriter::new(r)
        .rewrite(input.as_bytes(), &mut out)
        .unwrap();
    assert_eq!(rep.values_changed, 2 * n as u64);
    assert_eq!(rep.serialized_rewritten, n as u64);
    assert!(
        rep.peak_buffer <= 1 << 20,
        "buffer grew to {}",
        rep.peak_buffer
    );
    assert_eq!(out.len(), input.len() + n * 24);
}

#[test]
fn literal_longer_than_chunk_grows_buffer() {
    let big = "https://old.test ".repeat(200_000); // 3.4 MB literal
    let input = format!("INSERT INTO t VALUES ('{big}');\n");
    let (out, rep) = rw(&input);
    assert_eq!(
        out,
        input.replace("https://old.test", "https://www.new-site.example")
    );
    assert!(rep.peak_buffer > 1 << 20);
}
