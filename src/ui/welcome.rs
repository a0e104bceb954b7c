//! What a fresh start shows: one big button and the recent folders.

use egui::RichText;

use super::app::AnatomyApp;
use super::i18n::tr;

pub fn show(ui: &mut egui::Ui, app: &mut AnatomyApp) {
    ui.vertical_centered(|ui| {
        ui.add_space(ui.available_height() * 0.2);
        ui.label(RichText::new("llm-anatomy").size(40.0).strong());
        ui.label(RichText::new(tr("See what is inside a language model: its modules, its weights, their bits.")).size(18.0));
        ui.add_space(24.0);
        let open = ui
            .add(egui::Button::new(RichText::new(tr("Open model folder…")).size(22.0)).min_size(egui::vec2(280.0, 48.0)))
            .on_hover_text(tr(
                "A Hugging Face folder with config.json and *.safetensors (Ctrl+O). You can also drop it on this window.",
            ));
        if open.clicked() {
            app.pick_folder();
        }
        if app.is_opening() {
            ui.add_space(8.0);
            ui.spinner();
        }
        if !app.recent.is_empty() {
            ui.add_space(24.0);
            ui.label(RichText::new(tr("Recent")).strong());
            let mut chosen = None;
            for path in &app.recent {
                if ui.link(path.display().to_string()).clicked() {
                    chosen = Some(path.clone());
                }
            }
            if let Some(p) = chosen {
                app.open_in_background(p);
            }
        }
    });
}
