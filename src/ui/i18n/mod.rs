//! 中文 / English for every label, tooltip and explanation.
//!
//! The English text is its own key, as gettext does it: code reads as English, a missing
//! translation falls back to English rather than to a key nobody can read, and the
//! translator sees the whole sentence. `tests/i18n.rs` reads the source for every `tr("…")`
//! and `trf("…")` and fails if one has no Chinese or a Chinese entry is no longer used.
//!
//! The tables are split by panel so each file stays reviewable; they are merged once.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Display;
use std::sync::LazyLock;

mod zh_app;
mod zh_bits;
mod zh_inspector;
mod zh_internals;
mod zh_lora;
mod zh_metadata;
mod zh_routing;
mod zh_tokens;
mod zh_tree;

pub use crate::workspace::Lang;

// Per thread, not global: the UI runs on one thread, and UI tests on parallel threads must
// not switch each other's language.
thread_local! {
    static CURRENT: Cell<Lang> = const { Cell::new(Lang::En) };
}

/// Sets the language the next `tr` calls on this thread answer in (the app does it each frame).
pub fn set_lang(lang: Lang) {
    CURRENT.with(|c| c.set(lang));
}

pub fn lang() -> Lang {
    CURRENT.with(Cell::get)
}

static ZH: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| zh_entries().into_iter().collect());

/// Every (English, 中文) pair, in table order (tests check them for duplicates and use).
pub fn zh_entries() -> Vec<(&'static str, &'static str)> {
    [
        zh_app::ENTRIES,
        zh_tree::ENTRIES,
        zh_inspector::ENTRIES,
        zh_bits::ENTRIES,
        zh_lora::ENTRIES,
        zh_routing::ENTRIES,
        zh_tokens::ENTRIES,
        zh_internals::ENTRIES,
        zh_metadata::ENTRIES,
    ]
    .concat()
}

/// The UI text in the current language.
pub fn tr(en: &'static str) -> &'static str {
    match lang() {
        Lang::En => en,
        Lang::Zh => ZH.get(en).copied().unwrap_or(en),
    }
}

/// A translated template with its blanks filled: `{}` takes the next argument, `{N}` the
/// N-th, so a translation can put the arguments in another order. Format numbers first
/// (`&format!("{x:.2}")`); the blanks take no format specs.
pub fn trf(template: &'static str, args: &[&dyn Display]) -> String {
    fill(tr(template), args)
}

pub fn fill(template: &str, args: &[&dyn Display]) -> String {
    let mut out = String::with_capacity(template.len() + 16 * args.len());
    let mut next = 0;
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if after[..close].chars().all(|c| c.is_ascii_digit()) => {
                let index = if close == 0 {
                    next += 1;
                    next - 1
                } else {
                    after[..close].parse().unwrap_or(usize::MAX)
                };
                if let Some(arg) = args.get(index) {
                    out.push_str(&arg.to_string());
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_blanks_in_order_or_by_index() {
        assert_eq!(fill("{} of {}", &[&1, &"two"]), "1 of two");
        assert_eq!(fill("{1} 的 {0}", &[&"a", &"b"]), "b 的 a");
        assert_eq!(fill("set {x} {}", &[&5]), "set {x} 5");
    }

    #[test]
    fn language_is_per_thread_and_falls_back_to_english() {
        set_lang(Lang::Zh);
        assert_eq!(tr("no such sentence anywhere"), "no such sentence anywhere");
        std::thread::spawn(|| assert_eq!(lang(), Lang::En)).join().unwrap();
        set_lang(Lang::En);
    }
}
