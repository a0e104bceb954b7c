//! Statistics and histograms of stored tensors, streamed over the raw bytes.
//!
//! Two passes over the data: the first finds count, min, max and the sum; the second the
//! squared deviations from the exact mean (so the std has no catastrophic cancellation,
//! even for RMSNorm weights near 1.0) and the histogram, whose range needs min and max.
//! Both passes split the bytes into chunks that rayon spreads over the cores; each chunk
//! checks for cancellation and reports progress.

use rayon::prelude::*;
use serde::Serialize;

use super::control::{Cancelled, Control};
use crate::checkpoint::Dtype;
use crate::checkpoint::dtype::bf16_bits_to_f32;

/// Elements per work item: large enough to amortise scheduling, small enough that cancel is prompt.
const CHUNK_ELEMS: usize = 1 << 18;
pub const MAX_BINS: usize = 4096;

/// A borrowed run of stored elements.
#[derive(Clone, Copy)]
pub struct DataView<'a> {
    pub dtype: Dtype,
    pub bytes: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Histogram {
    /// `counts.len() + 1` bin edges, as `numpy.histogram` returns them.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

/// Summary of one tensor (or of all tensors of a module).
///
/// `mean`, `std`, `min`, `max` and the histogram are over the finite values; NaN and ±Inf
/// are counted, never averaged, so one bad weight cannot hide every other number.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorStats {
    pub count: u64,
    pub mean: f64,
    /// Population standard deviation (ddof = 0), as `numpy.std` and `torch.std(unbiased=False)`.
    pub std: f64,
    pub min: f64,
    pub max: f64,
    pub abs_max: f64,
    /// Element index of the largest |x| (into the views laid end to end): "show me the outlier".
    pub abs_max_index: u64,
    pub zeros: u64,
    pub nan: u64,
    pub inf: u64,
    pub histogram: Histogram,
}

impl TensorStats {
    /// Share of exact zeros among all elements.
    pub fn sparsity(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.zeros as f64 / self.count as f64 }
    }

    pub fn finite(&self) -> u64 {
        self.count - self.nan - self.inf
    }
}

#[derive(Clone, Copy)]
struct Pass1 {
    count: u64,
    finite: u64,
    sum: f64,
    min: f64,
    max: f64,
    abs_max: f64,
    abs_max_index: u64,
    zeros: u64,
    nan: u64,
    inf: u64,
}

impl Pass1 {
    const EMPTY: Pass1 = Pass1 {
        count: 0,
        finite: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        abs_max: -1.0,
        abs_max_index: 0,
        zeros: 0,
        nan: 0,
        inf: 0,
    };

    fn merge(self, o: Pass1) -> Pass1 {
        Pass1 {
            count: self.count + o.count,
            finite: self.finite + o.finite,
            sum: self.sum + o.sum,
            min: self.min.min(o.min),
            max: self.max.max(o.max),
            // Ties keep the earlier element, like numpy's argmax.
            abs_max: self.abs_max.max(o.abs_max),
            abs_max_index: if o.abs_max > self.abs_max || (o.abs_max == self.abs_max && o.abs_max_index < self.abs_max_index) {
                o.abs_max_index
            } else {
                self.abs_max_index
            },
            zeros: self.zeros + o.zeros,
            nan: self.nan + o.nan,
            inf: self.inf + o.inf,
        }
    }
}

/// Calls `f` with every element of `bytes` widened to f64; specialised per dtype so the
/// hot loops of the common float types inline their decode.
#[inline]
fn for_each_value(dtype: Dtype, bytes: &[u8], mut f: impl FnMut(f64)) {
    match dtype {
        Dtype::F32 => {
            for c in bytes.chunks_exact(4) {
                f(f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            }
        }
        Dtype::BF16 => {
            for c in bytes.chunks_exact(2) {
                f(bf16_bits_to_f32(u16::from_le_bytes([c[0], c[1]])) as f64)
            }
        }
        Dtype::F16 => {
            for c in bytes.chunks_exact(2) {
                f(half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f64())
            }
        }
        other => {
            for c in bytes.chunks_exact(other.size_in_bytes()) {
                f(other.decode(c))
            }
        }
    }
}

fn pass1_chunk(dtype: Dtype, bytes: &[u8], first_index: u64) -> Pass1 {
    let mut p = Pass1::EMPTY;
    let mut i = first_index;
    // Four partial sums break the add dependency chain; min/max ignore non-finite values.
    let mut sums = [0.0f64; 4];
    let mut lane = 0usize;
    for_each_value(dtype, bytes, |x| {
        p.count += 1;
        if x.is_finite() {
            p.finite += 1;
            sums[lane & 3] += x;
            lane += 1;
            p.min = p.min.min(x);
            p.max = p.max.max(x);
            if x.abs() > p.abs_max {
                p.abs_max = x.abs();
                p.abs_max_index = i;
            }
            if x == 0.0 {
                p.zeros += 1;
            }
        } else if x.is_nan() {
            p.nan += 1;
        } else {
            p.inf += 1;
        }
        i += 1;
    });
    p.sum = (sums[0] + sums[1]) + (sums[2] + sums[3]);
    p
}

/// Bin edges exactly as `numpy.linspace(first, last, bins + 1)` computes them.
pub fn numpy_edges(first: f64, last: f64, bins: usize) -> Vec<f64> {
    let step = (last - first) / bins as f64;
    let mut edges: Vec<f64> = (0..=bins).map(|i| i as f64 * step + first).collect();
    edges[bins] = last;
    edges
}

/// `numpy.histogram`'s range: a zero-width range is widened by 0.5 on each side.
pub fn numpy_range(min: f64, max: f64) -> (f64, f64) {
    if min == max { (min - 0.5, max + 0.5) } else { (min, max) }
}

/// Bin index of `x` with numpy's uniform-bin rule, including its edge corrections, so
/// counts agree with `numpy.histogram` exactly and not just approximately. None if outside.
#[inline]
pub fn numpy_bin(x: f64, first: f64, last: f64, edges: &[f64]) -> Option<usize> {
    let bins = edges.len() - 1;
    if !(x >= first && x <= last) {
        return None;
    }
    let f = ((x - first) / (last - first)) * bins as f64;
    let mut i = f as usize;
    if i >= bins {
        i = bins - 1;
    }
    if x < edges[i] && i > 0 {
        i -= 1;
    }
    if x >= edges[i + 1] && i != bins - 1 {
        i += 1;
    }
    Some(i)
}

/// Statistics and a `bins`-bin histogram over one or more runs of stored data
/// (one run for a tensor; all of a module's tensors for its aggregate).
pub fn compute_stats(views: &[DataView<'_>], bins: usize, ctl: &Control) -> Result<TensorStats, Cancelled> {
    let bins = bins.clamp(1, MAX_BINS);
    let total_bytes: u64 = views.iter().map(|v| v.bytes.len() as u64).sum();
    ctl.add_total(2 * total_bytes);

    // (dtype, bytes, index of the chunk's first element across all views)
    let mut chunks: Vec<(Dtype, &[u8], u64)> = Vec::new();
    let mut first = 0u64;
    for v in views {
        let size = v.dtype.size_in_bytes();
        for c in v.bytes.chunks(CHUNK_ELEMS * size) {
            chunks.push((v.dtype, c, first));
            first += (c.len() / size) as u64;
        }
    }

    let p1 = chunks
        .par_iter()
        .map(|&(dtype, bytes, first)| {
            ctl.check()?;
            let p = pass1_chunk(dtype, bytes, first);
            ctl.advance(bytes.len() as u64);
            Ok(p)
        })
        .try_reduce(|| Pass1::EMPTY, |a, b| Ok(a.merge(b)))?;

    let mean = if p1.finite > 0 { p1.sum / p1.finite as f64 } else { f64::NAN };
    let (min, max) = if p1.finite > 0 { (p1.min, p1.max) } else { (f64::NAN, f64::NAN) };
    let (first, last) = if p1.finite > 0 { numpy_range(min, max) } else { (-0.5, 0.5) };
    let edges = numpy_edges(first, last, bins);

    let (sq_dev, counts) = chunks
        .par_iter()
        .map(|&(dtype, bytes, _)| {
            ctl.check()?;
            let mut counts = vec![0u64; bins];
            let mut sq = [0.0f64; 2];
            let mut lane = 0usize;
            for_each_value(dtype, bytes, |x| {
                if let Some(i) = numpy_bin(x, first, last, &edges) {
                    counts[i] += 1;
                    let d = x - mean;
                    sq[lane & 1] += d * d;
                    lane += 1;
                }
            });
            ctl.advance(bytes.len() as u64);
            Ok((sq[0] + sq[1], counts))
        })
        .try_reduce(
            || (0.0, vec![0u64; bins]),
            |(s1, mut c1), (s2, c2)| {
                for (a, b) in c1.iter_mut().zip(c2) {
                    *a += b;
                }
                Ok((s1 + s2, c1))
            },
        )?;

    let std = if p1.finite > 0 { (sq_dev / p1.finite as f64).sqrt() } else { f64::NAN };
    Ok(TensorStats {
        count: p1.count,
        mean,
        std,
        min,
        max,
        abs_max: if p1.finite > 0 { min.abs().max(max.abs()) } else { f64::NAN },
        abs_max_index: p1.abs_max_index,
        zeros: p1.zeros,
        nan: p1.nan,
        inf: p1.inf,
        histogram: Histogram { edges, counts },
    })
}

/// The first `limit` elements (index, value) whose value lies in [lo, hi]: what a click on a
/// histogram bar lists. Stops early, and checks for cancel every chunk.
pub fn values_in_range(dtype: Dtype, bytes: &[u8], lo: f64, hi: f64, limit: usize, ctl: &Control) -> Vec<(usize, f64)> {
    let size = dtype.size_in_bytes();
    let mut found = Vec::new();
    for (c, chunk) in bytes.chunks(CHUNK_ELEMS * size).enumerate() {
        if ctl.is_cancelled() {
            break;
        }
        let mut i = c * CHUNK_ELEMS;
        for_each_value(dtype, chunk, |x| {
            if found.len() < limit && x >= lo && x <= hi {
                found.push((i, x));
            }
            i += 1;
        });
        if found.len() >= limit {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn small_vector_matches_numpy() {
        // numpy: np.histogram([0,1,2,3,4], bins=4) -> counts [1,1,1,2], edges [0,1,2,3,4]
        let bytes = f32_bytes(&[0.0, 1.0, 2.0, 3.0, 4.0]);
        let s = compute_stats(&[DataView { dtype: Dtype::F32, bytes: &bytes }], 4, &Control::new()).unwrap();
        assert_eq!(s.histogram.counts, vec![1, 1, 1, 2]);
        assert_eq!(s.histogram.edges, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.mean, 2.0);
        assert!((s.std - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(s.zeros, 1);
        assert_eq!(s.abs_max_index, 4);
    }

    #[test]
    fn nan_and_inf_are_counted_not_averaged() {
        let bytes = f32_bytes(&[1.0, f32::NAN, f32::INFINITY, 3.0, f32::NEG_INFINITY]);
        let s = compute_stats(&[DataView { dtype: Dtype::F32, bytes: &bytes }], 2, &Control::new()).unwrap();
        assert_eq!((s.count, s.nan, s.inf), (5, 1, 2));
        assert_eq!((s.mean, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(s.histogram.counts.iter().sum::<u64>(), 2);
    }

    #[test]
    fn constant_tensor_widens_range_like_numpy() {
        let bytes = f32_bytes(&[1.0; 10]);
        let s = compute_stats(&[DataView { dtype: Dtype::F32, bytes: &bytes }], 4, &Control::new()).unwrap();
        assert_eq!(s.histogram.edges.first(), Some(&0.5));
        assert_eq!(s.histogram.edges.last(), Some(&1.5));
        assert_eq!(s.histogram.counts, vec![0, 0, 10, 0]);
        assert_eq!(s.std, 0.0);
    }

    #[test]
    fn cancel_stops_work() {
        let bytes = f32_bytes(&vec![1.0; 1 << 20]);
        let ctl = Control::new();
        ctl.cancel();
        assert_eq!(
            compute_stats(&[DataView { dtype: Dtype::F32, bytes: &bytes }], 4, &ctl),
            Err(Cancelled)
        );
    }
}
