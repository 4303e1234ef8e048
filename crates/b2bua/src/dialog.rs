//! One side of a call as a dialog (RFC 3261 §12): the identifiers and route that in-dialog requests carry.

use switchboard_sip_core::header::NameAddr;
use switchboard_sip_core::{HeaderName, Headers, Message, Method};

use crate::Hop;

#[derive(Debug, Clone)]
pub(crate) struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    /// Our From (B legs) or To (the A leg) header value, with our tag.
    pub local: String,
    /// The peer's header value, with its tag once known.
    pub remote: String,
    /// The peer's Contact URI: the Request-URI of in-dialog requests.
    pub remote_target: String,
    /// Route headers for in-dialog requests, in sending order.
    pub route: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: u32,
}

impl Dialog {
    /// A request inside this dialog, sent on `hop` with `branch`. Takes the next local CSeq.
    pub fn request<H: Hop>(&mut self, method: Method, hop: &H, branch: &str) -> Message {
        self.local_cseq = self.local_cseq.wrapping_add(1);
        let cseq = self.local_cseq;
        self.request_with_cseq(method, hop, branch, cseq)
    }

    /// The ACK for a 2xx to the INVITE with CSeq `cseq` (§13.2.2.4): same CSeq number, its own branch.
    pub fn ack<H: Hop>(&self, hop: &H, branch: &str, cseq: u32) -> Message {
        self.request_with_cseq(Method::Ack, hop, branch, cseq)
    }

    fn request_with_cseq<H: Hop>(&self, method: Method, hop: &H, branch: &str, cseq: u32) -> Message {
        let with_contact = matches!(method, Method::Invite | Method::Update);
        let mut m = Message::request(method.clone(), self.remote_target.clone());
        let h = &mut m.headers;
        h.push(HeaderName::Via, hop.via(branch));
        h.push(HeaderName::MaxForwards, "70");
        for r in &self.route {
            h.push(HeaderName::Route, r.clone());
        }
        h.push(HeaderName::From, self.local.clone());
        h.push(HeaderName::To, self.remote.clone());
        h.push(HeaderName::CallId, self.call_id.clone());
        h.push(HeaderName::CSeq, format!("{cseq} {method}"));
        if with_contact {
            h.push(HeaderName::Contact, format!("<{}>", hop.contact()));
        }
        m
    }
}

/// The URI of the first Contact, if it parses.
pub(crate) fn contact_uri(h: &Headers) -> Option<String> {
    let v = h.get_list(&HeaderName::Contact).next()?;
    NameAddr::parse(v, "Contact").ok().map(|n| n.uri)
}

/// The Record-Route values, each element on its own, in received order.
pub(crate) fn record_route(h: &Headers) -> Vec<String> {
    h.get_list(&HeaderName::RecordRoute).map(str::to_owned).collect()
}

/// The tag of a From or To header value.
pub(crate) fn tag_of(value: &str, header: &'static str) -> Option<String> {
    NameAddr::parse(value, header).ok().and_then(|n| n.tag().map(str::to_owned))
}
