//! The IDX format of the MNIST files: a big-endian header, then raw bytes.
//!
//! Files may be gzip-compressed; that is detected from the gzip magic bytes
//! (`1f 8b`), never from the file name.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::error::{DataError, Result};

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Images read from an IDX file: `count` images of `rows x cols` bytes, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count * rows * cols` pixel bytes.
    pub pixels: Vec<u8>,
}

/// Reads a whole file, transparently gunzipping it when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|source| io_error(path, source))?;
    gunzip_if_gz(path, raw)
}

/// Gunzips `raw` when it starts with the gzip magic; `origin` names it in errors.
pub fn gunzip_if_gz(origin: &Path, raw: Vec<u8>) -> Result<Vec<u8>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len().saturating_mul(4));
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|source| io_error(origin, source))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn io_error(path: &Path, source: std::io::Error) -> DataError {
    if source.kind() == std::io::ErrorKind::NotFound {
        DataError::MissingFile {
            path: path.to_path_buf(),
            what: "no such file".into(),
        }
    } else {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn header(path: &Path, bytes: &[u8], words: usize, magic: u32, kind: &'static str) -> Result<Vec<usize>> {
    let truncated = || DataError::Truncated {
        path: path.to_path_buf(),
        expected: 4 * words,
        found: bytes.len(),
    };
    if bytes.len() < 4 {
        return Err(truncated());
    }
    // The magic comes first so that a file of the wrong kind is named as such.
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            expected: magic,
            found,
            kind,
        });
    }
    if bytes.len() < 4 * words {
        return Err(truncated());
    }
    Ok((1..words).map(|i| be_u32(bytes, 4 * i) as usize).collect())
}

fn check_len(path: &Path, bytes: &[u8], header_len: usize, dims: &[usize]) -> Result<usize> {
    let body = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::Truncated {
            path: path.to_path_buf(),
            expected: usize::MAX,
            found: bytes.len(),
        })?;
    let expected = header_len + body;
    if bytes.len() < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected,
            found: bytes.len(),
        });
    }
    Ok(expected)
}

/// Reads an IDX image file (magic `0x803`), gzip or raw.
pub fn read_images(path: &Path) -> Result<IdxImages> {
    parse_images(path, &read_maybe_gz(path)?)
}

/// Parses the bytes of an IDX image file (already gunzipped); `origin` names it in errors.
pub fn parse_images(path: &Path, bytes: &[u8]) -> Result<IdxImages> {
    let dims = header(path, bytes, 4, IMAGES_MAGIC, "images")?;
    let end = check_len(path, bytes, 16, &dims)?;
    Ok(IdxImages {
        count: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels: bytes[16..end].to_vec(),
    })
}

/// Reads an IDX label file (magic `0x801`), gzip or raw.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    parse_labels(path, &read_maybe_gz(path)?)
}

/// Parses the bytes of an IDX label file (already gunzipped); `origin` names it in errors.
pub fn parse_labels(path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    let dims = header(path, bytes, 2, LABELS_MAGIC, "labels")?;
    let end = check_len(path, bytes, 8, &dims)?;
    Ok(bytes[8..end].to_vec())
}

fn write_file(path: &Path, bytes: &[u8], gzip: bool) -> Result<()> {
    let to_err = |source| DataError::Io {
        path: PathBuf::from(path),
        source,
    };
    let file = std::fs::File::create(path).map_err(to_err)?;
    if gzip {
        // mtime 0 and no file name keep the output byte-identical between runs.
        let mut enc = flate2::GzBuilder::new()
            .mtime(0)
            .write(file, flate2::Compression::best());
        enc.write_all(bytes).map_err(to_err)?;
        enc.finish().map_err(to_err)?;
    } else {
        let mut file = file;
        file.write_all(bytes).map_err(to_err)?;
    }
    Ok(())
}

/// Writes images as an IDX file (gzip-compressed when `gzip`).
pub fn write_images(path: &Path, images: &IdxImages, gzip: bool) -> Result<()> {
    let mut bytes = Vec::with_capacity(16 + images.pixels.len());
    for word in [
        IMAGES_MAGIC,
        images.count as u32,
        images.rows as u32,
        images.cols as u32,
    ] {
        bytes.extend_from_slice(&word.to_be_bytes());
    }
    bytes.extend_from_slice(&images.pixels);
    write_file(path, &bytes, gzip)
}

/// Writes labels as an IDX file (gzip-compressed when `gzip`).
pub fn write_labels(path: &Path, labels: &[u8], gzip: bool) -> Result<()> {
    let mut bytes = Vec::with_capacity(8 + labels.len());
    bytes.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    bytes.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    bytes.extend_from_slice(labels);
    write_file(path, &bytes, gzip)
}
