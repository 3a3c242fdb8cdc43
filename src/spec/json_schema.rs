//! The JSON Schema of experiment and sweep files, for editors (taplo's `#:schema` directive,
//! VS Code's Even Better TOML): completion, docs on hover, and mistakes underlined while
//! typing. It is generated from the spec's own serde types by `schemars` (doc comments become
//! descriptions, `#[schemars(range)]` ranges, serde defaults defaults), so it cannot drift
//! from what `load_spec` reads. Draft-07, which taplo reads.
//!
//! A stage's keys depend on its `kind` and `algorithm`: the flat stage is split into one
//! variant per method (`oneOf`, each with its `kind`/`algorithm` as constants and only that
//! method's keys), so an editor offers a DPO stage DPO's keys. Which keys a method takes and
//! which it requires come from the keys' declarations (`stage_keys.rs`, through `keys.rs`)
//! and from converting a flat stage (`stage.rs`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::flat::FlatStage;
use super::keys::method_keys;
use super::kinds::{Algorithm, StageKind};
use super::schema::Experiment;
use super::schema_of::schema_of;
use super::stage::{method_name, methods};

/// Methods registered for tests only (`rlhf_methods!`): left out of the shipped schema.
const TEST_ONLY_ALGORITHMS: &[&str] = &["toy"];

/// The schema of an experiment file, as pretty JSON with a final newline. The `x-`
/// declarations (which stages take a key, which keys are paths) are left out: the stage
/// variants already say the first, and editors need neither.
pub fn experiment_schema_text() -> String {
    let mut schema = experiment_schema(false);
    without_extensions(&mut schema);
    pretty(&schema)
}

fn without_extensions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !key.starts_with("x-"));
            map.values_mut().for_each(without_extensions);
        }
        Value::Array(items) => items.iter_mut().for_each(without_extensions),
        _ => {}
    }
}

/// The schema of a sweep file, as pretty JSON with a final newline.
pub fn sweep_schema_text() -> String {
    pretty(&sweep_schema())
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("a schema is JSON") + "\n"
}

/// The experiment schema, with the `x-` declarations; `with_test_methods` keeps methods
/// registered for tests only.
pub fn experiment_schema(with_test_methods: bool) -> Value {
    let mut value = schema_of::<Experiment<FlatStage>>();
    value["title"] = json!("gptlab experiment");
    let definitions = value["definitions"]
        .as_object_mut()
        .expect("schemars writes definitions");
    let flat = definitions["FlatStage"].clone();
    // `if kind (and algorithm) then this method's stage`, rather than `oneOf`: a validator
    // then names the key at fault instead of "valid under none of the variants".
    let methods: Vec<_> = methods()
        .into_iter()
        .filter(|(_, algorithm)| with_test_methods || !is_test_only(*algorithm))
        .collect();
    let mut variants: Vec<Value> = methods
        .iter()
        .map(|&(kind, algorithm)| {
            json!({
                "if": selector(kind, algorithm),
                "then": stage_variant(&flat, kind, algorithm),
            })
        })
        .collect();
    variants.push(json!({
        "if": selector(StageKind::Rlhf, None),
        "then": { "required": ["algorithm"] },
    }));
    let algorithms: Vec<&str> = methods
        .iter()
        .filter_map(|(_, algorithm)| algorithm.map(|a| a.as_str()))
        .collect();
    definitions.insert(
        "FlatStage".into(),
        json!({
            "description": "A stage: its `kind` (and an rlhf stage's `algorithm`) selects the keys it takes.",
            "type": "object",
            "properties": {
                "name": flat["properties"]["name"],
                "kind": flat["properties"]["kind"],
                "algorithm": {
                    "description": flat["properties"]["algorithm"]["description"],
                    "enum": algorithms,
                },
            },
            "required": ["name", "kind"],
            "allOf": variants,
        }),
    );
    // Each variant names its algorithm as a constant, so the enum is no longer referenced
    // (and would list the test-only methods).
    definitions.remove("Algorithm");
    value
}

/// Matches the stages of one method: its `kind`, and an rlhf stage's `algorithm`.
fn selector(kind: StageKind, algorithm: Option<Algorithm>) -> Value {
    let mut properties = json!({ "kind": { "const": kind.as_str() } });
    let mut required = vec!["kind"];
    if let Some(algorithm) = algorithm {
        properties["algorithm"] = json!({ "const": algorithm.as_str() });
        required.push("algorithm");
    }
    json!({ "properties": properties, "required": required })
}

fn is_test_only(algorithm: Option<Algorithm>) -> bool {
    algorithm.is_some_and(|a| is_test_only_name(a.as_str()))
}

/// Whether an algorithm's name is a method registered for tests only.
pub fn is_test_only_name(name: &str) -> bool {
    TEST_ONLY_ALGORITHMS.contains(&name)
}

/// One method's stage: its keys only, with their defaults, `kind` and `algorithm` fixed, and
/// the keys it cannot do without required.
fn stage_variant(flat: &Value, kind: StageKind, algorithm: Option<Algorithm>) -> Value {
    let keys = method_keys(kind, algorithm).expect("every method has keys");
    let defaults = defaults(kind);
    let mut properties = Map::new();
    for key in &keys {
        let mut property = flat["properties"][*key].clone();
        if let (Some(default), Some(object)) = (defaults.get(*key), property.as_object_mut()) {
            object.insert("default".into(), default.clone());
        }
        properties.insert(key.to_string(), property);
    }
    properties.insert(
        "kind".into(),
        json!({ "description": flat["properties"]["kind"]["description"], "const": kind.as_str() }),
    );
    if let Some(algorithm) = algorithm {
        properties.insert(
            "algorithm".into(),
            json!({ "description": flat["properties"]["algorithm"]["description"], "const": algorithm.as_str() }),
        );
    }
    let title = match algorithm {
        Some(_) => format!("{kind} stage ({})", method_name(kind, algorithm)),
        None => format!("{kind} stage"),
    };
    json!({
        "title": title,
        "type": "object",
        "properties": properties,
        "required": required_keys(kind, algorithm),
        "additionalProperties": false,
    })
}

/// A stage's defaults as the resolved spec writes them, as JSON.
fn defaults(kind: StageKind) -> Map<String, Value> {
    let table = toml::Table::try_from(FlatStage::new("x", kind)).expect("a stage is TOML");
    match serde_json::to_value(table).expect("TOML is JSON") {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The keys a stage of this method cannot leave out: found by converting a stage with only
/// `name`, `kind` and `algorithm` written, and adding each key the conversion asks for until
/// it succeeds, so this follows `stage.rs` and `methods/` rather than repeating them.
fn required_keys(kind: StageKind, algorithm: Option<Algorithm>) -> Vec<String> {
    let mut required = vec!["name".to_string(), "kind".to_string()];
    if algorithm.is_some() {
        required.push("algorithm".into());
    }
    let mut table = toml::Table::new();
    table.insert("name".into(), "x".into());
    table.insert("kind".into(), kind.as_str().into());
    if let Some(algorithm) = algorithm {
        table.insert("algorithm".into(), algorithm.as_str().into());
    }
    for _ in 0..super::keys::Table::Stage.keys().len() {
        let flat = FlatStage::deserialize(toml::Value::Table(table.clone()))
            .expect("a stage with every required key written as a string reads");
        match flat.into_stage() {
            Ok(_) => return required,
            Err(problem) => {
                // Every key a method requires is a name or a path: a string stands for it.
                table.insert(problem.key.into(), "x".into());
                required.push(problem.key.into());
            }
        }
    }
    panic!("a {kind} stage never converts: {required:?}")
}

/// A sweep file: the experiment it varies and the points, a grid and/or random draws. The
/// sweep reader (`sweep.rs`) walks the TOML document itself for its located errors; these
/// types only describe the file for the schema, and a test holds their keys to the reader's.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(super) struct SweepFileSchema {
    /// The experiment spec this sweep varies, relative to the sweep file, e.g.
    /// "../quickstart.toml".
    base: String,
    /// The sweep's name, its folder under `results/` (default: the file's name). Letters,
    /// digits, `-`, `_` and `.`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9._-]+$"))]
    name: Option<String>,
    /// Spec keys, quoted (`"stages.base.lr"`), and the values each takes: every combination
    /// is a point.
    grid: Option<BTreeMap<String, Vec<Value>>>,
    /// `n` points drawn at random, each key from its distribution.
    random: Option<RandomSchema>,
    /// `"stage/metric"`s charted against the varied keys (default: the report's).
    metrics: Option<Vec<String>>,
}

/// `[random]`: how many points, the seed, and a distribution per spec key.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RandomSchema {
    /// How many points to draw.
    #[schemars(range(min = 1))]
    n: u64,
    /// Seeds the draws.
    seed: Option<u64>,
    /// Spec key → `{ uniform = [low, high] }`, `{ log_uniform = [low, high] }`,
    /// `{ int_uniform = [low, high] }` or `{ choice = [...] }`.
    params: BTreeMap<String, Distribution>,
}

/// One key's distribution.
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[allow(dead_code)]
enum Distribution {
    /// A number drawn uniformly from [low, high].
    Uniform([f64; 2]),
    /// A number whose logarithm is drawn uniformly: for learning rates.
    LogUniform([f64; 2]),
    /// A whole number drawn uniformly from [low, high].
    IntUniform([i64; 2]),
    /// One of these values.
    Choice(Vec<Value>),
}

fn sweep_schema() -> Value {
    let mut value = schema_of::<SweepFileSchema>();
    value["title"] = json!("gptlab sweep");
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::keys::Table;

    fn committed(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schema")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_default()
    }

    #[test]
    fn committed_schemas_are_fresh() {
        // Regenerate with: gptlab schema > schema/experiment.schema.json
        //                  gptlab schema --sweep > schema/sweep.schema.json
        assert!(
            committed("experiment.schema.json") == experiment_schema_text(),
            "schema/experiment.schema.json is stale: run `gptlab schema > schema/experiment.schema.json`"
        );
        assert!(
            committed("sweep.schema.json") == sweep_schema_text(),
            "schema/sweep.schema.json is stale: run `gptlab schema --sweep > schema/sweep.schema.json`"
        );
    }

    /// Every key a stage of each method takes has a description, and the variant takes
    /// exactly the keys `keys.rs` gives that method; unknown keys are refused everywhere.
    #[test]
    fn stage_variants_follow_the_method_keys() {
        let schema = experiment_schema(true);
        let variants = schema["definitions"]["FlatStage"]["allOf"]
            .as_array()
            .unwrap();
        for (i, (kind, algorithm)) in methods().into_iter().enumerate() {
            let then = &variants[i]["then"];
            assert_eq!(then["additionalProperties"], json!(false));
            let keys: Vec<&String> = then["properties"].as_object().unwrap().keys().collect();
            let mut expected = method_keys(kind, algorithm).unwrap();
            expected.sort();
            assert_eq!(keys, expected, "{kind} {algorithm:?}");
            for (key, property) in then["properties"].as_object().unwrap() {
                assert!(property["description"].is_string(), "{kind} {key}");
            }
        }
        // The test-only method is registered by one line in `rlhf_methods!`, and is in the
        // schema that test builds generate, with its keys.
        let toy = variants
            .iter()
            .find(|v| v["if"]["properties"]["algorithm"]["const"] == "toy");
        assert!(toy.unwrap()["then"]["properties"]["toy_margin"].is_object());
        assert!(!experiment_schema_text().contains("\"toy\""));
        // Every table refuses keys it does not know, as `gptlab validate` does.
        for name in [
            "ModelSpec",
            "TokenizerSpec",
            "ReportSpec",
            "Sampling",
            "Probe",
            "ReportEval",
            "JudgeSpec",
            "EntryTable",
        ] {
            assert_eq!(
                schema["definitions"][name]["additionalProperties"],
                json!(false),
                "{name}"
            );
        }
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(
            Table::Root.keys().len(),
            schema["properties"].as_object().unwrap().len()
        );
    }

    #[test]
    fn methods_require_what_converting_a_stage_asks_for() {
        let ppo = required_keys(StageKind::Rlhf, Some(Algorithm::Ppo));
        assert_eq!(
            ppo,
            ["name", "kind", "algorithm", "prompts", "reward_model"]
        );
        assert_eq!(
            required_keys(StageKind::Pretrain, None),
            ["name", "kind", "data"]
        );
        assert_eq!(
            required_keys(StageKind::Feedback, None),
            ["name", "kind", "prompts", "judge"]
        );
        assert_eq!(
            required_keys(StageKind::Pretrained, None),
            ["name", "kind", "path"]
        );
    }

    /// The sweep schema describes the keys the sweep reader accepts.
    #[test]
    fn sweep_schema_has_the_readers_keys() {
        let schema = sweep_schema();
        let keys: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["base", "grid", "metrics", "name", "random"]);
        assert_eq!(schema["required"], json!(["base"]));
        let random = &schema["definitions"]["RandomSchema"]["properties"];
        let mut random: Vec<&String> = random.as_object().unwrap().keys().collect();
        random.sort();
        assert_eq!(random, ["n", "params", "seed"]);
    }
}
