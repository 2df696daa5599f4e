//! A tiny in-test registry on loopback serving one image from memory, which can lie (a blob
//! with the wrong bytes or the wrong size), fail (503 a few times) or want bearer tokens from
//! its own token endpoint. The one legitimate fake: real registries do not lie on demand.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use berth_image::Digest;

#[derive(Default, Clone)]
pub struct Behaviour {
    /// Serve these bytes instead of the blob's (same length, other content).
    pub wrong_digest: Option<Digest>,
    /// Serve this blob with one extra byte (Content-Length matching what is sent).
    pub wrong_size: Option<Digest>,
    /// Answer 503 this many times to each blob request before serving it.
    pub fail_first: usize,
    /// Want `Authorization: Bearer <token>` on /v2/ paths; tokens from /token, given basic
    /// auth for this user and password.
    pub bearer: Option<(String, String)>,
    /// Also serve the manifest under this (wrong) digest.
    pub manifest_lie: Option<Digest>,
    /// Answer the manifest request by tag with 200 and these bytes instead (garbage).
    pub manifest_body: Option<Vec<u8>>,
    /// Send this blob's headers (full Content-Length) and half its bytes, then close the
    /// connection; this many times, then serve it whole.
    pub truncate: Option<(Digest, usize)>,
}

#[derive(Default)]
pub struct Log {
    /// Request lines, in order.
    pub requests: Vec<String>,
    /// Scopes asked of the token endpoint.
    pub token_scopes: Vec<String>,
}

pub struct FakeRegistry {
    pub addr: String,
    pub log: Arc<Mutex<Log>>,
}

const TOKEN: &str = "test-token-42";

struct Content {
    manifests: HashMap<String, (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
}

impl FakeRegistry {
    /// Serves `repo:tag` -> `manifest` (with `media_type`) and `blobs`.
    pub fn start(
        repo: &str,
        tag: &str,
        media_type: &str,
        manifest: Vec<u8>,
        blobs: Vec<Vec<u8>>,
        behaviour: Behaviour,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut manifests = HashMap::new();
        let digest = Digest::of(&manifest).to_string();
        manifests.insert(
            format!("/v2/{repo}/manifests/{tag}"),
            (
                media_type.to_string(),
                behaviour
                    .manifest_body
                    .clone()
                    .unwrap_or_else(|| manifest.clone()),
            ),
        );
        if let Some(lie) = &behaviour.manifest_lie {
            manifests.insert(
                format!("/v2/{repo}/manifests/{lie}"),
                (media_type.to_string(), manifest.clone()),
            );
        }
        manifests.insert(
            format!("/v2/{repo}/manifests/{digest}"),
            (media_type.to_string(), manifest),
        );
        let blobs = blobs
            .into_iter()
            .map(|b| (format!("/v2/{repo}/blobs/{}", Digest::of(&b)), b))
            .collect();
        let content = Arc::new(Content { manifests, blobs });
        let log = Arc::new(Mutex::new(Log::default()));
        let failures = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        let (log2, addr2) = (log.clone(), addr.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (content, log, failures, behaviour, addr) = (
                    content.clone(),
                    log2.clone(),
                    failures.clone(),
                    behaviour.clone(),
                    addr2.clone(),
                );
                std::thread::spawn(move || {
                    let _ = serve(conn, &content, &log, &failures, &behaviour, &addr);
                });
            }
        });
        Self { addr, log }
    }

    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().requests.clone()
    }
}

fn respond(
    mut s: &TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
    head: bool,
) -> std::io::Result<()> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    s.write_all(out.as_bytes())?;
    if !head {
        s.write_all(body)?;
    }
    s.flush()
}

fn serve(
    conn: TcpStream,
    content: &Content,
    log: &Mutex<Log>,
    failures: &Mutex<HashMap<String, usize>>,
    b: &Behaviour,
    addr: &str,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end().to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        log.lock().unwrap().requests.push(line.clone());
        let mut parts = line.split(' ');
        let method = parts.next().unwrap_or("");
        let target = parts.next().unwrap_or("").to_string();
        let head = method == "HEAD";
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));

        if path == "/token" {
            let (user, password) = b.bearer.clone().unwrap_or_default();
            let want = format!(
                "Basic {}",
                base64_encode(format!("{user}:{password}").as_bytes())
            );
            let scopes: Vec<String> = query
                .split('&')
                .filter_map(|kv| kv.strip_prefix("scope="))
                .map(|s| {
                    s.replace("%3A", ":")
                        .replace("%2F", "/")
                        .replace("%2C", ",")
                })
                .collect();
            log.lock().unwrap().token_scopes.extend(scopes);
            if headers.get("authorization") != Some(&want) {
                respond(
                    &conn,
                    "401 Unauthorized",
                    &[],
                    b"{\"details\":\"bad credentials\"}",
                    head,
                )?;
            } else {
                let body = format!("{{\"token\":\"{TOKEN}\"}}");
                respond(
                    &conn,
                    "200 OK",
                    &[("Content-Type", "application/json".into())],
                    body.as_bytes(),
                    head,
                )?;
            }
            continue;
        }
        if b.bearer.is_some() && headers.get("authorization") != Some(&format!("Bearer {TOKEN}")) {
            let challenge = format!(
                "Bearer realm=\"http://{addr}/token\",service=\"fake\",scope=\"repository:x:pull\""
            );
            respond(
                &conn,
                "401 Unauthorized",
                &[("WWW-Authenticate", challenge)],
                b"{}",
                head,
            )?;
            continue;
        }
        if path == "/v2/" {
            respond(&conn, "200 OK", &[], b"{}", head)?;
            continue;
        }
        if let Some((mt, data)) = content.manifests.get(path) {
            let headers = [
                ("Content-Type", mt.clone()),
                ("Docker-Content-Digest", Digest::of(data).to_string()),
            ];
            respond(&conn, "200 OK", &headers, data, head)?;
            continue;
        }
        if let Some(data) = content.blobs.get(path) {
            {
                let mut f = failures.lock().unwrap();
                let n = f.entry(path.to_string()).or_default();
                if *n < b.fail_first {
                    *n += 1;
                    drop(f);
                    respond(&conn, "503 Service Unavailable", &[], b"try later", head)?;
                    continue;
                }
            }
            let digest = Digest::of(data);
            if let Some((d, times)) = &b.truncate
                && d == &digest
            {
                let mut f = failures.lock().unwrap();
                let n = f.entry(format!("truncate {path}")).or_default();
                if *n < *times {
                    *n += 1;
                    drop(f);
                    let head_part = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\
                         Content-Type: application/octet-stream\r\n\r\n",
                        data.len()
                    );
                    let mut s = &conn;
                    s.write_all(head_part.as_bytes())?;
                    s.write_all(&data[..data.len() / 2])?;
                    s.flush()?;
                    // Closed mid-body: both halves of the socket go when `serve` returns.
                    conn.shutdown(std::net::Shutdown::Both)?;
                    return Ok(());
                }
            }
            let mut data = data.clone();
            if b.wrong_digest.as_ref() == Some(&digest) {
                data.iter_mut().for_each(|x| *x = x.wrapping_add(1));
            }
            if b.wrong_size.as_ref() == Some(&digest) {
                data.push(b'!');
            }
            respond(
                &conn,
                "200 OK",
                &[("Content-Type", "application/octet-stream".into())],
                &data,
                head,
            )?;
            continue;
        }
        respond(
            &conn,
            "404 Not Found",
            &[],
            b"{\"errors\":[{\"code\":\"NOT_FOUND\"}]}",
            head,
        )?;
    }
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
