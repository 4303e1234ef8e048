//! One call's media, as both voicemail services use it: an RTP socket, the stream we send (prompts or silence,
//! every 20 ms), and what arrives: the caller's audio decoded, keys from RFC 4733 events, and the SIP task's
//! signals (INFO keys, new media, the caller gone, shutdown), merged into one stream of [`Input`]s.

use std::net::SocketAddr;
use std::time::Duration;

use switchboard_media_core::dtmf::Detector;
use switchboard_media_core::endpoint::Media;
use switchboard_media_core::g711::Law;
use switchboard_media_core::player::FRAME;
use switchboard_media_core::rtp;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::service::{Signal, random_u64};

/// What happened next on a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// 20 ms have passed: send a frame.
    Tick,
    Key(char),
    /// Audio arrived: [`Session::samples`].
    Audio,
    /// The caller hung up (or the call failed).
    Gone,
    Shutdown,
}

#[derive(Debug)]
pub(crate) struct Session {
    sock: UdpSocket,
    media: Media,
    out: RtpOut,
    detector: Detector,
    ticks: Interval,
    /// Where the caller's packets come from: used when its SDP named no address.
    last_source: Option<SocketAddr>,
    buf: Box<[u8; 2048]>,
    samples: Vec<i16>,
}

impl Session {
    pub(crate) fn new(sock: UdpSocket, media: Media) -> Session {
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Session {
            sock,
            media,
            out: RtpOut::new(),
            detector: Detector::new(),
            ticks,
            last_source: None,
            buf: Box::new([0; 2048]),
            samples: Vec::with_capacity(FRAME),
        }
    }

    /// The audio of the last [`Input::Audio`].
    pub(crate) fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Sends one frame: `audio`, or silence.
    pub(crate) async fn send(&mut self, audio: Option<&[i16; FRAME]>) {
        let to = self.media.remote.or(self.last_source);
        if let (Some(to), false) = (to, self.media.hold) {
            let packet = self.out.packet(self.media.law, audio);
            let _ = self.sock.send_to(&packet, to).await;
        }
    }

    /// Waits for what happens next.
    pub(crate) async fn next(
        &mut self,
        signals: &mut mpsc::UnboundedReceiver<Signal>,
        shutdown: &CancellationToken,
    ) -> Input {
        loop {
            tokio::select! {
                _ = self.ticks.tick() => return Input::Tick,
                r = self.sock.recv_from(&mut self.buf[..]) => {
                    let Ok((n, from)) = r else { continue };
                    if let Some(input) = self.on_packet(n, from) {
                        return input;
                    }
                }
                s = signals.recv() => match s {
                    Some(Signal::Media(m)) => self.media = m,
                    Some(Signal::Key(key)) => return Input::Key(key),
                    Some(Signal::Gone(gone)) => {
                        tracing::debug!(?gone, "voicemail: the caller has gone");
                        return Input::Gone;
                    }
                    None => return Input::Gone,
                },
                () = shutdown.cancelled() => return Input::Shutdown,
            }
        }
    }

    fn on_packet(&mut self, n: usize, from: SocketAddr) -> Option<Input> {
        let Ok((h, payload)) = rtp::read(self.buf.get(..n).unwrap_or_default()) else { return None };
        self.last_source = Some(from);
        if Some(h.payload_type) == self.media.telephone_event {
            return self.detector.on_packet(h.marker, h.timestamp, payload).map(Input::Key);
        }
        if h.payload_type != self.media.law.payload_type() {
            return None;
        }
        let law = self.media.law;
        self.samples.clear();
        self.samples.extend(payload.iter().map(|&c| law.decode(c)));
        Some(Input::Audio)
    }
}

/// The RTP stream we send: one SSRC, sequence and timestamp running on, the marker on the first packet.
#[derive(Debug)]
struct RtpOut {
    header: rtp::Header,
    payload: Vec<u8>,
}

impl RtpOut {
    fn new() -> RtpOut {
        let r = random_u64();
        let header = rtp::Header {
            payload_type: 0,
            marker: true,
            seq: r as u16,
            timestamp: (r >> 16) as u32,
            ssrc: (r >> 32) as u32,
        };
        RtpOut { header, payload: Vec::with_capacity(FRAME) }
    }

    /// The next packet: `audio`, or silence.
    fn packet(&mut self, law: Law, audio: Option<&[i16; FRAME]>) -> Vec<u8> {
        self.payload.clear();
        match audio {
            Some(frame) => self.payload.extend(frame.iter().map(|&s| law.encode(s))),
            None => self.payload.resize(FRAME, law.silence()),
        }
        self.header.payload_type = law.payload_type();
        let p = rtp::build(&self.header, &self.payload);
        self.header.marker = false;
        self.header.seq = self.header.seq.wrapping_add(1);
        self.header.timestamp = self.header.timestamp.wrapping_add(FRAME as u32);
        p
    }
}
