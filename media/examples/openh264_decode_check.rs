//! Does openh264's decoder decode what users have (x264 High profile with B-frames) as
//! ffmpeg does? `media ladder` needs every frame, in presentation order, exactly.
//!
//! Decodes the first video track of FILE twice: with openh264 (samples read by `media`'s
//! demuxer and turned into Annex B) and with ffmpeg (raw yuv420p on a pipe), then compares
//! the number of frames and every frame's pixels in output order. H.264 decoding is exact,
//! so two correct decoders give identical pictures.
//!
//! ```sh
//! cargo run --release -p media --example openh264_decode_check -- sources/plain.mp4
//! ```

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use media::mp4::{Movie, SampleReader};
use openh264::OpenH264API;
use openh264::decoder::{Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;

/// A hash of a picture's visible pixels (planes without stride padding).
fn picture_hash(yuv: &impl YUVSource) -> u64 {
    let (w, h) = yuv.dimensions();
    let (sy, su, sv) = yuv.strides();
    let mut hasher = DefaultHasher::new();
    for row in 0..h {
        yuv.y()[row * sy..row * sy + w].hash(&mut hasher);
    }
    for (plane, stride) in [(yuv.u(), su), (yuv.v(), sv)] {
        for row in 0..h.div_ceil(2) {
            plane[row * stride..row * stride + w.div_ceil(2)].hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// Length-prefixed NAL units to Annex B (start codes), appended to `out`.
fn annex_b(sample: &[u8], length_size: usize, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut rest = sample;
    while !rest.is_empty() {
        if rest.len() < length_size {
            bail!("NAL length cut short");
        }
        let len = rest[..length_size]
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b));
        let nal = rest
            .get(length_size..length_size + len)
            .context("NAL unit runs past its sample")?;
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        rest = &rest[length_size + len..];
    }
    Ok(())
}

fn openh264_hashes(path: &Path) -> anyhow::Result<(Vec<u64>, usize)> {
    let movie = Movie::open(path)?;
    let track = movie.video().context("no video track")?;
    let mp4_atom::Codec::Avc1(avc1) = &track.entry else {
        bail!("not avc1 H.264");
    };
    let avcc = &avc1.avcc;
    let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
    let mut decoder = Decoder::with_api_config(OpenH264API::from_source(), config)?;
    let mut headers = Vec::new();
    for nal in avcc
        .sequence_parameter_sets
        .iter()
        .chain(&avcc.picture_parameter_sets)
    {
        headers.extend_from_slice(&[0, 0, 0, 1]);
        headers.extend_from_slice(nal);
    }
    decoder.decode(&headers)?;
    let mut reader = SampleReader::open(path)?;
    let mut hashes = Vec::new();
    let mut errors = 0;
    let mut unit = Vec::new();
    for sample in &track.samples {
        unit.clear();
        annex_b(
            &reader.read(sample)?,
            usize::from(avcc.length_size),
            &mut unit,
        )?;
        match decoder.decode(&unit) {
            Ok(Some(picture)) => hashes.push(picture_hash(&picture)),
            Ok(None) => {}
            Err(_) => errors += 1,
        }
    }
    for picture in decoder.flush_remaining()? {
        hashes.push(picture_hash(&picture));
    }
    Ok((hashes, errors))
}

fn ffmpeg_hashes(path: &Path) -> anyhow::Result<Vec<u64>> {
    let movie = Movie::open(path)?;
    let (w, h) = movie
        .video()
        .and_then(|t| t.dimensions())
        .context("no picture size")?;
    let (w, h) = (w as usize, h as usize);
    let mut child = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args([
            "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .context("running ffmpeg")?;
    let mut out = child.stdout.take().context("ffmpeg stdout")?;
    let mut frame = vec![0u8; w * h + 2 * w.div_ceil(2) * h.div_ceil(2)];
    let mut hashes = Vec::new();
    while out.read_exact(&mut frame).is_ok() {
        let (y, chroma) = frame.split_at(w * h);
        let (u, v) = chroma.split_at(chroma.len() / 2);
        let mut hasher = DefaultHasher::new();
        for row in y
            .chunks(w)
            .chain(u.chunks(w.div_ceil(2)))
            .chain(v.chunks(w.div_ceil(2)))
        {
            row.hash(&mut hasher);
        }
        hashes.push(hasher.finish());
    }
    child.wait()?;
    Ok(hashes)
}

fn main() -> anyhow::Result<()> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .context("usage: openh264_decode_check FILE")?
        .into();
    let reference = ffmpeg_hashes(&path)?;
    let (decoded, errors) = openh264_hashes(&path)?;
    let same_place = reference
        .iter()
        .zip(&decoded)
        .filter(|(a, b)| a == b)
        .count();
    let mut counts: HashMap<u64, i64> = HashMap::new();
    for h in &reference {
        *counts.entry(*h).or_default() += 1;
    }
    for h in &decoded {
        *counts.entry(*h).or_default() -= 1;
    }
    let pictures_in_common =
        reference.len() - counts.values().filter(|&&c| c > 0).sum::<i64>() as usize;
    let first_mismatch = reference.iter().zip(&decoded).position(|(a, b)| a != b);
    println!("{}", path.display());
    println!("  ffmpeg frames:            {}", reference.len());
    println!(
        "  openh264 frames:          {} ({errors} decode errors)",
        decoded.len()
    );
    println!("  identical, same position: {same_place}");
    println!("  identical, any position:  {pictures_in_common}");
    match first_mismatch {
        Some(i) => println!("  first difference at output frame {i}"),
        None if reference.len() == decoded.len() => {
            println!("  verdict: openh264 decodes this stream exactly like ffmpeg");
        }
        None => println!("  frame counts differ"),
    }
    Ok(())
}
