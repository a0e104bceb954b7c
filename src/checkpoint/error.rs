use std::path::PathBuf;

/// Everything that can be wrong with a folder a user opens. Each variant names the file
/// and says what was expected, because the person reading it is usually mid-lesson and
/// needs to know which file to replace.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a usable safetensors file: {what}", file.display())]
    BadSafetensors { file: PathBuf, what: String },
    #[error("{}: not a usable GGUF file: {what}", file.display())]
    BadGguf { file: PathBuf, what: String },
    #[error("{}: {what}", file.display())]
    BadIndex { file: PathBuf, what: String },
    #[error("{}: {what}", file.display())]
    BadConfig { file: PathBuf, what: String },
    #[error("{}: {what}", folder.display())]
    BadFolder { folder: PathBuf, what: String },
    /// A `.pth` opened as a model: the reader's own message names the file.
    #[error("{0}")]
    Pickle(#[from] super::pickle::PickleError),
    #[error("no tensor named `{0}` in this checkpoint")]
    NoSuchTensor(String),
}
