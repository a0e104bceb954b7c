//! `bits`: one value, typed or read from a tensor, in every float format.

use std::io::Write;
use std::path::Path;

use super::{Outcome, print_json};
use crate::analysis::floatbits::{self, Breakdown};
use crate::arch::ModelFolder;
use crate::checkpoint::Dtype;
use crate::report::{self, BitsOrigin};

/// `tensor` is clap's `[PATH, TENSOR]` pair; `index` is required with it.
pub fn run(
    value: Option<&str>,
    tensor: Option<&[String]>,
    index: Option<usize>,
    json: bool,
    out: &mut dyn Write,
) -> Outcome {
    let (input, origin) = match (value, tensor) {
        (Some(v), _) => (parse_number(v)?, None),
        (None, Some(t)) => {
            let index = index.ok_or("--tensor needs --index")?;
            let (value, dtype) = read_element(Path::new(&t[0]), &t[1], index)?;
            (value, Some((t[1].as_str(), dtype, index)))
        }
        (None, None) => return Err("give a VALUE or --tensor PATH TENSOR --index I".into()),
    };
    let b = floatbits::breakdown(input);
    if json {
        let origin = origin.map(|(tensor, dtype, index)| BitsOrigin { tensor, stored_dtype: dtype.as_str(), index });
        return print_json(out, &report::bits_json(&b, origin));
    }
    if let Some((name, dtype, index)) = &origin {
        writeln!(out, "{name}[{index}] stored as {dtype}: {input}")?;
    } else {
        writeln!(out, "input {input}")?;
    }
    print_formats(&b, out)
}

/// Element `index` of a stored tensor, widened to f64, and the dtype it is stored in.
fn read_element(path: &Path, name: &str, index: usize) -> Result<(f64, Dtype), Box<dyn std::error::Error>> {
    let model = ModelFolder::open(path)?;
    let ckpt = &model.checkpoint;
    let info = ckpt.require(name)?;
    let value = ckpt.element(info, index).ok_or_else(|| {
        format!("index {index} is out of range: `{name}` has {} elements (shape {:?})", info.numel(), info.shape)
    })?;
    Ok((value, info.dtype))
}

fn print_formats(b: &Breakdown, out: &mut dyn Write) -> Outcome {
    for d in &b.formats {
        let (down, up) = floatbits::neighbours(d);
        writeln!(
            out,
            "\n{:<9} {}  sign {}  exponent {}  mantissa {}  ({})",
            d.format.name(),
            d.hex(),
            d.sign,
            d.exponent_bits_string(),
            d.mantissa_bits_string(),
            d.class.as_str()
        )?;
        writeln!(out, "          {}", d.formula())?;
        writeln!(
            out,
            "          error vs f32 {:+e}; next down {}, next up {}",
            d.value - b.as_f32 as f64,
            down.map(|x| x.value.to_string()).unwrap_or_else(|| "—".into()),
            up.map(|x| x.value.to_string()).unwrap_or_else(|| "—".into())
        )?;
    }
    Ok(())
}

/// Accepts what people type: `0.1`, `-2.5`, `1e-8`, `nan`, `inf`, `-inf`.
fn parse_number(s: &str) -> Result<f64, String> {
    s.trim().parse::<f64>().map_err(|_| format!("`{s}` is not a number"))
}
