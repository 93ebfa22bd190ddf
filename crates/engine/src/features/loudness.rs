//! BS.1770-4 / EBU R128 loudness through the `ebur128` crate: integrated loudness with gating
//! blocks pooled over the segments, and short-term loudness every second for its variation.

use ebur128::{Channel, EbuR128, Mode};

pub struct Loudness {
    rate: u32,
    map: Vec<Channel>,
    /// One meter per segment, so no gating block straddles two excerpts.
    done: Vec<EbuR128>,
    current: Option<EbuR128>,
    /// Frames fed to the current meter, and when the next short-term reading is due.
    fed: u64,
    next_reading: u64,
    short_term: Vec<f64>,
    scratch: Vec<f32>,
}

impl Loudness {
    /// `lfe` is excluded; a mono file is measured as dual mono (it is heard on two speakers).
    pub fn new(rate: u32, channels: usize, lfe: Option<usize>) -> Loudness {
        let map = (0..channels.max(1))
            .map(|i| match (channels, i) {
                (1, _) => Channel::DualMono,
                _ if Some(i) == lfe => Channel::Unused,
                (_, 0) => Channel::Left,
                (_, 1) => Channel::Right,
                (_, 2) => Channel::Center,
                // Surround channels carry the +1.5 dB weight of BS.1770.
                _ => Channel::LeftSurround,
            })
            .collect();
        Loudness {
            rate,
            map,
            done: Vec::new(),
            current: None,
            fed: 0,
            next_reading: 0,
            short_term: Vec::new(),
            scratch: Vec::new(),
        }
    }

    pub fn begin_segment(&mut self) -> Result<(), String> {
        let mut m = EbuR128::new(self.map.len() as u32, self.rate, Mode::I | Mode::S)
            .map_err(|e| format!("loudness meter: {e:?}"))?;
        m.set_channel_map(&self.map)
            .map_err(|e| format!("loudness meter: {e:?}"))?;
        self.current = Some(m);
        self.fed = 0;
        self.next_reading = 3 * self.rate as u64;
        Ok(())
    }

    /// Adds interleaved samples. Short-term loudness is read at every whole second once 3 s
    /// have been fed: windows [0, 3), [1, 4), ... of the segment.
    pub fn push(&mut self, x: &[f32]) -> Result<(), String> {
        let ch = self.map.len();
        let Some(m) = self.current.as_mut() else {
            return Err("loudness meter used outside a segment".into());
        };
        let mut rest = x;
        while !rest.is_empty() {
            let frames = ((self.next_reading - self.fed) as usize).min(rest.len() / ch);
            if frames == 0 {
                break;
            }
            let (now, later) = rest.split_at(frames * ch);
            rest = later;
            // ebur128 rejects non-finite input; a decoder may emit it on a corrupt packet.
            let feed: &[f32] = if now.iter().all(|v| v.is_finite()) {
                now
            } else {
                self.scratch.clear();
                self.scratch
                    .extend(now.iter().map(|v| if v.is_finite() { *v } else { 0.0 }));
                &self.scratch
            };
            m.add_frames_f32(feed)
                .map_err(|e| format!("loudness meter: {e:?}"))?;
            self.fed += frames as u64;
            if self.fed == self.next_reading {
                let st = m
                    .loudness_shortterm()
                    .map_err(|e| format!("loudness meter: {e:?}"))?;
                self.short_term.push(st);
                self.next_reading += self.rate as u64;
            }
        }
        Ok(())
    }

    pub fn end_segment(&mut self) {
        if let Some(m) = self.current.take() {
            self.done.push(m);
        }
    }

    /// Integrated loudness over all segments, −70 when nothing passes the gate.
    pub fn integrated(&self) -> f64 {
        match EbuR128::loudness_global_multiple(self.done.iter()) {
            Ok(l) if l.is_finite() => l.clamp(-70.0, 0.0),
            _ => -70.0,
        }
    }

    /// Population std of the short-term values above −70 LUFS and within 20 LU of the
    /// integrated loudness (EBU Tech 3342 gating), clipped to [0, 20].
    pub fn variation(&self, integrated: f64) -> f64 {
        let kept = self
            .short_term
            .iter()
            .copied()
            .filter(|&v| v.is_finite() && v > -70.0 && v >= integrated - 20.0);
        if kept.clone().count() < 2 {
            return 0.0;
        }
        super::native::pop_std(kept).clamp(0.0, 20.0)
    }
}
