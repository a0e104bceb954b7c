//! What a fresh start shows: one big button, the recent folders, and the models already on
//! this machine (Hugging Face cache, Ollama, LM Studio), filterable.

use egui::RichText;

use crate::ui::format;
use crate::ui::i18n::{tr, trf};
use crate::workspace::{Action, Workspace};

/// Asks the shell to show the folder dialog (it owns the desktop dialogs).
#[derive(Default)]
pub struct WelcomePanel {
    pub wants_folder_dialog: bool,
    filter: String,
    asked_for_library: bool,
}

impl super::Panel for WelcomePanel {
    fn id(&self) -> &'static str {
        "welcome"
    }

    fn title(&self) -> &'static str {
        "llm-anatomy"
    }

    fn tooltip(&self) -> &'static str {
        tr("See what is inside a language model: its modules, its weights, their bits.")
    }

    fn ui(&mut self, ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>) {
        if !self.asked_for_library {
            self.asked_for_library = true;
            actions.push(Action::ScanLibrary);
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.vertical_centered(|ui| {
                ui.add_space(48.0);
                ui.label(RichText::new("llm-anatomy").size(40.0).strong());
                ui.label(RichText::new(self.tooltip()).size(18.0));
                ui.add_space(24.0);
                let open = ui
                    .add(
                        egui::Button::new(RichText::new(tr("Open model folder…")).size(22.0))
                            .min_size(egui::vec2(280.0, 48.0)),
                    )
                    .on_hover_text(tr(
                        "A Hugging Face folder with config.json and *.safetensors (Ctrl+O). You can also drop it on this window.",
                    ));
                self.wants_folder_dialog |= open.clicked();
                if ws.is_opening() {
                    ui.add_space(8.0);
                    ui.spinner();
                }
                if !ws.recent.is_empty() {
                    ui.add_space(24.0);
                    ui.label(RichText::new(tr("Recent")).strong());
                    for path in &ws.recent {
                        if ui.link(path.display().to_string()).clicked() {
                            actions.push(Action::Open(path.clone()));
                        }
                    }
                }
            });
            ui.add_space(24.0);
            library(ui, &mut self.filter, ws, actions);
        });
    }
}

/// The models found on this machine, as a table with a filter.
fn library(ui: &mut egui::Ui, filter: &mut String, ws: &Workspace, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        ui.label(RichText::new(tr("On this computer")).strong()).on_hover_text(tr(
            "Models already downloaded by other tools: the Hugging Face cache, Ollama and LM Studio. Read from their folders; nothing is downloaded.",
        ));
        let label = ui.label(tr("Filter"));
        ui.add(egui::TextEdit::singleline(filter).desired_width(220.0)).labelled_by(label.id);
        if ui.small_button("⟳").on_hover_text(tr("Look again")).clicked() {
            actions.push(Action::ScanLibrary);
        }
        if ws.is_scanning_library() {
            ui.spinner();
        }
    });
    let Some(entries) = &ws.library else { return };
    if entries.is_empty() {
        ui.label(RichText::new(tr("No models found in the Hugging Face cache, Ollama or LM Studio folders.")).weak());
        return;
    }
    let needle = filter.to_lowercase();
    egui::Grid::new("library").striped(true).num_columns(5).show(ui, |ui| {
        for h in [tr("model"), tr("source"), tr("format"), tr("size"), tr("missing")] {
            ui.label(RichText::new(h).weak());
        }
        ui.end_row();
        for e in entries.iter().filter(|e| needle.is_empty() || e.name.to_lowercase().contains(&needle)) {
            let tip = trf(
                "{}\nrevision {}\n{}",
                &[&e.path.display(), &e.revision, &e.architecture.clone().unwrap_or_default()],
            );
            if ui.link(&e.name).on_hover_text(tip).clicked() {
                actions.push(Action::Open(e.path.clone()));
            }
            ui.label(e.source.as_str());
            ui.label(&e.format);
            ui.monospace(format::bytes(e.bytes));
            let missing = if e.missing.is_empty() { String::new() } else { e.missing.join("; ") };
            ui.label(RichText::new(missing).color(ui.visuals().warn_fg_color));
            ui.end_row();
        }
    });
}
