//! `routing`: which experts each token goes to in every MoE layer.

use std::io::Write;

use super::{Outcome, Prompt, print_json};
use crate::analysis::routing;
use crate::arch::ModelFolder;
use crate::engine::Piece;
use crate::report;

pub fn run(prompt: &Prompt<'_>, json: bool, out: &mut dyn Write) -> Outcome {
    let model = ModelFolder::open(prompt.path)?;
    let cfg = model.config.as_ref().ok_or("this architecture is not supported for inference")?;
    // Checked before the weights load: a dense model has nothing to show, however long loading takes.
    let moe = cfg.moe.as_ref().ok_or_else(|| {
        format!("{} is a dense model: every token goes through the same MLP, so there is no routing to show (MoE families: Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE)", cfg.architecture)
    })?;
    let session = prompt.session(&model, None)?;
    let layers = routing::summarize(&session.routing, &session.shared_gate, moe.top_k, moe.norm_topk_prob);
    let pieces: Vec<Piece> = session.tokens.iter().map(|&id| session.codec.piece(id)).collect();
    if json {
        return print_json(out, &report::routing_json(&pieces, moe, &layers));
    }
    for l in &layers {
        writeln!(
            out,
            "layer {}  load {:?}  (cv {:.2}, aux loss {:.3}{})",
            l.layer,
            l.load,
            l.load_cv,
            l.aux_loss,
            if l.dormant.is_empty() { String::new() } else { format!(", dormant {:?}", l.dormant) }
        )?;
        for (t, p) in pieces.iter().enumerate() {
            let chosen: Vec<String> =
                l.topk[t].iter().zip(&l.weights[t]).map(|(e, w)| format!("e{e}×{w:.2}")).collect();
            writeln!(out, "  {:<14} {}", format!("{:?}", p.text), chosen.join(" + "))?;
        }
    }
    Ok(())
}
