//! Batch payers: interchanges written to `outbound_dir` (atomically: temp file, fsync, rename)
//! and answers (278 responses, 999s, TA1s) picked up from `inbound_dir`, each handled file moved
//! to `processed/` or `failed/` (with a reason file beside it).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::transport::{BoxFuture, Delivery, Operation, Outgoing, SendError, Transport};

/// Writes interchanges for a batch payer; answers come back by file.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchFolder;

/// Extension of the outbound files.
pub const OUTBOUND_EXT: &str = "x12";

impl Transport for BatchFolder {
    fn send<'a>(&'a self, msg: Outgoing<'a>) -> BoxFuture<'a, Result<Delivery, SendError>> {
        Box::pin(async move {
            if msg.operation == Operation::Inquire {
                return Err(SendError::Refused {
                    reason: "batch payers answer by file; there is no inquiry".into(),
                    body: None,
                });
            }
            let cfg = msg.payer;
            let dir = cfg.outbound_dir.clone().ok_or_else(|| SendError::Config {
                reason: format!("payer {}: x12-batch needs outbound_dir", cfg.id),
            })?;
            let name = file_name(msg.payload_id)?;
            let body = msg.body.to_vec();
            let path = dir.join(&name);
            let bytes = body.len();
            let written = tokio::task::spawn_blocking(move || write_atomic(&dir, &name, &body))
                .await
                .map_err(|e| SendError::NotDelivered {
                    reason: format!("batch write task failed: {e}"),
                    retry_after: None,
                })?;
            written.map_err(|e| {
                let reason = format!("writing {}: {e}", path.display());
                match e.kind() {
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
                        SendError::Config { reason }
                    }
                    _ => SendError::NotDelivered {
                        reason,
                        retry_after: None,
                    },
                }
            })?;
            tracing::info!(payer = %cfg.id, payload_id = msg.payload_id, bytes, "batch interchange written");
            Ok(Delivery::Accepted)
        })
    }
}

/// The outbound file name for a payload id (letters, digits, `-`, `_` and `.` only).
pub fn file_name(payload_id: &str) -> Result<String, SendError> {
    if payload_id.is_empty()
        || payload_id.starts_with('.')
        || !payload_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(SendError::Refused {
            reason: format!(
                "payload id {payload_id:?} cannot name a file (letters, digits, '-', '_', '.')"
            ),
            body: None,
        });
    }
    Ok(format!("{payload_id}.{OUTBOUND_EXT}"))
}

/// Writes `dir/name` so a reader never sees it half written: a hidden temp file in the same
/// directory, fsync, rename, fsync of the directory. A retransmit replaces the file.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let tmp = dir.join(format!(".{name}.{:08x}.tmp", fastrand::u32(..)));
    let target = dir.join(name);
    let result = (|| {
        let mut f = fs::File::create_new(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &target)?;
        // The rename is durable once the directory is synced (best effort where a directory
        // cannot be opened as a file).
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(target.clone())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[derive(Debug, thiserror::Error)]
#[error("batch folder {path}: {source}")]
pub struct BatchError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> BatchError + '_ {
    move |source| BatchError {
        path: path.to_owned(),
        source,
    }
}

/// One complete answer file waiting in the inbound folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundFile {
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
}

impl InboundFile {
    pub fn read(&self) -> Result<Vec<u8>, BatchError> {
        fs::read(&self.path).map_err(err(&self.path))
    }
}

/// Whether a name is someone's file still being written (hidden, temp, partial, backup).
fn in_progress(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.starts_with('~')
        || name.ends_with('~')
        || [
            ".tmp",
            ".part",
            ".partial",
            ".filepart",
            ".crdownload",
            ".swp",
        ]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// The complete files in `inbound_dir`, by name (temp and hidden files, folders such as
/// `processed/` and `failed/` are left alone).
pub fn pick_up(inbound_dir: &Path) -> Result<Vec<InboundFile>, BatchError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(inbound_dir).map_err(err(inbound_dir))? {
        let entry = entry.map_err(err(inbound_dir))?;
        let path = entry.path();
        let meta = entry.metadata().map_err(err(&path))?;
        if !meta.is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            tracing::warn!(path = %path.display(), "inbound file name is not UTF-8; left in place");
            continue;
        };
        if in_progress(&name) {
            continue;
        }
        out.push(InboundFile {
            path,
            name,
            size: meta.len(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn move_into(inbound_dir: &Path, sub: &str, file: &InboundFile) -> Result<PathBuf, BatchError> {
    let dir = inbound_dir.join(sub);
    fs::create_dir_all(&dir).map_err(err(&dir))?;
    let mut target = dir.join(&file.name);
    if target.exists() {
        // The same name again (a payer reusing names): keep both.
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        target = dir.join(format!("{}.{stamp}", file.name));
    }
    fs::rename(&file.path, &target).map_err(err(&file.path))?;
    Ok(target)
}

/// Moves a handled file to `inbound_dir/processed/`; returns its new path.
pub fn mark_processed(inbound_dir: &Path, file: &InboundFile) -> Result<PathBuf, BatchError> {
    move_into(inbound_dir, "processed", file)
}

/// Moves a file that could not be handled to `inbound_dir/failed/` with `<name>.reason.txt`
/// beside it (the reason must not carry patient data).
pub fn mark_failed(
    inbound_dir: &Path,
    file: &InboundFile,
    reason: &str,
) -> Result<PathBuf, BatchError> {
    let target = move_into(inbound_dir, "failed", file)?;
    let mut reason_path = target.clone().into_os_string();
    reason_path.push(".reason.txt");
    let reason_path = PathBuf::from(reason_path);
    fs::write(&reason_path, format!("{reason}\n")).map_err(err(&reason_path))?;
    Ok(target)
}
