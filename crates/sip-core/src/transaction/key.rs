//! Matching keys: requests to server transactions (RFC 3261 §17.2.3), responses to client transactions (§17.1.3).
//!
//! A key is one string of its parts joined by `\n`, which no unfolded header value holds.

use super::MAGIC_COOKIE;
use crate::header::{CSeq, NameAddr, Via};
use crate::message::{HeaderName, Message, Method};

/// The server-transaction key of `msg` as if its method were `method` (INVITE for an ACK, or for the INVITE a
/// CANCEL cancels). The flag is true for an RFC 2543 request, matched without a branch.
pub(crate) fn server_key(msg: &Message, via: &Via, method: &Method) -> (String, bool) {
    if let Some(branch) = via.branch().filter(|b| b.starts_with(MAGIC_COOKIE)) {
        // §17.2.3: branch, sent-by and method (ACK counting as INVITE).
        return (format!("{branch}\n{}\n{method}", via.sent_by()), false);
    }
    // §17.2.3, RFC 2543 fallback: Request-URI, To tag, From tag, Call-ID, CSeq and top Via. The To tag is left out
    // for INVITE so that the ACK (which carries the tag of our response) finds the INVITE; the layer compares the
    // ACK's To tag with that response's separately.
    let h = &msg.headers;
    let to_tag = match method {
        Method::Invite => None,
        _ => tag(msg, &HeaderName::To),
    };
    let cseq = h.get(&HeaderName::CSeq).unwrap_or_default();
    let seq = CSeq::parse(cseq).map(|c| c.seq.to_string()).unwrap_or_else(|_| cseq.trim().to_owned());
    let key = format!(
        "2543\n{}\n{}\n{}\n{}\n{seq}\n{method}\n{}",
        msg.request_uri().unwrap_or_default(),
        to_tag.unwrap_or_default(),
        tag(msg, &HeaderName::From).unwrap_or_default(),
        msg.call_id().unwrap_or_default(),
        h.get_list(&HeaderName::Via).next().unwrap_or_default(),
    );
    (key, true)
}

/// The client-transaction key: branch and CSeq method (§17.1.3).
pub(crate) fn client_key(branch: &str, method: &Method) -> String {
    format!("{branch}\n{method}")
}

/// The client-transaction key a response names in its top Via and CSeq.
pub(crate) fn response_key(msg: &Message) -> Option<String> {
    let via = crate::header::top_via(&msg.headers).ok()?;
    let cseq = CSeq::parse(msg.header(&HeaderName::CSeq)?).ok()?;
    Some(client_key(via.branch()?, &cseq.method))
}

/// The tag parameter of From or To, if the header parses.
pub(crate) fn tag(msg: &Message, name: &HeaderName) -> Option<String> {
    let label = if *name == HeaderName::To { "To" } else { "From" };
    NameAddr::parse(msg.header(name)?, label).ok()?.tag().map(str::to_owned)
}
