//! Several tensors' histograms on one plot (from one model or two): the same edges for all,
//! heights as densities (numpy's `density=True`: count / (total · bin width)), so a
//! 576-element norm and a 5M-element projection compare by shape, not by size.

use serde::Serialize;

use super::control::{Cancelled, Control};
use super::stats::{DataView, compute_stats, compute_stats_over, numpy_range};

/// More than four overlapping outlines stop being readable.
pub const MAX_SERIES: usize = 4;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Series {
    pub label: String,
    /// Finite values binned (NaN and ±Inf are in no bin).
    pub count: u64,
    pub density: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overlay {
    /// `bins + 1` shared edges, numpy's over the union of the tensors' finite ranges.
    pub edges: Vec<f64>,
    pub series: Vec<Series>,
}

/// The overlay of `items` (label, stored data): one pass to find the shared range, one to
/// bin; both stream the stored bytes in place.
pub fn overlay(items: &[(String, DataView<'_>)], bins: usize, ctl: &Control) -> Result<Overlay, Cancelled> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (_, view) in items {
        let s = compute_stats(std::slice::from_ref(view), 1, ctl)?;
        if s.min.is_finite() && s.max.is_finite() {
            (lo, hi) = (lo.min(s.min), hi.max(s.max));
        }
    }
    let range = if lo <= hi { numpy_range(lo, hi) } else { (-0.5, 0.5) };
    let mut edges = Vec::new();
    let mut series = Vec::with_capacity(items.len());
    for (label, view) in items {
        let s = compute_stats_over(std::slice::from_ref(view), bins, Some(range), ctl)?;
        let total: u64 = s.histogram.counts.iter().sum();
        let e = &s.histogram.edges;
        let density = s
            .histogram
            .counts
            .iter()
            .enumerate()
            .map(|(i, &c)| if total == 0 { 0.0 } else { c as f64 / (total as f64 * (e[i + 1] - e[i])) })
            .collect();
        series.push(Series { label: label.clone(), count: total, density });
        edges = s.histogram.edges;
    }
    Ok(Overlay { edges, series })
}

/// `edge_lo, edge_hi, density…` one row per bin, for a spreadsheet.
pub fn csv(o: &Overlay) -> String {
    let mut out = String::from("bin_start,bin_end");
    for s in &o.series {
        out.push_str(&format!(",\"{}\"", s.label.replace('"', "\"\"")));
    }
    out.push('\n');
    for i in 0..o.edges.len().saturating_sub(1) {
        out.push_str(&format!("{},{}", o.edges[i], o.edges[i + 1]));
        for s in &o.series {
            out.push_str(&format!(",{}", s.density[i]));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::stats::f32_bytes;
    use crate::checkpoint::Dtype;

    /// numpy: `np.histogram(x, bins=4, range=(-1, 3), density=True)` for each array on the
    /// union range, computed here by hand: edges −1, 0, 1, 2, 3.
    #[test]
    fn densities_share_edges_and_integrate_to_one() {
        let (a, b) = (f32_bytes(&[-1.0, -0.5, 0.5, 0.5]), f32_bytes(&[1.5, 2.5, 3.0, f32::NAN]));
        let items = [
            ("a".to_string(), DataView { dtype: Dtype::F32, bytes: &a }),
            ("b".to_string(), DataView { dtype: Dtype::F32, bytes: &b }),
        ];
        let o = overlay(&items, 4, &Control::new()).unwrap();
        assert_eq!(o.edges, vec![-1.0, 0.0, 1.0, 2.0, 3.0]);
        assert_eq!(o.series[0].density, vec![0.5, 0.5, 0.0, 0.0]);
        assert_eq!(o.series[1].density, vec![0.0, 0.0, 1.0 / 3.0, 2.0 / 3.0]);
        assert_eq!(o.series[1].count, 3, "NaN is in no bin");
        assert!(csv(&o).starts_with("bin_start,bin_end,\"a\",\"b\"\n-1,0,0.5,0\n"));
    }
}
