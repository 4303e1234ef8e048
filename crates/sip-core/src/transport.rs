//! Where a message came from or goes to, as the sans-IO layers name it: the transport, the peer's address and,
//! over a stream, the connection. The sockets themselves live in `sip-io`.

use std::net::SocketAddr;

/// Which transport a message came or goes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Udp,
    Tcp,
    /// SIP over TLS (RFC 3261 §26.2, RFC 5630).
    Tls,
    /// SIP over secure WebSocket (RFC 7118).
    Wss,
}

impl Proto {
    /// As stored with a binding, and as a URI's `transport` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Tls => "tls",
            Proto::Wss => "wss",
        }
    }

    /// The transport a binding was stored with; anything unknown is UDP.
    pub fn parse(s: &str) -> Proto {
        match s {
            "tcp" => Proto::Tcp,
            "tls" => Proto::Tls,
            "wss" => Proto::Wss,
            _ => Proto::Udp,
        }
    }

    /// Its name in a Via header.
    pub fn via_name(self) -> &'static str {
        match self {
            Proto::Udp => "UDP",
            Proto::Tcp => "TCP",
            Proto::Tls => "TLS",
            Proto::Wss => "WSS",
        }
    }

    /// A stream with its own connection (no retransmissions, no UDP size limit).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Proto::Udp)
    }

    /// Encrypted to the peer.
    pub fn is_secure(self) -> bool {
        matches!(self, Proto::Tls | Proto::Wss)
    }

    /// A Contact URI of ours at `host_port` for a peer over this transport.
    pub fn contact(self, host_port: &str) -> String {
        match self {
            Proto::Udp => format!("sip:{host_port}"),
            Proto::Tls => format!("sips:{host_port}"),
            // RFC 7118 §5.2: `ws` names both WebSocket transports in a URI; `sips:` says it is secure.
            Proto::Wss => format!("sips:{host_port};transport=ws"),
            Proto::Tcp => format!("sip:{host_port};transport=tcp"),
        }
    }
}

/// Identifies one stream connection for as long as it lives.
pub type FlowId = u64;

/// Where a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    pub addr: SocketAddr,
    pub proto: Proto,
    /// The connection a stream message arrived on; responses and in-flow requests go back over it.
    pub flow: Option<FlowId>,
}
