//! What a class looks for in attention maps and the logit lens, as numbers: how much a head
//! attends to the previous token or to the first token (an "attention sink"), and where a
//! token ranks in a layer's lens distribution. Pure functions over the engine's probes.

/// One query row per position of a head's causal attention map: row `i` has `i + 1` weights.
pub type Rows<'a> = &'a [&'a [f32]];

/// A pattern famous enough to point out, with the share of attention that shows it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HeadPattern {
    /// Each token mostly looks at the one just before it (induction heads build on these).
    PreviousToken(f32),
    /// Most tokens park their attention on the first token, whatever it is.
    FirstTokenSink(f32),
    /// Each token mostly looks at itself.
    SelfToken(f32),
}

/// A head shows a pattern when, averaged over the query positions that can show it, at
/// least this share of its attention follows the pattern.
pub const PATTERN_THRESHOLD: f32 = 0.5;

fn mean_over(rows: Rows<'_>, from: usize, pick: impl Fn(usize, &[f32]) -> f32) -> Option<f32> {
    let picked: Vec<f32> = rows.iter().enumerate().skip(from).map(|(i, r)| pick(i, r)).collect();
    (!picked.is_empty()).then(|| picked.iter().sum::<f32>() / picked.len() as f32)
}

/// Mean weight of query i on key i − 1, over i ≥ 2 (position 1's previous token is the first
/// token, which would mix the two patterns).
pub fn previous_token_share(rows: Rows<'_>) -> Option<f32> {
    mean_over(rows, 2, |i, r| r.get(i - 1).copied().unwrap_or(0.0))
}

/// Mean weight on key 0, over queries i ≥ 1 (query 0 can only look at itself).
pub fn first_token_share(rows: Rows<'_>) -> Option<f32> {
    mean_over(rows, 1, |_, r| r.first().copied().unwrap_or(0.0))
}

/// Mean weight of query i on itself, over i ≥ 1.
pub fn self_share(rows: Rows<'_>) -> Option<f32> {
    mean_over(rows, 1, |i, r| r.get(i).copied().unwrap_or(0.0))
}

/// The strongest famous pattern of a head, if one passes [`PATTERN_THRESHOLD`].
pub fn head_pattern(rows: Rows<'_>) -> Option<HeadPattern> {
    let candidates = [
        previous_token_share(rows).map(HeadPattern::PreviousToken),
        first_token_share(rows).map(HeadPattern::FirstTokenSink),
        self_share(rows).map(HeadPattern::SelfToken),
    ];
    let share = |p: &HeadPattern| match *p {
        HeadPattern::PreviousToken(s) | HeadPattern::FirstTokenSink(s) | HeadPattern::SelfToken(s) => s,
    };
    candidates
        .into_iter()
        .flatten()
        .filter(|p| share(p) >= PATTERN_THRESHOLD)
        .max_by(|a, b| share(a).total_cmp(&share(b)))
}

/// The `k` most likely ids of a distribution, most likely first (ties by lower id).
pub fn top_k(probs: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut ids: Vec<u32> = (0..probs.len() as u32).collect();
    let k = k.min(ids.len());
    if k == 0 {
        return Vec::new();
    }
    let order = |a: &u32, b: &u32| probs[*b as usize].total_cmp(&probs[*a as usize]).then(a.cmp(b));
    ids.select_nth_unstable_by(k - 1, order);
    ids.truncate(k);
    ids.sort_by(order);
    ids.into_iter().map(|i| (i, probs[i as usize])).collect()
}

/// 1-based rank of `id` (1 = most likely): how many tokens are strictly more likely, plus one.
pub fn rank_of(probs: &[f32], id: u32) -> usize {
    let p = probs.get(id as usize).copied().unwrap_or(f32::NEG_INFINITY);
    1 + probs.iter().filter(|&&q| q > p).count()
}

/// L2 norm of a vector, accumulated in f64.
pub fn l2(v: &[f32]) -> f32 {
    v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_found_by_construction() {
        let prev: Vec<Vec<f32>> =
            (0..6).map(|i| (0..=i).map(|j| if j + 1 == i || i == 0 { 1.0 } else { 0.0 }).collect()).collect();
        let rows: Vec<&[f32]> = prev.iter().map(|r| r.as_slice()).collect();
        assert_eq!(head_pattern(&rows), Some(HeadPattern::PreviousToken(1.0)));
        let sink: Vec<Vec<f32>> =
            (0..6).map(|i| (0..=i).map(|j| if j == 0 { 0.9 } else { 0.1 / i as f32 }).collect()).collect();
        let rows: Vec<&[f32]> = sink.iter().map(|r| r.as_slice()).collect();
        assert!(matches!(head_pattern(&rows), Some(HeadPattern::FirstTokenSink(s)) if (s - 0.9).abs() < 1e-6));
        let uniform: Vec<Vec<f32>> = (0..6).map(|i| vec![1.0 / (i + 1) as f32; i + 1]).collect();
        let rows: Vec<&[f32]> = uniform.iter().map(|r| r.as_slice()).collect();
        assert_eq!(head_pattern(&rows), None);
    }

    #[test]
    fn top_k_and_rank_agree() {
        let p = [0.1, 0.4, 0.2, 0.3];
        assert_eq!(top_k(&p, 2), vec![(1, 0.4), (3, 0.3)]);
        assert_eq!(rank_of(&p, 1), 1);
        assert_eq!(rank_of(&p, 0), 4);
    }
}
