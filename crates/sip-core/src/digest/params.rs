//! The `Digest` auth-param list shared by credentials and challenges (RFC 3261 §25.1):
//!
//! ```text
//! Authorization = "Digest" LWS dig-resp *(COMMA dig-resp)
//! auth-param    = token EQUAL ( token / quoted-string )
//! EQUAL = SWS "=" SWS        COMMA = SWS "," SWS
//! LWS   = [*WSP CRLF] 1*WSP  SWS   = [LWS]
//! ```
//!
//! The lexer only splits names from values; what the names mean is decided by the callers. It works on bytes but
//! only ever cuts at ASCII delimiters, so every slice it produces is valid UTF-8; it never indexes, so hostile
//! input can only produce [`DigestError`]s.

use super::DigestError;

/// More parameters than this is not a client, it is an attack on our allocator.
pub(crate) const MAX_PARAMS: usize = 32;

/// One `name=value` pair: `name` lower-cased (names are case-insensitive, RFC 7616 §3.3), `value` unquoted and
/// unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param {
    pub(crate) name: String,
    pub(crate) value: String,
}

/// Splits a `Digest ...` header value into its parameters. Rejects other schemes, syntax errors, duplicate names
/// (RFC 7235 §2.1) and more than [`MAX_PARAMS`] parameters.
pub(crate) fn parse_digest_params(input: &str) -> Result<Vec<Param>, DigestError> {
    let mut cur = Cursor { bytes: input.as_bytes(), pos: 0 };
    cur.skip_lws();
    let scheme = cur.token();
    if !scheme.eq_ignore_ascii_case(b"Digest") {
        return Err(DigestError::NotDigest);
    }
    let had_space = cur.skip_lws();
    let mut params: Vec<Param> = Vec::new();
    if cur.at_end() {
        // "Digest" alone: syntactically an empty list; the caller reports the missing parameters.
        return Ok(params);
    }
    if !had_space {
        return Err(cur.error("expected whitespace after scheme"));
    }
    loop {
        let name = cur.token();
        if name.is_empty() {
            return Err(cur.error("expected parameter name"));
        }
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        cur.skip_lws();
        if !cur.eat(b'=') {
            return Err(cur.error("expected '='"));
        }
        cur.skip_lws();
        let value = if cur.peek() == Some(b'"') {
            cur.quoted_string()?
        } else {
            let token = cur.token();
            if token.is_empty() {
                return Err(cur.error("expected token or quoted-string"));
            }
            String::from_utf8_lossy(token).into_owned()
        };
        if params.iter().any(|p| p.name == name) {
            return Err(DigestError::DuplicateParam(super::clip(&name)));
        }
        if params.len() >= MAX_PARAMS {
            return Err(DigestError::TooManyParams(MAX_PARAMS));
        }
        params.push(Param { name, value });
        cur.skip_lws();
        if cur.at_end() {
            return Ok(params);
        }
        if !cur.eat(b',') {
            return Err(cur.error("expected ',' or end of value"));
        }
        cur.skip_lws();
    }
}

/// Appends `s` as a quoted-string, escaping `"` and `\`. Control characters other than HTAB cannot be carried
/// by a quoted-string at all (RFC 3261 §25.1 `quoted-pair` excludes CR and LF); they are replaced by SP so a bad
/// configuration value can never split the header. Use [`is_header_safe`] first where failing is possible.
pub(crate) fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push(c),
            c if c.is_ascii_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// True when [`push_quoted`] would carry `s` unchanged.
pub(crate) fn is_header_safe(s: &str) -> bool {
    !s.chars().any(|c| c != '\t' && c.is_ascii_control())
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos.saturating_add(ahead)).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn error(&self, reason: &'static str) -> DigestError {
        DigestError::Syntax { at: self.pos, reason }
    }

    /// Length of a line fold (`CRLF 1*WSP`, or a bare `LF 1*WSP` from sloppy senders) starting here, counting
    /// only the line break. A line break not followed by whitespace is not LWS: it would end the header.
    fn fold_len(&self) -> Option<usize> {
        let br = match (self.peek(), self.peek_at(1)) {
            (Some(b'\r'), Some(b'\n')) => 2,
            (Some(b'\n'), _) => 1,
            _ => return None,
        };
        matches!(self.peek_at(br), Some(b' ' | b'\t')).then_some(br)
    }

    /// Skips SWS (spaces, tabs and line folds). Returns whether anything was skipped.
    fn skip_lws(&mut self) -> bool {
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.pos += 1,
                _ => match self.fold_len() {
                    Some(n) => self.pos += n,
                    None => return self.pos > start,
                },
            }
        }
    }

    /// Consumes a (possibly empty) RFC 3261 `token`.
    fn token(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(is_token_char) {
            self.pos += 1;
        }
        self.bytes.get(start..self.pos).unwrap_or_default()
    }

    /// Consumes a quoted-string starting at the opening quote and returns its unescaped content. A fold inside the
    /// quotes becomes a single SP (RFC 3261 §7.3.1: LWS is equivalent to SP).
    fn quoted_string(&mut self) -> Result<String, DigestError> {
        if !self.eat(b'"') {
            return Err(self.error("expected '\"'"));
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(self.error("unterminated quoted-string"));
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\\' => {
                    // quoted-pair; we accept only printable ASCII and HTAB after the backslash: escaped control
                    // characters have no legitimate use in any digest parameter.
                    match self.peek_at(1) {
                        Some(c) if c == b'\t' || (0x20..0x7f).contains(&c) => {
                            out.push(c);
                            self.pos += 2;
                        }
                        _ => return Err(self.error("invalid quoted-pair")),
                    }
                }
                b'\r' | b'\n' => match self.fold_len() {
                    Some(n) => {
                        self.pos += n;
                        while matches!(self.peek(), Some(b' ' | b'\t')) {
                            self.pos += 1;
                        }
                        out.push(b' ');
                    }
                    None => return Err(self.error("line break inside quoted-string")),
                },
                b'\t' => {
                    out.push(b);
                    self.pos += 1;
                }
                // Remaining C0 controls and DEL are not qdtext. Bytes >= 0x80 are UTF-8 (UTF8-NONASCII).
                0x00..=0x1f | 0x7f => {
                    return Err(self.error("control character inside quoted-string"));
                }
                _ => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        // We only removed ASCII bytes from valid UTF-8, so this cannot fail; map it anyway rather than unwrap.
        String::from_utf8(out).map_err(|_| self.error("invalid UTF-8 inside quoted-string"))
    }
}

/// RFC 3261 §25.1: `token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")`.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(input: &str) -> Vec<(String, String)> {
        match parse_digest_params(input) {
            Ok(ps) => ps.into_iter().map(|p| (p.name, p.value)).collect(),
            Err(e) => panic!("{input:?}: {e}"),
        }
    }

    fn p(n: &str, v: &str) -> (String, String) {
        (n.to_owned(), v.to_owned())
    }

    #[test]
    fn tokens_quoted_strings_and_case() {
        assert_eq!(
            pairs(r#"dIgEsT Realm="a b", qop=auth, NC=00000001"#),
            vec![p("realm", "a b"), p("qop", "auth"), p("nc", "00000001")]
        );
    }

    #[test]
    fn whitespace_and_folding_around_delimiters() {
        let input = "  Digest\r\n  username = \"x\"\t,\r\n\trealm=\n \"y\"  ,nonce\r\n =\"z\"  ";
        assert_eq!(pairs(input), vec![p("username", "x"), p("realm", "y"), p("nonce", "z")]);
    }

    #[test]
    fn escapes_and_folds_inside_quotes() {
        assert_eq!(pairs(r#"Digest a="say \"hi\" \\ ok""#), vec![p("a", r#"say "hi" \ ok"#)]);
        assert_eq!(pairs("Digest a=\"x\r\n   y\""), vec![p("a", "x y")]);
        assert_eq!(pairs("Digest a=\"J\u{e4}s\u{f8}n\""), vec![p("a", "J\u{e4}s\u{f8}n")]);
        assert_eq!(pairs(r#"Digest a="""#), vec![p("a", "")]);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        for bad in [
            "Digest username",
            "Digest username=",
            "Digest =x",
            "Digest a=b,",
            "Digest a=b,,c=d",
            "Digest a=b c=d",
            "Digest a=\"unterminated",
            "Digest a=\"bad\\\r\"",
            "Digest a=\"ctl\u{1}\"",
            "Digest a=\"x\r\ny\"",
            "Digest a=b\r\nc=d",
            "Digest a=sip:x@y",
            "Digest a=\"x\"y",
        ] {
            assert!(matches!(parse_digest_params(bad), Err(DigestError::Syntax { .. })), "{bad:?}");
        }
        for bad in ["", "Basic dXNlcjpwYXNz", "Digestive a=b", "Digestusername=\"x\"", "\"Digest\" a=b"] {
            assert_eq!(parse_digest_params(bad), Err(DigestError::NotDigest), "{bad:?}");
        }
    }

    #[test]
    fn duplicates_are_rejected_case_insensitively() {
        assert_eq!(parse_digest_params("Digest a=1, A=2"), Err(DigestError::DuplicateParam("a".into())));
    }

    #[test]
    fn too_many_params() {
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=x")).collect();
        let input = format!("Digest {}", many.join(","));
        assert_eq!(parse_digest_params(&input), Err(DigestError::TooManyParams(MAX_PARAMS)));
    }

    #[test]
    fn bare_scheme_is_an_empty_list() {
        assert_eq!(parse_digest_params("Digest"), Ok(vec![]));
        assert_eq!(parse_digest_params("Digest  "), Ok(vec![]));
    }

    #[test]
    fn quoting_escapes_and_neutralises_controls() {
        let mut out = String::new();
        push_quoted(&mut out, "a\"b\\c\r\nd\te");
        assert_eq!(out, "\"a\\\"b\\\\c  d\te\"");
        assert!(is_header_safe("a\tb \"x\""));
        assert!(!is_header_safe("a\r\nb"));
        // What we quote, we parse back identically.
        let value = format!("Digest x={}", {
            let mut s = String::new();
            push_quoted(&mut s, r#"we"ird\ one"#);
            s
        });
        assert_eq!(pairs(&value), vec![p("x", r#"we"ird\ one"#)]);
    }
}
