//! Where a message came from or goes to, as the sans-IO layers name it: the transport, the peer's address and,
//! over a stream, the connection. The sockets themselves live in `sip-io`.

use std::net::SocketAddr;

/// Which transport a message came or goes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Udp,
    Tcp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        }
    }
    pub fn is_reliable(self) -> bool {
        matches!(self, Proto::Tcp)
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
