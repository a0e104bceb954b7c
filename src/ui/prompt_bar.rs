//! The prompt box, shared by every panel that runs the model (Token probabilities, Routing):
//! one prompt in the workspace, edited here, so switching tabs keeps what was typed.

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
}
