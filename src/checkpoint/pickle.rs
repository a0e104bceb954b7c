//! `torch.save` files (`.pth`, `.pt`, `pytorch_model.bin`) read without running any of them.
//!
//! A torch.save zip holds `<archive>/data.pkl` (a pickle that describes the state dict) and
//! one `<archive>/data/<key>` entry per storage. A pickle is a program for a small stack
//! machine, and the standard unpickler calls whatever globals it names — which is how a
//! malicious checkpoint runs code. This reader is its own bounded machine: it knows the
//! opcodes a state dict uses, accepts only the globals `torch.load(weights_only=True)`
//! accepts for tensors and containers, and refuses any other global by name. Nothing is
//! called; tensor rebuilds are recognised and turned into byte ranges of the zip's stored
//! (uncompressed) storage entries, which are then read in place from the read-only mmap.
//!
//! Bounds: the pickle entry is capped in size, containers nest at most [`MAX_DEPTH`] deep,
//! and the total work (values created or copied) is capped, so a hostile pickle errors out
//! instead of exhausting the stack or memory.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use super::Dtype;

/// Deeper containers than this are refused: a state dict is a few levels deep, and dropping
/// a value nested hundreds of thousands of levels deep would overflow the stack.
pub const MAX_DEPTH: u32 = 256;
/// A cap on values created or copied while reading one pickle: a real state dict needs a few
/// thousand; this bounds the memory a hostile one can make to a few hundred MB.
const MAX_WORK: u64 = 5_000_000;
/// The pickle that describes a state dict is small next to its storages.
const MAX_PICKLE_BYTES: u64 = 256 << 20;

/// One tensor of a torch.save file, as a byte range of the file.
#[derive(Clone, Debug, PartialEq)]
pub struct PthTensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Absolute byte offset in the file and length.
    pub offset: usize,
    pub len: usize,
    /// The storage it lives in: tied tensors (`tok_embeddings` / `output`) share one.
    pub storage: String,
}

/// An opened torch.save file: its tensors and the map they are read from.
pub struct PthFile {
    pub path: PathBuf,
    pub tensors: Vec<PthTensor>,
    map: Arc<Mmap>,
}

impl PthFile {
    pub fn bytes(&self, t: &PthTensor) -> &[u8] {
        &self.map[t.offset..t.offset + t.len]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a torch.save file: {what}", path.display())]
    NotTorch { path: PathBuf, what: String },
    #[error(
        "{}: the pickle names `{global}`, which is not a tensor or a container; a checkpoint has no reason to name code to run, so it is refused (as torch.load(weights_only=True) refuses it). Nothing was executed.",
        path.display()
    )]
    ForeignGlobal { path: PathBuf, global: String },
    #[error("{}: malformed pickle: {what}", path.display())]
    Malformed { path: PathBuf, what: String },
}

/// The globals a state dict may name, and nothing else.
#[derive(Clone, Debug, PartialEq)]
enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    RebuildFromTypeV2,
    /// `torch.Tensor` / `torch.nn.parameter.Parameter`, the type argument of a rebuild.
    TensorType,
    Storage(Dtype),
    /// `torch.float16` and friends, or `torch.device`, `torch.Size`: harmless data.
    TorchSize,
    CodecsEncode,
}

fn allowed_global(module: &str, name: &str) -> Option<Global> {
    let storage = |d| Some(Global::Storage(d));
    match (module, name) {
        ("collections", "OrderedDict") => Some(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
        ("torch._utils", "_rebuild_parameter_with_state") => Some(Global::RebuildParameterWithState),
        ("torch._tensor", "_rebuild_from_type_v2") => Some(Global::RebuildFromTypeV2),
        ("torch", "Tensor") | ("torch.nn.parameter", "Parameter") => Some(Global::TensorType),
        ("torch", "Size") => Some(Global::TorchSize),
        ("_codecs", "encode") => Some(Global::CodecsEncode),
        ("torch", "FloatStorage") => storage(Dtype::F32),
        ("torch", "HalfStorage") => storage(Dtype::F16),
        ("torch", "BFloat16Storage") => storage(Dtype::BF16),
        ("torch", "DoubleStorage") => storage(Dtype::F64),
        ("torch", "LongStorage") => storage(Dtype::I64),
        ("torch", "IntStorage") => storage(Dtype::I32),
        ("torch", "ShortStorage") => storage(Dtype::I16),
        ("torch", "CharStorage") => storage(Dtype::I8),
        ("torch", "ByteStorage") => storage(Dtype::U8),
        ("torch", "BoolStorage") => storage(Dtype::Bool),
        _ => None,
    }
}

#[derive(Clone, Debug)]
enum Value {
    None,
    #[allow(dead_code)] // shown through Debug in error messages
    Bool(bool),
    Int(i64),
    #[allow(dead_code)] // shown through Debug in error messages
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// Containers carry their nesting depth so the limit is checked without recursion.
    Tuple(Vec<Value>, u32),
    List(Vec<Value>, u32),
    Dict(Vec<(Value, Value)>, u32),
    Global(Global),
    Storage {
        dtype: Dtype,
        key: String,
    },
    Tensor {
        storage: (Dtype, String),
        offset: usize,
        shape: Vec<usize>,
        stride: Vec<usize>,
    },
}

impl Value {
    fn depth(&self) -> u32 {
        match self {
            Value::Tuple(_, d) | Value::List(_, d) | Value::Dict(_, d) => *d,
            _ => 0,
        }
    }

    /// How many values a copy of this one makes (bounded by MAX_DEPTH in recursion).
    fn weight(&self) -> u64 {
        match self {
            Value::Tuple(v, _) | Value::List(v, _) => 1 + v.iter().map(Value::weight).sum::<u64>(),
            Value::Dict(v, _) => 1 + v.iter().map(|(k, x)| k.weight() + x.weight()).sum::<u64>(),
            Value::Bytes(b) => 1 + b.len() as u64 / 64,
            Value::Str(s) => 1 + s.len() as u64 / 64,
            _ => 1,
        }
    }
}

struct Machine<'a> {
    path: &'a Path,
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    work: u64,
}

type Result<T> = std::result::Result<T, PickleError>;

impl<'a> Machine<'a> {
    fn bad(&self, what: impl Into<String>) -> PickleError {
        PickleError::Malformed { path: self.path.to_path_buf(), what: what.into() }
    }

    fn charge(&mut self, units: u64) -> Result<()> {
        self.work += units;
        if self.work > MAX_WORK {
            return Err(self.bad("it does more work than any state dict needs (a pickle bomb?)"));
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else { return Err(self.bad(format!("truncated at byte {}", self.pos))) };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    fn line(&mut self) -> Result<&'a str> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or_else(|| self.bad("a GLOBAL without its newline"))?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| self.bad("a GLOBAL name that is not UTF-8"))?;
        self.pos += n + 1;
        Ok(s)
    }

    fn utf8(&self, b: &[u8]) -> Result<String> {
        String::from_utf8(b.to_vec()).map_err(|_| self.bad("a string that is not UTF-8"))
    }

    fn pop(&mut self) -> Result<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(self.bad("an opcode found the stack empty"));
        }
        Ok(self.stack.pop().expect("checked"))
    }

    fn top(&mut self) -> Result<&mut Value> {
        let bad = self.bad("an opcode found the stack empty");
        self.stack.last_mut().ok_or(bad)
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let mark = self.marks.pop().ok_or_else(|| self.bad("a MARK is missing"))?;
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn push(&mut self, v: Value) -> Result<()> {
        if v.depth() > MAX_DEPTH {
            return Err(self.bad(format!("containers nested more than {MAX_DEPTH} deep")));
        }
        self.charge(1)?;
        self.stack.push(v);
        Ok(())
    }

    fn container_depth(items: &[Value]) -> u32 {
        1 + items.iter().map(Value::depth).max().unwrap_or(0)
    }

    fn tuple(&mut self, items: Vec<Value>) -> Result<()> {
        let d = Self::container_depth(&items);
        self.push(Value::Tuple(items, d))
    }

    fn global(&mut self, module: &str, name: &str) -> Result<()> {
        match allowed_global(module, name) {
            Some(g) => self.push(Value::Global(g)),
            None => {
                Err(PickleError::ForeignGlobal { path: self.path.to_path_buf(), global: format!("{module}.{name}") })
            }
        }
    }

    /// Copies are charged before they are made: a list appended to itself doubles at each
    /// step, and the copy that would take gigabytes is refused instead.
    fn memo_get(&mut self, key: u32) -> Result<()> {
        let weight =
            self.memo.get(&key).map(Value::weight).ok_or_else(|| self.bad(format!("memo entry {key} is not set")))?;
        self.charge(weight)?;
        let v = self.memo[&key].clone();
        self.push(v)
    }

    fn memo_put(&mut self, key: u32) -> Result<()> {
        let weight = self.top()?.weight();
        self.charge(weight)?;
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    /// Adds items to the list or dict below the mark.
    fn extend_top(&mut self, items: Vec<Value>, pairs: bool) -> Result<()> {
        let bad_pairs = self.bad("SETITEMS with an odd number of values");
        let not_container = self.bad("items added to something that is not a list or dict");
        let depth_limit = self.bad(format!("containers nested more than {MAX_DEPTH} deep"));
        let top = self.top()?;
        let child_depth = items.iter().map(Value::depth).max().unwrap_or(0);
        match (top, pairs) {
            (Value::Dict(d, depth), true) => {
                if !items.len().is_multiple_of(2) {
                    return Err(bad_pairs);
                }
                *depth = (*depth).max(child_depth + 1);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    d.push((k, v));
                }
                if *depth > MAX_DEPTH { Err(depth_limit) } else { Ok(()) }
            }
            (Value::List(l, depth), false) => {
                *depth = (*depth).max(child_depth + 1);
                l.extend(items);
                if *depth > MAX_DEPTH { Err(depth_limit) } else { Ok(()) }
            }
            _ => Err(not_container),
        }
    }

    fn run(&mut self) -> Result<Value> {
        loop {
            let op = self.u8()?;
            self.step(op)?;
            if op == b'.' {
                return self.pop();
            }
        }
    }

    /// BININT, BININT1, BININT2, LONG1 and BINFLOAT.
    fn number(&mut self, op: u8) -> Result<()> {
        let v = match op {
            b'J' => Value::Int(self.u32()? as i32 as i64),
            b'K' => Value::Int(self.u8()? as i64),
            b'M' => Value::Int(self.u16()? as i64),
            b'G' => Value::Float(f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            _ => {
                let n = self.u8()? as usize;
                let bytes = self.take(n)?;
                if n > 8 {
                    return Err(self.bad("an integer wider than 64 bits"));
                }
                let mut buf = if bytes.last().is_some_and(|&b| b & 0x80 != 0) { [0xff; 8] } else { [0; 8] };
                buf[..n].copy_from_slice(bytes);
                Value::Int(i64::from_le_bytes(buf))
            }
        };
        self.push(v)
    }

    /// The string and bytes opcodes; lengths are checked against what is left before reading.
    fn text_or_bytes(&mut self, op: u8) -> Result<()> {
        let n = match op {
            b'X' | b'B' | b'T' => self.u32()? as u64,
            0x8d | 0x8e => self.u64()?,
            _ => self.u8()? as u64,
        };
        let raw = self.take(usize::try_from(n).map_err(|_| self.bad("a string longer than memory"))?)?;
        self.charge(raw.len() as u64 / 64)?;
        let v = match op {
            b'X' | 0x8c | 0x8d => Value::Str(self.utf8(raw)?),
            b'T' | b'U' => Value::Str(String::from_utf8_lossy(raw).into()),
            _ => Value::Bytes(raw.to_vec()),
        };
        self.push(v)
    }

    fn step(&mut self, op: u8) -> Result<()> {
        match op {
            0x80 => {
                self.u8()?; // PROTO
            }
            0x95 => {
                self.u64()?; // FRAME
            }
            b'.' => {} // STOP
            b'(' => self.marks.push(self.stack.len()),
            b'}' => self.push(Value::Dict(Vec::new(), 1))?,
            b']' => self.push(Value::List(Vec::new(), 1))?,
            b')' => self.push(Value::Tuple(Vec::new(), 1))?,
            b'N' => self.push(Value::None)?,
            0x88 => self.push(Value::Bool(true))?,
            0x89 => self.push(Value::Bool(false))?,
            b'J' | b'K' | b'M' | 0x8a | b'G' => self.number(op)?,
            b'X' | 0x8c | 0x8d | b'B' | b'C' | b'T' | b'U' | 0x8e => self.text_or_bytes(op)?,
            b'c' => {
                let module = self.line()?.to_string();
                let name = self.line()?.to_string();
                self.global(&module, &name)?
            }
            0x93 => {
                // STACK_GLOBAL
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => self.global(&m, &n)?,
                    _ => return Err(self.bad("STACK_GLOBAL without two strings")),
                }
            }
            b'q' => {
                let k = self.u8()? as u32;
                self.memo_put(k)?
            }
            b'r' => {
                let k = self.u32()?;
                self.memo_put(k)?
            }
            0x94 => {
                let k = self.memo.len() as u32;
                self.memo_put(k)?
            }
            b'h' => {
                let k = self.u8()? as u32;
                self.memo_get(k)?
            }
            b'j' => {
                let k = self.u32()?;
                self.memo_get(k)?
            }
            b't' => {
                let items = self.pop_mark()?;
                self.tuple(items)?
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.tuple(items)?
            }
            b'l' => {
                let items = self.pop_mark()?;
                let d = Self::container_depth(&items);
                self.push(Value::List(items, d))?
            }
            b'a' => {
                let v = self.pop()?;
                self.extend_top(vec![v], false)?
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.extend_top(items, false)?
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.extend_top(vec![k, v], true)?
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.extend_top(items, true)?
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = self.persistent(pid)?;
                self.push(storage)?
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let v = self.reduce(callable, args)?;
                self.push(v)?
            }
            b'b' => {
                // BUILD: the state of an OrderedDict or a tensor carries nothing we need.
                self.pop()?;
                self.top()?;
            }
            b'0' => {
                self.pop()?;
            }
            other => return Err(self.bad(format!("opcode 0x{other:02x} is not used by state dicts"))),
        }
        Ok(())
    }

    /// `('storage', <Storage global>, key, location, numel)`.
    fn persistent(&self, pid: Value) -> Result<Value> {
        let Value::Tuple(items, _) = pid else { return Err(self.bad("a persistent id that is not a tuple")) };
        match items.as_slice() {
            [Value::Str(kind), Value::Global(Global::Storage(dtype)), Value::Str(key), _, _, ..]
                if kind == "storage" =>
            {
                if key.contains(['/', '\\']) || key.contains("..") {
                    return Err(self.bad(format!("storage key {key:?} is not a plain name")));
                }
                Ok(Value::Storage { dtype: *dtype, key: key.clone() })
            }
            [_, Value::Global(g), ..] => Err(self.bad(format!("a storage of type {g:?}"))),
            _ => Err(self.bad("a persistent id that is not ('storage', type, key, location, numel)")),
        }
    }

    fn usizes(&self, v: &Value, what: &str) -> Result<Vec<usize>> {
        let Value::Tuple(items, _) = v else { return Err(self.bad(format!("{what} is not a tuple"))) };
        items
            .iter()
            .map(|x| match x {
                Value::Int(i) if *i >= 0 => Ok(*i as usize),
                _ => Err(self.bad(format!("{what} holds {x:?}, not a size"))),
            })
            .collect()
    }

    fn reduce(&self, callable: Value, args: Value) -> Result<Value> {
        let Value::Global(g) = callable else { return Err(self.bad("REDUCE of something that is not a global")) };
        let Value::Tuple(args, _) = args else { return Err(self.bad("REDUCE arguments that are not a tuple")) };
        match g {
            Global::OrderedDict => Ok(Value::Dict(Vec::new(), 1)),
            Global::RebuildTensorV2 => match args.as_slice() {
                [Value::Storage { dtype, key }, Value::Int(offset), size, stride, ..] if *offset >= 0 => {
                    Ok(Value::Tensor {
                        storage: (*dtype, key.clone()),
                        offset: *offset as usize,
                        shape: self.usizes(size, "a tensor's size")?,
                        stride: self.usizes(stride, "a tensor's stride")?,
                    })
                }
                _ => Err(self.bad("_rebuild_tensor_v2 without (storage, offset, size, stride, …)")),
            },
            Global::RebuildParameter | Global::RebuildParameterWithState => match args.into_iter().next() {
                Some(t @ Value::Tensor { .. }) => Ok(t),
                _ => Err(self.bad("_rebuild_parameter without a tensor")),
            },
            Global::RebuildFromTypeV2 => match args.as_slice() {
                [Value::Global(func), _, Value::Tuple(inner, d), ..] => {
                    self.reduce(Value::Global(func.clone()), Value::Tuple(inner.clone(), *d))
                }
                _ => Err(self.bad("_rebuild_from_type_v2 without (function, type, args, state)")),
            },
            Global::TorchSize => match args.into_iter().next() {
                Some(t @ Value::Tuple(..)) => Ok(t),
                _ => Err(self.bad("torch.Size without a tuple")),
            },
            Global::CodecsEncode => match args.first() {
                Some(Value::Str(s)) => Ok(Value::Bytes(s.chars().map(|c| c as u32 as u8).collect())),
                _ => Err(self.bad("_codecs.encode without a string")),
            },
            Global::TensorType | Global::Storage(_) => Err(self.bad(format!("a call of {g:?}"))),
        }
    }
}

/// Flattens the state dict (nested dicts become dotted names) into its tensors.
fn collect(v: Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    if let Value::Dict(items, _) = v {
        for (k, x) in items {
            let key = match k {
                Value::Str(s) => s,
                Value::Int(i) => i.to_string(),
                _ => continue,
            };
            let name = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
            match x {
                Value::Dict(..) => collect(x, &name, out),
                t @ Value::Tensor { .. } => out.push((name, t)),
                _ => {}
            }
        }
    }
}

/// Opens a torch.save zip read-only and lists its tensors; reads the pickle, not the weights.
pub fn open(path: &Path) -> Result<PthFile> {
    let io = |source| PickleError::Io { path: path.to_path_buf(), source };
    let not_torch = |what: String| PickleError::NotTorch { path: path.to_path_buf(), what };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(not_torch("not a regular file".into()));
    }
    let file = File::open(path).map_err(io)?;
    // SAFETY: opened read-only and never written by this program; read only through
    // bounds-checked slices.
    let map = Arc::new(unsafe { Mmap::map(&file) }.map_err(io)?);
    let tensors = parse(path, &map)?;
    Ok(PthFile { path: path.to_path_buf(), tensors, map })
}

/// The tensors of a torch.save zip held in memory (`path` names it in errors). Public for
/// the fuzzer: it is everything `open` does after mapping the file.
pub fn parse(path: &Path, map: &[u8]) -> Result<Vec<PthTensor>> {
    let not_torch = |what: String| PickleError::NotTorch { path: path.to_path_buf(), what };
    if !map.starts_with(b"PK\x03\x04") {
        let what = if map.first() == Some(&0x80) {
            "the pre-1.6 (non-zip) torch.save format; re-save it with a current torch".to_string()
        } else {
            "not a zip archive".to_string()
        };
        return Err(not_torch(what));
    }
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(map)).map_err(|e| not_torch(e.to_string()))?;
    let mut entries: HashMap<String, (u64, u64, bool)> = HashMap::new();
    for i in 0..zip.len() {
        let f = zip.by_index_raw(i).map_err(|e| not_torch(e.to_string()))?;
        let stored = f.compression() == zip::CompressionMethod::Stored;
        let start = f.data_start().unwrap_or(u64::MAX);
        let name = f.name().map_err(|e| not_torch(e.to_string()))?.into_owned();
        entries.insert(name, (start, f.compressed_size(), stored));
    }
    let pkl = entries
        .keys()
        .find(|n| n.ends_with("/data.pkl") || *n == "data.pkl")
        .cloned()
        .ok_or_else(|| not_torch("no data.pkl inside the zip".into()))?;
    let prefix = pkl.strip_suffix("data.pkl").unwrap_or_default().to_string();
    let slice_of = |name: &str| -> Result<(usize, usize)> {
        let &(start, len, stored) = entries.get(name).ok_or_else(|| not_torch(format!("no entry `{name}`")))?;
        if !stored {
            return Err(not_torch(format!("entry `{name}` is compressed; torch.save writes them stored")));
        }
        let end = start.checked_add(len).filter(|&e| e <= map.len() as u64);
        let end = end.ok_or_else(|| not_torch(format!("entry `{name}` runs past the end of the file")))?;
        Ok((start as usize, (end - start) as usize))
    };
    let (pkl_start, pkl_len) = slice_of(&pkl)?;
    if pkl_len as u64 > MAX_PICKLE_BYTES {
        return Err(not_torch(format!("data.pkl is {pkl_len} bytes, more than a state dict's description needs")));
    }
    let mut machine = Machine {
        path,
        data: &map[pkl_start..pkl_start + pkl_len],
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        work: 0,
    };
    let root = machine.run()?;
    let mut found = Vec::new();
    collect(root, "", &mut found);
    let mut tensors = Vec::with_capacity(found.len());
    for (name, v) in found {
        let Value::Tensor { storage: (dtype, key), offset, shape, stride } = v else { continue };
        let bad = |what: String| PickleError::Malformed { path: path.to_path_buf(), what: format!("`{name}`: {what}") };
        let numel =
            shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| bad("its shape overflows".into()))?;
        let mut expect = 1usize;
        for (&d, &s) in shape.iter().zip(&stride).rev() {
            if d > 1 && s != expect {
                return Err(bad(format!("strides {stride:?} for shape {shape:?}: only contiguous tensors are read")));
            }
            expect = expect.saturating_mul(d);
        }
        if stride.len() != shape.len() {
            return Err(bad(format!("{} strides for {} dimensions", stride.len(), shape.len())));
        }
        let esize = dtype.size_in_bytes();
        let (start, len) = slice_of(&format!("{prefix}data/{key}"))?;
        let begin = offset.checked_mul(esize).ok_or_else(|| bad("its offset overflows".into()))?;
        let bytes = numel.checked_mul(esize).ok_or_else(|| bad("its size overflows".into()))?;
        if begin.checked_add(bytes).is_none_or(|e| e > len) {
            return Err(bad(format!("needs bytes [{begin}, {begin}+{bytes}) of storage `{key}`, which has {len}")));
        }
        tensors.push(PthTensor { name, dtype, shape, offset: start + begin, len: bytes, storage: key });
    }
    Ok(tensors)
}
