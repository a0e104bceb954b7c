//! `attention`: every layer's (or one layer's, one head's) attention weights over the prompt.

use std::io::Write;

use super::{Outcome, Prompt, print_json};
use crate::arch::ModelFolder;

pub fn run(prompt: &Prompt<'_>, layer: Option<usize>, head: Option<usize>, json: bool, out: &mut dyn Write) -> Outcome {
    let model = ModelFolder::open(prompt.path)?;
    let mut session = prompt.session_with_internals(&model)?;
    let internals = session.internals.take().ok_or("no internals recorded")?;
    let (layers, heads) = (session.model.cfg.num_layers, internals.heads);
    if let Some(l) = layer.filter(|&l| l >= layers) {
        return Err(format!("--layer {l}: this model has layers 0 to {}", layers - 1).into());
    }
    if let Some(h) = head.filter(|&h| h >= heads) {
        return Err(format!("--head {h}: this model has heads 0 to {}", heads - 1).into());
    }
    let t = internals.len();
    let value = crate::report::attention_json(&session.tokens, &internals, layer, head);
    if json {
        return print_json(out, &value);
    }
    let pieces: Vec<String> = session.tokens.iter().map(|&id| format!("{:?}", session.codec.piece(id).text)).collect();
    for l in value["layers"].as_array().into_iter().flatten() {
        for (h, rows) in l["heads"].as_array().into_iter().flatten().enumerate() {
            writeln!(out, "layer {} head {}", l["layer"], head.unwrap_or(h))?;
            for (i, row) in rows.as_array().into_iter().flatten().enumerate().take(t) {
                let cells: Vec<String> = row
                    .as_array()
                    .into_iter()
                    .flatten()
                    .take(i + 1)
                    .map(|w| format!("{:.2}", w.as_f64().unwrap_or(0.0)))
                    .collect();
                writeln!(out, "  {:<14} {}", pieces[i], cells.join(" "))?;
            }
        }
    }
    Ok(())
}
