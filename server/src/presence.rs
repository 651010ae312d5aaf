//! Who is online in which room: a user is online while at least one of
//! their sockets is subscribed (protocol notes N11).

use std::collections::HashMap;
use std::sync::Mutex;

use protocol::payload::{OnlineUser, UserInfo};

#[derive(Debug)]
struct Entry {
    sockets: u32,
    user: UserInfo,
    since_ms: i64,
}

/// Per-process presence table: room id → user id → entry.
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
        let mut list: Vec<_> = rooms
            .get(room)
            .map(|users| users.values().collect())
            .unwrap_or_default();
        list.sort_by(|a: &&Entry, b| a.since_ms.cmp(&b.since_ms).then(a.user.id.cmp(&b.user.id)));
        list.into_iter()
            .map(|e| OnlineUser {
                id: e.user.id.clone(),
                name: e.user.name.clone(),
                avatar: e.user.avatar.clone(),
                connected_at: protocol::timestamp::from_unix_ms(e.since_ms),
            })
            .collect()
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
