//! What the operator's CLI and the management API both do to the data, written once: every field is checked
//! here, and a refusal names the field the way the caller spelled it (`--caller-id` on the command line,
//! `caller_id` in JSON), so both say exactly what was wrong. Device credentials (digest HA1 values; the password
//! itself is never stored) and generated passwords are made here too.

pub mod check;
pub mod devices;
pub mod logins;
pub mod numbers;
pub mod tokens;

/// How the caller names fields: the command line's flags, JSON's keys, or a file's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming<'a> {
    /// `--caller-id`.
    Flags,
    /// `caller_id`.
    Json,
    /// `caller_id` after a prefix saying where (`devices.csv: line 3: `).
    Column(&'a str),
}

impl Naming<'_> {
    /// The caller's name for the field written `snake_case` here.
    pub fn of(self, field: &str) -> String {
        match self {
            Naming::Flags => format!("--{}", field.replace('_', "-")),
            Naming::Json => field.to_owned(),
            Naming::Column(at) => format!("{at}{field}"),
        }
    }
}

/// A value refused: which field, and why (the message reads after "field: ").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid { field: field.into(), message: message.into() }
    }
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field's value (the caller's mistake).
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The machine has no randomness to make a password with (ours).
    #[error("no randomness available: {0}")]
    NoRandomness(String),
    /// The database refused or failed.
    #[error(transparent)]
    Store(#[from] switchboard_storage::StoreError),
}
