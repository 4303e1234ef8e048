//! Recording to WAV so that nothing said is lost to a crash: the header is written first and rewritten after
//! each flush (every half second of audio), so the file is always a valid WAV of everything flushed; a node
//! killed mid-message leaves a playable file, and [`recover`] makes its header exact at restart.
//!
//! Writes are positional (`pwrite`) and small (8 KB); they land in the page cache and cost microseconds, so the
//! recording tasks make them directly. A finished message is synced to disk before its row says `new`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use switchboard_media_core::wav;

/// Audio held in memory before it is written: half a second.
const FLUSH_BYTES: usize = wav::BYTES_PER_SEC as usize / 2;

#[derive(Debug)]
pub struct Recorder {
    file: File,
    path: PathBuf,
    /// Samples received but not yet written.
    pending: Vec<u8>,
    /// Bytes of samples in the file.
    written: u64,
}

impl Recorder {
    /// Creates `path` (and its folders) holding an empty WAV. Fails if the file exists.
    pub fn create(path: &Path) -> io::Result<Recorder> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().write(true).create_new(true).open(path)?;
        file.write_all_at(&wav::header(0), 0)?;
        Ok(Recorder { file, path: path.to_owned(), pending: Vec::with_capacity(FLUSH_BYTES * 2), written: 0 })
    }

    /// Appends samples; written out every half second.
    pub fn write(&mut self, samples: &[i16]) -> io::Result<()> {
        wav::samples_to_bytes(samples, &mut self.pending);
        if self.pending.len() >= FLUSH_BYTES { self.flush() } else { Ok(()) }
    }

    /// Writes what is pending, then the header that covers it.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file.write_all_at(&self.pending, wav::HEADER_LEN as u64 + self.written)?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        self.file.write_all_at(&wav::header(data_len(self.written)), 0)
    }

    /// Keeps the first `samples` samples, makes the header exact and syncs the file to disk. Returns the length
    /// in milliseconds.
    pub fn finish(mut self, samples: u64) -> io::Result<u64> {
        self.flush()?;
        let keep = (samples * 2).min(self.written);
        self.file.set_len(wav::HEADER_LEN as u64 + keep)?;
        self.file.write_all_at(&wav::header(data_len(keep)), 0)?;
        self.file.sync_all()?;
        Ok(keep / 16)
    }

    /// Removes the file.
    pub fn discard(self) -> io::Result<()> {
        let path = self.path.clone();
        drop(self);
        std::fs::remove_file(path)
    }
}

fn data_len(bytes: u64) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX - 1)
}

/// Makes the header of a recording cut short match what the file holds, and syncs it. Returns the length in
/// milliseconds; `NotFound` if the file is missing, `InvalidData` if it is not one of ours.
pub fn recover(path: &Path) -> io::Result<u64> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let mut head = [0u8; wav::HEADER_LEN];
    file.read_exact_at(&mut head, 0)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "shorter than a header"))?;
    if wav::parse(&head).is_none() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a WAV file"));
    }
    let len = file.metadata()?.len();
    let header = wav::repair(len).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "too short"))?;
    file.write_all_at(&header, 0)?;
    let data = u64::from(wav::parse(&header).map_or(0, |i| i.data_len));
    // An odd byte left by a torn write is cut off so the file is exactly what the header says.
    file.set_len(wav::HEADER_LEN as u64 + data)?;
    file.sync_all()?;
    Ok(data / 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> (wav::Info, Vec<i16>) {
        let bytes = std::fs::read(path).unwrap();
        (wav::parse(&bytes).unwrap(), wav::read_samples(&bytes).unwrap())
    }

    #[test]
    fn the_file_is_valid_at_every_flush_and_exact_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("61299990001/m.wav");
        let mut r = Recorder::create(&path).unwrap();
        assert_eq!(read(&path).0.data_len, 0, "a valid, empty WAV from the start");
        for i in 0..30 {
            r.write(&[i as i16 * 100; 160]).unwrap();
        }
        // 30 frames = 9,600 bytes: one flush of 8,000 happened, the rest is pending.
        let (info, samples) = read(&path);
        assert_eq!((info.data_len, samples.len()), (8_000, 4_000), "the header covers exactly what was flushed");
        let ms = r.finish(4_000).unwrap();
        assert_eq!(ms, 500);
        let (info, samples) = read(&path);
        assert_eq!((info.data_len, samples.len()), (8_000, 4_000));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8_044);
        assert!(Recorder::create(&path).is_err(), "an existing message is never overwritten");
    }

    #[test]
    fn a_message_cut_short_is_recovered_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.wav");
        let mut r = Recorder::create(&path).unwrap();
        for _ in 0..60 {
            r.write(&[1_000; 160]).unwrap();
        }
        // The process dies: the recorder is never finished; what was flushed is on disk with a stale-proof header,
        // and a torn write left half a sample more.
        std::mem::forget(r);
        let f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all_at(&[7, 7, 7], std::fs::metadata(&path).unwrap().len()).unwrap();
        let ms = recover(&path).unwrap();
        assert_eq!(ms, 1_000, "two flushes of half a second; the third half-second was still in memory");
        let (info, samples) = read(&path);
        assert_eq!((info.data_len, samples.len()), (16_002, 8_001), "the torn write's whole sample is kept");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 44 + u64::from(info.data_len));
        assert!(recover(&dir.path().join("missing.wav")).is_err());
        std::fs::write(dir.path().join("junk.wav"), b"not a wav at all, but long enough to have a header......")
            .unwrap();
        assert_eq!(recover(&dir.path().join("junk.wav")).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn discard_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.wav");
        let r = Recorder::create(&path).unwrap();
        r.discard().unwrap();
        assert!(!path.exists());
    }
}
