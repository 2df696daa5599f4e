//! docker-py (Debian's python3-docker) against `berth serve`: a script as users write them.

mod common;

use common::IMAGE;
use common::serve::{Server, tail};

const SCRIPT: &str = r#"
import sys, time, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
image = sys.argv[2]
assert c.ping() is True
v = c.version()
assert v["ApiVersion"] == "1.44", v

# run in the foreground: the output comes back as bytes
out = c.containers.run(image, ["sh", "-c", "echo hello; echo err >&2"], remove=True, stderr=True)
assert b"hello" in out, out

# detached, with labels, env, a named volume and a network
net = c.networks.create("pynet", labels={"t": "py"})
vol = c.volumes.create("pyvol", labels={"t": "py"})
ctr = c.containers.run(image, ["sh", "-c", "echo started; exec sleep 1000"], detach=True,
                       name="pyctr", labels={"t": "py"}, environment={"A": "1"},
                       volumes={"pyvol": {"bind": "/v", "mode": "rw"}}, network="pynet")
ctr.reload()
assert ctr.status == "running", ctr.status
assert ctr.labels["t"] == "py"
assert [x.name for x in c.containers.list(filters={"label": "t=py"})] == ["pyctr"]
code, output = ctr.exec_run(["sh", "-c", "echo $A; exit 3"])
assert code == 3 and output == b"1\n", (code, output)
code, output = ctr.exec_run(["sh", "-c", "echo data > /v/f; cat /v/f"])
assert code == 0 and output == b"data\n", (code, output)
for _ in range(100):
    if b"started" in ctr.logs():
        break
    time.sleep(0.1)
assert b"started" in ctr.logs(), ctr.logs()
net.reload()
assert ctr.id in net.attrs["Containers"], net.attrs
assert c.images.get(image).id.startswith("sha256:")
assert any(image in i.tags for i in c.images.list())
since = int(time.time()) - 60
ctr.stop(timeout=1)
assert ctr.wait()["StatusCode"] in (137, 143), "exit status after stop"
ctr.reload()
assert ctr.status == "exited", ctr.status
events = list(c.events(since=since, until=int(time.time()) + 1, decode=True,
                       filters={"container": "pyctr"}))
actions = [e["Action"] for e in events]
assert "create" in actions and "start" in actions and "die" in actions, actions
ctr.remove(v=True)
net.remove()
vol.remove()
try:
    c.containers.get("pyctr")
    raise SystemExit("pyctr still exists")
except docker.errors.NotFound:
    pass
try:
    c.containers.run("no-such/image:here", "true")
    raise SystemExit("ran a missing image")
except (docker.errors.ImageNotFound, docker.errors.NotFound, docker.errors.APIError):
    pass
print("docker-py ok")
"#;

#[test]
fn docker_py_script() {
    let s = Server::start(&[]);
    let o = s
        .client("python3")
        .args(["-c", SCRIPT, &s.host(), IMAGE])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "docker-py failed:\nstdout: {}\nstderr: {}\nserver log:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        tail(&s.log(), 60)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("docker-py ok"));
    assert_eq!(s.berth.ok(&["ps", "-aq"]).trim(), "");
}
