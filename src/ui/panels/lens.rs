//! The logit lens and the residual stream: at a chosen position, what each layer's residual
//! stream would predict if the rest of the model were skipped (top-5 per layer, going down
//! the layers; the last layer is the Token panel's distribution), how the finally chosen
//! token climbs through the layers, and the residual's norm per layer and token.

use egui::{Color32, RichText, Sense};
use egui_plot::{Line, Plot, PlotPoints, Points};

use crate::analysis::attention::{rank_of, top_k};
use crate::analysis::routing::viridis;
use crate::ui::i18n::{tr, trf};
use crate::ui::{export, help};
use crate::workspace::{Action, Workspace};

#[derive(Default)]
pub struct LensPanel {
    /// The position looked at (None: the last one).
    pub position: Option<usize>,
}

impl super::Panel for LensPanel {
    fn id(&self) -> &'static str {
        "lens"
    }

    fn title(&self) -> &'static str {
        tr("Logit lens")
    }

    fn tooltip(&self) -> &'static str {
        tr("What each layer would predict, and how the residual stream grows")
    }

    fn reset(&mut self) {
        self.position = None;
    }

    fn ui(&mut self, ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>) {
        actions.push(Action::WantInternals);
        egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| show(ui, self, ws, actions));
    }
}

fn show(ui: &mut egui::Ui, st: &mut LensPanel, ws: &Workspace, actions: &mut Vec<Action>) {
    help::note(ui, "lens");
    let Some(internals) = crate::ui::prompt_bar::internals_or_prompt(ui, ws, actions) else { return };
    let snap = ws.engine.snapshot.as_ref().expect("internals come from a snapshot");
    let Some(codec) = ws.engine.loaded.as_ref().map(|l| &l.codec) else { return };
    let last = internals.len() - 1;
    let pos = st.position.filter(|&p| p <= last).unwrap_or(last);
    ui.label(RichText::new(tr("click a token to read the lens there")).weak());
    ui.horizontal_wrapped(|ui| {
        for (i, p) in snap.pieces.iter().take(internals.len()).enumerate() {
            let text = if p.special { p.token.clone() } else { p.text.replace(' ', "␣").replace('\n', "⏎") };
            if ui.selectable_label(i == pos, RichText::new(text).monospace()).clicked() {
                st.position = Some(i);
            }
        }
    });
    let forwards = snap.forwards;
    let base = ws.show_base && ws.active.is_some();
    let lens =
        ws.engine.lens.as_ref().filter(|(f, l)| *f == forwards && l.position == pos && l.base == base).map(|(_, l)| l);
    let Some(lens) = lens else {
        actions.push(Action::LensAt(pos));
        ui.spinner();
        return;
    };
    // The token the model finally puts there: the one that came next, or its own top choice.
    let final_probs = lens.probs.last().map(Vec::as_slice).unwrap_or_default();
    let chosen =
        snap.tokens.get(pos + 1).copied().unwrap_or_else(|| top_k(final_probs, 1).first().map(|t| t.0).unwrap_or(0));
    let chosen_piece = codec.piece(chosen);
    egui::Grid::new("lens-table").striped(true).num_columns(7).show(ui, |ui| {
        ui.label(RichText::new(tr("layer")).weak());
        for k in 1..=5 {
            ui.label(RichText::new(format!("#{k}")).weak());
        }
        ui.label(RichText::new(trf("rank of “{}”", &[&chosen_piece.text])).weak());
        ui.end_row();
        for (i, probs) in lens.probs.iter().enumerate() {
            ui.monospace(if i == 0 { "embed".to_string() } else { (i - 1).to_string() });
            for (id, p) in top_k(probs, 5) {
                let piece = codec.piece(id);
                let text = if piece.special { piece.token.clone() } else { piece.text.replace(' ', "␣") };
                let mut rt = RichText::new(format!("{text} {p:.3}")).monospace();
                if id == chosen {
                    rt = rt.color(Color32::from_rgb(230, 160, 40)).strong();
                }
                ui.label(rt);
            }
            ui.monospace(rank_of(probs, chosen).to_string());
            ui.end_row();
        }
    });
    let json = || {
        let v = crate::report::lens_json(&snap.tokens, lens, &internals.residual_norms(), 5, &|id| codec.piece(id));
        serde_json::to_string_pretty(&v).unwrap_or_default()
    };
    export::menu(ui, &format!("logit-lens-position{pos}"), None, None, Some(&json));
    ui.separator();
    let points: Vec<[f64; 2]> =
        lens.probs.iter().enumerate().map(|(i, p)| [i as f64 - 1.0, p[chosen as usize] as f64]).collect();
    ui.label(RichText::new(trf("probability of “{}” layer by layer (−1 = embedding)", &[&chosen_piece.text])).strong());
    let (_, rect) = export::framed(ui, |ui| {
        Plot::new("lens-rank")
            .height(200.0)
            .allow_scroll(false)
            .x_axis_label(tr("layer"))
            .y_axis_label(tr("probability"))
            .show(ui, |plot| {
                plot.line(Line::new("p", PlotPoints::from(points.clone())).color(Color32::from_rgb(230, 160, 40)));
                plot.points(
                    Points::new("layers", PlotPoints::from(points)).radius(4.0).color(Color32::from_rgb(230, 160, 40)),
                );
            })
    });
    export::menu(ui, &format!("logit-lens-probability-position{pos}"), Some(rect), None, None);
    ui.separator();
    residual_heatmap(ui, &internals.residual_norms(), &snap.pieces.iter().map(|p| p.text.clone()).collect::<Vec<_>>());
}

/// ‖h‖ per layer (rows, embedding first) and token (columns), colour on a log scale so the
/// early layers stay readable next to the large late ones.
fn residual_heatmap(ui: &mut egui::Ui, norms: &[Vec<f32>], labels: &[String]) {
    ui.label(RichText::new(tr("residual stream norm ‖h‖ per layer and token")).strong()).on_hover_text(tr(
        "How large each token's vector is after each layer. It usually grows layer by layer; a token far above the others is an outlier token (often the first one).",
    ));
    let max = norms.iter().flatten().copied().fold(f32::MIN_POSITIVE, f32::max).ln_1p();
    let cell = egui::vec2(26.0, 14.0);
    egui::Grid::new("residual-norms").spacing(egui::vec2(1.0, 1.0)).show(ui, |ui| {
        for (l, row) in norms.iter().enumerate() {
            ui.label(RichText::new(if l == 0 { "embed".to_string() } else { (l - 1).to_string() }).small().monospace());
            for (t, &n) in row.iter().enumerate() {
                let (rect, resp) = ui.allocate_exact_size(cell, Sense::hover());
                let [r, g, b] = viridis((n.ln_1p() / max).clamp(0.0, 1.0));
                ui.painter().rect_filled(rect, 1.0, Color32::from_rgb(r, g, b));
                resp.on_hover_text(format!("“{}”: {n:.3}", labels.get(t).cloned().unwrap_or_default()));
            }
            ui.end_row();
        }
    });
}
