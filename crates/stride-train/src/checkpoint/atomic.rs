//! Durable writes: a file is complete on disk before anything points at it.

use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` and fsyncs the file.
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Fsyncs a file written by someone else (candle's safetensors writer).
pub(crate) fn sync_file(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// Fsyncs a directory, making the renames and creations inside it durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces the pointer file `dir/name` with `target` atomically: temp file, fsync, rename, fsync dir.
pub(crate) fn write_pointer(dir: &Path, name: &str, target: &str) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    write_synced(&tmp, format!("{target}\n").as_bytes())?;
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}
