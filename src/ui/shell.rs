//! The window around the panels: menu and status bars, the tree on the left, the tabs in the
//! centre, the problem dialog on top, keyboard shortcuts and dropped files. Each frame it
//! polls the workspace once (whatever tab is showing), lets every visible panel draw and
//! collect actions, then applies them.

use std::path::{Path, PathBuf};

use egui::RichText;

use crate::ui::dialogs::Dialogs;
use crate::ui::i18n::{set_lang, tr, trf};
use crate::ui::panels::{Panel, Panels};
use crate::ui::{export, menu, style};
use crate::workspace::{Action, DEMO_PROMPT, Problem, Settings, Workspace};

const RECENT_KEY: &str = "recent_folders";
const SETTINGS_KEY: &str = "settings";

#[derive(Default)]
pub struct AnatomyApp {
    pub ws: Workspace,
    pub panels: Panels,
    dialogs: Dialogs,
    /// The appearance last applied to the egui context (zoom, theme).
    applied: Option<(bool, bool, bool)>,
    style_installed: bool,
    /// The workspace epoch the panels last saw: when it moves, their view state is reset.
    seen_epoch: u64,
}

impl AnatomyApp {
    pub fn new(cc: &eframe::CreationContext<'_>, start: super::StartOptions) -> Self {
        let super::StartOptions { path, select, prompt, adapter, view, lang, export_dir, compare_with } = start;
        let mut app = Self::default();
        app.ws.settings.lang = crate::workspace::Lang::from_env();
        if let Some(storage) = cc.storage {
            if let Some(recent) = eframe::get_value::<Vec<PathBuf>>(storage, RECENT_KEY) {
                app.ws.recent = recent;
            }
            if let Some(settings) = eframe::get_value::<Settings>(storage, SETTINGS_KEY) {
                app.ws.settings = settings;
            }
        }
        app.ws.settings.lang = lang.unwrap_or(app.ws.settings.lang);
        if export_dir.is_some() {
            export::set_auto_dir(&cc.egui_ctx, export_dir);
        }
        let demo = Workspace::bundled_demo();
        let path = path.or_else(|| demo.clone());
        if path.is_some() && path == demo {
            app.ws.prompt = DEMO_PROMPT.into();
        }
        if let Some(prompt) = prompt {
            app.ws.settings.view = "tokens".into();
            app.ws.prompt = prompt;
            app.ws.run_when_open = true;
        }
        if let Some(view) = view {
            app.ws.settings.view = view;
        }
        app.ws.after_open(select, adapter, compare_with);
        // No folder given: the bundled demo, so a fresh checkout shows every panel.
        if let Some(path) = path {
            app.ws.open_in_background(path);
        }
        app
    }

    /// Draws one frame. Separate from `eframe::App` so UI tests can drive it with kittest.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if !self.style_installed {
            // Here rather than in `new` so UI tests draw with the same fonts as the window.
            style::setup_style(&ctx);
            self.style_installed = true;
        }
        let mut actions = Vec::new();
        self.shortcuts(&ctx, &mut actions);
        self.dialogs.poll(&mut actions);
        for message in export::take_messages(&ctx) {
            actions.push(match message {
                Ok(path) => Action::Exported(path),
                Err(e) => Action::Report(Problem::Export(e)),
            });
        }
        if self.ws.poll() || self.dialogs.is_open() {
            ctx.request_repaint_after(std::time::Duration::from_millis(30));
        }
        if self.seen_epoch != self.ws.epoch {
            self.seen_epoch = self.ws.epoch;
            self.panels.reset_all();
        }
        set_lang(self.ws.settings.lang);
        if self.applied != Some(self.ws.settings.appearance()) {
            ctx.set_zoom_factor(if self.ws.settings.presenter { 1.6 } else { 1.0 });
            style::apply_theme(&ctx, self.ws.settings.dark, self.ws.settings.high_contrast);
            self.applied = Some(self.ws.settings.appearance());
        }
        self.layout(ui, &mut actions);
        self.problem_dialog(&ctx, &mut actions);
        export::end_frame(&ctx);
        for action in actions {
            self.ws.apply(action);
        }
    }

    fn layout(&mut self, ui: &mut egui::Ui, actions: &mut Vec<Action>) {
        let ws = &self.ws;
        egui::Panel::top("menu").show(ui, |ui| menu::menu_bar(ui, ws, &mut self.dialogs, actions));
        egui::Panel::bottom("status").show(ui, |ui| menu::status_bar(ui, ws));
        if ws.model.is_none() {
            egui::CentralPanel::default().show(ui, |ui| self.panels.welcome.ui(ui, ws, actions));
            if std::mem::take(&mut self.panels.welcome.wants_folder_dialog) {
                self.dialogs.pick_folder(ws.recent.first().map(|p| p.as_path()));
            }
            return;
        }
        egui::Panel::left("tree")
            .resizable(true)
            .default_size(560.0)
            .min_size(280.0)
            .show(ui, |ui| self.panels.tree.ui(ui, ws, actions));
        let view = ws.settings.view_id();
        egui::CentralPanel::default().show(ui, |ui| {
            let tabs = self.panels.tabs();
            let shown = tabs.iter().position(|t| t.id() == view).unwrap_or(0);
            ui.horizontal(|ui| {
                for (i, tab) in tabs.iter().enumerate() {
                    let title = RichText::new(tab.title()).size(18.0);
                    if ui.selectable_label(i == shown, title).on_hover_text(tab.tooltip()).clicked() && i != shown {
                        let settings = Settings { view: tab.id().into(), ..ws.settings.clone() };
                        actions.push(Action::Settings(Box::new(settings)));
                    }
                }
            });
            ui.separator();
            tabs[shown].ui(ui, ws, actions);
        });
        if std::mem::take(&mut self.panels.compare.wants_other_dialog) {
            self.dialogs.pick_other();
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context, actions: &mut Vec<Action>) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).filter(|p| !p.as_os_str().is_empty()).collect()
        });
        if let Some(path) = dropped.into_iter().next() {
            // A dropped model file (.gguf, .pth) is the model; any other file means its folder
            // (people drop config.json or a shard).
            let is_model_file = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["gguf", "pth", "pt"].iter().any(|m| e.eq_ignore_ascii_case(m)));
            let folder = if path.is_file() && !is_model_file {
                path.parent().map(Path::to_path_buf).unwrap_or(path)
            } else {
                path
            };
            actions.push(Action::Open(folder));
        }
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, egui::Key::O)) {
            self.dialogs.pick_model_file(self.ws.recent.first().map(|p| p.as_path()));
        }
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::O)) {
            self.dialogs.pick_folder(self.ws.recent.first().map(|p| p.as_path()));
        }
        let mut settings = self.ws.settings.clone();
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::NONE, egui::Key::F11)) {
            settings.presenter = !settings.presenter;
        }
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::L)) {
            settings.lang = settings.lang.other();
        }
        if settings != self.ws.settings {
            // Applied now, not after the frame, so this frame already draws in the new language.
            self.ws.apply(Action::Settings(Box::new(settings)));
        }
    }

    fn problem_dialog(&mut self, ctx: &egui::Context, actions: &mut Vec<Action>) {
        if self.ws.problems.is_empty() {
            return;
        }
        egui::Window::new(tr("Something went wrong"))
            .collapsible(false)
            .resizable(true)
            .anchor(egui::Align2::CENTER_CENTER, egui::Vec2::ZERO)
            .show(ctx, |ui| {
                for p in &self.ws.problems {
                    ui.label(RichText::new(problem_text(p)).color(ui.visuals().error_fg_color));
                    ui.add_space(4.0);
                }
                ui.label(tr("Whatever was open before is still open."));
                if ui.button(tr("OK")).clicked() {
                    actions.push(Action::DismissProblems);
                }
            });
    }
}

/// A problem in the UI's language; the lower layers' messages name the file and stay as written.
fn problem_text(p: &Problem) -> String {
    match p {
        Problem::Open(message) | Problem::Adapter(message) | Problem::Export(message) => message.clone(),
        Problem::AdapterWithoutModel => tr("Open a model folder first, then its adapter.").into(),
        Problem::UnknownName(name) => trf("--select {}: no tensor or module of that name in this model", &[name]),
    }
}

impl eframe::App for AnatomyApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        AnatomyApp::ui(self, ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, RECENT_KEY, &self.ws.recent);
        eframe::set_value(storage, SETTINGS_KEY, &self.ws.settings);
    }
}
