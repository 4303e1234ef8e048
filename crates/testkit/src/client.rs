//! A blocking SIP test client over UDP, TCP or TLS: builds requests, answers digest challenges, and reads responses
//! and requests with a timeout.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use switchboard_sip_core::digest::{Challenge, ClientAuth, ClientSecret, client_response};
use switchboard_sip_core::{HeaderName, Limits, Message, StreamFramer, parse_datagram};

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;
type WsStream = tokio_tungstenite::tungstenite::WebSocket<TlsStream>;

enum Conn {
    Udp(UdpSocket),
    /// TCP or TLS: a byte stream cut into messages by the framer.
    Stream(Box<dyn ByteStream>, StreamFramer),
    Wss(Box<WsStream>),
}

/// A connection carrying SIP as a byte stream.
trait ByteStream: Read + Write + Send {
    /// The transport's name in Via.
    fn transport(&self) -> &'static str;
    fn set_read_timeout(&self, d: Duration) -> std::io::Result<()>;
}

impl ByteStream for TcpStream {
    fn transport(&self) -> &'static str {
        "TCP"
    }
    fn set_read_timeout(&self, d: Duration) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self, Some(d))
    }
}

impl ByteStream for TlsStream {
    fn transport(&self) -> &'static str {
        "TLS"
    }
    fn set_read_timeout(&self, d: Duration) -> std::io::Result<()> {
        self.sock.set_read_timeout(Some(d))
    }
}

/// A TLS connection to `server` trusting only the PEM certificate at `ca`, asking for `server_name`; the
/// handshake is done.
fn tls_stream(server: SocketAddr, ca: &std::path::Path, server_name: &str) -> TlsStream {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("read ca") {
        roots.add(cert.expect("ca pem")).expect("add ca");
    }
    #[allow(deprecated)] // ring, as the daemon
    let mut provider = rustls::crypto::ring::default_provider();
    // As phones do: X25519 first (ring's own order starts with P-384, which it computes slowly).
    provider.kx_groups = vec![
        rustls::crypto::ring::kx_group::X25519,
        rustls::crypto::ring::kx_group::SECP256R1,
        rustls::crypto::ring::kx_group::SECP384R1,
    ];
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(server_name.to_owned()).expect("server name");
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("tls client");
    let sock = TcpStream::connect(server).expect("connect tls");
    let mut stream = rustls::StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).expect("tls handshake");
    }
    stream
}

/// One SIP user agent bound to a local address.
pub struct SipClient {
    conn: Conn,
    server: SocketAddr,
    local: SocketAddr,
    pub call_id: String,
    pub cseq: u32,
    pub from_tag: String,
    /// Requests received while waiting for responses (e.g. keepalive OPTIONS).
    pub requests: Vec<Message>,
    /// Answer OPTIONS keepalives with 200 (a live device) or ignore them (a dead one).
    pub answer_options: bool,
    /// The Authorization value sent by the last [`SipClient::request_with_auth`].
    pub last_authorization: Option<String>,
}

impl std::fmt::Debug for SipClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipClient").field("local", &self.local).finish_non_exhaustive()
    }
}

impl SipClient {
    pub fn udp(server: SocketAddr) -> Self {
        Self::udp_from("127.0.0.1", server)
    }

    /// A UDP client bound to `ip` (any 127.x address works on Linux loopback).
    pub fn udp_from(ip: &str, server: SocketAddr) -> Self {
        let sock = UdpSocket::bind(format!("{ip}:0")).expect("bind udp");
        let local = sock.local_addr().expect("local addr");
        Self::new(Conn::Udp(sock), server, local)
    }

    pub fn tcp(server: SocketAddr) -> Self {
        let s = TcpStream::connect(server).expect("connect tcp");
        let local = s.local_addr().expect("local addr");
        Self::new(Conn::Stream(Box::new(s), StreamFramer::new(Limits::default())), server, local)
    }

    /// A TLS client trusting only the PEM certificate at `ca` (a test's self-signed one), asking for
    /// `server_name` (SNI, and the name the certificate must carry). The handshake completes here.
    pub fn tls(server: SocketAddr, ca: &std::path::Path, server_name: &str) -> Self {
        let stream = Box::new(tls_stream(server, ca, server_name));
        let local = stream.sock.local_addr().expect("local addr");
        Self::new(Conn::Stream(stream, StreamFramer::new(Limits::default())), server, local)
    }

    /// A secure WebSocket client (RFC 7118) asking for `protocol` (`Some("sip")`, as a SIP client must), over
    /// TLS as [`SipClient::tls`]. `Err`: the upgrade was refused, with the HTTP status.
    pub fn wss(
        server: SocketAddr,
        ca: &std::path::Path,
        server_name: &str,
        protocol: Option<&str>,
    ) -> Result<Self, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let stream = tls_stream(server, ca, server_name);
        let local = stream.sock.local_addr().expect("local addr");
        let mut request = format!("wss://{server_name}:{}/", server.port()).into_client_request().expect("request");
        if let Some(p) = protocol {
            request.headers_mut().insert("sec-websocket-protocol", p.parse().expect("header"));
        }
        match tokio_tungstenite::tungstenite::client::client(request, stream) {
            Ok((ws, response)) => {
                let echoed = response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
                assert_eq!(echoed, Some("sip"), "RFC 7118: the server echoes the sip subprotocol");
                Ok(Self::new(Conn::Wss(Box::new(ws)), server, local))
            }
            Err(tokio_tungstenite::tungstenite::handshake::HandshakeError::Failure(
                tokio_tungstenite::tungstenite::Error::Http(r),
            )) => Err(r.status().as_u16()),
            Err(e) => panic!("websocket handshake: {e}"),
        }
    }

    fn new(conn: Conn, server: SocketAddr, local: SocketAddr) -> Self {
        SipClient {
            conn,
            server,
            local,
            call_id: format!("{}@test", crate::token()),
            cseq: 0,
            from_tag: crate::token(),
            requests: Vec::new(),
            answer_options: true,
            last_authorization: None,
        }
    }

    pub fn local(&self) -> SocketAddr {
        self.local
    }

    fn transport(&self) -> &'static str {
        match &self.conn {
            Conn::Udp(_) => "UDP",
            Conn::Stream(s, _) => s.transport(),
            Conn::Wss(..) => "WSS",
        }
    }

    /// The default Contact URI for this client.
    pub fn contact(&self, user: &str) -> String {
        match self.transport() {
            "TLS" => format!("sip:{user}@{};transport=tls", self.local),
            "WSS" => format!("sip:{user}@{};transport=ws", self.local),
            _ => format!("sip:{user}@{}", self.local),
        }
    }

    /// A REGISTER for `user` with the given extra header lines (`Name: value`), next CSeq, same Call-ID.
    pub fn register(&mut self, user: &str, extra: &[&str]) -> Message {
        self.cseq += 1;
        let mut text = format!(
            "REGISTER sip:{server} SIP/2.0\r\nVia: SIP/2.0/{t} {local};branch=z9hG4bK{b};rport\r\n\
             From: <sip:{user}@{server}>;tag={tag}\r\nTo: <sip:{user}@{server}>\r\nCall-ID: {cid}\r\n\
             CSeq: {cseq} REGISTER\r\nMax-Forwards: 70\r\nUser-Agent: switchboard-testkit\r\n",
            server = self.server,
            t = self.transport(),
            local = self.local,
            b = crate::token(),
            tag = self.from_tag,
            cid = self.call_id,
            cseq = self.cseq,
        );
        for e in extra {
            text.push_str(e);
            text.push_str("\r\n");
        }
        text.push_str("Content-Length: 0\r\n\r\n");
        parse_datagram(text.as_bytes(), &Limits::default()).expect("test REGISTER parses")
    }

    pub fn send(&mut self, msg: &Message) {
        self.send_raw(&msg.to_bytes());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        match &mut self.conn {
            Conn::Udp(s) => {
                s.send_to(bytes, self.server).expect("udp send");
            }
            Conn::Stream(s, _) => {
                s.write_all(bytes).expect("stream send");
                s.flush().expect("stream flush");
            }
            Conn::Wss(ws) => {
                let text = String::from_utf8(bytes.to_vec()).expect("SIP as text");
                ws.send(tokio_tungstenite::tungstenite::Message::text(text)).expect("websocket send");
            }
        }
    }

    /// Waits for the next response (answering or recording requests that arrive meanwhile).
    pub fn recv_response(&mut self, timeout: Duration) -> Option<Message> {
        let deadline = Instant::now() + timeout;
        while let Some(m) = self.recv_any(deadline) {
            if m.is_request() {
                self.on_request(m);
            } else {
                return Some(m);
            }
        }
        None
    }

    /// Waits for the next request from the server.
    pub fn recv_request(&mut self, timeout: Duration) -> Option<Message> {
        let deadline = Instant::now() + timeout;
        while let Some(m) = self.recv_any(deadline) {
            if m.is_request() {
                return Some(m);
            }
        }
        None
    }

    /// Keeps the client responsive for `d` (answering keepalives if `answer_options`).
    pub fn idle(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Some(m) = self.recv_any(deadline) {
            if m.is_request() {
                self.on_request(m);
            }
        }
    }

    fn on_request(&mut self, m: Message) {
        if self.answer_options && m.method() == Some(&switchboard_sip_core::Method::Options) {
            let resp = switchboard_sip_core::validate::response_to(&m.headers, 200, "OK", Some("ka"));
            self.send(&resp);
        }
        self.requests.push(m);
    }

    fn recv_any(&mut self, deadline: Instant) -> Option<Message> {
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                return None;
            }
            match &mut self.conn {
                Conn::Udp(s) => {
                    s.set_read_timeout(Some(left)).ok()?;
                    let Ok((n, _)) = s.recv_from(&mut buf) else { return None };
                    if let Ok(m) = parse_datagram(&buf[..n], &Limits::default()) {
                        return Some(m);
                    }
                }
                Conn::Stream(s, framer) => {
                    if let Some(f) = framer.next_frame() {
                        if let Ok(switchboard_sip_core::Frame::Message(m)) = f {
                            return Some(m);
                        }
                        continue;
                    }
                    s.set_read_timeout(left).ok()?;
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return None,
                        Ok(n) => framer.push(&buf[..n]),
                    }
                }
                Conn::Wss(ws) => {
                    ws.get_ref().sock.set_read_timeout(Some(left)).ok()?;
                    match ws.read() {
                        Ok(tokio_tungstenite::tungstenite::Message::Text(t)) => {
                            if let Ok(m) = parse_datagram(t.as_bytes(), &Limits::default()) {
                                return Some(m);
                            }
                        }
                        Ok(_) => {}
                        Err(_) => return None,
                    }
                }
            }
        }
    }

    /// Sends `req`; on a 401 answers the first challenge using `algorithm` (or the first offered if `None`) and
    /// returns the final response. The challenge response is returned instead if no acceptable challenge exists.
    pub fn request_with_auth(&mut self, req: Message, user: &str, password: &str, algorithm: Option<&str>) -> Message {
        self.send(&req);
        let first = self.recv_response(Duration::from_secs(5)).expect("response to first request");
        if first.status() != Some(401) {
            return first;
        }
        let Some(next) = self.authorize(req, &first, user, password, algorithm) else { return first };
        self.send(&next);
        self.recv_response(Duration::from_secs(5)).expect("response to authenticated request")
    }

    /// The request that answers `challenge` (a 401) to `req`: `req` with credentials for the first challenge
    /// using `algorithm` (any if `None`), the next CSeq and a new branch. Not sent. `None` without a usable
    /// challenge.
    pub fn authorize(
        &mut self,
        mut req: Message,
        challenge: &Message,
        user: &str,
        password: &str,
        algorithm: Option<&str>,
    ) -> Option<Message> {
        let challenges: Vec<Challenge> =
            challenge.headers.get_all(&HeaderName::WwwAuthenticate).filter_map(|v| Challenge::parse(v).ok()).collect();
        let ch = challenges.iter().find(|c| algorithm.is_none_or(|a| c.algorithm.as_str().eq_ignore_ascii_case(a)))?;
        let uri = req.request_uri().unwrap_or_default().to_owned();
        let method = req.method().map(|m| m.as_str().to_owned()).unwrap_or_default();
        let cnonce = crate::token();
        let auth = ClientAuth {
            username: user,
            secret: ClientSecret::Password(password),
            method: &method,
            uri: &uri,
            cnonce: cnonce.as_bytes(),
            nc: 1,
        };
        let value = client_response(ch, &auth).expect("client response");
        req.headers.push(HeaderName::Authorization, value.clone());
        self.last_authorization = Some(value);
        self.cseq += 1;
        bump(&mut req, self.cseq);
        Some(req)
    }
}

/// Gives a request the next CSeq and a new branch (it is a new transaction).
fn bump(req: &mut Message, cseq: u32) {
    let method = req.method().map(|m| m.as_str().to_owned()).unwrap_or_default();
    req.headers.set(HeaderName::CSeq, format!("{cseq} {method}"));
    if let Some(via) = req.headers.get(&HeaderName::Via) {
        let mut via = switchboard_sip_core::header::Via::parse(via).expect("our own Via parses");
        via.set_param("branch", Some(format!("z9hG4bK{}", crate::token())));
        req.headers.set(HeaderName::Via, via.to_value());
    }
}

/// A client answering keepalives on its own thread (see [`SipClient::answer_in_background`]).
#[derive(Debug)]
pub struct Answering {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<SipClient>,
}

impl Answering {
    /// Stops answering and hands the client back (with the requests it saw).
    pub fn stop(self) -> SipClient {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().expect("answering thread")
    }
}

impl SipClient {
    /// Keeps answering requests (keepalive OPTIONS) on a background thread, however slow the test thread is.
    pub fn answer_in_background(mut self) -> Answering {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                self.idle(Duration::from_millis(100));
            }
            self
        });
        Answering { stop, handle }
    }
}

/// Contact header values of a response.
pub fn contacts(m: &Message) -> Vec<String> {
    m.headers.get_list(&HeaderName::Contact).map(str::to_owned).collect()
}
