//! The spoken prompts: WAV files made by `scripts/prompts` from `prompts/prompts.txt`, embedded in the binary so
//! that the daemon needs nothing beside it. Decoded once at start; every call shares the samples.

use std::collections::HashMap;

use switchboard_media_core::player::{Clip, tone};
use switchboard_media_core::retrieval::{self, Say};
use switchboard_media_core::wav;

macro_rules! embedded {
    ($($name:literal,)*) => {
        &[$(($name, include_bytes!(concat!("../prompts/", $name, ".wav")))),*]
    };
}

/// Every prompt, by name, in the order of `prompts.txt`.
static EMBEDDED: &[(&str, &[u8])] = embedded!(
    "d0",
    "d1",
    "d2",
    "d3",
    "d4",
    "d5",
    "d6",
    "d7",
    "d8",
    "d9",
    "dstar",
    "dhash",
    "n10",
    "n11",
    "n12",
    "n13",
    "n14",
    "n15",
    "n16",
    "n17",
    "n18",
    "n19",
    "n20",
    "n30",
    "n40",
    "n50",
    "n60",
    "n70",
    "n80",
    "n90",
    "hundred",
    "oh",
    "oclock",
    "the-number",
    "not-available",
    "enter-mailbox",
    "enter-pin",
    "wrong-pin",
    "no-pin",
    "locked",
    "no-mailbox",
    "goodbye",
    "you-have",
    "no",
    "new-message",
    "new-messages",
    "saved-message",
    "saved-messages",
    "and",
    "main-menu",
    "message",
    "from",
    "unknown-caller",
    "received",
    "today",
    "yesterday",
    "days-ago",
    "at",
    "message-menu",
    "deleted",
    "saved",
    "no-more",
    "no-messages",
    "first-message",
    "options-menu",
    "record-greeting",
    "greeting-saved",
    "greeting-default",
    "new-pin",
    "pin-changed",
    "pin-invalid",
    "invalid",
);

#[derive(Debug, Clone)]
pub struct Prompts {
    clips: HashMap<&'static str, Clip>,
    beep: Clip,
}

impl Prompts {
    /// The prompts built into the binary. A file that is not 8 kHz 16-bit mono is left out, with an error in
    /// the log (a test holds that none is).
    pub fn embedded() -> Prompts {
        let mut clips = HashMap::new();
        for (name, bytes) in EMBEDDED {
            match wav::read_samples(bytes) {
                Some(samples) => {
                    clips.insert(*name, Clip::from(samples));
                }
                None => tracing::error!(prompt = name, "embedded prompt is not 8 kHz 16-bit mono WAV; left out"),
            }
        }
        Prompts { clips, beep: tone(1000.0, 400, 6000) }
    }

    /// The prompt `name`; an unknown name plays nothing (and is a bug a test catches).
    pub fn get(&self, name: &str) -> Option<Clip> {
        let clip = self.clips.get(name).cloned();
        if clip.is_none() {
            tracing::error!(prompt = name, "no such prompt");
        }
        clip
    }

    /// The tone before recording.
    pub fn beep(&self) -> Clip {
        self.beep.clone()
    }

    /// The clips of what the menus say; a message's recording is not a prompt (the caller reads it).
    pub fn say(&self, items: &[Say]) -> Vec<Clip> {
        items
            .iter()
            .filter_map(|item| match item {
                Say::Prompt(name) => self.get(name),
                Say::Beep => Some(self.beep()),
                Say::Message(_) => None,
            })
            .collect()
    }

    /// Each digit (and `*`, `#`) of `digits` spoken one by one; other characters are skipped.
    pub fn digits(&self, digits: &str) -> Vec<Clip> {
        self.say(&retrieval::digits(digits))
    }

    /// The standard greeting of a mailbox: "The number 0 2 9 9 9 0 0 0 1 is not available. Please leave a
    /// message after the tone..." An Australian number is spoken in its national form.
    pub fn default_greeting(&self, number: &str) -> Vec<Clip> {
        let mut say = vec![Say::Prompt("the-number")];
        say.extend(retrieval::digits(&retrieval::national(number)));
        say.push(Say::Prompt("not-available"));
        self.say(&say)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_prompt_is_embedded_decodes_and_is_short() {
        let list = include_str!("../prompts/prompts.txt");
        let listed: Vec<&str> = list
            .lines()
            .filter(|l| !l.starts_with('#') && l.contains('|'))
            .filter_map(|l| l.split('|').next())
            .collect();
        let embedded: Vec<&str> = EMBEDDED.iter().map(|(n, _)| *n).collect();
        assert_eq!(listed, embedded, "prompts.txt and the embedded list differ: run scripts/prompts and update");
        let p = Prompts::embedded();
        for name in listed {
            let clip = p.get(name).unwrap_or_else(|| panic!("{name} did not decode"));
            let secs = clip.len() as f64 / 8000.0;
            assert!((0.1..20.0).contains(&secs), "{name}: {secs} s");
            assert!(switchboard_media_core::player::level(&clip) > 300, "{name} is near silent");
        }
        // Files on disk that are not listed would be dead weight.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/prompts");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".wav").map(str::to_owned))
            .collect();
        on_disk.sort();
        let mut names: Vec<&str> = EMBEDDED.iter().map(|(n, _)| *n).collect();
        names.sort();
        assert_eq!(on_disk, names);
    }

    #[test]
    fn greetings_and_digits() {
        let p = Prompts::embedded();
        assert_eq!(p.digits("+61 2-9#*").len(), 6, "six keys spoken, the rest skipped");
        let g = p.default_greeting("+61299990001");
        assert_eq!(g.len(), 1 + 10 + 1, "the number, its ten national digits, the request");
        assert_eq!(g[1], p.get("d0").unwrap());
        assert_eq!(p.default_greeting("+4420").len(), 1 + 4 + 1);
        assert!(p.get("no-such-prompt").is_none());
    }
}
