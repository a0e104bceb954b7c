//! Across layers, checkpoints and precisions: a layer sweep of any repeated tensor role
//! (which layer is odd?), a diff against a second model (what did fine-tuning or conversion
//! change?), and the prompt run in two precisions of the model (what does quantizing do to
//! the next token?). The figures come from workers (`analysis::compare`,
//! `engine::precision`); this file draws them.

use egui::{Color32, RichText};
use egui_plot::{Line, Plot, PlotPoints, Points};

use crate::analysis::cast::CastTarget;
use crate::analysis::compare::{self, LayerFigure};
use crate::engine::precision::Precision;
use crate::engine::quant_matvec::Arith;
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
    /// The two precisions picked (None: the model's defaults, see [`default_pair`]).
    pub precisions: Option<(Precision, Precision)>,
    /// Asks the shell for the folder dialog (it owns the desktop dialogs).
    pub wants_other_dialog: bool,
    /// Overlaid histograms on a log density axis.
    pub overlay_log: bool,
    /// The diff row whose histogram of B − A is shown.
    pub delta_of: Option<String>,
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
        self.precisions = None;
    }

    fn ui(&mut self, ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>) {
        egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
            help::note(ui, "compare");
            sweep_section(ui, self, ws, actions);
            ui.separator();
            diff_section(ui, self, ws, actions);
            ui.separator();
            overlay_section(ui, self, ws, actions);
            ui.separator();
            precision_section(ui, self, ws, actions);
        });
    }
}

/// A Compare job's result, its error, or its progress (see [`super::job_result`]).
fn result_or_progress<'a, T>(
    ui: &mut egui::Ui,
    result: Option<&'a Result<T, String>>,
    progress: Option<f32>,
    request: Action,
    actions: &mut Vec<Action>,
) -> Option<&'a T> {
    super::job_result(ui, result, progress, tr("reading every layer on worker threads…"), request, actions)
}

fn sweep_section(ui: &mut egui::Ui, p: &mut ComparePanel, ws: &Workspace, actions: &mut Vec<Action>) {
    ui.label(RichText::new(tr("Layer sweep")).strong().size(18.0)).on_hover_text(tr(
        "The same tensor in every decoder layer, one point per layer. Red points stand out from the others (robust z-score > 3).",
    ));
    let progress = ws.jobs.sweep.progress(&());
    let Some(roles) = result_or_progress(ui, ws.jobs.sweep.get(&()), progress, Action::RequestSweep, actions) else {
        return;
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
    let progress = ws.other_path.as_ref().and_then(|k| ws.jobs.diff.progress(k));
    let Some(d) = result_or_progress(ui, ws.current_diff(), progress, Action::RequestDiff, actions) else { return };
    let json = || serde_json::to_string_pretty(&crate::report::diff_json(d)).unwrap_or_default();
    export::menu(ui, "checkpoint-diff", None, None, Some(&json));
    let mut rows: Vec<&compare::TensorDiff> = d.tensors.iter().collect();
    rows.sort_by(|x, y| y.rel.total_cmp(&x.rel));
    // Its own scroll area: the overlay and the precision what-if below stay in reach.
    egui::ScrollArea::vertical().id_salt("diff-scroll").max_height(320.0).show(ui, |ui| {
        egui::Grid::new("diff-table").striped(true).num_columns(5).show(ui, |ui| {
            for h in [tr("tensor"), "‖B − A‖ / ‖A‖", "max |Δ|", tr("changed"), tr("elements")] {
                ui.label(RichText::new(h).weak());
            }
            ui.end_row();
            for t in rows.iter().take(60) {
                ui.horizontal(|ui| {
                    if ui.link(RichText::new(&t.tensor).monospace()).clicked() {
                        actions.push(Action::SelectByName(t.tensor.clone()));
                    }
                    if ui.small_button("Δ").on_hover_text(tr("The histogram of B − A for this tensor")).clicked() {
                        p.delta_of = Some(t.tensor.clone());
                    }
                    if ui
                        .small_button("⊕")
                        .on_hover_text(tr("Overlay this tensor's histograms from both models"))
                        .clicked()
                    {
                        for second in [false, true] {
                            actions.push(Action::AddToOverlay(crate::workspace::OverlayEntry {
                                tensor: t.tensor.clone(),
                                second,
                            }));
                        }
                    }
                });
                ui.monospace(format::num(t.rel));
                ui.monospace(format::num(t.max_abs_diff));
                ui.monospace(t.changed.to_string());
                ui.monospace(t.numel.to_string());
                ui.end_row();
            }
        });
    });
    if let Some(name) = p.delta_of.clone() {
        delta_plot(ui, ws, &name, actions);
    }
    for (name, a, b) in &d.shape_mismatch {
        ui.label(trf("shape differs: {} {} vs {}", &[name, &format::shape(a), &format::shape(b)]));
    }
    for (names, what) in [(&d.only_in_a, tr("only in this model:")), (&d.only_in_b, tr("only in the second model:"))] {
        if !names.is_empty() {
            ui.label(RichText::new(format!("{what} {}", names.join(", "))).weak());
        }
    }
}

/// The histogram of B − A for one tensor of the diff: how the change is spread (a bf16
/// copy: a narrow symmetric spike; fine-tuning: wider, maybe skewed).
fn delta_plot(ui: &mut egui::Ui, ws: &Workspace, name: &str, actions: &mut Vec<Action>) {
    ui.label(RichText::new(trf("B − A of {}", &[&format::visible(name)])).strong());
    let request = Action::RequestDeltaHistogram(name.to_string());
    let Some(h) = result_or_progress(ui, ws.delta_histogram(name), None, request, actions) else { return };
    let plot = Plot::new("delta-plot").height(180.0).allow_scroll(false).show(ui, |plot| {
        let bars: Vec<egui_plot::Bar> = h
            .counts
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                egui_plot::Bar::new((h.edges[i] + h.edges[i + 1]) / 2.0, c as f64).width(h.edges[i + 1] - h.edges[i])
            })
            .collect();
        plot.bar_chart(egui_plot::BarChart::new("B − A", bars).color(Color32::from_rgb(213, 94, 0)));
    });
    let json = || serde_json::to_string_pretty(h).unwrap_or_default();
    export::menu(ui, "delta-histogram", Some(plot.response.rect), None, Some(&json));
}

/// Colours of the overlaid outlines, distinct for the colour-blind too (Okabe–Ito).
const OVERLAY_COLOURS: [Color32; 4] = [
    Color32::from_rgb(0, 114, 178),
    Color32::from_rgb(230, 159, 0),
    Color32::from_rgb(0, 158, 115),
    Color32::from_rgb(204, 121, 167),
];

fn overlay_section(ui: &mut egui::Ui, p: &mut ComparePanel, ws: &Workspace, actions: &mut Vec<Action>) {
    ui.label(RichText::new(tr("Overlaid histograms")).strong().size(18.0)).on_hover_text(tr(
        "Up to four tensors on one plot, each as a density (its histogram divided by its size and the bin width), so a small and a large tensor compare by shape",
    ));
    if ws.overlay.is_empty() {
        ui.label(
            RichText::new(tr("Add tensors with “+ Overlay histogram” on a tensor's page, or ⊕ on a row of the diff."))
                .weak(),
        );
        return;
    }
    for (i, e) in ws.overlay.iter().enumerate() {
        ui.horizontal(|ui| {
            ui.colored_label(OVERLAY_COLOURS[i % 4], "■");
            let which = if e.second { tr("second model") } else { tr("this model") };
            ui.monospace(format!("{}  ({which})", format::visible(&e.tensor)));
            if ui.small_button("✖").on_hover_text(tr("Remove from the overlay")).clicked() {
                actions.push(Action::RemoveFromOverlay(i));
            }
        });
    }
    let request = Action::RequestOverlay;
    let Some(o) = result_or_progress(ui, ws.current_overlay(), ws.overlay_progress(), request, actions) else { return };
    ui.checkbox(&mut p.overlay_log, tr("log density"))
        .on_hover_text(tr("A logarithmic axis shows the rare large values in the tails"));
    let log = p.overlay_log;
    let plot = Plot::new("overlay-plot").height(260.0).legend(egui_plot::Legend::default()).show(ui, |plot| {
        for (i, s) in o.series.iter().enumerate() {
            // A step outline: each bin's density across its width.
            let mut points = Vec::with_capacity(2 * s.density.len());
            for (b, d) in s.density.iter().enumerate() {
                let y = if log { if *d > 0.0 { d.log10() } else { continue } } else { *d };
                points.push([o.edges[b], y]);
                points.push([o.edges[b + 1], y]);
            }
            plot.line(Line::new(s.label.clone(), PlotPoints::from(points)).color(OVERLAY_COLOURS[i % 4]).width(2.0));
        }
    });
    let csv = || crate::analysis::overlay::csv(o);
    let json = || serde_json::to_string_pretty(&**o).unwrap_or_default();
    export::menu(ui, "overlaid-histograms", Some(plot.response.rect), Some(&csv), Some(&json));
}

fn is_quantized(ws: &Workspace) -> bool {
    ws.model.as_ref().is_some_and(|m| m.folder.checkpoint.is_quantized())
}

/// What a class compares first: a quantized file as llama.cpp runs it against its exact
/// values; anything else as stored against 4-bit weights.
fn default_pair(ws: &Workspace) -> (Precision, Precision) {
    if is_quantized(ws) {
        (Precision::Arith(Arith::LlamaCpp), Precision::Arith(Arith::Exact))
    } else {
        (Precision::AsStored, Precision::RoundTrip(CastTarget::Block(crate::checkpoint::quant::GgmlType::Q4_0)))
    }
}

fn precision_choices(ws: &Workspace) -> Vec<Precision> {
    let mut v = vec![Precision::AsStored];
    if is_quantized(ws) {
        v.extend([Precision::Arith(Arith::LlamaCpp), Precision::Arith(Arith::Exact)]);
    }
    v.extend(CastTarget::all().into_iter().map(Precision::RoundTrip));
    if let Some(p) = &ws.other_path {
        v.push(Precision::File(p.clone()));
    }
    v
}

fn precision_name(p: &Precision) -> String {
    match p {
        Precision::AsStored => tr("as stored").to_string(),
        Precision::Arith(Arith::LlamaCpp) => tr("llama.cpp arithmetic").to_string(),
        Precision::Arith(Arith::Exact) => tr("exact arithmetic").to_string(),
        Precision::RoundTrip(t) => trf("weights → {}", &[&t.name()]),
        Precision::File(path) => {
            trf("the second model ({})", &[&path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()])
        }
    }
}

fn precision_section(ui: &mut egui::Ui, p: &mut ComparePanel, ws: &Workspace, actions: &mut Vec<Action>) {
    ui.label(RichText::new(tr("Precision what-if: the whole model")).strong().size(18.0)).on_hover_text(tr(
        "The prompt run two ways — A generates greedily, B reads A's tokens — and at every step the two next-token distributions compared: KL(A‖B), whether the top tokens agree, and both greedy continuations.",
    ));
    let (mut a, mut b) = p.precisions.clone().unwrap_or_else(|| default_pair(ws));
    let choices = precision_choices(ws);
    ui.horizontal(|ui| {
        for (label, pick, salt) in [("A", &mut a, "precision-a"), ("B", &mut b, "precision-b")] {
            let label = ui.label(RichText::new(label).strong());
            egui::ComboBox::from_id_salt(salt)
                .selected_text(precision_name(pick))
                .show_ui(ui, |ui| {
                    for c in &choices {
                        ui.selectable_value(pick, c.clone(), precision_name(c));
                    }
                })
                .response
                .labelled_by(label.id);
        }
    });
    p.precisions = Some((a.clone(), b.clone()));
    if ws.prompt.trim().is_empty() {
        ui.label(RichText::new(tr("Type a prompt in the Token probabilities tab first.")).weak());
        return;
    }
    let key = ws.precision_key(a.clone(), b.clone());
    let Some(result) = ws.jobs.precision.get(&key) else {
        match ws.jobs.precision.progress(&key) {
            Some(progress) => {
                super::progress_with_cancel(ui, progress, 240.0, Action::CancelPrecision, actions);
                ui.label(RichText::new(tr("loading each precision in turn and running the prompt…")).weak());
            }
            None => {
                let run = ui.button(tr("Compare on this prompt")).on_hover_text(trf(
                    "Loads A, then B (one at a time), and compares {} greedy steps",
                    &[&Workspace::PRECISION_STEPS],
                ));
                if run.clicked() {
                    actions.push(Action::RequestPrecision(a, b));
                }
            }
        }
        return;
    };
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            ui.label(RichText::new(e).color(ui.visuals().error_fg_color));
            return;
        }
    };
    let s = &r.summary;
    let parts = s.first_divergence.map_or(tr("the two greedy texts never part").to_string(), |d| {
        trf("the two greedy texts part at step {}", &[&d])
    });
    ui.label(trf(
        "mean KL {} nats (max {}); top tokens agree at {}% of steps; {}",
        &[&format::num(s.mean_kl), &format::num(s.max_kl), &format!("{:.0}", 100.0 * s.top1_agreement), &parts],
    ));
    let json = || serde_json::to_string_pretty(&crate::report::precision_json(r)).unwrap_or_default();
    export::menu(ui, "precision-compare", None, None, Some(&json));
    egui::Grid::new("precision-texts").num_columns(2).show(ui, |ui| {
        for (label, c) in [("A", &r.a), ("B", &r.b)] {
            ui.label(RichText::new(format!("{label} · {}", c.precision)).strong());
            ui.add(egui::Label::new(RichText::new(&c.greedy_text).monospace()).wrap());
            ui.end_row();
        }
    });
    ui.add_space(6.0);
    egui::Grid::new("precision-steps").striped(true).num_columns(6).show(ui, |ui| {
        for h in [tr("step"), tr("A's token"), "p_A", "p_B", "KL(A‖B)", tr("B's top token")] {
            ui.label(RichText::new(h).weak());
        }
        ui.end_row();
        for (i, st) in r.steps.iter().enumerate() {
            ui.monospace(i.to_string());
            ui.monospace(format!("{:?}", r.a.pieces.get(i).map(String::as_str).unwrap_or("")));
            ui.monospace(format!("{:.4}", st.p_a));
            ui.monospace(format!("{:.4}", st.p_b));
            ui.monospace(format::num(st.kl));
            let piece = format!("{:?}", r.top1_b_pieces.get(i).map(String::as_str).unwrap_or(""));
            if st.token == st.top1_b {
                ui.monospace(format!("= {piece}"));
            } else {
                ui.label(RichText::new(format!("≠ {piece}")).monospace().color(Color32::from_rgb(220, 80, 60)))
                    .on_hover_text(tr("B would have picked another token here"));
            }
            ui.end_row();
        }
    });
}
