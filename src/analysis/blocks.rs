//! A quantized tensor seen block by block: how its block scales are spread, which codes it
//! uses and how often, and which block has the largest scale (the block a class looks at
//! first: its small weights lose the most). Single blocks are taken apart by
//! [`crate::checkpoint::quant_blocks`].

use rayon::prelude::*;
use serde::Serialize;

use super::control::{Cancelled, Control};
use super::stats::{Binner, Histogram, numpy_range};
use crate::checkpoint::quant::{GgmlType, NotReadable};
use crate::checkpoint::quant_blocks::{Field, block};

/// Scale histograms have this many bins; enough to see the spread on a projector.
pub const SCALE_BINS: usize = 48;
const CHUNK_BLOCKS: usize = 4096;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockSummary {
    pub ggml_type: String,
    pub blocks: usize,
    pub bits_per_weight: f64,
    /// Histogram of every block's `d` (the super-block `d` for K-quants).
    pub scales: Histogram,
    /// (code, how many weights use it), codes as the block formula uses them.
    pub codes: Vec<(i32, u64)>,
    /// The block whose |d| is largest, and that d.
    pub largest_scale_block: usize,
    pub largest_scale: f32,
}

/// The block's main scale: the field named `d`.
pub fn scale_of(fields: &[(&'static str, Field)]) -> f32 {
    fields
        .iter()
        .find_map(|(n, f)| match (n, f) {
            (&"d", Field::Half { value, .. }) => Some(*value),
            _ => None,
        })
        .unwrap_or(0.0)
}

pub fn block_summary(
    ty: GgmlType,
    bytes: &[u8],
    ctl: &Control,
) -> Result<Result<BlockSummary, NotReadable>, Cancelled> {
    let Some((_, size)) = ty.block_geometry().filter(|_| ty.is_readable() && ty.is_quantized()) else {
        return Ok(Err(NotReadable(ty)));
    };
    let blocks = bytes.len() / size;
    ctl.add_total(bytes.len() as u64);
    // Pass 1, per chunk of blocks: the scales (kept, 2 bytes of f32 per 32+ weights) and the
    // code counts.
    let parts: Vec<(Vec<f32>, std::collections::BTreeMap<i32, u64>)> = (0..blocks.div_ceil(CHUNK_BLOCKS))
        .into_par_iter()
        .map(|c| {
            ctl.check()?;
            let range = c * CHUNK_BLOCKS..((c + 1) * CHUNK_BLOCKS).min(blocks);
            let mut scales = Vec::with_capacity(range.len());
            let mut codes = std::collections::BTreeMap::new();
            for i in range.clone() {
                if let Ok(Some(b)) = block(ty, bytes, i) {
                    scales.push(scale_of(&b.fields));
                    for q in b.codes {
                        *codes.entry(q).or_insert(0u64) += 1;
                    }
                }
            }
            ctl.advance((range.len() * size) as u64);
            Ok((scales, codes))
        })
        .collect::<Result<_, Cancelled>>()?;
    let mut codes = std::collections::BTreeMap::new();
    let mut scales = Vec::with_capacity(blocks);
    for (s, c) in parts {
        scales.extend(s);
        for (q, n) in c {
            *codes.entry(q).or_insert(0) += n;
        }
    }
    let finite = scales.iter().copied().filter(|d| d.is_finite());
    let (min, max) =
        finite.clone().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), d| (lo.min(d as f64), hi.max(d as f64)));
    let (lo, hi) = if min <= max { numpy_range(min, max) } else { (0.0, 1.0) };
    let binner = Binner::new(lo, hi, SCALE_BINS);
    let mut counts = vec![0u64; SCALE_BINS];
    for i in finite.filter_map(|d| binner.bin(d as f64)) {
        counts[i] += 1;
    }
    let edges = binner.edges().to_vec();
    let (largest_scale_block, largest_scale) = scales
        .iter()
        .enumerate()
        .filter(|(_, d)| d.is_finite())
        .fold((0, 0f32), |best, (i, &d)| if d.abs() > best.1.abs() { (i, d) } else { best });
    Ok(Ok(BlockSummary {
        ggml_type: ty.to_string(),
        blocks,
        bits_per_weight: ty.bits_per_weight().unwrap_or(0.0),
        scales: Histogram { edges, counts },
        codes: codes.into_iter().collect(),
        largest_scale_block,
        largest_scale,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::quantize::quantize;

    #[test]
    fn scales_codes_and_the_largest_block_of_a_q4_0_tensor() {
        // Block 2 holds the largest values, so the largest scale; codes span 0..=15.
        let values: Vec<f32> =
            (0..128).map(|i| if i / 32 == 2 { (i % 32) as f32 - 16.0 } else { (i % 7) as f32 * 0.01 }).collect();
        let bytes = quantize(GgmlType::Q4_0, &values).unwrap();
        let s = block_summary(GgmlType::Q4_0, &bytes, &Control::new()).unwrap().unwrap();
        assert_eq!((s.blocks, s.largest_scale_block, s.bits_per_weight), (4, 2, 4.5));
        assert_eq!(s.codes.iter().map(|(_, n)| n).sum::<u64>(), 128);
        assert_eq!(s.scales.counts.iter().sum::<u64>(), 4);
        let want = block(GgmlType::Q4_0, &bytes, 2).unwrap().unwrap();
        assert_eq!(s.largest_scale, scale_of(&want.fields));
        assert!(s.codes.iter().all(|(q, _)| (0..16).contains(q)));
        assert!(block_summary(GgmlType::F32, &bytes, &Control::new()).unwrap().is_err());
    }
}
