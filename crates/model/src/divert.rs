//! A number's divert rule (when) and why a call was diverted: one vocabulary for the routing decision, the call
//! machine, the records and the management tools.

use std::fmt;

/// When a number's calls divert (`numbers.divert_when`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DivertWhen {
    #[default]
    Never,
    /// After `no_answer_secs` of ringing, on busy, or at once when no device is registered.
    NoAnswer,
    /// Always, without ringing.
    All,
    /// When no device is online; otherwise ring with no timer.
    Offline,
}

impl DivertWhen {
    /// The stored name (`numbers.divert_when`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::NoAnswer => "no_answer",
            Self::All => "all",
            Self::Offline => "offline",
        }
    }

    /// The inverse of [`Self::as_str`]; also accepts `no-answer`, the spelling the portal shows.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "never" => Some(Self::Never),
            "no_answer" | "no-answer" => Some(Self::NoAnswer),
            "all" => Some(Self::All),
            "offline" => Some(Self::Offline),
            _ => None,
        }
    }
}

/// Why a call was diverted, as the call records keep it (`cdrs.divert_reason`) and the product names it. The
/// call machine decides it; the wire reason (RFC 5806 `reason`, RFC 7044 cause) is derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DivertReason {
    /// Nobody answered within the number's ring time (call forwarding on no reply).
    NoAnswer,
    /// The device was busy (486, 600, 603).
    Busy,
    /// The number diverts every call (unconditional).
    All,
    /// Not reachable: no device registered or online, or every device leg failed (timed out or refused for
    /// another reason than busy). One reason, as 3GPP's CFNRc is one service: to the caller and the customer
    /// both mean the phone could not be reached.
    Offline,
}

impl DivertReason {
    pub const ALL: [DivertReason; 4] = [Self::NoAnswer, Self::Busy, Self::All, Self::Offline];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoAnswer => "no_answer",
            Self::Busy => "busy",
            Self::All => "all",
            Self::Offline => "offline",
        }
    }

    /// The inverse of [`Self::as_str`], exactly.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for DivertReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip() {
        for r in DivertReason::ALL {
            assert_eq!(DivertReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(DivertReason::parse("unavailable"), None);
        for w in [DivertWhen::Never, DivertWhen::NoAnswer, DivertWhen::All, DivertWhen::Offline] {
            assert_eq!(DivertWhen::parse(w.as_str()), Some(w));
        }
        assert_eq!(DivertWhen::parse("no-answer"), Some(DivertWhen::NoAnswer));
    }
}
