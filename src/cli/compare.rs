//! `compare`: one prompt in two precisions of the same model, step by step.

use std::io::Write;

use super::{Outcome, Prompt, print_json};
use crate::analysis::Control;
use crate::engine::precision::{Precision, compare};
use crate::report;

pub fn run(prompt: &Prompt<'_>, precisions: &[String], steps: usize, json: bool, out: &mut dyn Write) -> Outcome {
    let [a, b] = precisions else {
        return Err(format!(
            "--precision: give exactly two (A, the reference, then B), got {}; e.g. --precision llamacpp --precision exact",
            precisions.len()
        )
        .into());
    };
    let parse = |s: &str| -> Result<Precision, String> {
        Ok(match Precision::parse(s) {
            // Another model may be named as the library names it, like PATH.
            Precision::File(p) => Precision::File(crate::library::resolve(&p)?),
            p => p,
        })
    };
    let (a, b) = (parse(a)?, parse(b)?);
    let model = crate::arch::ModelFolder::open(prompt.path)?;
    let r = compare(&model, prompt.text, prompt.chat, (&a, &b), steps, &Control::new())?;
    if json {
        return print_json(out, &report::precision_json(&r));
    }
    writeln!(out, "prompt ids: {:?}", r.prompt_ids)?;
    writeln!(out, "A = {}: {:?}", r.a.precision, r.a.greedy_text)?;
    writeln!(out, "B = {}: {:?}", r.b.precision, r.b.greedy_text)?;
    writeln!(out, "{:>4}  {:<16} {:>9} {:>9} {:>10}  B's top", "step", "A's token", "p_A", "p_B", "KL(A‖B)")?;
    for (i, (s, piece)) in r.steps.iter().zip(&r.a.pieces).enumerate() {
        let agree = if s.token == s.top1_b { "=" } else { "≠" };
        writeln!(
            out,
            "{i:>4}  {:<16} {:>9.5} {:>9.5} {:>10.3e}  {agree} {}",
            format!("{piece:?}"),
            s.p_a,
            s.p_b,
            s.kl,
            s.top1_b
        )?;
    }
    let div = r.summary.first_divergence.map_or("never".to_string(), |d| format!("at step {d}"));
    writeln!(
        out,
        "mean KL {:.4e} nats, max {:.4e}; top-1 agreement {:.1}%; the greedy texts part {div}",
        r.summary.mean_kl,
        r.summary.max_kl,
        100.0 * r.summary.top1_agreement
    )?;
    Ok(())
}
