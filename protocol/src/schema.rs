//! JSON Schemas (draft 2020-12) generated from the payload types.
//!
//! The committed files under `protocol/schemas/` are this module's output;
//! `cargo test -p protocol` fails when they drift, and
//! `UPDATE_SCHEMAS=1 cargo test -p protocol` rewrites them.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::catalog::{APP_EVENT_SPEC, CATALOG, EventSpec};
use crate::event as ev;
use crate::payload::{AckFailure, AppEventMeta};

/// The pinned draft.
pub const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// A standalone schema for `T`, with its `$defs` inline.
pub fn root<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    generator.into_root_schema_for::<T>().to_value()
}

/// Adds the `$schema` keyword to a hand-written schema.
pub fn with_draft(mut schema: Value) -> Value {
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("$schema".into(), Value::String(DRAFT.into()));
    }
    schema
}

/// Schema of every failed ack.
pub fn ack_failure() -> Value {
    root::<AckFailure>()
}

/// Schema of the second argument of every application event.
pub fn app_event_meta() -> Value {
    root::<AppEventMeta>()
}

/// Schema of an event's ack: success or failure.
///
/// Both branches' `$defs` move to the root of the ack document: a
/// `#/$defs/...` reference always means the document's root, so definitions
/// left inside a `oneOf` branch would not resolve.
pub fn ack(spec: &EventSpec) -> Option<Value> {
    let mut defs = Map::new();
    let success = embed(spec.ack.success_schema()?, &mut defs);
    let failure = embed(ack_failure(), &mut defs);
    let mut doc = json!({
        "title": format!("{} ack", spec.name),
        "oneOf": [success, failure]
    });
    if !defs.is_empty() {
        doc["$defs"] = Value::Object(defs);
    }
    Some(with_draft(doc))
}

/// Prepares a standalone schema for embedding in a larger document: drops
/// its `$schema` and moves its `$defs` into `defs` (the embedding document's
/// root `$defs`). schemars names a definition after its Rust type, so two
/// definitions with one name must be identical; anything else is a bug in
/// the payload types and panics.
fn embed(mut schema: Value, defs: &mut Map<String, Value>) -> Value {
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("$schema");
        if let Some(Value::Object(own)) = obj.remove("$defs") {
            for (name, def) in own {
                match defs.get(&name) {
                    Some(existing) => assert_eq!(
                        existing, &def,
                        "two different schema definitions are named {name}"
                    ),
                    None => {
                        defs.insert(name, def);
                    }
                }
            }
        }
    }
    schema
}

/// One document holding every event's payload and ack schema, keyed by
/// event name: what `protocol/schemas/catalog.json` contains.
///
/// Every definition the embedded schemas use is in the document's root
/// `$defs`, so `#/events/<name>/payload` (and `ackSchema`, and `meta` for
/// the application event) can be used as a schema through a `$ref` into
/// this document.
pub fn catalog_document() -> Value {
    let mut defs = Map::new();
    let mut events = Map::new();
    for spec in CATALOG {
        let mut entry = Map::new();
        entry.insert("section".into(), json!(spec.section));
        entry.insert("direction".into(), json!(spec.direction.arrow()));
        entry.insert("namespaces".into(), json!(spec.namespaces.label()));
        entry.insert("ack".into(), json!(spec.ack.label()));
        entry.insert("payload".into(), embed((spec.payload)(), &mut defs));
        if let Some(ack) = ack(spec) {
            entry.insert("ackSchema".into(), embed(ack, &mut defs));
        }
        if spec.name == APP_EVENT_SPEC.name {
            entry.insert("meta".into(), embed(app_event_meta(), &mut defs));
        }
        events.insert(spec.name.into(), Value::Object(entry));
    }
    json!({
        "$schema": DRAFT,
        "$comment": "Generated from the protocol crate; do not edit. UPDATE_SCHEMAS=1 cargo test -p protocol rewrites it.",
        "draft": DRAFT,
        "errorCodes": crate::ErrorCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        "events": events,
        "$defs": defs,
    })
}

/// The file name of an event's schema under `protocol/schemas/`:
/// `room:subscribe` gives `room_subscribe`; the application event's
/// pseudo-name `{appId}:*` gives `app_event`.
pub fn file_stem(event: &str) -> String {
    if event == ev::APP_EVENT {
        return "app_event".to_string();
    }
    event
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_matches('_')
        .to_string()
}

/// Every committed schema file: (relative path, content).
///
/// Per event: `<stem>.payload.json`, and `<stem>.ack.json` for client
/// events; the application event also has `app_event.meta.json` (its second
/// argument). Then `ack_failure.json` and the bundle `catalog.json`.
pub fn files() -> Vec<(String, Value)> {
    let mut out = vec![("catalog.json".to_string(), catalog_document())];
    for spec in CATALOG {
        let stem = file_stem(spec.name);
        out.push((format!("{stem}.payload.json"), (spec.payload)()));
        if let Some(ack) = ack(spec) {
            out.push((format!("{stem}.ack.json"), ack));
        }
        if spec.name == APP_EVENT_SPEC.name {
            out.push((format!("{stem}.meta.json"), app_event_meta()));
        }
    }
    out.push(("ack_failure.json".into(), ack_failure()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_name_the_pinned_draft() {
        for (path, schema) in files() {
            if path == "catalog.json" {
                continue;
            }
            assert_eq!(schema["$schema"], DRAFT, "{path}");
        }
    }

    #[test]
    fn file_stems() {
        assert_eq!(file_stem("room:subscribe"), "room_subscribe");
        assert_eq!(file_stem("{appId}:*"), "app_event");
    }

    #[test]
    fn file_names_are_unique() {
        let mut names: Vec<_> = files().into_iter().map(|(p, _)| p).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "two schemas share a file name");
    }

    #[test]
    fn ack_schemas_keep_their_definitions_at_the_root() {
        for spec in CATALOG {
            let Some(ack) = ack(spec) else { continue };
            for branch in ack["oneOf"].as_array().unwrap() {
                assert!(branch.get("$defs").is_none(), "{}", spec.name);
                assert!(branch.get("$schema").is_none(), "{}", spec.name);
            }
        }
    }
}
