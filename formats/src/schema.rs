//! The run report's JSON Schema (draft 2020-12): the contract of
//! `report.json`, committed as `formats/schema/report.schema.json` and
//! compiled in here, so that every tool reads the same file without
//! reaching into another crate's folder.
//!
//! With the `validate` feature, [`report_errors`] checks a document
//! against it (readers check before trusting the types; the writers' tests
//! check real output, so the schema cannot drift from the code).

/// The run report's JSON Schema, as committed.
pub const REPORT_SCHEMA: &str = include_str!("../schema/report.schema.json");

/// [`REPORT_SCHEMA`] parsed.
pub fn report_schema() -> serde_json::Value {
    serde_json::from_str(REPORT_SCHEMA).expect("the committed schema is JSON")
}

/// One place where a document breaks the schema.
#[cfg(feature = "validate")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// JSON pointer into the document (empty: the document itself).
    pub pointer: String,
    pub message: String,
}

#[cfg(feature = "validate")]
impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "at {at}: {}", self.message)
    }
}

/// Every place where `instance` breaks the run report's schema (empty:
/// valid).
#[cfg(feature = "validate")]
pub fn report_errors(instance: &serde_json::Value) -> Vec<SchemaError> {
    // The one draft 2020-12 validator the workspace has (the protocol's
    // payloads and acks use it too).
    protocol::validate::schema_errors(&report_schema(), instance)
        .expect("the committed schema compiles")
        .into_iter()
        .map(|v| SchemaError {
            pointer: v.pointer,
            message: v.message,
        })
        .collect()
}

#[cfg(all(test, feature = "validate"))]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn a_real_report_is_valid_and_a_broken_one_is_not() {
        let r = sample(&[1, 20, 300], 3);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        let errors = report_errors(&v);
        assert!(errors.is_empty(), "{errors:?}");
        let mut with = r.clone();
        with.mismatches = vec![crate::report::tests::mismatch(1, "{}")];
        let w: serde_json::Value = serde_json::from_str(&with.to_json()).unwrap();
        let errors = report_errors(&w);
        assert!(errors.is_empty(), "{errors:?}");

        let mut broken = v.clone();
        broken["histograms"]["ack.x"]
            .as_object_mut()
            .unwrap()
            .remove("hdr");
        broken["extra"] = serde_json::json!(1);
        let errors = report_errors(&broken);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors.iter().any(|e| e.pointer == "/histograms/ack.x"));
        assert!(errors.iter().any(|e| e.to_string().starts_with("at /: ")));
    }
}
