//! `WWW-Authenticate` / `Proxy-Authenticate` challenges (RFC 3261 §22.1, §25.1 `digest-cln`; RFC 7616 §3.3):
//! building ours, and parsing a carrier's for outbound registration.

use std::str::FromStr;

use super::params::{parse_digest_params, push_quoted};
use super::{Algorithm, DigestError, clip};

/// Builds a challenge header value:
/// `Digest realm="..", nonce="..", algorithm=SHA-256, qop="auth"[, stale=true][, opaque=".."]`.
///
/// `algorithm` is always explicit, even for MD5, so no client has to guess the default. We always offer
/// `qop="auth"` (RFC 3261 §22.4 asks servers to; it is what brings `cnonce`/`nc` and with them replay
/// protection). Send one such header per algorithm, most preferred first (RFC 8760 §2.4). `stale=true` tells the
/// client its password was right but the nonce expired, so it should retry silently (RFC 7616 §3.3).
///
/// Values are quoted and escaped; control characters (which a quoted-string cannot carry) are replaced by SP
/// rather than allowed to split the header — realm and opaque come from configuration, which should refuse them.
pub fn challenge_header_value(realm: &str, nonce: &str, alg: Algorithm, stale: bool, opaque: Option<&str>) -> String {
    let mut out = String::with_capacity(96 + realm.len() + nonce.len());
    out.push_str("Digest realm=");
    push_quoted(&mut out, realm);
    out.push_str(", nonce=");
    push_quoted(&mut out, nonce);
    out.push_str(", algorithm=");
    out.push_str(alg.as_str());
    out.push_str(", qop=\"auth\"");
    if stale {
        out.push_str(", stale=true");
    }
    if let Some(opaque) = opaque {
        out.push_str(", opaque=");
        push_quoted(&mut out, opaque);
    }
    out
}

/// A parsed digest challenge, as received from a carrier (client side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Protection space; part of HA1.
    pub realm: String,
    /// Server nonce to answer.
    pub nonce: String,
    /// Hash algorithm; MD5 when absent (RFC 7616 §3.3).
    pub algorithm: Algorithm,
    /// The server offered `qop` including `auth`. When false (no `qop` at all) the response is computed the
    /// RFC 2069 way, which RFC 3261 §22.4 requires clients to still support.
    pub qop_auth: bool,
    /// Opaque value to echo back unchanged.
    pub opaque: Option<String>,
    /// `stale=true`: the previous response was right but its nonce had expired; retry without asking the user.
    pub stale: bool,
}

impl Challenge {
    /// Parses one `WWW-Authenticate` / `Proxy-Authenticate` value. In SIP each challenge has its own header field
    /// (RFC 3261 §20.44), so one value holds one challenge. `realm` and `nonce` are required; unknown parameters
    /// (`domain`, `charset`, ...) are ignored. A `qop` list without `auth` (e.g. only `auth-int`) and unsupported
    /// algorithms are errors: try the carrier's next challenge.
    pub fn parse(header_value: &str) -> Result<Self, DigestError> {
        let params = parse_digest_params(header_value)?;
        let find = |name: &str| params.iter().find(|p| p.name == name).map(|p| p.value.as_str());
        let required = |name: &'static str| find(name).map(str::to_owned).ok_or(DigestError::MissingParam(name));

        let qop_auth = match find("qop") {
            None => false,
            // qop-options = "qop" EQUAL LDQUOT qop-value *("," qop-value) RDQUOT
            Some(list) => {
                if !list.split(',').any(|q| q.trim_matches([' ', '\t']).eq_ignore_ascii_case("auth")) {
                    return Err(DigestError::UnsupportedQop(clip(list)));
                }
                true
            }
        };
        Ok(Challenge {
            realm: required("realm")?,
            nonce: required("nonce")?,
            algorithm: find("algorithm").map(str::parse).transpose()?.unwrap_or_default(),
            qop_auth,
            opaque: find("opaque").map(str::to_owned),
            // RFC 7616 §3.3: true only for a case-insensitive "true"; anything else is false.
            stale: find("stale").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }
}

impl FromStr for Challenge {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Challenge::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_documented_shape() {
        assert_eq!(
            challenge_header_value("sip.example.com", "abc123", Algorithm::Sha256, false, None),
            r#"Digest realm="sip.example.com", nonce="abc123", algorithm=SHA-256, qop="auth""#
        );
        assert_eq!(
            challenge_header_value("r", "n", Algorithm::Md5, true, Some("op")),
            r#"Digest realm="r", nonce="n", algorithm=MD5, qop="auth", stale=true, opaque="op""#
        );
    }

    #[test]
    fn escapes_and_cannot_be_split() {
        let v = challenge_header_value("a\"b\r\nX-Evil: 1", "n", Algorithm::Sha512_256, false, None);
        assert!(!v.contains('\r') && !v.contains('\n'), "{v}");
        assert!(v.starts_with(r#"Digest realm="a\"b  X-Evil: 1""#), "{v}");
    }

    #[test]
    fn built_challenges_parse_back() {
        for alg in Algorithm::ALL {
            for (stale, opaque) in [(false, None), (true, Some("o\"q"))] {
                let v = challenge_header_value("we\\ird \"realm\"", "n0nce", alg, stale, opaque);
                let c = Challenge::parse(&v);
                assert_eq!(
                    c,
                    Ok(Challenge {
                        realm: "we\\ird \"realm\"".into(),
                        nonce: "n0nce".into(),
                        algorithm: alg,
                        qop_auth: true,
                        opaque: opaque.map(str::to_owned),
                        stale,
                    }),
                    "{v}"
                );
            }
        }
    }

    #[test]
    fn parses_carrier_style_challenges() {
        let c = Challenge::parse(
            "Digest realm=\"carrier.net\", domain=\"sip:carrier.net\", nonce=\"xyz\", qop=\"auth,auth-int\",\r\n \
             algorithm=md5, stale=FALSE",
        );
        assert_eq!(
            c,
            Ok(Challenge {
                realm: "carrier.net".into(),
                nonce: "xyz".into(),
                algorithm: Algorithm::Md5,
                qop_auth: true,
                opaque: None,
                stale: false,
            })
        );
        // RFC 2069 style: no qop at all, no algorithm.
        let c = Challenge::parse(r#"Digest realm="r", nonce="n", stale=TRUE"#);
        assert!(matches!(c, Ok(Challenge { qop_auth: false, stale: true, algorithm: Algorithm::Md5, .. })));
        assert_eq!("Digest realm=\"r\"".parse::<Challenge>(), Err(DigestError::MissingParam("nonce")));
    }

    #[test]
    fn unsupported_challenges() {
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth-int""#),
            Err(DigestError::UnsupportedQop("auth-int".into()))
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=SHA-256-sess"#),
            Err(DigestError::UnsupportedAlgorithm("SHA-256-sess".into()))
        );
        assert_eq!(Challenge::parse(r#"Basic realm="r""#), Err(DigestError::NotDigest));
    }
}
