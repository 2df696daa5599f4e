//! Progress of pulls and pushes: one bar per blob (indicatif) when stderr is a terminal, one
//! line per finished blob otherwise, nothing with `-q`.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use berth_image::Digest;
use berth_image::registry::{NoProgress, Outcome, Progress, Transfer};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Picks the progress display for the situation.
pub fn for_terminal(quiet: bool) -> Box<dyn Progress> {
    if quiet {
        Box::new(NoProgress)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars::default())
    } else {
        Box::new(Lines::default())
    }
}

fn short(d: &Digest) -> &str {
    &d.hex()[..12]
}

fn outcome_text(transfer: Transfer, outcome: &Outcome) -> String {
    match (transfer, outcome) {
        (Transfer::Download, Outcome::Exists) => "Already exists".into(),
        (Transfer::Download, _) => "Pull complete".into(),
        (Transfer::Upload, Outcome::Exists) => "Layer already exists".into(),
        (Transfer::Upload, Outcome::Done) => "Pushed".into(),
        (Transfer::Upload, Outcome::Mounted { from }) => format!("Mounted from {from}"),
    }
}

/// One line per blob when it is done, on stderr.
#[derive(Default)]
struct Lines {
    transfers: Mutex<HashMap<Digest, Transfer>>,
}

impl Progress for Lines {
    fn start(&self, blob: &Digest, _size: u64, transfer: Transfer) {
        self.transfers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(blob.clone(), transfer);
    }

    fn finish(&self, blob: &Digest, outcome: &Outcome) {
        let t = self
            .transfers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(blob)
            .copied()
            .unwrap_or(Transfer::Download);
        let _ = writeln!(
            std::io::stderr(),
            "{}: {}",
            short(blob),
            outcome_text(t, outcome)
        );
    }

    fn note(&self, message: &str) {
        let _ = writeln!(std::io::stderr(), "{message}");
    }
}

/// A bar per blob.
#[derive(Default)]
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, (ProgressBar, Transfer)>>,
}

impl Progress for Bars {
    fn start(&self, blob: &Digest, size: u64, transfer: Transfer) {
        let bar = self.multi.add(ProgressBar::new(size));
        let verb = match transfer {
            Transfer::Download => "Downloading",
            Transfer::Upload => "Pushing",
        };
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{prefix}}: {verb} [{{bar:30}}] {{bytes}}/{{total_bytes}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(short(blob).to_string());
        self.bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(blob.clone(), (bar, transfer));
    }

    fn advance(&self, blob: &Digest, bytes: u64) {
        if let Some((bar, _)) = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(blob)
        {
            bar.inc(bytes);
        }
    }

    fn finish(&self, blob: &Digest, outcome: &Outcome) {
        if let Some((bar, t)) = self
            .bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(blob)
        {
            bar.set_style(ProgressStyle::with_template("{prefix}: {msg}").expect("valid"));
            bar.finish_with_message(outcome_text(*t, outcome));
        }
    }

    fn note(&self, message: &str) {
        let _ = self.multi.println(message);
    }
}
