//! The engine's status and errors, worded where they are drawn: the engine and the
//! workspace keep them as enums, so no English string is matched to translate it.

use crate::engine::{EngineError, EngineStatus};
use crate::ui::i18n::{tr, trf};
use crate::workspace::{Action, Workspace};

/// What the engine is doing, in the UI's language.
pub fn status_text(s: EngineStatus) -> String {
    match s {
        EngineStatus::Idle => String::new(),
        EngineStatus::LoadingWeights => tr("loading weights…").into(),
        EngineStatus::ReadingPrompt => tr("reading the prompt…").into(),
        EngineStatus::Generating { done, of } => trf("generating token {} of {}…", &[&(done + 1), &of]),
    }
}

/// Why the engine refused, in the UI's language (lower layers' messages stay as written:
/// they name the file or tensor).
pub fn error_text(e: &EngineError) -> String {
    match e {
        EngineError::Unsupported => {
            tr("Inference is not available for this architecture: only its tensors can be inspected.").into()
        }
        EngineError::NotLoaded => tr("no model loaded for inference").into(),
        EngineError::Cancelled => tr("loading was cancelled").into(),
        EngineError::Internal => {
            tr("the engine hit an internal error; run the prompt again to reload the model").into()
        }
        EngineError::Failed(message) => message.clone(),
    }
}

/// Spinner, status and (while loading) a progress bar with Cancel.
pub fn show(ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>) {
    let Some(status) = ws.engine.status.filter(|s| *s != EngineStatus::Idle) else { return };
    ui.spinner();
    ui.label(status_text(status));
    if status == EngineStatus::LoadingWeights {
        if let Some(p) = ws.engine.load_progress().filter(|p| *p > 0.0) {
            ui.add(egui::ProgressBar::new(p).show_percentage().desired_width(200.0));
        }
        if ui.button(tr("Cancel")).clicked() {
            actions.push(Action::CancelLoad);
        }
    }
    ui.ctx().request_repaint_after(std::time::Duration::from_millis(50));
}
