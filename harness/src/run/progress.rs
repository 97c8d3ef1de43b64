//! A progress bar that appears only when a run outlasts a second and stderr is a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;

const SHOW_AFTER: Duration = Duration::from_secs(1);

pub struct Bar {
    ticks: mpsc::UnboundedSender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Bar {
    pub fn start(total: u64) -> Bar {
        let (ticks, mut rx) = mpsc::unbounded_channel::<()>();
        let on_terminal = std::io::stderr().is_terminal();
        let task = tokio::spawn(async move {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
            if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} requests {elapsed}") {
                bar.set_style(style);
            }
            let show = tokio::time::sleep(SHOW_AFTER);
            tokio::pin!(show);
            let mut shown = false;
            loop {
                tokio::select! {
                    tick = rx.recv() => match tick {
                        Some(()) => bar.inc(1),
                        None => break,
                    },
                    () = &mut show, if !shown && on_terminal => {
                        shown = true;
                        bar.set_draw_target(ProgressDrawTarget::stderr());
                    }
                }
            }
            bar.finish_and_clear();
        });
        Bar { ticks, task }
    }

    pub fn sender(&self) -> mpsc::UnboundedSender<()> {
        self.ticks.clone()
    }

    pub fn finish(self) {
        drop(self.ticks);
        // The task ends once every sender is gone; it only clears the bar.
        drop(self.task);
    }
}
