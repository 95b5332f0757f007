//! Log files: `tracing` into the OS data directory (`~/.local/share/holdfast/logs`
//! on Linux), a new file each day, the newest [`LOG_FILES_KEPT`] kept.
//!
//! What is logged never includes a room code, session token or TURN
//! credential: those types redact themselves in `Debug`, and nothing here
//! formats them. The desktop app's end-to-end test greps the files for them.

use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::settings::{project_dirs, LogLevel};

pub const LOG_FILES_KEPT: usize = 7;
pub const LOG_FILE_PREFIX: &str = "holdfast";
pub const LOG_FILE_SUFFIX: &str = "log";

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("no data directory for this user")]
    NoDataDir,
    #[error("could not open the log folder {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("a logger is already installed")]
    AlreadySet,
}

/// The OS data directory's `logs` folder (follows `XDG_DATA_HOME` on Linux).
pub fn log_dir() -> Result<PathBuf, LogError> {
    Ok(project_dirs().ok_or(LogError::NoDataDir)?.data_dir().join("logs"))
}

/// The daily-rotated file writer, keeping the newest [`LOG_FILES_KEPT`].
pub fn file_appender(dir: &Path) -> Result<RollingFileAppender, LogError> {
    std::fs::create_dir_all(dir).map_err(|e| LogError::Open {
        path: dir.to_owned(),
        reason: e.to_string(),
    })?;
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(LOG_FILE_PREFIX)
        .filename_suffix(LOG_FILE_SUFFIX)
        .max_log_files(LOG_FILES_KEPT)
        .build(dir)
        .map_err(|e| LogError::Open {
            path: dir.to_owned(),
            reason: e.to_string(),
        })
}

/// The filter: `HOLDFAST_LOG` when set (as `RUST_LOG` syntax), else the
/// settings' level for Holdfast's crates and `warn` for the rest.
pub fn filter(level: LogLevel) -> EnvFilter {
    match std::env::var("HOLDFAST_LOG") {
        Ok(s) if !s.is_empty() => EnvFilter::new(s),
        _ => EnvFilter::new(format!(
            "warn,holdfast={l},holdfast_app={l},holdfast_desktop={l},holdfast_peer={l},holdfast_signal={l},holdfast_media={l},holdfast_input={l}",
            l = level.as_str()
        )),
    }
}

/// Installs the global logger: the files in `dir`, and standard error.
/// Keep the guard for the life of the process (it flushes on drop).
pub fn init(dir: &Path, level: LogLevel) -> Result<WorkerGuard, LogError> {
    let (writer, guard) = tracing_appender::non_blocking(file_appender(dir)?);
    tracing_subscriber::registry()
        .with(filter(level))
        .with(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(writer))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .try_init()
        .map_err(|_| LogError::AlreadySet)?;
    Ok(guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_land_in_a_dated_file_in_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let (writer, guard) = tracing_appender::non_blocking(file_appender(&logs).unwrap());
        let subscriber = tracing_subscriber::registry()
            .with(EnvFilter::new("info"))
            .with(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(writer));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(room = "123 456 789", "sharing started");
            tracing::debug!("filtered out");
        });
        drop(guard);
        let files: Vec<_> = std::fs::read_dir(&logs).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("holdfast.") && name.ends_with(".log"), "{name}");
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("sharing started"), "{text}");
        assert!(!text.contains("filtered out"));
        assert!(!text.contains('\u{1b}'), "no colour codes in files");
    }
}
