//! Application state and the frame layout: menu bar, tree on the left, inspector in the
//! centre, error dialog on top. Opening and statistics run as [`Job`]s; each frame polls them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};

use crate::analysis::cast::{CastReport, cast_report};
use crate::analysis::floatbits::Format;
use crate::analysis::stats::{DataView, TensorStats, compute_stats};
use crate::arch::{ModelFolder, ROOT};
use crate::jobs::{Job, KeyedJobs, Poll};
use crate::lora::LoraAdapter;

use super::lora_panel::LoraView;

use super::bits_panel::BitsState;
use super::i18n::{Lang, set_lang, tr, trf};
use super::routing_panel::{self, RoutingState};
use super::tokens_panel::{self, TokensState};
use super::{export, inspector, tree_panel, welcome};
use egui::RichText;

const RECENT_KEY: &str = "recent_folders";
const SETTINGS_KEY: &str = "settings";
/// A prompt the demo model completes (its corpus teaches capitals).
pub const DEMO_PROMPT: &str = "The capital of France is";

/// What is remembered between runs besides the recent folders (eframe itself keeps the
/// window's size and place, panel widths and which sections are open).
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, PartialEq)]
#[serde(default)]
pub struct Settings {
    /// Everything 1.6× larger, for a projector (F11).
    pub presenter: bool,
    pub dark: bool,
    /// Pure black/white backgrounds and bolder lines, for washed-out projectors.
    pub high_contrast: bool,
    pub lang: Lang,
    pub sampling: crate::sampling::SamplingParams,
    pub view: View,
    pub histogram: HistogramSettings,
    /// The tree panel shows state_dict keys instead of modules.
    pub flat_tree: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            presenter: false,
            dark: true,
            high_contrast: false,
            lang: Lang::En,
            sampling: crate::sampling::SamplingParams::default(),
            view: View::Weights,
            histogram: HistogramSettings::default(),
            flat_tree: false,
        }
    }
}

impl Settings {
    /// What decides how the window looks; zoom and theme are re-applied only when it changes,
    /// so a Ctrl +/− zoom survives everything else.
    fn appearance(&self) -> (bool, bool, bool) {
        (self.presenter, self.dark, self.high_contrast)
    }
}
const MAX_RECENT: usize = 8;

/// Which big panel fills the centre.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum View {
    /// The selected module or tensor: statistics, histogram, bits.
    Weights,
    /// Step-by-step next-token probabilities.
    Tokens,
    /// Where a mixture-of-experts model sends each token.
    Routing,
}

/// What the inspector shows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Selection {
    None,
    /// A module, by node id in the model's tree.
    Module(usize),
    /// A stored tensor, by checkpoint name.
    Tensor(String),
}

/// Per-model facts the panels need every frame, computed once when the folder opens.
pub struct OpenModel {
    pub folder: Arc<ModelFolder>,
    /// The tree on screen: the folder's own, or the PEFT-wrapped one when an adapter is attached.
    pub tree: crate::arch::ModuleTree,
    pub param_counts: Vec<u64>,
    /// Folded runs of identical children for every ModuleList node, as print(model) folds them.
    pub fold_groups: HashMap<usize, Vec<(usize, usize)>>,
    pub repr: String,
}

impl OpenModel {
    pub fn new(folder: ModelFolder) -> Self {
        let folder = Arc::new(folder);
        let tree = folder.tree.clone();
        Self::with_tree(folder, tree)
    }

    /// The same folder shown with another tree (e.g. wrapped by an adapter).
    pub fn with_tree(folder: Arc<ModelFolder>, tree: crate::arch::ModuleTree) -> Self {
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct HistogramSettings {
    pub bins: usize,
    pub log_y: bool,
}

impl Default for HistogramSettings {
    fn default() -> Self {
        Self { bins: 64, log_y: false }
    }
}

pub struct AnatomyApp {
    pub model: Option<OpenModel>,
    pub selection: Selection,
    pub tree: tree_panel::TreeState,
    pub histogram: HistogramSettings,
    /// Statistics by (selection, bins).
    pub stats: KeyedJobs<(Selection, usize), TensorStats>,
    /// Whole-tensor cast reports by (tensor, target format).
    pub casts: KeyedJobs<(String, Format), CastReport>,
    pub cast_target: Format,
    pub bits: BitsState,
    /// Elements found in a clicked histogram bin, by (tensor, bits of bin start, bits of bin end).
    pub bin_values: KeyedJobs<(String, u64, u64), Vec<(usize, f64)>>,
    pub bin_query: Option<(String, u64, u64)>,
    pub view: View,
    pub tokens: TokensState,
    pub routing: RoutingState,
    /// The active LoRA adapter and its strength (ΔW multiplier; 0 = off).
    pub adapter: Option<(Arc<LoraAdapter>, f64)>,
    /// Every adapter opened for this model; at most one is active.
    pub adapters: Vec<Arc<LoraAdapter>>,
    /// ΔW summaries by module, computed on first look.
    pub lora_cache: HashMap<String, Arc<LoraView>>,
    adapter_dialog: Option<Receiver<Option<PathBuf>>>,
    pending_adapter: Option<PathBuf>,
    pub settings: Settings,
    /// The appearance last applied to the egui context (zoom, theme).
    applied: Option<(bool, bool, bool)>,
    /// The last file an export wrote, shown in the status bar.
    pub last_export: Option<PathBuf>,
    /// Messages the user must see (bad file, failed open); shown until dismissed.
    pub errors: Vec<String>,
    pub recent: Vec<PathBuf>,
    opening: Option<(PathBuf, Job<ModelFolder>)>,
    folder_dialog: Option<Receiver<Option<PathBuf>>>,
    style_installed: bool,
    /// A tensor or module name to select once the folder being opened is in.
    pending_select: Option<String>,
}

impl Default for AnatomyApp {
    fn default() -> Self {
        Self {
            model: None,
            selection: Selection::None,
            tree: tree_panel::TreeState::default(),
            histogram: HistogramSettings::default(),
            stats: KeyedJobs::default(),
            casts: KeyedJobs::default(),
            cast_target: Format::BF16,
            bits: BitsState::default(),
            bin_values: KeyedJobs::default(),
            bin_query: None,
            view: View::Weights,
            tokens: TokensState::default(),
            routing: RoutingState::default(),
            adapter: None,
            adapters: Vec::new(),
            lora_cache: HashMap::new(),
            adapter_dialog: None,
            pending_adapter: None,
            settings: Settings::default(),
            applied: None,
            last_export: None,
            errors: Vec::new(),
            recent: Vec::new(),
            opening: None,
            folder_dialog: None,
            style_installed: false,
            pending_select: None,
        }
    }
}

impl AnatomyApp {
    pub fn new(cc: &eframe::CreationContext<'_>, start: super::StartOptions) -> Self {
        let super::StartOptions { path, select, prompt, adapter, view, lang, export_dir } = start;
        let mut app = Self { pending_select: select, pending_adapter: adapter, ..Self::default() };
        app.settings.lang = Lang::from_env();
        if let Some(storage) = cc.storage {
            if let Some(recent) = eframe::get_value::<Vec<PathBuf>>(storage, RECENT_KEY) {
                app.recent = recent;
            }
            if let Some(settings) = eframe::get_value::<Settings>(storage, SETTINGS_KEY) {
                app.apply_settings(settings);
            }
        }
        if let Some(lang) = lang {
            app.settings.lang = lang;
        }
        if export_dir.is_some() {
            export::set_auto_dir(&cc.egui_ctx, export_dir);
        }
        if let Some(prompt) = prompt {
            app.view = View::Tokens;
            app.tokens.prompt = prompt;
            app.tokens.run_when_loaded = true;
        }
        app.view = match view.as_deref() {
            Some("weights") => View::Weights,
            Some("tokens") => View::Tokens,
            Some("routing") => View::Routing,
            _ => app.view,
        };
        // No folder given: the bundled demo, so a fresh checkout shows every panel.
        if let Some(path) = path.or_else(Self::bundled_demo) {
            if Self::bundled_demo().as_ref() == Some(&path) && app.tokens.prompt == TokensState::default().prompt {
                app.tokens.prompt = DEMO_PROMPT.into();
            }
            app.open_in_background(path);
        }
        app
    }

    /// Puts remembered settings into the places the panels read them from.
    pub fn apply_settings(&mut self, settings: Settings) {
        self.settings = settings;
        self.tokens.params = settings.sampling;
        self.view = settings.view;
        self.histogram = settings.histogram;
        self.tree.flat = settings.flat_tree;
    }

    /// The settings as they are now, for saving.
    pub fn current_settings(&self) -> Settings {
        Settings {
            sampling: self.tokens.params,
            view: self.view,
            histogram: self.histogram,
            flat_tree: self.tree.flat,
            ..self.settings
        }
    }

    /// A new model or tree: nothing open or filtered, but the flat/tree choice kept.
    fn reset_tree(&mut self) {
        let flat = self.tree.flat;
        self.tree = tree_panel::TreeState::default();
        self.tree.flat = flat;
    }

    /// The demo model shipped in assets/ (made by `train-demo`), if this checkout has it.
    pub fn bundled_demo() -> Option<PathBuf> {
        let folder = crate::demo::demo_folder();
        folder.join("config.json").is_file().then_some(folder)
    }

    /// Starts opening a folder on a worker; the current model stays until it succeeds.
    pub fn open_in_background(&mut self, path: PathBuf) {
        let p = path.clone();
        self.opening = Some((path, Job::spawn("open-folder", move |_| ModelFolder::open(&p))));
    }

    /// Opens a folder on the calling thread. Headers only, so this is quick; used at start-up
    /// by tests and by the CLI-like paths that need the model before the first frame.
    pub fn open_blocking(&mut self, path: &Path) {
        match ModelFolder::open(path) {
            Ok(folder) => self.set_model(path, folder),
            Err(e) => self.errors.push(e.to_string()),
        }
    }

    fn set_model(&mut self, path: &Path, folder: ModelFolder) {
        self.stats.clear();
        self.casts.clear();
        self.bin_values.clear();
        self.bin_query = None;
        self.bits = BitsState::default();
        self.selection = Selection::None;
        self.reset_tree();
        self.model = Some(OpenModel::new(folder));
        if let Some(m) = &self.model {
            self.tokens.load(Arc::clone(&m.folder));
        }
        self.routing = RoutingState::default();
        self.adapter = None;
        self.adapters.clear();
        self.lora_cache.clear();
        if let Some(a) = self.pending_adapter.take() {
            self.open_adapter(&a);
        }
        if let Some(name) = self.pending_select.take() {
            self.select_by_name(&name);
        }
        let path = path.to_path_buf();
        self.recent.retain(|p| *p != path);
        self.recent.insert(0, path);
        self.recent.truncate(MAX_RECENT);
    }

    /// Attaches a LoRA adapter (PEFT folder or .pth) to the open model: the tree becomes
    /// the PEFT-wrapped one and the engine runs with ΔW added. Errors leave things as they were.
    pub fn open_adapter(&mut self, path: &Path) {
        let Some(model) = &self.model else {
            self.errors.push(tr("Open a model folder first, then its adapter.").into());
            return;
        };
        match LoraAdapter::open(path, &model.folder, None) {
            Ok(adapter) => {
                let adapter = Arc::new(adapter);
                self.adapters.retain(|a| a.source != adapter.source);
                self.adapters.push(Arc::clone(&adapter));
                self.activate_adapter(Some(adapter));
            }
            Err(e) => self.errors.push(e),
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
        self.model = Some(OpenModel::with_tree(folder, tree));
        self.selection = Selection::None;
        self.reset_tree();
        self.stats.clear();
        self.lora_cache.clear();
        self.adapter = adapter.map(|a| (a, 1.0));
        self.tokens.set_adapter(self.adapter.clone());
    }

    /// Unloads the active adapter; the base model is shown again.
    pub fn remove_adapter(&mut self) {
        let Some((active, _)) = self.adapter.clone() else { return };
        self.adapters.retain(|a| !Arc::ptr_eq(a, &active));
        self.activate_adapter(None);
    }

    pub fn set_adapter_strength(&mut self, strength: f64) {
        if let Some((a, s)) = &mut self.adapter {
            *s = strength;
            let a = Arc::clone(a);
            self.tokens.set_adapter(Some((a, strength)));
        }
    }

    /// The adapter module behind a tree node: the lora.Linear itself or anything inside it.
    pub fn adapted_module(&self, node: usize) -> Option<&crate::lora::LoraModule> {
        let (adapter, _) = self.adapter.as_ref()?;
        let mut path = self.model.as_ref()?.tree.nodes.get(node)?.path.as_str();
        path = path.strip_prefix("base_model.model.").unwrap_or(path);
        adapter.modules.iter().find(|m| path == m.module || path.starts_with(&format!("{}.", m.module)))
    }

    /// ΔW figures and images of one adapted module, computed once.
    pub fn lora_view(&mut self, module: &str) -> Option<Arc<LoraView>> {
        if let Some(v) = self.lora_cache.get(module) {
            return Some(Arc::clone(v));
        }
        let (adapter, _) = self.adapter.as_ref()?;
        let m = adapter.module(module)?;
        let ckpt = &self.model.as_ref()?.folder.checkpoint;
        let t = ckpt.tensor(&format!("{module}.weight"))?;
        let w: Vec<f32> = t.dtype.decode_all_f32(ckpt.bytes(t));
        let view = Arc::new(LoraView::new(m, &w, adapter.scaling));
        self.lora_cache.insert(module.to_string(), Arc::clone(&view));
        Some(view)
    }

    pub fn pick_adapter(&mut self, folder: bool) {
        if self.adapter_dialog.is_some() {
            return;
        }
        let (tx, rx) = channel();
        let title = tr("Open LoRA adapter");
        let filter = tr("PyTorch state dict");
        std::thread::spawn(move || {
            let dialog = rfd::FileDialog::new().set_title(title);
            let picked = if folder {
                dialog.pick_folder()
            } else {
                dialog.add_filter(filter, &["pth", "pt", "bin"]).pick_file()
            };
            let _ = tx.send(picked);
        });
        self.adapter_dialog = Some(rx);
    }

    pub fn is_opening(&self) -> bool {
        self.opening.is_some()
    }

    /// Asks the desktop for a folder without blocking the frame: the dialog runs on its own thread.
    pub fn pick_folder(&mut self) {
        if self.folder_dialog.is_some() {
            return;
        }
        let (tx, rx) = channel();
        let title = tr("Open model folder");
        // Start where the last model was: classes reopen the same few folders.
        let start = self.recent.first().and_then(|p| p.parent()).map(Path::to_path_buf);
        std::thread::spawn(move || {
            let mut dialog = rfd::FileDialog::new().set_title(title);
            if let Some(dir) = start {
                dialog = dialog.set_directory(dir);
            }
            let _ = tx.send(dialog.pick_folder());
        });
        self.folder_dialog = Some(rx);
    }

    pub fn select(&mut self, selection: Selection) {
        self.selection = selection;
    }

    /// Selects a stored tensor or a module by its dotted name; unknown names are reported.
    pub fn select_by_name(&mut self, name: &str) {
        let Some(model) = &self.model else { return };
        // Filtering by the name is what reveals it in the tree, folded repeats unfolded.
        if model.folder.checkpoint.tensor(name).is_some() {
            self.selection = Selection::Tensor(name.to_string());
            self.tree.filter = name.to_string();
        } else if let Some(id) = model.tree.find(name) {
            self.selection = Selection::Module(id);
            self.tree.filter = name.to_string();
        } else {
            self.errors.push(trf("--select {}: no tensor or module of that name in this model", &[&name]));
        }
    }

    fn stats_key(&self) -> (Selection, usize) {
        (self.selection.clone(), self.histogram.bins)
    }

    /// Statistics for the current selection, once computed.
    pub fn current_stats(&self) -> Option<&Result<TensorStats, String>> {
        self.stats.get(&self.stats_key())
    }

    pub fn stats_progress(&self) -> Option<f32> {
        self.stats.progress(&self.stats_key())
    }

    pub fn cancel_stats(&mut self) {
        self.stats.cancel();
    }

    pub fn recompute_stats(&mut self) {
        let key = self.stats_key();
        self.stats.forget(&key);
    }

    /// The cast report of the selected tensor to the chosen format, once computed.
    pub fn current_cast(&self) -> Option<&Result<CastReport, String>> {
        match &self.selection {
            Selection::Tensor(name) => self.casts.get(&(name.clone(), self.cast_target)),
            _ => None,
        }
    }

    pub fn cast_progress(&self) -> Option<f32> {
        match &self.selection {
            Selection::Tensor(name) => self.casts.progress(&(name.clone(), self.cast_target)),
            _ => None,
        }
    }

    /// Starts the cast what-if for the selected tensor (on demand: it is a full pass).
    pub fn request_cast(&mut self) {
        let (Selection::Tensor(name), Some(model)) = (&self.selection, &self.model) else { return };
        let key = (name.clone(), self.cast_target);
        let folder = Arc::clone(&model.folder);
        let (tensor, to) = key.clone();
        self.casts.ensure(&key, move || {
            Job::spawn("cast", move |ctl| -> Result<CastReport, String> {
                let ckpt = &folder.checkpoint;
                let t = ckpt.require(&tensor).map_err(|e| e.to_string())?;
                cast_report(&[DataView { dtype: t.dtype, bytes: ckpt.bytes(t) }], to, ctl).map_err(|e| e.to_string())
            })
        });
    }

    /// Lists (on a worker) the first elements of a tensor whose values fall in [lo, hi].
    pub fn list_bin_values(&mut self, tensor: &str, lo: f64, hi: f64) {
        let Some(model) = &self.model else { return };
        let key = (tensor.to_string(), lo.to_bits(), hi.to_bits());
        let folder = Arc::clone(&model.folder);
        let name = tensor.to_string();
        self.bin_values.ensure(&key, move || {
            Job::spawn("bin-values", move |ctl| -> Result<Vec<(usize, f64)>, String> {
                let ckpt = &folder.checkpoint;
                let t = ckpt.require(&name).map_err(|e| e.to_string())?;
                Ok(crate::analysis::stats::values_in_range(t.dtype, ckpt.bytes(t), lo, hi, 24, ctl))
            })
        });
        self.bin_query = Some(key);
    }

    /// One stored element of a tensor, widened to f64 (None if out of range).
    pub fn element(&self, tensor: &str, index: usize) -> Option<f64> {
        let ckpt = &self.model.as_ref()?.folder.checkpoint;
        ckpt.element(ckpt.tensor(tensor)?, index)
    }

    /// Points the Bits view at a stored element.
    pub fn inspect_element(&mut self, tensor: &str, index: usize) {
        if let Some(v) = self.element(tensor, index) {
            let dtype = self.model.as_ref().and_then(|m| m.folder.checkpoint.tensor(tensor)).map(|t| t.dtype);
            self.bits.load(tensor, index, v, dtype);
        }
    }

    /// The data behind a selection: one tensor, or every tensor a module owns (tied ones once).
    fn tensor_names(&self, selection: &Selection) -> Vec<String> {
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

    /// Polls jobs and starts the statistics the inspector needs. Called every frame.
    pub fn update_jobs(&mut self, ctx: &egui::Context) {
        if let Some(rx) = &self.folder_dialog
            && let Ok(picked) = rx.try_recv()
        {
            self.folder_dialog = None;
            // None: the user cancelled, or no dialog backend: keep the current model.
            if let Some(path) = picked {
                self.open_in_background(path);
            }
        }
        if let Some(rx) = &self.adapter_dialog
            && let Ok(picked) = rx.try_recv()
        {
            self.adapter_dialog = None;
            if let Some(path) = picked {
                self.open_adapter(&path);
            }
        }
        if let Some((path, job)) = &self.opening {
            match job.poll() {
                Poll::Running => ctx.request_repaint(),
                Poll::Done(result) => {
                    let path = path.clone();
                    self.opening = None;
                    match result {
                        Ok(folder) => self.set_model(&path, folder),
                        Err(e) => self.errors.push(e),
                    }
                }
            }
        }
        let mut busy = self.casts.poll() | self.bin_values.poll();
        if self.selection != Selection::None {
            let key = self.stats_key();
            let names = self.tensor_names(&key.0);
            let folder = self.model.as_ref().map(|m| Arc::clone(&m.folder));
            if let Some(folder) = folder {
                busy |= self.stats.ensure(&key, || start_stats(folder, names, key.1));
            }
        }
        for message in export::take_messages(ctx) {
            match message {
                Ok(path) => self.last_export = Some(path),
                Err(e) => self.errors.push(e),
            }
        }
        if busy {
            ctx.request_repaint();
        }
    }

    /// Blocks until the statistics for the current selection are in (tests only).
    pub fn wait_for_stats(&mut self, ctx: &egui::Context) {
        self.update_jobs(ctx);
        self.stats.wait();
        self.casts.wait();
    }

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).filter(|p| !p.as_os_str().is_empty()).collect()
        });
        if let Some(path) = dropped.into_iter().next() {
            // A dropped file means its folder (people drop config.json or a shard).
            let folder = if path.is_file() { path.parent().map(Path::to_path_buf).unwrap_or(path) } else { path };
            self.open_in_background(folder);
        }
    }

    /// Draws one frame. Separate from `eframe::App` so UI tests can drive it with kittest.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if !self.style_installed {
            // Here rather than in `new` so UI tests draw with the same fonts as the window.
            setup_style(&ctx);
            self.style_installed = true;
        }
        set_lang(self.settings.lang);
        self.handle_dropped_files(&ctx);
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::O)) {
            self.pick_folder();
        }
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::NONE, egui::Key::F11)) {
            self.settings.presenter = !self.settings.presenter;
        }
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::L)) {
            self.toggle_lang();
        }
        if self.applied != Some(self.settings.appearance()) {
            ctx.set_zoom_factor(if self.settings.presenter { 1.6 } else { 1.0 });
            apply_theme(&ctx, self.settings.dark, self.settings.high_contrast);
            self.applied = Some(self.settings.appearance());
        }
        self.update_jobs(&ctx);

        egui::Panel::top("menu").show(ui, |ui| self.menu_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        if self.model.is_some() {
            egui::Panel::left("tree").resizable(true).default_size(560.0).min_size(280.0).show(ui, |ui| {
                let model = self.model.as_ref().expect("checked");
                if let Some(sel) = tree_panel::show(ui, model, &mut self.tree, &self.selection) {
                    self.select(sel);
                }
            });
        }
        egui::CentralPanel::default().show(ui, |ui| {
            if self.model.is_some() {
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut self.view, View::Weights, RichText::new(tr("Weights")).size(18.0))
                        .on_hover_text(tr("Statistics, histogram and bits of the selected tensor or module"));
                    ui.selectable_value(
                        &mut self.view,
                        View::Tokens,
                        RichText::new(tr("Token probabilities")).size(18.0),
                    )
                    .on_hover_text(tr("Run a prompt and step through generation one token at a time"));
                    ui.selectable_value(&mut self.view, View::Routing, RichText::new(tr("Routing")).size(18.0))
                        .on_hover_text(tr(
                            "Mixture-of-experts models: which experts each token is sent to, layer by layer",
                        ));
                });
                ui.separator();
                match self.view {
                    View::Weights => inspector::show(ui, self),
                    View::Tokens => {
                        tokens_panel::show(ui, &mut self.tokens);
                        // The token panel's strength slider is the one users move: mirror it.
                        if let (Some((_, s)), Some((_, t))) = (&mut self.adapter, &self.tokens.adapter) {
                            *s = *t;
                        }
                    }
                    View::Routing => {
                        let cfg = self.model.as_ref().and_then(|m| m.folder.config.clone());
                        routing_panel::show(ui, &mut self.routing, &mut self.tokens, cfg.as_ref());
                    }
                }
            } else {
                welcome::show(ui, self);
            }
        });
        self.error_dialog(&ctx);
        export::end_frame(&ctx);
    }

    /// 中文 ⇄ English (Ctrl+L or the button at the right of the menu bar).
    pub fn toggle_lang(&mut self) {
        self.settings.lang = match self.settings.lang {
            Lang::En => Lang::Zh,
            Lang::Zh => Lang::En,
        };
        set_lang(self.settings.lang);
    }

    fn menu_bar(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button(tr("File"), |ui| {
                if ui
                    .add(egui::Button::new(tr("Open model folder…")).shortcut_text(
                        ui.ctx().format_shortcut(&egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::O)),
                    ))
                    .on_hover_text(tr("A Hugging Face folder: config.json + *.safetensors (+ tokenizer.json)"))
                    .clicked()
                {
                    self.pick_folder();
                }
                ui.separator();
                if ui
                    .button(tr("Open LoRA adapter folder (PEFT)…"))
                    .on_hover_text(tr("adapter_config.json + adapter_model.safetensors"))
                    .clicked()
                {
                    self.pick_adapter(true);
                }
                if ui
                    .button(tr("Open LoRA state dict (.pth)…"))
                    .on_hover_text(tr("A MiniMind-style torch.save file with …lora.A.weight / …lora.B.weight"))
                    .clicked()
                {
                    self.pick_adapter(false);
                }
                ui.separator();
                ui.menu_button(tr("Open recent"), |ui| {
                    if self.recent.is_empty() {
                        ui.label(tr("Nothing yet"));
                    }
                    let mut chosen = None;
                    for path in &self.recent {
                        if ui.button(path.display().to_string()).clicked() {
                            chosen = Some(path.clone());
                        }
                    }
                    if let Some(path) = chosen {
                        self.open_in_background(path);
                    }
                });
                if let Some(demo) = Self::bundled_demo()
                    && ui
                        .button(tr("Open the demo model"))
                        .on_hover_text(tr("The tiny bilingual MoE bundled in assets/demo"))
                        .clicked()
                {
                    self.open_in_background(demo);
                }
            });
            if !self.adapters.is_empty() {
                ui.menu_button("LoRA", |ui| {
                    let active = self.adapter.as_ref().map(|(a, _)| Arc::clone(a));
                    let mut pick: Option<Option<Arc<LoraAdapter>>> = None;
                    if ui.radio(active.is_none(), tr("none (base model)")).clicked() {
                        pick = Some(None);
                    }
                    for a in &self.adapters {
                        let name = a.source.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                        let is_active = active.as_ref().is_some_and(|x| Arc::ptr_eq(x, a));
                        if ui.radio(is_active, format!("{name} (r={}, α={})", a.rank, a.alpha)).clicked() {
                            pick = Some(Some(Arc::clone(a)));
                        }
                    }
                    ui.separator();
                    if active.is_some() && ui.button(tr("Unload the active adapter")).clicked() {
                        self.remove_adapter();
                    }
                    if let Some(choice) = pick {
                        self.activate_adapter(choice);
                    }
                });
            }
            ui.menu_button(tr("View"), |ui| {
                ui.checkbox(&mut self.settings.presenter, tr("Presenter mode (F11)"))
                    .on_hover_text(tr("Everything 1.6× larger for a projector; Ctrl + / Ctrl − zoom further"));
                ui.checkbox(&mut self.settings.dark, tr("Dark theme"));
                ui.checkbox(&mut self.settings.high_contrast, tr("High contrast")).on_hover_text(tr(
                    "Black on white (or white on black) with bolder lines, for a washed-out projector",
                ));
                ui.separator();
                ui.checkbox(&mut self.tree.flat, tr("state_dict() keys instead of the module tree"));
                ui.checkbox(&mut self.histogram.log_y, tr("Logarithmic histogram counts"));
                ui.separator();
                ui.label(tr("Language (Ctrl+L)"));
                ui.radio_value(&mut self.settings.lang, Lang::En, "English");
                ui.radio_value(&mut self.settings.lang, Lang::Zh, "中文");
            });
            if self.opening.is_some() {
                ui.spinner();
                ui.label(tr("opening…"));
            }
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                // Each language's button is written in the language it switches to, so a
                // visitor who reads only one of them can always find it.
                let (label, tip) = match self.settings.lang {
                    Lang::En => ("中文", "切换到中文界面 (Ctrl+L)"),
                    Lang::Zh => ("English", "Switch the interface to English (Ctrl+L)"),
                };
                if ui.button(label).on_hover_text(tip).clicked() {
                    self.toggle_lang();
                }
                ui.toggle_value(&mut self.settings.presenter, tr("Presenter"))
                    .on_hover_text(tr("Everything 1.6× larger for a projector (F11)"));
            });
        });
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| match &self.model {
            Some(m) => {
                let ckpt = &m.folder.checkpoint;
                ui.label(ckpt.folder.display().to_string());
                ui.separator();
                let arch = m
                    .folder
                    .config
                    .as_ref()
                    .map(|c| c.architecture.clone())
                    .unwrap_or_else(|| m.tree.nodes[ROOT].class_name.clone());
                ui.label(arch);
                ui.separator();
                ui.label(trf("{} parameters", &[&super::format::count(m.folder.tree.unique_param_count(ROOT))]));
                if let Some((a, strength)) = &self.adapter {
                    ui.separator();
                    ui.label(format!(
                        "LoRA r={} α={} ×{strength:.2} · {}",
                        a.rank,
                        a.alpha,
                        a.source.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
                    ));
                }
                ui.separator();
                ui.label(trf(
                    "{} tensors · {} in {} file(s)",
                    &[&ckpt.tensors.len(), &super::format::bytes(ckpt.total_bytes()), &ckpt.shards.len()],
                ));
                if let Some(path) = &self.last_export {
                    ui.separator();
                    ui.label(trf("saved {}", &[&path.display()]));
                }
            }
            None => {
                ui.label(tr("No model open — File ▸ Open model folder… (Ctrl+O) or drop a folder on the window"));
            }
        });
    }

    fn error_dialog(&mut self, ctx: &egui::Context) {
        if self.errors.is_empty() {
            return;
        }
        let mut dismiss = false;
        egui::Window::new(tr("Something went wrong"))
            .collapsible(false)
            .resizable(true)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .show(ctx, |ui| {
                for e in &self.errors {
                    ui.label(egui::RichText::new(e).color(ui.visuals().error_fg_color));
                    ui.add_space(4.0);
                }
                ui.label(tr("Whatever was open before is still open."));
                if ui.button(tr("OK")).clicked() {
                    dismiss = true;
                }
            });
        if dismiss {
            self.errors.clear();
        }
    }
}

/// Statistics over the named tensors, read from the shared memory maps on a worker.
fn start_stats(folder: Arc<ModelFolder>, names: Vec<String>, bins: usize) -> Job<TensorStats> {
    Job::spawn("stats", move |ctl| -> Result<TensorStats, String> {
        let ckpt = &folder.checkpoint;
        let views: Vec<DataView<'_>> = names
            .iter()
            .map(|n| {
                let t = ckpt.require(n).map_err(|e| e.to_string())?;
                Ok(DataView { dtype: t.dtype, bytes: ckpt.bytes(t) })
            })
            .collect::<Result<_, String>>()?;
        compute_stats(&views, bins, ctl).map_err(|e| e.to_string())
    })
}

impl eframe::App for AnatomyApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        AnatomyApp::ui(self, ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, RECENT_KEY, &self.recent);
        eframe::set_value(storage, SETTINGS_KEY, &self.current_settings());
    }
}

/// Fonts bundled in the binary: DejaVu for symbols and the Latin/Greek/Cyrillic text of
/// tokens, Droid Sans Fallback for Chinese, Japanese and Korean (licences in assets/fonts/).
pub fn install_fonts(ctx: &egui::Context) {
    use egui::{FontData, FontDefinitions, FontFamily};
    let mut fonts = FontDefinitions::default();
    for (name, bytes) in [
        ("DejaVuSans", &include_bytes!("../../assets/fonts/DejaVuSans.ttf")[..]),
        ("DejaVuSansMono", &include_bytes!("../../assets/fonts/DejaVuSansMono.ttf")[..]),
        ("DroidSansFallback", &include_bytes!("../../assets/fonts/DroidSansFallbackFull.ttf")[..]),
    ] {
        fonts.font_data.insert(name.to_owned(), Arc::new(FontData::from_static(bytes)));
    }
    let prop = fonts.families.entry(FontFamily::Proportional).or_default();
    prop.insert(0, "DejaVuSans".to_owned());
    prop.push("DroidSansFallback".to_owned());
    let mono = fonts.families.entry(FontFamily::Monospace).or_default();
    mono.insert(0, "DejaVuSansMono".to_owned());
    mono.push("DejaVuSans".to_owned());
    mono.push("DroidSansFallback".to_owned());
    ctx.set_fonts(fonts);
}

/// The light or dark theme, optionally pushed to maximum contrast: text and lines in pure
/// black or white, thicker strokes, no grey-on-grey.
pub fn apply_theme(ctx: &egui::Context, dark: bool, high_contrast: bool) {
    let theme = if dark { egui::Theme::Dark } else { egui::Theme::Light };
    let mut visuals = if dark { egui::Visuals::dark() } else { egui::Visuals::light() };
    if high_contrast {
        let (fg, bg) = if dark {
            (egui::Color32::WHITE, egui::Color32::BLACK)
        } else {
            (egui::Color32::BLACK, egui::Color32::WHITE)
        };
        visuals.override_text_color = Some(fg);
        visuals.panel_fill = bg;
        visuals.window_fill = bg;
        visuals.extreme_bg_color = bg;
        visuals.faint_bg_color = if dark { egui::Color32::from_gray(40) } else { egui::Color32::from_gray(225) };
        for w in [
            &mut visuals.widgets.noninteractive,
            &mut visuals.widgets.inactive,
            &mut visuals.widgets.hovered,
            &mut visuals.widgets.active,
            &mut visuals.widgets.open,
        ] {
            w.fg_stroke = egui::Stroke::new(w.fg_stroke.width.max(1.5), fg);
            w.bg_stroke = egui::Stroke::new(w.bg_stroke.width.max(1.5), fg);
        }
        visuals.selection.stroke = egui::Stroke::new(2.0, fg);
    }
    ctx.set_visuals_of(theme, visuals);
    ctx.set_theme(theme);
}

/// Fonts and sizes that read from the back of a classroom.
pub fn setup_style(ctx: &egui::Context) {
    install_fonts(ctx);
    ctx.all_styles_mut(|style| {
        use egui::{FontFamily, FontId, TextStyle};
        style.text_styles = [
            (TextStyle::Heading, FontId::new(24.0, FontFamily::Proportional)),
            (TextStyle::Body, FontId::new(16.0, FontFamily::Proportional)),
            (TextStyle::Monospace, FontId::new(15.0, FontFamily::Monospace)),
            (TextStyle::Button, FontId::new(16.0, FontFamily::Proportional)),
            (TextStyle::Small, FontId::new(13.0, FontFamily::Proportional)),
        ]
        .into();
    });
}
