//! Decoding of the hub's MNIST-like parquet files: a struct column `image`
//! (`{bytes: PNG, path}`) and an integer column `label`.

use std::io::Cursor;
use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};

use crate::dataset::{Dataset, MNIST_CLASSES, MNIST_SIDE};
use crate::error::{DataError, Result};

/// Reads a parquet file of PNG-encoded 28x28 images and labels into a [`Dataset`].
pub fn read_image_parquet(path: &Path) -> Result<Dataset> {
    let parquet_err = |message: String| DataError::Parquet {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = SerializedFileReader::new(file).map_err(|e| parquet_err(e.to_string()))?;
    let n_rows = usize::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0);
    let mut images = Vec::with_capacity(n_rows * MNIST_SIDE * MNIST_SIDE);
    let mut labels = Vec::with_capacity(n_rows);
    let rows = reader.get_row_iter(None).map_err(|e| parquet_err(e.to_string()))?;
    for (index, row) in rows.enumerate() {
        let row = row.map_err(|e| parquet_err(format!("row {index}: {e}")))?;
        let (png, label) = image_and_label(&row).map_err(|m| parquet_err(format!("row {index}: {m}")))?;
        if !(0..MNIST_CLASSES as i64).contains(&label) {
            return Err(DataError::LabelOutOfRange {
                path: path.to_path_buf(),
                index,
                label,
                classes: MNIST_CLASSES,
            });
        }
        decode_gray_png(png, &mut images).map_err(|message| DataError::Png {
            path: path.to_path_buf(),
            row: index,
            message,
        })?;
        labels.push(label as u8);
    }
    Dataset::new(images, labels, MNIST_SIDE, MNIST_SIDE, MNIST_CLASSES, path)
}

fn image_and_label(row: &Row) -> std::result::Result<(&[u8], i64), String> {
    let mut png = None;
    let mut label = None;
    for (name, field) in row.get_column_iter() {
        match (name.as_str(), field) {
            ("image", Field::Group(image)) => {
                for (inner, value) in image.get_column_iter() {
                    if let ("bytes", Field::Bytes(bytes)) = (inner.as_str(), value) {
                        png = Some(bytes.data());
                    }
                }
            }
            ("label", Field::Long(v)) => label = Some(*v),
            ("label", Field::Int(v)) => label = Some(i64::from(*v)),
            ("label", Field::Short(v)) => label = Some(i64::from(*v)),
            ("label", Field::Byte(v)) => label = Some(i64::from(*v)),
            _ => {}
        }
    }
    match (png, label) {
        (Some(p), Some(l)) => Ok((p, l)),
        (None, _) => Err("no `image.bytes` value (expected a struct column image{bytes, path})".into()),
        (_, None) => Err("no integer `label` value".into()),
    }
}

/// Decodes a 28x28 PNG to one byte per pixel (colour images are averaged to gray)
/// and appends it to `out`.
fn decode_gray_png(png_bytes: &[u8], out: &mut Vec<u8>) -> std::result::Result<(), String> {
    let mut decoder = png::Decoder::new(Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| "image too large".to_string())?;
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    let (w, h) = (frame.width as usize, frame.height as usize);
    if w != MNIST_SIDE || h != MNIST_SIDE {
        return Err(format!("image is {w}x{h}, expected {MNIST_SIDE}x{MNIST_SIDE}"));
    }
    let channels = frame.color_type.samples();
    let data = &buf[..frame.buffer_size()];
    match channels {
        1 | 2 => out.extend(data.chunks_exact(channels).map(|px| px[0])),
        _ => out.extend(
            data.chunks_exact(channels)
                .map(|px| ((u16::from(px[0]) + u16::from(px[1]) + u16::from(px[2])) / 3) as u8),
        ),
    }
    Ok(())
}
