//! A tiny blocking HTTP/1.1 client for the API tests: one connection per request (`Connection: close`), JSON
//! bodies, a bearer token, and the raw request for tests that send malformed ones.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Http {
    pub addr: SocketAddr,
    pub token: Option<String>,
    /// The address connections come from (`None`: whatever the kernel picks, 127.0.0.1 on loopback).
    pub from: Option<std::net::IpAddr>,
}

/// A response: status, headers (names lower-cased) and body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

impl Http {
    pub fn new(addr: SocketAddr, token: Option<&str>) -> Http {
        Http { addr, token: token.map(str::to_owned), from: None }
    }

    /// The same server, connecting from `ip` (another 127.0.0.0/8 address: another client).
    pub fn from_ip(&self, ip: &str) -> Http {
        Http { from: Some(ip.parse().expect("an IP address")), ..self.clone() }
    }

    /// A form post (`application/x-www-form-urlencoded`) with extra headers (a cookie, Origin, ...).
    pub fn form(&self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Reply {
        let body: String =
            fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
        let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.send("POST", path, &all, body.as_bytes())
    }

    /// A GET with extra headers.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", path, headers, b"")
    }

    /// Any request: `headers` as given (plus Host, Connection and Content-Length), then `body`.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut raw = head.into_bytes();
        raw.extend_from_slice(body);
        self.raw(&raw)
    }

    /// The same server with another token (or none).
    pub fn with_token(&self, token: Option<&str>) -> Http {
        Http::new(self.addr, token)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, None)
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.request("DELETE", path, None)
    }

    pub fn post(&self, path: &str, body: &serde_json::Value) -> Reply {
        self.request("POST", path, Some(body))
    }

    pub fn patch(&self, path: &str, body: &serde_json::Value) -> Reply {
        self.request("PATCH", path, Some(body))
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&serde_json::Value>) -> Reply {
        let body = body.map(|b| b.to_string());
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", self.addr);
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if let Some(b) = &body {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
        }
        head.push_str("\r\n");
        let mut raw = head.into_bytes();
        raw.extend_from_slice(body.unwrap_or_default().as_bytes());
        self.raw(&raw)
    }

    /// Sends `bytes` as they are and reads the whole answer (the server closes after it).
    pub fn raw(&self, bytes: &[u8]) -> Reply {
        let mut s = match self.from {
            None => TcpStream::connect(self.addr).expect("connect to the API"),
            Some(ip) => {
                let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
                sock.bind(&SocketAddr::new(ip, 0).into()).expect("bind the source address");
                sock.connect(&self.addr.into()).expect("connect to the API");
                sock.into()
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        s.write_all(bytes).expect("send request");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).expect("read response");
        parse(&buf).unwrap_or_else(|| panic!("not an HTTP response: {:?}", String::from_utf8_lossy(&buf)))
    }
}

fn parse(buf: &[u8]) -> Option<Reply> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(buf.get(..end)?).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = buf.get(end + 4..)?.to_vec();
    if headers.iter().any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked")) {
        body = unchunk(&body)?;
    }
    Some(Reply { status, headers, body })
}

fn unchunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(data.get(..line_end)?).ok()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(line_end + 2..line_end + 2 + size)?);
        data = data.get(line_end + 4 + size..)?;
    }
}

/// `v` percent-encoded for a form body.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            b' ' => "+".to_owned(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl Reply {
    /// The value a `Set-Cookie` header gives cookie `name`, with the header's attributes.
    pub fn cookie(&self, name: &str) -> Option<(String, String)> {
        self.headers.iter().filter(|(n, _)| n == "set-cookie").find_map(|(_, v)| {
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (n, value) = pair.split_once('=')?;
            (n.trim() == name).then(|| (value.trim().to_owned(), attrs.trim().to_owned()))
        })
    }
}

/// The value of `series` (a metric name with its labels as rendered, `name{a="b"}`) in a Prometheus text page.
pub fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}
