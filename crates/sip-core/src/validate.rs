//! Request checks a UAS makes before acting (RFC 3261 §8.2), and responses built from a request (§8.2.6).

use crate::header::{CSeq, HeaderError, NameAddr, contacts, top_via};
use crate::message::{HeaderName, Headers, Message, StartLine};
use crate::uri::{Uri, UriError};

/// Why a request is refused: the status and a reason phrase naming the defect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: u16,
    pub reason: String,
}

impl Rejection {
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        Rejection { code, reason: reason.into() }
    }
}

impl From<HeaderError> for Rejection {
    fn from(e: HeaderError) -> Self {
        Rejection::new(400, e.to_string())
    }
}

/// The parsed essentials every request must carry (RFC 3261 §8.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Essentials {
    pub from: NameAddr,
    pub to: NameAddr,
    pub call_id: String,
    pub cseq: CSeq,
    pub request_uri: Uri,
}

/// Checks the mandatory headers and the Request-URI. Headers we do not need are not looked at.
pub fn check_request(msg: &Message) -> Result<Essentials, Rejection> {
    let StartLine::Request(line) = &msg.start else {
        return Err(Rejection::new(400, "Not A Request"));
    };
    let h = &msg.headers;
    let via = top_via(h)?;
    // The magic cookie alone announces an RFC 3261 transaction id but carries none (RFC 4475 §3.2.1): refused
    // rather than matched by the RFC 2543 rules, as other requests from that sender would collide on it.
    if via.branch() == Some(BRANCH_MAGIC_COOKIE) {
        return Err(Rejection::new(400, "Missing Transaction Identifier In Via Branch"));
    }
    let from = NameAddr::parse(single(h, &HeaderName::From, "From")?, "From")?;
    let to = NameAddr::parse(single(h, &HeaderName::To, "To")?, "To")?;
    let call_id = single(h, &HeaderName::CallId, "Call-ID")?;
    if call_id.is_empty() || call_id.bytes().any(|b| b <= b' ') {
        return Err(HeaderError::Malformed("Call-ID").into());
    }
    let cseq = CSeq::parse(single(h, &HeaderName::CSeq, "CSeq")?)?;
    // RFC 3261 §8.1.1.5: the CSeq method must match the request method.
    if cseq.method != line.method {
        return Err(Rejection::new(400, "CSeq Method Does Not Match Request"));
    }
    if let Some(mf) = h.get(&HeaderName::MaxForwards) {
        // Max-Forwards = 1*DIGIT, 0 to 255 (RFC 3261 §20.22): leading zeros are allowed (RFC 4475 §3.1.1.1: 0068).
        let digits = mf.trim_start_matches('0');
        let ok = !mf.is_empty() && mf.bytes().all(|b| b.is_ascii_digit()) && digits.len() <= 3;
        if !ok || (!digits.is_empty() && digits.parse::<u16>().map_or(true, |n| n > 255)) {
            return Err(HeaderError::Malformed("Max-Forwards").into());
        }
    }
    // Contact is what a registrar binds and what a dialog targets: a malformed one, such as an addr-spec holding
    // '?' (RFC 3261 §20.10; RFC 4475 §3.1.2.13), is refused rather than guessed at.
    contacts(h)?;
    let request_uri = match Uri::parse(&line.uri) {
        Ok(u) => u,
        Err(UriError::UnsupportedScheme) => return Err(Rejection::new(416, "Unsupported URI Scheme")),
        Err(UriError::Malformed) => return Err(Rejection::new(400, "Malformed Request-URI")),
    };
    // Headers escaped into a Request-URI are meaningless to a UAS (RFC 3261 §19.1.5).
    if request_uri.headers.is_some() {
        return Err(Rejection::new(400, "Headers Not Allowed In Request-URI"));
    }
    Ok(Essentials { from, to, call_id: call_id.to_owned(), cseq, request_uri })
}

/// The RFC 3261 branch prefix (§8.1.1.7).
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

/// Checks a response carries what a UAC matches it by (RFC 3261 §8.1.3.3, §17.1.3): a top Via, From, To and
/// Call-ID, and a CSeq within range. A response failing this cannot be matched and is silently discarded (RFC 4475
/// §3.1.2.5); responses are never answered.
pub fn check_response(msg: &Message) -> Result<CSeq, HeaderError> {
    let h = &msg.headers;
    top_via(h)?;
    for (name, label) in [(HeaderName::From, "From"), (HeaderName::To, "To")] {
        let v = h.get(&name).ok_or(HeaderError::Missing(label))?;
        NameAddr::parse(v, label)?;
    }
    let call_id = h.get(&HeaderName::CallId).ok_or(HeaderError::Missing("Call-ID"))?;
    if call_id.is_empty() || call_id.bytes().any(|b| b <= b' ') {
        return Err(HeaderError::Malformed("Call-ID"));
    }
    CSeq::parse(h.get(&HeaderName::CSeq).ok_or(HeaderError::Missing("CSeq"))?)
}

fn single<'a>(h: &'a Headers, name: &HeaderName, label: &'static str) -> Result<&'a str, Rejection> {
    match h.count(name) {
        0 => Err(HeaderError::Missing(label).into()),
        1 => h.get(name).ok_or_else(|| HeaderError::Missing(label).into()),
        _ => Err(Rejection::new(400, format!("Multiple {label} Headers"))),
    }
}

/// Builds a response to a request whose headers are `req` (RFC 3261 §8.2.6.2): Via, From, To, Call-ID and CSeq
/// copied; a To tag added when given and the request's To has none.
pub fn response_to(req: &Headers, code: u16, reason: &str, to_tag: Option<&str>) -> Message {
    let mut resp = Message::response(code, reason);
    for v in req.get_all(&HeaderName::Via) {
        resp.headers.push(HeaderName::Via, v);
    }
    if let Some(from) = req.get(&HeaderName::From) {
        resp.headers.push(HeaderName::From, from);
    }
    if let Some(to) = req.get(&HeaderName::To) {
        let has_tag = NameAddr::parse(to, "To").map(|n| n.tag().is_some()).unwrap_or(true);
        match to_tag {
            Some(tag) if !has_tag && code != 100 => resp.headers.push(HeaderName::To, format!("{to};tag={tag}")),
            _ => resp.headers.push(HeaderName::To, to),
        }
    }
    for name in [HeaderName::CallId, HeaderName::CSeq] {
        if let Some(v) = req.get(&name) {
            resp.headers.push(name, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{Limits, parse_datagram};

    fn req(extra: &str, method: &str, cseq: &str) -> Message {
        let text = format!(
            "{method} sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:b@example.com>;tag=1\r\n\
             To: <sip:a@example.com>\r\nCall-ID: x@y\r\nCSeq: {cseq}\r\nMax-Forwards: 70\r\n{extra}l: 0\r\n\r\n"
        );
        parse_datagram(text.as_bytes(), &Limits::default()).unwrap()
    }

    #[test]
    fn good_request_passes() {
        let e = check_request(&req("", "OPTIONS", "1 OPTIONS")).unwrap();
        assert_eq!(e.cseq.seq, 1);
        assert_eq!(e.from.tag(), Some("1"));
    }

    #[test]
    fn defects_are_named() {
        let r = check_request(&req("", "OPTIONS", "1 INVITE")).unwrap_err();
        assert_eq!((r.code, r.reason.as_str()), (400, "CSeq Method Does Not Match Request"));
        let r = check_request(&req("Call-ID: again\r\n", "OPTIONS", "1 OPTIONS")).unwrap_err();
        assert_eq!(r.reason, "Multiple Call-ID Headers");
    }

    #[test]
    fn max_forwards_and_branch() {
        let ok = |mf: &str| {
            let text = format!(
                "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:b@c>;tag=1\r\n\
                 To: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: {mf}\r\nl: 0\r\n\r\n"
            );
            check_request(&parse_datagram(text.as_bytes(), &Limits::default()).unwrap()).is_ok()
        };
        assert!(ok("0068") && ok("0") && ok("000") && ok("255"));
        assert!(!ok("256") && !ok("300") && !ok("-1") && !ok("00001000"));
        let text = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK\r\nFrom: <sip:b@c>;tag=1\r\n\
                    To: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n";
        let r = check_request(&parse_datagram(text.as_bytes(), &Limits::default()).unwrap()).unwrap_err();
        assert_eq!(r.code, 400);
    }

    #[test]
    fn response_copies_and_tags() {
        let m = req("", "OPTIONS", "1 OPTIONS");
        let r = response_to(&m.headers, 200, "OK", Some("abc"));
        assert_eq!(r.header(&HeaderName::To), Some("<sip:a@example.com>;tag=abc"));
        assert_eq!(r.header(&HeaderName::CSeq), Some("1 OPTIONS"));
    }
}
