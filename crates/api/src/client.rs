//! A small blocking client of a `berth serve` (what `berth migrate` talks to): one request per
//! connection over a unix socket, or over TCP with TLS and a client certificate (the server
//! accepts nothing else on TCP but loopback with `--insecure-tcp`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::listen::TlsFiles;

/// Where the server listens.
#[derive(Clone, Debug)]
pub enum Address {
    /// `unix:///path`.
    Unix(PathBuf),
    /// `tcp://host:port`, TLS with these files (none: plain, for `--insecure-tcp`).
    Tcp(String, Option<TlsFiles>),
}

/// A client's failure: connecting, or the server's answer (status and message).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection or the exchange failed.
    #[error("{0}")]
    Transport(String),
    /// The server answered with an error status.
    #[error("{message} (HTTP {status})")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's `message`, or the body.
        message: String,
    },
}

/// A client of one server.
pub struct Client {
    addr: Address,
}

impl Address {
    /// `unix:///PATH` or `tcp://HOST:PORT` (with `tls` for TCP).
    pub fn parse(s: &str, tls: Option<TlsFiles>) -> Result<Address, ClientError> {
        if let Some(p) = s.strip_prefix("unix://") {
            return Ok(Address::Unix(PathBuf::from(p)));
        }
        if let Some(a) = s.strip_prefix("tcp://") {
            return Ok(Address::Tcp(a.trim_end_matches('/').to_string(), tls));
        }
        Err(ClientError::Transport(format!(
            "{s:?}: a berth serve address is unix:///PATH or tcp://HOST:PORT"
        )))
    }
}

impl Client {
    /// A client of the server at `addr`.
    pub fn new(addr: Address) -> Client {
        Client { addr }
    }

    /// `METHOD PATH` with `body` (`content_type`); the response's body on a 2xx status.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, ClientError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Transport(format!("start the client: {e}")))?;
        rt.block_on(self.exchange(method, path, content_type, body))
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, ClientError> {
        let t = |e: &dyn std::fmt::Display| ClientError::Transport(format!("{}: {e}", self.name()));
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "berth")
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| t(&e))?;
        let resp = match &self.addr {
            Address::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|e| t(&e))?;
                send(TokioIo::new(s), req).await.map_err(|e| t(&e))?
            }
            Address::Tcp(a, tls) => {
                let s = tokio::net::TcpStream::connect(a).await.map_err(|e| t(&e))?;
                match tls {
                    None => send(TokioIo::new(s), req).await.map_err(|e| t(&e))?,
                    Some(files) => {
                        let host = a.rsplit_once(':').map(|(h, _)| h).unwrap_or(a);
                        let conn = connector(files).map_err(|e| t(&e))?;
                        let name = rustls::pki_types::ServerName::try_from(host.to_string())
                            .map_err(|e| t(&e))?;
                        let s = conn.connect(name, s).await.map_err(|e| t(&e))?;
                        send(TokioIo::new(s), req).await.map_err(|e| t(&e))?
                    }
                }
            }
        };
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| t(&e))?
            .to_bytes()
            .to_vec();
        if !(200..300).contains(&status) {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["message"].as_str().map(String::from))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
            return Err(ClientError::Status { status, message });
        }
        Ok(bytes)
    }

    fn name(&self) -> String {
        match &self.addr {
            Address::Unix(p) => format!("unix://{}", p.display()),
            Address::Tcp(a, _) => format!("tcp://{a}"),
        }
    }
}

async fn send<S>(
    io: TokioIo<S>,
    req: hyper::Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(req).await
}

/// TLS with the server's CA and our client certificate.
fn connector(t: &TlsFiles) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read_certs = |p: &Path| -> Result<Vec<CertificateDer<'static>>, String> {
        CertificateDer::pem_file_iter(p)
            .map_err(|e| format!("{}: {e}", p.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in read_certs(&t.ca)? {
        roots
            .add(c)
            .map_err(|e| format!("{}: {e}", t.ca.display()))?;
    }
    let key =
        PrivateKeyDer::from_pem_file(&t.key).map_err(|e| format!("{}: {e}", t.key.display()))?;
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_client_auth_cert(read_certs(&t.cert)?, key)
    .map_err(|e| format!("{}: {e}", t.cert.display()))?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(cfg)))
}
