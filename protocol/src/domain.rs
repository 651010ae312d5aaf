//! The closed vocabularies of the domain: room statuses, room visibility,
//! participant roles.
//!
//! The protocol text shows only some of these values (`draft`, `active`;
//! `participant`, `moderator`); the full sets are decisions of the
//! reference server (docs/protocol-notes.md N4, N13). Wire payloads keep
//! these fields as strings, so that a deployment with other values can
//! still be read; the reference server and the tools that drive it use
//! these enums.

/// Defines a closed string vocabulary: the enum (serde as its wire form),
/// `ALL`, `as_str`, `parse` (`None` for a value outside the set), `names`
/// and `Display`. Exported for the other closed vocabularies of the
/// workspace (the driver's actions); the crate using it needs `serde`.
#[macro_export]
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize,
        )]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in the documented order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value whose wire form is `text`.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The wire forms of every value, for error messages.
            pub fn names() -> Vec<&'static str> {
                Self::ALL.iter().map(|v| v.as_str()).collect()
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// A room's status (N13): any status may change to any other.
    RoomStatus {
        Draft = "draft",
        Active = "active",
        Paused = "paused",
        Ended = "ended",
    }
}

vocabulary! {
    /// Who may subscribe to a room (N4).
    Visibility {
        /// Any authenticated user.
        Public = "public",
        /// The room's participants only.
        Private = "private",
    }
}

vocabulary! {
    /// A participant's role (N4): both may subscribe; only `participant`s
    /// are eligible in a prize draw (N12).
    Role {
        Participant = "participant",
        Moderator = "moderator",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms_round_trip() {
        for s in RoomStatus::ALL {
            assert_eq!(RoomStatus::parse(s.as_str()), Some(*s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert_eq!(RoomStatus::names(), ["draft", "active", "paused", "ended"]);
        assert_eq!(Visibility::names(), ["public", "private"]);
        assert_eq!(Role::names(), ["participant", "moderator"]);
        assert_eq!(Role::parse("owner"), None);
        assert_eq!(
            serde_json::from_str::<Visibility>("\"private\"").unwrap(),
            Visibility::Private
        );
    }
}
