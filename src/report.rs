//! Placeholder until the serialisers land (cli-split branch).
use crate::analysis::stats::TensorStats;
use serde_json::json;

pub fn stats_json(name: &str, dtype: &str, shape: &[usize], stats: &TensorStats) -> serde_json::Value {
    json!({
        "name": name, "dtype": dtype, "shape": shape, "count": stats.count, "mean": stats.mean, "std": stats.std,
        "min": stats.min, "max": stats.max, "abs_max": stats.abs_max, "zeros": stats.zeros,
        "sparsity": stats.sparsity(), "nan": stats.nan, "inf": stats.inf,
        "histogram": { "edges": stats.histogram.edges, "counts": stats.histogram.counts },
    })
}
