//! `berth serve` as a server: TLS with client certificates, the refusal of plain TCP,
//! socket activation, restarting containers at start.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::serve::{Server, free_port};
use common::{Berth, IMAGE, berth_bin, runtime_bin};

/// A CA, a server certificate for 127.0.0.1 and a client certificate signed by it, and a
/// second client certificate from another CA; written as docker's file names under `dir`
/// (ca.pem, server-cert.pem, server-key.pem, cert.pem, key.pem) and `rogue/`.
fn make_certs(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, SanType,
    };
    let ca = |name: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        (cert.pem(), Issuer::new(p, key))
    };
    let leaf = |issuer: &Issuer<'_, KeyPair>, server: bool| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        if server {
            p.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        } else {
            p.distinguished_name.push(DnType::CommonName, "client");
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (ca_pem, issuer) = ca("berth test CA");
    let (server_cert, server_key) = leaf(&issuer, true);
    let (client_cert, client_key) = leaf(&issuer, false);
    std::fs::write(dir.join("ca.pem"), &ca_pem).unwrap();
    std::fs::write(dir.join("server-cert.pem"), server_cert).unwrap();
    std::fs::write(dir.join("server-key.pem"), server_key).unwrap();
    std::fs::write(dir.join("cert.pem"), client_cert).unwrap();
    std::fs::write(dir.join("key.pem"), client_key).unwrap();
    // A client whose certificate another CA signed; it trusts the server's CA.
    let (_, rogue_issuer) = ca("rogue CA");
    let (rogue_cert, rogue_key) = leaf(&rogue_issuer, false);
    let rogue = dir.join("rogue");
    std::fs::create_dir_all(&rogue).unwrap();
    std::fs::write(rogue.join("ca.pem"), ca_pem).unwrap();
    std::fs::write(rogue.join("cert.pem"), rogue_cert).unwrap();
    std::fs::write(rogue.join("key.pem"), rogue_key).unwrap();
}

#[test]
fn tcp_needs_a_client_certificate_signed_by_the_ca() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let port = free_port();
    let c = |f: &str| certs.path().join(f).display().to_string();
    let s = Server::start(&[
        "-H",
        &format!("tcp://127.0.0.1:{port}"),
        "--tlsverify",
        "--tlscacert",
        &c("ca.pem"),
        "--tlscert",
        &c("server-cert.pem"),
        "--tlskey",
        &c("server-key.pem"),
    ]);
    s.berth.ok(&["create", "--name", "over-tls", IMAGE, "true"]);
    let tcp = format!("tcp://127.0.0.1:{port}");
    // DOCKER_CERT_PATH + DOCKER_TLS_VERIFY, as users set them.
    let docker = |cert_path: &Path| {
        let o = s
            .client("docker")
            .env("DOCKER_HOST", &tcp)
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", cert_path)
            .args(["info", "--format", "{{.Containers}}"])
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    let (ok, out) = docker(certs.path());
    assert!(ok, "docker over TLS failed: {out}\n{}", s.log());
    assert_eq!(out.trim(), "1", "the container made with the CLI");
    // Another CA's client certificate is refused in the handshake.
    let (ok, out) = docker(&certs.path().join("rogue"));
    assert!(
        !ok,
        "a client certificate from another CA was accepted: {out}"
    );
    // No client certificate at all: refused too.
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert", &c("ca.pem")])
        .arg(format!("https://127.0.0.1:{port}/_ping"))
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "a request without a client certificate was answered: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    // Plain HTTP on the TLS port gets nothing.
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{port}/_ping"))
        .output()
        .unwrap();
    assert!(!o.status.success() || !String::from_utf8_lossy(&o.stdout).contains("OK"));
}

/// `berth serve ARGS` run to its exit: (status, stderr).
fn serve_exit(b: &Berth, args: &[&str]) -> (i32, String) {
    let o = Command::new(berth_bin())
        .arg("--root")
        .arg(b.root.path())
        .arg("--runtime")
        .arg(runtime_bin())
        .arg("serve")
        .args(["--no-boot"])
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn plain_tcp_is_refused_unless_asked_for_on_loopback() {
    let b = Berth::new();
    let port = free_port();
    let (code, err) = serve_exit(&b, &["-H", &format!("tcp://127.0.0.1:{port}")]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("refusing plain TCP") && err.contains("--tlsverify"),
        "{err}"
    );
    let (code, err) = serve_exit(
        &b,
        &["--insecure-tcp", "-H", &format!("tcp://0.0.0.0:{port}")],
    );
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("loopback"), "{err}");
    let (code, err) = serve_exit(&b, &["--tlscert", "/nonexistent"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("--tlscacert"), "{err}");
    let (code, err) = serve_exit(&b, &["-H", "http://x"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("unix:///PATH"), "{err}");
    // On loopback with --insecure-tcp it serves.
    let sock = b.root.path().join("api.sock");
    let args: Vec<String> = [
        "--no-boot",
        "--insecure-tcp",
        "-H",
        &format!("tcp://127.0.0.1:{port}"),
        "-H",
        &format!("unix://{}", sock.display()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let s = Server::spawn(b, sock, &args, |_| {});
    let o = s
        .client("docker")
        .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
        .args(["version", "--format", "{{.Server.Os}}"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "linux");
}

#[test]
fn socket_activation_serves_the_passed_socket() {
    let b = Berth::new();
    let sock = b.root.path().join("activated.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    // What a service manager does: the socket as fd 3, LISTEN_FDS=1, LISTEN_PID = the
    // server's pid (sh's, which execs berth).
    let line = format!(
        "LISTEN_PID=$$ LISTEN_FDS=1 exec {} --root {} --runtime {} -D serve --no-boot -H fd://",
        berth_bin().display(),
        b.root.path().display(),
        runtime_bin().display()
    );
    let mut s = Server::spawn(b, sock.clone(), &[], |c| {
        *c = {
            let mut sh = Command::new("sh");
            sh.args(["-c", &line]);
            sh.stdin(std::process::Stdio::null());
            // SAFETY: dup2 and fcntl only, between fork and exec.
            unsafe {
                sh.pre_exec(move || {
                    if libc::dup2(fd, 3) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::fcntl(3, libc::F_SETFD, 0);
                    Ok(())
                });
            }
            sh
        };
    });
    drop(listener);
    let out = s.docker_ok(&["info", "--format", "{{.OSType}}"]);
    assert_eq!(out.trim(), "linux");
    assert!(s.stop(), "no exit at SIGTERM");
    // A socket it did not create is not its to remove.
    assert!(sock.exists());
}

#[test]
fn restarts_always_and_unless_stopped_containers_at_start() {
    let b = Berth::new();
    for (name, policy) in [
        ("always", "always"),
        ("unless", "unless-stopped"),
        ("unless2", "unless-stopped"),
    ] {
        b.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            IMAGE,
            "sleep",
            "1000",
        ]);
    }
    b.ok(&["run", "-d", "--name", "never", IMAGE, "sleep", "1000"]);
    for n in ["always", "unless", "never"] {
        b.ok(&["stop", "-t", "0", n]);
    }
    // unless2 is stopped without a user asking: its init is killed (as by a reboot).
    let pid = b.inspect("unless2")["State"]["Pid"].as_i64().unwrap();
    // SAFETY: kill has no memory arguments.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    b.wait_for(20, "unless2 to restart or exit", || {
        b.inspect("unless2")["RestartCount"].as_i64().unwrap_or(0) > 0
            || b.inspect("unless2")["State"]["Running"] == false
    });
    let sock = b.root.path().join("api.sock");
    let args = vec!["-H".to_string(), format!("unix://{}", sock.display())];
    let s = Server::spawn(b, sock, &args, |_| {});
    let running = |n: &str| s.berth.inspect(n)["State"]["Running"] == true;
    // The server starts them one after the other, in no set order.
    s.berth
        .wait_for(30, "always and unless2 to be started by the server", || {
            running("always") && running("unless2")
        });
    assert!(
        !running("unless"),
        "a container the user stopped was restarted"
    );
    assert!(!running("never"));
}

/// The children of `pid` that are zombies.
fn zombie_children(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split(' ');
        let (state, ppid) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
        if state == "Z" && ppid == pid.to_string() {
            out.push(stat);
        }
    }
    out
}

#[test]
fn monitors_the_server_started_are_reaped() {
    let s = Server::start(&[]);
    for _ in 0..3 {
        s.docker_ok(&["run", "--rm", "--network", "none", IMAGE, "true"]);
    }
    s.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "short",
        IMAGE,
        "true",
    ]);
    s.docker_ok(&["wait", "short"]);
    s.docker_ok(&["rm", "short"]);
    s.berth
        .wait_for(20, "the server's exited monitors to be reaped", || {
            zombie_children(s.pid()).is_empty()
        });
}
