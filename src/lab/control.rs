//! The lab's hands: killing, stopping, pausing, resuming and starting members, and putting
//! network faults in force. The same functions serve the command line and the terminal app.

use std::time::Duration;
use std::time::Instant;

use anyhow::Context;
use anyhow::Result;
use nix::sys::signal::Signal;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

use crate::lab::Lab;
use crate::lab::faults::LabFaults;
use crate::lab::process::ProcessState;
use crate::lab::recording;
use crate::proto::rafttyadmin::StateRequest;
use crate::proto::rafttyadmin::admin_client::AdminClient;

/// Connections to admin surfaces, kept for the life of the process: a long-lived supervisor
/// (the app polls every member twice a second) would otherwise pay a TLS handshake per look.
/// A channel reconnects by itself when its member restarts.
type ChannelKey = (String, std::path::PathBuf, Duration);
static ADMIN_CHANNELS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<ChannelKey, Channel>>> =
    std::sync::LazyLock::new(Default::default);

/// A client of `member`'s admin surface, with the lab's admin certificate.
pub async fn admin_client(lab: &Lab, member: &str, timeout: Duration) -> Result<AdminClient<Channel>> {
    let m = lab.config.member(member)?;
    let key = (m.peer_url(), lab.admin_cert().cert, timeout);
    if let Some(channel) = ADMIN_CHANNELS.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned() {
        return Ok(AdminClient::new(channel));
    }
    let channel = Endpoint::from_shared(m.peer_url())?
        .tls_config(lab.admin_cert().client_tls()?)?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .with_context(|| format!("connecting to the admin surface of {member}"))?;
    ADMIN_CHANNELS.lock().unwrap_or_else(|e| e.into_inner()).insert(key, channel.clone());
    Ok(AdminClient::new(channel))
}

fn member_must_exist(lab: &Lab, member: &str) -> Result<()> {
    let m = lab.config.member(member)?;
    anyhow::ensure!(!m.removed, "{member} was removed from lab {}", lab.name());
    Ok(())
}

/// SIGKILL: the member dies at once, as in a power cut. Returns once it is gone.
pub fn kill(lab: &Lab, member: &str) -> Result<()> {
    member_must_exist(lab, member)?;
    anyhow::ensure!(lab.signal_member(member, Signal::SIGKILL)?, "{member} is not running");
    lab.mark_killed(member)?;
    recording::note_process(&lab.dir, member, "killed");
    anyhow::ensure!(lab.wait_exit(member, Duration::from_secs(10)), "{member} did not die after SIGKILL");
    Ok(())
}

/// SIGTERM: the member shuts down cleanly.
pub fn stop(lab: &Lab, member: &str) -> Result<()> {
    member_must_exist(lab, member)?;
    anyhow::ensure!(lab.stop_member(member, Duration::from_secs(10))?, "{member} is not running");
    Ok(())
}

/// SIGSTOP: the member freezes, like a VM stall or a long garbage-collection pause. Its
/// sockets stay open; its peers just stop hearing from it.
pub fn pause(lab: &Lab, member: &str) -> Result<()> {
    member_must_exist(lab, member)?;
    let state = lab.process(member).state;
    anyhow::ensure!(state != ProcessState::Exited, "{member} is not running");
    anyhow::ensure!(state != ProcessState::Paused, "{member} is already paused");
    lab.signal_member(member, Signal::SIGSTOP)?;
    recording::note_process(&lab.dir, member, "paused");
    wait_state(lab, member, ProcessState::Paused)
}

/// SIGCONT: a paused member carries on where it stopped.
pub fn resume(lab: &Lab, member: &str) -> Result<()> {
    member_must_exist(lab, member)?;
    anyhow::ensure!(lab.process(member).state == ProcessState::Paused, "{member} is not paused");
    lab.signal_member(member, Signal::SIGCONT)?;
    recording::note_process(&lab.dir, member, "resumed");
    wait_state(lab, member, ProcessState::Running)
}

/// Starts a member that is not running, with its data, and waits until it answers.
pub async fn start(lab: &Lab, member: &str) -> Result<()> {
    member_must_exist(lab, member)?;
    anyhow::ensure!(lab.process(member).state == ProcessState::Exited, "{member} is already running");
    lab.spawn_member(member)?;
    wait_answering(lab, member, Duration::from_secs(30)).await
}

/// Waits until `member` runs and its admin surface answers; fails at once if it exits.
pub async fn wait_answering(lab: &Lab, member: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if lab.process(member).state == ProcessState::Exited {
            let how = lab.how_it_ended(member).map(|h| format!(" ({member} {h})")).unwrap_or_default();
            anyhow::bail!(
                "{member} failed to start{how}; last lines of {}:\n{}",
                lab.log_file(member).display(),
                lab.log_tail(member, 15)
            );
        }
        if let Ok(mut admin) = admin_client(lab, member, Duration::from_secs(1)).await
            && admin.state(StateRequest {}).await.is_ok()
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{member} did not answer within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn wait_state(lab: &Lab, member: &str, want: ProcessState) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.process(member).state != want {
        anyhow::ensure!(Instant::now() < deadline, "{member} did not become {want}");
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Cuts `member` off from every other member, both ways: the partition "member | the rest".
pub async fn isolate(lab: &Lab, member: &str) -> Result<LabFaults> {
    lab.config.member(member)?;
    let others: Vec<String> = lab.config.active_members().map(|x| x.name.clone()).filter(|x| x != member).collect();
    anyhow::ensure!(!others.is_empty(), "{member} is the only member: there is nobody to cut it off from");
    change_faults(lab, |f| {
        f.partition(&[vec![member.to_string()], others]);
        Ok(())
    })
    .await
}

/// Changes the lab's faults with `change`, saves them, and pushes the new table to every
/// running member, so that when this returns the faults are in force everywhere they can
/// be (a paused or stopped member picks them up from the file when it runs again).
pub async fn change_faults(lab: &Lab, change: impl FnOnce(&mut LabFaults) -> Result<()>) -> Result<LabFaults> {
    let mut faults = LabFaults::load(&lab.dir)?;
    change(&mut faults)?;
    for (a, b) in &faults.cuts {
        member_must_exist(lab, a)?;
        member_must_exist(lab, b)?;
    }
    for m in faults.slow.keys() {
        member_must_exist(lab, m)?;
    }
    faults.save(&lab.dir)?;
    recording::note(&lab.dir, recording::Record::Faults { t: recording::now_micros(), faults: faults.clone() });
    let table = faults.to_table(&lab.config);
    for m in lab.config.active_members() {
        if lab.process(&m.name).state != ProcessState::Running {
            continue;
        }
        let mut admin = admin_client(lab, &m.name, Duration::from_secs(2)).await?;
        let ack =
            admin.set_faults(table.clone()).await.with_context(|| format!("telling {} the new faults", m.name))?;
        anyhow::ensure!(
            ack.get_ref().generation >= table.generation,
            "{} did not take the new faults (it applies generation {})",
            m.name,
            ack.get_ref().generation
        );
    }
    Ok(faults)
}
