//! Listening to messages (`777`): the [`Retrieval`] machine's driver. It plays what the machine says (prompts,
//! recordings read from disk, the beep), feeds it keys, time and the caller's audio, and carries out what it
//! asks of the store: checking PINs (with the lockout across calls), saving, deleting, greetings, new PINs.

use std::path::PathBuf;
use std::sync::Arc;

use switchboard_media_core::player::{Clip, FRAME, Player};
use switchboard_media_core::retrieval::{Effect, Entry, PinCheck, Retrieval, Say};
use switchboard_media_core::wav;
use switchboard_storage::{Number, StoreError, VoicemailStatus};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::pin;
use crate::recorder::Recorder;
use crate::service::{Shared, Signal, answer, mailbox_dir, random_u64, unix_ms};
use crate::session::Input;
use crate::uas::Invite;

pub(crate) async fn listen(inv: Invite, shared: Arc<Shared>, mut signals: mpsc::UnboundedReceiver<Signal>) {
    let id = inv.id;
    if inv.mailboxes.is_empty() {
        tracing::info!(caller = %inv.caller, "777 without a mailbox to open");
        return shared.reject(id, 404, "No Mailbox");
    }
    let Some(mut session) = answer(&shared, id).await else { return };
    let epoch = Instant::now();
    let now = || u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut machine = Retrieval::new(shared.cfg.retrieval, inv.mailboxes.clone(), unix_ms());
    let mut ctx = Listening { shared: shared.clone(), number: None, player: Player::new(), awaiting_end: false };
    loop {
        if ctx.carry_out(&mut machine).await {
            shared.hang_up(id);
            return;
        }
        match session.next(&mut signals, &shared.shutdown).await {
            Input::Tick => {
                let mut frame = [0i16; FRAME];
                let playing = ctx.player.next_frame(&mut frame);
                session.send(playing.then_some(&frame)).await;
                if ctx.awaiting_end && ctx.player.is_idle() {
                    ctx.awaiting_end = false;
                    machine.on_played(now());
                }
                machine.on_tick(now());
            }
            Input::Key(key) => machine.on_key(key, now()),
            Input::Audio => {
                if machine.recording() {
                    machine.on_audio(session.samples());
                }
            }
            Input::Gone => return,
            Input::Shutdown => {
                shared.hang_up(id);
                return;
            }
        }
    }
}

#[derive(Debug)]
struct Listening {
    shared: Arc<Shared>,
    /// The mailbox's number, once its PIN was right.
    number: Option<Number>,
    player: Player,
    /// Something was queued: tell the machine when it has played.
    awaiting_end: bool,
}

impl Listening {
    /// Carries out every effect the machine has; `true` when the call is to end.
    async fn carry_out(&mut self, machine: &mut Retrieval) -> bool {
        while let Some(effect) = machine.poll_effect() {
            match effect {
                Effect::Play(items) => {
                    for item in items {
                        let clips = self.clips(item).await;
                        self.player.play(clips);
                    }
                    self.awaiting_end = true;
                }
                Effect::Stop => {
                    self.player.stop();
                    self.awaiting_end = false;
                }
                Effect::CheckPin { mailbox, pin } => {
                    let check = self.check_pin(&mailbox, &pin).await;
                    machine.on_pin(check);
                }
                Effect::MarkSaved(id) => {
                    self.store_op(self.shared.store.set_voicemail_status(id, VoicemailStatus::Saved).await);
                    self.lamp().await;
                }
                Effect::Delete(id) => {
                    self.delete(id).await;
                    self.lamp().await;
                }
                Effect::SaveGreeting(samples) => self.save_greeting(samples).await,
                Effect::DefaultGreeting => {
                    if let Some(path) = self.greeting_path() {
                        let _ = tokio::fs::remove_file(path).await;
                    }
                }
                Effect::SetPin(new_pin) => self.set_pin(&new_pin).await,
                Effect::Hangup => return true,
            }
        }
        false
    }

    /// The opened mailbox changed: the lamp is told.
    async fn lamp(&self) {
        if let Some(n) = &self.number {
            self.shared.mailbox_changed(n.id, &n.number).await;
        }
    }

    fn store_op(&self, r: Result<(), StoreError>) {
        if let Err(e) = r {
            tracing::error!(error = %e, "voicemail: store operation failed");
        }
    }

    async fn clips(&self, item: Say) -> Vec<Clip> {
        match item {
            Say::Prompt(_) | Say::Beep => self.shared.prompts.say(&[item]),
            Say::Message(id) => {
                let Ok(Some(m)) = self.shared.store.voicemail(id).await else { return Vec::new() };
                let path = self.shared.cfg.dir.join(&m.file);
                match tokio::fs::read(&path).await.ok().and_then(|b| wav::read_samples(&b)) {
                    Some(samples) => vec![Clip::from(samples)],
                    None => {
                        tracing::error!(id, path = %path.display(), "voicemail: message audio unreadable");
                        Vec::new()
                    }
                }
            }
        }
    }

    /// The PIN against the store, with the lockout: a locked mailbox is not even checked, a wrong PIN counts
    /// towards the lock, a right one clears the count and opens the messages.
    async fn check_pin(&mut self, mailbox: &str, typed: &str) -> PinCheck {
        let store = &self.shared.store;
        let Ok(Some(number)) = store.number_by_e164(mailbox).await else { return PinCheck::NoPin };
        let Ok(Some(mb)) = store.mailbox(number.id).await else { return PinCheck::NoPin };
        let Some(hash) = mb.pin_hash.clone() else { return PinCheck::NoPin };
        let wall = unix_ms();
        if mb.locked_until.is_some_and(|until| until > wall) {
            tracing::warn!(mailbox, "777: mailbox locked after wrong PINs");
            return PinCheck::Locked;
        }
        let typed = typed.to_owned();
        let right = tokio::task::spawn_blocking(move || pin::verify(&typed, &hash)).await.unwrap_or(false);
        if !right {
            let lock_until = wall + self.shared.cfg.pin_lock_ms;
            match store.mailbox_pin_failed(number.id, self.shared.cfg.pin_lock_after, lock_until).await {
                Ok(after) if after.locked_until == Some(lock_until) => {
                    tracing::warn!(mailbox, "777: too many wrong PINs; mailbox locked");
                }
                Ok(_) => tracing::info!(mailbox, "777: wrong PIN"),
                Err(e) => tracing::error!(error = %e, "voicemail: cannot count a wrong PIN"),
            }
            return PinCheck::Wrong;
        }
        self.store_op(store.mailbox_pin_passed(number.id).await);
        let entries = match store.list_voicemails(number.id).await {
            Ok(list) => list
                .into_iter()
                .filter(|m| m.status != VoicemailStatus::Recording)
                .map(|m| Entry {
                    id: m.id,
                    caller: m.caller,
                    received_at: m.received_at,
                    saved: m.status == VoicemailStatus::Saved,
                })
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "voicemail: cannot list messages");
                Vec::new()
            }
        };
        tracing::info!(mailbox, messages = entries.len(), "777: mailbox opened");
        self.number = Some(number);
        PinCheck::Right(entries)
    }

    async fn delete(&self, id: i64) {
        let store = &self.shared.store;
        // Only a message of the opened mailbox: the machine lists no other, but the store is the authority.
        let Ok(Some(m)) = store.voicemail(id).await else { return };
        if self.number.as_ref().map(|n| n.id) != Some(m.number_id) {
            return;
        }
        self.store_op(store.delete_voicemail(id).await);
        let _ = tokio::fs::remove_file(self.shared.cfg.dir.join(&m.file)).await;
    }

    fn greeting_path(&self) -> Option<PathBuf> {
        Some(self.shared.cfg.dir.join(mailbox_dir(&self.number.as_ref()?.number)).join("greeting.wav"))
    }

    /// Written beside the old one, then renamed over it: a greeting is never half there.
    async fn save_greeting(&self, samples: Vec<i16>) {
        let Some(path) = self.greeting_path() else { return };
        let tmp = path.with_extension(format!("{:08x}.tmp", random_u64() as u32));
        let written = tokio::task::spawn_blocking(move || {
            let mut rec = Recorder::create(&tmp)?;
            rec.write(&samples)?;
            rec.finish(samples.len() as u64)?;
            std::fs::rename(&tmp, &path)
        })
        .await;
        match written {
            Ok(Ok(())) => tracing::info!("777: greeting recorded"),
            other => tracing::error!(outcome = ?other, "voicemail: cannot store the greeting"),
        }
    }

    async fn set_pin(&self, new_pin: &str) {
        let Some(number) = &self.number else { return };
        let new_pin = new_pin.to_owned();
        let hash = match tokio::task::spawn_blocking(move || pin::hash_new(&new_pin)).await {
            Ok(Ok(hash)) => hash,
            other => return tracing::error!(outcome = ?other, "voicemail: cannot hash the new PIN; PIN unchanged"),
        };
        match self.shared.store.set_mailbox_pin(number.id, Some(&hash)).await {
            Ok(_) => tracing::info!(number = %number.number, "777: PIN changed"),
            Err(e) => tracing::error!(error = %e, "voicemail: cannot store the new PIN"),
        }
    }
}
