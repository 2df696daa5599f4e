//! Process identity from `/proc/PID/stat` (proc(5)): a pid with its start time names one
//! process, even after the pid is reused.

/// The fields of `/proc/PID/stat` a caller needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// The state letter (field 3): `R`, `S`, `D`, `T`, `Z` (zombie), `X` (dead), ...
    pub state: char,
    /// The parent pid (field 4).
    pub ppid: i32,
    /// When the process started, in clock ticks since boot (field 22).
    pub start_time: u64,
}

/// Parses the text of a `/proc/PID/stat` file. The command name (field 2) is in parentheses
/// and may hold spaces and parentheses, so the fields are split after the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3.
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        start_time: f.get(19)?.parse().ok()?,
    })
}

/// The stat of process `pid` (zombies included); `None` if there is no such process.
pub fn stat(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// When process `pid` started (clock ticks since boot); `None` when there is no such process
/// or it has exited (a zombie or dead one).
pub fn pid_start_time(pid: i32) -> Option<u64> {
    stat(pid)
        .filter(|s| !matches!(s.state, 'Z' | 'X'))
        .map(|s| s.start_time)
}

/// Whether the process `pid` that started at `start` is still running (not exited, and the
/// pid not reused by another process).
pub fn pid_alive(pid: i32, start: u64) -> bool {
    pid_start_time(pid) == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_command_name_with_spaces_and_parentheses() {
        let s = "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        assert_eq!(
            parse_stat(s),
            Some(Stat {
                state: 'S',
                ppid: 1,
                start_time: 987654
            })
        );
        assert_eq!(parse_stat("1 (x) S 0"), None);
    }

    #[test]
    fn our_process_is_alive_and_exited_ones_are_not() {
        let me = std::process::id() as i32;
        let start = pid_start_time(me).expect("our start time");
        assert!(pid_alive(me, start));
        assert!(!pid_alive(me, start + 1), "a reused pid must not count");
        assert_eq!(
            stat(me).unwrap().ppid,
            std::os::unix::process::parent_id() as i32
        );
        assert_eq!(pid_start_time(0), None);
        assert_eq!(pid_start_time(-1), None);
        // A child that exited and is not reaped yet is a zombie: not alive.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while stat(pid).is_some_and(|s| s.state != 'Z') {
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(stat(pid).map(|s| s.state), Some('Z'));
        assert_eq!(pid_start_time(pid), None);
        child.wait().unwrap();
    }
}
