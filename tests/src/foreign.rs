//! Foreign content: video made and packaged by Debian's ffmpeg the way users' files are
//! (libx264 High profile with B-frames, AAC), for the tests of `media package`, `media
//! ladder`, the origin's library and the player. Built once per fixture version under a
//! folder the tests share, and reused by later runs.
//!
//! Layout of [`foreign_content`]'s folder:
//!
//! | path | what |
//! |---|---|
//! | `sources/plain.mp4` | one 1280x720 file, 10 s, 2 s GOP, video and audio (moov at the end) |
//! | `sources/movie_{360,540,720}.mp4` | three renditions of one title, keyframes aligned every 2 s |
//! | `sources/unaligned_{a,b}.mp4` | two renditions whose keyframes are not aligned (GOP 60 vs 45 frames) |
//! | `sources/movie_360.mov` | `movie_360.mp4` in a QuickTime container |
//! | `sources/fragmented.mp4` | `movie_360.mp4` as a fragmented MP4 (`moof` per keyframe, empty `moov`) |
//! | `sources/hevc.mp4` | HEVC (libx265, B-frames) 640x360, 10 s, 2 s GOP, AAC |
//! | `sources/late_start.mp4` | `movie_360.mp4` cut at 0.5 s without re-encoding: an edit list that starts inside the first GOP |
//! | `sources/no_audio.mp4` | `movie_360.mp4` without its audio |
//! | `sources/ac3_audio.mp4` | `movie_360.mp4` with its audio in AC-3 (not AAC) |
//! | `bad/text.mp4` | a text file named `.mp4` |
//! | `bad/truncated.mp4` | `plain.mp4` with `moov` first (faststart), cut inside the `moov` |
//! | `bad/mpeg4.mp4` | MPEG-4 Part 2 video: a codec the packager does not take |
//! | `packaged/hls_fmp4/` | HLS, fMP4 segments, two video renditions and an audio group (`master.m3u8`) |
//! | `packaged/hls_ts/` | HLS, MPEG-TS segments with muxed audio, two renditions (`master.m3u8`) |
//! | `packaged/hls_byterange/` | HLS byte ranges: `ts.m3u8` (one `.ts`) and `fmp4.m3u8` (one `.m4s`, byte-range `EXT-X-MAP`) |
//! | `packaged/dash_timeline/` | DASH `SegmentTemplate` with `SegmentTimeline` (`$Time$`-free, `$Number$`), two video renditions and audio |
//! | `packaged/dash_duration/` | DASH `SegmentTemplate` with `@duration` |
//! | `packaged/dash_list/` | DASH single file per rendition, `SegmentList` with `mediaRange` |
//! | `packaged/dash_base/` | DASH single file per rendition with a global `sidx`, `SegmentBase` |
//!
//! ffmpeg 5.1's DASH reader loops forever on `dash_list` (a `SegmentList` of `mediaRange`s in
//! one file), so the tests check that form by its structure, not with ffmpeg.
//!
//! ffmpeg 5.1's DASH muxer never writes `SegmentBase`; `dash_base` is its single-file
//! output with a global `sidx` (`-global_sidx 1`), whose MPD is rewritten here to the
//! on-demand form (`SegmentBase@indexRange` pointing at that `sidx`), which is what
//! Shaka Packager and MP4Box write for such files.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Bump when the fixtures change, so stale copies from earlier runs are not reused.
const VERSION: u32 = 3;

/// The frame rate, GOP and length every source shares.
pub const FPS: u32 = 30;
pub const GOP_FRAMES: u32 = 60;
pub const SECONDS: u32 = 10;

/// The foreign fixtures, built once per test binary under `tmp` (Cargo's per-target
/// temporary folder) unless an earlier run left them there complete.
pub fn foreign_content(tmp: &Path) -> Result<&'static Path, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| build(tmp))
        .as_deref()
        .map_err(Clone::clone)
}

fn build(tmp: &Path) -> Result<PathBuf, String> {
    let dir = tmp.join(format!("foreign-v{VERSION}"));
    if dir.join("complete").is_file() {
        return Ok(dir);
    }
    // Built aside and renamed into place, so a test binary running at the same time never
    // sees half of it; the loser of a race keeps the winner's copy.
    std::fs::create_dir_all(tmp).map_err(|e| e.to_string())?;
    let work = tempfile::tempdir_in(tmp).map_err(|e| e.to_string())?;
    let w = work.path();
    for sub in ["sources", "bad", "packaged"] {
        std::fs::create_dir_all(w.join(sub)).map_err(|e| e.to_string())?;
    }
    sources(&w.join("sources"))?;
    bad(&w.join("sources"), &w.join("bad"))?;
    packaged(&w.join("sources"), &w.join("packaged"))?;
    std::fs::write(w.join("complete"), b"").map_err(|e| e.to_string())?;
    let work = work.keep();
    if std::fs::rename(&work, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&work);
        if !dir.join("complete").is_file() {
            return Err(format!("cannot move the fixtures into {}", dir.display()));
        }
    }
    Ok(dir)
}

/// Runs ffmpeg quietly; an error carries its stderr.
pub fn ffmpeg(args: &[&str]) -> Result<(), String> {
    let out = crate::run_bounded(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y"])
            .args(args),
    )?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ffmpeg {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn path(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("not UTF-8: {}", p.display()))
}

/// ffmpeg's inputs for a `SECONDS`-long moving test pattern of `size` with a 440 Hz tone.
fn test_pattern(size: &str) -> Vec<String> {
    let video = format!("testsrc2=size={size}:rate={FPS}");
    let audio = "sine=frequency=440:sample_rate=48000";
    [
        "-f", "lavfi", "-i", &video, "-f", "lavfi", "-i", audio, "-t",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([SECONDS.to_string()])
    .collect()
}

/// A moving test pattern with a tone, encoded as users' files are: x264 High profile with
/// three B-frames, a fixed GOP of `gop` frames (no scene-cut keyframes), AAC-LC.
fn encode(out: &Path, height: u32, kbps: u32, gop: u32, extra: &[&str]) -> Result<(), String> {
    let inputs = test_pattern("1280x720");
    let scale = format!("scale=-2:{height}");
    let gop = gop.to_string();
    let bitrate = format!("{kbps}k");
    let mut args: Vec<&str> = inputs.iter().map(String::as_str).collect();
    args.extend([
        "-vf",
        &scale,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        "high",
        "-bf",
        "3",
        "-g",
        &gop,
        "-keyint_min",
        &gop,
        "-sc_threshold",
        "0",
        "-b:v",
        &bitrate,
        "-c:a",
        "aac",
        "-b:a",
        "128k",
    ]);
    args.extend_from_slice(extra);
    args.push(path(out)?);
    ffmpeg(&args)
}

fn sources(dir: &Path) -> Result<(), String> {
    let gop = GOP_FRAMES;
    encode(&dir.join("plain.mp4"), 720, 2500, gop, &[])?;
    for (height, kbps) in [(360, 800), (540, 1400), (720, 2500)] {
        encode(
            &dir.join(format!("movie_{height}.mp4")),
            height,
            kbps,
            gop,
            &[],
        )?;
    }
    encode(&dir.join("unaligned_a.mp4"), 360, 800, gop, &[])?;
    encode(&dir.join("unaligned_b.mp4"), 540, 1400, 45, &[])?;
    let rendition = dir.join("movie_360.mp4");
    let rendition = path(&rendition)?;
    ffmpeg(&[
        "-i",
        rendition,
        "-c",
        "copy",
        path(&dir.join("movie_360.mov"))?,
    ])?;
    ffmpeg(&[
        "-i",
        rendition,
        "-c",
        "copy",
        "-movflags",
        "frag_keyframe+empty_moov+default_base_moof",
        path(&dir.join("fragmented.mp4"))?,
    ])?;
    let gop = GOP_FRAMES.to_string();
    let x265 = format!("keyint={gop}:min-keyint={gop}:scenecut=0:bframes=3:log-level=error");
    let inputs = test_pattern("640x360");
    let mut args: Vec<&str> = inputs.iter().map(String::as_str).collect();
    args.extend(["-c:v", "libx265", "-preset", "veryfast", "-b:v", "600k"]);
    args.extend(["-x265-params", &x265, "-tag:v", "hvc1", "-c:a", "aac"]);
    let hevc = dir.join("hevc.mp4");
    args.push(path(&hevc)?);
    ffmpeg(&args)?;
    // Stream copy from 0.5 s keeps the GOP from 0 s and hides its first half with the edit
    // list, as users' trimmed files do.
    let cut = dir.join("late_start.mp4");
    ffmpeg(&["-ss", "0.5", "-i", rendition, "-c", "copy", path(&cut)?])?;
    ffmpeg(&[
        "-i",
        rendition,
        "-c",
        "copy",
        "-an",
        path(&dir.join("no_audio.mp4"))?,
    ])?;
    ffmpeg(&[
        "-i",
        rendition,
        "-c:v",
        "copy",
        "-c:a",
        "ac3",
        path(&dir.join("ac3_audio.mp4"))?,
    ])
}

fn bad(sources: &Path, dir: &Path) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    std::fs::write(dir.join("text.mp4"), "this is not a video\n".repeat(50)).map_err(io)?;
    // moov first, then cut inside it: the sample tables end early.
    let faststart = dir.join("faststart.tmp.mp4");
    ffmpeg(&[
        "-i",
        path(&sources.join("plain.mp4"))?,
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        path(&faststart)?,
    ])?;
    let bytes = std::fs::read(&faststart).map_err(io)?;
    let moov_end = top_level_box(&bytes, b"moov")
        .map(|(start, len)| start + len)
        .ok_or("faststart output has no moov")?;
    std::fs::write(dir.join("truncated.mp4"), &bytes[..moov_end / 2]).map_err(io)?;
    std::fs::remove_file(&faststart).map_err(io)?;
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=30",
        "-t",
        "2",
        "-c:v",
        "mpeg4",
        path(&dir.join("mpeg4.mp4"))?,
    ])
}

fn packaged(sources: &Path, dir: &Path) -> Result<(), String> {
    let lo = sources.join("movie_360.mp4");
    let hi = sources.join("movie_720.mp4");
    let (lo, hi) = (path(&lo)?, path(&hi)?);
    let out = |name: &str| -> Result<PathBuf, String> {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
        Ok(d)
    };
    let hls = ["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod"];

    let d = out("hls_fmp4")?;
    let mut args = vec![
        "-i", lo, "-i", hi, "-map", "0:v", "-map", "1:v", "-map", "0:a",
    ];
    args.extend(["-c", "copy"]);
    args.extend(hls);
    args.extend([
        "-hls_segment_type",
        "fmp4",
        "-master_pl_name",
        "master.m3u8",
    ]);
    args.extend([
        "-var_stream_map",
        "v:0,agroup:aud v:1,agroup:aud a:0,agroup:aud,default:yes",
    ]);
    let seg = path(&d.join("%v_%03d.m4s"))?.to_owned();
    let pl = path(&d.join("%v.m3u8"))?.to_owned();
    args.extend(["-hls_segment_filename", &seg, &pl]);
    ffmpeg(&args)?;

    let d = out("hls_ts")?;
    let mut args = vec!["-i", lo, "-i", hi, "-map", "0:v", "-map", "0:a"];
    args.extend(["-map", "1:v", "-map", "0:a", "-c", "copy"]);
    args.extend(hls);
    args.extend(["-master_pl_name", "master.m3u8"]);
    args.extend(["-var_stream_map", "v:0,a:0 v:1,a:1"]);
    let seg = path(&d.join("%v_%03d.ts"))?.to_owned();
    let pl = path(&d.join("%v.m3u8"))?.to_owned();
    args.extend(["-hls_segment_filename", &seg, &pl]);
    ffmpeg(&args)?;

    let d = out("hls_byterange")?;
    for (playlist, kind) in [("ts.m3u8", "mpegts"), ("fmp4.m3u8", "fmp4")] {
        let mut args = vec!["-i", lo, "-c", "copy"];
        args.extend(hls);
        args.extend(["-hls_segment_type", kind, "-hls_flags", "single_file"]);
        let pl = path(&d.join(playlist))?.to_owned();
        args.push(&pl);
        ffmpeg(&args)?;
    }

    let dash = ["-c", "copy", "-f", "dash", "-seg_duration", "2"];
    let d = out("dash_timeline")?;
    let mpd = path(&d.join("manifest.mpd"))?.to_owned();
    let mut args = vec![
        "-i", lo, "-i", hi, "-map", "0:v", "-map", "1:v", "-map", "0:a",
    ];
    args.extend(dash);
    args.extend(["-use_timeline", "1", &mpd]);
    ffmpeg(&args)?;

    let d = out("dash_duration")?;
    let mpd = path(&d.join("manifest.mpd"))?.to_owned();
    let mut args = vec!["-i", lo, "-map", "0:v", "-map", "0:a"];
    args.extend(dash);
    args.extend(["-use_timeline", "0", &mpd]);
    ffmpeg(&args)?;

    let d = out("dash_list")?;
    let mpd = path(&d.join("manifest.mpd"))?.to_owned();
    let mut args = vec!["-i", lo, "-map", "0:v", "-map", "0:a"];
    args.extend(dash);
    args.extend(["-use_template", "0", "-single_file", "1", &mpd]);
    ffmpeg(&args)?;

    let d = out("dash_base")?;
    let mpd_path = d.join("manifest.mpd");
    let mpd = path(&mpd_path)?.to_owned();
    let mut args = vec!["-i", lo, "-map", "0:v", "-map", "0:a"];
    args.extend(dash);
    args.extend([
        "-use_template",
        "0",
        "-single_file",
        "1",
        "-global_sidx",
        "1",
    ]);
    args.push(&mpd);
    ffmpeg(&args)?;
    segment_base_mpd(&d, &mpd_path)
}

/// Rewrites each `SegmentList` of the MPD at `mpd` into `SegmentBase` over the global
/// `sidx` of its representation's file (named by the `BaseURL` just before it).
fn segment_base_mpd(dir: &Path, mpd: &Path) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let text = std::fs::read_to_string(mpd).map_err(io)?;
    let mut out = String::new();
    let mut base_url = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if let Some(url) = trimmed
            .strip_prefix("<BaseURL>")
            .and_then(|s| s.strip_suffix("</BaseURL>"))
        {
            base_url = Some(url.to_owned());
        }
        if !trimmed.starts_with("<SegmentList") {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let file = base_url.take().ok_or("SegmentList without a BaseURL")?;
        let bytes = std::fs::read(dir.join(&file)).map_err(io)?;
        let (moov_start, moov_len) =
            top_level_box(&bytes, b"moov").ok_or_else(|| format!("{file}: no moov"))?;
        let (sidx_start, sidx_len) =
            top_level_box(&bytes, b"sidx").ok_or_else(|| format!("{file}: no sidx"))?;
        let indent = &line[..line.len() - line.trim_start().len()];
        out.push_str(&format!(
            "{indent}<SegmentBase indexRange=\"{}-{}\">\n{indent}\t<Initialization range=\"0-{}\" />\n{indent}</SegmentBase>\n",
            sidx_start,
            sidx_start + sidx_len - 1,
            moov_start + moov_len - 1,
        ));
        for inner in lines.by_ref() {
            if inner.trim() == "</SegmentList>" {
                break;
            }
        }
    }
    std::fs::write(mpd, out).map_err(io)
}

/// The offset and size of the first top-level ISO-BMFF box of type `kind`.
pub fn top_level_box(bytes: &[u8], kind: &[u8; 4]) -> Option<(usize, usize)> {
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size32 = u32::from_be_bytes(bytes[at..at + 4].try_into().ok()?);
        let size = match size32 {
            0 => bytes.len() - at,
            1 => usize::try_from(u64::from_be_bytes(
                bytes.get(at + 8..at + 16)?.try_into().ok()?,
            ))
            .ok()?,
            n => n as usize,
        };
        if size < 8 {
            return None;
        }
        if &bytes[at + 4..at + 8] == kind {
            return Some((at, size));
        }
        at = at.checked_add(size)?;
    }
    None
}
