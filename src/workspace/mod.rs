//! What the window is about, without the window: the open model, the selection, the one
//! active adapter, the settings, the running jobs and the engine client.
//!
//! Panels read a `&Workspace` and return [`Action`]s; the shell hands those to
//! [`Workspace::apply`] and calls [`Workspace::poll`] once per frame. Nothing here imports
//! egui, so every behaviour below is testable without a window (`tests/workspace.rs`).

pub mod engine_client;
pub mod settings;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::analysis::blocks::{BlockSummary, block_summary};
use crate::analysis::cast::{CastReport, CastTarget, cast_report};
use crate::analysis::lora_figures::LoraFigures;
use crate::analysis::lowrank::{self, DeltaSummary};
use crate::analysis::stats::{DataView, TensorStats, compute_stats};
use crate::arch::{ModelFolder, ModuleTree, ROOT};
use crate::engine::Command;
use crate::engine::precision::{Precision, PrecisionReport, compare as compare_precisions};
use crate::jobs::{Job, KeyedJobs, Poll};
use crate::lora::{LoraAdapter, LoraModule};

pub use engine_client::{EngineClient, LoadedInfo};
pub use settings::{HistogramSettings, Lang, Settings};

/// A prompt the demo model completes (its corpus teaches capitals).
pub const DEMO_PROMPT: &str = "The capital of France is";
const MAX_RECENT: usize = 8;

/// What the inspector shows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Selection {
    None,
    /// A module, by node id in the model's tree.
    Module(usize),
    /// A stored tensor, by checkpoint name.
    Tensor(String),
}

/// The open model as the window shows it: the folder, the tree on screen (the folder's own,
/// or the PEFT-wrapped one with an adapter) and the per-node facts every frame needs,
/// computed once.
pub struct TreeView {
    pub folder: Arc<ModelFolder>,
    pub tree: ModuleTree,
    pub param_counts: Vec<u64>,
    /// Folded runs of identical children for every ModuleList node, as print(model) folds them.
    pub fold_groups: HashMap<usize, Vec<(usize, usize)>>,
    pub repr: String,
}

impl TreeView {
    pub fn new(folder: Arc<ModelFolder>, tree: ModuleTree) -> Self {
        let reprs = tree.all_reprs();
        let fold_groups = tree
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.is_list)
            .map(|(id, _)| (id, tree.fold_groups_with(id, &|c| reprs[c].clone())))
            .collect();
        Self { param_counts: tree.all_param_counts(), fold_groups, repr: reprs[ROOT].clone(), folder, tree }
    }

    /// The dotted path of a node, or its class for the root: what export file names start with.
    pub fn node_name(&self, id: usize) -> String {
        let node = &self.tree.nodes[id];
        if node.path.is_empty() { node.class_name.clone() } else { node.path.clone() }
    }
}

/// The adapter the engine runs with and the tree shows. Exactly one place holds it.
#[derive(Clone)]
pub struct ActiveAdapter {
    pub adapter: Arc<LoraAdapter>,
    /// What ΔW is multiplied by in the engine: 0 = base model, 1 = as trained.
    pub strength: f64,
    /// Changes with every activation, so cached ΔW figures of another adapter never show.
    pub epoch: u64,
}

/// Something the user must see, worded where it is drawn. The strings are the lower layers'
/// messages, which name the file, key or tensor at fault.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    Open(String),
    Adapter(String),
    AdapterWithoutModel,
    UnknownName(String),
    Export(String),
}

/// Everything a panel, the menu or a shortcut can ask for.
#[derive(Clone, Debug)]
pub enum Action {
    Open(PathBuf),
    Select(Selection),
    /// Select a tensor or module by dotted name and reveal it in the tree.
    SelectByName(String),
    OpenAdapter(PathBuf),
    /// Make one of the loaded adapters active (by index into `adapters`), or none.
    ActivateAdapter(Option<usize>),
    UnloadActiveAdapter,
    SetAdapterStrength(f64),
    /// Exact or llama.cpp arithmetic for the loaded model's quantized weights.
    SetArith(crate::engine::quant_matvec::Arith),
    Settings(Box<Settings>),
    RecomputeStats,
    CancelStats,
    RequestCast {
        tensor: String,
        to: CastTarget,
    },
    CancelCast,
    /// Scales, codes and the largest-scale block of a quantized tensor (a full pass).
    RequestBlockSummary(String),
    /// The current prompt in two precisions of the open model, compared step by step.
    RequestPrecision(Precision, Precision),
    CancelPrecision,
    ListBinValues {
        tensor: String,
        lo: f64,
        hi: f64,
    },
    RequestLoraFigures(String),
    RequestLoraTable,
    EditPrompt {
        text: String,
        chat: bool,
    },
    RunPrompt,
    Generate(usize),
    Force(u32),
    StepBack,
    StopGenerating,
    CancelLoad,
    /// Open a second model beside the first, to diff against it.
    OpenOther(PathBuf),
    /// Per-layer figures of every repeated tensor role (Compare panel).
    RequestSweep,
    /// The open model against the second one, tensor by tensor.
    RequestDiff,
    /// Add a tensor (of this model or the second) to the overlaid histograms (at most
    /// [`crate::analysis::overlay::MAX_SERIES`]; the oldest goes first).
    AddToOverlay(OverlayEntry),
    RemoveFromOverlay(usize),
    RequestOverlay,
    /// The histogram of B − A for one tensor of the diff.
    RequestDeltaHistogram(String),
    /// A panel that shows attention or the residual stream is open: record them.
    WantInternals,
    /// The logit lens at this position of the current sequence (of the model
    /// [`Workspace::show_base`] picks).
    LensAt(usize),
    /// With an adapter: show the base model's attention and lens instead of the adapted one's.
    ShowBase(bool),
    /// Look for models in the Hugging Face cache, Ollama and LM Studio (on a worker).
    ScanLibrary,
    Exported(PathBuf),
    Report(Problem),
    DismissProblems,
}

/// Key of a cached LoRA figure: (adapter epoch, module).
pub type LoraKey = (u64, String);
/// A precision what-if: (A, B, prompt, chat template).
pub type PrecisionKey = (Precision, Precision, String, bool);

/// Results by key, computed on workers; see [`KeyedJobs`].
#[derive(Default)]
pub struct Jobs {
    /// Statistics by (selection, bins).
    pub stats: KeyedJobs<(Selection, usize), TensorStats>,
    /// Whole-tensor cast reports by (tensor, target format).
    pub casts: KeyedJobs<(String, CastTarget), CastReport>,
    /// Quantized tensors block by block, by tensor.
    pub block_summaries: KeyedJobs<String, BlockSummary>,
    /// Elements found in a clicked histogram bin, by (tensor, bits of bin start, bits of bin end).
    pub bin_values: KeyedJobs<(String, u64, u64), Vec<(usize, f64)>>,
    pub lora: KeyedJobs<LoraKey, Arc<LoraFigures>>,
    /// ‖ΔW‖ / ‖W‖ for every adapted module, by adapter epoch.
    pub lora_table: KeyedJobs<u64, Arc<Vec<DeltaSummary>>>,
    /// Layer sweeps of the open model (one key: they cover every role).
    pub sweep: KeyedJobs<(), Arc<Sweep>>,
    /// The diff against the second model, by its path.
    pub diff: KeyedJobs<PathBuf, Arc<crate::analysis::compare::Diff>>,
    /// Whole-model precision what-ifs, by (A, B, prompt, chat).
    pub precision: KeyedJobs<PrecisionKey, Arc<PrecisionReport>>,
    /// The second model, opened on a worker.
    pub other: KeyedJobs<PathBuf, Arc<ModelFolder>>,
    /// Histograms of B − A, by (the second model's path, tensor).
    pub delta_hist: KeyedJobs<(PathBuf, String), crate::analysis::stats::Histogram>,
    /// Overlaid histograms, by (entries, the second model's path).
    pub overlay: KeyedJobs<OverlayKey, Arc<crate::analysis::overlay::Overlay>>,
}

/// One tensor of the overlaid histograms: this model's, or (with `second`) the second model's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OverlayEntry {
    pub tensor: String,
    pub second: bool,
}

pub type OverlayKey = (Vec<OverlayEntry>, Option<PathBuf>);

/// Bins of the overlaid histograms: fewer than a single histogram's, so four outlines stay
/// apart.
pub const OVERLAY_BINS: usize = 80;

/// Every repeated tensor role's per-layer figures.
pub type Sweep = std::collections::BTreeMap<String, Vec<crate::analysis::compare::LayerFigure>>;

impl Jobs {
    fn clear(&mut self) {
        self.stats.clear();
        self.casts.clear();
        self.block_summaries.clear();
        self.precision.clear();
        self.bin_values.clear();
        self.lora.clear();
        self.lora_table.clear();
        self.sweep.clear();
        self.diff.clear();
        self.overlay.clear();
        self.delta_hist.clear();
    }

    fn poll(&mut self) -> bool {
        // Every queue is polled: `|` rather than `||`.
        self.stats.poll()
            | self.casts.poll()
            | self.block_summaries.poll()
            | self.precision.poll()
            | self.bin_values.poll()
            | self.lora.poll()
            | self.lora_table.poll()
            | self.sweep.poll()
            | self.diff.poll()
            | self.other.poll()
            | self.overlay.poll()
            | self.delta_hist.poll()
    }
}

pub struct Workspace {
    pub model: Option<TreeView>,
    pub selection: Selection,
    /// Every adapter opened for this model; at most one is active.
    pub adapters: Vec<Arc<LoraAdapter>>,
    pub active: Option<ActiveAdapter>,
    pub settings: Settings,
    pub jobs: Jobs,
    /// The last histogram bin whose values were asked for.
    pub bin_query: Option<(String, u64, u64)>,
    pub engine: EngineClient,
    /// The prompt being edited (shared by every panel that runs one).
    pub prompt: String,
    pub chat: bool,
    /// Run the prompt as soon as a model is open (`--prompt` on the command line).
    pub run_when_open: bool,
    pub problems: Vec<Problem>,
    pub recent: Vec<PathBuf>,
    pub last_export: Option<PathBuf>,
    /// A name the tree should show, with a counter so the same name can be revealed twice.
    pub reveal: Option<(u64, String)>,
    /// The second model's path (Compare panel), once asked for.
    pub other_path: Option<PathBuf>,
    /// The tensors of the overlaid histograms (Compare panel), oldest first.
    pub overlay: Vec<OverlayEntry>,
    /// The Attention and Logit lens tabs show the base model's pass (an adapter is attached).
    pub show_base: bool,
    /// The models found on this machine, once a scan has finished (see [`Action::ScanLibrary`]).
    pub library: Option<Vec<crate::library::Entry>>,
    library_scan: Option<Job<Vec<crate::library::Entry>>>,
    /// Bumped whenever the model or its tree changes: panels reset their view state on it.
    pub epoch: u64,
    opening: Option<(PathBuf, Job<ModelFolder>)>,
    pending_select: Option<String>,
    pending_adapter: Option<PathBuf>,
    pending_other: Option<PathBuf>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self {
            model: None,
            selection: Selection::None,
            adapters: Vec::new(),
            active: None,
            settings: Settings::default(),
            jobs: Jobs::default(),
            bin_query: None,
            engine: EngineClient::default(),
            prompt: "The model has weights".into(),
            chat: false,
            run_when_open: false,
            problems: Vec::new(),
            recent: Vec::new(),
            last_export: None,
            reveal: None,
            other_path: None,
            overlay: Vec::new(),
            show_base: false,
            library: None,
            library_scan: None,
            epoch: 0,
            opening: None,
            pending_select: None,
            pending_adapter: None,
            pending_other: None,
        }
    }
}

impl Workspace {
    /// The demo model shipped in assets/ (made by `train-demo`), if this checkout has it.
    pub fn bundled_demo() -> Option<PathBuf> {
        let folder = crate::demo::demo_folder();
        folder.join("config.json").is_file().then_some(folder)
    }

    /// What to do once the next model is open (from the command line): select a tensor,
    /// attach an adapter, open a second model to compare with (and, with a tensor selected,
    /// overlay its histograms from both).
    pub fn after_open(&mut self, select: Option<String>, adapter: Option<PathBuf>, compare_with: Option<PathBuf>) {
        self.pending_select = select;
        self.pending_adapter = adapter;
        self.pending_other = compare_with;
    }

    pub fn is_scanning_library(&self) -> bool {
        self.library_scan.is_some()
    }

    pub fn is_opening(&self) -> bool {
        self.opening.is_some()
    }

    /// Starts opening a folder on a worker; the current model stays until it succeeds.
    pub fn open_in_background(&mut self, path: PathBuf) {
        let p = path.clone();
        self.opening = Some((path, Job::spawn("open-folder", move |_| ModelFolder::open(&p))));
    }

    /// Opens on the calling thread. Headers only, so this is quick: tests and start-up use it.
    pub fn open_blocking(&mut self, path: &Path) {
        match ModelFolder::open(path) {
            Ok(folder) => self.set_model(path, folder),
            Err(e) => self.problems.push(Problem::Open(e.to_string())),
        }
    }

    fn set_model(&mut self, path: &Path, folder: ModelFolder) {
        self.jobs.clear();
        self.overlay.clear();
        self.bin_query = None;
        self.selection = Selection::None;
        let folder = Arc::new(folder);
        self.model = Some(TreeView::new(Arc::clone(&folder), folder.tree.clone()));
        self.epoch += 1;
        self.engine.set_folder(Some(folder));
        self.active = None;
        self.adapters.clear();
        if let Some(a) = self.pending_adapter.take() {
            self.open_adapter(&a);
        }
        if let Some(name) = self.pending_select.take() {
            self.select_by_name(&name);
        }
        if let Some(other) = self.pending_other.take() {
            self.apply(Action::OpenOther(other));
            if let Selection::Tensor(t) = self.selection.clone() {
                for second in [false, true] {
                    self.overlay.push(OverlayEntry { tensor: t.clone(), second });
                }
            }
        }
        if std::mem::take(&mut self.run_when_open) {
            self.run_prompt();
        }
        let path = path.to_path_buf();
        self.recent.retain(|p| *p != path);
        self.recent.insert(0, path);
        self.recent.truncate(MAX_RECENT);
    }

    /// Attaches a LoRA adapter (PEFT folder or .pth): the tree becomes the PEFT-wrapped one
    /// and the engine runs with ΔW added. Errors leave things as they were.
    pub fn open_adapter(&mut self, path: &Path) {
        let Some(model) = &self.model else {
            self.problems.push(Problem::AdapterWithoutModel);
            return;
        };
        match LoraAdapter::open(path, &model.folder, None) {
            Ok(adapter) => {
                let adapter = Arc::new(adapter);
                self.adapters.retain(|a| a.source != adapter.source);
                self.adapters.push(Arc::clone(&adapter));
                self.activate_adapter(Some(adapter));
            }
            Err(e) => self.problems.push(Problem::Adapter(e)),
        }
    }

    /// Makes one of the loaded adapters active (None: the base model alone).
    pub fn activate_adapter(&mut self, adapter: Option<Arc<LoraAdapter>>) {
        let Some(model) = &self.model else { return };
        let folder = Arc::clone(&model.folder);
        let tree = match &adapter {
            Some(a) => crate::arch::peft::wrap(&folder.tree, a),
            None => folder.tree.clone(),
        };
        self.model = Some(TreeView::new(folder, tree));
        self.epoch += 1;
        self.selection = Selection::None;
        self.jobs.stats.clear();
        self.active = adapter.map(|adapter| ActiveAdapter { adapter, strength: 1.0, epoch: self.epoch });
        self.send_adapter();
    }

    /// Tells a loaded engine about the active adapter; an engine not loaded yet is told
    /// right after its load (see [`Workspace::engine_send`]).
    fn send_adapter(&mut self) {
        if self.engine.is_load_sent() {
            let adapter = self.engine_adapter();
            self.engine.send(Command::SetAdapter(adapter));
        }
    }

    fn engine_adapter(&self) -> Option<(Arc<LoraAdapter>, f64)> {
        self.active.as_ref().map(|a| (Arc::clone(&a.adapter), a.strength))
    }

    /// Sends a command to the engine, loading the weights first when this is the first
    /// command for the open model.
    fn engine_send(&mut self, command: Command) {
        if !self.engine.is_load_sent() && self.engine.start_load() {
            if self.active.is_some() {
                let adapter = self.engine_adapter();
                self.engine.send(Command::SetAdapter(adapter));
            }
            if self.engine.internals_on {
                self.engine.send(Command::SetInternals(true));
            }
        }
        self.engine.send(command);
    }

    pub fn run_prompt(&mut self) {
        let (text, chat) = (self.prompt.clone(), self.chat);
        self.engine_send(Command::SetPrompt { text, chat });
    }

    /// Removes the active adapter from the list; the base model is shown again.
    pub fn unload_active_adapter(&mut self) {
        let Some(active) = self.active.clone() else { return };
        self.adapters.retain(|a| !Arc::ptr_eq(a, &active.adapter));
        self.activate_adapter(None);
    }

    /// The adapter module behind a tree node: the lora.Linear itself or anything inside it.
    pub fn adapted_module(&self, node: usize) -> Option<&LoraModule> {
        let adapter = &self.active.as_ref()?.adapter;
        let mut path = self.model.as_ref()?.tree.nodes.get(node)?.path.as_str();
        path = path.strip_prefix("base_model.model.").unwrap_or(path);
        adapter.modules.iter().find(|m| path == m.module || path.starts_with(&format!("{}.", m.module)))
    }

    /// Selects a stored tensor or a module by its dotted name and asks the tree to reveal it.
    pub fn select_by_name(&mut self, name: &str) {
        let Some(model) = &self.model else { return };
        let found = if model.folder.checkpoint.tensor(name).is_some() {
            Some(Selection::Tensor(name.to_string()))
        } else {
            // With an adapter the tree is PEFT's: `model.layers.0.mlp` lives under
            // `base_model.model.`, and the base model's names should still work.
            model
                .tree
                .find(name)
                .or_else(|| model.tree.find(&format!("base_model.model.{name}")))
                .map(Selection::Module)
        };
        match found {
            Some(selection) => {
                self.selection = selection;
                let n = self.reveal.as_ref().map(|(n, _)| n + 1).unwrap_or(0);
                self.reveal = Some((n, name.to_string()));
            }
            None => self.problems.push(Problem::UnknownName(name.to_string())),
        }
    }

    pub fn stats_key(&self) -> (Selection, usize) {
        (self.selection.clone(), self.settings.histogram.bins)
    }

    /// Statistics for the current selection, once computed.
    pub fn current_stats(&self) -> Option<&Result<TensorStats, String>> {
        self.jobs.stats.get(&self.stats_key())
    }

    pub fn stats_progress(&self) -> Option<f32> {
        self.jobs.stats.progress(&self.stats_key())
    }

    /// One stored element of a tensor, widened to f64 (None if out of range). A single read
    /// from the mmap, so panels may call it while drawing.
    pub fn element(&self, tensor: &str, index: usize) -> Option<f64> {
        let ckpt = &self.model.as_ref()?.folder.checkpoint;
        ckpt.element(ckpt.tensor(tensor)?, index)
    }

    /// The data behind a selection: one tensor, or every tensor a module owns (tied ones once).
    pub fn tensor_names(&self, selection: &Selection) -> Vec<String> {
        let Some(model) = &self.model else { return Vec::new() };
        match selection {
            Selection::None => Vec::new(),
            Selection::Tensor(name) => vec![name.clone()],
            Selection::Module(id) => {
                let tree = &model.tree;
                let mut names: Vec<String> = tree
                    .descendants(*id)
                    .iter()
                    .flat_map(|&n| tree.nodes[n].params.iter().map(|p| p.tensor.clone()))
                    .collect();
                let mut seen = std::collections::HashSet::new();
                names.retain(|n| seen.insert(n.clone()));
                names
            }
        }
    }

    pub fn lora_key(&self, module: &str) -> Option<LoraKey> {
        Some((self.active.as_ref()?.epoch, module.to_string()))
    }

    /// The ΔW figures of one adapted module, once its job is done.
    pub fn lora_figures(&self, module: &str) -> Option<&Result<Arc<LoraFigures>, String>> {
        self.jobs.lora.get(&self.lora_key(module)?)
    }

    pub fn lora_table(&self) -> Option<&Result<Arc<Vec<DeltaSummary>>, String>> {
        self.jobs.lora_table.get(&self.active.as_ref()?.epoch)
    }

    /// Carries out what a panel or the menu asked for.
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Open(path) => self.open_in_background(path),
            Action::Select(selection) => self.selection = selection,
            Action::SelectByName(name) => self.select_by_name(&name),
            Action::OpenAdapter(path) => self.open_adapter(&path),
            Action::ActivateAdapter(index) => {
                let adapter = index.and_then(|i| self.adapters.get(i).cloned());
                self.activate_adapter(adapter);
            }
            Action::UnloadActiveAdapter => self.unload_active_adapter(),
            Action::SetAdapterStrength(strength) => {
                if let Some(a) = &mut self.active {
                    a.strength = strength;
                    self.send_adapter();
                }
            }
            Action::SetArith(arith) => {
                if let Some(l) = self.engine.loaded.as_mut().filter(|l| l.arith.is_some_and(|a| a != arith)) {
                    l.arith = Some(arith);
                    self.engine.send(Command::SetArith(arith));
                }
            }
            Action::Settings(settings) => self.settings = *settings,
            Action::RecomputeStats => {
                let key = self.stats_key();
                self.jobs.stats.forget(&key);
            }
            Action::CancelStats => self.jobs.stats.cancel(),
            Action::RequestCast { tensor, to } => self.request_cast(tensor, to),
            Action::CancelCast => self.jobs.casts.cancel(),
            Action::RequestBlockSummary(tensor) => self.request_block_summary(tensor),
            Action::RequestPrecision(a, b) => self.request_precision(a, b),
            Action::CancelPrecision => self.jobs.precision.cancel(),
            Action::ListBinValues { tensor, lo, hi } => self.list_bin_values(tensor, lo, hi),
            Action::RequestLoraFigures(module) => self.request_lora_figures(&module),
            Action::RequestLoraTable => self.request_lora_table(),
            Action::EditPrompt { text, chat } => {
                self.prompt = text;
                self.chat = chat;
            }
            Action::RunPrompt => self.run_prompt(),
            Action::Generate(n) => {
                let params = self.settings.sampling;
                self.engine_send(Command::Generate { n, params });
            }
            Action::Force(id) => self.engine_send(Command::Append(id)),
            Action::StepBack => self.engine_send(Command::StepBack),
            Action::StopGenerating => self.engine.stop(),
            Action::CancelLoad => self.engine.cancel_load(),
            Action::WantInternals => {
                if !self.engine.internals_on && self.engine.can_run() {
                    self.engine.internals_on = true;
                    // Not a reason to load the weights: a model not loaded yet records from
                    // its first prompt on (see `engine_send`).
                    if self.engine.is_load_sent() {
                        self.engine.send(Command::SetInternals(true));
                    }
                }
            }
            Action::LensAt(position) => {
                let base = self.show_base && self.active.is_some();
                let key = (self.engine.forwards(), position, base);
                if self.engine.lens_asked != Some(key) {
                    self.engine.lens_asked = Some(key);
                    self.engine_send(Command::Lens { position, base });
                }
            }
            Action::ShowBase(base) => self.show_base = base,
            Action::OpenOther(path) => {
                let p = path.clone();
                self.jobs
                    .other
                    .ensure(&path, move || Job::spawn("open-other", move |_| ModelFolder::open(&p).map(Arc::new)));
                self.other_path = Some(path);
            }
            Action::RequestSweep => {
                let Some(model) = &self.model else { return };
                let folder = Arc::clone(&model.folder);
                self.jobs.sweep.ensure(&(), move || {
                    Job::spawn("sweep", move |ctl| {
                        crate::analysis::compare::sweep(&folder.checkpoint, None, ctl).map(Arc::new)
                    })
                });
            }
            Action::RequestDiff => self.request_diff(),
            Action::AddToOverlay(entry) => {
                if !self.overlay.contains(&entry) {
                    if self.overlay.len() == crate::analysis::overlay::MAX_SERIES {
                        self.overlay.remove(0);
                    }
                    self.overlay.push(entry);
                }
                self.request_overlay();
            }
            Action::RequestOverlay => self.request_overlay(),
            Action::RequestDeltaHistogram(tensor) => {
                let (Some(model), Some(Ok(other)), Some(path)) =
                    (&self.model, self.other_model(), self.other_path.clone())
                else {
                    return;
                };
                let (a, b) = (Arc::clone(&model.folder), Arc::clone(other));
                self.jobs.delta_hist.ensure(&(path, tensor.clone()), move || {
                    Job::spawn("delta-histogram", move |_| {
                        crate::analysis::compare::delta_histogram(&a.checkpoint, &b.checkpoint, &tensor, OVERLAY_BINS)
                    })
                });
            }
            Action::RemoveFromOverlay(i) => {
                if i < self.overlay.len() {
                    self.overlay.remove(i);
                }
                self.request_overlay();
            }
            Action::ScanLibrary => {
                if self.library_scan.is_none() {
                    self.library_scan =
                        Some(Job::spawn("library", |_| -> Result<_, String> { Ok(crate::library::scan()) }));
                }
            }
            Action::Exported(path) => self.last_export = Some(path),
            Action::Report(problem) => self.problems.push(problem),
            Action::DismissProblems => self.problems.clear(),
        }
    }

    /// Polls the open job, the workers and the engine, and starts the statistics the
    /// selection needs. Called once per frame; true while something is still running (the
    /// shell keeps repainting).
    pub fn poll(&mut self) -> bool {
        let mut busy = false;
        if let Some((path, job)) = &self.opening {
            match job.poll() {
                Poll::Running => busy = true,
                Poll::Done(result) => {
                    let path = path.clone();
                    self.opening = None;
                    match result {
                        Ok(folder) => self.set_model(&path, folder),
                        Err(e) => self.problems.push(Problem::Open(e)),
                    }
                }
            }
        }
        busy |= self.jobs.poll();
        if let Some(job) = &self.library_scan {
            match job.poll() {
                Poll::Running => busy = true,
                Poll::Done(found) => {
                    self.library = Some(found.unwrap_or_default());
                    self.library_scan = None;
                }
            }
        }
        if self.selection != Selection::None
            && let Some(model) = &self.model
        {
            let key = self.stats_key();
            let names = self.tensor_names(&key.0);
            let folder = Arc::clone(&model.folder);
            busy |= self.jobs.stats.ensure(&key, || start_stats(folder, names, key.1));
        }
        self.engine.poll();
        let moe = self
            .model
            .as_ref()
            .and_then(|m| m.folder.config.as_ref())
            .and_then(|c| c.moe.as_ref())
            .map(|m| (m.top_k, m.norm_topk_prob));
        self.engine.derive(&self.settings.sampling, moe);
        busy | self.engine.is_busy()
    }

    /// Blocks until the running workers are done (tests and benchmarks only).
    pub fn wait_for_jobs(&mut self) {
        self.poll();
        self.jobs.stats.wait();
        self.jobs.casts.wait();
        self.jobs.block_summaries.wait();
        self.jobs.precision.wait();
        self.jobs.lora.wait();
        self.jobs.lora_table.wait();
        self.jobs.bin_values.wait();
    }

    /// Steps a precision what-if compares: enough for a sentence to part ways.
    pub const PRECISION_STEPS: usize = 16;

    /// The key of the precision what-if for the current prompt.
    pub fn precision_key(&self, a: Precision, b: Precision) -> PrecisionKey {
        (a, b, self.prompt.clone(), self.chat)
    }

    fn request_precision(&mut self, a: Precision, b: Precision) {
        let Some(model) = &self.model else { return };
        let folder = Arc::clone(&model.folder);
        let key = self.precision_key(a, b);
        let (a, b, prompt, chat) = key.clone();
        self.jobs.precision.ensure(&key, move || {
            Job::spawn("precision", move |ctl| -> Result<Arc<PrecisionReport>, String> {
                compare_precisions(&folder, &prompt, chat, (&a, &b), Self::PRECISION_STEPS, ctl).map(Arc::new)
            })
        });
    }

    fn request_block_summary(&mut self, tensor: String) {
        let Some(model) = &self.model else { return };
        let folder = Arc::clone(&model.folder);
        self.jobs.block_summaries.ensure(&tensor.clone(), move || {
            Job::spawn("blocks", move |ctl| -> Result<BlockSummary, String> {
                let ckpt = &folder.checkpoint;
                let t = ckpt.require(&tensor).map_err(|e| e.to_string())?;
                let e = ckpt.gguf_entry(&tensor).ok_or_else(|| format!("{tensor}: not a GGUF tensor"))?;
                block_summary(e.ggml_type, ckpt.bytes(t), ctl).map_err(|e| e.to_string())?.map_err(|e| e.to_string())
            })
        });
    }

    /// Starts the cast what-if of a tensor (on demand: it is a full pass).
    fn request_cast(&mut self, tensor: String, to: CastTarget) {
        let Some(model) = &self.model else { return };
        let key = (tensor.clone(), to);
        let folder = Arc::clone(&model.folder);
        self.jobs.casts.ensure(&key, move || {
            Job::spawn("cast", move |ctl| -> Result<CastReport, String> {
                let ckpt = &folder.checkpoint;
                let t = ckpt.require(&tensor).map_err(|e| e.to_string())?;
                cast_report(&[DataView { dtype: t.dtype, bytes: ckpt.bytes(t) }], to, ctl).map_err(|e| e.to_string())
            })
        });
    }

    /// Lists (on a worker) the first elements of a tensor whose values fall in [lo, hi].
    fn list_bin_values(&mut self, tensor: String, lo: f64, hi: f64) {
        let Some(model) = &self.model else { return };
        let key = (tensor.clone(), lo.to_bits(), hi.to_bits());
        let folder = Arc::clone(&model.folder);
        self.jobs.bin_values.ensure(&key, move || {
            Job::spawn("bin-values", move |ctl| -> Result<Vec<(usize, f64)>, String> {
                let ckpt = &folder.checkpoint;
                let t = ckpt.require(&tensor).map_err(|e| e.to_string())?;
                Ok(crate::analysis::stats::values_in_range(t.dtype, ckpt.bytes(t), lo, hi, 24, ctl))
            })
        });
        self.bin_query = Some(key);
    }

    /// The second model, once open.
    pub fn other_model(&self) -> Option<&Result<Arc<ModelFolder>, String>> {
        self.jobs.other.get(self.other_path.as_ref()?)
    }

    pub fn current_diff(&self) -> Option<&Result<Arc<crate::analysis::compare::Diff>, String>> {
        self.jobs.diff.get(self.other_path.as_ref()?)
    }

    fn request_diff(&mut self) {
        let (Some(model), Some(Ok(other)), Some(path)) = (&self.model, self.other_model(), self.other_path.clone())
        else {
            return;
        };
        let (a, b) = (Arc::clone(&model.folder), Arc::clone(other));
        self.jobs.diff.ensure(&path, move || {
            Job::spawn("diff", move |ctl| {
                crate::analysis::compare::diff(&a.checkpoint, &b.checkpoint, ctl).map(Arc::new)
            })
        });
    }

    /// The histogram of B − A for `tensor`, once computed.
    pub fn delta_histogram(&self, tensor: &str) -> Option<&Result<crate::analysis::stats::Histogram, String>> {
        self.jobs.delta_hist.get(&(self.other_path.clone()?, tensor.to_string()))
    }

    fn overlay_key(&self) -> OverlayKey {
        (self.overlay.clone(), self.other_path.clone())
    }

    /// The overlaid histograms of [`Workspace::overlay`], once computed.
    pub fn current_overlay(&self) -> Option<&Result<Arc<crate::analysis::overlay::Overlay>, String>> {
        if self.overlay.is_empty() {
            return None;
        }
        self.jobs.overlay.get(&self.overlay_key())
    }

    pub fn overlay_progress(&self) -> Option<f32> {
        self.jobs.overlay.progress(&self.overlay_key())
    }

    fn request_overlay(&mut self) {
        let Some(model) = &self.model else { return };
        if self.overlay.is_empty() {
            return;
        }
        let this = Arc::clone(&model.folder);
        let other = match self.other_model() {
            Some(Ok(o)) => Some(Arc::clone(o)),
            // Still opening: the panel asks again each frame until it is there.
            None if self.other_path.is_some() && self.overlay.iter().any(|e| e.second) => return,
            _ => None,
        };
        let (entries, other_name) = (self.overlay.clone(), self.other_path.as_ref().and_then(|p| p.file_name()));
        let other_name = other_name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        self.jobs.overlay.ensure(&self.overlay_key(), move || {
            Job::spawn("overlay", move |ctl| -> Result<Arc<crate::analysis::overlay::Overlay>, String> {
                let mut items = Vec::new();
                for e in &entries {
                    let (folder, label) = match (&other, e.second) {
                        (Some(o), true) => (o, format!("{} ({other_name})", e.tensor)),
                        (None, true) => return Err("the second model is not open".into()),
                        (_, false) => (&this, e.tensor.clone()),
                    };
                    let t = folder.checkpoint.require(&e.tensor).map_err(|e| e.to_string())?;
                    if matches!(t.dtype, crate::checkpoint::Dtype::Ggml(_)) {
                        return Err(format!(
                            "{}: block-quantized tensors are not overlaid yet (their values decode whole)",
                            e.tensor
                        ));
                    }
                    items.push((
                        label,
                        crate::analysis::stats::DataView { dtype: t.dtype, bytes: folder.checkpoint.bytes(t) },
                    ));
                }
                crate::analysis::overlay::overlay(&items, OVERLAY_BINS, ctl).map(Arc::new).map_err(|c| c.to_string())
            })
        });
    }

    fn request_lora_figures(&mut self, module: &str) {
        let (Some(model), Some(active), Some(key)) = (&self.model, &self.active, self.lora_key(module)) else {
            return;
        };
        let (folder, adapter, name) = (Arc::clone(&model.folder), Arc::clone(&active.adapter), module.to_string());
        self.jobs.lora.ensure(&key, move || {
            Job::spawn("lora-figures", move |ctl| -> Result<Arc<LoraFigures>, String> {
                let m = adapter.module(&name).ok_or_else(|| format!("the adapter does not adapt {name}"))?;
                let w = base_weight(&folder, &name)?;
                LoraFigures::compute(m, &w, adapter.scaling, ctl).map(Arc::new)
            })
        });
    }

    fn request_lora_table(&mut self) {
        let (Some(model), Some(active)) = (&self.model, &self.active) else { return };
        let (folder, adapter) = (Arc::clone(&model.folder), Arc::clone(&active.adapter));
        self.jobs.lora_table.ensure(&active.epoch, move || {
            Job::spawn("lora-table", move |ctl| -> Result<Arc<Vec<DeltaSummary>>, String> {
                ctl.add_total(adapter.modules.len() as u64);
                let mut rows = Vec::with_capacity(adapter.modules.len());
                for m in &adapter.modules {
                    ctl.check().map_err(|e| e.to_string())?;
                    let w = base_weight(&folder, &m.module)?;
                    rows.push(lowrank::summarize(&m.module, &m.a, &m.b, m.rank, &w, adapter.scaling));
                    ctl.advance(1);
                }
                Ok(Arc::new(rows))
            })
        });
    }
}

/// The frozen weight W of an adapted module, widened to f32.
fn base_weight(folder: &ModelFolder, module: &str) -> Result<Vec<f32>, String> {
    let ckpt = &folder.checkpoint;
    let t = ckpt.require(&format!("{module}.weight")).map_err(|e| e.to_string())?;
    Ok(t.dtype.decode_all_f32(ckpt.bytes(t)))
}

/// Statistics over the named tensors, read from the shared memory maps on a worker.
fn start_stats(folder: Arc<ModelFolder>, names: Vec<String>, bins: usize) -> Job<TensorStats> {
    Job::spawn("stats", move |ctl| -> Result<TensorStats, String> {
        let ckpt = &folder.checkpoint;
        let views: Vec<DataView<'_>> = names
            .iter()
            .map(|n| {
                let t = ckpt.require(n).map_err(|e| e.to_string())?;
                if let Some(e) = t.dtype.not_readable() {
                    return Err(format!("{n}: {e}"));
                }
                Ok(DataView { dtype: t.dtype, bytes: ckpt.bytes(t) })
            })
            .collect::<Result<_, String>>()?;
        compute_stats(&views, bins, ctl).map_err(|e| e.to_string())
    })
}
