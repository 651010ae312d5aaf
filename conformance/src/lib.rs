//! Placeholder: the conformance crate is built by its own issue.
