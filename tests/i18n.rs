//! Every UI string has its Chinese, and no Chinese is left over.
//!
//! Reads the UI source for `tr("…")` / `trf("…"` keys and compares them with the tables in
//! `src/ui/i18n/`. A second check catches English handed straight to a widget (`ui.label("…")`)
//! so a new label cannot slip past the switch unnoticed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use llm_anatomy::ui::i18n::zh_entries;

/// Every `.rs` file under `src/ui`, panels' folders included.
fn ui_sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ui")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                // The translation tables themselves are not UI code.
                if !path.ends_with("i18n") {
                    dirs.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

/// Parses the Rust string literal that starts at `s[0] == '"'`; returns its value.
fn literal(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s[1..].chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                '\\' => out.push('\\'),
                '\n' => {
                    while chars.peek().is_some_and(|c| c.is_whitespace()) {
                        chars.next();
                    }
                }
                'u' => {
                    let code: String = chars.by_ref().skip(1).take_while(|&c| c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&code, 16).ok()?)?);
                }
                other => panic!("unhandled escape \\{other}"),
            },
            c => out.push(c),
        }
    }
    None
}

/// The first string argument of every call to one of `names`, with the file and line.
fn calls<'a>(sources: &'a [(PathBuf, String)], names: &[&str]) -> Vec<(String, String, &'a Path)> {
    let mut found = Vec::new();
    for (path, src) in sources {
        for name in names {
            let pat = format!("{name}(");
            for (at, _) in src.match_indices(&pat) {
                let before = src[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = src[at + pat.len()..].trim_start();
                if rest.starts_with('"') {
                    let line = src[..at].lines().count();
                    let value = literal(rest).unwrap_or_else(|| panic!("{}:{line}: unterminated", path.display()));
                    found.push((value, format!("{}:{line}", path.display()), path.as_path()));
                }
            }
        }
    }
    found
}

fn blanks(s: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        let after = &rest[i + 1..];
        if let Some(j) = after.find('}')
            && after[..j].chars().all(|c| c.is_ascii_digit())
        {
            *m.entry(after[..j].to_string()).or_default() += 1;
            rest = &after[j + 1..];
        } else {
            rest = after;
        }
    }
    m
}

#[test]
fn every_ui_string_has_chinese_and_no_chinese_is_stale() {
    let sources = ui_sources();
    let used: BTreeSet<String> = calls(&sources, &["tr", "trf"]).into_iter().map(|(k, _, _)| k).collect();
    assert!(used.len() > 100, "only {} translated strings found: is the scanner broken?", used.len());
    let mut table = BTreeMap::new();
    let mut problems = Vec::new();
    for (en, zh) in zh_entries() {
        if let Some(old) = table.insert(en.to_string(), zh.to_string()) {
            problems.push(format!("twice in the tables: {en:?} ({old:?} / {zh:?})"));
        }
        if zh.trim().is_empty() || zh == en {
            problems.push(format!("no real translation: {en:?}"));
        }
        if blanks(en) != blanks(zh) {
            problems.push(format!("blanks differ: {en:?} vs {zh:?}"));
        }
    }
    for key in &used {
        if !table.contains_key(key) {
            problems.push(format!("no Chinese for {key:?}"));
        }
    }
    for key in table.keys() {
        if !used.contains(key) {
            problems.push(format!("Chinese for a string no longer used: {key:?}"));
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn no_english_goes_to_a_widget_untranslated() {
    let sources = ui_sources();
    let widgets = [
        "label",
        "heading",
        "button",
        "small_button",
        "on_hover_text",
        "on_disabled_hover_text",
        "menu_button",
        "selectable_label",
        "hint_text",
        "RichText::new",
        "Window::new",
        "CollapsingHeader::new",
        "weak",
        "strong",
        "link",
        "Button::new",
        "note",
        "show_tooltip_text",
    ];
    // Code words a student types exactly as written are not translated.
    let is_code = |s: &str| {
        !s.contains(' ')
            && (s.contains(['_', '.', '(', '-'])
                || s.chars().skip(1).any(char::is_uppercase)
                || !s.contains(char::is_lowercase))
    };
    let bad: Vec<String> = calls(&sources, &widgets)
        .into_iter()
        .filter(|(s, _, _)| s.chars().filter(|c| c.is_ascii_alphabetic()).count() >= 2 && !is_code(s))
        .map(|(s, at, _)| format!("{at}: {s:?}"))
        .collect();
    assert!(bad.is_empty(), "wrap these in tr(…):\n{}", bad.join("\n"));
}

#[test]
fn the_literal_parser_reads_escapes() {
    assert_eq!(literal(r#""a\"b\n\u{3b1}" rest"#).unwrap(), "a\"b\nα");
    assert_eq!(literal("\"one \\\n      two\"").unwrap(), "one two");
}
