//! Socket.IO packets inside Engine.IO message packets, and the fault
//! builders that rewrite them.

use serde_json::Value;

use super::proxy::{Fault, FrameFn};

pub const EVENT: u8 = b'2';
pub const ACK: u8 = b'3';
pub const CONNECT_ERROR: u8 = b'4';

/// `4<type>[<nsp>,][<id>][<json>]`, the text packets this suite rewrites
/// (binary packets are left alone).
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub kind: u8,
    /// Empty for `/`.
    pub nsp: String,
    pub id: Option<u64>,
    pub data: Option<Value>,
}

impl Packet {
    pub fn parse(eio: &str) -> Option<Packet> {
        let sio = eio.strip_prefix('4')?;
        let kind = *sio.as_bytes().first()?;
        if !(b'0'..=b'4').contains(&kind) {
            return None;
        }
        let mut rest = &sio[1..];
        let mut nsp = String::new();
        if rest.starts_with('/') {
            let (n, r) = rest.split_once(',').unwrap_or((rest, ""));
            nsp = n.to_owned();
            rest = r;
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id = if digits > 0 {
            rest[..digits].parse().ok()
        } else {
            None
        };
        rest = &rest[digits..];
        let data = if rest.is_empty() {
            None
        } else {
            Some(serde_json::from_str(rest).ok()?)
        };
        Some(Packet {
            kind,
            nsp,
            id,
            data,
        })
    }

    pub fn encode(&self) -> String {
        let mut out = format!("4{}", self.kind as char);
        if !self.nsp.is_empty() && self.nsp != "/" {
            out.push_str(&self.nsp);
            out.push(',');
        }
        if let Some(id) = self.id {
            out.push_str(&id.to_string());
        }
        if let Some(d) = &self.data {
            out.push_str(&d.to_string());
        }
        out
    }
}

/// Rewrites the Socket.IO packets of kind `kind`; `f` returns false to drop
/// the packet. Other packets pass unchanged.
pub fn packets(kind: u8, f: impl Fn(&mut Packet) -> bool + Send + Sync + 'static) -> FrameFn {
    std::sync::Arc::new(move |text: &str| {
        let Some(mut p) = Packet::parse(text) else {
            return Some(text.to_owned());
        };
        if p.kind != kind {
            return Some(text.to_owned());
        }
        f(&mut p).then(|| p.encode())
    })
}

/// Server events: `f(name, args)` may change the name and the arguments,
/// and returns false to drop the event.
pub fn events(f: impl Fn(&mut String, &mut Vec<Value>) -> bool + Send + Sync + 'static) -> Fault {
    Fault {
        down: Some(packets(EVENT, move |p| {
            let Some(Value::Array(items)) = p.data.take() else {
                return true;
            };
            let mut items = items.into_iter();
            let Some(Value::String(mut name)) = items.next() else {
                return true;
            };
            let mut args: Vec<Value> = items.collect();
            let keep = f(&mut name, &mut args);
            let mut all = vec![Value::String(name)];
            all.extend(args);
            p.data = Some(Value::Array(all));
            keep
        })),
        ..Fault::default()
    }
}

/// Changes the first argument of every event named `event`.
pub fn on_event(event: &'static str, f: impl Fn(&mut Value) + Send + Sync + 'static) -> Fault {
    events(move |name, args| {
        if name == event
            && let Some(first) = args.first_mut()
        {
            f(first);
        }
        true
    })
}

/// Never delivers `event`.
pub fn drop_event(event: &'static str) -> Fault {
    events(move |name, _| name != event)
}

/// Delivers `from` under the name `to`.
pub fn rename_event(from: &'static str, to: &'static str) -> Fault {
    events(move |name, _| {
        if name == from {
            *name = to.to_owned();
        }
        true
    })
}

/// Changes the first argument of every ack.
pub fn on_ack(f: impl Fn(&mut Value) + Send + Sync + 'static) -> Fault {
    Fault {
        down: Some(packets(ACK, move |p| {
            if let Some(Value::Array(args)) = &mut p.data
                && let Some(first) = args.first_mut()
            {
                f(first);
            }
            true
        })),
        ..Fault::default()
    }
}

/// Changes every `connect_error` payload (`{message, data?}`).
pub fn on_connect_error(f: impl Fn(&mut Value) + Send + Sync + 'static) -> Fault {
    Fault {
        down: Some(packets(CONNECT_ERROR, move |p| {
            if let Some(d) = &mut p.data {
                f(d);
            }
            true
        })),
        ..Fault::default()
    }
}

/// The server-to-client rewrites of `faults` applied in turn (a frame one
/// of them drops is dropped).
pub fn all_down(faults: Vec<Fault>) -> Fault {
    let fs: Vec<FrameFn> = faults.into_iter().filter_map(|f| f.down).collect();
    Fault {
        down: Some(std::sync::Arc::new(move |text: &str| {
            fs.iter().try_fold(text.to_owned(), |text, f| f(&text))
        })),
        ..Fault::default()
    }
}

/// Applies `f` to every field named `key`, at any depth.
pub fn each_field(v: &mut Value, key: &str, f: &dyn Fn(&mut Value)) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == key {
                    f(x);
                } else {
                    each_field(x, key, f);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| each_field(x, key, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for text in [
            r#"42["room:updated",{"a":1}]"#,
            r#"42/rooms/r1,["x",{}]"#,
            r#"4317[{"success":true}]"#,
            r#"43/rooms/r1,5[{"success":false}]"#,
            r#"44{"message":"Authentication failed: Invalid token"}"#,
            r#"40{"sid":"abc"}"#,
            "41",
        ] {
            let p = Packet::parse(text).expect(text);
            assert_eq!(p.encode(), text);
        }
        assert_eq!(Packet::parse("2"), None);
        assert_eq!(Packet::parse("451-[\"x\"]"), None);
    }
}
