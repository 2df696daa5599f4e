//! Waiting for a container as the Engine API's `POST /containers/{id}/wait?condition=` does:
//! [`Engine::wait_begin`] notes what the container is when the wait begins (so that
//! `next-exit` fires on an exit after it, not on the exit that left it stopped), and
//! [`ContainerWait::check`] says, each time it is called, whether the condition is met and with
//! which exit code. The caller polls (an API server between its own checks for a client gone),
//! so nothing here blocks.
//!
//! As Docker's: `not-running` is met at once by a container that does not run (created
//! included) and otherwise by its next exit; `next-exit` by the next exit, also one the restart
//! policy follows with a restart; `removed` by its removal; a removal meets every condition.
//! The exit code is that of the exit that met it (from the `die` event when the container ran
//! again or was removed between two checks), or the last one known.

use std::time::SystemTime;

use crate::Engine;
use crate::error::{Error, Result};
use crate::events::EventQuery;

/// What a wait waits for (the API's `condition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitCondition {
    /// The container is not running (`not-running`, the default).
    NotRunning,
    /// The container's next exit (`next-exit`; what `docker run` waits for before it starts).
    NextExit,
    /// The container is removed (`removed`; `docker run --rm`).
    Removed,
}

impl WaitCondition {
    /// Parses the API's name of a condition (empty is `not-running`).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "" | "not-running" => WaitCondition::NotRunning,
            "next-exit" => WaitCondition::NextExit,
            "removed" => WaitCondition::Removed,
            _ => return None,
        })
    }
}

/// A wait begun by [`Engine::wait_begin`].
#[derive(Clone, Debug)]
pub struct ContainerWait {
    id: String,
    condition: WaitCondition,
    began: SystemTime,
    /// The container's last exit when the wait began (an exit changes it).
    finished_at: String,
    /// The last exit code seen.
    exit_code: i32,
    /// Met already when it began.
    met: bool,
}

impl Engine {
    /// Begins a wait for container `id` (a full ID, from [`Engine::lookup`]); fails if there
    /// is no such container.
    pub fn wait_begin(&self, id: &str, condition: WaitCondition) -> Result<ContainerWait> {
        let began = SystemTime::now();
        let s = self.state(id)?;
        Ok(ContainerWait {
            id: id.to_string(),
            condition,
            began,
            met: condition == WaitCondition::NotRunning && !s.status.is_running(),
            finished_at: s.finished_at,
            exit_code: s.exit_code,
        })
    }

    /// The exit code of the last `die` of container `id` since `since`, from the event log.
    fn last_exit_since(&self, id: &str, since: SystemTime) -> Option<i32> {
        let q = EventQuery {
            since: Some(since),
            until: None,
            follow: false,
            cancel: None,
        };
        let mut code = None;
        let _ = self.events.read(
            &q,
            &|e| e.kind == "container" && e.action == "die" && e.actor.id == id,
            &mut |e| {
                code = e
                    .actor
                    .attributes
                    .get("exitCode")
                    .and_then(|c| c.parse().ok());
                Ok(())
            },
        );
        code
    }
}

impl ContainerWait {
    /// The container's ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `Some(exit code)` once the condition is met; `None` while it is not.
    pub fn check(&mut self, engine: &Engine) -> Result<Option<i32>> {
        if self.met {
            return Ok(Some(self.exit_code));
        }
        let s = match engine.state(&self.id) {
            Ok(s) => s,
            Err(Error::NoSuchContainer(_)) => {
                let code = engine
                    .last_exit_since(&self.id, self.began)
                    .unwrap_or(self.exit_code);
                return Ok(Some(code));
            }
            Err(e) => return Err(e),
        };
        let exited = s.finished_at != self.finished_at && !s.finished_at.is_empty();
        if !s.status.is_running() {
            self.exit_code = s.exit_code;
        }
        let met = match self.condition {
            WaitCondition::NotRunning | WaitCondition::NextExit => exited,
            WaitCondition::Removed => false,
        };
        if !met {
            return Ok(None);
        }
        if s.status.is_running() {
            // Restarted (by its policy, or a start) since that exit: its code is in the log.
            self.exit_code = engine
                .last_exit_since(&self.id, self.began)
                .unwrap_or(s.exit_code);
        }
        Ok(Some(self.exit_code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_by_their_api_names() {
        assert_eq!(WaitCondition::parse(""), Some(WaitCondition::NotRunning));
        assert_eq!(
            WaitCondition::parse("next-exit"),
            Some(WaitCondition::NextExit)
        );
        assert_eq!(
            WaitCondition::parse("removed"),
            Some(WaitCondition::Removed)
        );
        assert_eq!(WaitCondition::parse("stopped"), None);
    }
}
