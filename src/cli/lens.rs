//! `lens`: the logit lens at the last position (each layer's residual through the final norm
//! and lm_head) and the residual stream's norm per layer and token.

use std::io::Write;

use super::{Outcome, Prompt, print_json};
use crate::arch::ModelFolder;

pub fn run(prompt: &Prompt<'_>, top: usize, json: bool, out: &mut dyn Write) -> Outcome {
    let model = ModelFolder::open(prompt.path)?;
    let mut session = prompt.session_with_internals(&model)?;
    let recorded = session.internals.as_ref().ok_or("no internals recorded")?;
    if recorded.truncated(session.tokens.len()) {
        return Err(format!(
            "the prompt has {} tokens; the lens records the first {}",
            session.tokens.len(),
            crate::engine::internals::MAX_RECORDED_POSITIONS
        )
        .into());
    }
    let norms = recorded.residual_norms();
    let last = session.tokens.len() - 1;
    let lens = session.lens(last, false)?;
    let value = crate::report::lens_json(&session.tokens, &lens, &norms, top, &|id| session.codec.piece(id));
    if json {
        return print_json(out, &value);
    }
    for layer in value["layers"].as_array().into_iter().flatten() {
        let tops: Vec<String> = layer["top"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| format!("{:?} {:.3}", t["token"].as_str().unwrap_or(""), t["prob"].as_f64().unwrap_or(0.0)))
            .collect();
        writeln!(out, "{:>6}  {}", layer["layer"].to_string().trim_matches('"'), tops.join("  "))?;
    }
    Ok(())
}
