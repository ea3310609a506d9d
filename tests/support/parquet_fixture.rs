//! Writes parquet files laid out like the Hugging Face `ylecun/mnist` shards.
//!
//! The hub files are written by pyarrow with its defaults: SNAPPY compression
//! and the schema
//!
//! ```text
//! message schema {
//!   optional group image {
//!     optional binary bytes;
//!     optional binary path (STRING);
//!   }
//!   optional int64 label;
//! }
//! ```
//!
//! where `image.bytes` holds a PNG (8-bit grayscale, 28x28) and `image.path`
//! is null. The `parquet` crate is used without its `arrow` feature, so the
//! columns are written with the low-level typed column writers and explicit
//! definition levels.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

/// Side length of an MNIST image.
const SIDE: u32 = 28;

/// The parquet schema of the hub's MNIST files, as pyarrow writes it.
const MNIST_SCHEMA: &str = "
message schema {
  optional group image {
    optional binary bytes;
    optional binary path (STRING);
  }
  optional int64 label;
}
";

/// The `huggingface` key-value metadata the `datasets` library stores in the
/// files it writes (feature types: `Image` and a ten-class `ClassLabel`).
const HF_FEATURES: &str = r#"{"info": {"features": {"image": {"_type": "Image"}, "label": {"names": ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"], "_type": "ClassLabel"}}}}"#;

/// Encodes `pixels` (row-major, one byte per pixel) as an 8-bit grayscale PNG
/// of `w` x `h` pixels.
pub fn png_gray(pixels: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    ensure!(
        pixels.len() as u64 == u64::from(w) * u64::from(h),
        "png_gray: {} pixels given for a {w}x{h} image",
        pixels.len()
    );
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().context("writing PNG header")?;
        writer.write_image_data(pixels).context("writing PNG image data")?;
        writer.finish().context("finishing PNG")?;
    }
    Ok(out)
}

/// Writes `images` (28x28 grayscale pixels and a label each) to `path` as one
/// row group of a parquet file shaped like the hub's MNIST shards: SNAPPY
/// compression, `image: struct<bytes: binary, path: string>` (PNG bytes, null
/// path) and `label: int64`.
pub fn write_mnist_like_parquet(path: &Path, images: &[(Vec<u8>, i64)]) -> Result<()> {
    let encoded = images
        .iter()
        .enumerate()
        .map(|(i, (pixels, label))| {
            ensure!(
                pixels.len() == (SIDE * SIDE) as usize,
                "image {i} has {} pixels, expected {}",
                pixels.len(),
                SIDE * SIDE
            );
            Ok((png_gray(pixels, SIDE, SIDE)?, *label))
        })
        .collect::<Result<Vec<_>>>()?;
    write_raw_image_parquet(path, &encoded)
}

/// Like [`write_mnist_like_parquet`], but stores each row's `image.bytes`
/// exactly as given (an encoded image of any size, or garbage), so readers'
/// error paths can be exercised.
pub fn write_raw_image_parquet(path: &Path, rows: &[(Vec<u8>, i64)]) -> Result<()> {
    let images: Vec<ByteArray> = rows.iter().map(|(bytes, _)| ByteArray::from(bytes.clone())).collect();
    let labels: Vec<i64> = rows.iter().map(|(_, label)| *label).collect();
    let n = rows.len();

    let schema = Arc::new(parse_message_type(MNIST_SCHEMA).context("parsing MNIST schema")?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_key_value_metadata(Some(vec![KeyValue::new(
                "huggingface".to_string(),
                HF_FEATURES.to_string(),
            )]))
            .build(),
    );
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut writer = SerializedFileWriter::new(file, schema, props)?;

    let mut row_group = writer.next_row_group()?;
    let mut column = 0;
    while let Some(mut col) = row_group.next_column()? {
        match column {
            // image.bytes: image present and bytes present -> max level 2.
            0 => {
                let defs = vec![2i16; n];
                col.typed::<ByteArrayType>().write_batch(&images, Some(&defs), None)?;
            }
            // image.path: image present, path null -> level 1, no values.
            1 => {
                let defs = vec![1i16; n];
                col.typed::<ByteArrayType>().write_batch(&[], Some(&defs), None)?;
            }
            // label: present -> level 1.
            2 => {
                let defs = vec![1i16; n];
                col.typed::<Int64Type>().write_batch(&labels, Some(&defs), None)?;
            }
            other => anyhow::bail!("unexpected leaf column {other} in MNIST schema"),
        }
        col.close()?;
        column += 1;
    }
    ensure!(column == 3, "MNIST schema has {column} leaf columns, expected 3");
    row_group.close()?;
    writer.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::{Field, RowAccessor};

    fn decode_png(bytes: &[u8]) -> Result<(png::OutputInfo, Vec<u8>)> {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info()?;
        let mut buf = vec![0; reader.output_buffer_size().context("PNG too large")?];
        let info = reader.next_frame(&mut buf)?;
        buf.truncate(info.buffer_size());
        Ok((info, buf))
    }

    #[test]
    fn support_parquet_fixture_round_trips() -> Result<()> {
        let images: Vec<(Vec<u8>, i64)> = (0..5u8)
            .map(|k| {
                let pixels = (0..28 * 28).map(|p: u32| (p as u8).wrapping_mul(k + 1)).collect();
                (pixels, i64::from(k) * 2 + 1)
            })
            .collect();
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("train-00000-of-00001.parquet");
        write_mnist_like_parquet(&path, &images)?;

        let reader = SerializedFileReader::new(File::open(&path)?)?;
        let meta = reader.metadata();
        assert_eq!(meta.file_metadata().num_rows(), images.len() as i64);
        assert_eq!(meta.num_row_groups(), 1);
        let kv = meta.file_metadata().key_value_metadata().unwrap();
        assert!(kv.iter().any(|kv| kv.key == "huggingface"));

        let schema = meta.file_metadata().schema_descr();
        let leaves: Vec<String> = schema.columns().iter().map(|c| c.path().string()).collect();
        assert_eq!(leaves, ["image.bytes", "image.path", "label"]);
        assert_eq!(
            schema.column(1).logical_type_ref(),
            Some(&parquet::basic::LogicalType::String)
        );
        assert_eq!(schema.column(0).logical_type_ref(), None);
        assert_eq!(schema.column(0).physical_type(), parquet::basic::Type::BYTE_ARRAY);
        assert_eq!(schema.column(2).physical_type(), parquet::basic::Type::INT64);
        for col in meta.row_group(0).columns() {
            assert_eq!(col.compression(), Compression::SNAPPY, "{:?}", col.column_path());
        }

        let mut count = 0;
        for (row, (pixels, label)) in reader.get_row_iter(None)?.zip(&images) {
            let row = row?;
            let image = row.get_group(0)?;
            let (name, field) = image.get_column_iter().nth(1).unwrap();
            assert_eq!(name, "path");
            assert_eq!(field, &Field::Null);
            let (info, decoded) = decode_png(image.get_bytes(0)?.data())?;
            assert_eq!((info.width, info.height), (28, 28));
            assert_eq!(info.color_type, png::ColorType::Grayscale);
            assert_eq!(info.bit_depth, png::BitDepth::Eight);
            assert_eq!(&decoded, pixels);
            assert_eq!(row.get_long(1)?, *label);
            count += 1;
        }
        assert_eq!(count, images.len());

        // The consuming iterator yields the same rows.
        let labels: Vec<i64> = SerializedFileReader::new(File::open(&path)?)?
            .into_iter()
            .map(|row| Ok(row?.get_long(1)?))
            .collect::<Result<_>>()?;
        assert_eq!(labels, [1, 3, 5, 7, 9]);
        Ok(())
    }

    #[test]
    fn support_parquet_fixture_raw_bytes_are_stored_verbatim() -> Result<()> {
        let rows = vec![
            (png_gray(&[9; 16], 4, 4)?, 1),
            (b"\x89PNG not really".to_vec(), 4),
            (Vec::new(), 0),
        ];
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("raw.parquet");
        write_raw_image_parquet(&path, &rows)?;
        let got: Vec<(Vec<u8>, i64)> = SerializedFileReader::new(File::open(&path)?)?
            .into_iter()
            .map(|row| {
                let row = row?;
                Ok((row.get_group(0)?.get_bytes(0)?.data().to_vec(), row.get_long(1)?))
            })
            .collect::<Result<_>>()?;
        assert_eq!(got, rows);
        assert!(write_mnist_like_parquet(&path, &[(vec![0; 16], 0)]).is_err());
        Ok(())
    }
}
