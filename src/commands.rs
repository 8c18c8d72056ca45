//! What each command does, in terms of the library: the glue between `cli.rs` and the rest.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use crate::cli::Cli;
use crate::cli::Command;
use crate::lab;
use crate::lab::Lab;

pub fn run(cli: Cli) -> Result<ExitCode> {
    let command = cli.command.unwrap_or(Command::Up {
        nodes: None,
        tempo: None,
        snapshot_every: None,
    });
    if let Command::Node { lab_dir, name } = &command {
        return crate::node::run(lab_dir, name).map(|()| ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run_lab_command(&cli.lab, command))
}

async fn run_lab_command(lab_name: &str, command: Command) -> Result<ExitCode> {
    let home = lab::home()?;
    match command {
        Command::Up {
            nodes,
            tempo,
            snapshot_every,
        } => {
            let shape = lab::supervisor::LabShape {
                nodes,
                tempo,
                snapshot_every,
            };
            let (lab, report) = lab::supervisor::up(&home, lab_name, shape).await?;
            if report.started.is_empty() {
                println!(
                    "lab {} is already running ({} members); nothing changed",
                    lab.name(),
                    report.already_running.len()
                );
            } else {
                let verb = if report.created {
                    "created and started"
                } else {
                    "started"
                };
                println!("lab {}: {verb} {}", lab.name(), report.started.join(", "));
            }
            println!("endpoints: {}", lab.endpoints().join(","));
            println!(
                "use it with etcdctl:  eval \"$(raftty env{})\"; etcdctl member list",
                lab_flag(lab_name)
            );
        }
        Command::Down { purge } => {
            let stopped = lab::supervisor::down(&home, lab_name, purge)?;
            if stopped.is_empty() {
                println!("no member of lab {lab_name} was running");
            } else {
                println!("stopped {}", stopped.join(", "));
            }
            if purge {
                println!("deleted lab {lab_name}");
            }
        }
        Command::Status { json } => {
            let lab = Lab::open(&home, lab_name)?;
            let status = lab::status::gather(&lab, Duration::from_secs(2)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", lab::status::render_table(&lab, &status));
            }
        }
        Command::Env => {
            let lab = Lab::open(&home, lab_name)?;
            print!("{}", lab::supervisor::env_exports(&lab));
        }
        Command::Bench {
            duration,
            no_etcd,
            keys,
            value_size,
        } => {
            crate::bench::run(crate::bench::BenchOptions {
                duration,
                with_etcd: !no_etcd,
                keys,
                value_size,
            })
            .await?;
        }
        Command::Metrics { name, grep } => {
            let lab = Lab::open(&home, lab_name)?;
            return crate::metrics::scrape::print_member(&lab, &name, grep.as_deref()).await;
        }
        Command::Node { .. } => unreachable!("handled before the runtime starts"),
    }
    Ok(ExitCode::SUCCESS)
}

fn lab_flag(lab_name: &str) -> String {
    if lab_name == lab::DEFAULT_LAB {
        String::new()
    } else {
        format!(" --lab {lab_name}")
    }
}
