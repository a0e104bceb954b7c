//! The engine: one thread owns the model and its KV cache. The UI sends [`Command`]s and
//! draws the [`Event`]s it gets back; it never locks the model and never waits on it.
//!
//! [`Session`] is the same state used synchronously (CLI, tests, benchmarks): a prompt,
//! the tokens after it, and for every position the logits that predicted the next token,
//! so stepping back is a truncation and moving a slider never runs the model.

pub mod internals;
pub mod matvec;
pub mod memory;
pub mod model;
pub mod precision;
pub mod quant_matvec;
pub mod text;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use crate::analysis::cast::CastTarget;
use crate::analysis::control::{Cancelled, Control};
use crate::arch::ModelFolder;
use crate::sampling::{self, SamplingParams};
pub use model::{KvCache, LoadedModel, Probes};
pub use text::{Piece, TextCodec};

/// Router logits of one position in every MoE layer: `[(layer, logits per expert)]`.
pub type PositionRouting = Vec<(usize, Vec<f32>)>;

pub struct Session {
    pub model: LoadedModel,
    pub codec: Arc<TextCodec>,
    cache: KvCache,
    /// Prompt then generated tokens.
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    /// logits[i] predicts the token at position prompt_len + i.
    logits: Vec<Arc<Vec<f32>>>,
    /// Router logits per position (MoE models only), prompt included.
    pub routing: Vec<PositionRouting>,
    /// Qwen2-MoE shared-expert gate per position and layer.
    pub shared_gate: Vec<Vec<(usize, f32)>>,
    /// Forward passes run so far: lets tests prove a slider did not run the model.
    pub forwards: u64,
    /// The attached LoRA adapter and its strength (0 = off, 1 = as trained).
    pub adapter: Option<(Arc<crate::lora::LoraAdapter>, f64)>,
    /// With an adapter: the base model's own KV cache and logits, kept step for step beside
    /// the adapted ones, so the with/without view costs one incremental forward per token.
    base_cache: Option<KvCache>,
    base_logits: Vec<Arc<Vec<f32>>>,
    /// Attention and residual stream per position, while something asks for them.
    pub internals: Option<internals::Internals>,
    /// The same for the base model, recorded in its pass beside the adapted one while an
    /// adapter is attached (base vs adapted in the Attention and Logit lens tabs).
    pub base_internals: Option<internals::Internals>,
    /// Some weight is in a GGML block format, so the arithmetic can be chosen.
    pub quantized: bool,
}

impl Session {
    pub fn load(folder: &ModelFolder) -> Result<Self, String> {
        Self::load_with(folder, &Control::new())
    }

    /// Admits the model against the memory available (refusing with both numbers when it
    /// does not fit), then builds it over the stored weights, which stay in the read-only
    /// map. Reading them in (page by page, so the first prompt does not stall on the disk)
    /// reports bytes to `control` and stops when it is cancelled.
    pub fn load_with(folder: &ModelFolder, control: &Control) -> Result<Self, String> {
        Self::load_as(folder, None, control)
    }

    /// As [`Session::load_with`], with every weight matrix rounded through `round_trip` on the
    /// way in (the precision what-if): those weights are then held in memory, so they are
    /// admitted on top of the rest.
    pub fn load_as(folder: &ModelFolder, round_trip: Option<CastTarget>, control: &Control) -> Result<Self, String> {
        let cfg = folder.config.as_ref().ok_or_else(|| {
            format!(
                "{}: inference needs one of the supported families ({}); this architecture is shown from its tensor names only",
                folder.checkpoint.folder.display(),
                crate::arch::Family::ALL
                    .iter()
                    .filter(|f| **f != crate::arch::Family::MiniMindLm) // read from .pth files, no config names it
                    .map(|f| f.model_type())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let ckpt = &folder.checkpoint;
        if let Some(why) = cfg.inference_blocker() {
            return Err(format!(
                "{}: {why}; the model can be inspected but not run",
                ckpt.folder.join(crate::checkpoint::CONFIG_FILE).display()
            ));
        }
        let admitted = memory::admission(cfg, ckpt, memory::available_memory())
            .map_err(|refusal| format!("{}: {refusal}", ckpt.folder.display()))?;
        if let Some(to) = round_trip {
            memory::admit_round_trip(ckpt, to, admitted.total(), memory::available_memory())
                .map_err(|why| format!("{}: {why}", ckpt.folder.display()))?;
        }
        let codec = Arc::new(match &ckpt.gguf {
            Some(g) => TextCodec::from_gguf(&g.file)?,
            // A one-file model (.pth) keeps its tokenizer files beside it.
            None if ckpt.folder.is_file() => {
                TextCodec::load(ckpt.folder.parent().unwrap_or(std::path::Path::new(".")))?
            }
            None => TextCodec::load(&ckpt.folder)?,
        });
        let mut model = match round_trip {
            None => LoadedModel::from_checkpoint(cfg, ckpt),
            Some(to) => LoadedModel::from_checkpoint_round_trip(cfg, ckpt, to),
        }
        .map_err(|e| format!("building the {} model: {e}", cfg.architecture))?;
        // A quantized file runs as llama.cpp runs it unless the user asks for exact values.
        let quantized = ckpt.is_quantized();
        if quantized {
            model.set_arith(quant_matvec::Arith::LlamaCpp);
        }
        prefault(ckpt, control).map_err(|_| "loading cancelled".to_string())?;
        memory::release_freed_heap();
        let cache = model.new_cache();
        Ok(Self {
            model,
            codec,
            cache,
            tokens: Vec::new(),
            prompt_len: 0,
            logits: Vec::new(),
            routing: Vec::new(),
            shared_gate: Vec::new(),
            forwards: 0,
            adapter: None,
            base_cache: None,
            base_logits: Vec::new(),
            internals: None,
            base_internals: None,
            quantized,
        })
    }

    /// Attaches a LoRA adapter at a strength (or removes it) and re-runs the sequence so
    /// every cached distribution reflects the new weights.
    pub fn set_adapter(&mut self, adapter: Option<(Arc<crate::lora::LoraAdapter>, f64)>) -> Result<(), String> {
        if let Some((a, _)) = &adapter
            && self.adapter.is_none()
        {
            let floats = a.modules.iter().map(|m| (m.a.len() + m.b.len()) as u64).sum();
            memory::admit_adapter(&self.model.cfg, floats, memory::available_memory())?;
        }
        self.model
            .set_adapter(adapter.as_ref().map(|(a, _)| a.as_ref()), adapter.as_ref().map(|(_, s)| *s).unwrap_or(0.0))
            .map_err(|e| e.to_string())?;
        self.adapter = adapter;
        self.rerun()
    }

    /// Switches between exact and llama.cpp arithmetic for quantized weights, and re-runs
    /// the sequence so every cached distribution is computed the new way.
    pub fn set_arith(&mut self, arith: quant_matvec::Arith) -> Result<(), String> {
        if self.model.arith == arith {
            return Ok(());
        }
        self.model.set_arith(arith);
        self.rerun()
    }

    /// Runs the current tokens again from scratch (after the weights changed).
    fn rerun(&mut self) -> Result<(), String> {
        if self.tokens.is_empty() {
            return Ok(());
        }
        let tokens = std::mem::take(&mut self.tokens);
        let (prompt, generated) = tokens.split_at(self.prompt_len);
        self.set_prompt_ids(prompt.to_vec())?;
        for &id in generated {
            self.append(id)?;
        }
        Ok(())
    }

    /// Next-token logits of the current sequence with the adapter switched off, for the
    /// side-by-side view (None without an adapter).
    pub fn base_logits(&self) -> Option<Arc<Vec<f32>>> {
        self.adapter.as_ref()?;
        self.base_logits.last().cloned()
    }

    pub fn is_moe(&self) -> bool {
        self.model.cfg.moe.is_some()
    }

    /// Tokenizes and runs the prompt (prefill); afterwards `current_logits` predicts token 1.
    pub fn set_prompt(&mut self, prompt: &str, chat: bool) -> Result<(), String> {
        let ids = self.codec.prompt_ids(prompt, chat)?;
        if ids.is_empty() {
            return Err("the prompt has no tokens".into());
        }
        self.set_prompt_ids(ids)
    }

    pub fn set_prompt_ids(&mut self, ids: Vec<u32>) -> Result<(), String> {
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= self.model.cfg.vocab_size) {
            return Err(format!("token id {bad} is outside the vocabulary of {}", self.model.cfg.vocab_size));
        }
        self.cache = self.model.new_cache();
        self.base_cache = None;
        self.base_logits.clear();
        self.tokens.clear();
        self.logits.clear();
        self.routing.clear();
        self.shared_gate.clear();
        if let Some(i) = &mut self.internals {
            i.truncate(0);
        }
        self.base_internals = None;
        self.prompt_len = ids.len();
        self.run(&ids)?;
        memory::release_freed_heap();
        self.tokens = ids;
        Ok(())
    }

    fn run(&mut self, ids: &[u32]) -> Result<(), String> {
        let mut probes =
            Probes { internals: self.internals.as_ref().map(|_| Default::default()), ..Default::default() };
        let moe = self.is_moe();
        let record = moe || self.internals.is_some();
        let (model, cache) = (&self.model, &mut self.cache);
        let logits = on_pool(|| model.next_token_logits(ids, cache, record.then_some(&mut probes)))
            .map_err(|e| format!("forward pass: {e}"))?;
        if let (Some(mine), Some(seen)) = (self.internals.as_mut(), probes.internals.as_ref()) {
            for chunk in &seen.chunks {
                mine.push_chunk(chunk);
            }
        }
        self.forwards += 1;
        self.logits.push(Arc::new(logits));
        if self.adapter.is_some() {
            let model = &mut self.model;
            let cache = self.base_cache.get_or_insert_with(|| model.new_cache());
            let mut base_probes =
                Probes { internals: self.internals.as_ref().map(|_| Default::default()), ..Default::default() };
            let record = self.internals.is_some().then_some(&mut base_probes);
            let base = model
                .without_lora(|m| on_pool(|| m.next_token_logits(ids, cache, record)))
                .map_err(|e| format!("forward pass without the adapter: {e}"))?;
            if let Some(seen) = &base_probes.internals {
                let heads = self.model.cfg.num_heads;
                let mine = self.base_internals.get_or_insert_with(|| internals::Internals::new(heads));
                for chunk in &seen.chunks {
                    mine.push_chunk(chunk);
                }
            }
            self.forwards += 1;
            self.base_logits.push(Arc::new(base));
        }
        if moe {
            for pos in 0..ids.len() {
                self.routing
                    .push(probes.router_logits.iter().map(|(layer, rows)| (*layer, rows[pos].clone())).collect());
                self.shared_gate.push(probes.shared_gate.iter().map(|(layer, g)| (*layer, g[pos])).collect());
            }
        }
        Ok(())
    }

    /// Starts (or stops) recording attention and the residual stream; starting re-runs the
    /// sequence so what is already there is recorded too.
    pub fn set_internals(&mut self, on: bool) -> Result<(), String> {
        match (on, self.internals.is_some()) {
            (true, false) => {
                self.internals = Some(internals::Internals::new(self.model.cfg.num_heads));
                self.rerun()
            }
            (false, true) => {
                self.internals = None;
                self.base_internals = None;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The logit lens at a recorded position: each layer's residual through the final norm
    /// and lm_head, as probabilities.
    /// With `base`, the base model's residual through its own norm and lm_head (the
    /// adapter switched off), beside the adapted one.
    pub fn lens(&mut self, position: usize, base: bool) -> Result<internals::Lens, String> {
        let recorded = if base { self.base_internals.as_ref() } else { self.internals.as_ref() };
        let rows = recorded
            .and_then(|i| i.residual.get(position))
            .cloned()
            .ok_or_else(|| format!("position {position} has no recorded residual stream"))?;
        let lens_of = |m: &model::LoadedModel| {
            rows.iter()
                .map(|h| m.lens_logits(h).map(|l| crate::sampling::softmax(&l)))
                .collect::<candle_core::Result<Vec<_>>>()
        };
        let probs = if base { self.model.without_lora(lens_of) } else { lens_of(&self.model) };
        Ok(internals::Lens { position, base, probs: probs.map_err(|e| format!("logit lens: {e}"))? })
    }

    /// Logits for the next token (after the last one in `tokens`).
    pub fn current_logits(&self) -> Option<Arc<Vec<f32>>> {
        self.logits.last().cloned()
    }

    /// Appends a token (drawn or forced) and runs it.
    pub fn append(&mut self, id: u32) -> Result<(), String> {
        if id as usize >= self.model.cfg.vocab_size {
            return Err(format!("token id {id} is outside the vocabulary"));
        }
        self.run(&[id])?;
        self.tokens.push(id);
        Ok(())
    }

    /// Removes the last generated token; the prompt itself stays.
    pub fn step_back(&mut self) -> Result<bool, String> {
        if self.tokens.len() <= self.prompt_len {
            return Ok(false);
        }
        self.tokens.pop();
        self.logits.pop();
        self.base_logits.pop();
        let len = self.tokens.len();
        if let Some(cache) = &mut self.base_cache {
            cache.truncate(len);
        }
        self.routing.truncate(len);
        self.shared_gate.truncate(len);
        for i in [&mut self.internals, &mut self.base_internals].into_iter().flatten() {
            i.truncate(len);
        }
        self.cache.truncate(len);
        Ok(true)
    }

    /// Number of generated tokens so far (the step number of the next draw).
    pub fn step(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }

    /// Distribution for the next token under `params`, from cached logits.
    pub fn distribution(&self, params: &SamplingParams) -> Option<sampling::Distribution> {
        let logits = self.current_logits()?;
        Some(sampling::distribution(&logits, &self.tokens, params))
    }

    /// Draws the next token with the seeded generator and appends it.
    pub fn sample_next(&mut self, params: &SamplingParams) -> Result<u32, String> {
        let id = if params.greedy() {
            let logits = self.current_logits().ok_or("no prompt yet")?;
            sampling::greedy_choice(&logits, &self.tokens, params)
        } else {
            let d = self.distribution(params).ok_or("no prompt yet")?;
            sampling::draw(&d, sampling::uniform(params.seed, self.step() as u64))
        };
        self.append(id)?;
        Ok(id)
    }

    pub fn generate(&mut self, n: usize, params: &SamplingParams) -> Result<Vec<u32>, String> {
        (0..n).map(|_| self.sample_next(params)).collect()
    }
}

/// Touches one byte per page of every tensor, so the weights are read from disk now, with
/// progress, rather than during the first token.
fn prefault(ckpt: &crate::checkpoint::Checkpoint, control: &Control) -> Result<(), Cancelled> {
    const PAGE: usize = 4096;
    control.add_total(ckpt.total_bytes());
    for t in &ckpt.tensors {
        control.check()?;
        let bytes = ckpt.bytes(t);
        let mut sum = 0u8;
        for chunk in bytes.chunks(PAGE) {
            sum = sum.wrapping_add(chunk[0]);
        }
        std::hint::black_box(sum);
        control.advance(bytes.len() as u64);
    }
    Ok(())
}

pub enum Command {
    /// Read the weights of an opened folder (the first prompt asks for this; opening does
    /// not). `control` shows progress and cancels.
    Load {
        folder: Arc<ModelFolder>,
        control: Arc<crate::analysis::Control>,
    },
    /// Drop the loaded model and its cache (another model was opened).
    Unload,
    SetPrompt {
        text: String,
        chat: bool,
    },
    /// Run this token next (a drawn one, or one the user clicked).
    Append(u32),
    /// Draw and run `n` tokens; `Stop` (or another command) ends it early.
    Generate {
        n: usize,
        params: SamplingParams,
    },
    StepBack,
    /// Attach (or remove) a LoRA adapter at a strength; the sequence is re-run.
    SetAdapter(Option<(Arc<crate::lora::LoraAdapter>, f64)>),
    /// Record attention and the residual stream (a panel that shows them is open).
    SetInternals(bool),
    /// The logit lens at a recorded position, of the adapted model or (`base`) the base one.
    Lens {
        position: usize,
        base: bool,
    },
    /// Exact or llama.cpp arithmetic for quantized weights; the sequence is re-run.
    SetArith(quant_matvec::Arith),
    /// A panic inside a command, for the recovery test.
    #[cfg(test)]
    PanicForTest,
}

/// What the token panel needs after every change.
#[derive(Clone)]
pub struct Snapshot {
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    pub pieces: Vec<Piece>,
    /// Logits predicting the next token.
    pub logits: Arc<Vec<f32>>,
    /// For each generated token, the logits it was drawn from (for the generation table).
    pub history: Vec<Arc<Vec<f32>>>,
    pub routing: Vec<PositionRouting>,
    pub shared_gate: Vec<Vec<(usize, f32)>>,
    pub forwards: u64,
    pub text: String,
    /// With an adapter attached: the next-token logits of the base model, for comparison.
    pub base_logits: Option<Arc<Vec<f32>>>,
    /// Attention and residual stream per position, when recorded.
    pub internals: Option<internals::Internals>,
    /// The base model's, while an adapter is attached.
    pub base_internals: Option<internals::Internals>,
}

/// What the engine is doing, with its figures; the UI words it in the user's language.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EngineStatus {
    Idle,
    LoadingWeights,
    ReadingPrompt,
    Generating { done: usize, of: usize },
}

/// Why the engine could not do what was asked. `Failed` carries the lower layers' message,
/// which names the file, tensor or token at fault.
#[derive(Clone, Debug, PartialEq)]
pub enum EngineError {
    /// The architecture is shown from its tensor names only; no forward pass exists for it.
    Unsupported,
    /// A command other than Load arrived before any model was loaded.
    NotLoaded,
    /// The loading was cancelled (by the user, or because another model was opened).
    Cancelled,
    /// A panic inside the model; the session was dropped and the next prompt loads again.
    Internal,
    Failed(String),
}

impl std::fmt::Display for EngineError {
    /// English, for the CLI and logs; the window translates the variants itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsupported => {
                write!(f, "Inference is not available for this architecture: only its tensors can be inspected.")
            }
            Self::NotLoaded => write!(f, "no model loaded for inference"),
            Self::Cancelled => write!(f, "loading was cancelled"),
            Self::Internal => write!(f, "the engine hit an internal error; run the prompt again to reload the model"),
            Self::Failed(message) => write!(f, "{message}"),
        }
    }
}

pub enum Event {
    Loaded {
        architecture: String,
        vocab: usize,
        is_moe: bool,
        codec: Arc<TextCodec>,
        /// The arithmetic quantized weights run in; None when nothing is quantized.
        arith: Option<quant_matvec::Arith>,
    },
    Status(EngineStatus),
    Snapshot(Box<Snapshot>),
    /// The logit lens asked for, and the forward count it belongs to.
    Lens {
        forwards: u64,
        lens: Arc<internals::Lens>,
    },
    Error(EngineError),
}

/// The UI's handle on the engine thread.
pub struct EngineHandle {
    tx: Sender<Command>,
    pub rx: Receiver<Event>,
    stop: Arc<AtomicBool>,
}

impl EngineHandle {
    pub fn spawn() -> Self {
        let (tx, commands) = channel::<Command>();
        let (events, rx) = channel::<Event>();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || engine_loop(commands, events, stop_flag))
            .expect("spawn the engine thread");
        Self { tx, rx, stop }
    }

    pub fn send(&self, c: Command) {
        self.stop.store(false, Ordering::Relaxed);
        let _ = self.tx.send(c);
    }

    /// Ends a running Generate after its current token.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Runs a forward pass on a rayon worker rather than on the calling thread. A decode step
/// makes ~200 matvec calls; from outside the pool each one parks the caller and wakes it
/// again (tens of µs in a VM), while from inside, the worker keeps half the rows and the
/// other worker steals the rest. Measured: about 20% off the matvec time of a token.
pub fn on_pool<R: Send>(forward: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| forward())
}

fn engine_loop(commands: Receiver<Command>, events: Sender<Event>, stop: Arc<AtomicBool>) {
    let mut session: Option<Session> = None;
    while let Ok(command) = commands.recv() {
        // A panic inside the model becomes an error; the next prompt loads afresh.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(&mut session, command, &events, &stop)));
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => {
                session = None;
                Some(EngineError::Internal)
            }
        };
        if let Some(e) = error {
            let _ = events.send(Event::Error(e));
        }
        let _ = events.send(Event::Status(EngineStatus::Idle));
    }
}

fn snapshot_of(s: &Session) -> Event {
    let pieces = s.tokens.iter().map(|&id| s.codec.piece(id)).collect();
    Event::Snapshot(Box::new(Snapshot {
        tokens: s.tokens.clone(),
        prompt_len: s.prompt_len,
        pieces,
        logits: s.current_logits().unwrap_or_default(),
        history: s.logits[..s.logits.len().saturating_sub(1)].to_vec(),
        routing: s.routing.clone(),
        shared_gate: s.shared_gate.clone(),
        forwards: s.forwards,
        text: s.codec.decode(&s.tokens[s.prompt_len..]),
        base_logits: s.base_logits(),
        internals: s.internals.clone(),
        base_internals: s.base_internals.clone(),
    }))
}

fn load(folder: &ModelFolder, control: &crate::analysis::Control) -> Result<Session, EngineError> {
    if folder.config.is_none() {
        return Err(EngineError::Unsupported);
    }
    if control.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    let session = Session::load_with(folder, control)
        .map_err(|e| if control.is_cancelled() { EngineError::Cancelled } else { EngineError::Failed(e) })?;
    if control.is_cancelled() {
        return Err(EngineError::Cancelled);
    }
    Ok(session)
}

fn handle(
    session: &mut Option<Session>,
    command: Command,
    events: &Sender<Event>,
    stop: &AtomicBool,
) -> Result<(), EngineError> {
    let status = |s: EngineStatus| {
        let _ = events.send(Event::Status(s));
    };
    match command {
        Command::Load { folder, control } => {
            *session = None;
            status(EngineStatus::LoadingWeights);
            let s = load(&folder, &control)?;
            let _ = events.send(Event::Loaded {
                architecture: s.model.cfg.architecture.clone(),
                vocab: s.model.cfg.vocab_size,
                is_moe: s.is_moe(),
                codec: Arc::clone(&s.codec),
                arith: s.quantized.then_some(s.model.arith),
            });
            *session = Some(s);
        }
        Command::Unload => *session = None,
        #[cfg(test)]
        Command::PanicForTest => panic!("a bug inside the model"),
        other => {
            let s = session.as_mut().ok_or(EngineError::NotLoaded)?;
            match other {
                Command::Load { .. } | Command::Unload => unreachable!("handled above"),
                #[cfg(test)]
                Command::PanicForTest => unreachable!("handled above"),
                Command::SetInternals(on) => s.set_internals(on).map_err(EngineError::Failed)?,
                Command::SetArith(arith) => {
                    s.set_arith(arith).map_err(EngineError::Failed)?;
                    if s.tokens.is_empty() {
                        return Ok(());
                    }
                }
                Command::Lens { position, base } => {
                    let lens = Arc::new(s.lens(position, base).map_err(EngineError::Failed)?);
                    let _ = events.send(Event::Lens { forwards: s.forwards, lens });
                    return Ok(());
                }
                Command::SetPrompt { text, chat } => {
                    status(EngineStatus::ReadingPrompt);
                    s.set_prompt(&text, chat).map_err(EngineError::Failed)?;
                }
                Command::Append(id) => s.append(id).map_err(EngineError::Failed)?,
                Command::StepBack => {
                    s.step_back().map_err(EngineError::Failed)?;
                }
                Command::SetAdapter(adapter) => {
                    s.set_adapter(adapter).map_err(EngineError::Failed)?;
                    if s.tokens.is_empty() {
                        return Ok(());
                    }
                }
                Command::Generate { n, params } => {
                    for done in 0..n {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        status(EngineStatus::Generating { done, of: n });
                        s.sample_next(&params).map_err(EngineError::Failed)?;
                        let _ = events.send(snapshot_of(s));
                    }
                    return Ok(());
                }
            }
            let _ = events.send(snapshot_of(s));
        }
    }
    Ok(())
}

#[cfg(test)]
mod recovery_tests {
    use super::*;

    fn wait_for(handle: &EngineHandle, what: &str, mut pick: impl FnMut(&Event) -> bool) {
        let deadline = std::time::Duration::from_secs(120);
        loop {
            match handle.rx.recv_timeout(deadline) {
                Ok(e) if pick(&e) => return,
                Ok(_) => {}
                Err(e) => panic!("no {what} from the engine: {e}"),
            }
        }
    }

    /// A panic inside a command (a bug in the model code) is reported as an internal error
    /// and drops the session; the same engine thread then loads and runs the next prompt.
    #[test]
    fn a_panic_inside_the_engine_is_reported_and_the_next_prompt_runs() {
        let folder = Arc::new(
            ModelFolder::open(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama"))
                .unwrap(),
        );
        let handle = EngineHandle::spawn();
        let load = || Command::Load { folder: Arc::clone(&folder), control: Arc::new(Control::new()) };
        handle.send(load());
        wait_for(&handle, "load", |e| matches!(e, Event::Loaded { .. }));
        // Silence the expected panic's message in the test output.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        handle.send(Command::PanicForTest);
        wait_for(&handle, "the internal error", |e| matches!(e, Event::Error(EngineError::Internal)));
        std::panic::set_hook(hook);
        // The session is gone: a prompt now is refused until the model loads again.
        handle.send(Command::SetPrompt { text: "The capital".into(), chat: false });
        wait_for(&handle, "the refusal", |e| matches!(e, Event::Error(EngineError::NotLoaded)));
        handle.send(load());
        handle.send(Command::SetPrompt { text: "The capital".into(), chat: false });
        wait_for(&handle, "a snapshot", |e| matches!(e, Event::Snapshot(s) if !s.tokens.is_empty()));
    }
}
