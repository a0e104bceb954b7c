//! What casting a whole tensor to a smaller format does: how many values stay exact, are
//! rounded, overflow, flush to zero or become subnormal, how large the errors are, and
//! which exponents the values use (why BF16 never overflows a weight but FP16 can).
//! The same report covers quantizing to a GGML block format (Q8_0, Q4_0, Q4_1, with ggml's
//! reference quantizers): a block shares one scale, so its errors depend on the block's
//! largest value, where a float cast's depend on each value alone.

use rayon::prelude::*;
use serde::Serialize;

use super::control::{Cancelled, Control};
use super::floatbits::{Class, Format, cast_bits, decode, overflows};
use super::stats::DataView;
use crate::checkpoint::Dtype;
use crate::checkpoint::quant::{GgmlType, dequantize};
use crate::checkpoint::quantize::{QUANTIZABLE, quantize};

/// What a tensor is rounded to: a float format value by value, or a GGML block format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CastTarget {
    Float(Format),
    Block(GgmlType),
}

impl CastTarget {
    /// Every target the what-if offers, floats first.
    pub fn all() -> Vec<CastTarget> {
        Format::TARGETS.map(CastTarget::Float).into_iter().chain(QUANTIZABLE.map(CastTarget::Block)).collect()
    }

    /// `bf16`, `f8e4m3`, `q4_0`: what `cast --to` takes and the JSON's `to` says.
    pub fn key(self) -> String {
        match self {
            CastTarget::Float(f) => f.key().to_string(),
            CastTarget::Block(t) => t.to_string().to_ascii_lowercase(),
        }
    }

    pub fn name(self) -> String {
        match self {
            CastTarget::Float(f) => f.name().to_string(),
            CastTarget::Block(t) => t.to_string(),
        }
    }

    pub fn parse(s: &str) -> Option<CastTarget> {
        let all = CastTarget::all();
        Format::parse(s)
            .map(CastTarget::Float)
            .filter(|t| all.contains(t))
            .or_else(|| GgmlType::from_name(s).map(CastTarget::Block).filter(|t| all.contains(t)))
    }

    /// Storage per weight, the block's scales included (Q4_0: 4.5).
    pub fn bits_per_weight(self) -> f64 {
        match self {
            CastTarget::Float(f) => f.total_bits() as f64,
            CastTarget::Block(t) => t.bits_per_weight().unwrap_or(0.0),
        }
    }

    /// Whether a value too large for the format becomes ±∞ (FP8 E4M3 saturates instead; a
    /// block's scale is F16, so only a block holding values beyond ~8·10⁶ could overflow).
    pub fn has_inf(self) -> bool {
        match self {
            CastTarget::Float(f) => f.has_inf(),
            CastTarget::Block(_) => true,
        }
    }
}

impl Serialize for CastTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.key())
    }
}

const CHUNK_ELEMS: usize = 1 << 18;
/// Relative errors are binned by log10 from 1e-12 to 1 (the worst a rounding can do is 100%).
pub const REL_ERROR_LOG10_RANGE: (f64, f64) = (-12.0, 0.0);
pub const REL_ERROR_BINS: usize = 24;
/// f32 exponents of non-zero finite values: −149 (smallest subnormal) … 127.
pub const EXPONENT_MIN: i32 = -149;
pub const EXPONENT_MAX: i32 = 127;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CastReport {
    pub to: CastTarget,
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
        if !self.count_input(x) {
            return;
        }
        if overflows(x, to) {
            self.overflow += 1;
            return;
        }
        let y = decode(to, cast_bits(x, to));
        if y.class == Class::Subnormal {
            self.subnormal += 1;
        }
        self.add_error(x, y.value);
    }

    /// A value and what its block decoded to.
    fn add_block_value(&mut self, x: f32, y: f32) {
        if !self.count_input(x) {
            return;
        }
        if !y.is_finite() {
            self.overflow += 1;
            return;
        }
        self.add_error(x, y as f64);
    }

    /// Counts `x` and its exponent; false for NaN/∞ input, which has no error to measure.
    fn count_input(&mut self, x: f32) -> bool {
        self.count += 1;
        if !x.is_finite() {
            self.non_finite += 1;
            return false;
        }
        if x != 0.0 {
            let e = f32_exponent(x);
            self.exponents[(e - EXPONENT_MIN) as usize] += 1;
        }
        true
    }

    /// The finite `x` came back as the finite `y`.
    fn add_error(&mut self, x: f32, y: f64) {
        let xv = x as f64;
        if y == xv {
            self.exact += 1;
        }
        if y == 0.0 && x != 0.0 {
            self.underflow += 1;
        }
        let abs = (y - xv).abs();
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

/// Block formats see the tensor as ggml quantizes it: whole blocks along the flattened
/// values (rows are whole blocks in every GGUF tensor). A tail shorter than a block is
/// padded with zeros for the quantizer, and only its own values are counted.
pub fn cast_report(views: &[DataView<'_>], to: CastTarget, ctl: &Control) -> Result<CastReport, Cancelled> {
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
            match to {
                CastTarget::Float(f) => {
                    if let Dtype::Ggml(layout) = v.dtype {
                        layout.decode_all_f32(v.bytes).iter().for_each(|&x| p.add(x, f));
                    } else {
                        for c in v.bytes.chunks_exact(v.dtype.size_in_bytes()) {
                            p.add(v.dtype.decode(c) as f32, f);
                        }
                    }
                }
                CastTarget::Block(ty) => {
                    let xs: Vec<f32> = match v.dtype {
                        Dtype::Ggml(layout) => layout.decode_all_f32(v.bytes),
                        d => v.bytes.chunks_exact(d.size_in_bytes()).map(|c| d.decode(c) as f32).collect(),
                    };
                    let n = ty.block_size().unwrap_or(32);
                    let mut padded = xs.clone();
                    padded.resize(xs.len().div_ceil(n) * n, 0.0);
                    // Non-finite inputs would poison their block's scale; they are counted
                    // as input NaN/∞ and quantized as 0, as the rest of the report treats them.
                    padded.iter_mut().filter(|x| !x.is_finite()).for_each(|x| *x = 0.0);
                    let back = quantize(ty, &padded).and_then(|b| dequantize(ty, &b).ok());
                    let back = back.unwrap_or_else(|| vec![f32::NAN; padded.len()]);
                    xs.iter().zip(&back).for_each(|(&x, &y)| p.add_block_value(x, y));
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
        let cast = |f| cast_report(&[DataView { dtype: Dtype::F32, bytes: &bytes }], f, &Control::new()).unwrap();
        let r = cast(CastTarget::Float(Format::F16));
        assert_eq!((r.count, r.overflow, r.underflow, r.subnormal, r.exact, r.non_finite_input), (7, 1, 1, 1, 2, 1));
        assert_eq!(r.max_rel_error, 1.0, "a flush to zero loses 100%");
        // E4M3 saturates instead: 70000 counts as an overflow (clamped to 448).
        let r8 = cast(CastTarget::Float(Format::F8E4M3));
        assert_eq!(r8.overflow, 1);
        // BF16 keeps FP32's range: nothing overflows or flushes.
        let rb = cast(CastTarget::Float(Format::BF16));
        assert_eq!((rb.overflow, rb.underflow), (0, 0));
        assert_eq!(rb.exponent_counts.iter().map(|(_, c)| c).sum::<u64>(), 5);
    }

    /// Quantizing: every error equals |dequantize(quantize(x)) − x| computed by hand, a
    /// block's largest value comes back within d/2, and a ragged tail is counted once.
    #[test]
    fn block_formats_report_the_round_trip_errors() {
        let values: Vec<f32> = (0..100).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        for ty in QUANTIZABLE {
            let r =
                cast_report(&[DataView { dtype: Dtype::F32, bytes: &bytes }], CastTarget::Block(ty), &Control::new())
                    .unwrap();
            let mut padded = values.clone();
            padded.resize(128, 0.0);
            let back = dequantize(ty, &quantize(ty, &padded).unwrap()).unwrap();
            let errors: Vec<f64> = values.iter().zip(&back).map(|(&x, &y)| (y as f64 - x as f64).abs()).collect();
            let max = errors.iter().copied().fold(0.0, f64::max);
            assert_eq!(r.count, 100);
            assert_eq!(r.max_abs_error, max, "{ty}");
            assert!((r.mean_abs_error - errors.iter().sum::<f64>() / 100.0).abs() < 1e-12);
            assert_eq!(r.exact, errors.iter().filter(|e| **e == 0.0).count() as u64);
            assert_eq!(CastTarget::Block(ty).bits_per_weight(), ty.bits_per_weight().unwrap());
        }
        assert_eq!(CastTarget::parse("q4_1"), Some(CastTarget::Block(GgmlType::Q4_1)));
        assert_eq!(CastTarget::parse("Q8_0").map(CastTarget::key).as_deref(), Some("q8_0"));
        assert_eq!(CastTarget::parse("f32"), None, "F32 is every tensor's widened form");
        assert_eq!(CastTarget::parse("q6_k"), None, "no reference quantizer here");
    }
}
