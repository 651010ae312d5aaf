//! The second implementation of the protocol (`altserver/`, Node) as a
//! fixture: a deployment that is not ours, for the tests that prove the
//! tools reach one (its own admin API, tokens signed by whoever holds the
//! secret, optionally no long-polling).
//!
//! Needs `node` (Debian package `nodejs`) and `altserver/node_modules`
//! (`npm ci` in `altserver/`, which `scripts/test` runs): a missing one is
//! a panic saying so, never a skip.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// The HS256 secret altserver verifies tokens with.
pub const JWT_SECRET: &str = "altserver-fixture-secret";
/// The admin API key (`Authorization: Token KEY`).
pub const ADMIN_KEY: &str = "altserver-fixture-admin";

/// A running altserver; killed (its own PID) when dropped.
pub struct AltServer {
    /// Socket.IO and the protocol's REST endpoints, `http://127.0.0.1:PORT`.
    pub socket: String,
    /// The admin API's base, `http://127.0.0.1:PORT` (routes under `/admin/v2`).
    pub admin: String,
    child: tokio::process::Child,
}

/// Starts altserver on loopback ports with [`JWT_SECRET`], [`ADMIN_KEY`],
/// the users `(id, name)` seeded, and `args` (e.g. `--transports
/// websocket`).
pub async fn start(args: &[&str], users: &[(&str, &str)]) -> AltServer {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../altserver");
    assert!(
        dir.join("node_modules").is_dir(),
        "altserver/node_modules is missing: run `npm ci` in altserver/ (Debian packages nodejs and npm)"
    );
    let list: Vec<serde_json::Value> = users
        .iter()
        .map(|(id, name)| serde_json::json!({"id": id, "name": name}))
        .collect();
    let users_file = std::env::temp_dir().join(format!(
        "altserver-users-{}-{}.json",
        std::process::id(),
        super::first_port()
    ));
    std::fs::write(
        &users_file,
        serde_json::to_vec(&list).expect("users serialize"),
    )
    .expect("write the users file");
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("server.js"))
        .args(["--jwt-secret", JWT_SECRET, "--admin-key", ADMIN_KEY])
        .arg("--users")
        .arg(&users_file)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the `node` command (Debian package nodejs)");
    let stdout = child.stdout.take().expect("piped stdout");
    let line = tokio::time::timeout(Duration::from_secs(20), async {
        BufReader::new(stdout).lines().next_line().await
    })
    .await
    .expect("altserver printed its addresses within 20 s")
    .expect("altserver's stdout")
    .expect("altserver exited before it was ready");
    let _ = std::fs::remove_file(&users_file);
    let ready: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    let field = |name: &str| {
        ready[name]
            .as_str()
            .unwrap_or_else(|| panic!("no `{name}` in {line}"))
            .to_owned()
    };
    AltServer {
        socket: field("socket"),
        admin: field("admin"),
        child,
    }
}

impl AltServer {
    /// Creates a public room over the admin API; returns its id.
    pub async fn create_room(&self, title: &str) -> String {
        let res = reqwest::Client::new()
            .post(format!("{}/admin/v2/rooms", self.admin))
            .header("Authorization", format!("Token {ADMIN_KEY}"))
            .json(&serde_json::json!({"title": title, "isPrivate": false}))
            .send()
            .await
            .expect("altserver admin API");
        assert_eq!(res.status().as_u16(), 201, "create room");
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("a Location header")
            .to_owned();
        location.rsplit('/').next().unwrap_or_default().to_owned()
    }
}

impl Drop for AltServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
