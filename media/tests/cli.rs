//! The `media` binary as a user meets it: a bad input is one line on stderr naming the file
//! and the reason, a non-zero exit code, and nothing left in the library.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn a_text_file_named_mp4_is_one_line_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("notes.mp4");
    std::fs::write(&input, "this is not a video\n".repeat(40)).unwrap();
    let lib = dir.path().join("lib");
    for command in ["package", "ladder"] {
        let out = Command::new(env!("CARGO_BIN_EXE_media"))
            .args([command, "--quiet", "--name", "notes", "--out"])
            .arg(&lib)
            .arg(&input)
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.trim(),
            format!(
                "media: {}: not a video file (no MP4/MOV box structure)",
                input.display()
            ),
            "{command}"
        );
        let left: Vec<_> = std::fs::read_dir(&lib)
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{command}: {left:?}");
    }
}
