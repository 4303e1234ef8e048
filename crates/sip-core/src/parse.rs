//! Wire parsing and framing with explicit limits (RFC 3261 §7, §18.3).
//!
//! Framing comes first and never trusts the peer: a message larger than [`Limits::max_message`], with more than
//! [`Limits::max_headers`] header lines or with an unusable Content-Length is refused before any header value is
//! interpreted. Start-line defects are reported together with the headers that could be read, so the caller can
//! still answer a broken request with a 400 that the sender can match (RFC 3261 §8.2, §16.3).

use crate::message::{HeaderName, Headers, Message, Method, RequestLine, StartLine, StatusLine};

/// Bounds on what one message may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole message, start line to end of body, in bytes.
    pub max_message: usize,
    /// Header lines (after unfolding).
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // 64 KiB is the largest UDP datagram; on streams we hold ourselves to the same bound.
        Limits { max_message: 65_535, max_headers: 128 }
    }
}

/// What was wrong, in words a 400 reason phrase can carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("Message Too Large")]
    TooLarge,
    #[error("Too Many Headers")]
    TooManyHeaders,
    #[error("Malformed Start Line")]
    BadStartLine,
    #[error("Malformed Request-URI")]
    BadRequestUri,
    #[error("Version Not Supported")]
    BadVersion,
    #[error("Invalid Status Code")]
    BadStatusCode,
    #[error("Malformed Header Line")]
    BadHeaderLine,
    #[error("Header Not UTF-8")]
    NotUtf8,
    #[error("Invalid Content-Length")]
    BadContentLength,
    #[error("Body Shorter Than Content-Length")]
    Truncated,
    #[error("Incomplete Headers")]
    Incomplete,
}

/// A message that could not be parsed. `headers` holds what could be read, so that a request can still be answered
/// (`is_request` says which kind it looked like).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub is_request: bool,
    pub headers: Option<Headers>,
}

impl ParseError {
    fn bare(kind: ParseErrorKind, is_request: bool) -> Self {
        ParseError { kind, is_request, headers: None }
    }

    /// The status a request with this defect is answered with (RFC 3261 §8.2.2, §21.5.6).
    pub fn status(&self) -> u16 {
        match self.kind {
            ParseErrorKind::BadVersion => 505,
            ParseErrorKind::TooLarge => 513,
            _ => 400,
        }
    }
}

/// Parses one UDP datagram holding one message (RFC 3261 §18.3: with Content-Length, octets beyond it are
/// discarded; without it, the body runs to the end of the datagram).
pub fn parse_datagram(data: &[u8], limits: &Limits) -> Result<Message, ParseError> {
    let data = skip_leading_crlf(data);
    let is_request = !data.starts_with(b"SIP/");
    if data.len() > limits.max_message {
        // Read the header block anyway (a datagram is at most 64 KiB and the lines are bounded by max_headers) so
        // the request can be answered 513.
        let headers =
            find_header_end(data).and_then(|(head, _)| parse_head(head, limits, is_request).ok()).map(|m| m.headers);
        return Err(ParseError { kind: ParseErrorKind::TooLarge, is_request, headers });
    }
    // A datagram whose header block lacks the final empty line still ends at the datagram's end.
    let (head, body_start) = match find_header_end(data) {
        Some((h, b)) => (h, b),
        None => (data, data.len()),
    };
    let rest = data.get(body_start..).unwrap_or_default();
    let mut msg = parse_head(head, limits, is_request)?;
    let body = match content_length(&msg.headers) {
        Err(kind) => return Err(with_headers(kind, is_request, msg.headers)),
        Ok(None) => rest,
        Ok(Some(len)) => match rest.get(..len) {
            Some(b) => b,
            None => return Err(with_headers(ParseErrorKind::Truncated, is_request, msg.headers)),
        },
    };
    msg.body = body.to_vec();
    Ok(msg)
}

/// One item read off a stream connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Message(Message),
    /// A CRLFCRLF keepalive ping (RFC 5626 §3.5.1); answer with a single CRLF.
    Ping,
}

/// Splits a byte stream (TCP, TLS) into messages by Content-Length (RFC 3261 §18.3). Feed it what arrives with
/// [`StreamFramer::push`], then call [`StreamFramer::next_frame`] until it returns `None`. After an error the
/// stream cannot be re-synchronised: close the connection.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// Where the search for the end of headers resumes, so a slow trickle is not rescanned from the start.
    scanned: usize,
    limits: Limits,
}

impl StreamFramer {
    pub fn new(limits: Limits) -> Self {
        StreamFramer { buf: Vec::new(), scanned: 0, limits }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held that do not form a complete message yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn next_frame(&mut self) -> Option<Result<Frame, ParseError>> {
        // Leading CRLFs: a double one is a keepalive ping, a single one a pong (RFC 5626 §3.5.1).
        let mut crlfs = 0;
        while self.buf.get(crlfs * 2..crlfs * 2 + 2) == Some(b"\r\n".as_slice()) {
            crlfs += 1;
        }
        if crlfs > 0 {
            let rest = self.buf.get(crlfs * 2..).unwrap_or_default();
            if crlfs == 1 && (rest.is_empty() || rest == b"\r") {
                // A pong, or the first half of a ping: wait for what follows.
                return None;
            }
            self.buf.drain(..crlfs * 2);
            self.scanned = 0;
            if crlfs >= 2 {
                return Some(Ok(Frame::Ping));
            }
        }
        if self.buf.is_empty() {
            return None;
        }
        let is_request = !self.buf.starts_with(b"SIP/");
        let start = self.scanned.saturating_sub(3);
        let Some((head_len, body_start)) =
            find_header_end(self.buf.get(start..).unwrap_or_default()).map(|(h, b)| (h.len() + start, b + start))
        else {
            self.scanned = self.buf.len();
            if self.buf.len() > self.limits.max_message {
                return Some(Err(ParseError::bare(ParseErrorKind::TooLarge, is_request)));
            }
            return None;
        };
        let head = self.buf.get(..head_len).unwrap_or_default();
        let mut msg = match parse_head(head, &self.limits, is_request) {
            Ok(m) => m,
            Err(e) => return Some(Err(e)),
        };
        let len = match content_length(&msg.headers) {
            Ok(len) => len.unwrap_or(0),
            Err(kind) => return Some(Err(with_headers(kind, is_request, msg.headers))),
        };
        if body_start.saturating_add(len) > self.limits.max_message {
            return Some(Err(with_headers(ParseErrorKind::TooLarge, is_request, msg.headers)));
        }
        let end = body_start + len;
        let Some(body) = self.buf.get(body_start..end) else {
            return None; // body still arriving
        };
        msg.body = body.to_vec();
        self.buf.drain(..end);
        self.scanned = 0;
        Some(Ok(Frame::Message(msg)))
    }
}

fn with_headers(kind: ParseErrorKind, is_request: bool, headers: Headers) -> ParseError {
    ParseError { kind, is_request, headers: Some(headers) }
}

fn skip_leading_crlf(mut data: &[u8]) -> &[u8] {
    while let Some(rest) = data.strip_prefix(b"\r\n").or_else(|| data.strip_prefix(b"\n")) {
        data = rest;
    }
    data
}

/// Finds the empty line ending the header block: returns (header block without the empty line, body offset).
/// Bare LF line ends are tolerated.
fn find_header_end(data: &[u8]) -> Option<(&[u8], usize)> {
    let mut i = 0;
    while i < data.len() {
        if data.get(i) == Some(&b'\n') {
            if data.get(i + 1) == Some(&b'\n') {
                return Some((data.get(..i + 1)?, i + 2));
            }
            if data.get(i + 1..i + 3) == Some(b"\r\n".as_slice()) {
                return Some((data.get(..i + 1)?, i + 3));
            }
        }
        i += 1;
    }
    None
}

fn content_length(headers: &Headers) -> Result<Option<usize>, ParseErrorKind> {
    let mut found: Option<usize> = None;
    for v in headers.get_all(&HeaderName::ContentLength) {
        let v = v.trim();
        if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseErrorKind::BadContentLength);
        }
        let n: usize = v.parse().map_err(|_| ParseErrorKind::BadContentLength)?;
        if found.is_some_and(|f| f != n) {
            return Err(ParseErrorKind::BadContentLength);
        }
        found = Some(n);
    }
    Ok(found)
}

/// Parses the start line and the header lines (CRLF or LF separated, folded lines joined).
fn parse_head(head: &[u8], limits: &Limits, is_request: bool) -> Result<Message, ParseError> {
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().unwrap_or_default();
    let mut headers = Headers::new();
    let mut pending: Option<(HeaderName, String)> = None;
    let mut header_error: Option<ParseErrorKind> = None;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            header_error.get_or_insert(ParseErrorKind::NotUtf8);
            continue;
        };
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            // Continuation of the previous header (RFC 3261 §7.3.1): the fold is one space.
            match pending.as_mut() {
                Some((_, value)) => {
                    let t = text.trim();
                    if !t.is_empty() {
                        if !value.is_empty() {
                            value.push(' ');
                        }
                        value.push_str(t);
                    }
                }
                None => {
                    header_error.get_or_insert(ParseErrorKind::BadHeaderLine);
                }
            }
            continue;
        }
        if let Some((name, value)) = pending.take() {
            headers.push(name, value);
        }
        if headers.len() >= limits.max_headers {
            return Err(with_headers(ParseErrorKind::TooManyHeaders, is_request, headers));
        }
        let Some((name, value)) = text.split_once(':') else {
            header_error.get_or_insert(ParseErrorKind::BadHeaderLine);
            continue;
        };
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            header_error.get_or_insert(ParseErrorKind::BadHeaderLine);
            continue;
        }
        pending = Some((HeaderName::parse(name), value.trim().to_owned()));
    }
    if let Some((name, value)) = pending.take() {
        headers.push(name, value);
    }
    let start = match parse_start_line(first, is_request) {
        Ok(s) => s,
        Err(kind) => return Err(with_headers(kind, is_request, headers)),
    };
    if let Some(kind) = header_error {
        return Err(with_headers(kind, is_request, headers));
    }
    Ok(Message { start, headers, body: Vec::new() })
}

/// RFC 3261 §25.1 `token` characters.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn parse_start_line(line: &[u8], is_request: bool) -> Result<StartLine, ParseErrorKind> {
    let text = std::str::from_utf8(line).map_err(|_| ParseErrorKind::BadStartLine)?;
    if is_request {
        // Request-Line = Method SP Request-URI SP SIP-Version: exactly one SP each (RFC 3261 §7.1).
        let mut parts = text.split(' ');
        let (Some(method), Some(uri), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ParseErrorKind::BadStartLine);
        };
        if parts.next().is_some() || method.is_empty() || !method.bytes().all(is_token_byte) {
            return Err(ParseErrorKind::BadStartLine);
        }
        if uri.is_empty() || uri.starts_with('<') || uri.bytes().any(|b| b <= b' ' || b == 0x7f) || !uri.contains(':') {
            return Err(ParseErrorKind::BadRequestUri);
        }
        check_version(version)?;
        Ok(StartLine::Request(RequestLine {
            method: Method::from_token(method),
            uri: uri.to_owned(),
            version: version.to_owned(),
        }))
    } else {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase; an absent reason is tolerated.
        let (version, rest) = text.split_once(' ').ok_or(ParseErrorKind::BadStartLine)?;
        check_version(version)?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseErrorKind::BadStatusCode);
        }
        let code: u16 = code.parse().map_err(|_| ParseErrorKind::BadStatusCode)?;
        if !(100..=699).contains(&code) {
            return Err(ParseErrorKind::BadStatusCode);
        }
        Ok(StartLine::Response(StatusLine { code, reason: reason.to_owned(), version: version.to_owned() }))
    }
}

fn check_version(v: &str) -> Result<(), ParseErrorKind> {
    let upper = v.to_ascii_uppercase();
    let Some(num) = upper.strip_prefix("SIP/") else {
        return Err(ParseErrorKind::BadStartLine);
    };
    if num == "2.0" {
        return Ok(());
    }
    let well_formed = num.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit())
    });
    if well_formed { Err(ParseErrorKind::BadVersion) } else { Err(ParseErrorKind::BadStartLine) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
        f: <sip:a@example.com>;tag=1\r\nt: <sip:a@example.com>\r\ni: abc\r\nCSeq: 1 REGISTER\r\nl: 4\r\n\r\nbodyEXTRA";

    #[test]
    fn datagram_truncates_body_to_content_length() {
        let m = parse_datagram(REG, &Limits::default()).unwrap();
        assert_eq!(m.body, b"body");
        assert_eq!(m.call_id(), Some("abc"));
        assert_eq!(m.method(), Some(&Method::Register));
    }

    #[test]
    fn datagram_shorter_than_content_length_is_refused() {
        let data = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nabc";
        let e = parse_datagram(data, &Limits::default()).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::Truncated);
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn folded_lines_are_joined() {
        let data = b"OPTIONS sip:a@b SIP/2.0\r\nSubject: one\r\n  two\r\n\ttree\r\nl: 0\r\n\r\n";
        let m = parse_datagram(data, &Limits::default()).unwrap();
        assert_eq!(m.header(&HeaderName::Subject), Some("one two tree"));
    }

    #[test]
    fn stream_framer_splits_anywhere() {
        let one = REG;
        let mut stream = Vec::new();
        stream.extend_from_slice(b"\r\n\r\n");
        let two = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 4\r\n\r\nbody";
        stream.extend_from_slice(two);
        stream.extend_from_slice(&one[..one.len() - 5]);
        for split in 0..stream.len() {
            let mut f = StreamFramer::new(Limits::default());
            let mut frames = Vec::new();
            for chunk in [&stream[..split], &stream[split..]] {
                f.push(chunk);
                while let Some(fr) = f.next_frame() {
                    frames.push(fr.unwrap());
                }
            }
            assert_eq!(frames.len(), 3, "split at {split}");
            assert_eq!(frames[0], Frame::Ping);
        }
    }

    #[test]
    fn too_many_headers_is_refused() {
        let mut data = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
        for i in 0..200 {
            data.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        data.extend_from_slice(b"\r\n");
        let e = parse_datagram(&data, &Limits::default()).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::TooManyHeaders);
    }

    #[test]
    fn stream_bigger_than_limit_is_refused_without_buffering_forever() {
        let mut f = StreamFramer::new(Limits { max_message: 100, max_headers: 10 });
        f.push(&[b'a'; 200]);
        assert!(matches!(f.next_frame(), Some(Err(_))));
        let mut f = StreamFramer::new(Limits { max_message: 100, max_headers: 10 });
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1000\r\n\r\n");
        assert!(matches!(f.next_frame(), Some(Err(ParseError { kind: ParseErrorKind::TooLarge, .. }))));
    }

    #[test]
    fn bad_start_lines() {
        let l = Limits::default();
        let e = parse_datagram(b"INVITE  sip:a@b SIP/2.0\r\nl: 0\r\n\r\n", &l).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::BadStartLine);
        assert!(e.headers.is_some());
        let e = parse_datagram(b"OPTIONS sip:a@b SIP/7.0\r\nl: 0\r\n\r\n", &l).unwrap_err();
        assert_eq!(e.status(), 505);
        let e = parse_datagram(b"SIP/2.0 4294967301 big\r\nl: 0\r\n\r\n", &l).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::BadStatusCode);
        let m = parse_datagram(b"SIP/2.0 100\r\nl: 0\r\n\r\n", &l).unwrap();
        assert_eq!(m.status(), Some(100));
    }
}
