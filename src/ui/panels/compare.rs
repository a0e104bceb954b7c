//! Across layers and across checkpoints: a layer sweep of any repeated tensor role (which
//! layer is odd?) and a diff against a second model (what did fine-tuning or conversion
//! change?). The figures come from workers (`analysis::compare`); this file draws them.

use egui::{Color32, RichText};
use egui_plot::{Line, Plot, PlotPoints, Points};

use crate::analysis::compare::{self, LayerFigure};
use crate::ui::i18n::{tr, trf};
use crate::ui::{export, format, help};
use crate::workspace::{Action, Workspace};

#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub enum Metric {
    Mean,
    Std,
    AbsMax,
    #[default]
    Kurtosis,
    Outliers,
}

impl Metric {
    const ALL: [Metric; 5] = [Metric::Mean, Metric::Std, Metric::AbsMax, Metric::Kurtosis, Metric::Outliers];

    fn label(self) -> &'static str {
        match self {
            Metric::Mean => tr("mean"),
            Metric::Std => tr("std"),
            Metric::AbsMax => tr("abs max"),
            Metric::Kurtosis => tr("kurtosis"),
            Metric::Outliers => tr("outliers"),
        }
    }

    fn of(self, f: &LayerFigure) -> f64 {
        match self {
            Metric::Mean => f.mean,
            Metric::Std => f.std,
            Metric::AbsMax => f.abs_max,
            Metric::Kurtosis => f.kurtosis,
            Metric::Outliers => f.outlier_frac,
        }
    }
}

#[derive(Default)]
pub struct ComparePanel {
    pub role: Option<String>,
    pub metric: Metric,
    /// Asks the shell for the folder dialog (it owns the desktop dialogs).
    pub wants_other_dialog: bool,
}

impl super::Panel for ComparePanel {
    fn id(&self) -> &'static str {
        "compare"
    }

    fn title(&self) -> &'static str {
        tr("Compare")
    }

    fn tooltip(&self) -> &'static str {
        tr("Across layers (which layer is odd?) and across checkpoints (what changed?)")
    }

    fn reset(&mut self) {
        self.role = None;
    }

    fn ui(&mut self, ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>) {
        egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
            help::note(ui, "compare");
            sweep_section(ui, self, ws, actions);
            ui.separator();
            diff_section(ui, self, ws, actions);
        });
    }
}

fn progress_or_request(ui: &mut egui::Ui, progress: Option<f32>, request: Action, actions: &mut Vec<Action>) {
    super::job_progress_or_request(ui, progress, tr("reading every layer on worker threads…"), request, actions);
}

fn sweep_section(ui: &mut egui::Ui, p: &mut ComparePanel, ws: &Workspace, actions: &mut Vec<Action>) {
    ui.label(RichText::new(tr("Layer sweep")).strong().size(18.0)).on_hover_text(tr(
        "The same tensor in every decoder layer, one point per layer. Red points stand out from the others (robust z-score > 3).",
    ));
    let roles = match ws.jobs.sweep.get(&()) {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            ui.label(RichText::new(e).color(ui.visuals().error_fg_color));
            return;
        }
        None => return progress_or_request(ui, ws.jobs.sweep.progress(&()), Action::RequestSweep, actions),
    };
    if roles.is_empty() {
        ui.label(tr("This model has no tensor repeated across layers."));
        return;
    }
    let role = p
        .role
        .clone()
        .filter(|r| roles.contains_key(r))
        .or_else(|| roles.keys().find(|r| r.contains("down_proj")).cloned())
        .unwrap_or_else(|| roles.keys().next().cloned().unwrap_or_default());
    ui.horizontal(|ui| {
        let label = ui.label(tr("tensor role"));
        egui::ComboBox::from_id_salt("sweep-role")
            .selected_text(RichText::new(&role).monospace())
            .show_ui(ui, |ui| {
                for r in roles.keys() {
                    if ui.selectable_label(*r == role, RichText::new(r).monospace()).clicked() {
                        p.role = Some(r.clone());
                    }
                }
            })
            .response
            .labelled_by(label.id);
        for m in Metric::ALL {
            ui.selectable_value(&mut p.metric, m, m.label());
        }
    });
    let layers = &roles[&role];
    let values: Vec<f64> = layers.iter().map(|l| p.metric.of(l)).collect();
    let odd = compare::outlying_layers(&values);
    let points: Vec<[f64; 2]> = layers.iter().zip(&values).map(|(l, v)| [l.layer as f64, *v]).collect();
    let odd_points: Vec<[f64; 2]> = odd.iter().map(|&i| points[i]).collect();
    let metric = p.metric;
    let (_, rect) = export::framed(ui, |ui| {
        Plot::new("sweep-plot")
            .height(260.0)
            .allow_scroll(false)
            .x_axis_label(tr("layer"))
            .y_axis_label(metric.label())
            .show(ui, |plot| {
                plot.line(
                    Line::new(metric.label(), PlotPoints::from(points.clone())).color(Color32::from_rgb(70, 130, 200)),
                );
                plot.points(
                    Points::new("layers", PlotPoints::from(points.clone()))
                        .radius(4.0)
                        .color(Color32::from_rgb(70, 130, 200)),
                );
                plot.points(
                    Points::new(tr("stands out"), PlotPoints::from(odd_points))
                        .radius(6.0)
                        .color(Color32::from_rgb(220, 70, 60)),
                );
            })
    });
    let json = || serde_json::to_string_pretty(&crate::report::sweep_json(roles)).unwrap_or_default();
    let csv = || {
        let mut csv = String::from("role,layer,tensor,mean,std,abs_max,kurtosis,outlier_frac\n");
        for l in layers {
            csv.push_str(&format!(
                "{role},{},{},{},{},{},{},{}\n",
                l.layer, l.tensor, l.mean, l.std, l.abs_max, l.kurtosis, l.outlier_frac
            ));
        }
        csv
    };
    export::menu(ui, "layer-sweep", Some(rect), Some(&csv), Some(&json));
    if !odd.is_empty() {
        let names: Vec<String> = odd.iter().map(|&i| layers[i].layer.to_string()).collect();
        ui.label(
            RichText::new(trf("layers that stand out: {}", &[&names.join(", ")])).color(Color32::from_rgb(220, 70, 60)),
        );
    }
}

fn diff_section(ui: &mut egui::Ui, p: &mut ComparePanel, ws: &Workspace, actions: &mut Vec<Action>) {
    ui.label(RichText::new(tr("Checkpoint diff")).strong().size(18.0)).on_hover_text(tr(
        "Every tensor present in both models: ‖B − A‖, ‖A‖, their ratio, the largest change and how many numbers changed.",
    ));
    ui.horizontal(|ui| {
        if ui.button(tr("Open a second model…")).on_hover_text(tr("base vs fine-tuned, f32 vs bf16 copy, …")).clicked()
        {
            p.wants_other_dialog = true;
        }
        if let Some(path) = &ws.other_path {
            ui.monospace(path.display().to_string());
        }
    });
    match ws.other_model() {
        None if ws.other_path.is_some() => {
            ui.spinner();
            return;
        }
        None => return,
        Some(Err(e)) => {
            ui.label(RichText::new(e).color(ui.visuals().error_fg_color));
            return;
        }
        Some(Ok(_)) => {}
    }
    let d = match ws.current_diff() {
        Some(Ok(d)) => d,
        Some(Err(e)) => {
            ui.label(RichText::new(e).color(ui.visuals().error_fg_color));
            return;
        }
        None => {
            let progress = ws.other_path.as_ref().and_then(|k| ws.jobs.diff.progress(k));
            return progress_or_request(ui, progress, Action::RequestDiff, actions);
        }
    };
    let json = || serde_json::to_string_pretty(&crate::report::diff_json(d)).unwrap_or_default();
    export::menu(ui, "checkpoint-diff", None, None, Some(&json));
    let mut rows: Vec<&compare::TensorDiff> = d.tensors.iter().collect();
    rows.sort_by(|x, y| y.rel.total_cmp(&x.rel));
    egui::Grid::new("diff-table").striped(true).num_columns(5).show(ui, |ui| {
        for h in [tr("tensor"), "‖B − A‖ / ‖A‖", "max |Δ|", tr("changed"), tr("elements")] {
            ui.label(RichText::new(h).weak());
        }
        ui.end_row();
        for t in rows.iter().take(60) {
            if ui.link(RichText::new(&t.tensor).monospace()).clicked() {
                actions.push(Action::SelectByName(t.tensor.clone()));
            }
            ui.monospace(format::num(t.rel));
            ui.monospace(format::num(t.max_abs_diff));
            ui.monospace(t.changed.to_string());
            ui.monospace(t.numel.to_string());
            ui.end_row();
        }
    });
    for (name, a, b) in &d.shape_mismatch {
        ui.label(trf("shape differs: {} {} vs {}", &[name, &format::shape(a), &format::shape(b)]));
    }
    for (names, what) in [(&d.only_in_a, tr("only in this model:")), (&d.only_in_b, tr("only in the second model:"))] {
        if !names.is_empty() {
            ui.label(RichText::new(format!("{what} {}", names.join(", "))).weak());
        }
    }
}
