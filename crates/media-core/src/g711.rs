//! G.711 (ITU-T, 1988): µ-law and A-law companding between 16-bit linear PCM and 8-bit codes.
//!
//! Written from the recommendation's segment definitions: µ-law works on the 14-bit magnitude with a bias of 33
//! and eight segments whose step doubles; A-law on the 13-bit magnitude with a first segment twice as wide. Even
//! bits of A-law codes are inverted on the wire (XOR 0x55), all bits of µ-law codes (one's complement). Silence
//! is 0xFF in µ-law and 0xD5 in A-law.

/// µ-law bias (33) in 16-bit units.
const ULAW_BIAS: i32 = 0x84;
/// Largest µ-law magnitude before the bias is added, in 16-bit units (8,158 in 14-bit units).
const ULAW_CLIP: i32 = 32_635;

/// Encodes one 16-bit sample to µ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let s = i32::from(sample);
    // On the wire every bit of a positive sample's code is inverted, all but the sign bit of a negative one's.
    let (mask, magnitude) = if s < 0 { (0x7Fu8, -s) } else { (0xFFu8, s) };
    let biased = magnitude.min(ULAW_CLIP) + ULAW_BIAS;
    // The segment is the position of the highest set bit above bit 7 (biased is at most 0x7FFF).
    let top = u8::try_from((biased >> 7) & 0xFF).unwrap_or(u8::MAX);
    let exponent = 7 - top.leading_zeros().min(7);
    let mantissa = u8::try_from((biased >> (exponent + 3)) & 0x0F).unwrap_or(0);
    ((u8::try_from(exponent).unwrap_or(7) << 4) | mantissa) ^ mask
}

/// Decodes one µ-law code to a 16-bit sample.
pub fn ulaw_decode(code: u8) -> i16 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0F);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    let value = if u & 0x80 != 0 { -magnitude } else { magnitude };
    i16::try_from(value).unwrap_or(if value < 0 { i16::MIN } else { i16::MAX })
}

/// Upper ends of the eight A-law segments on the 13-bit magnitude.
const ALAW_SEGMENT_ENDS: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

/// Encodes one 16-bit sample to A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    let s = i32::from(sample) >> 3;
    let (mask, magnitude) = if s >= 0 { (0xD5u8, s) } else { (0x55u8, -s - 1) };
    let Some(segment) = ALAW_SEGMENT_ENDS.iter().position(|&end| magnitude <= end) else {
        return 0x7F ^ mask;
    };
    let shift = if segment < 2 { 1 } else { segment };
    let mantissa = u8::try_from((magnitude >> shift) & 0x0F).unwrap_or(0);
    let code = (u8::try_from(segment).unwrap_or(7) << 4) | mantissa;
    code ^ mask
}

/// Decodes one A-law code to a 16-bit sample.
pub fn alaw_decode(code: u8) -> i16 {
    let a = code ^ 0x55;
    let segment = (a >> 4) & 0x07;
    let mut t = i32::from(a & 0x0F) << 4;
    match segment {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= segment - 1;
        }
    }
    let value = if a & 0x80 != 0 { t } else { -t };
    i16::try_from(value).unwrap_or(if value < 0 { i16::MIN } else { i16::MAX })
}

/// A G.711 law, as RTP names it (RFC 3551: PT 0 PCMU, PT 8 PCMA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    Ulaw,
    Alaw,
}

impl Law {
    /// The static payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    /// The law of an `a=rtpmap` encoding name (`PCMU`, `PCMA`, any case), or of a static payload type.
    pub fn from_name(name: &str) -> Option<Law> {
        if name.eq_ignore_ascii_case("PCMU") {
            Some(Law::Ulaw)
        } else if name.eq_ignore_ascii_case("PCMA") {
            Some(Law::Alaw)
        } else {
            None
        }
    }

    pub fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Ulaw => ulaw_encode(sample),
            Law::Alaw => alaw_encode(sample),
        }
    }

    pub fn decode(self, code: u8) -> i16 {
        match self {
            Law::Ulaw => ulaw_decode(code),
            Law::Alaw => alaw_decode(code),
        }
    }

    /// The code for silence.
    pub fn silence(self) -> u8 {
        self.encode(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reconstruction levels from the recommendation, written independently of the decoder: µ-law segment `e`
    /// (0-7) with step `2^(e+1)` in 14-bit units, its levels at `(2m + 33) * 2^e - 33` for mantissa `m`; scaled
    /// by 4 to 16 bits. Codes are the one's complement of `sign | e << 4 | m` with sign 0x80 for positive.
    fn ulaw_reference(code: u8) -> i32 {
        let u = !code;
        let (e, m) = (i32::from((u >> 4) & 7), i32::from(u & 15));
        let level = ((2 * m + 33) << e) - 33;
        if u & 0x80 != 0 { -4 * level } else { 4 * level }
    }

    /// A-law: segment 0 has levels `2m + 1`, segment `e >= 1` has `(2m + 33) * 2^(e-1)`, in 13-bit units scaled
    /// by 8 to 16 bits; even bits inverted on the wire.
    fn alaw_reference(code: u8) -> i32 {
        let a = code ^ 0x55;
        let (e, m) = (i32::from((a >> 4) & 7), i32::from(a & 15));
        let level = if e == 0 { 2 * m + 1 } else { (2 * m + 33) << (e - 1) };
        if a & 0x80 != 0 { 8 * level } else { -8 * level }
    }

    #[test]
    fn every_code_decodes_to_its_reference_level() {
        for code in 0..=255u8 {
            assert_eq!(i32::from(ulaw_decode(code)), ulaw_reference(code), "µ-law {code:#04x}");
            assert_eq!(i32::from(alaw_decode(code)), alaw_reference(code), "A-law {code:#04x}");
        }
    }

    #[test]
    fn known_values_of_the_recommendation() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(ulaw_decode(0x80), 32_124);
        assert_eq!(ulaw_decode(0x00), -32_124);
        assert_eq!(alaw_decode(0xAA), 32_256);
        assert_eq!(alaw_decode(0x2A), -32_256);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
        assert_eq!((Law::Ulaw.silence(), Law::Alaw.silence()), (0xFF, 0xD5));
    }

    /// The width of the quantisation interval a code reconstructs the middle of, in 16-bit units: µ-law
    /// segment `e` steps by `2^(e+1)` 14-bit units; A-law segments 0 and 1 by 2, segment `e` by `2^e`, in 13-bit
    /// units.
    fn step(law: Law, code: u8) -> i32 {
        match law {
            Law::Ulaw => 8 << ((!code >> 4) & 7),
            Law::Alaw => {
                let e = i32::from(((code ^ 0x55) >> 4) & 7);
                16 << (e - 1).max(0)
            }
        }
    }

    /// Every 16-bit input: encoding picks one of the two levels around it, no further than half its interval
    /// (plus what the law's input truncation loses) unless the input lies beyond the largest level, and decoding
    /// then encoding again gives the same level.
    #[test]
    fn all_65536_inputs_round_trip_within_half_an_interval() {
        for law in [Law::Ulaw, Law::Alaw] {
            let mut levels: Vec<i32> = (0..=255u8).map(|c| i32::from(law.decode(c))).collect();
            levels.sort_unstable();
            levels.dedup();
            let (lowest, highest) = (levels[0], levels[levels.len() - 1]);
            let truncation = match law {
                Law::Ulaw => 4,
                Law::Alaw => 8,
            };
            for x in i16::MIN..=i16::MAX {
                let x32 = i32::from(x);
                let code = law.encode(x);
                let got = i32::from(law.decode(code));
                let below = levels.iter().rev().find(|&&l| l <= x32).copied().unwrap_or(lowest);
                let above = levels.iter().find(|&&l| l >= x32).copied().unwrap_or(highest);
                assert!(got == below || got == above, "{law:?} {x}: {got} is not next to it ({below}, {above})");
                if (lowest..=highest).contains(&x32) {
                    let err = (got - x32).abs();
                    assert!(err <= step(law, code) / 2 + truncation, "{law:?} {x}: {got} is {err} away");
                }
                // Stable: the level decodes back to itself (µ-law's two zeros, 0x7F and 0xFF, both decode to 0).
                assert_eq!(law.decode(law.encode(law.decode(code))), law.decode(code), "{law:?} {x}: {code:#04x}");
            }
        }
    }

    #[test]
    fn decoding_is_monotonic_in_the_magnitude_bits() {
        // Positive µ-law codes run 0xFF (smallest) down to 0x80 (largest); A-law 0xD5 up through the segments.
        let ulaw: Vec<i16> = (0x80..=0xFFu8).rev().map(ulaw_decode).collect();
        assert!(ulaw.windows(2).all(|w| w[0] < w[1]), "{ulaw:?}");
        let alaw: Vec<i16> = (0..128u8).map(|v| alaw_decode((0x80 | v) ^ 0x55)).collect();
        assert!(alaw.windows(2).all(|w| w[0] < w[1]), "{alaw:?}");
    }
}
