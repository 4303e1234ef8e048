//! SIP and SIPS URIs (RFC 3261 §19.1), enough to route on and to compare bindings (§19.1.4).

use crate::header::{Param, find_param, parse_host_port};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Answered 416 (RFC 3261 §8.2.2.1).
    #[error("Unsupported URI Scheme")]
    UnsupportedScheme,
    #[error("Malformed URI")]
    Malformed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub scheme: Scheme,
    /// userinfo user part, still %-escaped; for `tel:` the number.
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<Param>,
    /// `?h=v&...` text after the `?`, if any.
    pub headers: Option<String>,
}

impl Uri {
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        let (scheme, rest) = s.split_once(':').ok_or(UriError::Malformed)?;
        let scheme = if scheme.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else if !scheme.is_empty()
            && scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return Err(UriError::UnsupportedScheme);
        } else {
            return Err(UriError::Malformed);
        };
        if rest.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UriError::Malformed);
        }
        if scheme == Scheme::Tel {
            let end = rest.find(';').unwrap_or(rest.len());
            let (num, params) = rest.split_at(end);
            if num.is_empty() {
                return Err(UriError::Malformed);
            }
            return Ok(Uri {
                scheme,
                user: Some(num.to_owned()),
                host: String::new(),
                port: None,
                params: parse_uri_params(params)?,
                headers: None,
            });
        }
        // The userinfo ends at the first '@': RFC 3261 §25.1 allows an unescaped '@' nowhere else in a SIP-URI,
        // while the user part may hold ';', '?' and '/' (user-unreserved; RFC 4475 §3.1.1.2, §3.1.1.9). So '@' is
        // looked for before the '?' of the headers and the ';' of the parameters.
        let (user, rest) = match rest.split_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, rest),
        };
        let (hostpart, headers) = match rest.split_once('?') {
            Some((r, h)) => (r, Some(h.to_owned())),
            None => (rest, None),
        };
        let user = match user {
            Some(u) => {
                let u = u.split_once(':').map_or(u, |(name, _password)| name);
                if u.is_empty() {
                    return Err(UriError::Malformed);
                }
                Some(u.to_owned())
            }
            None => None,
        };
        let end = hostpart.find(';').unwrap_or(hostpart.len());
        let (hostport, params) = hostpart.split_at(end);
        let (host, port) = parse_host_port(hostport).ok_or(UriError::Malformed)?;
        Ok(Uri { scheme, user, host, port, params: parse_uri_params(params)?, headers })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        find_param(&self.params, name).map(|p| p.value.as_deref().unwrap_or(""))
    }

    /// URI equivalence as RFC 3261 §19.1.4 defines it: scheme, host and port must agree (an explicit default port
    /// does not equal an omitted one); the user part compares case-sensitively after unescaping; `user`, `ttl`,
    /// `method`, `maddr` and `transport` must agree whether present or not; any other parameter present in both
    /// must agree, and one present in only one URI is ignored; URI headers must agree. Parameter names and values
    /// compare without case.
    pub fn rfc_eq(&self, other: &Uri) -> bool {
        if self.scheme != other.scheme || self.host != other.host || self.port != other.port {
            return false;
        }
        if self.user.as_deref().map(unescape) != other.user.as_deref().map(unescape) {
            return false;
        }
        const MUST_MATCH: [&str; 5] = ["user", "ttl", "method", "maddr", "transport"];
        let value = |u: &Uri, name: &str| u.param(name).map(str::to_ascii_lowercase);
        if MUST_MATCH.iter().any(|n| value(self, n) != value(other, n)) {
            return false;
        }
        for p in &self.params {
            if let Some(theirs) = value(other, &p.name)
                && theirs != p.value.as_deref().unwrap_or("").to_ascii_lowercase()
            {
                return false;
            }
        }
        self.headers.as_deref().map(unescape) == other.headers.as_deref().map(unescape)
    }

    /// A normalised spelling of the URI (scheme and host without case, user unescaped, every parameter with its
    /// name and value lower-cased, in sorted order, and the headers). URIs that differ per RFC 3261 §19.1.4 never
    /// share a key, so it serves as an identity; two equal URIs may still have different keys (a parameter present
    /// in only one), so equality itself is [`Uri::rfc_eq`].
    pub fn comparison_key(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
        };
        let mut key = format!("{scheme}:");
        if let Some(u) = &self.user {
            key.push_str(&unescape(u));
            key.push('@');
        }
        key.push_str(&self.host);
        if let Some(p) = self.port {
            key.push_str(&format!(":{p}"));
        }
        let mut params: Vec<String> = self
            .params
            .iter()
            .map(|p| {
                format!(";{}={}", p.name.to_ascii_lowercase(), p.value.as_deref().unwrap_or("").to_ascii_lowercase())
            })
            .collect();
        params.sort();
        key.extend(params);
        if let Some(h) = &self.headers {
            key.push('?');
            key.push_str(&unescape(h));
        }
        key
    }
}

fn parse_uri_params(s: &str) -> Result<Vec<Param>, UriError> {
    let mut out = Vec::new();
    for part in s.split(';').skip(1) {
        if part.is_empty() {
            return Err(UriError::Malformed);
        }
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (part, None),
        };
        if name.is_empty() {
            return Err(UriError::Malformed);
        }
        out.push(Param { name: name.to_owned(), value });
    }
    Ok(out)
}

/// Decodes %HH escapes; invalid escapes are kept as they are.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_and_odd_uris() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert_eq!(u.host, "example.com");
        let u = Uri::parse("sip:alice:secret@[2001:db8::1]:5070;transport=tcp?subject=x").unwrap();
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.param("transport"), Some("tcp"));
        assert_eq!(Uri::parse("nobodyKnowsThisScheme:x"), Err(UriError::UnsupportedScheme));
        assert!(Uri::parse("sip:").is_err());
        // '?' and ';' belong to the user part when they come before the '@'.
        let u = Uri::parse("sip:a?b;c/d:pw@example.com;lr?h=v").unwrap();
        assert_eq!((u.user.as_deref(), u.host.as_str()), (Some("a?b;c/d"), "example.com"));
        assert_eq!((u.param("lr"), u.headers.as_deref()), (Some(""), Some("h=v")));
    }

    #[test]
    fn rfc_equality_rules() {
        let eq = |a: &str, b: &str| Uri::parse(a).unwrap().rfc_eq(&Uri::parse(b).unwrap());
        // RFC 3261 §19.1.4 examples of equal URIs.
        assert!(eq("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"));
        assert!(eq("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"));
        assert!(eq("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5"));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        // ... and of unequal ones.
        assert!(!eq("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"));
        assert!(!eq("sip:carol@chicago.com;newparam=6", "sip:carol@chicago.com;newparam=5"));
        assert!(!eq("sip:bob@biloxi.com", "sips:bob@biloxi.com"));
    }

    #[test]
    fn comparison_key_normalises_and_never_merges_unequal_uris() {
        let a = Uri::parse("sip:%61lice@EXAMPLE.com;transport=TCP;foo=1").unwrap();
        let b = Uri::parse("SIP:alice@example.com;Foo=1;Transport=tcp").unwrap();
        assert_eq!(a.comparison_key(), b.comparison_key());
        let c = Uri::parse("sip:ALICE@example.com").unwrap();
        assert_ne!(a.comparison_key(), c.comparison_key());
        let line1 = Uri::parse("sip:pbx@h;line=1").unwrap();
        let line2 = Uri::parse("sip:pbx@h;line=2").unwrap();
        assert!(!line1.rfc_eq(&line2));
        assert_ne!(line1.comparison_key(), line2.comparison_key());
    }
}
