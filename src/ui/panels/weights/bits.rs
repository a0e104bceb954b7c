//! The Bits view: one number in FP32, BF16, FP16 and both FP8 formats, bit by bit, with the
//! formula filled in, the rounding each cast makes, and bits you can click to flip.
//! And the whole-tensor "what if I cast this" report. Numbers come from
//! [`crate::analysis::floatbits`] and [`crate::analysis::cast`]; this file only draws.

use egui::{Color32, RichText};
use egui_plot::{Bar, BarChart, Plot};

use crate::analysis::cast::{CastReport, CastTarget};
use crate::analysis::floatbits::{self, Class, Decoded, Format};
use crate::checkpoint::Dtype;
use crate::checkpoint::quant::GgmlType;
use crate::ui::i18n::{tr, trf};
use crate::ui::{export, format, help};
use crate::workspace::{Action, Workspace};

const SIGN: Color32 = Color32::from_rgb(200, 70, 70);
const EXPONENT: Color32 = Color32::from_rgb(60, 120, 200);
const MANTISSA: Color32 = Color32::from_rgb(220, 150, 40);

/// The playground value and where it came from.
#[derive(Default)]
pub struct BitsView {
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

impl BitsView {
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

    /// Points the view at a stored element (one read from the mmap).
    pub fn inspect(&mut self, ws: &Workspace, tensor: &str, index: usize) {
        if let Some(v) = ws.element(tensor, index) {
            let dtype = ws.model.as_ref().and_then(|m| m.folder.checkpoint.tensor(tensor)).map(|t| t.dtype);
            self.load(tensor, index, v, dtype);
        }
    }

    pub fn is_edited(&self) -> bool {
        self.value_bits != (self.stored as f32).to_bits()
    }
}

/// Element picker for the selected tensor: by index, the largest |x|, or a random one.
pub fn element_picker(ui: &mut egui::Ui, bits: &mut BitsView, ws: &Workspace, tensor: &str, numel: usize) {
    help::note(ui, "bits");
    if numel == 0 {
        return;
    }
    let abs_max_index = ws.current_stats().and_then(|s| s.as_ref().ok()).map(|s| s.abs_max_index as usize);
    let mut pick = None;
    ui.horizontal_wrapped(|ui| {
        let label = ui.label(tr("element")).on_hover_text(tr("Flat (row-major) index: row × columns + column"));
        let mut index = bits.index.min(numel - 1);
        ui.add(egui::DragValue::new(&mut index).range(0..=numel - 1).speed(1.0)).labelled_by(label.id);
        bits.index = index;
        if ui.button(tr("Show bits")).on_hover_text(tr("Take the element at this index apart")).clicked() {
            pick = Some(index);
        }
        if let Some(i) = abs_max_index
            && ui
                .button(tr("largest |x|"))
                .on_hover_text(tr(
                    "The element with the largest magnitude: the one a low-precision cast is most likely to overflow",
                ))
                .clicked()
        {
            pick = Some(i);
        }
        if ui.button(tr("a random one")).on_hover_text(tr("A reproducible pseudo-random element")).clicked() {
            bits.draws += 1;
            pick = Some((splitmix(bits.draws) % numel as u64) as usize);
        }
    });
    if let Some(i) = pick {
        bits.inspect(ws, tensor, i);
    }
}

fn splitmix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The five formats of the current value, with clickable bits.
pub fn bits_view(ui: &mut egui::Ui, state: &mut BitsView) {
    ui.horizontal_wrapped(|ui| match &state.source {
        Some((tensor, index, dtype)) => {
            ui.label(RichText::new(format!("{}[{index}]", format::visible(tensor))).monospace());
            ui.label(trf("stored as {} = {}", &[dtype, &state.stored]));
        }
        None => {
            ui.label(trf("typed value {}", &[&state.stored]));
        }
    });
    ui.horizontal(|ui| {
        let label = ui.label(tr("value"));
        let edit = ui.add(egui::TextEdit::singleline(&mut state.typed).desired_width(160.0)).labelled_by(label.id);
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.button(tr("Use")).on_hover_text(tr("Look at the number typed here instead")).clicked() || enter {
            match state.typed.trim().parse::<f64>() {
                Ok(v) => state.set_typed(v),
                Err(_) => state.typed = trf("{} (not a number)", &[&state.typed.trim()]),
            }
        }
        if state.is_edited() && ui.button(tr("Back to the stored value")).clicked() {
            state.value_bits = (state.stored as f32).to_bits();
        }
    });
    let value = state.value();
    ui.label(RichText::new(trf("value = {}", &[&fmt_value(value as f64)])).strong().size(18.0))
        .on_hover_text(tr("Click any bit below to flip it; every format then shows the new value"));
    ui.add_space(4.0);
    let mut flip: Option<(Format, u32)> = None;
    let decoded: Vec<Decoded> = Format::ALL
        .iter()
        .map(|&format| {
            if format == Format::F32 {
                floatbits::decode(Format::F32, state.value_bits)
            } else {
                floatbits::cast(value, format)
            }
        })
        .collect();
    let rows = ui.vertical(|ui| {
        for d in &decoded {
            if let Some(bit) = format_row(ui, d, state.stored) {
                flip = Some((d.format, bit));
            }
            ui.add_space(6.0);
        }
    });
    let stem = match &state.source {
        Some((tensor, index, _)) => format!("{tensor}-{index}-bits"),
        None => "value-bits".to_string(),
    };
    let json = || bits_json(state);
    export::menu(ui, &stem, Some(rows.response.rect), None, Some(&json));
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

/// `llm-anatomy bits --json`'s serialiser, for the value on screen: the stored element's
/// origin is named only while its bits are unchanged (an edited value is a typed one).
fn bits_json(state: &BitsView) -> String {
    let breakdown = floatbits::breakdown(if state.is_edited() { state.value() as f64 } else { state.stored });
    let origin = match &state.source {
        Some((tensor, index, dtype)) if !state.is_edited() => {
            Some(crate::report::BitsOrigin { tensor, stored_dtype: dtype.as_str(), index: *index })
        }
        _ => None,
    };
    serde_json::to_string_pretty(&crate::report::bits_json(&breakdown, origin)).unwrap_or_default()
}

fn class_name(c: Class) -> &'static str {
    match c {
        Class::Normal => tr("normal"),
        Class::Subnormal => tr("subnormal"),
        Class::Zero => tr("zero"),
        Class::Inf => tr("infinity"),
        Class::Nan => tr("NaN (not a number)"),
    }
}

/// What each format is for (the same facts as [`Format::explanation`], translated).
fn explanation(f: Format) -> &'static str {
    match f {
        Format::F32 => tr(
            "IEEE single precision: 1 sign, 8 exponent, 23 fraction bits. About 7 decimal digits; the format weights are usually trained and stored in.",
        ),
        Format::BF16 => tr(
            "bfloat16: the top 16 bits of FP32. Same 8-bit exponent, so the same range as FP32 (no overflow when casting weights), but only 7 fraction bits (~2–3 digits). The usual training format on modern accelerators.",
        ),
        Format::F16 => tr(
            "IEEE half precision: 5 exponent, 10 fraction bits. More precision than BF16 but the largest finite value is 65504, so big activations overflow to ∞; tiny values (< 6e-8) flush to 0.",
        ),
        Format::F8E4M3 => tr(
            "FP8 E4M3 (\"fn\": finite, NaN only): 4 exponent, 3 fraction bits, largest value 448. Used for inference weights and activations; casts saturate at ±448.",
        ),
        Format::F8E5M2 => tr(
            "FP8 E5M2: 5 exponent, 2 fraction bits, FP16's range with far less precision. Used for gradients in FP8 training.",
        ),
    }
}

/// The value formula with this value's numbers filled in ([`Decoded::formula`], translated).
fn formula(d: &Decoded) -> String {
    let f = d.format;
    let sign = if d.sign == 1 { "−1" } else { "+1" };
    match d.class {
        Class::Normal => d.formula(),
        Class::Subnormal | Class::Zero => trf(
            "{} × 2^({}) × (0 + {}/2^{}) = {}  (subnormal: no implicit leading 1)",
            &[&sign, &f.emin(), &d.mantissa_field, &f.mantissa_bits(), &d.value],
        ),
        Class::Inf => trf("exponent all ones, fraction 0: {}∞", &[&if d.sign == 1 { "−" } else { "+" }]),
        Class::Nan => tr("exponent all ones, fraction ≠ 0: NaN (not a number)").to_string(),
    }
}

/// One format: coloured bit cells, then the numbers. Returns a clicked bit position.
fn format_row(ui: &mut egui::Ui, d: &Decoded, stored: f64) -> Option<u32> {
    let f = d.format;
    let mut clicked = None;
    ui.horizontal(|ui| {
        ui.label(RichText::new(f.name()).strong().size(17.0)).on_hover_text(explanation(f));
        ui.label(RichText::new(d.hex()).monospace().weak())
            .on_hover_text(tr("The same bits written in hexadecimal, as a memory dump shows them"));
        ui.label(RichText::new(class_name(d.class)).italics());
    });
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 1.0;
        ui.spacing_mut().button_padding = egui::vec2(3.0, 2.0);
        let total = f.total_bits();
        let m = f.mantissa_bits();
        for pos in (0..total).rev() {
            let bit = (d.bits >> pos) & 1;
            let (fill, field) = if pos == total - 1 {
                (SIGN, tr("sign"))
            } else if pos >= m {
                (EXPONENT, tr("exponent"))
            } else {
                (MANTISSA, tr("mantissa"))
            };
            let fill = if bit == 1 { fill } else { fill.gamma_multiply(0.35) };
            let cell = egui::Button::new(RichText::new(bit.to_string()).monospace().color(Color32::WHITE))
                .fill(fill)
                .min_size(egui::vec2(if total > 16 { 15.0 } else { 22.0 }, 24.0));
            let r = ui.add(cell);
            let label = trf("{} bit {} ({})", &[&f.name(), &pos, &field]);
            r.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &label));
            if r.on_hover_text(trf("{}: click to flip", &[&label])).clicked() {
                clicked = Some(pos);
            }
            if pos == total - 1 || pos == m {
                ui.add_space(6.0);
            }
        }
    });
    egui::Grid::new(("bits-grid", f.key())).num_columns(2).show(ui, |ui| {
        ui.label(tr("sign")).on_hover_text(tr("0 = positive, 1 = negative"));
        ui.monospace(d.sign.to_string());
        ui.end_row();
        ui.label(tr("exponent"))
            .on_hover_text(tr("Stored (biased) field, and the power of two it means after subtracting the bias"));
        ui.monospace(trf(
            "{} = {} (biased), 2^{} (bias {})",
            &[&d.exponent_bits_string(), &d.exponent_field, &d.exponent, &f.bias()],
        ));
        ui.end_row();
        ui.label(tr("mantissa"))
            .on_hover_text(tr("Fraction bits after the binary point; normal numbers have an implicit leading 1"));
        let implicit = d.implicit_bit().map(|b| trf("implicit {}.", &[&b])).unwrap_or_default();
        ui.monospace(format!("{implicit}{} = {}/2^{}", d.mantissa_bits_string(), d.mantissa_field, f.mantissa_bits()));
        ui.end_row();
        ui.label(tr("formula"))
            .on_hover_text(tr("(−1)^sign × 2^(exponent − bias) × 1.mantissa, with this value's bits"));
        ui.monospace(formula(d));
        ui.end_row();
        ui.label(tr("value"));
        ui.monospace(fmt_value(d.value));
        ui.end_row();
        if d.class != Class::Nan && stored.is_finite() {
            let err = d.value - stored;
            ui.label(tr("rounding")).on_hover_text(tr("This format's value minus the stored value"));
            ui.monospace(if err == 0.0 {
                tr("exact").to_string()
            } else if stored != 0.0 {
                trf("{} ({} relative)", &[&format!("{err:+.3e}"), &format!("{:+.3e}", err / stored.abs())])
            } else {
                format!("{err:+.3e}")
            });
            ui.end_row();
        }
        let (down, up) = floatbits::neighbours(d);
        ui.label(tr("neighbours")).on_hover_text(tr(
            "The representable values just below and just above: nothing in between exists in this format",
        ));
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
pub fn cast_section(
    ui: &mut egui::Ui,
    target: &mut CastTarget,
    ws: &Workspace,
    actions: &mut Vec<Action>,
    tensor: &str,
) {
    help::note(ui, "cast");
    comparison_table(ui, ws, tensor, target);
    let key = (tensor.to_string(), *target);
    let Some(result) = ws.jobs.casts.get(&key) else {
        match ws.jobs.casts.progress(&key) {
            Some(p) => super::super::progress_with_cancel(ui, p, 300.0, Action::CancelCast, actions),
            None => actions.push(Action::RequestCast { tensor: tensor.to_string(), to: *target }),
        }
        return;
    };
    match result {
        Err(e) => {
            ui.label(RichText::new(e).color(ui.visuals().error_fg_color));
        }
        Ok(r) => {
            let dtype = ws.model.as_ref().and_then(|m| m.folder.checkpoint.tensor(tensor)).map(|t| t.dtype.as_str());
            cast_report_view(ui, r, tensor, dtype.unwrap_or_default());
        }
    }
}

/// The targets, side by side: what each costs in bits and, once computed, what it loses.
/// Clicking a name picks it (and computes it); the detailed report below follows the pick.
fn comparison_table(ui: &mut egui::Ui, ws: &Workspace, tensor: &str, target: &mut CastTarget) {
    egui::Grid::new("cast-comparison").striped(true).num_columns(5).show(ui, |ui| {
        ui.label(RichText::new(tr("cast to")).strong());
        ui.label(RichText::new(tr("bits/weight")).strong())
            .on_hover_text(tr("Storage per weight, shared block scales included"));
        ui.label(RichText::new(tr("exact")).strong());
        ui.label(RichText::new(tr("max abs error")).strong());
        ui.label(RichText::new(tr("mean abs error")).strong());
        ui.end_row();
        for t in CastTarget::all() {
            let tip = match t {
                CastTarget::Float(f) => explanation(f),
                CastTarget::Block(ty) => block_explanation(ty),
            };
            if ui.selectable_label(*target == t, t.name()).on_hover_text(tip).clicked() {
                *target = t;
            }
            ui.monospace(format!("{}", t.bits_per_weight()));
            match ws.jobs.casts.get(&(tensor.to_string(), t)) {
                Some(Ok(r)) => {
                    let pct = if r.count == 0 { 0.0 } else { 100.0 * r.exact as f64 / r.count as f64 };
                    ui.monospace(format!("{pct:.1}%"));
                    ui.monospace(format::num(r.max_abs_error));
                    ui.monospace(format::num(r.mean_abs_error));
                }
                _ => {
                    ui.label(RichText::new("—").weak()).on_hover_text(tr("click the format's name to compute it"));
                    ui.label("");
                    ui.label("");
                }
            }
            ui.end_row();
        }
    });
    ui.add_space(6.0);
}

fn block_explanation(ty: GgmlType) -> &'static str {
    match ty {
        GgmlType::Q8_0 => tr(
            "Q8_0: blocks of 32 values share one F16 scale d = max|x| / 127; each value keeps an 8-bit code q, w = d·q. 8.5 bits per weight.",
        ),
        GgmlType::Q4_0 => tr(
            "Q4_0: blocks of 32 values share one F16 scale d (the value of largest magnitude / −8); each keeps a 4-bit code q, w = d·(q − 8). 4.5 bits per weight.",
        ),
        _ => tr(
            "Q4_1: blocks of 32 values share an F16 scale d = (max − min) / 15 and the minimum m; each keeps a 4-bit code q, w = d·q + m. 5 bits per weight.",
        ),
    }
}

fn cast_report_view(ui: &mut egui::Ui, r: &CastReport, tensor: &str, dtype: &str) {
    let f = r.to;
    let pct = |n: u64| if r.count == 0 { 0.0 } else { 100.0 * n as f64 / r.count as f64 };
    egui::Grid::new("cast-grid").striped(true).num_columns(3).show(ui, |ui| {
        let overflow_tip = if f.has_inf() {
            tr("finite values that became ±∞")
        } else {
            tr("values beyond ±448, clamped (saturated) to ±448")
        };
        let rows: [(&str, u64, &str); 4] = [
            (tr("exact"), r.exact, tr("values that survive the cast unchanged")),
            (tr("overflow"), r.overflow, overflow_tip),
            (tr("underflow"), r.underflow, tr("non-zero values that became 0 (too small for the format)")),
            (
                tr("subnormal"),
                r.subnormal,
                tr("values that land in the format's subnormal range, with fewer significant bits"),
            ),
        ];
        for (k, n, tip) in rows {
            ui.label(k).on_hover_text(tip);
            ui.monospace(n.to_string());
            ui.monospace(format!("{:.2}%", pct(n)));
            ui.end_row();
        }
        ui.label(tr("abs error"))
            .on_hover_text(tr("|cast − stored|, max and mean over the values that stayed in range"));
        ui.monospace(trf("max {}", &[&format::num(r.max_abs_error)]));
        ui.monospace(trf("mean {}", &[&format::num(r.mean_abs_error)]));
        ui.end_row();
        ui.label(tr("rel error"))
            .on_hover_text(tr("|cast − stored| / |stored|: the error as a share of the value itself"));
        ui.monospace(trf("max {}", &[&format::num(r.max_rel_error)]));
        ui.monospace(trf("mean {}", &[&format::num(r.mean_rel_error)]));
        ui.end_row();
    });
    // `llm-anatomy cast --json`'s serialiser.
    let report_json = || serde_json::to_string_pretty(&crate::report::cast_json(tensor, dtype, r)).unwrap_or_default();
    export::menu(ui, &format!("{tensor}-{}-cast-report", f.key()), None, None, Some(&report_json));
    ui.label(RichText::new(tr("relative error (log₁₀)")).strong())
        .on_hover_text(tr("How many values changed by each relative error, on a log scale: −3 means 0.1%"));
    let edges = &r.rel_error_log10_edges;
    let bars: Vec<Bar> = r
        .rel_error_log10_counts
        .iter()
        .enumerate()
        .map(|(i, &c)| Bar::new((edges[i] + edges[i + 1]) / 2.0, c as f64).width(edges[i + 1] - edges[i]))
        .collect();
    let (_, plot_rect) = export::framed(ui, |ui| {
        Plot::new("rel-error-plot")
            .height(180.0)
            .allow_scroll(false)
            .x_axis_label(tr("log₁₀ |relative error|"))
            .y_axis_label(tr("number of values"))
            .show(ui, |p| p.bar_chart(BarChart::new("relative error", bars).color(Color32::from_rgb(150, 90, 190))))
    });
    let rel_csv = || crate::report::rel_error_csv(r);
    export::menu(ui, &format!("{tensor}-{}-relative-error", f.key()), Some(plot_rect), Some(&rel_csv), None);

    ui.label(RichText::new(tr("exponents used (FP32 view)")).strong()).on_hover_text(tr(
        "How many values have each power of two. Blue: normal range of the target format; orange: its subnormal range; red: outside (overflow above, flush to zero below).",
    ));
    // Where an exponent lands in the target format decides its colour (and its CSV name).
    let colour = |e: i32| match crate::report::ExponentRange::of(f, e) {
        crate::report::ExponentRange::Normal => EXPONENT,
        crate::report::ExponentRange::Subnormal => MANTISSA,
        crate::report::ExponentRange::Overflow | crate::report::ExponentRange::Underflow => SIGN,
    };
    let bars: Vec<Bar> =
        r.exponent_counts.iter().map(|&(e, c)| Bar::new(e as f64, c as f64).width(0.9).fill(colour(e))).collect();
    let (_, plot_rect) = export::framed(ui, |ui| {
        Plot::new("exponent-plot")
            .height(180.0)
            .allow_scroll(false)
            .x_axis_label(tr("exponent e (value ≈ 2^e)"))
            .y_axis_label(tr("number of values"))
            .show(ui, |p| p.bar_chart(BarChart::new("exponents", bars)))
    });
    let exp_csv = || crate::report::exponents_csv(r);
    export::menu(ui, &format!("{tensor}-{}-exponents", f.key()), Some(plot_rect), Some(&exp_csv), None);
}
