//! The closed vocabularies of the contract: task status, priority, member
//! role, and the audit log's actions.
//!
//! Each parses only its exact wire spelling, so a typo is an error rather than a
//! silent default.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A string that is not one of an enum's wire spellings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEnumError {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}

impl fmt::Display for ParseEnumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} `{}`, expected one of: {}",
            self.what,
            self.value,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for ParseEnumError {}

macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal, serde = $rename:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = $rename)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            const WIRE: &'static [&'static str] = &[$($wire),+];

            /// The spelling used on the wire and in the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }
        }

        // Written out rather than derived: the document must list exactly
        // the wire spellings, and the derive does not see `rename_all`
        // through this macro (it listed the Rust names).
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::WIRE.iter().copied()))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl FromStr for $name {
            type Err = ParseEnumError;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match value {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(ParseEnumError {
                        what: $what,
                        value: value.chars().take(64).collect(),
                        expected: Self::WIRE,
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// Where a task stands.
    #[derive(Default)]
    TaskStatus, "status", serde = "kebab-case" {
        #[default]
        Pending = "pending",
        InProgress = "in-progress",
        Review = "review",
        Done = "done",
        Deferred = "deferred",
        Cancelled = "cancelled",
        Blocked = "blocked",
    }
}

wire_enum! {
    /// How urgent a task is. Declared most urgent first, so `Ord` ranks
    /// `Critical < High < Medium < Low` — the order next-task picks in.
    #[derive(Default)]
    Priority, "priority", serde = "lowercase" {
        Critical = "critical",
        High = "high",
        #[default]
        Medium = "medium",
        Low = "low",
    }
}

wire_enum! {
    /// What a project member may do. Declared most powerful first.
    Role, "role", serde = "lowercase" {
        /// Everything, including managing members.
        Owner = "owner",
        /// Read, subscribe and change tasks.
        Editor = "editor",
        /// Read and subscribe only.
        Viewer = "viewer",
    }
}

wire_enum! {
    /// What changed in a project's membership or integrations (its audit log).
    AuditAction, "audit action", serde = "snake_case" {
        /// The project was created; its creator became its owner.
        ProjectCreated = "project_created",
        MemberAdded = "member_added",
        RoleChanged = "role_changed",
        MemberRemoved = "member_removed",
        /// A webhook was disabled after persistent delivery failure
        /// (`detail` names it and says why).
        WebhookDisabled = "webhook_disabled",
    }
}

wire_enum! {
    /// What an API token may do, within its user's roles.
    TokenAccess, "token access", serde = "lowercase" {
        /// Read and subscribe only.
        Read = "read",
        /// Read and change tasks (never manage members or the account).
        Write = "write",
    }
}

impl Role {
    /// Whether this role includes everything `required` allows.
    pub fn allows(self, required: Role) -> bool {
        // Declared most powerful first, so "at least as powerful" is `<=`.
        self <= required
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_wire_spelling() {
        for status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>().unwrap(), *status);
            let json = serde_json::to_string(status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(serde_json::from_str::<TaskStatus>(&json).unwrap(), *status);
        }
        assert_eq!(TaskStatus::ALL.len(), 7);
        assert_eq!(TaskStatus::InProgress.as_str(), "in-progress");
    }

    #[test]
    fn parsing_is_exact() {
        assert!("Pending".parse::<TaskStatus>().is_err());
        assert!("in_progress".parse::<TaskStatus>().is_err());
        assert!(" done".parse::<TaskStatus>().is_err());
        let err = "urgent".parse::<Priority>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid priority `urgent`, expected one of: critical, high, medium, low"
        );
    }

    #[test]
    fn priority_orders_most_urgent_first() {
        let mut all = vec![
            Priority::Low,
            Priority::Critical,
            Priority::Medium,
            Priority::High,
        ];
        all.sort();
        assert_eq!(all, Priority::ALL);
    }

    #[test]
    fn defaults_match_the_contract() {
        assert_eq!(TaskStatus::default(), TaskStatus::Pending);
        assert_eq!(Priority::default(), Priority::Medium);
    }

    #[test]
    fn role_hierarchy() {
        assert!(Role::Owner.allows(Role::Editor));
        assert!(Role::Owner.allows(Role::Owner));
        assert!(Role::Editor.allows(Role::Viewer));
        assert!(!Role::Editor.allows(Role::Owner));
        assert!(!Role::Viewer.allows(Role::Editor));
        assert!(Role::Viewer.allows(Role::Viewer));
    }
}
