//! Everything the LoRA view shows for one adapted module, computed in one pass off the UI
//! thread: ΔW's norms and singular values, the three histograms, and block-mean grids of W,
//! ΔW and W + ΔW ready to colour. A 2048×2048 module takes a few hundred milliseconds, far
//! longer than a frame, which is why this is data and not drawing code.

use crate::analysis::Control;
use crate::analysis::lowrank::{self, DeltaSummary};
use crate::analysis::stats::{DataView, TensorStats, compute_stats};
use crate::checkpoint::Dtype;
use crate::lora::LoraModule;

/// Heatmaps are pooled down to at most this many cells per side: more would not fit on a
/// screen, and the pooled mean is what the eye reads anyway.
pub const MAX_CELLS: usize = 128;

/// Block means of a [rows, cols] matrix on a grid of at most [`MAX_CELLS`] per side.
#[derive(Clone, Debug)]
pub struct PooledGrid {
    pub width: usize,
    pub height: usize,
    /// Row-major, `height × width` means.
    pub cells: Vec<f32>,
}

pub struct LoraFigures {
    pub summary: DeltaSummary,
    pub rank: usize,
    pub w_stats: TensorStats,
    pub delta_stats: TensorStats,
    pub merged_stats: TensorStats,
    pub w: PooledGrid,
    pub delta: PooledGrid,
    pub merged: PooledGrid,
    /// The colour scale's ±limit shared by W, ΔW and W + ΔW (so ΔW looks as small as it is).
    pub scale: f32,
    /// ΔW's own ±limit, for the fourth heatmap that shows its structure.
    pub delta_scale: f32,
}

/// Statistics of values computed here (not stored), between cancellation checks of the job.
fn stats_of(values: &[f32], ctl: &Control) -> Result<TensorStats, String> {
    ctl.check().map_err(|e| e.to_string())?;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let stats = compute_stats(&[DataView { dtype: Dtype::F32, bytes: &bytes }], 48, &Control::new());
    ctl.advance(1);
    stats.map_err(|e| e.to_string())
}

/// Block-mean pooling of a row-major [rows, cols] matrix.
pub fn pool(values: &[f32], rows: usize, cols: usize) -> PooledGrid {
    let (h, w) = (rows.clamp(1, MAX_CELLS), cols.clamp(1, MAX_CELLS));
    let mut cells = Vec::with_capacity(h * w);
    for y in 0..h {
        let (r0, r1) = (y * rows / h, ((y + 1) * rows / h).max(y * rows / h + 1).min(rows.max(1)));
        for x in 0..w {
            let (c0, c1) = (x * cols / w, ((x + 1) * cols / w).max(x * cols / w + 1).min(cols.max(1)));
            let mut sum = 0f32;
            for r in r0..r1 {
                if let Some(row) = values.get(r * cols + c0..r * cols + c1) {
                    sum += row.iter().sum::<f32>();
                }
            }
            cells.push(sum / ((r1 - r0) * (c1 - c0)).max(1) as f32);
        }
    }
    PooledGrid { width: w, height: h, cells }
}

impl LoraFigures {
    /// `w`: the base weight [out, in] as f32; `scaling`: α/r (or α/√r).
    pub fn compute(m: &LoraModule, w: &[f32], scaling: f64, ctl: &Control) -> Result<Self, String> {
        if w.len() != m.out_features * m.in_features {
            return Err(format!(
                "{}: the weight has {} values, the adapter expects [{}, {}]",
                m.module,
                w.len(),
                m.out_features,
                m.in_features
            ));
        }
        // Six steps of similar cost: summary, ΔW, three statistics, pooling.
        ctl.add_total(6);
        let summary = lowrank::summarize(&m.module, &m.a, &m.b, m.rank, w, scaling);
        ctl.advance(1);
        ctl.check().map_err(|e| e.to_string())?;
        let delta = lowrank::delta(&m.a, &m.b, m.rank, scaling);
        let merged: Vec<f32> = w.iter().zip(&delta).map(|(a, b)| a + b).collect();
        let (rows, cols) = (m.out_features, m.in_features);
        let scale = w.iter().chain(&merged).fold(0f32, |a, &x| a.max(x.abs())).max(f32::MIN_POSITIVE);
        let delta_scale = delta.iter().fold(0f32, |a, &x| a.max(x.abs())).max(f32::MIN_POSITIVE);
        ctl.advance(1);
        let figures = Self {
            w_stats: stats_of(w, ctl)?,
            delta_stats: stats_of(&delta, ctl)?,
            merged_stats: stats_of(&merged, ctl)?,
            w: pool(w, rows, cols),
            delta: pool(&delta, rows, cols),
            merged: pool(&merged, rows, cols),
            summary,
            rank: m.rank,
            scale,
            delta_scale,
        };
        ctl.advance(1);
        Ok(figures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_averages_blocks_and_keeps_small_matrices_whole() {
        let g = pool(&[1.0, 2.0, 3.0, 4.0], 2, 2);
        assert_eq!((g.width, g.height), (2, 2));
        assert_eq!(g.cells, vec![1.0, 2.0, 3.0, 4.0]);
        let big: Vec<f32> = (0..256 * 256).map(|i| (i % 2) as f32).collect();
        let g = pool(&big, 256, 256);
        assert_eq!((g.width, g.height), (128, 128));
        assert!(g.cells.iter().all(|&c| (c - 0.5).abs() < 1e-6));
    }
}
