//! Placeholder: the loadgen crate is built by its own issue.
