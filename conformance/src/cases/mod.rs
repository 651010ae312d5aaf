//! Every case, by protocol section. Ids are `section.item[.aspect]`.

use std::sync::OnceLock;

use crate::case::Case;

mod apps;
mod connection;
mod errors;
mod notifications;
mod participants;
mod presence;
mod prizes;
mod quiz;
mod rooms;
mod rules;
mod support;
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
        ]
        .concat();
        v.sort_by_key(|c| c.id);
        v
    })
}

#[cfg(test)]
mod tests {
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
