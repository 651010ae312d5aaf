//! The metric names of a run report: one place for what loadgen records
//! and what readers (`reports`, thresholds) sum by prefix. The README
//! ("Load generator") lists them for people.
//!
//! Histograms (µs): [`CONNECT`], [`CONNECT_TO_SUBSCRIBED`], [`RECONNECT`],
//! [`ack`], [`fanout`], [`http`]. Counters: [`sent`], [`received`],
//! [`error`] (`errors.<CODE>`), [`CONNECT_FAILURES`], [`disconnects`],
//! [`RECONNECTS`], [`VUS_STARTED`], [`VUS_FINISHED`], [`ARRIVALS_DROPPED`],
//! [`TOKEN_REFRESHES`], [`TOKEN_REFRESH_FAILURES`]; histogram
//! [`TOKEN_REFRESH`]. The generator's watch on itself:
//! [`GENERATOR_TIMER_LAG`], [`GENERATOR_START_LAG`], [`GENERATOR_RUN_WAIT`]
//! (histograms), [`GENERATOR_CPU_MS`] (counter).

/// Histogram: connect to the Socket.IO namespace.
pub const CONNECT: &str = "connect";
/// Histogram: from a virtual user's (intended) start to its first
/// subscription acknowledged.
pub const CONNECT_TO_SUBSCRIBED: &str = "connect_to_subscribed";
/// Histogram: a reconnection.
pub const RECONNECT: &str = "reconnect";
/// Counter: reconnections.
pub const RECONNECTS: &str = "reconnects";
/// Counter: connections that failed (an error in the error rate).
pub const CONNECT_FAILURES: &str = "connect_failures";
/// Counter: virtual users started (the base of `count < N%` thresholds).
pub const VUS_STARTED: &str = "vus_started";
/// Counter: virtual users that ran to their end.
pub const VUS_FINISHED: &str = "vus_finished";
/// Counter: access tokens renewed after `token:expired` (refreshed
/// through the target, reconnected, resubscribed).
pub const TOKEN_REFRESHES: &str = "token_refreshes";
/// Counter: `token:expired` that could not be handled (no refresh token,
/// the refresh call failed, or the reconnection with the new token did).
pub const TOKEN_REFRESH_FAILURES: &str = "token_refresh_failures";
/// Histogram: from `token:expired` to the VU reconnected with its new
/// token and resubscribed to its rooms.
pub const TOKEN_REFRESH: &str = "token_refresh";
/// Counter: arrivals of an `arrival` phase not started because the
/// scenario's `max_vus` arrival VUs were already running.
pub const ARRIVALS_DROPPED: &str = "arrivals_dropped";

/// Histogram: how late (µs) the generator's own 100 ms periodic timer
/// fires; a busy or starved generator polls its sockets late by as much.
pub const GENERATOR_TIMER_LAG: &str = "generator.timer_lag";
/// Histogram: how late (µs) the schedule's intended wake-ups fire (ramp
/// and arrival starts, phase ends).
pub const GENERATOR_START_LAG: &str = "generator.start_lag";
/// Histogram: how long (µs) the load's threads waited for a CPU while
/// ready to run, per 100 ms: a generator that shares its cores with
/// another process, or has too few, reads its sockets that much later.
pub const GENERATOR_RUN_WAIT: &str = "generator.run_wait";
/// Counter: CPU milliseconds (user + system) the generator process used.
pub const GENERATOR_CPU_MS: &str = "generator.cpu_ms";
/// Prefix of the generator's own metrics.
pub const GENERATOR: &str = "generator.";

/// Prefix of the acknowledgement latency histograms.
pub const ACK: &str = "ack.";
/// Prefix of the fan-out latency histograms.
pub const FANOUT: &str = "fanout.";
/// Prefix of the HTTP (driver action) latency histograms.
pub const HTTP: &str = "http.";
/// Prefix of the counters of messages sent.
pub const SENT: &str = "sent.";
/// Prefix of the counters of messages received.
pub const RECEIVED: &str = "received.";
/// Prefix of the error counters.
pub const ERRORS: &str = "errors.";
/// Prefix of the counters of disconnections by reason.
pub const DISCONNECTS: &str = "disconnects.";

/// Error codes loadgen counts itself (next to the protocol's codes from
/// acks and `error` events, and REST codes from driver actions).
pub mod code {
    /// An ack, a fan-out or a driver action did not come in time.
    pub const TIMEOUT: &str = "timeout";
    /// An ack did not match the step's `expect`.
    pub const EXPECT: &str = "expect";
    /// A `${var}` template could not be expanded.
    pub const TEMPLATE: &str = "template";
    /// A step needed a connection the virtual user did not have.
    pub const NOT_CONNECTED: &str = "not_connected";
    /// A frame that does not parse.
    pub const INVALID_FRAME: &str = "invalid_frame";
    /// A `save` pointer that is absent from the answer.
    pub const SAVE: &str = "save";
    /// A fan-out payload without a usable `sentAtUs` stamp.
    pub const STAMP: &str = "stamp";
    /// A virtual user's task panicked.
    pub const VU_PANIC: &str = "vu_panic";
    /// A driver action missing from the target profile.
    pub const MISSING_ACTION: &str = "missing_action";
    /// A driver action whose request never got an answer (refused,
    /// reset, TLS...).
    pub const HTTP_TRANSPORT: &str = "http_transport";
    /// An `error` event without a `code`.
    pub const UNKNOWN: &str = "unknown";

    /// Every code above.
    pub const ALL: [&str; 11] = [
        TIMEOUT,
        EXPECT,
        TEMPLATE,
        NOT_CONNECTED,
        INVALID_FRAME,
        SAVE,
        STAMP,
        VU_PANIC,
        MISSING_ACTION,
        HTTP_TRANSPORT,
        UNKNOWN,
    ];
}

/// The reasons of the `disconnects.<reason>` counters.
pub const DISCONNECT_REASONS: [&str; 6] = [
    "server",
    "client",
    "transport_close",
    "ping_timeout",
    "transport_error",
    "unknown",
];

/// The run-wide error aggregate a threshold may limit (`errors.count`,
/// `errors.rate`): every `errors.<CODE>` counter plus
/// [`CONNECT_FAILURES`], as in the error rate.
pub const ERRORS_TOTAL: &str = "errors";

/// `ack.<event>`.
pub fn ack(event: &str) -> String {
    format!("{ACK}{event}")
}

/// `fanout.<event>`.
pub fn fanout(event: &str) -> String {
    format!("{FANOUT}{event}")
}

/// `http.<action>`.
pub fn http(action: &str) -> String {
    format!("{HTTP}{action}")
}

/// `sent.<event>`.
pub fn sent(event: &str) -> String {
    format!("{SENT}{event}")
}

/// `received.<event>`.
pub fn received(event: &str) -> String {
    format!("{RECEIVED}{event}")
}

/// `errors.<code>`.
pub fn error(code: &str) -> String {
    format!("{ERRORS}{code}")
}

/// `errors.http_<status>`: an HTTP answer with an unexpected status and
/// no REST error code.
pub fn http_status_error(status: u16) -> String {
    format!("{ERRORS}http_{status}")
}

/// `disconnects.<reason>`.
pub fn disconnects(reason: &str) -> String {
    format!("{DISCONNECTS}{reason}")
}

/// `[KEY=VALUE]NAME`: the copy of metric NAME recorded by the virtual
/// users of groups tagged KEY = VALUE. A prefix no other name starts
/// with, so the run-wide sums by prefix (`errors.`, `sent.`, ...) never
/// count a tagged copy twice.
pub fn tagged(key: &str, value: &str, name: &str) -> String {
    format!("{}{name}", tag_prefix(key, value))
}

/// `[KEY=VALUE]`, the prefix of [`tagged`] names.
pub fn tag_prefix(key: &str, value: &str) -> String {
    format!("[{key}={value}]")
}

/// A [`tagged`] name's prefix (`[KEY=VALUE]`) and untagged name.
pub fn split_tag(name: &str) -> Option<(&str, &str)> {
    let rest = name.strip_prefix('[')?;
    let close = rest.find(']')?;
    rest[..close]
        .contains('=')
        .then(|| (&name[..close + 2], &rest[close + 1..]))
}

/// The code of an `errors.<code>` counter name.
pub fn error_code(name: &str) -> Option<&str> {
    name.strip_prefix(ERRORS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_names_split_back() {
        let n = tagged("region", "eu", &ack("quiz:answer_submit"));
        assert_eq!(n, "[region=eu]ack.quiz:answer_submit");
        assert_eq!(
            split_tag(&n),
            Some(("[region=eu]", "ack.quiz:answer_submit"))
        );
        assert_eq!(split_tag("ack.x"), None);
        assert_eq!(split_tag("[x]y"), None);
        assert!(!n.starts_with(ACK) && error_code(&tagged("a", "b", &error("x"))).is_none());
    }

    #[test]
    fn names_read_as_documented() {
        assert_eq!(ack("quiz:answer_submit"), "ack.quiz:answer_submit");
        assert_eq!(fanout("bench:tick"), "fanout.bench:tick");
        assert_eq!(http("create_room"), "http.create_room");
        assert_eq!(sent("x"), "sent.x");
        assert_eq!(received("x"), "received.x");
        assert_eq!(error(code::TIMEOUT), "errors.timeout");
        assert_eq!(error("RATE_LIMIT_EXCEEDED"), "errors.RATE_LIMIT_EXCEEDED");
        assert_eq!(http_status_error(503), "errors.http_503");
        assert_eq!(disconnects("server"), "disconnects.server");
        assert_eq!(error_code("errors.timeout"), Some("timeout"));
        assert_eq!(error_code("connect_failures"), None);
    }
}
