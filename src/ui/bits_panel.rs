//! The Bits view: one number in FP32, BF16, FP16 and both FP8 formats, bit by bit, with the
//! formula filled in, the rounding each cast makes, and bits you can click to flip.
//! And the whole-tensor "what if I cast this" report. Numbers come from
//! [`crate::analysis::floatbits`] and [`crate::analysis::cast`]; this file only draws.

use egui::{Color32, RichText};
use egui_plot::{Bar, BarChart, Plot};

use super::app::{AnatomyApp, Selection};
use super::format;
use crate::analysis::cast::CastReport;
use crate::analysis::floatbits::{self, Class, Decoded, Format};
use crate::checkpoint::Dtype;

const SIGN: Color32 = Color32::from_rgb(200, 70, 70);
const EXPONENT: Color32 = Color32::from_rgb(60, 120, 200);
const MANTISSA: Color32 = Color32::from_rgb(220, 150, 40);

/// The playground value and where it came from.
#[derive(Default)]
pub struct BitsState {
    /// The tensor the view belongs to (kept when the user types a value of their own).
    pub tensor: String,
    /// Tensor, flat index and stored dtype of the element the value was taken from.
    pub source: Option<(String, usize, Dtype)>,
    /// The value as stored (what cast errors are measured against).
    pub stored: f64,
    /// The value being looked at, as f32 bits so FP32 bit flips are exact (NaN payloads too).
    pub value_bits: u32,
    pub typed: String,
    /// Index typed into the element picker.
    pub index: usize,
    /// A counter for "show a random one", so the sequence replays.
    pub draws: u64,
}

impl BitsState {
    pub fn load(&mut self, tensor: &str, index: usize, value: f64, dtype: Option<Dtype>) {
        self.tensor = tensor.to_string();
        self.source = dtype.map(|d| (tensor.to_string(), index, d));
        self.stored = value;
        self.value_bits = (value as f32).to_bits();
        self.index = index;
        self.typed = format!("{value}");
    }

    pub fn set_typed(&mut self, value: f64) {
        self.source = None;
        self.stored = value;
        self.value_bits = (value as f32).to_bits();
    }

    pub fn value(&self) -> f32 {
        f32::from_bits(self.value_bits)
    }

    pub fn is_edited(&self) -> bool {
        self.value_bits != (self.stored as f32).to_bits()
    }
}

/// Element picker for the selected tensor: by index, the largest |x|, or a random one.
pub fn element_picker(ui: &mut egui::Ui, app: &mut AnatomyApp, tensor: &str, numel: usize) {
    if numel == 0 {
        return;
    }
    let abs_max_index = app.current_stats().and_then(|s| s.as_ref().ok()).map(|s| s.abs_max_index as usize);
    let mut pick = None;
    ui.horizontal_wrapped(|ui| {
        let label = ui.label("element").on_hover_text("Flat (row-major) index: row × columns + column");
        let mut index = app.bits.index.min(numel - 1);
        ui.add(egui::DragValue::new(&mut index).range(0..=numel - 1).speed(1.0)).labelled_by(label.id);
        app.bits.index = index;
        if ui.button("Show bits").clicked() {
            pick = Some(index);
        }
        if let Some(i) = abs_max_index
            && ui
                .button("largest |x|")
                .on_hover_text(
                    "The element with the largest magnitude: the one a low-precision cast is most likely to overflow",
                )
                .clicked()
        {
            pick = Some(i);
        }
        if ui.button("a random one").on_hover_text("A reproducible pseudo-random element").clicked() {
            app.bits.draws += 1;
            pick = Some((splitmix(app.bits.draws) % numel as u64) as usize);
        }
    });
    if let Some(i) = pick {
        app.inspect_element(tensor, i);
    }
}

fn splitmix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The five formats of the current value, with clickable bits.
pub fn bits_view(ui: &mut egui::Ui, app: &mut AnatomyApp) {
    let state = &mut app.bits;
    ui.horizontal_wrapped(|ui| match &state.source {
        Some((tensor, index, dtype)) => {
            ui.label(RichText::new(format!("{tensor}[{index}]")).monospace());
            ui.label(format!("stored as {dtype} = {}", state.stored));
        }
        None => {
            ui.label(format!("typed value {}", state.stored));
        }
    });
    ui.horizontal(|ui| {
        let label = ui.label("value");
        let edit = ui.add(egui::TextEdit::singleline(&mut state.typed).desired_width(160.0)).labelled_by(label.id);
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.button("Use").clicked() || enter {
            match state.typed.trim().parse::<f64>() {
                Ok(v) => state.set_typed(v),
                Err(_) => state.typed = format!("{} (not a number)", state.typed.trim()),
            }
        }
        if state.is_edited() && ui.button("Back to the stored value").clicked() {
            state.value_bits = (state.stored as f32).to_bits();
        }
    });
    let value = state.value();
    ui.label(RichText::new(format!("value = {}", fmt_value(value as f64))).strong().size(18.0))
        .on_hover_text("Click any bit below to flip it; every format then shows the new value");
    ui.add_space(4.0);
    let mut flip: Option<(Format, u32)> = None;
    for format in Format::ALL {
        let d = if format == Format::F32 {
            floatbits::decode(Format::F32, state.value_bits)
        } else {
            floatbits::cast(value, format)
        };
        if let Some(bit) = format_row(ui, &d, state.stored) {
            flip = Some((format, bit));
        }
        ui.add_space(6.0);
    }
    if let Some((format, bit)) = flip {
        if format == Format::F32 {
            state.value_bits ^= 1 << bit;
        } else {
            let d = floatbits::cast(value, format);
            let toggled = floatbits::decode(format, d.bits ^ (1 << bit));
            // Every BF16/FP16/FP8 value is exactly an f32, so this loses nothing.
            state.value_bits = (toggled.value as f32).to_bits();
        }
    }
}

/// One format: coloured bit cells, then the numbers. Returns a clicked bit position.
fn format_row(ui: &mut egui::Ui, d: &Decoded, stored: f64) -> Option<u32> {
    let f = d.format;
    let mut clicked = None;
    ui.horizontal(|ui| {
        ui.label(RichText::new(f.name()).strong().size(17.0)).on_hover_text(f.explanation());
        ui.label(RichText::new(d.hex()).monospace().weak());
        ui.label(RichText::new(d.class.as_str()).italics());
    });
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 1.0;
        ui.spacing_mut().button_padding = egui::vec2(3.0, 2.0);
        let total = f.total_bits();
        let m = f.mantissa_bits();
        for pos in (0..total).rev() {
            let bit = (d.bits >> pos) & 1;
            let (fill, field) = if pos == total - 1 {
                (SIGN, "sign")
            } else if pos >= m {
                (EXPONENT, "exponent")
            } else {
                (MANTISSA, "mantissa")
            };
            let fill = if bit == 1 { fill } else { fill.gamma_multiply(0.35) };
            let cell = egui::Button::new(RichText::new(bit.to_string()).monospace().color(Color32::WHITE))
                .fill(fill)
                .min_size(egui::vec2(if total > 16 { 15.0 } else { 22.0 }, 24.0));
            let r = ui.add(cell);
            let label = format!("{} bit {pos} ({field})", f.name());
            r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &label));
            if r.on_hover_text(format!("{label}: click to flip")).clicked() {
                clicked = Some(pos);
            }
            if pos == total - 1 || pos == m {
                ui.add_space(6.0);
            }
        }
    });
    egui::Grid::new(("bits-grid", f.key())).num_columns(2).show(ui, |ui| {
        ui.label("sign").on_hover_text("0 = positive, 1 = negative");
        ui.monospace(d.sign.to_string());
        ui.end_row();
        ui.label("exponent")
            .on_hover_text("Stored (biased) field, and the power of two it means after subtracting the bias");
        ui.monospace(format!(
            "{} = {} (biased), 2^{} (bias {})",
            d.exponent_bits_string(),
            d.exponent_field,
            d.exponent,
            f.bias()
        ));
        ui.end_row();
        ui.label("mantissa")
            .on_hover_text("Fraction bits after the binary point; normal numbers have an implicit leading 1");
        let implicit = d.implicit_bit().map(|b| format!("implicit {b}.")).unwrap_or_default();
        ui.monospace(format!("{implicit}{} = {}/2^{}", d.mantissa_bits_string(), d.mantissa_field, f.mantissa_bits()));
        ui.end_row();
        ui.label("formula");
        ui.monospace(d.formula());
        ui.end_row();
        ui.label("value");
        ui.monospace(fmt_value(d.value));
        ui.end_row();
        if d.class != Class::Nan && stored.is_finite() {
            let err = d.value - stored;
            let rel = if stored != 0.0 { format!(" ({:+.3e} relative)", err / stored.abs()) } else { String::new() };
            ui.label("rounding").on_hover_text("This format's value minus the stored value");
            ui.monospace(if err == 0.0 { "exact".to_string() } else { format!("{err:+.3e}{rel}") });
            ui.end_row();
        }
        let (down, up) = floatbits::neighbours(d);
        ui.label("neighbours").on_hover_text(
            "The representable values just below and just above: nothing in between exists in this format",
        );
        ui.monospace(format!(
            "{}  <  · <  {}",
            down.map(|x| fmt_value(x.value)).unwrap_or_else(|| "—".into()),
            up.map(|x| fmt_value(x.value)).unwrap_or_else(|| "—".into())
        ));
        ui.end_row();
    });
    clicked
}

fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+∞".into() } else { "−∞".into() }
    } else {
        format!("{v}")
    }
}

/// Whole-tensor cast what-if for the selected tensor.
pub fn cast_section(ui: &mut egui::Ui, app: &mut AnatomyApp) {
    let Selection::Tensor(_) = &app.selection else { return };
    ui.horizontal(|ui| {
        ui.label("cast to");
        for f in Format::TARGETS {
            ui.selectable_value(&mut app.cast_target, f, f.name()).on_hover_text(f.explanation());
        }
    });
    app.request_cast();
    if let Some(p) = app.cast_progress() {
        ui.horizontal(|ui| {
            ui.add(egui::ProgressBar::new(p).show_percentage().desired_width(300.0));
            if ui.button("Cancel").clicked() {
                app.casts.cancel();
            }
        });
        return;
    }
    match app.current_cast() {
        None => {}
        Some(Err(e)) => {
            ui.label(RichText::new(e).color(ui.visuals().error_fg_color));
        }
        Some(Ok(r)) => {
            let r = r.clone();
            cast_report_view(ui, &r);
        }
    }
}

fn cast_report_view(ui: &mut egui::Ui, r: &CastReport) {
    let f = r.to;
    let pct = |n: u64| if r.count == 0 { 0.0 } else { 100.0 * n as f64 / r.count as f64 };
    egui::Grid::new("cast-grid").striped(true).num_columns(3).show(ui, |ui| {
        let overflow_tip = if f.has_inf() {
            "finite values that became ±∞"
        } else {
            "values beyond ±448, clamped (saturated) to ±448"
        };
        let rows: [(&str, u64, &str); 4] = [
            ("exact", r.exact, "values that survive the cast unchanged"),
            ("overflow", r.overflow, overflow_tip),
            ("underflow", r.underflow, "non-zero values that became 0 (too small for the format)"),
            ("subnormal", r.subnormal, "values that land in the format's subnormal range, with fewer significant bits"),
        ];
        for (k, n, tip) in rows {
            ui.label(k).on_hover_text(tip);
            ui.monospace(n.to_string());
            ui.monospace(format!("{:.2}%", pct(n)));
            ui.end_row();
        }
        ui.label("abs error").on_hover_text("|cast − stored|, max and mean over the values that stayed in range");
        ui.monospace(format!("max {}", format::num(r.max_abs_error)));
        ui.monospace(format!("mean {}", format::num(r.mean_abs_error)));
        ui.end_row();
        ui.label("rel error").on_hover_text("|cast − stored| / |stored|");
        ui.monospace(format!("max {}", format::num(r.max_rel_error)));
        ui.monospace(format!("mean {}", format::num(r.mean_rel_error)));
        ui.end_row();
    });
    ui.label(RichText::new("relative error (log₁₀)").strong());
    let edges = &r.rel_error_log10_edges;
    let bars: Vec<Bar> = r
        .rel_error_log10_counts
        .iter()
        .enumerate()
        .map(|(i, &c)| Bar::new((edges[i] + edges[i + 1]) / 2.0, c as f64).width(edges[i + 1] - edges[i]))
        .collect();
    Plot::new("rel-error-plot")
        .height(180.0)
        .allow_scroll(false)
        .x_axis_label("log₁₀ |relative error|")
        .show(ui, |p| p.bar_chart(BarChart::new("relative error", bars).color(Color32::from_rgb(150, 90, 190))));

    ui.label(RichText::new("exponents used (FP32 view)").strong()).on_hover_text(
        "How many values have each power of two. Blue: normal range of the target format; orange: its subnormal range; red: outside (overflow above, flush to zero below).",
    );
    let normal = (f.emin(), f.bias().max(if f.has_inf() { f.bias() } else { (1 << f.exponent_bits()) - 1 - f.bias() }));
    let sub_low = f.emin() - f.mantissa_bits() as i32;
    let bars: Vec<Bar> = r
        .exponent_counts
        .iter()
        .map(|&(e, c)| {
            let color = if e >= normal.0 && e <= normal.1 {
                EXPONENT
            } else if e >= sub_low && e < normal.0 {
                MANTISSA
            } else {
                SIGN
            };
            Bar::new(e as f64, c as f64).width(0.9).fill(color)
        })
        .collect();
    Plot::new("exponent-plot")
        .height(180.0)
        .allow_scroll(false)
        .x_axis_label("exponent e (value ≈ 2^e)")
        .show(ui, |p| p.bar_chart(BarChart::new("exponents", bars)));
}
