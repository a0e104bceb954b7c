//! Export of what a panel shows: a plot as PNG (the pixels on screen, cropped to the plot),
//! its numbers as CSV or JSON, to a file or the clipboard.
//!
//! A panel calls [`menu`] under each plot; nothing else needs to know. The PNG is read back
//! from the renderer one frame after the click, so the closing menu is not in the picture.
//! Files are written where the user says in a save dialog (on its own thread, the UI keeps
//! drawing), or straight into a folder set with `--export-dir` (for handouts, and for tests).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use egui::{ColorImage, Context, Id, Rect};

use super::i18n::{tr, trf};

#[derive(Default)]
struct Inner {
    /// Write without asking, into this folder.
    auto_dir: Option<PathBuf>,
    /// Where the last save went: the next dialog starts there.
    last_dir: Option<PathBuf>,
    /// Saved files and failures, for the status bar and the error dialog.
    messages: Vec<Result<PathBuf, String>>,
    /// Plots to capture: (screen rect, file stem, frames still to wait).
    pending_png: Vec<(Rect, String, u8)>,
}

#[derive(Clone, Default)]
struct Hub(Arc<Mutex<Inner>>);

fn hub(ctx: &Context) -> Hub {
    ctx.data_mut(|d| d.get_temp_mut_or_default::<Hub>(Id::unique("llm-anatomy-export")).clone())
}

impl Hub {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

/// Saves every export into `dir` under its default name, with no dialog (None: ask each time).
pub fn set_auto_dir(ctx: &Context, dir: Option<PathBuf>) {
    hub(ctx).with(|h| h.auto_dir = dir);
}

/// Files saved and errors met since the last call.
pub fn take_messages(ctx: &Context) -> Vec<Result<PathBuf, String>> {
    hub(ctx).with(|h| std::mem::take(&mut h.messages))
}

/// An "Export ▾" menu for one plot or table. `plot` is the on-screen rect to save as PNG;
/// the closures make the CSV / JSON text only when asked.
pub fn menu(
    ui: &mut egui::Ui,
    stem: &str,
    plot: Option<Rect>,
    csv: Option<&dyn Fn() -> String>,
    json: Option<&dyn Fn() -> String>,
) {
    ui.menu_button(tr("Export ▾"), |ui| {
        let ctx = ui.ctx().clone();
        if let Some(rect) = plot
            && ui.button(tr("Save as PNG…")).on_hover_text(tr("The picture as it is on screen")).clicked()
        {
            hub(&ctx).with(|h| h.pending_png.push((rect, stem.to_string(), 1)));
            ctx.request_repaint();
            ui.close();
        }
        let formats = [
            (csv, "csv", tr("Save as CSV…"), tr("The numbers behind it, for a spreadsheet"), tr("Copy CSV")),
            (json, "json", tr("Save as JSON…"), tr("The numbers behind it, for a script"), tr("Copy JSON")),
        ];
        for (make, ext, save_label, save_tip, copy_label) in formats {
            let Some(make) = make else { continue };
            if ui.button(save_label).on_hover_text(save_tip).clicked() {
                save(&ctx, stem, ext, make().into_bytes());
                ui.close();
            }
            if ui.button(copy_label).clicked() {
                ctx.copy_text(make());
                ui.close();
            }
        }
    })
    .response
    .on_hover_text(tr("Save this plot as a picture, or its numbers as CSV / JSON"));
}

/// Draws a plot (or anything) and returns its whole on-screen rect, axes and their labels
/// included: the rect in a plot's own response is only the frame inside its axes.
pub fn framed<R>(ui: &mut egui::Ui, add: impl FnOnce(&mut egui::Ui) -> R) -> (R, Rect) {
    let scope = ui.scope(add);
    (scope.inner, scope.response.rect)
}

/// Asks the renderer for the pixels of plots whose menu has closed. Call once per frame,
/// after everything is drawn.
pub fn end_frame(ctx: &Context) {
    let hub = hub(ctx);
    let due: Vec<(Rect, String)> = hub.with(|h| {
        let mut due = Vec::new();
        h.pending_png.retain_mut(|(rect, stem, wait)| {
            if *wait == 0 {
                due.push((*rect, std::mem::take(stem)));
                false
            } else {
                *wait -= 1;
                true
            }
        });
        due
    });
    if !hub.with(|h| h.pending_png.is_empty()) {
        ctx.request_repaint();
    }
    for (rect, stem) in due {
        let (ctx2, ppp) = (ctx.clone(), ctx.pixels_per_point());
        ctx.request_screenshot(move |image| save_image(&ctx2, &stem, crop(&image, rect, ppp)));
    }
}

/// The part of a screenshot under `rect` (points), clamped to the image.
pub fn crop(image: &ColorImage, rect: Rect, pixels_per_point: f32) -> ColorImage {
    let [w, h] = image.size;
    let px = |v: f32, max: usize| ((v * pixels_per_point).round().max(0.0) as usize).min(max);
    let (x0, y0) = (px(rect.min.x, w - 1), px(rect.min.y, h - 1));
    let (x1, y1) = (px(rect.max.x, w).max(x0 + 1), px(rect.max.y, h).max(y0 + 1));
    image.region_by_pixels([x0, y0], [x1 - x0, y1 - y0])
}

/// Encodes an image as an 8-bit RGBA PNG.
pub fn png_bytes(image: &ColorImage) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, image.width() as u32, image.height() as u32);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let rgba: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_srgba_unmultiplied()).collect();
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&rgba).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

fn save_image(ctx: &Context, stem: &str, image: ColorImage) {
    match png_bytes(&image) {
        Ok(bytes) => save(ctx, stem, "png", bytes),
        Err(e) => hub(ctx).with(|h| h.messages.push(Err(trf("Could not encode the PNG: {}", &[&e])))),
    }
}

/// Writes `bytes` as `stem.ext`: into the auto folder at once, or where a save dialog says.
fn save(ctx: &Context, stem: &str, ext: &str, bytes: Vec<u8>) {
    let hub = hub(ctx);
    let file_name = format!("{}.{ext}", sanitize(stem));
    if let Some(dir) = hub.with(|h| h.auto_dir.clone()) {
        let result = write(&dir.join(&file_name), &bytes);
        hub.with(|h| h.messages.push(result));
        return;
    }
    let start = hub.with(|h| h.last_dir.clone());
    let (ctx, ext) = (ctx.clone(), ext.to_string());
    let title = tr("Save as");
    std::thread::spawn(move || {
        let mut dialog =
            rfd::FileDialog::new().set_title(title).set_file_name(&file_name).add_filter(ext.to_uppercase(), &[&ext]);
        if let Some(dir) = start {
            dialog = dialog.set_directory(dir);
        }
        // None: cancelled, or no dialog backend on this desktop: nothing to report.
        if let Some(path) = dialog.save_file() {
            let result = write(&path, &bytes);
            hub.with(|h| {
                h.last_dir = path.parent().map(Path::to_path_buf);
                h.messages.push(result);
            });
            ctx.request_repaint();
        }
    });
}

fn write(path: &Path, bytes: &[u8]) -> Result<PathBuf, String> {
    std::fs::write(path, bytes)
        .map(|()| path.to_path_buf())
        .map_err(|e| trf("Could not save {}: {}", &[&path.display(), &e]))
}

/// A file name from a tensor name or title: dots and letters kept, path separators not.
fn sanitize(stem: &str) -> String {
    let s: String = stem.chars().map(|c| if c.is_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    if s.is_empty() { "export".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_in_pixels_and_encodes() {
        let mut image = ColorImage::filled([40, 20], egui::Color32::WHITE);
        image.pixels[20 * 40 - 1] = egui::Color32::RED;
        let part = crop(&image, Rect::from_min_max(egui::pos2(10.0, 5.0), egui::pos2(20.0, 10.0)), 2.0);
        assert_eq!(part.size, [20, 10]);
        assert_eq!(*part.pixels.last().unwrap(), egui::Color32::RED);
        let png = png_bytes(&part).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        // A rect past the edge is clamped, not a panic.
        let edge = crop(&image, Rect::from_min_max(egui::pos2(15.0, 8.0), egui::pos2(99.0, 99.0)), 1.0);
        assert_eq!(edge.size, [25, 12]);
        assert_eq!(sanitize("model.layers.0/q proj"), "model.layers.0_q_proj");
    }
}
