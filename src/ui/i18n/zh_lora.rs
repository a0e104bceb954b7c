//! 中文 for the strings of `src/ui/lora*.rs` (see `super` for how keys work).

pub(super) const ENTRIES: &[(&str, &str)] = &[
];
