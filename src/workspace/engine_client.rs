//! The window's side of the engine thread: the handle, the latest snapshot, what the engine
//! is doing, and the numbers derived from a snapshot (distributions, the adapter comparison,
//! the generation table, routing), each computed once per snapshot and slider setting.
//!
//! The workspace polls this every frame whatever panel is showing, so events keep arriving
//! while the user looks at the weights.

use std::sync::Arc;

use crate::analysis::Control;
use crate::analysis::routing::{self, LayerRouting};
use crate::arch::ModelFolder;
use crate::engine::{Command, EngineError, EngineHandle, EngineStatus, Event, Snapshot, TextCodec};
use crate::sampling::{self, Distribution, SamplingParams};

/// What the engine reported when the weights were in.
#[derive(Clone)]
pub struct LoadedInfo {
    pub architecture: String,
    pub is_moe: bool,
    pub codec: Arc<TextCodec>,
    /// How quantized weights are multiplied; None when the model has none.
    pub arith: Option<crate::engine::quant_matvec::Arith>,
}

/// The base model's distribution beside the adapted one, and the tokens it moved most
/// (id, adapted − base).
pub type AdapterComparison = (Arc<Distribution>, Vec<(u32, f32)>);

/// Numbers computed from one snapshot under one slider setting.
pub struct Derived {
    /// The next-token distribution under the sliders.
    pub distribution: Arc<Distribution>,
    /// With an adapter: the base model's distribution under the same sliders, and the
    /// tokens whose probability moved most (id, adapted − base), largest change first.
    pub comparison: Option<AdapterComparison>,
    /// The probability each generated token had, under the current sliders.
    pub chosen_probs: Arc<Vec<f32>>,
    /// MoE routing of the whole sequence (empty for a dense model).
    pub routing: Arc<Vec<LayerRouting>>,
}

/// What a derived computation depends on: which forward pass produced the snapshot, how
/// long the sequence is, and the sliders.
type DerivedKey = (u64, usize, [u64; 6]);

fn key_of(snap: &Snapshot, p: &SamplingParams) -> DerivedKey {
    let params = [
        p.temperature.to_bits() as u64,
        p.top_k as u64,
        p.top_p.to_bits() as u64,
        p.min_p.to_bits() as u64,
        p.repetition_penalty.to_bits() as u64,
        p.seed,
    ];
    (snap.forwards, snap.tokens.len(), params)
}

#[derive(Default)]
pub struct EngineClient {
    handle: Option<EngineHandle>,
    /// The open model, loaded by the engine when a prompt first needs it.
    folder: Option<Arc<ModelFolder>>,
    /// Progress and cancel of the load in flight (None when nothing is loading).
    loading: Option<Arc<Control>>,
    /// Load was sent for the current folder (it may still be running).
    load_sent: bool,
    pub loaded: Option<LoadedInfo>,
    pub status: Option<EngineStatus>,
    pub error: Option<EngineError>,
    pub snapshot: Option<Arc<Snapshot>>,
    /// Whether the engine records attention and the residual stream (asked for by a panel).
    pub internals_on: bool,
    /// The last logit lens the engine sent, with the forward count it was computed after.
    pub lens: Option<(u64, Arc<crate::engine::internals::Lens>)>,
    /// A lens request in flight: (forward count, position, of the base model).
    pub lens_asked: Option<(u64, usize, bool)>,
    derived: Option<(DerivedKey, Derived)>,
    /// How many times derived numbers were computed: the slider test counts these against
    /// forward passes.
    pub recomputes: u64,
}

impl EngineClient {
    /// A new model was opened: forget the old one and cancel a load in progress. Nothing is
    /// read until a prompt runs.
    pub fn set_folder(&mut self, folder: Option<Arc<ModelFolder>>) {
        if let Some(control) = self.loading.take() {
            control.cancel();
        }
        if self.load_sent
            && let Some(h) = &self.handle
        {
            h.send(Command::Unload);
        }
        self.error = match folder.as_ref().map(|f| f.config.as_ref()) {
            Some(None) => Some(EngineError::Unsupported),
            Some(Some(cfg)) => cfg.inference_blocker().map(|why| EngineError::Failed(format!("config.json: {why}"))),
            None => None,
        };
        self.folder = folder;
        self.load_sent = false;
        self.loaded = None;
        self.status = None;
        self.snapshot = None;
        self.derived = None;
        self.internals_on = false;
        self.lens = None;
        self.lens_asked = None;
    }

    pub fn can_run(&self) -> bool {
        self.folder.as_ref().and_then(|f| f.config.as_ref()).is_some_and(|c| c.inference_blocker().is_none())
    }

    pub fn is_load_sent(&self) -> bool {
        self.load_sent
    }

    /// Asks the engine to load the open model; false if there is nothing it can run.
    pub fn start_load(&mut self) -> bool {
        let Some(folder) = self.folder.clone() else { return false };
        if !self.can_run() {
            return false;
        }
        let control = Arc::new(Control::new());
        self.loading = Some(Arc::clone(&control));
        self.status = Some(EngineStatus::LoadingWeights);
        self.handle.get_or_insert_with(EngineHandle::spawn).send(Command::Load { folder, control });
        self.load_sent = true;
        true
    }

    /// Sends a command to a model whose load was started ([`EngineClient::start_load`]).
    pub fn send(&mut self, command: Command) {
        if !self.load_sent {
            return;
        }
        if let Some(handle) = &self.handle {
            self.error = None;
            handle.send(command);
        }
    }

    /// Ends a running Generate after its current token.
    pub fn stop(&self) {
        if let Some(h) = &self.handle {
            h.stop();
        }
    }

    /// Cancels the load in flight; the next prompt tries again.
    pub fn cancel_load(&mut self) {
        if let Some(control) = self.loading.take() {
            control.cancel();
        }
        self.load_sent = false;
    }

    /// Progress of the load in flight, 0..1.
    pub fn load_progress(&self) -> Option<f32> {
        self.loading.as_ref().map(|c| c.fraction())
    }

    pub fn is_busy(&self) -> bool {
        matches!(self.status, Some(s) if s != EngineStatus::Idle)
    }

    /// Takes the engine's events; true if anything changed.
    pub fn poll(&mut self) -> bool {
        let Some(handle) = &self.handle else { return false };
        let mut changed = false;
        while let Ok(event) = handle.rx.try_recv() {
            changed = true;
            match event {
                // A model opened since this load was asked for: its Unload is on the way.
                Event::Loaded { .. } if !self.load_sent => {}
                Event::Loaded { architecture, is_moe, codec, arith, .. } => {
                    self.loading = None;
                    self.loaded = Some(LoadedInfo { architecture, is_moe, codec, arith });
                }
                Event::Status(s) => self.status = Some(s),
                Event::Snapshot(s) => self.snapshot = Some(Arc::from(s)),
                Event::Lens { forwards, lens } => self.lens = Some((forwards, lens)),
                // Cancelled on purpose (another model, or the Cancel button): nothing to report.
                Event::Error(EngineError::Cancelled) if self.loading.is_none() => {}
                Event::Error(e) => {
                    if self.loaded.is_none() {
                        // A failed or cancelled load: the next prompt loads again.
                        self.loading = None;
                        self.load_sent = false;
                    }
                    self.error = Some(e);
                }
            }
        }
        changed
    }

    /// Recomputes the derived numbers if the snapshot or the sliders changed.
    pub fn derive(&mut self, params: &SamplingParams, moe: Option<(usize, bool)>) {
        let Some(snap) = &self.snapshot else {
            self.derived = None;
            return;
        };
        let key = key_of(snap, params);
        if self.derived.as_ref().is_some_and(|(k, _)| *k == key) {
            return;
        }
        self.recomputes += 1;
        let distribution = Arc::new(sampling::distribution(&snap.logits, &snap.tokens, params));
        let comparison = snap.base_logits.as_ref().map(|base| {
            let b = Arc::new(sampling::distribution(base, &snap.tokens, params));
            let mut moved: Vec<(u32, f32)> =
                (0..distribution.probs.len()).map(|i| (i as u32, distribution.probs[i] - b.probs[i])).collect();
            let keep = 8.min(moved.len());
            if keep > 0 {
                moved.select_nth_unstable_by(keep - 1, |x, y| y.1.abs().total_cmp(&x.1.abs()));
                moved.truncate(keep);
                moved.sort_by(|x, y| y.1.abs().total_cmp(&x.1.abs()));
            }
            (b, moved)
        });
        let routing = match moe {
            Some((top_k, norm)) => Arc::new(routing::summarize(&snap.routing, &snap.shared_gate, top_k, norm)),
            None => Arc::new(Vec::new()),
        };
        let derived = Derived { distribution, comparison, chosen_probs: Arc::new(chosen_probs(snap, params)), routing };
        self.derived = Some((key, derived));
    }

    pub fn derived(&self) -> Option<&Derived> {
        self.derived.as_ref().map(|(_, d)| d)
    }

    pub fn forwards(&self) -> u64 {
        self.snapshot.as_ref().map(|s| s.forwards).unwrap_or(0)
    }
}

/// The probability each generated token had, under `params`.
pub fn chosen_probs(snap: &Snapshot, params: &SamplingParams) -> Vec<f32> {
    snap.history
        .iter()
        .enumerate()
        .map(|(step, logits)| {
            let upto = snap.prompt_len + step;
            let next = snap.tokens[upto];
            sampling::distribution(logits, &snap.tokens[..upto], params).probs[next as usize]
        })
        .collect()
}
