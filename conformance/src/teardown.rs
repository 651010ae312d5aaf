//! The teardown at the end of a run: what the cases created (rooms, users,
//! applications) is deleted through the profile's delete actions, so a run
//! does not leave hundreds of rooms and users behind on a shared target.
//!
//! Every successful create is noted ([`Created::note`], called by
//! [`crate::ctx::Ctx::act`]) with the variables its delete action needs;
//! at the end [`run`] deletes rooms first (their participants, prizes and
//! questions go with them on any sane target), then applications, then
//! users. A kind whose delete action the profile lacks is counted as not
//! removable; a 404 or 410 is a thing a case already deleted.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use driver::{Action, DriverError};
use futures_util::StreamExt;
use serde_json::Value;

use crate::profile::Vars;

/// What a run created and may delete, in creation order.
#[derive(Debug, Default)]
pub struct Created {
    items: Mutex<Vec<Item>>,
}

/// One thing to delete: the delete action and the variables it needs.
#[derive(Debug, Clone)]
struct Item {
    delete: Action,
    vars: Vars,
}

/// The delete action of what `create` makes, and the variables that name
/// it (all among the create's inputs and outputs).
fn delete_of(create: Action) -> Option<(Action, &'static [&'static str])> {
    match create {
        Action::CreateRoom => Some((Action::DeleteRoom, &["roomId"])),
        Action::CreateUser => Some((Action::DeleteUser, &["userId"])),
        Action::CreateApp => Some((Action::DeleteApp, &["appId", "appToken"])),
        _ => None,
    }
}

impl Created {
    /// Notes what a successful `action` created: `input` is what the case
    /// passed, `output` what the action extracted (which wins: the id the
    /// target assigned).
    pub fn note(&self, action: Action, input: &Vars, output: &Vars) {
        let Some((delete, names)) = delete_of(action) else {
            return;
        };
        let vars: Vars = names
            .iter()
            .filter_map(|n| {
                output
                    .get(*n)
                    .or_else(|| input.get(*n))
                    .map(|v| ((*n).to_owned(), v.clone()))
            })
            .collect();
        if vars.contains_key(names[0]) {
            self.items
                .lock()
                .expect("created lock")
                .push(Item { delete, vars });
        }
    }

    /// How many things were noted.
    pub fn len(&self) -> usize {
        self.items.lock().expect("created lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the teardown did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Deleted, by delete action.
    pub removed: BTreeMap<&'static str, usize>,
    /// Already gone (404/410: a case deleted it), by delete action.
    pub gone: BTreeMap<&'static str, usize>,
    /// Left behind because the profile has no such delete action.
    pub no_action: BTreeMap<&'static str, usize>,
    /// Deletes that failed: `action id: why`.
    pub failed: Vec<String>,
}

impl Report {
    /// One line for the run's summary.
    pub fn line(&self) -> String {
        let list = |m: &BTreeMap<&'static str, usize>| {
            m.iter()
                .map(|(a, n)| format!("{n} by {a}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let removed: usize = self.removed.values().sum();
        let mut out = format!("teardown: {removed} removed");
        if removed > 0 {
            out.push_str(&format!(" ({})", list(&self.removed)));
        }
        let gone: usize = self.gone.values().sum();
        if gone > 0 {
            out.push_str(&format!(", {gone} already gone"));
        }
        let kept: usize = self.no_action.values().sum();
        if kept > 0 {
            out.push_str(&format!(
                "; {kept} left behind, the profile has no {}",
                self.no_action
                    .iter()
                    .map(|(a, n)| format!("`{a}` ({n})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !self.failed.is_empty() {
            out.push_str(&format!(
                "; {} could not be removed: {}",
                self.failed.len(),
                self.failed.join("; ")
            ));
        }
        out
    }
}

/// The order of deletion: rooms, then applications, then users.
fn rank(a: Action) -> u8 {
    match a {
        Action::DeleteRoom => 0,
        Action::DeleteApp => 1,
        _ => 2,
    }
}

/// Deletes everything `settings.created` holds, `jobs` at a time, each
/// delete bounded by `settings.wait`.
pub async fn run(settings: &crate::ctx::Settings, jobs: usize) -> Report {
    let mut items = std::mem::take(&mut *settings.created.items.lock().expect("created lock"));
    items.sort_by_key(|i| rank(i.delete));
    let mut report = Report::default();
    let mut by_rank: BTreeMap<u8, Vec<Item>> = BTreeMap::new();
    for item in items {
        if settings.profile.action(item.delete).is_none() {
            *report.no_action.entry(item.delete.as_str()).or_default() += 1;
        } else {
            by_rank.entry(rank(item.delete)).or_default().push(item);
        }
    }
    for (_, batch) in by_rank {
        let results: Vec<(Item, Result<(), DriverError>)> = futures_util::stream::iter(batch)
            .map(|item| async move {
                let r = delete(settings, &item.vars, item.delete, settings.wait).await;
                (item, r)
            })
            .buffer_unordered(jobs.max(1))
            .collect()
            .await;
        for (item, r) in results {
            match r {
                Ok(()) => *report.removed.entry(item.delete.as_str()).or_default() += 1,
                Err(DriverError::Status { status, .. }) if status == 404 || status == 410 => {
                    *report.gone.entry(item.delete.as_str()).or_default() += 1;
                }
                Err(e) => {
                    let id = item.vars.values().next().cloned().unwrap_or(Value::Null);
                    report.failed.push(format!("{} {id}: {e}", item.delete));
                }
            }
        }
    }
    report
}

async fn delete(
    settings: &crate::ctx::Settings,
    vars: &Vars,
    action: Action,
    wait: Duration,
) -> Result<(), DriverError> {
    driver::perform(settings.driver(), action.as_str(), vars, wait, &mut |_| {})
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(pairs: &[(&str, Value)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    /// The id the target assigned wins over the one the case proposed;
    /// what has no delete action, or no id, is not noted.
    #[test]
    fn creates_are_noted_with_the_targets_ids() {
        let c = Created::default();
        c.note(
            Action::CreateApp,
            &vars(&[("appId", json!("mine")), ("permissions", json!([]))]),
            &vars(&[
                ("appId", json!("lottery-3fa9c1")),
                ("appToken", json!("ak_1")),
            ]),
        );
        c.note(
            Action::CreateRoom,
            &Vars::new(),
            &vars(&[("roomId", json!("r-1"))]),
        );
        c.note(
            Action::CreatePrize,
            &Vars::new(),
            &vars(&[("prizeId", json!("p"))]),
        );
        c.note(Action::CreateUser, &Vars::new(), &Vars::new());
        let items = c.items.lock().unwrap().clone();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].delete, Action::DeleteApp);
        assert_eq!(
            items[0].vars,
            vars(&[
                ("appId", json!("lottery-3fa9c1")),
                ("appToken", json!("ak_1"))
            ])
        );
        assert_eq!(items[1].vars, vars(&[("roomId", json!("r-1"))]));
    }

    #[test]
    fn the_summary_line_says_what_was_removed_and_what_was_not() {
        let mut r = Report::default();
        r.removed.insert("delete_room", 3);
        r.removed.insert("delete_user", 2);
        r.gone.insert("delete_room", 1);
        r.no_action.insert("delete_app", 4);
        r.failed.push("delete_user \"u\": boom".into());
        assert_eq!(
            r.line(),
            "teardown: 5 removed (3 by delete_room, 2 by delete_user), 1 already gone; \
             4 left behind, the profile has no `delete_app` (4); 1 could not be removed: delete_user \"u\": boom"
        );
        assert_eq!(Report::default().line(), "teardown: 0 removed");
    }
}
