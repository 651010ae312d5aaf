//! The store's test suite. Every check is an `async fn(&Store)`; the
//! `suite!` macro runs each one against a fresh temp-file SQLite database,
//! and all of them in sequence in one test against PostgreSQL, each on a
//! fresh database (`case_N`) of a throwaway cluster that the test starts and
//! stops itself (see [`crate::testing::postgres`]), or of the server named by
//! `TEST_DATABASE_URL` if that is set.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::{Map, Value, json};
use tempfile::TempDir;

use super::*;
use crate::testing::postgres::PgHarness;

async fn temp_store() -> (Store, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir);
    let store = Store::connect(&url).await.expect("connect to temp SQLite");
    (store, dir)
}

fn sqlite_url(dir: &TempDir) -> String {
    format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("store.db").display()
    )
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _dir) = super::temp_store().await;
                    super::$name(&store).await;
                }
            )*
        }

        /// The whole suite on PostgreSQL, in sequence on one server (the
        /// harness is dropped, stopping our cluster, even if a case panics).
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn postgres_suite() {
            let started = Instant::now();
            let pg = PgHarness::start();
            eprintln!(
                "postgres: {} server ready in {:?}",
                if pg.is_throwaway() { "throwaway" } else { "TEST_DATABASE_URL" },
                started.elapsed()
            );
            let mut case = 0;
            $(
                case += 1;
                let db = format!("case_{case}");
                let url = pg.fresh_database(&db).await;
                let store = Store::connect(&url).await.expect("connect to PostgreSQL");
                assert_eq!(store.backend(), Backend::Postgres);
                eprintln!("postgres: {db}: {}", stringify!($name));
                $name(&store).await;
                store.close().await;
                pg.drop_database(&db).await;
            )*
            eprintln!("postgres: {case} cases in {:?}", started.elapsed());
        }
    };
}

suite!(
    users_and_access_tokens,
    refresh_tokens_work_once,
    refresh_token_concurrent_consume,
    token_families_are_revoked_whole,
    rooms_crud_and_validation,
    room_delete_cascades,
    user_delete_cascades,
    deleted_users_tokens_are_re_read_as_revoked,
    participants,
    removing_a_winner_participant_gives_the_prize_back,
    prizes_crud,
    draw_picks_only_eligible_and_never_exceeds_quantity,
    draw_refusals,
    concurrent_draws_on_last_unit,
    many_concurrent_draws,
    remove_winner_restores_unit,
    notifications,
    apps,
    quiz_questions,
    quiz_answers_and_ranks,
    quiz_concurrent_ranks,
    reconnect_sees_data,
);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

async fn user(s: &Store, name: &str) -> User {
    s.create_user(name, None).await.expect("create user")
}

async fn room(s: &Store) -> Room {
    s.create_room("Test room", "active", "public")
        .await
        .expect("create room")
}

/// A room with `n` users joined as `participant`.
async fn room_with_participants(s: &Store, n: usize) -> (Room, Vec<(Participant, User)>) {
    let r = room(s).await;
    let mut out = Vec::new();
    for i in 0..n {
        let u = user(s, &format!("player {i}")).await;
        out.push(
            s.add_participant(&r.id, &u.id, "participant")
                .await
                .expect("add participant"),
        );
    }
    (r, out)
}

fn prize(quantity: u32) -> NewPrize {
    NewPrize {
        name: "Mug".into(),
        description: "A mug".into(),
        image_url: "https://example.invalid/mug.png".into(),
        quantity,
    }
}

fn question(answer: &str) -> NewQuestion {
    NewQuestion {
        question: "2 + 2?".into(),
        options: vec!["3".into(), "4".into(), "5".into()],
        answer: answer.into(),
        time_limit_secs: 30,
        question_number: None,
        total_questions: None,
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    match r {
        Err(StoreError::NotFound { what: w, .. }) if w == what => {}
        other => panic!("expected NotFound {what}, got {other:?}"),
    }
}

#[track_caller]
fn assert_room_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::RoomNotFound(_)) => {}
        other => panic!("expected RoomNotFound, got {other:?}"),
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::Invalid(_)) => {}
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Users and tokens
// ---------------------------------------------------------------------------

async fn users_and_access_tokens(s: &Store) {
    let u = s
        .create_user("Alice", Some("https://example.invalid/a.png".into()))
        .await
        .unwrap();
    assert!(u.id.starts_with("usr_"));
    assert_eq!(s.get_user(&u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(s.get_user("usr_nobody").await.unwrap(), None);
    assert_invalid(s.create_user("  ", None).await);

    let json = serde_json::to_value(&u).unwrap();
    assert_eq!(json["avatar"], "https://example.invalid/a.png");
    assert!(
        protocol::timestamp::parse_utc(json["createdAt"].as_str().unwrap()).is_some(),
        "{json}"
    );
    assert_eq!(u.to_info().name, "Alice");

    let jti = new_id("tok");
    let exp = now_ms() + 60_000;
    s.insert_token(&jti, &u.id, exp).await.unwrap();
    assert_conflict(s.insert_token(&jti, &u.id, exp).await);
    assert_not_found(
        s.insert_token(&new_id("tok"), "usr_nobody", exp).await,
        "user",
    );
    assert_eq!(
        s.token_state(&jti).await.unwrap(),
        Some(TokenRow {
            user_id: u.id.clone(),
            expires_at_ms: exp,
            revoked: false
        })
    );
    assert_eq!(s.token_state("tok_unknown").await.unwrap(), None);
    let revoked = s.revoke_token(&jti).await.unwrap().unwrap();
    assert_eq!(revoked.access, vec![jti.clone()]);
    assert_eq!(
        s.revoke_token(&jti).await.unwrap().unwrap().access,
        vec![jti.clone()],
        "revoking twice is fine"
    );
    assert_eq!(s.revoke_token("tok_unknown").await.unwrap(), None);
    assert!(s.token_state(&jti).await.unwrap().unwrap().revoked);
    assert!(
        s.revoked_since(now_ms() - 60_000)
            .await
            .unwrap()
            .contains(&jti)
    );

    // Housekeeping removes only expired rows.
    let old = new_id("tok");
    s.insert_token(&old, &u.id, 1_000).await.unwrap();
    assert!(s.purge_expired_tokens(now_ms()).await.unwrap() >= 1);
    assert_eq!(s.token_state(&old).await.unwrap(), None);
    assert!(s.token_state(&jti).await.unwrap().is_some());
}

/// Rotates `secret`, expecting a new refresh token for `user_id`.
async fn rotate(s: &Store, secret: &str, user_id: &str) -> (String, String) {
    let jti = new_id("tok");
    match s
        .rotate_refresh_token(secret, &jti, now_ms() + 60_000)
        .await
        .unwrap()
    {
        Rotation::Rotated {
            user_id: u,
            refresh_token,
        } => {
            assert_eq!(u, user_id);
            (jti, refresh_token)
        }
        other => panic!("expected a rotation, got {other:?}"),
    }
}

async fn refresh_tokens_work_once(s: &Store) {
    let u = user(s, "Bob").await;
    let secret = s.create_refresh_token(&u.id).await.unwrap();
    assert_eq!(secret.len(), 64);
    let (jti, next) = rotate(s, &secret, &u.id).await;
    assert_ne!(next, secret);
    assert_eq!(s.token_state(&jti).await.unwrap().unwrap().user_id, u.id);
    assert_eq!(
        s.rotate_refresh_token("nonsense", &new_id("tok"), now_ms() + 60_000)
            .await
            .unwrap(),
        Rotation::Refused
    );
    assert_not_found(s.create_refresh_token("usr_nobody").await, "user");

    let expired = s.create_refresh_token_with_ttl(&u.id, -1).await.unwrap();
    assert_eq!(
        s.rotate_refresh_token(&expired, &new_id("tok"), now_ms() + 60_000)
            .await
            .unwrap(),
        Rotation::Refused
    );

    // Reuse of the rotated token: the family (the access token minted by
    // the rotation, the new refresh token) is revoked.
    let again = s
        .rotate_refresh_token(&secret, &new_id("tok"), now_ms() + 60_000)
        .await
        .unwrap();
    assert_eq!(
        again,
        Rotation::Reused {
            user_id: u.id.clone(),
            revoked: Revoked {
                access: vec![jti.clone()],
                refresh: 2
            }
        }
    );
    assert!(s.token_state(&jti).await.unwrap().unwrap().revoked);
    assert_eq!(
        s.rotate_refresh_token(&next, &new_id("tok"), now_ms() + 60_000)
            .await
            .unwrap(),
        Rotation::Refused
    );
}

async fn token_families_are_revoked_whole(s: &Store) {
    let u = user(s, "Dave").await;
    let first = new_id("tok");
    let refresh = s
        .issue_tokens(&u.id, &first, now_ms() + 60_000)
        .await
        .unwrap();
    let (second, refresh) = rotate(s, &refresh, &u.id).await;
    // Another family of the same user stays.
    let other = new_id("tok");
    let other_refresh = s
        .issue_tokens(&u.id, &other, now_ms() + 60_000)
        .await
        .unwrap();

    let mut revoked = s.revoke_token(&first).await.unwrap().unwrap();
    revoked.access.sort();
    let mut both = vec![first.clone(), second.clone()];
    both.sort();
    assert_eq!(revoked.access, both);
    assert_eq!(revoked.refresh, 2, "the used and the live refresh token");
    assert_eq!(
        s.rotate_refresh_token(&refresh, &new_id("tok"), now_ms() + 60_000)
            .await
            .unwrap(),
        Rotation::Refused
    );
    assert!(!s.token_state(&other).await.unwrap().unwrap().revoked);

    // By refresh token.
    let (third, other_refresh) = rotate(s, &other_refresh, &u.id).await;
    let mut revoked = s
        .revoke_refresh_token(&other_refresh)
        .await
        .unwrap()
        .unwrap();
    revoked.access.sort();
    let mut both = vec![other.clone(), third.clone()];
    both.sort();
    assert_eq!(revoked.access, both);
    assert_eq!(s.revoke_refresh_token(&other_refresh).await.unwrap(), None);

    // Everything of a user.
    let fourth = new_id("tok");
    let last = s
        .issue_tokens(&u.id, &fourth, now_ms() + 60_000)
        .await
        .unwrap();
    let revoked = s.revoke_user_tokens(&u.id).await.unwrap();
    assert_eq!(revoked.access, vec![fourth.clone()]);
    assert_eq!(revoked.refresh, 1);
    assert_eq!(s.revoke_refresh_token(&last).await.unwrap(), None);
    assert_not_found(s.revoke_user_tokens("usr_nobody").await, "user");
}

async fn refresh_token_concurrent_consume(s: &Store) {
    let u = user(s, "Carol").await;
    for _ in 0..5 {
        let secret = s.create_refresh_token(&u.id).await.unwrap();
        let (ja, jb) = (new_id("tok"), new_id("tok"));
        let (a, b) = tokio::join!(
            s.rotate_refresh_token(&secret, &ja, now_ms() + 60_000),
            s.rotate_refresh_token(&secret, &jb, now_ms() + 60_000)
        );
        let outcomes = [a.unwrap(), b.unwrap()];
        let wins = outcomes
            .iter()
            .filter(|o| matches!(o, Rotation::Rotated { .. }))
            .count();
        assert_eq!(wins, 1, "exactly one concurrent rotation wins");
        // The other is reuse, and revoked the winner's new pair with it.
        let Some(Rotation::Reused { revoked, .. }) = outcomes
            .iter()
            .find(|o| matches!(o, Rotation::Reused { .. }))
        else {
            panic!("the loser is a reuse: {outcomes:?}");
        };
        assert_eq!(revoked.access.len(), 1, "{outcomes:?}");
        assert_eq!(revoked.refresh, 2, "{outcomes:?}");
    }
}

// ---------------------------------------------------------------------------
// Rooms and participants
// ---------------------------------------------------------------------------

async fn rooms_crud_and_validation(s: &Store) {
    let r = s.create_room("Lobby", "draft", "private").await.unwrap();
    assert!(r.id.starts_with("room_"));
    assert!(r.is_private());
    assert_eq!(s.get_room(&r.id).await.unwrap(), Some(r.clone()));
    assert_eq!(s.get_room("room_nope").await.unwrap(), None);
    assert!(s.list_rooms().await.unwrap().iter().any(|x| x.id == r.id));

    assert_invalid(s.create_room("x", "open", "public").await);
    assert_invalid(s.create_room("x", "active", "secret").await);
    assert_invalid(s.create_room("", "active", "public").await);

    let (old, new) = s
        .update_room(
            &r.id,
            RoomPatch {
                status: Some("active".into()),
                name: Some("Main hall".into()),
                visibility: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(old, r);
    assert_eq!(new.status, "active");
    assert_eq!(new.name, "Main hall");
    assert_eq!(new.visibility, "private");
    assert_eq!(s.get_room(&r.id).await.unwrap(), Some(new.clone()));
    let changes = Room::changes(&old, &new);
    assert_eq!(
        Value::Object(changes),
        json!({"name": "Main hall", "status": "active"})
    );
    assert_eq!(new.to_info().status, "active");

    // Every status may change to every other (N13).
    for status in protocol::RoomStatus::ALL {
        let (_, n) = s
            .update_room(
                &r.id,
                RoomPatch {
                    status: Some(status.to_string()),
                    ..RoomPatch::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(n.status, status.as_str());
    }
    let (o, n) = s.update_room(&r.id, RoomPatch::default()).await.unwrap();
    assert!(Room::changes(&o, &n).is_empty());

    assert_invalid(
        s.update_room(
            &r.id,
            RoomPatch {
                status: Some("closed".into()),
                ..RoomPatch::default()
            },
        )
        .await,
    );
    assert_room_not_found(s.update_room("room_nope", RoomPatch::default()).await);
    assert_room_not_found(s.delete_room("room_nope").await);

    let patch: RoomPatch = serde_json::from_value(json!({"visibility": "public"})).unwrap();
    assert_eq!(patch.visibility.as_deref(), Some("public"));
    assert_eq!(patch.name, None);
}

async fn room_delete_cascades(s: &Store) {
    let (r, ps) = room_with_participants(s, 2).await;
    let p = s.create_prize(&r.id, prize(1)).await.unwrap();
    s.draw_winners(&r.id, &p.id, 1).await.unwrap();
    let q = s.create_question(&r.id, question("4")).await.unwrap();
    s.publish_question(&r.id, &q.id, now_ms()).await.unwrap();
    s.record_answer(&q.id, &ps[0].1.id, &ps[0].0.id, "4", now_ms())
        .await
        .unwrap();

    let deleted = s.delete_room(&r.id).await.unwrap();
    assert_eq!(deleted.id, r.id);
    assert_eq!(s.get_room(&r.id).await.unwrap(), None);
    assert_eq!(s.get_prize(&r.id, &p.id).await.unwrap(), None);
    assert_eq!(s.get_question(&q.id).await.unwrap(), None);
    assert_eq!(s.get_participant(&r.id, &ps[0].0.id).await.unwrap(), None);
    assert_room_not_found(s.list_participants(&r.id).await);
    assert_room_not_found(s.list_prizes(&r.id).await);
    assert_room_not_found(s.list_winners(&r.id).await);
    assert_room_not_found(s.list_questions(&r.id).await);
    // Users survive their rooms.
    assert!(s.get_user(&ps[0].1.id).await.unwrap().is_some());
}

/// A deleted user's access tokens stay among the revocations the nodes
/// re-read (a node that missed the deletion's command drops their sockets)
/// until they expire.
async fn deleted_users_tokens_are_re_read_as_revoked(s: &Store) {
    let gone = user(s, "gone").await;
    let stays = user(s, "stays").await;
    let exp = now_ms() + 60_000;
    s.insert_token("tok_live", &gone.id, exp).await.unwrap();
    s.issue_tokens(&gone.id, "tok_pair", exp).await.unwrap();
    s.insert_token("tok_soon", &gone.id, now_ms() + 30_000)
        .await
        .unwrap();
    s.insert_token("tok_stays", &stays.id, exp).await.unwrap();
    let before = now_ms();
    assert!(s.revoked_since(before - 60_000).await.unwrap().is_empty());

    s.delete_user(&gone.id).await.unwrap();
    let after = now_ms();
    let mut re_read = s.revoked_since(before).await.unwrap();
    re_read.sort();
    assert_eq!(re_read, ["tok_live", "tok_pair", "tok_soon"]);
    assert!(
        s.revoked_since(after + 1).await.unwrap().is_empty(),
        "revoked at the deletion's time"
    );
    assert_eq!(s.token_state("tok_live").await.unwrap(), None);
    assert!(!s.token_state("tok_stays").await.unwrap().unwrap().revoked);
    // A user without tokens is deleted as before.
    let bare = user(s, "bare").await;
    s.delete_user(&bare.id).await.unwrap();

    // Kept while the tokens live; each goes with the purge once expired.
    assert_eq!(s.purge_expired_tokens(now_ms()).await.unwrap(), 0);
    assert_eq!(s.revoked_since(before).await.unwrap().len(), 3);
    assert_eq!(s.purge_expired_tokens(now_ms() + 45_000).await.unwrap(), 1);
    let mut re_read = s.revoked_since(before).await.unwrap();
    re_read.sort();
    assert_eq!(re_read, ["tok_live", "tok_pair"]);
    // The two left and the bystander's token.
    assert_eq!(s.purge_expired_tokens(exp + 1).await.unwrap(), 3);
    assert!(s.revoked_since(0).await.unwrap().is_empty());
}

async fn user_delete_cascades(s: &Store) {
    let (r1, ps) = room_with_participants(s, 1).await;
    let gone = &ps[0].1;
    // A moderator is never drawn: `gone` wins the only unit.
    let stays = user(s, "stays").await;
    s.add_participant(&r1.id, &stays.id, "moderator")
        .await
        .unwrap();
    let r2 = room(s).await;
    s.add_participant(&r2.id, &gone.id, "moderator")
        .await
        .unwrap();
    let p = s.create_prize(&r1.id, prize(1)).await.unwrap();
    let (won, _, _) = s.draw_winners(&r1.id, &p.id, 1).await.unwrap();
    assert_eq!(won[0].user.id, gone.id);
    let q = s.create_question(&r1.id, question("4")).await.unwrap();
    s.publish_question(&r1.id, &q.id, now_ms()).await.unwrap();
    s.record_answer(&q.id, &gone.id, &ps[0].0.id, "4", now_ms())
        .await
        .unwrap();
    s.insert_token("tok_gone", &gone.id, now_ms() + 60_000)
        .await
        .unwrap();
    let refresh = s.create_refresh_token(&gone.id).await.unwrap();
    s.create_notification(&gone.id, "info", "Hi", "Hello", Map::new())
        .await
        .unwrap();

    let deleted = s.delete_user(&gone.id).await.unwrap();
    assert_eq!(deleted.user.id, gone.id);
    let mut rooms: Vec<&str> = deleted
        .left
        .iter()
        .map(|(p, _)| p.room_id.as_str())
        .collect();
    rooms.sort_unstable();
    let mut want = vec![r1.id.as_str(), r2.id.as_str()];
    want.sort_unstable();
    assert_eq!(rooms, want);
    let in_r1 = deleted
        .left
        .iter()
        .find(|(p, _)| p.room_id == r1.id)
        .unwrap();
    assert_eq!(in_r1.1.len(), 1, "the won unit is given back");
    assert_eq!(in_r1.1[0].0.user_id, gone.id);
    assert_eq!(in_r1.1[0].1.quantity_remaining, 1);
    assert!(
        deleted
            .left
            .iter()
            .find(|(p, _)| p.room_id == r2.id)
            .unwrap()
            .1
            .is_empty()
    );

    assert_eq!(s.get_user(&gone.id).await.unwrap(), None);
    assert_eq!(s.token_state("tok_gone").await.unwrap(), None);
    assert_eq!(
        s.revoke_refresh_token(&refresh).await.unwrap(),
        None,
        "the refresh token went"
    );
    assert!(s.list_notifications(&gone.id).await.unwrap().is_empty());
    assert_eq!(s.find_participant(&r1.id, &gone.id).await.unwrap(), None);
    assert_eq!(s.find_participant(&r2.id, &gone.id).await.unwrap(), None);
    assert!(s.list_winners(&r1.id).await.unwrap().is_empty());
    assert_eq!(
        s.get_prize(&r1.id, &p.id)
            .await
            .unwrap()
            .unwrap()
            .quantity_remaining,
        1
    );
    // Everyone else is untouched; a second delete is NotFound.
    assert!(s.get_user(&stays.id).await.unwrap().is_some());
    assert!(
        s.find_participant(&r1.id, &stays.id)
            .await
            .unwrap()
            .is_some()
    );
    assert_not_found(s.delete_user(&gone.id).await, "user");
    assert_not_found(s.delete_user("usr_nobody").await, "user");
}

async fn participants(s: &Store) {
    let r = room(s).await;
    let u = s
        .create_user("Dana", Some("https://example.invalid/d.png".into()))
        .await
        .unwrap();
    let (p, pu) = s
        .add_participant(&r.id, &u.id, "participant")
        .await
        .unwrap();
    assert!(p.id.starts_with("part_"));
    assert_eq!(pu, u);
    assert_eq!(
        (p.room_id.as_str(), p.user_id.as_str()),
        (r.id.as_str(), u.id.as_str())
    );
    assert_conflict(s.add_participant(&r.id, &u.id, "moderator").await);
    assert_room_not_found(s.add_participant("room_nope", &u.id, "participant").await);
    assert_not_found(
        s.add_participant(&r.id, "usr_nobody", "participant").await,
        "user",
    );
    assert_invalid(s.add_participant(&r.id, &u.id, "admin").await);

    assert_eq!(
        s.get_participant(&r.id, &p.id).await.unwrap(),
        Some(p.clone())
    );
    assert_eq!(s.get_participant("room_other", &p.id).await.unwrap(), None);
    assert_eq!(
        s.find_participant(&r.id, &u.id).await.unwrap(),
        Some(p.clone())
    );
    assert_eq!(s.find_participant(&r.id, "usr_nobody").await.unwrap(), None);

    let wire = p.to_wire(&u);
    assert_eq!(
        wire.user.avatar.as_deref(),
        Some("https://example.invalid/d.png")
    );
    assert_eq!(wire.role, "participant");
    assert!(wire.joined_at.is_some());

    let (old, new, uu) = s
        .update_participant_role(&r.id, &p.id, "moderator")
        .await
        .unwrap();
    assert_eq!(old.role, "participant");
    assert_eq!(new.role, "moderator");
    assert_eq!(uu.id, u.id);
    assert_eq!(
        s.get_participant(&r.id, &p.id).await.unwrap().unwrap().role,
        "moderator"
    );
    assert_invalid(s.update_participant_role(&r.id, &p.id, "owner").await);
    assert_not_found(
        s.update_participant_role(&r.id, "part_nope", "moderator")
            .await,
        "participant",
    );

    let u2 = user(s, "Eve").await;
    let (p2, _) = s
        .add_participant(&r.id, &u2.id, "participant")
        .await
        .unwrap();
    let list = s.list_participants(&r.id).await.unwrap();
    assert_eq!(
        list.iter().map(|x| x.id.clone()).collect::<HashSet<_>>(),
        HashSet::from([p.id.clone(), p2.id.clone()])
    );
    let with_users = s.list_participants_with_users(&r.id).await.unwrap();
    assert!(
        with_users
            .iter()
            .any(|x| x.user.name == "Eve" && x.participant.id == p2.id)
    );
    let json = serde_json::to_value(&with_users[0]).unwrap();
    assert!(
        json["userId"].is_string() && json["user"]["name"].is_string(),
        "{json}"
    );

    let removed = s.remove_participant(&r.id, &p.id).await.unwrap();
    assert_eq!(removed.id, p.id);
    assert_eq!(s.find_participant(&r.id, &u.id).await.unwrap(), None);
    assert_not_found(s.remove_participant(&r.id, &p.id).await, "participant");
    assert_room_not_found(s.remove_participant("room_nope", &p2.id).await);
    assert_eq!(s.list_participants(&r.id).await.unwrap().len(), 1);
    // A removed user may join again.
    s.add_participant(&r.id, &u.id, "participant")
        .await
        .unwrap();
    assert_room_not_found(s.list_participants("room_nope").await);
    assert!(
        s.list_participants(&room(s).await.id)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn removing_a_winner_participant_gives_the_prize_back(s: &Store) {
    let (r, ps) = room_with_participants(s, 1).await;
    let p = s.create_prize(&r.id, prize(2)).await.unwrap();
    let (winners, after, notes) = s.draw_winners(&r.id, &p.id, 1).await.unwrap();
    assert_eq!(after.quantity_remaining, 1);
    // The winner's notification was recorded with the draw.
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].kind, "winner_selected");
    assert_eq!(notes[0].data["winnerId"], json!(winners[0].winner.id));
    assert_eq!(s.list_notifications(&ps[0].1.id).await.unwrap(), notes);
    let (gone, wins) = s
        .remove_participant_with_wins(&r.id, &ps[0].0.id)
        .await
        .unwrap();
    assert_eq!(gone.id, ps[0].0.id);
    assert_eq!(wins.len(), 1);
    assert_eq!(wins[0].0.id, winners[0].winner.id);
    assert_eq!(wins[0].1.quantity_remaining, 2);
    assert_eq!(
        s.get_prize(&r.id, &p.id)
            .await
            .unwrap()
            .unwrap()
            .quantity_remaining,
        2
    );
    assert!(s.list_winners(&r.id).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------
// Prizes and winners
// ---------------------------------------------------------------------------

async fn prizes_crud(s: &Store) {
    let r = room(s).await;
    let p = s.create_prize(&r.id, prize(3)).await.unwrap();
    assert!(p.id.starts_with("prize_"));
    assert_eq!((p.quantity, p.quantity_remaining), (3, 3));
    assert_eq!(s.get_prize(&r.id, &p.id).await.unwrap(), Some(p.clone()));
    assert_eq!(s.get_prize("room_other", &p.id).await.unwrap(), None);
    assert_room_not_found(s.create_prize("room_nope", prize(1)).await);
    assert_invalid(
        s.create_prize(
            &r.id,
            NewPrize {
                name: " ".into(),
                ..prize(1)
            },
        )
        .await,
    );
    let wire = p.to_wire();
    assert_eq!(wire.image_url, "https://example.invalid/mug.png");
    assert_eq!(wire.quantity_remaining, 3);

    let from_json: NewPrize =
        serde_json::from_value(json!({"name": "Pen", "quantity": 2})).unwrap();
    let pen = s.create_prize(&r.id, from_json).await.unwrap();
    assert_eq!((pen.description.as_str(), pen.image_url.as_str()), ("", ""));
    let list = s.list_prizes(&r.id).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_room_not_found(s.list_prizes("room_nope").await);

    // Quantity changes move quantity_remaining by the same delta.
    for _ in 0..2 {
        let u = user(s, "winner").await;
        s.add_participant(&r.id, &u.id, "participant")
            .await
            .unwrap();
    }
    s.draw_winners(&r.id, &p.id, 2).await.unwrap();
    let (old, new) = s
        .update_prize(
            &r.id,
            &p.id,
            PrizePatch {
                quantity: Some(5),
                name: Some("Big mug".into()),
                ..PrizePatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((old.quantity, old.quantity_remaining), (3, 1));
    assert_eq!((new.quantity, new.quantity_remaining), (5, 3));
    assert_eq!(new.name, "Big mug");
    assert_eq!(
        Value::Object(Prize::changes(&old, &new)),
        json!({"name": "Big mug", "quantity": 5, "quantityRemaining": 3})
    );
    let (_, new) = s
        .update_prize(
            &r.id,
            &p.id,
            PrizePatch {
                quantity: Some(2),
                ..PrizePatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((new.quantity, new.quantity_remaining), (2, 0));
    assert_conflict(
        s.update_prize(
            &r.id,
            &p.id,
            PrizePatch {
                quantity: Some(1),
                ..PrizePatch::default()
            },
        )
        .await,
    );
    assert_not_found(
        s.update_prize(&r.id, "prize_nope", PrizePatch::default())
            .await,
        "prize",
    );

    let deleted = s.delete_prize(&r.id, &p.id).await.unwrap();
    assert_eq!(deleted.id, p.id);
    assert_eq!(s.get_prize(&r.id, &p.id).await.unwrap(), None);
    assert!(s.list_winners(&r.id).await.unwrap().is_empty());
    assert_not_found(s.delete_prize(&r.id, &p.id).await, "prize");
}

async fn draw_picks_only_eligible_and_never_exceeds_quantity(s: &Store) {
    let (r, ps) = room_with_participants(s, 6).await;
    // Two moderators who must never win.
    let mut moderators = HashSet::new();
    for name in ["mod 1", "mod 2"] {
        let u = user(s, name).await;
        let (p, _) = s.add_participant(&r.id, &u.id, "moderator").await.unwrap();
        moderators.insert(p.id);
    }
    let eligible: HashSet<String> = ps.iter().map(|(p, _)| p.id.clone()).collect();
    let a = s.create_prize(&r.id, prize(4)).await.unwrap();
    let b = s.create_prize(&r.id, prize(10)).await.unwrap();

    let (won_a, after_a, _) = s.draw_winners(&r.id, &a.id, 3).await.unwrap();
    assert_eq!(won_a.len(), 3);
    assert_eq!(after_a.quantity_remaining, 1);
    let (won_a2, after_a2, _) = s.draw_winners(&r.id, &a.id, 1).await.unwrap();
    assert_eq!(after_a2.quantity_remaining, 0);
    assert_conflict(s.draw_winners(&r.id, &a.id, 1).await);

    // Only 2 eligible participants are left for prize b.
    assert_conflict(s.draw_winners(&r.id, &b.id, 3).await);
    let (won_b, after_b, _) = s.draw_winners(&r.id, &b.id, 2).await.unwrap();
    assert_eq!(after_b.quantity_remaining, 8);
    assert_conflict(s.draw_winners(&r.id, &b.id, 1).await);

    let all: Vec<&WinnerFull> = won_a.iter().chain(&won_a2).chain(&won_b).collect();
    let winners: HashSet<String> = all.iter().map(|w| w.participant.id.clone()).collect();
    assert_eq!(winners.len(), 6, "nobody wins twice in a room");
    assert_eq!(winners, eligible, "only role=participant wins");
    assert!(winners.is_disjoint(&moderators));
    for w in &all {
        assert!(w.winner.id.starts_with("winner_"));
        assert_eq!(w.user_id(), w.user.id);
        assert_eq!(w.participant.user_id, w.user.id);
        let wire = w.to_wire();
        assert_eq!(wire.participant_id, w.participant.id);
        assert_eq!(wire.participant.user.id, w.user.id);
        assert_eq!(wire.prize.id, w.prize.id);
        assert_eq!(wire.prize_id, w.prize.id);
    }
    let listed = s.list_winners(&r.id).await.unwrap();
    assert_eq!(listed.len(), 6);
    assert!(listed.iter().all(|w| winners.contains(&w.participant.id)));
    let listed_a = listed.iter().filter(|w| w.prize.id == a.id).count();
    assert_eq!(listed_a, 4);
    let prizes = s.list_prizes(&r.id).await.unwrap();
    for p in prizes {
        let won = listed.iter().filter(|w| w.prize.id == p.id).count() as u32;
        assert_eq!(p.quantity - p.quantity_remaining, won);
    }
}

async fn draw_refusals(s: &Store) {
    let (r, _) = room_with_participants(s, 2).await;
    let p = s.create_prize(&r.id, prize(1)).await.unwrap();
    assert_invalid(s.draw_winners(&r.id, &p.id, 0).await);
    assert_conflict(s.draw_winners(&r.id, &p.id, 2).await);
    assert_not_found(s.draw_winners(&r.id, "prize_nope", 1).await, "prize");
    assert_room_not_found(s.draw_winners("room_nope", &p.id, 1).await);
    // A refused draw changes nothing.
    assert_eq!(
        s.get_prize(&r.id, &p.id)
            .await
            .unwrap()
            .unwrap()
            .quantity_remaining,
        1
    );
    assert!(s.list_winners(&r.id).await.unwrap().is_empty());

    // A room without eligible participants.
    let empty = room(s).await;
    let ep = s.create_prize(&empty.id, prize(1)).await.unwrap();
    assert_conflict(s.draw_winners(&empty.id, &ep.id, 1).await);
}

async fn concurrent_draws_on_last_unit(s: &Store) {
    for _ in 0..5 {
        let (r, _) = room_with_participants(s, 4).await;
        let p = s.create_prize(&r.id, prize(1)).await.unwrap();
        let (a, b) = tokio::join!(
            s.draw_winners(&r.id, &p.id, 1),
            s.draw_winners(&r.id, &p.id, 1)
        );
        let ok = [a.is_ok(), b.is_ok()].iter().filter(|x| **x).count();
        assert_eq!(ok, 1, "exactly one of two concurrent draws succeeds");
        for res in [a, b] {
            if let Err(e) = res {
                assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
            }
        }
        let after = s.get_prize(&r.id, &p.id).await.unwrap().unwrap();
        assert_eq!(after.quantity_remaining, 0);
        assert_eq!(s.list_winners(&r.id).await.unwrap().len(), 1);
    }
}

async fn many_concurrent_draws(s: &Store) {
    let (r, _) = room_with_participants(s, 8).await;
    let a = s.create_prize(&r.id, prize(3)).await.unwrap();
    let b = s.create_prize(&r.id, prize(3)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = s.clone();
        let room_id = r.id.clone();
        let prize_id = if i % 2 == 0 {
            a.id.clone()
        } else {
            b.id.clone()
        };
        tasks.push(tokio::spawn(async move {
            s.draw_winners(&room_id, &prize_id, 1).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(ok, 6);
    let winners = s.list_winners(&r.id).await.unwrap();
    assert_eq!(winners.len(), 6);
    let distinct: HashSet<_> = winners.iter().map(|w| &w.participant.id).collect();
    assert_eq!(distinct.len(), 6);
    for p in s.list_prizes(&r.id).await.unwrap() {
        assert_eq!(p.quantity_remaining, 0);
    }
}

async fn remove_winner_restores_unit(s: &Store) {
    let (r, _) = room_with_participants(s, 2).await;
    let p = s.create_prize(&r.id, prize(1)).await.unwrap();
    let (won, _, _) = s.draw_winners(&r.id, &p.id, 1).await.unwrap();
    let w = &won[0];
    let (removed, after) = s.remove_winner(&r.id, &w.winner.id).await.unwrap();
    assert_eq!(removed.id, w.winner.id);
    assert_eq!(removed.participant_id, w.participant.id);
    assert_eq!(removed.prize_id, p.id);
    assert_eq!(removed.user_id, w.user.id);
    assert_eq!(after.quantity_remaining, 1);
    assert_not_found(s.remove_winner(&r.id, &w.winner.id).await, "winner");
    assert_room_not_found(s.remove_winner("room_nope", &w.winner.id).await);
    // The former winner is eligible again: draw twice more over 2 prizes.
    let p2 = s.create_prize(&r.id, prize(1)).await.unwrap();
    s.draw_winners(&r.id, &p.id, 1).await.unwrap();
    s.draw_winners(&r.id, &p2.id, 1).await.unwrap();
    assert_eq!(s.list_winners(&r.id).await.unwrap().len(), 2);
}

// ---------------------------------------------------------------------------
// Notifications and apps
// ---------------------------------------------------------------------------

async fn notifications(s: &Store) {
    let u = user(s, "Fay").await;
    let other = user(s, "Gus").await;
    let mut data = Map::new();
    data.insert("roomId".into(), json!("room_x"));
    data.insert("prizeId".into(), json!("prize_y"));
    let n = s
        .create_notification(&u.id, "winner_selected", "You won!", "A mug", data.clone())
        .await
        .unwrap();
    assert!(n.id.starts_with("notif_"));
    assert!(!n.read);
    assert_eq!(n.data, data);
    assert_not_found(
        s.create_notification("usr_nobody", "x", "t", "m", Map::new())
            .await,
        "user",
    );

    let json = serde_json::to_value(&n).unwrap();
    assert_eq!(json["type"], "winner_selected");
    assert_eq!(json["data"]["prizeId"], "prize_y");
    let wire = n.to_received("2025-01-15T10:00:00.000Z".into(), Some("evt_1".into()));
    assert_eq!(wire.kind, "winner_selected");
    assert_eq!(wire.event_id.as_deref(), Some("evt_1"));

    match s.mark_notification_read(&n.id, &other.id).await {
        Err(StoreError::Forbidden(_)) => {}
        r => panic!("expected Forbidden, got {r:?}"),
    }
    assert!(!s.get_notification(&n.id).await.unwrap().unwrap().read);
    assert_not_found(
        s.mark_notification_read("notif_nope", &u.id).await,
        "notification",
    );
    let read = s.mark_notification_read(&n.id, &u.id).await.unwrap();
    assert!(read.read);
    assert_eq!(read.id, n.id);
    assert!(s.mark_notification_read(&n.id, &u.id).await.unwrap().read);

    s.create_notification(&u.id, "info", "Hi", "Hello", Map::new())
        .await
        .unwrap();
    let list = s.list_notifications(&u.id).await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().any(|x| x.id == n.id && x.read));
    assert!(s.list_notifications(&other.id).await.unwrap().is_empty());
}

async fn apps(s: &Store) {
    let app_id = format!("app-{}", new_id("t").to_lowercase().replace('_', "-"));
    let (app, token) = s
        .create_app(
            &app_id,
            "Lottery",
            vec!["rooms:manage".into(), "rooms:manage".into()],
        )
        .await
        .unwrap();
    assert_eq!(app.permissions, vec!["rooms:manage"]);
    assert!(app.has_permission(PERMISSION_ROOMS_MANAGE));
    assert!(!app.has_permission(PERMISSION_REALTIME_PUBLISH));
    assert!(token.starts_with("app_") && token.len() == 68);
    assert_conflict(s.create_app(&app_id, "Again", vec![]).await);
    assert_invalid(s.create_app("Bad Id", "x", vec![]).await);
    assert_invalid(s.create_app("", "x", vec![]).await);

    assert_eq!(s.get_app(&app_id).await.unwrap(), Some(app.clone()));
    assert_eq!(s.get_app("no-such-app").await.unwrap(), None);
    assert!(s.list_apps().await.unwrap().iter().any(|a| a.id == app_id));
    assert_eq!(
        s.verify_app(&app_id, &token).await.unwrap(),
        Some(app.clone())
    );
    assert_eq!(s.verify_app(&app_id, "app_wrong").await.unwrap(), None);
    assert_eq!(s.verify_app("no-such-app", &token).await.unwrap(), None);

    let updated = s
        .set_app_permissions(
            &app_id,
            vec!["realtime:publish".into(), "rooms:manage".into()],
        )
        .await
        .unwrap();
    assert!(updated.has_permission(PERMISSION_REALTIME_PUBLISH));
    assert_eq!(
        s.verify_app(&app_id, &token)
            .await
            .unwrap()
            .unwrap()
            .permissions,
        vec!["realtime:publish", "rooms:manage"]
    );
    assert_not_found(s.set_app_permissions("no-such-app", vec![]).await, "app");
}

// ---------------------------------------------------------------------------
// Quiz
// ---------------------------------------------------------------------------

async fn quiz_questions(s: &Store) {
    let r = room(s).await;
    let q1 = s.create_question(&r.id, question("4")).await.unwrap();
    assert!(q1.id.starts_with("q_"));
    assert_eq!((q1.question_number, q1.total_questions), (1, 1));
    assert_eq!(q1.start_time_ms, None);
    let q2 = s
        .create_question(
            &r.id,
            NewQuestion {
                total_questions: Some(5),
                ..question("3")
            },
        )
        .await
        .unwrap();
    assert_eq!((q2.question_number, q2.total_questions), (2, 5));
    let q3 = s
        .create_question(
            &r.id,
            NewQuestion {
                question_number: Some(7),
                ..question("3")
            },
        )
        .await
        .unwrap();
    assert_eq!((q3.question_number, q3.total_questions), (7, 7));

    assert_invalid(s.create_question(&r.id, question("6")).await);
    assert_invalid(
        s.create_question(
            &r.id,
            NewQuestion {
                options: vec!["4".into()],
                ..question("4")
            },
        )
        .await,
    );
    assert_invalid(
        s.create_question(
            &r.id,
            NewQuestion {
                options: vec!["4".into(), "4".into()],
                ..question("4")
            },
        )
        .await,
    );
    assert_invalid(
        s.create_question(
            &r.id,
            NewQuestion {
                time_limit_secs: 0,
                ..question("4")
            },
        )
        .await,
    );
    assert_invalid(
        s.create_question(
            &r.id,
            NewQuestion {
                question_number: Some(3),
                total_questions: Some(2),
                ..question("4")
            },
        )
        .await,
    );
    assert_room_not_found(s.create_question("room_nope", question("4")).await);

    let from_json: NewQuestion = serde_json::from_value(json!({
        "question": "Capital of France?",
        "options": ["Paris", "Lyon"],
        "answer": "Paris",
        "timeLimit": 20
    }))
    .unwrap();
    assert_eq!(from_json.time_limit_secs, 20);

    assert_eq!(s.get_question(&q1.id).await.unwrap(), Some(q1.clone()));
    assert_eq!(s.get_question("q_nope").await.unwrap(), None);
    assert_eq!(s.list_questions(&r.id).await.unwrap().len(), 3);
    assert!(q1.to_published("t".into(), None).is_none());

    let start = 1_736_935_200_123;
    let published = s.publish_question(&r.id, &q1.id, start).await.unwrap();
    assert_eq!(published.start_time_ms, Some(start));
    assert!(published.is_published());
    assert_conflict(s.publish_question(&r.id, &q1.id, start + 1).await);
    assert_not_found(s.publish_question(&r.id, "q_nope", start).await, "question");
    let other = room(s).await;
    assert_not_found(
        s.publish_question(&other.id, &q2.id, start).await,
        "question",
    );
    assert_room_not_found(s.publish_question("room_nope", &q2.id, start).await);
    assert_eq!(
        s.get_question(&q2.id).await.unwrap().unwrap().start_time_ms,
        None
    );

    let wire = published
        .to_published("2025-01-15T10:00:01.000Z".into(), Some("evt".into()))
        .unwrap();
    assert_eq!(wire.start_time, "2025-01-15T10:00:00.123Z");
    assert_eq!(wire.time_limit, 30);
    assert_eq!(wire.room_id, r.id);
    let json = serde_json::to_value(&published).unwrap();
    assert_eq!(json["timeLimit"], 30);
    assert_eq!(json["startTime"], "2025-01-15T10:00:00.123Z");
    assert_eq!(serde_json::to_value(&q2).unwrap()["startTime"], Value::Null);
}

async fn quiz_answers_and_ranks(s: &Store) {
    let (r, ps) = room_with_participants(s, 4).await;
    let q = s.create_question(&r.id, question("4")).await.unwrap();
    let (p0, u0) = &ps[0];
    assert_invalid(s.record_answer(&q.id, &u0.id, &p0.id, "4", now_ms()).await);

    let start = 1_700_000_000_000;
    s.publish_question(&r.id, &q.id, start).await.unwrap();

    let a = s
        .record_answer(&q.id, &u0.id, &p0.id, "4", start + 1_500)
        .await
        .unwrap();
    assert_eq!(
        a,
        AnswerOutcome {
            correct: true,
            response_time_secs: 1.5,
            rank: Some(1)
        }
    );
    let b = s
        .record_answer(&q.id, &ps[1].1.id, &ps[1].0.id, "3", start + 2_000)
        .await
        .unwrap();
    assert_eq!((b.correct, b.rank), (false, None));
    let c = s
        .record_answer(&q.id, &ps[2].1.id, &ps[2].0.id, "4", start + 2_345)
        .await
        .unwrap();
    assert_eq!((c.correct, c.rank), (true, Some(2)));
    assert!((c.response_time_secs - 2.345).abs() < 1e-9);

    // Refusals.
    match s
        .record_answer(&q.id, &u0.id, &p0.id, "3", start + 3_000)
        .await
    {
        Err(StoreError::Invalid(m)) => assert!(m.contains("already answered"), "{m}"),
        r => panic!("expected already answered, got {r:?}"),
    }
    let (p3, u3) = &ps[3];
    assert_invalid(
        s.record_answer(&q.id, &u3.id, &p3.id, "42", start + 1_000)
            .await,
    );
    assert_invalid(
        s.record_answer(&q.id, &u3.id, &p3.id, "4", start + 30_001)
            .await,
    );
    // Exactly at the limit is still in time.
    let last = s
        .record_answer(&q.id, &u3.id, &p3.id, "4", start + 30_000)
        .await
        .unwrap();
    assert_eq!(last.rank, Some(3));
    assert_eq!(last.response_time_secs, 30.0);

    let outsider = user(s, "outsider").await;
    match s
        .record_answer(&q.id, &outsider.id, &p3.id, "4", start)
        .await
    {
        Err(StoreError::Forbidden(_)) => {}
        r => panic!("expected Forbidden, got {r:?}"),
    }
    assert_not_found(
        s.record_answer("q_nope", &u0.id, &p0.id, "4", start).await,
        "question",
    );

    // A clock that reads before startTime gives 0, not a negative time.
    let q2 = s.create_question(&r.id, question("4")).await.unwrap();
    s.publish_question(&r.id, &q2.id, start).await.unwrap();
    let early = s
        .record_answer(&q2.id, &u0.id, &p0.id, "4", start - 50)
        .await
        .unwrap();
    assert_eq!(early.response_time_secs, 0.0);
}

async fn quiz_concurrent_ranks(s: &Store) {
    let (r, ps) = room_with_participants(s, 6).await;
    let q = s.create_question(&r.id, question("4")).await.unwrap();
    let start = now_ms();
    s.publish_question(&r.id, &q.id, start).await.unwrap();
    let mut tasks = Vec::new();
    for (p, u) in ps.clone() {
        let s = s.clone();
        let qid = q.id.clone();
        tasks.push(tokio::spawn(async move {
            s.record_answer(&qid, &u.id, &p.id, "4", start + 10).await
        }));
    }
    let mut ranks = Vec::new();
    for t in tasks {
        ranks.push(t.await.unwrap().unwrap().rank.unwrap());
    }
    ranks.sort_unstable();
    assert_eq!(ranks, vec![1, 2, 3, 4, 5, 6]);
}

// ---------------------------------------------------------------------------
// Durability
// ---------------------------------------------------------------------------

/// A second store on the same database sees everything the first committed
/// (on SQLite: after the first is closed and dropped, from the file).
async fn reconnect_sees_data(s: &Store) {
    let (r, ps) = room_with_participants(s, 2).await;
    let p = s.create_prize(&r.id, prize(2)).await.unwrap();
    let (won, _, _) = s.draw_winners(&r.id, &p.id, 1).await.unwrap();
    let secret = s.create_refresh_token(&ps[0].1.id).await.unwrap();
    match s.backend() {
        Backend::Postgres => {
            // A new pool on the URL the first store was opened with.
            let url = s.pool().connect_options().database_url.to_string();
            let again = Store::connect(&url).await.unwrap();
            check_reconnected(&again, &r, &p, &won[0], &secret, &ps[0].1).await;
        }
        Backend::Sqlite => {
            // Covered with a real file by `sqlite_file_survives_reopen`.
        }
    }
}

async fn check_reconnected(s: &Store, r: &Room, p: &Prize, w: &WinnerFull, secret: &str, u: &User) {
    assert_eq!(s.get_room(&r.id).await.unwrap().as_ref(), Some(r));
    assert_eq!(
        s.get_prize(&r.id, &p.id)
            .await
            .unwrap()
            .unwrap()
            .quantity_remaining,
        1
    );
    let winners = s.list_winners(&r.id).await.unwrap();
    assert_eq!(winners.len(), 1);
    assert_eq!(winners[0].winner.id, w.winner.id);
    assert_eq!(s.list_participants(&r.id).await.unwrap().len(), 2);
    rotate(s, secret, &u.id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let s = Store::connect(&url).await.unwrap();
    let (r, ps) = room_with_participants(&s, 2).await;
    let p = s.create_prize(&r.id, prize(2)).await.unwrap();
    let (won, _, _) = s.draw_winners(&r.id, &p.id, 1).await.unwrap();
    let secret = s.create_refresh_token(&ps[0].1.id).await.unwrap();
    s.close().await;
    drop(s);

    let again = Store::connect(&url).await.unwrap();
    check_reconnected(&again, &r, &p, &won[0], &secret, &ps[0].1).await;
    // Migrations ran once: reconnecting did not fail or duplicate anything.
    assert_eq!(again.list_rooms().await.unwrap().len(), 1);
}

#[tokio::test]
async fn sqlite_pragmas_are_durable() {
    let (s, dir) = temp_store().await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(busy, 10_000);
    s.ping().await.unwrap();
    assert!(dir.path().join("store.db-wal").exists() || dir.path().join("store.db").exists());
}

#[tokio::test]
async fn sqlite_file_is_created_without_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    let s = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    room(&s).await;
    assert!(path.exists());
}

#[tokio::test]
async fn memory_store_works() {
    let s = Store::memory().await.unwrap();
    let (r, _) = room_with_participants(&s, 3).await;
    let p = s.create_prize(&r.id, prize(2)).await.unwrap();
    let (won, after, _) = s.draw_winners(&r.id, &p.id, 2).await.unwrap();
    assert_eq!((won.len(), after.quantity_remaining), (2, 0));
}

#[tokio::test]
async fn bad_urls_are_refused() {
    assert_invalid(Store::connect("mysql://localhost/db").await);
    assert_invalid(Store::connect("nonsense").await);
}

/// Every operation's future is `Send`, so axum handlers can await it.
#[allow(dead_code)]
fn futures_are_send(s: &Store) {
    fn send<T: Send>(_: &T) {}
    send(&Store::connect(""));
    send(&s.create_user("", None));
    send(&s.get_user(""));
    send(&s.insert_token("", "", 0));
    send(&s.token_state(""));
    send(&s.revoke_token(""));
    send(&s.create_refresh_token(""));
    send(&s.rotate_refresh_token("", "", 0));
    send(&s.revoke_refresh_token(""));
    send(&s.revoke_user_tokens(""));
    send(&s.issue_tokens("", "", 0));
    send(&s.revoked_since(0));
    send(&s.create_room("", "", ""));
    send(&s.get_room(""));
    send(&s.update_room("", RoomPatch::default()));
    send(&s.delete_room(""));
    send(&s.add_participant("", "", ""));
    send(&s.get_participant("", ""));
    send(&s.find_participant("", ""));
    send(&s.update_participant_role("", "", ""));
    send(&s.remove_participant("", ""));
    send(&s.remove_participant_with_wins("", ""));
    send(&s.list_participants(""));
    send(&s.list_participants_with_users(""));
    send(&s.create_prize("", NewPrize::default()));
    send(&s.get_prize("", ""));
    send(&s.update_prize("", "", PrizePatch::default()));
    send(&s.delete_prize("", ""));
    send(&s.list_prizes(""));
    send(&s.draw_winners("", "", 1));
    send(&s.remove_winner("", ""));
    send(&s.list_winners(""));
    send(&s.create_notification("", "", "", "", Map::new()));
    send(&s.mark_notification_read("", ""));
    send(&s.list_notifications(""));
    send(&s.create_app("", "", vec![]));
    send(&s.get_app(""));
    send(&s.verify_app("", ""));
    send(&s.set_app_permissions("", vec![]));
    send(&s.create_question("", NewQuestion::default()));
    send(&s.publish_question("", "", 0));
    send(&s.get_question(""));
    send(&s.record_answer("", "", "", "", 0));
}
