//! What `create`/`run` and `exec` take. A create request is Docker's own typed shapes (the
//! Engine API's `POST /containers/create` body, API v1.44): the front end (the CLI) turns its
//! flags into them, doing what is the client's business (`-e VAR` from its environment,
//! `--env-file`, relative `-v` paths); the engine validates them and makes a [`crate::Record`]
//! of the same types.

use serde::{Deserialize, Serialize};

use crate::record::{Config, HostConfig, NetworkingConfig};

/// A container create request: the Engine API's body (`Config`'s fields at the top level,
/// `HostConfig`, `NetworkingConfig`), so an API server can deserialize a request straight into
/// it; the name and the platform are the API's query parameters.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ContainerCreate {
    /// `--name` (the API's `?name=`); none picks a random `adjective_noun`.
    #[serde(skip)]
    pub name: Option<String>,
    /// `--platform` (the API's `?platform=`): `os/arch[/variant]` the image must be.
    #[serde(skip)]
    pub platform: Option<String>,
    /// The image's `VOLUME`s are not mounted (no anonymous volumes for them): the builder's
    /// `RUN` steps write into the image there, as BuildKit's do. Not part of the API.
    #[serde(skip)]
    pub skip_image_volumes: bool,
    /// What runs.
    #[serde(flatten)]
    pub config: Config,
    /// How it runs.
    #[serde(rename = "HostConfig", default)]
    pub host_config: HostConfig,
    /// Its network endpoint.
    #[serde(rename = "NetworkingConfig", default)]
    pub networking: NetworkingConfig,
}
