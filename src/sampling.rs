//! Sampling: pure functions over one step's logits, mirroring transformers' `generate`.
//!
//! The order is generate's: repetition penalty (a logits processor), then the warpers
//! temperature → top-k → top-p → min-p, then softmax and a draw. Each stage's surviving set
//! is kept, so the panel can grey out what top-k, top-p or min-p removed and say why.
//! Arithmetic is f32 where torch's is (exponentials, cumulative sums), so borderline tokens are
//! kept or dropped exactly as transformers does. Nothing here touches the model: moving a
//! slider re-runs these functions on cached logits.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// 0 means greedy (argmax).
    pub temperature: f32,
    /// 0 disables.
    pub top_k: usize,
    /// 1.0 disables.
    pub top_p: f32,
    /// 0.0 disables.
    pub min_p: f32,
    /// 1.0 disables.
    pub repetition_penalty: f32,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self { temperature: 1.0, top_k: 0, top_p: 1.0, min_p: 0.0, repetition_penalty: 1.0, seed: 42 }
    }
}

impl SamplingParams {
    pub fn greedy(&self) -> bool {
        self.temperature <= 0.0
    }
}

/// Why a token is out of the running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Removed {
    TopK,
    TopP,
    MinP,
    /// Greedy decoding keeps only the argmax.
    Greedy,
}

impl Removed {
    pub fn label(self) -> &'static str {
        match self {
            Removed::TopK => "removed by top-k",
            Removed::TopP => "removed by top-p",
            Removed::MinP => "removed by min-p",
            Removed::Greedy => "greedy keeps only the top token",
        }
    }
}

/// One step's distribution after every stage.
#[derive(Clone, Debug)]
pub struct Distribution {
    pub logits: Vec<f32>,
    /// softmax(logits) with no processing: what the model "thinks".
    pub raw_probs: Vec<f32>,
    /// After penalty and warpers: what the draw uses (0 for removed tokens).
    pub probs: Vec<f32>,
    /// Per token: None if kept, or the stage that removed it.
    pub removed: Vec<Option<Removed>>,
    /// Every token id: kept ones by final probability, highest first (ties by id), then the
    /// removed ones by raw probability. Only the first [`ORDERED_HEAD`] of each group are in
    /// exact order; the tails are in id order (nobody reads the 50,000th candidate).
    pub order: Vec<u32>,
    /// Entropy of the final distribution, in bits.
    pub entropy_bits: f32,
    pub kept: usize,
}

/// softmax with the max subtracted and f32 exponentials, as torch computes it, but the sum
/// of the exponentials accumulated in f64. A running f32 sum over a 50k–150k vocabulary
/// drops every term below half an ulp of the total once it nears 1 (SmolLM2's
/// probabilities summed to 1.0002 and the top one was 1.8e-4 high); torch's vectorised
/// reduction keeps them, and so does an f64 accumulator.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return vec![0.0; logits.len()];
    }
    let exps: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f64 = exps.iter().map(|&e| e as f64).sum();
    exps.iter().map(|&e| (e as f64 / sum) as f32).collect()
}

/// Says how many logits are NaN or ±∞ (None when all are finite): a forward pass that
/// produced them is meaningless, and the probabilities shown would only look like numbers.
pub fn non_finite_warning(logits: &[f32]) -> Option<String> {
    let bad = logits.iter().filter(|l| !l.is_finite()).count();
    (bad > 0).then(|| {
        format!(
            "{bad} of {} logits are NaN or infinite: the weights or the config (eps, rope, adapter scale) break the forward pass",
            logits.len()
        )
    })
}

/// Applies the penalty and the warpers to `logits`. `previous` are the ids already in the
/// sequence (for the repetition penalty).
pub fn distribution(logits: &[f32], previous: &[u32], p: &SamplingParams) -> Distribution {
    let n = logits.len();
    let raw_probs = softmax(logits);
    let mut scores = logits.to_vec();
    let mut removed: Vec<Option<Removed>> = vec![None; n];

    penalize(&mut scores, previous, p);

    if p.greedy() {
        let best = argmax(&scores);
        for (i, r) in removed.iter_mut().enumerate() {
            if i != best {
                *r = Some(Removed::Greedy);
            }
        }
        let mut probs = vec![0.0; n];
        probs[best] = 1.0;
        return finish(logits.to_vec(), raw_probs, probs, removed);
    }

    for s in scores.iter_mut() {
        *s /= p.temperature;
    }
    // TopKLogitsWarper: everything below the k-th largest score goes (ties with it stay).
    if p.top_k > 0 && p.top_k < n {
        // Selection, not a sort: O(vocab) for the k-th largest score.
        let mut sorted = scores.clone();
        let (_, kth, _) = sorted.select_nth_unstable_by(p.top_k - 1, |a, b| b.total_cmp(a));
        let kth = *kth;
        remove_where(&mut scores, &mut removed, Removed::TopK, |s| s < kth);
    }
    // TopPLogitsWarper: sort ascending, drop the low tail whose cumulative probability is
    // ≤ 1 − top_p, always keeping the most likely token.
    if p.top_p < 1.0 {
        let probs = softmax(&scores);
        // Tokens already removed have probability 0 and sit at the bottom of torch's
        // ascending sort, adding nothing to the cumulative sum: only survivors need sorting.
        // (score, id) order is what torch's stable sort gives for equal scores.
        let mut idx: Vec<usize> = (0..n).filter(|&i| scores[i] != f32::NEG_INFINITY).collect();
        idx.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
        let mut cum = 0f32;
        let threshold = 1.0 - p.top_p;
        let last = idx.len().saturating_sub(1);
        for (rank, &i) in idx.iter().enumerate() {
            cum += probs[i];
            if cum <= threshold && rank != last {
                scores[i] = f32::NEG_INFINITY;
                removed[i] = Some(Removed::TopP);
            }
        }
    }
    // MinPLogitsWarper: drop tokens whose probability is below min_p × the top probability.
    if p.min_p > 0.0 {
        let probs = softmax(&scores);
        let top = probs.iter().copied().fold(0f32, f32::max);
        let cut = p.min_p * top;
        let best = argmax(&scores);
        for i in 0..n {
            if probs[i] < cut && i != best && scores[i] != f32::NEG_INFINITY {
                scores[i] = f32::NEG_INFINITY;
                removed[i] = Some(Removed::MinP);
            }
        }
    }
    let probs = softmax(&scores);
    finish(logits.to_vec(), raw_probs, probs, removed)
}

fn remove_where(scores: &mut [f32], removed: &mut [Option<Removed>], why: Removed, pred: impl Fn(f32) -> bool) {
    for (s, r) in scores.iter_mut().zip(removed.iter_mut()) {
        if *s != f32::NEG_INFINITY && pred(*s) {
            *s = f32::NEG_INFINITY;
            *r = Some(why);
        }
    }
}

/// How many candidates are put in exact order; a panel shows at most 50, and sorting the
/// whole 150k vocabulary on every slider move would cost more than the 5 ms budget.
pub const ORDERED_HEAD: usize = 512;

/// Sorts the first `head` entries of `ids` (by `key`, largest first, ties by id); the rest
/// stays in id order.
fn order_head(ids: &mut [u32], head: usize, key: impl Fn(u32) -> f32) {
    let cmp = |a: &u32, b: &u32| key(*b).total_cmp(&key(*a)).then(a.cmp(b));
    if ids.len() > head {
        ids.select_nth_unstable_by(head - 1, cmp);
        ids[head..].sort_unstable();
    }
    let end = head.min(ids.len());
    ids[..end].sort_unstable_by(cmp);
}

fn finish(logits: Vec<f32>, raw_probs: Vec<f32>, probs: Vec<f32>, removed: Vec<Option<Removed>>) -> Distribution {
    // Kept tokens by final probability, then removed ones by raw probability.
    let (mut kept, mut gone): (Vec<u32>, Vec<u32>) = (0..logits.len() as u32).partition(|&i| probs[i as usize] > 0.0);
    order_head(&mut kept, ORDERED_HEAD, |i| probs[i as usize]);
    order_head(&mut gone, 64, |i| raw_probs[i as usize]);
    let mut order = kept;
    order.extend(gone);
    let entropy_bits = -probs.iter().filter(|&&p| p > 0.0).map(|&p| p * p.log2()).sum::<f32>();
    let kept = removed.iter().filter(|r| r.is_none()).count();
    Distribution { logits, raw_probs, probs, removed, order, entropy_bits, kept }
}

/// transformers' repetition penalty: each token seen before, once, divided by the penalty
/// (multiplied when negative).
fn penalize(scores: &mut [f32], previous: &[u32], p: &SamplingParams) {
    if p.repetition_penalty != 1.0 && p.repetition_penalty > 0.0 {
        let mut seen = std::collections::HashSet::new();
        for &id in previous {
            let i = id as usize;
            if i < scores.len() && seen.insert(i) {
                let s = scores[i];
                scores[i] = if s < 0.0 { s * p.repetition_penalty } else { s / p.repetition_penalty };
            }
        }
    }
}

/// What `draw(&distribution(logits, previous, p), u)` returns when `p.greedy()`, without
/// the distribution: generating text pays this once per token, and the softmax, the
/// ordering and the removal reasons cost about a twentieth of a 135M model's token.
pub fn greedy_choice(logits: &[f32], previous: &[u32], p: &SamplingParams) -> u32 {
    let mut scores = logits.to_vec();
    penalize(&mut scores, previous, p);
    argmax(&scores) as u32
}

pub fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

/// A small, fast, seedable generator (SplitMix64): the draw at step `step` of a lesson with
/// seed `seed` is the same on every machine, whatever was clicked before.
pub fn uniform(seed: u64, step: u64) -> f64 {
    let mut z = seed ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Draws a token: inverse CDF over the final probabilities at the uniform number `u`.
pub fn draw(d: &Distribution, u: f64) -> u32 {
    let mut cum = 0f64;
    let mut last_kept = d.order[0];
    for &id in &d.order {
        let p = d.probs[id as usize] as f64;
        if p <= 0.0 {
            break;
        }
        cum += p;
        last_kept = id;
        if u < cum {
            return id;
        }
    }
    last_kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 151,936-entry vocabulary (Qwen's) with one dominant token and a long tail of tiny
    /// values: every probability must match an f64 softmax, and the sum must be 1.
    #[test]
    fn softmax_keeps_the_long_tail_on_a_large_vocabulary() {
        let n = 151_936;
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let logits: Vec<f32> = (0..n)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state >> 40) as f32 / (1u64 << 24) as f32;
                if i == 17 { 12.0 } else { -6.0 + 4.0 * u }
            })
            .collect();
        let got = softmax(&logits);
        // The reference subtracts the max in f32, as torch does; everything after is f64.
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f64> = logits.iter().map(|&l| ((l - max) as f64).exp()).collect();
        let total: f64 = exps.iter().sum();
        for (i, (g, e)) in got.iter().zip(&exps).enumerate() {
            let want = e / total;
            assert!((*g as f64 - want).abs() <= 1e-6 * want.max(1e-30) + 1e-12, "token {i}: {g} vs {want}");
        }
        let sum: f64 = got.iter().map(|&p| p as f64).sum();
        assert!((sum - 1.0).abs() < 1e-6, "sum {sum}");
        let top = got[17] as f64;
        assert!((top - exps[17] / total).abs() < 1e-6, "top {top}");
    }

    #[test]
    fn greedy_choice_is_the_drawn_greedy_token() {
        let logits: Vec<f32> = (0..500).map(|i| ((i * 37 % 101) as f32 * 0.13).sin() * 4.0).collect();
        let previous: Vec<u32> = (0..500).filter(|i| logits[*i as usize] > 3.5).collect();
        for penalty in [1.0, 1.3, 0.7] {
            let p = SamplingParams { temperature: 0.0, repetition_penalty: penalty, ..Default::default() };
            let drawn = draw(&distribution(&logits, &previous, &p), 0.5);
            assert_eq!(greedy_choice(&logits, &previous, &p), drawn, "penalty {penalty}");
        }
    }

    #[test]
    fn greedy_keeps_only_the_argmax() {
        let d = distribution(&[0.1, 2.0, 1.0], &[], &SamplingParams { temperature: 0.0, ..Default::default() });
        assert_eq!(d.probs, vec![0.0, 1.0, 0.0]);
        assert_eq!(d.order[0], 1);
        assert_eq!(d.kept, 1);
    }

    #[test]
    fn top_k_and_top_p_remove_the_tail() {
        let logits = [3.0, 2.0, 1.0, 0.0, -1.0];
        let d = distribution(&logits, &[], &SamplingParams { top_k: 2, ..Default::default() });
        assert_eq!(d.kept, 2);
        assert_eq!(d.removed[2], Some(Removed::TopK));
        let d = distribution(&logits, &[], &SamplingParams { top_p: 0.5, ..Default::default() });
        assert_eq!(d.kept, 1, "the top token alone has p > 0.5");
        assert_eq!(d.removed[1], Some(Removed::TopP));
        assert!((d.probs[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn repetition_penalty_divides_positive_and_multiplies_negative() {
        // Reference: transformers' RepetitionPenaltyLogitsProcessor with penalty 2 on the seen ids {0, 1}
        // (token 1 seen twice is penalised once, as torch.gather/scatter over the id set does):
        // [1, -4, 0] → [1/2, -4·2, 0] = [0.5, -8, 0], and softmax([0.5, -8, 0]) worked by hand:
        // e^0.5 = 1.648721, e^-8 = 0.000335, e^0 = 1, sum 2.649057.
        let p = SamplingParams { repetition_penalty: 2.0, ..Default::default() };
        let d = distribution(&[1.0, -4.0, 0.0], &[0, 1, 1], &p);
        let want = [0.622_380_5_f32, 0.000_126_634_75, 0.377_492_86];
        assert_eq!(d.probs.len(), want.len());
        for (i, (a, b)) in d.probs.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= 1e-6 * b.max(1e-3), "token {i}: {a} vs {b} (all: {:?})", d.probs);
        }
        // raw_probs are before the penalty: softmax([1, -4, 0]) = [0.727475, 0.004902, 0.267623].
        let raw = [0.727_475_2_f32, 0.004_901_689, 0.267_623_15];
        for (a, b) in d.raw_probs.iter().zip(&raw) {
            assert!((a - b).abs() < 1e-6, "{:?}", d.raw_probs);
        }
        // Unseen tokens are untouched: with only id 1 seen, 1 and 0 keep their logits.
        let d = distribution(&[1.0, -4.0, 0.0], &[1], &p);
        let e = [1f32.exp(), (-8f32).exp(), 1.0];
        let sum: f32 = e.iter().sum();
        for (a, b) in d.probs.iter().zip(e.iter().map(|x| x / sum)) {
            assert!((a - b).abs() < 1e-6, "{:?}", d.probs);
        }
        // Greedy sees the penalised scores: 2.0 / 4 = 0.5 loses to an unseen 1.0.
        let g = SamplingParams { repetition_penalty: 4.0, temperature: 0.0, ..Default::default() };
        assert_eq!(distribution(&[2.0, 1.0], &[0], &g).order[0], 1);
    }

    #[test]
    fn draws_replay_and_follow_the_probabilities() {
        // Reference: the multinomial itself. With p = [0.7, 0.2, 0.1, 0] and N = 20 000 draws each count is
        // Binomial(N, p): within 4σ = 4·sqrt(N·p·(1-p)) of N·p, and the zero-probability token never comes.
        // A draw that ignored the probabilities (uniform, or always the top) fails this.
        let logits = [0.7f32.ln(), 0.2f32.ln(), 0.1f32.ln(), f32::NEG_INFINITY];
        let d = distribution(&logits, &[], &SamplingParams::default());
        assert_eq!(d.probs[3], 0.0);
        assert_eq!(uniform(7, 3), uniform(7, 3));
        assert_ne!(uniform(7, 3), uniform(8, 3), "the seed changes the stream");
        const N: u64 = 20_000;
        let mut counts = [0u64; 4];
        for step in 0..N {
            let u = uniform(1, step);
            assert!((0.0..1.0).contains(&u));
            counts[draw(&d, u) as usize] += 1;
        }
        assert_eq!(counts[3], 0, "a zero-probability token was drawn: {counts:?}");
        for (i, p) in [0.7f64, 0.2, 0.1].into_iter().enumerate() {
            let mean = N as f64 * p;
            let sigma = (N as f64 * p * (1.0 - p)).sqrt();
            assert!((counts[i] as f64 - mean).abs() < 4.0 * sigma, "token {i}: {} vs {mean} ± 4·{sigma:.1}", counts[i]);
        }
        // The inverse CDF at known points: u below 0.7 is token 0, in [0.7, 0.9) token 1, above token 2.
        assert_eq!(draw(&d, 0.0), 0);
        assert_eq!(draw(&d, 0.69), 0);
        assert_eq!(draw(&d, 0.71), 1);
        assert_eq!(draw(&d, 0.89), 1);
        assert_eq!(draw(&d, 0.91), 2);
        assert_eq!(draw(&d, 0.999_999), 2);
    }
}
