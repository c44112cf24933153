//! What the ABR tests share: the copy of the shared trace data in the repository.

use std::path::PathBuf;

/// `tests/data/abr`, after checking it is there (a clear failure rather than a confusing
/// one when the data is missing).
pub fn abr_data() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/abr"));
    assert!(
        dir.join("README.md").is_file(),
        "ABR test data missing at {}: these tests need it",
        dir.display()
    );
    dir
}
