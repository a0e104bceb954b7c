//! Architectures: a folder's `config.json` and tensor table → the module tree that
//! `print(model)` shows, checked against the shapes actually stored.

pub mod config;
pub mod families;
pub mod generic;
pub mod gguf;
pub mod minimind;
pub mod module;
pub mod peft;

use std::path::Path;

pub use config::{ArchConfig, Family, MoeConfig};
pub use module::{ModuleTree, Node, Param, ROOT};

use crate::checkpoint::{Checkpoint, CheckpointError};

/// An opened model folder: files, typed config (when the family is supported), module tree.
pub struct ModelFolder {
    pub checkpoint: Checkpoint,
    /// None for architectures this program does not model (their tree comes from tensor names).
    pub config: Option<ArchConfig>,
    pub tree: ModuleTree,
    /// Things a user should know that do not stop the folder from opening.
    pub notices: Vec<String>,
}

impl ModelFolder {
    /// Opens a folder. Reads `config.json` and the safetensors headers; no weight bytes.
    pub fn open(folder: &Path) -> Result<Self, CheckpointError> {
        if let Some(file) = gguf::find_gguf(folder)? {
            return Self::from_checkpoint(gguf::open_checkpoint(&file)?);
        }
        if let Some(file) = minimind::find_pth(folder)? {
            let (checkpoint, mut told) = minimind::open_checkpoint(&file)?;
            let mut model = Self::from_checkpoint(checkpoint)?;
            told.append(&mut model.notices);
            model.notices = told;
            return Ok(model);
        }
        if folder.is_file() && folder.extension().is_some_and(|e| e == "safetensors") {
            return Self::from_checkpoint(Checkpoint::open_file(folder)?);
        }
        Self::from_checkpoint(Checkpoint::open(folder)?)
    }

    pub fn from_checkpoint(checkpoint: Checkpoint) -> Result<Self, CheckpointError> {
        // A GGUF's config comes from its own keys, a .pth's from its shapes: errors name the file.
        let config_path = if checkpoint.folder.is_file() {
            checkpoint.folder.clone()
        } else {
            checkpoint.folder.join(crate::checkpoint::CONFIG_FILE)
        };
        let Some(raw) = checkpoint.config.clone() else {
            if checkpoint.folder.is_file() {
                // A lone .safetensors file: names and values, but no architecture to run.
                let mut notices = notices_of(&checkpoint);
                notices.push(
                    "A .safetensors file on its own has no config.json: the tree is built from the tensor names with generic class names, statistics and bits work, and inference needs the folder with its config.json."
                        .to_string(),
                );
                let tree = generic::build_tree(&checkpoint, "Model");
                return Ok(Self { checkpoint, config: None, tree, notices });
            }
            return Err(CheckpointError::BadFolder {
                folder: checkpoint.folder.clone(),
                what: "has no config.json: a Hugging Face model folder names its architecture and sizes there".into(),
            });
        };
        let mut notices = notices_of(&checkpoint);
        match ArchConfig::parse(&raw) {
            Ok(cfg) => {
                check_sizes(&cfg, &checkpoint, &config_path)?;
                if let Some(why) = cfg.inference_blocker() {
                    notices.push(format!("config.json: {why}. The model can be inspected but not run."));
                }
                let dropout = raw.get("dropout").and_then(serde_json::Value::as_f64).unwrap_or(0.0);
                let tree = families::build_tree(&cfg, dropout);
                notices.extend(check_against_checkpoint(&tree, &checkpoint, &config_path)?);
                if cfg.family == Family::MiniMind && raw.get("auto_map").is_some() {
                    notices.push(minimind::AUTO_MAP_NOTICE.to_string());
                }
                Ok(Self { checkpoint, config: Some(cfg), tree, notices })
            }
            Err(e) if e.unsupported => {
                let root = raw
                    .get("architectures")
                    .and_then(|a| a.get(0))
                    .and_then(|a| a.as_str())
                    .unwrap_or("Model")
                    .to_string();
                notices.push(format!(
                    "{e}. The tree below is built from the tensor names with generic class names; inference is not available for this architecture."
                ));
                let tree = generic::build_tree(&checkpoint, &root);
                Ok(Self { checkpoint, config: None, tree, notices })
            }
            Err(e) => Err(CheckpointError::BadConfig { file: config_path, what: e.to_string() }),
        }
    }

    pub fn repr(&self) -> String {
        self.tree.repr(ROOT)
    }

    /// Bytes stored for the parameters of a subtree (tied tensors once).
    pub fn stored_bytes(&self, node: usize) -> u64 {
        let mut seen = std::collections::HashSet::new();
        self.tree
            .descendants(node)
            .iter()
            .flat_map(|&n| &self.tree.nodes[n].params)
            .filter(|p| seen.insert(p.tensor.as_str()))
            .filter_map(|p| self.checkpoint.tensor(&p.tensor))
            .map(|t| t.byte_len() as u64)
            .sum()
    }
}

/// What the headers do that safetensors' validator would refuse (read anyway), per shard.
fn notices_of(checkpoint: &Checkpoint) -> Vec<String> {
    checkpoint.shards.iter().flat_map(|s| s.notices.iter().map(move |n| format!("{}: {n}", s.file_name))).collect()
}

/// The counts the tree and the engine size things from (layers, experts) must be what the
/// tensors carry. Checked before anything is built, so a config saying 10⁹ layers is an error
/// naming the key, not an allocation.
fn check_sizes(cfg: &ArchConfig, ckpt: &Checkpoint, file: &Path) -> Result<(), CheckpointError> {
    let index_after = |name: &str, marker: &str| -> Option<usize> {
        let at = name.find(marker)? + marker.len();
        name[at..].split('.').next()?.parse().ok()
    };
    // MiniMindLM stores its blocks as `layers.N.*`, every other family as `model.layers.N.*`.
    let marker = if cfg.family == Family::MiniMindLm { "layers." } else { "model.layers." };
    let stored_layers = ckpt.tensors.iter().filter_map(|t| index_after(&t.name, marker)).max().map(|m| m + 1);
    let bad = |what: String| CheckpointError::BadConfig { file: file.to_path_buf(), what };
    // Fewer layers than stored is what transformers loads with an "unexpected keys" warning
    // (reported below); more would size the tree and the engine from tensors that do not exist.
    if cfg.num_layers > stored_layers.unwrap_or(0) {
        let stored = stored_layers.unwrap_or(0);
        let missing =
            if cfg.num_layers > stored { format!("; there is no model.layers.{stored}.*") } else { String::new() };
        return Err(bad(format!(
            "num_hidden_layers is {}, but the tensors hold {stored} decoder layers (model.layers.N.*){missing}",
            cfg.num_layers
        )));
    }
    if let Some(moe) = &cfg.moe {
        let stored = ckpt.tensors.iter().filter_map(|t| index_after(&t.name, ".experts.")).max().map(|m| m + 1);
        if moe.num_experts > stored.unwrap_or(0) {
            return Err(bad(format!(
                "the config says {} experts per MoE layer, but the tensors hold {} (….experts.N.*)",
                moe.num_experts,
                stored.unwrap_or(0)
            )));
        }
        if moe.top_k == 0 || moe.top_k > moe.num_experts {
            return Err(bad(format!("{} experts per token, of {} experts", moe.top_k, moe.num_experts)));
        }
    }
    Ok(())
}

/// Every parameter the config implies must exist with the implied shape. Returns notices for
/// stored tensors no module claims (e.g. old `rotary_emb.inv_freq` buffers).
fn check_against_checkpoint(
    tree: &ModuleTree,
    ckpt: &Checkpoint,
    config_path: &Path,
) -> Result<Vec<String>, CheckpointError> {
    let mut own_names = Vec::new();
    let mut claimed = std::collections::HashSet::new();
    for node in &tree.nodes {
        for p in &node.params {
            claimed.insert(p.tensor.as_str());
            // A tied parameter (lm_head.weight → model.embed_tokens.weight) may also be stored
            // under its own name: torch.save of a state dict cloned to half precision, as
            // MiniMind's trainer writes, keeps both as separate copies. Both belong to the tree.
            let own = if node.path.is_empty() { p.local.clone() } else { format!("{}.{}", node.path, p.local) };
            if own != p.tensor && ckpt.tensor(&own).is_some_and(|t| t.shape == p.shape) {
                own_names.push(own);
            }
            match ckpt.tensor(&p.tensor) {
                None => {
                    return Err(CheckpointError::BadConfig {
                        file: config_path.to_path_buf(),
                        what: format!(
                            "implies a tensor `{}` of shape {:?} (module `{}`: {}({})), but no safetensors file in the folder stores it",
                            p.tensor, p.shape, node.path, node.class_name, node.extra_repr
                        ),
                    });
                }
                Some(t) if t.shape != p.shape => {
                    return Err(CheckpointError::BadConfig {
                        file: config_path.to_path_buf(),
                        what: format!(
                            "implies `{}` has shape {:?} ({}({})), but {} stores it as {:?}",
                            p.tensor,
                            p.shape,
                            node.class_name,
                            node.extra_repr,
                            ckpt.shard_name(t),
                            t.shape
                        ),
                    });
                }
                Some(_) => {}
            }
        }
    }
    claimed.extend(own_names.iter().map(String::as_str));
    // A tied weight that torch.save wrote under both names (one storage) is claimed once.
    let claimed_bytes: std::collections::HashSet<(usize, (usize, usize))> =
        ckpt.tensors.iter().filter(|t| claimed.contains(t.name.as_str())).map(|t| (t.shard, t.data_offsets)).collect();
    let unclaimed: Vec<&str> = ckpt
        .tensors
        .iter()
        .filter(|t| !claimed.contains(t.name.as_str()) && !claimed_bytes.contains(&(t.shard, t.data_offsets)))
        .map(|t| t.name.as_str())
        .collect();
    Ok(if unclaimed.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "{} stored tensor(s) belong to no module of this architecture and are listed only in the state_dict view: {}",
            unclaimed.len(),
            unclaimed.iter().take(8).cloned().collect::<Vec<_>>().join(", ")
        )]
    })
}
