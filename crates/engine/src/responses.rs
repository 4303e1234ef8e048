//! Where the responses to a request go (RFC 3261 §18.2.2, RFC 3581): a decision on the request and its source
//! alone, so it lives here and is tested row by row.

use std::net::SocketAddr;

use switchboard_sip_core::Message;
use switchboard_sip_core::header::{response_target, top_via};
use switchboard_sip_core::transport::Peer;

/// The peer the responses to `msg` (received from `source`) are sent to:
/// - over a stream, back on the flow the request came on; should that close first, to the source's address at
///   the Via's sent-by port (the client's listening port, not its ephemeral one);
/// - over UDP, to the Via's `received`/`rport` target (the transport stamped both) when that is the source's
///   own IP; a Via naming another host is never believed, so we cannot be turned into a reflector.
pub fn response_peer(msg: &Message, source: Peer) -> Peer {
    let via = top_via(&msg.headers).ok();
    if source.proto.is_reliable() {
        let port = via.as_ref().and_then(|v| v.port).unwrap_or(5060);
        return Peer { addr: SocketAddr::new(source.addr.ip(), port), ..source };
    }
    match via.as_ref().and_then(response_target) {
        Some(t) if t.ip() == source.addr.ip() => Peer { addr: t, ..source },
        _ => source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sip_core::transport::Proto;

    fn request(via: &str) -> Message {
        let text = format!(
            "OPTIONS sip:x SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:x>\r\nCall-ID: c\r\n\
             CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        switchboard_sip_core::parse_datagram(text.as_bytes(), &Default::default()).unwrap()
    }

    fn udp(addr: &str) -> Peer {
        Peer { addr: addr.parse().unwrap(), proto: Proto::Udp, flow: None }
    }

    #[test]
    fn rows_of_rfc_3261_18_2_2_and_rfc_3581() {
        // (top Via as stamped by the transport, source, where the response goes)
        let rows = [
            // rport: back to the source port the NAT chose.
            (
                "SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bK1;received=192.0.2.7;rport=40000",
                "192.0.2.7:40000",
                "192.0.2.7:40000",
            ),
            // No rport asked (an RFC 3261 client): the received address at the sent-by port.
            ("SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bK1;received=192.0.2.7", "192.0.2.7:40000", "192.0.2.7:5062"),
            // Sent-by is the source's own address: that port.
            ("SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK1", "192.0.2.7:40000", "192.0.2.7:5070"),
            // A Via pointing at someone else: back to the source, never there.
            ("SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK1", "192.0.2.7:40000", "192.0.2.7:40000"),
            (
                "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK1;received=198.51.100.1;rport=9",
                "192.0.2.7:40000",
                "192.0.2.7:40000",
            ),
        ];
        for (via, source, expected) in rows {
            let got = response_peer(&request(via), udp(source));
            assert_eq!(got.addr, expected.parse::<SocketAddr>().unwrap(), "{via}");
            assert_eq!(got.proto, Proto::Udp);
        }
    }

    #[test]
    fn streams_answer_on_their_flow_with_the_sent_by_port_as_fallback() {
        let source = Peer { addr: "192.0.2.7:51234".parse().unwrap(), proto: Proto::Tcp, flow: Some(42) };
        let got = response_peer(&request("SIP/2.0/TCP 10.0.0.9:5070;branch=z9hG4bK1"), source);
        assert_eq!(got.flow, Some(42));
        assert_eq!(got.addr, "192.0.2.7:5070".parse::<SocketAddr>().unwrap());
        let got = response_peer(&request("SIP/2.0/TCP 10.0.0.9;branch=z9hG4bK1"), source);
        assert_eq!(got.addr.port(), 5060, "no sent-by port: the default");
    }
}
