//! The SIP message model: a start line, an ordered header list and an opaque body.
//!
//! Header values are kept as text, exactly as received after line unfolding; typed views (`Via`, `NameAddr`,
//! `CSeq`, ...) are parsed on demand by [`crate::header`], so a broken value in a header nobody needs never stops a
//! message (RFC 3261 §7.3.1, "parsers must be lenient").

use std::fmt::{self, Write as _};

/// A SIP method. Extension methods (RFC 3261 §7.1 `extension-method = token`) are kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Update,
    Prack,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Extension(String),
}

impl Method {
    /// Methods are case-sensitive (RFC 3261 §7.1).
    pub fn from_token(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header names we act on get a variant, so lookups compare an enum instead of folding case each time.
/// Compact forms (RFC 3261 §7.3.3, RFC 3265, RFC 3515, RFC 4028) map onto their long names when parsed. Any other
/// name compares without regard to case (RFC 3261 §7.3.1), so `HeaderName::Other` built from any spelling finds
/// the header however the peer wrote it.
#[derive(Debug, Clone)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    MaxForwards,
    ContentLength,
    ContentType,
    ContentEncoding,
    Expires,
    MinExpires,
    Authorization,
    WwwAuthenticate,
    ProxyAuthorization,
    ProxyAuthenticate,
    Route,
    RecordRoute,
    Path,
    Supported,
    Require,
    ProxyRequire,
    Unsupported,
    Allow,
    Accept,
    UserAgent,
    Server,
    Date,
    Subject,
    Event,
    AllowEvents,
    ReferTo,
    ReferredBy,
    SessionExpires,
    Timestamp,
    RetryAfter,
    Warning,
    /// RFC 5806.
    Diversion,
    /// RFC 7044.
    HistoryInfo,
    /// RFC 3323.
    Privacy,
    /// RFC 3325.
    PAssertedIdentity,
    /// RFC 3325.
    PPreferredIdentity,
    /// RFC 3326.
    Reason,
    /// Any other header, with the name as received.
    Other(String),
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
        }
    }
}

impl Eq for HeaderName {}

impl std::hash::Hash for HeaderName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        if let HeaderName::Other(name) = self {
            for b in name.bytes() {
                state.write_u8(b.to_ascii_lowercase());
            }
        }
    }
}

impl HeaderName {
    /// Maps a received name (any case, long or compact form) to a `HeaderName`.
    pub fn parse(name: &str) -> HeaderName {
        if name.len() == 1 {
            let compact = match name.as_bytes().first().map(u8::to_ascii_lowercase) {
                Some(b'v') => Some(HeaderName::Via),
                Some(b'f') => Some(HeaderName::From),
                Some(b't') => Some(HeaderName::To),
                Some(b'i') => Some(HeaderName::CallId),
                Some(b'm') => Some(HeaderName::Contact),
                Some(b'l') => Some(HeaderName::ContentLength),
                Some(b'c') => Some(HeaderName::ContentType),
                Some(b'e') => Some(HeaderName::ContentEncoding),
                Some(b'k') => Some(HeaderName::Supported),
                Some(b's') => Some(HeaderName::Subject),
                Some(b'o') => Some(HeaderName::Event),
                Some(b'u') => Some(HeaderName::AllowEvents),
                Some(b'r') => Some(HeaderName::ReferTo),
                Some(b'b') => Some(HeaderName::ReferredBy),
                Some(b'x') => Some(HeaderName::SessionExpires),
                _ => None,
            };
            if let Some(h) = compact {
                return h;
            }
        }
        const LONG: &[(&str, HeaderName)] = &[
            ("via", HeaderName::Via),
            ("from", HeaderName::From),
            ("to", HeaderName::To),
            ("call-id", HeaderName::CallId),
            ("cseq", HeaderName::CSeq),
            ("contact", HeaderName::Contact),
            ("max-forwards", HeaderName::MaxForwards),
            ("content-length", HeaderName::ContentLength),
            ("content-type", HeaderName::ContentType),
            ("content-encoding", HeaderName::ContentEncoding),
            ("expires", HeaderName::Expires),
            ("min-expires", HeaderName::MinExpires),
            ("authorization", HeaderName::Authorization),
            ("www-authenticate", HeaderName::WwwAuthenticate),
            ("proxy-authorization", HeaderName::ProxyAuthorization),
            ("proxy-authenticate", HeaderName::ProxyAuthenticate),
            ("route", HeaderName::Route),
            ("record-route", HeaderName::RecordRoute),
            ("path", HeaderName::Path),
            ("supported", HeaderName::Supported),
            ("require", HeaderName::Require),
            ("proxy-require", HeaderName::ProxyRequire),
            ("unsupported", HeaderName::Unsupported),
            ("allow", HeaderName::Allow),
            ("accept", HeaderName::Accept),
            ("user-agent", HeaderName::UserAgent),
            ("server", HeaderName::Server),
            ("date", HeaderName::Date),
            ("subject", HeaderName::Subject),
            ("event", HeaderName::Event),
            ("allow-events", HeaderName::AllowEvents),
            ("refer-to", HeaderName::ReferTo),
            ("referred-by", HeaderName::ReferredBy),
            ("session-expires", HeaderName::SessionExpires),
            ("timestamp", HeaderName::Timestamp),
            ("retry-after", HeaderName::RetryAfter),
            ("warning", HeaderName::Warning),
            ("diversion", HeaderName::Diversion),
            ("history-info", HeaderName::HistoryInfo),
            ("privacy", HeaderName::Privacy),
            ("p-asserted-identity", HeaderName::PAssertedIdentity),
            ("p-preferred-identity", HeaderName::PPreferredIdentity),
            ("reason", HeaderName::Reason),
        ];
        for (long, h) in LONG {
            if long.eq_ignore_ascii_case(name) {
                return h.clone();
            }
        }
        HeaderName::Other(name.to_owned())
    }

    /// The canonical long form, as we write it.
    pub fn as_str(&self) -> &str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::Contact => "Contact",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::ContentEncoding => "Content-Encoding",
            HeaderName::Expires => "Expires",
            HeaderName::MinExpires => "Min-Expires",
            HeaderName::Authorization => "Authorization",
            HeaderName::WwwAuthenticate => "WWW-Authenticate",
            HeaderName::ProxyAuthorization => "Proxy-Authorization",
            HeaderName::ProxyAuthenticate => "Proxy-Authenticate",
            HeaderName::Route => "Route",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::Path => "Path",
            HeaderName::Supported => "Supported",
            HeaderName::Require => "Require",
            HeaderName::ProxyRequire => "Proxy-Require",
            HeaderName::Unsupported => "Unsupported",
            HeaderName::Allow => "Allow",
            HeaderName::Accept => "Accept",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Server => "Server",
            HeaderName::Date => "Date",
            HeaderName::Subject => "Subject",
            HeaderName::Event => "Event",
            HeaderName::AllowEvents => "Allow-Events",
            HeaderName::ReferTo => "Refer-To",
            HeaderName::ReferredBy => "Referred-By",
            HeaderName::SessionExpires => "Session-Expires",
            HeaderName::Timestamp => "Timestamp",
            HeaderName::RetryAfter => "Retry-After",
            HeaderName::Warning => "Warning",
            HeaderName::Diversion => "Diversion",
            HeaderName::HistoryInfo => "History-Info",
            HeaderName::Privacy => "Privacy",
            HeaderName::PAssertedIdentity => "P-Asserted-Identity",
            HeaderName::PPreferredIdentity => "P-Preferred-Identity",
            HeaderName::Reason => "Reason",
            HeaderName::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    /// The value with line folding replaced by single spaces and surrounding whitespace trimmed.
    pub value: String,
}

/// Headers in the order received; order matters for Via, Route, Record-Route, Path and Contact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<Header>);

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push(Header { name, value: value.into() });
    }

    /// The first value of `name`, if any.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0.iter().find(|h| &h.name == name).map(|h| h.value.as_str())
    }

    /// Every header line named `name`, in order (each line may itself hold a comma-separated list).
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |h| &h.name == name).map(|h| h.value.as_str())
    }

    /// Every element of a list header (RFC 3261 §7.3.1: `H: a, b` equals `H: a` + `H: b`), split at commas that are
    /// outside quotes and angle brackets.
    pub fn get_list<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name).flat_map(split_list)
    }

    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|h| &h.name == name).count()
    }

    pub fn remove_all(&mut self, name: &HeaderName) {
        self.0.retain(|h| &h.name != name);
    }

    /// Replaces every `name` header with one holding `value`, at the position of the first.
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter().position(|h| h.name == name) {
            Some(i) => {
                if let Some(h) = self.0.get_mut(i) {
                    h.value = value;
                }
                let mut seen = 0usize;
                self.0.retain(|h| {
                    if h.name == name {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.push(name, value),
        }
    }

    /// Replaces the first `name` line with `value`, inserting `extra` lines right after it (used to split a
    /// comma-joined list so its first element can be rewritten).
    pub fn replace_first(&mut self, name: &HeaderName, value: String, extra: impl Iterator<Item = String>) {
        if let Some(i) = self.0.iter().position(|h| &h.name == name) {
            if let Some(h) = self.0.get_mut(i) {
                h.value = value;
            }
            for (at, v) in (i + 1..).zip(extra) {
                self.0.insert(at, Header { name: name.clone(), value: v });
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Splits a list header value at top-level commas; empty elements are skipped.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        loop {
            let s = rest?;
            let mut in_quotes = false;
            let mut in_angle = false;
            let mut escaped = false;
            let mut cut = None;
            for (i, c) in s.char_indices() {
                if escaped {
                    escaped = false;
                    continue;
                }
                match c {
                    '\\' if in_quotes => escaped = true,
                    '"' => in_quotes = !in_quotes,
                    '<' if !in_quotes => in_angle = true,
                    '>' if !in_quotes => in_angle = false,
                    ',' if !in_quotes && !in_angle => {
                        cut = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let (item, next) = match cut {
                Some(i) => (s.get(..i).unwrap_or(""), s.get(i + 1..)),
                None => (s, None),
            };
            rest = next;
            let item = item.trim();
            if !item.is_empty() {
                return Some(item);
            }
        }
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLine {
    pub method: Method,
    /// The Request-URI as received (typed on demand with [`crate::uri::Uri::parse`]).
    pub uri: String,
    /// `SIP/2.0` normally; anything else is answered 505 by [`crate::validate`].
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub code: u16,
    pub reason: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request(RequestLine),
    Response(StatusLine),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Message {
    pub fn request(method: Method, uri: impl Into<String>) -> Message {
        Message {
            start: StartLine::Request(RequestLine { method, uri: uri.into(), version: "SIP/2.0".into() }),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    pub fn response(code: u16, reason: impl Into<String>) -> Message {
        Message {
            start: StartLine::Response(StatusLine { code, reason: reason.into(), version: "SIP/2.0".into() }),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request(_))
    }

    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request(r) => Some(&r.method),
            StartLine::Response(_) => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Request(_) => None,
            StartLine::Response(s) => Some(s.code),
        }
    }

    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request(r) => Some(&r.uri),
            StartLine::Response(_) => None,
        }
    }

    pub fn header(&self, name: &HeaderName) -> Option<&str> {
        self.headers.get(name)
    }

    pub fn call_id(&self) -> Option<&str> {
        self.headers.get(&HeaderName::CallId)
    }

    /// The message on the wire. Content-Length is always written from the body actually carried, after the
    /// other headers, whatever the header list says.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(512 + self.headers.len() * 32);
        match &self.start {
            StartLine::Request(r) => {
                let _ = write!(out, "{} {} {}\r\n", r.method, r.uri, r.version);
            }
            StartLine::Response(s) => {
                let _ = write!(out, "{} {} {}\r\n", s.version, s.code, s.reason);
            }
        }
        for h in self.headers.iter() {
            if h.name == HeaderName::ContentLength {
                continue;
            }
            out.push_str(h.name.as_str());
            out.push_str(": ");
            out.push_str(&h.value);
            out.push_str("\r\n");
        }
        let _ = write!(out, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_without_case_and_extension_names_are_typed() {
        use std::collections::hash_map::DefaultHasher;
        use std::hash::{Hash, Hasher};
        let hash = |h: &HeaderName| {
            let mut s = DefaultHasher::new();
            h.hash(&mut s);
            s.finish()
        };
        for (spelling, typed) in [
            ("privacy", HeaderName::Privacy),
            ("DIVERSION", HeaderName::Diversion),
            ("p-asserted-identity", HeaderName::PAssertedIdentity),
            ("P-Preferred-Identity", HeaderName::PPreferredIdentity),
            ("history-info", HeaderName::HistoryInfo),
            ("Reason", HeaderName::Reason),
        ] {
            assert_eq!(HeaderName::parse(spelling), typed, "{spelling}");
        }
        let (a, b) = (HeaderName::Other("X-Account".into()), HeaderName::parse("x-ACCOUNT"));
        assert_eq!(a, b);
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(a, HeaderName::Other("X-Accounts".into()));
        assert_ne!(HeaderName::Via, HeaderName::Other("Via".into()), "a typed name is matched by its variant");
        let mut h = Headers::new();
        h.push(HeaderName::parse("privacy"), "id");
        assert_eq!(h.get(&HeaderName::Privacy), Some("id"));
    }

    #[test]
    fn compact_forms_map_to_long_names() {
        assert_eq!(HeaderName::parse("l"), HeaderName::ContentLength);
        assert_eq!(HeaderName::parse("I"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("m"), HeaderName::Contact);
        assert_eq!(HeaderName::parse("cSeQ"), HeaderName::CSeq);
        assert_eq!(HeaderName::parse("X-Thing"), HeaderName::Other("X-Thing".into()));
    }

    #[test]
    fn list_split_respects_quotes_and_brackets() {
        let v = r#""Doe, J" <sip:a@b;x=1,2>;q=0.5 , <sip:c@d>,,"#;
        let items: Vec<_> = split_list(v).collect();
        assert_eq!(items, vec![r#""Doe, J" <sip:a@b;x=1,2>;q=0.5"#, "<sip:c@d>"]);
    }

    #[test]
    fn set_replaces_all_occurrences_in_place() {
        let mut h = Headers::new();
        h.push(HeaderName::Via, "a");
        h.push(HeaderName::Expires, "1");
        h.push(HeaderName::Expires, "2");
        h.set(HeaderName::Expires, "3");
        assert_eq!(h.get_all(&HeaderName::Expires).collect::<Vec<_>>(), vec!["3"]);
        assert_eq!(h.len(), 2);
    }
}
