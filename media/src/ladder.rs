//! Bitrate ladders: which renditions the sample is encoded at.

use std::fmt;
use std::str::FromStr;

use crate::MediaError;

/// One rung: a target bit rate at a resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    pub kbps: u32,
    pub width: u32,
    pub height: u32,
}

impl Rung {
    /// The rendition id (and folder name) of this rung, e.g. `720p-2850k`.
    pub fn id(&self) -> String {
        format!("{}p-{}k", self.height, self.kbps)
    }

    /// A sensible 16:9 resolution for a bit rate, following common ladders (Apple's HLS
    /// authoring guide, the classic ABR-research ladder).
    pub fn for_kbps(kbps: u32) -> Self {
        let (width, height) = match kbps {
            0..=400 => (480, 270),
            401..=900 => (640, 360),
            901..=1500 => (848, 480),
            1501..=2300 => (960, 540),
            2301..=3600 => (1280, 720),
            _ => (1920, 1080),
        };
        Self {
            kbps,
            width,
            height,
        }
    }
}

/// A ladder of rungs, lowest bit rate first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder {
    pub name: String,
    pub rungs: Vec<Rung>,
}

impl Ladder {
    /// The classic six-rung ladder of ABR research: 300 … 4300 kbit/s, up to 1080p.
    pub fn default_ladder() -> Self {
        Self {
            name: "default".into(),
            rungs: [300, 750, 1200, 1850, 2850, 4300]
                .into_iter()
                .map(Rung::for_kbps)
                .collect(),
        }
    }

    /// Three rungs up to 720p, for tests.
    pub fn small() -> Self {
        Self {
            name: "small".into(),
            rungs: vec![
                Rung::for_kbps(300),
                Rung::for_kbps(750),
                Rung {
                    kbps: 1850,
                    width: 1280,
                    height: 720,
                },
            ],
        }
    }

    /// Default duration of a sample made with this ladder, seconds: the small ladder is for
    /// tests and stays short.
    pub fn default_duration(&self) -> f64 {
        if self.name == "small" { 8.0 } else { 60.0 }
    }
}

impl FromStr for Ladder {
    type Err = MediaError;

    /// `default`, `small`, or a list `300,750@640x360,1200` (kbit/s, optional `@WxH`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "default" => return Ok(Self::default_ladder()),
            "small" => return Ok(Self::small()),
            _ => {}
        }
        let bad = |why: &str| MediaError::Ladder(format!("{s:?}: {why}"));
        let mut rungs = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (kbps, size) = match item.split_once('@') {
                Some((k, size)) => (k, Some(size)),
                None => (item, None),
            };
            let kbps: u32 = kbps
                .trim_end_matches('k')
                .parse()
                .map_err(|_| bad("bit rates are whole kbit/s"))?;
            if !(50..=50_000).contains(&kbps) {
                return Err(bad("bit rates must be 50..=50000 kbit/s"));
            }
            let rung = match size {
                None => Rung::for_kbps(kbps),
                Some(size) => {
                    let (w, h) = size
                        .split_once('x')
                        .ok_or_else(|| bad("resolution is WIDTHxHEIGHT"))?;
                    let width: u32 = w.parse().map_err(|_| bad("bad width"))?;
                    let height: u32 = h.parse().map_err(|_| bad("bad height"))?;
                    if width < 16 || height < 16 || width > 3840 || height > 2160 {
                        return Err(bad("resolution must be 16x16..=3840x2160"));
                    }
                    if !width.is_multiple_of(2) || !height.is_multiple_of(2) {
                        return Err(bad("4:2:0 needs even width and height"));
                    }
                    Rung {
                        kbps,
                        width,
                        height,
                    }
                }
            };
            rungs.push(rung);
        }
        if rungs.is_empty() {
            return Err(bad("no rungs"));
        }
        rungs.sort_by_key(|r| r.kbps);
        if rungs.windows(2).any(|w| w[0].id() == w[1].id()) {
            return Err(bad("two rungs share a bit rate and height"));
        }
        Ok(Self {
            name: "custom".into(),
            rungs,
        })
    }
}

impl fmt::Display for Ladder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.rungs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}@{}x{}", r.kbps, r.width, r.height)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn named_ladders() {
        let d: Ladder = "default".parse().unwrap();
        let kbps: Vec<u32> = d.rungs.iter().map(|r| r.kbps).collect();
        assert_eq!(kbps, [300, 750, 1200, 1850, 2850, 4300]);
        assert_eq!(d.rungs.last().unwrap().height, 1080);
        let s: Ladder = "small".parse().unwrap();
        assert_eq!(s.rungs.len(), 3);
        assert!(s.rungs.iter().all(|r| r.height <= 720));
    }

    #[test]
    fn lists_round_trip_and_sort() {
        let l: Ladder = "1200, 300@320x180".parse().unwrap();
        assert_eq!(l.to_string(), "300@320x180,1200@848x480");
        assert_eq!(l.to_string().parse::<Ladder>().unwrap().rungs, l.rungs);
    }

    #[test]
    fn rejects_bad_lists() {
        for bad in ["", "abc", "300@12x", "300@321x180", "10", "300,300"] {
            assert!(bad.parse::<Ladder>().is_err(), "{bad:?}");
        }
    }
}
