//! The one mapping between gptlab's parameter layout and Hugging Face GPT-2's, used by both
//! export and import so the two directions cannot drift apart.
//!
//! gptlab already uses GPT-2's names, with two differences:
//! - linear weights are stored `[out, in]` (PyTorch `nn.Linear`), while GPT-2's `Conv1D` stores
//!   `[in, out]` and computes `x @ W + b`, so every block matrix is transposed;
//! - attention keeps `attn.q`, `attn.k`, `attn.v` separate, while GPT-2 fuses them into
//!   `attn.c_attn` whose output columns are `[q | k | v]` (it splits them in that order).
//!
//! Both are pure copies of f32 values, so a round trip is bitwise exact.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeSet, HashMap};

/// Named tensors: name -> (shape, row-major values).
pub type TensorMap = HashMap<String, (Vec<usize>, Vec<f32>)>;
/// Named tensors in a fixed order, as `encode_tensors` takes them.
pub type TensorList = Vec<(String, Vec<usize>, Vec<f32>)>;

/// The token embedding, which is also the tied LM head.
pub const WTE: &str = "transformer.wte.weight";
/// The reward / value head, which GPT-2 has no place for: a file of its own beside the model.
pub const SCORE_HEAD_FILE: &str = "score_head.safetensors";

/// One GPT-2 tensor made of gptlab tensors: `parts` stacked along their first axis (one part
/// for most tensors, q/k/v for `c_attn`), then transposed when `conv1d` and two-dimensional.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub hf: String,
    pub parts: Vec<String>,
    pub conv1d: bool,
}

fn rule(hf: String, parts: Vec<String>, conv1d: bool) -> Rule {
    Rule { hf, parts, conv1d }
}

/// The language-model tensors of an `n_layer` GPT, in GPT-2's order. The scalar head is not
/// part of GPT-2 and travels separately (see `hf_gpt2.rs`).
pub fn rules(n_layer: usize) -> Vec<Rule> {
    let same = |name: &str| rule(name.to_string(), vec![name.to_string()], false);
    let mut out = vec![same(WTE), same("transformer.wpe.weight")];
    for i in 0..n_layer {
        let p = format!("transformer.h.{i}");
        for ln in ["ln_1.weight", "ln_1.bias"] {
            out.push(same(&format!("{p}.{ln}")));
        }
        for kind in ["weight", "bias"] {
            out.push(rule(
                format!("{p}.attn.c_attn.{kind}"),
                ["q", "k", "v"]
                    .iter()
                    .map(|x| format!("{p}.attn.{x}.{kind}"))
                    .collect(),
                true,
            ));
            out.push(rule(
                format!("{p}.attn.c_proj.{kind}"),
                vec![format!("{p}.attn.c_proj.{kind}")],
                true,
            ));
        }
        for ln in ["ln_2.weight", "ln_2.bias"] {
            out.push(same(&format!("{p}.{ln}")));
        }
        for lin in ["mlp.c_fc", "mlp.c_proj"] {
            for kind in ["weight", "bias"] {
                let name = format!("{p}.{lin}.{kind}");
                out.push(rule(name.clone(), vec![name], true));
            }
        }
    }
    out.push(same("transformer.ln_f.weight"));
    out.push(same("transformer.ln_f.bias"));
    out
}

/// Transposes a row-major `[rows, cols]` matrix.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// gptlab tensors -> GPT-2 tensors. Every gptlab tensor must be used by a rule: one that is
/// not has no place in GPT-2, and dropping it would export a subtly different model.
pub fn to_hf(gptlab: &TensorMap, rules: &[Rule]) -> Result<TensorList> {
    let mut used = BTreeSet::new();
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        let mut shape: Option<Vec<usize>> = None;
        let mut stacked = Vec::new();
        for part in &r.parts {
            let (s, v) = gptlab
                .get(part)
                .with_context(|| format!("tensor `{part}` is missing (needed for `{}`)", r.hf))?;
            if shape.as_ref().is_some_and(|first| first != s) {
                bail!(
                    "tensor `{part}` has shape {s:?}, unlike the other parts of `{}`",
                    r.hf
                );
            }
            shape = Some(s.clone());
            stacked.extend_from_slice(v);
            used.insert(part.as_str());
        }
        let mut shape = shape.expect("every rule has a part");
        shape[0] *= r.parts.len();
        if r.conv1d && shape.len() == 2 {
            stacked = transpose(&stacked, shape[0], shape[1]);
            shape.swap(0, 1);
        }
        out.push((r.hf.clone(), shape, stacked));
    }
    let unused: Vec<_> = gptlab
        .keys()
        .filter(|k| !used.contains(k.as_str()))
        .collect();
    if !unused.is_empty() {
        bail!("tensors {unused:?} have no GPT-2 equivalent; refusing to export without them");
    }
    Ok(out)
}

/// GPT-2 tensors -> gptlab tensors (the inverse of [`to_hf`]). Tensors not named by a rule
/// are left for the caller to judge.
pub fn from_hf(hf: &TensorMap, rules: &[Rule]) -> Result<TensorMap> {
    let mut out = TensorMap::new();
    for r in rules {
        let (shape, values) = hf
            .get(&r.hf)
            .with_context(|| format!("tensor `{}` is missing", r.hf))?;
        let (mut shape, mut values) = (shape.clone(), values.clone());
        if shape.is_empty() || shape.len() > 2 {
            bail!(
                "tensor `{}` has shape {shape:?}, expected 1 or 2 dimensions",
                r.hf
            );
        }
        if r.conv1d && shape.len() == 2 {
            values = transpose(&values, shape[0], shape[1]);
            shape.swap(0, 1);
        }
        let k = r.parts.len();
        if shape[0] % k != 0 {
            bail!(
                "tensor `{}` has shape {shape:?}: its {} axis does not split into {k} equal parts",
                r.hf,
                if r.conv1d { "output" } else { "first" }
            );
        }
        shape[0] /= k;
        let chunk = values.len() / k;
        for (i, part) in r.parts.iter().enumerate() {
            let v = values[i * chunk..(i + 1) * chunk].to_vec();
            out.insert(part.clone(), (shape.clone(), v));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], start: f32) -> (Vec<usize>, Vec<f32>) {
        let n = shape.iter().product();
        (shape.to_vec(), (0..n).map(|i| start + i as f32).collect())
    }

    /// A 1-layer model of width 2 with distinct values everywhere.
    fn tiny() -> TensorMap {
        let p = "transformer.h.0";
        let mut m = TensorMap::new();
        m.insert("transformer.wte.weight".into(), t(&[5, 2], 0.0));
        m.insert("transformer.wpe.weight".into(), t(&[3, 2], 100.0));
        for (i, name) in ["q", "k", "v", "c_proj"].iter().enumerate() {
            m.insert(
                format!("{p}.attn.{name}.weight"),
                t(&[2, 2], 1000.0 * (i + 1) as f32),
            );
            m.insert(
                format!("{p}.attn.{name}.bias"),
                t(&[2], 10.0 * (i + 1) as f32),
            );
        }
        for ln in ["ln_1", "ln_2"] {
            m.insert(format!("{p}.{ln}.weight"), t(&[2], 1.0));
            m.insert(format!("{p}.{ln}.bias"), t(&[2], -1.0));
        }
        m.insert(format!("{p}.mlp.c_fc.weight"), t(&[8, 2], 7000.0));
        m.insert(format!("{p}.mlp.c_fc.bias"), t(&[8], 70.0));
        m.insert(format!("{p}.mlp.c_proj.weight"), t(&[2, 8], 8000.0));
        m.insert(format!("{p}.mlp.c_proj.bias"), t(&[2], 80.0));
        m.insert("transformer.ln_f.weight".into(), t(&[2], 2.0));
        m.insert("transformer.ln_f.bias".into(), t(&[2], -2.0));
        m
    }

    fn get<'a>(list: &'a TensorList, name: &str) -> (&'a [usize], &'a [f32]) {
        let (_, s, v) = list.iter().find(|(n, _, _)| n == name).unwrap();
        (s, v)
    }

    #[test]
    fn c_attn_is_q_k_v_side_by_side_in_conv1d_layout() {
        let hf = to_hf(&tiny(), &rules(1)).unwrap();
        let (shape, w) = get(&hf, "transformer.h.0.attn.c_attn.weight");
        assert_eq!(shape, [2, 6]);
        // Row `in`, column `out`: W[in][out] = linear[out][in]. q = 1000.., k = 2000.., v = 3000..
        assert_eq!(
            w,
            [1000., 1002., 2000., 2002., 3000., 3002., 1001., 1003., 2001., 2003., 3001., 3003.]
        );
        let (shape, b) = get(&hf, "transformer.h.0.attn.c_attn.bias");
        assert_eq!((shape, b), (&[6][..], &[10., 11., 20., 21., 30., 31.][..]));
        let (shape, w) = get(&hf, "transformer.h.0.mlp.c_fc.weight");
        assert_eq!((shape, w[1]), (&[2, 8][..], 7002.0));
        let (shape, w) = get(&hf, "transformer.wte.weight");
        assert_eq!((shape, w[1]), (&[5, 2][..], 1.0));
    }

    #[test]
    fn from_hf_inverts_to_hf_exactly() {
        let hf: TensorMap = to_hf(&tiny(), &rules(1))
            .unwrap()
            .into_iter()
            .map(|(n, s, v)| (n, (s, v)))
            .collect();
        assert_eq!(from_hf(&hf, &rules(1)).unwrap(), tiny());
    }

    #[test]
    fn unmapped_or_missing_tensors_are_refused() {
        let mut m = tiny();
        m.insert("transformer.h.0.attn.rotary".into(), t(&[2], 0.0));
        let err = to_hf(&m, &rules(1)).unwrap_err().to_string();
        assert!(err.contains("transformer.h.0.attn.rotary"), "{err}");
        let mut m = tiny();
        m.remove("transformer.h.0.attn.k.weight");
        let err = to_hf(&m, &rules(1)).unwrap_err().to_string();
        assert!(
            err.contains("attn.k.weight") && err.contains("c_attn"),
            "{err}"
        );
        let mut hf = TensorMap::new();
        hf.insert("transformer.wte.weight".into(), t(&[5, 2], 0.0));
        let err = from_hf(&hf, &rules(1)).unwrap_err().to_string();
        assert!(err.contains("transformer.wpe.weight"), "{err}");
    }
}
