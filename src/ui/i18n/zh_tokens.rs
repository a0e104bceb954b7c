//! 中文 for the strings of `src/ui/tokens*.rs` (see `super` for how keys work).

pub(super) const ENTRIES: &[(&str, &str)] = &[
];
