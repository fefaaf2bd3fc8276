use super::*;

fn map(text: &str) -> Vec<(String, String)> {
    parse_map(text).into_iter().collect()
}

fn one(text: &str) -> (String, String) {
    let entries = parse(text).entries;
    assert_eq!(entries.len(), 1, "entries of {text:?}: {entries:?}");
    (entries[0].key.clone(), entries[0].value.clone())
}

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

#[test]
fn separators_are_equals_colon_or_blanks() {
    assert_eq!(one("a=b"), kv("a", "b"));
    assert_eq!(one("a:b"), kv("a", "b"));
    assert_eq!(one("a b"), kv("a", "b"));
    assert_eq!(one("a \t = \t b"), kv("a", "b"));
    assert_eq!(one("a : =b"), kv("a", "=b"));
    assert_eq!(one("a==b"), kv("a", "=b"));
    assert_eq!(one("a\t\tb c "), kv("a", "b c "));
    assert_eq!(one("   a"), kv("a", ""));
    assert_eq!(one("a="), kv("a", ""));
    assert_eq!(one("=b"), kv("", "b"));
}

#[test]
fn escaped_separators_stay_in_the_key() {
    assert_eq!(one(r"a\=b=c"), kv("a=b", "c"));
    assert_eq!(one(r"a\:b:c"), kv("a:b", "c"));
    assert_eq!(one(r"a\ b c"), kv("a b", "c"));
    assert_eq!(one(r"a\\=b"), kv(r"a\", "b"));
}

#[test]
fn escapes_are_resolved() {
    assert_eq!(one(r"k=\t\n\r\f\q\\"), kv("k", "\t\n\r\u{c}q\\"));
    assert_eq!(one(r"k=\u0041\u00e9"), kv("k", "Aé"));
    assert_eq!(one(r"k=\uD83D\uDE00"), kv("k", "😀"));
    assert_eq!(one(r"\u0041=x"), kv("A", "x"));
}

#[test]
fn malformed_unicode_escape_skips_only_that_entry() {
    let parsed = parse("a=1\nb=\\u12\nc=\\uzzzz1\nd=4\n");
    let keys: Vec<&str> = parsed.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["a", "d"]);
    let lines: Vec<u32> = parsed.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 3]);
}

#[test]
fn comments_only_start_a_natural_line() {
    assert_eq!(
        map("# c\n  ! c\na=b # not a comment\n"),
        [kv("a", "b # not a comment")]
    );
    assert_eq!(one("a=b\\\n#c"), kv("a", "b#c"));
    assert_eq!(one("a=b\\\n  !c"), kv("a", "b!c"));
}

#[test]
fn a_comment_after_a_lone_continuation_backslash_is_a_comment() {
    // JDK 9+ checks for a comment while the logical line is still empty.
    assert_eq!(map("\\\n#c\na=b"), [kv("a", "b")]);
}

#[test]
fn continuations_join_lines_and_strip_leading_blanks() {
    assert_eq!(one("a=b\\\n   c\\\n\td"), kv("a", "bcd"));
    assert_eq!(one("a\\\n b=c"), kv("ab", "c"));
    assert_eq!(map("a=b\\\\\nc=d"), [kv("a", "b\\"), kv("c", "d")]);
    assert_eq!(one("a=b\\\\\\\n c"), kv("a", "b\\c"));
    assert_eq!(map("a=b\\\n\nc=d"), [kv("a", "b"), kv("c", "d")]);
    assert_eq!(map("a=b\\\n   \nc=d"), [kv("a", "b"), kv("c", "d")]);
    assert_eq!(one("a=b\\"), kv("a", "b"));
    assert_eq!(one("a=b\\\n"), kv("a", "b"));
}

#[test]
fn a_lone_backslash_at_the_end_is_an_empty_key() {
    assert_eq!(one("\\"), kv("", ""));
    assert!(parse("\\\n  ").entries.is_empty());
}

#[test]
fn crlf_cr_and_lf_line_ends_number_lines_alike() {
    for nl in ["\n", "\r\n", "\r"] {
        let text = format!("a=1{nl}{nl}# c{nl}b=2\\{nl}  3{nl}c=4");
        let parsed = parse(&text);
        let got: Vec<(&str, &str, u32)> = parsed
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            got,
            [("a", "1", 1), ("b", "23", 4), ("c", "4", 6)],
            "{nl:?}"
        );
    }
    assert_eq!(map("a=b\\\r\nc"), [kv("a", "bc")]);
}

#[test]
fn later_duplicates_win_in_the_map_and_all_are_kept_in_entries() {
    let parsed = parse("a=1\na=2\n");
    assert_eq!(parsed.entries.len(), 2);
    assert_eq!(parse_map("a=1\na=2\n")["a"], "2");
}

#[test]
fn a_byte_order_mark_stays_in_the_first_key() {
    assert_eq!(one("\u{feff}a=b"), kv("\u{feff}a", "b"));
}

#[test]
fn invalid_utf8_is_read_as_latin1() {
    let (text, warning) = decode(b"a=\xe9t\xe9");
    assert_eq!(text, "a=été");
    assert!(warning.is_some());
    assert_eq!(decode("a=é".as_bytes()), ("a=é".to_string(), None));
}
