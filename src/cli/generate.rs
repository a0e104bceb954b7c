//! `generate`: tokens after a prompt, seeded so a run replays.

use std::io::Write;

use super::{AdapterArgs, Outcome, Prompt, SamplingArgs, print_json};
use crate::arch::ModelFolder;
use crate::report;

pub fn run(
    prompt: &Prompt<'_>,
    max_new: usize,
    sampling: &SamplingArgs,
    adapter: &AdapterArgs,
    json: bool,
    out: &mut dyn Write,
) -> Outcome {
    let model = ModelFolder::open(prompt.path)?;
    let mut session = prompt.session(&model, Some(adapter))?;
    let input_ids = session.tokens.clone();
    let new_ids = session.generate(max_new, &sampling.params()?)?;
    let text = session.codec.decode(&new_ids);
    if json {
        return print_json(out, &report::generate_json(&input_ids, &new_ids, &text));
    }
    writeln!(out, "{}{}", session.codec.decode(&input_ids), text)?;
    Ok(())
}
