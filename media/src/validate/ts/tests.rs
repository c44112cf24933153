#![allow(clippy::unwrap_used)]
use super::*;
use crate::validate::fmp4::tests::noise;

const VIDEO: u16 = 256;
const AUDIO: u16 = 257;
const PMT: u16 = 4096;

/// A packet of `pid` carrying `payload` (padded with an adaptation field, as muxers do).
fn packet(pid: u16, unit_start: bool, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 184);
    let mut p = vec![
        SYNC,
        (u8::from(unit_start) << 6) | (pid >> 8) as u8,
        pid as u8,
        0x10,
    ];
    let stuffing = 184 - payload.len();
    if stuffing > 0 {
        p[3] = 0x30;
        p.push((stuffing - 1) as u8);
        if stuffing > 1 {
            p.push(0);
            p.extend(std::iter::repeat_n(0xff, stuffing - 2));
        }
    }
    p.extend_from_slice(payload);
    assert_eq!(p.len(), PACKET);
    p
}

/// A PSI section of `table_id` with `body` after the 5 bytes of its syntax header, with
/// its pointer field and CRC.
fn section(table_id: u8, body: &[u8]) -> Vec<u8> {
    let length = 5 + body.len() + 4;
    let mut s = vec![
        table_id,
        0xb0 | (length >> 8) as u8,
        length as u8,
        0,
        1,
        0xc1,
        0,
        0,
    ];
    s.extend_from_slice(body);
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    let mut payload = vec![0];
    payload.extend(s);
    payload
}

fn pat() -> Vec<u8> {
    packet(
        0,
        true,
        &section(0x00, &[0, 1, 0xe0 | (PMT >> 8) as u8, PMT as u8]),
    )
}

fn pmt() -> Vec<u8> {
    let mut body = vec![0xe1, 0x00, 0xf0, 0x00];
    for (stream_type, pid) in [(0x1b, VIDEO), (0x0f, AUDIO), (0x86, 300)] {
        body.extend([stream_type, 0xe0 | (pid >> 8) as u8, pid as u8, 0xf0, 0x00]);
    }
    packet(PMT, true, &section(0x02, &body))
}

fn timestamp(prefix: u8, t: u64) -> [u8; 5] {
    [
        (prefix << 4) | ((t >> 29) as u8 & 0x0e) | 1,
        (t >> 22) as u8,
        ((t >> 14) as u8 & 0xfe) | 1,
        (t >> 7) as u8,
        ((t << 1) as u8) | 1,
    ]
}

/// The first packet of a PES on `pid` with a PTS (and a DTS `dts_before` ticks earlier).
fn pes(pid: u16, pts: u64, dts_before: Option<u64>) -> Vec<u8> {
    let mut p = vec![0, 0, 1, if pid == VIDEO { 0xe0 } else { 0xc0 }, 0, 0, 0x80];
    match dts_before {
        Some(d) => {
            p.extend([0xc0, 10]);
            p.extend(timestamp(3, pts));
            p.extend(timestamp(1, pts - d));
        }
        None => {
            p.extend([0x80, 5]);
            p.extend(timestamp(2, pts));
        }
    }
    p.extend([0u8; 20]);
    packet(pid, true, &p)
}

/// A segment: tables, then `frames` video frames (3000 ticks apart, B-frame PTS order,
/// DTS increasing) and audio PES from `t0`, each followed by a continuation packet; an SCTE-35
/// section on PID 300.
fn segment(t0: u64, frames: u64) -> Vec<u8> {
    let mut out = pat();
    out.extend(pmt());
    out.extend(packet(300, true, &section(0xfc, &[0; 10])));
    for i in 0..frames {
        // PTS order I P B B …: PTS jumps around, DTS advances.
        let pts = t0 + 6000 + [0, 9000, 3000, 6000][(i % 4) as usize] + (i / 4) * 12_000;
        let dts = t0 + i * 3000;
        out.extend(pes(VIDEO, pts, Some(pts - dts)));
        out.extend(packet(VIDEO, false, &[0; 184]));
        out.extend(pes(AUDIO, t0 + i * 3000, None));
    }
    out
}

fn check(bytes: &[u8]) -> Result<Timing, InvalidMedia> {
    let mut scan = Scan::default();
    scan.feed(bytes)?;
    scan.finish()
}

#[test]
fn crc_of_a_known_pat() {
    // A PAT ffmpeg writes (program 1, PMT PID 4096) with its CRC.
    let pat = [
        0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1, 0x04,
        0xb2,
    ];
    assert_eq!(crc32_mpeg2(&pat), 0);
    assert_eq!(program_map_pids(&pat[8..12]), [PMT]);
}

#[test]
fn a_segment_is_media_whole_and_in_any_pieces() {
    let bytes = segment(900_000, 8);
    let whole = check(&bytes).unwrap();
    let video = whole
        .spans
        .iter()
        .find(|s| s.track == u32::from(VIDEO))
        .unwrap();
    assert_eq!(
        (video.start, video.end, video.timescale),
        (900_000, 921_000, 90_000)
    );
    assert_eq!(whole.spans.len(), 2, "SCTE-35 has no timestamps to follow");
    for piece in [1, 100, 187, 188, 189, 1000] {
        let mut scan = Scan::default();
        for chunk in bytes.chunks(piece) {
            scan.feed(chunk).unwrap();
        }
        assert_eq!(scan.finish().unwrap(), whole, "pieces of {piece}");
    }
}

#[test]
fn timestamps_advance_across_the_wrap() {
    let bytes = segment(WRAP - 6000, 6);
    let timing = check(&bytes).unwrap();
    assert_eq!(forward(WRAP - 10, 5), 15);
    assert_eq!(forward(5, WRAP - 10), -15);
    assert!(timing.spans.iter().all(|s| s.end < WRAP));
}

#[test]
fn faults_table() {
    let good = segment(0, 4);
    let mut no_pat = good[PACKET..].to_vec();
    no_pat.splice(0..0, packet(0x1fff, false, &[0xff; 184]));
    let mut bad_crc = good.clone();
    bad_crc[PACKET + PACKET - 10] ^= 1;
    let mut backwards = segment(0, 4);
    backwards.extend(pes(AUDIO, 3000, None));
    let mut lost_sync = good.clone();
    lost_sync[PACKET * 3] = 0x48;
    let mut short = good;
    short.pop();
    let only_tables = [pat(), pmt()].concat();
    let cases: [(&str, Vec<u8>); 7] = [
        ("no PAT", no_pat),
        ("PMT CRC", bad_crc),
        ("audio going back", backwards),
        ("sync byte", lost_sync),
        ("not whole packets", short),
        ("no timestamps", only_tables),
        ("nothing", Vec::new()),
    ];
    for (what, bytes) in cases {
        let got = check(&bytes);
        assert!(got.is_err(), "{what}: {got:?}");
    }
}

#[test]
fn random_bytes_are_refused() {
    for seed in 0..2000u64 {
        let len = (seed as usize * 188 / 7) % 20_000;
        let mut bytes = noise(seed, len);
        // Even with every sync byte in place.
        for p in bytes.chunks_mut(PACKET) {
            p[0] = SYNC;
        }
        assert!(check(&bytes).is_err(), "seed {seed}");
    }
}
