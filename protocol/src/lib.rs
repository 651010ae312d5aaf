//! The platform's real-time protocol, written down once as data.
//!
//! Everything the server, the conformance runner, the load generator and the
//! docs need to agree on lives here and nowhere else:
//!
//! * [`event`]: every event name as a constant, and [`ErrorCode`]: the six
//!   error codes;
//! * [`payload`]: a typed, serde-ready struct for every payload and ack;
//! * [`catalog`]: every event with its direction, namespaces, ack and schema,
//!   the table the conformance runner walks;
//! * [`limits`]: every numeric rule (rate limits, sizes, clock skew);
//! * [`domain`]: room statuses, visibility and participant roles;
//! * [`schema`]: JSON Schema (draft 2020-12) for every payload and ack,
//!   generated from the types, committed under `protocol/schemas/`;
//! * `validate` (feature `validate`): payloads and acks checked against
//!   those schemas, the one validator every crate's checks share.
//!
//! The crate does no I/O, so every other crate may depend on it.
//! `docs/protocol.md` is the human reference; a test proves the two agree.

pub mod catalog;
pub mod domain;
pub mod error;
pub mod event;
pub mod limits;
pub mod payload;
pub mod schema;
pub mod timestamp;
#[cfg(feature = "validate")]
pub mod validate;

pub use catalog::{AckShape, CATALOG, Direction, EventSpec, NamespaceKind};
pub use domain::{Role, RoomStatus, Visibility};
pub use error::ErrorCode;
