//! Request extractors whose rejections come back in the API error shape.
//!
//! axum's own `Json`, `Query` and `Path` answer with plain-text errors; these wrappers turn every
//! malformed input into `400 bad_request` naming the offending field (or `413` for bodies over the
//! limit), so clients never see a different error format.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Maximum accepted request body (api.md §1).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A JSON body that must be `application/json`, at most 1 MiB, and match `T` exactly
/// (request types use `deny_unknown_fields`).
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::bad_request(
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large()
            } else {
                ApiError::bad_request("the request body could not be read")
            }
        })?;
        parse_json(&bytes).map(AppJson)
    }
}

/// Deserializes JSON, naming the field that failed.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::bad_request(format!("malformed JSON: {inner}"));
        }
        let text = inner.to_string();
        let field = field_in_message(&text).or_else(|| (path != ".").then_some(path));
        let problem = strip_position(&text);
        match field {
            Some(f) => ApiError::field(&f, problem),
            None => ApiError::bad_request(format!("invalid body: {problem}")),
        }
    })
}

/// serde names unknown and missing fields inside backticks: "unknown field `x`, expected …".
fn field_in_message(text: &str) -> Option<String> {
    if !(text.starts_with("unknown field") || text.starts_with("missing field")) {
        return None;
    }
    let start = text.find('`')? + 1;
    let len = text[start..].find('`')?;
    Some(text[start..start + len].to_string())
}

/// Drops serde_json's " at line 1 column 9" suffix, which means nothing to an API client.
fn strip_position(text: &str) -> String {
    match text.find(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// Query parameters as `T` (which should `deny_unknown_fields` and take strings, validating
/// them itself so that messages can be precise).
pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(AppQuery)
            .map_err(|err| {
                let text = err.into_inner().to_string();
                match field_in_message(&text) {
                    Some(f) if text.starts_with("unknown field") => {
                        ApiError::field(&f, "unknown query parameter")
                    }
                    Some(f) => ApiError::field(&f, "is required"),
                    None => ApiError::bad_request(format!("invalid query: {text}")),
                }
            })
    }
}

/// A UUID path parameter (`{id}`), normalised to lower-case hyphenated form.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::field("id", "must be a UUID"))?;
        parse_uuid(&raw)
            .map(PathId)
            .ok_or_else(|| ApiError::field("id", "must be a UUID"))
    }
}

/// Parses a UUID in its hyphenated form (either case, nothing around it: `api::schema::UUID`)
/// and returns its canonical lower-case form.
pub fn parse_uuid(raw: &str) -> Option<String> {
    if raw.len() != 36 {
        return None;
    }
    uuid::Uuid::try_parse(raw)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
    }

    fn field_of(e: ApiError) -> String {
        e.details.unwrap()["fields"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone()
    }

    #[test]
    fn names_unknown_missing_and_mistyped_fields() {
        let e =
            parse_json::<Login>(br#"{"email":"a@b.c","password":"x","admin":true}"#).unwrap_err();
        assert_eq!(field_of(e), "admin");
        let e = parse_json::<Login>(br#"{"email":"a@b.c"}"#).unwrap_err();
        assert_eq!(field_of(e), "password");
        let e = parse_json::<Login>(br#"{"email":5,"password":"x"}"#).unwrap_err();
        assert_eq!(field_of(e), "email");
    }

    #[test]
    fn malformed_json_is_a_plain_bad_request() {
        let e = parse_json::<Login>(b"{not json").unwrap_err();
        assert!(e.message.starts_with("malformed JSON"), "{}", e.message);
        assert!(e.details.is_none());
    }

    #[test]
    fn uuids_are_normalised() {
        assert_eq!(
            parse_uuid("6F9619FF-8B86-4D11-B42D-00C04FC964FF").as_deref(),
            Some("6f9619ff-8b86-4d11-b42d-00c04fc964ff")
        );
        assert_eq!(parse_uuid("42"), None);
        // Only the documented form: no braces, no URN, no simple form, nothing around it.
        for other in [
            "6f9619ff8b864d11b42d00c04fc964ff",
            "{6f9619ff-8b86-4d11-b42d-00c04fc964ff}",
            "urn:uuid:6f9619ff-8b86-4d11-b42d-00c04fc964ff",
            " 6f9619ff-8b86-4d11-b42d-00c04fc964ff",
        ] {
            assert_eq!(parse_uuid(other), None, "{other}");
        }
    }
}
