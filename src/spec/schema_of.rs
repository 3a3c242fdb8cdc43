//! The JSON Schema of one of the spec's types, as every part of the spec derives it: by
//! schemars, draft-07 (the draft taplo reads), without `null` (TOML has none). Below both
//! `json_schema.rs` (the schema for editors) and `stage_keys.rs` (the stage keys'
//! declarations), which read the same output.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Value};

/// `T`'s schema, with its definitions, as JSON.
pub fn schema_of<T: JsonSchema>() -> Value {
    let mut value = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    without_null(&mut value);
    value
}

/// TOML has no null: an optional key is one that is left out, so schemars' `null` for an
/// `Option` is dropped everywhere.
fn without_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(options)) = map.get_mut(key) {
                    options.retain(|o| o != &json!({ "type": "null" }));
                }
            }
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            map.values_mut().for_each(without_null);
        }
        Value::Array(items) => items.iter_mut().for_each(without_null),
        _ => {}
    }
}
