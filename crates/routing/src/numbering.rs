//! The Australian numbering plan as a device dials it: a SIP user part -> [`Classified`] (call type + E.164).
//!
//! Shapes recognised (after separators are dropped; see [`classify`]):
//!
//! | dialled | type | E.164 |
//! |---|---|---|
//! | `000`, `112`, `106` | emergency | none |
//! | `[2-9]` + 7 digits | local (caller's area code) | `+61{area}{8}` |
//! | `0[2378]` + 8 digits | local if the caller's area code, else national | `+61[2378]{8}` |
//! | `0[45]` + 8 digits | mobile | `+61[45]{8}` |
//! | `13[1-9]` + 3 digits, `1300` + 6 digits | local-rate | `+6113...` |
//! | `180[1-9]` + 3 digits, `1800` + 6 digits | freephone | `+61180...` |
//! | `190` + 7 digits | premium | `+61190...` |
//! | `11` + 2 digits, `12` + 2 to 4 digits | other (service codes) | none |
//! | `0011` + number, `+` + number | international, or as above when the country code is 61 | `+{number}` |
//!
//! A proper prefix of a shape is incomplete (484); anything longer than its shape, or no shape at all, is invalid
//! (404). "Local" follows the area code, not the ACMA charging zone: a call within the caller's own area code
//! (02, 03, 07, 08) is local, any other geographic call is national. Charging zones are the biller's business.

use std::fmt;

/// The dialled string is not a number we route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberError {
    /// A prefix of a valid number, or a local number without a known area code: 484 Address Incomplete.
    Incomplete,
    /// Not a number: bad characters, unknown prefix, too long: 404 Not Found.
    Invalid,
}

impl NumberError {
    /// The SIP status to answer the INVITE with.
    pub const fn status(self) -> u16 {
        match self {
            Self::Incomplete => 484,
            Self::Invalid => 404,
        }
    }

    /// The SIP reason phrase for [`Self::status`].
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Incomplete => "Address Incomplete",
            Self::Invalid => "Not Found",
        }
    }
}

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Incomplete => "dialled number is incomplete",
            Self::Invalid => "dialled number is not valid",
        })
    }
}

impl std::error::Error for NumberError {}

/// What kind of call a dialled number makes; the unit of call barring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallType {
    Emergency,
    Local,
    National,
    Mobile,
    /// 13 and 1300 numbers.
    LocalRate,
    /// 1800 and 180 numbers.
    Freephone,
    /// 190 numbers.
    Premium,
    International,
    /// A geographic or mobile number hosted on this platform (see [`classify_on_net`]).
    OnNet,
    /// Short service codes (11xx, 12xx): directory, operator and information services.
    Other,
}

impl CallType {
    /// Every call type, in declaration order.
    pub const ALL: [Self; 10] = [
        Self::Emergency,
        Self::Local,
        Self::National,
        Self::Mobile,
        Self::LocalRate,
        Self::Freephone,
        Self::Premium,
        Self::International,
        Self::OnNet,
        Self::Other,
    ];

    /// The stored and API name (`devices.call_types` holds these).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Emergency => "emergency",
            Self::Local => "local",
            Self::National => "national",
            Self::Mobile => "mobile",
            Self::LocalRate => "local-rate",
            Self::Freephone => "freephone",
            Self::Premium => "premium",
            Self::International => "international",
            Self::OnNet => "on-net",
            Self::Other => "other",
        }
    }

    /// The inverse of [`Self::as_str`]; exact names only, so the API can reject anything else.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for CallType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the dialled string means depends on who dials it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DialContext {
    /// The caller's geographic area code digit (`'2'`, `'3'`, `'7'`, `'8'`), for 8-digit local dialling. Any
    /// other value is treated as none.
    pub area_code: Option<char>,
}

impl DialContext {
    /// The context of a caller whose own number is `caller` (E.164, or national `0...`): geographic numbers give
    /// their area code; mobile, non-geographic and foreign numbers give none.
    pub fn from_caller(caller: &str) -> Self {
        let area_code = match classify(caller, &Self::default()) {
            Ok(Classified { call_type: CallType::National, e164: Some(e164), .. }) => {
                e164.strip_prefix("+61").and_then(|nsn| nsn.chars().next())
            }
            _ => None,
        };
        Self { area_code }
    }

    fn area(&self) -> Option<char> {
        self.area_code.filter(|a| matches!(a, '2' | '3' | '7' | '8'))
    }
}

/// A dialled number, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub call_type: CallType,
    /// `+61...` or `+<cc>...`; none for emergency and service codes, which only exist as dialled.
    pub e164: Option<String>,
    /// The dialled string with separators removed; a leading `+` is kept.
    pub dialled_digits: String,
}

/// Longest digit string looked at: E.164 is 15 digits, `0011` adds 4; anything longer is not a number.
const MAX_DIGITS: usize = 24;

/// Classify a dialled string (a SIP request-URI or To user part, already unescaped) for a caller in `ctx`.
///
/// Accepts digits, one leading `+`, and the separators `-`, `.`, `(`, `)` (RFC 3966 visual separators) and space
/// anywhere. Anything else (`*`, `#`, letters, URI parameters) is [`NumberError::Invalid`]. Feature codes such as
/// voicemail `777` are the caller's to intercept before asking here.
pub fn classify(dialled: &str, ctx: &DialContext) -> Result<Classified, NumberError> {
    let (plus, digits) = clean(dialled)?;
    let (call_type, e164) = if plus { international(&digits, ctx)? } else { national(&digits, ctx)? };
    let dialled_digits = if plus { format!("+{digits}") } else { digits };
    Ok(Classified { call_type, e164, dialled_digits })
}

/// Turn a geographic or mobile number the platform hosts (`hosted(e164)`) into [`CallType::OnNet`], keeping the
/// E.164. Other types (emergency, 13/1300, 1800, premium, international, service codes) are left alone.
pub fn classify_on_net(c: Classified, hosted: impl Fn(&str) -> bool) -> Classified {
    let geographic = matches!(c.call_type, CallType::Local | CallType::National | CallType::Mobile);
    if geographic && c.e164.as_deref().is_some_and(&hosted) {
        return Classified { call_type: CallType::OnNet, ..c };
    }
    c
}

/// Split off a leading `+` and drop separators.
pub(crate) fn clean(dialled: &str) -> Result<(bool, String), NumberError> {
    let mut plus = false;
    let mut digits = String::new();
    for ch in dialled.chars() {
        match ch {
            // Past MAX_DIGITS a digit falls through to Invalid: no number is that long.
            '0'..='9' if digits.len() < MAX_DIGITS => digits.push(ch),
            '+' if !plus && digits.is_empty() => plus = true,
            '-' | '.' | ' ' | '(' | ')' => {}
            _ => return Err(NumberError::Invalid),
        }
    }
    match (plus, digits.is_empty()) {
        (false, true) => Err(NumberError::Invalid),
        _ => Ok((plus, digits)),
    }
}

type Outcome = Result<(CallType, Option<String>), NumberError>;

/// A number dialled without `+` (and without `0011`).
fn national(d: &str, ctx: &DialContext) -> Outcome {
    if let Some(rest) = d.strip_prefix("0011") {
        return international(rest, ctx);
    }
    if matches!(d, "000" | "112" | "106") {
        return Ok((CallType::Emergency, None));
    }
    let mut chars = d.chars();
    match (chars.next(), chars.next()) {
        (Some('0'), None) => Err(NumberError::Incomplete),
        (Some('0'), Some('0')) => prefix_of(d, &["000", "0011"]),
        (Some('0'), Some(area @ ('2' | '3' | '7' | '8'))) => {
            let call_type = if ctx.area() == Some(area) { CallType::Local } else { CallType::National };
            exact(d, 10, call_type, e164_national(d))
        }
        (Some('0'), Some('4' | '5')) => exact(d, 10, CallType::Mobile, e164_national(d)),
        (Some('1'), _) => one(d),
        (Some('2'..='9'), _) => match (d.len(), ctx.area()) {
            (0..8, _) | (8, None) => Err(NumberError::Incomplete),
            (8, Some(area)) => Ok((CallType::Local, Some(format!("+61{area}{d}")))),
            _ => Err(NumberError::Invalid),
        },
        _ => Err(NumberError::Invalid),
    }
}

/// Numbers starting with 1: emergency 112/106 are handled by the caller; here the 10/11/12/13/18/19 ranges.
fn one(d: &str) -> Outcome {
    let mut chars = d.chars().skip(1);
    match (chars.next(), chars.next(), chars.next()) {
        (None, ..) => Err(NumberError::Incomplete),
        (Some('0'), ..) => prefix_of(d, &["106"]),
        (Some('1'), ..) => match d.len() {
            0..4 => Err(NumberError::Incomplete),
            4 => Ok((CallType::Other, None)),
            _ => Err(NumberError::Invalid),
        },
        (Some('2'), ..) => match d.len() {
            0..4 => Err(NumberError::Incomplete),
            4..=6 => Ok((CallType::Other, None)),
            _ => Err(NumberError::Invalid),
        },
        // 13 xx xx, or 1300 xxx xxx; 1301-1309 are not allocated.
        (Some('3'), None, _) | (Some('3'), Some('0'), None) => Err(NumberError::Incomplete),
        (Some('3'), Some('0'), Some('0')) => exact(d, 10, CallType::LocalRate, e164_non_geographic(d)),
        (Some('3'), Some('0'), Some(_)) => Err(NumberError::Invalid),
        (Some('3'), Some(_), _) => exact(d, 6, CallType::LocalRate, e164_non_geographic(d)),
        // 1800 xxx xxx, or 180 xxxx (the fourth digit not 0).
        (Some('8'), None, _) | (Some('8'), Some('0'), None) => Err(NumberError::Incomplete),
        (Some('8'), Some('0'), Some('0')) => exact(d, 10, CallType::Freephone, e164_non_geographic(d)),
        (Some('8'), Some('0'), Some(_)) => exact(d, 7, CallType::Freephone, e164_non_geographic(d)),
        // 190 x xxx xxx
        (Some('9'), None, _) => Err(NumberError::Incomplete),
        (Some('9'), Some('0'), _) => exact(d, 10, CallType::Premium, e164_non_geographic(d)),
        _ => Err(NumberError::Invalid),
    }
}

/// The digits after `+` or `0011`.
fn international(d: &str, ctx: &DialContext) -> Outcome {
    if let Some(nsn) = d.strip_prefix("61") {
        return australian(nsn, ctx);
    }
    match (d.chars().next(), d.len()) {
        (Some('0'), _) => Err(NumberError::Invalid),
        (_, 0..7) => Err(NumberError::Incomplete),
        (_, 7..=15) => Ok((CallType::International, Some(format!("+{d}")))),
        _ => Err(NumberError::Invalid),
    }
}

/// An Australian national significant number reached through `+61`: geographic and mobile as if dialled with a
/// leading 0, the 13/1300/1800/180/190 ranges as dialled. Emergency and service codes have no `+61` form.
fn australian(nsn: &str, ctx: &DialContext) -> Outcome {
    match nsn.chars().next() {
        None => Err(NumberError::Incomplete),
        Some('1') => match nsn.chars().nth(1) {
            None => Err(NumberError::Incomplete),
            Some('3' | '8' | '9') => one(nsn),
            Some(_) => Err(NumberError::Invalid),
        },
        Some('2'..='9') => national(&format!("0{nsn}"), ctx),
        _ => Err(NumberError::Invalid),
    }
}

/// `d` has exactly `len` digits: fewer is incomplete, more invalid.
fn exact(d: &str, len: usize, call_type: CallType, e164: String) -> Outcome {
    match d.len().cmp(&len) {
        std::cmp::Ordering::Less => Err(NumberError::Incomplete),
        std::cmp::Ordering::Equal => Ok((call_type, Some(e164))),
        std::cmp::Ordering::Greater => Err(NumberError::Invalid),
    }
}

/// `d` is a proper prefix of one of `shapes` (the whole shapes are handled by the caller).
fn prefix_of(d: &str, shapes: &[&str]) -> Outcome {
    if shapes.iter().any(|s| s.starts_with(d)) { Err(NumberError::Incomplete) } else { Err(NumberError::Invalid) }
}

/// `0AXXXXXXXX` -> `+61AXXXXXXXX`.
fn e164_national(d: &str) -> String {
    format!("+61{}", d.strip_prefix('0').unwrap_or(d))
}

/// `13...`, `1800...` -> `+6113...`, `+611800...` (their E.164 form keeps every digit).
fn e164_non_geographic(d: &str) -> String {
    format!("+61{d}")
}
