//! The driver actions: every domain change a tool may ask a target for.
//!
//! A profile defines each action as an HTTP request template under its
//! name (`[actions.create_user]`); the conformance cases call them through
//! this enum, so a typo is a compile error and a case's list of needed
//! actions can be checked. A profile may define more actions than these
//! (a load scenario's `http` steps can call any action of its profile);
//! the conformance runner warns about names it does not know.

protocol::vocabulary! {
    /// A driver action, by the name a profile gives it.
    Action {
        /// Creates a user (`name`); extracts `userId` and, where the target
        /// chooses the display name, `userName`.
        CreateUser = "create_user",
        /// Issues an access token for `userId` valid for `ttlSeconds`;
        /// extracts `token` and, where the target has them, `tokenId` and
        /// `refreshToken`.
        MintToken = "mint_token",
        /// Trades a `refreshToken` for a new `token` and `refreshToken`.
        RefreshToken = "refresh_token",
        /// Revokes the token `tokenId`.
        RevokeToken = "revoke_token",
        /// Deletes the user `userId` with everything of theirs.
        DeleteUser = "delete_user",
        /// Creates a room (`name`, `visibility`); extracts `roomId` and,
        /// where given, `roomName` and `roomStatus`.
        CreateRoom = "create_room",
        /// Changes the room `roomId` with the JSON `patch` (name, status, ...).
        UpdateRoom = "update_room",
        /// Deletes the room `roomId`.
        DeleteRoom = "delete_room",
        /// Adds `userId` to the room `roomId` with `role`; extracts
        /// `participantId`.
        AddParticipant = "add_participant",
        /// Changes the `role` of `participantId` in the room `roomId`.
        UpdateParticipant = "update_participant",
        /// Removes `participantId` from the room `roomId`.
        RemoveParticipant = "remove_participant",
        /// Creates a prize in the room `roomId` (`name`, `description`,
        /// `imageUrl`, `quantity`); extracts `prizeId`.
        CreatePrize = "create_prize",
        /// Changes the prize `prizeId` of the room `roomId` with `patch`.
        UpdatePrize = "update_prize",
        /// Deletes the prize `prizeId` of the room `roomId`.
        DeletePrize = "delete_prize",
        /// Draws `count` winners of the prize `prizeId` in the room
        /// `roomId`; extracts `winnerId` (the first).
        DrawWinner = "draw_winner",
        /// Removes the winner `winnerId` of the room `roomId`.
        RemoveWinner = "remove_winner",
        /// Sends a notification (`type`, `title`, `message`, `data`) to
        /// `userId`; extracts `notificationId`.
        CreateNotification = "create_notification",
        /// Registers the application `appId` with `permissions`; extracts
        /// `appToken` and, where the target assigns the id (the event
        /// prefix), `appId`.
        CreateApp = "create_app",
        /// Deletes the application `appId` (teardown only).
        DeleteApp = "delete_app",
        /// Publishes the application event `event` with `data` into the
        /// room `roomId`, as `appId` with `appToken`.
        PublishAppEvent = "publish_app_event",
        /// Creates a quiz question in the room `roomId` (`question`,
        /// `options`, `answer`, `timeLimit`); extracts `questionId`.
        CreateQuestion = "create_question",
        /// Publishes the question `questionId` of the room `roomId`.
        PublishQuestion = "publish_question",
    }
}

#[cfg(test)]
mod tests {
    use super::Action;
    use crate::profile::Profile;

    #[test]
    fn names_round_trip_and_are_unique() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(*a));
            assert_eq!(a.to_string(), a.as_str());
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
        assert_eq!(Action::parse("create_rooom"), None);
    }

    /// The reference profile defines every action but `delete_app` (the
    /// reference server has no way to delete an application), and nothing
    /// else.
    #[test]
    fn the_reference_profile_defines_exactly_the_actions() {
        let p = Profile::reference();
        for a in Action::ALL.iter().filter(|a| **a != Action::DeleteApp) {
            assert!(p.action(*a).is_some(), "reference profile lacks {a}");
        }
        assert!(p.action(Action::DeleteApp).is_none());
        assert_eq!(p.actions.len(), Action::ALL.len() - 1);
        assert!(p.unknown_actions().is_empty(), "{:?}", p.unknown_actions());
    }
}
