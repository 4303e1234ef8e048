//! The request digest (RFC 7616 §3.4.1, RFC 3261 §22.4): checking one as a server, producing one as a client.

use std::fmt;

use super::algorithm::{ct_eq, to_hex};
use super::params::{is_header_safe, push_quoted};
use super::{Algorithm, Challenge, Credentials, DigestError, QopAuth, ha1};

/// The request digest in lower-case hex:
///
/// * `qop=auth`: `H(HA1 ":" nonce ":" nc ":" cnonce ":" "auth" ":" HA2)`
/// * no qop (RFC 2069): `H(HA1 ":" nonce ":" HA2)`
///
/// with `HA2 = H(method ":" digest-uri)`. `nc` enters as its 8-hex-digit wire text.
fn request_digest(alg: Algorithm, ha1: &str, nonce: &str, qop: Option<&QopAuth>, method: &str, uri: &str) -> String {
    let ha2 = alg.hash_hex(&[method, uri]);
    match qop {
        Some(q) => alg.hash_hex(&[ha1, nonce, &format!("{:08x}", q.nc), &q.cnonce, "auth", &ha2]),
        None => alg.hash_hex(&[ha1, nonce, &ha2]),
    }
}

/// Verifies a `qop=auth` response. `ha1_hex` must have been computed with `creds.algorithm` for
/// `creds.username` / `creds.realm` (see [`ha1`]); hex case does not matter. Returns false for RFC 2069-style
/// responses (no `qop`): those carry no `cnonce`/`nc`, so they cannot be replay-checked and are weaker against
/// chosen-plaintext attacks; use [`verify_allow_rfc2069`] only if legacy devices force you to.
///
/// `method` is the request's method. This checks the hash only: the nonce, realm, URI and replay checks are the
/// caller's (module docs list the order).
pub fn verify(creds: &Credentials, method: &str, ha1_hex: &str) -> bool {
    creds.qop.is_some() && verify_allow_rfc2069(creds, method, ha1_hex)
}

/// Like [`verify`], but also accepts RFC 2069-style responses without `qop` (RFC 3261 §22.4 backwards
/// compatibility).
pub fn verify_allow_rfc2069(creds: &Credentials, method: &str, ha1_hex: &str) -> bool {
    let alg = creds.algorithm;
    // Wrong-length input cannot be right; bail before hashing so garbage costs little. Lengths are public.
    if ha1_hex.len() != alg.hex_len() || creds.response.len() != alg.hex_len() {
        return false;
    }
    let ha1 = ha1_hex.to_ascii_lowercase();
    let expected = request_digest(alg, &ha1, &creds.nonce, creds.qop.as_ref(), method, &creds.uri);
    ct_eq(expected.as_bytes(), creds.response.to_ascii_lowercase().as_bytes())
}

/// The client's secret: the password, or an HA1 precomputed for the challenge's realm and algorithm.
#[derive(Clone, Copy)]
pub enum ClientSecret<'a> {
    /// Plain password.
    Password(&'a str),
    /// `H(username ":" realm ":" password)` in hex for the algorithm the challenge asks for.
    Ha1(&'a str),
}

impl fmt::Debug for ClientSecret<'_> {
    /// Never prints the secret itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientSecret::Password(_) => f.write_str("Password(<redacted>)"),
            ClientSecret::Ha1(_) => f.write_str("Ha1(<redacted>)"),
        }
    }
}

/// What a client needs, besides the challenge, to answer it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAuth<'a> {
    /// Auth ID.
    pub username: &'a str,
    /// Password or HA1.
    pub secret: ClientSecret<'a>,
    /// Method of the request being authorized (`REGISTER`, `INVITE`, ...).
    pub method: &'a str,
    /// The Request-URI, exactly as it will be sent.
    pub uri: &'a str,
    /// Fresh random bytes from the caller (at least 8 are sensible, 16 better); hex-encoded into `cnonce`.
    /// Ignored when the challenge has no `qop`.
    pub cnonce: &'a [u8],
    /// Nonce count: 1 for the first request with this nonce, incremented per reuse. Ignored without `qop`.
    pub nc: u32,
}

/// Builds an `Authorization` / `Proxy-Authorization` header value answering `challenge`
/// (RFC 3261 §22.2–22.4, RFC 7616 §3.4): `qop=auth` with `cnonce`/`nc` when the server offered it, RFC 2069
/// style otherwise. `opaque` is echoed and `algorithm` repeated as the server named it.
///
/// Errors: `username` or `uri` containing characters a quoted-string cannot carry, an empty `cnonce` or `nc == 0`
/// when `qop` is used.
pub fn client_response(challenge: &Challenge, auth: &ClientAuth<'_>) -> Result<String, DigestError> {
    if !is_header_safe(auth.username) {
        return Err(DigestError::InvalidValue("username"));
    }
    if !is_header_safe(auth.uri) {
        return Err(DigestError::InvalidValue("uri"));
    }
    let qop = if challenge.qop_auth {
        if auth.cnonce.is_empty() {
            return Err(DigestError::InvalidValue("cnonce"));
        }
        if auth.nc == 0 {
            return Err(DigestError::InvalidNonceCount("00000000".into()));
        }
        Some(QopAuth { cnonce: to_hex(auth.cnonce), nc: auth.nc })
    } else {
        None
    };
    let alg = challenge.algorithm;
    let ha1 = match auth.secret {
        ClientSecret::Password(password) => ha1(alg, auth.username, &challenge.realm, password),
        ClientSecret::Ha1(hex) => hex.to_ascii_lowercase(),
    };
    let response = request_digest(alg, &ha1, &challenge.nonce, qop.as_ref(), auth.method, auth.uri);

    let mut out = String::with_capacity(256);
    out.push_str("Digest username=");
    push_quoted(&mut out, auth.username);
    out.push_str(", realm=");
    push_quoted(&mut out, &challenge.realm);
    out.push_str(", nonce=");
    push_quoted(&mut out, &challenge.nonce);
    out.push_str(", uri=");
    push_quoted(&mut out, auth.uri);
    out.push_str(", response=\"");
    out.push_str(&response);
    out.push_str("\", algorithm=");
    out.push_str(alg.as_str());
    if let Some(q) = &qop {
        out.push_str(", cnonce=\"");
        out.push_str(&q.cnonce);
        out.push_str(&format!("\", qop=auth, nc={:08x}", q.nc));
    }
    if let Some(opaque) = &challenge.opaque {
        out.push_str(", opaque=");
        push_quoted(&mut out, opaque);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1.
    const R7616_REALM: &str = "http-auth@example.org";
    const R7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const R7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const R7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

    fn rfc7616_creds(alg: Algorithm, response: &str) -> Credentials {
        let header = format!(
            "Digest username=\"Mufasa\", realm=\"{R7616_REALM}\", uri=\"/dir/index.html\", algorithm={alg}, \
             nonce=\"{R7616_NONCE}\", nc=00000001, cnonce=\"{R7616_CNONCE}\", qop=auth, response=\"{response}\", \
             opaque=\"{R7616_OPAQUE}\""
        );
        match Credentials::parse(&header) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn rfc7616_md5_and_sha256_examples() {
        for (alg, published) in [
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (Algorithm::Sha256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ] {
            let creds = rfc7616_creds(alg, published);
            let ha1 = ha1(alg, "Mufasa", R7616_REALM, "Circle of Life");
            let computed = request_digest(alg, &ha1, R7616_NONCE, creds.qop.as_ref(), "GET", "/dir/index.html");
            assert_eq!(computed, published, "{alg}");
            assert!(verify(&creds, "GET", &ha1), "{alg}");
            assert!(verify(&creds, "GET", &ha1.to_ascii_uppercase()), "HA1 hex case must not matter");
            assert!(!verify(&creds, "POST", &ha1), "method is covered");
            assert!(!verify(&creds, "GET", &super::ha1(alg, "Mufasa", R7616_REALM, "circle of life")));
        }
    }

    #[test]
    fn rfc2617_classic_md5_example() {
        // RFC 2617 §3.5.
        let creds = Credentials::parse(
            r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
 uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b",
 response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        );
        let Ok(creds) = creds else { panic!("{creds:?}") };
        let ha1 = ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life");
        assert!(verify(&creds, "GET", &ha1));
    }

    #[test]
    fn sha512_256_cross_checked_vector() {
        // RFC 7616 §3.9.2's published response is known-wrong (errata), so this vector was computed
        // independently with Python's hashlib.sha512_256 over the same inputs.
        let creds = Credentials::parse(
            "Digest username=\"J\u{e4}s\u{f8}n Doe\", realm=\"api@example.org\", uri=\"/doe.json\", \
             algorithm=SHA-512-256, nonce=\"5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK\", nc=00000001, \
             cnonce=\"NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v\", qop=auth, \
             response=\"3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5\"",
        );
        let Ok(creds) = creds else { panic!("{creds:?}") };
        let ha1 = ha1(Algorithm::Sha512_256, "J\u{e4}s\u{f8}n Doe", "api@example.org", "Secret, or not?");
        assert!(verify(&creds, "GET", &ha1));
    }

    #[test]
    fn rfc2069_only_when_allowed() {
        // RFC 2617 §3.5 inputs without qop; value cross-checked with Python's hashlib.md5.
        let creds = Credentials::parse(
            r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
 uri="/dir/index.html", response="670FD8C2DF070C60B045671B8B24FF02""#,
        );
        let Ok(creds) = creds else { panic!("{creds:?}") };
        let ha1 = ha1(Algorithm::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life");
        assert!(!verify(&creds, "GET", &ha1));
        assert!(verify_allow_rfc2069(&creds, "GET", &ha1), "upper-case response hex is accepted");
    }

    #[test]
    fn wrong_lengths_and_algorithm_mismatch_fail() {
        let creds =
            rfc7616_creds(Algorithm::Sha256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
        assert!(!verify(&creds, "GET", &ha1(Algorithm::Md5, "Mufasa", R7616_REALM, "Circle of Life")));
        assert!(!verify(&creds, "GET", ""));
        let mut short = creds.clone();
        short.response.truncate(63);
        assert!(!verify(&short, "GET", &ha1(Algorithm::Sha256, "Mufasa", R7616_REALM, "Circle of Life")));
    }

    #[test]
    fn client_reproduces_rfc7616_and_round_trips() {
        let challenge = Challenge::parse(&format!(
            "Digest realm=\"{R7616_REALM}\", qop=\"auth, auth-int\", algorithm=SHA-256, nonce=\"{R7616_NONCE}\", \
             opaque=\"{R7616_OPAQUE}\""
        ));
        let Ok(challenge) = challenge else { panic!("{challenge:?}") };
        let auth = ClientAuth {
            username: "Mufasa",
            secret: ClientSecret::Password("Circle of Life"),
            method: "GET",
            uri: "/dir/index.html",
            cnonce: &[0xde, 0xad, 0xbe, 0xef],
            nc: 1,
        };
        let Ok(header) = client_response(&challenge, &auth) else { panic!() };
        assert!(header.contains(r#"cnonce="deadbeef", qop=auth, nc=00000001"#), "{header}");
        assert!(header.contains(&format!(r#"opaque="{R7616_OPAQUE}""#)), "{header}");
        let Ok(creds) = Credentials::parse(&header) else { panic!("{header}") };
        assert_eq!(creds.algorithm, Algorithm::Sha256);
        let ha1 = ha1(Algorithm::Sha256, "Mufasa", R7616_REALM, "Circle of Life");
        assert!(verify(&creds, "GET", &ha1));

        // HA1 instead of password gives the same header.
        let with_ha1 = ClientAuth { secret: ClientSecret::Ha1(&ha1), ..auth };
        assert_eq!(client_response(&challenge, &with_ha1), Ok(header));
    }

    #[test]
    fn client_rfc2069_and_errors() {
        let challenge = Challenge {
            realm: "r".into(),
            nonce: "n".into(),
            algorithm: Algorithm::Md5,
            qop_auth: false,
            opaque: None,
            stale: false,
        };
        let auth = ClientAuth {
            username: "al\"ice",
            secret: ClientSecret::Password("pw"),
            method: "REGISTER",
            uri: "sip:r",
            cnonce: &[],
            nc: 0,
        };
        let Ok(header) = client_response(&challenge, &auth) else { panic!() };
        assert!(!header.contains("cnonce") && !header.contains("nc="), "{header}");
        let Ok(creds) = Credentials::parse(&header) else { panic!("{header}") };
        assert_eq!(creds.username, "al\"ice");
        assert!(verify_allow_rfc2069(&creds, "REGISTER", &ha1(Algorithm::Md5, "al\"ice", "r", "pw")));

        let qop = Challenge { qop_auth: true, ..challenge };
        assert_eq!(client_response(&qop, &auth), Err(DigestError::InvalidValue("cnonce")));
        let auth = ClientAuth { cnonce: b"x", ..auth };
        assert!(matches!(client_response(&qop, &auth), Err(DigestError::InvalidNonceCount(_))));
        let auth = ClientAuth { nc: 1, uri: "sip:r\r\nX: y", ..auth };
        assert_eq!(client_response(&qop, &auth), Err(DigestError::InvalidValue("uri")));
        let auth = ClientAuth { uri: "sip:r", username: "a\nb", ..auth };
        assert_eq!(client_response(&qop, &auth), Err(DigestError::InvalidValue("username")));
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let dbg = format!("{:?}", ClientSecret::Password("hunter2"));
        assert!(!dbg.contains("hunter2"));
    }
}
