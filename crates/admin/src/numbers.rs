//! Phone numbers: a new number's record from the fields given, the update a set of changes makes, and the
//! number's mailbox settings (PIN, stored hashed; email delivery). Numbers are stored in E.164, whatever spelling
//! they were given in.
//!
//! The device a number rings is resolved by the caller (by name on the command line, by id in JSON) and must be a
//! device of the number's service; the rules here never look at the database.

use serde::Deserialize;
use switchboard_storage::{DivertWhen, Mailbox, NewNumber, Number, NumberUpdate, Store, StoreError};

use crate::check::{check_divert_to, check_divert_when, check_email, check_number, check_range};
use crate::devices::present;
use crate::{Error, Invalid, Naming};

/// Ring time before a no-answer divert when none is given.
pub const DEFAULT_NO_ANSWER_SECS: i64 = switchboard_routing::DEFAULT_NO_ANSWER_SECS as i64;
/// Ring times a no-answer divert may be set to.
pub const NO_ANSWER_SECS: std::ops::RangeInclusive<i64> = 5..=300;

/// A new number's fields as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberFields {
    /// National (`02 9876 5432`) or E.164 (`+61298765432`).
    pub number: String,
    /// The device that rings (resolved by the caller); `None`: every device of the service.
    #[serde(default)]
    pub device_id: Option<i64>,
    /// `never` when absent.
    #[serde(default)]
    pub divert_when: Option<String>,
    #[serde(default)]
    pub divert_to: Option<String>,
    #[serde(default)]
    pub no_answer_secs: Option<i64>,
    #[serde(default)]
    pub offline_alert: Option<String>,
    #[serde(default)]
    pub voicemail_pin: Option<String>,
    #[serde(default)]
    pub voicemail_email: Option<String>,
    /// Keep a message in the mailbox once emailed (`true` when absent).
    #[serde(default)]
    pub voicemail_email_keep: Option<bool>,
}

/// Changes to a number. `None` leaves a field as it is; `Some(None)` (JSON `null`) clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NumberChanges {
    #[serde(default, deserialize_with = "present")]
    pub device_id: Option<Option<i64>>,
    #[serde(default)]
    pub divert_when: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub divert_to: Option<Option<String>>,
    #[serde(default)]
    pub no_answer_secs: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    pub offline_alert: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub voicemail_pin: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub voicemail_email: Option<Option<String>>,
    #[serde(default)]
    pub voicemail_email_keep: Option<bool>,
}

impl NumberChanges {
    pub fn is_empty(&self) -> bool {
        *self == NumberChanges::default()
    }
}

/// What to change in a number's mailbox. `None` leaves a setting as it is; `Some(None)` removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxChanges {
    /// The new PIN's stored (hashed) form.
    pub pin_hash: Option<Option<String>>,
    /// The address messages are emailed to, and whether the mailbox keeps a copy.
    pub email: Option<Option<(String, bool)>>,
}

impl MailboxChanges {
    pub fn is_empty(&self) -> bool {
        self.pin_hash.is_none() && self.email.is_none()
    }

    /// Stores the changes for number `number_id`.
    pub async fn apply(&self, store: &dyn Store, number_id: i64) -> Result<(), StoreError> {
        if let Some(pin) = &self.pin_hash {
            store.set_mailbox_pin(number_id, pin.as_deref()).await?;
        }
        if let Some(email) = &self.email {
            let (address, keep) = email.as_ref().map_or((None, true), |(a, k)| (Some(a.as_str()), *k));
            store.set_mailbox_email(number_id, address, keep).await?;
        }
        Ok(())
    }
}

/// A number checked and ready to store, with its mailbox settings (stored once the number exists).
#[derive(Debug)]
pub struct Planned {
    pub number: NewNumber,
    pub mailbox: MailboxChanges,
}

/// The record for a new number of service `service_id`.
pub fn new_number(f: &NumberFields, service_id: i64, n: Naming<'_>) -> Result<Planned, Error> {
    let number = check_number(&n.of("number"), &f.number)?;
    let divert_when =
        f.divert_when.as_deref().map(|v| check_divert_when(&n.of("divert_when"), v)).transpose()?.unwrap_or_default();
    let divert_to = f.divert_to.as_deref().map(|v| check_divert_to(&n.of("divert_to"), v, &number)).transpose()?;
    if divert_when != DivertWhen::Never && divert_to.is_none() {
        let message = format!("required when {} is {}", n.of("divert_when"), spelling(divert_when, n));
        return Err(Invalid::new(n.of("divert_to"), message).into());
    }
    let no_answer_secs = match f.no_answer_secs {
        Some(secs) => check_range(&n.of("no_answer_secs"), secs, &NO_ANSWER_SECS)?,
        None => DEFAULT_NO_ANSWER_SECS,
    };
    let offline_alert = f.offline_alert.as_deref().map(|v| check_email(&n.of("offline_alert"), v)).transpose()?;
    let mailbox = MailboxChanges {
        pin_hash: f.voicemail_pin.as_deref().map(|p| pin_hash(p, n)).transpose()?.map(Some),
        email: match (&f.voicemail_email, f.voicemail_email_keep) {
            (Some(address), keep) => {
                Some(Some((check_email(&n.of("voicemail_email"), address.trim())?, keep.unwrap_or(true))))
            }
            (None, Some(_)) => return Err(keep_alone(n).into()),
            (None, None) => None,
        },
    };
    let number =
        NewNumber { service_id, number, device_id: f.device_id, divert_when, divert_to, no_answer_secs, offline_alert };
    Ok(Planned { number, mailbox })
}

/// The update `c` makes to `current` (whose mailbox is `mailbox`): the result must still have somewhere to
/// divert to unless it never diverts.
pub fn number_update(
    c: &NumberChanges,
    current: &Number,
    mailbox: Option<&Mailbox>,
    n: Naming<'_>,
) -> Result<(NumberUpdate, MailboxChanges), Error> {
    let divert_when = c.divert_when.as_deref().map(|v| check_divert_when(&n.of("divert_when"), v)).transpose()?;
    let divert_to = match &c.divert_to {
        Some(Some(v)) => Some(Some(check_divert_to(&n.of("divert_to"), v, &current.number)?)),
        Some(None) => Some(None),
        None => None,
    };
    let when = divert_when.unwrap_or(current.divert_when);
    let has_target = divert_to.as_ref().map_or(current.divert_to.is_some(), Option::is_some);
    if when != DivertWhen::Never && !has_target {
        let message = format!(
            "{} {} needs somewhere to divert to (or set {} to never)",
            n.of("divert_when"),
            spelling(when, n),
            n.of("divert_when")
        );
        return Err(Invalid::new(n.of("divert_to"), message).into());
    }
    let update = NumberUpdate {
        device_id: c.device_id,
        divert_when,
        divert_to,
        no_answer_secs: c
            .no_answer_secs
            .map(|secs| check_range(&n.of("no_answer_secs"), secs, &NO_ANSWER_SECS))
            .transpose()?,
        offline_alert: match &c.offline_alert {
            Some(Some(v)) => Some(Some(check_email(&n.of("offline_alert"), v)?)),
            Some(None) => Some(None),
            None => None,
        },
    };
    let current_email = mailbox.and_then(|m| m.email.as_deref());
    let mailbox = MailboxChanges {
        pin_hash: match &c.voicemail_pin {
            Some(Some(p)) => Some(Some(pin_hash(p, n)?)),
            Some(None) => Some(None),
            None => None,
        },
        email: match (&c.voicemail_email, c.voicemail_email_keep) {
            (Some(Some(address)), keep) => {
                Some(Some((check_email(&n.of("voicemail_email"), address.trim())?, keep.unwrap_or(true))))
            }
            (Some(None), _) => Some(None),
            (None, Some(keep)) => match current_email {
                Some(address) => Some(Some((address.to_owned(), keep))),
                None => return Err(keep_alone(n).into()),
            },
            (None, None) => None,
        },
    };
    Ok((update, mailbox))
}

/// The stored form of a new mailbox PIN.
fn pin_hash(pin: &str, n: Naming<'_>) -> Result<String, Invalid> {
    switchboard_voicemail::pin::hash_new(pin).map_err(|e| Invalid::new(n.of("voicemail_pin"), e))
}

fn keep_alone(n: Naming<'_>) -> Invalid {
    Invalid::new(n.of("voicemail_email_keep"), format!("only with a {} to email messages to", n.of("voicemail_email")))
}

/// A divert rule as the caller writes it: the flag's `no-answer`, JSON's `no_answer`.
pub fn spelling(w: DivertWhen, n: Naming<'_>) -> &'static str {
    match (w, n) {
        (DivertWhen::NoAnswer, Naming::Flags) => "no-answer",
        (other, _) => other.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(divert_when: DivertWhen, divert_to: Option<&str>) -> Number {
        Number {
            id: 3,
            service_id: 1,
            number: "+61298765432".into(),
            device_id: None,
            divert_when,
            divert_to: divert_to.map(str::to_owned),
            no_answer_secs: 20,
            offline_alert: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_new_number_is_stored_in_e164_with_its_mailbox_settings() {
        let f = NumberFields {
            number: "02 9876 5432".into(),
            divert_when: Some("no_answer".into()),
            divert_to: Some("Voicemail".into()),
            voicemail_pin: Some("2468".into()),
            voicemail_email: Some(" desk@example.com ".into()),
            ..Default::default()
        };
        let p = new_number(&f, 9, Naming::Json).unwrap();
        assert_eq!(p.number.number, "+61298765432");
        assert_eq!((p.number.divert_when, p.number.divert_to.as_deref()), (DivertWhen::NoAnswer, Some("voicemail")));
        assert_eq!(p.number.no_answer_secs, DEFAULT_NO_ANSWER_SECS);
        let hash = p.mailbox.pin_hash.clone().flatten().unwrap();
        assert!(switchboard_voicemail::pin::verify("2468", &hash) && !hash.contains("2468"));
        assert_eq!(p.mailbox.email, Some(Some(("desk@example.com".into(), true))));
    }

    #[test]
    fn a_divert_needs_a_target_and_names_the_field_as_spelt() {
        let f =
            NumberFields { number: "+61298765432".into(), divert_when: Some("no-answer".into()), ..Default::default() };
        let e = new_number(&f, 1, Naming::Flags).unwrap_err().to_string();
        assert_eq!(e, "--divert-to: required when --divert-when is no-answer");
        let e = new_number(&f, 1, Naming::Json).unwrap_err().to_string();
        assert_eq!(e, "divert_to: required when divert_when is no_answer");
        // Clearing the target of a number that diverts is refused; clearing both is fine.
        let current = stored(DivertWhen::All, Some("voicemail"));
        let c = NumberChanges { divert_to: Some(None), ..Default::default() };
        let e = number_update(&c, &current, None, Naming::Json).unwrap_err().to_string();
        assert!(e.starts_with("divert_to: divert_when all needs"), "{e}");
        let c = NumberChanges { divert_to: Some(None), divert_when: Some("never".into()), ..Default::default() };
        let (u, m) = number_update(&c, &current, None, Naming::Json).unwrap();
        assert_eq!((u.divert_when, u.divert_to), (Some(DivertWhen::Never), Some(None)));
        assert!(m.is_empty());
    }

    #[test]
    fn keep_alone_applies_to_the_current_address_or_is_refused() {
        let current = stored(DivertWhen::Never, None);
        let c = NumberChanges { voicemail_email_keep: Some(false), ..Default::default() };
        let e = number_update(&c, &current, None, Naming::Json).unwrap_err().to_string();
        assert_eq!(e, "voicemail_email_keep: only with a voicemail_email to email messages to");
        let mailbox = Mailbox {
            number_id: 3,
            pin_hash: None,
            pin_failures: 0,
            locked_until: None,
            email: Some("a@example.com".into()),
            email_keep: true,
            updated_at: 0,
        };
        let (_, m) = number_update(&c, &current, Some(&mailbox), Naming::Json).unwrap();
        assert_eq!(m.email, Some(Some(("a@example.com".into(), false))));
    }

    #[test]
    fn changes_from_json_tell_absent_from_null() {
        let c: NumberChanges = serde_json::from_str(r#"{"device_id": null, "voicemail_pin": null}"#).unwrap();
        assert_eq!((c.device_id, c.voicemail_pin.clone()), (Some(None), Some(None)));
        assert_eq!(c.divert_to, None);
        let e = serde_json::from_str::<NumberChanges>(r#"{"divert": "all"}"#).unwrap_err().to_string();
        assert!(e.contains("unknown field `divert`"), "{e}");
        let e = new_number(&NumberFields { number: "1".into(), ..Default::default() }, 1, Naming::Json);
        assert!(e.unwrap_err().to_string().starts_with("number: "));
    }
}
