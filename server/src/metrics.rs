//! Prometheus metrics: connections, events in and out by name, errors by
//! code, REST requests. Served as text at `GET /metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use protocol::{CATALOG, ErrorCode};

type Labels = Vec<(&'static str, String)>;

/// All metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    connections: Family<Labels, Gauge>,
    connects: Family<Labels, Counter>,
    events_in: Family<Labels, Counter>,
    events_out: Family<Labels, Counter>,
    errors: Family<Labels, Counter>,
    connect_errors: Family<Labels, Counter>,
    namespaces: Gauge,
    http: HttpMetrics,
}

/// The HTTP listener's metrics ([`crate::listener`]): connections open now
/// and connections closed at accept, by the cap they hit.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    pub open: Gauge,
    pub refused_total_cap: Counter,
    pub refused_address_cap: Counter,
}

/// Label for the namespace kind.
pub fn ns_label(ns: &str) -> &'static str {
    if ns == "/" { "root" } else { "room" }
}

/// Event names are labels only when the catalog knows them, so a client
/// cannot grow the metric set without bound.
fn event_label(name: &str) -> String {
    if CATALOG.iter().any(|e| e.name == name) {
        name.to_owned()
    } else {
        "other".to_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("platform");
        let http_refused = Family::<Labels, Counter>::default();
        let m = Metrics {
            connections: Family::default(),
            connects: Family::default(),
            events_in: Family::default(),
            events_out: Family::default(),
            errors: Family::default(),
            connect_errors: Family::default(),
            namespaces: Gauge::default(),
            http: HttpMetrics {
                open: Gauge::default(),
                refused_total_cap: http_refused
                    .get_or_create_owned(&vec![("cap", "total".to_owned())]),
                refused_address_cap: http_refused
                    .get_or_create_owned(&vec![("cap", "address".to_owned())]),
            },
            registry: Registry::default(),
        };
        registry.register(
            "socket_connections",
            "Sockets connected now, by namespace kind",
            m.connections.clone(),
        );
        registry.register(
            "socket_connects",
            "Sockets accepted, by namespace kind",
            m.connects.clone(),
        );
        registry.register(
            "socket_connect_errors",
            "Connections refused, by reason",
            m.connect_errors.clone(),
        );
        registry.register(
            "events_in",
            "Client events received, by event name",
            m.events_in.clone(),
        );
        registry.register(
            "events_out",
            "Server emits (a broadcast counts once), by event name",
            m.events_out.clone(),
        );
        registry.register("errors", "Errors sent, by code", m.errors.clone());
        registry.register(
            "namespaces",
            "Socket.IO namespaces instantiated now (/ and each room namespace with a socket)",
            m.namespaces.clone(),
        );
        registry.register(
            "http_connections",
            "TCP connections open now (HTTP, long-polling and WebSocket)",
            m.http.open.clone(),
        );
        registry.register(
            "http_connections_refused",
            "TCP connections closed at accept, by the cap they hit (--max-connections, --max-connections-per-address)",
            http_refused,
        );
        for code in ErrorCode::ALL {
            let _ = m
                .errors
                .get_or_create(&vec![("code", code.as_str().to_owned())]);
        }
        // Connection series exist from the start (0), so `/metrics` shows
        // `platform_socket_connections` before the first client connects.
        for kind in ["root", "room"] {
            let labels = vec![("namespace", kind.to_owned())];
            let _ = m.connections.get_or_create(&labels);
            let _ = m.connects.get_or_create(&labels);
        }
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Handles on the listener's metrics (shared counters).
    pub fn http(&self) -> HttpMetrics {
        self.http.clone()
    }

    pub fn socket_connected(&self, ns: &str) {
        let labels = vec![("namespace", ns_label(ns).to_owned())];
        self.connections.get_or_create(&labels).inc();
        self.connects.get_or_create(&labels).inc();
    }

    /// Sets the number of Socket.IO namespaces instantiated now (read at
    /// scrape time: `/` and one per room namespace with a socket).
    pub fn set_namespaces(&self, n: usize) {
        self.namespaces.set(n as i64);
    }

    pub fn socket_disconnected(&self, ns: &str) {
        self.connections
            .get_or_create(&vec![("namespace", ns_label(ns).to_owned())])
            .dec();
    }

    pub fn connect_refused(&self, reason: &str) {
        self.connect_errors
            .get_or_create(&vec![("reason", reason.to_owned())])
            .inc();
    }

    pub fn event_in(&self, name: &str) {
        self.events_in
            .get_or_create(&vec![("event", event_label(name))])
            .inc();
    }

    pub fn event_out(&self, name: &str) {
        self.events_out
            .get_or_create(&vec![("event", event_label(name))])
            .inc();
    }

    pub fn error(&self, code: ErrorCode) {
        self.errors
            .get_or_create(&vec![("code", code.as_str().to_owned())])
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
