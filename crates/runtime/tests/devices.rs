//! Device nodes in the container's /dev and the device cgroup.

mod common;

use common::Bundle;
use serde_json::json;

#[test]
fn default_devices_have_the_right_numbers() {
    let mut b = Bundle::new("default-devs");
    b.sh("for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done");
    let out = b.run().ok();
    assert_eq!(
        out.stdout,
        "/dev/null character special file 1:3 666\n\
         /dev/zero character special file 1:5 666\n\
         /dev/full character special file 1:7 666\n\
         /dev/random character special file 1:8 666\n\
         /dev/urandom character special file 1:9 666\n\
         /dev/tty character special file 5:0 666\n"
    );
}

#[test]
fn default_devices_work() {
    let mut b = Bundle::new("devs-work");
    b.sh("echo gone > /dev/null && echo null-ok; \
         head -c 5 /dev/zero | wc -c; \
         head -c 16 /dev/urandom | wc -c; \
         echo x > /dev/full; echo full=$?");
    let out = b.run().ok();
    assert_eq!(out.stdout, "null-ok\n5\n16\nfull=1\n", "{out:?}");
    assert!(out.stderr.contains("No space left on device"), "{out:?}");
}

#[test]
fn dev_symlinks() {
    let mut b = Bundle::new("dev-links");
    b.sh("for l in fd stdin stdout stderr ptmx; do echo $l=$(readlink /dev/$l); done; ls /dev/fd/ >/dev/null && echo fd-ok");
    let out = b.run().ok();
    assert_eq!(
        out.stdout,
        "fd=/proc/self/fd\nstdin=/proc/self/fd/0\nstdout=/proc/self/fd/1\n\
         stderr=/proc/self/fd/2\nptmx=pts/ptmx\nfd-ok\n"
    );
}

#[test]
fn linux_devices_entry_creates_a_node() {
    let mut b = Bundle::new("linux-devices");
    b.cfg["linux"]["devices"] = json!([{
        "path": "/dev/mydev", "type": "c", "major": 1, "minor": 3,
        "fileMode": 0o640, "uid": 1000, "gid": 5
    }]);
    // The owner (uid 1000) may write to it; the default capabilities have no DAC override.
    b.cfg["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.sh("stat -c '%F %t:%T %a %u %g' /dev/mydev; echo data > /dev/mydev && echo write-ok");
    let out = b.run().ok();
    assert_eq!(
        out.stdout,
        "character special file 1:3 640 1000 5\nwrite-ok\n"
    );
}

#[test]
fn device_cgroup_denies_devices_not_allowed() {
    let mut b = Bundle::new("devcg-deny");
    b.add_cap("CAP_MKNOD");
    assert_eq!(
        b.cfg["linux"]["resources"]["devices"],
        json!([{"allow": false, "access": "rwm"}])
    );
    // mknod is allowed (runc's default rules allow "m" on every device), opening is not; a
    // node of an allowed device made the same way works.
    b.sh(
        "mknod /dev/sda b 8 0 && echo mknod-ok; head -c 1 /dev/sda; echo read=$?; \
         mknod /dev/null2 c 1 3 && echo x > /dev/null2 && echo null2-ok",
    );
    let out = b.run().ok();
    assert_eq!(out.stdout, "mknod-ok\nread=1\nnull2-ok\n", "{out:?}");
    assert!(
        out.stderr.contains("/dev/sda: Operation not permitted"),
        "the device cgroup should refuse /dev/sda: {out:?}"
    );
}

#[test]
fn device_cgroup_allows_a_rule_from_the_config() {
    let mut b = Bundle::new("devcg-allow");
    b.add_cap("CAP_MKNOD");
    b.cfg["linux"]["resources"]["devices"]
        .as_array_mut()
        .unwrap()
        .push(json!({"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"}));
    // Whether or not the host has a disk 8:0, the error (if any) is not the cgroup's EPERM.
    b.sh("mknod /dev/sda b 8 0 && head -c 1 /dev/sda >/dev/null; true");
    let out = b.run().ok();
    assert!(!out.stderr.contains("Operation not permitted"), "{out:?}");
}

/// A FIFO in linux.devices is made with mknod and gets no device-cgroup rule (v1 devices.allow
/// and the v2 device program have no type for it); with and without a user namespace.
#[test]
fn linux_devices_fifo_is_made_and_usable() {
    for userns in [false, true] {
        let mut b = Bundle::new(if userns {
            "fifo-dev-userns"
        } else {
            "fifo-dev"
        });
        if userns {
            b.with_ns("user", None);
            let map = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
            b.cfg["linux"]["uidMappings"] = map.clone();
            b.cfg["linux"]["gidMappings"] = map;
        }
        b.cfg["linux"]["devices"] = json!([{
            "path": "/dev/myfifo", "type": "p", "fileMode": 0o620, "uid": 0, "gid": 5
        }]);
        b.sh(
            "test -p /dev/myfifo && echo is-fifo; stat -c '%a %u %g' /dev/myfifo; \
             (echo through > /dev/myfifo &) ; cat /dev/myfifo",
        );
        let out = b.run();
        assert_eq!(out.code, 0, "userns={userns}: {out:#?}");
        assert_eq!(
            out.stdout, "is-fifo\n620 0 5\nthrough\n",
            "userns={userns}: {out:#?}"
        );
    }
}
