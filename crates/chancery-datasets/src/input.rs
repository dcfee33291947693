//! Dataset files as they are published: plain text, gzip (`.gz`) or a zip archive holding one
//! file (GDELT's `.CSV.zip`), told apart by their first bytes rather than their names, and read
//! as a stream, so that a file of any size, or standard input, is read in constant memory.

use std::io::{self, BufRead, BufReader, Read};

use flate2::read::{DeflateDecoder, MultiGzDecoder};

use crate::DatasetError;

/// The signature of a zip archive's local file header.
const ZIP_LOCAL_HEADER: [u8; 4] = *b"PK\x03\x04";
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Bytes read from the source at a time.
const BUFFER: usize = 1 << 20;

/// The text of a dataset file, decompressed if it needs to be. `name` says where it came from in
/// errors.
pub fn decompressed(
    source: impl Read + Send + 'static,
    name: &str,
) -> Result<Box<dyn BufRead + Send>, DatasetError> {
    let mut source = BufReader::with_capacity(BUFFER, source);
    let head = source.fill_buf().map_err(|e| DatasetError::io(name, e))?;
    if head.starts_with(&GZIP_MAGIC) {
        return Ok(Box::new(BufReader::with_capacity(
            BUFFER,
            MultiGzDecoder::new(source),
        )));
    }
    if head.starts_with(&ZIP_LOCAL_HEADER) {
        return zip_first_entry(source, name);
    }
    Ok(Box::new(source))
}

/// The first file of a zip archive, read from its local header on (the archive is not seeked:
/// it may be standard input). Stored and deflated entries are read; the entry's CRC-32 is
/// checked at its end when the header gives it.
fn zip_first_entry(
    mut source: BufReader<impl Read + Send + 'static>,
    name: &str,
) -> Result<Box<dyn BufRead + Send>, DatasetError> {
    let bad = |why: &str| DatasetError::Archive {
        name: name.to_owned(),
        why: why.to_owned(),
    };
    let mut header = [0u8; 30];
    source
        .read_exact(&mut header)
        .map_err(|_| bad("its first entry's header is cut short"))?;
    let u16_at = |at: usize| u16::from_le_bytes([header[at], header[at + 1]]);
    let u32_at = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let flags = u16_at(6);
    let method = u16_at(8);
    let crc = u32_at(14);
    let compressed = u32_at(18);
    let skip = u64::from(u16_at(26)) + u64::from(u16_at(28));
    if flags & 1 != 0 {
        return Err(bad("its first entry is encrypted"));
    }
    io::copy(&mut (&mut source).take(skip), &mut io::sink())
        .map_err(|e| DatasetError::io(name, e))?;
    // With bit 3 set the sizes and CRC follow the data: a deflated entry still ends where its
    // stream ends; a stored one cannot be delimited.
    let sized = flags & 8 == 0;
    let entry: Box<dyn Read + Send> = match method {
        0 if sized => Box::new(source.take(u64::from(compressed))),
        0 => return Err(bad("its first entry is stored without its size")),
        8 => Box::new(DeflateDecoder::new(source)),
        other => {
            return Err(bad(&format!(
                "its first entry uses compression method {other}; only stored and deflated entries are read"
            )));
        }
    };
    let checked = Crc32Checked {
        inner: entry,
        crc: sized.then_some(crc),
        hasher: crc32fast::Hasher::new(),
        name: name.to_owned(),
    };
    Ok(Box::new(BufReader::with_capacity(BUFFER, checked)))
}

/// A reader that checks the CRC-32 of what it read when it reaches the end.
struct Crc32Checked<R> {
    inner: R,
    crc: Option<u32>,
    hasher: crc32fast::Hasher,
    name: String,
}

impl<R: Read> Read for Crc32Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        if n == 0 && !buf.is_empty() {
            if let Some(expected) = self.crc.take() {
                let actual = std::mem::take(&mut self.hasher).finalize();
                if actual != expected {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: the archive's entry fails its CRC-32 check (damaged or cut short)",
                            self.name
                        ),
                    ));
                }
            }
        }
        Ok(n)
    }
}
