//! One file per panel, each behind [`Panel`]: a panel reads the [`Workspace`], keeps its own
//! view state (scroll, which layer is picked, a slider being dragged) and says what it wants
//! done by pushing [`Action`]s. It never mutates the workspace, never computes longer than a
//! frame, and never reaches into another panel. To add one: write `panels/NAME.rs`, add a
//! field to [`Panels`] and a line to [`Panels::tabs`].

pub mod attention;
pub mod compare;
pub mod lens;
pub mod metadata;
pub mod routing;
pub mod tokens;
pub mod tree;
pub mod weights;
pub mod welcome;

use crate::workspace::{Action, Workspace};

pub trait Panel {
    /// A stable name, remembered in the settings (`--view` takes it too).
    fn id(&self) -> &'static str;
    /// The tab's title in the current language.
    fn title(&self) -> &'static str;
    /// What the tab is for, in the current language.
    fn tooltip(&self) -> &'static str;
    /// Another model or tree was opened: forget view state that pointed into the old one.
    fn reset(&mut self) {}
    fn ui(&mut self, ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>);
}

/// Every panel the window has. The tree sits on the left; the tabs share the centre.
#[derive(Default)]
pub struct Panels {
    pub tree: tree::TreePanel,
    pub weights: weights::WeightsPanel,
    pub tokens: tokens::TokensPanel,
    pub routing: routing::RoutingPanel,
    pub compare: compare::ComparePanel,
    pub attention: attention::AttentionPanel,
    pub lens: lens::LensPanel,
    pub metadata: metadata::MetadataPanel,
    pub welcome: welcome::WelcomePanel,
}

impl Panels {
    /// The centre tabs, in the order they are shown.
    pub fn tabs(&mut self) -> [&mut dyn Panel; 7] {
        [
            &mut self.weights,
            &mut self.tokens,
            &mut self.attention,
            &mut self.lens,
            &mut self.routing,
            &mut self.compare,
            &mut self.metadata,
        ]
    }

    pub fn reset_all(&mut self) {
        self.tree.reset();
        self.welcome.reset();
        for tab in self.tabs() {
            tab.reset();
        }
    }
}

/// A running job's progress bar (`width` points wide) and a Cancel button that pushes
/// `cancel`.
fn progress_with_cancel(ui: &mut egui::Ui, progress: f32, width: f32, cancel: Action, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        ui.add(egui::ProgressBar::new(progress).show_percentage().desired_width(width));
        if ui.button(crate::ui::i18n::tr("Cancel")).clicked() {
            actions.push(cancel);
        }
    });
}

/// A job's result, or in its place its error, or its progress while it runs (asking for it
/// when nothing is there yet; see [`job_progress_or_request`]). None until the result is in.
fn job_result<'a, T>(
    ui: &mut egui::Ui,
    result: Option<&'a Result<T, String>>,
    progress: Option<f32>,
    doing: &str,
    request: Action,
    actions: &mut Vec<Action>,
) -> Option<&'a T> {
    match result {
        Some(Ok(v)) => Some(v),
        Some(Err(e)) => {
            ui.label(egui::RichText::new(e).color(ui.visuals().error_fg_color));
            None
        }
        None => {
            job_progress_or_request(ui, progress, doing, request, actions);
            None
        }
    }
}

/// A job that is running (a spinner, its progress bar and what it is doing), or that is not
/// there yet: then it is requested, and shows as running from the next frame.
fn job_progress_or_request(
    ui: &mut egui::Ui,
    progress: Option<f32>,
    doing: &str,
    request: Action,
    actions: &mut Vec<Action>,
) {
    ui.horizontal(|ui| {
        ui.spinner();
        if let Some(p) = progress {
            ui.add(egui::ProgressBar::new(p).show_percentage().desired_width(240.0));
        }
        ui.label(egui::RichText::new(doing).weak());
    });
    if progress.is_none() {
        actions.push(request);
    }
}
