//! A resolved spec as a flat map of dotted keys, so runs can be told apart by the keys whose
//! values differ: `model.preset=small stages.base.lr=0.003`. Stages are addressed by name
//! (`stages.<name>.<key>`), not position, so inserting a stage does not shift the others.

use std::collections::BTreeMap;

pub fn flatten_spec(spec: &toml::Table) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    flatten_table("", spec, &mut out);
    out
}

fn flatten_table(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(t) => flatten_table(&path, t, out),
            toml::Value::Array(items) if path == "stages" => {
                for (i, item) in items.iter().enumerate() {
                    let Some(stage) = item.as_table() else {
                        out.insert(format!("stages.{i}"), item.to_string());
                        continue;
                    };
                    let name = stage
                        .get("name")
                        .and_then(|n| n.as_str())
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string());
                    let mut rest = stage.clone();
                    rest.remove("name");
                    if rest.is_empty() {
                        // A stage that is only a name still tells runs apart.
                        out.insert(format!("stages.{name}"), "{}".into());
                    }
                    flatten_table(&format!("stages.{name}"), &rest, out);
                }
            }
            value => {
                out.insert(path, value_text(value));
            }
        }
    }
}

/// Strings without quotes (they read better in a legend), everything else as inline TOML.
fn value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        // Derived values like lr / 10 carry float noise (0.00030000000000000003): round to
        // 12 significant digits, which every hand-written value survives.
        toml::Value::Float(f) => format!("{:.11e}", f)
            .parse::<f64>()
            .map_or_else(|_| f.to_string(), |r| r.to_string()),
        other => other.to_string(),
    }
}

/// Keys whose value is not the same in every map (a key missing from some map differs too).
pub fn differing_keys(maps: &[BTreeMap<String, String>]) -> Vec<String> {
    let mut keys: Vec<&String> = maps.iter().flat_map(|m| m.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| {
            let first = maps.first().and_then(|m| m.get(*k));
            maps.iter().any(|m| m.get(*k) != first)
        })
        .cloned()
        .collect()
}

/// The keys that tell runs apart: those that differ, less those that only follow another by
/// the spec's own rule (`stages.<s>.min_lr`, a tenth of `stages.<s>.lr` unless set), which
/// say nothing that key does not and would only repeat it in every run's name.
pub fn varied_keys(maps: &[BTreeMap<String, String>]) -> Vec<String> {
    let differing = differing_keys(maps);
    differing
        .iter()
        .filter(|k| !follows_lr(maps, k))
        .cloned()
        .collect()
}

/// Whether `key` is a stage's `min_lr` that is the default of its `lr` in every map.
fn follows_lr(maps: &[BTreeMap<String, String>], key: &str) -> bool {
    let Some(stage) = key.strip_suffix(".min_lr") else {
        return false;
    };
    let number = |m: &BTreeMap<String, String>, k: &str| m.get(k)?.parse::<f64>().ok();
    maps.iter().all(
        |m| match (number(m, key), number(m, &format!("{stage}.lr"))) {
            (Some(min_lr), Some(lr)) => {
                let derived = crate::spec::default_min_lr(lr);
                (min_lr - derived).abs() <= 1e-9 * derived.abs().max(f64::MIN_POSITIVE)
            }
            _ => false,
        },
    )
}

/// `key=value` for each of `keys`, space separated; `key=—` where the run lacks the key.
pub fn label(map: &BTreeMap<String, String>, keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("{k}={}", map.get(k).map(String::as_str).unwrap_or("—")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_min_lr_that_follows_lr_does_not_name_runs() {
        let run = |lr: f64, min_lr: f64, preset: &str| {
            flat(&format!(
                "[model]\npreset = \"{preset}\"\n[[stages]]\nname = \"base\"\nlr = {lr}\nmin_lr = {min_lr}"
            ))
        };
        let followed = [run(3e-3, 3e-3 / 10.0, "nano"), run(1e-2, 1e-3, "small")];
        assert_eq!(
            differing_keys(&followed),
            ["model.preset", "stages.base.lr", "stages.base.min_lr"]
        );
        assert_eq!(varied_keys(&followed), ["model.preset", "stages.base.lr"]);
        // Set by hand (or swept) it is a key of its own.
        let set = [run(3e-3, 1e-4, "nano"), run(1e-2, 1e-3, "nano")];
        assert_eq!(varied_keys(&set), ["stages.base.lr", "stages.base.min_lr"]);
    }

    #[test]
    fn float_noise_is_rounded_away() {
        assert_eq!(value_text(&toml::Value::Float(0.003 / 10.0)), "0.0003");
        assert_eq!(value_text(&toml::Value::Float(3e-4)), "0.0003");
    }

    fn flat(text: &str) -> BTreeMap<String, String> {
        flatten_spec(&toml::from_str(text).unwrap())
    }

    #[test]
    fn stages_are_addressed_by_name() {
        let m = flat(
            r#"name = "x"
            [model]
            preset = "nano"
            [[stages]]
            name = "base"
            lr = 0.003
            [[stages]]
            name = "sft"
            data = ["a.jsonl", "b.jsonl"]
            [report]
            sampling = { temperature = 0.8 }"#,
        );
        assert_eq!(m["model.preset"], "nano");
        assert_eq!(m["stages.base.lr"], "0.003");
        assert_eq!(m["stages.sft.data"], r#"["a.jsonl", "b.jsonl"]"#);
        assert_eq!(m["report.sampling.temperature"], "0.8");
        assert!(!m.contains_key("stages.base.name"));
    }

    #[test]
    fn only_differing_keys_label_a_run() {
        let a = flat("seed = 1\n[model]\npreset = \"nano\"\n[[stages]]\nname = \"base\"\nlr = 0.001\nsteps = 10");
        let b = flat("seed = 1\n[model]\npreset = \"small\"\n[[stages]]\nname = \"base\"\nlr = 0.003\nsteps = 10");
        let keys = differing_keys(&[a.clone(), b.clone()]);
        assert_eq!(keys, ["model.preset", "stages.base.lr"]);
        assert_eq!(label(&b, &keys), "model.preset=small stages.base.lr=0.003");
        let c = flat("seed = 1\n[model]\npreset = \"nano\"\n[[stages]]\nname = \"base\"\nlr = 0.001\nsteps = 10\n[[stages]]\nname = \"sft\"");
        assert_eq!(differing_keys(&[a, c]), ["stages.sft"]);
    }
}
