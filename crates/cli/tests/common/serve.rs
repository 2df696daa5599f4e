//! A `berth serve` of a test's own (its root is the [`Berth`]'s, its socket in that root),
//! killed on drop, and the real docker CLI pointed at it.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{Berth, berth_bin, output_with_input, runtime_bin, stderr, stdout};

/// A running `berth serve` over `berth`'s root.
pub struct Server {
    /// The berth whose root it serves (its CLI sees the same containers).
    pub berth: Berth,
    /// The unix socket.
    pub sock: PathBuf,
    child: Child,
}

impl Server {
    /// Starts `berth serve --no-boot -H unix://ROOT/api.sock` (plus `extra` flags) and waits
    /// until it listens.
    pub fn start(extra: &[&str]) -> Self {
        let berth = Berth::new();
        let sock = berth.root.path().join("api.sock");
        let mut args = vec![
            "--no-boot".to_string(),
            "-H".into(),
            format!("unix://{}", sock.display()),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Self::spawn(berth, sock, &args, |_| {})
    }

    /// Starts `berth serve ARGS` over `berth`'s root (`edit` may change the command: an
    /// environment, fds) and waits until `sock` accepts connections.
    pub fn spawn(
        berth: Berth,
        sock: PathBuf,
        args: &[String],
        edit: impl FnOnce(&mut Command),
    ) -> Self {
        let log = std::fs::File::create(berth.root.path().join("serve.log")).unwrap();
        let mut cmd = Command::new(berth_bin());
        cmd.arg("--root")
            .arg(berth.root.path())
            .arg("--runtime")
            .arg(runtime_bin())
            .args(["-D", "serve"])
            .args(args);
        edit(&mut cmd);
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().expect("start berth serve");
        let s = Server { berth, sock, child };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if std::os::unix::net::UnixStream::connect(&s.sock).is_ok() {
                break;
            }
            assert!(
                Instant::now() < until,
                "berth serve did not listen: {}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    /// The server's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `unix://SOCK`, for DOCKER_HOST.
    pub fn host(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.berth.root.path().join("serve.log")).unwrap_or_default()
    }

    /// A command for `program` (docker, docker.io's docker, docker-compose, python3) with
    /// DOCKER_HOST set to this server and a private client config directory.
    pub fn client(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        let config = self.berth.root.path().join("docker-config");
        std::fs::create_dir_all(&config).unwrap();
        c.env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", &config)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .stdin(Stdio::null());
        c
    }

    /// The docker CLI 28 (`docker` on PATH) with `args`.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.client("docker").args(args).output().unwrap()
    }

    /// The docker CLI, asserting success; stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({:?}):\nstdout: {}\nstderr: {}\nserver log:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            tail(&self.log(), 40)
        );
        stdout(&o)
    }

    /// The docker CLI, asserting failure; its stderr.
    pub fn docker_err(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            !o.status.success(),
            "docker {args:?} succeeded:\n{}",
            stdout(&o)
        );
        stderr(&o)
    }

    /// `sh -c SCRIPT` with the client's environment (a docker pipeline), asserting success;
    /// stdout.
    pub fn sh_ok(&self, script: &str) -> String {
        let o = self.client("sh").args(["-c", script]).output().unwrap();
        assert!(o.status.success(), "sh -c {script:?}: {}", self.explain(&o));
        stdout(&o)
    }

    /// `python3 ARGS` (docker-py code) against the server, asserting success; stdout.
    pub fn python_ok(&self, args: &[&str]) -> String {
        let o = self.client("python3").args(args).output().unwrap();
        assert!(o.status.success(), "python3 {args:?}: {}", self.explain(&o));
        stdout(&o)
    }

    /// A client's output, and the server's log, for a failure message.
    pub fn explain(&self, o: &Output) -> String {
        format!(
            "status {:?}\nstdout: {}\nstderr: {}\nserver log:\n{}",
            o.status,
            stdout(o),
            stderr(o),
            tail(&self.log(), 40)
        )
    }

    /// `curl -s --unix-socket SOCK ARGS` (what a user would try by hand), asserting that
    /// curl itself succeeded: (HTTP status, body).
    pub fn curl(&self, args: &[&str]) -> (u16, String) {
        self.curl_input(args, &[])
    }

    /// [`Server::curl`] with `input` on curl's stdin (for `--data-binary @-`).
    pub fn curl_input(&self, args: &[&str], input: &[u8]) -> (u16, String) {
        let mut c = Command::new("curl");
        c.args(["-s", "-o", "-", "-w", "\n%{http_code}", "--unix-socket"])
            .arg(&self.sock)
            .args(args);
        let o = output_with_input(c, input);
        assert!(o.status.success(), "curl {args:?}: {}", self.explain(&o));
        let text = stdout(&o);
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.trim().parse().unwrap(), body.to_string())
    }

    /// A request to `path` (`/v1.44/...`) through [`Server::curl`], with `body` sent as JSON
    /// if given: (HTTP status, body).
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let url = format!("http://localhost{path}");
        let mut args = vec!["-X", method];
        if let Some(b) = body {
            args.extend(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        args.push(&url);
        self.curl(&args)
    }
}

impl Server {
    /// Stops the server with SIGTERM (SIGKILL after 10 s) and waits for it; returns whether
    /// it exited by itself.
    pub fn stop(&mut self) -> bool {
        if let Ok(Some(_)) = self.child.try_wait() {
            return true;
        }
        // SAFETY: kill has no memory arguments; the pid is our child's.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The body at `url` (plain HTTP, from the host) once it answers with success: polled every
/// 100 ms, 100 times at most (each try 2 s at most).
pub fn get_when_up(url: &str) -> String {
    for _ in 0..100 {
        let o = Command::new("curl")
            .args(["-sf", "--max-time", "2", url])
            .output()
            .unwrap();
        if o.status.success() {
            return stdout(&o);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{url} never answered");
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
