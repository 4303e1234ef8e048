//! Translating constraint violations into domain errors.
//!
//! The database is the arbiter of uniqueness and references (a check-then-insert would race between nodes), so a
//! failed write is inspected afterwards and reported as `Conflict` or `NotFound` in the caller's terms.

use sqlx::error::ErrorKind;

use crate::StoreError;

/// What a write was about, to name the culprit if it violates a constraint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteCtx<'a> {
    pub(crate) entity: &'static str,
    /// Unique fields with the values written. The first whose name appears in the violated constraint wins, so
    /// list more specific names first (`auth_id` before `name`).
    pub(crate) unique: &'a [(&'static str, &'a str)],
    /// The record a foreign key points at, as (entity, id).
    pub(crate) parent: Option<(&'static str, i64)>,
}

impl<'a> WriteCtx<'a> {
    pub(crate) fn new(entity: &'static str, unique: &'a [(&'static str, &'a str)]) -> Self {
        WriteCtx { entity, unique, parent: None }
    }

    pub(crate) fn parent(self, entity: &'static str, id: i64) -> Self {
        WriteCtx { parent: Some((entity, id)), ..self }
    }

    /// Maps `err` to `Conflict` / `NotFound` when it is a violation this context explains, else passes it on.
    pub(crate) fn error(&self, err: sqlx::Error) -> StoreError {
        self.explain(&err).unwrap_or(StoreError::Database(err))
    }

    fn explain(&self, err: &sqlx::Error) -> Option<StoreError> {
        let db = err.as_database_error()?;
        match db.kind() {
            ErrorKind::UniqueViolation => {
                // PostgreSQL names the constraint (`devices_auth_id_key`, see the migrations); SQLite only says
                // `UNIQUE constraint failed: devices.auth_id`. Either contains the column name.
                let text = db.constraint().unwrap_or_else(|| db.message());
                let (field, value) = self.unique.iter().find(|(field, _)| text.contains(field))?;
                Some(StoreError::Conflict { entity: self.entity, field, value: (*value).to_owned() })
            }
            ErrorKind::ForeignKeyViolation => {
                let (entity, id) = self.parent?;
                Some(StoreError::NotFound { entity, key: id.to_string() })
            }
            _ => None,
        }
    }
}
