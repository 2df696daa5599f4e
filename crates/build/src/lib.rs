//! berth's image builder: the Dockerfile language and the build context's ignore rules.
//!
//! - [`dockerfile`]: parses a Dockerfile into typed instructions grouped into stages
//!   ([`dockerfile::parse`]), with BuildKit's syntax and error messages, and provides
//!   BuildKit's variable substitution ([`dockerfile::lex`]).
//! - [`ignore`]: `.dockerignore` files with moby/patternmatcher's semantics, for walking the
//!   build context.
//!
//! What it does not do (yet): execute stages. The builder that does comes next and uses these
//! modules; this crate deliberately knows nothing of the engine or the image store.

mod build;
pub mod copy;
pub mod dockerfile;
mod error;
pub mod export;
mod fetch;
pub mod ignore;
mod state;

pub use build::{
    BUILD_LABEL, BuildOptions, Built, CachePruneReport, ProgressSink, build, prune_cache,
    remove_build_containers,
};
pub use error::{BuildError, Result};
