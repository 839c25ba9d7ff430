//! Start-up progress: a spinner per step on a terminal (indicatif), plain lines otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Prints steps as they start and finish.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Spinners when stdout is a terminal.
    interactive: bool,
}

impl Progress {
    /// Spinners when stdout is a terminal, plain lines otherwise.
    pub fn detect() -> Self {
        Self {
            interactive: std::io::stdout().is_terminal(),
        }
    }

    /// Starts a step; finish it with [`Step::done`] (or drop it on error).
    pub fn step(&self, message: impl Into<String>) -> Step {
        let message = message.into();
        let bar = if self.interactive {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.set_message(message.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            println!("[devnet] {message} …");
            None
        };
        Step {
            message,
            bar,
            started: Instant::now(),
        }
    }

    /// Prints one line (above a running spinner, if any).
    pub fn line(&self, text: &str) {
        println!("{text}");
    }
}

/// A running step.
#[derive(Debug)]
pub struct Step {
    message: String,
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Step {
    /// Marks the step done, with an optional detail (`"uid 3"`, a URL).
    pub fn done(self, detail: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        let sep = if detail.is_empty() { "" } else { ": " };
        let line = format!("✓ {}{sep}{detail} ({secs:.1}s)", self.message);
        match &self.bar {
            Some(bar) => {
                bar.finish_and_clear();
                println!("{line}");
            }
            None => println!("[devnet] {line}"),
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar
            && !bar.is_finished()
        {
            bar.abandon_with_message(format!("✗ {}", self.message));
        }
    }
}
