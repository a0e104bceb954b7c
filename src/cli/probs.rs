//! `probs`: the next-token distribution after a prompt.

use std::io::Write;

use super::{Outcome, Prompt, SamplingArgs, WeightArgs, print_json};
use crate::arch::ModelFolder;
use crate::engine::Piece;
use crate::report;

pub fn run(
    prompt: &Prompt<'_>,
    sampling: &SamplingArgs,
    weights: &WeightArgs,
    top: usize,
    json: bool,
    out: &mut dyn Write,
) -> Outcome {
    let model = ModelFolder::open(prompt.path)?;
    let session = prompt.session(&model, Some(weights))?;
    let d = session.distribution(&sampling.params()?).ok_or("no logits")?;
    if let Some(warning) = crate::sampling::non_finite_warning(&d.logits) {
        eprintln!("warning: {warning}");
    }
    let pieces: Vec<Piece> = d.order.iter().take(top).map(|&id| session.codec.piece(id)).collect();
    if json {
        return print_json(out, &report::probs_json(&session.tokens, &d, &pieces));
    }
    writeln!(out, "input ids: {:?}", session.tokens)?;
    writeln!(out, "{:>6}  {:<16} {:>9} {:>9} {:>9}", "id", "token", "prob", "raw", "logit")?;
    for p in &pieces {
        let i = p.id as usize;
        let why = d.removed[i].map(|r| format!("  ({})", r.label())).unwrap_or_default();
        writeln!(
            out,
            "{:>6}  {:<16} {:>9.5} {:>9.5} {:>9.4}{why}",
            p.id,
            format!("{:?}", p.text),
            d.probs[i],
            d.raw_probs[i],
            d.logits[i]
        )?;
    }
    writeln!(out, "entropy {:.3} bits, {} tokens kept", d.entropy_bits, d.kept)?;
    Ok(())
}
