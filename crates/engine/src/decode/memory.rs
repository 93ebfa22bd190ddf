//! Audio already in memory, as an `AudioSource`: for tests and for callers that decode
//! themselves.

use super::{Access, AudioSource, Failure, StreamInfo};

/// Interleaved samples held in memory, handed out in chunks like a decoder would.
pub struct MemorySource {
    info: StreamInfo,
    samples: Vec<f32>,
    pos: usize,
}

impl MemorySource {
    /// `samples` are interleaved, `channels` per frame.
    pub fn new(samples: Vec<f32>, sample_rate: u32, channels: usize) -> MemorySource {
        let frames = samples.len() / channels.max(1);
        MemorySource {
            info: StreamInfo {
                sample_rate,
                channels,
                bits_per_sample: Some(32),
                format: "memory".into(),
                codec: "pcm_f32".into(),
                total_frames: Some(frames as u64),
                lfe: None,
                decoder: "memory",
            },
            samples,
            pos: 0,
        }
    }
}

impl AudioSource for MemorySource {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn seek(&mut self, frame: u64) -> Result<Access, Failure> {
        self.pos = (frame as usize * self.info.channels).min(self.samples.len());
        Ok(Access::Seek)
    }

    fn next_chunk(&mut self) -> Result<Option<&[f32]>, Failure> {
        // Odd-sized chunks, as decoders produce, exercise the streaming code paths.
        let n = (4093 * self.info.channels).min(self.samples.len() - self.pos);
        if n == 0 {
            return Ok(None);
        }
        let chunk = &self.samples[self.pos..self.pos + n];
        self.pos += n;
        Ok(Some(chunk))
    }

    fn skipped_packets(&self) -> u32 {
        0
    }

    fn ended_early(&self) -> bool {
        false
    }
}
