//! SIP over secure WebSocket (RFC 7118): after the TLS handshake, the HTTP upgrade, which must ask for the `sip`
//! subprotocol (§4: it is echoed; a client that does not ask gets 400). Then each WebSocket message, text or
//! binary, is one whole SIP message (§5.2): no stream framing, and a message that does not parse is answered and
//! the connection kept. The flow joins the same table as TCP and TLS, with the same idle timeout and limits;
//! WebSocket pings are answered by the library.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use switchboard_sip_core::{Limits, parse_datagram};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::{FlowId, Peer, Proto, Transport};

pub(crate) type WsStream = tokio_tungstenite::WebSocketStream<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>;

/// Whether a `Sec-WebSocket-Protocol` value lists `sip`.
fn offers_sip(value: &str) -> bool {
    value.split(',').any(|p| p.trim().eq_ignore_ascii_case("sip"))
}

/// The WebSocket handshake over an established TLS stream: `sip` must be offered, and is echoed.
pub(crate) async fn upgrade(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    limits: Limits,
) -> Result<WsStream, String> {
    let check = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let offered = req.headers().get_all("sec-websocket-protocol").iter().any(|v| v.to_str().is_ok_and(offers_sip));
        if !offered {
            let mut refusal =
                ErrorResponse::new(Some("SIP over WebSocket needs the sip subprotocol (RFC 7118)".into()));
            *refusal.status_mut() = StatusCode::BAD_REQUEST;
            return Err(refusal);
        }
        resp.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("sip"));
        Ok(resp)
    };
    let config =
        WebSocketConfig::default().max_message_size(Some(limits.max_message)).max_frame_size(Some(limits.max_message));
    tokio_tungstenite::accept_hdr_async_with_config(tls, check, Some(config)).await.map_err(|e| e.to_string())
}

/// Reads and writes one WebSocket flow until it closes or idles out.
pub(crate) async fn run_flow(
    t: Arc<Transport>,
    ws: WsStream,
    addr: SocketAddr,
    id: FlowId,
    mut rx: mpsc::Receiver<Vec<u8>>,
) {
    let (mut sink, mut stream) = ws.split();
    let peer = Peer { addr, proto: Proto::Wss, flow: Some(id) };
    let idle = t.config.tcp_idle;
    loop {
        tokio::select! {
            _ = t.shutdown.cancelled() => break,
            _ = tokio::time::sleep(idle) => {
                tracing::debug!(%addr, "websocket flow idle; closing");
                break;
            }
            out = rx.recv() => {
                let Some(bytes) = out else { break };
                // Text when the message is UTF-8 (every SIP message we write), binary otherwise (§5.2).
                let frame = match String::from_utf8(bytes) {
                    Ok(text) => Message::text(text),
                    Err(e) => Message::Binary(Bytes::from(e.into_bytes())),
                };
                if let Err(e) = sink.send(frame).await {
                    tracing::debug!(%addr, error = %e, "websocket write failed");
                    break;
                }
            }
            r = stream.next() => {
                let data: Bytes = match r {
                    Some(Ok(Message::Text(text))) => Bytes::from(text),
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                };
                if data.iter().all(|&b| b == b'\r' || b == b'\n') {
                    continue; // a keepalive
                }
                if let Some(inbound) = t.deliver(parse_datagram(&data, &t.config.limits), peer)
                    && t.inbound.send(inbound).await.is_err()
                {
                    break;
                }
            }
        }
    }
    t.drop_flow(id, addr);
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::offers_sip;

    #[test]
    fn the_sip_subprotocol_is_found_in_any_position_and_case() {
        assert!(offers_sip("sip"));
        assert!(offers_sip("chat, SIP"));
        assert!(!offers_sip("sips"));
        assert!(!offers_sip(""));
    }
}
