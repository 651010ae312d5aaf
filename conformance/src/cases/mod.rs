//! Every case, by protocol section. Ids are `section.item[.aspect]`.

use std::sync::OnceLock;

use crate::case::Case;

mod apps;
mod connection;
mod errors;
mod leaks;
mod notifications;
mod participants;
mod presence;
mod prizes;
mod quiz;
mod rooms;
mod rules;
mod support;
mod validation;
mod winners;

/// All cases, in id order.
pub fn all() -> &'static [Case] {
    static ALL: OnceLock<Vec<Case>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut v: Vec<Case> = [
            connection::CASES,
            errors::CASES,
            rules::CASES,
            notifications::CASES,
            participants::CASES,
            presence::CASES,
            rooms::CASES,
            apps::CASES,
            prizes::CASES,
            quiz::CASES,
            winners::CASES,
            validation::CASES,
            leaks::CASES,
        ]
        .concat();
        v.sort_by_key(|c| c.id);
        v
    })
}

#[cfg(test)]
mod tests {
    /// Every decision a case cites (`"N9"` in a `decided`/`per` call, or
    /// `N9` in a requirement) is a decision of docs/protocol-notes.md that
    /// says what a spec-level check accepts instead.
    #[test]
    fn every_cited_decision_exists_and_says_what_spec_level_accepts() {
        let notes = include_str!("../../../docs/protocol-notes.md");
        let sources = [
            include_str!("apps.rs"),
            include_str!("connection.rs"),
            include_str!("errors.rs"),
            include_str!("leaks.rs"),
            include_str!("notifications.rs"),
            include_str!("participants.rs"),
            include_str!("presence.rs"),
            include_str!("prizes.rs"),
            include_str!("quiz.rs"),
            include_str!("rooms.rs"),
            include_str!("rules.rs"),
            include_str!("support.rs"),
            include_str!("validation.rs"),
            include_str!("winners.rs"),
            include_str!("../ctx.rs"),
        ];
        let requirements = super::all().iter().map(|c| c.requirement);
        let mut cited = std::collections::BTreeSet::new();
        for text in sources.into_iter().chain(requirements) {
            let b = text.as_bytes();
            for (i, _) in text.match_indices('N') {
                let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                let before = i.checked_sub(1).map(|j| b[j]);
                let word_start = !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_');
                if digits > 0
                    && word_start
                    && !b.get(i + 1 + digits).is_some_and(u8::is_ascii_alphanumeric)
                {
                    cited.insert(&text[i..i + 1 + digits]);
                }
            }
        }
        assert!(cited.contains("N9") && cited.contains("N10"), "{cited:?}");
        for n in cited {
            let head = format!("\n## {n}. ");
            let at = notes.find(&head).unwrap_or_else(|| {
                panic!("{n} is cited but docs/protocol-notes.md has no `## {n}.`")
            });
            let section = &notes[at + 1..];
            let end = section[1..].find("\n## ").map_or(section.len(), |e| e + 1);
            assert!(
                section[..end].contains("**Spec level:**"),
                "{n} in docs/protocol-notes.md says nothing of the spec level"
            );
        }
    }

    #[test]
    fn ids_are_unique_and_well_formed() {
        let all = super::all();
        let mut ids: Vec<_> = all.iter().map(|c| c.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), all.len(), "duplicate case id");
        for c in all {
            assert!(
                c.id.split('.').count() >= 2
                    && c.id.chars().all(|ch| ch.is_ascii_lowercase()
                        || ch.is_ascii_digit()
                        || ch == '.'
                        || ch == '_'),
                "bad case id {}",
                c.id
            );
            assert!(
                !c.description.is_empty() && !c.requirement.is_empty(),
                "{}",
                c.id
            );
        }
    }
}
