//! `metadata`: a GGUF file's header, every key/value in file order.

use std::io::Write;
use std::path::Path;

use super::{Outcome, print_json};
use crate::arch::gguf::find_gguf;
use crate::checkpoint::gguf::GgufFile;
use crate::report;

pub fn run(path: &Path, json: bool, out: &mut dyn Write) -> Outcome {
    let file =
        find_gguf(path)?.ok_or_else(|| format!("{}: not a GGUF file (metadata reads GGUF headers)", path.display()))?;
    let file = GgufFile::open(&file)?;
    let value = report::metadata_json(&file);
    if json {
        return print_json(out, &value);
    }
    writeln!(
        out,
        "{}  GGUF v{}, {} tensors, alignment {}",
        file.file_name,
        file.version,
        file.tensors.len(),
        file.alignment
    )?;
    for (key, v) in value["metadata"].as_object().into_iter().flatten() {
        let shown = match &v["value"] {
            serde_json::Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        writeln!(out, "{key} [{}] = {shown}", v["type"].as_str().unwrap_or(""))?;
    }
    Ok(())
}
