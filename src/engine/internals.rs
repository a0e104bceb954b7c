//! What the forward pass did inside, kept per position for the Attention and Logit lens
//! panels: each layer's attention weights (query row of that position, every head) and the
//! residual stream after the embedding and after each layer. Recorded only while a panel or
//! a CLI command asks, and only for the first [`MAX_RECORDED_POSITIONS`] positions: the
//! attention part grows as layers × heads × T², which a long generation would make large.

use std::sync::Arc;

use super::model::ChunkInternals;

pub const MAX_RECORDED_POSITIONS: usize = 512;

/// Per position, shared by `Arc` so a snapshot copies pointers, not matrices.
#[derive(Clone, Debug, Default)]
pub struct Internals {
    pub heads: usize,
    /// [position] → [layer] → heads × (position + 1) weights, head-major.
    pub attention: Vec<Arc<Vec<Vec<f32>>>>,
    /// [position] → [embedding output, layer 0 output, …] → hidden vector.
    pub residual: Vec<Arc<Vec<Vec<f32>>>>,
}

impl Internals {
    pub fn new(heads: usize) -> Self {
        Self { heads, ..Default::default() }
    }

    pub fn len(&self) -> usize {
        self.attention.len()
    }

    pub fn is_empty(&self) -> bool {
        self.attention.is_empty()
    }

    /// Whether positions past the cap were left out.
    pub fn truncated(&self, positions: usize) -> bool {
        positions > self.len()
    }

    pub fn truncate(&mut self, len: usize) {
        self.attention.truncate(len);
        self.residual.truncate(len);
    }

    /// Splits one forward call's probes into its positions (up to the cap).
    pub fn push_chunk(&mut self, chunk: &ChunkInternals) {
        let (t, total, heads) = (chunk.t, chunk.offset + chunk.t, self.heads);
        for i in 0..t {
            let pos = chunk.offset + i;
            if pos != self.len() || pos >= MAX_RECORDED_POSITIONS {
                return;
            }
            let attention = chunk
                .attention
                .iter()
                .map(|layer| {
                    (0..heads).flat_map(|h| layer[(i * heads + h) * total..][..pos + 1].iter().copied()).collect()
                })
                .collect();
            let residual = chunk
                .residual
                .iter()
                .map(|r| {
                    let hidden = r.len() / t.max(1);
                    r[i * hidden..(i + 1) * hidden].to_vec()
                })
                .collect();
            self.attention.push(Arc::new(attention));
            self.residual.push(Arc::new(residual));
        }
    }

    /// One head's causal map as query rows: row i has i + 1 weights.
    pub fn head_rows(&self, layer: usize, head: usize) -> Vec<&[f32]> {
        self.attention
            .iter()
            .enumerate()
            .filter_map(|(pos, layers)| layers.get(layer).map(|w| &w[head * (pos + 1)..(head + 1) * (pos + 1)]))
            .collect()
    }

    /// ‖h_l‖₂ per layer (embedding first) and position.
    pub fn residual_norms(&self) -> Vec<Vec<f32>> {
        let layers = self.residual.first().map(|r| r.len()).unwrap_or(0);
        (0..layers).map(|l| self.residual.iter().map(|r| crate::analysis::attention::l2(&r[l])).collect()).collect()
    }
}

/// The logit lens at one position: softmax(lm_head(norm(h_l))) for the embedding output and
/// every layer.
#[derive(Clone, Debug)]
pub struct Lens {
    pub position: usize,
    /// The base model's lens (adapter off), not the adapted one's.
    pub base: bool,
    pub probs: Vec<Vec<f32>>,
}
