//! A stable-Rust mutation fuzzer for the parsers that read what users open: the safetensors
//! header, the shard index, config.json, torch.save zips and their pickles.
//!
//! No nightly toolchain is needed: seeds come from the fixtures, a small mutator (bit flips,
//! interesting bytes, JSON/pickle tokens, insertions, deletions, splices, truncations)
//! derives each input from a seeded generator, and every run goes through the same entry
//! point the program uses. A panic is a crash and its input is kept. `cargo run --release
//! --bin fuzz` runs millions of inputs; `tests/fuzz.rs` runs a short smoke of each target and
//! replays the kept crash cases as regression tests.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    SafetensorsHeader,
    ShardIndex,
    Config,
    /// A whole torch.save file: zip container and pickle.
    TorchZip,
    /// The pickle alone, wrapped in a well-formed torch.save zip each time.
    Pickle,
    /// A whole GGUF file: header, metadata, tensor infos and their offsets.
    GgufHeader,
}

impl Target {
    pub const ALL: [Target; 6] = [
        Target::SafetensorsHeader,
        Target::ShardIndex,
        Target::Config,
        Target::TorchZip,
        Target::Pickle,
        Target::GgufHeader,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::SafetensorsHeader => "safetensors-header",
            Target::ShardIndex => "shard-index",
            Target::Config => "config",
            Target::TorchZip => "torch-zip",
            Target::Pickle => "pickle",
            Target::GgufHeader => "gguf-header",
        }
    }

    /// Runs one input through the parser. Ok or a clean error are both fine; only a panic
    /// counts (the caller catches it).
    pub fn exec(self, input: &[u8]) -> bool {
        let path = Path::new("fuzz-input");
        match self {
            // Input: the data length after the header (8 bytes, LE), then the header's JSON.
            Target::SafetensorsHeader => {
                let (len, header) = input.split_at(input.len().min(8));
                let mut bytes = [0u8; 8];
                bytes[..len.len()].copy_from_slice(len);
                crate::checkpoint::safetensors::parse_header(header, u64::from_le_bytes(bytes), 0).is_ok()
            }
            Target::ShardIndex => {
                let text = String::from_utf8_lossy(input);
                crate::checkpoint::parse_index(path, &text).is_ok()
            }
            Target::Config => match serde_json::from_slice::<serde_json::Value>(input) {
                Ok(v) => crate::arch::ArchConfig::parse(&v).is_ok_and(|c| c.inference_blocker().is_none()),
                Err(_) => false,
            },
            Target::TorchZip => crate::checkpoint::pickle::parse(path, input).is_ok(),
            Target::Pickle => crate::checkpoint::pickle::parse(path, &torch_zip(input)).is_ok(),
            Target::GgufHeader => crate::checkpoint::gguf::parse(input).is_ok(),
        }
    }
}

/// A torch.save-shaped zip (stored entries) around a pickle, with a 4 KB storage `0`.
pub fn torch_zip(pickle: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut write = || -> zip::result::ZipResult<()> {
        zip.start_file("archive/data.pkl", stored)?;
        zip.write_all(pickle)?;
        zip.start_file("archive/data/0", stored)?;
        zip.write_all(&[0u8; 4096])?;
        Ok(())
    };
    let _ = write();
    zip.finish().map(|c| c.into_inner()).unwrap_or_default()
}

/// xorshift64*: deterministic, so a run replays from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }
}

/// Tokens that tend to reach the corners of JSON and pickle readers.
const TOKENS: &[&[u8]] = &[
    b"[",
    b"]",
    b"{",
    b"}",
    b"\"",
    b",",
    b":",
    b"1e999",
    b"-1",
    b"18446744073709551616",
    b"NaN",
    b"null",
    b"\"__metadata__\"",
    b"\"data_offsets\"",
    b"\"shape\"",
    b"\"dtype\"",
    b"\"F32\"",
    b"\"num_hidden_layers\"",
    b"\"model_type\"",
    b"\"llama\"",
    b"\"mixtral\"",
    b"\"weight_map\"",
    b"\x80\x02",
    b"(",
    b"t",
    b"R",
    b"Q",
    b".",
    b"cos\nsystem\n",
    b"ctorch._utils\n_rebuild_tensor_v2\n",
    b"ctorch\nFloatStorage\n",
    b"\x85",
    b"J\xff\xff\xff\x7f",
    b"X\xff\xff\xff\xff",
    b"h\x00",
    b"q\x00",
    b"}",
    b"]",
    b")",
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
];

const INTERESTING: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, b'0', b'9', b'"', b'\\', b'\n'];

/// One mutation of `input` (occasionally spliced with `other`).
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                v.splice(at..at, t.iter().copied());
            }
            3 if len > 1 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                v.drain(a..b);
            }
            4 if len > 1 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(256)).min(len);
                let chunk: Vec<u8> = v[a..b].to_vec();
                let at = rng.below(len + 1);
                for _ in 0..1 + rng.below(8) {
                    v.splice(at..at, chunk.iter().copied());
                }
            }
            5 if !other.is_empty() && len > 0 => {
                let cut = rng.below(len);
                let from = rng.below(other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => v.truncate(rng.below(len)),
            _ => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                v.splice(at..at, bytes);
            }
        }
    }
    v.truncate(1 << 20);
    v
}

#[derive(Debug, Default)]
pub struct Report {
    pub execs: u64,
    /// Inputs the parser accepted (the rest were clean errors).
    pub accepted: u64,
    pub crashes: Vec<Vec<u8>>,
    pub elapsed: Duration,
    /// Distinct accepted or rejected inputs kept as the next generation's seeds.
    pub corpus: usize,
}

/// Runs `execs` mutated inputs through `target`, growing a small corpus of accepted inputs
/// (they reach deeper code than rejected ones).
pub fn run(target: Target, seeds: &[Vec<u8>], execs: u64, seed: u64) -> Report {
    let mut rng = Rng::new(seed);
    let mut corpus: Vec<Vec<u8>> = seeds.to_vec();
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let mut report = Report::default();
    let start = Instant::now();
    // Panics are expected to be caught here; keep the default hook from printing each one.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for _ in 0..execs {
        let a = rng.below(corpus.len());
        let b = rng.below(corpus.len());
        let input = mutate(&mut rng, &corpus[a], &corpus[b]);
        match std::panic::catch_unwind(AssertUnwindSafe(|| target.exec(&input))) {
            Ok(true) => {
                report.accepted += 1;
                if corpus.len() < 4096 && rng.below(16) == 0 {
                    corpus.push(input);
                }
            }
            Ok(false) => {
                if corpus.len() < 4096 && rng.below(512) == 0 {
                    corpus.push(input);
                }
            }
            Err(_) => report.crashes.push(input),
        }
        report.execs += 1;
    }
    std::panic::set_hook(hook);
    report.elapsed = start.elapsed();
    report.corpus = corpus.len();
    report
}

/// The fixtures each target starts from (paths relative to the crate root).
pub fn seeds(root: &Path, target: Target) -> Vec<Vec<u8>> {
    let fixtures = root.join("tests/fixtures");
    let read = |p: &str| std::fs::read(fixtures.join(p)).ok();
    // The data length after the header, then the header: what `Target::SafetensorsHeader` reads.
    let header = |p: &str| -> Option<Vec<u8>> {
        let bytes = read(p)?;
        let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
        let data_len = (bytes.len().checked_sub(8 + n)? as u64).to_le_bytes();
        Some([&data_len[..], bytes.get(8..8 + n)?].concat())
    };
    let pickle = |p: &str| -> Option<Vec<u8>> {
        let bytes = read(p)?;
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
        let name = zip.file_names().filter_map(Result::ok).find(|n| n.ends_with("data.pkl"))?.into_owned();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut zip.by_name(&name).ok()?, &mut out).ok()?;
        Some(out)
    };
    let found: Vec<Option<Vec<u8>>> = match target {
        Target::SafetensorsHeader => vec![
            header("tiny-llama/model.safetensors"),
            header("tiny-mixtral/model.safetensors"),
            header("tiny-llama-lora/adapter_model.safetensors"),
        ],
        Target::ShardIndex => vec![read("tiny-llama-sharded/model.safetensors.index.json")],
        Target::Config => ["tiny-llama", "tiny-qwen2", "tiny-mixtral", "tiny-qwen2moe", "tiny-llama-v4config"]
            .iter()
            .map(|m| read(&format!("{m}/config.json")))
            .collect(),
        // The small files: every input is a copy of its seed.
        Target::TorchZip => vec![read("minimind/tiny-minimind-v1/lora/lora_identity_64.pth")],
        Target::Pickle => {
            vec![pickle("minimind/tiny-minimind-v1/full_sft_64.pth"), pickle("tiny-llama-minimind-lora.pth")]
        }
        // Every value type and block type (all-types), a tokenizer vocabulary (tiny-spm).
        Target::GgufHeader => vec![read("gguf/all-types.gguf"), read("gguf/tiny-spm.gguf")],
    };
    found.into_iter().flatten().collect()
}
