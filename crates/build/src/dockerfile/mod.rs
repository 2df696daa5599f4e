//! The Dockerfile language, as the current Dockerfile reference (BuildKit's frontend 1.x)
//! defines it.
//!
//! [`parse`] reads a whole file: parser directives at the top (`# syntax=`, `# escape=`,
//! `# check=`), comments, line continuations, JSON (exec) and shell forms, heredocs
//! (`RUN <<EOF`, `COPY <<EOF /file`), builder flags; then it types every instruction
//! ([`Instruction`], [`Kind`]) and groups them into [`Stage`]s. Errors name the file and line
//! as BuildKit does: `Dockerfile:3: unknown instruction: FROOM (did you mean FROM?)`.
//!
//! Nothing is substituted here: the builder does that with [`lex::expand`] and
//! [`lex::expand_words`] for the instructions listed in [`lex::EXPANDED_INSTRUCTIONS`].
//!
//! ```
//! use std::collections::HashMap;
//! use berth_build::dockerfile::{self, Kind, lex};
//!
//! let df = dockerfile::parse("ARG V=1\nFROM busybox AS base\nWORKDIR /app/$V\n").unwrap();
//! assert_eq!(df.stages[0].name(), Some("base"));
//! let Kind::Workdir { path } = &df.stages[0].instructions[0].kind else { unreachable!() };
//! let env = HashMap::from([("V".to_string(), "2".to_string())]);
//! let x = lex::expand(path, &env, df.directives.escape).unwrap();
//! assert_eq!(x.value, "/app/2");
//! assert!(x.used.contains("V"));
//!
//! let err = dockerfile::parse("FROOM busybox\n").unwrap_err();
//! assert_eq!(err.to_string(), "Dockerfile:1: unknown instruction: FROOM (did you mean FROM?)");
//! ```

pub mod instruction;
pub mod lex;
mod parser;

use serde::Serialize;

pub use instruction::{
    AddInstruction, ArgDef, CommandLine, CopyInstruction, FromInstruction, Healthcheck,
    HealthcheckCmd, Instruction, KeyValue, Kind, Mount, MountType, Network, OnbuildInstruction,
    RunInstruction, Security, Sharing,
};

/// The parser directives of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directives {
    /// `# syntax=`: recorded; berth always uses its own frontend.
    pub syntax: Option<String>,
    /// `# escape=`: `\` (default) or `` ` ``.
    pub escape: char,
    /// `# check=`: recorded, for build checks.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A heredoc: `<<EOF` (or `<<-EOF`, `<<"EOF"`, `3<<EOF`) and the lines up to `EOF`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter, quotes removed; for `COPY`/`ADD` also the file name.
    pub name: String,
    /// The file descriptor before `<<` (`0` when none is written).
    pub fd: u32,
    /// Variables are expanded in the content (the delimiter was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs were stripped from every line of the content (already done here,
    /// where BuildKit's parser leaves it to its dispatcher) and from the delimiter line.
    pub chomp: bool,
    /// The lines, each with its newline.
    pub content: String,
}

/// Something accepted that BuildKit warns about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The first line of the instruction.
    pub line: usize,
    /// What it is.
    pub message: String,
}

/// A parse error at a line of a file: `Dockerfile:2: FROM requires either one or three
/// arguments`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ParseError {
    /// The file name used in messages.
    pub file: String,
    /// The first line of the instruction at fault (1-based; 0 when none applies).
    pub line: usize,
    /// Its last line.
    pub end_line: usize,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    fn render(&self) -> String {
        if self.line == 0 {
            format!("{}: {}", self.file, self.message)
        } else {
            format!("{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

/// A build stage: a `FROM` and the instructions up to the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// The stage's position, counted from 0 (what `COPY --from=0` refers to).
    pub index: usize,
    /// The `FROM` arguments.
    pub from: FromInstruction,
    /// The line of the `FROM`.
    pub line: usize,
    /// The `FROM` as written.
    pub original: String,
    /// The stage's instructions, in order.
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The `AS` name, if any.
    pub fn name(&self) -> Option<&str> {
        self.from.name.as_deref()
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    /// Parser directives.
    pub directives: Directives,
    /// `ARG`s before the first `FROM` (usable in `FROM` lines).
    pub meta_args: Vec<Instruction>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// Warnings (empty continuation lines).
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// The stage named `name` (case-insensitive), or the one at index `name`.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        let lower = name.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name() == Some(lower.as_str()))
            .or_else(|| name.parse::<usize>().ok().and_then(|i| self.stages.get(i)))
    }
}

/// Parses a Dockerfile named `Dockerfile` in messages.
pub fn parse(source: &str) -> Result<Dockerfile, ParseError> {
    parse_named(source, "Dockerfile")
}

/// Parses a Dockerfile, naming it `file` in error messages.
pub fn parse_named(source: &str, file: &str) -> Result<Dockerfile, ParseError> {
    let err = |start: usize, end: usize, message: String| ParseError {
        file: file.to_string(),
        line: start,
        end_line: end,
        message,
    };
    let parsed = parser::parse(source).map_err(|e| err(e.start, e.end, e.message))?;
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &parsed.nodes {
        let ins =
            instruction::from_node(node).map_err(|m| err(node.start_line, node.end_line, m))?;
        match ins.kind {
            Kind::From(from) => {
                if let Some(name) = &from.name
                    && stages.iter().any(|s| s.name() == Some(name))
                {
                    return Err(err(
                        ins.start_line,
                        ins.end_line,
                        format!("duplicate stage name {name:?}"),
                    ));
                }
                stages.push(Stage {
                    index: stages.len(),
                    from,
                    line: ins.start_line,
                    original: ins.original,
                    instructions: Vec::new(),
                });
            }
            Kind::Arg { .. } if stages.is_empty() => meta_args.push(ins),
            _ => match stages.last_mut() {
                Some(stage) => stage.instructions.push(ins),
                None => {
                    return Err(err(
                        ins.start_line,
                        ins.end_line,
                        format!(
                            "no build stage in current context: {} before the first FROM",
                            ins.keyword.to_ascii_uppercase()
                        ),
                    ));
                }
            },
        }
    }
    if stages.is_empty() {
        return Err(err(0, 0, "dockerfile contains no stages to build".into()));
    }
    Ok(Dockerfile {
        directives: parsed.directives,
        meta_args,
        stages,
        warnings: parsed.warnings,
    })
}

#[cfg(test)]
mod tests;
