//! 中文 for the strings of `src/ui/inspector*.rs` (see `super` for how keys work).

pub(super) const ENTRIES: &[(&str, &str)] = &[
];
