//! The RFC 4475 ("SIP Torture Test Messages") and RFC 5118 ("SIP Torture Test Messages for IPv6") corpus, run
//! through the pipeline a datagram takes in the server: `parse_datagram`, then `check_request` for requests (or
//! `check_response` for responses), then the application.
//!
//! [`CASES`] says, for each of the 61 messages, what the RFC text requires of a receiving UAS/registrar. Where the
//! RFC lets an element either accept or reject (lwsstart, trws, escruri, regbadct, badaspec, baddn, badbranch) we
//! take the stricter choice, and say so in the note. The one exception is baddate: RFC 4475 §3.1.2.12 says an
//! element "shouldn't" reject it unless the Date value matters to its processing, and it never does to ours.
//!
//! `Valid` is the verdict of the parser and the UAS core only: the registrar then answers any method other than
//! REGISTER and OPTIONS with 405 (known methods) or 501 (unknown ones), which is not repeated for every INVITE here.
//! `ValidButApp` is used where the RFC names the refusal the application gives, and for unknown methods (501,
//! RFC 3261 §8.2.1), which no UAS can carry out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)] // a test: failing loudly is its job

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;

use switchboard_sip_core::header::{self, Contacts, NameAddr};
use switchboard_sip_core::uri::{self, Uri, UriError};
use switchboard_sip_core::validate::{Essentials, check_request, check_response};
use switchboard_sip_core::{Frame, HeaderName, Limits, Message, Method, ParseErrorKind, StreamFramer, parse_datagram};

/// What the RFC requires of a receiving UAS/registrar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Well formed: `parse_datagram` succeeds, and `check_request` (requests) or `check_response` (responses)
    /// accepts it.
    Valid,
    /// Well formed, passes `parse_datagram` and `check_request`, but the application must refuse it with this
    /// status for the reason the RFC gives (unknown method, unsupported extension, unknown body type, ...).
    ValidButApp(u16),
    /// A request refused with this status, by `parse_datagram` (its `ParseError::status()`) or `check_request`.
    Reject(u16),
    /// A response that must be silently discarded because it is malformed: `parse_datagram` or `check_response`
    /// fails.
    ResponseDropped,
    /// A well-formed response the UAC core must discard anyway (RFC 3261 §8.1.3.3: more than one Via).
    ResponseDiscarded,
}

use Expect::*;

struct Case {
    /// File name in `tests/torture/` without `.dat`: the message's tag in the RFC.
    tag: &'static str,
    /// `4475 §3.1.1.1` style reference.
    section: &'static str,
    expect: Expect,
    note: &'static str,
}

const fn case(tag: &'static str, section: &'static str, expect: Expect, note: &'static str) -> Case {
    Case { tag, section, expect, note }
}

const CASES: &[Case] = &[
    // RFC 4475 §3.1.1: valid messages.
    case("wsinv", "4475 §3.1.1.1", Valid, "short tortuous INVITE: LWS, folding, compact forms, escaped quotes"),
    case("intmeth", "4475 §3.1.1.2", ValidButApp(501), "wide range of valid characters; the method is unknown"),
    case("esc01", "4475 §3.1.1.3", Valid, "valid use of % escaping in URIs"),
    case("escnull", "4475 §3.1.1.4", Valid, "escaped NULs in URIs: two distinct contacts"),
    case("esc02", "4475 §3.1.1.5", ValidButApp(501), "% that is not an escape: method RE%47IST%45R is not REGISTER"),
    case("lwsdisp", "4475 §3.1.1.6", Valid, "no LWS between display name and <"),
    case("longreq", "4475 §3.1.1.7", Valid, "long values in header fields"),
    case("dblreq", "4475 §3.1.1.8", Valid, "extra trailing octets in a UDP datagram are discarded"),
    case("semiuri", "4475 §3.1.1.9", Valid, "semicolon-separated parameters in the URI user part"),
    case("transports", "4475 §3.1.1.10", Valid, "varied and unknown transport types"),
    case("mpart01", "4475 §3.1.1.11", Valid, "multipart MIME body with binary content"),
    case("unreason", "4475 §3.1.1.12", Valid, "unusual (UTF-8) reason phrase"),
    case("noreason", "4475 §3.1.1.13", Valid, "empty reason phrase"),
    // RFC 4475 §3.1.2: invalid messages.
    case("badinv01", "4475 §3.1.2.1", Reject(400), "extraneous header field separators in Via and Contact"),
    case("clerr", "4475 §3.1.2.2", Reject(400), "Content-Length larger than the datagram's body"),
    case("ncl", "4475 §3.1.2.3", Reject(400), "negative Content-Length"),
    case("scalar02", "4475 §3.1.2.4", Reject(400), "CSeq beyond 2**31-1 (Max-Forwards and expiries too)"),
    case("scalarlg", "4475 §3.1.2.5", ResponseDropped, "response CSeq beyond 2**32-1: discard"),
    case("quotbal", "4475 §3.1.2.6", Reject(400), "unterminated quoted string in display name"),
    case("ltgtruri", "4475 §3.1.2.7", Reject(400), "<> enclosing the Request-URI"),
    case("lwsruri", "4475 §3.1.2.8", Reject(400), "LWS inside the Request-URI"),
    case("lwsstart", "4475 §3.1.2.9", Reject(400), "multiple SP in the Request-Line (may accept: stricter)"),
    case("trws", "4475 §3.1.2.10", Reject(400), "SP at end of Request-Line (may accept: stricter)"),
    case("escruri", "4475 §3.1.2.11", Reject(400), "escaped headers in the Request-URI (may ignore: stricter)"),
    case("baddate", "4475 §3.1.2.12", Valid, "non-GMT Date: ignored, as the RFC advises when Date is not used"),
    case("regbadct", "4475 §3.1.2.13", Reject(400), "Contact URI with ? not in <> (may infer <>: stricter)"),
    case("badaspec", "4475 §3.1.2.14", Reject(400), "spaces within addr-spec (may ignore: stricter)"),
    case("baddn", "4475 §3.1.2.15", Reject(400), "unquoted non-token display name (may be liberal: stricter)"),
    case("badvers", "4475 §3.1.2.16", Reject(505), "unknown protocol version SIP/7.0"),
    case("mismatch01", "4475 §3.1.2.17", Reject(400), "start line and CSeq method mismatch"),
    case("mismatch02", "4475 §3.1.2.18", Reject(400), "unknown method, CSeq mismatch: 501 preferred, 400 acceptable"),
    case("bigcode", "4475 §3.1.2.19", ResponseDropped, "overlarge response code"),
    // RFC 4475 §3.2: transaction layer.
    case("badbranch", "4475 §3.2.1", Reject(400), "branch is the bare magic cookie (may fall back to 2543: stricter)"),
    // RFC 4475 §3.3: application layer.
    case("insuf", "4475 §3.3.1", Reject(400), "missing Call-ID, From and To"),
    case("unkscm", "4475 §3.3.2", Reject(416), "Request-URI with unknown scheme"),
    case("novelsc", "4475 §3.3.3", Reject(416), "Request-URI with known but atypical scheme (soap.beep)"),
    case("unksm2", "4475 §3.3.4", ValidButApp(400), "REGISTER whose To is not a SIP/SIPS URI: a registrar refuses"),
    case("bext01", "4475 §3.3.5", ValidButApp(420), "Require with unsupported option tags"),
    case("invut", "4475 §3.3.6", ValidButApp(415), "body of unknown Content-Type: an endpoint answers 415"),
    case(
        "regaut01",
        "4475 §3.3.7",
        ValidButApp(401),
        "unknown Authorization scheme: a registrar that authenticates challenges",
    ),
    case("multi01", "4475 §3.3.8", Reject(400), "several values in single-value headers (Call-ID, CSeq, To, From)"),
    case("mcl01", "4475 §3.3.9", Reject(400), "conflicting Content-Length values"),
    case("bcast", "4475 §3.3.10", ResponseDiscarded, "200 OK with a broadcast second Via: well formed, discarded"),
    case("zeromf", "4475 §3.3.11", Valid, "Max-Forwards 0: an endpoint processes it"),
    case("cparam01", "4475 §3.3.12", Valid, "unknownparam is a contact param, not a URI param"),
    case("cparam02", "4475 §3.3.13", Valid, "unknownparam is a URI param inside <>"),
    case("regescrt", "4475 §3.3.14", Valid, "REGISTER whose Contact URI holds an escaped Route header"),
    case("sdp01", "4475 §3.3.15", ValidButApp(406), "Accept without application/sdp: 406 (or 400)"),
    case("inv2543", "4475 §3.3.16", Valid, "RFC 2543 INVITE: no branch, no From tag, no Content-Length"),
    // RFC 5118 §4.
    case("ipv6-good", "5118 §4.1", Valid, "IPv6 references in Request-URI, Via and Contact"),
    case("ipv6-bad", "5118 §4.2", Reject(400), "IPv6 address in Request-URI without brackets"),
    case("port-ambiguous", "5118 §4.3", Valid, "[2001:db8::10:5070] is an address without port"),
    case("port-unambiguous", "5118 §4.4", Valid, "[2001:db8::10]:5070 is an address and a port"),
    case("via-received-param-with-delim", "5118 §4.5", Valid, "received=[IPv6] with brackets"),
    case("via-received-param-no-delim", "5118 §4.5", Valid, "received=IPv6 without brackets"),
    case("ipv6-in-sdp", "5118 §4.6", Valid, "IPv6 in SDP; Content-Length shorter than the datagram"),
    case("mult-ip-in-header", "5118 §4.7", Valid, "IPv4 and IPv6 Vias in one message"),
    case("mult-ip-in-sdp", "5118 §4.8", Valid, "IPv4 and IPv6 in SDP; Content-Length shorter than the datagram"),
    case("ipv4-mapped-ipv6", "5118 §4.9", Valid, "IPv4-mapped IPv6 addresses; Content-Length shorter"),
    case("ipv6-bug-abnf-3-colons", "5118 §4.10", Valid, "RFC 3261 ABNF's ':::' form: must be tolerated"),
    case("ipv6-correct-abnf-2-colons", "5118 §4.10", Valid, "the correct '::' form"),
];

fn corpus_dir() -> PathBuf {
    // Read at run time: a build reused from another checkout (a shared target directory) must read this one's files.
    let package =
        std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
    package.join("tests").join("torture")
}

fn load(tag: &str) -> Vec<u8> {
    let path = corpus_dir().join(format!("{tag}.dat"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What our pipeline made of a datagram.
#[derive(Debug)]
enum Outcome {
    /// A request refused with this status (by the parser or `check_request`), and why.
    Refused(u16, String),
    Request(Box<(Message, Essentials)>),
    Response(Message),
    /// A response that the parser or `check_response` refused.
    BadResponse(String),
}

fn run(data: &[u8]) -> Outcome {
    match parse_datagram(data, &Limits::default()) {
        Err(e) if e.is_request => {
            // A broken request must still be answerable: the headers read so far come back with the error.
            assert!(e.headers.is_some() || e.kind == ParseErrorKind::TooLarge, "no headers with {e:?}");
            Outcome::Refused(e.status(), e.to_string())
        }
        Err(e) => Outcome::BadResponse(e.to_string()),
        Ok(msg) if msg.is_request() => match check_request(&msg) {
            Ok(ess) => Outcome::Request(Box::new((msg, ess))),
            Err(r) => Outcome::Refused(r.code, r.reason),
        },
        Ok(msg) => match check_response(&msg) {
            Ok(_) => Outcome::Response(msg),
            Err(e) => Outcome::BadResponse(e.to_string()),
        },
    }
}

#[test]
fn every_message_meets_the_rfc() {
    let mut failures = Vec::new();
    for c in CASES {
        let data = load(c.tag);
        let outcome = run(&data);
        // A failed spot check is reported with the others rather than stopping the run.
        let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| judge(c, &outcome)));
        if verdict.unwrap_or(false) {
            continue;
        }
        let got = match &outcome {
            Outcome::Refused(code, why) => format!("refused {code} ({why})"),
            Outcome::Request(..) => "accepted request".to_owned(),
            Outcome::Response(_) => "accepted response".to_owned(),
            Outcome::BadResponse(why) => format!("dropped response ({why})"),
        };
        failures.push(format!("{} ({}, {}): expected {:?}, got {got}", c.tag, c.section, c.note, c.expect));
    }
    assert!(failures.is_empty(), "{} of {} messages wrong:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

/// Whether the outcome is what the case expects; spot checks panic.
fn judge(c: &Case, outcome: &Outcome) -> bool {
    match (outcome, c.expect) {
        (Outcome::Request(req), Valid) => {
            let (msg, ess) = &**req;
            spot_check(c.tag, msg, Some(ess));
            true
        }
        (Outcome::Response(msg), Valid) => {
            spot_check(c.tag, msg, None);
            true
        }
        (Outcome::Request(req), ValidButApp(code)) => {
            let (msg, ess) = &**req;
            spot_check(c.tag, msg, Some(ess));
            app_refusal_holds(c.tag, code, msg, ess);
            true
        }
        (Outcome::Refused(got, why), Reject(want)) => *got == want && for_the_right_reason(c.tag, why),
        (Outcome::BadResponse(why), ResponseDropped) => for_the_right_reason(c.tag, why),
        (Outcome::Response(msg), ResponseDiscarded) => {
            spot_check(c.tag, msg, None);
            // RFC 3261 §8.1.3.3: a UAC discards a response with more than one Via.
            header::vias(&msg.headers).map(|v| v.len() > 1).unwrap_or(false)
        }
        _ => false,
    }
}

#[test]
fn every_file_is_in_the_table_once() {
    let mut on_disk = BTreeSet::new();
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(tag) = name.strip_suffix(".dat") {
            on_disk.insert(tag.to_owned());
        }
    }
    let mut in_table = BTreeSet::new();
    for c in CASES {
        assert!(in_table.insert(c.tag.to_owned()), "{} is in the table twice", c.tag);
    }
    assert_eq!(on_disk, in_table);
    assert_eq!(CASES.len(), 61, "49 messages of RFC 4475 and 12 of RFC 5118");
    let count = |f: fn(&Expect) -> bool| CASES.iter().filter(|c| f(&c.expect)).count();
    assert_eq!(count(|e| matches!(e, Valid)), 28);
    assert_eq!(count(|e| matches!(e, ValidButApp(_))), 7);
    assert_eq!(count(|e| matches!(e, Reject(_))), 23);
    assert_eq!(count(|e| matches!(e, ResponseDropped | ResponseDiscarded)), 3);
}

/// The defect each refused message must be refused for (a substring of the reason phrase), so that a message is
/// not passed by tripping over something else first.
const REFUSED_FOR: &[(&str, &str)] = &[
    ("badinv01", "Via"),
    ("clerr", "Content-Length"),
    ("ncl", "Content-Length"),
    ("scalar02", "CSeq"),
    ("scalarlg", "CSeq"),
    ("quotbal", "Malformed To"),
    ("ltgtruri", "Request-URI"),
    ("lwsruri", "Start Line"),
    ("lwsstart", "Start Line"),
    ("trws", "Start Line"),
    ("escruri", "Request-URI"),
    ("regbadct", "Contact"),
    ("badaspec", "Malformed To"),
    ("baddn", "Malformed From"),
    ("badvers", "Version"),
    ("mismatch01", "CSeq Method"),
    ("mismatch02", "CSeq Method"),
    ("bigcode", "Status Code"),
    ("badbranch", "Branch"),
    ("insuf", "Missing"),
    ("unkscm", "URI Scheme"),
    ("novelsc", "URI Scheme"),
    ("multi01", "Multiple"),
    ("mcl01", "Content-Length"),
    ("ipv6-bad", "Request-URI"),
];

fn for_the_right_reason(tag: &str, why: &str) -> bool {
    let want = REFUSED_FOR.iter().find(|(t, _)| *t == tag).map(|(_, w)| *w);
    assert!(want.is_some(), "{tag}: no reason listed in REFUSED_FOR");
    want.is_some_and(|w| why.contains(w))
}

/// Checks the application's reason for refusing holds in the message (we do not run the registrar here).
fn app_refusal_holds(tag: &str, code: u16, msg: &Message, ess: &Essentials) {
    let Some(method) = msg.method() else { panic!("{tag}: not a request") };
    match code {
        // RFC 3261 §8.2.1: a method the UAS does not know.
        501 => assert!(matches!(method, Method::Extension(_)), "{tag}: {method} is a known method"),
        // RFC 3261 §8.2.2.3: Require names extensions nobody supports.
        420 => {
            let tags: Vec<&str> = msg.headers.get_list(&HeaderName::Require).collect();
            assert_eq!(tags, ["nothingSupportsThis", "nothingSupportsThisEither"], "{tag}");
        }
        // RFC 3261 §8.2.3: a body type the UAS does not understand.
        415 => {
            let ct = msg.header(&HeaderName::ContentType).unwrap_or_default();
            assert!(!msg.body.is_empty() && !ct.eq_ignore_ascii_case("application/sdp"), "{tag}: {ct}");
        }
        // RFC 3261 §8.2.2.2 / §21.4.7: no acceptable response body type.
        406 => {
            let accept: Vec<&str> = msg.headers.get_list(&HeaderName::Accept).collect();
            assert!(!accept.iter().any(|a| a.eq_ignore_ascii_case("application/sdp")), "{tag}: {accept:?}");
        }
        // RFC 3261 §22.4: credentials in a scheme the registrar does not know earn a fresh Digest challenge.
        401 => {
            let auth = msg.header(&HeaderName::Authorization).unwrap_or_default();
            assert_eq!(auth.split_whitespace().next(), Some("NoOneKnowsThisScheme"), "{tag}");
        }
        // RFC 3261 §10.3: the To of a REGISTER is the address of record and must be a SIP or SIPS URI.
        400 => {
            assert_eq!(method, &Method::Register, "{tag}");
            assert_eq!(Uri::parse(&ess.to.uri), Err(UriError::UnsupportedScheme), "{tag}: To {}", ess.to.uri);
        }
        _ => panic!("{tag}: no reason modelled for {code}"),
    }
}

fn contacts(msg: &Message) -> Vec<NameAddr> {
    match header::contacts(&msg.headers) {
        Ok(Contacts::List(l)) => l,
        other => panic!("contacts: {other:?}"),
    }
}

fn uri(s: &str) -> Uri {
    Uri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn ruri(msg: &Message) -> Uri {
    uri(msg.request_uri().unwrap())
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().unwrap())
}

/// Values the RFCs single out in each message.
fn spot_check(tag: &str, msg: &Message, ess: Option<&Essentials>) {
    let h = &msg.headers;
    if let Some(ess) = ess {
        assert_eq!(Some(&ess.cseq.method), msg.method(), "{tag}: CSeq method");
    }
    let vias = header::vias(h).unwrap_or_else(|e| panic!("{tag}: Via: {e}"));
    match tag {
        "wsinv" => {
            let ess = ess.unwrap();
            assert_eq!(msg.method(), Some(&Method::Invite));
            assert_eq!(msg.request_uri(), Some("sip:vivekg@chair-dnrc.example.com;unknownparam"));
            assert_eq!(ruri(msg).param("unknownparam"), Some(""));
            assert_eq!(ess.to.uri, "sip:vivekg@chair-dnrc.example.com");
            assert_eq!(ess.to.tag(), Some("1918181833n"));
            // `"J Rosenberg \\\""`: an escaped backslash, then an escaped quote.
            assert_eq!(ess.from.display.as_deref(), Some(r#"J Rosenberg \""#));
            assert_eq!(ess.from.tag(), Some("98asjd8"));
            assert_eq!(ess.cseq.seq, 9);
            assert_eq!(h.get(&HeaderName::MaxForwards), Some("0068"));
            assert_eq!(vias.len(), 3);
            assert_eq!((vias[0].transport.as_str(), vias[0].host.as_str()), ("UDP", "192.0.2.2"));
            assert_eq!(vias[0].branch(), Some("390skdjuw"));
            assert_eq!((vias[1].transport.as_str(), vias[1].host.as_str()), ("TCP", "spindle.example.com"));
            assert_eq!(vias[1].branch(), Some("z9hG4bK9ikj8"));
            assert_eq!((vias[2].host.as_str(), vias[2].branch()), ("192.168.255.111", Some("z9hG4bK30239")));
            let c = contacts(msg);
            assert_eq!(c.len(), 1);
            assert_eq!(c[0].display.as_deref(), Some(r#"Quoted string """#));
            assert_eq!(c[0].uri, "sip:jdrosen@example.com");
            assert_eq!(
                (c[0].param("newparam"), c[0].param("secondparam"), c[0].param("q")),
                (Some("newvalue"), Some(""), Some("0.33"))
            );
            assert_eq!(
                h.get(&HeaderName::Other("NewFangledHeader".into())),
                Some("newfangled value continued newfangled value")
            );
            assert_eq!(h.get(&HeaderName::Subject), Some(""));
            assert_eq!(msg.body.len(), 150);
        }
        "intmeth" => {
            let ess = ess.unwrap();
            let method = "!interesting-Method0123456789_*+`.%indeed'~";
            assert_eq!(msg.method(), Some(&Method::Extension(method.into())));
            let u = ruri(msg);
            assert_eq!(u.user.as_deref(), Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"));
            assert_eq!((u.host.as_str(), u.headers.as_deref()), ("example.com", None));
            assert_eq!(ess.to.display.as_deref(), Some("BEL:\x07 NUL:\0 DEL:\x7f"));
            assert_eq!(ess.to.uri, "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com");
            assert_eq!(uri(&ess.to.uri).user.as_deref(), Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"));
            assert_eq!(ess.from.display.as_deref(), Some("token1~` token2'+_ token3*%!.-"));
            assert_eq!(ess.from.param("fromParam''~+*_!.-%"), Some("работающий"));
            assert_eq!(ess.from.tag(), Some("_token~1'+`*%!-."));
            assert_eq!(ess.call_id, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
            assert_eq!(vias[0].branch(), Some("z9hG4bK-.!%66*_+`'~"));
            assert_eq!(h.get(&HeaderName::Other("extensionHeader-!.%*+_`'~".into())), Some("\u{feff}大停電"));
        }
        "esc01" => {
            let ess = ess.unwrap();
            let u = ruri(msg);
            assert_eq!(u.user.as_deref(), Some("sips%3Auser%40example.com"));
            assert_eq!(uri::unescape(u.user.as_deref().unwrap()), "sips:user@example.com");
            assert_eq!(u.host, "example.net");
            assert_eq!(uri(&ess.to.uri).comparison_key(), uri("sip:user@example.com").comparison_key());
            assert_eq!(uri::unescape(uri(&ess.from.uri).user.as_deref().unwrap()), "I have spaces");
            let c = uri(&contacts(msg)[0].uri);
            assert_eq!(uri::unescape(c.user.as_deref().unwrap()), "caller");
            let params: Vec<(String, Option<String>)> =
                c.params.iter().map(|p| (uri::unescape(&p.name), p.value.as_deref().map(uri::unescape))).collect();
            assert_eq!(params, [("lr".into(), None), ("name".into(), Some("value%41".into()))]);
            assert_eq!(h.get(&HeaderName::ContentType), Some("application/sdp"));
            assert_eq!(msg.body.len(), 150);
        }
        "escnull" => {
            let ess = ess.unwrap();
            let user = uri::unescape(uri(&ess.to.uri).user.as_deref().unwrap());
            assert_eq!(user, "null-\0-null", "the AoR must not be cut at the NUL");
            let c = contacts(msg);
            assert_eq!(c.len(), 2);
            let (a, b) = (uri(&c[0].uri), uri(&c[1].uri));
            assert_eq!(uri::unescape(a.user.as_deref().unwrap()), "\0");
            assert_eq!(uri::unescape(b.user.as_deref().unwrap()), "\0\0");
            assert_ne!(a.comparison_key(), b.comparison_key(), "two distinct bindings");
        }
        "esc02" => {
            let ess = ess.unwrap();
            assert_eq!(msg.method(), Some(&Method::Extension("RE%47IST%45R".into())));
            assert_ne!(msg.method(), Some(&Method::Register));
            assert_eq!(ess.to.display.as_deref(), Some("%Z%45"));
            assert_eq!(ess.from.display.as_deref(), Some("%Z%45"));
            assert_eq!(vias[0].branch(), Some("z9hG4bK209%fzsnel234"));
            // Two Contact header field values, not three: `C%6Fntact` is another header (no % escaping in names).
            let c: Vec<String> = contacts(msg).into_iter().map(|c| c.uri).collect();
            assert_eq!(c, ["sip:alias1@host1.example.com", "sip:alias3@host3.example.com"]);
            assert_ne!(HeaderName::parse("C%6Fntact"), HeaderName::Contact);
            assert_eq!(h.get(&HeaderName::Other("C%6Fntact".into())), Some("<sip:alias2@host2.example.com>"));
        }
        "lwsdisp" => {
            let ess = ess.unwrap();
            assert_eq!(ess.from.display.as_deref(), Some("caller"));
            assert_eq!((ess.from.uri.as_str(), ess.from.tag()), ("sip:caller@example.com", Some("323")));
        }
        "longreq" => {
            let ess = ess.unwrap();
            assert!(ess.to.display.as_deref().unwrap().ends_with("extremeextreme proportion"));
            let to = uri(&ess.to.uri);
            assert_eq!((to.host.as_str(), to.port), ("example.com", Some(6000)));
            assert_eq!(to.params.len(), 3);
            assert_eq!(ess.from.tag().map(str::len), Some(155));
            assert_eq!(vias.len(), 34);
            assert_eq!(vias[0].host, "sip33.example.com");
            let last = &vias[33];
            assert_eq!(last.param("received").and_then(|p| p.value.as_deref()), Some("192.0.2.5"));
            assert!(last.branch().unwrap().ends_with("longlongbranchvalue"));
            assert_eq!(msg.body.len(), 150);
        }
        "dblreq" => {
            assert_eq!(msg.method(), Some(&Method::Register));
            assert_eq!(msg.call_id(), Some("dblreq.0ha0isndaksdj99sdfafnl3lk233412"));
            assert!(msg.body.is_empty(), "the trailing INVITE is discarded");
        }
        "semiuri" => {
            let u = ruri(msg);
            assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
            assert_eq!(u.host, "example.com");
            assert!(u.params.is_empty());
            assert_eq!(h.get_list(&HeaderName::Accept).count(), 6);
        }
        "transports" => {
            let t: Vec<&str> = vias.iter().map(|v| v.transport.as_str()).collect();
            assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
            assert_eq!(msg.call_id(), Some("transports.kijh4akdnaqjkwendsasfdj"));
        }
        "mpart01" => {
            assert_eq!(msg.method(), Some(&Method::Message));
            let ct = h.get(&HeaderName::ContentType).unwrap();
            assert_eq!(ct, "multipart/mixed;boundary=7a9cbec02ceef655");
            assert_eq!(msg.body.len(), 553);
            assert!(std::str::from_utf8(&msg.body).is_err(), "the body is binary and kept as is");
            assert!(msg.body.ends_with(b"--7a9cbec02ceef655--\r\n"));
        }
        "unreason" => {
            assert_eq!(msg.status(), Some(200));
            let switchboard_sip_core::StartLine::Response(s) = &msg.start else { unreachable!() };
            assert_eq!(s.reason, "= 2**3 * 5**2 но сто девяносто девять - простое");
            assert_eq!(msg.body.len(), 154);
        }
        "noreason" => {
            assert_eq!(msg.status(), Some(100));
            let switchboard_sip_core::StartLine::Response(s) = &msg.start else { unreachable!() };
            assert_eq!(s.reason, "");
        }
        "baddate" => assert_eq!(h.get(&HeaderName::Date), Some("Fri, 01 Jan 2010 16:00:00 EST")),
        "zeromf" => assert_eq!(h.get(&HeaderName::MaxForwards), Some("0")),
        "cparam01" => {
            let c = contacts(msg);
            assert_eq!(c[0].uri, "sip:+19725552222@gw1.example.net");
            assert_eq!(c[0].param("unknownparam"), Some(""), "a contact parameter");
            assert!(uri(&c[0].uri).params.is_empty(), "not a URI parameter");
        }
        "cparam02" => {
            let c = contacts(msg);
            assert_eq!(c[0].uri, "sip:+19725552222@gw1.example.net;unknownparam");
            assert!(c[0].params.is_empty(), "not a contact parameter");
            assert_eq!(uri(&c[0].uri).param("unknownparam"), Some(""), "a URI parameter");
        }
        "regescrt" => {
            let c = contacts(msg);
            assert_eq!(uri(&c[0].uri).headers.as_deref(), Some("Route=%3Csip:sip.example.com%3E"));
        }
        "inv2543" => {
            let ess = ess.unwrap();
            assert_eq!(vias[0].branch(), None);
            assert_eq!(ess.from.tag(), None);
            assert_eq!(h.get(&HeaderName::MaxForwards), None);
            assert_eq!(h.get(&HeaderName::ContentLength), None);
            assert!(msg.body.starts_with(b"v=0\r\n") && msg.body.ends_with(b"RTP/AVP 0\r\n"), "body to datagram end");
        }
        "ipv6-good" => {
            let u = ruri(msg);
            assert_eq!((u.host.as_str(), u.port), ("[2001:db8::10]", None));
            assert_eq!(vias[0].host, "[2001:db8::9:1]");
            assert_eq!(header::host_ip(&vias[0].host), Some(v6("2001:db8::9:1")));
            assert_eq!(uri(&contacts(msg)[0].uri).host, "[2001:db8::1]");
        }
        "port-ambiguous" => {
            let u = ruri(msg);
            assert_eq!((u.host.as_str(), u.port), ("[2001:db8::10:5070]", None));
            assert_eq!(header::host_ip(&u.host), Some(v6("2001:db8::10:5070")));
        }
        "port-unambiguous" => {
            let u = ruri(msg);
            assert_eq!((u.host.as_str(), u.port), ("[2001:db8::10]", Some(5070)));
        }
        "via-received-param-with-delim" | "via-received-param-no-delim" => {
            let received = vias[0].param("received").and_then(|p| p.value.clone()).unwrap();
            let want = if tag.ends_with("with-delim") { "[2001:db8::9:255]" } else { "2001:db8::9:255" };
            assert_eq!(received, want);
            let target = header::response_target(&vias[0]).unwrap();
            assert_eq!((target.ip(), target.port()), (v6("2001:db8::9:255"), 5060));
        }
        "ipv6-in-sdp" => {
            assert_eq!(ruri(msg).host, "[2001:db8::10]");
            assert_eq!(msg.body.len(), 241, "octets beyond Content-Length are discarded");
            assert!(String::from_utf8_lossy(&msg.body).contains("c=IN IP6 2001:db8::20\r\n"));
        }
        "mult-ip-in-header" => {
            let hosts: Vec<&str> = vias.iter().map(|v| v.host.as_str()).collect();
            assert_eq!(hosts, ["[2001:db8::9:1]", "192.0.2.1", "[2001:db8::9:255]"]);
            assert_eq!(vias[0].port, Some(6050));
            assert_eq!(vias[2].param("received").and_then(|p| p.value.as_deref()), Some("192.0.2.200"));
        }
        "mult-ip-in-sdp" => {
            assert_eq!(msg.body.len(), 181);
            assert!(String::from_utf8_lossy(&msg.body).contains("c=IN IP6 2001:db8::1\r\n"));
        }
        "ipv4-mapped-ipv6" => {
            assert_eq!((vias[0].host.as_str(), vias[0].port), ("[::ffff:192.0.2.10]", Some(19823)));
            assert_eq!(header::host_ip(&vias[1].host), Some(v6("::ffff:192.0.2.2")));
            assert_eq!(uri(&contacts(msg)[0].uri).host, "[::ffff:192.0.2.2]");
            assert_eq!(msg.body.len(), 236);
        }
        "ipv6-bug-abnf-3-colons" | "ipv6-correct-abnf-2-colons" => {
            let ess = ess.unwrap();
            // Both spellings name the same address (RFC 5118 §4.10).
            let want = Some(v6("2001:db8::192.0.2.1"));
            assert_eq!(header::host_ip(&ruri(msg).host), want);
            assert_eq!(header::host_ip(&uri(&ess.to.uri).host), want);
        }
        "bcast" => {
            assert_eq!(msg.status(), Some(200));
            assert_eq!(vias[1].host, "255.255.255.255");
        }
        "unksm2" => {
            let ess = ess.unwrap();
            assert_eq!((ess.to.uri.as_str(), ess.from.uri.as_str()), ("isbn:2983792873", "http://www.example.com"));
            assert_eq!(contacts(msg)[0].uri, "name:John_Smith");
        }
        "bext01" => {
            let preq: Vec<&str> = h.get_list(&HeaderName::ProxyRequire).collect();
            assert_eq!(preq, ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]);
        }
        "invut" => assert_eq!(h.get(&HeaderName::ContentType), Some("application/unknownformat")),
        // The rest get the generic checks above (and, for ValidButApp, `app_refusal_holds`).
        _ => {}
    }
}

/// A stream connection may deliver any message in pieces of any size; the framer must never panic, must stop at
/// the first error, and must frame each well-formed message as the datagram parser reads it.
#[test]
fn stream_framer_survives_every_message_in_any_chunking() {
    let limits = Limits::default();
    for c in CASES {
        let data = load(c.tag);
        let reference = parse_datagram(&data, &limits).ok();
        let framed_with_length = data_has_content_length(&data);
        let mut chunkings: Vec<Vec<usize>> = [1, 2, 3, 5, 7, 16, 61, 255, 4096].iter().map(|&n| vec![n]).collect();
        // Every two-piece split, and a few irregular patterns.
        chunkings.extend((1..data.len()).map(|at| vec![at, data.len()]));
        chunkings.push(vec![1, 3, 2, 17, 4, 40, 9]);
        chunkings.push(vec![100, 1, 1, 1, 250]);
        for sizes in &chunkings {
            let frames = feed(&data, sizes, limits);
            // The first thing framed from a message with Content-Length is that message, as a datagram parses it.
            if let (Some(Ok(Frame::Message(first))), Some(reference), true) =
                (frames.first(), &reference, framed_with_length)
            {
                assert_eq!(first, reference, "{} chunked {sizes:?}", c.tag);
            }
        }
    }
}

/// Also feed every message with its bytes damaged: truncated, doubled, and with NUL/CR/LF bytes injected.
#[test]
fn stream_framer_survives_damaged_messages() {
    let limits = Limits { max_message: 2048, max_headers: 40 };
    for c in CASES {
        let data = load(c.tag);
        let mut variants = vec![data.clone(), [data.as_slice(), data.as_slice()].concat()];
        for cut in [1, data.len() / 3, data.len() / 2, data.len().saturating_sub(1)] {
            variants.push(data[..cut].to_vec());
        }
        let mut seed = data.len() as u64;
        for _ in 0..8 {
            let mut d = data.clone();
            for _ in 0..4 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let at = (seed >> 33) as usize % d.len();
                d[at] = [0u8, b'\r', b'\n', b':', b' ', 0xff][(seed >> 20) as usize % 6];
            }
            variants.push(d);
        }
        for v in &variants {
            for sizes in [[1usize].as_slice(), &[7], &[64], &[3, 200]] {
                feed(v, sizes, limits);
            }
            let _ = parse_datagram(v, &limits)
                .map(|m| if m.is_request() { check_request(&m).is_ok() } else { check_response(&m).is_ok() });
        }
    }
}

fn data_has_content_length(data: &[u8]) -> bool {
    match parse_datagram(data, &Limits::default()) {
        Ok(m) => m.headers.get(&HeaderName::ContentLength).is_some(),
        Err(_) => false,
    }
}

/// Pushes `data` in pieces whose sizes cycle through `sizes`, collecting frames until the first error.
fn feed(data: &[u8], sizes: &[usize], limits: Limits) -> Vec<Result<Frame, String>> {
    let mut framer = StreamFramer::new(limits);
    let mut frames = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < data.len() {
        let n = sizes[i % sizes.len()].max(1);
        i += 1;
        let end = (at + n).min(data.len());
        framer.push(&data[at..end]);
        at = end;
        while let Some(f) = framer.next_frame() {
            match f {
                Ok(frame) => {
                    if let Frame::Message(m) = &frame {
                        // Typed views must not panic on whatever was framed either.
                        let _ = if m.is_request() { check_request(m).is_ok() } else { check_response(m).is_ok() };
                    }
                    frames.push(Ok(frame));
                }
                Err(e) => {
                    frames.push(Err(e.to_string()));
                    return frames; // a stream cannot be re-synchronised: the connection is closed
                }
            }
        }
    }
    frames
}
