//! The desktop front end: a shell (menu, status, dialogs, style) around `panels/`, one file
//! per panel. Panels read the [`crate::workspace::Workspace`] and return actions; heavy work
//! runs in the workspace's jobs and the engine thread.

pub mod dialogs;
pub mod engine_status;
pub mod export;
pub mod format;
pub mod help;
pub mod i18n;
pub mod menu;
pub mod panels;
pub mod prompt_bar;
pub mod shell;
pub mod style;

pub use crate::workspace::Selection;
pub use shell::AnatomyApp;

use std::path::PathBuf;

/// What the command line asks the window to show first.
#[derive(Default)]
pub struct StartOptions {
    /// A model folder to open.
    pub path: Option<PathBuf>,
    /// A tensor or module to select in it.
    pub select: Option<String>,
    /// A prompt to run in the token panel.
    pub prompt: Option<String>,
    /// A LoRA adapter to attach.
    pub adapter: Option<PathBuf>,
    /// A panel id: "weights", "tokens" or "routing".
    pub view: Option<String>,
    /// The interface language (otherwise the remembered one, or the desktop's).
    pub lang: Option<i18n::Lang>,
    /// Save exports straight into this folder, no dialog.
    pub export_dir: Option<PathBuf>,
    /// A second model to diff against (Compare tab).
    pub compare_with: Option<PathBuf>,
}

/// Opens the window.
pub fn run_native(start: StartOptions) -> eframe::Result {
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Glow,
        viewport: egui::ViewportBuilder::default()
            .with_title("llm-anatomy")
            .with_inner_size([1400.0, 900.0])
            .with_min_inner_size([640.0, 400.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native("llm-anatomy", options, Box::new(move |cc| Ok(Box::new(AnatomyApp::new(cc, start)))))
}
