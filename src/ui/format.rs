//! How numbers read on a projector: short, with units, and the same everywhere.

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// Parameter counts the way model cards say them: 135M, 7.2B.
pub fn count(n: u64) -> String {
    let v = n as f64;
    if n < 10_000 {
        n.to_string()
    } else if v < 1e6 {
        format!("{:.1}K", v / 1e3)
    } else if v < 1e9 {
        format!("{:.1}M", v / 1e6)
    } else {
        format!("{:.2}B", v / 1e9)
    }
}

/// Six significant digits, exponent form when very small or large; NaN spelled out.
pub fn num(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    if (1e-3..1e6).contains(&a) {
        let decimals = (5 - a.log10().floor() as i32).clamp(0, 8) as usize;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.5e}")
    }
}

/// A plot axis that names integer positions 0, 1, 2, … after `labels` (bar charts of
/// modules or children) and leaves every other tick blank.
pub fn category_axis(labels: Vec<String>) -> impl Fn(egui_plot::GridMark, &std::ops::RangeInclusive<f64>) -> String {
    move |mark, _| {
        let i = mark.value.round();
        if (mark.value - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
            labels[i as usize].clone()
        } else {
            String::new()
        }
    }
}

pub fn shape(s: &[usize]) -> String {
    format!("[{}]", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
}

/// A name from a file with its control characters shown as escapes (`\u{1b}`, `\n`): a
/// hostile checkpoint cannot hide text, break a line or colour the window with them.
pub fn visible(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn readable() {
        assert_eq!(super::bytes(822_632), "803.4 KiB");
        assert_eq!(super::count(205_120), "205.1K");
        assert_eq!(super::num(0.19907836357170147), "0.199078");
        assert_eq!(super::num(-0.0006426406680169194), "-6.42641e-4");
        assert_eq!(super::num(1e-8), "1.00000e-8");
    }
}
