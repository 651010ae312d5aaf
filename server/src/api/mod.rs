//! The REST API: every domain change that causes an event (protocol notes
//! N1), application events, tokens, health, metrics and the OpenAPI
//! document. A change is committed to the store first, then broadcast.
//!
//! One file per domain, as [`crate::store`] is split: `users` (and
//! tokens), `rooms`, `participants`, `prizes` (and winners),
//! `notifications`, `apps` (and application events), `quiz`, `ops`
//! (health, metrics, the OpenAPI document); the error answer and the JSON
//! extractor in `error`, the caller's identity in `caller`. Every route
//! is in [`router`], so the OpenAPI test reads them from one place.

mod apps;
mod caller;
mod error;
mod notifications;
mod ops;
mod participants;
mod prizes;
mod quiz;
mod rooms;
mod users;

use axum::Router;
use axum::routing::{delete, get, patch, post, put};

use crate::state::AppState;

pub use apps::{MAX_APP_EVENT_NAME_BYTES, PERMISSION_PUBLISH_PRIVATE};
pub use caller::Caller;
pub use error::{ApiError, ApiJson};
pub use ops::{HEALTH_CHECK_TIMEOUT, OPENAPI};

/// Every route.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/api/openapi.json", get(ops::openapi))
        .route("/api/users", post(users::create_user))
        .route(
            "/api/users/{user_id}",
            get(users::get_user).delete(users::delete_user),
        )
        .route(
            "/api/users/{user_id}/notifications",
            post(notifications::create_notification).get(notifications::list_notifications),
        )
        .route("/api/auth/token", post(users::mint_token))
        .route("/api/auth/refresh", post(users::refresh_token))
        .route("/api/auth/revoke", post(users::revoke_token))
        .route(
            "/api/auth/revoke-refresh",
            post(users::revoke_refresh_token),
        )
        .route(
            "/api/users/{user_id}/revoke-tokens",
            post(users::revoke_user_tokens),
        )
        .route("/api/apps", post(apps::create_app))
        .route(
            "/api/apps/{app_id}/permissions",
            put(apps::set_app_permissions),
        )
        .route("/api/rooms", post(rooms::create_room))
        .route(
            "/api/rooms/{room_id}",
            get(rooms::get_room)
                .patch(rooms::update_room)
                .delete(rooms::delete_room),
        )
        .route(
            "/api/rooms/{room_id}/participants",
            post(participants::add_participant).get(participants::list_participants),
        )
        .route(
            "/api/rooms/{room_id}/participants/{participant_id}",
            patch(participants::update_participant).delete(participants::remove_participant),
        )
        .route(
            "/api/rooms/{room_id}/prizes",
            post(prizes::create_prize).get(prizes::list_prizes),
        )
        .route(
            "/api/rooms/{room_id}/prizes/{prize_id}",
            patch(prizes::update_prize).delete(prizes::delete_prize),
        )
        .route(
            "/api/rooms/{room_id}/prizes/{prize_id}/draw",
            post(prizes::draw),
        )
        .route(
            "/api/rooms/{room_id}/winners/{winner_id}",
            delete(prizes::remove_winner),
        )
        .route(
            "/api/rooms/{room_id}/quiz/questions",
            post(quiz::create_question),
        )
        .route(
            "/api/rooms/{room_id}/quiz/questions/{question_id}/publish",
            post(quiz::publish_question),
        )
        .route("/api/rooms/{room_id}/events", post(apps::publish_app_event))
        .with_state(state)
}
