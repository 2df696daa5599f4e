//! The `/containers` endpoints: create, list, inspect and the lifecycle verbs (this module),
//! the streams (attach, logs, resize, exec create: `streams`) and the data a container holds
//! (top, stats, changes, export, archive: `container_data`).
//!
//! Each handler checks what the request asks (query, body, API version), then makes one or two
//! engine calls on the blocking pool; the engine has Docker's semantics, this module Docker's
//! wire: status codes (304 for a start or stop with nothing to do, 409 for a conflict), the
//! messages clients show, and what older API versions mean by the same body.

use std::sync::Arc;
use std::time::Duration;

use berth_engine::{ContainerCreate, Engine, Error as EngineError, Filters, ListOptions, Status};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::State;
use crate::http::{
    self, ApiError, MAX_JSON_BODY, Request, Result, blocking, json, json_response, no_content,
};

pub(crate) async fn route(state: &Arc<State>, req: Request) -> Result {
    let segs: Vec<String> = req.segments.clone();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (&req.method, segs.as_slice()) {
        // Create, list, prune, inspect, the lifecycle.
        (&Method::POST, ["containers", "create"]) => create(state, req).await,
        (&Method::POST, ["containers", "import"]) => import(state, req).await,
        (&Method::GET, ["containers", id, "checkpoints"]) => checkpoints(state, req, id).await,
        (&Method::POST, ["containers", id, "checkpoints"]) => {
            checkpoint_create(state, req, id).await
        }
        (&Method::DELETE, ["containers", id, "checkpoints", name]) => {
            checkpoint_delete(state, req, id, name).await
        }
        (&Method::GET, ["containers", "json"]) => list(state, req).await,
        (&Method::POST, ["containers", "prune"]) => prune(state, req).await,
        (&Method::GET, ["containers", id, "json"]) => inspect(state, req, id).await,
        (&Method::POST, ["containers", id, "start"]) => start(state, req, id).await,
        (&Method::POST, ["containers", id, "stop"]) => stop(state, req, id, false).await,
        (&Method::POST, ["containers", id, "restart"]) => stop(state, req, id, true).await,
        (&Method::POST, ["containers", id, "kill"]) => kill(state, req, id).await,
        (&Method::POST, ["containers", id, "wait"]) => wait(state, req, id).await,
        (&Method::POST, ["containers", id, "rename"]) => rename(state, req, id).await,
        (&Method::POST, ["containers", id, "update"]) => update(state, req, id).await,
        (&Method::POST, ["containers", id, "pause"]) => pause(state, id, true).await,
        (&Method::POST, ["containers", id, "unpause"]) => pause(state, id, false).await,
        (&Method::DELETE, ["containers", id]) => remove(state, req, id).await,
        // Streams.
        (&Method::POST, ["containers", id, "attach"]) => {
            crate::streams::attach(state, req, id).await
        }
        (&Method::GET, ["containers", id, "attach", "ws"]) => {
            crate::streams::attach(state, req, id).await
        }
        (&Method::GET, ["containers", id, "logs"]) => crate::streams::logs(state, req, id).await,
        (&Method::POST, ["containers", id, "resize"]) => {
            crate::streams::resize(state, req, id).await
        }
        (&Method::POST, ["containers", id, "exec"]) => {
            crate::streams::exec_create(state, req, id).await
        }
        // What a container holds.
        (&Method::GET, ["containers", id, "top"]) => {
            crate::container_data::top(state, req, id).await
        }
        (&Method::GET, ["containers", id, "stats"]) => {
            crate::container_data::stats(state, req, id).await
        }
        (&Method::GET, ["containers", id, "changes"]) => {
            crate::container_data::changes(state, req, id).await
        }
        (&Method::GET, ["containers", id, "export"]) => {
            crate::container_data::export(state, req, id).await
        }
        (&Method::GET | &Method::HEAD | &Method::PUT, ["containers", id, "archive"]) => {
            crate::container_data::archive(state, req, id).await
        }
        _ => Err(crate::router::no_route(&req)),
    }
}

/// Removes the `null`s of JSON objects, recursively: Go's decoder leaves a field as it is for a
/// `null`, and Docker's clients send `null` for every field they leave unset
/// (`"Binds":null`), which is what a missing field is to serde.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// A JSON request body into `T` as Docker's decoder reads it (`null`s are unset fields); a
/// malformed body is a 400 naming the field. `empty` is what an empty body is, if allowed.
async fn body<T: serde::de::DeserializeOwned>(req: &mut Request, empty: Option<T>) -> Result<T> {
    let bytes = req.bytes(MAX_JSON_BODY).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return empty.ok_or_else(|| {
            ApiError::bad_request("invalid JSON: got EOF while reading request body")
        });
    }
    let mut v: Value = http::parse_json(&bytes)?;
    strip_nulls(&mut v);
    let bytes = serde_json::to_vec(&v).map_err(|e| ApiError::internal(e.to_string()))?;
    http::parse_json(&bytes)
}

/// The full ID of the container `key` names (404 `No such container: KEY`).
async fn lookup(state: &Arc<State>, key: &str) -> Result<String> {
    let engine = state.engine.clone();
    let key = key.to_string();
    blocking(move || Ok(engine.lookup(&key)?)).await
}

/// Docker's text for a name taken (clients show it as it is).
fn name_conflict(e: EngineError) -> ApiError {
    match e {
        EngineError::NameInUse { name, id } => ApiError::conflict(format!(
            "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". \
             You have to remove (or rename) that container to be able to reuse that name."
        )),
        e => e.into(),
    }
}

/// `image` as Docker names it in `No such image`: with its default tag.
fn familiar_image(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || image.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// A start that failed before the command ran: the command not found or not executable is
/// the request's fault (400, as Docker: its CLI then exits 127 or 126 by the message).
fn start_error(e: EngineError) -> ApiError {
    match e {
        EngineError::Command { message, .. } => ApiError::bad_request(message),
        e => e.into(),
    }
}

/// `POST /containers/create?name=&platform=`.
async fn create(state: &Arc<State>, mut req: Request) -> Result {
    let name = req
        .param("name")
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let platform = req
        .param("platform")
        .filter(|p| !p.is_empty() && req.at_least(1, 41))
        .map(str::to_string);
    let mut c: ContainerCreate = body(&mut req, None).await?;
    c.name = name;
    c.platform = platform.clone();
    if c.config.image.is_empty() {
        return Err(ApiError::bad_request(
            "Config.Image: no image given: a container is created from an image",
        ));
    }
    let mut warnings: Vec<String> = Vec::new();
    // What older clients mean by the same fields.
    if !req.at_least(1, 25) {
        // The client removes the container itself.
        c.host_config.auto_remove = false;
    }
    if !req.at_least(1, 40) && c.host_config.ipc_mode.is_empty() {
        c.host_config.ipc_mode = "shareable".into();
    }
    if c.host_config.pids_limit.is_some_and(|p| p <= 0) {
        c.host_config.pids_limit = None;
    }
    mac_address_compat(&req, &mut c, &mut warnings)?;
    let engine = state.engine.clone();
    let image = c.config.image.clone();
    let id = blocking(move || {
        engine.create(&c).map_err(|e| match e {
            EngineError::ImageNotFound(_) => {
                ApiError::not_found(format!("No such image: {}", familiar_image(&image)))
            }
            // The image is here, but not for the platform asked for: Docker's 404, so that
            // its CLI pulls that platform.
            EngineError::InvalidOption { flag, reason } if flag == "--platform" => {
                ApiError::not_found(format!(
                    "image with reference {image} was found but does not match the specified \
                     platform: {reason}"
                ))
            }
            e => name_conflict(e),
        })
    })
    .await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"Id": id, "Warnings": warnings}),
    ))
}

/// The container-wide `MacAddress` (deprecated in API 1.44, where it moved to the endpoint):
/// before 1.44 it is the address on the container's network, overriding the endpoint's; from
/// 1.44 it must agree with the endpoint's, with a warning.
fn mac_address_compat(
    req: &Request,
    c: &mut ContainerCreate,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let mac = std::mem::take(&mut c.config.mac_address);
    if mac.is_empty() {
        return Ok(());
    }
    let mode = c.host_config.network_mode.as_str();
    if matches!(mode, "host" | "none") || mode.starts_with("container:") {
        return Err(ApiError::bad_request(
            "conflicting options: mac-address and the network mode",
        ));
    }
    let network = if mode.is_empty() { "default" } else { mode }.to_string();
    let eps = &mut c.networking.endpoints_config;
    let key = eps.keys().next().cloned().unwrap_or(network);
    let ep = eps.entry(key).or_default();
    if req.at_least(1, 44) {
        if !ep.mac_address.is_empty() && ep.mac_address != mac {
            return Err(ApiError::bad_request(
                "the container-wide MAC address should match the endpoint-specific MAC address \
                 for the main network or should be left empty",
            ));
        }
        warnings.push(
            "The container-wide MacAddress field is now deprecated. It should be specified in \
             EndpointsConfig instead."
                .into(),
        );
    }
    ep.mac_address = mac;
    Ok(())
}

/// The list options of `GET /containers/json`: `all`, `limit`, `size`, `filters`, and the
/// older `since`/`before` parameters as filters.
fn list_options(req: &Request) -> Result<ListOptions> {
    let mut filters = req.filters()?;
    for key in ["since", "before"] {
        if let Some(v) = req.param(key).filter(|v| !v.is_empty()) {
            filters.push(format!("{key}={v}"));
        }
    }
    Ok(ListOptions {
        all: req.flag("all", false)?,
        limit: req
            .int::<i64>("limit")?
            .filter(|n| *n > 0)
            .map(|n| n as usize),
        size: req.flag("size", false)?,
        filters: Filters::parse(&filters)?,
    })
}

/// `GET /containers/json`.
async fn list(state: &Arc<State>, req: Request) -> Result {
    let opts = list_options(&req)?;
    let engine = state.engine.clone();
    let list = blocking(move || Ok(engine.containers(&opts)?)).await?;
    json(&list)
}

/// `GET /containers/{id}/json?size=`.
async fn inspect(state: &Arc<State>, req: Request, key: &str) -> Result {
    let size = req.flag("size", false)?;
    let id = lookup(state, key).await?;
    let engine = state.engine.clone();
    let v = blocking(move || {
        let mut v = engine.inspect(&id)?;
        if size {
            let opts = ListOptions {
                all: true,
                size: true,
                filters: Filters::parse(&[format!("id={id}")])?,
                ..Default::default()
            };
            if let Some(s) = engine.containers(&opts)?.into_iter().find(|s| s.id == id) {
                v["SizeRw"] = json!(s.size_rw);
                v["SizeRootFs"] = json!(s.size_root_fs);
            }
        }
        Ok(v)
    })
    .await?;
    json(&v)
}

/// `POST /containers/{id}/start`: 304 when it runs already.
async fn start(state: &Arc<State>, mut req: Request, key: &str) -> Result {
    // A start with a host config was removed in API 1.24 (an empty object is still sent).
    let b = req.bytes(MAX_JSON_BODY).await?;
    if String::from_utf8_lossy(&b).trim().len() > 7 {
        return Err(ApiError::bad_request(
            "starting container with non-empty request body was deprecated since API v1.22 \
             and removed in v1.24",
        ));
    }
    let id = lookup(state, key).await?;
    let engine = state.engine.clone();
    // `?checkpoint=NAME&checkpoint-dir=DIR`: restore instead of starting anew.
    let checkpoint = req
        .param("checkpoint")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let checkpoint_dir = req
        .param("checkpoint-dir")
        .filter(|c| !c.is_empty())
        .map(std::path::PathBuf::from);
    let started = blocking(move || {
        let s = engine.state(&id)?;
        match s.status {
            Status::Paused => Err(ApiError::conflict(
                "cannot start a paused container, try unpause instead",
            )),
            s if s.is_running() => Ok(false),
            _ => match &checkpoint {
                Some(c) => engine
                    .start_checkpoint(&id, c, checkpoint_dir.as_deref())
                    .map(|()| true)
                    .map_err(start_error),
                None => engine.start(&id).map(|()| true).map_err(start_error),
            },
        }
    })
    .await?;
    Ok(if started {
        no_content()
    } else {
        http::status(StatusCode::NOT_MODIFIED)
    })
}

/// `POST /containers/{id}/stop?t=&signal=` (304 when it does not run) and
/// `POST /containers/{id}/restart?t=&signal=`.
async fn stop(state: &Arc<State>, req: Request, key: &str, restart: bool) -> Result {
    let timeout = req.int::<i64>("t")?;
    let signal = req
        .param("signal")
        .filter(|s| !s.is_empty() && req.at_least(1, 42))
        .map(str::to_string);
    if let Some(s) = &signal
        && berth_engine::parse_signal(s).is_none()
    {
        return Err(ApiError::bad_request(format!("invalid signal: {s}")));
    }
    let id = lookup(state, key).await?;
    let engine = state.engine.clone();
    let done = blocking(move || {
        if restart {
            engine
                .restart(&id, signal.as_deref(), timeout)
                .map_err(start_error)?;
            return Ok(true);
        }
        if !engine.state(&id)?.status.is_running() {
            return Ok(false);
        }
        engine.stop(&id, signal.as_deref(), timeout)?;
        Ok(true)
    })
    .await?;
    Ok(if done {
        no_content()
    } else {
        http::status(StatusCode::NOT_MODIFIED)
    })
}

/// `POST /containers/{id}/kill?signal=` (default SIGKILL, which waits for the container to
/// stop, as Docker's); 409 when it does not run.
async fn kill(state: &Arc<State>, req: Request, key: &str) -> Result {
    let signal = req
        .param("signal")
        .filter(|s| !s.is_empty())
        .unwrap_or("SIGKILL")
        .to_string();
    let Some(n) = berth_engine::parse_signal(&signal) else {
        return Err(ApiError::bad_request(format!("invalid signal: {signal}")));
    };
    let id = lookup(state, key).await?;
    let engine = state.engine.clone();
    let key = key.to_string();
    blocking(move || {
        engine.kill(&id, &signal).map_err(|e| match e {
            EngineError::WrongState { .. } => ApiError::conflict(format!(
                "Cannot kill container: {key}: container {id} is not running"
            )),
            e => ApiError::from(e),
        })?;
        if n == libc::SIGKILL {
            wait_stopped(&engine, &id, Duration::from_secs(10))?;
        }
        Ok(())
    })
    .await?;
    Ok(no_content())
}

/// Waits (at most `timeout`) until the container's process is gone: it is not running or
/// paused (restarting, exited or removed).
fn wait_stopped(engine: &Engine, id: &str, timeout: Duration) -> Result<()> {
    let until = std::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match engine.state(id) {
            Ok(s) if matches!(s.status, Status::Running | Status::Paused) => {}
            Ok(_) | Err(EngineError::NoSuchContainer(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        if std::time::Instant::now() >= until {
            return Ok(());
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// `POST /containers/{id}/wait?condition=not-running|next-exit|removed`: the 200 and its
/// headers at once (what `docker run` waits for before it starts the container), the body
/// `{"StatusCode":N,"Error":null}` when the condition is met. Before API 1.30: no condition,
/// and the headers come with the body.
async fn wait(state: &Arc<State>, req: Request, key: &str) -> Result {
    let legacy = !req.at_least(1, 30);
    let cond = if legacy {
        berth_engine::WaitCondition::NotRunning
    } else {
        let c = req.param("condition").unwrap_or("");
        berth_engine::WaitCondition::parse(c)
            .ok_or_else(|| ApiError::bad_request(format!("invalid condition: {c:?}")))?
    };
    let id = lookup(state, key).await?;
    let engine = state.engine.clone();
    let w = {
        let engine = engine.clone();
        blocking(move || Ok(engine.wait_begin(&id, cond)?)).await?
    };
    if legacy {
        // The client gone, hyper drops this future, and the loop with it.
        let line = wait_loop(engine, w, || false).await;
        let mut r = hyper::Response::new(http::full_body(line));
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        return Ok(r);
    }
    let (tx, body) = http::channel_body();
    tokio::spawn(async move {
        let closed = tx.clone();
        let line = wait_loop(engine, w, move || closed.is_closed()).await;
        if !line.is_empty() {
            let _ = tx.send(Ok(line)).await;
        }
    });
    let mut r = hyper::Response::new(body);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// Polls the wait until its condition is met (the response line) or `gone()` (empty).
async fn wait_loop(
    engine: Engine,
    mut w: berth_engine::ContainerWait,
    gone: impl Fn() -> bool,
) -> Bytes {
    let mut pause = Duration::from_millis(1);
    loop {
        let e = engine.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let r = w.check(&e);
            (w, r)
        })
        .await;
        let (back, r) = match checked {
            Ok(done) => done,
            Err(e) => return error_line(&EngineError::Other(format!("wait: {e}"))),
        };
        w = back;
        let v = match r {
            Ok(Some(code)) => json!({"StatusCode": code, "Error": null}),
            Ok(None) => {
                if gone() {
                    return Bytes::new();
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
                continue;
            }
            Err(e) => return error_line(&e),
        };
        return json_line(&v);
    }
}

/// A JSON value and a newline.
fn json_line(v: &Value) -> Bytes {
    let mut line = serde_json::to_vec(v).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// The wait's response for a wait that failed.
fn error_line(e: &EngineError) -> Bytes {
    json_line(&json!({"StatusCode": -1, "Error": {"Message": http::error_chain(e)}}))
}

/// `POST /containers/{id}/rename?name=`.
async fn rename(state: &Arc<State>, req: Request, key: &str) -> Result {
    let new = req.param("name").unwrap_or("").to_string();
    if new.is_empty() {
        return Err(ApiError::bad_request(
            "Neither old nor new names may be empty",
        ));
    }
    let id = lookup(state, key).await?;
    let engine = state.engine.clone();
    blocking(move || {
        if engine.record(&id)?.name == new.trim_start_matches('/') {
            return Err(ApiError::bad_request(
                "Renaming a container with the same name as its current name",
            ));
        }
        engine.rename(&id, &new).map_err(name_conflict)
    })
    .await?;
    Ok(no_content())
}

/// The body of `POST /containers/{id}/update`: Docker's `Resources` and `RestartPolicy`, where
/// a zero (and an empty policy name) leaves the value as it is.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct UpdateBody {
    memory: i64,
    memory_swap: i64,
    memory_reservation: i64,
    nano_cpus: i64,
    cpu_shares: i64,
    cpuset_cpus: String,
    pids_limit: Option<i64>,
    restart_policy: Option<UpdatePolicy>,
    // Resources berth does not set: refused when given, rather than ignored.
    cpu_period: i64,
    cpu_quota: i64,
    cpu_realtime_period: i64,
    cpu_realtime_runtime: i64,
    cpuset_mems: String,
    blkio_weight: u16,
    kernel_memory: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct UpdatePolicy {
    name: String,
    maximum_retry_count: u32,
}

impl UpdateBody {
    fn config(&self, req: &Request) -> Result<berth_engine::UpdateConfig> {
        let unsupported = [
            ("CpuPeriod", self.cpu_period != 0),
            ("CpuQuota", self.cpu_quota != 0),
            ("CpuRealtimePeriod", self.cpu_realtime_period != 0),
            ("CpuRealtimeRuntime", self.cpu_realtime_runtime != 0),
            ("CpusetMems", !self.cpuset_mems.is_empty()),
            ("BlkioWeight", self.blkio_weight != 0),
            // Ignored from API 1.42, as Docker ignores it.
            (
                "KernelMemory",
                self.kernel_memory != 0 && !req.at_least(1, 42),
            ),
        ];
        if let Some((field, _)) = unsupported.iter().find(|(_, set)| *set) {
            return Err(ApiError::bad_request(format!(
                "{field}: berth does not set it on a container (NanoCpus limits CPUs)"
            )));
        }
        let nz = |v: i64| (v != 0).then_some(v);
        let restart_policy = match &self.restart_policy {
            Some(p) if !p.name.is_empty() => {
                let name = berth_engine::RestartPolicyName::parse(&p.name).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid restart policy {:?} (no, always, unless-stopped, on-failure)",
                        p.name
                    ))
                })?;
                if p.maximum_retry_count > 0 && name != berth_engine::RestartPolicyName::OnFailure {
                    return Err(ApiError::bad_request(
                        "invalid restart policy: maximum retry count can only be used with \
                         'on-failure'",
                    ));
                }
                Some(berth_engine::RestartPolicy {
                    name,
                    maximum_retry_count: p.maximum_retry_count,
                })
            }
            _ => None,
        };
        Ok(berth_engine::UpdateConfig {
            memory: nz(self.memory),
            memory_swap: nz(self.memory_swap),
            memory_reservation: nz(self.memory_reservation),
            nano_cpus: nz(self.nano_cpus),
            cpu_shares: nz(self.cpu_shares),
            cpuset_cpus: (!self.cpuset_cpus.is_empty()).then(|| self.cpuset_cpus.clone()),
            // Before 1.40 it was not there; 0 and -1 are both "unlimited".
            pids_limit: self
                .pids_limit
                .filter(|_| req.at_least(1, 40))
                .map(|p| p.max(0)),
            restart_policy,
        })
    }
}

/// `POST /containers/{id}/update`.
async fn update(state: &Arc<State>, mut req: Request, key: &str) -> Result {
    let b: UpdateBody = body(&mut req, Some(UpdateBody::default())).await?;
    let u = b.config(&req)?;
    let id = lookup(state, key).await?;
    let engine = state.engine.clone();
    blocking(move || Ok(engine.update(&id, &u)?)).await?;
    json(&json!({"Warnings": []}))
}

/// `POST /containers/{id}/pause` and `unpause`.
async fn pause(state: &Arc<State>, key: &str, freeze: bool) -> Result {
    let id = lookup(state, key).await?;
    let engine = state.engine.clone();
    blocking(move || {
        let s = engine.state(&id)?.status;
        let res = if freeze {
            match s {
                Status::Paused => {
                    return Err(ApiError::conflict(format!(
                        "Container {id} is already paused"
                    )));
                }
                Status::Restarting => {
                    return Err(ApiError::conflict(format!(
                        "Container {id} is restarting, wait until the container is running"
                    )));
                }
                Status::Running => engine.pause(&id),
                _ => {
                    return Err(ApiError::conflict(format!("Container {id} is not running")));
                }
            }
        } else {
            if s != Status::Paused {
                return Err(ApiError::conflict(format!("Container {id} is not paused")));
            }
            engine.unpause(&id)
        };
        Ok(res?)
    })
    .await?;
    Ok(no_content())
}

/// `POST /containers/prune?filters=` (`label`, `label!`, `until`).
async fn prune(state: &Arc<State>, req: Request) -> Result {
    let filters = Filters::parse(&req.filters()?)?;
    let engine = state.engine.clone();
    let report = blocking(move || Ok(engine.prune_containers(&filters)?)).await?;
    json(&json!({
        "ContainersDeleted": report.removed,
        "SpaceReclaimed": report.reclaimed,
    }))
}

/// `DELETE /containers/{id}?v=&force=&link=`.
async fn remove(state: &Arc<State>, req: Request, key: &str) -> Result {
    let volumes = req.flag("v", false)?;
    let force = req.flag("force", false)?;
    if req.flag("link", false)? {
        // berth has no legacy links, so no name is one.
        return Err(if key.trim_start_matches('/').contains('/') {
            ApiError::not_found(format!("No such link: {key}"))
        } else {
            ApiError::bad_request("Conflict, cannot remove the default link name of the container")
        });
    }
    let id = lookup(state, key).await?;
    let engine = state.engine.clone();
    blocking(move || {
        if !force {
            let s = engine.state(&id)?.status;
            if s.is_running() {
                let name = engine.record(&id)?.name;
                let why = if s == Status::Paused {
                    "container is paused and must be unpaused first".to_string()
                } else {
                    format!(
                        "container is {}: stop the container before removing or force remove",
                        s.as_str()
                    )
                };
                return Err(ApiError::conflict(format!(
                    "cannot remove container \"/{name}\": {why}"
                )));
            }
        }
        Ok(engine.remove(&id, force, volumes)?)
    })
    .await?;
    Ok(no_content())
}

// ---- checkpoints (Docker's experimental API) and berth's import of an exported one ----

fn checkpoint_dir(req: &Request) -> Option<std::path::PathBuf> {
    req.param("dir")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
}

/// `GET /containers/{id}/checkpoints?dir=`: `[{"Name"}]`.
async fn checkpoints(state: &Arc<State>, req: Request, id: &str) -> Result {
    let (engine, id, dir) = (state.engine.clone(), id.to_string(), checkpoint_dir(&req));
    let list = blocking(move || Ok(engine.checkpoint_list(&id, dir.as_deref())?)).await?;
    let v: Vec<Value> = list.iter().map(|c| json!({"Name": c.name})).collect();
    json(&v)
}

/// `POST /containers/{id}/checkpoints` with `{"CheckpointID", "CheckpointDir", "Exit"}`: 201.
async fn checkpoint_create(state: &Arc<State>, mut req: Request, id: &str) -> Result {
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "PascalCase", default)]
    struct Body {
        #[serde(rename = "CheckpointID")]
        checkpoint_id: String,
        checkpoint_dir: String,
        exit: bool,
    }
    let b: Body = body(&mut req, None).await?;
    if b.checkpoint_id.is_empty() {
        return Err(ApiError::bad_request(
            "CheckpointID: a checkpoint needs a name",
        ));
    }
    let (engine, id) = (state.engine.clone(), id.to_string());
    blocking(move || {
        let dir =
            (!b.checkpoint_dir.is_empty()).then(|| std::path::PathBuf::from(&b.checkpoint_dir));
        engine.checkpoint_create(
            &id,
            &b.checkpoint_id,
            dir.as_deref(),
            &berth_engine::CheckpointOptions {
                leave_running: !b.exit,
                ..Default::default()
            },
        )?;
        Ok(())
    })
    .await?;
    Ok(crate::http::status(StatusCode::CREATED))
}

/// `DELETE /containers/{id}/checkpoints/{name}?dir=`: 204.
async fn checkpoint_delete(state: &Arc<State>, req: Request, id: &str, name: &str) -> Result {
    let (engine, id, name, dir) = (
        state.engine.clone(),
        id.to_string(),
        name.to_string(),
        checkpoint_dir(&req),
    );
    blocking(move || Ok(engine.checkpoint_remove(&id, &name, dir.as_deref())?)).await?;
    Ok(no_content())
}

/// `POST /containers/import?name=&tcpEstablished=` (berth's): the body is an exported
/// checkpoint (`container checkpoint --export`, podman's layout); the container is created
/// and restored from it, as `container restore --import` does. 201 `{"Id"}`.
async fn import(state: &Arc<State>, mut req: Request) -> Result {
    let name = req
        .param("name")
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let tcp = req.flag("tcpEstablished", false)?;
    let mut reader = req.reader();
    let engine = state.engine.clone();
    let id =
        blocking(move || Ok(engine.checkpoint_import(&mut reader, name.as_deref(), tcp)?)).await?;
    Ok(json_response(StatusCode::CREATED, &json!({"Id": id})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_are_unset_fields() {
        let mut v: Value = serde_json::from_str(
            r#"{"Image":"x","Entrypoint":null,"Cmd":["a"],"HostConfig":{"Binds":null,
                "PidsLimit":null,"Memory":0,"Mounts":[{"Type":"tmpfs","Target":"/t","BindOptions":null}]}}"#,
        )
        .unwrap();
        strip_nulls(&mut v);
        let c: ContainerCreate = serde_json::from_value(v).unwrap();
        assert!(c.config.entrypoint.is_none());
        assert!(c.host_config.pids_limit.is_none());
        assert!(c.host_config.mounts[0].bind_options.is_none());
    }

    #[test]
    fn image_names_as_docker_prints_them() {
        assert_eq!(familiar_image("busybox"), "busybox:latest");
        assert_eq!(familiar_image("busybox:1"), "busybox:1");
        assert_eq!(
            familiar_image("localhost:5000/a"),
            "localhost:5000/a:latest"
        );
        assert_eq!(familiar_image("a@sha256:00"), "a@sha256:00");
    }
}
