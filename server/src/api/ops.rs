//! Operations: health (`GET /healthz`), Prometheus metrics (`GET /metrics`)
//! and the OpenAPI document (`GET /api/openapi.json`).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// The OpenAPI document of this API (`server/openapi.json`).
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// `{"status": "ok"}` when the database (and, on a cluster node, Redis)
/// answers; a cluster node adds its `node` id. Otherwise 503 with
/// `{"status": "unavailable", "failing": "database" | "redis"}`: the error
/// itself (hosts, user names, driver text) goes to the log, not to whoever
/// asks (the route needs no credentials).
pub(super) async fn healthz(State(st): State<AppState>) -> Response {
    let unavailable = |failing: &str, error: &dyn std::fmt::Display| {
        tracing::error!(%error, failing, "health check failed");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "failing": failing})),
        )
            .into_response()
    };
    if let Err(e) = st.store.ping().await {
        return unavailable("database", &e);
    }
    match &st.cluster {
        None => Json(json!({"status": "ok"})).into_response(),
        Some(cluster) => match redis::cmd("PING")
            .exec_async(&mut cluster.connection())
            .await
        {
            Ok(()) => Json(json!({"status": "ok", "node": cluster.node_id})).into_response(),
            Err(e) => unavailable("redis", &e),
        },
    }
}

pub(super) async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        {
            st.metrics
                .set_namespaces(crate::state::with_io!(&st.io, io => io.ns_count()));
            st.metrics.render()
        },
    )
        .into_response()
}

pub(super) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
