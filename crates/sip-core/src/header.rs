//! Typed views of the header values we act on, parsed on demand from the text kept in [`crate::message::Headers`].
//! Each parser is strict about the grammar (RFC 3261 §25.1) but tolerant of linear white space where the grammar
//! allows it (`SWS`, `LWS` around `;`, `=`, `/` and `:`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::message::{HeaderName, Headers, Method};
use crate::parse::is_token_byte;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("Missing {0} Header")]
    Missing(&'static str),
    #[error("Malformed {0} Header")]
    Malformed(&'static str),
}

/// A generic parameter: `;name` or `;name=value` (value unquoted if it was a quoted string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub value: Option<String>,
}

/// Finds a parameter by name (parameter names are case-insensitive, RFC 3261 §7.3.1).
pub fn find_param<'a>(params: &'a [Param], name: &str) -> Option<&'a Param> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Parses `*( SEMI generic-param )` from the start of `s` (which must begin with `;` or be blank).
fn parse_params(s: &str) -> Option<Vec<Param>> {
    let mut params = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        rest = rest.strip_prefix(';')?.trim_start();
        let name_len = rest.bytes().take_while(|&b| is_token_byte(b)).count();
        let name = rest.get(..name_len)?;
        if name.is_empty() {
            return None;
        }
        rest = rest.get(name_len..)?.trim_start();
        let mut value = None;
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            if after.starts_with('"') {
                let (q, tail) = parse_quoted(after)?;
                value = Some(q);
                rest = tail.trim_start();
            } else {
                // token, or host (IPv6 reference with brackets and colons) for received/maddr
                let len = after.bytes().take_while(|&b| is_token_byte(b) || b"[]:".contains(&b)).count();
                if len == 0 {
                    return None;
                }
                value = Some(after.get(..len)?.to_owned());
                rest = after.get(len..)?.trim_start();
            }
        }
        params.push(Param { name: name.to_owned(), value });
    }
    Some(params)
}

/// Parses a quoted-string at the start of `s`; returns the unescaped content and what follows the closing quote.
fn parse_quoted(s: &str) -> Option<(String, &str)> {
    let inner = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, inner.get(i + 1..)?)),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

fn write_params(out: &mut String, params: &[Param]) {
    for p in params {
        out.push(';');
        out.push_str(&p.name);
        if let Some(v) = &p.value {
            out.push('=');
            if v.bytes().all(|b| is_token_byte(b) || b"[]:".contains(&b)) && !v.is_empty() {
                out.push_str(v);
            } else {
                out.push('"');
                out.push_str(&v.replace('\\', "\\\\").replace('"', "\\\""));
                out.push('"');
            }
        }
    }
}

/// One Via header field value (RFC 3261 §20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Upper-case transport: UDP, TCP, TLS, SCTP, WS, WSS or an extension.
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<Param>,
}

impl Via {
    pub fn parse(value: &str) -> Result<Via, HeaderError> {
        let bad = HeaderError::Malformed("Via");
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport, with LWS allowed around SLASH.
        let mut rest = value.trim();
        let mut parts = Vec::with_capacity(3);
        for i in 0..3 {
            let len = rest.bytes().take_while(|&b| is_token_byte(b)).count();
            let tok = rest.get(..len).ok_or(bad.clone())?;
            if tok.is_empty() {
                return Err(bad);
            }
            parts.push(tok);
            rest = rest.get(len..).ok_or(bad.clone())?.trim_start();
            if i < 2 {
                rest = rest.strip_prefix('/').ok_or(bad.clone())?.trim_start();
            }
        }
        let (Some(name), Some(version), Some(transport)) = (parts.first(), parts.get(1), parts.get(2)) else {
            return Err(bad);
        };
        if !name.eq_ignore_ascii_case("SIP") || *version != "2.0" {
            return Err(bad);
        }
        let transport = transport.to_ascii_uppercase();
        let end = rest.find(';').unwrap_or(rest.len());
        let (sent_by, params) = rest.split_at(end);
        let (host, port) = parse_host_port(sent_by.trim()).ok_or(bad.clone())?;
        let params = parse_params(params).ok_or(bad)?;
        Ok(Via { transport, host, port, params })
    }

    pub fn param(&self, name: &str) -> Option<&Param> {
        find_param(&self.params, name)
    }

    pub fn branch(&self) -> Option<&str> {
        self.param("branch").and_then(|p| p.value.as_deref())
    }

    /// `Some(None)` for a bare `;rport` (RFC 3581: the client asks for it), `Some(Some(p))` once filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.param("rport").map(|p| p.value.as_deref().and_then(|v| v.parse().ok()))
    }

    /// sent-by as `host[:port]` text, used in transaction matching (RFC 3261 §17.2.3).
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }

    pub fn set_param(&mut self, name: &str, value: Option<String>) {
        match self.params.iter_mut().find(|p| p.name.eq_ignore_ascii_case(name)) {
            Some(p) => p.value = value,
            None => self.params.push(Param { name: name.to_owned(), value }),
        }
    }

    pub fn to_value(&self) -> String {
        let mut out = format!("SIP/2.0/{} {}", self.transport, self.sent_by());
        write_params(&mut out, &self.params);
        out
    }
}

/// Splits `host[:port]`, with IPv6 references in brackets. Host case is folded to lower case (RFC 3261 §19.1.4).
pub fn parse_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if s.is_empty() {
        return None;
    }
    let (host, port) = if s.starts_with('[') {
        let close = s.find(']')?;
        let host = s.get(..=close)?;
        let after = s.get(close + 1..)?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.trim()),
            None if after.trim().is_empty() => None,
            None => return None,
        };
        // IPv6reference = "[" IPv6address "]" (RFC 3261 §25.1): the address itself must be valid.
        parse_ipv6(host.get(1..host.len() - 1)?)?;
        (host, port)
    } else {
        let (h, p) = match s.split_once(':') {
            Some((h, p)) => (h.trim_end(), Some(p.trim())),
            None => (s, None),
        };
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) {
            return None;
        }
        (h, p)
    };
    let port = match port {
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(p.parse::<u16>().ok()?)
        }
        None => None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// The IP address a host (as kept in [`Via::host`], [`crate::uri::Uri::host`] or a `received` value) names, if it
/// names one: an IPv4 address, an IPv6 reference in brackets, or a bare IPv6 address (`received` may be written
/// either way, RFC 5118 §4.5).
pub fn host_ip(host: &str) -> Option<IpAddr> {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) => parse_ipv6(inner).map(IpAddr::V6),
        None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4).or_else(|| parse_ipv6(host).map(IpAddr::V6)),
    }
}

/// Parses an IPv6 address (RFC 4291 §2.2). RFC 3261's own `IPv6address` ABNF, taken from the obsoleted RFC 2373,
/// also derives `hexpart "::"` followed by `":" IPv4address`, three colons before an embedded IPv4 address
/// (`2001:db8:::192.0.2.1`); RFC 5118 §4.10 says implementations must tolerate it, so that one form, and only it,
/// is read as `::`.
fn parse_ipv6(s: &str) -> Option<Ipv6Addr> {
    if let Ok(ip) = s.parse::<Ipv6Addr>() {
        return Some(ip);
    }
    let (head, v4) = s.rsplit_once(':')?;
    v4.parse::<Ipv4Addr>().ok()?;
    let head = head.strip_suffix("::")?;
    format!("{head}::{v4}").parse().ok()
}

/// `name-addr` or `addr-spec` with header parameters: From, To, Contact, Route, Record-Route, Path elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    /// The URI text between `<` and `>` (or the bare addr-spec).
    pub uri: String,
    pub params: Vec<Param>,
}

impl NameAddr {
    pub fn parse(value: &str, header: &'static str) -> Result<NameAddr, HeaderError> {
        let bad = || HeaderError::Malformed(header);
        let s = value.trim();
        let (display, rest) = if s.starts_with('"') {
            let (d, tail) = parse_quoted(s).ok_or_else(bad)?;
            (Some(d), tail.trim_start())
        } else if let Some(lt) = s.find('<') {
            // display-name = *(token LWS): only token characters and white space before '<'.
            let d = s.get(..lt).ok_or_else(bad)?.trim();
            if !d.bytes().all(|b| is_token_byte(b) || b == b' ' || b == b'\t') {
                return Err(bad());
            }
            (if d.is_empty() { None } else { Some(d.to_owned()) }, s.get(lt..).ok_or_else(bad)?)
        } else {
            (None, s)
        };
        if let Some(inner) = rest.strip_prefix('<') {
            let close = inner.find('>').ok_or_else(bad)?;
            let uri = inner.get(..close).ok_or_else(bad)?;
            if uri.is_empty() || uri.bytes().any(|b| b <= b' ') || !uri.contains(':') {
                return Err(bad());
            }
            let params = parse_params(inner.get(close + 1..).ok_or_else(bad)?).ok_or_else(bad)?;
            Ok(NameAddr { display, uri: uri.to_owned(), params })
        } else {
            if display.is_some() {
                return Err(bad());
            }
            // addr-spec form: the URI cannot carry ';', '?' or ',' (RFC 3261 §20, last paragraph of §20.10).
            let end = rest.find(';').unwrap_or(rest.len());
            let (uri, params) = rest.split_at(end);
            let uri = uri.trim();
            if uri.is_empty() || uri.bytes().any(|b| b <= b' ' || b == b'?' || b == b',') || !uri.contains(':') {
                return Err(bad());
            }
            let params = parse_params(params).ok_or_else(bad)?;
            Ok(NameAddr { display, uri: uri.to_owned(), params })
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        find_param(&self.params, name).map(|p| p.value.as_deref().unwrap_or(""))
    }

    pub fn tag(&self) -> Option<&str> {
        find_param(&self.params, "tag").and_then(|p| p.value.as_deref())
    }

    pub fn to_value(&self) -> String {
        let mut out = String::with_capacity(self.uri.len() + 32);
        if let Some(d) = &self.display {
            out.push('"');
            out.push_str(&d.replace('\\', "\\\\").replace('"', "\\\""));
            out.push_str("\" ");
        }
        out.push('<');
        out.push_str(&self.uri);
        out.push('>');
        write_params(&mut out, &self.params);
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    /// `CSeq = 1*DIGIT LWS Method`; the number must be below 2**31 (RFC 3261 §8.1.1.5).
    pub fn parse(value: &str) -> Result<CSeq, HeaderError> {
        let bad = HeaderError::Malformed("CSeq");
        let mut it = value.split_whitespace();
        let (Some(n), Some(m), None) = (it.next(), it.next(), it.next()) else {
            return Err(bad);
        };
        if n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) || !m.bytes().all(is_token_byte) {
            return Err(bad);
        }
        let seq: u32 = n.parse().map_err(|_| bad.clone())?;
        if seq >= 1 << 31 {
            return Err(bad);
        }
        Ok(CSeq { seq, method: Method::from_token(m) })
    }
}

/// The Contact header of a REGISTER: either `*` or a list of addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    Wildcard,
    List(Vec<NameAddr>),
}

/// Reads every Contact (all header lines, all list elements). `*` must stand alone (RFC 3261 §10.3 step 6).
pub fn contacts(headers: &Headers) -> Result<Contacts, HeaderError> {
    let mut list = Vec::new();
    let mut wildcard = false;
    for item in headers.get_list(&HeaderName::Contact) {
        if item == "*" {
            wildcard = true;
        } else {
            list.push(NameAddr::parse(item, "Contact")?);
        }
    }
    match (wildcard, list.is_empty()) {
        (true, true) => Ok(Contacts::Wildcard),
        (true, false) => Err(HeaderError::Malformed("Contact")),
        (false, _) => Ok(Contacts::List(list)),
    }
}

/// Parses a delta-seconds value (Expires, Min-Expires, `expires=`); values beyond u32 saturate, as RFC 3261
/// §20.19 allows ("an unreasonably large value is treated as the maximum").
pub fn parse_delta_seconds(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse::<u32>().unwrap_or(u32::MAX))
}

/// Every Via in order (top first), parsed.
pub fn vias(headers: &Headers) -> Result<Vec<Via>, HeaderError> {
    headers.get_list(&HeaderName::Via).map(Via::parse).collect()
}

pub fn top_via(headers: &Headers) -> Result<Via, HeaderError> {
    let v = headers.get_list(&HeaderName::Via).next().ok_or(HeaderError::Missing("Via"))?;
    Via::parse(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_everywhere() {
        let v = Via::parse("SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "192.0.2.2");
        assert_eq!(v.branch(), Some("390skdjuw"));
        let v = Via::parse("SIP/2.0/UDP [2001:db8::10]:5070;rport;branch=z9hG4bK1").unwrap();
        assert_eq!(v.host, "[2001:db8::10]");
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport(), Some(None));
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse("SIP/2.0/UDP [2001:db8::10::1];branch=z9hG4bK1").is_err());
        assert!(Via::parse("SIP/2.0/UDP [1.2.3.4];branch=z9hG4bK1").is_err());
    }

    #[test]
    fn ipv6_references_and_the_rfc_3261_abnf_bug() {
        let want: IpAddr = "2001:db8::c000:201".parse().unwrap();
        assert_eq!(host_ip("[2001:db8::192.0.2.1]"), Some(want));
        assert_eq!(host_ip("[2001:db8:::192.0.2.1]"), Some(want));
        assert_eq!(host_ip("2001:db8::9:255"), "2001:db8::9:255".parse().ok());
        assert_eq!(host_ip("192.0.2.1"), "192.0.2.1".parse().ok());
        assert_eq!(host_ip("[192.0.2.1]"), None);
        assert_eq!(host_ip("[2001:db8:::10]"), None);
        assert_eq!(host_ip("[::::192.0.2.1]"), None);
        assert_eq!(host_ip("example.com"), None);
    }

    #[test]
    fn name_addr_forms() {
        let n =
            NameAddr::parse(r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8"#, "From").unwrap();
        assert_eq!(n.display.as_deref(), Some("J Rosenberg \\\""));
        assert_eq!(n.tag(), Some("98asjd8"));
        let n = NameAddr::parse("sip:user@example.com;tag=1;expires=30", "To").unwrap();
        assert_eq!(n.uri, "sip:user@example.com");
        assert_eq!(n.param("expires"), Some("30"));
        assert!(NameAddr::parse("\"Mr. J. User <sip:j.user@example.com>", "To").is_err());
        assert!(NameAddr::parse("< sip:t.watson@example.org >", "To").is_err());
        assert!(NameAddr::parse("Bell, Alexander <sip:a@b>", "From").is_err());
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:x%3E", "Contact").is_err());
    }

    #[test]
    fn cseq_bounds() {
        assert_eq!(CSeq::parse("0009\r\n  INVITE".replace("\r\n", "").as_str()).unwrap().seq, 9);
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse("2147483648 REGISTER").is_err());
        assert!(CSeq::parse("1").is_err());
    }

    #[test]
    fn delta_seconds_saturate() {
        assert_eq!(parse_delta_seconds("3600"), Some(3600));
        assert_eq!(parse_delta_seconds("100000000000000000000"), Some(u32::MAX));
        assert_eq!(parse_delta_seconds("-1"), None);
    }
}

/// Marks the top Via of a received request with where it really came from (RFC 3261 §18.2.1, RFC 3581 §4):
/// `received` when the sent-by host is not the source address, and `rport` filled in when the client asked for
/// it. A top Via line holding several comma-separated values is split so that only the first is changed.
pub fn stamp_received(headers: &mut Headers, ip: std::net::IpAddr, port: u16) -> Result<(), HeaderError> {
    let first = headers.get(&HeaderName::Via).ok_or(HeaderError::Missing("Via"))?.to_owned();
    let mut items = crate::message::split_list(&first);
    let top = items.next().ok_or(HeaderError::Missing("Via"))?;
    let rest: Vec<&str> = items.collect();
    let mut via = Via::parse(top)?;
    let wants_rport = via.rport().is_some();
    // RFC 3581 §4: with rport, received is added even when it equals the sent-by host.
    if wants_rport || host_ip(&via.host) != Some(ip) {
        via.set_param("received", Some(ip.to_string()));
    }
    if wants_rport {
        via.set_param("rport", Some(port.to_string()));
    }
    headers.replace_first(&HeaderName::Via, via.to_value(), rest.iter().map(|s| s.to_string()));
    Ok(())
}

/// Where a response goes over an unreliable transport (RFC 3261 §18.2.2, RFC 3581 §4): the `received` address
/// (or the sent-by host if it is an IP) and the `rport` port, else the sent-by port, else 5060.
pub fn response_target(via: &Via) -> Option<std::net::SocketAddr> {
    let host = match via.param("received").and_then(|p| p.value.as_deref()) {
        Some(r) => r,
        None => via.host.as_str(),
    };
    let ip = host_ip(host)?;
    let port = via.rport().flatten().or(via.port).unwrap_or(5060);
    Some(std::net::SocketAddr::new(ip, port))
}

#[cfg(test)]
mod stamp_tests {
    use super::*;

    #[test]
    fn stamps_received_and_rport_on_top_via_only() {
        let mut h = Headers::new();
        h.push(HeaderName::Via, "SIP/2.0/UDP 10.0.0.9:5062;rport;branch=z9hG4bK1, SIP/2.0/UDP p;branch=z9hG4bK0");
        stamp_received(&mut h, "192.0.2.7".parse().unwrap(), 40000).unwrap();
        let vias = vias(&h).unwrap();
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[0].to_value(), "SIP/2.0/UDP 10.0.0.9:5062;rport=40000;branch=z9hG4bK1;received=192.0.2.7");
        assert_eq!(response_target(&vias[0]), Some("192.0.2.7:40000".parse().unwrap()));
        let mut h = Headers::new();
        h.push(HeaderName::Via, "SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK1");
        stamp_received(&mut h, "192.0.2.7".parse().unwrap(), 40000).unwrap();
        let v = top_via(&h).unwrap();
        assert!(v.param("received").is_none());
        assert_eq!(response_target(&v), Some("192.0.2.7:5070".parse().unwrap()));
    }
}
