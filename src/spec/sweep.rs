//! Sweep files: many runs of one base spec, each point a list of `--set` overrides.
//!
//! ```toml
//! base = "../quickstart.toml"          # relative to the sweep file
//! name = "quickstart-lr-size"          # optional, default: the sweep file's stem
//! metrics = ["assistant/val/loss"]     # optional: `stage/metric`s the comparison charts
//!                                      # against each key (default: every val/loss, eval)
//! [grid]                               # every combination, first key varying slowest
//! "stages.base.lr" = [1e-3, 3e-3]
//! "model.preset" = ["nano", "small"]
//! [random]                             # n points drawn from `seed`
//! n = 8
//! seed = 0
//! [random.params]
//! "stages.base.lr" = { log_uniform = [1e-4, 1e-2] }
//! "stages.base.weight_decay" = { uniform = [0.0, 0.2] }
//! "stages.base.steps" = { int_uniform = [200, 800] }    # inclusive
//! "model.preset" = { choice = ["nano", "small"] }
//! ```
//! With both `[grid]` and `[random]`, the points are their product: every grid point is
//! combined with each of the same `n` random draws (grid points × n in all).

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use toml_edit::{ImDocument, Item, TableLike};

use super::errors::SpecErrors;
use super::load::{load_spec, LoadOptions};
use super::paths::absolute;
use super::source::SourceIndex;
use super::suggest;

#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    pub name: String,
    /// The base experiment spec, absolute.
    pub base: PathBuf,
    pub points: Vec<SweepPoint>,
    /// `stage/metric`s charted against the varied keys; empty: the report's defaults.
    pub metrics: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    pub index: usize,
    /// Spec key and value, in the order the sweep file lists the keys (grid, then random).
    pub sets: Vec<(String, toml::Value)>,
}

impl SweepPoint {
    /// The overrides as `key=value` arguments for `LoadOptions::sets`.
    pub fn set_args(&self) -> Vec<String> {
        self.sets
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect()
    }

    /// The options that load this point's spec: `shared` (data root and the `--set`s every
    /// point gets), then the point's own overrides.
    pub fn load_options(&self, shared: &LoadOptions) -> LoadOptions {
        let mut sets = shared.sets.clone();
        sets.extend(self.set_args());
        LoadOptions {
            data_root: shared.data_root.clone(),
            sets,
        }
    }

    /// A short label such as `lr=0.001 preset=nano`: each key's last part (or more, where
    /// two keys share it) and values rounded to 4 significant digits.
    pub fn label(&self) -> String {
        let keys: Vec<&str> = self.sets.iter().map(|(key, _)| key.as_str()).collect();
        self.sets
            .iter()
            .map(|(key, value)| format!("{}={}", short_key(key, &keys), short_value(value)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Loads a sweep, expands its points and checks each one by loading the base spec with the
/// point's overrides, using the default data root.
pub fn load_sweep(path: &Path) -> anyhow::Result<Sweep> {
    load_sweep_with(path, &LoadOptions::default())
}

/// As `load_sweep`, with a data root and `--set` overrides shared by every point (applied
/// before the point's own; a runner should pass the same to `load_spec`).
pub fn load_sweep_with(path: &Path, opts: &LoadOptions) -> anyhow::Result<Sweep> {
    let sweep = read_sweep(path)?;
    for point in &sweep.points {
        load_spec(&sweep.base, &point.load_options(opts)).map_err(|error| {
            anyhow!(
                "{}: point {} ({}): {error:#}",
                path.display(),
                point.index,
                point.label()
            )
        })?;
    }
    Ok(sweep)
}

/// Reads and expands a sweep file without loading its points: a runner that reports each
/// point's errors on its own (one bad value fails one point, not the sweep) starts here.
pub fn read_sweep(path: &Path) -> anyhow::Result<Sweep> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| anyhow!("cannot read sweep `{}`: {error}", path.display()))?;
    let index = SourceIndex::parse(path, &text)?;
    let document =
        ImDocument::parse(text.as_str()).map_err(|error| anyhow!("{}: {error}", path.display()))?;
    let errors = SpecErrors::new(index, None, Vec::new());
    let file = SweepFile::read(document.as_table(), &errors)?;

    let folder = path.parent().unwrap_or(Path::new("."));
    let base = absolute(&folder.join(&file.base));
    let name = match file.name {
        Some(name) => name,
        None => path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(errors.at(
            "name",
            format!("a sweep name may only use letters, digits, `-`, `_` and `.`, found {name:?}"),
        ));
    }

    check_metric_stages(&file.metrics, &base, &errors)?;
    let points = expand(&file.grid, &file.random);
    Ok(Sweep {
        name,
        base,
        points,
        metrics: file.metrics,
    })
}

/// How one random parameter is drawn.
#[derive(Debug, Clone, PartialEq)]
enum Distribution {
    Uniform(f64, f64),
    LogUniform(f64, f64),
    IntUniform(i64, i64),
    Choice(Vec<toml::Value>),
}

impl Distribution {
    const KINDS: [&'static str; 4] = ["uniform", "log_uniform", "int_uniform", "choice"];

    fn sample(&self, rng: &mut ChaCha8Rng) -> toml::Value {
        match self {
            Distribution::Uniform(low, high) => toml::Value::Float(uniform(rng, *low, *high)),
            Distribution::LogUniform(low, high) => {
                toml::Value::Float(uniform(rng, low.ln(), high.ln()).exp())
            }
            Distribution::IntUniform(low, high) => {
                toml::Value::Integer(rng.gen_range(*low..=*high))
            }
            Distribution::Choice(options) => options[rng.gen_range(0..options.len())].clone(),
        }
    }
}

fn uniform(rng: &mut ChaCha8Rng, low: f64, high: f64) -> f64 {
    if low < high {
        rng.gen_range(low..high)
    } else {
        low
    }
}

#[derive(Debug, Clone, PartialEq)]
struct RandomSpec {
    n: usize,
    seed: u64,
    params: Vec<(String, Distribution)>,
}

/// The sweep file's contents, checked.
struct SweepFile {
    base: PathBuf,
    name: Option<String>,
    grid: Vec<(String, Vec<toml::Value>)>,
    random: Option<RandomSpec>,
    metrics: Vec<String>,
}

impl SweepFile {
    fn read(root: &dyn TableLike, errors: &SpecErrors) -> anyhow::Result<SweepFile> {
        check_keys(
            root,
            "",
            &["base", "name", "grid", "random", "metrics"],
            errors,
        )?;
        let base = match root.get("base").and_then(Item::as_str) {
            Some(base) => PathBuf::from(base),
            None => {
                return Err(errors.at(
                    "base",
                    "expected `base`: the experiment spec this sweep varies, e.g. base = \"../quickstart.toml\"",
                ))
            }
        };
        let name = match root.get("name") {
            None => None,
            Some(item) => Some(
                item.as_str()
                    .ok_or_else(|| errors.at("name", "expected a string"))?
                    .to_string(),
            ),
        };
        let grid = match root.get("grid") {
            None => Vec::new(),
            Some(item) => read_grid(item, errors)?,
        };
        let random = match root.get("random") {
            None => None,
            Some(item) => Some(read_random(item, errors)?),
        };
        if grid.is_empty() && random.is_none() {
            return Err(errors.at(
                "",
                "a sweep needs a [grid] table, a [random] table, or both",
            ));
        }
        if let Some(random) = &random {
            if let Some((key, _)) = random
                .params
                .iter()
                .find(|(key, _)| grid.iter().any(|(g, _)| g == key))
            {
                return Err(errors.at(
                    &format!("random.params.{key}"),
                    format!("`{key}` is in [grid] too; sweep each key one way"),
                ));
            }
        }
        let metrics = match root.get("metrics") {
            None => Vec::new(),
            Some(item) => read_metrics(item, errors)?,
        };
        Ok(SweepFile {
            base,
            name,
            grid,
            random,
            metrics,
        })
    }
}

/// `metrics = ["stage/metric", ...]`: a metric name may hold `/` too (`val/loss`).
fn read_metrics(item: &Item, errors: &SpecErrors) -> anyhow::Result<Vec<String>> {
    let expected =
        "expected a list of \"stage/metric\" strings, e.g. metrics = [\"assistant/val/loss\"]";
    let array = item
        .as_array()
        .ok_or_else(|| errors.at("metrics", expected))?;
    let mut out = Vec::new();
    for value in array.iter() {
        let text = value
            .as_str()
            .filter(|t| {
                t.split_once('/')
                    .is_some_and(|(s, m)| !s.is_empty() && !m.is_empty())
            })
            .ok_or_else(|| errors.at("metrics", format!("{expected}; found {value}")))?;
        out.push(text.to_string());
    }
    Ok(out)
}

/// Each metric's stage must be a stage of the base spec (read as plain TOML: a base that does
/// not load is reported by its points).
fn check_metric_stages(metrics: &[String], base: &Path, errors: &SpecErrors) -> anyhow::Result<()> {
    let Some(spec) = std::fs::read_to_string(base)
        .ok()
        .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
    else {
        return Ok(());
    };
    let stages: Vec<&str> = spec
        .get("stages")
        .and_then(|s| s.as_array())
        .map(|a| a.iter().filter_map(|s| s.get("name")?.as_str()).collect())
        .unwrap_or_default();
    for metric in metrics {
        let stage = metric.split('/').next().unwrap_or("");
        if !stages.contains(&stage) {
            return Err(errors.at(
                "metrics",
                format!(
                    "`{metric}`: no stage `{stage}` in {}; stages: {}{}",
                    base.display(),
                    suggest::list(stages.iter().copied()),
                    suggest::did_you_mean(stage, stages.iter().copied())
                ),
            ));
        }
    }
    Ok(())
}

fn read_grid(item: &Item, errors: &SpecErrors) -> anyhow::Result<Vec<(String, Vec<toml::Value>)>> {
    let table = item
        .as_table_like()
        .ok_or_else(|| errors.at("grid", "expected a table of key = [values]"))?;
    let mut grid = Vec::new();
    for (key, item) in table.iter() {
        let path = format!("grid.{key}");
        let values = item
            .as_array()
            .filter(|values| !values.is_empty())
            .ok_or_else(|| errors.at(&path, "expected a non-empty list of values to try"))?;
        grid.push((key.to_string(), values.iter().map(to_toml).collect()));
    }
    Ok(grid)
}

fn read_random(item: &Item, errors: &SpecErrors) -> anyhow::Result<RandomSpec> {
    let table = item
        .as_table_like()
        .ok_or_else(|| errors.at("random", "expected a table with `n`, `seed` and `params`"))?;
    check_keys(table, "random", &["n", "seed", "params"], errors)?;
    let n = table.get("n").and_then(Item::as_integer).filter(|n| *n > 0);
    let n = n.ok_or_else(|| {
        errors.at(
            "random.n",
            "expected `n`: how many random points to draw (> 0)",
        )
    })? as usize;
    let seed = match table.get("seed") {
        None => 0,
        Some(item) => item
            .as_integer()
            .filter(|s| *s >= 0)
            .ok_or_else(|| errors.at("random.seed", "expected a whole number >= 0"))?
            as u64,
    };
    let params = table
        .get("params")
        .and_then(Item::as_table_like)
        .filter(|params| !params.is_empty())
        .ok_or_else(|| errors.at("random", "expected [random.params]: key = { uniform | log_uniform | int_uniform | choice = ... }"))?;
    let mut distributions = Vec::new();
    for (key, item) in params.iter() {
        let path = format!("random.params.{key}");
        distributions.push((key.to_string(), read_distribution(item, &path, errors)?));
    }
    Ok(RandomSpec {
        n,
        seed,
        params: distributions,
    })
}

fn read_distribution(item: &Item, path: &str, errors: &SpecErrors) -> anyhow::Result<Distribution> {
    let expected = || {
        format!(
            "expected one of {} = [...], e.g. {{ log_uniform = [1e-4, 1e-2] }}",
            suggest::list(Distribution::KINDS)
        )
    };
    let table = item
        .as_table_like()
        .filter(|t| t.len() == 1)
        .ok_or_else(|| errors.at(path, expected()))?;
    let (kind, value) = table
        .iter()
        .next()
        .ok_or_else(|| errors.at(path, expected()))?;
    let path = format!("{path}.{kind}");
    let values: Vec<toml::Value> = match value.as_array() {
        Some(array) => array.iter().map(to_toml).collect(),
        None => return Err(errors.at(&path, "expected a list")),
    };
    let bounds = |values: &[toml::Value]| -> Option<(f64, f64)> {
        let number = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
        match values {
            [low, high] => Some((number(low)?, number(high)?)).filter(|(low, high)| low <= high),
            _ => None,
        }
    };
    match kind {
        "uniform" => bounds(&values)
            .map(|(low, high)| Distribution::Uniform(low, high))
            .ok_or_else(|| errors.at(&path, "expected [low, high] with low <= high")),
        "log_uniform" => bounds(&values)
            .filter(|(low, _)| *low > 0.0)
            .map(|(low, high)| Distribution::LogUniform(low, high))
            .ok_or_else(|| errors.at(&path, "expected [low, high] with 0 < low <= high")),
        "int_uniform" => match values.as_slice() {
            [toml::Value::Integer(low), toml::Value::Integer(high)] if low <= high => {
                Ok(Distribution::IntUniform(*low, *high))
            }
            _ => Err(errors.at(
                &path,
                "expected [low, high]: whole numbers with low <= high",
            )),
        },
        "choice" if !values.is_empty() => Ok(Distribution::Choice(values)),
        "choice" => Err(errors.at(&path, "expected a non-empty list of values to choose from")),
        other => Err(errors.at(
            &path,
            format!(
                "unknown distribution `{other}`; expected one of {}{}",
                suggest::list(Distribution::KINDS),
                suggest::did_you_mean(other, Distribution::KINDS)
            ),
        )),
    }
}

fn check_keys(
    table: &dyn TableLike,
    prefix: &str,
    valid: &[&str],
    errors: &SpecErrors,
) -> anyhow::Result<()> {
    for (key, _) in table.iter() {
        if !valid.contains(&key) {
            let path = if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            };
            let hint = match suggest::closest(key, valid.iter().copied()) {
                Some(near) => format!("; did you mean `{near}`?"),
                None => format!("; expected one of {}", suggest::list(valid.iter().copied())),
            };
            return Err(errors.at(&path, format!("unknown key `{key}` in a sweep file{hint}")));
        }
    }
    Ok(())
}

/// Grid points (first key slowest), each combined with every random draw.
fn expand(grid: &[(String, Vec<toml::Value>)], random: &Option<RandomSpec>) -> Vec<SweepPoint> {
    let mut grid_points: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
    for (key, values) in grid {
        grid_points = grid_points
            .into_iter()
            .flat_map(|point| {
                values.iter().map(move |value| {
                    let mut point = point.clone();
                    point.push((key.clone(), value.clone()));
                    point
                })
            })
            .collect();
    }
    let draws = match random {
        Some(random) => draw(random),
        None => vec![Vec::new()],
    };
    let mut points = Vec::new();
    for grid_point in &grid_points {
        for random_point in &draws {
            let sets = grid_point.iter().chain(random_point).cloned().collect();
            points.push(SweepPoint {
                index: points.len(),
                sets,
            });
        }
    }
    points
}

/// `n` draws from one ChaCha stream seeded by `seed`, parameters in file order, so the same
/// file always gives the same points.
fn draw(random: &RandomSpec) -> Vec<Vec<(String, toml::Value)>> {
    let mut rng = ChaCha8Rng::seed_from_u64(random.seed);
    (0..random.n)
        .map(|_| {
            random
                .params
                .iter()
                .map(|(key, distribution)| (key.clone(), distribution.sample(&mut rng)))
                .collect()
        })
        .collect()
}

fn to_toml(value: &toml_edit::Value) -> toml::Value {
    use toml_edit::Value as V;
    match value {
        V::String(s) => toml::Value::String(s.value().clone()),
        V::Integer(i) => toml::Value::Integer(*i.value()),
        V::Float(f) => toml::Value::Float(*f.value()),
        V::Boolean(b) => toml::Value::Boolean(*b.value()),
        V::Datetime(d) => toml::Value::String(d.value().to_string()),
        V::Array(array) => toml::Value::Array(array.iter().map(to_toml).collect()),
        V::InlineTable(table) => toml::Value::Table(
            table
                .iter()
                .map(|(k, v)| (k.to_string(), to_toml(v)))
                .collect(),
        ),
    }
}

/// The last part of a dotted key, or more of it when another key ends the same way
/// (`stages.base.lr` and `stages.sft.lr` become `base.lr` and `sft.lr`).
fn short_key(key: &str, all: &[&str]) -> String {
    let parts: Vec<&str> = key.split('.').collect();
    for take in 1..=parts.len() {
        let tail = parts[parts.len() - take..].join(".");
        let clashes = all
            .iter()
            .filter(|other| {
                **other != key && (other.ends_with(&format!(".{tail}")) || **other == tail)
            })
            .count();
        if clashes == 0 {
            return tail;
        }
    }
    key.to_string()
}

fn short_value(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) => significant(*f, 4),
        other => other.to_string(),
    }
}

/// `0.0031622776` -> `0.003162`: enough digits to tell points apart in a chart legend.
fn significant(value: f64, digits: i32) -> String {
    if value == 0.0 || !value.is_finite() {
        return value.to_string();
    }
    let magnitude = value.abs().log10().floor() as i32;
    if !(-5..6).contains(&magnitude) {
        return format!("{:.*e}", (digits - 1) as usize, value).replace(".000e", "e");
    }
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"name = "quickstart"
[model]
preset = "nano"
block_size = 64
[tokenizer]
kind = "char"
vocab_size = 128
[[stages]]
name = "base"
kind = "pretrain"
data = "corpus.txt"
steps = 100
[[stages]]
name = "sft"
kind = "sft"
from = "base"
data = "sft.jsonl"
"#;

    /// Writes `experiments/quickstart.toml` and `experiments/sweeps/<file>`; loads the sweep.
    fn sweep(file: &str, text: &str) -> (tempfile::TempDir, anyhow::Result<Sweep>) {
        let dir = tempfile::tempdir().unwrap();
        let sweeps = dir.path().join("experiments/sweeps");
        std::fs::create_dir_all(&sweeps).unwrap();
        std::fs::write(dir.path().join("experiments/quickstart.toml"), BASE).unwrap();
        std::fs::write(sweeps.join(file), text).unwrap();
        let opts = LoadOptions {
            data_root: dir.path().to_path_buf(),
            sets: Vec::new(),
        };
        let result = load_sweep_with(&sweeps.join(file), &opts);
        (dir, result)
    }

    const GRID: &str = r#"base = "../quickstart.toml"
[grid]
"stages.base.lr" = [1e-3, 3e-3]
"model.preset" = ["nano", "small"]
"stages.sft.steps" = [10, 20, 30]
"#;

    #[test]
    fn grid_is_the_product_in_written_order() {
        let (dir, sweep) = sweep("lr.toml", GRID);
        let sweep = sweep.unwrap();
        assert_eq!(sweep.name, "lr");
        assert_eq!(sweep.base, dir.path().join("experiments/quickstart.toml"));
        assert_eq!(sweep.points.len(), 2 * 2 * 3);
        assert_eq!(
            sweep.points[0].set_args(),
            vec![
                "stages.base.lr=0.001",
                "model.preset=\"nano\"",
                "stages.sft.steps=10"
            ]
        );
        assert_eq!(sweep.points[1].label(), "lr=0.001 preset=nano steps=20");
        assert_eq!(sweep.points[3].label(), "lr=0.001 preset=small steps=10");
        assert_eq!(sweep.points[11].label(), "lr=0.003 preset=small steps=30");
        assert!(sweep.points.iter().enumerate().all(|(i, p)| p.index == i));
        // Every point loads with its overrides.
        let opts = LoadOptions {
            data_root: dir.path().to_path_buf(),
            sets: sweep.points[5].set_args(),
        };
        let loaded = load_spec(&sweep.base, &opts).unwrap();
        assert_eq!(loaded.spec.stages[0].lr, 1e-3);
        assert_eq!(
            loaded.spec.model.preset,
            Some(crate::spec::schema::Preset::Small)
        );
        assert_eq!(loaded.spec.stages[1].steps, 30);
    }

    const RANDOM: &str = r#"base = "../quickstart.toml"
name = "random-search"
[random]
n = 40
seed = 3
[random.params]
"stages.base.lr" = { log_uniform = [1e-4, 1e-2] }
"stages.base.weight_decay" = { uniform = [0.0, 0.2] }
"stages.base.batch_size" = { int_uniform = [4, 8] }
"model.preset" = { choice = ["nano", "small"] }
"#;

    #[test]
    fn random_points_are_deterministic_and_in_range() {
        let (_dir, first) = sweep("r.toml", RANDOM);
        let first = first.unwrap();
        let (_dir, again) = sweep("r.toml", RANDOM);
        assert_eq!(first.points, again.unwrap().points);
        assert_eq!(first.name, "random-search");
        assert_eq!(first.points.len(), 40);
        let mut presets = std::collections::BTreeSet::new();
        for point in &first.points {
            let value = |key: &str| {
                point
                    .sets
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
                    .unwrap()
            };
            let lr = value("stages.base.lr").as_float().unwrap();
            assert!((1e-4..=1e-2).contains(&lr), "{lr}");
            let decay = value("stages.base.weight_decay").as_float().unwrap();
            assert!((0.0..=0.2).contains(&decay), "{decay}");
            let batch = value("stages.base.batch_size").as_integer().unwrap();
            assert!((4..=8).contains(&batch), "{batch}");
            presets.insert(value("model.preset").as_str().unwrap().to_string());
        }
        assert_eq!(presets.len(), 2, "both choices drawn in 40 points");
        // log-uniform: about half the draws fall below the geometric midpoint 1e-3.
        let below = first
            .points
            .iter()
            .filter(|p| p.sets[0].1.as_float().unwrap() < 1e-3)
            .count();
        assert!((10..=30).contains(&below), "{below} of 40 below 1e-3");

        let (_dir, other_seed) = sweep("r.toml", &RANDOM.replace("seed = 3", "seed = 4"));
        assert_ne!(other_seed.unwrap().points, first.points);
    }

    #[test]
    fn random_values_survive_the_set_round_trip() {
        let (dir, sweep) = sweep("r.toml", RANDOM);
        let sweep = sweep.unwrap();
        let point = &sweep.points[7];
        let opts = LoadOptions {
            data_root: dir.path().to_path_buf(),
            sets: point.set_args(),
        };
        let loaded = load_spec(&sweep.base, &opts).unwrap();
        assert_eq!(
            toml::Value::Float(loaded.spec.stages[0].lr),
            point.sets[0].1
        );
        assert_eq!(
            toml::Value::Float(loaded.spec.stages[0].weight_decay),
            point.sets[1].1
        );
    }

    #[test]
    fn grid_and_random_combine_as_a_product() {
        let text = format!("{}[random]\nn = 3\n[random.params]\n\"stages.base.weight_decay\" = {{ uniform = [0.0, 0.2] }}\n", GRID);
        let (_dir, sweep) = sweep("both.toml", &text);
        let points = sweep.unwrap().points;
        assert_eq!(points.len(), 12 * 3);
        // Each grid point sees the same three draws.
        let decay = |i: usize| points[i].sets[3].1.clone();
        assert_eq!(decay(0), decay(3));
        assert_eq!(decay(2), decay(35));
        assert_ne!(decay(0), decay(1));
    }

    #[test]
    fn bad_points_name_the_sweep_and_the_point() {
        let text = GRID.replace("[1e-3, 3e-3]", "[1e-3, -1.0]");
        let (_dir, sweep) = sweep("lr.toml", &text);
        let error = format!("{:#}", sweep.unwrap_err());
        assert!(
            error.contains("lr.toml: point 6 (lr=-1 preset=nano steps=10)"),
            "{error}"
        );
        assert!(error.contains("quickstart.toml (--set `stages.base.lr=-1.0`): `stages.base.lr`: expected a number > 0"), "{error}");

        let text = GRID.replace("stages.base.lr", "stages.base.lrr");
        let error = format!("{:#}", sweep_error(&text));
        assert!(
            error.contains("point 0") && error.contains("did you mean `lr`?"),
            "{error}"
        );
    }

    fn sweep_error(text: &str) -> anyhow::Error {
        sweep("s.toml", text).1.unwrap_err()
    }

    #[test]
    fn malformed_sweep_files() {
        let error = sweep_error("base = \"../quickstart.toml\"\n[grdi]\nx = [1]\n").to_string();
        assert!(
            error.contains("s.toml:2:1") && error.contains("did you mean `grid`?"),
            "{error}"
        );
        let error = sweep_error("[grid]\n\"seed\" = [1]\n").to_string();
        assert!(error.contains("expected `base`"), "{error}");
        let error = sweep_error("base = \"../quickstart.toml\"\n").to_string();
        assert!(
            error.contains("[grid]") && error.contains("[random]"),
            "{error}"
        );
        let error =
            sweep_error("base = \"../quickstart.toml\"\n[grid]\n\"seed\" = []\n").to_string();
        assert!(
            error.contains("s.toml:3:1")
                && error.contains("`grid.seed`")
                && error.contains("non-empty"),
            "{error}"
        );
        let text = "base = \"../quickstart.toml\"\n[random]\nn = 2\n[random.params]\n\"seed\" = { normal = [0, 1] }\n";
        let error = sweep_error(text).to_string();
        assert!(
            error.contains("s.toml:5:") && error.contains("unknown distribution `normal`"),
            "{error}"
        );
        let text = "base = \"../quickstart.toml\"\n[random]\nn = 2\n[random.params]\n\"stages.base.lr\" = { log_uniform = [0.0, 1.0] }\n";
        let error = sweep_error(text).to_string();
        assert!(error.contains("0 < low <= high"), "{error}");
        let text = "base = \"../quickstart.toml\"\n[random]\nseed = 1\n[random.params]\n\"seed\" = { choice = [1] }\n";
        assert!(sweep_error(text).to_string().contains("`random.n`"));
    }

    #[test]
    fn metrics_are_stage_metric_strings_of_known_stages() {
        let good = GRID.replacen(
            "[grid]",
            "metrics = [\"sft/val/loss\", \"base/loss\"]\n[grid]",
            1,
        );
        let (_dir, sweep) = sweep("s.toml", &good);
        assert_eq!(sweep.unwrap().metrics, ["sft/val/loss", "base/loss"]);
        let bad =
            "base = \"../quickstart.toml\"\nmetrics = [\"val/loss\"]\n[grid]\n\"seed\" = [1, 2]\n";
        let error = sweep_error(bad).to_string();
        assert!(
            error.contains("s.toml:2:1")
                && error.contains("no stage `val`")
                && error.contains("sft"),
            "{error}"
        );
        let error = sweep_error(
            "base = \"../quickstart.toml\"\nmetrics = [\"loss\"]\n[grid]\n\"seed\" = [1]\n",
        )
        .to_string();
        assert!(
            error.contains("s.toml:2:1") && error.contains("stage/metric"),
            "{error}"
        );
        let error = sweep_error(
            "base = \"../quickstart.toml\"\nmetrics = \"sft/loss\"\n[grid]\n\"seed\" = [1]\n",
        )
        .to_string();
        assert!(error.contains("expected a list"), "{error}");
    }

    #[test]
    fn labels_disambiguate_shared_key_endings() {
        let point = SweepPoint {
            index: 0,
            sets: vec![
                (
                    "stages.base.lr".into(),
                    toml::Value::Float(0.0031622776601683794),
                ),
                ("stages.sft.lr".into(), toml::Value::Float(1e-4)),
                ("seed".into(), toml::Value::Integer(3)),
            ],
        };
        assert_eq!(point.label(), "base.lr=0.003162 sft.lr=0.0001 seed=3");
        assert_eq!(significant(123456789.0, 4), "1.235e8");
        assert_eq!(significant(0.25, 4), "0.25");
        assert_eq!(significant(2.0, 4), "2");
    }
}
