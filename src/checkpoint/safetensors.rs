//! One `*.safetensors` file: its header parsed and checked, its bytes memory-mapped read-only.
//!
//! The header is validated completely at open time (offsets, shapes, dtypes against the
//! file length) so that later reads can slice the map without further checks, and so a
//! bad file is reported once, with the tensor and the expectation named, instead of
//! panicking deep inside a statistics worker.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use super::dtype::Dtype;
use super::error::CheckpointError;

/// Headers larger than this are refused: the format's own reader caps them at 100 MB,
/// and a larger length prefix almost always means the file is not safetensors at all.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Byte range relative to the start of the data section (after the header).
    pub data_offsets: (usize, usize),
    /// Index into the checkpoint's list of shards.
    pub shard: usize,
}

impl TensorInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn byte_len(&self) -> usize {
        self.data_offsets.1 - self.data_offsets.0
    }
}

/// A parsed, validated, read-only safetensors file.
pub struct Shard {
    pub path: PathBuf,
    /// File name as shown to users (shard names are unique within a folder).
    pub file_name: String,
    pub file_len: u64,
    pub header_len: u64,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Tensors in header order.
    pub tensors: Vec<TensorInfo>,
    /// What the header does that safetensors' own validator would not accept but this
    /// program reads anyway (a repeated name, bytes no tensor covers), worded for the user.
    pub notices: Vec<String>,
    /// Shared so that the engine can use weights in place and outlive the folder's handle.
    map: Option<Arc<Mmap>>,
}

/// A tensor's stored bytes that keep their file mapped for as long as they live: the engine
/// computes from these directly instead of copying the weights.
#[derive(Clone)]
pub struct SharedBytes {
    map: Arc<Mmap>,
    start: usize,
    len: usize,
}

impl SharedBytes {
    /// Bytes made in memory (weights round-tripped through another precision), held the way
    /// mapped ones are: an anonymous map, made read-only once written.
    pub fn owned(bytes: &[u8]) -> std::io::Result<Self> {
        let mut map = memmap2::MmapMut::map_anon(bytes.len().max(1))?;
        map[..bytes.len()].copy_from_slice(bytes);
        Ok(Self { map: Arc::new(map.make_read_only()?), start: 0, len: bytes.len() })
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.map[self.start..self.start + self.len]
    }
}

impl Shard {
    /// Reads and checks the header; maps the file but touches no weight byte.
    pub fn open(path: &Path, shard_index: usize) -> Result<Self, CheckpointError> {
        let file_name =
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
        let io_err = |e: std::io::Error| CheckpointError::Io { path: path.to_path_buf(), source: e };
        let mut file = File::open(path).map_err(io_err)?;
        let file_len = file.metadata().map_err(io_err)?.len();
        let bad = |what: String| CheckpointError::BadSafetensors { file: path.to_path_buf(), what };
        if file_len < 8 {
            return Err(bad(format!(
                "the file is {file_len} bytes long; a safetensors file starts with an 8-byte header length"
            )));
        }
        let mut len_bytes = [0u8; 8];
        file.read_exact(&mut len_bytes).map_err(io_err)?;
        let header_len = u64::from_le_bytes(len_bytes);
        if header_len > MAX_HEADER_BYTES {
            return Err(bad(format!(
                "the header length prefix says {header_len} bytes, more than the {MAX_HEADER_BYTES}-byte limit (is this a safetensors file?)"
            )));
        }
        if 8 + header_len > file_len {
            return Err(bad(format!(
                "the header length prefix says {header_len} bytes but the file has only {} bytes after it (truncated file or lying header)",
                file_len - 8
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(io_err)?;
        let data_len = file_len - 8 - header_len;
        let (metadata, tensors, notices) = parse_header(&header, data_len, shard_index).map_err(bad)?;

        // An empty file cannot be mapped on every platform, and there is nothing to map anyway.
        let map = if data_len > 0 {
            // SAFETY: the file is opened read-only and never written by this program; the map is
            // only read through bounds-checked slices. Another process truncating the file while
            // it is open is the one hazard no reader of mmapped files can exclude.
            Some(Arc::new(unsafe { Mmap::map(&file) }.map_err(io_err)?))
        } else {
            None
        };
        Ok(Self { path: path.to_path_buf(), file_name, file_len, header_len, metadata, tensors, notices, map })
    }

    /// A GGUF file's data section, or a torch zip's stored entries, as a shard, so their
    /// tensors read through the same path. `tensors` were checked against the file by
    /// `checkpoint::gguf` / `checkpoint::pickle`; their offsets are relative to `data_start`
    /// (the header then counts as everything before it).
    pub fn over_file(
        path: &Path,
        file_len: u64,
        data_start: u64,
        tensors: Vec<TensorInfo>,
    ) -> Result<Self, CheckpointError> {
        let io_err = |e: std::io::Error| CheckpointError::Io { path: path.to_path_buf(), source: e };
        let file = File::open(path).map_err(io_err)?;
        // SAFETY: as in `open`: read-only, read through bounds-checked slices.
        let map = Some(Arc::new(unsafe { Mmap::map(&file) }.map_err(io_err)?));
        let file_name =
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
        let header_len = data_start - 8;
        let metadata = serde_json::Map::new();
        Ok(Self {
            path: path.to_path_buf(),
            file_name,
            file_len,
            header_len,
            metadata,
            tensors,
            notices: Vec::new(),
            map,
        })
    }

    /// The stored bytes of a tensor of this shard; bounds were checked when the header was read.
    pub fn bytes(&self, tensor: &TensorInfo) -> &[u8] {
        let start = 8 + self.header_len as usize + tensor.data_offsets.0;
        let end = 8 + self.header_len as usize + tensor.data_offsets.1;
        match &self.map {
            Some(map) => &map[start..end],
            None => &[],
        }
    }

    /// The same bytes as [`Shard::bytes`], holding the map alive; None when the shard has no data.
    pub fn shared_bytes(&self, tensor: &TensorInfo) -> Option<SharedBytes> {
        let start = 8 + self.header_len as usize + tensor.data_offsets.0;
        Some(SharedBytes { map: Arc::clone(self.map.as_ref()?), start, len: tensor.byte_len() })
    }
}

/// The metadata, the tensors, and the notices (see [`Shard::notices`]).
pub type Header = (serde_json::Map<String, serde_json::Value>, Vec<TensorInfo>, Vec<String>);

/// The header's entries in file order, deserialised as a map (never as a whole `Value`).
struct HeaderEntries(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for HeaderEntries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = HeaderEntries;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of tensor entries")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<HeaderEntries, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    entries.push((k, v));
                }
                Ok(HeaderEntries(entries))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// Parses a header's JSON bytes given how many data bytes follow it (public for the fuzzer).
pub fn parse_header(bytes: &[u8], data_len: u64, shard: usize) -> Result<Header, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("the header is not UTF-8 text ({e}); is this a safetensors file?"))?;
    // Read as a map from the first byte: a header that is one huge JSON array (allowed up to
    // the 100 MB cap) is refused at its `[` instead of being built into gigabytes of values.
    let entries: HeaderEntries = serde_json::from_str(text.trim_end_matches(' ')).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            "the header is JSON but not an object of tensor entries".to_string()
        } else {
            format!("the header is not valid JSON: {e}")
        }
    })?;
    let entries = entries.0;
    let mut metadata = serde_json::Map::new();
    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(entries.len());
    let mut notices = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (name, entry) in entries {
        if name == "__metadata__" {
            if let serde_json::Value::Object(m) = entry {
                metadata = m;
            }
            continue;
        }
        let info = parse_entry(&name, &entry, data_len, shard)?;
        // A JSON object with a repeated key: the last entry wins, as JSON readers take it.
        match seen.get(&name) {
            Some(&at) => {
                notices.push(format!("`{name}` appears more than once in the header; the last entry is used"));
                tensors[at] = info;
            }
            None => {
                seen.insert(name, tensors.len());
                tensors.push(info);
            }
        }
    }
    check_no_overlap(&tensors)?;
    notices.extend(uncovered_bytes(&tensors, data_len));
    Ok((metadata, tensors, notices))
}

/// Bytes of the data section no tensor covers: before the first, between two, after the last.
fn uncovered_bytes(tensors: &[TensorInfo], data_len: u64) -> Vec<String> {
    let data_len = data_len as usize;
    let mut spans: Vec<(usize, usize, &str)> = tensors
        .iter()
        .filter(|t| t.byte_len() > 0)
        .map(|t| (t.data_offsets.0, t.data_offsets.1, t.name.as_str()))
        .collect();
    spans.sort();
    let mut notices = Vec::new();
    let mut end = (0usize, None::<&str>);
    for &(start, stop, name) in &spans {
        if start > end.0 {
            let place = match end.1 {
                Some(prev) => format!("between `{prev}` and `{name}`"),
                None => format!("before the first tensor (`{name}`)"),
            };
            notices.push(format!("{} bytes {place} belong to no tensor", start - end.0));
        }
        end = (stop, Some(name));
    }
    if data_len > end.0 {
        notices.push(format!("{} bytes after the last tensor belong to no tensor", data_len - end.0));
    }
    notices
}

fn parse_entry(name: &str, entry: &serde_json::Value, data_len: u64, shard: usize) -> Result<TensorInfo, String> {
    let field = |key: &str| entry.get(key).ok_or_else(|| format!("tensor `{name}`: header entry has no `{key}` field"));
    let dtype_name = field("dtype")?.as_str().ok_or_else(|| format!("tensor `{name}`: `dtype` is not a string"))?;
    let dtype = Dtype::from_safetensors(dtype_name).ok_or_else(|| {
        format!("tensor `{name}`: unknown dtype `{dtype_name}` (expected one of F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, BOOL, …)")
    })?;
    let shape: Vec<usize> = field("shape")?
        .as_array()
        .ok_or_else(|| format!("tensor `{name}`: `shape` is not a list"))?
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("tensor `{name}`: `shape` holds something other than non-negative integers"))?;
    let offsets: Vec<u64> = field("data_offsets")?
        .as_array()
        .and_then(|a| a.iter().map(|o| o.as_u64()).collect::<Option<Vec<_>>>())
        .filter(|a| a.len() == 2)
        .ok_or_else(|| format!("tensor `{name}`: `data_offsets` must be two non-negative integers [begin, end]"))?;
    let (begin, end) = (offsets[0], offsets[1]);
    if begin > end {
        return Err(format!("tensor `{name}`: data_offsets [{begin}, {end}] end before they begin"));
    }
    if end > data_len {
        return Err(format!(
            "tensor `{name}`: data_offsets [{begin}, {end}] run past the data section, which has {data_len} bytes (truncated file?)"
        ));
    }
    let numel = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("tensor `{name}`: shape {shape:?} overflows"))?;
    let expected = numel as u128 * dtype.size_in_bytes() as u128;
    if expected != (end - begin) as u128 {
        return Err(format!(
            "tensor `{name}`: shape {shape:?} × {dtype} ({} bytes each) needs {expected} bytes but data_offsets [{begin}, {end}] hold {}",
            dtype.size_in_bytes(),
            end - begin
        ));
    }
    Ok(TensorInfo { name: name.to_string(), dtype, shape, data_offsets: (begin as usize, end as usize), shard })
}

fn check_no_overlap(tensors: &[TensorInfo]) -> Result<(), String> {
    let mut by_start: Vec<&TensorInfo> = tensors.iter().filter(|t| t.byte_len() > 0).collect();
    by_start.sort_by_key(|t| t.data_offsets);
    for pair in by_start.windows(2) {
        if pair[1].data_offsets.0 < pair[0].data_offsets.1 {
            return Err(format!(
                "tensors `{}` {:?} and `{}` {:?} overlap in the data section",
                pair[0].name, pair[0].data_offsets, pair[1].name, pair[1].data_offsets
            ));
        }
    }
    Ok(())
}
