//! The lab's controls, run for the app by the same `lab/` code as the headless commands.

use anyhow::Result;

use crate::lab::Lab;
use crate::lab::control;
use crate::tui::app::Action;
use crate::tui::app::EventView;
use crate::tui::app::LabOp;
use crate::tui::io::Io;

pub async fn run(io: &Io, op: LabOp) {
    let what = op.describe();
    let timeout = crate::tui::command::timeout_of(&crate::tui::app::Effect::Lab(op.clone()));
    let result = match tokio::time::timeout(timeout, carry_out(io, op)).await {
        Ok(r) => r,
        Err(_) => Err(anyhow::anyhow!("did not finish within {timeout:?}")),
    };
    match result {
        Ok(done) => {
            io.send(Action::Event(EventView::lab("lab", format!("did=\"{what}\""))));
            io.send(Action::Output { ok: true, title: done, lines: vec![] });
        }
        Err(e) => io.send(Action::Output { ok: false, title: format!("{what} failed"), lines: vec![format!("{e:#}")] }),
    }
    // A lesson's step may be done now: judge it without waiting for the next second.
    super::lessons::poke(io);
}

/// Signals wait for the process to change state: off the async threads.
async fn blocking(io: &Io, f: fn(&Lab, &str) -> Result<()>, member: String) -> Result<()> {
    let lab = io.lab()?;
    tokio::task::spawn_blocking(move || f(&lab, &member)).await?
}

async fn carry_out(io: &Io, op: LabOp) -> Result<String> {
    match op {
        LabOp::Kill(m) => {
            blocking(io, control::kill, m.clone()).await?;
            Ok(format!("killed {m} (SIGKILL)"))
        }
        LabOp::Stop(m) => {
            blocking(io, control::stop, m.clone()).await?;
            Ok(format!("stopped {m}"))
        }
        LabOp::Pause(m) => {
            blocking(io, control::pause, m.clone()).await?;
            Ok(format!("paused {m} (SIGSTOP)"))
        }
        LabOp::Resume(m) => {
            blocking(io, control::resume, m.clone()).await?;
            Ok(format!("resumed {m}"))
        }
        LabOp::Start(m) => {
            control::start(&io.lab()?, &m).await?;
            Ok(format!("started {m}"))
        }
        LabOp::Isolate(m) => {
            control::isolate(&io.lab()?, &m).await?;
            Ok(format!("isolated {m}"))
        }
        LabOp::Partition(groups) => {
            let lab = io.lab()?;
            for m in groups.iter().flatten() {
                lab.config.member(m)?;
            }
            let faults = control::change_faults(&lab, |f| {
                f.partition(&groups);
                Ok(())
            })
            .await?;
            let names: Vec<String> = lab.config.active_members().map(|m| m.name.clone()).collect();
            Ok(faults.in_words(&names).join("; "))
        }
        LabOp::Cut(a, b) => {
            let lab = io.lab()?;
            control::change_faults(&lab, |f| {
                f.cut(&a, &b);
                Ok(())
            })
            .await?;
            Ok(format!("{a}'s messages to {b} are lost"))
        }
        LabOp::Slow(m, s) => {
            let lab = io.lab()?;
            lab.config.member(&m)?;
            control::change_faults(&lab, |f| {
                f.set_slow(&m, s);
                Ok(())
            })
            .await?;
            Ok(format!("{m}'s links are slow: {}ms", s.delay_ms))
        }
        LabOp::Heal => {
            control::change_faults(&io.lab()?, |f| {
                f.heal();
                Ok(())
            })
            .await?;
            Ok("healed: no network faults".into())
        }
        LabOp::MemberAdd => {
            let mut lab = io.lab()?;
            let name = crate::lab::membership::add(&mut lab, false, |_| {}).await?;
            io.set_endpoints(lab.endpoints());
            Ok(format!("added {name} as a voter"))
        }
        LabOp::MemberRemove(m) => {
            let mut lab = io.lab()?;
            crate::lab::membership::remove(&mut lab, &m).await?;
            io.set_endpoints(lab.endpoints());
            Ok(format!("removed {m}"))
        }
        LabOp::Step(settings) => {
            crate::lab::step::set(&io.lab()?, settings).await?;
            Ok(match settings {
                None => "step mode off: what was held is delivered".into(),
                Some(s) if s.auto_heartbeats => "step mode on: messages wait, heartbeats flow".into(),
                Some(_) => "step mode on: every message waits (tab 8)".into(),
            })
        }
        LabOp::Deliver(selection) => {
            let n = crate::lab::step::release(&io.lab()?, &selection, false).await?;
            Ok(format!("delivered {n} message{}", if n == 1 { "" } else { "s" }))
        }
        LabOp::DropMessages(selection) => {
            let n = crate::lab::step::release(&io.lab()?, &selection, true).await?;
            Ok(format!("dropped {n} message{}", if n == 1 { "" } else { "s" }))
        }
        LabOp::Tempo(t) => {
            let mut lab = io.lab()?;
            crate::lab::supervisor::set_tempo(&mut lab, t, |_| {}).await?;
            Ok(format!("tempo is now {}ms/{}ms", t.heartbeat_ms, t.election_timeout_ms))
        }
    }
}
