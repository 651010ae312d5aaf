//! A throwaway PostgreSQL server for tests (the store's suite, the cluster
//! tests of this crate and of the conformance runner).
//!
//! [`PgHarness::start`] uses the server named by `TEST_DATABASE_URL` if that
//! is set; otherwise it finds `initdb`, `pg_ctl` and `postgres` (in the
//! highest `/usr/lib/postgresql/*/bin`, else on `PATH`), creates a cluster in
//! a temp dir and starts it on `127.0.0.1` at a free port in 20000..30000
//! (below the ephemeral range, so no outgoing connection can take it between
//! our check and the server's bind). As root the binaries run as the
//! `postgres` system user through `runuser` (initdb refuses root). Dropping
//! the harness stops that postmaster (`pg_ctl -m immediate stop` on its data
//! dir, which targets only our server) and removes the dir. With neither
//! binaries nor `TEST_DATABASE_URL`, `start` panics: the tests never skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tempfile::TempDir;

use super::{first_port, next_free_port};

/// How many ports we try before giving up on starting the cluster.
const START_ATTEMPTS: u32 = 20;

pub struct PgHarness {
    /// A URL of a database on the server we may connect to for
    /// `CREATE DATABASE` (TEST_DATABASE_URL's own, or `postgres` on ours).
    admin_url: String,
    cluster: Option<Cluster>,
}

/// Our own postmaster; stopped on drop.
struct Cluster {
    dir: TempDir,
    bin: PathBuf,
    as_postgres: bool,
}

impl PgHarness {
    /// Uses TEST_DATABASE_URL or starts a cluster; panics if neither is
    /// possible, saying what to install.
    pub fn start() -> PgHarness {
        let url = std::env::var("TEST_DATABASE_URL").unwrap_or_default();
        if !url.trim().is_empty() {
            return PgHarness {
                admin_url: url.trim().to_string(),
                cluster: None,
            };
        }
        let Some(bin) = find_bin_dir() else {
            panic!(
                "the PostgreSQL store suite needs PostgreSQL: no initdb, pg_ctl and postgres in \
                 /usr/lib/postgresql/*/bin or on PATH, and TEST_DATABASE_URL is not set; \
                 install the Debian package postgresql, as .ci/run does, or set TEST_DATABASE_URL"
            );
        };
        let (cluster, port) = Cluster::start(bin);
        PgHarness {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            cluster: Some(cluster),
        }
    }

    /// Whether this harness started its own server (as opposed to using
    /// TEST_DATABASE_URL).
    pub fn is_throwaway(&self) -> bool {
        self.cluster.is_some()
    }

    /// Stops our server at once (`pg_ctl -m immediate stop`), for tests
    /// of a database outage under a running reference server; panics on a
    /// `TEST_DATABASE_URL` server, which is not ours to stop.
    pub fn stop(&self) {
        let cluster = self
            .cluster
            .as_ref()
            .expect("PostgreSQL test harness: a TEST_DATABASE_URL server is not ours to stop");
        cluster.stop();
    }

    /// Creates an empty database `name` (dropping a leftover one of that
    /// name first) and returns its URL.
    pub async fn fresh_database(&self, name: &str) -> String {
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "database name {name:?} must be a plain lowercase identifier"
        );
        let mut conn = self.admin().await;
        for sql in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL test harness: {sql}: {e}"));
        }
        conn.close().await.ok();
        with_database(&self.admin_url, name)
    }

    /// Drops database `name`; every connection to it must be closed.
    pub async fn drop_database(&self, name: &str) {
        let mut conn = self.admin().await;
        let sql = format!("DROP DATABASE IF EXISTS {name}");
        sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL test harness: {sql}: {e}"));
        conn.close().await.ok();
    }

    async fn admin(&self) -> PgConnection {
        PgConnection::connect(&self.admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL test harness: connect to {}: {e}",
                    crate::store::redact_url(&self.admin_url)
                )
            })
    }
}

impl Cluster {
    /// initdb + pg_ctl start; returns the cluster and its port.
    fn start(bin: PathBuf) -> (Cluster, u16) {
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("store-pg-")
            .tempdir()
            .expect("PostgreSQL test harness: temp dir");
        if as_postgres {
            // initdb refuses to run as root: hand the dir to `postgres`.
            let out = Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .output()
                .expect("PostgreSQL test harness: run chown");
            check(
                &out,
                "chown postgres: <temp dir> (is there a `postgres` system user?)",
            );
        }
        let cluster = Cluster {
            dir,
            bin,
            as_postgres,
        };
        let data = cluster.data_dir();
        let out = cluster
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8"])
            .args(["--no-locale", "-N", "-D"])
            .arg(&data)
            .output()
            .expect("PostgreSQL test harness: run initdb");
        check(&out, "initdb");

        let mut port = first_port();
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            port = next_free_port(port);
            let out = cluster
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(cluster.log_file())
                .args(["-w", "-t", "60", "-o"])
                .arg(format!(
                    "-k '{}' -h 127.0.0.1 -p {port} -c fsync=off -c synchronous_commit=off \
                     -c full_page_writes=off -c max_connections=400",
                    cluster.dir.path().display()
                ))
                .arg("start")
                .output()
                .expect("PostgreSQL test harness: run pg_ctl start");
            if out.status.success() {
                return (cluster, port);
            }
            // Most likely someone took the port after our check; make sure
            // nothing of this attempt is left running, then try the next one.
            cluster.stop();
            last_log = std::fs::read_to_string(cluster.log_file()).unwrap_or_default();
            port = if port >= 29_999 { 20_000 } else { port + 1 };
        }
        panic!(
            "PostgreSQL test harness: pg_ctl start failed {START_ATTEMPTS} times; \
             server log:\n{last_log}"
        );
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        // A cwd the `postgres` user can enter (ours may not be).
        c.current_dir(self.dir.path());
        c
    }

    /// Stops our postmaster (the one whose data dir is ours) at once.
    fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        // TempDir's own drop removes the dir.
    }
}

/// The bin dir holding initdb, pg_ctl and postgres: the highest version
/// under /usr/lib/postgresql, else the first PATH entry that has them.
fn find_bin_dir() -> Option<PathBuf> {
    let complete = |d: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|t| d.join(t).is_file())
    };
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version = name
                .split('.')
                .map(|p| p.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = e.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|d| complete(d))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[track_caller]
fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "PostgreSQL test harness: {what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `url` with its database (the path) replaced by `db`; a query string is
/// kept.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

#[cfg(test)]
#[test]
fn database_is_replaced_in_urls() {
    assert_eq!(
        with_database("postgres://u:p@h:5432/orig", "case_1"),
        "postgres://u:p@h:5432/case_1"
    );
    assert_eq!(
        with_database("postgresql://u@h/orig?sslmode=disable", "x"),
        "postgresql://u@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
}
