//! Validation of payloads and acks against the catalog's JSON Schemas: the
//! one validator the server's tests, the conformance runner and the
//! protocol's own tests share (behind the `validate` feature, which pulls
//! in `boon`, a draft 2020-12 validator; the catalog itself stays free of
//! it).
//!
//! Two questions, kept apart because they lead to different verdicts:
//! * [`payload_errors`] / [`ack_errors`]: is the value valid? Every
//!   [`Violation`] names the JSON pointer of the offending part;
//! * [`payload_extra_fields`] / [`ack_extra_fields`]: which fields does a
//!   valid value carry that the schema does not declare? The protocol
//!   allows extra fields (its types accept unknown fields when decoding),
//!   so the runner reports them as non-strict findings, not failures.
//!
//! Validators are compiled once per schema (an event's payload or ack, the
//! app-event metadata, and each `oneOf` branch the extra-field walk needs)
//! and kept for the process's life.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::catalog::EventSpec;

/// Why a value could not be checked at all (as opposed to being invalid).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    #[error("`{0}` is not an event of the catalog")]
    UnknownEvent(String),
    #[error("`{0}` has no ack")]
    NoAck(String),
}

/// A schema given by the caller does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the schema does not compile: {0}")]
pub struct CompileError(String);

/// One violation of a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer (RFC 6901) of the offending part; empty for the root.
    pub pointer: String,
    pub message: String,
}

/// `pointer: message`, with `/` standing for the root.
impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{pointer}: {}", self.message)
    }
}

/// Which schema of the catalog: an event's payload or its ack, or the
/// second argument of application events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Payload,
    Ack,
    AppEventMeta,
}

/// A compiled schema and the document it came from (the extra-field walk
/// reads the document).
struct Compiled {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
    schema: Value,
}

/// Key of a compiled schema: the kind, the event, and the location of the
/// (sub)schema inside the document (empty for the whole document).
type Key = (Kind, &'static str, String);

type Cache = HashMap<Key, &'static Compiled>;

/// The compiled schema of `key`, built by `build` on first use. The lock
/// is held while compiling, so each schema is compiled once.
fn get_or_compile<E>(
    key: Key,
    build: impl FnOnce() -> Result<Value, E>,
) -> Result<&'static Compiled, E> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(c) = cache.get(&key) {
        return Ok(c);
    }
    let schema = build()?;
    let compiled = compile(schema).unwrap_or_else(|e| {
        let (kind, name, location) = &key;
        panic!("the catalog schema {kind:?} of {name:?} at {location:?}: {e}")
    });
    // One validator per schema, alive for the whole process.
    let leaked: &'static Compiled = Box::leak(Box::new(compiled));
    cache.insert(key, leaked);
    Ok(leaked)
}

/// Where a compiled document is filed (never fetched: it is added before
/// it is compiled, and the validator loads nothing else).
const DOCUMENT_URL: &str = "https://schemas.invalid/document.json";

fn compile(schema: Value) -> Result<Compiled, CompileError> {
    let error = |e: boon::CompileError| CompileError(e.to_string());
    let mut compiler = boon::Compiler::new();
    compiler.set_default_draft(boon::Draft::V2020_12);
    compiler
        .add_resource(DOCUMENT_URL, schema.clone())
        .map_err(error)?;
    let mut schemas = boon::Schemas::new();
    let index = compiler
        .compile(DOCUMENT_URL, &mut schemas)
        .map_err(error)?;
    Ok(Compiled {
        schemas,
        index,
        schema,
    })
}

impl Compiled {
    fn is_valid(&self, instance: &Value) -> bool {
        self.schemas.validate(instance, self.index).is_ok()
    }

    /// Every violation: the leaves of the validator's error tree, except
    /// that a failed `oneOf`/`anyOf` is one violation (which branch was
    /// meant is not known).
    fn violations(&self, instance: &Value) -> Vec<Violation> {
        fn leaves(e: &boon::ValidationError<'_, '_>, out: &mut Vec<Violation>) {
            let whole = matches!(e.kind, boon::ErrorKind::AnyOf | boon::ErrorKind::OneOf(_));
            if e.causes.is_empty() || whole {
                out.push(Violation {
                    pointer: e.instance_location.to_string(),
                    message: e.kind.to_string(),
                });
            } else {
                for cause in &e.causes {
                    leaves(cause, out);
                }
            }
        }
        let mut out = Vec::new();
        if let Err(e) = self.schemas.validate(instance, self.index) {
            leaves(&e, &mut out);
        }
        out
    }
}

/// The whole schema of `kind` for `event`, with the name it is cached
/// under.
fn document(kind: Kind, event: &str) -> Result<(&'static str, &'static Compiled), ValidateError> {
    let spec = match kind {
        Kind::AppEventMeta => None,
        Kind::Payload | Kind::Ack => Some(
            EventSpec::get(event).ok_or_else(|| ValidateError::UnknownEvent(event.to_owned()))?,
        ),
    };
    let name = spec.map_or("", |s| s.name);
    let compiled = get_or_compile((kind, name, String::new()), || match (kind, spec) {
        (Kind::Payload, Some(spec)) => Ok((spec.payload)()),
        (Kind::Ack, Some(spec)) => {
            crate::schema::ack(spec).ok_or_else(|| ValidateError::NoAck(spec.name.to_owned()))
        }
        _ => Ok(crate::schema::app_event_meta()),
    })?;
    Ok((name, compiled))
}

/// The subschema at `location` of a catalog document, with the document's
/// `$defs` beside it so that its references resolve.
fn branch(kind: Kind, name: &'static str, root: &Value, location: &str) -> &'static Compiled {
    let built = get_or_compile((kind, name, location.to_owned()), || {
        let mut schema = root.pointer(location).cloned().unwrap_or(Value::Bool(true));
        if let (Some(obj), Some(defs)) = (schema.as_object_mut(), root.get("$defs")) {
            obj.insert("$defs".into(), defs.clone());
        }
        Ok::<_, std::convert::Infallible>(schema)
    });
    let Ok(compiled) = built;
    compiled
}

/// Every violation of `event`'s payload schema by `payload` (empty when
/// valid).
pub fn payload_errors(event: &str, payload: &Value) -> Result<Vec<Violation>, ValidateError> {
    let (_, c) = document(Kind::Payload, event)?;
    Ok(c.violations(payload))
}

/// Every violation of `event`'s ack schema (success or failure shape) by
/// `ack` (empty when valid).
pub fn ack_errors(event: &str, ack: &Value) -> Result<Vec<Violation>, ValidateError> {
    let (_, c) = document(Kind::Ack, event)?;
    Ok(c.violations(ack))
}

/// Every violation of the application events' metadata schema (their
/// second argument, `{eventId, appId, roomId, timestamp}`) by `meta`.
pub fn app_event_meta_errors(meta: &Value) -> Vec<Violation> {
    let (_, c) = document(Kind::AppEventMeta, "").expect("the metadata schema is built in");
    c.violations(meta)
}

/// Every violation of an arbitrary `schema` (draft 2020-12) by `instance`;
/// the schema is compiled on each call (for schema files and documents
/// that are not the catalog's own, e.g. in tests).
pub fn schema_errors(schema: &Value, instance: &Value) -> Result<Vec<Violation>, CompileError> {
    Ok(compile(schema.clone())?.violations(instance))
}

/// JSON pointers of the fields of `payload` that `event`'s payload schema
/// does not declare (through references and into nested objects and
/// arrays). Meaningful for a valid payload.
pub fn payload_extra_fields(event: &str, payload: &Value) -> Result<Vec<String>, ValidateError> {
    extra(Kind::Payload, event, payload)
}

/// JSON pointers of the fields of `ack` that `event`'s ack schema does not
/// declare, judged against the branch (success or failure) the ack fits.
pub fn ack_extra_fields(event: &str, ack: &Value) -> Result<Vec<String>, ValidateError> {
    extra(Kind::Ack, event, ack)
}

fn extra(kind: Kind, event: &str, value: &Value) -> Result<Vec<String>, ValidateError> {
    let (name, c) = document(kind, event)?;
    let walk = Walk {
        kind,
        name,
        root: &c.schema,
    };
    let mut out = Vec::new();
    walk.extra_fields("", value, "", &mut out);
    Ok(out)
}

/// The extra-field walk over one catalog document.
struct Walk<'a> {
    kind: Kind,
    name: &'static str,
    root: &'a Value,
}

impl Walk<'_> {
    /// Follows `$ref`s from `location`; returns the location reached.
    fn resolve(&self, mut location: String) -> String {
        for _ in 0..32 {
            let Some(r) = self
                .root
                .pointer(&location)
                .and_then(|s| s.get("$ref"))
                .and_then(Value::as_str)
            else {
                break;
            };
            match r.strip_prefix('#') {
                Some(target) if self.root.pointer(target).is_some() => location = target.to_owned(),
                _ => break,
            }
        }
        location
    }

    /// Pushes the pointer (under `path`) of every field of `value` that the
    /// subschema at `location` does not declare.
    fn extra_fields(&self, location: &str, value: &Value, path: &str, out: &mut Vec<String>) {
        let location = self.resolve(location.to_owned());
        let Some(schema) = self.root.pointer(&location) else {
            return;
        };
        // Branches: judge against the first branch the value is valid for.
        for key in ["oneOf", "anyOf"] {
            if let Some(branches) = schema.get(key).and_then(Value::as_array) {
                for i in 0..branches.len() {
                    let at = self.resolve(format!("{location}/{key}/{i}"));
                    if branch(self.kind, self.name, self.root, &at).is_valid(value) {
                        self.extra_fields(&at, value, path, out);
                        return;
                    }
                }
                return;
            }
        }
        match value {
            Value::Object(map) => {
                let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                    return;
                };
                let open_map = schema
                    .get("additionalProperties")
                    .is_some_and(Value::is_object);
                for (k, v) in map {
                    let field = format!("{path}/{}", escape(k));
                    if props.contains_key(k) {
                        let sub = format!("{location}/properties/{}", escape(k));
                        self.extra_fields(&sub, v, &field, out);
                    } else if !open_map {
                        out.push(field);
                    }
                }
            }
            Value::Array(items) if schema.get("items").is_some() => {
                for (i, v) in items.iter().enumerate() {
                    self.extra_fields(&format!("{location}/items"), v, &format!("{path}/{i}"), out);
                }
            }
            _ => {}
        }
    }
}

/// A key as a JSON-pointer token (RFC 6901).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event as ev;

    #[test]
    fn reports_pointer_of_each_violation() {
        let bad = json!({"roomId": 5, "timestamp": "2025-01-15T10:00:00Z"});
        let errs = payload_errors(ev::ROOM_DELETED, &bad).unwrap();
        assert!(errs.iter().any(|e| e.pointer == "/roomId"), "{errs:?}");
        assert!(errs[0].to_string().starts_with("/roomId: "), "{errs:?}");
        let good = json!({"roomId": "room_1", "timestamp": "2025-01-15T10:00:00Z"});
        assert_eq!(payload_errors(ev::ROOM_DELETED, &good).unwrap(), vec![]);
        // A violation of the root shows as `/`.
        let root = payload_errors(ev::ROOM_DELETED, &json!({})).unwrap();
        assert!(root.iter().all(|e| e.pointer.is_empty()), "{root:?}");
        assert!(root[0].to_string().starts_with("/: "), "{root:?}");
    }

    #[test]
    fn unknown_event_and_missing_ack_are_errors() {
        assert_eq!(
            payload_errors("nope:nope", &json!({})),
            Err(ValidateError::UnknownEvent("nope:nope".into()))
        );
        assert!(matches!(
            ack_errors(ev::ROOM_DELETED, &json!({})),
            Err(ValidateError::NoAck(_))
        ));
    }

    #[test]
    fn acks_are_checked_against_either_shape() {
        let ok = json!({"success": true, "data": {"roomId": "room_1"}});
        assert_eq!(ack_errors(ev::ROOM_UNSUBSCRIBE, &ok).unwrap(), vec![]);
        let failed = json!({"success": false, "error": {"code": "ROOM_NOT_FOUND", "message": "m"}});
        assert_eq!(ack_errors(ev::ROOM_UNSUBSCRIBE, &failed).unwrap(), vec![]);
        let bad_code = json!({"success": false, "error": {"code": "NOPE", "message": "m"}});
        assert!(
            !ack_errors(ev::ROOM_UNSUBSCRIBE, &bad_code)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn extra_fields_are_found_through_refs_and_branches() {
        let v = json!({
            "roomId": "r", "timestamp": "2025-01-15T10:00:00Z",
            "prize": {"id": "p", "name": "n", "description": "d", "imageUrl": "u",
                      "quantity": 1, "quantityRemaining": 1, "createdAt": "c", "colour": "red"},
            "bonus": true
        });
        let mut extra = payload_extra_fields(ev::PRIZE_CREATED, &v).unwrap();
        extra.sort();
        assert_eq!(extra, vec!["/bonus", "/prize/colour"]);

        // An ack: the failure branch is the one judged.
        let failed = json!({"success": false, "error": {"code": "ROOM_NOT_FOUND", "message": "m", "hint": 1}, "x/y": 2});
        let mut extra = ack_extra_fields(ev::ROOM_UNSUBSCRIBE, &failed).unwrap();
        extra.sort();
        assert_eq!(extra, vec!["/error/hint", "/x~1y"]);
        let exact = json!({"success": true, "data": {"roomId": "room_1"}});
        assert_eq!(
            ack_extra_fields(ev::ROOM_UNSUBSCRIBE, &exact).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn app_event_metadata_and_arbitrary_schemas() {
        let meta = json!({"eventId": "e", "appId": "a", "roomId": "r", "timestamp": "2025-01-15T10:00:00Z"});
        assert_eq!(app_event_meta_errors(&meta), vec![]);
        assert!(app_event_meta_errors(&json!({"appId": 1})).len() > 1);

        let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
        let errs = schema_errors(&schema, &json!({"n": "x"})).unwrap();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].pointer, "/n");
        assert!(schema_errors(&json!({"type": 5}), &json!(1)).is_err());
    }
}
