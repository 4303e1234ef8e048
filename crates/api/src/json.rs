//! The JSON body extractor: `application/json` only, and every refusal names the field it is about, in our error
//! shape (axum's own rejection is plain text).

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A request body decoded from JSON; unknown fields are refused by the types themselves.
#[derive(Debug)]
pub(crate) struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/json" || (v.starts_with("application/") && v.ends_with("+json")));
        if !json {
            return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the body must be application/json"));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), format!("cannot read the body: {}", e.body_text())))?;
        decode(&bytes).map(Body)
    }
}

/// `bytes` as a `T`, or a 400 naming the field at fault.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let message = without_position(&e.into_inner().to_string());
        // A missing or unknown field is reported at its parent; the name is in the message.
        let field = if path == "." || path == "?" { quoted(&message) } else { Some(path) };
        match field {
            Some(f) => ApiError::field(StatusCode::BAD_REQUEST, f, message),
            None => not_json(&message),
        }
    })?;
    de.end().map_err(|e| not_json(&without_position(&e.to_string())))?;
    Ok(value)
}

fn not_json(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, format!("the body is not valid JSON for this request: {message}"))
}

/// serde_json's message without " at line 1 column 9".
fn without_position(m: &str) -> String {
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_owned(),
        None => m.to_owned(),
    }
}

/// The first `name` in backticks: "unknown field `nmae`, expected ...".
fn quoted(m: &str) -> Option<String> {
    let (_, rest) = m.split_once('`')?;
    let (name, _) = rest.split_once('`')?;
    (m.starts_with("unknown field") || m.starts_with("missing field")).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        name: String,
        n: Option<i64>,
    }

    #[test]
    fn refusals_name_the_field() {
        let e = decode::<T>(br#"{"name": "x", "nmae": 1}"#).unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (StatusCode::BAD_REQUEST, Some("nmae")));
        let e = decode::<T>(br#"{"n": 1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("name"));
        let e = decode::<T>(br#"{"name": "x", "n": "7"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("n"));
        assert!(e.message.starts_with("invalid type: string"), "{}", e.message);
        let e = decode::<T>(br#"{"name": "x"} trailing"#).unwrap_err();
        assert_eq!(e.field, None);
        let e = decode::<T>(b"[").unwrap_err();
        assert_eq!(e.field, None);
        // Cut short inside a value: that value is at fault.
        let e = decode::<T>(br#"{"name": "#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("name"));
        assert!(decode::<T>(br#"{"name": "x"}"#).is_ok());
    }
}

/// The `{id}` of a path, an integer; anything else is a 400 in our error shape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Id(pub i64);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Id, ApiError> {
        axum::extract::Path::<i64>::from_request_parts(parts, state)
            .await
            .map(|p| Id(p.0))
            .map_err(|_| ApiError::field(StatusCode::BAD_REQUEST, "id", "the id in the path must be an integer"))
    }
}

/// A query string decoded into `T`; a refusal is a 400 in our error shape.
#[derive(Debug)]
pub(crate) struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Params(q.0))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad query string: {}", e.body_text())))
    }
}
