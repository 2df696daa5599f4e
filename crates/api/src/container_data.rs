//! What a container holds, read through the API: `top`, `stats`, `changes`, `export`,
//! `archive` (GET, HEAD, PUT), and `GET /system/df`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, StatusCode};

use crate::State;
use crate::http::{self, ApiError, Request, Response, Result, blocking, json};

/// The container's ID for `key`, 404 when there is none.
async fn lookup(state: &Arc<State>, key: &str) -> Result<String> {
    let engine = state.engine.clone();
    let key = key.to_string();
    blocking(move || Ok(engine.lookup(&key)?)).await
}

/// `ps`'s output as Docker's `{"Titles", "Processes"}`: one title per header field, each
/// process split into as many fields, the last (the command) keeping its spaces.
fn parse_ps(out: &str) -> serde_json::Value {
    let mut lines = out.lines();
    let titles: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let mut procs = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        let mut row: Vec<String> = Vec::with_capacity(titles.len());
        if f.len() > titles.len() && !titles.is_empty() {
            row.extend(f[..titles.len() - 1].iter().map(|s| s.to_string()));
            row.push(f[titles.len() - 1..].join(" "));
        } else {
            row.extend(f.iter().map(|s| s.to_string()));
        }
        procs.push(row);
    }
    serde_json::json!({ "Titles": titles, "Processes": procs })
}

/// `GET /containers/{id}/top?ps_args=`: 409 when the container is not running.
pub(crate) async fn top(state: &Arc<State>, req: Request, id: &str) -> Result {
    let args: Vec<String> = req
        .param("ps_args")
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if let Some(bad) = args
        .iter()
        .find(|a| a.contains("=PID") && !a.starts_with("pid="))
    {
        return Err(ApiError::bad_request(format!(
            "specifying \"{bad}\" is not allowed"
        )));
    }
    let id = lookup(state, id).await?;
    let engine = state.engine.clone();
    let out = blocking(move || Ok(engine.top(&id, &args)?)).await?;
    json(&parse_ps(&out))
}

/// `GET /containers/{id}/stats?stream=&one-shot=`: with `stream` (the default) one JSON
/// object a second until the client goes or the container is removed; without it one
/// object, after a second so that `precpu_stats` is filled (as Docker primes it), or at once
/// with `one-shot`.
pub(crate) async fn stats(state: &Arc<State>, req: Request, id: &str) -> Result {
    let stream = req.flag("stream", true)?;
    let one_shot = req.flag("one-shot", false)?;
    if stream && one_shot {
        return Err(ApiError::bad_request(
            "cannot have stream=true and one-shot=true",
        ));
    }
    let id = lookup(state, id).await?;
    let engine = state.engine.clone();
    if !stream {
        let s = blocking(move || {
            let first = engine.container_stats(&id, None)?;
            if one_shot || first.read == berth_sys::time::ZERO_TIME {
                return Ok(first);
            }
            std::thread::sleep(Duration::from_secs(1));
            Ok(engine.container_stats(&id, Some(&first))?)
        })
        .await?;
        return json(&s);
    }
    let (mut w, body) = http::writer_body();
    tokio::task::spawn_blocking(move || {
        let mut prev: Option<berth_engine::ContainerStats> = None;
        loop {
            let s = match engine.container_stats(&id, prev.as_ref()) {
                Ok(s) => s,
                Err(berth_engine::Error::NoSuchContainer(_)) => return,
                Err(e) => {
                    tracing::debug!(container = %id, error = %e, "stats");
                    w.fail(std::io::Error::other(e.to_string()));
                    return;
                }
            };
            let mut line = serde_json::to_vec(&s).unwrap_or_default();
            line.push(b'\n');
            if w.write_all(&line).is_err() {
                return;
            }
            // A container not running has no counters to difference.
            prev = (s.read != berth_sys::time::ZERO_TIME).then_some(s);
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let mut r = hyper::Response::new(body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

/// `GET /containers/{id}/changes`: `[{"Path", "Kind"}]`, Kind 0 changed, 1 added, 2 deleted.
pub(crate) async fn changes(state: &Arc<State>, _req: Request, id: &str) -> Result {
    let id = lookup(state, id).await?;
    let engine = state.engine.clone();
    let c = blocking(move || Ok(engine.changes(&id)?)).await?;
    json(&c)
}

/// A tar response streamed from blocking code (`export`, `archive`); an error after the
/// first bytes cuts the connection, so the client sees a broken archive, never a short one.
fn tar_stream(
    f: impl FnOnce(&mut http::ChannelWriter) -> berth_engine::Result<()> + Send + 'static,
) -> Response {
    let (mut w, body) = http::writer_body();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = f(&mut w) {
            tracing::warn!(error = %e, "tar stream failed");
            w.fail(std::io::Error::other(e.to_string()));
        }
    });
    let mut r = hyper::Response::new(body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    r
}

/// `GET /containers/{id}/export`: the container's filesystem as a tar.
pub(crate) async fn export(state: &Arc<State>, _req: Request, id: &str) -> Result {
    let id = lookup(state, id).await?;
    let engine = state.engine.clone();
    Ok(tar_stream(move |w| engine.export(&id, w)))
}

/// The stat header Docker's clients read: base64 of the stat's JSON.
fn stat_header(stat: &berth_engine::PathStat) -> Result<HeaderValue> {
    let text = serde_json::to_vec(stat).map_err(|e| ApiError::internal(e.to_string()))?;
    HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(text))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `GET|HEAD|PUT /containers/{id}/archive?path=`: GET a tar of the path with its stat in
/// `X-Docker-Container-Path-Stat`, HEAD only the stat, PUT a tar extracted into the
/// directory `path` (`noOverwriteDirNonDir`, `copyUIDGID`). A missing path is 404, a PUT
/// path that is not a directory 400.
pub(crate) async fn archive(state: &Arc<State>, mut req: Request, id: &str) -> Result {
    let path = req.param("path").unwrap_or("").to_string();
    if path.is_empty() {
        return Err(ApiError::bad_request("Path cannot be empty"));
    }
    let key = id.to_string();
    let id = lookup(state, id).await?;
    let engine = state.engine.clone();
    let (i, p) = (id.clone(), path.clone());
    let stat = blocking(move || Ok(engine.path_stat(&i, &p)?)).await?;
    let Some(stat) = stat else {
        return Err(ApiError::not_found(format!(
            "Could not find the file {path} in container {key}"
        )));
    };
    if req.method == Method::PUT {
        let no_overwrite = req.flag("noOverwriteDirNonDir", false)?;
        let copy_uid_gid = req.flag("copyUIDGID", false)?;
        let engine = state.engine.clone();
        let (i, p) = (id.clone(), path.clone());
        let is_dir = blocking(move || Ok(engine.path_kind(&i, &p)?)).await?;
        if is_dir != Some(true) {
            return Err(ApiError::bad_request("extraction point is not a directory"));
        }
        let mut body = req.reader();
        let engine = state.engine.clone();
        let o = berth_engine::ExtractOptions {
            no_overwrite_dir_non_dir: no_overwrite,
            copy_uid_gid,
        };
        blocking(move || {
            let r = engine.extract_archive(&id, &path, &o, &mut body);
            Ok(r?)
        })
        .await?;
        return Ok(http::status(StatusCode::OK));
    }
    let header = stat_header(&stat)?;
    let mut r = if req.method == Method::HEAD {
        http::status(StatusCode::OK)
    } else {
        let engine = state.engine.clone();
        let name = if stat.name == "/" {
            ".".to_string()
        } else {
            stat.name.clone()
        };
        tar_stream(move |w| engine.archive(&id, &path, &name, false, w))
    };
    r.headers_mut()
        .insert("x-docker-container-path-stat", header);
    if req.method == Method::HEAD {
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    }
    Ok(r)
}

/// `GET /system/df?type=`: Docker's `DiskUsage`: `LayersSize`, `Images` (image summaries
/// with `SharedSize` and `Containers`), `Containers` (container summaries with sizes),
/// `Volumes` (with `UsageData`), `BuildCache` (berth's build cache is its layer store: none
/// listed). `type` (`container`, `image`, `volume`, `build-cache`, repeated) limits it.
pub(crate) async fn system_df(state: &Arc<State>, req: Request) -> Result {
    let types: Vec<String> = req.all("type").iter().map(|s| s.to_string()).collect();
    for t in &types {
        if !matches!(t.as_str(), "container" | "image" | "volume" | "build-cache") {
            return Err(ApiError::bad_request(format!(
                "invalid type {t:?} (container, image, volume, build-cache)"
            )));
        }
    }
    let want = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
    let (images, containers, volumes, cache) = (
        want("image"),
        want("container"),
        want("volume"),
        want("build-cache"),
    );
    let engine = state.engine.clone();
    let v = blocking(move || {
        let du = engine.disk_usage()?;
        let mut out = serde_json::Map::new();
        if images {
            let by_id: HashMap<&str, &berth_engine::ImageUsage> =
                du.images.iter().map(|i| (i.id.as_str(), i)).collect();
            let mut list = engine.image_summaries(&berth_engine::ImageListOptions {
                all: true,
                ..Default::default()
            })?;
            for i in &mut list {
                let u = by_id.get(i.id.as_str());
                i.shared_size = u.map_or(0, |u| u.shared_size as i64);
                i.containers = u.map_or(0, |u| u.containers as i64);
            }
            out.insert("LayersSize".into(), du.layers_size.into());
            out.insert(
                "Images".into(),
                serde_json::to_value(list).unwrap_or_default(),
            );
        }
        if containers {
            let list = engine.containers(&berth_engine::ListOptions {
                all: true,
                size: true,
                ..Default::default()
            })?;
            let mut list = serde_json::to_value(list).unwrap_or_default();
            // Docker's mounts name the volume driver, which `LocalVolumes` counts.
            for c in list.as_array_mut().into_iter().flatten() {
                for m in c["Mounts"].as_array_mut().into_iter().flatten() {
                    if m["Type"] == "volume" {
                        m["Driver"] = "local".into();
                    }
                }
            }
            out.insert("Containers".into(), list);
        }
        if volumes {
            let usage: HashMap<&str, &berth_engine::VolumeUsage> =
                du.volumes.iter().map(|v| (v.name.as_str(), v)).collect();
            let mut list = Vec::new();
            for v in engine.volumes()? {
                let u = usage.get(v.name.as_str());
                let mut j = serde_json::to_value(&v).unwrap_or_default();
                j["UsageData"] = serde_json::json!({
                    "Size": u.map_or(-1, |u| u.size as i64),
                    "RefCount": u.map_or(0, |u| u.links as i64),
                });
                list.push(j);
            }
            out.insert("Volumes".into(), list.into());
        }
        if cache {
            out.insert("BuildCache".into(), serde_json::json!([]));
        }
        Ok(serde_json::Value::Object(out))
    })
    .await?;
    json(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_output_keeps_the_command_whole() {
        let out = "UID   PID  PPID  C STIME TTY  TIME     CMD\n\
                   root    1     0  0 10:00 ?    00:00:00 sh -c sleep 100\n\
                   root    7     1  0 10:00 ?    00:00:00 sleep 100\n";
        let v = parse_ps(out);
        assert_eq!(v["Titles"].as_array().unwrap().len(), 8);
        assert_eq!(v["Processes"][0][7], "sh -c sleep 100");
        assert_eq!(v["Processes"][1][1], "7");
        assert_eq!(v["Processes"].as_array().unwrap().len(), 2);
    }
}
