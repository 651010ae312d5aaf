//! Access tokens for the virtual users, acquired before the load starts
//! (set-up time, not load).

use std::path::Path;
use std::sync::Arc;

use driver::identity::{Identity, IdentityMode};
use driver::profile::Vars;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::vars::expand_text;

/// Driver requests in flight while creating users.
pub const SETUP_CONCURRENCY: usize = 32;

/// One VU's credentials.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cred {
    pub token: String,
    pub user_id: Option<String>,
    /// What renews `token` after `token:expired` (the profile's
    /// `refresh_token` action), when the source gives one.
    pub refresh_token: Option<String>,
}

/// What a driver token job needs.
pub(crate) struct DriverTokens {
    /// The profile's `[identity]`: who the users are and how their tokens
    /// are made.
    pub identity: Arc<Identity>,
    pub http: reqwest::Client,
    pub target: String,
    pub profile: Arc<driver::profile::Profile>,
    pub base_vars: Arc<Vars>,
    pub run_vars: Arc<Vars>,
    pub run_id: String,
    pub join_room: Option<String>,
    pub role: String,
    pub ttl_secs: u64,
}

/// Gives each wanted VU a user and a token as the profile's identity says
/// (`mint`: `create_user` and `mint_token`; `sign`: a user from
/// `create_user` or the static list, a token signed here; `static`: the
/// listed users' tokens, VU `g` getting user `g % users`), then
/// `add_participant` to `join_room` (once per user), [`SETUP_CONCURRENCY`]
/// at a time.
/// `wanted[i]` is the global VU number of local VU `i`, or `None` for a VU
/// that never runs. The first failure stops the set-up.
pub(crate) async fn from_driver(
    d: DriverTokens,
    wanted: Vec<Option<u64>>,
) -> Result<Vec<Cred>, String> {
    let room = match &d.join_room {
        Some(t) => Some(
            expand_text(t, |n| d.run_vars.get(n).cloned())
                .map_err(|e| format!("tokens.join_room: {e}"))?,
        ),
        None => None,
    };
    let d = Arc::new(d);
    let room = Arc::new(room);
    let slots = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut creds = vec![Cred::default(); wanted.len()];
    let mut jobs = JoinSet::new();
    for (i, vu) in wanted.into_iter().enumerate() {
        let Some(vu) = vu else { continue };
        // Reap finished jobs as we go, so a failure stops the queueing.
        while let Some(done) = jobs.try_join_next() {
            store(&mut creds, done)?;
        }
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (d, room) = (d.clone(), room.clone());
        jobs.spawn(async move {
            let _permit = permit;
            (i, one_user(&d, room.as_deref(), vu).await)
        });
    }
    while let Some(done) = jobs.join_next().await {
        store(&mut creds, done)?;
    }
    Ok(creds)
}

fn store(
    creds: &mut [Cred],
    done: Result<(usize, Result<Cred, String>), tokio::task::JoinError>,
) -> Result<(), String> {
    let (i, cred) = done.map_err(|e| format!("set-up task: {e}"))?;
    creds[i] = cred?;
    Ok(())
}

async fn one_user(d: &DriverTokens, room: Option<&str>, vu: u64) -> Result<Cred, String> {
    let call = |action: &'static str, vars: Vars| async move {
        driver::call(&d.http, &d.target, &d.profile, &d.base_vars, action, &vars)
            .await
            .map(|(_, _, extracted)| extracted)
            .map_err(|e| e.to_string())
    };
    let identity = &d.identity;
    let ttl = i64::try_from(d.ttl_secs).unwrap_or(i64::MAX);
    let sign = |user_id: &str| {
        identity
            .sign(user_id, ttl)
            .map(|(token, _)| token)
            .map_err(|e| e.to_string())
    };
    let sign_refresh = |user_id: &str| {
        identity
            .sign_refresh(user_id)
            .transpose()
            .map_err(|e| e.to_string())
    };
    // A listed user joins the room once, whatever number of VUs share it.
    let mut first_of_user = true;
    let (user_id, token, refresh_token) = if identity.creates_users() {
        let mut vars = Vars::new();
        vars.insert("name".into(), json!(format!("lg {} vu{vu}", d.run_id)));
        let created = call("create_user", vars).await?;
        let user_id = created
            .get("userId")
            .cloned()
            .ok_or("create_user extracted no `userId`")?;
        let (token, refresh) = if identity.mode == IdentityMode::Sign {
            (sign(&text(&user_id))?, sign_refresh(&text(&user_id))?)
        } else {
            let mut vars = Vars::new();
            vars.insert("userId".into(), user_id.clone());
            vars.insert("ttlSeconds".into(), json!(d.ttl_secs));
            let minted = call("mint_token", vars).await?;
            let token = match minted.get("token") {
                Some(Value::String(t)) => t.clone(),
                _ => return Err("mint_token extracted no string `token`".into()),
            };
            let refresh = match minted.get("refreshToken") {
                Some(Value::String(t)) => Some(t.clone()),
                _ => None,
            };
            (token, refresh)
        };
        (user_id, token, refresh)
    } else {
        let known = identity
            .user(vu)
            .ok_or("the profile's identity lists no users")?;
        first_of_user = vu < identity.users.len() as u64;
        let (token, refresh) = match identity.mode {
            IdentityMode::Sign => (sign(&known.id)?, sign_refresh(&known.id)?),
            _ => (known.token.clone().unwrap_or_default(), None),
        };
        (json!(known.id), token, refresh)
    };
    if let Some(room) = room.filter(|_| first_of_user) {
        let mut vars = Vars::new();
        vars.insert("roomId".into(), json!(room));
        vars.insert("userId".into(), user_id.clone());
        vars.insert("role".into(), json!(d.role));
        call("add_participant", vars).await?;
    }
    Ok(Cred {
        token,
        user_id: Some(text(&user_id)),
        refresh_token,
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads `token[,userId]` rows (an optional header row naming the
/// columns is skipped; blank lines are ignored). VU number `g` gets row
/// `g % rows`, so shares use distinct rows while there are enough.
pub(crate) fn from_csv(path: &Path, wanted: &[Option<u64>]) -> Result<Vec<Cred>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| format!("token file {}: {e}", path.display()))?;
    let mut rows = Vec::new();
    for (i, rec) in reader.records().enumerate() {
        let rec = rec.map_err(|e| format!("token file {}: {e}", path.display()))?;
        let token = rec.get(0).unwrap_or("").to_owned();
        if i == 0 && token.eq_ignore_ascii_case("token") {
            continue;
        }
        if token.is_empty() {
            continue;
        }
        let cell = |i: usize| rec.get(i).filter(|s| !s.is_empty()).map(str::to_owned);
        rows.push(Cred {
            token,
            user_id: cell(1),
            refresh_token: cell(2),
        });
    }
    if rows.is_empty() {
        return Err(format!("token file {} has no tokens", path.display()));
    }
    Ok(wanted
        .iter()
        .map(|g| match g {
            Some(g) => rows[(*g % rows.len() as u64) as usize].clone(),
            None => Cred::default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_with_and_without_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "token,userId\n t1 ,u1\nt2\n\nt3,u3\n").unwrap();
        let c = from_csv(&p, &[Some(0), Some(1), None, Some(2), Some(4)]).unwrap();
        assert_eq!(c[0].token, "t1");
        assert_eq!(c[0].user_id.as_deref(), Some("u1"));
        assert_eq!(c[1].token, "t2");
        assert_eq!(c[1].user_id, None);
        assert_eq!(c[2].token, "");
        assert_eq!(c[3].token, "t3");
        assert_eq!(c[4].token, "t2", "wraps around");
        assert_eq!(c[0].refresh_token, None);
        std::fs::write(&p, "token,userId,refreshToken\nt1,u1,r1\nt2,,\n").unwrap();
        let c = from_csv(&p, &[Some(0), Some(1)]).unwrap();
        assert_eq!(c[0].refresh_token.as_deref(), Some("r1"));
        assert_eq!(c[1].refresh_token, None);
        std::fs::write(&p, "abc\n").unwrap();
        assert_eq!(from_csv(&p, &[Some(0)]).unwrap()[0].token, "abc");
        std::fs::write(&p, "token\n").unwrap();
        assert!(from_csv(&p, &[Some(0)]).is_err());
        assert!(from_csv(&dir.path().join("missing.csv"), &[Some(0)]).is_err());
    }
}
