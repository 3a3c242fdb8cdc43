//! The resume state of a stage: optimizer moments, step and RNG beside the weights (whose files
//! are `results::weights`), so a killed stage continues exactly.

use crate::results::weights::{encode_tensors, read_tensors};
use crate::util::write_atomic;
use anyhow::{Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::path::Path;

/// Named tensors and string values an objective keeps between steps.
#[derive(Default)]
pub struct ObjectiveState {
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    pub meta: HashMap<String, String>,
}

/// Prefixes of the tensors in a resume file.
const MODEL_PREFIX: &str = "model/";
const MOMENT1_PREFIX: &str = "m1/";
const MOMENT2_PREFIX: &str = "m2/";
const OBJECTIVE_PREFIX: &str = "objective/";

/// `resume.safetensors`: everything an interrupted stage needs to continue exactly (weights,
/// optimizer moments, the objective's own state, step, RNG), in one file written atomically,
/// so a kill at any moment leaves either the previous checkpoint or the new one.
pub struct ResumeState {
    pub step: u64,
    pub tokens: u64,
    pub wall_s: f64,
    /// AdamW's step counter.
    pub adam_t: i32,
    pub rng: ChaCha8Rng,
    /// The model's parameters: name -> (shape, values).
    pub model: HashMap<String, (Vec<usize>, Vec<f32>)>,
    /// AdamW's first and second moments by parameter name.
    pub moments: HashMap<String, (Vec<f32>, Vec<f32>)>,
    pub objective: ObjectiveState,
}

impl ResumeState {
    pub fn write(self, path: &Path) -> Result<()> {
        let mut tensors = Vec::new();
        for (name, (shape, values)) in self.model {
            tensors.push((format!("{MODEL_PREFIX}{name}"), shape, values));
        }
        for (name, (m, v)) in self.moments {
            tensors.push((format!("{MOMENT1_PREFIX}{name}"), vec![m.len()], m));
            tensors.push((format!("{MOMENT2_PREFIX}{name}"), vec![v.len()], v));
        }
        for (name, shape, values) in self.objective.tensors {
            tensors.push((format!("{OBJECTIVE_PREFIX}{name}"), shape, values));
        }
        let rng = &self.rng;
        let seed: String = rng.get_seed().iter().map(|b| format!("{b:02x}")).collect();
        let mut meta = HashMap::from([
            ("step".to_string(), self.step.to_string()),
            ("tokens".to_string(), self.tokens.to_string()),
            ("wall_s".to_string(), self.wall_s.to_string()),
            ("adam_t".to_string(), self.adam_t.to_string()),
            ("rng_seed".to_string(), seed),
            ("rng_stream".to_string(), rng.get_stream().to_string()),
            ("rng_word_pos".to_string(), rng.get_word_pos().to_string()),
        ]);
        for (k, v) in self.objective.meta {
            meta.insert(format!("{OBJECTIVE_PREFIX}{k}"), v);
        }
        write_atomic(path, &encode_tensors(&tensors, meta)?)
    }

    pub fn read(path: &Path) -> Result<ResumeState> {
        let (tensors, meta) = read_tensors(path)?;
        let get = |k: &str| -> Result<&String> {
            meta.get(k)
                .ok_or_else(|| anyhow::anyhow!("{}: resume state lacks `{k}`", path.display()))
        };
        let num = |k: &str| -> Result<u128> {
            get(k)?
                .parse()
                .with_context(|| format!("{}: bad `{k}`", path.display()))
        };
        let seed_hex = get("rng_seed")?;
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = u8::from_str_radix(seed_hex.get(2 * i..2 * i + 2).unwrap_or("zz"), 16)
                .with_context(|| format!("{}: bad rng_seed", path.display()))?;
        }
        let mut rng = ChaCha8Rng::from_seed(seed);
        rng.set_stream(num("rng_stream")? as u64);
        rng.set_word_pos(num("rng_word_pos")?);
        let mut model = HashMap::new();
        let mut moments: HashMap<String, (Vec<f32>, Vec<f32>)> = HashMap::new();
        let mut objective = ObjectiveState::default();
        for (name, (shape, values)) in tensors {
            if let Some(p) = name.strip_prefix(MODEL_PREFIX) {
                model.insert(p.to_string(), (shape, values));
            } else if let Some(p) = name.strip_prefix(MOMENT1_PREFIX) {
                moments.entry(p.to_string()).or_default().0 = values;
            } else if let Some(p) = name.strip_prefix(MOMENT2_PREFIX) {
                moments.entry(p.to_string()).or_default().1 = values;
            } else if let Some(p) = name.strip_prefix(OBJECTIVE_PREFIX) {
                objective.tensors.push((p.to_string(), shape, values));
            }
        }
        for (k, v) in &meta {
            if let Some(k) = k.strip_prefix(OBJECTIVE_PREFIX) {
                objective.meta.insert(k.to_string(), v.clone());
            }
        }
        Ok(ResumeState {
            step: num("step")? as u64,
            tokens: num("tokens")? as u64,
            wall_s: get("wall_s")?.parse().unwrap_or(0.0),
            adam_t: num("adam_t")? as i32,
            rng,
            model,
            moments,
            objective,
        })
    }
}
