//! The JSON Schema of scenario files, derived from the raw serde shape (`scenario::raw`) that
//! the TOML deserializes into, for editors (taplo, Even Better TOML) and other tools.
//! Shipped as schema/scenario.schema.json; `lvslab schema` prints it, and a test holds the
//! shipped file to this output.

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use schemars::transform::{transform_subschemas, Transform};
use schemars::{JsonSchema, Schema};
use serde::Deserialize;
use serde_json::Value;

use crate::scenario::raw::{
    RawClient, RawDirector, RawEvent, RawExpect, RawNetwork, RawRealServer, RawRouter, RawService, RawTop, RawTraffic,
    RawVrrpGateway, RawVrrpInstance, RawVrrpScript, RawVrrpSyncGroup,
};

/// A table written once (`[director]`) or as an array of tables (`[[director]]`).
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "OneOrMany_{T}")]
#[allow(dead_code)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

/// An LVS scenario for lvslab: the lab (directors, real servers, clients, networks, routers),
/// the service, the traffic and what to expect. See scenarios/README.md.
///
/// The document as `scenario::document` reads it: the top-level keys, then one section per
/// key. Sections are read one by one there (so that one bad entry hides no other problem);
/// this type exists only to describe the whole file.
#[derive(Deserialize, JsonSchema)]
#[schemars(title = "lvslab scenario")]
#[allow(dead_code)]
struct ScenarioFile {
    #[serde(flatten)]
    top: RawTop,
    /// `[service]`, or `[[service]]` entries for several services.
    service: Option<OneOrMany<RawService>>,
    /// One `[director]` table, or `[[director]]` entries (several directors or a VRRP pair).
    director: Option<OneOrMany<RawDirector>>,
    real_server: Option<Vec<RawRealServer>>,
    client: Option<Vec<RawClient>>,
    network: Option<Vec<RawNetwork>>,
    router: Option<Vec<RawRouter>>,
    traffic: Option<RawTraffic>,
    expect: Option<RawExpect>,
    event: Option<Vec<RawEvent>>,
    vrrp_instance: Option<RawVrrpInstance>,
    vrrp_gateway: Option<RawVrrpGateway>,
    vrrp_sync_group: Option<RawVrrpSyncGroup>,
    vrrp_script: Option<Vec<RawVrrpScript>>,
}

/// TOML, not JSON: unknown keys are errors in lvslab (with "did you mean"), so they are to the
/// editor too (maps with free keys, `sysctl` and `share`, have no `properties` and keep their
/// own rule); and TOML has no null, so an optional key is its type alone, not "or null".
#[derive(Clone)]
struct TomlShape;

impl Transform for TomlShape {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(object) = schema.as_object_mut() {
            if object.contains_key("properties") && !object.contains_key("additionalProperties") {
                object.insert("additionalProperties".into(), false.into());
            }
            if let Some(Value::Array(types)) = object.get_mut("type") {
                types.retain(|t| t != "null");
                if let [only] = types.as_slice() {
                    let only = only.clone();
                    object.insert("type".into(), only);
                }
            }
            let null = serde_json::json!({ "type": "null" });
            if let Some(Value::Array(any)) = object.get_mut("anyOf") {
                any.retain(|s| *s != null);
                if let [Value::Object(only)] = any.as_slice() {
                    let only = only.clone();
                    object.remove("anyOf");
                    object.extend(only);
                }
            }
        }
        transform_subschemas(self, schema);
    }
}

/// The schema, as pretty JSON with a final newline (the shipped file's form).
pub fn scenario_schema_json() -> String {
    let generator = SchemaSettings::draft07().with_transform(TomlShape).into_generator();
    let schema = generator.into_root_schema_for::<ScenarioFile>();
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema is JSON");
    text.push('\n');
    text
}

/// Every section's keys as the schema lists them, by section name (as `raw::known_keys`
/// names them), for the test that holds the two lists together.
pub fn section_keys() -> BTreeMap<&'static str, Vec<String>> {
    fn keys<T: JsonSchema>() -> Vec<String> {
        let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
        let mut keys: Vec<String> = schema
            .get("properties")
            .and_then(|p| p.as_object())
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }
    BTreeMap::from([
        ("", keys::<ScenarioFile>()),
        ("service", keys::<RawService>()),
        ("director", keys::<RawDirector>()),
        ("real_server", keys::<RawRealServer>()),
        ("client", keys::<RawClient>()),
        ("network", keys::<RawNetwork>()),
        ("router", keys::<RawRouter>()),
        ("traffic", keys::<RawTraffic>()),
        ("expect", keys::<RawExpect>()),
        ("event", keys::<RawEvent>()),
        ("vrrp_instance", keys::<RawVrrpInstance>()),
        ("vrrp_gateway", keys::<RawVrrpGateway>()),
        ("vrrp_sync_group", keys::<RawVrrpSyncGroup>()),
        ("vrrp_script", keys::<RawVrrpScript>()),
        ("check", keys::<crate::scenario::raw::RawCheck>()),
        ("interface", keys::<crate::scenario::raw::RawInterface>()),
        ("track_interface", keys::<crate::scenario::raw::RawTrackInterface>()),
        ("track_script", keys::<crate::scenario::raw::RawTrackScript>()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::raw::known_keys;

    #[test]
    fn every_section_of_the_schema_has_the_keys_the_loader_knows() {
        for (section, keys) in section_keys() {
            let mut known: Vec<String> = known_keys(section).iter().map(|k| k.to_string()).collect();
            known.sort();
            assert_eq!(keys, known, "section {section:?}: schema keys vs raw::known_keys");
        }
    }

    #[test]
    fn unknown_keys_are_refused_but_sysctl_names_are_free() {
        let schema: serde_json::Value = serde_json::from_str(&scenario_schema_json()).unwrap();
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"]["engine"]["type"], "string", "TOML has no null");
        assert!(!schema.to_string().contains("null"), "TOML has no null");
        let client = &schema["definitions"]["RawClient"];
        assert_eq!(client["additionalProperties"], false, "{client}");
        let sysctl = &client["properties"]["sysctl"];
        assert_ne!(sysctl.to_string(), "", "{sysctl}");
        assert!(
            !sysctl.to_string().contains("\"additionalProperties\":false"),
            "{sysctl}"
        );
    }
}
