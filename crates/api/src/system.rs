//! The system endpoints: `_ping`, `version`, `info`, `events`, `system/df`, `auth`, and the
//! session endpoint BuildKit clients probe.

use std::sync::Arc;

use hyper::{Method, StatusCode};

use crate::State;
use crate::http::{self, Request, Result, blocking, json};

pub(crate) async fn route(state: &Arc<State>, req: Request) -> Result {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match (&req.method, segs.as_slice()) {
        (&Method::GET | &Method::HEAD, ["_ping"]) => Ok(ping(req.method == Method::HEAD)),
        (&Method::GET, ["version"]) => version(state).await,
        (&Method::GET, ["info"]) => {
            let engine = state.engine.clone();
            let info = blocking(move || Ok(engine.system_info()?)).await?;
            json(&info)
        }
        (&Method::GET, ["events"]) => crate::streams::events(state, req).await,
        (&Method::GET, ["system", "df"]) => crate::container_data::system_df(state, req).await,
        (&Method::POST, ["auth"]) => crate::images::auth(state, req).await,
        _ => Err(crate::router::no_route(&req)),
    }
}

/// `_ping`: `OK` with the headers clients negotiate from.
fn ping(head: bool) -> http::Response {
    let mut r = if head {
        http::status(StatusCode::OK)
    } else {
        hyper::Response::new(http::full_body("OK"))
    };
    let h = r.headers_mut();
    h.insert(
        "content-type",
        "text/plain; charset=utf-8".parse().expect("static header"),
    );
    h.insert("builder-version", "1".parse().expect("static header"));
    h.insert(
        "docker-experimental",
        "false".parse().expect("static header"),
    );
    h.insert(
        "cache-control",
        "no-cache, no-store, must-revalidate"
            .parse()
            .expect("static header"),
    );
    h.insert("pragma", "no-cache".parse().expect("static header"));
    r
}

async fn version(state: &Arc<State>) -> Result {
    let engine = state.engine.clone();
    let runtime = blocking(move || Ok(engine.runtime_version())).await?;
    let (kernel, arch) = uname();
    let v = env!("CARGO_PKG_VERSION");
    json(&serde_json::json!({
        "Platform": {"Name": "berth"},
        "Components": [
            {"Name": "Engine", "Version": v, "Details": {
                "ApiVersion": berth_engine::API_VERSION,
                "MinAPIVersion": berth_engine::MIN_API_VERSION,
                "Os": "linux", "Arch": arch, "KernelVersion": kernel,
            }},
            {"Name": "berth-runtime", "Version": runtime, "Details": {}},
        ],
        "Version": v,
        "ApiVersion": berth_engine::API_VERSION,
        "MinAPIVersion": berth_engine::MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": kernel,
        "BuildTime": "",
    }))
}

/// `uname -r` and Go's name of the architecture (what Docker's `Arch` holds).
fn uname() -> (String, String) {
    // SAFETY: uname fills the struct it is given.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::uname(&mut u) };
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let arch = match field(&u.machine).as_str() {
        "x86_64" => "amd64".to_string(),
        "aarch64" => "arm64".to_string(),
        other => other.to_string(),
    };
    (field(&u.release), arch)
}
