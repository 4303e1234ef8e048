//! An SMTP sink for email tests: a real SMTP server over TCP (RFC 5321, plain, no extensions beyond 8BITMIME),
//! on its own thread, keeping every message it accepts. It can refuse mail for a while (`451`), to test retries.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent, dot-unstuffed, with CRLF line ends.
    pub data: String,
}

impl Mail {
    /// A header's value (unfolded), by name, any case.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = found.as_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if found.is_some() {
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                found = Some(v.trim().to_owned());
            }
        }
        found
    }

    /// The MIME parts of a multipart message: (their headers, their body), bodies as sent.
    pub fn parts(&self) -> Vec<(String, String)> {
        let Some(ct) = self.header("Content-Type") else { return Vec::new() };
        let Some(boundary) = ct.split(';').find_map(|p| p.trim().strip_prefix("boundary=")) else { return Vec::new() };
        let boundary = format!("--{}", boundary.trim_matches('"'));
        self.data
            .split(&boundary)
            .skip(1)
            .filter(|p| !p.starts_with("--"))
            .filter_map(|p| {
                let (h, b) = p.trim_start_matches("\r\n").split_once("\r\n\r\n")?;
                Some((h.to_owned(), b.trim_end().to_owned()))
            })
            .collect()
    }
}

/// A running sink. Dropping it stops accepting.
#[derive(Debug)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
    refusing: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl SmtpSink {
    /// On 127.0.0.1, a free port.
    pub fn start() -> SmtpSink {
        SmtpSink::start_on(0)
    }

    /// On 127.0.0.1:`port`.
    pub fn start_on(port: u16) -> SmtpSink {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the SMTP sink");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let addr = listener.local_addr().expect("sink address");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let refusing = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, r, s) = (mails.clone(), refusing.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (m, r) = (m.clone(), r.clone());
                        std::thread::spawn(move || {
                            let _ = session(conn, &m, &r);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        SmtpSink { addr, mails, refusing, stop }
    }

    /// Every message accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// While `true`, every RCPT is answered `451` (try again later).
    pub fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::Relaxed);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn session(conn: TcpStream, mails: &Mutex<Vec<Mail>>, refusing: &AtomicBool) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    conn.set_nonblocking(false)?;
    let mut out = conn.try_clone()?;
    let mut lines = BufReader::new(conn);
    out.write_all(b"220 sink.test ESMTP ready\r\n")?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            out.write_all(b"250-sink.test\r\n250-8BITMIME\r\n250 SIZE 52428800\r\n")?;
        } else if upper.starts_with("HELO") {
            out.write_all(b"250 sink.test\r\n")?;
        } else if upper.starts_with("MAIL FROM:") {
            from = cmd[10..].trim().trim_matches(['<', '>']).to_owned();
            to.clear();
            out.write_all(b"250 OK\r\n")?;
        } else if upper.starts_with("RCPT TO:") {
            if refusing.load(Ordering::Relaxed) {
                out.write_all(b"451 4.3.0 Try again later\r\n")?;
            } else {
                to.push(cmd[8..].trim().trim_matches(['<', '>']).to_owned());
                out.write_all(b"250 OK\r\n")?;
            }
        } else if upper == "DATA" {
            out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                let l = line.trim_end_matches(['\r', '\n']);
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(l));
                data.push_str("\r\n");
            }
            mails.lock().unwrap().push(Mail { from: from.clone(), to: to.clone(), data });
            out.write_all(b"250 OK queued\r\n")?;
        } else if upper == "QUIT" {
            out.write_all(b"221 Bye\r\n")?;
            return Ok(());
        } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
            out.write_all(b"250 OK\r\n")?;
        } else {
            out.write_all(b"502 Command not implemented\r\n")?;
        }
    }
}
