//! Who is online in which room: a user is online while at least one of
//! their sockets is subscribed (protocol notes N11).
//!
//! [`PresenceStore`] is where the sockets are counted: this process alone
//! ([`Presence`]), or Redis, shared by every node of a cluster
//! ([`crate::cluster::RedisPresence`]); the server picks one at start.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use protocol::payload::{OnlineUser, UserInfo};

/// Counts the subscribed sockets of each user in each room.
///
/// `join` and `leave` answer whether the user came online / went offline
/// with this socket, so exactly one `presence:user_online` and one
/// `presence:user_offline` are sent per user, wherever their sockets are.
pub trait PresenceStore: Send + Sync {
    /// Counts one more subscribed socket of `user` in `room`; true when it
    /// is the user's first.
    fn join<'a>(
        &'a self,
        room: &'a str,
        user: &'a UserInfo,
        now_ms: i64,
    ) -> BoxFuture<'a, anyhow::Result<bool>>;

    /// Counts one subscribed socket less; true when it was the user's last.
    fn leave<'a>(&'a self, room: &'a str, user_id: &'a str) -> BoxFuture<'a, anyhow::Result<bool>>;

    /// The users online in `room`, oldest first.
    fn online<'a>(&'a self, room: &'a str) -> BoxFuture<'a, anyhow::Result<Vec<OnlineUser>>>;

    /// Forgets a room (it was deleted).
    fn drop_room<'a>(&'a self, room: &'a str) -> BoxFuture<'a, anyhow::Result<()>>;
}

impl PresenceStore for Presence {
    fn join<'a>(
        &'a self,
        room: &'a str,
        user: &'a UserInfo,
        now_ms: i64,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
        let first = Presence::join(self, room, user, now_ms);
        Box::pin(std::future::ready(Ok(first)))
    }

    fn leave<'a>(&'a self, room: &'a str, user_id: &'a str) -> BoxFuture<'a, anyhow::Result<bool>> {
        let last = Presence::leave(self, room, user_id);
        Box::pin(std::future::ready(Ok(last)))
    }

    fn online<'a>(&'a self, room: &'a str) -> BoxFuture<'a, anyhow::Result<Vec<OnlineUser>>> {
        let users = Presence::online(self, room);
        Box::pin(std::future::ready(Ok(users)))
    }

    fn drop_room<'a>(&'a self, room: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Presence::drop_room(self, room);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Sorts a room's online users oldest first (ties by id) and renders them.
pub fn sorted_online(mut list: Vec<(UserInfo, i64)>) -> Vec<OnlineUser> {
    list.sort_by(|(a, a_since), (b, b_since)| a_since.cmp(b_since).then(a.id.cmp(&b.id)));
    list.into_iter()
        .map(|(user, since_ms)| OnlineUser {
            id: user.id,
            name: user.name,
            avatar: user.avatar,
            connected_at: protocol::timestamp::from_unix_ms(since_ms),
        })
        .collect()
}

#[derive(Debug)]
struct Entry {
    sockets: u32,
    user: UserInfo,
    since_ms: i64,
}

/// Per-process presence table (one server alone): room id → user id →
/// entry.
#[derive(Debug, Default)]
pub struct Presence {
    rooms: Mutex<HashMap<String, HashMap<String, Entry>>>,
}

impl Presence {
    /// Counts one more subscribed socket of `user` in `room`; true when it
    /// is the user's first (the user came online).
    pub fn join(&self, room: &str, user: &UserInfo, now_ms: i64) -> bool {
        let mut rooms = self.rooms.lock().expect("presence lock");
        let users = rooms.entry(room.to_owned()).or_default();
        match users.get_mut(&user.id) {
            Some(e) => {
                e.sockets += 1;
                false
            }
            None => {
                users.insert(
                    user.id.clone(),
                    Entry {
                        sockets: 1,
                        user: user.clone(),
                        since_ms: now_ms,
                    },
                );
                true
            }
        }
    }

    /// Counts one subscribed socket less; true when it was the user's last
    /// (the user went offline).
    pub fn leave(&self, room: &str, user_id: &str) -> bool {
        let mut rooms = self.rooms.lock().expect("presence lock");
        let Some(users) = rooms.get_mut(room) else {
            return false;
        };
        let Some(e) = users.get_mut(user_id) else {
            return false;
        };
        e.sockets -= 1;
        if e.sockets > 0 {
            return false;
        }
        users.remove(user_id);
        if users.is_empty() {
            rooms.remove(room);
        }
        true
    }

    /// The users online in `room`, oldest first.
    pub fn online(&self, room: &str) -> Vec<OnlineUser> {
        let rooms = self.rooms.lock().expect("presence lock");
        let list = rooms
            .get(room)
            .map(|users| {
                users
                    .values()
                    .map(|e| (e.user.clone(), e.since_ms))
                    .collect()
            })
            .unwrap_or_default();
        sorted_online(list)
    }

    /// Forgets a room (it was deleted).
    pub fn drop_room(&self, room: &str) {
        self.rooms.lock().expect("presence lock").remove(room);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserInfo {
        UserInfo {
            id: id.into(),
            name: format!("name of {id}"),
            avatar: None,
        }
    }

    #[test]
    fn two_sockets_one_user_one_online_one_offline() {
        let p = Presence::default();
        assert!(p.join("r", &user("u1"), 1));
        assert!(!p.join("r", &user("u1"), 2), "second tab is not news");
        assert!(p.join("r", &user("u2"), 3));
        let online = p.online("r");
        assert_eq!(
            online.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
            ["u1", "u2"]
        );
        assert!(!p.leave("r", "u1"));
        assert!(p.leave("r", "u1"), "last tab closed");
        assert!(!p.leave("r", "u1"), "already gone");
        assert!(p.leave("r", "u2"));
        assert!(p.online("r").is_empty());
    }
}
