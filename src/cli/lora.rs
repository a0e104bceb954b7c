//! `lora`: what an adapter changes, module by module.

use std::io::Write;
use std::path::Path;

use super::{Outcome, print_json};
use crate::analysis::lowrank::{self, DeltaSummary};
use crate::arch::{ModelFolder, ROOT, peft};
use crate::checkpoint::CheckpointError;
use crate::lora::LoraAdapter;
use crate::report;

pub fn run(path: &Path, adapter: &Path, alpha: Option<f64>, json: bool, out: &mut dyn Write) -> Outcome {
    let model = ModelFolder::open(path)?;
    let adapter = LoraAdapter::open(adapter, &model, alpha)?;
    let summaries = summarize(&model, &adapter)?;
    if json {
        return print_json(out, &report::lora_json(&adapter, &summaries));
    }
    writeln!(
        out,
        "rank {}, alpha {}, scaling {} ({} modules)",
        adapter.rank,
        adapter.alpha,
        adapter.scaling,
        adapter.modules.len()
    )?;
    writeln!(out, "{}", peft::trainable_line(&adapter, model.tree.unique_param_count(ROOT)))?;
    for s in &summaries {
        writeln!(
            out,
            "{:<40} ||W|| {:>9.4}  ||dW|| {:>9.4}  ratio {:.4}  sv {:?}",
            s.module,
            s.w_norm,
            s.delta_norm,
            s.ratio,
            report::leading_singular_values(&s.singular_values).iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>()
        )?;
    }
    Ok(())
}

/// ΔW against the base weight it is added to, for every adapted module, in the adapter's order.
fn summarize(model: &ModelFolder, adapter: &LoraAdapter) -> Result<Vec<DeltaSummary>, CheckpointError> {
    let ckpt = &model.checkpoint;
    adapter
        .modules
        .iter()
        .map(|m| {
            let w = ckpt.require(&format!("{}.weight", m.module))?;
            let values = w.dtype.decode_all_f32(ckpt.bytes(w));
            Ok(lowrank::summarize(&m.module, &m.a, &m.b, m.rank, &values, adapter.scaling))
        })
        .collect()
}
