//! The container state machine: Docker's statuses and the one function that moves a container
//! between them. Every change of [`State::status`] goes through [`State::apply`], which refuses
//! an edge that is not drawn here.
//!
//! ```text
//!            start                 pause
//! created ---------> running <-----------> paused
//!    |  ^   started   |   ^      unpause     |
//!    |  |             |   | started          |
//!    |  +-(failed)    |   |                  |
//!    |       exited   v   |   policy        v exited
//!    |    +-------> exited -------> restarting
//!    |    |          |  ^   stopped / failed  |
//!    |    |          |  +---------------------+
//!    |    |          | start (again)
//!    |    |          +------> running
//!    | creator died  monitor lost (running, paused, restarting -> exited 255)
//!    v
//!  dead  (rm removes what the interrupted create made)
//! ```
//!
//! `removing` is never stored: a container being removed is renamed away first, so it stops
//! listing at once.

use crate::error::{Error, Result};
use crate::record::{State, Status};

/// What happened to a container: the edges of the state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Its process was started (by the monitor: a first start, a `start` after an exit, or
    /// the restart policy's).
    Started,
    /// A start failed before the process ran: a new container stays `created`, one that ran
    /// before is `exited`.
    StartFailed,
    /// Its process exited (or was killed).
    Exited,
    /// It was frozen (`pause`).
    Paused,
    /// It was thawed (`unpause`).
    Unpaused,
    /// The restart policy will start it again after its back-off.
    Restarting,
    /// A user stopped it during the back-off.
    StoppedWhileRestarting,
    /// Its monitor died: the exit status is unknown.
    MonitorLost,
    /// The process creating it died before it finished.
    CreatorDied,
}

impl Transition {
    /// The status this edge leads to from `from`, if the edge exists.
    fn target(self, from: Status) -> Option<Status> {
        use Status::*;
        use Transition as T;
        Some(match (from, self) {
            (Created | Exited | Restarting, T::Started) => Running,
            (Created, T::StartFailed) => Created,
            (Exited | Restarting | Running, T::StartFailed) => Exited,
            (Running | Paused, T::Exited) => Exited,
            (Running, T::Paused) => Paused,
            (Paused, T::Unpaused) => Running,
            (Exited, T::Restarting) => Restarting,
            (Restarting, T::StoppedWhileRestarting) => Exited,
            (Running | Paused | Restarting, T::MonitorLost) => Exited,
            (Created, T::CreatorDied) => Dead,
            _ => return None,
        })
    }
}

impl State {
    /// Moves the container along `t`; an edge the state machine does not have is an error
    /// naming both ends (a bug, or a race another check should have caught).
    pub(crate) fn apply(&mut self, t: Transition) -> Result<()> {
        match t.target(self.status) {
            Some(s) => {
                self.status = s;
                Ok(())
            }
            None => Err(Error::Other(format!(
                "a {} container cannot go through {t:?}",
                self.status.as_str()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(from: Status, t: Transition) -> Option<Status> {
        let mut s = State {
            status: from,
            ..Default::default()
        };
        s.apply(t).ok().map(|()| s.status)
    }

    #[test]
    fn the_drawn_edges_and_no_others() {
        use Status::*;
        use Transition as T;
        assert_eq!(after(Created, T::Started), Some(Running));
        assert_eq!(after(Running, T::Paused), Some(Paused));
        assert_eq!(after(Paused, T::Unpaused), Some(Running));
        assert_eq!(after(Paused, T::Exited), Some(Exited));
        assert_eq!(after(Exited, T::Restarting), Some(Restarting));
        assert_eq!(after(Restarting, T::Started), Some(Running));
        assert_eq!(after(Restarting, T::StoppedWhileRestarting), Some(Exited));
        assert_eq!(after(Created, T::StartFailed), Some(Created));
        assert_eq!(after(Exited, T::StartFailed), Some(Exited));
        assert_eq!(after(Running, T::MonitorLost), Some(Exited));
        assert_eq!(after(Created, T::CreatorDied), Some(Dead));
        // Not drawn: refused.
        assert_eq!(after(Exited, T::Paused), None);
        assert_eq!(after(Created, T::Unpaused), None);
        assert_eq!(after(Dead, T::Started), None);
        assert_eq!(after(Running, T::CreatorDied), None);
        assert_eq!(after(Paused, T::Paused), None);
        // Every status has at least one way out but dead (rm is the only way out of it).
        let all = [Created, Running, Paused, Restarting, Exited, Removing, Dead];
        let edges = [
            T::Started,
            T::StartFailed,
            T::Exited,
            T::Paused,
            T::Unpaused,
            T::Restarting,
            T::StoppedWhileRestarting,
            T::MonitorLost,
            T::CreatorDied,
        ];
        for s in all {
            let out = edges.iter().filter(|t| after(s, **t).is_some()).count();
            assert_eq!(out == 0, matches!(s, Dead | Removing), "{s:?}");
        }
    }
}
