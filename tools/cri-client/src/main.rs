//! berth-cri-client: drives a CRI runtime service (containerd's CRI plugin) the way a kubelet
//! does for one pod, and checks each answer. Used by scripts/engines/cri.sh; not part of berth.
//!
//! Steps, all with the given runtime handler: Version, RunPodSandbox, PodSandboxStatus (ready,
//! IP inside --subnet), CreateContainer (busybox httpd, 64 MiB memory limit), StartContainer,
//! ContainerStatus (running), the memory limit read back from the host's cgroup, ExecSync
//! (output and exit codes), the --probe command run on the host with POD_IP set (reachability),
//! ContainerStats (non-zero memory), StopContainer (exited), RemoveContainer, StopPodSandbox,
//! RemovePodSandbox (gone from ListPodSandbox). On failure the pod is still stopped and removed.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tower::service_fn;

const USAGE: &str = "usage: berth-cri-client --socket PATH --handler NAME --image REF --subnet A.B.C.D/N \
--cgroup-parent /PATH --log-dir DIR [--probe SHELL-COMMAND] [--share-pid true]";

const MEMORY_LIMIT: i64 = 64 << 20;

struct Args {
    socket: PathBuf,
    handler: String,
    image: String,
    subnet: (Ipv4Addr, u32),
    cgroup_parent: String,
    log_dir: String,
    probe: Option<String>,
    /// The container shares the pod's pid namespace (shareProcessNamespace: true) instead of
    /// having its own (the kubelet's default).
    share_pid: bool,
}

fn parse_args() -> Result<Args> {
    let mut m: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let Some(name) = k.strip_prefix("--") else {
            bail!("unexpected argument {k:?}\n{USAGE}")
        };
        let v = it
            .next()
            .with_context(|| format!("--{name} needs a value\n{USAGE}"))?;
        m.insert(name.to_owned(), v);
    }
    let mut take = |k: &str| {
        m.remove(k)
            .with_context(|| format!("--{k} is required\n{USAGE}"))
    };
    let subnet = take("subnet")?;
    let (net, len) = subnet
        .split_once('/')
        .context("--subnet must be A.B.C.D/N")?;
    Ok(Args {
        socket: take("socket")?.into(),
        handler: take("handler")?,
        image: take("image")?,
        subnet: (net.parse()?, len.parse()?),
        cgroup_parent: take("cgroup-parent")?,
        log_dir: take("log-dir")?,
        probe: m.remove("probe"),
        share_pid: m.remove("share-pid").is_some_and(|v| v == "true"),
    })
}

fn in_subnet(ip: Ipv4Addr, (net, len): (Ipv4Addr, u32)) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(ip) & mask == u32::from(net) & mask
}

fn step(msg: &str) {
    println!("[cri] {msg}");
}

async fn connect(socket: PathBuf) -> Result<RuntimeServiceClient<Channel>> {
    let channel = Endpoint::try_from("http://[::]:50051")?
        .connect_with_connector(service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?)) }
        }))
        .await
        .context("connecting to the CRI socket")?;
    Ok(RuntimeServiceClient::new(channel))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = real_main().await {
        eprintln!("[cri] FAILED: {e:#}");
        std::process::exit(1);
    }
}

async fn real_main() -> Result<()> {
    let args = parse_args()?;
    let mut c = connect(args.socket.clone()).await?;

    let v = c
        .version(VersionRequest {
            version: "v1".into(),
        })
        .await?
        .into_inner();
    step(&format!(
        "Version: {} {} (CRI {})",
        v.runtime_name, v.runtime_version, v.runtime_api_version
    ));

    // The CRI plugin loads the CNI config asynchronously: wait for NetworkReady, as a kubelet
    // does before it starts pods.
    let mut tries = 0;
    loop {
        let st = c
            .status(StatusRequest { verbose: false })
            .await
            .context("Status")?
            .into_inner();
        let conds = st.status.map(|s| s.conditions).unwrap_or_default();
        if conds.iter().any(|c| c.r#type == "NetworkReady" && c.status) {
            break;
        }
        tries += 1;
        ensure!(
            tries < 100,
            "the runtime's network is not ready after 10 s: {conds:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    step("Status: NetworkReady");

    let uid = format!("berth-ci-{}", std::process::id());
    let pod_config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "berth-ci-pod".into(),
            uid: uid.clone(),
            namespace: "berth-ci".into(),
            attempt: 0,
        }),
        hostname: "berth-pod".into(),
        log_directory: args.log_dir.clone(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("{}/{uid}", args.cgroup_parent),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Pod as i32,
                    pid: NamespaceMode::Container as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod = c
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(pod_config.clone()),
            runtime_handler: args.handler.clone(),
        })
        .await
        .context("RunPodSandbox")?
        .into_inner()
        .pod_sandbox_id;
    step(&format!("RunPodSandbox (handler {}): {pod}", args.handler));

    let result = with_pod(&mut c, &args, &pod, &pod_config, &uid).await;
    if let Err(e) = &result {
        // Report first, then a bounded best effort so that a failed run leaves no pod behind
        // (the script's trap kills whatever is still there).
        eprintln!("[cri] FAILED: {e:#}");
        let t = Duration::from_secs(15);
        let stop = c.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        });
        if tokio::time::timeout(t, stop).await.is_err() {
            eprintln!("[cri] cleanup: StopPodSandbox did not return within 15 s");
        }
        let rm = c.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        });
        let _ = tokio::time::timeout(t, rm).await;
        std::process::exit(1);
    }
    result
}

async fn with_pod(
    c: &mut RuntimeServiceClient<Channel>,
    args: &Args,
    pod: &str,
    pod_config: &PodSandboxConfig,
    uid: &str,
) -> Result<()> {
    let st = c
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod.into(),
            verbose: false,
        })
        .await
        .context("PodSandboxStatus")?
        .into_inner()
        .status
        .context("PodSandboxStatus: no status")?;
    ensure!(
        st.state == PodSandboxState::SandboxReady as i32,
        "pod state is {}, not READY",
        st.state
    );
    ensure!(
        st.runtime_handler == args.handler,
        "pod runtime handler is {:?}",
        st.runtime_handler
    );
    let ip: Ipv4Addr = st
        .network
        .as_ref()
        .map(|n| n.ip.clone())
        .unwrap_or_default()
        .parse()
        .context("pod has no IPv4 address")?;
    ensure!(
        in_subnet(ip, args.subnet),
        "pod IP {ip} is outside {:?}",
        args.subnet
    );
    step(&format!(
        "PodSandboxStatus: READY, handler {}, IP {ip} (inside the conflist subnet)",
        st.runtime_handler
    ));

    let ctr_config = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "web".into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: args.image.clone(),
            ..Default::default()
        }),
        command: vec!["httpd".into()],
        args: vec![
            "-f".into(),
            "-p".into(),
            "80".into(),
            "-h".into(),
            "/www".into(),
        ],
        log_path: "web.log".into(),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                memory_limit_in_bytes: MEMORY_LIMIT,
                ..Default::default()
            }),
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Pod as i32,
                    pid: if args.share_pid {
                        NamespaceMode::Pod
                    } else {
                        NamespaceMode::Container
                    } as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let ctr = c
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(ctr_config),
            sandbox_config: Some(pod_config.clone()),
        })
        .await
        .context("CreateContainer")?
        .into_inner()
        .container_id;
    step(&format!("CreateContainer: {ctr}"));
    c.start_container(StartContainerRequest {
        container_id: ctr.clone(),
    })
    .await
    .context("StartContainer")?;
    let state = container_state(c, &ctr).await?;
    ensure!(
        state.0 == ContainerState::ContainerRunning as i32,
        "container state {} after start",
        state.0
    );
    step("StartContainer: container RUNNING");

    // containerd's cgroupfs path for a CRI container: the pod's cgroup_parent, then the ID.
    let limit_file = format!(
        "/sys/fs/cgroup/memory{}/{uid}/{ctr}/memory.limit_in_bytes",
        args.cgroup_parent
    );
    let limit: i64 = std::fs::read_to_string(&limit_file)
        .with_context(|| format!("reading {limit_file}"))?
        .trim()
        .parse()?;
    ensure!(
        limit == MEMORY_LIMIT,
        "{limit_file} is {limit}, expected {MEMORY_LIMIT}"
    );
    step(&format!("memory limit applied: {limit_file} = {limit}"));

    let out = exec(
        c,
        &ctr,
        &["sh", "-c", "echo exec-ok; hostname; cat /www/index.html"],
    )
    .await?;
    ensure!(
        out.0 == 0,
        "ExecSync exit code {}, stderr {:?}",
        out.0,
        out.2
    );
    ensure!(
        out.1 == "exec-ok\nberth-pod\nberth-ci-httpd\n",
        "ExecSync stdout {:?}, expected exec-ok, the pod hostname and the page",
        out.1
    );
    // PID 1 of the container's pid namespace: its own process, or the pod's pause process.
    let pid1 = exec(c, &ctr, &["cat", "/proc/1/comm"]).await?;
    let want = if args.share_pid {
        "catatonit\n"
    } else {
        "httpd\n"
    };
    ensure!(
        pid1.1 == want,
        "ExecSync: PID 1 seen from the exec is {:?}, expected {want:?}",
        pid1.1
    );
    let out3 = exec(c, &ctr, &["sh", "-c", "echo to-stderr >&2; exit 3"]).await?;
    ensure!(
        out3.0 == 3 && out3.2 == "to-stderr\n",
        "ExecSync exit 3 gave {out3:?}"
    );
    step(&format!(
        "ExecSync: stdout, stderr and exit codes (0, 3) as expected; PID 1 is {}",
        want.trim()
    ));

    if let Some(probe) = &args.probe {
        let status = tokio::process::Command::new("sh")
            .args(["-c", probe])
            .env("POD_IP", ip.to_string())
            .status()
            .await?;
        ensure!(
            status.success(),
            "probe {probe:?} with POD_IP={ip} failed: {status}"
        );
        step(&format!("probe from the host to {ip}: ok"));
    }

    let stats = c
        .container_stats(ContainerStatsRequest {
            container_id: ctr.clone(),
        })
        .await
        .context("ContainerStats")?
        .into_inner()
        .stats
        .context("ContainerStats: no stats")?;
    let mem = stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes.as_ref())
        .map_or(0, |v| v.value);
    ensure!(mem > 0, "ContainerStats memory working set is 0: {stats:?}");
    step(&format!("ContainerStats: working set {mem} bytes"));

    c.stop_container(StopContainerRequest {
        container_id: ctr.clone(),
        timeout: 2,
    })
    .await
    .context("StopContainer")?;
    let state = container_state(c, &ctr).await?;
    ensure!(
        state.0 == ContainerState::ContainerExited as i32,
        "container state {} after stop",
        state.0
    );
    step(&format!("StopContainer: EXITED, exit code {}", state.1));
    c.remove_container(RemoveContainerRequest {
        container_id: ctr.clone(),
    })
    .await
    .context("RemoveContainer")?;
    step("RemoveContainer: ok");

    c.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.into(),
    })
    .await
    .context("StopPodSandbox")?;
    let st = c
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod.into(),
            verbose: false,
        })
        .await?
        .into_inner()
        .status
        .context("no status")?;
    ensure!(
        st.state == PodSandboxState::SandboxNotready as i32,
        "pod state {} after stop",
        st.state
    );
    step("StopPodSandbox: NOTREADY");
    c.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.into(),
    })
    .await
    .context("RemovePodSandbox")?;
    let left = c
        .list_pod_sandbox(ListPodSandboxRequest { filter: None })
        .await?
        .into_inner()
        .items;
    ensure!(
        left.iter().all(|p| p.id != pod),
        "pod still listed after RemovePodSandbox"
    );
    step("RemovePodSandbox: gone");
    Ok(())
}

async fn container_state(c: &mut RuntimeServiceClient<Channel>, id: &str) -> Result<(i32, i32)> {
    // The status can lag the request by a moment (the task exit is an event).
    for _ in 0..50 {
        let st = c
            .container_status(ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .context("ContainerStatus")?
            .into_inner()
            .status
            .context("ContainerStatus: no status")?;
        if st.state != ContainerState::ContainerCreated as i32 {
            return Ok((st.state, st.exit_code));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("container {id} stays CREATED")
}

async fn exec(
    c: &mut RuntimeServiceClient<Channel>,
    id: &str,
    cmd: &[&str],
) -> Result<(i32, String, String)> {
    let r = c
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| (*s).to_owned()).collect(),
            timeout: 10,
        })
        .await
        .with_context(|| format!("ExecSync {cmd:?}"))?
        .into_inner();
    Ok((
        r.exit_code,
        String::from_utf8_lossy(&r.stdout).into_owned(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
    ))
}
