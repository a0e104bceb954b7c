//! The prompt box, shared by every panel that runs the model (Token probabilities, Routing):
//! one prompt in the workspace, edited here, so switching tabs keeps what was typed.

use egui::RichText;

use crate::engine::internals::Internals;
use crate::ui::i18n::tr;
use crate::workspace::{Action, Workspace};

/// Draws the prompt field, the chat-template box and Run; pushes what changed.
pub fn show(ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>, width: f32) {
    let (mut text, mut chat) = (ws.prompt.clone(), ws.chat);
    let has_template = ws.engine.loaded.as_ref().is_none_or(|l| l.codec.chat_template.is_some());
    let label = ui.label(tr("Prompt"));
    let edit = ui.add(egui::TextEdit::singleline(&mut text).desired_width(width)).labelled_by(label.id);
    let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    ui.add_enabled(has_template, egui::Checkbox::new(&mut chat, tr("chat template"))).on_hover_text(tr(
        "Wrap the prompt as a user message with the tokenizer's chat template (tokenizer_config.json)",
    ));
    if text != ws.prompt || chat != ws.chat {
        actions.push(Action::EditPrompt { text, chat });
    }
    let run = ui.button(tr("Run prompt")).on_hover_text(tr("Tokenize the prompt and run the model over it")).clicked();
    if run || enter {
        actions.push(Action::RunPrompt);
    }
    arith_switch(ui, ws, actions);
}

/// For a quantized model: whether its weights multiply as llama.cpp does or exactly. The
/// two give different distributions, and a class can watch a token change between them.
fn arith_switch(ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>) {
    use crate::engine::quant_matvec::Arith;
    let Some(current) = ws.engine.loaded.as_ref().and_then(|l| l.arith) else { return };
    ui.separator();
    ui.label(tr("arithmetic"));
    let mut picked = current;
    ui.selectable_value(&mut picked, Arith::LlamaCpp, tr("as llama.cpp")).on_hover_text(tr(
        "What llama.cpp computes on a CPU: each layer's input is rounded to 8-bit blocks (Q8_0/Q8_1) and multiplied with the quantized weights in integers",
    ));
    ui.selectable_value(&mut picked, Arith::Exact, tr("exact")).on_hover_text(tr(
        "What transformers computes after loading the file: the weights dequantized to floats, the inputs kept in f32",
    ));
    if picked != current {
        actions.push(Action::SetArith(picked));
    }
}

/// The recorded internals, or the prompt box and the engine's status when there are none yet.
pub fn internals_or_prompt<'a>(
    ui: &mut egui::Ui,
    ws: &'a Workspace,
    actions: &mut Vec<Action>,
) -> Option<&'a Internals> {
    if let Some(snap) = ws.engine.snapshot.as_ref()
        && let Some(adapted) = snap.internals.as_ref().filter(|i| !i.is_empty())
    {
        // With an adapter: the base model's pass beside the adapted one, one click apart.
        let Some(base) = snap.base_internals.as_ref().filter(|_| ws.active.is_some()) else { return Some(adapted) };
        ui.horizontal(|ui| {
            ui.label(tr("show the model"));
            for (is_base, label, tip) in [
                (false, tr("adapted"), tr("With the LoRA adapter at its strength, as the Token panel runs it")),
                (true, tr("base"), tr("The same tokens through the base model, adapter off")),
            ] {
                if ui.selectable_label(ws.show_base == is_base, label).on_hover_text(tip).clicked() {
                    actions.push(Action::ShowBase(is_base));
                }
            }
        });
        return Some(if ws.show_base { base } else { adapted });
    }
    if !ws.engine.can_run() {
        ui.label(tr("Inference is not available for this architecture: only its tensors can be inspected."));
        return None;
    }
    ui.label(tr("Run a prompt to look inside the forward pass:"));
    ui.horizontal_wrapped(|ui| {
        show(ui, ws, actions, 360.0);
        crate::ui::engine_status::show(ui, ws, actions);
    });
    if let Some(e) = &ws.engine.error {
        ui.label(RichText::new(crate::ui::engine_status::error_text(e)).color(ui.visuals().error_fg_color));
    }
    None
}
