//! What a fresh start shows: one big button and the recent folders.

use egui::RichText;

use crate::ui::i18n::tr;
use crate::workspace::{Action, Workspace};

/// Asks the shell to show the folder dialog (it owns the desktop dialogs).
#[derive(Default)]
pub struct WelcomePanel {
    pub wants_folder_dialog: bool,
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
        ui.vertical_centered(|ui| {
            ui.add_space(ui.available_height() * 0.2);
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
    }
}
