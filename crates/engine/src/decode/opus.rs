//! An Opus decoder for symphonia, on the pure-Rust `opus-pure` crate.
//!
//! symphonia 0.6 demuxes Ogg Opus (its Ogg reader parses the `OpusHead`, times the packets and
//! seeks) but has no Opus decoder. Without one, every Opus file went through an ffmpeg
//! subprocess: an `ffprobe` and an `ffmpeg` spawn per file, one more per excerpt seek. This
//! adapter makes Opus decode in process with nothing but cargo to build it (no cmake, no system
//! libopus). `opus-pure` decodes to within 4e-7 of libopus's float output on our corpus.
//!
//! What the adapter does not do, and who does it instead:
//! - The pre-skip (the encoder's delay, `OpusHead`) is not trimmed here but by
//!   [`super::symphonia::SymphoniaSource`], as a decoded-timeline offset like MP4 priming, so
//!   that the declared length, seeking and the excerpt plan all count presented samples.
//! - Streams with a channel mapping family other than 0 (surround, ambisonics) are refused as
//!   unsupported: `opus-pure`'s multistream decoder assumes its own encoder's stream layout rather
//!   than the header's mapping table, and its channel order is Vorbis's, not symphonia's. Those
//!   files fall back to ffmpeg.
//!
//! The header's output gain is applied, as RFC 7845 §5.1 asks of a player and as ffmpeg does.

use symphonia::core::audio::{
    layouts, AsGenericAudioBufferRef, AudioBuffer, AudioMut, AudioSpec, GenericAudioBufferRef,
};
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{
    AudioCodecParameters, AudioDecoder, AudioDecoderOptions, FinalizeResult,
};
use symphonia::core::codecs::registry::{RegisterableAudioDecoder, SupportedAudioCodec};
use symphonia::core::codecs::CodecInfo;
use symphonia::core::errors::{decode_error, unsupported_error, Error as SymError, Result};
use symphonia::core::packet::PacketRef;

/// Opus always decodes at 48 kHz here: the rate every Opus stream is timed in (granule positions,
/// pre-skip), whatever the encoder's input was.
const RATE: u32 = 48_000;

/// The longest packet Opus allows: 120 ms at 48 kHz.
const MAX_FRAMES: usize = opus_pure::MAX_PACKET_SAMPLES;

/// The fields of an `OpusHead` packet (RFC 7845 §5.1) this decoder needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusHead {
    pub channels: u8,
    pub pre_skip: u16,
    /// Q7.8 dB.
    pub output_gain: i16,
    pub mapping_family: u8,
}

impl OpusHead {
    pub fn parse(buf: &[u8]) -> Option<OpusHead> {
        if buf.len() < 19 || &buf[..8] != b"OpusHead" {
            return None;
        }
        // Versions 0-15 share this layout (RFC 7845: a decoder must accept them).
        if buf[8] > 15 {
            return None;
        }
        Some(OpusHead {
            channels: buf[9],
            pre_skip: u16::from_le_bytes([buf[10], buf[11]]),
            output_gain: i16::from_le_bytes([buf[16], buf[17]]),
            mapping_family: buf[18],
        })
    }
}

pub struct OpusDecoder {
    params: AudioCodecParameters,
    decoder: opus_pure::OpusDecoder,
    channels: usize,
    /// The header's output gain (Q7.8 dB), applied by the decoder.
    gain_q8: i32,
    /// False once a reset could neither reset nor replace the decoder.
    fresh: bool,
    /// One packet's interleaved samples, as `opus-pure` writes them.
    pcm: Vec<f32>,
    buf: AudioBuffer<f32>,
}

impl OpusDecoder {
    fn try_new(params: &AudioCodecParameters) -> Result<Self> {
        let Some(head) = params.extra_data.as_deref().and_then(OpusHead::parse) else {
            return decode_error("opus: no valid OpusHead");
        };
        if head.mapping_family != 0 {
            return unsupported_error("opus: channel mapping family other than 0 (surround)");
        }
        let layout = match head.channels {
            1 => layouts::CHANNEL_LAYOUT_MONO,
            2 => layouts::CHANNEL_LAYOUT_STEREO,
            _ => return decode_error("opus: mapping family 0 with neither 1 nor 2 channels"),
        };
        let channels = usize::from(head.channels);
        let mut decoder = opus_pure::OpusDecoder::new(RATE as i32, channels)
            .map_err(|_| SymError::DecodeError("opus: cannot create the decoder"))?;
        let gain_q8 = i32::from(head.output_gain);
        decoder.gain_q8 = gain_q8;
        Ok(OpusDecoder {
            params: params.clone(),
            decoder,
            channels,
            gain_q8,
            fresh: true,
            pcm: vec![0.0; MAX_FRAMES * channels],
            buf: AudioBuffer::new(AudioSpec::new(RATE, layout), MAX_FRAMES),
        })
    }
}

impl AudioDecoder for OpusDecoder {
    fn reset(&mut self) {
        // After a seek. A reset that fails is answered with a new decoder; if even that cannot
        // be made, the next packet fails rather than decoding on from a stale state.
        if self.decoder.reset_state().is_err() {
            self.fresh = opus_pure::OpusDecoder::new(RATE as i32, self.channels)
                .map(|mut d| {
                    d.gain_q8 = self.gain_q8;
                    self.decoder = d;
                })
                .is_ok();
        }
    }

    fn codec_info(&self) -> &CodecInfo {
        &Self::supported_codecs()[0].info
    }

    fn codec_params(&self) -> &AudioCodecParameters {
        &self.params
    }

    fn decode_ref(&mut self, packet: &PacketRef<'_>) -> Result<GenericAudioBufferRef<'_>> {
        self.buf.clear();
        if !self.fresh {
            return decode_error("opus: the decoder could not be reset after a seek");
        }
        // An empty packet would ask for packet-loss concealment: an Ogg stream has none.
        if packet.data.is_empty() {
            return decode_error("opus: empty packet");
        }
        let frames = self
            .decoder
            .decode(packet.data, MAX_FRAMES, &mut self.pcm)
            .map_err(|_| SymError::DecodeError("opus: invalid packet"))?;
        let frames = frames.min(MAX_FRAMES);
        self.buf.render_uninit(Some(frames));
        self.buf
            .copy_from_slice_interleaved(&&self.pcm[..frames * self.channels]);
        // The Ogg reader's trims (the padding on the last page, against its final granule).
        self.buf.trim(
            packet.trim_start.get() as usize,
            packet.trim_end.get() as usize,
        );
        Ok(self.buf.as_generic_audio_buffer_ref())
    }

    fn finalize(&mut self) -> FinalizeResult {
        FinalizeResult::default()
    }

    fn last_decoded(&self) -> GenericAudioBufferRef<'_> {
        self.buf.as_generic_audio_buffer_ref()
    }
}

impl RegisterableAudioDecoder for OpusDecoder {
    fn try_registry_new(
        params: &AudioCodecParameters,
        _opts: &AudioDecoderOptions,
    ) -> Result<Box<dyn AudioDecoder>> {
        Ok(Box::new(OpusDecoder::try_new(params)?))
    }

    fn supported_codecs() -> &'static [SupportedAudioCodec] {
        // What `symphonia_core::support_audio_codec!` expands to, which names `symphonia_core`
        // (not a dependency here: it comes through `symphonia`).
        &[SupportedAudioCodec {
            id: CODEC_ID_OPUS,
            info: CodecInfo {
                short_name: "opus",
                long_name: "Opus",
                profiles: &[],
            },
        }]
    }
}
