//! `conformance profile check`: a dry run of a profile against a target.
//!
//! Calls each driver action once, in dependency order (a user, a token, a
//! room, what lives in rooms, then the deletes), with variables like the
//! cases pass and what earlier actions extracted; and says per action
//! whether it works, is missing or fails (with the status and body), and
//! which cases each missing or failing action costs (from the cases'
//! `needs`). So a profile can be tried before a run, and a broken action is
//! named instead of showing up as dozens of skipped or erroring cases.

use std::time::{Duration, Instant};

use driver::identity::{Identity, IdentityMode};
use driver::{Action, DriverError};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cases;
use crate::profile::{Profile, Vars};

/// The verdict on one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// It answered as the profile expects, with everything it extracts.
    Ok,
    /// The profile does not define it.
    Missing,
    /// It failed: an unexpected status, no answer, or an extraction the
    /// answer lacks.
    Failed,
    /// Not tried: a variable it needs comes from an action that is
    /// missing or failed, or the identity forbids it (a listed user is
    /// never deleted).
    NotRun,
    /// Not called: the profile's `[identity]` stands in for it (a token
    /// signed here, a listed user), as in a run.
    Provided,
}

/// One action's line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ActionCheck {
    pub action: Action,
    pub state: State,
    /// The answer's status (of the step that failed, for a failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed or was not run; for a failure with a status, the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub duration_ms: u64,
    /// The cases that need the action (what a missing or failing one costs).
    pub cases: Vec<&'static str>,
}

/// The whole report (`--json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub profile: String,
    pub target: String,
    pub actions: Vec<ActionCheck>,
    /// Profile actions that are not driver actions: not checked.
    pub unknown_actions: Vec<String>,
}

impl CheckReport {
    pub fn count(&self, state: &State) -> usize {
        self.actions.iter().filter(|a| a.state == *state).count()
    }

    /// Whether a defined action failed.
    pub fn failed(&self) -> bool {
        self.count(&State::Failed) > 0
    }

    /// The human report.
    pub fn text(&self) -> String {
        let mut out = format!("profile check: {} against {}\n", self.profile, self.target);
        for a in &self.actions {
            let state = match a.state {
                State::Ok => "OK",
                State::Missing => "MISSING",
                State::Failed => "FAILED",
                State::NotRun => "NOT RUN",
                State::Provided => "PROVIDED",
            };
            let mut line = format!("  {state:<8} {:<20}", a.action.as_str());
            if let Some(s) = a.status {
                line.push_str(&format!(" {s}"));
            }
            if let Some(d) = &a.detail {
                line.push_str(&format!(" {d}"));
            }
            let mut line = line.trim_end().to_owned();
            if !matches!(a.state, State::Ok | State::Provided) && !a.cases.is_empty() {
                const SHOWN: usize = 4;
                let mut ids: Vec<&str> = a.cases.iter().take(SHOWN).copied().collect();
                if a.cases.len() > SHOWN {
                    ids.push("…");
                }
                line.push_str(&format!(
                    "\n           costs {} case{}: {}",
                    a.cases.len(),
                    if a.cases.len() == 1 { "" } else { "s" },
                    ids.join(", ")
                ));
            }
            out.push_str(&line);
            out.push('\n');
        }
        for name in &self.unknown_actions {
            out.push_str(&format!(
                "  (not checked: `{name}` is not a driver action)\n"
            ));
        }
        out.push_str(&format!(
            "{} ok, {} provided by the identity, {} missing, {} failed, {} not run\n",
            self.count(&State::Ok),
            self.count(&State::Provided),
            self.count(&State::Missing),
            self.count(&State::Failed),
            self.count(&State::NotRun)
        ));
        out
    }
}

/// One probe: the action and the variables it is called with; `from`
/// names the variables taken from earlier actions' outputs.
struct Probe {
    action: Action,
    vars: Vars,
    from: &'static [&'static str],
}

/// The probes in dependency order. `tag` makes names unique to this check.
fn probes(tag: &str) -> Vec<Probe> {
    use Action::*;
    let p = |action, vars: Value, from| Probe {
        action,
        vars: match vars {
            Value::Object(m) => m.into_iter().collect(),
            _ => Vars::new(),
        },
        from,
    };
    let options = ["Jupiter", "Mars", "Mercury", "Venus"];
    vec![
        p(CreateUser, json!({"name": format!("Check {tag}")}), &[]),
        p(MintToken, json!({"ttlSeconds": 3600}), &["userId"]),
        p(RefreshToken, json!({}), &["refreshToken"]),
        p(
            CreateRoom,
            json!({"name": format!("Check room {tag}"), "visibility": "public"}),
            &[],
        ),
        p(
            UpdateRoom,
            json!({"patch": {"name": format!("Check room {tag} renamed")}}),
            &["roomId"],
        ),
        p(
            AddParticipant,
            json!({"role": "participant"}),
            &["roomId", "userId"],
        ),
        p(
            CreatePrize,
            json!({"name": "Check prize", "description": "A prize", "imageUrl": "https://example.invalid/p.png", "quantity": 2}),
            &["roomId"],
        ),
        p(
            UpdatePrize,
            json!({"patch": {"name": "Check prize (deluxe)"}}),
            &["roomId", "prizeId"],
        ),
        p(DrawWinner, json!({"count": 1}), &["roomId", "prizeId"]),
        p(RemoveWinner, json!({}), &["roomId", "winnerId"]),
        p(DeletePrize, json!({}), &["roomId", "prizeId"]),
        p(
            UpdateParticipant,
            json!({"role": "moderator"}),
            &["roomId", "participantId", "userId"],
        ),
        p(
            RemoveParticipant,
            json!({}),
            &["roomId", "participantId", "userId"],
        ),
        p(
            CreateQuestion,
            json!({"question": "Which planet has the shortest year?", "options": options, "answer": "Mercury", "answerIndex": 2, "timeLimit": 30}),
            &["roomId"],
        ),
        p(PublishQuestion, json!({}), &["roomId", "questionId"]),
        p(
            CreateNotification,
            json!({"type": "system", "title": "Check", "message": "A check", "data": {}}),
            &["userId"],
        ),
        p(
            CreateApp,
            json!({"appId": format!("check_{tag}"), "permissions": [protocol::event::PERMISSION_REALTIME_PUBLISH]}),
            &[],
        ),
        p(
            PublishAppEvent,
            json!({"data": {"n": 1}}),
            &["roomId", "appId", "appToken"],
        ),
        p(RevokeToken, json!({}), &["tokenId"]),
        p(DeleteRoom, json!({}), &["roomId"]),
        p(DeleteApp, json!({}), &["appId", "appToken"]),
        p(DeleteUser, json!({}), &["userId"]),
    ]
}

/// Runs the check of `profile` against `target`, each request bounded by
/// `wait`.
pub async fn check(
    profile: &Profile,
    profile_name: &str,
    target: &str,
    http: &reqwest::Client,
    wait: Duration,
) -> Result<CheckReport, crate::Error> {
    let base_vars = profile.base_vars().map_err(crate::Error::ProfileVars)?;
    let identity = Identity::resolve(&profile.identity, &base_vars)?;
    let tag = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() % 0xff_ffff)
            .unwrap_or(0)
    );
    // What earlier actions extracted.
    let mut known = Vars::new();
    let mut actions = Vec::new();
    for probe in probes(&tag) {
        let cases: Vec<&'static str> = cases::all()
            .iter()
            .filter(|c| c.needs.contains(&probe.action))
            .map(|c| c.id)
            .collect();
        let mut rec = ActionCheck {
            action: probe.action,
            state: State::Ok,
            status: None,
            detail: None,
            duration_ms: 0,
            cases,
        };
        if let Some(why) = profile.identity.refuses(probe.action) {
            rec.state = State::NotRun;
            rec.detail = Some(why.to_owned());
            actions.push(rec);
            continue;
        }
        if profile.identity.provides(probe.action) {
            match provided(&identity, probe.action, &known) {
                Ok((detail, outputs)) => {
                    rec.state = State::Provided;
                    rec.detail = Some(detail);
                    known.extend(outputs);
                }
                Err(e) => {
                    rec.state = State::Failed;
                    rec.detail = Some(e);
                }
            }
            actions.push(rec);
            continue;
        }
        if profile.action(probe.action).is_none() {
            rec.state = State::Missing;
            actions.push(rec);
            continue;
        }
        let lacking: Vec<String> = probe
            .from
            .iter()
            .filter(|n| !known.contains_key(**n))
            // An action may need only some of them (a member named by its
            // participant id or by its user): it decides with its inputs.
            .filter(|n| {
                profile
                    .inputs(probe.action.as_str())
                    .is_some_and(|inputs| inputs.iter().any(|i| i == *n))
            })
            .map(|n| match source_of(n) {
                Some(a) => format!("`{n}` (from {a})"),
                None => format!("`{n}`"),
            })
            .collect();
        if !lacking.is_empty() {
            rec.state = State::NotRun;
            rec.detail = Some(format!(
                "needs {}, which no earlier action gave",
                lacking.join(", ")
            ));
            actions.push(rec);
            continue;
        }
        let mut vars = probe.vars;
        for n in probe.from {
            if let Some(v) = known.get(*n) {
                vars.insert((*n).to_owned(), v.clone());
            }
        }
        if probe.action == Action::PublishAppEvent
            && let Some(app) = known.get("appId").and_then(Value::as_str)
        {
            vars.insert("event".into(), json!(format!("{app}:check")));
        }
        let started = Instant::now();
        let driver = driver::Target {
            http,
            url: target,
            profile,
            base_vars: &base_vars,
        };
        let result = driver::perform(
            driver,
            probe.action.as_str(),
            &vars.clone(),
            wait,
            &mut |_| {},
        )
        .await;
        rec.duration_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok((status, _, extracted)) => {
                rec.status = Some(status);
                let template = profile.action(probe.action).expect("checked above");
                let absent: Vec<&str> = template
                    .outputs()
                    .into_iter()
                    .filter(|n| !extracted.contains_key(*n))
                    .collect();
                if !absent.is_empty() {
                    rec.state = State::Failed;
                    rec.detail = Some(format!(
                        "the answer has no {} where the profile's extract says",
                        absent
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                // What the check chose stands unless the target gave its
                // own (an application id it assigns).
                known.extend(vars);
                known.extend(extracted);
            }
            Err(DriverError::Status { status, body, .. }) => {
                rec.state = State::Failed;
                rec.status = Some(status);
                rec.detail = Some(match body {
                    Value::Null => "(no body)".to_owned(),
                    body => shorten(&body.to_string()),
                });
            }
            Err(e) => {
                rec.state = State::Failed;
                rec.detail = Some(e.to_string());
            }
        }
        actions.push(rec);
    }
    Ok(CheckReport {
        profile: profile_name.to_owned(),
        target: target.to_owned(),
        actions,
        unknown_actions: profile
            .unknown_actions()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    })
}

/// What the identity gives in place of `action`, as the run would take it:
/// a line for the report and the variables later probes use.
fn provided(identity: &Identity, action: Action, known: &Vars) -> Result<(String, Vars), String> {
    let listed = identity.user(0);
    match action {
        Action::CreateUser => {
            let user = listed.ok_or("the identity lists no user")?;
            let outputs = Vars::from([
                ("userId".to_owned(), json!(user.id)),
                ("userName".to_owned(), json!(user.name)),
            ]);
            Ok((format!("listed user `{}`", user.id), outputs))
        }
        Action::MintToken if identity.mode == IdentityMode::Sign => {
            let user_id = known
                .get("userId")
                .and_then(Value::as_str)
                .ok_or("needs a `userId`, which no earlier action gave")?;
            let (token, jti) = identity.sign(user_id, 3600).map_err(|e| e.to_string())?;
            let mut outputs = Vars::from([
                ("token".to_owned(), json!(token)),
                ("tokenId".to_owned(), json!(jti)),
            ]);
            if let Some(refresh) = identity.sign_refresh(user_id) {
                let refresh = refresh.map_err(|e| e.to_string())?;
                outputs.insert("refreshToken".to_owned(), json!(refresh));
            }
            Ok((
                "signed here ([identity] mode = \"sign\")".to_owned(),
                outputs,
            ))
        }
        Action::MintToken => {
            let user = listed.ok_or("the identity lists no user")?;
            let token = user
                .token
                .clone()
                .ok_or("the first listed user has no token")?;
            Ok((
                format!("the token of listed user `{}`", user.id),
                Vars::from([("token".to_owned(), json!(token))]),
            ))
        }
        // A static `revoked_token` stands in for revoking one.
        _ => Ok(("a listed user's revoked_token".to_owned(), Vars::new())),
    }
}

/// The action whose outputs a probe variable normally comes from.
fn source_of(name: &str) -> Option<&'static str> {
    Some(match name {
        "userId" => "create_user",
        "token" | "tokenId" | "refreshToken" => "mint_token",
        "roomId" => "create_room",
        "participantId" => "add_participant",
        "prizeId" => "create_prize",
        "winnerId" => "draw_winner",
        "questionId" => "create_question",
        "appId" | "appToken" => "create_app",
        _ => return None,
    })
}

/// At most 300 characters of a body.
fn shorten(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE_DOC: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/profile-reference.md"
    ));

    /// docs/profile-reference.md has a section per driver action, with
    /// what it receives and extracts, and exactly the cases that need it.
    #[test]
    fn the_profile_reference_documents_every_action_with_its_cases() {
        let actions = &REFERENCE_DOC[REFERENCE_DOC.find("\n## Actions\n").expect("## Actions")..];
        for a in Action::ALL {
            let head = format!("\n### `{a}`\n");
            let start = actions
                .find(&head)
                .unwrap_or_else(|| panic!("docs/profile-reference.md: no section for `{a}`"));
            let rest = &actions[start + head.len()..];
            let section = &rest[..rest.find("\n### ").unwrap_or(rest.len())];
            assert!(
                section.contains("- Receives: ") && section.contains("- Extracts: "),
                "`{a}`: what it receives and extracts"
            );
            let ids: Vec<String> = cases::all()
                .iter()
                .filter(|c| c.needs.contains(a))
                .map(|c| format!("`{}`", c.id))
                .collect();
            let want = if ids.is_empty() {
                "- Cases (0): none.".to_owned()
            } else {
                format!("- Cases ({}): {}", ids.len(), ids.join(", "))
            };
            let got = section.lines().find(|l| l.starts_with("- Cases ("));
            assert_eq!(got, Some(want.as_str()), "`{a}`: the cases that need it");
        }
        assert_eq!(
            actions.matches("\n### `").count(),
            Action::ALL.len(),
            "a section for an action that does not exist"
        );
    }

    /// Every profile option is documented, and the examples together form
    /// a valid profile.
    #[test]
    fn the_profile_reference_covers_every_option_with_examples_that_parse() {
        for key in [
            "`url`",
            "`socket_path`",
            "`bases.NAME`",
            "`[vars]`",
            "`from`",
            "`values`",
            "`default`",
            "`method`",
            "`path`",
            "`base`",
            "`headers`",
            "`body`",
            "`form`",
            "`omit_empty`",
            "`extract`",
            "`expect`",
            "{ pointer = ",
            "{ header = ",
            "{ status = true }",
            "after = ",
            "[[actions.NAME.steps]]",
        ] {
            assert!(REFERENCE_DOC.contains(key), "{key} is not documented");
        }
        let mut tables = String::new();
        for block in REFERENCE_DOC.split("```toml\n").skip(1) {
            let block = &block[..block.find("```").expect("closed block")];
            if block.trim_start().starts_with('[') || block.trim_start().starts_with('#') {
                tables.push_str(block);
            }
        }
        let p = Profile::parse(&tables, "docs/profile-reference.md examples")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            p.action(Action::CreateRoom)
                .is_some_and(|a| a.steps.len() == 2)
        );
        assert!(p.target.bases.contains_key("admin") && p.maps.contains_key("isPrivate"));
    }
}
