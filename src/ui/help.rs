//! The "What am I looking at?" note at the top of each panel: the course concept behind it
//! (state_dict, Linear [out, in], RMSNorm, GQA, SwiGLU, LoRA rank, gating, temperature, top-p)
//! in two or three sentences. Closed by default; egui remembers it open between runs.

use egui::RichText;

use super::i18n::tr;

/// `note` comes translated: the call site wraps it in `tr`, so the i18n test sees the key.
pub fn note(ui: &mut egui::Ui, panel: &str, note: &str) {
    egui::CollapsingHeader::new(RichText::new(tr("What am I looking at?")).italics())
        .id_salt(("what-am-i-looking-at", panel))
        .show(ui, |ui| {
            ui.label(note);
        });
}
