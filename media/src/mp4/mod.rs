//! MP4 / MOV / fragmented MP4 demuxing for repackaging without re-encoding.
//!
//! Only the movie box (`moov`, at most [`MOOV_LIMIT`] bytes) and the fragment headers
//! (`moof`, at most [`MOOF_LIMIT`] bytes each) are read into memory; they become one index
//! of sample references per track (offset, size, timing, sync flag: [`SampleRef`], at most
//! [`MAX_SAMPLES`] per track). The sample bytes stay in the file: [`SampleReader`] reads them
//! by offset through a read-ahead buffer of [`READ_AHEAD`] bytes. A 2 GB file therefore
//! costs its index (about 32 bytes per sample) plus one buffer, never its size.

pub(crate) mod boxes;
mod tables;

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use mp4_atom::Decode;

pub use boxes::fourcc;
use boxes::{BoxHeader, HeaderError, read_header};

use crate::{Codec, InputError, MediaError, Result};

/// Largest `moov` read into memory. A two-hour movie's sample tables take a few MB; a
/// larger movie box is refused rather than allocated.
pub const MOOV_LIMIT: u64 = 64 << 20;
/// Largest `moof` (fragment header) read into memory.
pub const MOOF_LIMIT: u64 = 16 << 20;
/// Most samples indexed per track: 4 Mi samples is 38 hours at 30 fps.
pub const MAX_SAMPLES: usize = 1 << 22;
/// Read-ahead of [`SampleReader`]: samples are read through a buffer this large.
pub const READ_AHEAD: usize = 1 << 20;

/// What a track carries, from its handler (`hdlr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    Video,
    Audio,
    Other,
}

/// Where one sample is and when it plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRef {
    /// Byte offset of the sample in the file.
    pub offset: u64,
    pub size: u32,
    /// Decode time, track timescale.
    pub dts: u64,
    pub duration: u32,
    /// Composition offset (`ctts` / `trun`): presentation time = `dts + cts_offset`.
    pub cts_offset: i32,
    pub sync: bool,
}

impl SampleRef {
    /// Composition (presentation) time before any edit list, track timescale.
    pub fn cts(&self) -> i64 {
        self.dts as i64 + i64::from(self.cts_offset)
    }
}

/// One track of a movie: its description and its sample index in decode order.
#[derive(Debug, Clone)]
pub struct Track {
    pub id: u32,
    pub kind: TrackKind,
    /// Media timescale (`mdhd`), ticks per second.
    pub timescale: u32,
    /// The first sample description (`stsd`), carried into the CMAF init segment as is.
    pub entry: mp4_atom::Codec,
    /// Ticks (track timescale) to subtract from a composition time to get the presentation
    /// time the edit list (`elst`, ISO/IEC 14496-12 §8.6.6) gives it: the first edit's
    /// `media_time` less any leading empty edit.
    pub edit_shift: i64,
    /// The track header's matrix turns the picture by 90° or 270° for display.
    pub quarter_turn: bool,
    /// Display size from the track header (`tkhd`), when it has one.
    pub header_size: Option<(u32, u32)>,
    pub samples: Vec<SampleRef>,
}

impl Track {
    /// Presentation time of a sample after the edit list, track ticks.
    pub fn presentation(&self, sample: &SampleRef) -> i64 {
        sample.cts() - self.edit_shift
    }

    /// The sample entry's four-character code (`avc1`, `hvc1`, `mp4a`, …).
    pub fn entry_fourcc(&self) -> String {
        entry_fourcc(&self.entry)
    }

    /// Picture size from the sample entry.
    pub fn dimensions(&self) -> Option<(u32, u32)> {
        self.entry
            .visual()
            .map(|v| (u32::from(v.width), u32::from(v.height)))
    }

    /// Duration of the samples, seconds.
    pub fn duration_secs(&self) -> f64 {
        let ticks: u64 = self.samples.iter().map(|s| u64::from(s.duration)).sum();
        ticks as f64 / f64::from(self.timescale.max(1))
    }

    /// Picture size as displayed: [`Self::dimensions`], swapped for a quarter turn; the
    /// track header's size for a sample entry that does not say (a codec `mp4_atom` does
    /// not model, such as MPEG-4 Part 2).
    pub fn display_dimensions(&self) -> Option<(u32, u32)> {
        match self.dimensions() {
            Some((w, h)) if self.quarter_turn => Some((h, w)),
            Some(size) => Some(size),
            None => self.header_size,
        }
    }

    /// The RFC 6381 codec of a video track (from `avcC` / `hvcC`), or why it has none we
    /// can package.
    pub fn video_codec(&self) -> Result<Codec, InputError> {
        match &self.entry {
            mp4_atom::Codec::Avc1(avc1) => Ok(Codec::from_avcc(&avc1.avcc, false)),
            mp4_atom::Codec::Avc3(avc3) => Ok(Codec::from_avcc(&avc3.avcc, true)),
            mp4_atom::Codec::Hvc1(hvc1) => Ok(Codec::from_hvcc(&hvc1.hvcc, false)),
            mp4_atom::Codec::Hev1(hev1) => Ok(Codec::from_hvcc(&hev1.hvcc, true)),
            other => Err(InputError::UnsupportedVideo(codec_name(&entry_fourcc(
                other,
            )))),
        }
    }

    /// The AudioSpecificConfig of an AAC track, when this is one.
    pub fn audio_specific_config(&self) -> Option<&[u8]> {
        match &self.entry {
            mp4_atom::Codec::Mp4a(mp4a)
                if mp4a.esds.es_desc.dec_config.object_type_indication == 0x40 =>
            {
                mp4a.esds
                    .es_desc
                    .dec_config
                    .dec_specific
                    .as_ref()
                    .map(|d| d.raw.as_slice())
                    .filter(|raw| !raw.is_empty())
            }
            _ => None,
        }
    }
}

/// The tracks an init segment (`ftyp` and a `moov` without samples, a CMAF header)
/// declares, with their sample descriptions.
pub fn init_tracks(init: &[u8]) -> Result<Vec<Track>> {
    let moov = boxes::find(init, b"moov")
        .map_err(MediaError::Invalid)?
        .ok_or_else(|| MediaError::Invalid("init segment without moov".into()))?;
    tables::parse_moov(moov.body).map_err(MediaError::Invalid)
}

/// The four-character code of a sample entry.
pub fn entry_fourcc(entry: &mp4_atom::Codec) -> String {
    use mp4_atom::Codec as C;
    let code: &[u8; 4] = match entry {
        C::Avc1(_) => b"avc1",
        C::Avc3(_) => b"avc3",
        C::Hvc1(_) => b"hvc1",
        C::Hev1(_) => b"hev1",
        C::Vp08(_) => b"vp08",
        C::Vp09(_) => b"vp09",
        C::Av01(_) => b"av01",
        C::Jpeg(_) => b"jpeg",
        C::Mp4a(_) => b"mp4a",
        C::Mp3(_) => b".mp3",
        C::Opus(_) => b"Opus",
        C::Flac(_) => b"fLaC",
        C::Ac3(_) => b"ac-3",
        C::Eac3(_) => b"ec-3",
        C::Unknown(kind, _) => return kind.to_string(),
        _ => return "unknown".into(),
    };
    fourcc(code)
}

/// A codec's four-character code with its common name, for error messages.
pub fn codec_name(code: &str) -> String {
    let name = match code {
        "mp4v" => "MPEG-4 Part 2",
        "vp08" => "VP8",
        "vp09" => "VP9",
        "av01" => "AV1",
        "jpeg" | "mjpa" | "mjpb" => "Motion JPEG",
        "apch" | "apcn" | "apcs" | "apco" | "ap4h" => "ProRes",
        "s263" | "h263" => "H.263",
        ".mp3" => "MP3",
        "Opus" => "Opus",
        "fLaC" => "FLAC",
        "ac-3" => "AC-3",
        "ec-3" => "E-AC-3",
        "lpcm" | "sowt" | "twos" | "ipcm" | "in24" | "fl32" => "PCM",
        _ => return code.to_string(),
    };
    format!("{code} ({name})")
}

/// A demuxed movie: its tracks' descriptions and sample indexes.
#[derive(Debug, Clone)]
pub struct Movie {
    pub path: PathBuf,
    pub file_len: u64,
    /// Whether the samples came from movie fragments (`moof`).
    pub fragmented: bool,
    /// Whether the file is QuickTime (`ftyp` brand `qt  `).
    pub quicktime: bool,
    pub tracks: Vec<Track>,
}

fn input_error(path: &Path, reason: InputError) -> MediaError {
    MediaError::Input {
        path: path.to_path_buf(),
        reason,
    }
}

impl Movie {
    /// Reads the structure of the file at `path`: every top-level box header, the `moov`
    /// and every `moof`, never the media data.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(MediaError::io(path))?;
        let file_len = file.metadata().map_err(MediaError::io(path))?.len();
        let mut reader = BufReader::new(file);
        let bad = |reason| input_error(path, reason);
        let mut at = 0u64;
        let mut moov: Option<Vec<u8>> = None;
        let mut fragments: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut fragments_bytes = 0u64;
        let mut quicktime = false;
        let mut first = true;
        loop {
            let header = match read_header(&mut reader, at, file_len) {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(HeaderError::Io(e)) => return Err(MediaError::io(path)(e)),
                Err(HeaderError::Short | HeaderError::BadSize) if first => {
                    return Err(bad(InputError::NotMp4));
                }
                // Trailing bytes after the last box: harmless when the movie is complete.
                Err(_) => break,
            };
            if first && !plausible_first_box(&header, file_len) {
                return Err(bad(InputError::NotMp4));
            }
            first = false;
            let truncated = header.end() > file_len;
            match &header.kind {
                b"ftyp" => {
                    let body = read_body(&mut reader, &header, 64, path)?;
                    quicktime = body.get(..4) == Some(b"qt  ");
                }
                b"moov" => {
                    if truncated {
                        return Err(bad(InputError::TruncatedMoov {
                            missing: header.end() - file_len,
                        }));
                    }
                    if header.size > MOOV_LIMIT {
                        return Err(bad(InputError::TooLarge {
                            what: "moov",
                            size: header.size,
                            limit: MOOV_LIMIT,
                        }));
                    }
                    moov = Some(read_body(&mut reader, &header, MOOV_LIMIT, path)?);
                }
                b"moof" => {
                    if truncated {
                        // A recording cut off mid-fragment: keep the fragments before it.
                        tracing::warn!(file = %path.display(), at = header.start, "last movie fragment is truncated; ignored");
                        break;
                    }
                    if header.size > MOOF_LIMIT {
                        return Err(bad(InputError::TooLarge {
                            what: "moof",
                            size: header.size,
                            limit: MOOF_LIMIT,
                        }));
                    }
                    fragments_bytes += header.size;
                    if fragments_bytes > MOOV_LIMIT {
                        return Err(bad(InputError::TooLarge {
                            what: "fragment headers (moof)",
                            size: fragments_bytes,
                            limit: MOOV_LIMIT,
                        }));
                    }
                    let mut whole = Vec::with_capacity(header.size as usize);
                    reader
                        .seek(SeekFrom::Start(header.start))
                        .map_err(MediaError::io(path))?;
                    (&mut reader)
                        .take(header.size)
                        .read_to_end(&mut whole)
                        .map_err(MediaError::io(path))?;
                    fragments.push((header.start, whole));
                }
                _ => {}
            }
            if truncated {
                break;
            }
            at = header.end();
        }
        let moov = moov.ok_or_else(|| bad(InputError::NoMoov))?;
        let fragmented = !fragments.is_empty();
        let mut tracks = tables::parse_moov(&moov).map_err(|e| bad(InputError::Corrupt(e)))?;
        if fragmented {
            let defaults = tables::trex_defaults(&moov).map_err(|e| bad(InputError::Corrupt(e)))?;
            for (start, bytes) in &fragments {
                let moof = mp4_atom::Moof::decode(&mut bytes.as_slice())
                    .map_err(|e| bad(InputError::Corrupt(format!("moof at {start}: {e}"))))?;
                tables::add_fragment(&mut tracks, &defaults, *start, &moof)
                    .map_err(|e| bad(InputError::Corrupt(e)))?;
            }
        }
        for track in &tracks {
            if let Some(last) = track
                .samples
                .iter()
                .map(|s| s.offset + u64::from(s.size))
                .max()
                && last > file_len
            {
                return Err(bad(InputError::Truncated { needed: last }));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            file_len,
            fragmented,
            quicktime,
            tracks,
        })
    }

    /// The first video track.
    pub fn video(&self) -> Option<&Track> {
        self.tracks.iter().find(|t| t.kind == TrackKind::Video)
    }

    /// The first audio track.
    pub fn audio(&self) -> Option<&Track> {
        self.tracks.iter().find(|t| t.kind == TrackKind::Audio)
    }

    /// The first AAC audio track.
    pub fn aac(&self) -> Option<&Track> {
        self.tracks
            .iter()
            .find(|t| t.kind == TrackKind::Audio && t.audio_specific_config().is_some())
    }
}

/// Whether the first box of a file looks like the start of an ISO-BMFF / QuickTime file:
/// a printable type and a size within the file. Anything else (a text file, a JPEG, an
/// MPEG-TS stream) is not a movie.
fn plausible_first_box(header: &BoxHeader, file_len: u64) -> bool {
    const FIRST: [&[u8; 4]; 8] = [
        b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp",
    ];
    FIRST.contains(&&header.kind) && (header.size <= file_len || &header.kind != b"ftyp")
}

fn read_body<R: Read + Seek>(
    reader: &mut R,
    header: &BoxHeader,
    limit: u64,
    path: &Path,
) -> Result<Vec<u8>> {
    let len = (header.size - header.header_len).min(limit);
    reader
        .seek(SeekFrom::Start(header.body_start()))
        .map_err(MediaError::io(path))?;
    let mut body = Vec::with_capacity(len as usize);
    reader
        .take(len)
        .read_to_end(&mut body)
        .map_err(MediaError::io(path))?;
    Ok(body)
}

/// Reads sample bytes by offset through a bounded read-ahead buffer: consecutive samples of
/// a track (interleaved with another track's chunks) cost few system calls, and memory
/// stays at [`READ_AHEAD`] whatever the file's size.
#[derive(Debug)]
pub struct SampleReader {
    path: PathBuf,
    reader: BufReader<File>,
    /// Offset of the reader's next byte.
    position: u64,
}

impl SampleReader {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(MediaError::io(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(READ_AHEAD, file),
            position: 0,
        })
    }

    /// Appends the bytes of `sample` to `out`.
    pub fn read_into(&mut self, sample: &SampleRef, out: &mut Vec<u8>) -> Result<()> {
        let io = MediaError::io(&self.path);
        if sample.offset != self.position {
            let delta = i128::from(sample.offset) - i128::from(self.position);
            // A short hop forward or back stays inside the buffer when it can.
            if delta.unsigned_abs() < READ_AHEAD as u128 {
                self.reader
                    .seek_relative(delta as i64)
                    .map_err(MediaError::io(&self.path))?;
            } else {
                self.reader
                    .seek(SeekFrom::Start(sample.offset))
                    .map_err(MediaError::io(&self.path))?;
            }
        }
        let start = out.len();
        out.resize(start + sample.size as usize, 0);
        match self.reader.read_exact(&mut out[start..]) {
            Ok(()) => {
                self.position = sample.offset + u64::from(sample.size);
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                // Where the reader is now is unknown: seek absolutely next time.
                self.position = u64::MAX;
                Err(io(e))
            }
        }
    }

    /// The bytes of one sample.
    pub fn read(&mut self, sample: &SampleRef) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(sample.size as usize);
        self.read_into(sample, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_is_not_a_movie() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("text.mp4");
        std::fs::write(&path, "this is not a video\n".repeat(20)).unwrap();
        let err = Movie::open(&path).unwrap_err();
        assert!(
            matches!(
                &err,
                MediaError::Input {
                    reason: InputError::NotMp4,
                    ..
                }
            ),
            "{err}"
        );
        std::fs::write(&path, b"").unwrap();
        assert!(Movie::open(&path).is_err());
    }

    #[test]
    fn a_movie_without_moov_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.mp4");
        let mut bytes = vec![0, 0, 0, 16];
        bytes.extend_from_slice(b"ftypisom\0\0\0\0");
        bytes.extend_from_slice(&[0, 0, 0, 8]);
        bytes.extend_from_slice(b"mdat");
        std::fs::write(&path, &bytes).unwrap();
        let err = Movie::open(&path).unwrap_err().to_string();
        assert!(err.contains("no moov"), "{err}");
    }

    #[test]
    fn a_cut_moov_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.mp4");
        let mut bytes = vec![0, 0, 0, 16];
        bytes.extend_from_slice(b"ftypisom\0\0\0\0");
        bytes.extend_from_slice(&[0, 0, 1, 0]);
        bytes.extend_from_slice(b"moov");
        bytes.extend_from_slice(&[0; 40]);
        std::fs::write(&path, &bytes).unwrap();
        let err = Movie::open(&path).unwrap_err().to_string();
        assert!(err.contains("truncated moov"), "{err}");
    }
}
