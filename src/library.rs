//! The models already on this machine: the Hugging Face cache, Ollama's store and LM Studio's
//! folder. Scanning reads directory listings, refs, manifests and config.json files only —
//! never a weight byte, never the network — so it can run at start-up on a worker.
//!
//! Names resolve the way their tools spell them: `ORG/NAME` (or `ORG/NAME@REV`) is the cached
//! snapshot of `refs/main` (or of that revision), `ollama:NAME[:TAG]` an Ollama model's GGUF
//! blob.

use std::path::{Path, PathBuf};

/// Where a model was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Source {
    HuggingFace,
    Ollama,
    LmStudio,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::HuggingFace => "huggingface",
            Source::Ollama => "ollama",
            Source::LmStudio => "lmstudio",
        }
    }
}

/// One model found on disk.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Entry {
    pub source: Source,
    /// `ORG/NAME`, `NAME:TAG`, or `PUBLISHER/REPO/FILE` as the tool shows it.
    pub name: String,
    /// A commit hash (Hugging Face) or tag (Ollama).
    pub revision: String,
    /// What to open: a snapshot folder or a GGUF file.
    pub path: PathBuf,
    /// "safetensors", "pytorch .bin", "gguf", or "unknown".
    pub format: String,
    /// `architectures[0]` from config.json, when there is one.
    pub architecture: Option<String>,
    /// Bytes of the weight files present.
    pub bytes: u64,
    /// What is missing: shards the index names but the snapshot lacks, interrupted downloads.
    pub missing: Vec<String>,
}

/// The folders each tool keeps its models in, from the environment as the tools read it.
pub fn hf_hub_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("HF_HUB_CACHE")
        .or_else(|| env("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| env("HOME").map(|h| h.join(".cache/huggingface/hub")))
}

pub fn ollama_dir() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("OLLAMA_MODELS").or_else(|| env("HOME").map(|h| h.join(".ollama/models")))
}

pub fn lmstudio_dirs() -> Vec<PathBuf> {
    let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()).map(PathBuf::from) else { return Vec::new() };
    vec![home.join(".lmstudio/models"), home.join(".cache/lm-studio/models")]
}

fn read_small(path: &Path) -> Option<String> {
    crate::checkpoint::side_file::read_text(path).ok()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Every model in every store, Hugging Face first, sorted by name within each.
pub fn scan() -> Vec<Entry> {
    let mut all = Vec::new();
    if let Some(hub) = hf_hub_dir() {
        all.extend(scan_hf(&hub));
    }
    if let Some(dir) = ollama_dir() {
        all.extend(scan_ollama(&dir));
    }
    for dir in lmstudio_dirs() {
        all.extend(scan_lmstudio(&dir));
    }
    all
}

/// `models--ORG--NAME/snapshots/REV/` folders of a hub cache (every revision present).
pub fn scan_hf(hub: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let Ok(repos) = std::fs::read_dir(hub) else { return out };
    for repo in repos.flatten() {
        let dir_name = repo.file_name().to_string_lossy().into_owned();
        let Some(rest) = dir_name.strip_prefix("models--") else { continue };
        let name = rest.replacen("--", "/", 1);
        let incomplete = std::fs::read_dir(repo.path().join("blobs"))
            .map(|b| b.flatten().filter(|f| f.file_name().to_string_lossy().ends_with(".incomplete")).count())
            .unwrap_or(0);
        let Ok(snapshots) = std::fs::read_dir(repo.path().join("snapshots")) else { continue };
        for snap in snapshots.flatten() {
            let mut e = describe_folder(Source::HuggingFace, &name, &snap.path());
            e.revision = snap.file_name().to_string_lossy().into_owned();
            if incomplete > 0 {
                e.missing.push(format!("{incomplete} interrupted download(s) (*.incomplete in blobs/)"));
            }
            out.push(e);
        }
    }
    out.sort_by(|a, b| (&a.name, &a.revision).cmp(&(&b.name, &b.revision)));
    out
}

/// What a model folder holds, from its file names, index and config.json.
fn describe_folder(source: Source, name: &str, dir: &Path) -> Entry {
    let files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    let has = |ext: &str| files.iter().any(|f| f.to_string_lossy().ends_with(ext));
    let format = if has(".safetensors") || dir.join(crate::checkpoint::INDEX_FILE).exists() {
        "safetensors"
    } else if has(".bin") {
        "pytorch .bin"
    } else if has(".gguf") {
        "gguf"
    } else {
        "unknown"
    };
    let weights = |f: &PathBuf| {
        let s = f.to_string_lossy();
        s.ends_with(".safetensors") || s.ends_with(".bin") || s.ends_with(".gguf")
    };
    // Snapshot entries are symlinks into blobs/: a dangling one is a file not downloaded.
    let bytes = files.iter().filter(|f| weights(f)).map(|f| file_len(f)).sum();
    let mut missing: Vec<String> = files
        .iter()
        .filter(|f| weights(f) && !f.exists())
        .map(|f| format!("{} (link to a blob that is not there)", f.file_name().unwrap_or_default().to_string_lossy()))
        .collect();
    for index in ["model.safetensors.index.json", "pytorch_model.bin.index.json"] {
        let Some(text) = read_small(&dir.join(index)) else { continue };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        let mut shards: Vec<&str> = v
            .get("weight_map")
            .and_then(|m| m.as_object())
            .map(|m| m.values().filter_map(|f| f.as_str()).collect())
            .unwrap_or_default();
        shards.sort_unstable();
        shards.dedup();
        for shard in shards {
            if !dir.join(shard).exists() && !missing.iter().any(|m| m.starts_with(shard)) {
                missing.push(format!("{shard} (named in {index})"));
            }
        }
    }
    let architecture = read_small(&dir.join("config.json"))
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("architectures")?.get(0)?.as_str().map(str::to_string));
    Entry {
        source,
        name: name.to_string(),
        revision: String::new(),
        path: dir.to_path_buf(),
        format: format.into(),
        architecture,
        bytes,
        missing,
    }
}

/// Ollama: `manifests/HOST/NAMESPACE/NAME/TAG` JSON naming layers; the model layer's digest
/// is a file `blobs/sha256-HEX` (a GGUF).
pub fn scan_ollama(dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let manifests = dir.join("manifests");
    let mut stack = vec![manifests.clone()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let Ok(rel) = p.strip_prefix(&manifests) else { continue };
            let parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
            let [host, namespace, name, tag] = parts.as_slice() else { continue };
            let shown = match (host.as_str(), namespace.as_str()) {
                ("registry.ollama.ai", "library") => name.clone(),
                ("registry.ollama.ai", ns) => format!("{ns}/{name}"),
                (h, ns) => format!("{h}/{ns}/{name}"),
            };
            let model_blob =
                read_small(&p).and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()).and_then(|v| {
                    v.get("layers")?.as_array()?.iter().find_map(|l| {
                        (l.get("mediaType")?.as_str()? == "application/vnd.ollama.image.model")
                            .then(|| l.get("digest")?.as_str().map(str::to_string))?
                    })
                });
            let Some(digest) = model_blob else { continue };
            let blob = dir.join("blobs").join(digest.replace(':', "-"));
            let mut missing = Vec::new();
            if !blob.is_file() {
                missing.push(format!("blob {digest}"));
            }
            out.push(Entry {
                source: Source::Ollama,
                name: format!("{shown}:{tag}"),
                revision: tag.clone(),
                bytes: file_len(&blob),
                path: blob,
                format: "gguf".into(),
                architecture: None,
                missing,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// LM Studio: `PUBLISHER/REPO/*.gguf`.
pub fn scan_lmstudio(dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let Ok(publishers) = std::fs::read_dir(dir) else { return out };
    for publisher in publishers.flatten().filter(|p| p.path().is_dir()) {
        let Ok(repos) = std::fs::read_dir(publisher.path()) else { continue };
        for repo in repos.flatten().filter(|r| r.path().is_dir()) {
            let Ok(files) = std::fs::read_dir(repo.path()) else { continue };
            for f in files.flatten().filter(|f| f.file_name().to_string_lossy().ends_with(".gguf")) {
                out.push(Entry {
                    source: Source::LmStudio,
                    name: format!(
                        "{}/{}/{}",
                        publisher.file_name().to_string_lossy(),
                        repo.file_name().to_string_lossy(),
                        f.file_name().to_string_lossy()
                    ),
                    revision: String::new(),
                    bytes: file_len(&f.path()),
                    path: f.path(),
                    format: "gguf".into(),
                    architecture: None,
                    missing: Vec::new(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A path as given, or the cached model it names: an existing path wins; then
/// `ollama:NAME[:TAG]`; then `ORG/NAME[@REV]` in the Hugging Face cache. Never the network.
pub fn resolve(given: &Path) -> Result<PathBuf, String> {
    if given.exists() {
        return Ok(given.to_path_buf());
    }
    let text = given.to_string_lossy();
    if let Some(name) = text.strip_prefix("ollama:") {
        let dir = ollama_dir().ok_or("no home folder to find Ollama's models in")?;
        return resolve_ollama(&dir, name);
    }
    let looks_like_repo = text.matches('/').count() == 1 && !text.starts_with('.') && !text.starts_with('/');
    if looks_like_repo {
        let hub = hf_hub_dir().ok_or("no home folder to find the Hugging Face cache in")?;
        return resolve_hf(&hub, &text);
    }
    Err(format!("{text}: no such file or folder"))
}

/// `ORG/NAME[@REV]` → the snapshot folder of `refs/main` (or of REV, a ref name or a hash).
pub fn resolve_hf(hub: &Path, spec: &str) -> Result<PathBuf, String> {
    let (repo, rev) = spec.split_once('@').unwrap_or((spec, "main"));
    let dir = hub.join(format!("models--{}", repo.replacen('/', "--", 1)));
    if !dir.is_dir() {
        let known: Vec<String> = scan_hf(hub).into_iter().map(|e| e.name).collect();
        return Err(not_cached(repo, &format!("the Hugging Face cache ({})", hub.display()), &known));
    }
    let hash = read_small(&dir.join("refs").join(rev)).map(|s| s.trim().to_string()).unwrap_or_else(|| rev.to_string());
    if hash.contains(['/', '\\']) || hash.contains("..") {
        return Err(format!("{spec}: revision {hash:?} is not a plain name"));
    }
    let snap = dir.join("snapshots").join(&hash);
    if snap.is_dir() {
        Ok(snap)
    } else {
        Err(format!("{spec}: revision {rev} ({hash}) is not in the cache at {}", dir.display()))
    }
}

pub fn resolve_ollama(dir: &Path, spec: &str) -> Result<PathBuf, String> {
    let spec_full = if spec.contains(':') { spec.to_string() } else { format!("{spec}:latest") };
    let all = scan_ollama(dir);
    match all.iter().find(|e| e.name == spec_full) {
        Some(e) if e.missing.is_empty() => Ok(e.path.clone()),
        Some(e) => Err(format!("ollama:{spec_full}: {} is missing from {}", e.missing.join(", "), dir.display())),
        None => {
            let known: Vec<String> = all.into_iter().map(|e| e.name).collect();
            Err(not_cached(&spec_full, &format!("Ollama's store ({})", dir.display()), &known))
        }
    }
}

/// "not cached" with the closest names, by shared characters in order (cheap and enough to
/// catch a typo or a missing organisation).
fn not_cached(name: &str, store: &str, known: &[String]) -> String {
    let mut scored: Vec<(usize, &String)> =
        known.iter().map(|k| (distance(&name.to_lowercase(), &k.to_lowercase()), k)).collect();
    scored.sort();
    let close: Vec<&str> =
        scored.iter().take(3).filter(|(d, _)| *d <= name.len().max(4) / 2 + 2).map(|(_, k)| k.as_str()).collect();
    let hint = if close.is_empty() { String::new() } else { format!("; close matches: {}", close.join(", ")) };
    format!("{name} is not in {store} — this program never downloads, so fetch it with its own tool first{hint}")
}

/// Levenshtein distance (names are short).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
