//! Playing prompts: a queue of clips (8 kHz 16-bit samples) cut into 20 ms frames, one per tick.

use std::collections::VecDeque;
use std::sync::Arc;

/// Samples in one 20 ms frame at 8 kHz: what one RTP packet of G.711 carries.
pub const FRAME: usize = 160;
/// Milliseconds per frame.
pub const FRAME_MS: u64 = 20;

/// A prompt's audio, shared between every call that plays it.
pub type Clip = Arc<[i16]>;

/// Clips played one after the other, without gaps; the last frame of the queue is padded with silence.
#[derive(Debug, Default, Clone)]
pub struct Player {
    queue: VecDeque<Clip>,
    /// Samples of the front clip already played.
    at: usize,
}

impl Player {
    pub fn new() -> Self {
        Player::default()
    }

    /// Appends clips to what is playing.
    pub fn play(&mut self, clips: impl IntoIterator<Item = Clip>) {
        self.queue.extend(clips.into_iter().filter(|c| !c.is_empty()));
    }

    /// Drops whatever is queued (a key pressed over a prompt).
    pub fn stop(&mut self) {
        self.queue.clear();
        self.at = 0;
    }

    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// Fills `frame` with the next 20 ms. `false` (and `frame` untouched): nothing is playing.
    pub fn next_frame(&mut self, frame: &mut [i16; FRAME]) -> bool {
        if self.queue.is_empty() {
            return false;
        }
        let mut filled = 0;
        while filled < FRAME {
            let Some(clip) = self.queue.front() else { break };
            let rest = clip.get(self.at..).unwrap_or_default();
            let n = rest.len().min(FRAME - filled);
            if let (Some(dst), Some(src)) = (frame.get_mut(filled..filled + n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            filled += n;
            self.at += n;
            if self.at >= clip.len() {
                self.queue.pop_front();
                self.at = 0;
            }
        }
        if let Some(tail) = frame.get_mut(filled..) {
            tail.fill(0);
        }
        true
    }
}

/// A sine tone (the beep before recording): `hz` for `ms` at `amplitude`, with 5 ms ramps so it does not click.
pub fn tone(hz: f32, ms: u32, amplitude: i16) -> Clip {
    let n = (8 * ms) as usize;
    let ramp = 40.0_f32;
    (0..n)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let edge = (i.min(n - 1 - i) as f32 / ramp).min(1.0);
            (f32::from(amplitude) * edge * (2.0 * std::f32::consts::PI * hz * t).sin()) as i16
        })
        .collect()
}

/// Loudness of a frame as its mean absolute sample: speech is in the thousands, a quiet line below a hundred.
pub fn level(samples: &[i16]) -> u16 {
    if samples.is_empty() {
        return 0;
    }
    let sum: u64 = samples.iter().map(|s| u64::from(s.unsigned_abs())).sum();
    u16::try_from(sum / samples.len() as u64).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(v: i16, n: usize) -> Clip {
        vec![v; n].into()
    }

    #[test]
    fn clips_play_back_to_back_and_the_last_frame_is_padded() {
        let mut p = Player::new();
        p.play([clip(1, 100), clip(2, 100), clip(3, 30)]);
        let mut f = [9; FRAME];
        assert!(p.next_frame(&mut f));
        assert_eq!(&f[..100], &[1; 100][..]);
        assert_eq!(&f[100..], &[2; 60][..]);
        assert!(p.next_frame(&mut f));
        assert_eq!(&f[..40], &[2; 40][..]);
        assert_eq!(&f[40..70], &[3; 30][..]);
        assert_eq!(&f[70..], &[0; 90][..]);
        assert!(p.is_idle());
        f = [9; FRAME];
        assert!(!p.next_frame(&mut f));
        assert_eq!(f, [9; FRAME], "an idle player leaves the frame alone");
    }

    #[test]
    fn stop_drops_the_queue_and_empty_clips_are_skipped() {
        let mut p = Player::new();
        p.play([clip(1, 0)]);
        assert!(p.is_idle());
        p.play([clip(1, 500), clip(2, 500)]);
        let mut f = [0; FRAME];
        assert!(p.next_frame(&mut f));
        p.stop();
        assert!(p.is_idle() && !p.next_frame(&mut f));
        p.play([clip(5, 10)]);
        assert!(p.next_frame(&mut f));
        assert_eq!(f[0], 5, "a stopped player starts the next clip from its beginning");
    }

    #[test]
    fn tone_and_level() {
        let beep = tone(1000.0, 400, 8000);
        assert_eq!(beep.len(), 3200);
        assert_eq!((beep[0], beep[beep.len() - 1]), (0, 0), "ramps start and end at zero");
        assert!(level(&beep) > 4000, "{}", level(&beep));
        assert_eq!(level(&[0; FRAME]), 0);
        assert_eq!(level(&[]), 0);
        assert_eq!(level(&[-100, 100]), 100);
    }
}
