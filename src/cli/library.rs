//! `library`: the models already on this machine, from the tools' own folders.

use std::io::Write;

use super::{Outcome, print_json};

pub fn run(json: bool, out: &mut dyn Write) -> Outcome {
    let entries = crate::library::scan();
    if json {
        return print_json(out, &serde_json::to_value(&entries)?);
    }
    if entries.is_empty() {
        writeln!(out, "no models found in the Hugging Face cache, Ollama or LM Studio folders")?;
    }
    for e in &entries {
        let arch = e.architecture.as_deref().unwrap_or("");
        let missing = if e.missing.is_empty() { String::new() } else { format!("  missing: {}", e.missing.join("; ")) };
        let rev = if e.revision.len() > 12 { &e.revision[..12] } else { &e.revision };
        writeln!(
            out,
            "{:<11} {:<48} {:<12} {:<13} {:>10} MB  {arch}{missing}",
            e.source.as_str(),
            e.name,
            rev,
            e.format,
            e.bytes / 1_000_000
        )?;
    }
    Ok(())
}
