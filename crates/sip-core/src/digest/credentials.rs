//! `Authorization` / `Proxy-Authorization` credentials (RFC 3261 §22.4, §25.1 `digest-response`; RFC 7616 §3.4).

use std::str::FromStr;

use super::params::{Param, parse_digest_params};
use super::{Algorithm, DigestError, clip};

/// The `qop=auth` part of a response: present together or not at all (RFC 7616 §3.4: `cnonce` and `nc` MUST be
/// sent when `qop` is, RFC 2617 §3.2.2: MUST NOT be sent otherwise). Modelled as one optional struct so a
/// half-present state cannot exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QopAuth {
    /// Client nonce, unquoted.
    pub cnonce: String,
    /// Nonce count: how many requests the client has sent with this nonce, starting at 1. Parsed from exactly
    /// 8 lower-case hex digits (`nc-value = 8LHEX`); the response hash covers the text, and the text is always
    /// `format!("{nc:08x}")`, which is why upper-case digits are refused at parse time rather than failing
    /// verification later (where they would count as a wrong password).
    pub nc: u32,
}

/// Parsed digest credentials. All strings are owned and already unquoted/unescaped, which is what the hashes are
/// computed over (RFC 7616 §3.4: `unq(...)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Auth ID. If [`Credentials::userhash`] is set this is `H(username ":" realm)` instead (RFC 7616 §3.4.4).
    pub username: String,
    /// Realm the client answered for; must match one we challenged with.
    pub realm: String,
    /// The server nonce being answered.
    pub nonce: String,
    /// Copy of the Request-URI the client signed (`digest-uri`). Compare it with the actual Request-URI.
    pub uri: String,
    /// Request digest as sent (hex, case as sent; [`super::verify`] compares case-insensitively).
    pub response: String,
    /// Hash algorithm; [`Algorithm::Md5`] when the parameter is absent (RFC 7616 §3.4).
    pub algorithm: Algorithm,
    /// `Some` for `qop=auth`, `None` for an RFC 2069-style response.
    pub qop: Option<QopAuth>,
    /// Opaque value echoed from the challenge, if any.
    pub opaque: Option<String>,
    /// RFC 7616 §3.4.4 `userhash=true`. We never offer it; callers will simply not find such a username.
    pub userhash: bool,
}

impl Credentials {
    /// Parses an `Authorization` / `Proxy-Authorization` header value.
    ///
    /// Accepts parameters in any order, LWS and line folds around `=` and `,`, tokens or quoted-strings for any
    /// value, and a case-insensitive scheme and parameter names. Unknown parameters are ignored (RFC 3261 §25.1
    /// `auth-param` extension point); duplicates are rejected, as are `-sess` algorithms and any `qop` but `auth`.
    pub fn parse(header_value: &str) -> Result<Self, DigestError> {
        let params = parse_digest_params(header_value)?;
        let find = |name: &str| params.iter().find(|p| p.name == name).map(|p: &Param| p.value.as_str());
        let required = |name: &'static str| find(name).map(str::to_owned).ok_or(DigestError::MissingParam(name));

        let username = required("username")?;
        let realm = required("realm")?;
        let nonce = required("nonce")?;
        let uri = required("uri")?;
        let response = required("response")?;
        let algorithm = find("algorithm").map(str::parse).transpose()?.unwrap_or_default();

        let qop = match find("qop") {
            None => {
                if find("cnonce").is_some() {
                    return Err(DigestError::UnexpectedParam("cnonce"));
                }
                if find("nc").is_some() {
                    return Err(DigestError::UnexpectedParam("nc"));
                }
                None
            }
            Some(q) if q.eq_ignore_ascii_case("auth") => Some(QopAuth {
                cnonce: required("cnonce")?,
                nc: parse_nc(find("nc").ok_or(DigestError::MissingParam("nc"))?)?,
            }),
            Some(other) => return Err(DigestError::UnsupportedQop(clip(other))),
        };

        let userhash = match find("userhash") {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(_) => return Err(DigestError::InvalidValue("userhash")),
        };

        Ok(Credentials {
            username,
            realm,
            nonce,
            uri,
            response,
            algorithm,
            qop,
            opaque: find("opaque").map(str::to_owned),
            userhash,
        })
    }
}

impl FromStr for Credentials {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Credentials::parse(s)
    }
}

/// `nc-value = 8LHEX` (RFC 7616 §3.4, RFC 3261 §25.1).
fn parse_nc(text: &str) -> Result<u32, DigestError> {
    let well_formed = text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return Err(DigestError::InvalidNonceCount(clip(text)));
    }
    u32::from_str_radix(text, 16).map_err(|_| DigestError::InvalidNonceCount(clip(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC7616_SHA256: &str = "Digest username=\"Mufasa\",\r\n realm=\"http-auth@example.org\",\r\n \
        uri=\"/dir/index.html\",\r\n algorithm=SHA-256,\r\n \
        nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n nc=00000001,\r\n \
        cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\",\r\n qop=auth,\r\n \
        response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\",\r\n \
        opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";

    fn ok(input: &str) -> Credentials {
        match Credentials::parse(input) {
            Ok(c) => c,
            Err(e) => panic!("{input:?}: {e}"),
        }
    }

    #[test]
    fn parses_rfc7616_example_with_folding() {
        let c = ok(RFC7616_SHA256);
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.realm, "http-auth@example.org");
        assert_eq!(c.uri, "/dir/index.html");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.nonce, "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v");
        assert_eq!(c.qop, Some(QopAuth { cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ".into(), nc: 1 }));
        assert_eq!(c.opaque.as_deref(), Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"));
        assert!(!c.userhash);
    }

    #[test]
    fn order_case_unknown_params_and_defaults() {
        let c = ok(
            r#"DIGEST Response="abc", URI="sip:r.example", foo="bar, baz", Nonce=n1, REALM=r, x=y, USERNAME="alice""#,
        );
        assert_eq!((c.username.as_str(), c.realm.as_str(), c.nonce.as_str()), ("alice", "r", "n1"));
        assert_eq!(c.uri, "sip:r.example");
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(c.qop, None);
        assert_eq!(c.opaque, None);
    }

    #[test]
    fn escaped_quotes_in_username() {
        let c = ok(r#"Digest username="a\"b\\c", realm="r", nonce="n", uri="u", response="x""#);
        assert_eq!(c.username, r#"a"b\c"#);
    }

    #[test]
    fn qop_may_be_quoted_and_nc_is_hex() {
        let c = ok(r#"Digest username=u, realm=r, nonce=n, uri=u, response=x, qop="AUTH", nc=0000001f, cnonce=c"#);
        assert_eq!(c.qop, Some(QopAuth { cnonce: "c".into(), nc: 0x1f }));
        let c = ok(r#"Digest username=u, realm=r, nonce=n, uri=u, response=x, qop=auth, nc=ffffffff, cnonce=c"#);
        assert_eq!(c.qop.map(|q| q.nc), Some(u32::MAX));
    }

    #[test]
    fn missing_required_fields() {
        let full = [("username", "u"), ("realm", "r"), ("nonce", "n"), ("uri", "x"), ("response", "z")];
        for (skip, _) in full {
            let rest: Vec<String> =
                full.iter().filter(|(n, _)| *n != skip).map(|(n, v)| format!("{n}=\"{v}\"")).collect();
            let input = format!("Digest {}", rest.join(", "));
            assert_eq!(Credentials::parse(&input), Err(DigestError::MissingParam(skip)), "{input}");
        }
        let base = r#"Digest username=u, realm=r, nonce=n, uri=u, response=x"#;
        assert_eq!(
            Credentials::parse(&format!("{base}, qop=auth, nc=00000001")),
            Err(DigestError::MissingParam("cnonce"))
        );
        assert_eq!(Credentials::parse(&format!("{base}, qop=auth, cnonce=c")), Err(DigestError::MissingParam("nc")));
        assert_eq!(Credentials::parse("Digest"), Err(DigestError::MissingParam("username")));
    }

    #[test]
    fn qop_related_errors() {
        let base = r#"Digest username=u, realm=r, nonce=n, uri=u, response=x"#;
        assert_eq!(Credentials::parse(&format!("{base}, cnonce=c")), Err(DigestError::UnexpectedParam("cnonce")));
        assert_eq!(Credentials::parse(&format!("{base}, nc=00000001")), Err(DigestError::UnexpectedParam("nc")));
        assert_eq!(
            Credentials::parse(&format!("{base}, qop=auth-int, nc=00000001, cnonce=c")),
            Err(DigestError::UnsupportedQop("auth-int".into()))
        );
        for nc in ["1", "0000001", "000000001", "0000000A", "0000000g", "+0000001", "\"\""] {
            let input = format!("{base}, qop=auth, cnonce=c, nc={nc}");
            assert!(matches!(Credentials::parse(&input), Err(DigestError::InvalidNonceCount(_))), "{input}");
        }
    }

    #[test]
    fn algorithm_and_userhash_values() {
        let base = r#"Digest username=u, realm=r, nonce=n, uri=u, response=x"#;
        assert_eq!(ok(&format!("{base}, algorithm=\"sha-512-256\"")).algorithm, Algorithm::Sha512_256);
        assert_eq!(
            Credentials::parse(&format!("{base}, algorithm=MD5-sess")),
            Err(DigestError::UnsupportedAlgorithm("MD5-sess".into()))
        );
        assert!(ok(&format!("{base}, userhash=TRUE")).userhash);
        assert!(!ok(&format!("{base}, userhash=false")).userhash);
        assert_eq!(Credentials::parse(&format!("{base}, userhash=1")), Err(DigestError::InvalidValue("userhash")));
    }

    #[test]
    fn duplicates_and_garbage() {
        let dup = r#"Digest username=u, realm=r, nonce=n, uri=u, response=x, Username=v"#;
        assert_eq!(Credentials::parse(dup), Err(DigestError::DuplicateParam("username".into())));
        for garbage in ["", "Digest ,", "Basic abc", "\u{0}\u{ff}", "Digest username=\"", "Digest username=\"\\"] {
            assert!(Credentials::parse(garbage).is_err(), "{garbage:?}");
        }
        assert_eq!("Digest".parse::<Credentials>(), Err(DigestError::MissingParam("username")));
    }

    mod prop {
        use super::super::Credentials;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parse_never_panics_on_arbitrary_strings(s in any::<String>()) {
                let _ = Credentials::parse(&s);
            }

            #[test]
            fn parse_never_panics_on_digest_like_strings(
                s in r#"(Digest|digest) ?([a-z]{1,8} ?= ?("([^"\\]|\\.){0,8}"?|[a-z0-9]{0,8}) ?,?[ \t\r\n]*){0,12}"#
            ) {
                let _ = Credentials::parse(&s);
            }
        }
    }
}
