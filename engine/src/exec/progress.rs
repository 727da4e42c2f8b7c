//! The progress display on stderr: a live line on a terminal, one line
//! per action otherwise (or nothing), and error messages. With the CLI, the
//! only place kiln prints.

use std::io::{IsTerminal, Write as _};
use std::time::{Duration, Instant};

use super::ProgressMode;
use crate::action::{Action, ActionKind};

/// Progress display on stderr.
pub(super) struct Progress {
    mode: ProgressMode,
    tty: bool,
    total: usize,
    start: Instant,
    last: Instant,
    drawn: bool,
}

impl Progress {
    pub(super) fn new(mode: ProgressMode, total: usize) -> Self {
        let now = Instant::now();
        Progress {
            mode,
            tty: std::io::stderr().is_terminal(),
            total,
            start: now,
            last: now,
            drawn: false,
        }
    }

    pub(super) fn live(&self) -> bool {
        self.mode == ProgressMode::Auto && self.tty
    }

    pub(super) fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.drawn = false;
        }
    }

    /// Whether a live line should be redrawn now.
    pub(super) fn due(&self) -> bool {
        self.live() && self.last.elapsed() >= Duration::from_millis(100)
    }

    /// Redraw the live line: done/total, running actions, elapsed time.
    pub(super) fn tick(&mut self, done: usize, running: usize, what: &str) {
        self.last = Instant::now();
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[K[{done}/{}] {:.1}s, {running} running: {what}",
            self.total,
            self.start.elapsed().as_secs_f64()
        );
        self.drawn = true;
    }

    /// One line per action that ran: `--progress plain`, or `auto` when
    /// stderr is not a terminal.
    pub(super) fn line(&mut self, a: &Action, extra: &str, took: Duration) {
        if self.mode == ProgressMode::Plain || (self.mode == ProgressMode::Auto && !self.tty) {
            let message = match &a.kind {
                ActionKind::Command(c) if !c.progress_message.is_empty() => {
                    format!(": {}", c.progress_message)
                }
                _ => String::new(),
            };
            let _ = writeln!(
                std::io::stderr(),
                "{} {} ({:.2}s){extra}{message}",
                a.mnemonic,
                a.name(),
                took.as_secs_f64()
            );
        }
    }

    pub(super) fn message(&mut self, text: &str) {
        self.clear();
        let _ = std::io::stderr().write_all(text.as_bytes());
    }

    pub(super) fn finish(&mut self) {
        self.clear();
    }
}
