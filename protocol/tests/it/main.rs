//! The protocol crate's integration tests, one module per concern, in one
//! test binary (each extra binary relinks the whole dependency tree):
//! the catalog covers the protocol text, the payload types have the
//! protocol's shapes, `docs/protocol.md` agrees with the catalog, and the
//! committed JSON Schemas are what the types generate.

mod catalog_covers_protocol;
mod payload_shapes;
mod reference_agrees;
mod schemas;
