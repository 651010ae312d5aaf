//! Pure encoding and decoding of Engine.IO v4 and Socket.IO v5 text packets.
//!
//! Nothing here does I/O. Every decoder returns a [`PacketError`] on malformed
//! input and never panics, so the conformance runner can feed it arbitrary
//! server output.
//!
//! Engine.IO (transport level) frames are a one-digit type followed by data:
//!
//! | frame | meaning |
//! | --- | --- |
//! | `0{json}` | open (handshake) |
//! | `1` | close |
//! | `2` / `2probe` | ping / upgrade probe |
//! | `3` / `3probe` | pong / upgrade probe answer |
//! | `4...` | message (carries a Socket.IO packet) |
//! | `5` | upgrade |
//! | `6` | noop |
//!
//! With HTTP long-polling several Engine.IO packets are joined by the record
//! separator `\x1e` (see [`encode_payload`] / [`decode_payload`]).
//!
//! Socket.IO packets travel inside Engine.IO messages: type digit, optional
//! `/namespace,`, optional ack id digits, optional JSON payload, e.g.
//! `2/rooms/r1,13["x"]` (sent on the wire as `42/rooms/r1,13["x"]`).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Separator between Engine.IO packets in a polling payload.
pub const RECORD_SEPARATOR: char = '\x1e';

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// The frame was empty.
    #[error("empty packet")]
    Empty,
    /// The first character is not a known Engine.IO packet type.
    #[error("unknown engine.io packet type {0:?}")]
    UnknownEioType(char),
    /// A packet type that carries no data was followed by data.
    #[error("unexpected data after engine.io packet type {0}")]
    UnexpectedData(char),
    /// The open packet JSON is missing fields or is not JSON.
    #[error("invalid open packet: {0}")]
    InvalidOpen(String),
    /// Base64 (`b...`) binary Engine.IO packets are not supported.
    #[error("binary engine.io packets are not supported")]
    BinaryEio,
    /// The first character is not a known Socket.IO packet type.
    #[error("unknown socket.io packet type {0:?}")]
    UnknownSioType(char),
    /// The ack id does not fit in a `u64`.
    #[error("invalid ack id")]
    InvalidAckId,
    /// The payload is not valid JSON.
    #[error("invalid json payload: {0}")]
    InvalidJson(String),
    /// The payload is JSON but has the wrong shape for the packet type.
    #[error("invalid {packet} payload: {reason}")]
    InvalidPayload {
        /// Packet type name, e.g. `EVENT`.
        packet: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// BINARY_EVENT (`5`) / BINARY_ACK (`6`): the header was decoded, but
    /// attachments are not supported by this client.
    #[error("unsupported binary socket.io packet (type {packet_type}, {attachments} attachments)")]
    UnsupportedBinary {
        /// 5 (BINARY_EVENT) or 6 (BINARY_ACK).
        packet_type: u8,
        /// Announced number of attachments.
        attachments: u64,
        /// Namespace of the packet.
        nsp: String,
        /// Ack id, if any.
        id: Option<u64>,
    },
    /// BINARY header without the `<attachments>-` prefix.
    #[error("invalid binary attachments header")]
    InvalidAttachments,
}

/// Payload of the Engine.IO open packet (`0{...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenPacket {
    /// Engine.IO session id.
    pub sid: String,
    /// Transports the session may be upgraded to (e.g. `["websocket"]`).
    pub upgrades: Vec<String>,
    /// Server ping interval in milliseconds.
    pub ping_interval: u64,
    /// Time in milliseconds the server waits for a pong.
    pub ping_timeout: u64,
    /// Maximum payload size in bytes the server accepts.
    pub max_payload: u64,
}

/// An Engine.IO v4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EioPacket {
    /// `0{json}`: handshake.
    Open(OpenPacket),
    /// `1`: close the session.
    Close,
    /// `2`: heartbeat sent by the server.
    Ping,
    /// `3`: heartbeat answer.
    Pong,
    /// `2probe`: upgrade probe sent by the client on the new transport.
    PingProbe,
    /// `3probe`: server answer to the probe.
    PongProbe,
    /// `4...`: message; the text is usually a Socket.IO packet.
    Message(String),
    /// `5`: upgrade complete.
    Upgrade,
    /// `6`: noop (used to end a pending poll during upgrade).
    Noop,
}

impl EioPacket {
    /// Encodes the packet as an Engine.IO text frame.
    pub fn encode(&self) -> String {
        match self {
            EioPacket::Open(open) => {
                // Serializing a plain struct of strings and integers cannot fail.
                let json = serde_json::to_string(open).unwrap_or_default();
                format!("0{json}")
            }
            EioPacket::Close => "1".to_owned(),
            EioPacket::Ping => "2".to_owned(),
            EioPacket::Pong => "3".to_owned(),
            EioPacket::PingProbe => "2probe".to_owned(),
            EioPacket::PongProbe => "3probe".to_owned(),
            EioPacket::Message(text) => {
                let mut out = String::with_capacity(text.len() + 1);
                out.push('4');
                out.push_str(text);
                out
            }
            EioPacket::Upgrade => "5".to_owned(),
            EioPacket::Noop => "6".to_owned(),
        }
    }

    /// Decodes one Engine.IO text frame.
    pub fn decode(frame: &str) -> Result<EioPacket, PacketError> {
        let mut chars = frame.chars();
        let kind = chars.next().ok_or(PacketError::Empty)?;
        let rest = chars.as_str();
        let no_data = |packet: EioPacket| {
            if rest.is_empty() {
                Ok(packet)
            } else {
                Err(PacketError::UnexpectedData(kind))
            }
        };
        match kind {
            '0' => serde_json::from_str::<OpenPacket>(rest)
                .map(EioPacket::Open)
                .map_err(|e| PacketError::InvalidOpen(e.to_string())),
            '1' => no_data(EioPacket::Close),
            '2' if rest == "probe" => Ok(EioPacket::PingProbe),
            '2' => no_data(EioPacket::Ping),
            '3' if rest == "probe" => Ok(EioPacket::PongProbe),
            '3' => no_data(EioPacket::Pong),
            '4' => Ok(EioPacket::Message(rest.to_owned())),
            '5' => no_data(EioPacket::Upgrade),
            '6' => no_data(EioPacket::Noop),
            'b' => Err(PacketError::BinaryEio),
            other => Err(PacketError::UnknownEioType(other)),
        }
    }
}

/// Joins already encoded Engine.IO frames into one polling payload.
pub fn join_payload<S: AsRef<str>>(frames: &[S]) -> String {
    let mut out = String::new();
    for (i, frame) in frames.iter().enumerate() {
        if i > 0 {
            out.push(RECORD_SEPARATOR);
        }
        out.push_str(frame.as_ref());
    }
    out
}

/// Splits a polling payload into its Engine.IO frames (without decoding them).
pub fn split_payload(payload: &str) -> impl Iterator<Item = &str> {
    payload.split(RECORD_SEPARATOR)
}

/// Encodes packets as a polling payload (frames joined by `\x1e`).
pub fn encode_payload(packets: &[EioPacket]) -> String {
    let frames: Vec<String> = packets.iter().map(EioPacket::encode).collect();
    join_payload(&frames)
}

/// Decodes a polling payload; fails on the first malformed frame.
pub fn decode_payload(payload: &str) -> Result<Vec<EioPacket>, PacketError> {
    split_payload(payload).map(EioPacket::decode).collect()
}

/// A Socket.IO v5 packet (the text inside an Engine.IO message, without the `4`).
#[derive(Debug, Clone, PartialEq)]
pub enum SioPacket {
    /// `0`: connect request (client, with optional auth) or accept (server,
    /// with `{"sid":...}`).
    Connect {
        /// Namespace, `/` by default.
        nsp: String,
        /// Auth payload (client) or `{"sid":...}` (server); must be an object.
        data: Option<Value>,
    },
    /// `1`: leave the namespace.
    Disconnect {
        /// Namespace, `/` by default.
        nsp: String,
    },
    /// `2`: event `["name", args...]`.
    Event {
        /// Namespace, `/` by default.
        nsp: String,
        /// Ack id when the sender expects an acknowledgement.
        id: Option<u64>,
        /// Event name.
        name: String,
        /// Event arguments (may be empty).
        args: Vec<Value>,
    },
    /// `3`: acknowledgement `[args...]`.
    Ack {
        /// Namespace, `/` by default.
        nsp: String,
        /// Id of the acknowledged event.
        id: u64,
        /// Ack arguments.
        args: Vec<Value>,
    },
    /// `4`: the server refused the connection.
    ConnectError {
        /// Namespace, `/` by default.
        nsp: String,
        /// `message` field (or the whole payload when it is a plain string).
        message: String,
        /// Optional `data` field.
        data: Option<Value>,
    },
}

/// Default namespace.
pub const DEFAULT_NSP: &str = "/";

fn push_nsp(out: &mut String, nsp: &str) {
    if !nsp.is_empty() && nsp != DEFAULT_NSP {
        out.push_str(nsp);
        out.push(',');
    }
}

fn push_json(out: &mut String, value: &Value) {
    // `Value`'s Display is its compact JSON serialization.
    let _ = write!(out, "{value}");
}

/// Writes `["name",arg1,...]` into `out`.
fn push_event_array(out: &mut String, name: &str, args: &[Value]) {
    out.push('[');
    push_json(out, &Value::String(name.to_owned()));
    for arg in args {
        out.push(',');
        push_json(out, arg);
    }
    out.push(']');
}

fn push_array(out: &mut String, args: &[Value]) {
    out.push('[');
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json(out, arg);
    }
    out.push(']');
}

/// Encodes an EVENT as a complete Engine.IO frame (`42...`) without building
/// a [`SioPacket`] first.
pub fn encode_event_frame(nsp: &str, id: Option<u64>, name: &str, args: &[Value]) -> String {
    let mut out = String::with_capacity(16 + nsp.len() + name.len());
    out.push_str("42");
    push_nsp(&mut out, nsp);
    if let Some(id) = id {
        let _ = write!(out, "{id}");
    }
    push_event_array(&mut out, name, args);
    out
}

/// Encodes an ACK as a complete Engine.IO frame (`43...`).
pub fn encode_ack_frame(nsp: &str, id: u64, args: &[Value]) -> String {
    let mut out = String::with_capacity(16 + nsp.len());
    out.push_str("43");
    push_nsp(&mut out, nsp);
    let _ = write!(out, "{id}");
    push_array(&mut out, args);
    out
}

impl SioPacket {
    /// Namespace of the packet.
    pub fn nsp(&self) -> &str {
        match self {
            SioPacket::Connect { nsp, .. }
            | SioPacket::Disconnect { nsp }
            | SioPacket::Event { nsp, .. }
            | SioPacket::Ack { nsp, .. }
            | SioPacket::ConnectError { nsp, .. } => nsp,
        }
    }

    /// Encodes the Socket.IO packet (without the Engine.IO `4` prefix).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        match self {
            SioPacket::Connect { nsp, data } => {
                out.push('0');
                push_nsp(&mut out, nsp);
                if let Some(data) = data {
                    push_json(&mut out, data);
                }
            }
            SioPacket::Disconnect { nsp } => {
                out.push('1');
                push_nsp(&mut out, nsp);
            }
            SioPacket::Event {
                nsp,
                id,
                name,
                args,
            } => {
                out.push('2');
                push_nsp(&mut out, nsp);
                if let Some(id) = id {
                    let _ = write!(out, "{id}");
                }
                push_event_array(&mut out, name, args);
            }
            SioPacket::Ack { nsp, id, args } => {
                out.push('3');
                push_nsp(&mut out, nsp);
                let _ = write!(out, "{id}");
                push_array(&mut out, args);
            }
            SioPacket::ConnectError { nsp, message, data } => {
                out.push('4');
                push_nsp(&mut out, nsp);
                out.push_str("{\"message\":");
                push_json(&mut out, &Value::String(message.clone()));
                if let Some(data) = data {
                    out.push_str(",\"data\":");
                    push_json(&mut out, data);
                }
                out.push('}');
            }
        }
        out
    }

    /// Encodes the packet as a complete Engine.IO message frame (`4` + packet).
    pub fn encode_frame(&self) -> String {
        let mut out = String::from("4");
        out.push_str(&self.encode());
        out
    }

    /// Decodes a Socket.IO packet (the text after the Engine.IO `4`).
    ///
    /// Follows the reference JS parser: the namespace starts with `/` and runs
    /// to the first `,` (or the end), the ack id is the run of digits after
    /// it, the rest is JSON. Payload shapes are checked per packet type.
    pub fn decode(text: &str) -> Result<SioPacket, PacketError> {
        let Header {
            packet_type,
            attachments,
            nsp,
            id,
            rest,
        } = Header::parse(text)?;
        let nsp = nsp.to_owned();

        // Payload.
        let payload = if rest.is_empty() {
            None
        } else {
            Some(
                serde_json::from_str::<Value>(rest)
                    .map_err(|e| PacketError::InvalidJson(e.to_string()))?,
            )
        };

        let invalid = |packet, reason| PacketError::InvalidPayload { packet, reason };
        match packet_type {
            0 => {
                if id.is_some() {
                    return Err(invalid("CONNECT", "unexpected ack id"));
                }
                match payload {
                    None | Some(Value::Object(_)) => Ok(SioPacket::Connect { nsp, data: payload }),
                    Some(_) => Err(invalid("CONNECT", "payload must be an object")),
                }
            }
            1 => {
                if id.is_some() {
                    return Err(invalid("DISCONNECT", "unexpected ack id"));
                }
                if payload.is_some() {
                    return Err(invalid("DISCONNECT", "unexpected payload"));
                }
                Ok(SioPacket::Disconnect { nsp })
            }
            2 => {
                let Some(Value::Array(mut items)) = payload else {
                    return Err(invalid("EVENT", "payload must be an array"));
                };
                if items.is_empty() {
                    return Err(invalid("EVENT", "payload must not be empty"));
                }
                let Value::String(name) = items.remove(0) else {
                    return Err(invalid("EVENT", "event name must be a string"));
                };
                Ok(SioPacket::Event {
                    nsp,
                    id,
                    name,
                    args: items,
                })
            }
            3 => {
                let Some(id) = id else {
                    return Err(invalid("ACK", "missing ack id"));
                };
                let Some(Value::Array(args)) = payload else {
                    return Err(invalid("ACK", "payload must be an array"));
                };
                Ok(SioPacket::Ack { nsp, id, args })
            }
            4 => {
                if id.is_some() {
                    return Err(invalid("CONNECT_ERROR", "unexpected ack id"));
                }
                match payload {
                    Some(Value::String(message)) => Ok(SioPacket::ConnectError {
                        nsp,
                        message,
                        data: None,
                    }),
                    Some(Value::Object(mut map)) => {
                        let message = match map.remove("message") {
                            Some(Value::String(m)) => m,
                            _ => {
                                return Err(invalid(
                                    "CONNECT_ERROR",
                                    "payload must have a string message",
                                ));
                            }
                        };
                        Ok(SioPacket::ConnectError {
                            nsp,
                            message,
                            data: map.remove("data"),
                        })
                    }
                    _ => Err(invalid(
                        "CONNECT_ERROR",
                        "payload must be an object or a string",
                    )),
                }
            }
            _ => Err(PacketError::UnsupportedBinary {
                packet_type,
                attachments,
                nsp,
                id,
            }),
        }
    }

    /// Decodes a complete Engine.IO message frame (`4` + Socket.IO packet).
    pub fn decode_frame(frame: &str) -> Result<SioPacket, PacketError> {
        match EioPacket::decode(frame)? {
            EioPacket::Message(text) => SioPacket::decode(&text),
            _ => Err(PacketError::InvalidPayload {
                packet: "MESSAGE",
                reason: "not an engine.io message frame",
            }),
        }
    }
}

/// The part of a Socket.IO packet before its JSON payload.
struct Header<'a> {
    packet_type: u8,
    attachments: u64,
    nsp: &'a str,
    id: Option<u64>,
    /// The JSON payload's text (may be empty).
    rest: &'a str,
}

impl<'a> Header<'a> {
    /// Follows the reference JS parser: the namespace starts with `/` and
    /// runs to the first `,` (or the end), the ack id is the run of digits
    /// after it, the rest is JSON.
    fn parse(text: &'a str) -> Result<Header<'a>, PacketError> {
        let bytes = text.as_bytes();
        let first = *bytes.first().ok_or(PacketError::Empty)?;
        let packet_type = match first {
            b'0'..=b'6' => first - b'0',
            _ => {
                let c = text.chars().next().unwrap_or('\0');
                return Err(PacketError::UnknownSioType(c));
            }
        };
        let mut i = 1;

        // Binary packets: `<attachments>-` header.
        let mut attachments = 0u64;
        if packet_type == 5 || packet_type == 6 {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i == start || bytes.get(i) != Some(&b'-') {
                return Err(PacketError::InvalidAttachments);
            }
            attachments = text[start..i]
                .parse()
                .map_err(|_| PacketError::InvalidAttachments)?;
            i += 1;
        }

        // Namespace.
        let nsp = if bytes.get(i) == Some(&b'/') {
            let start = i;
            while i < bytes.len() && bytes[i] != b',' {
                i += 1;
            }
            let nsp = &text[start..i];
            if i < bytes.len() {
                i += 1; // skip ','
            }
            nsp
        } else {
            DEFAULT_NSP
        };

        // Ack id.
        let id_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let id = if i > id_start {
            Some(
                text[id_start..i]
                    .parse::<u64>()
                    .map_err(|_| PacketError::InvalidAckId)?,
            )
        } else {
            None
        };
        Ok(Header {
            packet_type,
            attachments,
            nsp,
            id,
            rest: &text[i..],
        })
    }
}

/// An EVENT packet looked at without building its arguments: the name,
/// and the payload's JSON text for whoever wants more of it.
///
/// [`EventView::parse`] checks the whole payload the way
/// [`SioPacket::decode`] does (valid JSON, an array starting with a string),
/// so a frame it accepts decodes to the same [`SioPacket::Event`]; it only
/// allocates when the name has escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView<'a> {
    /// Namespace (`/` when the packet names none).
    pub nsp: &'a str,
    /// Ack id, when the sender expects an acknowledgement.
    pub id: Option<u64>,
    /// Event name (first element of the array).
    pub name: std::borrow::Cow<'a, str>,
    /// The whole JSON payload, e.g. `["tick",{"seq":1}]`.
    pub payload: &'a str,
}

impl<'a> EventView<'a> {
    /// The EVENT in a Socket.IO packet (the text after the Engine.IO `4`);
    /// `None` for any other packet and for anything
    /// [`SioPacket::decode`] would reject.
    pub fn parse(text: &'a str) -> Option<EventView<'a>> {
        let header = Header::parse(text).ok()?;
        if header.packet_type != 2 {
            return None;
        }
        let EventName(name) = serde_json::from_str(header.rest).ok()?;
        Some(EventView {
            nsp: header.nsp,
            id: header.id,
            name,
            payload: header.rest,
        })
    }
}

/// The first element (a string) of a JSON array; the other elements are
/// checked and skipped.
struct EventName<'a>(std::borrow::Cow<'a, str>);

impl<'de> Deserialize<'de> for EventName<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
        use std::borrow::Cow;

        struct Name<'de>(Cow<'de, str>);
        impl<'de> Deserialize<'de> for Name<'de> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Name<'de>;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("an event name")
                    }
                    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Name<'de>, E> {
                        Ok(Name(Cow::Borrowed(v)))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Name<'de>, E> {
                        Ok(Name(Cow::Owned(v.to_owned())))
                    }
                }
                d.deserialize_str(V)
            }
        }

        struct Array;
        impl<'de> Visitor<'de> for Array {
            type Value = EventName<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array starting with a string")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let Name(name) = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(EventName(name))
            }
        }
        d.deserialize_seq(Array)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sio_roundtrip(frame: &str, packet: SioPacket) {
        assert_eq!(
            SioPacket::decode_frame(frame),
            Ok(packet.clone()),
            "{frame}"
        );
        assert_eq!(packet.encode_frame(), frame);
    }

    #[test]
    fn open_packet_roundtrip() {
        let frame = r#"0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
        let packet = EioPacket::Open(OpenPacket {
            sid: "abc".into(),
            upgrades: vec!["websocket".into()],
            ping_interval: 25000,
            ping_timeout: 20000,
            max_payload: 1_000_000,
        });
        assert_eq!(EioPacket::decode(frame), Ok(packet.clone()));
        assert_eq!(packet.encode(), frame);
    }

    #[test]
    fn simple_eio_packets_roundtrip() {
        let cases = [
            ("1", EioPacket::Close),
            ("2", EioPacket::Ping),
            ("3", EioPacket::Pong),
            ("2probe", EioPacket::PingProbe),
            ("3probe", EioPacket::PongProbe),
            ("5", EioPacket::Upgrade),
            ("6", EioPacket::Noop),
            ("4hello", EioPacket::Message("hello".into())),
            ("4", EioPacket::Message(String::new())),
        ];
        for (frame, packet) in cases {
            assert_eq!(EioPacket::decode(frame), Ok(packet.clone()), "{frame}");
            assert_eq!(packet.encode(), frame);
        }
    }

    #[test]
    fn malformed_eio_packets() {
        assert_eq!(EioPacket::decode(""), Err(PacketError::Empty));
        assert_eq!(
            EioPacket::decode("7"),
            Err(PacketError::UnknownEioType('7'))
        );
        assert_eq!(
            EioPacket::decode("x"),
            Err(PacketError::UnknownEioType('x'))
        );
        assert_eq!(
            EioPacket::decode("é"),
            Err(PacketError::UnknownEioType('é'))
        );
        assert_eq!(
            EioPacket::decode("1x"),
            Err(PacketError::UnexpectedData('1'))
        );
        assert_eq!(
            EioPacket::decode("2pro"),
            Err(PacketError::UnexpectedData('2'))
        );
        assert_eq!(EioPacket::decode("bAQID"), Err(PacketError::BinaryEio));
        assert!(matches!(
            EioPacket::decode("0"),
            Err(PacketError::InvalidOpen(_))
        ));
        assert!(matches!(
            EioPacket::decode("0{}"),
            Err(PacketError::InvalidOpen(_))
        ));
        assert!(matches!(
            EioPacket::decode(
                r#"0{"sid":"a","upgrades":[],"pingInterval":"x","pingTimeout":1,"maxPayload":1}"#
            ),
            Err(PacketError::InvalidOpen(_))
        ));
    }

    #[test]
    fn polling_payload() {
        let payload = "2\u{1e}42[\"a\"]\u{1e}6";
        let packets = decode_payload(payload).unwrap();
        assert_eq!(
            packets,
            vec![
                EioPacket::Ping,
                EioPacket::Message("2[\"a\"]".into()),
                EioPacket::Noop
            ]
        );
        assert_eq!(encode_payload(&packets), payload);
        assert_eq!(join_payload(&["41", "1"]), "41\u{1e}1");
        assert_eq!(split_payload("3").collect::<Vec<_>>(), vec!["3"]);
        assert_eq!(decode_payload("2\u{1e}"), Err(PacketError::Empty));
        assert_eq!(
            decode_payload("9\u{1e}2"),
            Err(PacketError::UnknownEioType('9'))
        );
    }

    #[test]
    fn event_frames() {
        sio_roundtrip(
            r#"42["hello",{"a":1}]"#,
            SioPacket::Event {
                nsp: "/".into(),
                id: None,
                name: "hello".into(),
                args: vec![json!({"a": 1})],
            },
        );
        sio_roundtrip(
            r#"42/rooms/r1,13["x"]"#,
            SioPacket::Event {
                nsp: "/rooms/r1".into(),
                id: Some(13),
                name: "x".into(),
                args: vec![],
            },
        );
        sio_roundtrip(
            r#"427["multi",1,"two",[3],null]"#,
            SioPacket::Event {
                nsp: "/".into(),
                id: Some(7),
                name: "multi".into(),
                args: vec![json!(1), json!("two"), json!([3]), Value::Null],
            },
        );
        assert_eq!(
            encode_event_frame("/rooms/r1", Some(13), "x", &[]),
            r#"42/rooms/r1,13["x"]"#
        );
        assert_eq!(
            encode_event_frame("/", None, "hello", &[json!({"a": 1})]),
            r#"42["hello",{"a":1}]"#
        );
        // Names needing escapes are JSON-encoded.
        assert_eq!(
            encode_event_frame("/", None, "q\"uote", &[]),
            r#"42["q\"uote"]"#
        );
    }

    #[test]
    fn event_views_agree_with_decode() {
        for text in [
            r#"2["tick"]"#,
            r#"2["tick",{"seq":1,"sentAtUs":5},[1,2],"x"]"#,
            r#"2/rooms/r1,13["a\"b",null]"#,
            r#"27[ "spaced" , {} ]"#,
        ] {
            let view = EventView::parse(text).expect(text);
            let Ok(SioPacket::Event { nsp, id, name, .. }) = SioPacket::decode(text) else {
                panic!("{text} decodes to an event");
            };
            assert_eq!(
                (view.nsp, view.id, view.name.as_ref()),
                (nsp.as_str(), id, name.as_str())
            );
            assert_eq!(view.payload, &text[text.find('[').unwrap_or(0)..]);
        }
        assert!(matches!(
            EventView::parse(r#"2["plain"]"#).map(|v| v.name),
            Some(std::borrow::Cow::Borrowed("plain"))
        ));
        // Whatever decode rejects (or is not an EVENT) has no view.
        for text in [
            "2",
            "2[]",
            "2[1]",
            r#"2{"a":1}"#,
            r#"2["x""#,
            r#"2["x"]]"#,
            r#"2["x",]"#,
            r#"3["x"]"#,
            r#"0{"a":1}"#,
            r#"51-["x"]"#,
            "",
            "9",
        ] {
            assert_eq!(EventView::parse(text), None, "{text}");
            assert!(
                !matches!(SioPacket::decode(text), Ok(SioPacket::Event { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn ack_frames() {
        sio_roundtrip(
            r#"431[{"ok":true}]"#,
            SioPacket::Ack {
                nsp: "/".into(),
                id: 1,
                args: vec![json!({"ok": true})],
            },
        );
        sio_roundtrip(
            r#"43/admin,42[]"#,
            SioPacket::Ack {
                nsp: "/admin".into(),
                id: 42,
                args: vec![],
            },
        );
        assert_eq!(
            encode_ack_frame("/", 1, &[json!({"ok": true})]),
            r#"431[{"ok":true}]"#
        );
        assert_eq!(
            encode_ack_frame("/a", 2, &[json!(1), json!(2)]),
            r#"43/a,2[1,2]"#
        );
    }

    #[test]
    fn connect_frames() {
        sio_roundtrip(
            r#"40/admin,{"token":"t"}"#,
            SioPacket::Connect {
                nsp: "/admin".into(),
                data: Some(json!({"token": "t"})),
            },
        );
        sio_roundtrip(
            "40",
            SioPacket::Connect {
                nsp: "/".into(),
                data: None,
            },
        );
        sio_roundtrip(
            r#"40{"sid":"xyz"}"#,
            SioPacket::Connect {
                nsp: "/".into(),
                data: Some(json!({"sid": "xyz"})),
            },
        );
        sio_roundtrip(
            "40/rooms/abc,",
            SioPacket::Connect {
                nsp: "/rooms/abc".into(),
                data: None,
            },
        );
    }

    #[test]
    fn disconnect_frames() {
        sio_roundtrip("41", SioPacket::Disconnect { nsp: "/".into() });
        sio_roundtrip("41/nsp,", SioPacket::Disconnect { nsp: "/nsp".into() });
        // The reference parser also accepts a namespace without trailing comma.
        assert_eq!(
            SioPacket::decode("1/nsp"),
            Ok(SioPacket::Disconnect { nsp: "/nsp".into() })
        );
    }

    #[test]
    fn connect_error_frames() {
        sio_roundtrip(
            r#"44{"message":"Authentication failed: Invalid token"}"#,
            SioPacket::ConnectError {
                nsp: "/".into(),
                message: "Authentication failed: Invalid token".into(),
                data: None,
            },
        );
        sio_roundtrip(
            r#"44/admin,{"message":"nope","data":{"code":7}}"#,
            SioPacket::ConnectError {
                nsp: "/admin".into(),
                message: "nope".into(),
                data: Some(json!({"code": 7})),
            },
        );
        // Socket.IO v4 (protocol v4) style plain string.
        assert_eq!(
            SioPacket::decode(r#"4"old style""#),
            Ok(SioPacket::ConnectError {
                nsp: "/".into(),
                message: "old style".into(),
                data: None
            })
        );
    }

    #[test]
    fn binary_packets_are_reported_unsupported() {
        assert_eq!(
            SioPacket::decode(r#"51-["upload",{"_placeholder":true,"num":0}]"#),
            Err(PacketError::UnsupportedBinary {
                packet_type: 5,
                attachments: 1,
                nsp: "/".into(),
                id: None
            })
        );
        assert_eq!(
            SioPacket::decode(r#"62-/admin,9[{"_placeholder":true,"num":0}]"#),
            Err(PacketError::UnsupportedBinary {
                packet_type: 6,
                attachments: 2,
                nsp: "/admin".into(),
                id: Some(9)
            })
        );
        assert_eq!(SioPacket::decode("5"), Err(PacketError::InvalidAttachments));
        assert_eq!(
            SioPacket::decode("5x-[]"),
            Err(PacketError::InvalidAttachments)
        );
        assert_eq!(
            SioPacket::decode("51["),
            Err(PacketError::InvalidAttachments)
        );
    }

    #[test]
    fn malformed_sio_packets() {
        let bad = [
            "",
            "7",
            "x",
            "é",
            "2",
            "2[]",
            "2{}",
            "2[1]",
            "2[\"a\"",
            "2/nsp,[",
            "3[]",
            "31",
            "31{}",
            "0[]",
            "0\"s\"",
            "01{}",
            "1{}",
            "11",
            "4",
            "4{}",
            "4{\"message\":1}",
            "41{\"message\":\"m\"}",
            "299999999999999999999999[\"x\"]",
            "2/nsp",
            "2/ns\u{e9}p,[\"x\"",
            "2[\"x\"]trailing",
        ];
        for text in bad {
            assert!(
                SioPacket::decode(text).is_err(),
                "{text:?} should not decode"
            );
        }
        assert_eq!(
            SioPacket::decode("299999999999999999999999[\"x\"]"),
            Err(PacketError::InvalidAckId)
        );
        assert!(SioPacket::decode_frame("2").is_err());
        assert!(SioPacket::decode_frame("").is_err());
    }

    #[test]
    fn decoders_never_panic_on_prefixes_and_garbage() {
        let samples = [
            r#"42/rooms/r1,13["x",{"a":[1,2,{"b":null}]}]"#,
            r#"0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
            r#"451-/a,3["e",{"_placeholder":true,"num":0}]"#,
            "44/é,{\"message\":\"ü\"}",
        ];
        for sample in samples {
            for (i, _) in sample.char_indices() {
                let prefix = &sample[..i];
                let _ = EioPacket::decode(prefix);
                let _ = SioPacket::decode_frame(prefix);
                let _ = decode_payload(prefix);
                let suffix = &sample[i..];
                let _ = EioPacket::decode(suffix);
                let _ = SioPacket::decode(suffix);
            }
        }
    }
}
