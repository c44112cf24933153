//! Reading traces (`time_s<TAB>Mbps` lines) and video chunk-size tables
//! (`chunk,300,750,...` header, then `index,bytes,bytes,...` rows).

use std::path::{Path, PathBuf};

use super::{Trace, Video};

/// A trace or video file could not be read or is malformed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file or folder could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{path}:{line}: {msg}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// The file as a whole is unusable.
    #[error("{path}: {msg}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Parses a trace; `path` names it in errors and gives its name (the file name).
pub fn parse_trace(path: &Path, text: &str) -> Result<Trace, LoadError> {
    let line_err = |line: usize, msg: String| LoadError::Line {
        path: path.to_owned(),
        line,
        msg,
    };
    let (mut times_s, mut mbps) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let (Some(t), Some(bw), None) = (fields.next(), fields.next(), fields.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(line_err(
                i + 1,
                format!("expected `time<TAB>Mbps`, got {line:?}"),
            ));
        };
        let num = |s: &str, what: &str| match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => Err(line_err(i + 1, format!("bad {what} {s:?}"))),
        };
        let (t, bw) = (num(t, "time")?, num(bw, "throughput")?);
        if times_s.last().is_some_and(|&prev| t <= prev) {
            return Err(line_err(i + 1, format!("time {t} does not increase")));
        }
        times_s.push(t);
        mbps.push(bw);
    }
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let trace = Trace {
        name,
        times_s,
        mbps,
    };
    match trace.problem() {
        None => Ok(trace),
        Some(msg) => Err(LoadError::File {
            path: path.to_owned(),
            msg: msg.to_owned(),
        }),
    }
}

/// Reads one trace file.
pub fn read_trace(path: &Path) -> Result<Trace, LoadError> {
    parse_trace(path, &read(path)?)
}

/// Reads every file in `dir` as a trace, in byte order of file names.
pub fn read_trace_dir(dir: &Path) -> Result<Vec<Trace>, LoadError> {
    let io = |source| LoadError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_type().map_err(io)?.is_file() {
            paths.push(entry.path());
        }
    }
    // OsStr order on Unix is byte order, as Python's `sorted` on names.
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if paths.is_empty() {
        return Err(LoadError::File {
            path: dir.to_owned(),
            msg: "no trace files".to_owned(),
        });
    }
    paths.iter().map(|p| read_trace(p)).collect()
}

/// Parses a video size table: header `chunk,<kbps>,<kbps>,...` ascending, then one row
/// per chunk `index,<bytes>,...` with indices 0, 1, 2, ...
pub fn parse_video(path: &Path, text: &str) -> Result<Video, LoadError> {
    let line_err = |line: usize, msg: String| LoadError::Line {
        path: path.to_owned(),
        line,
        msg,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((hi, header)) = lines.next() else {
        return Err(LoadError::File {
            path: path.to_owned(),
            msg: "empty file".to_owned(),
        });
    };
    let mut cols = header.split(',').map(str::trim);
    if cols.next() != Some("chunk") {
        return Err(line_err(
            hi + 1,
            "header must start with `chunk`".to_owned(),
        ));
    }
    let mut bitrates_bps = Vec::new();
    for c in cols {
        match c.parse::<u64>() {
            Ok(kbps) if kbps > 0 && bitrates_bps.last().is_none_or(|&p| kbps * 1000 > p) => {
                bitrates_bps.push(kbps * 1000);
            }
            _ => {
                return Err(line_err(
                    hi + 1,
                    format!("bitrate column {c:?} is not a kbit/s number above the previous"),
                ));
            }
        }
    }
    if bitrates_bps.is_empty() {
        return Err(line_err(hi + 1, "no bitrate columns".to_owned()));
    }
    let mut sizes = Vec::new();
    for (i, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != bitrates_bps.len() + 1 {
            return Err(line_err(
                i + 1,
                format!(
                    "expected {} fields, got {}",
                    bitrates_bps.len() + 1,
                    fields.len()
                ),
            ));
        }
        if fields[0].parse::<usize>().ok() != Some(sizes.len()) {
            return Err(line_err(
                i + 1,
                format!("expected chunk index {}, got {:?}", sizes.len(), fields[0]),
            ));
        }
        let row = fields[1..]
            .iter()
            .map(|f| match f.parse::<u64>() {
                Ok(v) if v > 0 => Ok(v),
                _ => Err(line_err(i + 1, format!("bad size {f:?}"))),
            })
            .collect::<Result<Vec<u64>, _>>()?;
        sizes.push(row);
    }
    Ok(Video {
        bitrates_bps,
        sizes,
    })
}

/// Reads a video size table.
pub fn read_video(path: &Path) -> Result<Video, LoadError> {
    parse_video(path, &read(path)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn trace_ok_and_errors() {
        let p = Path::new("dir/t1");
        let t = parse_trace(p, "0.0\t1.5\n0.5\t2\n\n1.25\t0\n").unwrap();
        assert_eq!(t.name, "t1");
        assert_eq!(t.times_s, [0.0, 0.5, 1.25]);
        assert_eq!(t.mbps, [1.5, 2.0, 0.0]);
        for (text, want) in [
            ("0\t1\n1\tx\n", "dir/t1:2: bad throughput"),
            ("0\t1\n0\t1\n", "dir/t1:2: time 0 does not increase"),
            ("0\t1\n1\t1\t1\n", "dir/t1:2: expected"),
            ("0\t1\n1\t-1\n", "dir/t1:2: bad throughput"),
            ("0\t1\n", "dir/t1: a trace needs"),
            ("0\t1\n1\t0\n", "dir/t1: throughput is zero"),
        ] {
            let err = parse_trace(p, text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn video_ok_and_errors() {
        let p = Path::new("v.csv");
        let v = parse_video(p, "chunk,300,750\n0,10,20\n1,11,21\n").unwrap();
        assert_eq!(v.bitrates_bps, [300_000, 750_000]);
        assert_eq!(v.sizes, [vec![10, 20], vec![11, 21]]);
        for (text, want) in [
            ("", "v.csv: empty"),
            ("idx,300\n", "v.csv:1: header"),
            ("chunk,750,300\n", "v.csv:1: bitrate column \"300\""),
            ("chunk,300,750\n0,1\n", "v.csv:2: expected 3 fields"),
            ("chunk,300,750\n1,1,2\n", "v.csv:2: expected chunk index 0"),
            ("chunk,300,750\n0,1,z\n", "v.csv:2: bad size \"z\""),
        ] {
            let err = parse_video(p, text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}
