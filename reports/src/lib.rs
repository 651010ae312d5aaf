//! Placeholder: the reports crate is built by its own issue.
