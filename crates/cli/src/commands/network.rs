//! Docker's network command line: `network create|ls|inspect|rm|connect|disconnect|prune`,
//! `port`, and the hidden `__dns` (a network's DNS server, started by berth-network).

use anyhow::Context;
use berth_engine::{Engine, NetworkCreateOptions, NetworkInspect};
use clap::Subcommand;
use serde_json::{Value, json};

use super::template::{ListFormat, Titles, write_inspect};
use crate::Cli;

/// Network commands.
#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Manage networks.
    Network {
        /// What to do.
        #[command(subcommand)]
        cmd: NetworkSub,
    },
    /// List port mappings or a specific mapping for the container.
    Port {
        /// Container.
        container: String,
        /// PRIVATE_PORT[/PROTO].
        private: Option<String>,
    },
    /// Runs a network's DNS server (started by berth itself).
    #[command(name = "__dns", hide = true)]
    Dns {
        /// Network name.
        network: String,
    },
}

/// `berth network ...`.
#[derive(Subcommand, Debug)]
pub enum NetworkSub {
    /// Create a network.
    Create {
        /// Subnet in CIDR format.
        #[arg(long)]
        subnet: Option<String>,
        /// IPv4 gateway for the subnet.
        #[arg(long)]
        gateway: Option<String>,
        /// Allocate container IPs from a sub-range.
        #[arg(long = "ip-range")]
        ip_range: Option<String>,
        /// Restrict external access to the network.
        #[arg(long)]
        internal: bool,
        /// Enable IPv6 networking (a ULA /64).
        #[arg(long)]
        ipv6: bool,
        /// Driver (only bridge).
        #[arg(short = 'd', long, default_value = "bridge")]
        driver: String,
        /// Set metadata on a network.
        #[arg(long = "label")]
        label: Vec<String>,
        /// Driver options (recorded and shown by inspect; berth does not apply them).
        #[arg(short = 'o', long = "opt")]
        opt: Vec<String>,
        /// Network name.
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Do not truncate the output.
        #[arg(long = "no-trunc")]
        no_trunc: bool,
        /// Format output: table, table TEMPLATE, json, or a Go template.
        #[arg(long)]
        format: Option<String>,
        /// Provide filter values (e.g. "driver=bridge").
        #[arg(short, long, value_name = "FILTER")]
        filter: Vec<String>,
    },
    /// Display detailed information on one or more networks.
    Inspect {
        /// Format output: json (the default) or a Go template.
        #[arg(short, long)]
        format: Option<String>,
        /// Networks.
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm {
        /// Networks.
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Connect a container to a network.
    Connect {
        /// Add network-scoped alias for the container.
        #[arg(long = "alias")]
        alias: Vec<String>,
        /// IPv4 address.
        #[arg(long)]
        ip: Option<String>,
        /// Network.
        network: String,
        /// Container.
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect {
        /// Force the container to disconnect from a network.
        #[arg(short, long)]
        force: bool,
        /// Network.
        network: String,
        /// Container.
        container: String,
    },
    /// Remove all unused networks.
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
        /// Provide filter values (e.g. "until=<timestamp>").
        #[arg(long, value_name = "FILTER")]
        filter: Vec<String>,
    },
}

/// Docker's `network ls` table and column titles.
const NETWORKS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";
const NETWORKS_TITLES: &Titles = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
];

fn engine(cli: &Cli) -> anyhow::Result<Engine> {
    let rt = berth_engine::locate_runtime(cli.runtime.as_deref())
        .unwrap_or_else(|_| "berth-runtime".into());
    let exe = std::env::current_exe().context("find the berth binary")?;
    Ok(Engine::new(&cli.root, &rt, &exe)?)
}

/// Runs a network command; returns the exit status.
pub fn run(cli: &Cli, cmd: &NetworkCommand) -> anyhow::Result<u8> {
    let e = engine(cli)?;
    match cmd {
        NetworkCommand::Dns { network } => {
            e.serve_dns(network)?;
            Ok(0)
        }
        NetworkCommand::Port { container, private } => port(&e, container, private.as_deref()),
        NetworkCommand::Network { cmd } => sub(&e, cmd),
    }
}

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]` (also `container port`).
pub(crate) fn port(e: &Engine, container: &str, private: Option<&str>) -> anyhow::Result<u8> {
    let id = e.lookup(container)?;
    let mut found = false;
    for p in e.ports(&id)? {
        let key = format!("{}/{}", p.container_port, p.proto);
        let host = format!(
            "{}:{}",
            p.host_ip.map(|i| i.to_string()).unwrap_or("0.0.0.0".into()),
            p.host_port
        );
        if let Some(want) = private {
            let want = if want.contains('/') {
                want.to_string()
            } else {
                format!("{want}/tcp")
            };
            if want != key {
                continue;
            }
            println!("{host}");
        } else {
            println!("{key} -> {host}");
        }
        found = true;
    }
    if let Some(want) = private
        && !found
    {
        anyhow::bail!("No public port '{want}' published for {container}");
    }
    Ok(0)
}

fn sub(e: &Engine, cmd: &NetworkSub) -> anyhow::Result<u8> {
    match cmd {
        NetworkSub::Create {
            subnet,
            gateway,
            ip_range,
            internal,
            ipv6,
            driver,
            label,
            opt,
            name,
        } => {
            if driver != "bridge" {
                anyhow::bail!("--driver: only bridge is supported");
            }
            let labels = label
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l, ""));
                    (k.to_string(), v.to_string())
                })
                .collect();
            let n = e.network_create(&NetworkCreateOptions {
                name: name.clone(),
                subnet: subnet.clone(),
                gateway: gateway.clone(),
                ip_range: ip_range.clone(),
                internal: *internal,
                ipv6: *ipv6,
                labels,
                options: opt
                    .iter()
                    .map(|o| {
                        let (k, v) = o.split_once('=').unwrap_or((o, ""));
                        (k.to_string(), v.to_string())
                    })
                    .collect(),
                ..Default::default()
            })?;
            println!("{}", n.id);
            Ok(0)
        }
        NetworkSub::Ls {
            quiet,
            no_trunc,
            format,
            filter,
        } => {
            let list = e.network_list(&berth_engine::Filters::parse(filter)?)?;
            let id = |n: &NetworkInspect| {
                if *no_trunc {
                    n.id.clone()
                } else {
                    n.id[..12].to_string()
                }
            };
            if *quiet {
                for n in &list {
                    println!("{}", id(n));
                }
                return Ok(0);
            }
            let items: Vec<Value> = list
                .iter()
                .map(|n| {
                    json!({
                        "ID": id(n),
                        "Name": n.name,
                        "Driver": n.driver,
                        "Scope": "local",
                        "IPv6": n.enable_ipv6.to_string(),
                        "Internal": n.internal.to_string(),
                        "Labels": n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                        "CreatedAt": n.created,
                    })
                })
                .collect();
            ListFormat::parse(format.as_deref(), NETWORKS_TABLE)?.write(
                &mut std::io::stdout().lock(),
                &items,
                NETWORKS_TITLES,
            )?;
            Ok(0)
        }
        NetworkSub::Inspect { format, networks } => {
            let mut out = Vec::new();
            let mut status = 0;
            for n in networks {
                match e.network_inspect(n) {
                    Ok(n) => out.push(serde_json::to_value(n)?),
                    Err(err) => {
                        eprintln!("berth: {}", crate::error_text(&err));
                        status = 1;
                    }
                }
            }
            write_inspect(&mut std::io::stdout().lock(), format.as_deref(), &out)?;
            Ok(status)
        }
        NetworkSub::Rm { networks } => {
            let mut status = 0;
            for n in networks {
                match e.network_remove(n) {
                    Ok(_) => println!("{n}"),
                    Err(err) => {
                        eprintln!("berth: {}", crate::error_text(&err));
                        status = 1;
                    }
                }
            }
            Ok(status)
        }
        NetworkSub::Connect {
            alias,
            ip,
            network,
            container,
        } => {
            e.network_connect(network, container, alias, ip.as_deref())?;
            Ok(0)
        }
        NetworkSub::Disconnect {
            force,
            network,
            container,
        } => {
            e.network_disconnect(network, container, *force)?;
            Ok(0)
        }
        NetworkSub::Prune { force: _, filter } => {
            let gone = e.network_prune(&berth_engine::Filters::parse(filter)?)?;
            if !gone.is_empty() {
                println!("Deleted Networks:");
                for n in gone {
                    println!("{n}");
                }
            }
            Ok(0)
        }
    }
}
