//! One `*.gguf` file (llama.cpp's format, v2 and v3, little-endian): header parsed and
//! checked over the read-only memory map.
//!
//! The project reads GGUF itself rather than through candle because candle's reader
//! rejects a whole file on one tensor type it does not know; here such tensors still list,
//! with their type id. Every count and length read from the header is checked against the
//! bytes that remain before anything is allocated for it, so a corrupt or hostile file
//! gives an error naming the file and the field, never a huge allocation or a panic.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::error::CheckpointError;
use super::quant::GgmlType;

pub const MAGIC: &[u8; 4] = b"GGUF";
/// ggml's `GGML_MAX_DIMS`.
pub const MAX_DIMS: usize = 4;
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Arrays nested deeper than this are refused (the format has no use for them, and
/// unbounded recursion on a crafted file would overflow the stack).
const MAX_NESTING: usize = 8;

/// A metadata value, typed as stored.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// An array of metadata values. Kept as one `Vec<Value>` since every element costs at
/// least one stored byte and `Value` is small: memory stays proportional to the header.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    /// The element type id (0 = u8 … 12 = f64).
    pub element_type: u32,
    pub values: Vec<Value>,
}

impl Value {
    /// gguf-py's name of the stored type (`UINT32`, `STRING`, `ARRAY`, …).
    pub fn type_name(&self) -> &'static str {
        type_name(self.type_id())
    }

    pub fn type_id(&self) -> u32 {
        match self {
            Self::U8(_) => 0,
            Self::I8(_) => 1,
            Self::U16(_) => 2,
            Self::I16(_) => 3,
            Self::U32(_) => 4,
            Self::I32(_) => 5,
            Self::F32(_) => 6,
            Self::Bool(_) => 7,
            Self::String(_) => 8,
            Self::Array(_) => 9,
            Self::U64(_) => 10,
            Self::I64(_) => 11,
            Self::F64(_) => 12,
        }
    }

    /// An integer value of any width (None for floats, strings, arrays, or a negative value).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v as u64),
            Self::U16(v) => Some(v as u64),
            Self::U32(v) => Some(v as u64),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any number widened to f64 (exact except 64-bit integers past 2^53).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(v as f64),
            Self::F64(v) => Some(v),
            Self::I8(v) => Some(v as f64),
            Self::I16(v) => Some(v as f64),
            Self::I32(v) => Some(v as f64),
            Self::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }
}

pub fn type_name(id: u32) -> &'static str {
    const NAMES: [&str; 13] = [
        "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY", "UINT64", "INT64",
        "FLOAT64",
    ];
    NAMES.get(id as usize).copied().unwrap_or("UNKNOWN")
}

/// One tensor info of the header.
#[derive(Clone, Debug)]
pub struct GgufTensor {
    pub name: String,
    /// Dimensions as GGUF stores them: `ne[0]` first, the fastest-varying (a row's length).
    /// The PyTorch shape is this list reversed.
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Byte offset relative to the start of the data section.
    pub offset: u64,
    /// Bytes the tensor occupies; None for a type id this program does not know.
    pub byte_len: Option<u64>,
}

impl GgufTensor {
    pub fn numel(&self) -> u64 {
        self.dims.iter().product()
    }

    /// The shape as PyTorch / safetensors write it (outermost first).
    pub fn torch_shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// Where a Hugging Face-named tensor of an opened GGUF comes from.
#[derive(Clone, Debug)]
pub struct GgufEntry {
    /// The tensor's name in the file.
    pub gguf_name: String,
    pub ggml_type: GgmlType,
    /// The expert this slice of a merged `ffn_*_exps` tensor holds.
    pub expert: Option<usize>,
    /// Rows are reordered on read to undo llama.cpp's q/k permutation.
    pub unpermuted: bool,
}

/// A parsed, validated, read-only GGUF file.
pub struct GgufFile {
    pub path: PathBuf,
    pub file_name: String,
    pub file_len: u64,
    pub version: u32,
    pub alignment: u64,
    /// Absolute file offset where tensor data starts.
    pub data_start: u64,
    /// Every key/value in file order.
    pub metadata: Vec<(String, Value)>,
    /// Tensor infos in file order.
    pub tensors: Vec<GgufTensor>,
    map: Mmap,
}

impl GgufFile {
    /// Reads and checks the header; maps the file but reads no tensor byte.
    pub fn open(path: &Path) -> Result<Self, CheckpointError> {
        let io_err = |e: std::io::Error| CheckpointError::Io { path: path.to_path_buf(), source: e };
        let bad = |what: String| CheckpointError::BadGguf { file: path.to_path_buf(), what };
        let file = File::open(path).map_err(io_err)?;
        let file_len = file.metadata().map_err(io_err)?.len();
        if file_len < 24 {
            return Err(bad(format!(
                "the file is {file_len} bytes long; a GGUF header (magic, version, counts) needs 24 (truncated?)"
            )));
        }
        // SAFETY: opened read-only and never written by this program; read only through
        // bounds-checked slices. Another process truncating the file is the one hazard no
        // reader of mapped files can exclude.
        let map = unsafe { Mmap::map(&file) }.map_err(io_err)?;
        let header = parse(&map).map_err(bad)?;
        let file_name =
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
        Ok(Self {
            path: path.to_path_buf(),
            file_name,
            file_len,
            version: header.version,
            alignment: header.alignment,
            data_start: header.data_start,
            metadata: header.metadata,
            tensors: header.tensors,
            map,
        })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `general.architecture`, the prefix of the model's own keys.
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture").and_then(Value::as_str)
    }

    /// The stored bytes of a tensor (empty for a type whose size is unknown); bounds were
    /// checked when the header was read.
    pub fn bytes(&self, tensor: &GgufTensor) -> &[u8] {
        let start = (self.data_start + tensor.offset) as usize;
        let len = tensor.byte_len.unwrap_or(0) as usize;
        &self.map[start..start + len]
    }
}

/// The parsed header, before it is attached to its map.
pub struct Header {
    pub version: u32,
    pub alignment: u64,
    pub data_start: u64,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<GgufTensor>,
}

/// A bounds-checked little-endian reader; every failure says where and what.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "{} needs {n} bytes at offset {} but the file ends {} bytes later (truncated?)",
                what(),
                self.pos,
                self.remaining()
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], String> {
        Ok(self.take(N as u64, what)?.try_into().expect("take returns N bytes"))
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, String> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, String> {
        self.array(what).map(u64::from_le_bytes)
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, String> {
        let len = self.u64(&|| format!("the length of {}", what()))?;
        if len > self.remaining() {
            return Err(format!(
                "{} says it is {len} bytes long but only {} bytes of the file remain at offset {}",
                what(),
                self.remaining(),
                self.pos
            ));
        }
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| format!("{} is not UTF-8 text ({e})", what()))
    }

    fn value(&mut self, ty: u32, depth: usize, what: &dyn Fn() -> String) -> Result<Value, String> {
        Ok(match ty {
            0 => Value::U8(self.array::<1>(what)?[0]),
            1 => Value::I8(self.array::<1>(what)?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            4 => Value::U32(self.u32(what)?),
            5 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            7 => match self.array::<1>(what)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("{} is a bool stored as {b} (expected 0 or 1)", what())),
            },
            8 => Value::String(self.string(what)?),
            9 => Value::Array(self.array_value(depth, what)?),
            10 => Value::U64(self.u64(what)?),
            11 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            t => return Err(format!("{} has unknown value type {t} (expected 0..=12)", what())),
        })
    }

    fn array_value(&mut self, depth: usize, what: &dyn Fn() -> String) -> Result<Array, String> {
        if depth >= MAX_NESTING {
            return Err(format!("{} nests arrays more than {MAX_NESTING} deep", what()));
        }
        let element_type = self.u32(&|| format!("the element type of {}", what()))?;
        let count = self.u64(&|| format!("the length of {}", what()))?;
        // The smallest stored element: 1 byte for u8/i8/bool, 8 for a string's length, 12 for
        // an array's type and length; an unknown type errors on its first element below.
        let min_size: u64 = match element_type {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            8 | 10..=12 => 8,
            9 => 12,
            _ => 1,
        };
        if count.checked_mul(min_size).is_none_or(|n| n > self.remaining()) {
            return Err(format!(
                "{} says it holds {count} {} elements but only {} bytes of the file remain",
                what(),
                type_name(element_type),
                self.remaining()
            ));
        }
        let mut values = Vec::with_capacity(count as usize);
        for i in 0..count {
            values.push(self.value(element_type, depth + 1, &|| format!("element {i} of {}", what()))?);
        }
        Ok(Array { element_type, values })
    }
}

/// Parses and validates a whole GGUF header held in `bytes` (the file's full contents).
pub fn parse(bytes: &[u8]) -> Result<Header, String> {
    let mut r = Reader { bytes, pos: 0 };
    let magic = r.array::<4>(&|| "the magic".into())?;
    if &magic != MAGIC {
        return Err(format!("the file starts with {magic:02x?}, not the GGUF magic \"GGUF\" (is this a GGUF file?)"));
    }
    let version = r.u32(&|| "the version".into())?;
    if version == 1 || version > 3 || version == 0 {
        let hint = if version.swap_bytes() <= 3 { " (a big-endian file? only little-endian is read)" } else { "" };
        return Err(format!("GGUF version {version} is not supported (expected 2 or 3){hint}"));
    }
    let n_tensors = r.u64(&|| "the tensor count".into())?;
    let n_kv = r.u64(&|| "the metadata key/value count".into())?;
    // A key/value takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at least
    // 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
    check_count(n_kv, 13, &r, "metadata key/value pairs")?;
    check_count(n_tensors, 24, &r, "tensor infos")?;
    let mut metadata = Vec::with_capacity(n_kv as usize);
    for i in 0..n_kv {
        let key = r.string(&|| format!("the key of metadata entry {i}"))?;
        let ty = r.u32(&|| format!("the value type of key `{key}`"))?;
        let value = r.value(ty, 0, &|| format!("the value of key `{key}`"))?;
        metadata.push((key, value));
    }
    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some((_, Value::U32(a))) if *a > 0 && a.is_power_of_two() => *a as u64,
        Some((_, v)) => {
            return Err(format!("`general.alignment` is {v:?}; expected a UINT32 power of two (default 32)"));
        }
    };
    let mut tensors = Vec::with_capacity(n_tensors as usize);
    for i in 0..n_tensors {
        tensors.push(tensor_info(&mut r, i)?);
    }
    let data_start = (r.pos as u64).div_ceil(alignment) * alignment;
    let data_len = (bytes.len() as u64).saturating_sub(data_start);
    check_tensors(&mut tensors, alignment, data_len)?;
    Ok(Header { version, alignment, data_start, metadata, tensors })
}

fn check_count(count: u64, min_size: u64, r: &Reader<'_>, what: &str) -> Result<(), String> {
    if count.checked_mul(min_size).is_none_or(|n| n > r.remaining()) {
        return Err(format!(
            "the header says there are {count} {what}, more than the {} remaining bytes of the file can hold",
            r.remaining()
        ));
    }
    Ok(())
}

fn tensor_info(r: &mut Reader<'_>, i: u64) -> Result<GgufTensor, String> {
    let name = r.string(&|| format!("the name of tensor info {i}"))?;
    let n_dims = r.u32(&|| format!("tensor `{name}`: the number of dimensions"))? as usize;
    if n_dims > MAX_DIMS {
        return Err(format!("tensor `{name}` has {n_dims} dimensions; GGML allows at most {MAX_DIMS}"));
    }
    let mut dims = Vec::with_capacity(n_dims);
    for d in 0..n_dims {
        dims.push(r.u64(&|| format!("tensor `{name}`: dimension {d}"))?);
    }
    let ggml_type = GgmlType(r.u32(&|| format!("tensor `{name}`: the type"))?);
    let offset = r.u64(&|| format!("tensor `{name}`: the data offset"))?;
    let numel = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d).filter(|&n| n <= i64::MAX as u64))
        .ok_or_else(|| format!("tensor `{name}`: dimensions {dims:?} overflow"))?;
    let byte_len = match ggml_type.block_geometry() {
        None => None,
        Some((block, _)) => {
            let row = dims.first().copied().unwrap_or(1);
            if row % block as u64 != 0 {
                return Err(format!(
                    "tensor `{name}`: rows of {row} elements are not whole {ggml_type} blocks of {block}"
                ));
            }
            ggml_type.bytes_for(numel)
        }
    };
    Ok(GgufTensor { name, dims, ggml_type, offset, byte_len })
}

/// Offsets aligned, inside the data section, no two tensors sharing bytes or a name.
fn check_tensors(tensors: &mut [GgufTensor], alignment: u64, data_len: u64) -> Result<(), String> {
    for t in tensors.iter() {
        if t.offset % alignment != 0 {
            return Err(format!(
                "tensor `{}`: data offset {} is not a multiple of the alignment {alignment}",
                t.name, t.offset
            ));
        }
        let len = t.byte_len.unwrap_or(0);
        if t.offset.checked_add(len).is_none_or(|end| end > data_len) {
            return Err(format!(
                "tensor `{}`: {:?} × {} needs {len} bytes at data offset {}, but the data section holds {data_len} bytes (truncated file?)",
                t.name, t.dims, t.ggml_type, t.offset
            ));
        }
    }
    let mut order: Vec<&GgufTensor> = tensors.iter().collect();
    order.sort_by(|a, b| (a.offset, &a.name).cmp(&(b.offset, &b.name)));
    for pair in order.windows(2) {
        if pair[0].name == pair[1].name {
            return Err(format!("tensor `{}` is listed twice", pair[0].name));
        }
        let end = pair[0].offset + pair[0].byte_len.unwrap_or(0);
        if pair[0].byte_len.is_some() && pair[1].offset < end && pair[0].byte_len != Some(0) {
            return Err(format!(
                "tensors `{}` (bytes {}..{end}) and `{}` (from {}) overlap in the data section",
                pair[0].name, pair[0].offset, pair[1].name, pair[1].offset
            ));
        }
    }
    let mut names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("tensor `{}` is listed twice", w[0]));
    }
    Ok(())
}

#[cfg(test)]
#[path = "gguf_tests.rs"]
mod tests;
