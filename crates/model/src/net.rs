//! IP networks in CIDR notation (RFC 4632; IPv6 prefixes as RFC 4291 §2.3 writes them).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A network: an address and a prefix length. A bare address is a network of one (/32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// The network address, with the host bits cleared.
    addr: IpAddr,
    prefix: u8,
}

/// Why a network did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpNetError(pub String);

impl fmt::Display for IpNetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IpNetError {}

impl IpNet {
    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) matches as the IPv4
    /// address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => mask32(u32::from(a), self.prefix) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(a)) => mask128(u128::from(a), self.prefix) == u128::from(net),
            _ => false,
        }
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

fn mask32(v: u32, prefix: u8) -> u32 {
    v & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(v: u128, prefix: u8) -> u128 {
    v & u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for IpNet {
    type Err = IpNetError;

    /// `a.b.c.d/n`, `v6/n`, or a bare address. Host bits set under the prefix are refused (`10.0.0.1/8` is a
    /// typo for either `10.0.0.1` or `10.0.0.0/8`, and guessing could trust far more than meant).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr =
            addr.parse().map_err(|_| IpNetError(format!("{s:?} is not an IP address or network (a.b.c.d/n)")))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && !p.starts_with('+') => n,
                _ => return Err(IpNetError(format!("{s:?}: the prefix length must be 0 to {max}"))),
            },
        };
        let masked = match addr {
            IpAddr::V4(a) => IpAddr::V4(mask32(u32::from(a), prefix).into()),
            IpAddr::V6(a) => IpAddr::V6(mask128(u128::from(a), prefix).into()),
        };
        if masked != addr {
            return Err(IpNetError(format!("{s:?} has host bits set: did you mean {masked}/{prefix}?")));
        }
        Ok(IpNet { addr, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max { write!(f, "{}", self.addr) } else { write!(f, "{}/{}", self.addr, self.prefix) }
    }
}

/// A comma-separated list of networks (as stored and as typed); empty items are refused.
pub fn parse_networks(list: &str) -> Result<Vec<IpNet>, IpNetError> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    list.split(',').map(str::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn containment() {
        let office: IpNet = "203.0.113.0/24".parse().unwrap();
        assert!(office.contains(ip("203.0.113.0")) && office.contains(ip("203.0.113.255")));
        assert!(!office.contains(ip("203.0.114.1")) && !office.contains(ip("2001:db8::1")));
        assert!(office.contains(ip("::ffff:203.0.113.7")), "IPv4-mapped");
        let one: IpNet = "198.51.100.7".parse().unwrap();
        assert!(one.contains(ip("198.51.100.7")) && !one.contains(ip("198.51.100.8")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("192.0.2.1")));
        let v6: IpNet = "2001:db8:1::/48".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1:ffff::1")) && !v6.contains(ip("2001:db8:2::1")));
        assert!("::/0".parse::<IpNet>().unwrap().contains(ip("2001:db8::1")));
    }

    #[test]
    fn spelling() {
        assert_eq!("203.0.113.0/24".parse::<IpNet>().unwrap().to_string(), "203.0.113.0/24");
        assert_eq!(" 198.51.100.7/32 ".parse::<IpNet>().unwrap().to_string(), "198.51.100.7");
        assert_eq!("2001:db8::/32".parse::<IpNet>().unwrap().to_string(), "2001:db8::/32");
        let list = parse_networks("203.0.113.0/24, 198.51.100.7").unwrap();
        assert_eq!(list.len(), 2);
        assert!(parse_networks("").unwrap().is_empty());
    }

    #[test]
    fn bad_networks_say_why() {
        for bad in ["", "example.com", "10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8", "::1/129", "1.2.3.4/"]
        {
            let e = bad.parse::<IpNet>().unwrap_err();
            assert!(!e.0.is_empty(), "{bad:?}");
        }
        assert!("10.0.0.1/8".parse::<IpNet>().unwrap_err().0.contains("10.0.0.0/8"));
        assert!(parse_networks("10.0.0.0/8,,").is_err());
    }
}
