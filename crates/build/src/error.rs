//! The builder's errors.

use crate::dockerfile::ParseError;

/// What can go wrong in a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// An instruction is wrong where it stands: `Dockerfile:3: ...`.
    #[error("{file}:{line}: {message}")]
    Instruction {
        /// The Dockerfile's name.
        file: String,
        /// The instruction's first line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A `RUN` failed: its command, exit code and last output lines.
    #[error(
        "{file}:{line}: process \"{command}\" did not complete successfully: exit code: {code}{}",
        tail_text(.tail)
    )]
    Run {
        /// The Dockerfile's name.
        file: String,
        /// The `RUN`'s first line.
        line: usize,
        /// The command as run (`/bin/sh -c ...`).
        command: String,
        /// Its exit code.
        code: i32,
        /// Its last output lines.
        tail: Vec<String>,
    },
    /// `--target` names no stage.
    #[error("target stage {0:?} could not be found")]
    NoTarget(String),
    /// The build context cannot be used.
    #[error("build context {path}: {message}")]
    Context {
        /// The context path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A `COPY`/`ADD` failed.
    #[error("{file}:{line}: {message}")]
    Copy {
        /// The Dockerfile's name.
        file: String,
        /// The instruction's first line.
        line: usize,
        /// What went wrong.
        message: String,
    },
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] berth_engine::Error),
    /// The image store failed.
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(
            "\n{}",
            tail.iter()
                .map(|l| format!("  > {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

/// The builder's result type.
pub type Result<T> = std::result::Result<T, BuildError>;
