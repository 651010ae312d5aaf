//! The connected [`Socket`], its cloneable [`SocketHandle`] and the state
//! shared with the connection task.

use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::sync::{Notify, mpsc::UnboundedSender, oneshot};

use crate::config::{Direction, EventHook, Frame, Transport};
use crate::error::{AckError, DisconnectReason, SendError, WaitError};
use crate::packet::{self, OpenPacket, PacketError};

/// A Socket.IO event received from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event name (first element of the EVENT array).
    pub name: String,
    /// Remaining elements of the EVENT array.
    pub args: Vec<Value>,
    /// Set when the server expects an acknowledgement; answer with
    /// [`SocketHandle::ack`].
    pub ack_id: Option<u64>,
    /// When the frame carrying the event was read.
    pub received_at: Instant,
}

/// Something the connection produced, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// An EVENT for this socket's namespace.
    Event(Event),
    /// A frame from the server that could not be decoded (including
    /// unsupported binary packets). The connection stays up.
    Invalid {
        /// The Engine.IO frame as received.
        frame: String,
        /// Why it could not be decoded.
        error: PacketError,
    },
    /// The connection ended; always the last item.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
}

/// Conversion into an event argument list.
///
/// * a [`Value`] is **one** argument (an array value stays one array argument),
/// * `Vec<Value>` / `[Value; N]` are the argument list itself,
/// * `()` is no arguments.
///
/// ```
/// # use serde_json::json;
/// # use sioclient::IntoArgs;
/// assert_eq!(json!({"a": 1}).into_args(), vec![json!({"a": 1})]);
/// assert_eq!(vec![json!(1), json!(2)].into_args().len(), 2);
/// assert!(().into_args().is_empty());
/// ```
pub trait IntoArgs {
    /// The argument list.
    fn into_args(self) -> Vec<Value>;
}

impl IntoArgs for Value {
    fn into_args(self) -> Vec<Value> {
        vec![self]
    }
}

impl IntoArgs for Vec<Value> {
    fn into_args(self) -> Vec<Value> {
        self
    }
}

impl<const N: usize> IntoArgs for [Value; N] {
    fn into_args(self) -> Vec<Value> {
        self.into()
    }
}

impl IntoArgs for () {
    fn into_args(self) -> Vec<Value> {
        Vec::new()
    }
}

pub(crate) enum Outgoing {
    Frame(String),
    Close,
}

#[derive(Default)]
struct OutQueue {
    items: VecDeque<Outgoing>,
    closed: bool,
}

#[derive(Default)]
struct Inbox {
    items: VecDeque<Incoming>,
    closed: bool,
}

const TRANSPORT_WS: u8 = 0;
const TRANSPORT_POLLING: u8 = 1;

/// State shared between the user-facing handles and the connection task.
/// One allocation per connection; the queues allocate only when used.
pub(crate) struct Shared {
    pub(crate) nsp: String,
    sid: String,
    open: OpenPacket,
    transport: AtomicU8,
    next_ack: AtomicU64,
    acks: Mutex<HashMap<u64, oneshot::Sender<Vec<Value>>>>,
    out: Mutex<OutQueue>,
    pub(crate) out_notify: Notify,
    inbox: Mutex<Inbox>,
    in_notify: Notify,
    done: AtomicBool,
    done_notify: Notify,
    tap: Option<UnboundedSender<Frame>>,
    hook: Option<EventHook>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked while holding it;
    // the queues stay structurally valid, so keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(
        nsp: String,
        sid: String,
        open: OpenPacket,
        transport: Transport,
        tap: Option<UnboundedSender<Frame>>,
        hook: Option<EventHook>,
    ) -> Self {
        let shared = Self {
            nsp,
            sid,
            open,
            transport: AtomicU8::new(TRANSPORT_WS),
            next_ack: AtomicU64::new(0),
            acks: Mutex::new(HashMap::new()),
            out: Mutex::new(OutQueue::default()),
            out_notify: Notify::new(),
            inbox: Mutex::new(Inbox::default()),
            in_notify: Notify::new(),
            done: AtomicBool::new(false),
            done_notify: Notify::new(),
            tap,
            hook,
        };
        shared.set_transport(transport);
        shared
    }

    pub(crate) fn set_transport(&self, transport: Transport) {
        let v = match transport {
            Transport::Polling => TRANSPORT_POLLING,
            _ => TRANSPORT_WS,
        };
        self.transport.store(v, Ordering::Relaxed);
    }

    fn transport(&self) -> Transport {
        match self.transport.load(Ordering::Relaxed) {
            TRANSPORT_POLLING => Transport::Polling,
            _ => Transport::WebSocket,
        }
    }

    pub(crate) fn hook(&self) -> Option<&EventHook> {
        self.hook.as_ref()
    }

    pub(crate) fn tap_sender(&self) -> Option<&UnboundedSender<Frame>> {
        self.tap.as_ref()
    }

    pub(crate) fn tap(&self, direction: Direction, transport: Transport, text: &str) {
        tap(self.tap.as_ref(), direction, transport, text);
    }

    fn push_out(&self, item: Outgoing) -> Result<(), SendError> {
        let mut out = lock(&self.out);
        if out.closed {
            return Err(SendError::Disconnected);
        }
        out.items.push_back(item);
        drop(out);
        self.out_notify.notify_one();
        Ok(())
    }

    /// Next queued outgoing item (connection task only).
    pub(crate) fn pop_out(&self) -> Option<Outgoing> {
        lock(&self.out).items.pop_front()
    }

    /// Queues a graceful close; later sends fail.
    fn request_close(&self) {
        let mut out = lock(&self.out);
        if out.closed {
            return;
        }
        out.items.push_back(Outgoing::Close);
        out.closed = true;
        drop(out);
        self.out_notify.notify_one();
    }

    pub(crate) fn push_incoming(&self, item: Incoming) {
        let mut inbox = lock(&self.inbox);
        if inbox.closed {
            return;
        }
        inbox.items.push_back(item);
        drop(inbox);
        self.in_notify.notify_one();
    }

    pub(crate) fn resolve_ack(&self, id: u64, args: Vec<Value>) -> bool {
        match lock(&self.acks).remove(&id) {
            Some(tx) => {
                let _ = tx.send(args);
                true
            }
            None => false,
        }
    }

    /// Marks the connection as ended: fails pending acks and sends, pushes
    /// the final `Disconnected`. Idempotent.
    pub(crate) fn finish(&self, reason: DisconnectReason) {
        if self.done.swap(true, Ordering::AcqRel) {
            return;
        }
        {
            let mut out = lock(&self.out);
            out.closed = true;
            out.items = VecDeque::new();
        }
        // Dropping the senders wakes every waiter with `Disconnected`.
        drop(std::mem::take(&mut *lock(&self.acks)));
        {
            let mut inbox = lock(&self.inbox);
            inbox.items.push_back(Incoming::Disconnected { reason });
            inbox.closed = true;
        }
        self.in_notify.notify_one();
        self.done_notify.notify_waiters();
    }

    async fn wait_done(&self) {
        loop {
            let notified = self.done_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.done.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

pub(crate) fn tap(
    tap: Option<&UnboundedSender<Frame>>,
    direction: Direction,
    transport: Transport,
    text: &str,
) {
    if let Some(tap) = tap {
        let _ = tap.send(Frame {
            direction,
            at: SystemTime::now(),
            transport,
            text: text.to_owned(),
        });
    }
}

/// Removes an ack waiter if the `emit_with_ack` future is dropped or times out.
struct AckGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for AckGuard<'_> {
    fn drop(&mut self) {
        lock(&self.shared.acks).remove(&self.id);
    }
}

/// Cloneable sending side of a [`Socket`]: emit, acks, raw frames, disconnect.
///
/// Cheap to clone (one `Arc`); use it to send from other tasks while the
/// [`Socket`] itself reads incoming items.
#[derive(Clone)]
pub struct SocketHandle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) task: tokio::task::AbortHandle,
}

impl std::fmt::Debug for SocketHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketHandle")
            .field("nsp", &self.shared.nsp)
            .field("sid", &self.shared.sid)
            .field("transport", &self.shared.transport())
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl SocketHandle {
    /// Socket.IO session id (from the server's CONNECT packet).
    pub fn sid(&self) -> &str {
        &self.shared.sid
    }

    /// Engine.IO session id (from the open packet).
    pub fn engine_sid(&self) -> &str {
        &self.shared.open.sid
    }

    /// The Engine.IO open packet the server sent (ping interval, timeout, ...).
    pub fn handshake(&self) -> &OpenPacket {
        &self.shared.open
    }

    /// Namespace of this socket (with leading `/`).
    pub fn namespace(&self) -> &str {
        &self.shared.nsp
    }

    /// Transport currently in use: [`Transport::WebSocket`] or [`Transport::Polling`].
    pub fn transport(&self) -> Transport {
        self.shared.transport()
    }

    /// `false` once the connection has ended (or a disconnect is queued).
    pub fn is_connected(&self) -> bool {
        !self.shared.done.load(Ordering::Acquire) && !lock(&self.shared.out).closed
    }

    /// Queues an EVENT `["event", args...]` without ack.
    ///
    /// Frames are written in the order they are queued.
    pub fn emit(&self, event: &str, args: impl IntoArgs) -> Result<(), SendError> {
        let frame = packet::encode_event_frame(&self.shared.nsp, None, event, &args.into_args());
        self.shared.push_out(Outgoing::Frame(frame))
    }

    /// Emits an EVENT with an ack id and waits for the server's ACK.
    ///
    /// Ack ids come from a per-socket counter starting at 0, so any number of
    /// concurrent calls each get their own answer.
    pub async fn emit_with_ack(
        &self,
        event: &str,
        args: impl IntoArgs,
        timeout: Duration,
    ) -> Result<Vec<Value>, AckError> {
        let id = self.shared.next_ack.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.shared.acks).insert(id, tx);
        let _guard = AckGuard {
            shared: &self.shared,
            id,
        };
        let frame =
            packet::encode_event_frame(&self.shared.nsp, Some(id), event, &args.into_args());
        self.shared
            .push_out(Outgoing::Frame(frame))
            .map_err(|_| AckError::Disconnected)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(args)) => Ok(args),
            Ok(Err(_)) => Err(AckError::Disconnected),
            Err(_) => Err(AckError::Timeout),
        }
    }

    /// Answers a server event that requested an ack (`Event::ack_id`).
    pub fn ack(&self, id: u64, args: impl IntoArgs) -> Result<(), SendError> {
        let frame = packet::encode_ack_frame(&self.shared.nsp, id, &args.into_args());
        self.shared.push_out(Outgoing::Frame(frame))
    }

    /// Queues an arbitrary Engine.IO text frame exactly as given (e.g.
    /// `42["x"`, `4`, `9`), for malformed-input tests. With polling it is
    /// sent as one packet of a POST payload.
    pub fn send_raw(&self, text: impl Into<String>) -> Result<(), SendError> {
        self.shared.push_out(Outgoing::Frame(text.into()))
    }

    /// Graceful disconnect: sends DISCONNECT for the namespace (`41` or
    /// `41/nsp,`), closes the transport and waits (at most 5 s) for the
    /// connection task to finish. Queued frames are sent first. Idempotent.
    /// The final [`Incoming::Disconnected`] carries
    /// [`DisconnectReason::ClientDisconnect`] unless the connection had
    /// already ended for another reason.
    pub async fn disconnect(&self) {
        self.shared.request_close();
        if tokio::time::timeout(Duration::from_secs(5), self.shared.wait_done())
            .await
            .is_err()
        {
            self.task.abort();
            self.shared.finish(DisconnectReason::ClientDisconnect);
        }
    }

    /// Waits until the connection has ended, whatever the reason.
    pub async fn closed(&self) {
        self.shared.wait_done().await;
    }
}

/// A connected Socket.IO socket on one namespace.
///
/// Each [`connect`](crate::connect) opens its own Engine.IO session (like the
/// JS client's `forceNew`), so a `Socket` is exactly one namespace on one
/// connection.
///
/// Sending methods come from [`SocketHandle`] (via `Deref`); receiving
/// ([`next`](Self::next), [`wait_for`](Self::wait_for)) needs `&mut self`.
///
/// Dropping the `Socket` starts a graceful disconnect in the background, even
/// if [`SocketHandle`] clones are still alive.
pub struct Socket {
    pub(crate) handle: SocketHandle,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.handle.fmt(f)
    }
}

impl Deref for Socket {
    type Target = SocketHandle;

    fn deref(&self) -> &SocketHandle {
        &self.handle
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.handle.shared.request_close();
    }
}

impl Socket {
    pub(crate) fn new(handle: SocketHandle) -> Self {
        Self { handle }
    }

    /// A cloneable handle for sending from other tasks.
    pub fn handle(&self) -> SocketHandle {
        self.handle.clone()
    }

    /// Next incoming item in arrival order; `None` after the final
    /// [`Incoming::Disconnected`] has been returned.
    pub async fn next(&mut self) -> Option<Incoming> {
        let shared = &self.handle.shared;
        loop {
            {
                let mut inbox = lock(&shared.inbox);
                if let Some(item) = inbox.items.pop_front() {
                    return Some(item);
                }
                if inbox.closed {
                    return None;
                }
            }
            // `notify_one` stores a permit, so a push between the check above
            // and this await is not lost.
            shared.in_notify.notified().await;
        }
    }

    /// Next incoming item if one is already queued.
    pub fn try_next(&mut self) -> Option<Incoming> {
        lock(&self.handle.shared.inbox).items.pop_front()
    }

    /// Waits for the first EVENT named `event` and returns it.
    ///
    /// Other items are **kept** in order: later [`next`](Self::next) calls
    /// still return them. Fails with [`WaitError::Disconnected`] once the
    /// connection has ended without a matching event (the `Disconnected`
    /// item stays queued), or [`WaitError::Timeout`].
    pub async fn wait_for(&mut self, event: &str, timeout: Duration) -> Result<Event, WaitError> {
        tokio::time::timeout(timeout, self.wait_for_inner(event))
            .await
            .map_err(|_| WaitError::Timeout)?
    }

    async fn wait_for_inner(&mut self, event: &str) -> Result<Event, WaitError> {
        let shared = &self.handle.shared;
        // Items before `scanned` were already checked during this call.
        let mut scanned = 0;
        loop {
            {
                let mut inbox = lock(&shared.inbox);
                let start = scanned.min(inbox.items.len());
                let mut found = None;
                for (i, item) in inbox.items.iter().enumerate().skip(start) {
                    match item {
                        Incoming::Event(ev) if ev.name == event => {
                            found = Some(i);
                            break;
                        }
                        Incoming::Disconnected { reason } => {
                            return Err(WaitError::Disconnected(reason.clone()));
                        }
                        _ => {}
                    }
                }
                if let Some(i) = found
                    && let Some(Incoming::Event(ev)) = inbox.items.remove(i)
                {
                    return Ok(ev);
                }
                scanned = inbox.items.len();
            }
            shared.in_notify.notified().await;
        }
    }
}
