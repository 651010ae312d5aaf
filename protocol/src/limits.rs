//! Every numeric rule of the protocol, and the reference server's own
//! documented limits where the protocol is silent.

use std::time::Duration;

/// Client events accepted per connection in any 60-second window.
pub const CLIENT_EVENTS_PER_MINUTE: u32 = 100;
/// Application events accepted per room in any 1-second window.
pub const APP_EVENTS_PER_ROOM_PER_SECOND: u32 = 10;
/// Application events accepted per application in any 60-second window.
pub const APP_EVENTS_PER_APP_PER_MINUTE: u32 = 600;
/// How far a server timestamp may be from the receiver's clock.
pub const TIMESTAMP_MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// Largest JSON payload of one client event, in bytes (serialized). Larger
/// ones get `INVALID_PAYLOAD`. (Not in the protocol; the server's choice.)
pub const MAX_CLIENT_EVENT_BYTES: usize = 16 * 1024;
/// Largest Engine.IO packet the server reads; beyond it the transport is
/// closed, as Engine.IO specifies for `maxPayload`.
pub const MAX_ENGINE_PACKET_BYTES: u64 = 1_000_000;
/// Largest `data` of one application event, in bytes (serialized).
pub const MAX_APP_EVENT_BYTES: usize = 64 * 1024;

/// The length of the rate windows.
pub const MINUTE: Duration = Duration::from_secs(60);
pub const SECOND: Duration = Duration::from_secs(1);
