//! Leaving a message, as a machine: the greeting and the beep play, then the caller's audio is recorded until
//! they hang up, press `#`, fall silent or reach the maximum length. Short or silent messages are discarded, and
//! trailing silence is trimmed.
//!
//! Time moves in 20 ms ticks ([`Deposit::tick`]); the caller's audio arrives as decoded samples
//! ([`Deposit::on_audio`]), which the machine says to write or not. Durations are what was written: 8 samples a
//! millisecond.

use crate::player::{Clip, FRAME, FRAME_MS, Player, level};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepositConfig {
    /// The longest message; recording stops there.
    pub max_ms: u64,
    /// Messages shorter than this are discarded.
    pub min_ms: u64,
    /// This long without speech ends the message.
    pub silence_ms: u64,
    /// Frames whose mean absolute sample is below this are silence.
    pub silence_level: u16,
}

impl Default for DepositConfig {
    fn default() -> Self {
        DepositConfig { max_ms: 180_000, min_ms: 1_000, silence_ms: 10_000, silence_level: 256 }
    }
}

/// Speech kept after the last loud frame when trailing silence is trimmed.
const TAIL_SAMPLES: u64 = 8 * 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The greeting and beep are playing; `#` skips to the beep.
    Greeting,
    Recording,
    Finished,
}

/// Why recording stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Hangup,
    /// The caller pressed `#`.
    Key,
    Silence,
    MaxLength,
}

impl End {
    pub fn as_str(self) -> &'static str {
        match self {
            End::Hangup => "hangup",
            End::Key => "key",
            End::Silence => "silence",
            End::MaxLength => "max_length",
        }
    }
}

/// What becomes of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Keep the first `samples` written (trailing silence trimmed).
    Keep { samples: u64, end: End },
    /// Too short, silent, or never started.
    Discard { end: End },
}

impl Outcome {
    pub fn end(self) -> End {
        match self {
            Outcome::Keep { end, .. } | Outcome::Discard { end } => end,
        }
    }
}

/// What to send on a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// The frame holds prompt audio.
    Audio,
    /// Send silence (keeps the stream and any NAT binding alive while recording).
    Silence,
    /// Recording ended on this tick (silence or maximum length): hang up.
    Finished(Outcome),
}

#[derive(Debug)]
pub struct Deposit {
    cfg: DepositConfig,
    player: Player,
    beep: Clip,
    /// `#` cut the greeting short (once: a second `#` does not cut the beep).
    skipped: bool,
    phase: Phase,
    /// Samples written.
    written: u64,
    /// Samples written up to the end of the last loud frame; 0 if none was loud.
    speech_end: u64,
    /// Recording time by the clock, in ms (audio can stop arriving while time goes on).
    elapsed_ms: u64,
    /// Time since the last loud frame.
    quiet_ms: u64,
}

impl Deposit {
    pub fn new(cfg: DepositConfig, greeting: impl IntoIterator<Item = Clip>, beep: Clip) -> Deposit {
        let mut player = Player::new();
        player.play(greeting);
        player.play([beep.clone()]);
        Deposit {
            cfg,
            player,
            beep,
            skipped: false,
            phase: Phase::Greeting,
            written: 0,
            speech_end: 0,
            elapsed_ms: 0,
            quiet_ms: 0,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Samples written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Every 20 ms. On [`Tick::Audio`], `frame` holds what to send.
    pub fn tick(&mut self, frame: &mut [i16; FRAME]) -> Tick {
        match self.phase {
            Phase::Greeting => {
                if self.player.next_frame(frame) {
                    return Tick::Audio;
                }
                self.phase = Phase::Recording;
                Tick::Silence
            }
            Phase::Recording => {
                self.elapsed_ms += FRAME_MS;
                self.quiet_ms += FRAME_MS;
                if self.elapsed_ms >= self.cfg.max_ms {
                    return Tick::Finished(self.finish(End::MaxLength));
                }
                if self.quiet_ms >= self.cfg.silence_ms {
                    return Tick::Finished(self.finish(End::Silence));
                }
                Tick::Silence
            }
            Phase::Finished => Tick::Silence,
        }
    }

    /// The caller's audio. `true`: write these samples to the message.
    pub fn on_audio(&mut self, samples: &[i16]) -> bool {
        if self.phase != Phase::Recording {
            return false;
        }
        self.written += samples.len() as u64;
        if level(samples) >= self.cfg.silence_level {
            self.speech_end = self.written;
            self.quiet_ms = 0;
        }
        true
    }

    /// A key press (RFC 4733 or INFO). `Some`: recording ended; hang up.
    pub fn on_key(&mut self, key: char) -> Option<Outcome> {
        match (self.phase, key) {
            (Phase::Greeting, '#') if !self.skipped => {
                self.skipped = true;
                self.player.stop();
                self.player.play([self.beep.clone()]);
                None
            }
            (Phase::Recording, '#') => Some(self.finish(End::Key)),
            _ => None,
        }
    }

    /// The caller hung up.
    pub fn on_hangup(&mut self) -> Outcome {
        match self.phase {
            Phase::Finished => Outcome::Discard { end: End::Hangup },
            _ => self.finish(End::Hangup),
        }
    }

    fn finish(&mut self, end: End) -> Outcome {
        let recording = self.phase == Phase::Recording;
        self.phase = Phase::Finished;
        if !recording || self.speech_end == 0 {
            return Outcome::Discard { end };
        }
        // Trailing silence is trimmed whatever ended the message, keeping a short tail after the speech.
        let samples = self.written.min(self.speech_end + TAIL_SAMPLES);
        if samples * 1000 / 8000 < self.cfg.min_ms {
            return Outcome::Discard { end };
        }
        Outcome::Keep { samples, end }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOUD: [i16; FRAME] = [3000; FRAME];
    const QUIET: [i16; FRAME] = [10; FRAME];

    fn clip(n: usize) -> Clip {
        vec![500; n].into()
    }

    fn cfg() -> DepositConfig {
        DepositConfig { max_ms: 60_000, min_ms: 1_000, silence_ms: 2_000, silence_level: 256 }
    }

    /// Plays the prompts out; returns how many audio frames were sent.
    fn through_greeting(d: &mut Deposit) -> usize {
        let mut f = [0; FRAME];
        let mut frames = 0;
        while d.tick(&mut f) == Tick::Audio {
            frames += 1;
            assert!(!d.on_audio(&LOUD), "nothing is recorded while the greeting plays");
        }
        assert_eq!(d.phase(), Phase::Recording);
        frames
    }

    /// One tick with a frame of the caller's audio.
    fn speak(d: &mut Deposit, audio: &[i16; FRAME]) -> Tick {
        let mut f = [0; FRAME];
        let t = d.tick(&mut f);
        if d.phase() == Phase::Recording {
            assert!(d.on_audio(audio));
        }
        t
    }

    #[test]
    fn greeting_then_beep_then_record_until_hash() {
        let mut d = Deposit::new(cfg(), [clip(1600)], clip(800));
        assert_eq!(through_greeting(&mut d), 15, "2,400 samples of prompts are 15 frames");
        for _ in 0..100 {
            assert_eq!(speak(&mut d, &LOUD), Tick::Silence);
        }
        assert_eq!(d.written(), 16_000);
        assert_eq!(d.on_key('5'), None, "other keys are ignored");
        assert_eq!(d.on_key('#'), Some(Outcome::Keep { samples: 16_000, end: End::Key }));
        assert_eq!(d.phase(), Phase::Finished);
        assert!(!d.on_audio(&LOUD), "nothing is written after the end");
        assert_eq!(d.on_hangup(), Outcome::Discard { end: End::Hangup }, "the hang-up after # changes nothing");
    }

    #[test]
    fn hash_during_the_greeting_skips_to_the_beep() {
        let beep: Clip = vec![7; 320].into();
        let mut d = Deposit::new(cfg(), [clip(80_000)], beep);
        let mut f = [0; FRAME];
        assert_eq!(d.tick(&mut f), Tick::Audio);
        assert_eq!(d.on_key('#'), None);
        assert_eq!(d.tick(&mut f), Tick::Audio);
        assert_eq!(f, [7; FRAME], "the beep plays at once");
        assert_eq!(d.on_key('#'), None, "a second # does not cut the beep");
        assert_eq!(d.tick(&mut f), Tick::Audio);
        assert_eq!(d.tick(&mut f), Tick::Silence);
        assert_eq!(d.phase(), Phase::Recording);
    }

    #[test]
    fn silence_ends_the_message_and_is_trimmed() {
        let mut d = Deposit::new(cfg(), [], clip(160));
        through_greeting(&mut d);
        for _ in 0..100 {
            speak(&mut d, &LOUD); // 2 s of speech
        }
        let mut ticks = 0;
        let outcome = loop {
            ticks += 1;
            if let Tick::Finished(o) = speak(&mut d, &QUIET) {
                break o;
            }
        };
        assert_eq!(ticks, 100, "2 s of quiet (the configured silence) ends it");
        assert_eq!(outcome, Outcome::Keep { samples: 16_000 + TAIL_SAMPLES, end: End::Silence });
    }

    #[test]
    fn silence_counts_time_not_packets() {
        // The caller's audio stops altogether (a phone that sends nothing when muted): the clock still runs.
        let mut d = Deposit::new(cfg(), [], clip(160));
        through_greeting(&mut d);
        speak(&mut d, &LOUD);
        let mut f = [0; FRAME];
        let mut ticks = 0;
        while !matches!(d.tick(&mut f), Tick::Finished(_)) {
            ticks += 1;
        }
        assert_eq!(ticks, 99);
    }

    #[test]
    fn maximum_length_stops_recording() {
        let c = DepositConfig { max_ms: 3_000, ..cfg() };
        let mut d = Deposit::new(c, [], clip(160));
        through_greeting(&mut d);
        let mut ticks = 0;
        let outcome = loop {
            ticks += 1;
            if let Tick::Finished(o) = speak(&mut d, &LOUD) {
                break o;
            }
        };
        assert_eq!(ticks, 150);
        assert_eq!(outcome, Outcome::Keep { samples: 149 * 160, end: End::MaxLength });
    }

    #[test]
    fn short_silent_or_unstarted_messages_are_discarded() {
        // Under a second of speech.
        let mut d = Deposit::new(cfg(), [], clip(160));
        through_greeting(&mut d);
        for _ in 0..20 {
            speak(&mut d, &LOUD);
        }
        assert_eq!(d.on_hangup(), Outcome::Discard { end: End::Hangup });
        // Long, but silent throughout.
        let mut d = Deposit::new(cfg(), [], clip(160));
        through_greeting(&mut d);
        for _ in 0..90 {
            speak(&mut d, &QUIET);
        }
        assert_eq!(d.written(), 90 * 160);
        assert_eq!(d.on_hangup(), Outcome::Discard { end: End::Hangup });
        // Hung up during the greeting.
        let mut d = Deposit::new(cfg(), [clip(8000)], clip(160));
        let mut f = [0; FRAME];
        d.tick(&mut f);
        assert_eq!(d.on_hangup(), Outcome::Discard { end: End::Hangup });
        // Exactly one second of speech is kept.
        let mut d = Deposit::new(cfg(), [], clip(160));
        through_greeting(&mut d);
        for _ in 0..50 {
            speak(&mut d, &LOUD);
        }
        assert_eq!(d.on_hangup(), Outcome::Keep { samples: 8000, end: End::Hangup });
    }
}
