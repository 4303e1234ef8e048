//! Headers that tell the next hop a call was diverted: `Diversion` (RFC 5806, historic but what most carriers
//! read) and `History-Info` (RFC 7044, with the RFC 4458 `cause` values). Pure builders and parsers; the b2bua
//! decides when to divert and puts these on the outgoing INVITE.
//!
//! One diversion from our number to an external one is written as
//!
//! ```text
//! Diversion: <sip:+61299990000@host>;reason=no-answer;counter=1;privacy=off
//! History-Info: <sip:+61299990000@host?Reason=SIP%3Bcause%3D408>;index=1,
//!               <sip:+61400000000@gw;cause=408>;index=1.1;mp=1
//! ```

use crate::header::{HeaderError, NameAddr, find_param};
use crate::message::{HeaderName, Headers, split_list};
use crate::uri::{Scheme, Uri, unescape};

/// Why a call was diverted: the `diversion-reason` values of RFC 5806 §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DivertReason {
    Unknown,
    UserBusy,
    NoAnswer,
    Unavailable,
    Unconditional,
    TimeOfDay,
    DoNotDisturb,
    Deflection,
    FollowMe,
    OutOfService,
    Away,
}

impl DivertReason {
    pub const ALL: [DivertReason; 11] = [
        Self::Unknown,
        Self::UserBusy,
        Self::NoAnswer,
        Self::Unavailable,
        Self::Unconditional,
        Self::TimeOfDay,
        Self::DoNotDisturb,
        Self::Deflection,
        Self::FollowMe,
        Self::OutOfService,
        Self::Away,
    ];

    /// The `reason=` token (RFC 5806 §4).
    pub const fn diversion_token(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::UserBusy => "user-busy",
            Self::NoAnswer => "no-answer",
            Self::Unavailable => "unavailable",
            Self::Unconditional => "unconditional",
            Self::TimeOfDay => "time-of-day",
            Self::DoNotDisturb => "do-not-disturb",
            Self::Deflection => "deflection",
            Self::FollowMe => "follow-me",
            Self::OutOfService => "out-of-service",
            Self::Away => "away",
        }
    }

    /// Reads a `reason=` token, without case. Extension tokens give `None`.
    pub fn from_token(token: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.diversion_token().eq_ignore_ascii_case(token))
    }

    /// The RFC 4458 redirecting-reason status code (its table of `cause` values): 302 unconditional, 486 user
    /// busy, 408 no reply, 480 deflection (immediate response), 503 not reachable, and 404 "unknown / not
    /// available" for the rest. The reasons RFC 4458 has no code for (time-of-day, do-not-disturb, follow-me,
    /// out-of-service, away) take 404, the default of the RFC 7544 Diversion-to-History-Info mapping.
    pub const fn history_info_cause(self) -> u16 {
        match self {
            Self::Unconditional => 302,
            Self::UserBusy => 486,
            Self::NoAnswer => 408,
            Self::Deflection => 480,
            Self::Unavailable => 503,
            Self::Unknown | Self::TimeOfDay | Self::DoNotDisturb | Self::FollowMe | Self::OutOfService | Self::Away => {
                404
            }
        }
    }

    /// The reverse mapping (RFC 7544, History-Info to Diversion): 480 and 487 (deflection during alerting) are
    /// both deflection; any code not in the RFC 4458 table is `Unknown`.
    pub const fn from_cause(cause: u16) -> Self {
        match cause {
            302 => Self::Unconditional,
            486 => Self::UserBusy,
            408 => Self::NoAnswer,
            480 | 487 => Self::Deflection,
            503 => Self::Unavailable,
            _ => Self::Unknown,
        }
    }
}

/// Why a header could not be built from what we were given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DivertError {
    /// Not a SIP, SIPS or tel URI, or holds characters that would break out of `<...>`.
    #[error("Bad URI For Diversion: {0:?}")]
    BadUri(String),
    /// Not an RFC 7044 `index-val` (`1`, `1.1`, no leading zeros).
    #[error("Bad History-Info Index: {0:?}")]
    BadIndex(String),
    /// An entry with both `rc` and `mp`: one entry is reached one way.
    #[error("History-Info Entry With Both rc And mp")]
    ConflictingTarget,
    /// A cause for a URI that cannot carry URI headers (`tel:`, RFC 3966).
    #[error("Reason Needs A SIP URI: {0:?}")]
    CauseNeedsSipUri(String),
    #[error("Empty History-Info")]
    Empty,
}

/// Checks a URI we are about to put between `<` and `>`: it must parse as SIP, SIPS or tel, be ASCII, and hold
/// no `<`, `>` or `"` (white space and controls are already refused by [`Uri::parse`]). Config-supplied numbers
/// pass through here, so this is also what stops header injection.
fn check_uri(uri: &str) -> Result<Scheme, DivertError> {
    let bad = || DivertError::BadUri(uri.to_owned());
    if !uri.is_ascii() || uri.bytes().any(|b| b"<>\"".contains(&b)) {
        return Err(bad());
    }
    Uri::parse(uri).map(|u| u.scheme).map_err(|_| bad())
}

/// A `Diversion` header field value (RFC 5806 §4, ABNF as corrected by erratum 3177):
/// `<uri>;reason=<token>;counter=<n>;privacy=full|off`.
///
/// `counter` is the number of diversions this entry stands for; a single diversion writes 1 and adds its own
/// header above the ones received (see [`next_counter`] for the loop check). It is clamped to 1..=99, the range of
/// `1*2DIGIT`. `privacy` true writes `privacy=full` (hide the diverting party), false `privacy=off`.
pub fn diversion_value(
    diverting_uri: &str,
    reason: DivertReason,
    counter: u32,
    privacy: bool,
) -> Result<String, DivertError> {
    check_uri(diverting_uri)?;
    Ok(format!(
        "<{diverting_uri}>;reason={};counter={};privacy={}",
        reason.diversion_token(),
        counter.clamp(1, 99),
        if privacy { "full" } else { "off" }
    ))
}

/// One parsed `Diversion` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diversion {
    /// Display name, URI and every parameter as received (extension parameters included).
    pub name_addr: NameAddr,
    /// `None` when absent; an extension token reads as [`DivertReason::Unknown`] (raw text in `name_addr`).
    pub reason: Option<DivertReason>,
    /// The diversions this entry stands for; 1 when absent.
    pub counter: u32,
    /// The most diversions the sender allows (`limit=`), if it said.
    pub limit: Option<u32>,
    /// `full`, `name`, `uri`, `off` or an extension, unquoted.
    pub privacy: Option<String>,
    pub screen: Option<String>,
}

impl Diversion {
    pub fn uri(&self) -> &str {
        &self.name_addr.uri
    }
}

/// Reads a count parameter. The ABNF allows `1*2DIGIT`; longer runs of digits are accepted and saturate so that
/// a sender's sloppiness never lowers a count. Anything else is malformed.
fn count_param(na: &NameAddr, name: &str) -> Result<Option<u32>, HeaderError> {
    let Some(p) = find_param(&na.params, name) else {
        return Ok(None);
    };
    let bad = HeaderError::Malformed("Diversion");
    let v = p.value.as_deref().ok_or(bad.clone())?;
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    Ok(Some(v.parse::<u32>().unwrap_or(u32::MAX)))
}

/// Parses one `Diversion` list element (split a header line with [`split_list`] first, or use [`diversions`]).
/// Lenient where RFC 5806 examples were (quoted values such as `privacy="full"`, erratum 3178; addr-spec form),
/// strict on the counts a loop check relies on.
pub fn parse_diversion(value: &str) -> Result<Diversion, HeaderError> {
    let name_addr = NameAddr::parse(value, "Diversion")?;
    let reason = name_addr.param("reason").map(|t| DivertReason::from_token(t).unwrap_or(DivertReason::Unknown));
    let counter = count_param(&name_addr, "counter")?.unwrap_or(1);
    let limit = count_param(&name_addr, "limit")?;
    let text = |n: &str| find_param(&name_addr.params, n).and_then(|p| p.value.clone());
    let privacy = text("privacy");
    let screen = text("screen");
    Ok(Diversion { name_addr, reason, counter, limit, privacy, screen })
}

/// Every `Diversion` entry of a message, top (most recent) first, however the peer spelled the name.
pub fn diversions(headers: &Headers) -> Result<Vec<Diversion>, HeaderError> {
    headers
        .iter()
        .filter(|h| h.name == HeaderName::Diversion)
        .flat_map(|h| split_list(&h.value))
        .map(parse_diversion)
        .collect()
}

/// How many diversions the received entries record. RFC 5806 counts per entry (an entry may stand for several
/// diversions), so the total is the sum of the counters, an entry counting at least 1. Some senders write a
/// running total instead, each new top entry one more than the one below it; a top-first run `n, n-1, ..., 1`
/// is read that way and counts `n`, not `n(n+1)/2`, which would trip a loop limit early.
pub fn total_diversions(existing: &[Diversion]) -> u32 {
    let n = existing.len();
    let running_total =
        n >= 2 && existing.iter().enumerate().all(|(i, d)| u32::try_from(n - i).is_ok_and(|want| d.counter == want));
    if running_total {
        existing.first().map_or(0, |d| d.counter)
    } else {
        existing.iter().fold(0u32, |acc, d| acc.saturating_add(d.counter.max(1)))
    }
}

/// The diversion count once we divert again: what a loop limit compares against. The entry we add still carries
/// `counter=1` ([`diversion_value`]); this is the total a next hop will read.
pub fn next_counter(existing: &[Diversion]) -> u32 {
    total_diversions(existing).saturating_add(1)
}

/// Whether one more diversion stays within both our own limit and the smallest `limit=` a sender set.
pub fn diversion_allowed(existing: &[Diversion], our_limit: u32) -> bool {
    let limit = existing.iter().filter_map(|d| d.limit).fold(our_limit, u32::min);
    next_counter(existing) <= limit
}

/// One `hi-entry` (RFC 7044 §4 ABNF). `index`, `rc` and `mp` are `index-val`s such as `1` or `1.1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The hi-targeted-to-uri, bare (no `<>`). May already carry URI parameters and headers.
    pub uri: String,
    pub index: String,
    /// Set on an entry whose URI changed but still reaches the same user (an alias, a registered contact).
    pub rc: Option<String>,
    /// Set on an entry that reaches a different user: what a diversion does.
    pub mp: Option<String>,
    /// The SIP status this target ended with (why the request went elsewhere), written as a `Reason` header
    /// escaped into the URI: `?Reason=SIP%3Bcause%3D486`.
    pub cause: Option<u16>,
}

/// `index-val = number *("." number)`, `number = [ %x31-39 *DIGIT ] DIGIT` (RFC 7044 §4).
fn is_index_val(s: &str) -> bool {
    s.split('.')
        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n.len() == 1 || !n.starts_with('0')))
}

/// Where the headers of a SIP URI start: the first `?` after the userinfo (the user part may itself hold `?`,
/// RFC 3261 §25.1; the userinfo ends at the first `@`, as [`Uri::parse`] reads it).
fn headers_start(uri: &str) -> Option<usize> {
    let host_start = uri.find('@').map_or(0, |i| i + 1);
    uri.get(host_start..)?.find('?').map(|q| host_start + q)
}

/// %-escapes everything but `unreserved` and `hnv-unreserved` (RFC 3261 §25.1 `hvalue`).
fn escape_hvalue(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Adds `Reason=SIP;cause=<n>` (escaped) to a SIP URI's headers, replacing any Reason already there and keeping
/// the other headers in order.
fn with_reason(uri: &str, cause: u16) -> String {
    let (base, headers) = match headers_start(uri) {
        Some(q) => (uri.get(..q).unwrap_or(uri), uri.get(q + 1..)),
        None => (uri, None),
    };
    let mut out = String::from(base);
    let mut sep = '?';
    for h in headers.into_iter().flat_map(|h| h.split('&')).filter(|h| !h.is_empty()) {
        let name = h.split_once('=').map_or(h, |(n, _)| n);
        if unescape(name).eq_ignore_ascii_case("Reason") {
            continue;
        }
        out.push(sep);
        out.push_str(h);
        sep = '&';
    }
    out.push(sep);
    out.push_str("Reason=");
    out.push_str(&escape_hvalue(&format!("SIP;cause={cause}")));
    out
}

/// Sets the RFC 4458 `cause` URI parameter on a SIP or SIPS URI (replacing one already there); other URIs, and
/// ones that do not parse, come back unchanged.
fn with_cause_param(uri: &str, cause: u16) -> String {
    if !matches!(Uri::parse(uri).map(|u| u.scheme), Ok(Scheme::Sip | Scheme::Sips)) {
        return uri.to_owned();
    }
    let (base, headers) = match headers_start(uri) {
        Some(q) => (uri.get(..q).unwrap_or(uri), uri.get(q..).unwrap_or("")),
        None => (uri, ""),
    };
    // Parameters follow the host: look for ';' only after the userinfo, whose user part may hold ';' itself.
    let host_start = base.find('@').map_or(0, |i| i + 1);
    let (userhost, params) = match base.get(host_start..).and_then(|h| h.find(';')) {
        Some(i) => (base.get(..host_start + i).unwrap_or(base), base.get(host_start + i..).unwrap_or("")),
        None => (base, ""),
    };
    let mut out = String::from(userhost);
    for p in params.split(';').filter(|p| !p.is_empty()) {
        let name = p.split_once('=').map_or(p, |(n, _)| n);
        if !name.eq_ignore_ascii_case("cause") {
            out.push(';');
            out.push_str(p);
        }
    }
    out.push_str(&format!(";cause={cause}"));
    out.push_str(headers);
    out
}

/// A `History-Info` header field value: the entries in order, `, `-separated, each
/// `<uri[?Reason=SIP%3Bcause%3D<n>]>;index=<i>[;rc=<i>|;mp=<i>]`. A cause is merged into the URI's existing
/// headers (a Reason already there is replaced); it needs a SIP or SIPS URI, since tel URIs carry no headers.
pub fn history_info(entries: &[HistoryEntry]) -> Result<String, DivertError> {
    if entries.is_empty() {
        return Err(DivertError::Empty);
    }
    let mut out = String::new();
    for e in entries {
        let scheme = check_uri(&e.uri)?;
        for i in std::iter::once(&e.index).chain(&e.rc).chain(&e.mp) {
            if !is_index_val(i) {
                return Err(DivertError::BadIndex(i.clone()));
            }
        }
        if e.rc.is_some() && e.mp.is_some() {
            return Err(DivertError::ConflictingTarget);
        }
        let uri = match (e.cause, scheme) {
            (None, _) => e.uri.clone(),
            (Some(c), Scheme::Sip | Scheme::Sips) => with_reason(&e.uri, c),
            (Some(_), Scheme::Tel) => return Err(DivertError::CauseNeedsSipUri(e.uri.clone())),
        };
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push('<');
        out.push_str(&uri);
        out.push_str(">;index=");
        out.push_str(&e.index);
        if let Some(rc) = &e.rc {
            out.push_str(";rc=");
            out.push_str(rc);
        }
        if let Some(mp) = &e.mp {
            out.push_str(";mp=");
            out.push_str(mp);
        }
    }
    Ok(out)
}

/// The two entries for one diversion of a request that arrived without History-Info (with a received chain the
/// caller numbers on from its last index instead):
///
/// - index `1`: the number that was called, with the cause it ended with as an escaped `Reason`;
/// - index `1.1`: the number diverted to, tagged `mp=1`.
///
/// `mp`, not `rc`: RFC 7044's `hi-target-param` definitions give `rc` to a new Request-URI that "still reaches the
/// target user" (an alias, a registered contact) and `mp` to one that "represents a user other than the target
/// user ... retargeted to another user represented by an AOR unassociated with the AOR of the original target
/// user". A divert to an external number is the latter. The target also carries the RFC 4458 `cause` URI
/// parameter (SIP/SIPS only), which is where RFC 7544 gateways read the reason when they map History-Info back to
/// Diversion.
pub fn diverted_history(original_uri: &str, target_uri: &str, reason: DivertReason) -> Vec<HistoryEntry> {
    let cause = reason.history_info_cause();
    vec![
        HistoryEntry { uri: original_uri.to_owned(), index: "1".into(), rc: None, mp: None, cause: Some(cause) },
        HistoryEntry {
            uri: with_cause_param(target_uri, cause),
            index: "1.1".into(),
            rc: None,
            mp: Some("1".into()),
            cause: None,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reason_tokens_and_causes() {
        let tokens: Vec<_> = DivertReason::ALL.iter().map(|r| r.diversion_token()).collect();
        // RFC 5806 §4 diversion-reason, in ABNF order.
        assert_eq!(
            tokens,
            [
                "unknown",
                "user-busy",
                "no-answer",
                "unavailable",
                "unconditional",
                "time-of-day",
                "do-not-disturb",
                "deflection",
                "follow-me",
                "out-of-service",
                "away"
            ]
        );
        for r in DivertReason::ALL {
            assert_eq!(DivertReason::from_token(r.diversion_token()), Some(r));
            assert_eq!(DivertReason::from_token(&r.diversion_token().to_uppercase()), Some(r));
        }
        assert_eq!(DivertReason::from_token("vacation"), None);
        let cause = DivertReason::history_info_cause;
        assert_eq!(cause(DivertReason::Unconditional), 302);
        assert_eq!(cause(DivertReason::UserBusy), 486);
        assert_eq!(cause(DivertReason::NoAnswer), 408);
        assert_eq!(cause(DivertReason::Unavailable), 503);
        assert_eq!(cause(DivertReason::Deflection), 480);
        assert_eq!(cause(DivertReason::Away), 404);
        // The RFC 4458 reasons survive a round trip through History-Info and back.
        for r in [
            DivertReason::Unconditional,
            DivertReason::UserBusy,
            DivertReason::NoAnswer,
            DivertReason::Unavailable,
            DivertReason::Deflection,
            DivertReason::Unknown,
        ] {
            assert_eq!(DivertReason::from_cause(r.history_info_cause()), r);
        }
        assert_eq!(DivertReason::from_cause(487), DivertReason::Deflection);
        assert_eq!(DivertReason::from_cause(599), DivertReason::Unknown);
    }

    #[test]
    fn builds_diversion() {
        let v = diversion_value("sip:+61299990000@host", DivertReason::NoAnswer, 1, false).unwrap();
        assert_eq!(v, "<sip:+61299990000@host>;reason=no-answer;counter=1;privacy=off");
        let v = diversion_value("tel:+61299990000", DivertReason::Unconditional, 0, true).unwrap();
        assert_eq!(v, "<tel:+61299990000>;reason=unconditional;counter=1;privacy=full");
        assert!(diversion_value("sip:a@h", DivertReason::UserBusy, 500, false).unwrap().contains(";counter=99;"));
        // What we write reads back.
        let d = parse_diversion(&v).unwrap();
        assert_eq!(
            (d.uri(), d.reason, d.counter, d.privacy.as_deref()),
            ("tel:+61299990000", Some(DivertReason::Unconditional), 1, Some("full"))
        );
    }

    #[test]
    fn builders_refuse_uris_that_would_break_the_header() {
        for bad in [
            "",
            "+61299990000",
            "http://example.com",
            "sip:a@h>;evil=1",
            "sip:a@h\r\nVia: x",
            "sip:a b@h",
            "sip:\"a\"@h",
            "sip:é@h",
            "<sip:a@h>",
        ] {
            assert!(diversion_value(bad, DivertReason::Unknown, 1, false).is_err(), "{bad:?}");
            let e = HistoryEntry { uri: bad.into(), index: "1".into(), rc: None, mp: None, cause: None };
            assert!(history_info(&[e]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_diversion_forms() {
        // RFC 5806 §4 ABNF (erratum 3177), every parameter, with LWS around ';' and '='.
        let d = parse_diversion(
            "\"Alice\" <sip:alice@atlanta.example.com;user=phone> ; reason = user-busy;counter=2;limit=5;\
             privacy=off;screen=no;x-ext=1",
        )
        .unwrap();
        assert_eq!(d.name_addr.display.as_deref(), Some("Alice"));
        assert_eq!(d.uri(), "sip:alice@atlanta.example.com;user=phone");
        assert_eq!((d.reason, d.counter, d.limit), (Some(DivertReason::UserBusy), 2, Some(5)));
        assert_eq!((d.privacy.as_deref(), d.screen.as_deref()), (Some("off"), Some("no")));
        assert_eq!(d.name_addr.param("x-ext"), Some("1"));
        // The RFC's own examples quoted the privacy value (erratum 3178); accept it.
        let d = parse_diversion("<sip:bob@biloxi.example.com>;reason=deflection;privacy=\"full\"").unwrap();
        assert_eq!((d.privacy.as_deref(), d.counter), (Some("full"), 1));
        // Extension reason, absent reason, addr-spec form, tel URI.
        assert_eq!(parse_diversion("<tel:+1555>;reason=vacation").unwrap().reason, Some(DivertReason::Unknown));
        assert_eq!(parse_diversion("sip:a@h;counter=3").unwrap().reason, None);
        assert_eq!(parse_diversion("sip:a@h;counter=3").unwrap().counter, 3);
        // Counts must be digits; overlong ones saturate instead of wrapping.
        assert!(parse_diversion("<sip:a@h>;counter=x").is_err());
        assert!(parse_diversion("<sip:a@h>;counter").is_err());
        assert!(parse_diversion("<sip:a@h>;limit=-1").is_err());
        assert_eq!(parse_diversion("<sip:a@h>;counter=99999999999").unwrap().counter, u32::MAX);
        assert!(parse_diversion("").is_err());
        assert!(parse_diversion("<sip:a@h;reason=no-answer").is_err());
    }

    #[test]
    fn reads_every_diversion_line_and_element() {
        let mut h = Headers::new();
        h.push(HeaderName::Diversion, "<sip:b@h>;reason=no-answer;counter=1, <sip:a@h>;reason=user-busy");
        // However the peer spelled it.
        h.push(HeaderName::parse("diversion"), "<sip:o@h>;reason=unconditional");
        h.push(HeaderName::Other("X-Diversion".into()), "<sip:x@h>");
        let d = diversions(&h).unwrap();
        let uris: Vec<_> = d.iter().map(Diversion::uri).collect();
        assert_eq!(uris, ["sip:b@h", "sip:a@h", "sip:o@h"]);
        assert_eq!(next_counter(&d), 4);
        h.push(HeaderName::Diversion, "garbage");
        assert!(diversions(&h).is_err());
    }

    fn div(counter: u32, limit: Option<u32>) -> Diversion {
        let mut d = parse_diversion("<sip:a@h>;reason=unknown").unwrap();
        d.counter = counter;
        d.limit = limit;
        d
    }

    #[test]
    fn counters_and_loop_limit() {
        assert_eq!(next_counter(&[]), 1);
        assert_eq!(next_counter(&[div(1, None)]), 2);
        // Per-entry counts add up, an aggregated entry counting for several.
        assert_eq!(next_counter(&[div(1, None), div(1, None), div(1, None)]), 4);
        assert_eq!(next_counter(&[div(2, None)]), 3);
        assert_eq!(next_counter(&[div(1, None), div(3, None)]), 5);
        // A running total (top first 3, 2, 1) is three diversions, not six.
        assert_eq!(total_diversions(&[div(3, None), div(2, None), div(1, None)]), 3);
        // counter=0 still records a diversion; saturation never wraps.
        assert_eq!(total_diversions(&[div(0, None), div(1, None)]), 2);
        assert_eq!(next_counter(&[div(u32::MAX, None), div(5, None)]), u32::MAX);
        // Limits: ours, and the smallest a sender set.
        assert!(diversion_allowed(&[], 1));
        assert!(!diversion_allowed(&[div(1, None)], 1));
        assert!(diversion_allowed(&[div(1, None)], 5));
        assert!(!diversion_allowed(&[div(1, Some(1))], 5));
        assert!(diversion_allowed(&[div(1, Some(3)), div(1, Some(9))], 5));
        assert!(!diversion_allowed(&[div(1, Some(2)), div(1, Some(9))], 5));
        // Parsed, end to end: a received call already diverted once, limit 2 at the source.
        let got = parse_diversion("<sip:+61299990000@host>;reason=no-answer;counter=1;limit=2").unwrap();
        assert_eq!(next_counter(std::slice::from_ref(&got)), 2);
        assert!(diversion_allowed(std::slice::from_ref(&got), 10));
        assert!(!diversion_allowed(&[div(1, None), got], 10));
    }

    #[test]
    fn single_diversion_history() {
        let entries = diverted_history("sip:+61299990000@host", "sip:+61400000000@gw", DivertReason::Unconditional);
        assert_eq!(entries[0].cause, Some(302));
        assert_eq!((entries[1].mp.as_deref(), entries[1].rc.as_deref()), (Some("1"), None));
        assert_eq!(
            history_info(&entries).unwrap(),
            "<sip:+61299990000@host?Reason=SIP%3Bcause%3D302>;index=1, <sip:+61400000000@gw;cause=302>;index=1.1;mp=1"
        );
        let v = history_info(&diverted_history("sips:0299990000@h", "sip:+614@gw;user=phone", DivertReason::UserBusy))
            .unwrap();
        assert_eq!(
            v,
            "<sips:0299990000@h?Reason=SIP%3Bcause%3D486>;index=1, <sip:+614@gw;user=phone;cause=486>;index=1.1;mp=1"
        );
        // Every element parses back as a name-addr, the Reason unescaping to the RFC 3326 value.
        let items: Vec<_> = split_list(&v).map(|i| NameAddr::parse(i, "History-Info").unwrap()).collect();
        assert_eq!(items.len(), 2);
        let uri = Uri::parse(&items[0].uri).unwrap();
        assert_eq!(uri.headers.as_deref().map(unescape).as_deref(), Some("Reason=SIP;cause=486"));
        assert_eq!(items[1].param("mp"), Some("1"));
        assert_eq!(Uri::parse(&items[1].uri).unwrap().param("cause"), Some("486"));
        // A tel target gets no cause parameter; a tel original cannot carry the Reason.
        let e = diverted_history("tel:+61299990000", "tel:+61400000000", DivertReason::NoAnswer);
        assert_eq!(e[1].uri, "tel:+61400000000");
        assert_eq!(history_info(&e), Err(DivertError::CauseNeedsSipUri("tel:+61299990000".into())));
    }

    #[test]
    fn brief_example_with_rc_still_builds() {
        // The retarget-to-same-user form (rc), RFC 7044's other tag.
        let e = [
            HistoryEntry {
                uri: "sip:+61299990000@host".into(),
                index: "1".into(),
                rc: None,
                mp: None,
                cause: Some(302),
            },
            HistoryEntry {
                uri: "sip:+61400000000@gw".into(),
                index: "1.1".into(),
                rc: Some("1".into()),
                mp: None,
                cause: None,
            },
        ];
        assert_eq!(
            history_info(&e).unwrap(),
            "<sip:+61299990000@host?Reason=SIP%3Bcause%3D302>;index=1, <sip:+61400000000@gw>;index=1.1;rc=1"
        );
    }

    #[test]
    fn reason_merges_with_existing_uri_headers_and_params() {
        let entry =
            |uri: &str| HistoryEntry { uri: uri.into(), index: "1".into(), rc: None, mp: None, cause: Some(408) };
        let one = |uri: &str| history_info(&[entry(uri)]).unwrap();
        assert_eq!(one("sip:a@h?Subject=hi"), "<sip:a@h?Subject=hi&Reason=SIP%3Bcause%3D408>;index=1");
        // An existing Reason (any case, even escaped) is replaced, the other headers kept in order.
        assert_eq!(
            one("sip:a@h;transport=tcp?X=1&reason=SIP%3Bcause%3D486&%52eason=Q.850&Y=2"),
            "<sip:a@h;transport=tcp?X=1&Y=2&Reason=SIP%3Bcause%3D408>;index=1"
        );
        // '?' and ';' in the user part are not the headers or parameters.
        assert_eq!(one("sip:a?b;c@h"), "<sip:a?b;c@h?Reason=SIP%3Bcause%3D408>;index=1");
        assert_eq!(with_cause_param("sip:a;b@h;cause=486;lr?X=1", 302), "sip:a;b@h;lr;cause=302?X=1");
        assert_eq!(with_cause_param("sip:[2001:db8::1]:5060", 302), "sip:[2001:db8::1]:5060;cause=302");
        assert_eq!(
            escape_hvalue("SIP;cause=302;text=\"Moved Temporarily\""),
            "SIP%3Bcause%3D302%3Btext%3D%22Moved%20Temporarily%22"
        );
    }

    #[test]
    fn history_info_validates_entries() {
        let e = |index: &str, rc: Option<&str>, mp: Option<&str>| HistoryEntry {
            uri: "sip:a@h".into(),
            index: index.into(),
            rc: rc.map(Into::into),
            mp: mp.map(Into::into),
            cause: None,
        };
        assert_eq!(history_info(&[e("1.1.10", None, Some("1.1"))]).unwrap(), "<sip:a@h>;index=1.1.10;mp=1.1");
        assert_eq!(history_info(&[e("0", None, None)]).unwrap(), "<sip:a@h>;index=0");
        for bad in ["", "01", "1.", ".1", "1..1", "1.02", "a", "1;x=2", " 1"] {
            assert_eq!(history_info(&[e(bad, None, None)]), Err(DivertError::BadIndex(bad.into())));
            assert!(history_info(&[e("1.1", Some(bad), None)]).is_err());
        }
        assert_eq!(history_info(&[e("1.1", Some("1"), Some("1"))]), Err(DivertError::ConflictingTarget));
        assert_eq!(history_info(&[]), Err(DivertError::Empty));
    }

    proptest! {
        #[test]
        fn parsing_garbage_never_panics(s in "\\PC{0,80}", t in "[<>\";=,a-z:@ ?%0-9\\\\]{0,40}") {
            let _ = parse_diversion(&s);
            let _ = parse_diversion(&t);
            let _ = parse_diversion(&format!("<sip:a@h>;{t}"));
        }

        #[test]
        fn built_headers_always_reparse(
            uri in "(sips?|tel):(\\+?[0-9]{1,12}@)?[a-z0-9.]{1,10}([;?@][a-zA-Z0-9+;=?&@%.:\\[\\]<>\" -]{0,20})?",
            cause in 100u16..700,
            counter in any::<u32>(),
            privacy in any::<bool>(),
        ) {
            if let Ok(v) = diversion_value(&uri, DivertReason::from_cause(cause), counter, privacy) {
                let d = parse_diversion(&v).unwrap();
                prop_assert_eq!(d.uri(), uri.as_str());
                prop_assert!((1..=99).contains(&d.counter));
            }
            let entries = diverted_history(&uri, &uri, DivertReason::from_cause(cause));
            if let Ok(v) = history_info(&entries) {
                let items: Vec<_> = split_list(&v).collect();
                prop_assert_eq!(items.len(), 2);
                for item in items {
                    let na = NameAddr::parse(item, "History-Info").unwrap();
                    prop_assert!(Uri::parse(&na.uri).is_ok());
                }
            }
        }
    }
}
