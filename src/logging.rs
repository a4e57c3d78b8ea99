//! Log output: a human format on the terminal and JSON lines in `<log_dir>/pressluft.log`.
//!
//! `RUST_LOG` overrides the default levels (`info`, plus `debug` for our own code in `dev`).
//! What is logged is decided where it happens; nothing here filters secrets, so nothing that
//! logs may pass one (see ARCHITECTURE.md, "Observability").

use std::io::IsTerminal;
use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::config::Mode;

fn filter(mode: Mode) -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| match mode {
        Mode::Dev => EnvFilter::new("info,pressluft=debug"),
        Mode::Serve => EnvFilter::new("info"),
    })
}

/// Starts logging to the terminal and, when `log_dir` is given, to `pressluft.log` there.
/// Keep the returned guard alive until exit so buffered file lines are written.
/// `serve` and `dev` log to stdout; one-shot commands (`migrate`, `admin`) pass `log_dir = None`
/// and log to stderr, so their stdout carries only their answer.
pub fn init(mode: Mode, log_dir: Option<&Path>) -> Option<WorkerGuard> {
    let to_stdout = log_dir.is_some();
    let terminal = fmt::layer()
        .with_target(false)
        .with_ansi(if to_stdout {
            std::io::stdout().is_terminal()
        } else {
            std::io::stderr().is_terminal()
        })
        .with_writer(move || -> Box<dyn std::io::Write> {
            if to_stdout {
                Box::new(std::io::stdout())
            } else {
                Box::new(std::io::stderr())
            }
        })
        .with_filter(filter(mode));
    let (file, guard) = match log_dir {
        Some(dir) => {
            let (writer, guard) = tracing_appender::non_blocking(tracing_appender::rolling::never(
                dir,
                "pressluft.log",
            ));
            let layer = fmt::layer()
                .json()
                .with_writer(writer)
                .with_filter(filter(mode));
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(terminal)
        .with(file)
        .try_init();
    guard
}
