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
/// asks (the route needs no credentials). Each check waits at most
/// [`HEALTH_CHECK_TIMEOUT`]: a probe (a load balancer's, Kubernetes') needs
/// an answer, not a hang while the Redis client retries a dead server
/// (about 15 s) or a request waits for a PostgreSQL connection.
pub(super) async fn healthz(State(st): State<AppState>) -> Response {
    let unavailable = |failing: &str, error: &dyn std::fmt::Display| {
        tracing::error!(%error, failing, "health check failed");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "failing": failing})),
        )
            .into_response()
    };
    match tokio::time::timeout(HEALTH_CHECK_TIMEOUT, st.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return unavailable("database", &e),
        Err(e) => return unavailable("database", &e),
    }
    match &st.cluster {
        None => Json(json!({"status": "ok"})).into_response(),
        Some(cluster) => {
            let mut conn = cluster.connection();
            match tokio::time::timeout(
                HEALTH_CHECK_TIMEOUT,
                redis::cmd("PING").exec_async(&mut conn),
            )
            .await
            {
                Ok(Ok(())) => {
                    Json(json!({"status": "ok", "node": cluster.node_id})).into_response()
                }
                Ok(Err(e)) => unavailable("redis", &e),
                Err(e) => unavailable("redis", &e),
            }
        }
    }
}

/// How long `/healthz` waits for each dependency before calling it failing.
pub const HEALTH_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

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
