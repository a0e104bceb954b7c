//! Two precisions of one model on one prompt, step by step, the way llama.cpp's
//! `perplexity --kl-divergence` compares a quantized model with its reference: A generates
//! greedily, B reads A's tokens (so both predict from the same text at every step), and each
//! step's two next-token distributions are compared — KL(A‖B) in nats, whether their top
//! tokens agree, and the probability each gives A's token. B's own greedy continuation is
//! reported beside A's, so a class sees where the two texts part.

use serde::Serialize;

use crate::sampling::{argmax, softmax};

/// One step: both models have read the prompt and A's first `step` tokens.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepComparison {
    /// A's greedy token here (what both then read).
    pub token: u32,
    /// B's top token at the same place.
    pub top1_b: u32,
    /// KL(A‖B) = Σ p_A · ln(p_A / p_B), in nats, over the whole vocabulary.
    pub kl: f64,
    pub p_a: f64,
    /// The probability B gives A's token.
    pub p_b: f64,
}

/// Sums KL(p‖q) in f64 over the softmax of two logit vectors. A token B gives probability 0
/// while A does not (an f32 underflow) is counted at q = 1e-45, the smallest f32, rather
/// than as infinity: the figure stays finite and still says "very different".
pub fn kl_divergence(logits_a: &[f32], logits_b: &[f32]) -> f64 {
    let (p, q) = (softmax(logits_a), softmax(logits_b));
    p.iter()
        .zip(&q)
        .filter(|(p, _)| **p > 0.0)
        .map(|(&p, &q)| {
            let (p, q) = (p as f64, (q as f64).max(1e-45));
            p * (p / q).ln()
        })
        .sum()
}

/// Compares one step from the two models' logits; `token` is A's greedy pick.
pub fn compare_step(logits_a: &[f32], logits_b: &[f32]) -> StepComparison {
    let token = argmax(logits_a);
    let (p, q) = (softmax(logits_a), softmax(logits_b));
    StepComparison {
        token: token as u32,
        top1_b: argmax(logits_b) as u32,
        // Rounding can leave an f64 sum of equal distributions a hair below 0.
        kl: kl_divergence(logits_a, logits_b).max(0.0),
        p_a: p[token] as f64,
        p_b: q.get(token).copied().unwrap_or(0.0) as f64,
    }
}

/// Figures over all steps.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub mean_kl: f64,
    pub max_kl: f64,
    /// Share of steps whose top tokens agree.
    pub top1_agreement: f64,
    /// The first step where A's and B's own greedy continuations differ, if they do.
    pub first_divergence: Option<usize>,
}

pub fn summarize(steps: &[StepComparison], greedy_a: &[u32], greedy_b: &[u32]) -> Summary {
    let n = steps.len().max(1) as f64;
    Summary {
        mean_kl: steps.iter().map(|s| s.kl).sum::<f64>() / n,
        max_kl: steps.iter().map(|s| s.kl).fold(0.0, f64::max),
        top1_agreement: steps.iter().filter(|s| s.token == s.top1_b).count() as f64 / n,
        first_divergence: greedy_a
            .iter()
            .zip(greedy_b)
            .position(|(a, b)| a != b)
            .or_else(|| (greedy_a.len() != greedy_b.len()).then(|| greedy_a.len().min(greedy_b.len()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KL against a hand computation, zero for equal inputs, and the summary's counts.
    #[test]
    fn kl_top1_and_first_divergence() {
        let a = [1.0f32, 2.0, 3.0];
        let b = [1.0f32, 3.0, 2.0];
        let (p, q) = (softmax(&a), softmax(&b));
        let want: f64 = p.iter().zip(&q).map(|(&p, &q)| p as f64 * (p as f64 / q as f64).ln()).sum();
        assert!((kl_divergence(&a, &b) - want).abs() < 1e-12);
        assert_eq!(kl_divergence(&a, &a), 0.0);
        let s = compare_step(&a, &b);
        assert_eq!((s.token, s.top1_b), (2, 1));
        let same = compare_step(&a, &a);
        let sum = summarize(&[s, same], &[5, 6, 7], &[5, 6, 8]);
        assert_eq!(sum.top1_agreement, 0.5);
        assert_eq!(sum.first_divergence, Some(2));
        assert_eq!(summarize(&[], &[1], &[1]).first_divergence, None);
    }
}
