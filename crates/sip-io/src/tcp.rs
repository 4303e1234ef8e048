//! Stream connections: accept, read with the framer, write from a bounded queue, close when idle.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use switchboard_sip_core::{Frame, StreamFramer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::{Flow, FlowId, Peer, Proto, Transport};

/// Messages queued for one connection before further ones are dropped.
const WRITE_QUEUE: usize = 256;

/// The next connection on `listener`; `None` once the transport shuts down. An accept error (out of file
/// descriptors, say) is logged and waited out briefly rather than spun on.
pub(crate) async fn accept(t: &Transport, listener: &TcpListener, what: &str) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            _ = t.shutdown.cancelled() => return None,
            r = listener.accept() => match r {
                Ok(x) => return Some(x),
                Err(e) => {
                    tracing::warn!(error = %e, what, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}

pub(crate) async fn accept_loop(t: Arc<Transport>, listener: TcpListener) {
    while let Some((stream, addr)) = accept(&t, &listener, "tcp").await {
        if t.flows.len() >= t.config.max_connections {
            tracing::warn!(%addr, "connection limit reached; refusing");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let (id, rx) = register_flow(&t, addr);
        t.tracker.spawn(run_flow(t.clone(), stream, addr, id, rx, Proto::Tcp));
    }
}

pub(crate) fn register_flow(t: &Arc<Transport>, addr: SocketAddr) -> (FlowId, mpsc::Receiver<Vec<u8>>) {
    let id = t.next_flow.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    t.flows.insert(id, Flow { tx });
    t.flow_by_addr.insert(addr, id);
    (id, rx)
}

/// Opens a connection to `addr` for a request or response whose flow is gone, and sends `first` on it.
pub(crate) fn connect_and_send(t: Arc<Transport>, addr: SocketAddr, first: Vec<u8>) {
    let tracker = t.tracker.clone();
    tracker.spawn(async move {
        let connect = tokio::time::timeout(std::time::Duration::from_secs(5), TcpStream::connect(addr)).await;
        let stream = match connect {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return tracing::debug!(%addr, error = %e, "tcp connect failed"),
            Err(_) => return tracing::debug!(%addr, "tcp connect timed out"),
        };
        let _ = stream.set_nodelay(true);
        let (id, rx) = register_flow(&t, addr);
        if let Some(f) = t.flows.get(&id) {
            let _ = f.tx.try_send(first);
        }
        run_flow(t, stream, addr, id, rx, Proto::Tcp).await;
    });
}

/// Reads and writes one stream connection (TCP, or TLS once its handshake is done) until it closes or idles out.
pub(crate) async fn run_flow<S>(
    t: Arc<Transport>,
    stream: S,
    addr: SocketAddr,
    id: FlowId,
    mut rx: mpsc::Receiver<Vec<u8>>,
    proto: Proto,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut framer = StreamFramer::new(t.config.limits);
    let mut buf = vec![0u8; 16 * 1024];
    let peer = Peer { addr, proto, flow: Some(id) };
    let idle = t.config.tcp_idle;
    let mut draining = false;
    loop {
        let deadline = tokio::time::sleep(idle);
        tokio::select! {
            _ = t.shutdown.cancelled() => break,
            _ = deadline => {
                tracing::debug!(%addr, proto = proto.as_str(), "stream flow idle; closing");
                break;
            }
            out = rx.recv() => match out {
                Some(bytes) => if let Err(e) = wr.write_all(&bytes).await {
                    tracing::debug!(%addr, error = %e, "stream write failed");
                    break;
                },
                None => break,
            },
            r = rd.read(&mut buf) => {
                let n = match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                framer.push(buf.get(..n).unwrap_or_default());
                let mut fatal = false;
                while let Some(frame) = framer.next_frame() {
                    match frame {
                        Ok(Frame::Ping) => {
                            // RFC 5626 §3.5.1: answer a CRLFCRLF ping with a CRLF pong.
                            if wr.write_all(b"\r\n").await.is_err() {
                                fatal = true;
                                break;
                            }
                        }
                        Ok(Frame::Message(msg)) => {
                            if let Some(inbound) = t.deliver(Ok(msg), peer)
                                && t.inbound.send(inbound).await.is_err()
                            {
                                fatal = true;
                                break;
                            }
                        }
                        Err(e) => {
                            // The stream cannot be re-synchronised after a framing error: answer and close.
                            t.deliver(Err(e), peer);
                            draining = true;
                            fatal = true;
                            break;
                        }
                    }
                }
                if fatal {
                    break;
                }
            }
        }
    }
    if draining {
        // Responses to requests handed up before the bad one may still be on their way from the core: keep
        // writing them for a moment before closing.
        let grace = tokio::time::sleep(std::time::Duration::from_secs(2));
        tokio::pin!(grace);
        loop {
            tokio::select! {
                _ = &mut grace => break,
                out = rx.recv() => match out {
                    Some(bytes) if wr.write_all(&bytes).await.is_ok() => {}
                    _ => break,
                },
            }
        }
    }
    t.drop_flow(id, addr);
    let _ = wr.shutdown().await;
}
