//! Fonts, sizes and themes: readable from the back of a classroom, CJK included.

use std::sync::Arc;

/// Fonts bundled in the binary: DejaVu for symbols and the Latin/Greek/Cyrillic text of
/// tokens, Droid Sans Fallback for Chinese, Japanese and Korean (licences in assets/fonts/).
pub fn install_fonts(ctx: &egui::Context) {
    use egui::{FontData, FontDefinitions, FontFamily};
    let mut fonts = FontDefinitions::default();
    for (name, bytes) in [
        ("DejaVuSans", &include_bytes!("../../assets/fonts/DejaVuSans.ttf")[..]),
        ("DejaVuSansMono", &include_bytes!("../../assets/fonts/DejaVuSansMono.ttf")[..]),
        ("DroidSansFallback", &include_bytes!("../../assets/fonts/DroidSansFallbackFull.ttf")[..]),
    ] {
        fonts.font_data.insert(name.to_owned(), Arc::new(FontData::from_static(bytes)));
    }
    let prop = fonts.families.entry(FontFamily::Proportional).or_default();
    prop.insert(0, "DejaVuSans".to_owned());
    prop.push("DroidSansFallback".to_owned());
    let mono = fonts.families.entry(FontFamily::Monospace).or_default();
    mono.insert(0, "DejaVuSansMono".to_owned());
    mono.push("DejaVuSans".to_owned());
    mono.push("DroidSansFallback".to_owned());
    ctx.set_fonts(fonts);
}

/// The light or dark theme, optionally pushed to maximum contrast: text and lines in pure
/// black or white, thicker strokes, no grey-on-grey.
pub fn apply_theme(ctx: &egui::Context, dark: bool, high_contrast: bool) {
    let theme = if dark { egui::Theme::Dark } else { egui::Theme::Light };
    let mut visuals = if dark { egui::Visuals::dark() } else { egui::Visuals::light() };
    if high_contrast {
        let (fg, bg) = if dark {
            (egui::Color32::WHITE, egui::Color32::BLACK)
        } else {
            (egui::Color32::BLACK, egui::Color32::WHITE)
        };
        visuals.override_text_color = Some(fg);
        visuals.panel_fill = bg;
        visuals.window_fill = bg;
        visuals.extreme_bg_color = bg;
        visuals.faint_bg_color = if dark { egui::Color32::from_gray(40) } else { egui::Color32::from_gray(225) };
        for w in [
            &mut visuals.widgets.noninteractive,
            &mut visuals.widgets.inactive,
            &mut visuals.widgets.hovered,
            &mut visuals.widgets.active,
            &mut visuals.widgets.open,
        ] {
            w.fg_stroke = egui::Stroke::new(w.fg_stroke.width.max(1.5), fg);
            w.bg_stroke = egui::Stroke::new(w.bg_stroke.width.max(1.5), fg);
        }
        visuals.selection.stroke = egui::Stroke::new(2.0, fg);
    }
    ctx.set_visuals_of(theme, visuals);
    ctx.set_theme(theme);
}

/// Fonts and sizes that read from the back of a classroom.
pub fn setup_style(ctx: &egui::Context) {
    install_fonts(ctx);
    ctx.all_styles_mut(|style| {
        use egui::{FontFamily, FontId, TextStyle};
        style.text_styles = [
            (TextStyle::Heading, FontId::new(24.0, FontFamily::Proportional)),
            (TextStyle::Body, FontId::new(16.0, FontFamily::Proportional)),
            (TextStyle::Monospace, FontId::new(15.0, FontFamily::Monospace)),
            (TextStyle::Button, FontId::new(16.0, FontFamily::Proportional)),
            (TextStyle::Small, FontId::new(13.0, FontFamily::Proportional)),
        ]
        .into();
    });
}
