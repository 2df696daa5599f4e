//! berth's image builder: `berth build` (and the Engine API's `POST /build`) as a library.
//!
//! - [`dockerfile`]: parses a Dockerfile into typed instructions grouped into stages
//!   ([`dockerfile::parse`]), with BuildKit's syntax and error messages, and provides
//!   BuildKit's variable substitution ([`dockerfile::lex`]).
//! - [`ignore`]: `.dockerignore` files with moby/patternmatcher's semantics, for walking the
//!   build context.
//! - [`build`]: runs a parsed Dockerfile over the engine: each `RUN` step is a berth
//!   container, `COPY`/`ADD` write layers through [`copy`], finished steps are cached as pinned
//!   images in the store, independent stages build in parallel; [`export`] writes `--output`.
//!
//! It prints nothing: progress goes to the caller's [`ProgressSink`], errors come back typed.

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
    remove_build_containers, spawn_reaper,
};
pub use error::{BuildError, Result};
