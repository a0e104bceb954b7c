//! What casting a whole tensor to a smaller format does: how many values stay exact, are
//! rounded, overflow, flush to zero or become subnormal, how large the errors are, and
//! which exponents the values use (why BF16 never overflows a weight but FP16 can).

use rayon::prelude::*;
use serde::Serialize;

use super::control::{Cancelled, Control};
use super::floatbits::{Class, Format, cast_bits, decode, overflows};
use super::stats::DataView;
use crate::checkpoint::Dtype;

const CHUNK_ELEMS: usize = 1 << 18;
/// Relative errors are binned by log10 from 1e-12 to 1 (the worst a rounding can do is 100%).
pub const REL_ERROR_LOG10_RANGE: (f64, f64) = (-12.0, 0.0);
pub const REL_ERROR_BINS: usize = 24;
/// f32 exponents of non-zero finite values: −149 (smallest subnormal) … 127.
pub const EXPONENT_MIN: i32 = -149;
pub const EXPONENT_MAX: i32 = 127;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CastReport {
    pub to: Format,
    pub count: u64,
    /// Cast value equals the original bit for bit in value (±0 count as equal).
    pub exact: u64,
    /// Finite values that became ±∞ (or, for E4M3, were clamped to ±448).
    pub overflow: u64,
    /// Non-zero values that became ±0.
    pub underflow: u64,
    /// Values whose cast result is a subnormal of the target format.
    pub subnormal: u64,
    /// NaN or ±∞ already in the input (not counted as errors).
    pub non_finite_input: u64,
    pub max_abs_error: f64,
    pub mean_abs_error: f64,
    pub max_rel_error: f64,
    pub mean_rel_error: f64,
    /// Histogram of log10(relative error) of the values that changed (excluding overflows).
    pub rel_error_log10_edges: Vec<f64>,
    pub rel_error_log10_counts: Vec<u64>,
    /// Unbiased f32 exponent (floor(log2|x|)) of every non-zero finite input value.
    pub exponent_counts: Vec<(i32, u64)>,
}

#[derive(Clone)]
struct Partial {
    count: u64,
    exact: u64,
    overflow: u64,
    underflow: u64,
    subnormal: u64,
    non_finite: u64,
    sum_abs: f64,
    max_abs: f64,
    sum_rel: f64,
    max_rel: f64,
    /// Values that went into the error means (finite in, finite out, no overflow).
    measured: u64,
    rel_hist: Vec<u64>,
    exponents: Vec<u64>,
}

impl Partial {
    fn new() -> Self {
        Self {
            count: 0,
            exact: 0,
            overflow: 0,
            underflow: 0,
            subnormal: 0,
            non_finite: 0,
            sum_abs: 0.0,
            max_abs: 0.0,
            sum_rel: 0.0,
            max_rel: 0.0,
            measured: 0,
            rel_hist: vec![0; REL_ERROR_BINS],
            exponents: vec![0; (EXPONENT_MAX - EXPONENT_MIN + 1) as usize],
        }
    }

    fn merge(mut self, o: Partial) -> Self {
        self.count += o.count;
        self.exact += o.exact;
        self.overflow += o.overflow;
        self.underflow += o.underflow;
        self.subnormal += o.subnormal;
        self.non_finite += o.non_finite;
        self.sum_abs += o.sum_abs;
        self.max_abs = self.max_abs.max(o.max_abs);
        self.sum_rel += o.sum_rel;
        self.max_rel = self.max_rel.max(o.max_rel);
        self.measured += o.measured;
        for (a, b) in self.rel_hist.iter_mut().zip(o.rel_hist) {
            *a += b;
        }
        for (a, b) in self.exponents.iter_mut().zip(o.exponents) {
            *a += b;
        }
        self
    }

    fn add(&mut self, x: f32, to: Format) {
        self.count += 1;
        if !x.is_finite() {
            self.non_finite += 1;
            return;
        }
        if x != 0.0 {
            let e = f32_exponent(x);
            self.exponents[(e - EXPONENT_MIN) as usize] += 1;
        }
        if overflows(x, to) {
            self.overflow += 1;
            return;
        }
        let y = decode(to, cast_bits(x, to));
        let xv = x as f64;
        if y.value == xv {
            self.exact += 1;
        }
        if y.class == Class::Zero && x != 0.0 {
            self.underflow += 1;
        }
        if y.class == Class::Subnormal {
            self.subnormal += 1;
        }
        let abs = (y.value - xv).abs();
        self.sum_abs += abs;
        self.max_abs = self.max_abs.max(abs);
        if x != 0.0 {
            let rel = abs / xv.abs();
            self.sum_rel += rel;
            self.max_rel = self.max_rel.max(rel);
            if rel > 0.0 {
                let (lo, hi) = REL_ERROR_LOG10_RANGE;
                let t = ((rel.log10() - lo) / (hi - lo) * REL_ERROR_BINS as f64).floor();
                let i = (t.max(0.0) as usize).min(REL_ERROR_BINS - 1);
                self.rel_hist[i] += 1;
            }
        }
        self.measured += 1;
    }
}

/// floor(log2|x|) of a non-zero finite f32, subnormals included.
pub fn f32_exponent(x: f32) -> i32 {
    let bits = x.to_bits() & 0x7fff_ffff;
    let field = (bits >> 23) as i32;
    if field == 0 {
        // Subnormal: 2^-126 × 0.m → the leading one of the mantissa sets the exponent.
        -127 - (bits.leading_zeros() as i32 - 9)
    } else {
        field - 127
    }
}

pub fn cast_report(views: &[DataView<'_>], to: Format, ctl: &Control) -> Result<CastReport, Cancelled> {
    let total: u64 = views.iter().map(|v| v.bytes.len() as u64).sum();
    ctl.add_total(total);
    let chunks: Vec<DataView<'_>> = views
        .iter()
        .flat_map(|v| {
            v.bytes.chunks(v.dtype.chunk_bytes(CHUNK_ELEMS)).map(move |c| DataView { dtype: v.dtype, bytes: c })
        })
        .collect();
    let p = chunks
        .par_iter()
        .map(|v| {
            ctl.check()?;
            let mut p = Partial::new();
            if let Dtype::Ggml(layout) = v.dtype {
                layout.decode_all_f32(v.bytes).iter().for_each(|&x| p.add(x, to));
            } else {
                for c in v.bytes.chunks_exact(v.dtype.size_in_bytes()) {
                    p.add(v.dtype.decode(c) as f32, to);
                }
            }
            ctl.advance(v.bytes.len() as u64);
            Ok(p)
        })
        .try_reduce(Partial::new, |a, b| Ok(a.merge(b)))?;
    let (lo, hi) = REL_ERROR_LOG10_RANGE;
    let step = (hi - lo) / REL_ERROR_BINS as f64;
    Ok(CastReport {
        to,
        count: p.count,
        exact: p.exact,
        overflow: p.overflow,
        underflow: p.underflow,
        subnormal: p.subnormal,
        non_finite_input: p.non_finite,
        max_abs_error: p.max_abs,
        mean_abs_error: if p.measured > 0 { p.sum_abs / p.measured as f64 } else { 0.0 },
        max_rel_error: p.max_rel,
        mean_rel_error: if p.measured > 0 { p.sum_rel / p.measured as f64 } else { 0.0 },
        rel_error_log10_edges: (0..=REL_ERROR_BINS).map(|i| lo + i as f64 * step).collect(),
        rel_error_log10_counts: p.rel_hist,
        exponent_counts: p
            .exponents
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (i as i32 + EXPONENT_MIN, *c))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Dtype;

    #[test]
    fn exponents_of_subnormals_and_normals() {
        assert_eq!(f32_exponent(1.0), 0);
        assert_eq!(f32_exponent(-3.0), 1);
        assert_eq!(f32_exponent(f32::from_bits(1)), -149);
        assert_eq!(f32_exponent(f32::from_bits(0x0040_0000)), -127);
        assert_eq!(f32_exponent(f32::MIN_POSITIVE), -126);
    }

    #[test]
    fn counts_overflow_underflow_subnormal_exact() {
        // To FP16: 70000 overflows, 1e-8 flushes to zero, 1e-6 becomes subnormal, 0.5 and 0 are exact,
        // 0.1 is rounded, NaN is input-non-finite.
        let values = [70000.0f32, 1e-8, 1e-6, 0.5, 0.0, 0.1, f32::NAN];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let r = cast_report(&[DataView { dtype: Dtype::F32, bytes: &bytes }], Format::F16, &Control::new()).unwrap();
        assert_eq!((r.count, r.overflow, r.underflow, r.subnormal, r.exact, r.non_finite_input), (7, 1, 1, 1, 2, 1));
        assert_eq!(r.max_rel_error, 1.0, "a flush to zero loses 100%");
        // E4M3 saturates instead: 70000 counts as an overflow (clamped to 448).
        let r8 =
            cast_report(&[DataView { dtype: Dtype::F32, bytes: &bytes }], Format::F8E4M3, &Control::new()).unwrap();
        assert_eq!(r8.overflow, 1);
        // BF16 keeps FP32's range: nothing overflows or flushes.
        let rb = cast_report(&[DataView { dtype: Dtype::F32, bytes: &bytes }], Format::BF16, &Control::new()).unwrap();
        assert_eq!((rb.overflow, rb.underflow), (0, 0));
        assert_eq!(rb.exponent_counts.iter().map(|(_, c)| c).sum::<u64>(), 5);
    }
}
