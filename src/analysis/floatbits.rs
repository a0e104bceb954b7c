//! Floating-point formats bit by bit: decomposition, exact casts, neighbours.
//!
//! One generic minifloat codec covers FP32, BF16, FP16 and both FP8 variants. Casting goes
//! through f64, where every f32 is exact and scaling by powers of two is exact, so there is
//! exactly one rounding (to nearest, ties to even), as torch's `.to(dtype)` does. The only
//! per-format policies are what overflow and NaN become, taken from what torch 2.15 was
//! observed to produce (`tests/fixtures/dtype-roundings.json`):
//! FP8 E4M3 "fn" has no infinity and saturates at ±448; the others overflow to ±∞.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Format {
    F32,
    BF16,
    F16,
    F8E4M3,
    F8E5M2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Normal,
    Subnormal,
    Zero,
    Inf,
    Nan,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Normal => "normal",
            Class::Subnormal => "subnormal",
            Class::Zero => "zero",
            Class::Inf => "inf",
            Class::Nan => "nan",
        }
    }
}

impl Format {
    pub const ALL: [Format; 5] = [Format::F32, Format::BF16, Format::F16, Format::F8E4M3, Format::F8E5M2];
    /// The formats a weight can be cast to (everything but the f32 it starts from).
    pub const TARGETS: [Format; 4] = [Format::BF16, Format::F16, Format::F8E4M3, Format::F8E5M2];

    pub fn exponent_bits(self) -> u32 {
        match self {
            Format::F32 | Format::BF16 => 8,
            Format::F16 | Format::F8E5M2 => 5,
            Format::F8E4M3 => 4,
        }
    }

    pub fn mantissa_bits(self) -> u32 {
        match self {
            Format::F32 => 23,
            Format::BF16 => 7,
            Format::F16 => 10,
            Format::F8E4M3 => 3,
            Format::F8E5M2 => 2,
        }
    }

    pub fn total_bits(self) -> u32 {
        1 + self.exponent_bits() + self.mantissa_bits()
    }

    pub fn bias(self) -> i32 {
        (1 << (self.exponent_bits() - 1)) - 1
    }

    /// Smallest normal exponent (also the exponent subnormals use).
    pub fn emin(self) -> i32 {
        1 - self.bias()
    }

    /// IEEE-style formats reserve the all-ones exponent for ∞/NaN; E4M3 "fn" uses it for
    /// numbers and keeps only S.1111.111 as NaN.
    pub fn has_inf(self) -> bool {
        self != Format::F8E4M3
    }

    pub fn max_finite(self) -> f64 {
        let m = self.mantissa_bits() as i32;
        if self.has_inf() {
            let emax = self.bias();
            (2.0 - 2f64.powi(-m)) * 2f64.powi(emax)
        } else {
            // All-ones exponent, mantissa all ones but one (448 for E4M3).
            let emax = (1 << self.exponent_bits()) - 1 - self.bias();
            (2.0 - 2f64.powi(1 - m)) * 2f64.powi(emax)
        }
    }

    /// Smallest positive subnormal.
    pub fn min_subnormal(self) -> f64 {
        2f64.powi(self.emin() - self.mantissa_bits() as i32)
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::F32 => "FP32",
            Format::BF16 => "BF16",
            Format::F16 => "FP16",
            Format::F8E4M3 => "FP8 E4M3",
            Format::F8E5M2 => "FP8 E5M2",
        }
    }

    /// Keys used by the CLI's JSON and `--to` flag.
    pub fn key(self) -> &'static str {
        match self {
            Format::F32 => "f32",
            Format::BF16 => "bf16",
            Format::F16 => "f16",
            Format::F8E4M3 => "f8_e4m3",
            Format::F8E5M2 => "f8_e5m2",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "f32" | "fp32" | "float32" => Some(Format::F32),
            "bf16" | "bfloat16" => Some(Format::BF16),
            "f16" | "fp16" | "float16" | "half" => Some(Format::F16),
            "f8e4m3" | "fp8e4m3" | "f8e4m3fn" | "float8e4m3fn" => Some(Format::F8E4M3),
            "f8e5m2" | "fp8e5m2" | "float8e5m2" => Some(Format::F8E5M2),
            _ => None,
        }
    }

    /// The NaN pattern torch writes when casting a NaN to this format.
    fn nan_bits(self) -> u32 {
        match self {
            Format::F32 => 0x7fc0_0000,
            Format::BF16 => 0xffff,
            Format::F16 => 0x7e00,
            Format::F8E4M3 | Format::F8E5M2 => 0x7f,
        }
    }

    fn sign_mask(self) -> u32 {
        1 << (self.total_bits() - 1)
    }

    fn exp_all_ones(self) -> u32 {
        (1 << self.exponent_bits()) - 1
    }
}

/// A value in a format, taken apart.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decoded {
    pub format: Format,
    pub bits: u32,
    pub sign: u32,
    pub exponent_field: u32,
    pub mantissa_field: u32,
    /// Unbiased exponent the formula uses: field − bias for normal numbers (and ∞/NaN),
    /// emin = 1 − bias for subnormals and zero.
    pub exponent: i32,
    pub class: Class,
    pub value: f64,
}

impl Decoded {
    pub fn hex(&self) -> String {
        let digits = self.format.total_bits().div_ceil(4) as usize;
        format!("0x{:0digits$x}", self.bits)
    }

    pub fn exponent_bits_string(&self) -> String {
        format!("{:0w$b}", self.exponent_field, w = self.format.exponent_bits() as usize)
    }

    pub fn mantissa_bits_string(&self) -> String {
        format!("{:0w$b}", self.mantissa_field, w = self.format.mantissa_bits() as usize)
    }

    /// The value formula with this value's numbers filled in, as the course writes it.
    pub fn formula(&self) -> String {
        let f = self.format;
        let m = f.mantissa_bits();
        let sign = if self.sign == 1 { "−1" } else { "+1" };
        match self.class {
            Class::Normal => format!(
                "{sign} × 2^({} − {}) × (1 + {}/2^{m}) = {}",
                self.exponent_field,
                f.bias(),
                self.mantissa_field,
                self.value
            ),
            Class::Subnormal | Class::Zero => format!(
                "{sign} × 2^({}) × (0 + {}/2^{m}) = {}  (subnormal: no implicit leading 1)",
                f.emin(),
                self.mantissa_field,
                self.value
            ),
            Class::Inf => format!("exponent all ones, fraction 0: {}∞", if self.sign == 1 { "−" } else { "+" }),
            Class::Nan => "exponent all ones, fraction ≠ 0: NaN (not a number)".to_string(),
        }
    }

    /// The implicit leading bit: 1 for normal numbers, 0 for subnormals and zero.
    pub fn implicit_bit(&self) -> Option<u32> {
        match self.class {
            Class::Normal => Some(1),
            Class::Subnormal | Class::Zero => Some(0),
            _ => None,
        }
    }
}

/// Takes a bit pattern apart. Bits above the format's width are ignored.
pub fn decode(format: Format, bits: u32) -> Decoded {
    let width = format.total_bits();
    let bits = if width == 32 { bits } else { bits & ((1 << width) - 1) };
    let m = format.mantissa_bits();
    let sign = bits >> (width - 1);
    let exponent_field = (bits >> m) & format.exp_all_ones();
    let mantissa_field = bits & ((1 << m) - 1);
    let s = if sign == 1 { -1.0 } else { 1.0 };
    let all_ones = exponent_field == format.exp_all_ones();
    let (class, value, exponent) = if format.has_inf() && all_ones {
        if mantissa_field == 0 {
            (Class::Inf, s * f64::INFINITY, exponent_field as i32 - format.bias())
        } else {
            (Class::Nan, f64::NAN, exponent_field as i32 - format.bias())
        }
    } else if !format.has_inf() && all_ones && mantissa_field == (1 << m) - 1 {
        (Class::Nan, f64::NAN, exponent_field as i32 - format.bias())
    } else if exponent_field == 0 {
        let v = s * mantissa_field as f64 * 2f64.powi(format.emin() - m as i32);
        (if mantissa_field == 0 { Class::Zero } else { Class::Subnormal }, v, format.emin())
    } else {
        let e = exponent_field as i32 - format.bias();
        let v = s * (1.0 + mantissa_field as f64 / (1u64 << m) as f64) * 2f64.powi(e);
        (Class::Normal, v, e)
    };
    Decoded { format, bits, sign, exponent_field, mantissa_field, exponent, class, value }
}

/// Bits of an f32 value cast to `format` with round-to-nearest-even, as torch casts.
pub fn cast_bits(x: f32, format: Format) -> u32 {
    if format == Format::F32 {
        return x.to_bits();
    }
    if x.is_nan() {
        return format.nan_bits();
    }
    let sign = if x.is_sign_negative() { format.sign_mask() } else { 0 };
    let a = x.abs() as f64;
    if a == 0.0 {
        return sign;
    }
    let overflow = || {
        if format.has_inf() {
            sign | (format.exp_all_ones() << format.mantissa_bits())
        } else {
            sign | encode_finite(format, format.max_finite())
        }
    };
    if a.is_infinite() {
        return overflow();
    }
    let rounded = round_magnitude(a, format);
    if rounded > format.max_finite() {
        return overflow();
    }
    sign | encode_finite(format, rounded)
}

/// |x| rounded to the format's precision as if its exponent range had no top: a result
/// above `max_finite` means the cast overflows (to ∞, or to ±448 for E4M3).
pub fn round_magnitude(a: f64, format: Format) -> f64 {
    if a == 0.0 || !a.is_finite() {
        return a.abs();
    }
    let a = a.abs();
    let m = format.mantissa_bits() as i32;
    // Exponent of a: exact from the f64 bits, since every f32 is a normal f64.
    let e = ((a.to_bits() >> 52) as i32) - 1023;
    let q = 2f64.powi(e.max(format.emin()) - m);
    (a / q).round_ties_even() * q
}

/// Whether casting `x` to `format` leaves its range (becomes ∞, or is clamped for E4M3).
pub fn overflows(x: f32, format: Format) -> bool {
    x.is_finite() && round_magnitude(x as f64, format) > format.max_finite()
}

/// Bits of a non-negative value that is exactly representable in `format`.
fn encode_finite(format: Format, v: f64) -> u32 {
    let m = format.mantissa_bits() as i32;
    if v == 0.0 {
        return 0;
    }
    let e = ((v.to_bits() >> 52) as i32) - 1023;
    if e < format.emin() {
        (v / 2f64.powi(format.emin() - m)) as u32
    } else {
        let mant = (v / 2f64.powi(e - m)) as u64 - (1u64 << m);
        (((e + format.bias()) as u32) << m) | mant as u32
    }
}

/// Cast and decode in one step.
pub fn cast(x: f32, format: Format) -> Decoded {
    decode(format, cast_bits(x, format))
}

/// The next representable values below and above a decoded one (None past ±∞ or for NaN).
pub fn neighbours(d: &Decoded) -> (Option<Decoded>, Option<Decoded>) {
    if d.class == Class::Nan {
        return (None, None);
    }
    let f = d.format;
    let sign_mask = f.sign_mask();
    let magnitude = (d.bits & !sign_mask) as i64;
    // Order all values on one integer line: negatives mirrored below zero.
    let key = if d.bits & sign_mask != 0 { -magnitude } else { magnitude };
    let from_key = |k: i64| -> Option<Decoded> {
        let bits = if k >= 0 { k as u32 } else { sign_mask | (-k) as u32 };
        let limit = (sign_mask - 1) as i64;
        if k.abs() > limit {
            return None;
        }
        let dec = decode(f, bits);
        (dec.class != Class::Nan).then_some(dec)
    };
    // Stepping down from +0 lands on −(smallest subnormal), not on −0.
    let down = if key == 0 && d.bits & sign_mask == 0 { from_key(-1) } else { from_key(key - 1) };
    let up = if key == 0 && d.bits & sign_mask != 0 { from_key(1) } else { from_key(key + 1) };
    // Nothing lies below −∞ or above +∞.
    (
        if d.class == Class::Inf && d.sign == 1 { None } else { down },
        if d.class == Class::Inf && d.sign == 0 { None } else { up },
    )
}

/// One value seen in every format: what the Bits view and `bits --json` show.
#[derive(Clone, Debug)]
pub struct Breakdown {
    pub input: f64,
    pub as_f32: f32,
    pub formats: Vec<Decoded>,
}

pub fn breakdown(input: f64) -> Breakdown {
    let as_f32 = input as f32;
    Breakdown { input, as_f32, formats: Format::ALL.iter().map(|&f| cast(as_f32, f)).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_constants() {
        assert_eq!(Format::F16.max_finite(), 65504.0);
        assert_eq!(Format::BF16.max_finite(), (2.0 - 2f64.powi(-7)) * 2f64.powi(127));
        assert_eq!(Format::F8E4M3.max_finite(), 448.0);
        assert_eq!(Format::F8E5M2.max_finite(), 57344.0);
        assert_eq!(Format::F32.max_finite(), f32::MAX as f64);
        assert_eq!(Format::F16.min_subnormal(), 2f64.powi(-24));
    }

    #[test]
    fn agrees_with_the_half_crate_on_many_values() {
        let mut state = 0x1234_5678_9abc_def0u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f32::from_bits(state as u32);
            if x.is_nan() {
                continue;
            }
            assert_eq!(cast_bits(x, Format::F16), half::f16::from_f32(x).to_bits() as u32, "{x:e}");
            assert_eq!(cast_bits(x, Format::BF16), half::bf16::from_f32(x).to_bits() as u32, "{x:e}");
            assert_eq!(cast_bits(x, Format::F32), x.to_bits());
        }
    }

    #[test]
    fn decode_round_trips_every_small_pattern() {
        for f in [Format::BF16, Format::F16, Format::F8E4M3, Format::F8E5M2] {
            for bits in 0..(1u32 << f.total_bits()) {
                let d = decode(f, bits);
                if d.class == Class::Nan || d.class == Class::Inf {
                    continue;
                }
                assert_eq!(cast_bits(d.value as f32, f), bits, "{f:?} {bits:#x}");
            }
        }
    }

    #[test]
    fn neighbours_step_one_ulp() {
        let one = cast(1.0, Format::BF16);
        let (down, up) = neighbours(&one);
        assert_eq!(up.unwrap().value, 1.0078125);
        assert_eq!(down.unwrap().value, 0.99609375);
        let zero = cast(0.0, Format::F8E4M3);
        let (down, up) = neighbours(&zero);
        assert_eq!(up.unwrap().value, 2f64.powi(-9));
        assert_eq!(down.unwrap().value, -(2f64.powi(-9)));
        let max = cast(448.0, Format::F8E4M3);
        assert!(neighbours(&max).1.is_none(), "E4M3 has nothing above 448");
        let max16 = cast(65504.0, Format::F16);
        assert_eq!(neighbours(&max16).1.unwrap().class, Class::Inf);
    }

    #[test]
    fn formula_and_fields() {
        let d = cast(-2.5, Format::F32);
        assert_eq!((d.sign, d.exponent_field, d.exponent), (1, 128, 1));
        assert_eq!(d.exponent_bits_string(), "10000000");
        assert_eq!(d.mantissa_bits_string(), "01000000000000000000000");
        assert_eq!(d.hex(), "0xc0200000");
        assert_eq!(d.formula(), "−1 × 2^(128 − 127) × (1 + 2097152/2^23) = -2.5");
        let s = cast(1e-40, Format::F32);
        assert_eq!((s.class, s.exponent), (Class::Subnormal, -126));
    }
}
