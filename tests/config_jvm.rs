//! Flumen's properties reader against the real `java.util.Properties` (needs `javac`/`java`;
//! skipped with a message when they are missing, unless `FLUMEN_REQUIRE_JVM=1`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use flumen::config::properties::{parse, parse_map};

/// Tricky inputs: continuations, escapes, separators, line ends, comments.
const CASES: &[&str] = &[
    "a=b\nc:d\ne f\n",
    "a = b\n  c\t:\td  \ne\u{c}f\n",
    "a : = b\na == b2\na3 := c\n",
    "key\\=with\\:seps\\ and\\ blanks = v\n",
    "k=v\\\n   continued\\\n\tand more\n",
    "k=even\\\\\nnext=1\n",
    "k=odd\\\\\\\n  joined\n",
    "k=v\\\n\nafter=blank\n",
    "k=v\\\n   \nafter=blanks\n",
    "k=v\\\n# not a comment\n",
    "k=v\\\n! not a comment either\n",
    "\\\n# after a lone backslash\nk=v\n",
    "# comment\n! bang\n   # indented comment\nk=v # trailing\n",
    "a=1\r\nb=2\\\r\n  3\r\nc=4",
    "a=1\rb=2\\\r  3\rc=4\r",
    "a=1\n\r\n\rb=2\n",
    "k=\\t\\n\\r\\f\\a\\b\\\\\\\"\n",
    "k=\\u0041\\u00e9\\u4e2d\\uD83D\\uDE00\n\\u006b2=x\n",
    "k=\\u12\n",
    "k=\\uzzzz\nok=1\n",
    "=empty key\n:also\n  \n",
    "empty1=\nempty2\nempty3 :\n",
    "trailing=blanks   \n",
    "dup=1\ndup=2\ndup 3\n",
    "no newline at end=x",
    "ends with backslash=x\\",
    "\\",
    "a.b.c=${env:HOME} $${x} \\${y}\n",
    "unicode=日本語 ü é\nキー=値\n",
    "\u{feff}bom=1\n",
    "tab\tsep\tvalue\n",
    "k=line1\\n\\\n    line2\n",
    "  \t\u{c}  indented=yes\n",
    "back\\\\slash\\\\=key\n",
];

fn escape(s: &str) -> String {
    let mut out = String::new();
    for unit in s.encode_utf16() {
        if (0x20..=0x7e).contains(&unit) && unit != u16::from(b'\\') {
            out.push(char::from(unit as u8));
        } else {
            out.push_str(&format!("\\u{unit:04x}"));
        }
    }
    out
}

fn has_tool(name: &str) -> bool {
    Command::new(name).arg("-version").output().is_ok()
}

#[test]
fn properties_reader_agrees_with_the_jdk() {
    if !has_tool("javac") || !has_tool("java") {
        if std::env::var("FLUMEN_REQUIRE_JVM").as_deref() == Ok("1") {
            panic!("javac/java not found and FLUMEN_REQUIRE_JVM=1");
        }
        eprintln!("SKIPPED properties_reader_agrees_with_the_jdk: javac/java not found");
        return;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().expect("temp dir");
    let status = Command::new("javac")
        .arg("-d")
        .arg(tmp.path())
        .arg(manifest.join("tests/jvm/DumpProperties.java"))
        .status()
        .expect("javac runs");
    assert!(status.success(), "javac failed");

    let mut files: Vec<PathBuf> = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let path = tmp.path().join(format!("case-{i:02}.properties"));
        std::fs::write(&path, case).expect("write case");
        files.push(path);
    }
    let corpus = manifest.join("../shared/corpus/flume-configs");
    let mut corpus_files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    corpus_files.retain(|p| p.extension().is_some_and(|e| e == "properties"));
    corpus_files.sort();
    assert!(
        corpus_files.len() >= 40,
        "corpus not found at {}",
        corpus.display()
    );
    files.extend(corpus_files);

    let output = Command::new("java")
        .arg("-cp")
        .arg(tmp.path())
        .arg("DumpProperties")
        .args(&files)
        .output()
        .expect("java runs");
    assert!(
        output.status.success(),
        "java failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("ASCII output");

    let mut java: BTreeMap<String, (bool, BTreeMap<String, String>)> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("FILE ") {
            let (path, status) = rest.rsplit_once(' ').expect("FILE line");
            java.insert(path.to_string(), (status == "OK", BTreeMap::new()));
            current = Some(path.to_string());
        } else if let Some(file) = &current {
            let (k, v) = line.split_once('\t').expect("entry line");
            if let Some((_, map)) = java.get_mut(file) {
                map.insert(k.to_string(), v.to_string());
            }
        }
    }

    let mut compared = 0;
    for file in &files {
        let key = file.display().to_string();
        let (ok, expected) = java
            .get(&key)
            .unwrap_or_else(|| panic!("no JVM output for {key}"));
        let bytes = std::fs::read(file).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        if !ok {
            assert!(
                !parse(&text).errors.is_empty(),
                "{key}: the JDK rejects this file but Flumen reports no syntax error"
            );
            continue;
        }
        let ours: BTreeMap<String, String> = parse_map(&text)
            .into_iter()
            .map(|(k, v)| (escape(&k), escape(&v)))
            .collect();
        assert_eq!(
            &ours, expected,
            "{key}: Flumen and the JDK disagree\n{text:?}"
        );
        compared += 1;
    }
    assert!(
        compared >= CASES.len() + 40 - 3,
        "only {compared} files compared"
    );
}
