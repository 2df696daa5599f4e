//! Requests and responses as the Engine API has them: errors as `{"message": ...}` with
//! Docker's status codes, query parameters as Docker's clients send them (Python booleans from
//! compose, JSON-encoded filters), bounded JSON bodies that name the bad field, streamed bodies
//! bridged to the engine's blocking readers and writers.

use std::collections::HashMap;
use std::io::{Read, Write};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{HeaderMap, Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The body of every response.
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

/// Every response.
pub(crate) type Response = hyper::Response<Body>;

/// What a handler returns.
pub(crate) type Result<T = Response> = std::result::Result<T, ApiError>;

/// The most a JSON request body may hold (a create body with a large environment is a few
/// hundred KiB at most).
pub(crate) const MAX_JSON_BODY: usize = 16 << 20;

/// A request, with the version prefix taken off its path.
pub(crate) struct Request {
    /// The method.
    pub method: Method,
    /// The path's segments after the version prefix (`["containers", "ID", "json"]`),
    /// percent-decoded.
    pub segments: Vec<String>,
    /// The API version the client asked for in its path (`None`: unversioned, the newest).
    pub version: Option<(u32, u32)>,
    /// The query parameters, decoded; repeated keys keep their last value (see `all`).
    pub query: Vec<(String, String)>,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, not yet read.
    pub body: Option<Incoming>,
    /// The whole request, kept for a connection upgrade (attach, exec start).
    pub upgrade: Option<hyper::upgrade::OnUpgrade>,
}

impl Request {
    /// A query parameter's last value.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated query parameter.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean parameter as Docker reads it (`1`, `true`, `True`, and `0`, `false`,
    /// `False`, empty): absent gives `default`; anything else is a 400.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool> {
        match self.param(key) {
            None => Ok(default),
            Some(v) => parse_bool(v).ok_or_else(|| {
                ApiError::bad_request(format!("invalid boolean value for {key}: {v:?}"))
            }),
        }
    }

    /// An integer parameter; absent gives `None`, a bad one a 400.
    pub fn int<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>> {
        match self.param(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v:?}"))),
        }
    }

    /// The `filters` parameter (`{"label":["a=b"],"status":{"running":true}}`, both forms
    /// Docker accepts) as `key=value` strings, the shape the engine's filters parse.
    pub fn filters(&self) -> Result<Vec<String>> {
        let Some(text) = self.param("filters").filter(|t| !t.is_empty()) else {
            return Ok(Vec::new());
        };
        parse_filters(text)
    }

    /// Whether the client asked at least for API version `major.minor` (unversioned paths
    /// are the newest).
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        self.version.is_none_or(|v| v >= (major, minor))
    }

    /// The body read whole, at most `limit` bytes (413 past it).
    pub async fn bytes(&mut self, limit: usize) -> Result<Bytes> {
        let Some(body) = self.body.take() else {
            return Ok(Bytes::new());
        };
        let limited = http_body_util::Limited::new(body, limit);
        match limited.collect().await {
            Ok(c) => Ok(c.to_bytes()),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body larger than {limit} bytes"),
                ))
            }
            Err(e) => Err(ApiError::bad_request(format!("read the request body: {e}"))),
        }
    }

    /// Reads the body to its end and drops it: a refusal sent before the client finished
    /// writing would cut its upload (the docker CLI then reports a broken pipe, not the
    /// message).
    pub async fn drain(&mut self) {
        if let Some(mut body) = self.body.take() {
            while let Some(Ok(_)) = body.frame().await {}
        }
    }

    /// The body as JSON of type `T`; an empty body is `T::default()` when `empty_ok`. A
    /// malformed body is a 400 naming the field (`HostConfig.Memory: invalid type ...`).
    pub async fn json<T: DeserializeOwned + Default>(&mut self, empty_ok: bool) -> Result<T> {
        let bytes = self.bytes(MAX_JSON_BODY).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            if empty_ok {
                return Ok(T::default());
            }
            return Err(ApiError::bad_request(
                "the request body is empty: JSON expected",
            ));
        }
        parse_json(&bytes)
    }

    /// The body as a blocking reader for the engine (a tar to load, a build context), fed by
    /// a task that reads the connection to its end, also when the reader stops early.
    pub fn reader(&mut self) -> BodyReader {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
        if let Some(mut body) = self.body.take() {
            tokio::spawn(async move {
                while let Some(frame) = body.frame().await {
                    let item = match frame {
                        Ok(f) => match f.into_data() {
                            Ok(d) => Ok(d),
                            Err(_) => continue,
                        },
                        Err(e) => Err(std::io::Error::other(e)),
                    };
                    if item.is_err() {
                        let _ = tx.send(item).await;
                        break;
                    }
                    // A reader that stopped early (the engine refused the input) leaves the
                    // rest to be read and dropped here: a connection closed under a client
                    // still uploading would cost it the answer (a broken pipe instead).
                    if !tx.is_closed() {
                        let _ = tx.send(item).await;
                    }
                }
            });
        }
        BodyReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

/// A request body read from blocking code (it must not be read on an async worker: it
/// blocks for each chunk).
pub(crate) struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        let _ = self.cur.split_to(n);
        Ok(n)
    }
}

/// Parses a JSON value, with the path of the bad field in the error.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            ApiError::bad_request(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::bad_request(format!("invalid JSON body: {path}: {inner}"))
        }
    })
}

/// `true`/`false` as Docker's and Python's clients spell them.
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "true" | "True" | "TRUE" | "t" | "T" => Some(true),
        "" | "0" | "false" | "False" | "FALSE" | "f" | "F" => Some(false),
        _ => None,
    }
}

/// Docker's `filters` JSON to `key=value` strings: `{"key":["v1","v2"]}` or the older
/// `{"key":{"v1":true}}`.
pub(crate) fn parse_filters(text: &str) -> Result<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("invalid filters {text:?}: {e}")))?;
    let serde_json::Value::Object(map) = v else {
        return Err(ApiError::bad_request(format!(
            "invalid filters {text:?}: a JSON object expected"
        )));
    };
    let mut out = Vec::new();
    for (k, vals) in map {
        match vals {
            serde_json::Value::Array(a) => {
                for v in a {
                    match v {
                        serde_json::Value::String(s) => out.push(format!("{k}={s}")),
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "invalid filter value for {k}: {other}"
                            )));
                        }
                    }
                }
            }
            serde_json::Value::Object(o) => {
                for (v, on) in o {
                    if on.as_bool().unwrap_or(false) {
                        out.push(format!("{k}={v}"));
                    }
                }
            }
            serde_json::Value::String(s) => out.push(format!("{k}={s}")),
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid filter value for {k}: {other}"
                )));
            }
        }
    }
    Ok(out)
}

/// Percent-decoding of a path segment or query component (`+` is a space in a query).
pub(crate) fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query string split into decoded pairs.
pub(crate) fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// An error response: Docker's `{"message": ...}` with a status code.
#[derive(Debug)]
pub(crate) struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// An error with a status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The response.
    pub fn response(&self) -> Response {
        let body = serde_json::json!({ "message": self.message });
        let mut r = json_response(self.status, &body);
        if self.status == StatusCode::NOT_MODIFIED {
            *r.body_mut() = empty_body();
        }
        r
    }
}

impl From<berth_engine::Error> for ApiError {
    fn from(e: berth_engine::Error) -> Self {
        use berth_engine::Error as E;
        let status = match &e {
            E::NoSuchContainer(_)
            | E::NoSuchExec(_)
            | E::NoSuchVolume(_)
            | E::ImageNotFound(_)
            | E::NotFound(_) => StatusCode::NOT_FOUND,
            E::NameInUse { .. } | E::VolumeInUse { .. } | E::WrongState { .. } | E::Conflict(_) => {
                StatusCode::CONFLICT
            }
            E::Ambiguous(_) | E::InvalidOption { .. } | E::Json { .. } => StatusCode::BAD_REQUEST,
            E::Image(i) => image_status(i),
            E::Network(n) => network_status(n),
            // Docker's refusals to remove what is in use read `conflict: ...`.
            E::Other(m) if m.starts_with("conflict:") => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &e {
            // Docker's own text, which clients match on.
            E::ImageNotFound(name) => format!("No such image: {name}"),
            _ => error_chain(&e),
        };
        Self::new(status, message)
    }
}

impl From<berth_image::Error> for ApiError {
    fn from(e: berth_image::Error) -> Self {
        Self::new(image_status(&e), error_chain(&e))
    }
}

fn image_status(e: &berth_image::Error) -> StatusCode {
    use berth_image::Error as E;
    match e {
        E::ImageNotFound(_) | E::BlobNotFound(_) | E::ManifestUnknown { .. } => {
            StatusCode::NOT_FOUND
        }
        E::Unauthorized { .. } | E::Credentials(_) => StatusCode::UNAUTHORIZED,
        E::InvalidReference { .. }
        | E::InvalidDigest(_)
        | E::AmbiguousImage(_)
        | E::NoMatchingPlatform { .. }
        | E::UnsafeEntry { .. }
        | E::Invalid { .. } => StatusCode::BAD_REQUEST,
        E::SnapshotExists(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn network_status(e: &berth_network::Error) -> StatusCode {
    use berth_network::Error as E;
    match e {
        E::NoSuchNetwork(_) => StatusCode::NOT_FOUND,
        E::NetworkExists(_) | E::InUse { .. } | E::PortInUse { .. } => StatusCode::CONFLICT,
        E::Invalid { .. } | E::Ipam { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error with its causes, `outer: inner: ...`, each once.
pub(crate) use berth_sys::error_text as error_chain;

/// An empty body.
pub(crate) fn empty_body() -> Body {
    Full::new(Bytes::new()).map_err(|e| match e {}).boxed()
}

/// A body from bytes.
pub(crate) fn full_body(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|e| match e {}).boxed()
}

/// A response with no body.
pub(crate) fn status(code: StatusCode) -> Response {
    let mut r = hyper::Response::new(empty_body());
    *r.status_mut() = code;
    r
}

/// 204 No Content.
pub(crate) fn no_content() -> Response {
    status(StatusCode::NO_CONTENT)
}

/// A JSON response.
pub(crate) fn json_response(code: StatusCode, v: &impl Serialize) -> Response {
    let mut body = serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec());
    body.push(b'\n');
    let mut r = hyper::Response::new(full_body(body));
    *r.status_mut() = code;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// 200 with JSON.
pub(crate) fn json(v: &impl Serialize) -> Result {
    Ok(json_response(StatusCode::OK, v))
}

/// A streamed body and the sender that feeds it (from async code).
pub(crate) fn channel_body() -> (tokio::sync::mpsc::Sender<std::io::Result<Bytes>>, Body) {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(32);
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let stream = tokio_stream::StreamExt::map(stream, |r| r.map(Frame::data));
    (tx, BodyExt::boxed(StreamBody::new(stream)))
}

/// A streamed response fed from blocking code through a [`ChannelWriter`].
pub(crate) fn writer_body() -> (ChannelWriter, Body) {
    let (tx, body) = channel_body();
    (ChannelWriter { tx }, body)
}

/// A blocking writer whose bytes become a streamed response body; a write fails once the
/// client has gone.
pub(crate) struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
}

impl ChannelWriter {
    /// Ends the body with an error (the client sees the connection cut).
    pub fn fail(&self, e: std::io::Error) {
        let _ = self.tx.blocking_send(Err(e));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs blocking engine work on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("request handler failed: {e}")))?
}

/// The `X-Registry-Auth` header (base64url JSON of username/password/serveraddress or
/// identitytoken), decoded; absent or `{}` is none.
pub(crate) fn registry_auth(headers: &HeaderMap) -> Result<HashMap<String, String>> {
    let Some(v) = headers.get("x-registry-auth") else {
        return Ok(HashMap::new());
    };
    let text = v
        .to_str()
        .map_err(|_| ApiError::bad_request("X-Registry-Auth: not ASCII"))?;
    if text.is_empty() {
        return Ok(HashMap::new());
    }
    let raw = base64_decode(text)
        .ok_or_else(|| ApiError::bad_request("X-Registry-Auth: invalid base64"))?;
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(HashMap::new());
    }
    let v: serde_json::Value = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::bad_request(format!("X-Registry-Auth: invalid JSON: {e}")))?;
    let mut out = HashMap::new();
    if let serde_json::Value::Object(m) = v {
        for (k, v) in m {
            if let serde_json::Value::String(s) = v {
                out.insert(k.to_ascii_lowercase(), s);
            }
        }
    }
    Ok(out)
}

/// Base64 in the standard or URL-safe alphabet, padded or not (Docker's clients send either).
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let s = s.trim();
    GeneralPurpose::new(&base64::alphabet::URL_SAFE, config)
        .decode(s)
        .or_else(|_| GeneralPurpose::new(&base64::alphabet::STANDARD, config).decode(s))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_both_forms() {
        let mut f = parse_filters(r#"{"label":["a=b","c"],"status":{"running":true}}"#).unwrap();
        f.sort();
        assert_eq!(f, ["label=a=b", "label=c", "status=running"]);
        assert!(parse_filters("[1]").is_err());
        assert!(parse_filters(r#"{"label":[1]}"#).is_err());
    }

    #[test]
    fn query_and_bools() {
        let q = parse_query("v=True&force=False&name=a%2Fb+c&x");
        assert_eq!(q[0], ("v".into(), "True".into()));
        assert_eq!(q[2], ("name".into(), "a/b c".into()));
        assert_eq!(q[3], ("x".into(), "".into()));
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("False"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(percent_decode("%zz%41", false), "%zzA");
        assert_eq!(percent_decode("100%", false), "100%");
    }

    #[test]
    fn base64_both_alphabets() {
        assert_eq!(base64_decode("eyJhIjoxfQ==").unwrap(), br#"{"a":1}"#);
        assert_eq!(base64_decode("eyJhIjoxfQ").unwrap(), br#"{"a":1}"#);
        assert_eq!(base64_decode("-_8").unwrap(), [0xfb, 0xff]);
        assert!(base64_decode("a b").is_none());
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(serde::Deserialize, Default, Debug)]
        #[serde(rename_all = "PascalCase")]
        struct Inner {
            #[allow(dead_code)]
            memory: i64,
        }
        #[derive(serde::Deserialize, Default, Debug)]
        #[serde(rename_all = "PascalCase")]
        struct Outer {
            #[allow(dead_code)]
            host_config: Inner,
        }
        let e = parse_json::<Outer>(br#"{"HostConfig":{"Memory":"x"}}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("HostConfig.Memory"), "{}", e.message);
    }
}
