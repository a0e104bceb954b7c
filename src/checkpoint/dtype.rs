//! Element types a safetensors header can name, and how to turn their bytes into numbers.

use std::fmt;

use super::ggml_dtype::GgmlLayout;
use super::quant::NotReadable;

/// The dtypes of the safetensors format that this program can decode.
///
/// FP8 variants are decoded exactly (every FP8 value is representable in f32),
/// so statistics of an FP8 checkpoint are the same numbers torch would give.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dtype {
    Bool,
    U8,
    I8,
    F8E4M3,
    F8E5M2,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
    /// A GGUF tensor: GGML block type (or F32/F16/BF16) and the row order to undo.
    Ggml(GgmlLayout),
}

impl Dtype {
    /// Parses the spelling used in safetensors headers (`"F32"`, `"BF16"`, `"F8_E4M3"`, …).
    pub fn from_safetensors(name: &str) -> Option<Self> {
        Some(match name {
            "BOOL" => Self::Bool,
            "U8" => Self::U8,
            "I8" => Self::I8,
            "F8_E4M3" => Self::F8E4M3,
            "F8_E5M2" => Self::F8E5M2,
            "I16" => Self::I16,
            "U16" => Self::U16,
            "F16" => Self::F16,
            "BF16" => Self::BF16,
            "I32" => Self::I32,
            "U32" => Self::U32,
            "F32" => Self::F32,
            "F64" => Self::F64,
            "I64" => Self::I64,
            "U64" => Self::U64,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bool => "BOOL",
            Self::U8 => "U8",
            Self::I8 => "I8",
            Self::F8E4M3 => "F8_E4M3",
            Self::F8E5M2 => "F8_E5M2",
            Self::I16 => "I16",
            Self::U16 => "U16",
            Self::F16 => "F16",
            Self::BF16 => "BF16",
            Self::I32 => "I32",
            Self::U32 => "U32",
            Self::F32 => "F32",
            Self::F64 => "F64",
            Self::I64 => "I64",
            Self::U64 => "U64",
            Self::Ggml(l) => l.ty.name().unwrap_or("GGML_UNKNOWN"),
        }
    }

    pub fn size_in_bytes(self) -> usize {
        match self {
            Self::Bool | Self::U8 | Self::I8 | Self::F8E4M3 | Self::F8E5M2 => 1,
            Self::I16 | Self::U16 | Self::F16 | Self::BF16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::F64 | Self::I64 | Self::U64 => 8,
            Self::Ggml(l) => l.quantum().1,
        }
    }

    /// The smallest run of elements that decodes on its own, as (elements, bytes): one
    /// element for safetensors dtypes, a block (or one head's rows) for GGML types. Chunked
    /// readers cut at multiples of it.
    pub fn quantum(self) -> (usize, usize) {
        match self {
            Self::Ggml(l) => l.quantum(),
            d => (1, d.size_in_bytes()),
        }
    }

    /// Bytes of a chunk of about `elems` elements that starts and ends on a quantum.
    pub fn chunk_bytes(self, elems: usize) -> usize {
        let (n, size) = self.quantum();
        elems.div_ceil(n).max(1) * size
    }

    /// Elements held by `bytes` stored bytes.
    pub fn elements_in(self, bytes: usize) -> usize {
        let (n, size) = self.quantum();
        bytes / size * n
    }

    /// Why values of this dtype cannot be produced (a GGML type with no decoder), if so.
    pub fn not_readable(self) -> Option<NotReadable> {
        match self {
            Self::Ggml(l) if !l.ty.is_readable() => Some(NotReadable(l.ty)),
            _ => None,
        }
    }

    /// Every element of `bytes` widened to f32 (exact for all but 64-bit and 32-bit-int
    /// values past 2^24): how weights reach the model and the LoRA figures.
    pub fn decode_all_f32(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            Self::F32 => bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            Self::Ggml(l) => l.decode_all_f32(bytes),
            d => bytes.chunks_exact(d.size_in_bytes()).map(|c| d.decode(c) as f32).collect(),
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, Self::F8E4M3 | Self::F8E5M2 | Self::F16 | Self::BF16 | Self::F32 | Self::F64 | Self::Ggml(_))
    }

    /// Decodes one little-endian element. `bytes.len()` must equal `size_in_bytes()`; for a
    /// GGML type that is one quantum, and this gives its first element (NaN if unreadable).
    ///
    /// Every stored type widens to f64 exactly except 64-bit integers beyond 2^53,
    /// which no weight tensor holds in practice.
    #[inline]
    pub fn decode(self, bytes: &[u8]) -> f64 {
        match self {
            Self::Bool => (bytes[0] != 0) as u8 as f64,
            Self::U8 => bytes[0] as f64,
            Self::I8 => bytes[0] as i8 as f64,
            Self::F8E4M3 => f8_e4m3_to_f32(bytes[0]) as f64,
            Self::F8E5M2 => f8_e5m2_to_f32(bytes[0]) as f64,
            Self::I16 => i16::from_le_bytes([bytes[0], bytes[1]]) as f64,
            Self::U16 => u16::from_le_bytes([bytes[0], bytes[1]]) as f64,
            Self::F16 => half::f16::from_bits(u16::from_le_bytes([bytes[0], bytes[1]])).to_f64(),
            Self::BF16 => bf16_bits_to_f32(u16::from_le_bytes([bytes[0], bytes[1]])) as f64,
            Self::I32 => i32::from_le_bytes(bytes.try_into().unwrap()) as f64,
            Self::U32 => u32::from_le_bytes(bytes.try_into().unwrap()) as f64,
            Self::F32 => f32::from_le_bytes(bytes.try_into().unwrap()) as f64,
            Self::F64 => f64::from_le_bytes(bytes.try_into().unwrap()),
            Self::I64 => i64::from_le_bytes(bytes.try_into().unwrap()) as f64,
            Self::U64 => u64::from_le_bytes(bytes.try_into().unwrap()) as f64,
            Self::Ggml(l) => l.element(bytes, 0).unwrap_or(f64::NAN),
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// BF16 is the top half of an f32, so widening is a shift: exact for every pattern, NaN included.
#[inline]
pub fn bf16_bits_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// FP8 E4M3 "fn" (finite, NaN only at S.1111.111), as in the OCP spec and torch.float8_e4m3fn.
pub fn f8_e4m3_to_f32(bits: u8) -> f32 {
    let sign = if bits & 0x80 != 0 { -1.0f32 } else { 1.0 };
    let exponent = ((bits >> 3) & 0x0f) as i32;
    let mantissa = (bits & 0x07) as f32;
    if exponent == 0x0f && bits & 0x07 == 0x07 {
        return f32::NAN;
    }
    if exponent == 0 {
        sign * mantissa / 8.0 * 2f32.powi(-6)
    } else {
        sign * (1.0 + mantissa / 8.0) * 2f32.powi(exponent - 7)
    }
}

/// FP8 E5M2 follows IEEE-754 conventions (Inf and NaN at exponent 31), like torch.float8_e5m2.
pub fn f8_e5m2_to_f32(bits: u8) -> f32 {
    // E5M2 is the top byte of an IEEE half.
    half::f16::from_bits((bits as u16) << 8).to_f32()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dtype_round_trips_its_name() {
        for name in [
            "BOOL", "U8", "I8", "F8_E4M3", "F8_E5M2", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64",
            "U64",
        ] {
            assert_eq!(Dtype::from_safetensors(name).unwrap().as_str(), name);
        }
        assert_eq!(Dtype::from_safetensors("F4"), None);
    }

    #[test]
    fn fp8_extremes() {
        assert_eq!(f8_e4m3_to_f32(0x7e), 448.0);
        assert!(f8_e4m3_to_f32(0x7f).is_nan());
        assert_eq!(f8_e4m3_to_f32(0x01), 2f32.powi(-9));
        assert_eq!(f8_e5m2_to_f32(0x7b), 57344.0);
        assert!(f8_e5m2_to_f32(0x7c).is_infinite());
    }
}
