//! `generate`: tokens after a prompt, seeded so a run replays.

use std::io::Write;

use super::{Outcome, Prompt, SamplingArgs, WeightArgs, print_json};
use crate::arch::ModelFolder;
use crate::report;

pub fn run(
    prompt: &Prompt<'_>,
    max_new: usize,
    sampling: &SamplingArgs,
    weights: &WeightArgs,
    json: bool,
    out: &mut dyn Write,
) -> Outcome {
    let model = ModelFolder::open(prompt.path)?;
    let mut session = prompt.session(&model, Some(weights))?;
    let input_ids = session.tokens.clone();
    let params = sampling.params()?;
    let mut new_ids = Vec::with_capacity(max_new);
    let mut stopped = None;
    for _ in 0..max_new {
        match session.sample_next(&params) {
            Ok(id) => new_ids.push(id),
            Err(e) => {
                // What was generated before the error (e.g. the position limit) is still printed.
                stopped = Some(e);
                break;
            }
        }
    }
    let text = session.codec.decode(&new_ids);
    if json {
        print_json(out, &report::generate_json(&input_ids, &new_ids, &text))?;
    } else {
        writeln!(out, "{}{}", session.codec.decode(&input_ids), text)?;
    }
    match stopped {
        Some(e) => Err(format!("stopped after {} new tokens: {e}", new_ids.len()).into()),
        None => Ok(()),
    }
}
