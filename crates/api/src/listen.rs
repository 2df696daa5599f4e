//! Where the server listens: unix sockets (mode 0660, a chosen group), TCP with mutual TLS (or
//! plain on loopback only when asked), sockets handed over by a boot unit (`LISTEN_FDS`,
//! `fd://`). Each connection is served by hyper with upgrades (attach, exec) until SIGTERM or
//! SIGINT, when the listeners close and the unix sockets are removed.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};

use crate::{Error, ServeOptions, State};

/// One `-H` address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// `unix:///PATH`.
    Unix(PathBuf),
    /// `tcp://ADDR:PORT`.
    Tcp(SocketAddr),
    /// `fd://` (every socket of `LISTEN_FDS`) or `fd://N` (one of them).
    Fd(Option<RawFd>),
}

impl std::str::FromStr for Host {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Ok(Host::Unix(PathBuf::from(crate::DEFAULT_SOCKET)));
            }
            if !p.starts_with('/') {
                return Err(format!(
                    "{s}: a unix socket needs an absolute path (unix:///run/x.sock)"
                ));
            }
            return Ok(Host::Unix(PathBuf::from(p)));
        }
        if let Some(a) = s.strip_prefix("tcp://") {
            let a = a.trim_end_matches('/');
            let addr = if a.starts_with(':') {
                format!("0.0.0.0{a}")
            } else {
                a.to_string()
            };
            return addr
                .parse()
                .map(Host::Tcp)
                .map_err(|_| format!("{s}: expected tcp://ADDR:PORT (an IP address and a port)"));
        }
        if let Some(n) = s.strip_prefix("fd://") {
            if n.is_empty() {
                return Ok(Host::Fd(None));
            }
            return n
                .parse()
                .map(|n| Host::Fd(Some(n)))
                .map_err(|_| format!("{s}: expected fd:// or fd://N"));
        }
        if s.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(s)));
        }
        Err(format!(
            "{s}: expected unix:///PATH, tcp://ADDR:PORT or fd://"
        ))
    }
}

/// The certificates of a TCP listener: the server's own, and the CA client certificates must
/// be signed by (`--tlsverify`).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// `--tlscacert`: clients' certificates must chain to it.
    pub ca: PathBuf,
    /// `--tlscert`.
    pub cert: PathBuf,
    /// `--tlskey`.
    pub key: PathBuf,
}

pub(crate) enum Listener {
    Unix(UnixListener, Option<PathBuf>),
    Tcp(TcpListener, Option<tokio_rustls::TlsAcceptor>),
}

/// Binds every host of `opts` (the default socket when none), refusing plain TCP off
/// loopback and plain TCP without `--insecure-tcp`.
pub(crate) async fn bind_all(opts: &ServeOptions) -> Result<Vec<Listener>, Error> {
    let hosts = if opts.hosts.is_empty() {
        vec![Host::Unix(PathBuf::from(crate::DEFAULT_SOCKET))]
    } else {
        opts.hosts.clone()
    };
    let gid = match &opts.group {
        Some(g) => Some(group_id(g)?),
        None => None,
    };
    let acceptor = match &opts.tls {
        Some(t) => Some(tls_acceptor(t)?),
        None => None,
    };
    let mut out = Vec::new();
    for h in hosts {
        match h {
            Host::Unix(path) => out.push(bind_unix(&path, gid)?),
            Host::Tcp(addr) => {
                if acceptor.is_none() {
                    if !opts.insecure_tcp {
                        return Err(Error::Listen(format!(
                            "tcp://{addr}: refusing plain TCP: the API is root-equivalent; give --tlsverify --tlscacert --tlscert --tlskey, or --insecure-tcp for a loopback address"
                        )));
                    }
                    if !addr.ip().is_loopback() {
                        return Err(Error::Listen(format!(
                            "tcp://{addr}: --insecure-tcp listens on loopback addresses only (127.0.0.1, ::1); use TLS for {}",
                            addr.ip()
                        )));
                    }
                }
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|e| Error::Io(format!("listen on tcp://{addr}"), e))?;
                tracing::info!(%addr, tls = acceptor.is_some(), "listening");
                out.push(Listener::Tcp(l, acceptor.clone()));
            }
            Host::Fd(which) => {
                for fd in activated_fds()? {
                    if which.is_some_and(|w| w != fd) {
                        continue;
                    }
                    out.push(from_fd(fd, acceptor.clone(), opts.insecure_tcp)?);
                }
                if let Some(w) = which
                    && out.is_empty()
                {
                    return Err(Error::Listen(format!(
                        "fd://{w}: not one of the sockets in LISTEN_FDS"
                    )));
                }
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Listen("nothing to listen on".into()));
    }
    Ok(out)
}

/// The sockets a service manager passed (`LISTEN_PID` = us, `LISTEN_FDS` = N: fds 3..3+N).
fn activated_fds() -> Result<Vec<RawFd>, Error> {
    let pid: Option<u32> = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse().ok());
    let n: Option<i32> = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|p| p.parse().ok());
    match (pid, n) {
        (Some(pid), Some(n)) if pid == std::process::id() && n > 0 => Ok((3..3 + n).collect()),
        _ => Err(Error::Listen(
            "fd://: no sockets were passed (LISTEN_FDS and LISTEN_PID are not set for this process)".into(),
        )),
    }
}

fn from_fd(
    fd: RawFd,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    insecure: bool,
) -> Result<Listener, Error> {
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes an int into `domain`, `len` holds its size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&raw mut domain).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(Error::Io(
            format!("fd://{fd}: not a socket"),
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: the service manager passed us this fd to own; it is set non-blocking for tokio.
    unsafe {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    if domain == libc::AF_UNIX {
        // SAFETY: as above: we own the fd from here on.
        let std_l = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
        let l = UnixListener::from_std(std_l).map_err(|e| Error::Io(format!("fd://{fd}"), e))?;
        return Ok(Listener::Unix(l, None));
    }
    // SAFETY: as above.
    let std_l = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    let addr = std_l
        .local_addr()
        .map_err(|e| Error::Io(format!("fd://{fd}"), e))?;
    if acceptor.is_none() && !(insecure && addr.ip().is_loopback()) {
        return Err(Error::Listen(format!(
            "fd://{fd} (tcp://{addr}): refusing plain TCP; give TLS certificates, or --insecure-tcp for loopback"
        )));
    }
    let l = TcpListener::from_std(std_l).map_err(|e| Error::Io(format!("fd://{fd}"), e))?;
    Ok(Listener::Tcp(l, acceptor))
}

fn bind_unix(path: &Path, gid: Option<u32>) -> Result<Listener, Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Io(format!("create {}", dir.display()), e))?;
    }
    // A socket left by a server that died: remove it only if nobody answers on it.
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Error::Listen(format!(
                "{}: another server is listening there already",
                path.display()
            )));
        }
        let _ = std::fs::remove_file(path);
    }
    let l = UnixListener::bind(path)
        .map_err(|e| Error::Io(format!("listen on unix://{}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| Error::Io(format!("chmod {}", path.display()), e))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(|e| Error::Io(format!("chown {}", path.display()), e))?;
    }
    tracing::info!(path = %path.display(), "listening");
    Ok(Listener::Unix(l, Some(path.to_path_buf())))
}

/// A group name or number to its gid, from /etc/group.
fn group_id(g: &str) -> Result<u32, Error> {
    if let Ok(n) = g.parse() {
        return Ok(n);
    }
    let text = std::fs::read_to_string("/etc/group")
        .map_err(|e| Error::Io("read /etc/group".into(), e))?;
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            f.next();
            let gid = f.next()?.parse().ok()?;
            (name == g).then_some(gid)
        })
        .next()
        .ok_or_else(|| Error::Listen(format!("--group {g}: no such group in /etc/group")))
}

/// A TLS acceptor that requires a client certificate signed by the CA.
fn tls_acceptor(t: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = |p: &Path| -> Result<Vec<CertificateDer<'static>>, Error> {
        let v: Result<Vec<_>, _> = CertificateDer::pem_file_iter(p)
            .map_err(|e| Error::Listen(format!("{}: {e}", p.display())))?
            .collect();
        let v = v.map_err(|e| Error::Listen(format!("{}: {e}", p.display())))?;
        if v.is_empty() {
            return Err(Error::Listen(format!(
                "{}: no PEM certificate in it",
                p.display()
            )));
        }
        Ok(v)
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&t.ca)? {
        roots
            .add(c)
            .map_err(|e| Error::Listen(format!("--tlscacert {}: {e}", t.ca.display())))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| Error::Listen(format!("--tlscacert {}: {e}", t.ca.display())))?;
    let key = PrivateKeyDer::from_pem_file(&t.key)
        .map_err(|e| Error::Listen(format!("--tlskey {}: {e}", t.key.display())))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Listen(format!("TLS: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&t.cert)?, key)
        .map_err(|e| Error::Listen(format!("--tlscert/--tlskey: {e}")))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves every listener until SIGTERM or SIGINT.
pub(crate) async fn serve_all(listeners: Vec<Listener>, state: Arc<State>) -> Result<(), Error> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::Io("watch SIGTERM".into(), e))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Error::Io("watch SIGINT".into(), e))?;
    let mut paths = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        let state = state.clone();
        match l {
            Listener::Unix(l, path) => {
                paths.extend(path);
                tasks.spawn(async move {
                    loop {
                        match l.accept().await {
                            Ok((s, _)) => spawn_conn(s, state.clone()),
                            Err(e) => accept_error(e).await,
                        }
                    }
                });
            }
            Listener::Tcp(l, tls) => {
                tasks.spawn(async move {
                    loop {
                        match l.accept().await {
                            Ok((s, peer)) => {
                                let _ = s.set_nodelay(true);
                                match &tls {
                                    None => spawn_conn(s, state.clone()),
                                    Some(acc) => {
                                        let acc = acc.clone();
                                        let state = state.clone();
                                        tokio::spawn(async move {
                                            match acc.accept(s).await {
                                                Ok(s) => spawn_conn(s, state),
                                                Err(e) => tracing::info!(%peer, error = %e, "TLS handshake refused"),
                                            }
                                        });
                                    }
                                }
                            }
                            Err(e) => accept_error(e).await,
                        }
                    }
                });
            }
        }
    }
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping (containers keep running)"),
        _ = int.recv() => tracing::info!("SIGINT: stopping (containers keep running)"),
    }
    tasks.abort_all();
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

async fn accept_error(e: std::io::Error) {
    tracing::warn!(error = %e, "accept");
    // EMFILE and the like: give the process a moment instead of spinning.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

fn spawn_conn<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(s: S, state: Arc<State>) {
    tokio::spawn(async move {
        let service = hyper::service::service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, std::convert::Infallible>(crate::router::handle(state, req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(s), service)
            .with_upgrades();
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "connection");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            "unix:///run/x.sock".parse::<Host>().unwrap(),
            Host::Unix("/run/x.sock".into())
        );
        assert_eq!(
            "tcp://127.0.0.1:2375".parse::<Host>().unwrap(),
            Host::Tcp("127.0.0.1:2375".parse().unwrap())
        );
        assert_eq!(
            "tcp://:2376".parse::<Host>().unwrap(),
            Host::Tcp("0.0.0.0:2376".parse().unwrap())
        );
        assert_eq!("fd://".parse::<Host>().unwrap(), Host::Fd(None));
        assert_eq!("fd://3".parse::<Host>().unwrap(), Host::Fd(Some(3)));
        assert!("unix://rel".parse::<Host>().is_err());
        assert!("tcp://nohost".parse::<Host>().is_err());
        assert!("http://x".parse::<Host>().is_err());
    }
}
