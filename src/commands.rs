//! What each command does, in terms of the library: the glue between `cli.rs` and the rest.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use anyhow::Result;

use crate::cli::Cli;
use crate::cli::Command;
use crate::cli::MemberCommand;
use crate::lab;
use crate::lab::Lab;

pub fn run(cli: Cli) -> Result<ExitCode> {
    let theme = crate::tui::theme::ThemeName::from_env(cli.theme.as_deref());
    let Some(command) = cli.command else {
        let shape = lab::supervisor::LabShape { nodes: cli.nodes, tempo: cli.tempo, ..Default::default() };
        return tokio::runtime::Runtime::new()?.block_on(open_app(&cli.lab, shape, theme, None));
    };
    anyhow::ensure!(
        cli.nodes.is_none() && cli.tempo.is_none(),
        "--nodes and --tempo before a command are for the app; give them after the command (`raftty up --nodes 5`)"
    );
    if let Command::Node { lab_dir, name } = &command {
        return crate::node::run(lab_dir, name).map(|()| ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Runtime::new()?;
    if let Command::Attach { endpoints, cacert, cert, key } = command {
        let cert = match (cacert, cert, key) {
            (Some(ca), Some(cert), Some(key)) => Some(crate::pki::CertFiles { ca, cert, key }),
            _ => None,
        };
        for e in &endpoints {
            anyhow::ensure!(
                e.starts_with("https://") || e.starts_with("http://"),
                "an endpoint is a URL such as https://127.0.0.1:2379, not {e:?}"
            );
            anyhow::ensure!(
                cert.is_some() || e.starts_with("http://"),
                "{e} speaks TLS: give --cacert, --cert and --key (from `raftty env` for a lab)"
            );
        }
        let options = crate::tui::AppOptions {
            source: crate::tui::io::Source::Attached { endpoints: endpoints.clone(), cert },
            target: crate::tui::app::Target::Attached { endpoints },
            shape: lab::supervisor::LabShape::default(),
            theme,
            demo: None,
            replay_from: None,
        };
        return runtime.block_on(crate::tui::run(options));
    }
    if let Command::Replay { file, from, at, json, export } = command {
        return runtime.block_on(replay(&cli.lab, file, from, at, json, export, theme));
    }
    if let Command::Demo { name, yes, verify, all, lessons } = command {
        return runtime.block_on(demo(&cli.lab, name, yes, verify, all, &lessons, theme));
    }
    runtime.block_on(run_lab_command(&cli.lab, command))
}

/// `raftty replay`: a recording in the app, or the cluster at one moment, or exported.
async fn replay(
    lab_name: &str,
    file: Option<std::path::PathBuf>,
    from: Option<String>,
    at: Option<String>,
    json: bool,
    export: Option<std::path::PathBuf>,
    theme: crate::tui::theme::ThemeName,
) -> Result<ExitCode> {
    use crate::lab::recording::Recording;
    use crate::lab::recording::parse_moment;
    // A moment that cannot be read is an error whatever the recording holds.
    for moment in [&at, &from].into_iter().flatten() {
        parse_moment(moment, 0)?;
    }
    let recording = match &file {
        Some(path) => Recording::from_file(path)?,
        None => Recording::of_lab(&Lab::open(&lab::home()?, lab_name)?.dir)?,
    };
    let (Some(start), Some(end)) = (recording.start(), recording.end()) else {
        anyhow::bail!("the recording of lab {} is empty: nothing happened yet", recording.lab);
    };
    if let Some(path) = export {
        recording.export(&path)?;
        println!(
            "wrote {} records of lab {} ({:.1} s) to {}; `raftty replay {}` replays them",
            recording.records.len(),
            recording.lab,
            (end - start) as f64 / 1e6,
            path.display(),
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(at) = at {
        let moment = parse_moment(&at, start)?;
        let status = recording.status_at(moment);
        if json {
            println!("{}", serde_json::to_string_pretty(&status)?);
        } else {
            print!("{}", lab::status::render_table(&recording.lab, recording.tempo(), &status));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let from = from.map(|f| parse_moment(&f, start)).transpose()?;
    let options = crate::tui::AppOptions {
        target: crate::tui::app::Target::Lab { name: recording.lab.clone(), tempo: recording.tempo() },
        source: crate::tui::io::Source::Replay(std::sync::Arc::new(recording)),
        shape: lab::supervisor::LabShape::default(),
        theme,
        demo: None,
        replay_from: Some(from.unwrap_or(start)),
    };
    crate::tui::run(options).await
}

/// `raftty demo`: list the demos, verify them, or make one's lab and present it.
async fn demo(
    lab_name: &str,
    name: Option<String>,
    yes: bool,
    verify: bool,
    all: bool,
    dirs: &[std::path::PathBuf],
    theme: crate::tui::theme::ThemeName,
) -> Result<ExitCode> {
    use crate::course::demo;
    let demos = demo::load_all(&crate::course::lesson::extra_dirs(dirs))?;
    if verify {
        let chosen: Vec<&demo::Demo> = match (&name, all) {
            (_, true) => demos.iter().collect(),
            (Some(id), false) => vec![demo::find(&demos, id)?],
            (None, false) => anyhow::bail!("name the demo to verify, or give --all"),
        };
        let scratch = tempfile::Builder::new().prefix("raftty-verify-").tempdir()?;
        let mut failed = false;
        for d in chosen {
            let problems = demo::verify(scratch.path(), d).await.unwrap_or_else(|e| vec![format!("{e:#}")]);
            if problems.is_empty() {
                println!("{}: ok ({} steps, and back to a checkpoint)", d.id, d.steps.len());
            } else {
                failed = true;
                println!("{}: FAILED", d.id);
                for p in problems {
                    println!("  {p}");
                }
            }
        }
        return Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS });
    }
    let Some(id) = name else {
        let width = demos.iter().map(|d| d.id.len()).max().unwrap_or(0);
        for d in &demos {
            println!("{:<width$}  {} steps  {}: {}", d.id, d.steps.len(), d.title, d.summary);
        }
        println!("\n`raftty demo NAME` presents one: space plays the next step, backspace goes back to a checkpoint.");
        return Ok(ExitCode::SUCCESS);
    };
    let chosen = demo::find(&demos, &id)?.clone();
    let home = lab::home()?;
    if Lab::exists(&home, lab_name) && !yes && !crate::course::commands::confirm_replace(lab_name)? {
        println!("nothing changed; `raftty demo {id} --lab NAME` presents it on a lab of its own");
        return Ok(ExitCode::FAILURE);
    }
    println!("making the lab {lab_name:?} for the demo {id}: {} members…", chosen.lab.members);
    crate::course::session::make_lab(&home, &chosen.lab, lab_name).await?;
    open_app(lab_name, lab::supervisor::LabShape::default(), theme, Some(chosen)).await
}

/// `raftty`: the app on the lab, which it starts first when it is not running.
async fn open_app(
    lab_name: &str,
    shape: lab::supervisor::LabShape,
    theme: crate::tui::theme::ThemeName,
    demo: Option<crate::course::demo::Demo>,
) -> Result<ExitCode> {
    let home = lab::home()?;
    let tempo = match Lab::open(&home, lab_name) {
        Ok(lab) => lab.config.tempo,
        Err(_) => shape.tempo.unwrap_or(lab::Tempo::ETCD),
    };
    let options = crate::tui::AppOptions {
        source: crate::tui::io::Source::Lab { home, name: lab_name.to_string() },
        target: crate::tui::app::Target::Lab { name: lab_name.to_string(), tempo },
        shape,
        theme,
        demo,
        replay_from: None,
    };
    crate::tui::run(options).await
}

async fn run_lab_command(lab_name: &str, command: Command) -> Result<ExitCode> {
    let home = lab::home()?;
    match command {
        Command::Up { nodes, tempo, snapshot_every, quota_backend_bytes } => {
            let shape = lab::supervisor::LabShape { nodes, tempo, snapshot_every, quota_backend_bytes };
            let (lab, report) = lab::supervisor::up(&home, lab_name, shape).await?;
            if report.quota_changed && !report.already_running.is_empty() {
                println!(
                    "the new quota holds for members as they start; {} keep the old one until restarted \
                     (raftty stop NAME; raftty start NAME)",
                    report.already_running.join(", ")
                );
            }
            if report.started.is_empty() {
                println!(
                    "lab {} is already running ({} members); nothing changed",
                    lab.name(),
                    report.already_running.len()
                );
            } else {
                let verb = if report.created { "created and started" } else { "started" };
                println!("lab {}: {verb} {}", lab.name(), report.started.join(", "));
            }
            println!("endpoints: {}", lab.endpoints().join(","));
            println!("use it with etcdctl:  eval \"$(raftty env{})\"; etcdctl member list", lab_flag(lab_name));
        }
        Command::Snapshot(crate::cli::SnapshotCommand::Status { file, json }) => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let status = crate::backup::snapshot_file::status(&bytes)
                .with_context(|| format!("{} is not a snapshot etcd could read", file.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status.render());
            }
        }
        Command::Snapshot(crate::cli::SnapshotCommand::Save { file, member }) => {
            let lab = Lab::open(&home, lab_name)?;
            let member = match member {
                Some(m) => m,
                None => {
                    let status = lab::status::gather(&lab, Duration::from_secs(2)).await?;
                    status.leader().context("no member leads right now: name one with --member")?.to_string()
                }
            };
            let url = lab.config.member(&member)?.client_url();
            let mut client =
                crate::client::EtcdClient::connect(&url, &lab.root_cert(), Duration::from_secs(600)).await?;
            let mut terminal = crate::progress::Terminal::default();
            let saved = crate::backup::stream::save(&mut client, &file, |p| terminal.report(p)).await?;
            terminal.finish();
            crate::backup::catalog::remember(&home, lab_name, &file)?;
            println!(
                "Snapshot saved at {} ({} bytes, revision {}, from {member})",
                file.display(),
                saved.bytes,
                saved.revision
            );
        }
        Command::Restore { source, nodes, to_revision, replace, skip_hash_check } => {
            let options = lab::restore::RestoreOptions {
                source,
                lab: lab_name.to_string(),
                nodes,
                to_revision,
                replace,
                skip_hash_check,
            };
            let mut terminal = crate::progress::Terminal::default();
            let report = lab::restore::restore(&home, options, |p| terminal.report(p)).await?;
            terminal.finish();
            println!(
                "restored lab {}: revision {}, {} keys, {} leases (their TTLs start afresh), new cluster id {:x}",
                report.lab.name(),
                report.revision,
                report.live_keys,
                report.leases,
                report.lab.config.cluster_id
            );
            if report.detached > 0 {
                println!("{} keys were detached from leases the backup no longer held", report.detached);
            }
            if let Some(old) = report.replaced {
                println!("the lab it replaced is kept in {}", old.display());
            }
            println!("use it with etcdctl:  eval \"$(raftty env{})\"", lab_flag(lab_name));
        }
        Command::Backup { action: Some(crate::cli::BackupCommand::List { dir: Some(dir) }), .. } => {
            print!("{}", crate::backup::continuous::describe(&dir)?);
        }
        Command::Backup { action: Some(crate::cli::BackupCommand::List { dir: None }), .. } => {
            let entries = crate::backup::catalog::list(&home, lab_name);
            if entries.is_empty() {
                println!(
                    "no backups of lab {lab_name} yet (raftty snapshot save FILE, or raftty backup); they go to {}",
                    crate::backup::catalog::folder(&home, lab_name).display()
                );
            }
            for e in entries {
                println!("{}", crate::backup::catalog::one_line(&e));
            }
        }
        Command::Backup { action: None, dir, every, progress_every } => {
            let dir = dir.unwrap_or_else(|| crate::backup::catalog::continuous_folder(&home, lab_name));
            let lab = Lab::open(&home, lab_name)?;
            crate::backup::catalog::remember(&home, lab_name, &dir)?;
            let options = crate::backup::continuous::BackupOptions { every, max_log_bytes: 64 << 20, progress_every };
            let stop = async {
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
                }
            };
            crate::backup::continuous::run(&lab.dir, &dir, &options, stop, |line| println!("{line}")).await?;
        }
        Command::Recover { name, force } => {
            let mut terminal = crate::progress::Terminal::default();
            let report = lab::recover::recover(&home, lab_name, &name, force, |p| terminal.report(p)).await?;
            terminal.finish();
            println!(
                "recovered lab {lab_name} around {name}: it kept its state at revision {} (Raft index {})",
                report.kept_revision, report.kept_applied_index
            );
            if !report.added.is_empty() {
                println!("added fresh members {}", report.added.join(", "));
            }
            if !report.removed.is_empty() {
                println!(
                    "{} are out of the cluster for good; {name}'s old data is kept in {}",
                    report.removed.join(", "),
                    report.old_data.display()
                );
            }
            println!(
                "what may be lost: writes a majority without {name} committed after index {}, which {name} never applied",
                report.kept_applied_index
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
                print!("{}", lab::status::render_table(lab.name(), lab.config.tempo, &status));
            }
        }
        Command::Env { member, user } => {
            let lab = Lab::open(&home, lab_name)?;
            let mut exports = lab::supervisor::env_exports(&lab);
            if let Some(m) = member {
                let url = lab.config.member(&m)?.client_url();
                let all = lab.endpoints().join(",");
                exports = exports.replace(&format!("ETCDCTL_ENDPOINTS={all}"), &format!("ETCDCTL_ENDPOINTS={url}"));
            }
            if let Some(u) = user {
                let root = lab.root_cert();
                let theirs = crate::pki::Pki::open(&lab.pki_dir())?.user_files(&u);
                anyhow::ensure!(
                    theirs.cert.exists(),
                    "user {u} has no certificate in lab {lab_name}: make one with `raftty cert issue {u}`"
                );
                let quote = |p: &std::path::Path| lab::supervisor::shell_quote(&p.display().to_string());
                exports = exports
                    .replace(
                        &format!("ETCDCTL_CERT={}", quote(&root.cert)),
                        &format!("ETCDCTL_CERT={}", quote(&theirs.cert)),
                    )
                    .replace(
                        &format!("ETCDCTL_KEY={}", quote(&root.key)),
                        &format!("ETCDCTL_KEY={}", quote(&theirs.key)),
                    );
            }
            print!("{exports}");
        }
        Command::Demo { .. } => anyhow::bail!("`raftty demo` opens the app: it is not a lab command"),
        Command::Replay { .. } => anyhow::bail!("`raftty replay` is not a lab command"),
        Command::Lesson { action, lessons } => {
            return crate::course::commands::run(&home, lab_name, action, &lessons).await;
        }
        Command::Drill { action } => {
            return crate::course::drill::commands::run(&home, lab_name, action).await;
        }
        Command::Cert(crate::cli::CertCommand::Issue { name, valid_for, expired, server_only, no_common_name }) => {
            use crate::pki::UserShape;
            let lab = Lab::open(&home, lab_name)?;
            let shape = match (server_only, no_common_name) {
                (true, _) => UserShape::ServerOnly,
                (_, true) => UserShape::WithoutCommonName,
                _ => UserShape::Client,
            };
            let files = lab::certs::issue(&lab, &name, lab::certs::IssueOptions { valid_for, expired, shape })?;
            println!("certificate of {name}: {}", files.cert.display());
            println!("its private key (0600): {}", files.key.display());
            let env = format!("eval \"$(raftty env{} --user {name})\"", lab_flag(lab_name));
            match shape {
                UserShape::Client if expired => println!("use it:  {env}  (members refuse it: it has expired)"),
                UserShape::Client => {
                    println!("use it:  {env}  (it acts as etcd user {name} when no token is given)")
                }
                UserShape::ServerOnly => {
                    println!("use it:  {env}  (members refuse it: it is not for client authentication)")
                }
                UserShape::WithoutCommonName => {
                    println!("use it:  {env}  (it acts as no one: give a token; the gateway takes it while auth is on)")
                }
            }
        }
        Command::Cert(crate::cli::CertCommand::List { json }) => {
            let lab = Lab::open(&home, lab_name)?;
            let pki = crate::pki::Pki::open(&lab.pki_dir())?;
            let ca = pki.ca_path();
            let infos: Vec<lab::certs::CertInfo> =
                pki.certificate_files().iter().map(|f| lab::certs::inspect(f, Some(&ca))).collect::<Result<_>>()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&infos)?);
            } else {
                print!("{}", lab::certs::table(&infos, &pki.ca_path()));
            }
        }
        Command::Cert(crate::cli::CertCommand::Inspect { file, json }) => {
            let lab_ca = Lab::open(&home, lab_name).ok().map(|l| crate::pki::Pki::at(&l.pki_dir()).ca_path());
            let info = lab::certs::inspect(&file, lab_ca.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                print!("{}", info.render());
            }
        }
        Command::Kill { name } => {
            lab::control::kill(&Lab::open(&home, lab_name)?, &name)?;
            println!("killed {name} (SIGKILL)");
        }
        Command::Stop { name } => {
            lab::control::stop(&Lab::open(&home, lab_name)?, &name)?;
            println!("stopped {name}");
        }
        Command::Pause { name } => {
            lab::control::pause(&Lab::open(&home, lab_name)?, &name)?;
            println!("paused {name} (SIGSTOP); `raftty resume {name}` lets it carry on");
        }
        Command::Resume { name } => {
            lab::control::resume(&Lab::open(&home, lab_name)?, &name)?;
            println!("resumed {name}");
        }
        Command::Start { name } => {
            lab::control::start(&Lab::open(&home, lab_name)?, &name).await?;
            println!("started {name}");
        }
        Command::Partition { groups } => {
            let groups = crate::lab::faults::parse_partition(&groups)?;
            let lab = Lab::open(&home, lab_name)?;
            let faults = lab::control::change_faults(&lab, |f| {
                f.partition(&groups);
                Ok(())
            })
            .await?;
            print_faults(&faults);
        }
        Command::Isolate { name } => {
            let faults = lab::control::isolate(&Lab::open(&home, lab_name)?, &name).await?;
            print_faults(&faults);
        }
        Command::Cut { from, to } => {
            let lab = Lab::open(&home, lab_name)?;
            anyhow::ensure!(from != to, "a member always reaches itself");
            let faults = lab::control::change_faults(&lab, |f| {
                f.cut(&from, &to);
                Ok(())
            })
            .await?;
            print_faults(&faults);
        }
        Command::Slow { name, delay, jitter, loss } => {
            let lab = Lab::open(&home, lab_name)?;
            let slowness = crate::lab::faults::Slowness {
                delay_ms: delay.as_millis().try_into().unwrap_or(u32::MAX),
                jitter_ms: jitter.as_millis().try_into().unwrap_or(u32::MAX),
                loss_percent: loss,
            };
            let faults = lab::control::change_faults(&lab, |f| {
                f.set_slow(&name, slowness);
                Ok(())
            })
            .await?;
            print_faults(&faults);
        }
        Command::Heal => {
            let lab = Lab::open(&home, lab_name)?;
            let faults = lab::control::change_faults(&lab, |f| {
                f.heal();
                Ok(())
            })
            .await?;
            print_faults(&faults);
        }
        Command::Events { json, recent, count } => {
            let lab = Lab::open(&home, lab_name)?;
            let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
            let follow = lab::timeline::follow(&lab, recent, tx);
            let print = async {
                let mut printed = 0;
                while let Some(event) = rx.recv().await {
                    if json {
                        println!("{}", lab::timeline::event_json(&event));
                    } else {
                        println!("{}", lab::timeline::event_line(&event));
                    }
                    printed += 1;
                    if count.is_some_and(|c| printed >= c) {
                        break;
                    }
                }
            };
            tokio::select! {
                _ = follow => {}
                _ = print => {}
            }
        }
        Command::Log { name, from, limit, json } => {
            let lab = Lab::open(&home, lab_name)?;
            let log = lab::timeline::read_log(&lab, &name, from, limit).await?;
            if json {
                let entries: Vec<_> = log
                    .entries
                    .iter()
                    .map(
                        |e| serde_json::json!({"index": e.index, "term": e.term, "kind": e.kind, "summary": e.summary}),
                    )
                    .collect();
                let out = serde_json::json!({
                    "member": name, "entries": entries, "last_index": log.last_index,
                    "committed_index": log.committed_index, "applied_index": log.applied_index,
                    "snapshot_index": log.snapshot_index, "purged_index": log.purged_index,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}", lab::timeline::log_table(&name, &log));
            }
        }
        Command::Member(MemberCommand::Add { learner }) => {
            let mut lab = Lab::open(&home, lab_name)?;
            let mut terminal = crate::progress::Terminal::default();
            terminal.report(crate::progress::Progress::step("adding a member and letting it catch up"));
            let name = lab::membership::add(&mut lab, learner, |p| {
                terminal.report(crate::progress::Progress::Amount {
                    done: p.matched,
                    total: p.leader_last,
                    unit: crate::progress::Unit::Entries,
                })
            })
            .await?;
            terminal.finish();
            let role = if learner { "learner" } else { "voter" };
            println!("added {name} as a {role}");
        }
        Command::Member(MemberCommand::Promote { name }) => {
            lab::membership::promote(&Lab::open(&home, lab_name)?, &name).await?;
            println!("promoted {name} to voter");
        }
        Command::Member(MemberCommand::Remove { name }) => {
            let mut lab = Lab::open(&home, lab_name)?;
            lab::membership::remove(&mut lab, &name).await?;
            println!("removed {name}");
        }
        Command::Step(step) => step_command(&Lab::open(&home, lab_name)?, step).await?,
        Command::Tempo { tempo } => {
            let mut lab = Lab::open(&home, lab_name)?;
            lab::supervisor::set_tempo(&mut lab, tempo, |m| eprintln!("restarting {m} with the new timing")).await?;
            println!(
                "lab {lab_name} now runs at heartbeat {} ms, election timeout {} ms",
                tempo.heartbeat_ms, tempo.election_timeout_ms
            );
        }
        Command::Check { json, wait } => {
            let lab = Lab::open(&home, lab_name)?;
            let report = lab::check::check(&lab, wait).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render());
            }
            if !report.all_agree() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Torture { seed, duration, clients, nodes, nemesis, keys, out } => {
            let nemesis =
                if nemesis == "none" { vec![] } else { crate::proving::torture::nemesis::Fault::parse_list(&nemesis)? };
            anyhow::ensure!(nodes == 3 || nodes == 5, "a torture lab has 3 or 5 members");
            let options = crate::proving::torture::TortureOptions {
                seed,
                duration,
                clients,
                nodes,
                nemesis,
                home: None,
                out,
                keys,
            };
            let report = crate::proving::torture::run(&options).await?;
            print!("{}", report.summary());
            if let Some(dir) = report.save_if_failed()? {
                println!("the history and the first violation are in {}", dir.display());
                if let Some(account) = report.first_violation() {
                    println!("\n{account}");
                }
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Bench { duration, no_etcd, keys, value_size, members, only, explain, rounds } => {
            let options = crate::proving::bench::BenchOptions {
                duration,
                with_etcd: !no_etcd,
                keys,
                value_size,
                members,
                only,
                explain,
                rounds,
            };
            crate::proving::bench::run(options).await?;
        }
        Command::Metrics { name, grep } => {
            let lab = Lab::open(&home, lab_name)?;
            return crate::lab::scrape::print_member(&lab, &name, grep.as_deref()).await;
        }
        Command::Node { .. } | Command::Attach { .. } => unreachable!("handled before the runtime starts"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn step_command(lab: &Lab, step: crate::cli::StepCommand) -> Result<()> {
    use crate::cli::StepCommand;
    match step {
        StepCommand::On { auto_heartbeats } => {
            lab::step::set(lab, Some(crate::lab::faults::StepSettings { auto_heartbeats })).await?;
            println!(
                "step mode on: every Raft message waits until `raftty step deliver`{}",
                if auto_heartbeats { " (heartbeats flow by themselves)" } else { "" }
            );
        }
        StepCommand::Off => {
            lab::step::set(lab, None).await?;
            println!("step mode off: what was held is delivered, and messages flow again");
        }
        StepCommand::List { json } => {
            let held = lab::step::held(lab).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&held)?);
            } else {
                let faults = crate::lab::faults::LabFaults::load(&lab.dir)?;
                if faults.step.is_none() {
                    println!("step mode is off (`raftty step on` holds every Raft message)");
                }
                println!("{}", lab::step::table(&held));
            }
        }
        StepCommand::Deliver(selection) => {
            let n = lab::step::release(lab, &selection.selection(), false).await?;
            println!("delivered {n} message{}", if n == 1 { "" } else { "s" });
        }
        StepCommand::Drop(selection) => {
            let n = lab::step::release(lab, &selection.selection(), true).await?;
            println!("dropped {n} message{}", if n == 1 { "" } else { "s" });
        }
    }
    Ok(())
}

fn print_faults(faults: &crate::lab::faults::LabFaults) {
    if faults.is_empty() {
        println!("no network faults");
    } else {
        for line in faults.describe() {
            println!("{line}");
        }
    }
}

fn lab_flag(lab_name: &str) -> String {
    if lab_name == lab::DEFAULT_LAB { String::new() } else { format!(" --lab {lab_name}") }
}
