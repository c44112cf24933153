//! Typed codecs strings (RFC 6381 `codecs` parameter), derived from the bitstream.
//!
//! Values are never typed by hand: an [`Codec::Avc`] comes from an SPS (or an `avcC`), an
//! [`Codec::Hevc`] from an `hvcC`, an [`Codec::Mp4a`] from the AAC AudioSpecificConfig.
//! `Display` and `FromStr` round-trip.

use std::fmt;
use std::str::FromStr;

use crate::MediaError;

/// One codec of a `codecs` list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264: `avc1.PPCCLL` (profile_idc, constraint flags, level_idc as hex, RFC 6381 §3.3).
    Avc {
        profile: u8,
        constraints: u8,
        level: u8,
    },
    /// HEVC: `hvc1.` / `hev1.` then profile space and profile, compatibility flags, tier and
    /// level, constraint flags (ISO/IEC 14496-15 Annex E.3).
    Hevc {
        /// `hev1`: parameter sets may also be in band (else `hvc1`).
        in_band: bool,
        /// `general_profile_space` (0–3, written as nothing, `A`, `B`, `C`).
        profile_space: u8,
        profile_idc: u8,
        /// `general_profile_compatibility_flags`, bit 31 being flag 0.
        compatibility: u32,
        high_tier: bool,
        level_idc: u8,
        /// `general_constraint_indicator_flags`, six bytes.
        constraints: [u8; 6],
    },
    /// MPEG-4 audio: `mp4a.OO.A` (object type indication in hex, audio object type in decimal).
    Mp4a {
        object_type: u8,
        audio_object_type: u8,
    },
    /// Opus in ISO-BMFF: `opus`.
    Opus,
    /// Any other codec, kept verbatim so that foreign manifests round-trip.
    Other(String),
}

impl Codec {
    /// The AVC codec of a stream from its SPS NAL unit (with or without the one-byte NAL
    /// header). Profile, constraint flags and level are bytes 1..4 of the NAL (H.264 §7.3.2.1).
    pub fn from_sps(sps: &[u8]) -> Result<Self, MediaError> {
        let body = match sps.first() {
            Some(header) if header & 0x1f == 7 => &sps[1..],
            _ => sps,
        };
        match body {
            [profile, constraints, level, ..] => Ok(Self::Avc {
                profile: *profile,
                constraints: *constraints,
                level: *level,
            }),
            _ => Err(MediaError::Invalid(format!(
                "SPS too short ({} bytes)",
                sps.len()
            ))),
        }
    }

    /// The AVC codec of an `avcC` (AVCDecoderConfigurationRecord, ISO/IEC 14496-15 §5.3.3):
    /// the same three bytes as the SPS. `in_band` is an `avc3` sample entry, whose string
    /// keeps that name.
    pub fn from_avcc(avcc: &mp4_atom::Avcc, in_band: bool) -> Self {
        let (profile, constraints, level) = (
            avcc.avc_profile_indication,
            avcc.profile_compatibility,
            avcc.avc_level_indication,
        );
        if in_band {
            Self::Other(format!("avc3.{profile:02x}{constraints:02x}{level:02x}"))
        } else {
            Self::Avc {
                profile,
                constraints,
                level,
            }
        }
    }

    /// The HEVC codec of an `hvcC` (HEVCDecoderConfigurationRecord, ISO/IEC 14496-15
    /// §8.3.3); `in_band` for an `hev1` sample entry.
    pub fn from_hvcc(hvcc: &mp4_atom::Hvcc, in_band: bool) -> Self {
        Self::Hevc {
            in_band,
            profile_space: hvcc.general_profile_space,
            profile_idc: hvcc.general_profile_idc,
            compatibility: u32::from_be_bytes(hvcc.general_profile_compatibility_flags),
            high_tier: hvcc.general_tier_flag,
            level_idc: hvcc.general_level_idc,
            constraints: hvcc.general_constraint_indicator_flags,
        }
    }

    /// The MPEG-4 audio codec from an AudioSpecificConfig (ISO 14496-3 §1.6.2.1): the audio
    /// object type is its first five bits.
    pub fn from_audio_specific_config(asc: &[u8]) -> Result<Self, MediaError> {
        let first = asc
            .first()
            .ok_or_else(|| MediaError::Invalid("empty AudioSpecificConfig".into()))?;
        Ok(Self::Mp4a {
            object_type: 0x40,
            audio_object_type: first >> 3,
        })
    }

    /// Whether this codec carries video.
    pub fn is_video(&self) -> bool {
        match self {
            Self::Avc { .. } | Self::Hevc { .. } => true,
            Self::Mp4a { .. } | Self::Opus => false,
            Self::Other(s) => ["avc", "hvc", "hev", "vp0", "av01", "dvh"]
                .iter()
                .any(|p| s.starts_with(p)),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Avc {
                profile,
                constraints,
                level,
            } => write!(f, "avc1.{profile:02x}{constraints:02x}{level:02x}"),
            Self::Hevc {
                in_band,
                profile_space,
                profile_idc,
                compatibility,
                high_tier,
                level_idc,
                constraints,
            } => {
                let space = ["", "A", "B", "C"][usize::from(*profile_space & 3)];
                write!(
                    f,
                    "{}.{space}{profile_idc}.{:X}.{}{level_idc}",
                    if *in_band { "hev1" } else { "hvc1" },
                    // Annex E.3: the 32 flags in reverse bit order, leading zeros omitted.
                    compatibility.reverse_bits(),
                    if *high_tier { 'H' } else { 'L' },
                )?;
                // Each constraint byte in hex, trailing zero bytes omitted.
                let used = constraints
                    .iter()
                    .rposition(|&b| b != 0)
                    .map_or(0, |i| i + 1);
                for byte in &constraints[..used] {
                    write!(f, ".{byte:X}")?;
                }
                Ok(())
            }
            Self::Mp4a {
                object_type,
                audio_object_type,
            } => write!(f, "mp4a.{object_type:x}.{audio_object_type}"),
            Self::Opus => f.write_str("opus"),
            Self::Other(s) => f.write_str(s),
        }
    }
}

impl FromStr for Codec {
    type Err = MediaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let invalid = || MediaError::Codecs(s.to_string());
        if s.is_empty() || s.contains(',') || s.contains(char::is_whitespace) {
            return Err(invalid());
        }
        if let Some(hex) = s.strip_prefix("avc1.").or_else(|| s.strip_prefix("avc3.")) {
            // avc3 (in-band parameter sets) is kept verbatim; we write avc1 only.
            if s.starts_with("avc3") {
                return Ok(Self::Other(s.to_string()));
            }
            // ASCII first: the bytes are sliced in pairs.
            if hex.len() != 6 || !hex.is_ascii() {
                return Err(invalid());
            }
            let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| invalid());
            return Ok(Self::Avc {
                profile: byte(0)?,
                constraints: byte(2)?,
                level: byte(4)?,
            });
        }
        if let Some((in_band, rest)) = s
            .strip_prefix("hvc1.")
            .map(|r| (false, r))
            .or_else(|| s.strip_prefix("hev1.").map(|r| (true, r)))
        {
            return parse_hevc(in_band, rest).ok_or_else(invalid);
        }
        if let Some(rest) = s.strip_prefix("mp4a.") {
            let (oti, aot) = rest.split_once('.').ok_or_else(invalid)?;
            return Ok(Self::Mp4a {
                object_type: u8::from_str_radix(oti, 16).map_err(|_| invalid())?,
                audio_object_type: aot.parse().map_err(|_| invalid())?,
            });
        }
        if s == "opus" {
            return Ok(Self::Opus);
        }
        Ok(Self::Other(s.to_string()))
    }
}

/// The part of an HEVC codecs string after `hvc1.` / `hev1.` (ISO/IEC 14496-15 Annex E.3).
fn parse_hevc(in_band: bool, rest: &str) -> Option<Codec> {
    let mut parts = rest.split('.');
    let profile = parts.next()?;
    let (profile_space, profile_idc) = match profile.as_bytes().first()? {
        b @ b'A'..=b'C' => (b - b'A' + 1, &profile[1..]),
        _ => (0, profile),
    };
    let compatibility = u32::from_str_radix(parts.next()?, 16).ok()?.reverse_bits();
    let tier_level = parts.next()?;
    let high_tier = match tier_level.as_bytes().first()? {
        b'L' => false,
        b'H' => true,
        _ => return None,
    };
    let mut constraints = [0u8; 6];
    for (i, byte) in parts.enumerate() {
        *constraints.get_mut(i)? = u8::from_str_radix(byte, 16).ok()?;
    }
    Some(Codec::Hevc {
        in_band,
        profile_space,
        profile_idc: profile_idc.parse().ok()?,
        compatibility,
        high_tier,
        level_idc: tier_level[1..].parse().ok()?,
        constraints,
    })
}

/// A comma-separated `codecs` list, as in HLS `CODECS` and DASH `@codecs`. Serialised as its
/// string form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Codecs(pub Vec<Codec>);

impl From<Codecs> for String {
    fn from(codecs: Codecs) -> Self {
        codecs.to_string()
    }
}

impl TryFrom<String> for Codecs {
    type Error = MediaError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl Codecs {
    /// A list of one codec.
    pub fn single(codec: Codec) -> Self {
        Self(vec![codec])
    }

    /// Whether any codec of the list carries video.
    pub fn has_video(&self) -> bool {
        self.0.iter().any(Codec::is_video)
    }

    /// The list joined with the codecs of `other` (a variant's video plus its audio group).
    pub fn joined(&self, other: &Codecs) -> Codecs {
        let mut all = self.0.clone();
        all.extend(other.0.iter().filter(|c| !self.0.contains(c)).cloned());
        Codecs(all)
    }
}

impl fmt::Display for Codecs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, codec) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            codec.fmt(f)?;
        }
        Ok(())
    }
}

impl FromStr for Codecs {
    type Err = MediaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(Codec::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Codecs)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let cases = [
            "avc1.42c01e",
            "avc1.64001f",
            "avc1.4d4028",
            "mp4a.40.2",
            "mp4a.40.5",
            "opus",
            "hvc1.1.6.L93.B0",
            "hev1.2.4.L120.90",
            "hvc1.A4.10.H153.B0.4",
            "hvc1.2.4.L153",
            "avc3.640028",
        ];
        for case in cases {
            let codec: Codec = case.parse().unwrap();
            assert_eq!(codec.to_string(), case, "round trip of {case}");
        }
        let list: Codecs = "avc1.64001f, mp4a.40.2".parse().unwrap();
        assert_eq!(list.to_string(), "avc1.64001f,mp4a.40.2");
        assert_eq!(list.to_string().parse::<Codecs>().unwrap(), list);
    }

    #[test]
    fn typed_values_from_strings() {
        assert_eq!(
            "avc1.42C01E".parse::<Codec>().unwrap(),
            Codec::Avc {
                profile: 0x42,
                constraints: 0xc0,
                level: 0x1e
            }
        );
        assert_eq!(
            "mp4a.40.2".parse::<Codec>().unwrap(),
            Codec::Mp4a {
                object_type: 0x40,
                audio_object_type: 2
            }
        );
    }

    #[test]
    fn hevc_is_typed_video() {
        let main = "hvc1.1.6.L93.B0".parse::<Codec>().unwrap();
        assert_eq!(
            main,
            Codec::Hevc {
                in_band: false,
                profile_space: 0,
                profile_idc: 1,
                compatibility: 0x6000_0000,
                high_tier: false,
                level_idc: 93,
                constraints: [0xb0, 0, 0, 0, 0, 0],
            }
        );
        assert!(main.is_video());
        let hvcc = mp4_atom::Hvcc {
            general_profile_idc: 2,
            general_profile_compatibility_flags: [0x20, 0, 0, 0],
            general_level_idc: 120,
            general_constraint_indicator_flags: [0x90, 0, 0, 0, 0, 0],
            ..mp4_atom::Hvcc::new()
        };
        assert_eq!(
            Codec::from_hvcc(&hvcc, false).to_string(),
            "hvc1.2.4.L120.90"
        );
        assert_eq!(
            Codec::from_hvcc(&hvcc, true).to_string(),
            "hev1.2.4.L120.90"
        );
        for bad in [
            "hvc1.1.6",
            "hvc1.1.6.X93",
            "hvc1.1.zz.L93",
            "hvc1.1.6.L93.1.2.3.4.5.6.7",
        ] {
            assert!(bad.parse::<Codec>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "avc1.64001",
            "avc1.zz001f",
            // Six bytes, not six characters: a slice in the middle of a 2-byte character.
            "avc1.1\u{e9}234",
            "mp4a.40",
            "mp4a.xx.2",
            "",
            "a b",
        ] {
            assert!(bad.parse::<Codec>().is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn from_sps_with_and_without_nal_header() {
        // SPS of a Constrained Baseline level 3.1 stream: 0x67 header, then 42 c0 1f.
        let sps = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01];
        let expected = "avc1.42c01f";
        assert_eq!(Codec::from_sps(&sps).unwrap().to_string(), expected);
        assert_eq!(Codec::from_sps(&sps[1..]).unwrap().to_string(), expected);
        assert!(Codec::from_sps(&[0x67, 0x42]).is_err());
    }

    #[test]
    fn from_audio_specific_config() {
        // AAC-LC 48 kHz stereo: 0x11 0x90.
        assert_eq!(
            Codec::from_audio_specific_config(&[0x11, 0x90])
                .unwrap()
                .to_string(),
            "mp4a.40.2"
        );
    }
}
