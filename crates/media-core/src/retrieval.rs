//! Listening to messages (`777`), as a machine: choose the mailbox (when the caller may open several), the PIN,
//! the main menu, each message with its menu, and the mailbox options (greeting, PIN).
//!
//! The machine decides; the driver acts. It says what to play as [`Say`] items (prompt names, a message's
//! audio, the beep), and asks for what it cannot do itself through [`Effect`]s: checking a PIN against the
//! store, marking a message saved or deleting it, storing a greeting or a new PIN, hanging up. The driver tells
//! it of keys, of the end of what was playing, of the caller's audio (recording a greeting) and of time.
//!
//! Menus, as announced:
//! - main: 1 new messages, 2 saved messages, 0 mailbox options, `*` repeat, `#` finish;
//! - after each message (announced with its number, caller and time): 5 repeat, 7 delete, 9 save, 6 next,
//!   4 previous, `*` main menu; a new message heard to its end becomes saved;
//! - options: 1 record greeting (until `#`), 2 standard greeting, 3 change PIN, `*` main menu.
//!
//! Digits (mailbox, PIN) end with `#`, or after a pause; `*` starts them again. No key for a while repeats the
//! prompt, three times, then the call ends. Three wrong PINs end the call.

use std::collections::VecDeque;

/// Something to play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Say {
    /// A prompt by name (`prompts.txt`).
    Prompt(&'static str),
    /// A message's recording.
    Message(i64),
    /// The tone before recording.
    Beep,
}

/// A message as the menus see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    /// E.164 or what the caller's From held.
    pub caller: String,
    /// Unix ms.
    pub received_at: i64,
    pub saved: bool,
}

/// What the store said of a PIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    /// Right: the mailbox's messages, oldest first.
    Right(Vec<Entry>),
    Wrong,
    /// Too many wrong PINs lately.
    Locked,
    /// The mailbox has no PIN.
    NoPin,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Queue these after whatever is playing.
    Play(Vec<Say>),
    /// Drop what is playing and queued.
    Stop,
    /// Check `pin` for `mailbox` (E.164) and answer with [`Retrieval::on_pin`].
    CheckPin {
        mailbox: String,
        pin: String,
    },
    MarkSaved(i64),
    Delete(i64),
    /// Store these samples as the mailbox's greeting.
    SaveGreeting(Vec<i16>),
    /// Back to the standard greeting.
    DefaultGreeting,
    SetPin(String),
    Hangup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrievalConfig {
    /// A pause this long after a digit ends the entry.
    pub digit_timeout_ms: u64,
    /// No key this long after a prompt: the prompt is repeated (three times, then goodbye).
    pub menu_timeout_ms: u64,
    /// Wrong PINs in one call before it ends.
    pub max_pin_tries: u8,
    pub max_greeting_ms: u64,
    /// Local time for announcing when messages came, as minutes east of UTC.
    pub utc_offset_mins: i32,
}

impl Default for RetrievalConfig {
    fn default() -> Self {
        RetrievalConfig {
            digit_timeout_ms: 5_000,
            menu_timeout_ms: 10_000,
            max_pin_tries: 3,
            max_greeting_ms: 60_000,
            utc_offset_mins: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Folder {
    New,
    Saved,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Mailbox,
    Pin,
    CheckingPin,
    Main,
    /// A message of `list` at `index`; `menu`: its menu is being offered (the message has played).
    Message {
        index: usize,
        menu: bool,
    },
    Options,
    Greeting {
        recording: bool,
        samples: Vec<i16>,
    },
    NewPin,
    Goodbye,
}

#[derive(Debug)]
pub struct Retrieval {
    cfg: RetrievalConfig,
    mailboxes: Vec<String>,
    mailbox: Option<String>,
    state: State,
    /// Digits typed so far (mailbox, PIN, new PIN).
    entry: String,
    /// The messages of the folder being listened to.
    list: Vec<Entry>,
    all: Vec<Entry>,
    folder: Folder,
    pin_tries: u8,
    mailbox_tries: u8,
    /// Prompts repeated without an answer.
    reprompts: u8,
    /// Something is playing (the driver says when it ends).
    playing: bool,
    /// When waiting for a key gives up (set when a prompt ends or a key is pressed).
    deadline: Option<u64>,
    effects: VecDeque<Effect>,
    /// Unix ms now, for "received today at ...".
    wall_ms: i64,
}

impl Retrieval {
    /// `mailboxes`: the numbers (E.164) the caller may open; `wall_ms`: Unix ms at the start of the call.
    pub fn new(cfg: RetrievalConfig, mailboxes: Vec<String>, wall_ms: i64) -> Retrieval {
        let mut r = Retrieval {
            cfg,
            mailbox: None,
            state: State::Mailbox,
            entry: String::new(),
            list: Vec::new(),
            all: Vec::new(),
            folder: Folder::New,
            pin_tries: 0,
            mailbox_tries: 0,
            reprompts: 0,
            playing: false,
            deadline: None,
            effects: VecDeque::new(),
            wall_ms,
            mailboxes,
        };
        match r.mailboxes.as_slice() {
            [] => r.goodbye_with("no-mailbox"),
            [only] => {
                r.mailbox = Some(only.clone());
                r.ask_pin();
            }
            _ => r.ask_mailbox(),
        }
        r
    }

    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// The mailbox opened (or being opened).
    pub fn mailbox(&self) -> Option<&str> {
        self.mailbox.as_deref()
    }

    /// Whether the caller's audio is wanted ([`Retrieval::on_audio`]).
    pub fn recording(&self) -> bool {
        matches!(self.state, State::Greeting { recording: true, .. })
    }

    /// What was playing has ended.
    pub fn on_played(&mut self, now: u64) {
        self.playing = false;
        self.deadline = Some(now + self.cfg.menu_timeout_ms);
        match &mut self.state {
            State::Goodbye => self.effects.push_back(Effect::Hangup),
            State::Message { index, menu: menu @ false } => {
                *menu = true;
                let index = *index;
                self.heard_to_the_end(index);
                self.play(vec![Say::Prompt("message-menu")]);
            }
            State::Greeting { recording, .. } => {
                *recording = true;
                self.deadline = Some(now + self.cfg.max_greeting_ms);
            }
            _ => {}
        }
    }

    /// The caller's audio (only while [`Retrieval::recording`]).
    pub fn on_audio(&mut self, samples: &[i16]) {
        if let State::Greeting { recording: true, samples: kept } = &mut self.state {
            kept.extend_from_slice(samples);
            if kept.len() as u64 >= self.cfg.max_greeting_ms * 8 {
                self.end_greeting();
            }
        }
    }

    /// Every tick (20 ms is plenty).
    pub fn on_tick(&mut self, now: u64) {
        let Some(deadline) = self.deadline else { return };
        if now < deadline || self.playing {
            return;
        }
        self.deadline = None;
        match self.state {
            State::Mailbox | State::Pin | State::NewPin if !self.entry.is_empty() => self.entered(),
            State::Greeting { recording: true, .. } => self.end_greeting(),
            State::CheckingPin | State::Goodbye => {}
            _ => {
                self.reprompts += 1;
                if self.reprompts >= 3 {
                    self.goodbye();
                } else {
                    self.prompt_again();
                }
            }
        }
    }

    /// A key from RFC 4733 or INFO.
    pub fn on_key(&mut self, key: char, now: u64) {
        self.reprompts = 0;
        self.deadline = Some(now + self.cfg.digit_timeout_ms.min(self.cfg.menu_timeout_ms));
        match self.state.clone() {
            State::Mailbox | State::Pin | State::NewPin => match key {
                '#' => self.entered(),
                '*' => self.entry.clear(),
                d if d.is_ascii_digit() && self.entry.len() < 16 => {
                    if self.playing {
                        self.stop();
                    }
                    self.entry.push(d);
                    self.deadline = Some(now + self.cfg.digit_timeout_ms);
                }
                _ => {}
            },
            State::CheckingPin | State::Goodbye => {}
            State::Main => self.main_key(key),
            State::Message { index, .. } => self.message_key(key, index),
            State::Options => self.options_key(key),
            State::Greeting { recording, .. } => {
                if key == '#' && recording {
                    self.end_greeting();
                } else if key == '*' {
                    self.stop();
                    self.options();
                }
            }
        }
    }

    /// The store's answer to [`Effect::CheckPin`].
    pub fn on_pin(&mut self, check: PinCheck) {
        if self.state != State::CheckingPin {
            return;
        }
        match check {
            PinCheck::Right(entries) => {
                self.all = entries;
                self.main(true);
            }
            PinCheck::Wrong => {
                self.pin_tries += 1;
                if self.pin_tries >= self.cfg.max_pin_tries {
                    self.play(vec![Say::Prompt("wrong-pin")]);
                    self.goodbye();
                } else {
                    self.play(vec![Say::Prompt("wrong-pin")]);
                    self.ask_pin();
                }
            }
            PinCheck::Locked => self.goodbye_with("locked"),
            PinCheck::NoPin => self.goodbye_with("no-pin"),
        }
    }

    fn play(&mut self, items: Vec<Say>) {
        self.playing = true;
        self.deadline = None;
        self.effects.push_back(Effect::Play(items));
    }

    fn stop(&mut self) {
        self.playing = false;
        self.effects.push_back(Effect::Stop);
    }

    fn ask_mailbox(&mut self) {
        self.state = State::Mailbox;
        self.entry.clear();
        self.play(vec![Say::Prompt("enter-mailbox")]);
    }

    fn ask_pin(&mut self) {
        self.state = State::Pin;
        self.entry.clear();
        self.play(vec![Say::Prompt("enter-pin")]);
    }

    fn goodbye(&mut self) {
        self.state = State::Goodbye;
        self.play(vec![Say::Prompt("goodbye")]);
    }

    fn goodbye_with(&mut self, prompt: &'static str) {
        self.play(vec![Say::Prompt(prompt)]);
        self.goodbye();
    }

    fn prompt_again(&mut self) {
        match self.state.clone() {
            State::Mailbox => self.play(vec![Say::Prompt("enter-mailbox")]),
            State::Pin => self.play(vec![Say::Prompt("enter-pin")]),
            State::NewPin => self.play(vec![Say::Prompt("new-pin")]),
            State::Main => self.main(false),
            State::Message { .. } => self.play(vec![Say::Prompt("message-menu")]),
            State::Options => self.options(),
            _ => {}
        }
    }

    /// A mailbox number, PIN or new PIN has been typed.
    fn entered(&mut self) {
        let typed = std::mem::take(&mut self.entry);
        match self.state {
            State::Mailbox => {
                let found = self.mailboxes.iter().find(|m| same_number(m, &typed)).cloned();
                match found {
                    Some(m) => {
                        self.mailbox = Some(m);
                        self.ask_pin();
                    }
                    None => {
                        self.mailbox_tries += 1;
                        if self.mailbox_tries >= 3 {
                            self.goodbye_with("no-mailbox");
                        } else {
                            self.play(vec![Say::Prompt("no-mailbox")]);
                            self.ask_mailbox();
                        }
                    }
                }
            }
            State::Pin => {
                let Some(mailbox) = self.mailbox.clone() else { return self.goodbye() };
                self.state = State::CheckingPin;
                self.deadline = None;
                self.effects.push_back(Effect::CheckPin { mailbox, pin: typed });
            }
            State::NewPin => {
                let valid = (4..=10).contains(&typed.len()) && typed.bytes().all(|b| b.is_ascii_digit());
                if valid {
                    self.effects.push_back(Effect::SetPin(typed));
                    self.play(vec![Say::Prompt("pin-changed")]);
                } else {
                    self.play(vec![Say::Prompt("pin-invalid")]);
                }
                self.options();
            }
            _ => {}
        }
    }

    fn counts(&self) -> (usize, usize) {
        let saved = self.all.iter().filter(|e| e.saved).count();
        (self.all.len() - saved, saved)
    }

    /// The main menu, with the counts first when `intro`.
    fn main(&mut self, intro: bool) {
        self.state = State::Main;
        let mut say = Vec::new();
        if intro {
            let (new, saved) = self.counts();
            say.push(Say::Prompt("you-have"));
            say.extend(count(new));
            say.push(Say::Prompt(if new == 1 { "new-message" } else { "new-messages" }));
            say.push(Say::Prompt("and"));
            say.extend(count(saved));
            say.push(Say::Prompt(if saved == 1 { "saved-message" } else { "saved-messages" }));
        }
        say.push(Say::Prompt("main-menu"));
        self.play(say);
    }

    fn main_key(&mut self, key: char) {
        match key {
            '1' | '2' => {
                self.stop();
                self.folder = if key == '1' { Folder::New } else { Folder::Saved };
                let saved = self.folder == Folder::Saved;
                self.list = self.all.iter().filter(|e| e.saved == saved).cloned().collect();
                if self.list.is_empty() {
                    self.play(vec![Say::Prompt("no-messages")]);
                    self.main(false);
                } else {
                    self.message(0);
                }
            }
            '0' => {
                self.stop();
                self.options();
            }
            '*' => {
                self.stop();
                self.main(true);
            }
            '#' => {
                self.stop();
                self.goodbye();
            }
            _ => {
                self.stop();
                self.play(vec![Say::Prompt("invalid")]);
                self.main(false);
            }
        }
    }

    /// Announces and plays message `index` of the list.
    fn message(&mut self, index: usize) {
        let Some(e) = self.list.get(index).cloned() else { return self.main(false) };
        self.state = State::Message { index, menu: false };
        let mut say = vec![Say::Prompt("message")];
        say.extend(number(u32::try_from(index + 1).unwrap_or(u32::MAX)));
        say.push(Say::Prompt("from"));
        let national = national(&e.caller);
        if national.len() >= 3 && national.bytes().all(|b| b.is_ascii_digit()) {
            say.extend(digits(&national));
        } else {
            say.push(Say::Prompt("unknown-caller"));
        }
        say.push(Say::Prompt("received"));
        say.extend(when(e.received_at, self.wall_ms, self.cfg.utc_offset_mins));
        say.push(Say::Message(e.id));
        self.play(say);
    }

    /// A new message heard to its end becomes saved.
    fn heard_to_the_end(&mut self, index: usize) {
        if let Some(e) = self.list.get_mut(index)
            && !e.saved
        {
            e.saved = true;
            let id = e.id;
            if let Some(a) = self.all.iter_mut().find(|a| a.id == id) {
                a.saved = true;
            }
            self.effects.push_back(Effect::MarkSaved(id));
        }
    }

    fn message_key(&mut self, key: char, index: usize) {
        let Some(id) = self.list.get(index).map(|e| e.id) else { return self.main(false) };
        match key {
            '5' => {
                self.stop();
                self.message(index);
            }
            '7' => {
                self.stop();
                self.effects.push_back(Effect::Delete(id));
                self.list.remove(index);
                self.all.retain(|e| e.id != id);
                self.play(vec![Say::Prompt("deleted")]);
                self.next(index);
            }
            '9' => {
                self.stop();
                self.heard_to_the_end(index);
                self.play(vec![Say::Prompt("saved")]);
                self.next(index + 1);
            }
            '6' => {
                self.stop();
                self.next(index + 1);
            }
            '4' => {
                self.stop();
                if index == 0 {
                    self.play(vec![Say::Prompt("first-message")]);
                    self.message(0);
                } else {
                    self.message(index - 1);
                }
            }
            '*' => {
                self.stop();
                self.main(true);
            }
            '#' => {
                self.stop();
                self.goodbye();
            }
            _ => {}
        }
    }

    fn next(&mut self, index: usize) {
        if index < self.list.len() {
            self.message(index);
        } else {
            self.play(vec![Say::Prompt("no-more")]);
            self.main(false);
        }
    }

    fn options(&mut self) {
        self.state = State::Options;
        self.play(vec![Say::Prompt("options-menu")]);
    }

    fn options_key(&mut self, key: char) {
        self.stop();
        match key {
            '1' => {
                self.state = State::Greeting { recording: false, samples: Vec::new() };
                self.play(vec![Say::Prompt("record-greeting"), Say::Beep]);
            }
            '2' => {
                self.effects.push_back(Effect::DefaultGreeting);
                self.play(vec![Say::Prompt("greeting-default")]);
                self.options();
            }
            '3' => {
                self.state = State::NewPin;
                self.entry.clear();
                self.play(vec![Say::Prompt("new-pin")]);
            }
            '*' => self.main(true),
            '#' => self.goodbye(),
            _ => {
                self.play(vec![Say::Prompt("invalid")]);
                self.options();
            }
        }
    }

    fn end_greeting(&mut self) {
        let State::Greeting { samples, .. } = std::mem::replace(&mut self.state, State::Options) else { return };
        if samples.len() >= 8_000 {
            self.effects.push_back(Effect::SaveGreeting(samples));
            self.play(vec![Say::Prompt("greeting-saved")]);
        } else {
            self.play(vec![Say::Prompt("invalid")]);
        }
        self.options();
    }
}

/// Whether `typed` names `e164`: its digits, or its national form (`0` for `+61`).
fn same_number(e164: &str, typed: &str) -> bool {
    let digits: String = e164.chars().filter(char::is_ascii_digit).collect();
    !typed.is_empty() && (typed == digits || typed == national(e164))
}

/// An Australian number in its national form (`+61299990001` -> `0299990001`); others without the `+`.
pub fn national(number: &str) -> String {
    match number.strip_prefix("+61") {
        Some(rest) => format!("0{rest}"),
        None => number.trim_start_matches('+').to_owned(),
    }
}

/// Each key by name (`*` and `#` too); other characters are skipped.
pub fn digits(s: &str) -> Vec<Say> {
    s.chars()
        .filter_map(|c| {
            Some(Say::Prompt(match c {
                '0' => "d0",
                '1' => "d1",
                '2' => "d2",
                '3' => "d3",
                '4' => "d4",
                '5' => "d5",
                '6' => "d6",
                '7' => "d7",
                '8' => "d8",
                '9' => "d9",
                '*' => "dstar",
                '#' => "dhash",
                _ => return None,
            }))
        })
        .collect()
}

/// A count: "no" for none.
fn count(n: usize) -> Vec<Say> {
    if n == 0 { vec![Say::Prompt("no")] } else { number(u32::try_from(n).unwrap_or(u32::MAX)) }
}

/// A number as words, 0 to 999 (above, digit by digit): 42 = "forty" "two", 105 = "one" "hundred" "five".
pub fn number(n: u32) -> Vec<Say> {
    const TEENS: [&str; 10] = ["n10", "n11", "n12", "n13", "n14", "n15", "n16", "n17", "n18", "n19"];
    const TENS: [&str; 8] = ["n20", "n30", "n40", "n50", "n60", "n70", "n80", "n90"];
    let unit = |d: u32| digits(&d.to_string());
    match n {
        0..=9 => unit(n),
        10..=19 => TEENS.get((n - 10) as usize).map(|p| vec![Say::Prompt(p)]).unwrap_or_default(),
        20..=99 => {
            let mut v: Vec<Say> = TENS.get((n / 10 - 2) as usize).map(|p| Say::Prompt(p)).into_iter().collect();
            if !n.is_multiple_of(10) {
                v.extend(unit(n % 10));
            }
            v
        }
        100..=999 => {
            let mut v = unit(n / 100);
            v.push(Say::Prompt("hundred"));
            if !n.is_multiple_of(100) {
                v.extend(number(n % 100));
            }
            v
        }
        _ => digits(&n.to_string()),
    }
}

/// "today at 10 42", "yesterday at 9 oh 5", "3 days ago at 17 o'clock", in local time.
fn when(received_ms: i64, now_ms: i64, offset_mins: i32) -> Vec<Say> {
    let local = |ms: i64| ms.div_euclid(60_000) + i64::from(offset_mins);
    let (then, now) = (local(received_ms), local(now_ms));
    let days = now.div_euclid(1440) - then.div_euclid(1440);
    let mut say = match days {
        ..=0 => vec![Say::Prompt("today")],
        1 => vec![Say::Prompt("yesterday")],
        n => {
            let mut v = number(u32::try_from(n).unwrap_or(u32::MAX));
            v.push(Say::Prompt("days-ago"));
            v
        }
    };
    let minute_of_day = then.rem_euclid(1440);
    let (h, m) = ((minute_of_day / 60) as u32, (minute_of_day % 60) as u32);
    say.push(Say::Prompt("at"));
    say.extend(number(h));
    match m {
        0 => say.push(Say::Prompt("oclock")),
        1..=9 => {
            say.push(Say::Prompt("oh"));
            say.extend(number(m));
        }
        _ => say.extend(number(m)),
    }
    say
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_640_120_000; // 2026-12-07 10:42 UTC

    fn entry(id: i64, saved: bool, ago_ms: i64) -> Entry {
        Entry { id, caller: "+61299990002".into(), received_at: NOW - ago_ms, saved }
    }

    fn names(items: &[Say]) -> Vec<String> {
        items
            .iter()
            .map(|s| match s {
                Say::Prompt(p) => (*p).to_owned(),
                Say::Message(id) => format!("<message {id}>"),
                Say::Beep => "<beep>".to_owned(),
            })
            .collect()
    }

    /// Every effect so far, plays flattened to names.
    fn drain(r: &mut Retrieval) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(e) = r.poll_effect() {
            match e {
                Effect::Play(items) => out.extend(names(&items)),
                other => out.push(format!("{other:?}")),
            }
        }
        out
    }

    fn keys(r: &mut Retrieval, ks: &str, now: u64) {
        for k in ks.chars() {
            r.on_key(k, now);
        }
    }

    /// A caller past the PIN with two new messages and one saved.
    fn opened() -> Retrieval {
        let mut r = Retrieval::new(RetrievalConfig::default(), vec!["+61299990001".into()], NOW);
        assert_eq!(drain(&mut r), ["enter-pin"]);
        r.on_played(0);
        keys(&mut r, "1234#", 100);
        assert_eq!(drain(&mut r), [r#"CheckPin { mailbox: "+61299990001", pin: "1234" }"#], "the prompt had ended");
        r.on_pin(PinCheck::Right(vec![
            entry(1, false, 3_600_000),
            entry(2, true, 90_000_000),
            entry(3, false, 60_000),
        ]));
        let intro = drain(&mut r);
        assert_eq!(intro, ["you-have", "d2", "new-messages", "and", "d1", "saved-message", "main-menu"]);
        r
    }

    #[test]
    fn new_messages_are_announced_played_and_saved_when_heard_to_the_end() {
        let mut r = opened();
        r.on_key('1', 1_000);
        let first = drain(&mut r);
        assert_eq!(first[0], "Stop");
        assert_eq!(
            &first[1..],
            [
                "message",
                "d1",
                "from",
                "d0",
                "d2",
                "d9",
                "d9",
                "d9",
                "d9",
                "d0",
                "d0",
                "d0",
                "d2",
                "received",
                "today",
                "at",
                "d9",
                "n40",
                "d2",
                "<message 1>"
            ],
            "the first new message, received an hour ago at 09:42 UTC"
        );
        r.on_played(5_000);
        assert_eq!(drain(&mut r), ["MarkSaved(1)", "message-menu"]);
        r.on_key('6', 6_000);
        let second = drain(&mut r);
        assert!(second.contains(&"<message 3>".to_owned()) && second.contains(&"n10".to_owned()), "{second:?}");
        // 7 deletes it; there is no next new message: back to the main menu.
        r.on_key('7', 7_000);
        assert_eq!(drain(&mut r), ["Stop", "Delete(3)", "deleted", "no-more", "main-menu"]);
        // The counts now: no new, two saved (1 was heard to the end).
        r.on_key('*', 8_000);
        assert_eq!(
            drain(&mut r),
            ["Stop", "you-have", "no", "new-messages", "and", "d2", "saved-messages", "main-menu"]
        );
        r.on_key('2', 9_000);
        assert!(drain(&mut r).ends_with(&["<message 1>".to_owned()]), "saved: 1 (heard) then 2, oldest first");
        r.on_key('6', 9_500);
        let saved = drain(&mut r);
        assert!(saved.contains(&"yesterday".to_owned()), "message 2 came 25 hours ago: {saved:?}");
        r.on_key('#', 10_000);
        assert_eq!(drain(&mut r), ["Stop", "goodbye"]);
        r.on_played(11_000);
        assert_eq!(drain(&mut r), ["Hangup"]);
    }

    #[test]
    fn repeat_previous_save_and_keys_over_a_playing_message() {
        let mut r = opened();
        r.on_key('1', 0);
        drain(&mut r);
        r.on_key('4', 10);
        let again = drain(&mut r);
        assert_eq!(&again[..2], ["Stop", "first-message"]);
        assert!(again.ends_with(&["<message 1>".to_owned()]));
        r.on_key('5', 20);
        assert!(drain(&mut r).ends_with(&["<message 1>".to_owned()]));
        // 9 saves without hearing it to the end, then the next message plays.
        r.on_key('9', 30);
        let out = drain(&mut r);
        assert_eq!(&out[..3], ["Stop", "MarkSaved(1)", "saved"]);
        assert!(out.ends_with(&["<message 3>".to_owned()]));
        r.on_key('4', 40);
        assert!(drain(&mut r).ends_with(&["<message 1>".to_owned()]));
    }

    #[test]
    fn three_wrong_pins_end_the_call_and_locks_and_missing_pins_are_said() {
        let mut r = Retrieval::new(RetrievalConfig::default(), vec!["+61299990001".into()], NOW);
        drain(&mut r);
        for attempt in 1..=3 {
            keys(&mut r, "0000#", 0);
            assert_eq!(drain(&mut r), ["Stop", r#"CheckPin { mailbox: "+61299990001", pin: "0000" }"#]);
            r.on_pin(PinCheck::Wrong);
            let out = drain(&mut r);
            if attempt < 3 {
                assert_eq!(out, ["wrong-pin", "enter-pin"]);
            } else {
                assert_eq!(out, ["wrong-pin", "goodbye"]);
            }
        }
        r.on_played(0);
        assert_eq!(drain(&mut r), ["Hangup"]);
        for (check, prompt) in [(PinCheck::Locked, "locked"), (PinCheck::NoPin, "no-pin")] {
            let mut r = Retrieval::new(RetrievalConfig::default(), vec!["+61299990001".into()], NOW);
            drain(&mut r);
            keys(&mut r, "1234#", 0);
            drain(&mut r);
            r.on_pin(check);
            assert_eq!(drain(&mut r), [prompt, "goodbye"]);
        }
    }

    #[test]
    fn several_mailboxes_ask_which_and_a_pause_ends_an_entry() {
        let mailboxes = vec!["+61299990001".into(), "+61299990002".into()];
        let mut r = Retrieval::new(RetrievalConfig::default(), mailboxes, NOW);
        assert_eq!(drain(&mut r), ["enter-mailbox"]);
        keys(&mut r, "0299990003#", 0);
        assert_eq!(drain(&mut r), ["Stop", "no-mailbox", "enter-mailbox"]);
        // The national form, ended by a pause instead of #.
        keys(&mut r, "0299990002", 1_000);
        assert_eq!(drain(&mut r), ["Stop"], "typing over the prompt stops it");
        r.on_tick(5_999);
        assert!(drain(&mut r).is_empty());
        r.on_tick(6_000);
        assert_eq!(drain(&mut r), ["enter-pin"]);
        assert_eq!(r.mailbox(), Some("+61299990002"));
        // `*` starts the PIN again; the E.164 digits also name a mailbox.
        keys(&mut r, "99*4321#", 7_000);
        assert_eq!(drain(&mut r), ["Stop", r#"CheckPin { mailbox: "+61299990002", pin: "4321" }"#]);
    }

    #[test]
    fn silence_repeats_the_menu_three_times_then_ends() {
        let mut r = opened();
        r.on_played(0);
        r.on_tick(9_999);
        assert!(drain(&mut r).is_empty());
        r.on_tick(10_000);
        assert_eq!(drain(&mut r), ["main-menu"]);
        r.on_played(20_000);
        r.on_tick(30_000);
        assert_eq!(drain(&mut r), ["main-menu"]);
        r.on_played(30_000);
        r.on_tick(40_000);
        assert_eq!(drain(&mut r), ["goodbye"]);
    }

    #[test]
    fn options_greeting_default_and_pin() {
        let mut r = opened();
        r.on_key('0', 0);
        assert_eq!(drain(&mut r), ["Stop", "options-menu"]);
        r.on_key('1', 10);
        assert_eq!(drain(&mut r), ["Stop", "record-greeting", "<beep>"]);
        assert!(!r.recording(), "not before the beep has played");
        r.on_audio(&[5; 160]);
        r.on_played(1_000);
        assert!(r.recording());
        for _ in 0..100 {
            r.on_audio(&[5; 160]);
        }
        r.on_key('#', 3_000);
        let out = drain(&mut r);
        assert!(matches!(out[0].as_str(), s if s.starts_with("SaveGreeting([5, 5")), "{}", &out[0][..30]);
        assert_eq!(&out[1..], ["greeting-saved", "options-menu"]);
        assert!(!r.recording());
        r.on_key('2', 4_000);
        assert_eq!(drain(&mut r), ["Stop", "DefaultGreeting", "greeting-default", "options-menu"]);
        r.on_key('3', 5_000);
        assert_eq!(drain(&mut r), ["Stop", "new-pin"]);
        keys(&mut r, "12#", 6_000);
        assert_eq!(drain(&mut r), ["Stop", "pin-invalid", "options-menu"], "typing over a prompt stops it");
        r.on_key('3', 7_000);
        drain(&mut r);
        keys(&mut r, "975310#", 8_000);
        assert_eq!(drain(&mut r), ["Stop", r#"SetPin("975310")"#, "pin-changed", "options-menu"]);
        r.on_key('*', 9_000);
        assert_eq!(drain(&mut r)[1], "you-have");
    }

    #[test]
    fn a_short_greeting_is_refused_and_a_long_one_cut_at_the_maximum() {
        let mut r = opened();
        keys(&mut r, "01", 0);
        r.on_played(10);
        drain(&mut r);
        r.on_key('#', 20);
        assert_eq!(drain(&mut r), ["invalid", "options-menu"]);
        let cfg = RetrievalConfig { max_greeting_ms: 1_000, ..Default::default() };
        let mut r = Retrieval::new(cfg, vec!["+61299990001".into()], NOW);
        keys(&mut r, "1#", 0);
        r.on_pin(PinCheck::Right(vec![]));
        keys(&mut r, "01", 0);
        r.on_played(10);
        drain(&mut r);
        for _ in 0..50 {
            r.on_audio(&[1; 160]);
        }
        let out = drain(&mut r);
        assert!(out[0].starts_with("SaveGreeting"), "cut at a second: {:?}", &out[1..]);
    }

    #[test]
    fn numbers_and_times_as_words() {
        let n = |v: u32| names(&number(v)).join(" ");
        assert_eq!(n(0), "d0");
        assert_eq!(n(13), "n13");
        assert_eq!(n(40), "n40");
        assert_eq!(n(42), "n40 d2");
        assert_eq!(n(105), "d1 hundred d5");
        assert_eq!(n(999), "d9 hundred n90 d9");
        assert_eq!(n(1234), "d1 d2 d3 d4");
        let w = |ago: i64, offset: i32| names(&when(NOW - ago, NOW, offset)).join(" ");
        assert_eq!(w(0, 0), "today at n10 n40 d2");
        assert_eq!(w(37 * 60_000, 0), "today at n10 oh d5");
        assert_eq!(w(42 * 60_000, 0), "today at n10 oclock");
        assert_eq!(w(11 * 3_600_000, 0), "yesterday at n20 d3 n40 d2", "23:42 the day before");
        assert_eq!(w(3 * 86_400_000, 600), "d3 days-ago at n20 n40 d2", "20:42 in Sydney (UTC+10)");
        assert_eq!(w(0, 600), "today at n20 n40 d2");
        assert_eq!(national("+61299990001"), "0299990001");
        assert_eq!(national("+4420"), "4420");
        assert!(same_number("+61299990001", "61299990001") && !same_number("+61299990001", ""));
    }
}
