//! MPEG-2 transport streams (ISO/IEC 13818-1) as HLS segments (RFC 8216 §3.2): packets
//! of 188 bytes, each opened by the sync byte; a PAT naming the PMT, a PMT naming the
//! elementary streams (both CRC-checked); PES timestamps moving forward on each audio
//! and video stream.

use super::{InvalidMedia, Span, Timing};

const PACKET: usize = 188;
const SYNC: u8 = 0x47;
/// PES timestamps count a 90 kHz clock in 33 bits.
const CLOCK: u32 = 90_000;
const WRAP: u64 = 1 << 33;

/// How far `to` is after `from` on the 33-bit PES clock: positive forward, negative
/// backward, whichever is shorter round the wrap.
pub fn forward(from: u64, to: u64) -> i64 {
    let step = to.wrapping_sub(from) % WRAP;
    if step < WRAP / 2 {
        step as i64
    } else {
        step as i64 - WRAP as i64
    }
}

/// Stream types whose PES carry audio or video access units (ISO/IEC 13818-1 Table 2-34,
/// and the ATSC AC-3/E-AC-3 ones HLS uses): their timestamps must advance.
fn is_audio_or_video(stream_type: u8) -> bool {
    matches!(
        stream_type,
        0x01 | 0x02 | 0x03 | 0x04 | 0x0f | 0x10 | 0x11 | 0x1b | 0x24 | 0x81 | 0x87
    )
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, not reflected), the CRC of PSI sections
/// (ISO/IEC 13818-1 Annex A): a section followed by its CRC sums to 0.
fn crc32_mpeg2(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = (i as u32) << 24;
            let mut bit = 0;
            while bit < 8 {
                c = if c & 0x8000_0000 != 0 {
                    (c << 1) ^ 0x04c1_1db7
                } else {
                    c << 1
                };
                bit += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    bytes.iter().fold(0xffff_ffff, |crc, &b| {
        (crc << 8) ^ TABLE[((crc >> 24) ^ u32::from(b)) as usize]
    })
}

/// An elementary stream the PMT names, and the timestamps seen on it.
#[derive(Debug, Clone, Copy)]
struct Stream {
    pid: u16,
    /// ISO/IEC 13818-1 Table 2-34.
    stream_type: u8,
    first: Option<u64>,
    last: u64,
}

/// A transport stream segment checked packet by packet as it streams in.
#[derive(Debug, Default)]
pub struct Scan {
    pos: u64,
    partial: Vec<u8>,
    pmt_pids: Vec<u16>,
    saw_pat: bool,
    saw_pmt: bool,
    streams: Vec<Stream>,
}

impl Scan {
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), InvalidMedia> {
        if !self.partial.is_empty() {
            let take = (PACKET - self.partial.len()).min(bytes.len());
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.partial.len() < PACKET {
                return Ok(());
            }
            let packet = std::mem::take(&mut self.partial);
            let result = self.packet(&packet);
            self.partial = packet;
            self.partial.clear();
            result?;
        }
        let mut packets = bytes.chunks_exact(PACKET);
        for packet in packets.by_ref() {
            self.packet(packet)?;
        }
        self.partial.extend_from_slice(packets.remainder());
        Ok(())
    }

    fn packet(&mut self, p: &[u8]) -> Result<(), InvalidMedia> {
        let offset = self.pos;
        self.pos += PACKET as u64;
        let fail = |problem: &str| InvalidMedia::Packet {
            offset,
            problem: problem.to_owned(),
        };
        if p[0] != SYNC {
            return Err(fail("no sync byte"));
        }
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let unit_start = p[1] & 0x40 != 0;
        let control = (p[3] >> 4) & 0x3;
        if control == 0 {
            return Err(fail("reserved adaptation_field_control"));
        }
        let mut start = 4;
        if control & 0x2 != 0 {
            start += 1 + usize::from(p[4]);
            if start > PACKET || (control == 0x2 && start != PACKET) {
                return Err(fail("adaptation field overruns the packet"));
            }
        }
        if control & 0x1 == 0 || !unit_start {
            return Ok(());
        }
        let payload = &p[start..];
        if pid == 0 {
            self.pmt_pids = program_map_pids(section(payload, 0x00, "PAT").map_err(|e| fail(&e))?);
            self.saw_pat = true;
        } else if self.pmt_pids.contains(&pid) {
            let streams = elementary_streams(section(payload, 0x02, "PMT").map_err(|e| fail(&e))?)
                .map_err(|e| fail(&e))?;
            for (pid, stream_type) in streams {
                if !self.streams.iter().any(|s| s.pid == pid) {
                    self.streams.push(Stream {
                        pid,
                        stream_type,
                        first: None,
                        last: 0,
                    });
                }
            }
            self.saw_pmt = true;
        } else if let Some(stream) = self
            .streams
            .iter_mut()
            .find(|s| s.pid == pid && is_audio_or_video(s.stream_type))
        {
            // Other streams (SCTE-35 sections, ID3 metadata) are not looked into.
            let Some(ts) = pes_timestamp(payload).map_err(|e| fail(&e))? else {
                return Ok(());
            };
            if stream.first.is_some() && forward(stream.last, ts) <= 0 {
                return Err(InvalidMedia::Discontinuous {
                    what: format!("a PES on PID {pid} (byte {offset})"),
                    expected_s: stream.last as f64 / f64::from(CLOCK),
                    found_s: ts as f64 / f64::from(CLOCK),
                });
            }
            stream.first.get_or_insert(ts);
            stream.last = ts;
        }
        Ok(())
    }

    pub fn finish(self) -> Result<Timing, InvalidMedia> {
        if !self.partial.is_empty() || self.pos == 0 {
            return Err(InvalidMedia::Truncated("a TS packet"));
        }
        if !self.saw_pat || !self.saw_pmt {
            return Err(InvalidMedia::Structure(format!(
                "no {}: not a transport stream segment",
                if self.saw_pat { "PMT" } else { "PAT" }
            )));
        }
        let spans: Vec<Span> = self
            .streams
            .iter()
            .filter_map(|s| {
                Some(Span {
                    track: u32::from(s.pid),
                    timescale: CLOCK,
                    start: s.first?,
                    end: s.last,
                })
            })
            .collect();
        if spans.is_empty() {
            return Err(InvalidMedia::Structure(
                "no audio or video PES with a timestamp".into(),
            ));
        }
        Ok(Timing { spans })
    }
}

/// The PSI section that starts in `payload` (after its pointer field), checked: its table
/// ID, length and CRC. Returns what follows the 8-byte section header, CRC excluded.
fn section<'a>(payload: &'a [u8], table_id: u8, name: &str) -> Result<&'a [u8], String> {
    let pointer = usize::from(*payload.first().ok_or(format!("empty {name}"))?);
    let s = payload
        .get(1 + pointer..)
        .filter(|s| s.len() >= 3)
        .ok_or(format!("{name} pointer past the packet"))?;
    if s[0] != table_id || s[1] & 0x80 == 0 {
        return Err(format!("not a {name} section"));
    }
    let length = (usize::from(s[1] & 0x0f) << 8) | usize::from(s[2]);
    let whole = s
        .get(..3 + length)
        .filter(|_| length >= 9)
        .ok_or(format!("{name} does not fit one packet"))?;
    if crc32_mpeg2(whole) != 0 {
        return Err(format!("{name} CRC does not match"));
    }
    Ok(&whole[8..whole.len() - 4])
}

/// The PMT PIDs of a PAT's programs (program 0 names the network PID).
fn program_map_pids(pat: &[u8]) -> Vec<u16> {
    pat.chunks_exact(4)
        .filter(|e| e[0] != 0 || e[1] != 0)
        .map(|e| (u16::from(e[2] & 0x1f) << 8) | u16::from(e[3]))
        .collect()
}

/// The (PID, stream type) of a PMT's elementary streams.
fn elementary_streams(pmt: &[u8]) -> Result<Vec<(u16, u8)>, String> {
    let info = pmt.get(2..4).ok_or("PMT is cut short")?;
    let mut rest = pmt
        .get(4 + ((usize::from(info[0] & 0x0f) << 8) | usize::from(info[1]))..)
        .ok_or("PMT program info overruns it")?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let e = rest.get(..5).ok_or("PMT stream entry is cut short")?;
        let pid = (u16::from(e[1] & 0x1f) << 8) | u16::from(e[2]);
        let skip = 5 + ((usize::from(e[3] & 0x0f) << 8) | usize::from(e[4]));
        rest = rest.get(skip..).ok_or("PMT stream entry overruns it")?;
        out.push((pid, e[0]));
    }
    Ok(out)
}

/// The timestamp (DTS, else PTS) of the PES that starts in `payload`; `None` for a PES
/// without one.
fn pes_timestamp(payload: &[u8]) -> Result<Option<u64>, String> {
    if payload.get(..3) != Some(&[0, 0, 1]) {
        return Err("PES start code missing".into());
    }
    // Stream IDs without the optional PES header (ISO/IEC 13818-1 Table 2-21).
    match payload.get(3) {
        None => return Err("PES header is cut short".into()),
        Some(0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xf2 | 0xf8 | 0xff) => return Ok(None),
        Some(_) => {}
    }
    let flags = payload.get(7).ok_or("PES header is cut short")? >> 6;
    let read = |at: usize| -> Result<u64, String> {
        let b = payload
            .get(at..at + 5)
            .ok_or("PES timestamp is cut short")?;
        if b[0] & 1 == 0 || b[2] & 1 == 0 || b[4] & 1 == 0 {
            return Err("PES timestamp marker bits missing".into());
        }
        Ok((u64::from(b[0] >> 1 & 0x7) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1))
    };
    match flags {
        0 => Ok(None),
        2 => read(9).map(Some),
        3 => read(14).map(Some),
        _ => Err("PES PTS_DTS_flags is the forbidden 01".into()),
    }
}

#[cfg(test)]
mod tests;
