//! Paths to handlers: an optional version prefix (`/v1.24` to `/v1.44`; unversioned is the
//! newest), then the first segment picks the group of endpoints. Every handler error becomes
//! Docker's `{"message": ...}` response here, and every request is logged with its status.

use std::sync::Arc;

use hyper::StatusCode;

use crate::State;
use crate::http::{ApiError, Request, Response, percent_decode};

/// The newest API version served, and the oldest (podman's range).
pub(crate) const MAX_VERSION: (u32, u32) = (1, 44);
pub(crate) const MIN_VERSION: (u32, u32) = (1, 24);

/// Handles one request.
pub(crate) async fn handle(
    state: Arc<State>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    let resp = match route(state, req).await {
        Ok(r) => r,
        Err(e) => {
            if e.status.is_server_error() {
                tracing::warn!(%method, %path, status = e.status.as_u16(), error = %e.message, "request failed");
            }
            e.response()
        }
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
    let mut resp = resp;
    let h = resp.headers_mut();
    h.insert(
        "api-version",
        hyper::header::HeaderValue::from_static(berth_engine::API_VERSION),
    );
    h.insert(
        "server",
        hyper::header::HeaderValue::from_static(concat!(
            "berth/",
            env!("CARGO_PKG_VERSION"),
            " (linux)"
        )),
    );
    h.insert("ostype", hyper::header::HeaderValue::from_static("linux"));
    resp
}

async fn route(
    state: Arc<State>,
    mut req: hyper::Request<hyper::body::Incoming>,
) -> crate::http::Result {
    let upgrade = if req.headers().contains_key(hyper::header::UPGRADE) {
        Some(hyper::upgrade::on(&mut req))
    } else {
        None
    };
    let (parts, body) = req.into_parts();
    let mut segments: Vec<String> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();
    let mut version = None;
    if let Some(first) = segments.first()
        && let Some(v) = first.strip_prefix('v')
        && v.starts_with(|c: char| c.is_ascii_digit())
    {
        let parsed = v
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
            .ok_or_else(|| ApiError::bad_request(format!("invalid API version {first:?}")))?;
        if parsed > MAX_VERSION {
            return Err(ApiError::bad_request(format!(
                "client version {}.{} is too new. Maximum supported API version is {}",
                parsed.0,
                parsed.1,
                berth_engine::API_VERSION
            )));
        }
        if parsed < MIN_VERSION {
            return Err(ApiError::bad_request(format!(
                "client version {}.{} is too old. Minimum supported API version is {}, please upgrade your client to a newer version",
                parsed.0,
                parsed.1,
                berth_engine::MIN_API_VERSION
            )));
        }
        version = Some(parsed);
        segments.remove(0);
    }
    let query = parts
        .uri
        .query()
        .map(crate::http::parse_query)
        .unwrap_or_default();
    let req = Request {
        method: parts.method,
        segments,
        version,
        query,
        headers: parts.headers,
        body: Some(body),
        upgrade,
    };
    let first = req.segments.first().map(String::as_str).unwrap_or("");
    match first {
        "containers" => crate::containers::route(&state, req).await,
        "exec" => crate::streams::exec_route(&state, req).await,
        "images" | "distribution" => crate::images::route(&state, req).await,
        "build" => crate::build::route(&state, req).await,
        "session" | "grpc" => crate::build::buildkit(&state, req).await,
        "networks" => crate::networks::route(&state, req).await,
        "volumes" => crate::volumes::route(&state, req).await,
        _ => crate::system::route(&state, req).await,
    }
}

/// The error for a path no handler knows (Docker's text).
pub(crate) fn no_route(req: &Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("page not found: {} /{}", req.method, req.segments.join("/")),
    )
}
