//! What tests do to data directories: copy one (what a crash leaves, or a store to damage), and
//! find the frames of a segment file to damage or cut.

use std::ops::Range;
use std::path::Path;

/// Copies the directory `from`, with everything below it, to `to` (created if missing).
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The header of a frame in a segment file of the sled store: the record's length (u32,
/// little-endian), its CRC (u32) and a flags byte.
const FRAME_HEADER: usize = 9;

/// Where each whole frame of a segment file lies, in order; a frame cut short at the end (a torn
/// write) is left out.
pub fn segment_frames(segment: &[u8]) -> Vec<Range<usize>> {
    let mut frames = Vec::new();
    let mut at = 0;
    while let Some(header) = segment.get(at..at + FRAME_HEADER) {
        let length = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let end = at + FRAME_HEADER + length;
        if end > segment.len() {
            break;
        }
        frames.push(at..end);
        at = end;
    }
    frames
}
