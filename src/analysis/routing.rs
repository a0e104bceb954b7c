//! Where a mixture-of-experts layer sends each token: gate probabilities, the top-k
//! choice, the weights that mix the chosen experts, each expert's load, and a number for
//! how balanced the load is. Pure functions of the router logits the engine records.

use serde::Serialize;

use crate::sampling::softmax;

#[derive(Clone, Debug, Serialize)]
pub struct LayerRouting {
    pub layer: usize,
    /// softmax of the router logits, per token (n_tokens × n_experts).
    pub probs: Vec<Vec<f32>>,
    /// Chosen experts per token, highest probability first (ties: lower id first, as torch.topk).
    pub topk: Vec<Vec<usize>>,
    /// Weights that mix the chosen experts' outputs (renormalised to sum 1 where the family does).
    pub weights: Vec<Vec<f32>>,
    /// Tokens routed to each expert.
    pub load: Vec<u64>,
    /// Coefficient of variation of the load (std / mean): 0 = perfectly even.
    pub load_cv: f64,
    /// The Switch-Transformer auxiliary loss, E · Σ_e f_e · P_e (1.0 when perfectly balanced).
    pub aux_loss: f64,
    /// Experts that received no token.
    pub dormant: Vec<usize>,
    /// Qwen2-MoE: sigmoid gate of the shared expert per token.
    pub shared_gate: Option<Vec<f32>>,
}

/// Indices of the k largest values, largest first; equal values keep the lower index first.
pub fn top_k_ids(p: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// Summarises one layer from its router logits (one row per token).
pub fn layer_routing(
    layer: usize,
    router_logits: &[Vec<f32>],
    top_k: usize,
    norm_topk_prob: bool,
    shared_gate: Option<Vec<f32>>,
) -> LayerRouting {
    let probs: Vec<Vec<f32>> = router_logits.iter().map(|l| softmax(l)).collect();
    let n_experts = probs.first().map(|p| p.len()).unwrap_or(0);
    let mut load = vec![0u64; n_experts];
    let mut topk = Vec::with_capacity(probs.len());
    let mut weights = Vec::with_capacity(probs.len());
    let mut mean_prob = vec![0f64; n_experts];
    for p in &probs {
        let chosen = top_k_ids(p, top_k);
        let total: f32 = chosen.iter().map(|&e| p[e]).sum();
        weights.push(chosen.iter().map(|&e| if norm_topk_prob { p[e] / total } else { p[e] }).collect());
        for &e in &chosen {
            load[e] += 1;
        }
        for (m, &x) in mean_prob.iter_mut().zip(p) {
            *m += x as f64;
        }
        topk.push(chosen);
    }
    let tokens = probs.len().max(1) as f64;
    let mean_load = load.iter().sum::<u64>() as f64 / n_experts.max(1) as f64;
    let var = load.iter().map(|&l| (l as f64 - mean_load).powi(2)).sum::<f64>() / n_experts.max(1) as f64;
    let load_cv = if mean_load > 0.0 { var.sqrt() / mean_load } else { 0.0 };
    // f_e: share of token-slots sent to e (summed over the k choices, as transformers'
    // load_balancing_loss_func does); P_e: mean router probability of e.
    let aux_loss =
        n_experts as f64 * load.iter().zip(&mean_prob).map(|(&l, &p)| (l as f64 / tokens) * (p / tokens)).sum::<f64>();
    let dormant = load.iter().enumerate().filter(|(_, l)| **l == 0).map(|(e, _)| e).collect();
    LayerRouting { layer, probs, topk, weights, load, load_cv, aux_loss, dormant, shared_gate }
}

/// Every MoE layer of a sequence, from the engine's per-position records.
pub fn summarize(
    routing: &[Vec<(usize, Vec<f32>)>],
    shared: &[Vec<(usize, f32)>],
    top_k: usize,
    norm_topk_prob: bool,
) -> Vec<LayerRouting> {
    let Some(first) = routing.first() else { return Vec::new() };
    first
        .iter()
        .map(|(layer, _)| {
            let rows: Vec<Vec<f32>> = routing
                .iter()
                .map(|pos| pos.iter().find(|(l, _)| l == layer).map(|(_, r)| r.clone()).unwrap_or_default())
                .collect();
            let gate: Vec<f32> =
                shared.iter().filter_map(|pos| pos.iter().find(|(l, _)| l == layer).map(|(_, g)| *g)).collect();
            let gate = (gate.len() == rows.len() && !gate.is_empty()).then_some(gate);
            layer_routing(*layer, &rows, top_k, norm_topk_prob, gate)
        })
        .collect()
}

/// Viridis, the perceptual colour scale: 0 → dark purple, 1 → yellow.
pub fn viridis(t: f32) -> [u8; 3] {
    const STOPS: [[f32; 3]; 9] = [
        [68.0, 1.0, 84.0],
        [71.0, 44.0, 122.0],
        [59.0, 81.0, 139.0],
        [44.0, 113.0, 142.0],
        [33.0, 144.0, 141.0],
        [39.0, 173.0, 129.0],
        [92.0, 200.0, 99.0],
        [170.0, 220.0, 50.0],
        [253.0, 231.0, 37.0],
    ];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f32;
    let c = |k: usize| (STOPS[i][k] + (STOPS[i + 1][k] - STOPS[i][k]) * f).round() as u8;
    [c(0), c(1), c(2)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_and_balance() {
        // 4 tokens, 4 experts, top-1: every token picks a different expert → perfectly even.
        let logits: Vec<Vec<f32>> = (0..4).map(|t| (0..4).map(|e| if e == t { 5.0 } else { 0.0 }).collect()).collect();
        let r = layer_routing(0, &logits, 1, false, None);
        assert_eq!(r.load, vec![1, 1, 1, 1]);
        assert_eq!(r.load_cv, 0.0);
        assert!(r.dormant.is_empty());
        // All tokens to expert 0: maximal imbalance, dormant experts listed.
        let skewed: Vec<Vec<f32>> = (0..4).map(|_| vec![5.0, 0.0, 0.0, 0.0]).collect();
        let s = layer_routing(0, &skewed, 1, false, None);
        assert_eq!(s.load, vec![4, 0, 0, 0]);
        assert_eq!(s.dormant, vec![1, 2, 3]);
        assert!(s.aux_loss > r.aux_loss);
        assert!((r.weights[0][0] - softmax(&logits[0])[0]).abs() < 1e-7);
    }

    #[test]
    fn aux_loss_is_switch_transformer_formula() {
        // Reference: transformers' load_balancing_loss_func, E · Σ_e f_e · P_e with f_e summed over the k
        // choices. Perfect balance with top-1: f_e = P_e = 1/E, so the loss is E · E · 1/E² = 1 exactly.
        let uniform: Vec<Vec<f32>> = vec![vec![0.0; 4]; 4];
        let logits: Vec<Vec<f32>> = (0..4).map(|t| (0..4).map(|e| if e == t { 5.0 } else { 0.0 }).collect()).collect();
        let r = layer_routing(0, &logits, 1, false, None);
        assert!((r.aux_loss - 1.0).abs() < 1e-6, "balanced top-1: {}", r.aux_loss);
        // Uniform probabilities (ties → lowest id, all tokens to expert 0 for top-1): f = [1, 0, 0, 0],
        // P = [1/4; 4] → 4 · 1 · 1/4 = 1.
        let u = layer_routing(0, &uniform, 1, false, None);
        assert!((u.aux_loss - 1.0).abs() < 1e-6, "{}", u.aux_loss);
        // Unbalanced, by hand: every token to expert 0 with softmax([5, 0, 0, 0])_0 = e^5 / (e^5 + 3)
        // = 148.413159 / 151.413159 = 0.980187, f_0 = 1 → loss = 4 · 0.980187 = 3.920747.
        let skewed: Vec<Vec<f32>> = (0..4).map(|_| vec![5.0, 0.0, 0.0, 0.0]).collect();
        let s = layer_routing(0, &skewed, 1, false, None);
        assert!((s.aux_loss - 3.920_746_65).abs() < 1e-5, "{}", s.aux_loss);
        assert!((s.load_cv - 3f64.sqrt()).abs() < 1e-12, "load [4,0,0,0]: std √3 / mean 1");
        // Top-2, by hand: 2 tokens over 4 experts, token 0 → {0, 1}, token 1 → {2, 3} (logits 5, 4 on its pair).
        // f = [1/2; 4] (each expert gets 1 of 2 tokens); P_e = mean prob. Σ_e P_e = 1, so loss = 4 · ½ · 1 = 2.
        let two = vec![vec![5.0, 4.0, 0.0, 0.0], vec![0.0, 0.0, 5.0, 4.0]];
        let t = layer_routing(0, &two, 2, true, None);
        assert_eq!(t.topk, vec![vec![0, 1], vec![2, 3]]);
        assert!((t.aux_loss - 2.0).abs() < 1e-6, "{}", t.aux_loss);
        // norm_topk_prob renormalises the chosen pair: e^5 / (e^5 + e^4) = 1 / (1 + e^-1) = 0.731059.
        assert!((t.weights[0][0] - 0.731_058_6).abs() < 1e-6 && (t.weights[0][1] - 0.268_941_4).abs() < 1e-6);
    }

    #[test]
    fn viridis_ends() {
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
    }
}
