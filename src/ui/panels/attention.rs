//! Attention, layer by layer: a tokens × tokens map for one head (query rows, key columns),
//! every head of a layer side by side, and where the current token looks, with the famous
//! patterns (previous-token heads, attention sinks) pointed out. Reads the weights the engine
//! recorded for the Token panel's sequence.

use egui::{Color32, RichText, Sense, Stroke};

use crate::analysis::attention::{self, HeadPattern};
use crate::analysis::routing::viridis;
use crate::engine::internals::{Internals, MAX_RECORDED_POSITIONS};
use crate::ui::i18n::{tr, trf};
use crate::ui::prompt_bar::internals_or_prompt;
use crate::ui::{export, help};
use crate::workspace::{Action, Workspace};

#[derive(Default)]
pub struct AttentionPanel {
    pub layer: usize,
    pub head: usize,
    pub all_heads: bool,
}

impl super::Panel for AttentionPanel {
    fn id(&self) -> &'static str {
        "attention"
    }

    fn title(&self) -> &'static str {
        tr("Attention")
    }

    fn tooltip(&self) -> &'static str {
        tr("Which earlier tokens each token looks at, per layer and head")
    }

    fn reset(&mut self) {
        *self = Self::default();
    }

    fn ui(&mut self, ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>) {
        actions.push(Action::WantInternals);
        egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| show(ui, self, ws, actions));
    }
}

fn color(w: f32) -> Color32 {
    let [r, g, b] = viridis(w.clamp(0.0, 1.0));
    Color32::from_rgb(r, g, b)
}

fn pattern_text(p: HeadPattern) -> String {
    match p {
        HeadPattern::PreviousToken(s) => trf("previous-token head ({}%)", &[&format!("{:.0}", 100.0 * s)]),
        HeadPattern::FirstTokenSink(s) => {
            trf("attention sink on the first token ({}%)", &[&format!("{:.0}", 100.0 * s)])
        }
        HeadPattern::SelfToken(s) => trf("looks at itself ({}%)", &[&format!("{:.0}", 100.0 * s)]),
    }
}

fn show(ui: &mut egui::Ui, st: &mut AttentionPanel, ws: &Workspace, actions: &mut Vec<Action>) {
    help::note(ui, "attention");
    let Some(internals) = internals_or_prompt(ui, ws, actions) else { return };
    let snap = ws.engine.snapshot.as_ref().expect("internals come from a snapshot");
    let layers = internals.attention.first().map(|l| l.len()).unwrap_or(0);
    if layers == 0 {
        return;
    }
    st.layer = st.layer.min(layers - 1);
    st.head = st.head.min(internals.heads.saturating_sub(1));
    let labels: Vec<String> = snap
        .pieces
        .iter()
        .take(internals.len())
        .map(|p| if p.special { p.token.clone() } else { p.text.replace('\n', "⏎") })
        .collect();
    if internals.truncated(snap.tokens.len()) {
        ui.label(RichText::new(trf("recorded for the first {} tokens only", &[&MAX_RECORDED_POSITIONS])).weak());
    }
    ui.horizontal(|ui| {
        let label = ui.label(tr("layer"));
        ui.add(egui::DragValue::new(&mut st.layer).range(0..=layers - 1)).labelled_by(label.id);
        let label = ui.label(tr("head"));
        ui.add(egui::DragValue::new(&mut st.head).range(0..=internals.heads.saturating_sub(1))).labelled_by(label.id);
        ui.checkbox(&mut st.all_heads, tr("every head of the layer"));
    });
    if st.all_heads {
        small_multiples(ui, st, internals, &labels);
    } else {
        let rows = internals.head_rows(st.layer, st.head);
        if let Some(p) = attention::head_pattern(&rows) {
            ui.label(RichText::new(pattern_text(p)).strong().color(Color32::from_rgb(230, 160, 40)));
        }
        let cell = ((ui.available_width() - 140.0) / rows.len().max(1) as f32).clamp(8.0, 44.0);
        let rect = heatmap(ui, &rows, &labels, cell, true);
        let json = || {
            let v = crate::report::attention_json(&snap.tokens, internals, Some(st.layer), Some(st.head));
            serde_json::to_string_pretty(&v).unwrap_or_default()
        };
        export::menu(ui, &format!("attention-layer{}-head{}", st.layer, st.head), Some(rect), None, Some(&json));
    }
    ui.separator();
    where_it_looks(ui, st, internals, &labels);
}

/// A causal map: row i (query) has i + 1 cells (keys). With `labels_on`, token labels on both
/// axes and a hover for each weight. Returns the drawn rect.
fn heatmap(ui: &mut egui::Ui, rows: &[&[f32]], labels: &[String], cell: f32, labels_on: bool) -> egui::Rect {
    let t = rows.len();
    // Token labels on the rows; the key columns carry their positions (words would overlap).
    let (margin, top) = if labels_on { (130.0, 18.0) } else { (0.0, 0.0) };
    let size = egui::vec2(margin + cell * t as f32, top + cell * t as f32);
    let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(rect);
    let origin = rect.min + egui::vec2(margin, top);
    let font = egui::FontId::monospace((cell * 0.6).clamp(10.0, 15.0));
    for (i, row) in rows.iter().enumerate() {
        for (j, &w) in row.iter().enumerate() {
            let r = egui::Rect::from_min_size(
                origin + egui::vec2(j as f32 * cell, i as f32 * cell),
                egui::vec2(cell, cell),
            );
            painter.rect_filled(r.shrink(0.5), 1.0, color(w));
        }
        if labels_on {
            let text = format!("{i} {}", labels.get(i).cloned().unwrap_or_default());
            let color = ui.visuals().text_color();
            let row_at = origin + egui::vec2(-4.0, (i as f32 + 0.5) * cell);
            painter.text(row_at, egui::Align2::RIGHT_CENTER, &text, font.clone(), color);
            let column_at = origin + egui::vec2((i as f32 + 0.5) * cell, -2.0);
            painter.text(column_at, egui::Align2::CENTER_BOTTOM, i.to_string(), font.clone(), color);
        }
    }
    if let Some(pos) = response.hover_pos() {
        let (j, i) = (((pos.x - origin.x) / cell).floor(), ((pos.y - origin.y) / cell).floor());
        if i >= 0.0 && j >= 0.0 && (i as usize) < t && (j as usize) <= i as usize {
            let (i, j) = (i as usize, j as usize);
            let w = rows[i][j];
            let tip = trf(
                "query {} “{}” → key {} “{}”: {}",
                &[
                    &i,
                    &labels.get(i).cloned().unwrap_or_default(),
                    &j,
                    &labels.get(j).cloned().unwrap_or_default(),
                    &format!("{w:.4}"),
                ],
            );
            response.on_hover_text(tip);
        }
    }
    rect
}

fn small_multiples(ui: &mut egui::Ui, st: &mut AttentionPanel, internals: &Internals, labels: &[String]) {
    let t = internals.len().max(1);
    let cell = (120.0 / t as f32).clamp(2.0, 12.0);
    ui.horizontal_wrapped(|ui| {
        for h in 0..internals.heads {
            ui.vertical(|ui| {
                let rows = internals.head_rows(st.layer, h);
                let badge = attention::head_pattern(&rows).map(|p| match p {
                    HeadPattern::PreviousToken(_) => " ←",
                    HeadPattern::FirstTokenSink(_) => " ⚓",
                    HeadPattern::SelfToken(_) => " ○",
                });
                if ui.link(format!("{}{}", trf("head {}", &[&h]), badge.unwrap_or(""))).clicked() {
                    st.head = h;
                    st.all_heads = false;
                }
                heatmap(ui, &rows, labels, cell, false);
            });
        }
    });
    ui.label(
        RichText::new(tr("← previous-token head · ⚓ attention sink on the first token · ○ looks at itself")).weak(),
    );
}

/// For the last recorded token: each head's weights over the tokens before it, as bars.
fn where_it_looks(ui: &mut egui::Ui, st: &AttentionPanel, internals: &Internals, labels: &[String]) {
    let Some(last) = internals.attention.last() else { return };
    let pos = internals.len() - 1;
    ui.label(
        RichText::new(trf(
            "where token {} “{}” looks, every head of layer {}",
            &[&pos, &labels.get(pos).cloned().unwrap_or_default(), &st.layer],
        ))
        .strong(),
    );
    let weights = &last[st.layer];
    egui::Grid::new("where-it-looks").num_columns(pos + 2).show(ui, |ui| {
        ui.label("");
        for l in labels.iter().take(pos + 1) {
            ui.label(RichText::new(l).monospace().small());
        }
        ui.end_row();
        for h in 0..internals.heads {
            ui.label(RichText::new(trf("head {}", &[&h])).small());
            for j in 0..=pos {
                let w = weights[h * (pos + 1) + j];
                let (rect, resp) = ui.allocate_exact_size(egui::vec2(28.0, 16.0), Sense::hover());
                ui.painter().rect_filled(rect, 1.0, ui.visuals().extreme_bg_color);
                let bar = egui::Rect::from_min_max(egui::pos2(rect.min.x, rect.max.y - rect.height() * w), rect.max);
                ui.painter().rect_filled(bar, 1.0, color(w));
                ui.painter().rect_stroke(
                    rect,
                    1.0,
                    Stroke::new(0.5, ui.visuals().weak_text_color()),
                    egui::StrokeKind::Inside,
                );
                resp.on_hover_text(format!("{w:.4}"));
            }
            ui.end_row();
        }
    });
}
