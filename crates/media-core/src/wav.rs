//! WAV files as voicemail keeps them: 8 kHz, 16-bit, mono PCM, a 44-byte header (RIFF, `fmt `, `data`).
//!
//! A recording's header is rewritten as it grows, so a file cut short (the daemon killed mid-message) is still a
//! valid WAV up to its last header update; [`repair`] makes the header match whatever length the file has, so
//! every sample that reached the disk is played.

/// Samples per second.
pub const RATE: u32 = 8000;
/// Bytes per second of 16-bit mono at [`RATE`].
pub const BYTES_PER_SEC: u32 = RATE * 2;
/// Header length.
pub const HEADER_LEN: usize = 44;

/// The header of a file holding `data_len` bytes of samples.
pub fn header(data_len: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    let fields: [(&[u8], usize); 13] = [
        (b"RIFF", 0),
        (&data_len.saturating_add(36).to_le_bytes(), 4),
        (b"WAVE", 8),
        (b"fmt ", 12),
        (&16u32.to_le_bytes(), 16),
        (&1u16.to_le_bytes(), 20), // PCM
        (&1u16.to_le_bytes(), 22), // mono
        (&RATE.to_le_bytes(), 24),
        (&BYTES_PER_SEC.to_le_bytes(), 28),
        (&2u16.to_le_bytes(), 32), // block align
        (&16u16.to_le_bytes(), 34),
        (b"data", 36),
        (&data_len.to_le_bytes(), 40),
    ];
    for (bytes, at) in fields {
        if let Some(dst) = h.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
    h
}

/// What a header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    pub sample_rate: u32,
    pub channels: u16,
    pub bits: u16,
    /// Bytes of samples the header claims.
    pub data_len: u32,
}

impl Info {
    /// Length in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        let per_sec = u64::from(self.sample_rate) * u64::from(self.channels) * u64::from(self.bits / 8);
        (u64::from(self.data_len) * 1000).checked_div(per_sec).unwrap_or(0)
    }
}

/// Reads the canonical 44-byte header (the only form we write). `None`: not such a file.
pub fn parse(bytes: &[u8]) -> Option<Info> {
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let tag = |at: usize, t: &[u8]| bytes.get(at..at + 4) == Some(t);
    if !(tag(0, b"RIFF") && tag(8, b"WAVE") && tag(12, b"fmt ") && tag(36, b"data")) || u16_at(20)? != 1 {
        return None;
    }
    Some(Info { channels: u16_at(22)?, sample_rate: u32_at(24)?, bits: u16_at(34)?, data_len: u32_at(40)? })
}

/// The header for a file of `file_len` bytes whose own header may be stale: every whole sample after the header
/// counts. `None` if the file is shorter than a header.
pub fn repair(file_len: u64) -> Option<[u8; HEADER_LEN]> {
    let data = file_len.checked_sub(HEADER_LEN as u64)?;
    let data = u32::try_from(data & !1).unwrap_or(u32::MAX - 1);
    Some(header(data))
}

/// The samples of a whole file in our format (8 kHz, mono, 16-bit), up to what its header claims or the file
/// holds, whichever is less. `None`: another format, or not a WAV file.
pub fn read_samples(bytes: &[u8]) -> Option<Vec<i16>> {
    let info = parse(bytes)?;
    if (info.sample_rate, info.channels, info.bits) != (RATE, 1, 16) {
        return None;
    }
    let data = bytes.get(HEADER_LEN..)?;
    let data = data.get(..(info.data_len as usize).min(data.len())).unwrap_or(data);
    Some(data.chunks_exact(2).filter_map(|p| p.try_into().ok().map(i16::from_le_bytes)).collect())
}

/// Little-endian 16-bit samples as bytes.
pub fn samples_to_bytes(samples: &[i16], out: &mut Vec<u8>) {
    out.reserve(samples.len() * 2);
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_read_back_and_other_formats_are_refused() {
        let mut file = header(6).to_vec();
        samples_to_bytes(&[1, -2, 30_000], &mut file);
        assert_eq!(read_samples(&file), Some(vec![1, -2, 30_000]));
        file.extend_from_slice(&[9, 9]); // beyond what the header claims
        assert_eq!(read_samples(&file), Some(vec![1, -2, 30_000]));
        assert_eq!(read_samples(&file[..47]), Some(vec![1]), "a short file gives what it holds");
        file[24] = 0x44; // 16,452 Hz
        assert_eq!(read_samples(&file), None);
        assert_eq!(read_samples(b"RIFF"), None);
    }

    #[test]
    fn the_header_is_canonical_pcm_and_reads_back() {
        let h = header(16_000);
        assert_eq!(&h[..4], b"RIFF");
        assert_eq!(u32::from_le_bytes(h[4..8].try_into().unwrap()), 16_036);
        let info = parse(&h).unwrap();
        assert_eq!(info, Info { sample_rate: 8000, channels: 1, bits: 16, data_len: 16_000 });
        assert_eq!(info.duration_ms(), 1000);
    }

    /// A recording cut short with a stale header is made whole to its last complete sample.
    #[test]
    fn a_stale_header_is_repaired_from_the_file_length() {
        let stale = header(0);
        assert_eq!(parse(&stale).unwrap().data_len, 0);
        let repaired = repair(44 + 24_001).unwrap();
        assert_eq!(parse(&repaired).unwrap().data_len, 24_000, "the odd last byte is not a sample");
        assert_eq!(parse(&repaired).unwrap().duration_ms(), 1500);
        assert_eq!(repair(43), None);
    }

    #[test]
    fn other_files_are_not_taken_for_ours() {
        assert_eq!(parse(b"RIFF"), None);
        let mut h = header(10);
        h[20] = 3; // IEEE float
        assert_eq!(parse(&h), None);
        let mut h = header(10);
        h[36..40].copy_from_slice(b"LIST");
        assert_eq!(parse(&h), None);
    }

    #[test]
    fn samples_are_little_endian() {
        let mut out = Vec::new();
        samples_to_bytes(&[1, -2, i16::MAX], &mut out);
        assert_eq!(out, vec![1, 0, 0xFE, 0xFF, 0xFF, 0x7F]);
    }
}
