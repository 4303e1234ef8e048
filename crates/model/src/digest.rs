//! Which digest algorithms a device is challenged with.

use std::fmt;

/// A device's digest setting.
///
/// - `Modern` (the default): the configured list, SHA-256 first (RFC 8760), MD5 after it for clients that know
///   nothing better.
/// - `Md5`: for endpoints that fail on a challenge list holding anything but MD5 (many ATAs, baresip 1.0). They
///   are offered MD5 alone, but only where that reveals nothing to a stranger: from an address the device
///   authenticated from before, or from a network the operator set on the device. Everywhere else the device
///   gets the same list every other Auth ID (existing or not) gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DigestMode {
    #[default]
    Modern,
    Md5,
}

impl DigestMode {
    pub const ALL: [DigestMode; 2] = [DigestMode::Modern, DigestMode::Md5];

    pub fn as_str(self) -> &'static str {
        match self {
            DigestMode::Modern => "modern",
            DigestMode::Md5 => "md5",
        }
    }

    /// The stored and typed spelling, exactly (`modern`, `md5`), ASCII case ignored.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl fmt::Display for DigestMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_nothing_else_parses() {
        for m in DigestMode::ALL {
            assert_eq!(DigestMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(DigestMode::parse(" MD5 "), Some(DigestMode::Md5));
        for bad in ["", "sha-256", "md", "modern,md5"] {
            assert_eq!(DigestMode::parse(bad), None, "{bad:?}");
        }
        assert_eq!(DigestMode::default(), DigestMode::Modern);
    }
}
