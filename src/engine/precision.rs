//! The precision what-if for a whole model: one prompt, two ways of running the same model —
//! its two arithmetics (a quantized file as llama.cpp runs it, or exactly), another file of
//! the same model, or the weights round-tripped through BF16 / F16 / FP8 / Q8_0 / Q4_0 /
//! Q4_1 on load — compared step by step ([`crate::analysis::precision`]). The two models are
//! loaded one after the other, never both at once, so the comparison costs one model's memory.

use std::path::PathBuf;

use serde::Serialize;

use super::Session;
use super::quant_matvec::Arith;
use crate::analysis::Control;
use crate::analysis::cast::CastTarget;
use crate::analysis::precision::{StepComparison, Summary, compare_step, summarize};
use crate::arch::ModelFolder;

/// One way of running the opened model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// As opened: a quantized file in llama.cpp's arithmetic, anything else exactly.
    AsStored,
    Arith(Arith),
    RoundTrip(CastTarget),
    /// Another file or folder of the same model (same tokenizer ids).
    File(PathBuf),
}

impl Precision {
    /// `stored`, `exact`, `llamacpp`, `bf16`, `f16`, `fp8` (= f8e4m3), `f8e5m2`, `q8_0`,
    /// `q4_0`, `q4_1`, or a path.
    pub fn parse(s: &str) -> Precision {
        match s.to_ascii_lowercase().as_str() {
            "stored" | "as-stored" | "file" => return Precision::AsStored,
            "fp8" => return Precision::RoundTrip(CastTarget::parse("f8e4m3").expect("a cast target")),
            _ => {}
        }
        if let Some(a) = Arith::from_id(&s.to_ascii_lowercase()) {
            return Precision::Arith(a);
        }
        match CastTarget::parse(s) {
            Some(t) => Precision::RoundTrip(t),
            None => Precision::File(PathBuf::from(s)),
        }
    }

    /// What the report calls it.
    pub fn label(&self) -> String {
        match self {
            Precision::AsStored => "stored".into(),
            Precision::Arith(a) => a.id().into(),
            Precision::RoundTrip(t) => t.key(),
            Precision::File(p) => p.display().to_string(),
        }
    }

    /// The session this precision runs in. Arithmetic applies to quantized weights only;
    /// for others it is refused, since both would give the same numbers.
    fn session(&self, model: &ModelFolder, ctl: &Control) -> Result<Session, String> {
        match self {
            Precision::AsStored => Session::load_with(model, ctl),
            Precision::Arith(a) => {
                let mut s = Session::load_with(model, ctl)?;
                if !s.quantized {
                    return Err(format!(
                        "{}: no weight is quantized, so `{}` arithmetic is the stored one",
                        model.checkpoint.folder.display(),
                        a.id()
                    ));
                }
                s.set_arith(*a)?;
                Ok(s)
            }
            Precision::RoundTrip(t) => Session::load_as(model, Some(*t), ctl),
            Precision::File(path) => Session::load_with(&ModelFolder::open(path).map_err(|e| e.to_string())?, ctl),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Continuation {
    pub precision: String,
    pub greedy_ids: Vec<u32>,
    pub greedy_text: String,
    /// Each greedy token's text.
    pub pieces: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PrecisionReport {
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    pub a: Continuation,
    pub b: Continuation,
    /// Step i: both have read the prompt and A's first i tokens.
    pub steps: Vec<StepComparison>,
    /// The text of B's top token at each step.
    pub top1_b_pieces: Vec<String>,
    pub summary: Summary,
}

/// A greedy continuation of `n` tokens, and the logits before each token.
fn greedy(s: &mut Session, n: usize, ctl: &Control) -> Result<(Vec<u32>, Vec<Vec<f32>>), String> {
    let mut ids = Vec::with_capacity(n);
    let mut logits = Vec::with_capacity(n);
    for _ in 0..n {
        if ctl.is_cancelled() {
            return Err("cancelled".into());
        }
        let l = s.current_logits().ok_or("the prompt gave no logits")?;
        let id = crate::sampling::argmax(&l) as u32;
        logits.push(l.to_vec());
        ids.push(id);
        s.append(id)?;
        ctl.advance(1);
    }
    Ok((ids, logits))
}

fn continuation(s: &Session, p: &Precision, ids: Vec<u32>) -> Continuation {
    Continuation {
        precision: p.label(),
        greedy_text: s.codec.decode(&ids),
        pieces: ids.iter().map(|&id| s.codec.decode(&[id])).collect(),
        greedy_ids: ids,
    }
}

/// Runs `prompt` (through the chat template when `chat`) in precisions `a` and `b` of
/// `model` for `n` greedy steps and compares them. `ctl` counts steps and cancels.
pub fn compare(
    folder: &ModelFolder,
    prompt: &str,
    chat: bool,
    (a, b): (&Precision, &Precision),
    n: usize,
    ctl: &Control,
) -> Result<PrecisionReport, String> {
    ctl.add_total(3 * n as u64);
    // A alone first: its greedy path and its logits along it.
    let mut sa = a.session(folder, ctl)?;
    sa.set_prompt(prompt, chat)?;
    let prompt_ids = sa.tokens.clone();
    let (ids_a, logits_a) = greedy(&mut sa, n, ctl)?;
    let cont_a = continuation(&sa, a, ids_a.clone());
    drop(sa);
    // Then B: reading A's tokens, and on its own.
    let mut sb = b.session(folder, ctl)?;
    if sb.model.cfg.vocab_size != logits_a.first().map_or(sb.model.cfg.vocab_size, Vec::len) {
        return Err(format!(
            "{} has {} tokens in its vocabulary, {} has {}: not the same model",
            b.label(),
            sb.model.cfg.vocab_size,
            a.label(),
            logits_a[0].len()
        ));
    }
    sb.set_prompt_ids(prompt_ids.clone())?;
    let mut steps = Vec::with_capacity(n);
    for (la, &id) in logits_a.iter().zip(&ids_a) {
        if ctl.is_cancelled() {
            return Err("cancelled".into());
        }
        let lb = sb.current_logits().ok_or("the prompt gave no logits")?;
        steps.push(compare_step(la, &lb));
        sb.append(id)?;
        ctl.advance(1);
    }
    sb.set_prompt_ids(prompt_ids.clone())?;
    let (ids_b, _) = greedy(&mut sb, n, ctl)?;
    let cont_b = continuation(&sb, b, ids_b.clone());
    let top1_b_pieces = steps.iter().map(|s| sb.codec.decode(&[s.top1_b])).collect();
    Ok(PrecisionReport {
        top1_b_pieces,
        prompt: prompt.to_string(),
        prompt_ids,
        summary: summarize(&steps, &ids_a, &ids_b),
        a: cont_a,
        b: cont_b,
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precisions_parse_by_name_and_otherwise_as_paths() {
        assert_eq!(Precision::parse("llamacpp"), Precision::Arith(Arith::LlamaCpp));
        assert_eq!(Precision::parse("exact"), Precision::Arith(Arith::Exact));
        assert_eq!(Precision::parse("Q4_1").label(), "q4_1");
        assert_eq!(Precision::parse("fp8").label(), "f8_e4m3");
        assert_eq!(Precision::parse("bf16").label(), "bf16");
        assert_eq!(Precision::parse("stored"), Precision::AsStored);
        assert_eq!(Precision::parse("other.gguf"), Precision::File("other.gguf".into()));
    }
}
