//! The desktop front end. One file per panel; a panel reads [`AnatomyApp`] state and
//! records what the user asked for, and heavy work goes to [`crate::jobs`].

pub mod app;
pub mod bits_panel;
pub mod export;
pub mod format;
pub mod help;
pub mod i18n;
pub mod inspector;
pub mod lora_panel;
pub mod routing_panel;
pub mod tokens_panel;
pub mod tree_panel;
pub mod welcome;

pub use app::{AnatomyApp, Selection, View};

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
    /// "weights", "tokens" or "routing".
    pub view: Option<String>,
    /// The interface language (otherwise the remembered one, or the desktop's).
    pub lang: Option<i18n::Lang>,
    /// Save exports straight into this folder, no dialog.
    pub export_dir: Option<PathBuf>,
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
