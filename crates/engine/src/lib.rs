//! berth's container engine: turns an image and Docker-like options into a running container
//! (an OCI bundle on an image snapshot, started through the `berth-runtime` binary), with a
//! monitor process per container that owns its stdio, logs and exit status.
