//! What a case works with: the driver (domain changes on the target),
//! Socket.IO connections with a wire transcript, and checks that turn what
//! was observed into a verdict. Every wait is bounded by `--timeout` and a
//! timeout fails the case: nothing passes without being observed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use driver::handshake::Handshake;
use driver::identity::{Identity, IdentityMode};
use driver::{Action, DriverError};
use protocol::validate::{ValidateError, Violation};
use protocol::{ErrorCode, Role, RoomStatus, Visibility};
use serde_json::{Value, json};
use sioclient::{ClientConfig, ConnectError, Direction, Frame, Socket, Transport};

use crate::case::{Case, Deviation, Failure, Source, WireLine};
use crate::profile::{Profile, Vars};

/// The runner-wide settings every case sees.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL, e.g. `http://127.0.0.1:3000`.
    pub target: String,
    pub profile: Arc<Profile>,
    pub base_vars: Arc<Vars>,
    /// The longest any one wait may take.
    pub wait: Duration,
    pub strict: bool,
    pub http: reqwest::Client,
    /// Print frames as they pass.
    pub trace: bool,
    /// What the run created, for the teardown at its end.
    pub created: Arc<crate::teardown::Created>,
    /// How connections are made: auth object, headers, query, transports,
    /// TLS (the profile's `[handshake]` and the flags).
    pub handshake: Arc<Handshake>,
    /// Where users and tokens come from (the profile's `[identity]`).
    pub identity: Arc<Identity>,
}

impl Settings {
    /// The driver's view of the target.
    pub fn driver(&self) -> driver::Target<'_> {
        driver::Target {
            http: &self.http,
            url: &self.target,
            profile: &self.profile,
            base_vars: &self.base_vars,
        }
    }
}

/// A user the driver created, with an access token.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub token: String,
    pub token_id: Option<String>,
    pub refresh_token: Option<String>,
}

/// A room the driver created.
#[derive(Debug, Clone)]
pub struct Room {
    pub id: String,
    pub name: String,
    /// The status the target reported (its wire form: another deployment
    /// may have other values).
    pub status: String,
}

static RUN_SEQ: AtomicU64 = AtomicU64::new(0);
/// Which static user the next case gets: they take turns.
static STATIC_SEQ: AtomicU64 = AtomicU64::new(0);
/// The lifetime static tokens stand for: the cases' default.
const STATIC_TTL: i64 = 3600;

/// One case's context.
pub struct Ctx {
    pub settings: Settings,
    case_id: &'static str,
    /// The case's declared driver actions: the only ones it may call.
    needs: &'static [Action],
    started: Instant,
    transcript: Arc<Mutex<Vec<WireLine>>>,
    secrets: Arc<Mutex<Vec<String>>>,
    conns: usize,
    /// Non-strict findings (allowed, not recommended).
    pub notes: Vec<String>,
    /// Checks resting on a reference decision that did not hold
    /// ([`Ctx::decided`]); the level of the run makes them a deviation or
    /// a failure.
    pub deviations: Vec<Deviation>,
    unique: String,
    /// (token, user id) of the users this case made: `${userId}` of the
    /// handshake's auth template when a case connects with that token.
    token_users: Vec<(String, String)>,
}

impl Ctx {
    pub fn new(settings: Settings, case: &Case) -> Ctx {
        Ctx::with(settings, case.id, case.needs)
    }

    fn with(settings: Settings, case_id: &'static str, needs: &'static [Action]) -> Ctx {
        let seq = RUN_SEQ.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let secrets: Vec<String> = settings
            .base_vars
            .iter()
            .filter(|(k, _)| is_secret_name(k))
            .filter_map(|(_, v)| v.as_str().map(str::to_owned))
            .filter(|s| !s.is_empty())
            .collect();
        Ctx {
            settings,
            case_id,
            needs,
            started: Instant::now(),
            transcript: Arc::default(),
            secrets: Arc::new(Mutex::new(secrets)),
            conns: 0,
            notes: Vec::new(),
            deviations: Vec::new(),
            unique: format!("{:x}{seq:x}", nanos % 0x00ff_ffff),
            token_users: Vec::new(),
        }
    }

    pub fn case_id(&self) -> &str {
        self.case_id
    }

    /// A context of the same case with its own transcript, for driver
    /// calls made concurrently with the case's own.
    pub fn fork(&self) -> Ctx {
        Ctx::with(self.settings.clone(), self.case_id, self.needs)
    }

    /// A name unique to this run and case, from `[a-z0-9_]`.
    pub fn unique(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.unique)
    }

    pub fn wait(&self) -> Duration {
        self.settings.wait
    }

    /// The Socket.IO frames received so far on the case's connections,
    /// one packet each (secrets redacted).
    pub fn received_frames(&self) -> Vec<String> {
        let lines = self.transcript.lock().expect("transcript lock");
        lines
            .iter()
            .filter(|l| l.dir == "<" && l.conn != "http")
            .flat_map(|l| l.text.split('\x1e').map(str::to_owned))
            .collect()
    }

    /// The transcript so far, secrets redacted.
    pub fn take_transcript(&self) -> Vec<WireLine> {
        std::mem::take(&mut *self.transcript.lock().expect("transcript lock"))
    }

    /// Replaces every known secret in `text` with `***`.
    pub fn redact(&self, text: &str) -> String {
        redact_with(&self.secrets.lock().expect("secrets lock"), text)
    }

    fn add_secret(&self, s: &str) {
        if s.len() >= 4 {
            self.secrets
                .lock()
                .expect("secrets lock")
                .push(s.to_owned());
        }
    }

    fn record(&self, conn: &str, dir: &'static str, text: &str) {
        let line = WireLine {
            at_ms: self.started.elapsed().as_millis() as u64,
            conn: conn.to_owned(),
            dir,
            text: self.redact(text),
        };
        if self.settings.trace {
            eprintln!(
                "[{} +{:>5}ms] {} {} {}",
                self.case_id, line.at_ms, line.conn, line.dir, line.text
            );
        }
        self.transcript.lock().expect("transcript lock").push(line);
    }

    // -----------------------------------------------------------------
    // Driver
    // -----------------------------------------------------------------

    /// Runs a driver action through [`driver::perform`] (every step),
    /// recording each request and answer in the transcript and collecting
    /// the secrets of the answers. Returns the status, the JSON body (of the
    /// last step, or of the step that failed) and, when every step answered
    /// as expected, the variables the steps extracted.
    ///
    /// An action missing from the case's `needs` is refused: the runner
    /// would otherwise skip the case on a target without it only after
    /// half running it, or never notice that the list is wrong.
    async fn exchange(
        &mut self,
        action: Action,
        vars: Vars,
    ) -> Result<(u16, Value, Option<Vars>), Failure> {
        if !self.needs.contains(&action) {
            return Err(Failure::Error(format!(
                "runner bug: case {} calls driver action `{action}`, which its needs do not list",
                self.case_id
            )));
        }
        let settings = self.settings.clone();
        let result = driver::perform(
            settings.driver(),
            action.as_str(),
            &vars,
            settings.wait,
            &mut |seen| match seen {
                driver::Observed::Request(req) => self.record("http", ">", &req.summary()),
                driver::Observed::Response { status, body } => {
                    // Tokens the target hands out are secrets from now on.
                    collect_secrets(body, &mut |s| self.add_secret(s));
                    self.record("http", "<", &format!("{status} {body}"));
                }
            },
        )
        .await;
        let (status, value, extracted) = match result {
            Ok((status, value, extracted)) => (status, value, Some(extracted)),
            Err(DriverError::Status { status, body, .. }) => (status, body, None),
            Err(e) => return Err(self.failure(e)),
        };
        Ok((status, value, extracted))
    }

    /// A driver failure other than an unexpected status: a missing action
    /// skips the case, anything else is set-up trouble (`error`).
    fn failure(&self, e: DriverError) -> Failure {
        match e {
            DriverError::MissingAction(_) => Failure::Skip(e.to_string()),
            DriverError::Timeout { action, .. } => Failure::Error(format!(
                "driver action `{action}`: no answer within {:?}",
                self.settings.wait
            )),
            DriverError::Template { .. }
            | DriverError::Transport { .. }
            | DriverError::Status { .. } => Failure::Error(e.to_string()),
        }
    }

    /// Runs a driver action and returns its status and JSON body, whatever
    /// the status. A missing action skips the case.
    pub async fn act_raw(&mut self, action: Action, vars: Vars) -> Result<(u16, Value), Failure> {
        let (status, body, _) = self.exchange(action, vars).await?;
        Ok((status, body))
    }

    /// Runs a driver action that must succeed; returns the extracted
    /// variables. A failure is set-up trouble (`error`), not a verdict.
    pub async fn act(&mut self, action: Action, vars: Vars) -> Result<Vars, Failure> {
        let (status, body, extracted) = self.exchange(action, vars.clone()).await?;
        let Some(mut extracted) = extracted else {
            return Err(Failure::Error(format!(
                "driver action `{action}` answered {status}: {}",
                self.redact(&body.to_string())
            )));
        };
        let profile = self.settings.profile.clone();
        let template = profile.action(action).ok_or_else(|| {
            Failure::Skip(DriverError::MissingAction(action.to_string()).to_string())
        })?;
        let mut out = Vars::new();
        for name in template.outputs() {
            let v = extracted.remove(name).ok_or_else(|| {
                Failure::Error(format!(
                    "driver action `{action}`: the answer has no `{name}` where the profile's extract says"
                ))
            })?;
            if is_secret_name(name)
                && let Some(s) = v.as_str()
            {
                self.add_secret(s);
            }
            out.insert(name.to_owned(), v);
        }
        self.settings.created.note(action, &vars, &out);
        Ok(out)
    }

    /// A user with an access token valid for `ttl_secs` (negative: expired
    /// that long ago), from the profile's identity: minted by the driver
    /// (`create_user`, `mint_token`), signed here (a user from
    /// `create_user` or the static list), or a static user's ready-made
    /// token; a lifetime static tokens cannot give skips the case.
    pub async fn user_with_ttl(&mut self, label: &str, ttl_secs: i64) -> Result<User, Failure> {
        let identity = self.settings.identity.clone();
        let user = match identity.mode {
            IdentityMode::Mint => self.minted_user(label, ttl_secs).await?,
            IdentityMode::Sign => {
                let (id, name) = if identity.creates_users() {
                    self.created_user(label).await?
                } else {
                    let known = self.static_user()?;
                    (known.id, known.name)
                };
                let (token, jti) = identity
                    .sign(&id, ttl_secs)
                    .map_err(|e| Failure::Error(e.to_string()))?;
                let refresh_token = identity
                    .sign_refresh(&id)
                    .transpose()
                    .map_err(|e| Failure::Error(e.to_string()))?;
                if let Some(t) = &refresh_token {
                    self.add_secret(t);
                }
                User {
                    id,
                    name,
                    token,
                    token_id: Some(jti),
                    refresh_token,
                }
            }
            IdentityMode::Static => {
                let (known, token) = if ttl_secs < 0 {
                    identity
                        .users
                        .iter()
                        .find_map(|u| Some((u.clone(), u.expired_token.clone()?)))
                        .ok_or_else(|| {
                            Failure::Skip(
                                "needs an expired token: no static user of the profile has an expired_token"
                                    .into(),
                            )
                        })?
                } else if ttl_secs >= STATIC_TTL {
                    let known = self.static_user()?;
                    let token = known.token.clone().unwrap_or_default();
                    (known, token)
                } else {
                    return Err(Failure::Skip(format!(
                        "needs a token that lives {ttl_secs} s: static identities have fixed tokens"
                    )));
                };
                User {
                    id: known.id,
                    name: known.name,
                    token,
                    token_id: None,
                    refresh_token: None,
                }
            }
        };
        self.add_secret(&user.token);
        self.token_users.push((user.token.clone(), user.id.clone()));
        Ok(user)
    }

    /// A static user's revoked token, when the identity is `static` (the
    /// case then needs no `revoke_token` action); `None` otherwise.
    pub fn static_revoked_token(&mut self) -> Option<String> {
        if self.settings.identity.mode != IdentityMode::Static {
            return None;
        }
        let token = self
            .settings
            .identity
            .users
            .iter()
            .find_map(|u| u.revoked_token.clone())?;
        self.add_secret(&token);
        Some(token)
    }

    /// The next static user (they take turns across cases).
    fn static_user(&self) -> Result<driver::identity::Known, Failure> {
        let n = STATIC_SEQ.fetch_add(1, Ordering::Relaxed);
        self.settings
            .identity
            .user(n)
            .cloned()
            .ok_or_else(|| Failure::Skip("needs a user: the profile's identity lists none".into()))
    }

    /// A user made by the driver's `create_user`: id and name.
    async fn created_user(&mut self, label: &str) -> Result<(String, String), Failure> {
        let name = format!("{label} {}", self.unique);
        let created = self
            .act(Action::CreateUser, vars(&[("name", json!(name))]))
            .await?;
        let user_id = str_var(&created, "userId")?;
        // The target's choice of display name, where the profile reads it.
        let name = match created.get("userName") {
            Some(_) => str_var(&created, "userName")?,
            None => name,
        };
        Ok((user_id, name))
    }

    /// `create_user` then `mint_token`.
    async fn minted_user(&mut self, label: &str, ttl_secs: i64) -> Result<User, Failure> {
        let (user_id, name) = self.created_user(label).await?;
        let minted = self
            .act(
                Action::MintToken,
                vars(&[("userId", json!(user_id)), ("ttlSeconds", json!(ttl_secs))]),
            )
            .await?;
        Ok(User {
            id: user_id,
            name,
            token: str_var(&minted, "token")?,
            token_id: minted
                .get("tokenId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            refresh_token: minted
                .get("refreshToken")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    pub async fn user(&mut self, label: &str) -> Result<User, Failure> {
        self.user_with_ttl(label, 3600).await
    }

    /// A new room.
    pub async fn room(&mut self, visibility: Visibility) -> Result<Room, Failure> {
        let name = format!("Room {}", self.unique);
        let out = self
            .act(
                Action::CreateRoom,
                vars(&[("name", json!(name)), ("visibility", json!(visibility))]),
            )
            .await?;
        Ok(Room {
            id: str_var(&out, "roomId")?,
            name: out
                .get("roomName")
                .and_then(Value::as_str)
                .unwrap_or(&name)
                .to_owned(),
            status: out
                .get("roomStatus")
                .and_then(Value::as_str)
                .unwrap_or(RoomStatus::Active.as_str())
                .to_owned(),
        })
    }

    /// Adds a user to a room; returns the participant id.
    pub async fn join(&mut self, room: &Room, user: &User, role: Role) -> Result<String, Failure> {
        let out = self
            .act(
                Action::AddParticipant,
                vars(&[
                    ("roomId", json!(room.id)),
                    ("userId", json!(user.id)),
                    ("role", json!(role)),
                ]),
            )
            .await?;
        str_var(&out, "participantId")
    }

    // -----------------------------------------------------------------
    // Connections
    // -----------------------------------------------------------------

    /// A client config for `ns` with `auth` and a frame tap into the
    /// transcript, shaped by the run's handshake (headers, query, TLS).
    /// A case means `{token}` when it passes one; the handshake's `auth`
    /// template says what the target wants instead (any other `auth` is
    /// sent as the case wrote it). A transport the target does not offer
    /// skips the case.
    pub fn client_config(
        &mut self,
        auth: Option<Value>,
        ns: &str,
        transport: Transport,
    ) -> Result<ClientConfig, Failure> {
        if let Some(missing) = self.settings.handshake.excluded(transport) {
            return Err(Failure::Skip(format!(
                "needs transport {missing}, which the handshake's transports exclude"
            )));
        }
        let auth = match auth {
            Some(Value::Object(m))
                if m.len() == 1 && m.get("token").is_some_and(Value::is_string) =>
            {
                let mut vars = vars(&[("token", m["token"].clone())]);
                if let Some((_, id)) = self
                    .token_users
                    .iter()
                    .find(|(t, _)| Some(t.as_str()) == m["token"].as_str())
                {
                    vars.insert("userId".to_owned(), json!(id));
                }
                let shaped = self
                    .settings
                    .handshake
                    .auth(&vars, &self.settings.base_vars)
                    .map_err(|e| Failure::Error(format!("handshake auth: {e}")))?;
                Some(shaped)
            }
            other => other,
        };
        self.conns += 1;
        let label = format!("c{}", self.conns);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Frame>();
        let transcript = self.transcript.clone();
        let secrets = self.secrets.clone();
        let started = self.started;
        let trace = self.settings.trace.then_some(self.case_id);
        tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                let text = redact_with(&secrets.lock().expect("secrets lock"), &frame.text);
                let line = WireLine {
                    at_ms: started.elapsed().as_millis() as u64,
                    conn: label.clone(),
                    dir: match frame.direction {
                        Direction::Sent => ">",
                        Direction::Received => "<",
                    },
                    text,
                };
                if let Some(case) = &trace {
                    eprintln!(
                        "[{case} +{:>5}ms] {} {} {}",
                        line.at_ms, line.conn, line.dir, line.text
                    );
                }
                transcript.lock().expect("transcript lock").push(line);
            }
        });
        let mut config = self.settings.handshake.apply(
            ClientConfig::new(self.settings.target.clone())
                .with_path(self.settings.profile.target.socket_path.clone())
                .with_namespace(ns)
                .with_transport(transport)
                .with_connect_timeout(self.settings.wait)
                .with_frame_tap(tx),
        );
        if let Some(auth) = auth {
            config = config.with_auth(auth);
        }
        Ok(config)
    }

    /// Connects with `token` to `ns` over WebSocket; a refusal fails the case.
    pub async fn connect(&mut self, token: &str, ns: &str) -> Result<Socket, Failure> {
        self.connect_over(token, ns, Transport::WebSocket).await
    }

    pub async fn connect_over(
        &mut self,
        token: &str,
        ns: &str,
        transport: Transport,
    ) -> Result<Socket, Failure> {
        self.add_secret(token);
        let config = self.client_config(Some(json!({ "token": token })), ns, transport)?;
        match sioclient::connect(config).await {
            Ok(s) => Ok(s),
            Err(ConnectError::Rejected { message, .. }) => Err(Failure::fail(
                format!("connection to {ns} accepted"),
                format!("connect_error: {message}"),
            )),
            Err(ConnectError::Timeout) => Err(Failure::fail(
                format!("connection to {ns} within {:?}", self.settings.wait),
                "no CONNECT".to_owned(),
            )),
            // The target answered its handshake at the start of the run,
            // so a transport that breaks now is the target's failure.
            Err(e) => Err(Failure::fail(
                format!("connection to {ns} over {transport:?}"),
                format!("{e}"),
            )),
        }
    }

    /// Connects expecting a refusal; returns the `connect_error` message.
    pub async fn connect_refused(
        &mut self,
        auth: Option<Value>,
        ns: &str,
    ) -> Result<String, Failure> {
        self.connect_refused_over(auth, ns, Transport::WebSocket)
            .await
    }

    pub async fn connect_refused_over(
        &mut self,
        auth: Option<Value>,
        ns: &str,
        transport: Transport,
    ) -> Result<String, Failure> {
        Ok(self.connect_refusal(auth, ns, transport).await?.0)
    }

    /// Connects expecting a refusal; returns the `connect_error` message
    /// and its `data` (`Null` when the server sent none).
    pub async fn connect_refusal(
        &mut self,
        auth: Option<Value>,
        ns: &str,
        transport: Transport,
    ) -> Result<(String, Value), Failure> {
        let config = self.client_config(auth, ns, transport)?;
        match sioclient::connect(config).await {
            Err(ConnectError::Rejected { message, data }) => {
                Ok((message, data.unwrap_or(Value::Null)))
            }
            Ok(s) => {
                s.disconnect().await;
                Err(Failure::fail(
                    format!("connect_error on {ns}"),
                    "the connection was accepted".to_owned(),
                ))
            }
            Err(ConnectError::Timeout) => Err(Failure::fail(
                format!("connect_error on {ns} within {:?}", self.settings.wait),
                "no answer".to_owned(),
            )),
            Err(e) => Err(Failure::fail(
                format!("connect_error on {ns} over {transport:?}"),
                format!("{e}"),
            )),
        }
    }

    /// Emits with an ack and returns the ack's first argument.
    pub async fn ack(
        &mut self,
        socket: &Socket,
        event: &str,
        payload: Value,
    ) -> Result<Value, Failure> {
        match socket
            .emit_with_ack(event, payload, self.settings.wait)
            .await
        {
            Ok(args) => Ok(args.into_iter().next().unwrap_or(Value::Null)),
            Err(e) => Err(Failure::fail(
                format!("an ack to {event} within {:?}", self.settings.wait),
                format!("{e}"),
            )),
        }
    }

    /// Waits for `event`; returns all its arguments. A timeout fails.
    pub async fn expect_args(
        &mut self,
        socket: &mut Socket,
        event: &str,
    ) -> Result<Vec<Value>, Failure> {
        match socket.wait_for(event, self.settings.wait).await {
            Ok(ev) => Ok(ev.args),
            Err(e) => Err(Failure::fail(
                format!("event `{event}` within {:?}", self.settings.wait),
                format!("{e}"),
            )),
        }
    }

    /// Waits for `event`; returns its first argument.
    pub async fn expect_event(
        &mut self,
        socket: &mut Socket,
        event: &str,
    ) -> Result<Value, Failure> {
        Ok(self
            .expect_args(socket, event)
            .await?
            .into_iter()
            .next()
            .unwrap_or(Value::Null))
    }

    /// Fails if `event` arrives within `within`.
    pub async fn expect_no_event(
        &mut self,
        socket: &mut Socket,
        event: &str,
        within: Duration,
    ) -> Result<(), Failure> {
        match socket.wait_for(event, within).await {
            Ok(ev) => Err(Failure::fail(
                format!("no `{event}` within {within:?}"),
                format!("`{event}` {}", Value::Array(ev.args)),
            )),
            Err(_) => Ok(()),
        }
    }

    /// Subscribes on `/`-style sockets and returns the ack.
    pub async fn subscribe(&mut self, socket: &Socket, room_id: &str) -> Result<Value, Failure> {
        let ack = self
            .ack(
                socket,
                protocol::event::ROOM_SUBSCRIBE,
                json!({ "roomId": room_id }),
            )
            .await?;
        if ack.get("success") != Some(&json!(true)) {
            return Err(Failure::fail(
                "room:subscribe ack with success: true",
                ack.to_string(),
            ));
        }
        Ok(ack)
    }

    // -----------------------------------------------------------------
    // Checks
    // -----------------------------------------------------------------

    /// Checks a server event's payload against the catalog schema, its
    /// timestamp against the 5-minute rule, and notes extra fields.
    pub fn check_payload(&mut self, event: &str, payload: &Value) -> Result<(), Failure> {
        self.check_schema(
            &format!("`{event}` payload"),
            (event, false),
            payload,
            |v| protocol::validate::payload_errors(event, v),
            |v| protocol::validate::payload_extra_fields(event, v),
        )?;
        if let Some(ts) = payload.get("timestamp") {
            let ok = ts.as_str().is_some_and(|s| {
                protocol::timestamp::is_recent(
                    s,
                    SystemTime::now(),
                    protocol::limits::TIMESTAMP_MAX_SKEW,
                )
            });
            if !ok {
                return Err(Failure::fail(
                    format!("`{event}` timestamp: ISO-8601 UTC within 5 minutes of now"),
                    ts.to_string(),
                ));
            }
        }
        Ok(())
    }

    /// Checks an ack against the event's ack schema (success or failure).
    pub fn check_ack(&mut self, event: &str, ack: &Value) -> Result<(), Failure> {
        self.check_schema(
            &format!("`{event}` ack"),
            (event, true),
            ack,
            |v| protocol::validate::ack_errors(event, v),
            |v| protocol::validate::ack_extra_fields(event, v),
        )
    }

    /// Checks a failed ack: `{success: false, error: {code, message}}`.
    pub fn check_error_ack(
        &mut self,
        event: &str,
        ack: &Value,
        code: ErrorCode,
    ) -> Result<(), Failure> {
        self.check_ack(event, ack)?;
        let actual = ack.pointer("/error/code").cloned().unwrap_or(Value::Null);
        if ack.get("success") != Some(&json!(false)) || actual != json!(code.as_str()) {
            return Err(Failure::fail(
                format!("{{success: false, error: {{code: {code}, message}}}}"),
                ack.to_string(),
            ));
        }
        Ok(())
    }

    /// Checks an `error` event with `code`.
    pub fn check_error_event(&mut self, payload: &Value, code: ErrorCode) -> Result<(), Failure> {
        self.check_payload(protocol::event::ERROR, payload)?;
        self.expect_eq("error.code", &json!(code.as_str()), &payload["code"])
    }

    /// A failure for schema errors; otherwise the extra fields as notes.
    /// A field the schema requires only by a decision ([`DECIDED_FIELDS`])
    /// is a deviation when it is all that is wrong: the value is validated
    /// again with those fields filled in. An event outside the catalog is
    /// the runner's error.
    fn check_schema(
        &mut self,
        what: &str,
        (event, in_ack): (&str, bool),
        value: &Value,
        errors: impl Fn(&Value) -> Result<Vec<Violation>, ValidateError>,
        extra: impl FnOnce(&Value) -> Result<Vec<String>, ValidateError>,
    ) -> Result<(), Failure> {
        let runner = |e: ValidateError| Failure::Error(e.to_string());
        let found = errors(value).map_err(runner)?;
        let mut checked = std::borrow::Cow::Borrowed(value);
        if !found.is_empty() {
            let mut filled = value.clone();
            let mut missing = Vec::new();
            for d in DECIDED_FIELDS {
                if let Some(obj) = filled.as_object_mut()
                    && d.event == event
                    && d.in_ack == in_ack
                    && !obj.contains_key(d.field)
                {
                    obj.insert(d.field.to_owned(), (d.stand_in)());
                    missing.push((d.field, d.decision));
                }
            }
            if missing.is_empty() || !errors(&filled).map_err(runner)?.is_empty() {
                return Err(Failure::Fail {
                    expected: format!("{what} valid against the protocol schema"),
                    actual: value.to_string(),
                    schema_errors: found.iter().map(Violation::to_string).collect(),
                    source: Source::Spec(""),
                });
            }
            for (field, decision) in missing {
                self.decided(
                    decision,
                    Err(Failure::fail(
                        format!("{what} with `{field}`"),
                        value.to_string(),
                    )),
                )?;
            }
            checked = std::borrow::Cow::Owned(filled);
        }
        for field in extra(&checked).map_err(runner)? {
            self.notes.push(format!("{what}: extra field {field}"));
        }
        Ok(())
    }

    /// A check resting on `decision` (`N9`): when it failed, records the
    /// deviation and lets the case go on (the run's level decides whether
    /// it fails the case); skips and errors pass through.
    pub fn decided(
        &mut self,
        decision: &'static str,
        check: Result<(), Failure>,
    ) -> Result<(), Failure> {
        match check.map_err(|f| f.per(decision)) {
            Err(Failure::Fail {
                expected,
                actual,
                source: Source::Decision(decision),
                ..
            }) => {
                // A check repeated in a loop is reported once.
                let seen = self
                    .deviations
                    .iter()
                    .any(|d| d.decision == decision && d.expected == expected);
                if !seen {
                    self.deviations.push(Deviation {
                        decision: decision.to_owned(),
                        expected,
                        actual,
                    });
                }
                Ok(())
            }
            other => other,
        }
    }

    /// Equality check with expected vs actual.
    pub fn expect_eq(&self, what: &str, expected: &Value, actual: &Value) -> Result<(), Failure> {
        if expected == actual {
            Ok(())
        } else {
            Err(Failure::fail(
                format!("{what} = {expected}"),
                format!("{what} = {actual}"),
            ))
        }
    }

    /// A check with free-form expected/actual.
    pub fn ensure(
        &self,
        ok: bool,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Result<(), Failure> {
        if ok {
            Ok(())
        } else {
            Err(Failure::fail(expected, actual))
        }
    }
}

/// A field the catalog's schema requires where only a decision puts it
/// (the protocol's own example lacks it).
struct DecidedField {
    event: &'static str,
    /// In the event's ack (else its payload).
    in_ack: bool,
    field: &'static str,
    /// A valid value, to validate the rest with.
    stand_in: fn() -> Value,
    decision: &'static str,
}

const DECIDED_FIELDS: &[DecidedField] = &[
    // The section's ack shows `{roomId, users, count}`; N2 adds `success`.
    DecidedField {
        event: protocol::event::PRESENCE_GET_ONLINE,
        in_ack: true,
        field: "success",
        stand_in: || Value::Bool(true),
        decision: "N2",
    },
    // The section shows no room id; N3 adds it.
    DecidedField {
        event: protocol::event::QUIZ_QUESTION_PUBLISHED,
        in_ack: false,
        field: "roomId",
        stand_in: || Value::String(String::new()),
        decision: "N3",
    },
];

/// Builds case variables from pairs.
pub fn vars(pairs: &[(&str, Value)]) -> Vars {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn str_var(vars: &Vars, name: &str) -> Result<String, Failure> {
    vars.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Failure::Error(format!("driver gave no string `{name}`")))
}

fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("token") || n.contains("secret") || n.contains("password")
}

fn collect_secrets(v: &Value, add: &mut impl FnMut(&str)) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) if is_secret_name(k) => add(s),
                    _ => collect_secrets(x, add),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_secrets(x, add)),
        _ => {}
    }
}

fn redact_with(secrets: &[String], text: &str) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    mask_jwts(&out)
}

/// Replaces every JWT-shaped run (`eyJ…` base64url, `.`, base64url, `.`,
/// base64url) with `***`: a token the runner has not been told about (one
/// a target sends unasked, or one that reaches a transcript before the
/// answer that hands it out is read) never reaches an output either.
fn mask_jwts(text: &str) -> String {
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(found) = text[i..].find("eyJ") {
        let start = i + found;
        // Three base64url segments separated by two dots.
        let mut end = start;
        let mut dots = 0;
        while end < bytes.len() && (b64(bytes[end]) || (bytes[end] == b'.' && dots < 2)) {
            dots += usize::from(bytes[end] == b'.');
            end += 1;
        }
        out.push_str(&text[i..start]);
        if dots == 2 {
            out.push_str("***");
        } else {
            out.push_str(&text[start..end]);
        }
        i = end;
    }
    out.push_str(&text[i..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A case that calls an action its needs do not list is a runner bug:
    /// the call is refused before any request, whatever the profile has.
    #[tokio::test]
    async fn an_action_outside_the_needs_is_refused() {
        static CASE: Case = Case {
            id: "test.needs",
            description: "d",
            requirement: "r",
            needs: &[Action::CreateUser],
            run: |_| Box::pin(async { Ok(()) }),
        };
        let mut cx = offline_ctx(&CASE);
        let refused = cx.act(Action::DeleteRoom, Vars::new()).await.unwrap_err();
        assert!(
            matches!(&refused, Failure::Error(m) if m.contains("runner bug") && m.contains("delete_room")),
            "{refused:?}"
        );
        assert!(cx.take_transcript().is_empty(), "no request was sent");
        // A listed action goes to the target (here: unreachable, an error
        // of another kind).
        let sent = cx
            .act(Action::CreateUser, vars(&[("name", json!("n"))]))
            .await;
        assert!(
            matches!(&sent, Err(Failure::Error(m)) if !m.contains("runner bug")),
            "{sent:?}"
        );
        assert!(!cx.fork().needs.contains(&Action::DeleteRoom));
    }

    /// A context of `case` whose target does not exist.
    fn offline_ctx(case: &'static Case) -> Ctx {
        let profile = Profile::reference();
        let settings = Settings {
            // Nothing listens there: a request would fail differently.
            target: "http://127.0.0.1:9".into(),
            base_vars: Arc::new(profile.base_vars().unwrap()),
            profile: Arc::new(profile),
            wait: Duration::from_secs(1),
            strict: false,
            http: reqwest::Client::new(),
            trace: false,
            created: Arc::default(),
            handshake: Arc::default(),
            identity: Arc::default(),
        };
        Ctx::new(settings, case)
    }

    /// A field only a decision requires is a deviation, not a schema
    /// failure; anything else wrong still fails, as the text's.
    #[test]
    fn decided_fields_deviate_and_the_rest_fails() {
        static CASE: Case = Case {
            id: "test.levels",
            description: "d",
            requirement: "r",
            needs: &[],
            run: |_| Box::pin(async { Ok(()) }),
        };
        let mut cx = offline_ctx(&CASE);
        let ev = protocol::event::PRESENCE_GET_ONLINE;
        let text_shape = json!({"roomId": "r", "users": [], "count": 0});
        cx.check_ack(ev, &text_shape).unwrap();
        assert_eq!(cx.deviations.len(), 1);
        assert_eq!(cx.deviations[0].decision, "N2");
        // The same again is reported once.
        cx.check_ack(ev, &text_shape).unwrap();
        assert_eq!(cx.deviations.len(), 1);
        // A wrong type is the text's failure, whatever else is missing.
        let wrong = json!({"roomId": "r", "users": [], "count": "0"});
        let failed = cx.check_ack(ev, &wrong).unwrap_err();
        assert!(
            matches!(
                failed,
                Failure::Fail {
                    source: Source::Spec(_),
                    ..
                }
            ),
            "{failed:?}"
        );
        // A tagged check that holds records nothing; skips pass through.
        cx.decided("N9", Ok(())).unwrap();
        assert!(matches!(
            cx.decided("N9", Err(Failure::Skip("s".into()))),
            Err(Failure::Skip(_))
        ));
        assert_eq!(cx.deviations.len(), 1);
    }

    #[test]
    fn jwt_shaped_runs_are_masked() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl";
        assert_eq!(
            redact_with(&[], &format!(r#"40{{"token":"{jwt}"}} eyJ only"#)),
            r#"40{"token":"***"} eyJ only"#
        );
        assert_eq!(mask_jwts("a eyJx.y b"), "a eyJx.y b");
    }

    #[test]
    fn redaction() {
        let secrets = vec!["abcd1234".to_owned()];
        assert_eq!(
            redact_with(&secrets, r#"40{"token":"abcd1234"}"#),
            r#"40{"token":"***"}"#
        );
    }
}
