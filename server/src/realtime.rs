//! The Socket.IO side, inbound: authentication at connect, the namespaces
//! `/` and `/rooms/{roomId}`, every client event and token expiry. What the
//! handlers do to sockets (subscribe, presence, disconnect) is in
//! [`crate::sockets`], which the REST API and the cluster use too; nothing
//! calls into this module but the server's start.
//!
//! Every client event goes through one dispatcher (`on_event`): it counts
//! the event, applies the per-connection rate limit, decodes the payload,
//! runs the handler, and answers with the ack, or with an `error` event when
//! the client asked for no ack (protocol notes N9). Listeners are registered
//! inside the connect middleware, before socketioxide sends CONNECT, so a
//! client that emits at once loses nothing.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use protocol::ErrorCode;
use protocol::error::AuthFailure;
use protocol::event as ev;
use protocol::limits;
use protocol::payload::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::handler::{FromMessageParts, Value as RawValue};
use socketioxide::socket::{DisconnectReason, Socket};

use crate::access::{AccessError, authorize_room};
use crate::auth::{AuthError, unix_now_ms};
use crate::ratelimit::{Charge, ConnectionBudget};
use crate::sockets::{self, Session};
use crate::state::{AppState, Io, user_sockets};
use crate::store::StoreError;

/// A refused client event.
#[derive(Debug, Clone)]
pub struct ClientError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Map<String, Value>,
}

impl ClientError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ClientError {
            code,
            message: message.into(),
            details: Map::new(),
        }
    }

    fn room(mut self, room_id: &str) -> Self {
        self.details.insert("roomId".into(), json!(room_id));
        self
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidPayload, message)
    }

    /// The server failed (its database is down, ...), not the event: of the
    /// protocol's six codes the one that tells a client to slow down and
    /// retry, with a message and `details.retryable` that say why
    /// (protocol notes N18). `INVALID_PAYLOAD` would tell it the event is
    /// wrong and not worth sending again.
    fn server_failure() -> Self {
        let mut e = Self::new(ErrorCode::RateLimitExceeded, SERVER_UNAVAILABLE);
        e.details.insert(RETRYABLE.into(), json!(true));
        e
    }

    /// Whether this is a [`ClientError::server_failure`].
    fn is_server_failure(&self) -> bool {
        self.details.contains_key(RETRYABLE)
    }
}

impl From<StoreError> for ClientError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::RoomNotFound(id) => {
                ClientError::new(ErrorCode::RoomNotFound, format!("Room not found: {id}")).room(&id)
            }
            StoreError::NotFound { what, id } => {
                ClientError::invalid(format!("Unknown {what}: {id}"))
            }
            StoreError::Forbidden(m) => ClientError::new(ErrorCode::PermissionDenied, m),
            StoreError::Invalid(m) | StoreError::Conflict(m) => ClientError::invalid(m),
            other => {
                tracing::error!(error = %other, "store error in a client event");
                ClientError::server_failure()
            }
        }
    }
}

impl From<AccessError> for ClientError {
    fn from(e: AccessError) -> Self {
        let message = e.to_string();
        match e {
            AccessError::RoomNotFound(id) => StoreError::RoomNotFound(id).into(),
            AccessError::Private(id) => {
                ClientError::new(ErrorCode::PermissionDenied, message).room(&id)
            }
            AccessError::Store(e) => e.into(),
        }
    }
}

/// The message of a `connect_error`, or of an event's error, when the
/// server could not do its part (protocol notes N18). Not an
/// `Authentication failed: ` message: the client's token may be good.
pub const SERVER_UNAVAILABLE: &str = "Server unavailable: try again later";

/// The `details` key that marks a server failure in an event's error.
const RETRYABLE: &str = "retryable";

/// The metric reason of a CONNECT refused with [`SERVER_UNAVAILABLE`].
const SERVER_UNAVAILABLE_REASON: &str = "unavailable";

/// Why a connection was refused: the `connect_error` message.
#[derive(Debug)]
pub struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Implements socketioxide's [`FromMessageParts`] for an extractor that
/// cannot fail, built from the incoming packet's value and ack id:
/// `infallible_extractor!(Type, |value, ack_id| expression)`.
macro_rules! infallible_extractor {
    ($ty:ident, |$value:pat_param, $ack_id:pat_param| $build:expr) => {
        impl<A: Adapter> FromMessageParts<A> for $ty {
            type Error = Infallible;
            fn from_message_parts(
                _: &Arc<Socket<A>>,
                $value: &mut RawValue,
                $ack_id: &Option<i64>,
            ) -> Result<Self, Infallible> {
                Ok($build)
            }
        }
    };
}

/// The ack id of the incoming event, if the client asked for an ack.
struct AckId(Option<i64>);

infallible_extractor!(AckId, |_, ack_id| AckId(*ack_id));

/// The size of the incoming packet's JSON text.
struct PacketLen(usize);

infallible_extractor!(PacketLen, |v, _| PacketLen(match v {
    RawValue::Str(s, _) => s.len(),
    RawValue::Bytes(b) => b.len(),
}));

/// The event's first argument (after the name), parsed from the packet's
/// JSON text with serde_json. socketioxide's own `Data`/`TryData` extractors
/// fail on any object whose first key contains a JSON escape (`{"a\"b":1}`:
/// socketioxide-parser-common peeks that key as a borrowed `&str`), which
/// would turn a valid payload into "Missing payload".
struct FirstArg(Option<Value>);

infallible_extractor!(FirstArg, |v, _| FirstArg(match v {
    // Too large to be processed anyway (the dispatcher refuses it).
    RawValue::Str(s, _) if s.len() > limits::MAX_CLIENT_EVENT_BYTES => None,
    RawValue::Str(s, _) => serde_json::from_str::<Vec<Value>>(s)
        .ok()
        .and_then(|args| args.into_iter().nth(1)),
    RawValue::Bytes(_) => None,
}));

/// The connect handler (middleware: [`authenticate`], then
/// [`on_connected`]) for sockets of adapter `$adapter`.
macro_rules! connect_handler {
    ($st:expr, $adapter:ty) => {{
        use socketioxide::handler::ConnectHandler;
        let st1: AppState = $st.clone();
        let connected = move |socket: SocketRef<$adapter>| {
            let st = st1.clone();
            async move { on_connected(st, socket).await }
        };
        let st2: AppState = $st.clone();
        let middleware = move |socket: SocketRef<$adapter>,
                               io: SocketIo<$adapter>,
                               TryData(auth): TryData<Value>| {
            let st = st2.clone();
            async move { authenticate(st, socket, io, auth.ok()).await }
        };
        connected.with(middleware)
    }};
}

/// The dynamic namespace of each room.
const ROOM_NAMESPACES: &str = "/rooms/{roomId}";

/// Registers both namespaces (on a cluster node, `/` subscribes to its
/// Redis channels first).
pub async fn attach(st: &AppState) -> anyhow::Result<()> {
    match &st.io {
        Io::Local(io) => {
            io.ns(
                "/",
                connect_handler!(st, socketioxide::adapter::LocalAdapter),
            );
            io.dyn_ns(
                ROOM_NAMESPACES,
                connect_handler!(st, socketioxide::adapter::LocalAdapter),
            )
            .expect("the room namespace pattern is valid");
        }
        Io::Cluster(io) => {
            io.ns("/", connect_handler!(st, crate::cluster::Adapter))
                .await
                .map_err(|e| anyhow::anyhow!("opening the namespace / on Redis: {e}"))?;
            io.dyn_ns(
                ROOM_NAMESPACES,
                connect_handler!(st, crate::cluster::Adapter),
            )
            .expect("the room namespace pattern is valid");
        }
    }
    Ok(())
}

/// The `connect_error` message of a CONNECT from an address over its
/// failed-authentication limit, and the metric reason.
const TOO_MANY_FAILURES: &str = "Authentication failed: Too many failed attempts";
const TOO_MANY_FAILURES_REASON: &str = "too_many_failures";

/// The message of an event or CONNECT over the client-event limit.
fn too_many_events(st: &AppState) -> String {
    format!(
        "Too many events: at most {} per minute per connection",
        st.config.client_events_per_minute
    )
}

/// The budget of the Engine.IO connection (attached to its handshake
/// request by [`crate::serve`]); a fresh one if the request had none.
fn connection_budget(st: &AppState, parts: &axum::http::request::Parts) -> Arc<ConnectionBudget> {
    parts
        .extensions
        .get::<Arc<ConnectionBudget>>()
        .cloned()
        .unwrap_or_else(|| Arc::new(st.client_budgets.connection()))
}

/// Connect middleware: token, user, revocation; for a room namespace, the
/// room and the user's access to it. Registers the listeners on success.
async fn authenticate<A: Adapter>(
    st: AppState,
    socket: SocketRef<A>,
    io: SocketIo<A>,
    auth: Option<Value>,
) -> Result<(), Refusal> {
    // A room id no room can have is refused before the token and the
    // database are looked at (hardening: the namespace lives until then).
    if let Some(room_id) = ev::room_id_of_namespace(socket.ns())
        && room_id.len() > crate::store::MAX_ID_BYTES
    {
        st.metrics.connect_refused(ErrorCode::RoomNotFound.as_str());
        st.metrics.error(ErrorCode::RoomNotFound);
        return Err(Refusal(format!("Room not found: {room_id}")));
    }
    let peer = crate::listener::peer_ip(socket.req_parts());
    if let Some(ip) = peer
        && !st.failed_auth.allows(ip, Instant::now())
    {
        st.metrics.connect_refused(TOO_MANY_FAILURES_REASON);
        st.metrics.error(ErrorCode::AuthenticationFailed);
        return Err(Refusal(TOO_MANY_FAILURES.to_owned()));
    }
    let token = auth
        .as_ref()
        .and_then(|a| a.get("token"))
        .and_then(Value::as_str);
    let (claims, user) = match st.tokens.authenticate(&st.store, token).await {
        Ok(ok) => ok,
        // Not the client's failure: not counted against its address.
        Err(AuthError::Unavailable(e)) => {
            tracing::error!(error = %e, "the store failed during authentication");
            st.metrics.connect_refused(SERVER_UNAVAILABLE_REASON);
            return Err(Refusal(SERVER_UNAVAILABLE.to_owned()));
        }
        Err(AuthError::Refused(failure)) => {
            if let Some(ip) = peer {
                st.failed_auth.record(ip, Instant::now());
            }
            st.metrics.connect_refused(failure.reason());
            st.metrics.error(ErrorCode::AuthenticationFailed);
            return Err(Refusal(failure.message()));
        }
    };
    // A CONNECT is charged to the connection's budget, once the user is
    // known (so a reconnect is charged what the user's closed connections
    // used): a CONNECT/DISCONNECT loop on a room namespace, which announces
    // presence to the whole room each time, is bounded.
    let budget = connection_budget(&st, socket.req_parts());
    budget.claim(&user.id);
    if !budget.try_acquire(Charge::Connect, Instant::now()) {
        st.metrics
            .connect_refused(ErrorCode::RateLimitExceeded.as_str());
        st.metrics.error(ErrorCode::RateLimitExceeded);
        return Err(Refusal(format!(
            "Too many connects: at most {} per minute per connection",
            st.config.client_events_per_minute
        )));
    }
    let room = match ev::room_id_of_namespace(socket.ns()) {
        None => None,
        Some(room_id) => {
            let user_id = user.id.clone();
            if let Err(e) = authorize_room(&st, room_id, &user_id)
                .await
                .map_err(ClientError::from)
            {
                if e.is_server_failure() {
                    st.metrics.connect_refused(SERVER_UNAVAILABLE_REASON);
                    return Err(Refusal(SERVER_UNAVAILABLE.to_owned()));
                }
                st.metrics.connect_refused(e.code.as_str());
                st.metrics.error(e.code);
                return Err(Refusal(match e.code {
                    ErrorCode::RoomNotFound => format!("Room not found: {room_id}"),
                    _ => format!("Permission denied: {}", e.message),
                }));
            }
            Some(room_id.to_owned())
        }
    };
    let session = Arc::new(Session::new(
        user.to_info(),
        claims.jti.clone(),
        room,
        budget,
    ));
    socket.extensions.insert(session.clone());
    arm_expiry(&st, io, &socket, &session, claims.exp);

    let st2 = st.clone();
    socket.on_fallback(
        move |s: SocketRef<A>,
              Event(name): Event,
              FirstArg(data): FirstArg,
              AckId(ack_id): AckId,
              PacketLen(len): PacketLen,
              ack: AckSender<A>| {
            let st = st2.clone();
            async move { on_event(st, s, name, data, len, ack_id, ack).await }
        },
    );
    let st3 = st.clone();
    socket.on_disconnect(move |s: SocketRef<A>, reason: DisconnectReason| {
        let st = st3.clone();
        async move { on_disconnected(st, s, reason).await }
    });
    Ok(())
}

/// After CONNECT: join the user's room; on a room namespace, the socket is
/// subscribed (protocol notes N5).
async fn on_connected<A: Adapter>(st: AppState, socket: SocketRef<A>) {
    st.metrics.socket_connected(socket.ns());
    let Some(session) = socket.extensions.get::<Arc<Session>>() else {
        return;
    };
    if session.room.is_none() {
        socket.join(user_sockets(&session.user.id));
    }
    if let Some(room_id) = session.room.clone() {
        sockets::subscribe_socket(&st, &socket, &session, &room_id).await;
    }
}

async fn on_disconnected<A: Adapter>(
    st: AppState,
    socket: SocketRef<A>,
    _reason: DisconnectReason,
) {
    st.metrics.socket_disconnected(socket.ns());
    let Some(session) = socket.extensions.get::<Arc<Session>>() else {
        return;
    };
    if let Some(task) = session.expiry.lock().expect("expiry lock").take() {
        task.abort();
    }
    sockets::release(&st, &session).await;
}

/// `token:expired` when `exp` passes, then a disconnect after the grace
/// period (protocol notes N10).
fn arm_expiry<A: Adapter>(
    st: &AppState,
    io: SocketIo<A>,
    socket: &SocketRef<A>,
    session: &Arc<Session>,
    exp_secs: i64,
) {
    let ns = socket.ns().to_owned();
    let sid = socket.id;
    let st = st.clone();
    let session_weak = Arc::downgrade(session);
    let delay_ms = (exp_secs * 1000 - unix_now_ms()).max(0) as u64;
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let Some(session) = session_weak.upgrade() else {
            return;
        };
        session.expired.store(true, Ordering::Relaxed);
        let grace = st.config.token_grace;
        let disconnect_at = unix_now_ms() + grace.as_millis() as i64;
        if let Some(socket) = io.of(&ns).and_then(|op| op.get_socket(sid)) {
            let payload = TokenExpired {
                timestamp: protocol::timestamp::now(),
                disconnect_at: Some(protocol::timestamp::from_unix_ms(disconnect_at)),
            };
            let _ = socket.emit(ev::TOKEN_EXPIRED, &payload);
            st.metrics.event_out(ev::TOKEN_EXPIRED);
        }
        tokio::time::sleep(grace).await;
        if let Some(socket) = io.of(&ns).and_then(|op| op.get_socket(sid)) {
            let _ = socket.disconnect();
        }
    });
    *session.expiry.lock().expect("expiry lock") = Some(task.abort_handle());
}

/// The dispatcher of every client event.
async fn on_event<A: Adapter>(
    st: AppState,
    socket: SocketRef<A>,
    name: String,
    data: Option<Value>,
    packet_len: usize,
    ack_id: Option<i64>,
    ack: AckSender<A>,
) {
    st.metrics.event_in(&name);
    let Some(session) = socket.extensions.get::<Arc<Session>>() else {
        return;
    };
    let result = handle(&st, &socket, &session, &name, data, packet_len).await;
    match result {
        Ok(reply) => {
            if ack_id.is_some() {
                let _ = ack.send(&reply);
            }
        }
        Err(mut e) => {
            st.metrics.error(e.code);
            if ack_id.is_some() {
                let _ = ack.send(&AckFailure::new(e.code, e.message));
            } else {
                // `action` as the protocol's example shows it; `event`,
                // the same name, as earlier versions sent it (N9).
                e.details.insert("action".into(), json!(name));
                e.details.insert("event".into(), json!(name));
                let payload = ErrorEvent {
                    code: e.code,
                    message: e.message,
                    details: e.details,
                    timestamp: protocol::timestamp::now(),
                };
                let _ = socket.emit(ev::ERROR, &payload);
                st.metrics.event_out(ev::ERROR);
            }
        }
    }
}

fn decode<T: DeserializeOwned>(data: Option<Value>) -> Result<T, ClientError> {
    let data = data.ok_or_else(|| ClientError::invalid("Missing payload"))?;
    // Every client payload is an object; serde would also accept a struct
    // written as an array (`["room_1"]`), which the protocol does not allow.
    if !data.is_object() {
        return Err(ClientError::invalid(
            "Invalid payload: expected a JSON object",
        ));
    }
    serde_json::from_value(data).map_err(|e| ClientError::invalid(format!("Invalid payload: {e}")))
}

fn to_value<T: Serialize>(v: T) -> Value {
    serde_json::to_value(v).expect("payload types always serialize")
}

async fn handle<A: Adapter>(
    st: &AppState,
    socket: &SocketRef<A>,
    session: &Arc<Session>,
    name: &str,
    data: Option<Value>,
    packet_len: usize,
) -> Result<Value, ClientError> {
    if !session.budget.try_acquire(Charge::Event, Instant::now()) {
        return Err(ClientError::new(
            ErrorCode::RateLimitExceeded,
            too_many_events(st),
        ));
    }
    if session.expired.load(Ordering::Relaxed) {
        return Err(ClientError::new(
            ErrorCode::AuthenticationFailed,
            AuthFailure::TokenExpired.message(),
        ));
    }
    if packet_len > limits::MAX_CLIENT_EVENT_BYTES {
        return Err(ClientError::invalid(format!(
            "Payload too large: {packet_len} bytes, at most {}",
            limits::MAX_CLIENT_EVENT_BYTES
        )));
    }
    if !st.config.event_delay.is_zero() {
        tokio::time::sleep(st.config.event_delay).await;
    }
    match name {
        ev::ROOM_SUBSCRIBE => subscribe(st, socket, session, decode(data)?).await,
        ev::ROOM_UNSUBSCRIBE => unsubscribe(st, socket, session, decode(data)?).await,
        ev::PRESENCE_GET_ONLINE => get_online(st, session, decode(data)?).await,
        ev::QUIZ_ANSWER_SUBMIT => answer(st, session, decode(data)?).await,
        ev::NOTIFICATION_MARK_READ => mark_read(st, session, decode(data)?).await,
        other => Err(ClientError::invalid(format!("Unknown event: {other}"))),
    }
}

/// On a room namespace, events may name that room only.
fn check_namespace_room(session: &Session, room_id: &str) -> Result<(), ClientError> {
    match &session.room {
        Some(own) if own != room_id => Err(ClientError::new(
            ErrorCode::PermissionDenied,
            format!("This socket is connected to room {own}, not {room_id}"),
        )
        .room(room_id)),
        _ => Ok(()),
    }
}

async fn subscribe<A: Adapter>(
    st: &AppState,
    socket: &SocketRef<A>,
    session: &Session,
    req: RoomRef,
) -> Result<Value, ClientError> {
    check_namespace_room(session, &req.room_id)?;
    let room = authorize_room(st, &req.room_id, &session.user.id).await?;
    sockets::subscribe_socket(st, socket, session, &req.room_id).await;
    Ok(to_value(SubscribeAck {
        success: true,
        room: RoomInfo {
            id: room.id,
            name: room.name,
            status: room.status,
        },
    }))
}

async fn unsubscribe<A: Adapter>(
    st: &AppState,
    socket: &SocketRef<A>,
    session: &Session,
    req: RoomRef,
) -> Result<Value, ClientError> {
    check_namespace_room(session, &req.room_id)?;
    sockets::unsubscribe_socket(st, socket, &session.user.id, &req.room_id).await;
    Ok(to_value(ok_data(req)))
}

async fn get_online(st: &AppState, session: &Session, req: RoomRef) -> Result<Value, ClientError> {
    check_namespace_room(session, &req.room_id)?;
    authorize_room(st, &req.room_id, &session.user.id).await?;
    let users = st.presence.online(&req.room_id).await.map_err(|e| {
        tracing::error!(error = %e, "presence unavailable");
        ClientError::invalid("The server could not process the event")
    })?;
    Ok(to_value(PresenceListAck {
        success: true,
        count: users.len() as u32,
        room_id: req.room_id,
        users,
    }))
}

async fn answer(st: &AppState, session: &Session, req: AnswerSubmit) -> Result<Value, ClientError> {
    let received_ms = unix_now_ms();
    let question = st
        .store
        .get_question(&req.question_id)
        .await?
        .ok_or_else(|| ClientError::invalid(format!("Unknown question: {}", req.question_id)))?;
    check_namespace_room(session, &question.room_id)?;
    let Some(start_ms) = question.start_time_ms else {
        return Err(ClientError::invalid(format!(
            "Question {} is not published",
            question.id
        )));
    };
    let participant = st
        .store
        .find_participant(&question.room_id, &session.user.id)
        .await?
        .ok_or_else(|| {
            ClientError::new(
                ErrorCode::PermissionDenied,
                "Only participants of the room may answer",
            )
            .room(&question.room_id)
        })?;
    if received_ms - start_ms > i64::from(question.time_limit) * 1000 {
        return Err(ClientError::invalid(format!(
            "Time limit of {} s exceeded",
            question.time_limit
        )));
    }
    if !question.options.contains(&req.answer) {
        return Err(ClientError::invalid("The answer is not one of the options"));
    }
    let outcome = st
        .store
        .record_answer(
            &question.id,
            &session.user.id,
            &participant.id,
            &req.answer,
            received_ms,
        )
        .await?;
    let result = AnswerResult {
        question_id: question.id.clone(),
        participant_id: participant.id.clone(),
        user: AnswerUser {
            id: session.user.id.clone(),
            name: session.user.name.clone(),
        },
        correct: outcome.correct,
        response_time: outcome.response_time_secs,
        rank: outcome.rank,
        room_id: question.room_id.clone(),
        timestamp: protocol::timestamp::now(),
        event_id: Some(st.event_id()),
    };
    st.to_room(&question.room_id, ev::QUIZ_ANSWER_RESULT, &result)
        .await;
    Ok(to_value(AnswerAck {
        success: true,
        correct: outcome.correct,
        response_time: outcome.response_time_secs,
        rank: outcome.rank,
    }))
}

async fn mark_read(st: &AppState, session: &Session, req: MarkRead) -> Result<Value, ClientError> {
    let n = st
        .store
        .mark_notification_read(&req.notification_id, &session.user.id)
        .await?;
    Ok(to_value(ok_data(MarkReadData {
        notification_id: n.id,
        read: true,
    })))
}
