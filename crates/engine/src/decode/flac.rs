//! A FLAC frame decoder for symphonia, hand-written for speed.
//!
//! Why: FLAC decoding was 27 % of the CPU of a full-mode analysis of a 4-minute 44.1 kHz 16-bit
//! stereo FLAC (`perf`: symphonia's `decode_rice_partition` 14.6 %, `lpc_predict` 9.9 %), 0.159
//! CPU-s for its 240 s of audio (`sonoprint bench --full --jobs 1`); `claxon` 0.4.3 was slower
//! still (0.22 s). On that file's packets this decoder takes 87-90 ms where symphonia's takes
//! 118-123 ms (`examples/flac_speed.rs`, decoding alone, best of 10, 3 Dec 2026): 1.3-1.4x.
//! The whole decoding stage of `sonoprint bench --full --jobs 1` on the file (demuxing and the
//! conversion to `f32` included, which this does not change) went from 0.155-0.156 to
//! 0.115-0.123 CPU-s (three runs each, alternating).
//!
//! How:
//! - the bits come from a 64-bit cache refilled eight bytes at a time, once per group of Rice
//!   codes that will almost always fit in it, rather than on a test before each code (a branch
//!   on the data, mispredicted every few codes);
//! - a Rice code is read with one `leading_zeros` and shifts; with BMI2 and LZCNT when the
//!   processor has them (runtime detection);
//! - each sample is restored (LPC or fixed predictor) as soon as its residual is read, in the
//!   same loop: the Rice decoding and the prediction are two independent chains of dependent
//!   instructions, which the processor then overlaps;
//! - the LPC filter is specialised by order (const generics, orders 1 to 32) and keeps the newest
//!   sample in a register (reloading the sample just stored would put a store-to-load forwarding
//!   on the critical path). Its products are 64-bit: on x86-64 a scalar 64-bit multiply costs
//!   what a 32-bit one does, and the result is exact for any input. (A 32-bit path where it
//!   provably cannot overflow, as libFLAC has, gains nothing in scalar code, and the side channel
//!   of ffmpeg's files, coefficients of 15 bits, fails the bound anyway.) Orders 5 to 32 (ffmpeg's
//!   default is 8, `flac -8` uses 12), when the processor has SSE4.1, take the products of all
//!   but the four newest samples in `pmuldq` on vectors of them that shift along sample by
//!   sample ([`LpcSse`]): fewer instructions and no loads, the same 64-bit sums (flac_speed
//!   0.90x on order 8, 0.76x on order 12, 0.70x on order 32).
//!
//! Only the decoder is ours: symphonia's FLAC demuxer still finds the frames (one packet per
//! frame, CRC-checked), times them and seeks. The output is identical, sample for sample, to
//! symphonia's own FLAC decoder (an `AudioBuffer<i32>` with the samples shifted to the top of the
//! 32 bits, the `AudioSpec` and codec parameters taken from STREAMINFO, planes in FLAC's channel
//! order, the same checks of the frame header), which is kept as the test oracle
//! (`tests/flac_decoder.rs` on files made with ffmpeg at many settings, and
//! `examples/flac_oracle.rs` on a folder of FLAC files).
//!
//! Differences from symphonia's decoder, all on broken input or beyond what it can decode:
//! - the frame's CRC-16 is checked (as libFLAC does), and the subframes may not read into it;
//! - a packet without a frame header, or cut short, is a decode error (a skipped packet) where
//!   symphonia may return an end-of-stream I/O error (which ends the stream);
//! - a subframe of 33 bits (the side channel of a 32-bit stream) decodes correctly here, in
//!   64-bit arithmetic, where symphonia's decoder produces garbage.

use symphonia::core::audio::{
    AsGenericAudioBufferRef, AudioBuffer, AudioMut, AudioSpec, Channels, Position,
};
use symphonia::core::checksum::{Crc16Ansi, Crc8Ccitt};
use symphonia::core::codecs::audio::well_known::CODEC_ID_FLAC;
use symphonia::core::codecs::audio::{
    AudioCodecParameters, AudioDecoder, AudioDecoderOptions, VerificationCheck,
};
use symphonia::core::codecs::registry::{RegisterableAudioDecoder, SupportedAudioCodec};
use symphonia::core::codecs::CodecInfo;
use symphonia::core::errors::{decode_error, unsupported_error, Error as SymError, Result};
use symphonia::core::io::Monitor;

/// STREAMINFO, as symphonia's decoder reads and validates it.
struct StreamInfo {
    block_len_max: u16,
    sample_rate: u32,
    channels: Channels,
    bits_per_sample: u32,
    md5: Option<[u8; 16]>,
}

impl StreamInfo {
    fn parse(buf: &[u8]) -> Result<StreamInfo> {
        let Some(b) = buf.first_chunk::<34>() else {
            return decode_error("flac: stream information block is too short");
        };
        let block_len_min = u16::from_be_bytes([b[0], b[1]]);
        let block_len_max = u16::from_be_bytes([b[2], b[3]]);
        if block_len_min < 16 || block_len_max < 16 {
            return decode_error("flac: minimum block length is 16 samples");
        }
        if block_len_max < block_len_min {
            return decode_error(
                "flac: maximum block length is less than the minimum block length",
            );
        }
        let frame_min = u32::from_be_bytes([0, b[4], b[5], b[6]]);
        let frame_max = u32::from_be_bytes([0, b[7], b[8], b[9]]);
        if frame_min > 0 && frame_max > 0 && frame_max < frame_min {
            return decode_error(
                "flac: maximum frame length is less than the minimum frame length",
            );
        }
        let packed = u64::from_be_bytes([b[10], b[11], b[12], b[13], b[14], b[15], b[16], b[17]]);
        let sample_rate = (packed >> 44) as u32;
        if !(1..=655_350).contains(&sample_rate) {
            return decode_error("flac: stream sample rate out of bounds");
        }
        let channels = ((packed >> 41) & 0x7) as u32 + 1;
        let bits_per_sample = ((packed >> 36) & 0x1f) as u32 + 1;
        if !(4..=32).contains(&bits_per_sample) {
            return decode_error("flac: stream bits per sample are out of bounds");
        }
        let mut md5 = [0u8; 16];
        md5.copy_from_slice(&b[18..34]);
        Ok(StreamInfo {
            block_len_max,
            sample_rate,
            channels: flac_channels(channels),
            bits_per_sample,
            md5: (md5 != [0; 16]).then_some(md5),
        })
    }
}

/// FLAC's channel order for 1 to 8 channels, as symphonia maps it.
fn flac_channels(n: u32) -> Channels {
    let fl = Position::FRONT_LEFT;
    let fr = Position::FRONT_RIGHT;
    let fc = Position::FRONT_CENTER;
    let lfe = Position::LFE1;
    let (rl, rr) = (Position::REAR_LEFT, Position::REAR_RIGHT);
    let (sl, sr) = (Position::SIDE_LEFT, Position::SIDE_RIGHT);
    let positions = match n {
        1 => fl,
        2 => fl | fr,
        3 => fl | fr | fc,
        4 => fl | fr | rl | rr,
        5 => fl | fr | fc | rl | rr,
        6 => fl | fr | fc | lfe | rl | rr,
        7 => fl | fr | fc | lfe | Position::REAR_CENTER | sl | sr,
        _ => fl | fr | fc | lfe | rl | rr | sl | sr,
    };
    Channels::Positioned(positions)
}

// ---------------------------------------------------------------------------------------------
// Checksums: symphonia's (CRC-8 and CRC-16 as FLAC defines them; its CRC-16 slices by 8, as
// fast as slicing by 16 here: 20 MB in 10-12 ms either way).

fn crc8(data: &[u8]) -> u8 {
    let mut c = Crc8Ccitt::new(0);
    c.process_buf_bytes(data);
    c.crc()
}

fn crc16(data: &[u8]) -> u16 {
    let mut c = Crc16Ansi::new(0);
    c.process_buf_bytes(data);
    c.crc()
}

// ---------------------------------------------------------------------------------------------
// Frame header

enum Assignment {
    Independent(usize),
    LeftSide,
    RightSide,
    MidSide,
}

struct Header {
    block_len: usize,
    bits_per_sample: Option<u32>,
    assignment: Assignment,
    /// Length of the header in bytes, CRC-8 included.
    len: usize,
}

/// A byte cursor over the frame header.
struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bytes<'_> {
    fn u8(&mut self) -> Result<u8> {
        let b = self.data.get(self.pos).copied();
        self.pos += 1;
        b.ok_or(SymError::DecodeError("flac: frame header is cut short"))
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    /// FLAC's extended UTF-8 coded number (up to 7 bytes, 36 bits), `None` when the first byte is
    /// no valid start; continuation bytes are not checked, as symphonia does not.
    fn utf8(&mut self) -> Result<Option<u64>> {
        let first = self.u8()?;
        let mask: u8 = match first {
            0x00..=0x7f => return Ok(Some(u64::from(first))),
            0xc0..=0xdf => 0x1f,
            0xe0..=0xef => 0x0f,
            0xf0..=0xf7 => 0x07,
            0xf8..=0xfb => 0x03,
            0xfc..=0xfd => 0x01,
            0xfe => 0x00,
            _ => return Ok(None),
        };
        let mut v = u64::from(first & mask);
        for _ in 2..mask.leading_zeros() {
            v = (v << 6) | u64::from(self.u8()? & 0x3f);
        }
        Ok(Some(v))
    }
}

/// Parses the frame header at the start of `frame` (which begins with the sync code), with the
/// checks symphonia makes.
fn read_header(frame: &[u8]) -> Result<Header> {
    let mut r = Bytes {
        data: frame,
        pos: 0,
    };
    let sync = r.u16()?;
    let desc = r.u16()?;
    let block_code = desc >> 12;
    let rate_code = (desc >> 8) & 0xf;
    let channel_code = (desc >> 4) & 0xf;
    let bps_code = (desc >> 1) & 0x7;
    if desc & 1 == 1 {
        return decode_error("flac: frame header reserved bit is not set to mandatory value");
    }
    if sync & 1 == 0 {
        match r.utf8()? {
            Some(n) if n <= 0x7fff_ffff => {}
            Some(_) => return decode_error("flac: frame sequence number exceeds 31-bits"),
            None => return decode_error("flac: frame sequence number is not valid"),
        }
    } else {
        match r.utf8()? {
            Some(n) if n <= 0x000f_ffff_ffff => {}
            Some(_) => return decode_error("flac: sample sequence number exceeds 36-bits"),
            None => return decode_error("flac: sample sequence number is not valid"),
        }
    }
    let block_len = match block_code {
        0x1 => 192,
        0x2..=0x5 => 576 << (block_code - 2),
        0x6 => usize::from(r.u8()?) + 1,
        0x7 => {
            let n = r.u16()?;
            if n == 0xffff {
                return decode_error("flac: block size not allowed to be greater than 65535");
            }
            usize::from(n) + 1
        }
        0x8..=0xf => 256 << (block_code - 8),
        _ => return decode_error("flac: block size set to reserved value"),
    };
    let rate = match rate_code {
        0x0..=0xb => None,
        0xc => Some(u32::from(r.u8()?) * 1000),
        0xd => Some(u32::from(r.u16()?)),
        0xe => Some(u32::from(r.u16()?) * 10),
        _ => return decode_error("flac: sample rate set to reserved value"),
    };
    if rate.is_some_and(|r| !(1..=655_350).contains(&r)) {
        return decode_error("flac: sample rate out of bounds");
    }
    let bits_per_sample = match bps_code {
        0x0 => None,
        0x1 => Some(8),
        0x2 => Some(12),
        0x4 => Some(16),
        0x5 => Some(20),
        0x6 => Some(24),
        0x7 => Some(32),
        _ => return decode_error("flac: bits per sample set to reserved value"),
    };
    let assignment = match channel_code {
        0x0..=0x7 => Assignment::Independent(usize::from(channel_code) + 1),
        0x8 => Assignment::LeftSide,
        0x9 => Assignment::RightSide,
        0xa => Assignment::MidSide,
        _ => return decode_error("flac: channel assignment set to reserved value"),
    };
    let covered = frame.get(..r.pos).unwrap_or_default();
    let computed = crc8(covered);
    if r.u8()? != computed {
        return decode_error("flac: computed frame header CRC does not match expected CRC");
    }
    Ok(Header {
        block_len,
        bits_per_sample,
        assignment,
        len: r.pos,
    })
}

// ---------------------------------------------------------------------------------------------
// Bit reader

const CUT_SHORT: SymError = SymError::DecodeError("flac: frame is cut short");

/// Reads bits most significant first from a byte slice. `cache` holds the next bits at its top;
/// `n` of them are valid (the bits below are the stream's next bits too, or zeros). `pos` is the
/// byte after those `n` bits. Reading past the end yields zeros; [`Bits::check`] tells whether
/// that happened.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    cache: u64,
    n: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        let mut b = Bits {
            data,
            pos: 0,
            cache: 0,
            n: 0,
        };
        b.refill();
        b
    }

    /// Tops the cache up to at least 56 valid bits.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(word) = self.data.get(self.pos..).and_then(<[u8]>::first_chunk::<8>) {
            self.cache |= u64::from_be_bytes(*word) >> self.n;
            self.pos += ((63 - self.n) >> 3) as usize;
            self.n |= 56;
        } else {
            self.refill_slow();
        }
    }

    #[cold]
    #[inline(never)]
    fn refill_slow(&mut self) {
        // To 56..=63 bits, as the fast path: never 64, so that a shift by `n` stays valid.
        while self.n < 56 {
            let byte = self.data.get(self.pos).copied().unwrap_or(0);
            self.cache |= u64::from(byte) << (56 - self.n);
            self.pos += 1;
            self.n += 8;
        }
    }

    /// Bits read so far.
    #[inline(always)]
    fn consumed(&self) -> u64 {
        self.pos as u64 * 8 - u64::from(self.n)
    }

    /// An error if more bits were read than the slice holds.
    #[inline(always)]
    fn check(&self) -> Result<()> {
        if self.consumed() > self.data.len() as u64 * 8 {
            Err(CUT_SHORT)
        } else {
            Ok(())
        }
    }

    /// Reads `k` bits, `k` <= 32.
    #[inline(always)]
    fn bits(&mut self, k: u32) -> u32 {
        if self.n < 32 {
            self.refill();
        }
        // Two shifts so that `k == 0` shifts by no more than 63.
        let v = ((self.cache >> 1) >> (63 - k)) as u32;
        self.cache <<= k;
        self.n -= k;
        v
    }

    /// Reads `k` bits, `k` <= 32, as a two's complement number.
    #[inline(always)]
    fn signed(&mut self, k: u32) -> i32 {
        sign_extend(self.bits(k), k)
    }

    /// Counts zeros up to the next one bit, and consumes them and the one. Fails past the end.
    fn unary(&mut self) -> Result<u32> {
        let mut count = 0u32;
        loop {
            if self.n < 32 {
                self.refill();
            }
            let z = self.cache.leading_zeros();
            if z < self.n {
                self.cache = (self.cache << z) << 1;
                self.n -= z + 1;
                return Ok(count.wrapping_add(z));
            }
            count = count.wrapping_add(self.n);
            self.cache = 0;
            self.n = 0;
            self.check()?;
        }
    }
}

/// symphonia's `sign_extend_leq32_to_i32` (a width of 0 gives 0).
#[inline(always)]
fn sign_extend(v: u32, width: u32) -> i32 {
    (v.wrapping_shl(32u32.wrapping_sub(width)) as i32).wrapping_shr(32u32.wrapping_sub(width))
}

// ---------------------------------------------------------------------------------------------
// Subframes

/// The decoder.
pub struct FlacDecoder {
    params: AudioCodecParameters,
    stream_bps: u32,
    buf: AudioBuffer<i32>,
    /// A 33-bit side channel (32-bit stream), decoded in 64 bits.
    wide: Vec<i64>,
    /// Whether the frame's CRC-16 is checked here (see [`FlacDecoder::try_new_for_flac_reader`]).
    check_crc: bool,
}

impl FlacDecoder {
    pub fn try_new(params: &AudioCodecParameters, _opts: &AudioDecoderOptions) -> Result<Self> {
        if params.codec != CODEC_ID_FLAC {
            return unsupported_error("flac: invalid codec");
        }
        let Some(extra) = params.extra_data.as_deref() else {
            return unsupported_error("flac: missing extra data");
        };
        let info = StreamInfo::parse(extra)?;
        let mut params = params.clone();
        params
            .with_sample_rate(info.sample_rate)
            .with_bits_per_sample(info.bits_per_sample)
            .with_max_frames_per_packet(u64::from(info.block_len_max))
            .with_channels(info.channels.clone());
        if let Some(md5) = info.md5 {
            params.with_verification_code(VerificationCheck::Md5(md5));
        }
        let spec = AudioSpec::new(info.sample_rate, info.channels);
        Ok(FlacDecoder {
            params,
            stream_bps: info.bits_per_sample,
            buf: AudioBuffer::new(spec, usize::from(info.block_len_max)),
            wide: Vec::new(),
            check_crc: true,
        })
    }

    /// A decoder for the packets of symphonia's own FLAC demuxer (`FlacReader`, the format
    /// `FORMAT_ID_FLAC`) alone, which does not check the frame's CRC-16 a second time: that
    /// demuxer emits a packet only once the CRC-16 of its bytes up to the footer matches the
    /// footer (`PacketBuilder::try_build` in symphonia-bundle-flac 0.6's `parser.rs`: a fragment
    /// whose CRC matches, or fragments merged until their running CRC matches), and every packet
    /// starts at the frame's sync code, which is where the CRC starts here too (the check is
    /// still made when the frame does not start the packet). The CRC-16 was 12-15 % of this
    /// decoder's time. Packets from any other demuxer (Ogg, Matroska, MP4 do not check the
    /// CRC) must go through [`FlacDecoder::try_new`], as the codec registry does.
    pub fn try_new_for_flac_reader(params: &AudioCodecParameters) -> Result<Self> {
        let mut d = Self::try_new(params, &AudioDecoderOptions::default())?;
        d.check_crc = false;
        Ok(d)
    }

    fn decode_inner(&mut self, data: &[u8]) -> Result<()> {
        // The frame starts at the first sync code (symphonia scans for it the same way).
        let Some(start) = data
            .windows(2)
            .position(|w| w[0] == 0xff && w[1] & 0xfc == 0xf8)
        else {
            return decode_error("flac: no frame header in the packet");
        };
        let frame = data.get(start..).unwrap_or_default();
        let Some((body, footer)) = frame.split_last_chunk::<2>() else {
            return Err(CUT_SHORT);
        };
        let header = read_header(frame)?;
        if (self.check_crc || start != 0) && crc16(body) != u16::from_be_bytes(*footer) {
            return decode_error("flac: frame CRC does not match");
        }
        let bps = header.bits_per_sample.unwrap_or(self.stream_bps);
        if bps > 32 {
            return decode_error("flac: invalid bit width");
        }
        let n = header.block_len;
        if n > self.buf.capacity() {
            return decode_error("flac: allocation would overflow buffer");
        }
        let Some(subframes) = body.get(header.len..) else {
            return Err(CUT_SHORT);
        };
        self.buf.clear();
        self.buf.render_uninit(Some(n));
        let mut bits = Bits::new(subframes);
        let bad = || SymError::DecodeError("flac: unexpected channel assignment");
        match header.assignment {
            Assignment::Independent(channels) => {
                for i in 0..channels {
                    let plane = self.buf.plane_mut(i).ok_or_else(bad)?;
                    read_subframe(&mut bits, bps, plane)?;
                }
            }
            Assignment::LeftSide => {
                let (left, right) = self.buf.plane_pair_mut(0, 1).ok_or_else(bad)?;
                read_subframe(&mut bits, bps, left)?;
                if bps < 32 {
                    read_subframe(&mut bits, bps + 1, right)?;
                    for (r, &l) in right.iter_mut().zip(left.iter()) {
                        *r = l.wrapping_sub(*r);
                    }
                } else {
                    read_wide(&mut bits, &mut self.wide, right.len())?;
                    for ((r, &l), &s) in right.iter_mut().zip(left.iter()).zip(&self.wide) {
                        *r = (i64::from(l) - s) as i32;
                    }
                }
            }
            Assignment::RightSide => {
                let (left, right) = self.buf.plane_pair_mut(0, 1).ok_or_else(bad)?;
                if bps < 32 {
                    read_subframe(&mut bits, bps + 1, left)?;
                    read_subframe(&mut bits, bps, right)?;
                    for (l, &r) in left.iter_mut().zip(right.iter()) {
                        *l = l.wrapping_add(r);
                    }
                } else {
                    read_wide(&mut bits, &mut self.wide, left.len())?;
                    read_subframe(&mut bits, bps, right)?;
                    for ((l, &r), &s) in left.iter_mut().zip(right.iter()).zip(&self.wide) {
                        *l = (i64::from(r) + s) as i32;
                    }
                }
            }
            Assignment::MidSide => {
                let (left, right) = self.buf.plane_pair_mut(0, 1).ok_or_else(bad)?;
                read_subframe(&mut bits, bps, left)?;
                if bps < 32 {
                    read_subframe(&mut bits, bps + 1, right)?;
                    for (m, s) in left.iter_mut().zip(right.iter_mut()) {
                        let mid = m.wrapping_shl(1) | (*s & 1);
                        let side = *s;
                        *m = mid.wrapping_add(side) >> 1;
                        *s = mid.wrapping_sub(side) >> 1;
                    }
                } else {
                    read_wide(&mut bits, &mut self.wide, left.len())?;
                    for ((m, r), &side) in left.iter_mut().zip(right.iter_mut()).zip(&self.wide) {
                        let mid = (i64::from(*m) << 1) | (side & 1);
                        *m = ((mid + side) >> 1) as i32;
                        *r = ((mid - side) >> 1) as i32;
                    }
                }
            }
        }
        bits.check()?;
        if bps < 32 {
            let shift = 32 - bps;
            self.buf.apply(|s| s.wrapping_shl(shift));
        }
        Ok(())
    }
}

/// A subframe's header: its type bits and its wasted bits per sample (at most `frame_bps`).
#[inline(always)]
fn subframe_head(bits: &mut Bits<'_>, frame_bps: u32) -> Result<(u32, u32)> {
    let head = bits.bits(8);
    if head & 0x80 != 0 {
        return decode_error("flac: subframe padding is not 0");
    }
    let wasted = if head & 1 == 1 {
        bits.unary()?.wrapping_add(1)
    } else {
        0
    };
    if wasted > frame_bps {
        return decode_error(
            "flac: dropped bits per sample is greater than the frame bits per sample",
        );
    }
    Ok(((head >> 1) & 0x3f, wasted))
}

/// Reads one subframe of `frame_bps` (<= 32) bits into `out`: with BMI2 and LZCNT when the
/// processor has them (shifts by any register, not only `cl`; a one-instruction count of leading
/// zeros: measured 10 % faster on the whole decoder) and SSE4.1 (the LPC of orders 5 to 32, see
/// [`LpcSse`]), else with baseline x86-64 instructions.
fn read_subframe(bits: &mut Bits<'_>, frame_bps: u32, out: &mut [i32]) -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    if fast_x86() {
        // SAFETY: the processor has the features `read_subframe_bmi` is compiled for.
        return unsafe { read_subframe_bmi(bits, frame_bps, out) };
    }
    read_subframe_any::<false>(bits, frame_bps, out)
}

/// Whether the processor has what [`read_subframe_bmi`] needs.
#[cfg(target_arch = "x86_64")]
fn fast_x86() -> bool {
    std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("lzcnt")
        && std::arch::is_x86_feature_detected!("sse4.1")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "bmi1,bmi2,lzcnt,sse4.1")]
fn read_subframe_bmi(bits: &mut Bits<'_>, frame_bps: u32, out: &mut [i32]) -> Result<()> {
    read_subframe_any::<true>(bits, frame_bps, out)
}

/// One subframe; with `SSE` (the processor has SSE4.1), the LPC of orders 5 to 32 in
/// [`LpcSse`].
#[inline(always)]
fn read_subframe_any<const SSE: bool>(
    bits: &mut Bits<'_>,
    frame_bps: u32,
    out: &mut [i32],
) -> Result<()> {
    let (kind, wasted) = subframe_head(bits, frame_bps)?;
    let bps = frame_bps - wasted;
    match kind {
        0x00 => {
            let v = bits.signed(bps);
            out.fill(v);
        }
        0x01 => {
            for s in out.iter_mut() {
                *s = bits.signed(bps);
            }
            bits.check()?;
        }
        0x08..=0x0f => {
            let order = (kind & 0x07) as usize;
            if order > 4 {
                return decode_error("flac: fixed predictor orders of greater than 4 are invalid");
            }
            if order > out.len() {
                return decode_error("flac: fixed predictor order is greater than the block size");
            }
            for s in out.iter_mut().take(order) {
                *s = bits.signed(bps);
            }
            match order {
                0 => read_residual(bits, 0, out, &mut Fixed0)?,
                1 => read_residual(bits, 1, out, &mut Fixed1::new(out))?,
                2 => read_residual(bits, 2, out, &mut Fixed2::new(out))?,
                3 => read_residual(bits, 3, out, &mut Fixed3::new(out))?,
                _ => read_residual(bits, 4, out, &mut Fixed4::new(out))?,
            }
        }
        0x20..=0x3f => {
            let order = (kind & 0x1f) as usize + 1;
            if order > out.len() {
                return decode_error("flac: predictor order is greater than the block size");
            }
            for s in out.iter_mut().take(order) {
                *s = bits.signed(bps);
            }
            let (coeffs, shift) = lpc_params(bits, order)?;
            bits.check()?;
            lpc::<SSE>(bits, &coeffs, order, shift, out)?;
        }
        _ => return decode_error("flac: subframe type set to reserved value"),
    }
    if wasted > 0 {
        for s in out.iter_mut() {
            *s = s.wrapping_shl(wasted);
        }
    }
    Ok(())
}

/// Restores a sample from its residual as soon as the residual is read, so that the Rice
/// decoding and the prediction, two independent chains of dependent instructions, overlap in
/// the processor instead of running one after the other.
trait Predict {
    /// The sample at `i` (>= the order) given its residual; `out[..i]` holds the samples before.
    fn restore(&mut self, out: &[i32], i: usize, residual: i32) -> i32;
}

/// No prediction: the residual is the sample (fixed order 0, and the 33-bit path's residual).
struct Fixed0;

impl Predict for Fixed0 {
    #[inline(always)]
    fn restore(&mut self, _: &[i32], _: usize, r: i32) -> i32 {
        r
    }
}

// The fixed predictors in wrapping 32-bit arithmetic give the low 32 bits of the exact sum,
// which is what symphonia's 64-bit sum truncated to 32 bits gives: identical for any input.

fn warm<const N: usize>(out: &[i32]) -> [i32; N] {
    out.first_chunk::<N>().copied().unwrap_or([0; N])
}

struct Fixed1(i32);

impl Fixed1 {
    fn new(out: &[i32]) -> Self {
        let [a] = warm::<1>(out);
        Fixed1(a)
    }
}

impl Predict for Fixed1 {
    #[inline(always)]
    fn restore(&mut self, _: &[i32], _: usize, r: i32) -> i32 {
        self.0 = r.wrapping_add(self.0);
        self.0
    }
}

struct Fixed2(i32, i32);

impl Fixed2 {
    fn new(out: &[i32]) -> Self {
        let [a, b] = warm::<2>(out);
        Fixed2(b, a)
    }
}

impl Predict for Fixed2 {
    #[inline(always)]
    fn restore(&mut self, _: &[i32], _: usize, r: i32) -> i32 {
        let v = r.wrapping_add(self.0.wrapping_mul(2).wrapping_sub(self.1));
        self.1 = self.0;
        self.0 = v;
        v
    }
}

struct Fixed3(i32, i32, i32);

impl Fixed3 {
    fn new(out: &[i32]) -> Self {
        let [a, b, c] = warm::<3>(out);
        Fixed3(c, b, a)
    }
}

impl Predict for Fixed3 {
    #[inline(always)]
    fn restore(&mut self, _: &[i32], _: usize, r: i32) -> i32 {
        let p = self
            .0
            .wrapping_sub(self.1)
            .wrapping_mul(3)
            .wrapping_add(self.2);
        let v = r.wrapping_add(p);
        (self.2, self.1, self.0) = (self.1, self.0, v);
        v
    }
}

struct Fixed4(i32, i32, i32, i32);

impl Fixed4 {
    fn new(out: &[i32]) -> Self {
        let [a, b, c, d] = warm::<4>(out);
        Fixed4(d, c, b, a)
    }
}

impl Predict for Fixed4 {
    #[inline(always)]
    fn restore(&mut self, _: &[i32], _: usize, r: i32) -> i32 {
        let p = self
            .0
            .wrapping_add(self.2)
            .wrapping_mul(4)
            .wrapping_sub(self.1.wrapping_mul(6))
            .wrapping_sub(self.3);
        let v = r.wrapping_add(p);
        (self.3, self.2, self.1, self.0) = (self.2, self.1, self.0, v);
        v
    }
}

/// The LPC filter of order `N`, as symphonia computes it: a 64-bit sum of products, shifted,
/// truncated to 32 bits, added (wrapping) to the residual. The newest sample stays in a
/// register; the older ones are read back from `out` one by one (scalar loads of recent stores
/// forward cheaply, a vector load spanning them would stall).
struct Lpc<const N: usize> {
    coeffs: [i64; N],
    shift: u32,
    prev: i32,
}

impl<const N: usize> Predict for Lpc<N> {
    #[inline(always)]
    fn restore(&mut self, out: &[i32], i: usize, r: i32) -> i32 {
        let Some((&newest, older)) = self.coeffs.split_last() else {
            return r;
        };
        let mut sum = 0i64;
        // `i >= N`: the caller's partitions start at the order.
        if let Some(hist) = out.get(..i).and_then(<[i32]>::last_chunk::<N>) {
            for (&c, &h) in older.iter().zip(hist) {
                sum = sum.wrapping_add(c * i64::from(h));
            }
        }
        // The newest product last: only it waits for the previous sample.
        let sum = sum.wrapping_add(newest * i64::from(self.prev));
        self.prev = r.wrapping_add((sum >> self.shift) as i32);
        self.prev
    }
}

/// The LPC filter of orders 5 to `4 V + 4` with SSE4.1 (`V` = 1 to 7: orders up to 8 to 32),
/// exactly as [`Lpc`] computes it (64-bit products and sum), for fewer instructions: the
/// products of the `4 V` oldest samples are `2 V` `pmuldq` (exact 32x32 -> 64-bit products) on
/// `V` vectors that hold those samples, shifted along one sample at a time (no loads, no
/// coefficients in general registers); the four newest are scalar, in registers. A sample
/// enters the vectors four samples after it was restored, so their latency stays off the
/// critical path, which is the newest sample's product as in [`Lpc`]. Lower orders are order
/// `4 V + 4` with zero coefficients (the samples before the block are taken as zeros). (Three
/// scalar samples and five in vectors measured 8 % slower.)
#[cfg(target_arch = "x86_64")]
struct LpcSse<const V: usize> {
    /// The samples `i - 4 V - 4 .. i - 4`, four to a vector (32-bit lanes, oldest first).
    old: [std::arch::x86_64::__m128i; V],
    /// The coefficients of the 1st and 3rd samples of each vector (64-bit lanes).
    even: [std::arch::x86_64::__m128i; V],
    /// The coefficients of the 2nd and 4th.
    odd: [std::arch::x86_64::__m128i; V],
    /// The coefficients of the samples `i - 4 .. i`, oldest first.
    coeffs: [i64; 4],
    /// The samples `i - 4 .. i`, oldest first.
    recent: [i32; 4],
    shift: u32,
}

#[cfg(target_arch = "x86_64")]
impl<const V: usize> LpcSse<V> {
    /// For `order` (up to `4 V + 4`, `V` <= 7) coefficients, oldest sample's first, and the
    /// warm-up samples at the start of `out`.
    ///
    /// # Safety
    /// The processor must have SSE4.1 (`restore` uses it).
    #[inline(always)]
    unsafe fn new(coeffs: &[i64; 32], order: usize, shift: u32, out: &[i32]) -> Self {
        use std::arch::x86_64::{_mm_set_epi32, _mm_set_epi64x};
        // The `4 V + 4` coefficients and samples before the first residual, oldest first;
        // zeros before the order.
        let taps = 4 * V + 4;
        let mut c = [0i64; 32];
        let mut h = [0i32; 32];
        let pad = taps.saturating_sub(order);
        for (j, (c, h)) in c.iter_mut().zip(h.iter_mut()).enumerate().take(taps) {
            if let Some(k) = j.checked_sub(pad) {
                *c = coeffs.get(k).copied().unwrap_or(0);
                *h = out.get(k).copied().unwrap_or(0);
            }
        }
        let c = |j: usize| c.get(j).copied().unwrap_or(0);
        let h = |j: usize| h.get(j).copied().unwrap_or(0);
        LpcSse {
            old: std::array::from_fn(|v| {
                _mm_set_epi32(h(4 * v + 3), h(4 * v + 2), h(4 * v + 1), h(4 * v))
            }),
            even: std::array::from_fn(|v| _mm_set_epi64x(c(4 * v + 2), c(4 * v))),
            odd: std::array::from_fn(|v| _mm_set_epi64x(c(4 * v + 3), c(4 * v + 1))),
            coeffs: [c(taps - 4), c(taps - 3), c(taps - 2), c(taps - 1)],
            recent: [h(taps - 4), h(taps - 3), h(taps - 2), h(taps - 1)],
            shift,
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl<const V: usize> Predict for LpcSse<V> {
    #[inline(always)]
    fn restore(&mut self, _: &[i32], _: usize, r: i32) -> i32 {
        use std::arch::x86_64::*;
        let [h4, h3, h2, h1] = self.recent;
        // SAFETY: an `LpcSse` exists only on a processor with SSE4.1 (see `new`).
        let older = unsafe {
            let mut v = _mm_setzero_si128();
            for ((&old, &even), &odd) in self.old.iter().zip(&self.even).zip(&self.odd) {
                let e = _mm_mul_epi32(old, even);
                let o = _mm_mul_epi32(_mm_srli_epi64::<32>(old), odd);
                v = _mm_add_epi64(v, _mm_add_epi64(e, o));
            }
            _mm_cvtsi128_si64(_mm_add_epi64(v, _mm_unpackhi_epi64(v, v)))
        };
        let [c4, c3, c2, c1] = self.coeffs;
        let sum = older
            .wrapping_add(c4 * i64::from(h4))
            .wrapping_add(c3 * i64::from(h3))
            .wrapping_add(c2 * i64::from(h2));
        // The newest product last: only it waits for the previous sample.
        let sum = sum.wrapping_add(c1 * i64::from(h1));
        let s = r.wrapping_add((sum >> self.shift) as i32);
        // Each vector takes the oldest sample of the next, the last one `i - 4`.
        // SAFETY: as above (SSSE3 comes with SSE4.1).
        unsafe {
            let mut next = _mm_cvtsi32_si128(h4);
            for old in self.old.iter_mut().rev() {
                let shifted = _mm_alignr_epi8::<4>(next, *old);
                next = *old;
                *old = shifted;
            }
        }
        self.recent = [h3, h2, h1, s];
        s
    }
}

/// Reads the residual and restores an LPC subframe of `order` (1..=32) into `out`.
#[inline(always)]
fn lpc<const SSE: bool>(
    bits: &mut Bits<'_>,
    coeffs: &[i64; 32],
    order: usize,
    shift: u32,
    out: &mut [i32],
) -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    if SSE && order > 4 {
        macro_rules! sse {
            ($v:literal) => {{
                // SAFETY: `SSE` is true only in `read_subframe_bmi`, called when the processor
                // has SSE4.1.
                let mut p = unsafe { LpcSse::<$v>::new(coeffs, order, shift, out) };
                read_residual(bits, order, out, &mut p)
            }};
        }
        return match (order - 1) / 4 {
            1 => sse!(1),
            2 => sse!(2),
            3 => sse!(3),
            4 => sse!(4),
            5 => sse!(5),
            6 => sse!(6),
            7 => sse!(7),
            _ => decode_error("flac: invalid LPC order"),
        };
    }
    macro_rules! dispatch {
        ($($n:literal)*) => {
            match order {
                $($n => {
                    let mut p = Lpc::<$n> {
                        coeffs: coeffs.first_chunk::<$n>().copied().unwrap_or([0; $n]),
                        shift,
                        prev: out.get($n - 1).copied().unwrap_or(0),
                    };
                    read_residual(bits, $n, out, &mut p)
                })*
                _ => decode_error("flac: invalid LPC order"),
            }
        };
    }
    dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32)
}

/// Reads the residual of a predicted subframe and restores `out[order..]` with `p`.
#[inline(always)]
fn read_residual<P: Predict>(
    bits: &mut Bits<'_>,
    order: usize,
    out: &mut [i32],
    p: &mut P,
) -> Result<()> {
    let method = bits.bits(2);
    let param_bits = match method {
        0 => 4,
        1 => 5,
        _ => return decode_error("flac: residual method set to reserved value"),
    };
    let partition_order = bits.bits(4);
    let partitions = 1usize << partition_order;
    let per_partition = out.len() >> partition_order;
    if order > per_partition {
        return decode_error("flac: residual partition too small for given predictor order");
    }
    if partitions * per_partition != out.len() {
        return decode_error("flac: block size is not same as encoded residual");
    }
    let mut start = order;
    for part in 0..partitions {
        let end = (part + 1) * per_partition;
        let k = bits.bits(param_bits);
        if k == (1 << param_bits) - 1 {
            // Escape: the residuals are stored in `width` raw bits each.
            let width = bits.bits(5);
            for i in start..end {
                let r = bits.signed(width);
                let v = p.restore(out, i, r);
                if let Some(s) = out.get_mut(i) {
                    *s = v;
                }
            }
        } else {
            rice(bits, k, out, start, end, p)?;
        }
        bits.check()?;
        start = end;
    }
    Ok(())
}

/// The Rice codes of one partition, `out[start..end]`, parameter `k` <= 30.
#[inline(always)]
fn rice<P: Predict>(
    bits: &mut Bits<'_>,
    k: u32,
    out: &mut [i32],
    start: usize,
    end: usize,
    p: &mut P,
) -> Result<()> {
    // The reader's state in locals, so that it stays in registers.
    let data = bits.data;
    let mut pos = bits.pos;
    let mut cache = bits.cache;
    let mut n = bits.n;
    macro_rules! refill {
        () => {
            if let Some(word) = data.get(pos..).and_then(<[u8]>::first_chunk::<8>) {
                cache |= u64::from_be_bytes(*word) >> n;
                pos += ((63 - n) >> 3) as usize;
                n |= 56;
            } else if n < 32 {
                (bits.pos, bits.cache, bits.n) = (pos, cache, n);
                bits.refill_slow();
                (pos, cache, n) = (bits.pos, bits.cache, bits.n);
            }
        };
    }
    // One code: `z` zeros, a one, `k` bits, stored at `out[i]` once restored.
    macro_rules! code {
        ($i:expr) => {{
            let z = cache.leading_zeros();
            let v = if z + k < n {
                // The whole code is in the cache. `n` <= 63, so the shift is too.
                let top = (cache << z) >> (63 - k);
                let len = z + 1 + k;
                cache <<= len;
                n -= len;
                (z << k) | (top as u32 ^ (1 << k))
            } else {
                (bits.pos, bits.cache, bits.n) = (pos, cache, n);
                let q = bits.unary()?;
                let r = bits.bits(k);
                (pos, cache, n) = (bits.pos, bits.cache, bits.n);
                q.wrapping_shl(k) | r
            };
            let r = ((v >> 1) as i32) ^ -((v & 1) as i32);
            let v = p.restore(out, $i, r);
            if let Some(s) = out.get_mut($i) {
                *s = v;
            }
        }};
    }
    // The cache is refilled once for a group of codes that will almost always fit in the 56 bits
    // a refill guarantees (a code is `k` + 1 bits plus a short run of zeros): fewer refills, and
    // no branch on whether one is needed, which would be mispredicted every few codes. A code
    // that does not fit takes the slow path.
    let mut i = start;
    macro_rules! groups {
        ($g:literal) => {
            while i + $g <= end {
                refill!();
                for j in 0..$g {
                    code!(i + j);
                }
                i += $g;
            }
        };
    }
    match 56 / (k + 4) {
        0 | 1 => {}
        2 => groups!(2),
        3 => groups!(3),
        4 => groups!(4),
        5 => groups!(5),
        _ => groups!(6),
    }
    while i < end {
        refill!();
        code!(i);
        i += 1;
    }
    (bits.pos, bits.cache, bits.n) = (pos, cache, n);
    Ok(())
}

/// An LPC subframe's quantised coefficients, read after its `order` warm-up samples, in the
/// order they apply (the oldest sample's first; the rest of the array is zero), and its shift.
#[inline]
fn lpc_params(bits: &mut Bits<'_>, order: usize) -> Result<([i64; 32], u32)> {
    let precision = bits.bits(4) + 1;
    if precision > 15 {
        return decode_error("flac: qlp precision set to reserved value");
    }
    let shift = bits.signed(5);
    if shift < 0 {
        return unsupported_error("flac: lpc shifts less than 0 are not supported");
    }
    let mut coeffs = [0i64; 32];
    for c in coeffs.iter_mut().take(order).rev() {
        *c = i64::from(bits.signed(precision));
    }
    Ok((coeffs, shift.unsigned_abs()))
}

/// Reads a 33-bit side subframe (of a 32-bit stream) into `wide`, in 64-bit arithmetic.
fn read_wide(bits: &mut Bits<'_>, wide: &mut Vec<i64>, len: usize) -> Result<()> {
    wide.clear();
    wide.resize(len, 0);
    let (kind, wasted) = subframe_head(bits, 33)?;
    let bps = 33 - wasted;
    let read = |bits: &mut Bits<'_>| -> i64 {
        if bps > 32 {
            let hi = bits.bits(1);
            let lo = bits.bits(32);
            ((i64::from(hi) << 32 | i64::from(lo)) << 31) >> 31
        } else {
            i64::from(bits.signed(bps))
        }
    };
    let mut residual = vec![0i32; len];
    match kind {
        0x00 => {
            let v = read(bits);
            wide.fill(v);
        }
        0x01 => {
            for s in wide.iter_mut() {
                *s = read(bits);
            }
        }
        0x08..=0x0c | 0x20..=0x3f => {
            let fixed = kind < 0x20;
            let order = if fixed {
                (kind & 0x07) as usize
            } else {
                (kind & 0x1f) as usize + 1
            };
            if order > len {
                return decode_error("flac: predictor order is greater than the block size");
            }
            for s in wide.iter_mut().take(order) {
                *s = read(bits);
            }
            let (coeffs, shift) = if fixed {
                let c: &[i64] = match order {
                    0 => &[],
                    1 => &[1],
                    2 => &[-1, 2],
                    3 => &[1, -3, 3],
                    _ => &[-1, 4, -6, 4],
                };
                let mut coeffs = [0i64; 32];
                coeffs[..order].copy_from_slice(c);
                (coeffs, 0)
            } else {
                lpc_params(bits, order)?
            };
            bits.check()?;
            read_residual(bits, order, &mut residual, &mut Fixed0)?;
            for i in order..len {
                let hist = wide.get(i - order..i).unwrap_or_default();
                let sum = coeffs[..order]
                    .iter()
                    .zip(hist)
                    .fold(0i64, |a, (&c, &s)| a.wrapping_add(c.wrapping_mul(s)));
                let r = residual.get(i).copied().unwrap_or(0);
                if let Some(s) = wide.get_mut(i) {
                    *s = i64::from(r).wrapping_add(sum >> shift);
                }
            }
        }
        0x0d..=0x0f => {
            return decode_error("flac: fixed predictor orders of greater than 4 are invalid")
        }
        _ => return decode_error("flac: subframe type set to reserved value"),
    }
    if wasted > 0 {
        for s in wide.iter_mut() {
            *s = s.wrapping_shl(wasted);
        }
    }
    bits.check()
}

frame_decoder!(FlacDecoder);

impl RegisterableAudioDecoder for FlacDecoder {
    fn try_registry_new(
        params: &AudioCodecParameters,
        opts: &AudioDecoderOptions,
    ) -> Result<Box<dyn AudioDecoder>> {
        Ok(Box::new(FlacDecoder::try_new(params, opts)?))
    }

    fn supported_codecs() -> &'static [SupportedAudioCodec] {
        &[SupportedAudioCodec {
            id: CODEC_ID_FLAC,
            info: CodecInfo {
                short_name: "flac",
                long_name: "Free Lossless Audio Codec",
                profiles: &[],
            },
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift;

    #[test]
    fn bit_reader_reads_fields_and_unary() {
        // 101 | 0001 (unary 3) | 11111111 ...
        let data = [0b1010_0011, 0xff, 0x00, 0x80];
        let mut b = Bits::new(&data);
        assert_eq!(b.bits(3), 0b101);
        assert_eq!(b.unary().unwrap(), 3);
        assert_eq!(b.bits(0), 0);
        assert_eq!(b.bits(9), 0x1ff);
        assert_eq!(b.unary().unwrap(), 8);
        assert!(b.check().is_ok());
        assert_eq!(b.consumed(), 25);
        assert!(b.unary().is_err());
    }

    #[test]
    fn sign_extend_matches_symphonia() {
        assert_eq!(sign_extend(0, 0), 0);
        assert_eq!(sign_extend(0b111, 3), -1);
        assert_eq!(sign_extend(0b011, 3), 3);
        assert_eq!(sign_extend(u32::MAX, 32), -1);
    }

    /// Writes bits most significant first.
    struct Writer {
        bytes: Vec<u8>,
        bits: u32,
    }

    impl Writer {
        fn put(&mut self, value: u64, width: u32) {
            for i in (0..width).rev() {
                if self.bits.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                let bit = ((value >> i) & 1) as u8;
                let last = self.bytes.len() - 1;
                self.bytes[last] |= bit << (7 - self.bits % 8);
                self.bits += 1;
            }
        }
    }

    /// A 32-bit stereo stream of 16 samples, one frame of the given channel code whose two
    /// subframes are verbatim, the second (or first, right-side) of `side_width` bits.
    fn frame_32bit(code: u64, first: &[i64], second: &[i64], widths: (u32, u32)) -> Vec<u8> {
        frame_32bit_of(
            code,
            [
                &|w: &mut Writer| verbatim(w, first, widths.0),
                &|w: &mut Writer| verbatim(w, second, widths.1),
            ],
        )
    }

    fn verbatim(w: &mut Writer, samples: &[i64], width: u32) {
        w.put(0x02, 8); // verbatim, no wasted bits
        for &s in samples {
            w.put(s as u64 & ((1u64 << width) - 1), width);
        }
    }

    /// The frame of [`frame_32bit`] with subframes written by the given functions.
    fn frame_32bit_of(code: u64, subframes: [&dyn Fn(&mut Writer); 2]) -> Vec<u8> {
        let mut w = Writer {
            bytes: Vec::new(),
            bits: 0,
        };
        w.put(0xfff8, 16);
        w.put(0x6, 4); // block size: 8 bits follow
        w.put(0x0, 4); // rate from STREAMINFO
        w.put(code, 4);
        w.put(0x7, 3); // 32 bits
        w.put(0, 1);
        w.put(0, 8); // frame number 0
        w.put(15, 8); // 16 samples
        let crc = crc8(&w.bytes);
        w.put(u64::from(crc), 8);
        for subframe in subframes {
            subframe(&mut w);
        }
        w.bits = w.bits.next_multiple_of(8);
        let crc = crc16(&w.bytes);
        w.put(u64::from(crc), 16);
        w.bytes
    }

    fn params_32bit() -> AudioCodecParameters {
        let mut info = vec![0, 16, 0, 16, 0, 0, 0, 0, 0, 0];
        // 44100 Hz (20 bits), 2 channels (3 bits: 1), 32 bits (5 bits: 31), 16 samples (36).
        let packed: u64 = (44_100 << 44) | (1 << 41) | (31 << 36) | 16;
        info.extend_from_slice(&packed.to_be_bytes());
        info.extend_from_slice(&[0; 16]);
        let mut params = AudioCodecParameters::new();
        params
            .for_codec(CODEC_ID_FLAC)
            .with_extra_data(info.into_boxed_slice());
        params
    }

    fn decoder_32bit() -> FlacDecoder {
        FlacDecoder::try_new(&params_32bit(), &AudioDecoderOptions::default()).unwrap()
    }

    #[test]
    fn the_crc_is_checked_unless_the_flac_reader_did() {
        let left: Vec<i64> = (0..16).collect();
        let right: Vec<i64> = (0..16).map(|i| -i).collect();
        let mut frame = frame_32bit(0x1, &left, &right, (32, 32));
        let mut checked = decoder_32bit();
        assert!(checked.decode_inner(&frame).is_ok());
        let last = frame.len() - 1;
        frame[last] ^= 1;
        assert!(checked.decode_inner(&frame).is_err());
        let mut trusting = FlacDecoder::try_new_for_flac_reader(&params_32bit()).unwrap();
        assert!(trusting.decode_inner(&frame).is_ok());
        // A frame that does not start the packet is not the one the demuxer checked.
        frame.insert(0, 0);
        assert!(trusting.decode_inner(&frame).is_err());
    }

    #[test]
    fn side_channels_of_33_bits() {
        let left: Vec<i64> = (0..16i64)
            .map(|i| [i64::from(i32::MAX) - i, i64::from(i32::MIN) + i, 12345, -1][i as usize % 4])
            .collect();
        let right: Vec<i64> = (0..16i64)
            .map(|i| [i64::from(i32::MIN) + i, i64::from(i32::MAX) - i, -7, 0][i as usize % 4])
            .collect();
        let side: Vec<i64> = left.iter().zip(&right).map(|(l, r)| l - r).collect();
        let mid: Vec<i64> = left.iter().zip(&right).map(|(l, r)| (l + r) >> 1).collect();
        let mut dec = decoder_32bit();
        for (name, frame) in [
            ("left-side", frame_32bit(0x8, &left, &side, (32, 33))),
            ("right-side", frame_32bit(0x9, &side, &right, (33, 32))),
            ("mid-side", frame_32bit(0xa, &mid, &side, (32, 33))),
            ("independent", frame_32bit(0x1, &left, &right, (32, 32))),
        ] {
            dec.decode_inner(&frame)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let l: Vec<i64> = dec
                .buf
                .plane_mut(0)
                .unwrap()
                .iter()
                .map(|&s| i64::from(s))
                .collect();
            let r: Vec<i64> = dec
                .buf
                .plane_mut(1)
                .unwrap()
                .iter()
                .map(|&s| i64::from(s))
                .collect();
            assert_eq!(l, left, "{name}");
            assert_eq!(r, right, "{name}");
        }
    }

    #[test]
    fn predicted_side_channels_of_33_bits() {
        // A side channel that needs 33 bits and a constant second difference (-6), so fixed
        // order 2 and LPC order 2 (2 * s[i-1] - s[i-2], as (4, -2) >> 1) leave residuals of -6.
        let side: Vec<i64> = (0..16i64).map(|i| 4_000_000_000 - 3 * i * i).collect();
        let right: Vec<i64> = (0..16i64).map(|i| i64::from(i32::MIN) + 5 * i).collect();
        let left: Vec<i64> = right.iter().zip(&side).map(|(r, s)| r + s).collect();
        // Header, the two warm-up samples of 33 bits, the LPC parameters if any, then one
        // partition of 14 residuals escaped to 5 raw bits each.
        let warm = &side[..2];
        let predicted = |kind: u64, lpc: bool| {
            move |w: &mut Writer| {
                w.put(kind << 1, 8);
                for &s in warm {
                    w.put(s as u64 & ((1u64 << 33) - 1), 33);
                }
                if lpc {
                    w.put(4 - 1, 4); // precision 4
                    w.put(1, 5); // shift 1
                    w.put(4, 4); // the newest sample's coefficient first
                    w.put((-2i64) as u64 & 0xf, 4);
                }
                w.put(0, 2); // Rice, 4-bit parameters
                w.put(0, 4); // one partition
                w.put(0xf, 4); // escaped
                w.put(5, 5);
                for _ in 2..16 {
                    w.put((-6i64) as u64 & 0x1f, 5);
                }
            }
        };
        let mut dec = decoder_32bit();
        for (name, kind, lpc) in [("fixed", 0x0a, false), ("lpc", 0x21, true)] {
            let frame = frame_32bit_of(
                0x8,
                [
                    &|w: &mut Writer| verbatim(w, &left, 32),
                    &predicted(kind, lpc),
                ],
            );
            dec.decode_inner(&frame)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            for (ch, want) in [(0, &left), (1, &right)] {
                let got: Vec<i64> = dec
                    .buf
                    .plane_mut(ch)
                    .unwrap()
                    .iter()
                    .map(|&s| i64::from(s))
                    .collect();
                assert_eq!(&got, want, "{name}, channel {ch}");
            }
        }
    }

    /// A number of `bits` (1..=32) bits, two's complement.
    fn signed(rng: &mut XorShift, bits: u32) -> i32 {
        sign_extend(rng.next_u64() as u32, bits)
    }

    /// An LPC subframe: `coeffs` newest sample's first, `order` warm-up samples of `bps` bits,
    /// then one partition of residuals, Rice coded with parameter `rice` or, without one,
    /// escaped to `width` raw bits each.
    struct LpcCase {
        bps: u32,
        precision: u32,
        shift: u32,
        coeffs: Vec<i32>,
        warm: Vec<i32>,
        residuals: Vec<i32>,
        rice: Option<u32>,
        width: u32,
    }

    impl LpcCase {
        fn encode(&self) -> Vec<u8> {
            let mut w = Writer {
                bytes: Vec::new(),
                bits: 0,
            };
            let order = self.coeffs.len() as u64;
            w.put((0x20 | (order - 1)) << 1, 8);
            for &s in &self.warm {
                w.put(u64::from(s as u32), self.bps);
            }
            w.put(u64::from(self.precision - 1), 4);
            w.put(u64::from(self.shift), 5);
            for &c in &self.coeffs {
                w.put(u64::from(c as u32), self.precision);
            }
            w.put(0, 2); // Rice, 4-bit parameters
            w.put(0, 4); // one partition
            match self.rice {
                Some(k) => {
                    w.put(u64::from(k), 4);
                    for &r in &self.residuals {
                        let u = ((r << 1) ^ (r >> 31)) as u32;
                        let q = u >> k;
                        w.put(0, q);
                        w.put(1, 1);
                        w.put(u64::from(u), k);
                    }
                }
                None => {
                    w.put(15, 4);
                    w.put(u64::from(self.width), 5);
                    for &r in &self.residuals {
                        w.put(u64::from(r as u32), self.width);
                    }
                }
            }
            w.put(0, 32); // room for the reader's look-ahead
            w.bytes
        }

        /// The samples as symphonia's `lpc_predict` computes them.
        fn reference(&self) -> Vec<i32> {
            let mut out = self.warm.clone();
            for &r in &self.residuals {
                let i = out.len();
                let sum: i64 = self
                    .coeffs
                    .iter()
                    .enumerate()
                    .map(|(j, &c)| i64::from(c) * i64::from(out[i - 1 - j]))
                    .sum();
                out.push(r.wrapping_add((sum >> self.shift) as i32));
            }
            out
        }
    }

    /// Decodes `case` with the portable path and, where the processor has the features, the
    /// x86 path (SSE4.1 LPC of orders 5 to 8); both must match the reference.
    fn check_lpc(case: &LpcCase, what: &str) {
        let data = case.encode();
        let want = case.reference();
        let mut out = vec![0i32; want.len()];
        let mut bits = Bits::new(&data);
        read_subframe_any::<false>(&mut bits, case.bps, &mut out).unwrap();
        assert_eq!(out, want, "portable: {what}");
        #[cfg(target_arch = "x86_64")]
        if fast_x86() {
            let mut out = vec![0i32; want.len()];
            let mut bits = Bits::new(&data);
            // SAFETY: the processor has the features (`fast_x86`).
            unsafe { read_subframe_bmi(&mut bits, case.bps, &mut out) }.unwrap();
            assert_eq!(out, want, "x86: {what}");
        }
    }

    #[test]
    fn lpc_paths_match_the_reference() {
        let mut rng = XorShift::new(1);
        for round in 0..640 {
            let order = 1 + round % 32;
            let n = order + 16 + (rng.next_u64() % 200) as usize;
            let precision = 1 + (rng.next_u64() % 15) as u32;
            let shift = (rng.next_u64() % 16) as u32;
            let coeffs: Vec<i32> = (0..order).map(|_| signed(&mut rng, precision)).collect();
            // Samples of every width, 32 bits included: far outside what the coefficients'
            // precision and the order allow a 32-bit sum of products.
            let bps = [8, 16, 17, 24, 32][round % 5];
            let warm: Vec<i32> = (0..order).map(|_| signed(&mut rng, bps)).collect();
            let (rice, width) = if round.is_multiple_of(3) {
                (None, 1 + (rng.next_u64() % 31) as u32)
            } else {
                (Some((rng.next_u64() % 15) as u32), 0)
            };
            let residuals: Vec<i32> = (order..n)
                .map(|_| match rice {
                    // Mostly near the parameter, now and then a long unary run.
                    Some(k) if rng.next_u64().is_multiple_of(16) => signed(&mut rng, k + 6),
                    Some(k) => signed(&mut rng, k + 1),
                    None => signed(&mut rng, width),
                })
                .collect();
            let case = LpcCase {
                bps,
                precision,
                shift,
                coeffs,
                warm,
                residuals,
                rice,
                width,
            };
            check_lpc(&case, &format!("round {round}, order {order}, bps {bps}"));
        }
    }
}
