//! Templates: `${name}` and `${name:-default}` in strings. The grammar is
//! `driver::template`, the profiles' own; the scenario parser and checks
//! use it under these names.

pub use driver::template::{expand_json, placeholders as template_vars};
