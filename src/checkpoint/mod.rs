//! Files on disk: which files a model folder holds and where every tensor lives.
//!
//! Opening reads headers only. Weight bytes are touched only when a caller asks for a
//! tensor's bytes, through the read-only memory map of its shard.

pub mod dtype;
pub mod error;
pub mod ggml_dtype;
pub mod gguf;
pub mod pickle;
pub mod quant;
pub mod quant_blocks;
pub mod quantize;
pub mod safetensors;
pub mod side_file;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub use dtype::Dtype;
pub use error::CheckpointError;
pub use safetensors::{Shard, SharedBytes, TensorInfo};

pub const CONFIG_FILE: &str = "config.json";
pub const INDEX_FILE: &str = "model.safetensors.index.json";
pub const SINGLE_FILE: &str = "model.safetensors";

/// A model folder's weights: every shard's header, with a name → tensor lookup.
pub struct Checkpoint {
    pub folder: PathBuf,
    pub shards: Vec<Shard>,
    /// All tensors, sorted by name (the order `state_dict()` keys are usually listed in tools).
    pub tensors: Vec<TensorInfo>,
    by_name: HashMap<String, usize>,
    /// The raw `config.json` (None when the folder has none); for a GGUF, the config
    /// transformers builds from its keys.
    pub config: Option<serde_json::Value>,
    /// Set when the checkpoint is one GGUF file (then `folder` is that file's path).
    pub gguf: Option<GgufSource>,
}

/// A GGUF file's header, and where each Hugging Face-named tensor comes from in it.
pub struct GgufSource {
    pub file: gguf::GgufFile,
    pub entries: HashMap<String, gguf::GgufEntry>,
}

impl Checkpoint {
    /// Opens a Hugging Face model folder: `config.json` and `model.safetensors` or the shards
    /// named by `model.safetensors.index.json` (any `*.safetensors` files otherwise).
    pub fn open(folder: &Path) -> Result<Self, CheckpointError> {
        if !folder.is_dir() {
            return Err(CheckpointError::BadFolder {
                folder: folder.to_path_buf(),
                what: "is not a folder (pick the folder that holds config.json and *.safetensors)".into(),
            });
        }
        let config = read_config(folder)?;
        let (shard_paths, index) = find_shards(folder)?;
        let shards = shard_paths
            .iter()
            .enumerate()
            .map(|(i, p)| if is_torch_file(p) { torch_shard(p, i) } else { Shard::open(p, i) })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_shards(folder, shards, index, config)
    }

    /// Builds the lookup from already-opened shards; also checks the index, when there is one,
    /// against what the shards really hold.
    fn from_shards(
        folder: &Path,
        shards: Vec<Shard>,
        index: Option<(PathBuf, BTreeMap<String, String>)>,
        config: Option<serde_json::Value>,
    ) -> Result<Self, CheckpointError> {
        let mut tensors: Vec<TensorInfo> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for shard in &shards {
            for t in &shard.tensors {
                if let Some(&other) = seen.get(&t.name) {
                    return Err(CheckpointError::BadFolder {
                        folder: folder.to_path_buf(),
                        what: format!(
                            "tensor `{}` is stored twice, in {} and in {}",
                            t.name, shards[other].file_name, shard.file_name
                        ),
                    });
                }
                seen.insert(t.name.clone(), t.shard);
                tensors.push(t.clone());
            }
        }
        if let Some((index_path, weight_map)) = &index {
            for (name, file) in weight_map {
                match seen.get(name) {
                    Some(&s) if shards[s].file_name == *file => {}
                    Some(&s) => {
                        return Err(CheckpointError::BadIndex {
                            file: index_path.clone(),
                            what: format!(
                                "weight_map puts `{name}` in {file} but it is stored in {}",
                                shards[s].file_name
                            ),
                        });
                    }
                    None => {
                        return Err(CheckpointError::BadIndex {
                            file: index_path.clone(),
                            what: format!("weight_map names tensor `{name}` in {file}, but {file} has no such tensor"),
                        });
                    }
                }
            }
        }
        if tensors.is_empty()
            && let Some(first) = shards.first()
        {
            // Said here, about the weights file: otherwise the config would be blamed for
            // naming layers that "are missing".
            return Err(CheckpointError::BadSafetensors { file: first.path.clone(), what: "holds no tensors".into() });
        }
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        let by_name = tensors.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        Ok(Self { folder: folder.to_path_buf(), shards, tensors, by_name, config, gguf: None })
    }

    /// A GGUF file as a one-shard checkpoint; `tensors` carry Hugging Face names and offsets
    /// into the file's data section (see `arch::gguf`).
    pub fn from_gguf(
        file: gguf::GgufFile,
        config: serde_json::Value,
        tensors: Vec<(TensorInfo, gguf::GgufEntry)>,
    ) -> Result<Self, CheckpointError> {
        let entries = tensors.iter().map(|(t, e)| (t.name.clone(), e.clone())).collect();
        let infos = tensors.into_iter().map(|(t, _)| t).collect();
        let shard = Shard::over_file(&file.path, file.file_len, file.data_start, infos)?;
        let mut ckpt = Self::from_shards(&file.path, vec![shard], None, Some(config))?;
        ckpt.gguf = Some(GgufSource { file, entries });
        Ok(ckpt)
    }

    /// One `.safetensors` file on its own (no config.json beside it): `folder` is the file.
    pub fn open_file(path: &Path) -> Result<Self, CheckpointError> {
        Self::from_shards(path, vec![Shard::open(path, 0)?], None, None)
    }

    /// A one-file checkpoint that is not a GGUF (a `.pth` state dict): `folder` is the file.
    pub fn from_single_file(path: &Path, shard: Shard, config: serde_json::Value) -> Result<Self, CheckpointError> {
        Self::from_shards(path, vec![shard], None, Some(config))
    }

    /// GGUF provenance of a tensor (None for safetensors checkpoints).
    pub fn gguf_entry(&self, name: &str) -> Option<&gguf::GgufEntry> {
        self.gguf.as_ref()?.entries.get(name)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    pub fn require(&self, name: &str) -> Result<&TensorInfo, CheckpointError> {
        self.tensor(name).ok_or_else(|| CheckpointError::NoSuchTensor(name.to_string()))
    }

    pub fn bytes(&self, tensor: &TensorInfo) -> &[u8] {
        self.shards[tensor.shard].bytes(tensor)
    }

    /// A tensor's bytes that keep the shard mapped (for weights used in place).
    pub fn shared_bytes(&self, tensor: &TensorInfo) -> Option<SharedBytes> {
        self.shards[tensor.shard].shared_bytes(tensor)
    }

    pub fn shard_name(&self, tensor: &TensorInfo) -> &str {
        &self.shards[tensor.shard].file_name
    }

    /// Some tensor is in a GGML block format, so the weights can be multiplied exactly or as
    /// llama.cpp does (see `engine::quant_matvec::Arith`).
    pub fn is_quantized(&self) -> bool {
        self.tensors.iter().any(|t| matches!(t.dtype, Dtype::Ggml(l) if l.ty.is_quantized()))
    }

    pub fn total_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.byte_len() as u64).sum()
    }

    pub fn total_params(&self) -> u64 {
        self.tensors.iter().map(|t| t.numel() as u64).sum()
    }

    /// One stored element (flat, row-major index) widened to f64; None past the end.
    pub fn element(&self, tensor: &TensorInfo, index: usize) -> Option<f64> {
        if let Dtype::Ggml(layout) = tensor.dtype {
            return layout.element(self.bytes(tensor), index);
        }
        let size = tensor.dtype.size_in_bytes();
        let bytes = self.bytes(tensor).get(index.checked_mul(size)?..(index + 1) * size)?;
        Some(tensor.dtype.decode(bytes))
    }
}

fn read_config(folder: &Path) -> Result<Option<serde_json::Value>, CheckpointError> {
    let path = folder.join(CONFIG_FILE);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let text = side_file::read_text(&path)
        .map_err(|e| CheckpointError::BadConfig { file: path.clone(), what: e.to_string() })?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CheckpointError::BadConfig { file: path.clone(), what: format!("not valid JSON: {e}") })?;
    if !value.is_object() {
        return Err(CheckpointError::BadConfig { file: path, what: "expected a JSON object of settings".into() });
    }
    Ok(Some(value))
}

type ShardList = (Vec<PathBuf>, Option<(PathBuf, BTreeMap<String, String>)>);

/// The one model file of a kind (`is_kind`) that a folder with no config.json holds, or
/// None when it holds none or holds weights of another layout (files ending in one of
/// `other_layouts`). Several of the kind are an error listing them, so the user can pick
/// one. Serves the GGUF and the MiniMind `.pth` openers.
pub fn single_model_file(
    folder: &Path,
    kind: &str,
    is_kind: impl Fn(&Path) -> bool,
    other_layouts: &[&str],
) -> Result<Option<PathBuf>, CheckpointError> {
    if !folder.is_dir() || folder.join(CONFIG_FILE).is_file() {
        return Ok(None);
    }
    let entries =
        std::fs::read_dir(folder).map_err(|e| CheckpointError::Io { path: folder.to_path_buf(), source: e })?;
    let files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    if files.iter().any(|p| p.extension().is_some_and(|e| other_layouts.iter().any(|o| e == *o))) {
        return Ok(None);
    }
    let mut found: Vec<PathBuf> = files.into_iter().filter(|p| is_kind(p)).collect();
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(CheckpointError::BadFolder {
            folder: folder.to_path_buf(),
            what: format!(
                "holds {} {kind} files; open one of them: {}",
                found.len(),
                found.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy()).collect::<Vec<_>>().join(", ")
            ),
        }),
    }
}

/// PyTorch's weights files (`pytorch_model.bin` and its shards), which transformers wrote
/// before safetensors.
pub const TORCH_INDEX_FILE: &str = "pytorch_model.bin.index.json";
pub const TORCH_SINGLE_FILE: &str = "pytorch_model.bin";

fn is_torch_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "bin" || e == "pth" || e == "pt")
}

/// A `torch.save` zip as a shard: the restricted unpickler lists its tensors (running no
/// code), which are then read in place from the zip's stored entries.
pub fn torch_shard(path: &Path, index: usize) -> Result<Shard, CheckpointError> {
    let pth = pickle::open(path)?;
    let file_len =
        std::fs::metadata(path).map_err(|e| CheckpointError::Io { path: path.to_path_buf(), source: e })?.len();
    // Shard counts offsets from byte 8 (safetensors' length prefix); a zip entry's data
    // always starts past its 30-byte local header.
    let infos = pth
        .tensors
        .iter()
        .map(|t| TensorInfo {
            name: t.name.clone(),
            dtype: t.dtype,
            shape: t.shape.clone(),
            data_offsets: (t.offset - 8, t.offset - 8 + t.len),
            shard: index,
        })
        .collect();
    Shard::over_file(path, file_len, 8, infos)
}

/// The shards a weight index (safetensors' or PyTorch's, the same JSON) names, each of
/// which must be in the folder.
fn indexed_shards(folder: &Path, index_path: PathBuf) -> Result<ShardList, CheckpointError> {
    let (files, weight_map) = read_index(&index_path)?;
    let mut paths = Vec::new();
    for file in files {
        let path = folder.join(&file);
        if !path.is_file() {
            return Err(CheckpointError::BadIndex {
                file: index_path,
                what: format!("names shard {file}, which is not in the folder"),
            });
        }
        paths.push(path);
    }
    Ok((paths, Some((index_path, weight_map))))
}

fn find_shards(folder: &Path) -> Result<ShardList, CheckpointError> {
    let index_path = folder.join(INDEX_FILE);
    if index_path.is_file() {
        return indexed_shards(folder, index_path);
    }
    let single = folder.join(SINGLE_FILE);
    if single.is_file() {
        return Ok((vec![single], None));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|e| CheckpointError::Io { path: folder.to_path_buf(), source: e })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors") && p.is_file())
        .collect();
    found.sort();
    if found.is_empty() {
        // No safetensors: the PyTorch files transformers wrote before them.
        let torch_index = folder.join(TORCH_INDEX_FILE);
        if torch_index.is_file() {
            return indexed_shards(folder, torch_index);
        }
        let torch = folder.join(TORCH_SINGLE_FILE);
        if torch.is_file() {
            return Ok((vec![torch], None));
        }
        return Err(CheckpointError::BadFolder {
            folder: folder.to_path_buf(),
            what: "holds no *.safetensors file (expected model.safetensors, or shards listed in model.safetensors.index.json) and no pytorch_model.bin".into(),
        });
    }
    Ok((found, None))
}

/// Returns the distinct shard files in first-mention order and the weight map.
fn read_index(path: &Path) -> Result<(Vec<String>, BTreeMap<String, String>), CheckpointError> {
    let text = side_file::read_text(path)
        .map_err(|e| CheckpointError::BadIndex { file: path.to_path_buf(), what: e.to_string() })?;
    parse_index(path, &text)
}

/// The shard index's text → shard files in first-mention order and the weight map.
pub fn parse_index(path: &Path, text: &str) -> Result<(Vec<String>, BTreeMap<String, String>), CheckpointError> {
    let bad = |what: String| CheckpointError::BadIndex { file: path.to_path_buf(), what };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| bad("no `weight_map` object (tensor name → shard file)".into()))?;
    let mut files: Vec<String> = Vec::new();
    let mut weight_map = BTreeMap::new();
    for (name, file) in map {
        let file = file.as_str().ok_or_else(|| bad(format!("weight_map entry `{name}` is not a file name")))?;
        if file.contains('/') || file.contains('\\') || file == ".." {
            return Err(bad(format!("weight_map entry `{name}` points outside the folder ({file})")));
        }
        if !files.iter().any(|f| f == file) {
            files.push(file.to_string());
        }
        weight_map.insert(name.clone(), file.to_string());
    }
    files.sort();
    Ok((files, weight_map))
}
