//! Field checks. Each takes the field's name as the caller spells it and returns the value in its stored form
//! (trimmed, normalised: numbers in E.164, addresses with one spelling), or an [`Invalid`] naming the field.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use switchboard_routing::normalise_cli;
use switchboard_storage::{DigestMode, DivertWhen, IpNet, ServiceMode};

use crate::Invalid;

/// Call types a device can have enabled. Emergency calls are never barred and so are not listed.
pub const CALL_TYPES: &[&str] =
    &["local", "national", "mobile", "local-rate", "freephone", "premium", "international", "on-net", "other"];
/// Enabled when none are given: everything but the toll-fraud magnets (international, premium).
pub const DEFAULT_CALL_TYPES: &[&str] = &["local", "national", "mobile", "local-rate", "freephone", "on-net"];

pub fn check_name(field: &str, v: &str) -> Result<String, Invalid> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > 64 || v.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must be 1 to 64 printable characters"));
    }
    Ok(v.to_owned())
}

/// Auth IDs are SIP user names: unreserved characters only, so they never need escaping.
pub fn check_auth_id(field: &str, v: &str) -> Result<String, Invalid> {
    let ok = !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+~".contains(&b));
    if !ok {
        return Err(Invalid::new(field, format!("{v:?} must be 1 to 64 characters of A-Z a-z 0-9 - _ . + ~")));
    }
    Ok(v.to_owned())
}

pub fn check_password(field: &str, v: &str, auth_id: &str) -> Result<String, Invalid> {
    if v.chars().count() < 8 || v.chars().count() > 128 {
        return Err(Invalid::new(field, "must be 8 to 128 characters"));
    }
    if v.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    if v.eq_ignore_ascii_case(auth_id) {
        return Err(Invalid::new(field, "must differ from the auth id"));
    }
    Ok(v.to_owned())
}

/// A phone number as people write it: digits with an optional leading `+`; spaces, dashes, dots and brackets
/// between them are dropped (`02 9876-5432` is stored as `0298765432`).
pub fn check_caller_id(field: &str, v: &str) -> Result<String, Invalid> {
    let trimmed = v.trim();
    let (plus, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", trimmed),
    };
    let digits: String = rest.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
    if digits.len() < 3 || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Invalid::new(field, format!("{v:?} must be a phone number (3 to 16 digits, optional leading +)")));
    }
    Ok(format!("{plus}{digits}"))
}

/// `modern` or `md5`.
pub fn check_digest(field: &str, v: &str) -> Result<DigestMode, Invalid> {
    DigestMode::parse(v).ok_or_else(|| Invalid::new(field, format!("expected modern or md5, got {v:?}")))
}

/// Comma-separated CIDR networks (at most 20), each with its host bits clear.
pub fn check_networks(field: &str, v: &str) -> Result<Vec<IpNet>, Invalid> {
    if v.trim().is_empty() {
        return Err(Invalid::new(field, "give at least one network (a.b.c.d/n), or clear the list"));
    }
    let nets = switchboard_storage::parse_networks(v).map_err(|e| Invalid::new(field, e.to_string()))?;
    if nets.len() > 20 {
        return Err(Invalid::new(field, "at most 20 networks"));
    }
    Ok(nets)
}

/// An IP address with an optional port (5060 if none), stored as `ip:port` or `[v6]:port` so that one address
/// has one spelling (the daemon matches it against packet sources, and it is unique across devices).
pub fn check_trusted_address(field: &str, v: &str) -> Result<String, Invalid> {
    const DEFAULT_PORT: u16 = 5060;
    let parsed = v.parse::<SocketAddr>().ok().or_else(|| {
        // A bare address; IPv6 with or without brackets.
        let ip = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')).unwrap_or(v);
        ip.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
    });
    let Some(mut addr) = parsed else {
        return Err(Invalid::new(
            field,
            format!("{v:?} must be an IP address and an optional port (192.0.2.10:5060, [2001:db8::1]:5060)"),
        ));
    };
    if addr.port() == 0 {
        return Err(Invalid::new(
            field,
            format!("{v:?} has port 0; give a port 1 to 65535 or none for {DEFAULT_PORT}"),
        ));
    }
    // An IPv4 peer seen through a dual-stack socket is still that IPv4 address.
    if let IpAddr::V6(v6) = addr.ip()
        && let Some(v4) = v6.to_ipv4_mapped()
    {
        addr = SocketAddr::new(IpAddr::V4(v4), addr.port());
    }
    let ip = addr.ip();
    if ip.is_unspecified() || ip.is_multicast() || matches!(addr, SocketAddr::V6(a) if a.scope_id() != 0) {
        return Err(Invalid::new(
            field,
            format!("{v:?} cannot be the source of a packet (unspecified, multicast or scoped address)"),
        ));
    }
    Ok(addr.to_string())
}

pub fn check_call_types(field: &str, list: &[String]) -> Result<Vec<String>, Invalid> {
    let mut out: Vec<String> = Vec::new();
    for t in list {
        let t = t.trim().to_ascii_lowercase();
        if t.is_empty() {
            continue;
        }
        if t == "emergency" {
            return Err(Invalid::new(field, "emergency calls are always allowed and cannot be listed"));
        }
        if !CALL_TYPES.contains(&t.as_str()) {
            return Err(Invalid::new(field, format!("unknown call type {t:?} (known: {})", CALL_TYPES.join(", "))));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

pub fn check_number(field: &str, v: &str) -> Result<String, Invalid> {
    normalise_cli(v).ok_or_else(|| {
        Invalid::new(
            field,
            format!("{v:?} is not a phone number we can host (national 0..., or E.164 such as +61298765432)"),
        )
    })
}

pub fn check_divert_when(field: &str, v: &str) -> Result<DivertWhen, Invalid> {
    // The routing crate owns the type and its spellings (`no-answer` and `no_answer`).
    DivertWhen::parse(&v.to_ascii_lowercase()).ok_or_else(|| {
        Invalid::new(field, format!("{v:?} is not a divert rule (use never, no-answer, all or offline)"))
    })
}

/// `voicemail`, or a number to divert to (E.164); never the number itself.
pub fn check_divert_to(field: &str, v: &str, own: &str) -> Result<String, Invalid> {
    if v.trim().eq_ignore_ascii_case("voicemail") {
        return Ok("voicemail".to_owned());
    }
    let e164 =
        normalise_cli(v).ok_or_else(|| Invalid::new(field, format!("{v:?} must be voicemail or a phone number")))?;
    if e164 == own {
        return Err(Invalid::new(field, format!("{v:?} is the number itself; diverting to it would loop")));
    }
    Ok(e164)
}

pub fn check_range(field: &str, v: i64, range: &std::ops::RangeInclusive<i64>) -> Result<i64, Invalid> {
    if !range.contains(&v) {
        return Err(Invalid::new(field, format!("{v} must be between {} and {}", range.start(), range.end())));
    }
    Ok(v)
}

/// A plausible address: `local@domain.tld`, no spaces; deliverability is the mail system's problem.
pub fn check_email(field: &str, v: &str) -> Result<String, Invalid> {
    let label_ok = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let ok = v.len() <= 254
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && v.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && local.len() <= 64 && domain.contains('.') && domain.split('.').all(label_ok)
        });
    if !ok {
        return Err(Invalid::new(field, format!("{v:?} is not an email address")));
    }
    Ok(v.to_owned())
}

/// `host:port`: a DNS name, an IPv4 address or a bracketed IPv6 address, and a port 1 to 65535.
pub fn check_address(field: &str, v: &str) -> Result<String, Invalid> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let ok = v.rsplit_once(':').is_some_and(|(host, port)| {
        let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
        let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
            None => host.len() <= 253 && host.split('.').all(label_ok),
        };
        port_ok && host_ok
    });
    if !ok {
        return Err(Invalid::new(
            field,
            format!("{v:?} must be HOST:PORT (a host name, IPv4 or [IPv6] address, and a port 1 to 65535)"),
        ));
    }
    Ok(v.to_ascii_lowercase())
}

/// `direct` or `trunk`.
pub fn check_mode(field: &str, v: &str) -> Result<ServiceMode, Invalid> {
    ServiceMode::parse(&v.to_ascii_lowercase())
        .ok_or_else(|| Invalid::new(field, format!("{v:?} is not a mode (use direct or trunk)")))
}

pub fn check_transport(field: &str, v: &str) -> Result<String, Invalid> {
    let t = v.to_ascii_lowercase();
    if t != "udp" && t != "tcp" {
        return Err(Invalid::new(field, format!("{v:?} is not a transport (use udp or tcp)")));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_ids_lose_their_separators() {
        assert_eq!(check_caller_id("c", " 02 9876-5432 ").unwrap(), "0298765432");
        assert_eq!(check_caller_id("c", "+61 (2) 9876.5432").unwrap(), "+61298765432");
        assert!(check_caller_id("c", "+ 61").is_err());
        assert!(check_caller_id("c", "12ab").is_err());
        assert!(check_caller_id("c", "0298+765432").is_err());
    }

    #[test]
    fn validation_names_the_field() {
        assert!(check_auth_id("--auth-id", "bad id").unwrap_err().to_string().starts_with("--auth-id"));
        assert!(check_password("--password", "short", "x").unwrap_err().to_string().starts_with("--password"));
        assert!(check_caller_id("--caller-id", "02x").unwrap_err().to_string().starts_with("--caller-id"));
        let e = check_call_types("--call-types", &["local".into(), "galactic".into()]).unwrap_err();
        assert!(e.to_string().contains("galactic"));
        assert_eq!(check_call_types("--call-types", &["Local".into(), "local".into()]).unwrap(), vec!["local"]);
    }

    #[test]
    fn trusted_addresses_get_one_spelling() {
        for (given, stored) in [
            ("192.0.2.10", "192.0.2.10:5060"),
            ("192.0.2.10:5070", "192.0.2.10:5070"),
            ("2001:DB8:0::1", "[2001:db8::1]:5060"),
            ("[2001:db8::1]", "[2001:db8::1]:5060"),
            ("[2001:db8::1]:5080", "[2001:db8::1]:5080"),
            ("::ffff:192.0.2.10", "192.0.2.10:5060"),
            ("[::ffff:192.0.2.10]:5070", "192.0.2.10:5070"),
        ] {
            assert_eq!(check_trusted_address("--trusted-address", given).unwrap(), stored, "{given:?}");
        }
        for bad in [
            "",
            "pbx.example.net",
            "pbx.example.net:5060",
            "192.0.2.10:",
            "192.0.2.10:0",
            "192.0.2.10:65536",
            "192.0.2",
            "[192.0.2.10]:5060",
            "0.0.0.0",
            "[::]:5060",
            "224.0.0.1",
            "[fe80::1%2]:5060",
            " 192.0.2.10",
        ] {
            let e = check_trusted_address("--trusted-address", bad).unwrap_err().to_string();
            assert!(e.starts_with("--trusted-address"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn numbers_normalise_to_e164() {
        assert_eq!(check_number("--number", "02 9876 5432").unwrap(), "+61298765432");
        assert_eq!(check_number("--number", "+61298765432").unwrap(), "+61298765432");
        assert_eq!(check_number("--number", "61298765432").unwrap(), "+61298765432");
        assert!(check_number("--number", "000").unwrap_err().to_string().starts_with("--number"));
        assert!(check_number("--number", "abc").is_err());
    }

    #[test]
    fn divert_rules() {
        assert_eq!(check_divert_when("--divert-when", "no-answer").unwrap(), DivertWhen::NoAnswer);
        assert_eq!(check_divert_when("--divert-when", "no_answer").unwrap(), DivertWhen::NoAnswer);
        assert_eq!(check_divert_when("--divert-when", "Offline").unwrap(), DivertWhen::Offline);
        assert!(check_divert_when("--divert-when", "sometimes").unwrap_err().to_string().starts_with("--divert-when"));
        assert_eq!(check_divert_to("--divert-to", "VoiceMail", "+61298765432").unwrap(), "voicemail");
        assert_eq!(check_divert_to("--divert-to", "0412 345 678", "+61298765432").unwrap(), "+61412345678");
        assert!(
            check_divert_to("--divert-to", "02 9876 5432", "+61298765432").unwrap_err().to_string().contains("loop")
        );
        assert!(check_divert_to("--divert-to", "home", "+61298765432").is_err());
    }

    #[test]
    fn emails_and_addresses() {
        for ok in ["noc@example.net", "first.last+tag@sub.example.com.au"] {
            assert_eq!(check_email("--offline-alert", ok).unwrap(), ok);
        }
        for bad in ["", "noc", "noc@", "@example.net", "noc@localhost", "a b@example.net", "a@b@example.net", "a@x..y"]
        {
            assert!(check_email("--offline-alert", bad).is_err(), "{bad:?}");
        }
        for ok in ["sip.carrier.example:5060", "203.0.113.9:5080", "[2001:db8::1]:5060", "GW1:5060"] {
            assert!(check_address("--address", ok).is_ok(), "{ok:?}");
        }
        for bad in ["carrier", "carrier:", "carrier:0", "carrier:70000", ":5060", "2001:db8::1:5060", "a_b:5060"] {
            assert!(check_address("--address", bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_transport("--transport", "TCP").unwrap(), "tcp");
        assert!(check_transport("--transport", "tls").is_err());
        assert!(check_range("--priority", 1001, &(0..=1000)).is_err());
    }
}
