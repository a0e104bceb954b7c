//! `blocks`: one quantization block of a GGUF tensor taken apart.

use std::io::Write;
use std::path::Path;

use super::{Outcome, print_json};
use crate::arch::ModelFolder;
use crate::checkpoint::quant_blocks::block;
use crate::report;

pub fn run(path: &Path, tensor: &str, index: usize, json: bool, out: &mut dyn Write) -> Outcome {
    let model = ModelFolder::open(path)?;
    let ckpt = &model.checkpoint;
    // Accept the GGUF name too (`blk.0.attn_q.weight`).
    let name = ckpt
        .gguf
        .as_ref()
        .and_then(|g| {
            g.entries.iter().find(|(_, e)| e.gguf_name == tensor && e.expert.is_none()).map(|(n, _)| n.clone())
        })
        .unwrap_or_else(|| tensor.to_string());
    let info = ckpt.require(&name).map_err(|e| format!("{e} in {}", path.display()))?;
    let entry =
        ckpt.gguf_entry(&info.name).ok_or_else(|| format!("{}: not a GGUF file; blocks are GGUF's", path.display()))?;
    let blocks = entry.ggml_type.bytes_per_block().map_or(0, |b| ckpt.bytes(info).len() / b);
    let b = block(entry.ggml_type, ckpt.bytes(info), index)?.ok_or_else(|| {
        format!("`{}` has {blocks} blocks (0…{}); there is no block {index}", info.name, blocks.saturating_sub(1))
    })?;
    let place = match info.dtype {
        crate::checkpoint::Dtype::Ggml(layout) => b.place(layout),
        _ => (0, 0),
    };
    let value = report::block_json(&info.name, &b, place);
    if json {
        return print_json(out, &value);
    }
    writeln!(out, "{} ({}), block {index} of {blocks}: {}", info.name, entry.ggml_type, b.formula)?;
    for (k, v) in value["fields"].as_object().into_iter().flatten() {
        writeln!(out, "  {k} = {v}")?;
    }
    writeln!(out, "  codes  = {:?}", b.codes)?;
    writeln!(out, "  values = {:?}", b.values)?;
    Ok(())
}
