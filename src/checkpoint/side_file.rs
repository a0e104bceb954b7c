//! The small files beside the weights (config.json, the shard index, tokenizer files, adapter
//! configs, chat templates), read with the limits a hostile folder needs: only regular files
//! (a FIFO would block forever, `/dev/zero` would never end) and at most [`MAX_SIDE_FILE`]
//! bytes, checked before reading.

use std::io::Read;
use std::path::Path;

/// Larger than any real tokenizer.json (Llama 3's is 9 MB) by a wide margin.
pub const MAX_SIDE_FILE: u64 = 64 << 20;

/// Why a side file could not be read, worded for the user after the file's name.
#[derive(Debug, thiserror::Error)]
pub enum SideFileError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("is not a regular file (a pipe, device or folder cannot be a config file)")]
    NotAFile,
    #[error("is {0} bytes; a file of this kind is at most {MAX_SIDE_FILE} bytes")]
    TooLarge(u64),
    #[error("is not UTF-8 text")]
    NotText,
}

/// Reads a side file as text within the limits above (symlinks are followed to what they
/// point at, which must itself be a regular file).
pub fn read_text(path: &Path) -> Result<String, SideFileError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(SideFileError::NotAFile);
    }
    if meta.len() > MAX_SIDE_FILE {
        return Err(SideFileError::TooLarge(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow between the check and the read: never read past the cap.
    std::fs::File::open(path)?.take(MAX_SIDE_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SIDE_FILE {
        return Err(SideFileError::TooLarge(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|_| SideFileError::NotText)
}
