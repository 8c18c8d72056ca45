//! The demo player's side of presentation mode: plays the step the presenter asked for in
//! the background, telling the screen what it runs and what the outcome still lacks.

use std::sync::Arc;

use crate::course::demo::Doing;
use crate::course::demo::Player;
use crate::tui::app::Action;
use crate::tui::io::Io;
use crate::tui::io::Source;
use crate::tui::presentation::DemoOp;
use crate::tui::presentation::DemoUpdate;

impl Io {
    /// Presents `demo` on this app's lab.
    pub fn present(self: &Arc<Self>, demo: crate::course::demo::Demo) {
        let Source::Lab { home, name } = &self.source else { return };
        let player = Player::new(demo, home, name);
        if let Ok(mut slot) = self.demo.try_lock() {
            *slot = Some(player);
        }
    }
}

pub fn run(io: &Arc<Io>, op: DemoOp) {
    let io = io.clone();
    tokio::spawn(async move {
        // One step at a time: a second press waits for the first to finish.
        let mut slot = io.demo.lock().await;
        let Some(player) = slot.as_mut() else { return };
        let step = match op {
            DemoOp::Play(i) | DemoOp::Back(i) => i,
        };
        let tell = {
            let io = io.clone();
            move |doing: Doing| {
                let what = match doing {
                    Doing::Running(line) => format!("running: {line}"),
                    Doing::Waiting(missing) => format!("waiting for the cluster: {missing}"),
                };
                io.send(Action::Demo(DemoUpdate::Doing { step, what }));
            }
        };
        io.send(Action::Demo(DemoUpdate::Doing { step, what: "starting…".into() }));
        // A step may stop and start members, or restore the lab in place: on a thread of
        // its own, so the screen never waits for it.
        let handle = tokio::runtime::Handle::current();
        let result = tokio::task::block_in_place(|| {
            handle.block_on(async {
                match op {
                    DemoOp::Play(i) => player.play(i, tell).await,
                    DemoOp::Back(i) => player.back_to(i, tell).await,
                }
            })
        });
        // A restore or a fresh lab listens on new ports.
        if result.as_ref().is_ok_and(|played| played.fresh_lab) {
            io.lab_made_anew("made a fresh lab, as the demo began".into());
        } else {
            io.lab_moved();
        }
        let update = match result {
            Ok(played) => DemoUpdate::Done { step, said: played.said, output: played.output },
            Err(e) => DemoUpdate::Failed { step, why: format!("{e:#}") },
        };
        io.send(Action::Demo(update));
    });
}
