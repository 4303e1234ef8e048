//! Caller ID policy for outbound calls: present the number the device sent only if the customer owns it,
//! otherwise the device's default. Presentation (withheld or not) is separate from the identity: a withheld call
//! still carries the number in P-Asserted-Identity (RFC 3325) with `Privacy: id`; the caller builds the headers.

use crate::numbering::{CallType, DialContext, classify, clean};

/// The identity to assert on an outbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerId {
    /// The E.164 number to assert; none when neither the sent number nor the default is usable.
    pub e164: Option<String>,
    /// Presentation restricted: the device asked for `Privacy: id` or sent an anonymous From.
    pub withheld: bool,
    /// The device sent a number that was not used (not owned, or not a number); `e164` is the default instead.
    pub substituted: bool,
}

/// Pick the caller ID for an outbound call.
///
/// - `sent`: the user part the device presented (From or P-Preferred-Identity), national (`0298765432`), E.164
///   (`+61298765432`) or E.164 without `+` (`61298765432`, as PBXs often send); `anonymous` asks for withholding.
/// - `owns(e164)`: whether the customer owns that number (their DIDs and any verified numbers).
/// - `default`: the device's default caller ID, trusted as provisioned, normalised the same way.
/// - `privacy_id`: the request carried `Privacy: id` (RFC 3323).
pub fn caller_id(sent: Option<&str>, owns: impl Fn(&str) -> bool, default: Option<&str>, privacy_id: bool) -> CallerId {
    let sent = sent.map(str::trim).filter(|s| !s.is_empty());
    let anonymous = sent.is_some_and(|s| s.eq_ignore_ascii_case("anonymous"));
    let sent = sent.filter(|_| !anonymous);
    let withheld = privacy_id || anonymous;
    match sent.and_then(normalise_cli).filter(|n| owns(n)) {
        Some(e164) => CallerId { e164: Some(e164), withheld, substituted: false },
        None => CallerId { e164: default.and_then(normalise_cli), withheld, substituted: sent.is_some() },
    }
}

/// A presentable number in E.164, from the forms devices and PBXs send: `+E.164`, `0011` + international,
/// national `0...` (geographic, mobile, 13/1300, 1800/180), or bare E.164 digits (11 to 15 digits, not starting with
/// 0). Local 8-digit numbers, emergency and service codes, premium numbers and anything else give none.
pub fn normalise_cli(number: &str) -> Option<String> {
    let (plus, digits) = clean(number).ok()?;
    // Bare 11-15 digit strings are E.164 without the `+`; a national number has at most 10 digits.
    let bare_e164 = !plus && (11..=15).contains(&digits.len()) && !digits.starts_with('0');
    let as_dialled = if bare_e164 { format!("+{digits}") } else { number.to_owned() };
    let c = classify(&as_dialled, &DialContext::default()).ok()?;
    let presentable = matches!(
        c.call_type,
        CallType::National | CallType::Mobile | CallType::LocalRate | CallType::Freephone | CallType::International
    );
    c.e164.filter(|_| presentable)
}
