//! Validation of payloads and acks against the catalog's JSON Schemas: the
//! one validator the server's tests, the conformance runner and the
//! protocol's own tests share (behind the `validate` feature, which pulls
//! in `jsonschema`; the catalog itself stays free of it).
//!
//! Validators are compiled once per event and kept for the process's life.

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

/// What a schema checks: an event's payload or its ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Payload,
    Ack,
}

type Cache = Mutex<HashMap<(Kind, &'static str), &'static jsonschema::Validator>>;

fn validator(kind: Kind, event: &str) -> Result<&'static jsonschema::Validator, ValidateError> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let spec =
        EventSpec::get(event).ok_or_else(|| ValidateError::UnknownEvent(event.to_owned()))?;
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(v) = cache.get(&(kind, spec.name)) {
        return Ok(v);
    }
    let schema = match kind {
        Kind::Payload => (spec.payload)(),
        Kind::Ack => crate::schema::ack(spec).ok_or_else(|| ValidateError::NoAck(event.into()))?,
    };
    let compiled = jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("the catalog schema of {event} does not compile: {e}"));
    // One validator per event and kind, alive for the whole process.
    let leaked: &'static jsonschema::Validator = Box::leak(Box::new(compiled));
    cache.insert((kind, spec.name), leaked);
    Ok(leaked)
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{}: {}", e.instance_path(), e))
        .collect()
}

/// Every violation of `event`'s payload schema by `payload`, as
/// `JSON-pointer: message` (empty when valid).
pub fn payload_errors(event: &str, payload: &Value) -> Result<Vec<String>, ValidateError> {
    Ok(errors(validator(Kind::Payload, event)?, payload))
}

/// Every violation of `event`'s ack schema (success or failure shape) by
/// `ack`, as `JSON-pointer: message` (empty when valid).
pub fn ack_errors(event: &str, ack: &Value) -> Result<Vec<String>, ValidateError> {
    Ok(errors(validator(Kind::Ack, event)?, ack))
}

/// Every violation of the schema of an application event's second argument
/// (`{eventId, appId, roomId, timestamp}`, N6) by `meta`.
pub fn app_event_meta_errors(meta: &Value) -> Vec<String> {
    static META: OnceLock<jsonschema::Validator> = OnceLock::new();
    let v = META.get_or_init(|| {
        jsonschema::draft202012::new(&crate::schema::app_event_meta()).unwrap_or_else(|e| {
            panic!("the application event metadata schema does not compile: {e}")
        })
    });
    errors(v, meta)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reports_pointer_of_each_violation() {
        let bad = json!({"roomId": 5, "timestamp": "2025-01-15T10:00:00Z"});
        let errs = payload_errors(crate::event::ROOM_DELETED, &bad).unwrap();
        assert!(errs.iter().any(|e| e.starts_with("/roomId:")), "{errs:?}");
        let good = json!({"roomId": "room_1", "timestamp": "2025-01-15T10:00:00Z"});
        assert_eq!(
            payload_errors(crate::event::ROOM_DELETED, &good).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn app_event_meta_is_checked() {
        let good = json!({"eventId": "evt_1", "appId": "lottery", "roomId": "room_1",
                          "timestamp": "2025-01-15T10:00:00Z"});
        assert_eq!(app_event_meta_errors(&good), Vec::<String>::new());
        let bad = json!({"eventId": 1, "appId": "lottery", "roomId": "room_1",
                         "timestamp": "2025-01-15T10:00:00Z"});
        let errs = app_event_meta_errors(&bad);
        assert!(errs.iter().any(|e| e.starts_with("/eventId:")), "{errs:?}");
    }

    #[test]
    fn unknown_event_and_missing_ack_are_errors() {
        assert_eq!(
            payload_errors("nope:nope", &json!({})),
            Err(ValidateError::UnknownEvent("nope:nope".into()))
        );
        assert!(matches!(
            ack_errors(crate::event::ROOM_DELETED, &json!({})),
            Err(ValidateError::NoAck(_))
        ));
    }
}
