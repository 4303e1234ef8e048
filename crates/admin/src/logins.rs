//! Portal logins' one-time links and the emails that carry them, for the portal (register, recover) and the
//! operator's CLI (invite) alike. A link is `PUBLIC_URL/portal/password/TOKEN`: 256 random bits, only their
//! SHA-256 stored, spent once, dead after the configured lifetime (60 minutes by default) or any password change.
//! Emails go through the outbox: nothing waits on SMTP, and a failing server only delays them.

use switchboard_storage::{Login, NewEmail, NewLoginToken, Store, TokenPurpose};

use crate::Error;

/// Where links point and how long they work.
#[derive(Debug, Clone)]
pub struct Links {
    /// `https://portal.example.net`, without a trailing slash; never taken from a request.
    pub public_url: String,
    pub ttl_ms: i64,
}

/// Which email to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Letter {
    /// A self-registration: choose your first password.
    Welcome,
    /// An operator made the login: choose your first password.
    Invite,
    /// "Having trouble signing in": choose a new password.
    Reset,
    /// Registering an address that has a login already: sign in, or reset.
    AlreadyRegistered,
    /// The password was changed (no link).
    Changed,
}

impl Links {
    /// A new one-time link for `login`.
    pub async fn link(&self, store: &dyn Store, login: &Login, purpose: TokenPurpose) -> Result<String, Error> {
        let (token, token_hash) = crate::tokens::secret()?;
        let expires_at = switchboard_model::date::now_ms() + self.ttl_ms;
        store.create_login_token(&NewLoginToken { token_hash, login_id: login.id, purpose, expires_at }).await?;
        Ok(format!("{}/portal/password/{token}", self.public_url))
    }

    /// Queues `letter` to the login's address (with a fresh link where it carries one).
    pub async fn send(&self, store: &dyn Store, login: &Login, letter: Letter) -> Result<(), Error> {
        let minutes = match self.ttl_ms {
            ms if ms % 60_000 == 0 => format!("{} minutes", ms / 60_000),
            ms => format!("{} seconds", ms / 1000),
        };
        let (subject, body) = match letter {
            Letter::Welcome => {
                let link = self.link(store, login, TokenPurpose::Welcome).await?;
                (
                    "Choose your portal password",
                    format!(
                        "Welcome to the Business SIP portal.\n\nChoose your password with this link; it works once, \
                         for {minutes}:\n\n{link}\n\nYour provider then links your login to your \
                         services.\n\nIf it was not you, ignore this email.\n"
                    ),
                )
            }
            Letter::Invite => {
                let link = self.link(store, login, TokenPurpose::Welcome).await?;
                (
                    "Your Business SIP portal login",
                    format!(
                        "Your provider made you a login for the Business SIP portal, where you manage your phones, \
                         numbers and voicemail.\n\nChoose your password with this link; it works once, for \
                         {minutes}:\n\n{link}\n"
                    ),
                )
            }
            Letter::Reset => {
                let link = self.link(store, login, TokenPurpose::Reset).await?;
                (
                    "Reset your portal password",
                    format!(
                        "Someone (we hope you) asked to reset the password of your Business SIP portal login.\n\n\
                         Choose a new password with this link; it works once, for {minutes}:\n\n{link}\n\n\
                         If it was not you, ignore this email: your password stays as it is.\n"
                    ),
                )
            }
            Letter::AlreadyRegistered => {
                let link = self.link(store, login, TokenPurpose::Reset).await?;
                (
                    "You already have a portal login",
                    format!(
                        "Someone (we hope you) asked to register {} for the Business SIP portal, but this address \
                         already has a login.\n\nSign in at {}/portal/login\n\nForgot the password? This link \
                         sets a new one; it works once, for {minutes}:\n\n{link}\n\nIf it was not you, \
                         ignore this email.\n",
                        login.email, self.public_url
                    ),
                )
            }
            Letter::Changed => (
                "Your portal password was changed",
                "The password of your Business SIP portal login was just changed, and every browser signed in with \
                 it was signed out.\n\nIf it was not you, use \"Having trouble signing in\" at once and tell your \
                 provider.\n"
                    .to_owned(),
            ),
        };
        let new = NewEmail {
            kind: "login".into(),
            recipient: login.email.clone(),
            subject: subject.to_owned(),
            body,
            ..Default::default()
        };
        store.enqueue_email(&new).await?;
        Ok(())
    }
}
