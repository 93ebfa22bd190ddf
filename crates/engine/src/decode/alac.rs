//! An ALAC (Apple Lossless) decoder for symphonia, hand-written for speed.
//!
//! Why by hand: symphonia's ALAC decoder (`symphonia-codec-alac` 0.6.1) cost 7.3 % of all the
//! CPU of an excerpt-mode analysis of the benchmark corpus (its adaptive predictor 5.3 %, its
//! residual reader 2.1 %) for 8 % of the files: one ALAC file cost about a whole average
//! analysis to decode. Measured on the corpus's 11 ALAC files (2-core shared Xeon with AVX2,
//! 3 Dec 2026, the two alternated in one sitting):
//! - decoding alone, 3.0 s against 6.1 s for symphonia's decoder over the 11 files, and
//!   0.52-0.59 s against 1.09-1.12 s on the longest (`alac_compare`, `--time ours|symphonia`):
//!   2.0x;
//! - `sonoprint bench --jobs 1` on the 11 files, decode-only row (demuxing, seeks and the
//!   conversion to `f32` included): 0.114-0.117 CPU-s per track against 0.221-0.226, 6.3-8.1
//!   tracks/s against 3.5-4.1.
//!
//! It decodes exactly what `symphonia-codec-alac` 0.6.1 decodes, sample for sample, into the
//! same kind of buffer (`AudioBuffer<i32>`, samples shifted up to the top of the 32 bits, the
//! same `AudioSpec` and channel order), and answers with an error exactly where symphonia's
//! decoder does (a read past the end of the packet, a bad header field). symphonia's decoder is
//! kept (registered below ours, see `decode::codecs`) as the test oracle: `tests/alac.rs` and
//! the `alac_compare` example decode generated and real files with both and compare every
//! sample. symphonia's MP4 and CAF demuxers are used as they are; only the decoder is ours.
//!
//! Where the speed comes from (after the layout of Apple's reference `ag_dec.c` / `dp_dec.c`):
//! - one 64-bit big-endian load per Golomb code: the adaptive Golomb prefix is counted with
//!   `leading_zeros`, and prefix, suffix or escape all fit in the loaded word;
//! - the adaptive predictor specialised by order with const generics (orders 1 to 31), the
//!   coefficient update without branches (where the reference's loop stops is data-dependent
//!   and mispredicts), the newest sample carried in a register rather than reloaded;
//! - on AVX2 (detected at run time; the element decoder is also built for BMI2), orders 2 to 8
//!   run in vectors (module `avx2`), and the two channels of a pair are predicted side by side:
//!   each channel is one long chain of dependent operations, two chains overlap. Alone, the
//!   vector predictor was no faster than the scalar one; paired, the decode went from 1.6x to
//!   2.0x symphonia's speed;
//! - wrapping arithmetic throughout: symphonia's release build wraps too, so corrupt data decodes
//!   to the same samples (75 damaged files that still demux: every packet the same, or failed
//!   by both), and no value from the file can make it panic.

use symphonia::core::audio::{
    layouts, AsGenericAudioBufferRef, AudioBuffer, AudioMut, AudioSpec, Channels,
};
use symphonia::core::codecs::audio::well_known::CODEC_ID_ALAC;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::registry::{RegisterableAudioDecoder, SupportedAudioCodec};
use symphonia::core::codecs::CodecInfo;
use symphonia::core::errors::{decode_error, unsupported_error, Result};

const TAG_SCE: u32 = 0;
const TAG_CPE: u32 = 1;
const TAG_CCE: u32 = 2;
const TAG_LFE: u32 = 3;
const TAG_DSE: u32 = 4;
const TAG_PCE: u32 = 5;
const TAG_FIL: u32 = 6;

/// The longest frame accepted, as symphonia: 16 standard frames.
const MAX_FRAME_LENGTH: u32 = 4096 * 16;

/// The ALAC "magic cookie" (the codec's configuration), read as `symphonia-common` reads it.
#[derive(Debug, Clone)]
pub struct MagicCookie {
    pub frame_length: u32,
    pub bit_depth: u8,
    pub pb: u8,
    pub mb: u8,
    pub kb: u8,
    pub num_channels: u8,
    pub sample_rate: u32,
    pub channels: Channels,
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..)?
        .first_chunk::<4>()
        .map(|c| u32::from_be_bytes(*c))
}

impl MagicCookie {
    pub fn read(mut buf: &[u8]) -> Result<MagicCookie> {
        if buf.len() < 24 {
            return unsupported_error("alac: magic cookie size too small");
        }
        // An optional `frma` atom, then an optional `alac` atom, before the cookie proper.
        if buf.get(4..8) == Some(b"frma") {
            buf = buf.get(12..).unwrap_or_default();
        }
        if buf.get(4..8) == Some(b"alac") {
            buf = buf.get(12..).unwrap_or_default();
        }
        if buf.len() != 24 && buf.len() != 48 {
            return unsupported_error("alac: invalid magic cookie size");
        }
        let byte = |at: usize| buf.get(at).copied().unwrap_or(0);
        let word = |at: usize| be_u32(buf, at).unwrap_or(0);
        let compatible_version = byte(4);
        let bit_depth = byte(5);
        let num_channels = byte(9);
        if compatible_version > 0 {
            return unsupported_error("alac: not compatible with alac version 0");
        }
        if bit_depth > 32 {
            return decode_error("alac: invalid bit depth");
        }
        if !(1..=8).contains(&num_channels) {
            return decode_error("alac: invalid number of channels");
        }
        let channels = if buf.len() == 48 {
            if word(24) != 24 {
                return decode_error("alac: invalid channel layout info size");
            }
            if buf.get(28..32) != Some(b"chan") {
                return decode_error("alac: invalid channel layout info id");
            }
            if word(32) != 0 {
                return decode_error("alac: invalid channel layout info version");
            }
            let layout = match word(36) {
                0x64_0001 => layouts::CHANNEL_LAYOUT_MONO,
                0x65_0002 => layouts::CHANNEL_LAYOUT_STEREO,
                0x71_0003 => layouts::CHANNEL_LAYOUT_MPEG_3P0_B,
                0x74_0004 => layouts::CHANNEL_LAYOUT_MPEG_4P0_B,
                0x78_0005 => layouts::CHANNEL_LAYOUT_MPEG_5P0_D,
                0x7c_0006 => layouts::CHANNEL_LAYOUT_MPEG_5P1_D,
                0x8e_0007 => layouts::CHANNEL_LAYOUT_AAC_6P1,
                0x7f_0008 => layouts::CHANNEL_LAYOUT_MPEG_7P1_B,
                _ => return decode_error("alac: invalid channel layout tag"),
            };
            if usize::from(num_channels) != layout.count() {
                return decode_error("alac: the number of channels differs from the layout");
            }
            if word(40) != 0 || word(44) != 0 {
                return decode_error("alac: reserved values in channel layout info are not 0");
            }
            layout
        } else {
            match num_channels {
                1 => layouts::CHANNEL_LAYOUT_MONO,
                2 => layouts::CHANNEL_LAYOUT_STEREO,
                3 => layouts::CHANNEL_LAYOUT_MPEG_3P0_B,
                4 => layouts::CHANNEL_LAYOUT_MPEG_4P0_B,
                5 => layouts::CHANNEL_LAYOUT_MPEG_5P0_D,
                6 => layouts::CHANNEL_LAYOUT_MPEG_5P1_D,
                7 => layouts::CHANNEL_LAYOUT_AAC_6P1,
                _ => layouts::CHANNEL_LAYOUT_MPEG_7P1_B,
            }
        };
        Ok(MagicCookie {
            frame_length: word(0),
            bit_depth,
            pb: byte(6),
            mb: byte(7),
            kb: byte(8),
            num_channels,
            sample_rate: word(20),
            channels,
        })
    }
}

/// ALAC's element order (the index) to the `AudioBuffer` plane, per channel count: the layout
/// is fixed by the count (a 48-byte cookie's layout tag must agree with it).
fn channel_map(num_channels: u8) -> [u8; 8] {
    match num_channels {
        1 => [0, 0, 0, 0, 0, 0, 0, 0],
        2 => [0, 1, 0, 0, 0, 0, 0, 0],
        3 => [2, 0, 1, 0, 0, 0, 0, 0],
        4 => [2, 0, 1, 3, 0, 0, 0, 0],
        5 => [2, 0, 1, 3, 4, 0, 0, 0],
        6 => [2, 0, 1, 4, 5, 3, 0, 0],
        7 => [2, 0, 1, 5, 6, 4, 3, 0],
        _ => [2, 4, 5, 0, 1, 6, 7, 3],
    }
}

/// A most-significant-bit-first reader over one packet. Reads past the end see zeros and only
/// advance the position; [`Bits::overrun`] then tells, as symphonia's reader would have failed at
/// the first such read. Every read is bounded (at most 41 bits), so work stays proportional to
/// the frame length whatever the data.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits { data, pos: 0 }
    }

    /// The next 64 bits, of which the first 57 are valid; zeros past the end of the packet.
    #[inline(always)]
    fn peek(&self) -> u64 {
        let byte = self.pos >> 3;
        let word = match self.data.get(byte..).and_then(|s| s.first_chunk::<8>()) {
            Some(b) => u64::from_be_bytes(*b),
            None => self.peek_tail(byte),
        };
        word << (self.pos & 7)
    }

    #[inline(never)]
    fn peek_tail(&self, byte: usize) -> u64 {
        let mut word = 0u64;
        for k in 0..8 {
            let b = self.data.get(byte.saturating_add(k)).copied().unwrap_or(0);
            word = (word << 8) | u64::from(b);
        }
        word
    }

    /// Reads `n` ≤ 32 bits.
    #[inline(always)]
    fn read(&mut self, n: u32) -> u32 {
        let v = ((self.peek() >> 32) >> (32 - n)) as u32;
        self.pos += n as usize;
        v
    }

    /// Reads `n` ≤ 32 bits as a two's complement number.
    #[inline(always)]
    fn read_signed(&mut self, n: u32) -> i32 {
        let v = self.read(n);
        (v.wrapping_shl(32 - n) as i32).wrapping_shr(32 - n)
    }

    fn read_bool(&mut self) -> bool {
        self.read(1) != 0
    }

    fn skip(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n);
    }

    fn realign(&mut self) {
        self.pos = (self.pos + 7) & !7;
    }

    fn overrun(&self) -> bool {
        self.pos > self.data.len() * 8
    }
}

/// Reads one adaptive Golomb code: a unary prefix of up to 9 ones, then either a `k`-bit suffix
/// (of which only `k - 1` bits are used when it is below 2) or, after 9 ones, an escape of `bps`
/// raw bits. One 64-bit load covers all of it (7 + 9 + 32 bits at most).
#[inline(always)]
fn read_rice(bits: &mut Bits<'_>, k: u32, bps: u32) -> u32 {
    let w = bits.peek();
    let ones = (!w).leading_zeros();
    if ones >= 9 {
        bits.pos += 9 + bps as usize;
        return (((w << 9) >> 32) >> (32 - bps)) as u32;
    }
    if k > 1 {
        let v = ((w << (ones + 1)) >> (64 - k)) as u32;
        let base = (ones << k) - ones;
        let big = u32::from(v >= 2);
        bits.pos += (ones + k + big) as usize;
        base + (v.wrapping_sub(1) & big.wrapping_neg())
    } else {
        bits.pos += (ones + 1) as usize;
        if k == 1 {
            ones
        } else {
            0
        }
    }
}

#[inline(always)]
fn lg3a(val: u32) -> u32 {
    31 - ((val >> 9) + 3).leading_zeros()
}

/// Decodes the residuals of one channel into `out`, zero runs included.
#[inline(always)]
fn read_residuals(bits: &mut Bits<'_>, out: &mut [i32], ch: &ChannelHeader, kb: u32, bps: u32) {
    let n = out.len();
    let pb = ch.pb_factor;
    let mut mb = ch.mb;
    let mut sign_toggle = 0u32;
    let mut i = 0;
    while i < n {
        let k = lg3a(mb).min(kb);
        let val = read_rice(bits, k, bps).wrapping_add(sign_toggle);
        if let Some(s) = out.get_mut(i) {
            *s = ((val >> 1) as i32) ^ -((val & 1) as i32);
        }
        mb = if val > 0xffff {
            0xffff
        } else {
            mb.wrapping_add(pb.wrapping_mul(val))
                .wrapping_sub(pb.wrapping_mul(mb) >> 9)
        };
        sign_toggle = 0;
        i += 1;
        // A small `mb` announces a run of zeros, its length coded next.
        if mb < 128 && i < n {
            let k = mb.leading_zeros() - 24 + ((mb + 16) >> 6);
            let zeros = read_rice(bits, k.min(kb), 16);
            if zeros < 0xffff {
                sign_toggle = 1;
            }
            mb = 0;
            let end = i.saturating_add(zeros as usize).min(n);
            if let Some(run) = out.get_mut(i..end) {
                run.fill(0);
            }
            i = end;
        }
    }
}

#[inline(always)]
fn clip_msbs(v: i32, num: u32) -> i32 {
    v.wrapping_shl(num).wrapping_shr(num)
}

/// The adaptive predictor of order `N` (≥ 1) from sample `N + 1` on; the samples before it are
/// the warm-up, already integrated.
#[inline(always)]
fn lpc<const N: usize>(out: &mut [i32], coefs: &[i32; 32], shift: u32, clip: u32) {
    let mut c = [0i32; N];
    if let Some(src) = coefs.get(..N) {
        c.copy_from_slice(src);
    }
    let round = (1i32 << shift) >> 1;
    let n = out.len();
    if n <= N + 1 {
        return;
    }
    let Some(&first) = out.get(N) else { return };
    let mut prev = first;
    for i in N + 1..n {
        let (head, tail) = out.split_at_mut(i);
        let Some(cur) = tail.first_mut() else { break };
        let Some((rest, hist)) = head.split_last_chunk::<N>() else {
            break;
        };
        let Some(&past0) = rest.last() else { break };
        // hist[j] is out[i - N + j]; c[N - 1 - j] weighs it; hist[N - 1] is `prev`.
        let prev_in = prev;
        let mut sum = c[0].wrapping_mul(prev.wrapping_sub(past0));
        for j in 0..N - 1 {
            sum = sum.wrapping_add(c[N - 1 - j].wrapping_mul(hist[j].wrapping_sub(past0)));
        }
        let res = *cur;
        let val = sum.wrapping_add(round) >> shift;
        let s = clip_msbs(res.wrapping_add(past0).wrapping_add(val), clip);
        *cur = s;
        prev = s;
        // Coefficient adaptation, oldest sample first, until the residual's sign is used up:
        // `res > 0` moves each coefficient against the sign of its difference and stops once
        // the running `r` is no longer positive, `res < 0` the mirror image. Written without
        // branches (the exit point is data-dependent and would mispredict): `alive` says
        // whether the loop of the reference would still be running at step `j`.
        // `flip` is -1 for a negative residual: `(x ^ flip) - flip` is then `-x`.
        let flip = res >> 31;
        // Per tap (oldest first): the coefficient's step, sign(res) * sign(d), and what the
        // tap takes from the running residual, (j + 1) * ((sign(res) * |d|) >> shift), with
        // `d = past0 - sample` (`wrapping_abs` as symphonia's `signum * d` wraps).
        let mut step = [0i32; N];
        let mut take = [0i32; N];
        for j in 0..N {
            let h = if j == N - 1 { prev_in } else { hist[j] };
            let d = past0.wrapping_sub(h);
            step[j] = (d.signum() ^ flip).wrapping_sub(flip);
            let mag = (d.wrapping_abs() ^ flip).wrapping_sub(flip);
            take[j] = (1 + j as i32).wrapping_mul(mag >> shift);
        }
        // How many taps the reference's loop updates before it stops: it runs while the
        // running residual keeps the sign of `res` (`r > 0`, or `r < 0`), one tap at least.
        let mut alive = res != 0;
        let mut count = 0i32;
        let mut r = res;
        for t in take {
            count += i32::from(alive);
            r = r.wrapping_sub(t);
            alive &= (r ^ flip) > flip;
        }
        for j in 0..N {
            let m = -i32::from((j as i32) < count);
            c[N - 1 - j] = c[N - 1 - j].wrapping_sub(step[j] & m);
        }
    }
}

/// The predictor of orders 2 to 8 on AVX2: the taps but the newest in one vector.
///
/// The same arithmetic as [`lpc`], lane `j` holding tap `j` (oldest first) for `j < N - 1`:
/// the sum of the older taps and each tap's step and take are computed at once, the running
/// residual by a prefix sum of the takes, and how many taps the reference's loop would update
/// from the first tap whose running residual changes sign (a movemask). The newest tap, on the
/// critical path from one sample to the next, stays scalar.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    #[inline(always)]
    fn hsum(v: __m256i) -> i32 {
        // SAFETY (all intrinsics here): only called from `lpc`, which requires AVX2.
        unsafe {
            let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
            _mm_cvtsi128_si32(s)
        }
    }

    /// One channel's predictor state between two samples.
    struct State<const N: usize> {
        cv: __m256i,
        hv: __m256i,
        c_new: i32,
        prev: i32,
        round: i32,
        shift: u32,
        clip: u32,
        shv: __m128i,
        idx: __m256i,
        sh_a: __m256i,
        sh_b: __m256i,
        sh_c: __m256i,
        old: __m256i,
        newest_old: __m256i,
        rot: __m256i,
        lane3: __m256i,
        beyond: u32,
    }

    impl<const N: usize> State<N> {
        /// `None` when the channel has no sample past the warm-up (`out.len() <= N + 1`).
        #[inline(always)]
        fn new(out: &[i32], coefs: &[i32; 32], shift: u32, clip: u32) -> Option<Self> {
            if !(2..=8).contains(&N) || out.len() <= N + 1 {
                return None;
            }
            let mut ca = [0i32; 8];
            let mut ha = [0i32; 8];
            for j in 0..N - 1 {
                ca[j] = coefs.get(N - 1 - j).copied().unwrap_or(0);
                ha[j] = out.get(1 + j).copied().unwrap_or(0);
            }
            // SAFETY: only built inside `lpc` and `lpc_pair`, which require AVX2.
            unsafe {
                let vec = |a: &[i32; 8]| {
                    _mm256_setr_epi32(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
                };
                let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                Some(State {
                    cv: vec(&ca),
                    hv: vec(&ha),
                    c_new: coefs[0],
                    prev: *out.get(N)?,
                    round: (1i32 << shift) >> 1,
                    shift,
                    clip,
                    shv: _mm_cvtsi32_si128(shift as i32),
                    idx,
                    // (j + 1) * x as (x << a) + (x << b) + (x << c); a shift of 32 gives 0.
                    sh_a: _mm256_setr_epi32(0, 1, 1, 2, 2, 2, 2, 3),
                    sh_b: _mm256_setr_epi32(32, 32, 0, 32, 0, 1, 1, 32),
                    sh_c: _mm256_setr_epi32(32, 32, 32, 32, 32, 32, 0, 32),
                    old: _mm256_cmpgt_epi32(_mm256_set1_epi32(N as i32 - 1), idx),
                    newest_old: _mm256_cmpeq_epi32(idx, _mm256_set1_epi32(N as i32 - 2)),
                    rot: _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7),
                    lane3: _mm256_set1_epi32(3),
                    beyond: !((1u32 << (N - 1)) - 1) & 0xff,
                })
            }
        }

        /// Predicts sample `i` (`i > N`).
        #[inline(always)]
        fn step(&mut self, out: &mut [i32], i: usize) {
            let Some(&past0) = out.get(i - N - 1) else {
                return;
            };
            let Some(cur) = out.get_mut(i) else { return };
            // SAFETY: only called inside `lpc` and `lpc_pair`, which require AVX2.
            unsafe {
                let res = *cur;
                let p = _mm256_set1_epi32(past0);
                let older = hsum(_mm256_mullo_epi32(self.cv, _mm256_sub_epi32(self.hv, p)));
                let sum =
                    older.wrapping_add(self.c_new.wrapping_mul(self.prev.wrapping_sub(past0)));
                let val = sum.wrapping_add(self.round) >> self.shift;
                let s = super::clip_msbs(res.wrapping_add(past0).wrapping_add(val), self.clip);
                *cur = s;
                // Adaptation.
                let flip = res >> 31;
                let sg = _mm256_set1_epi32(res.signum());
                let e = _mm256_sub_epi32(p, self.hv);
                let step = _mm256_sign_epi32(sg, e);
                let mag = _mm256_sign_epi32(_mm256_abs_epi32(e), sg);
                let t = _mm256_sra_epi32(mag, self.shv);
                let take = _mm256_add_epi32(
                    _mm256_add_epi32(
                        _mm256_sllv_epi32(t, self.sh_a),
                        _mm256_sllv_epi32(t, self.sh_b),
                    ),
                    _mm256_sllv_epi32(t, self.sh_c),
                );
                let mut x = _mm256_add_epi32(take, _mm256_slli_si256::<4>(take));
                x = _mm256_add_epi32(x, _mm256_slli_si256::<8>(x));
                let carry = _mm256_blend_epi32::<0x0f>(
                    _mm256_permutevar8x32_epi32(x, self.lane3),
                    _mm256_setzero_si256(),
                );
                x = _mm256_add_epi32(x, carry);
                let fv = _mm256_set1_epi32(flip);
                let r = _mm256_sub_epi32(_mm256_set1_epi32(res), x);
                let cond = _mm256_cmpgt_epi32(_mm256_xor_si256(r, fv), fv);
                let bits = _mm256_movemask_ps(_mm256_castsi256_ps(cond)) as u32 | self.beyond;
                let count = if res == 0 {
                    0
                } else {
                    (bits.trailing_ones() as i32 + 1).min(N as i32)
                };
                let upd = _mm256_and_si256(
                    _mm256_cmpgt_epi32(_mm256_set1_epi32(count), self.idx),
                    self.old,
                );
                self.cv = _mm256_sub_epi32(self.cv, _mm256_and_si256(step, upd));
                let step_new = (past0.wrapping_sub(self.prev).signum() ^ flip).wrapping_sub(flip);
                self.c_new = self
                    .c_new
                    .wrapping_sub(step_new & -i32::from(count == N as i32));
                self.hv = _mm256_blendv_epi8(
                    _mm256_permutevar8x32_epi32(self.hv, self.rot),
                    _mm256_set1_epi32(self.prev),
                    self.newest_old,
                );
                self.prev = s;
            }
        }
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn lpc<const N: usize>(
        out: &mut [i32],
        coefs: &[i32; 32],
        shift: u32,
        clip: u32,
    ) {
        let Some(mut st) = State::<N>::new(out, coefs, shift, clip) else {
            return;
        };
        for i in N + 1..out.len() {
            st.step(out, i);
        }
    }

    /// Both channels of a pair at once, sample by sample: two independent dependency chains
    /// that the CPU overlaps (one channel alone waits on its own latency).
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn lpc_pair<const A: usize, const B: usize>(
        out0: &mut [i32],
        coefs0: &[i32; 32],
        shift0: u32,
        out1: &mut [i32],
        coefs1: &[i32; 32],
        shift1: u32,
        clip: u32,
    ) {
        let (Some(mut a), Some(mut b)) = (
            State::<A>::new(out0, coefs0, shift0, clip),
            State::<B>::new(out1, coefs1, shift1, clip),
        ) else {
            lpc::<A>(out0, coefs0, shift0, clip);
            lpc::<B>(out1, coefs1, shift1, clip);
            return;
        };
        let n = out0.len().min(out1.len());
        let start = A.max(B) + 1;
        for i in A + 1..start {
            a.step(out0, i);
        }
        for i in B + 1..start {
            b.step(out1, i);
        }
        for i in start..n {
            a.step(out0, i);
            b.step(out1, i);
        }
        for i in n.max(start)..out0.len() {
            a.step(out0, i);
        }
        for i in n.max(start)..out1.len() {
            b.step(out1, i);
        }
    }

    /// [`lpc_pair`] for order `A` on the first channel and `o1` (2 to 8) on the second.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn lpc_pair_with<const A: usize>(
        out0: &mut [i32],
        coefs0: &[i32; 32],
        shift0: u32,
        o1: usize,
        out1: &mut [i32],
        coefs1: &[i32; 32],
        shift1: u32,
        clip: u32,
    ) {
        macro_rules! second {
            ($($n:literal)*) => {
                match o1 {
                    $($n => lpc_pair::<A, $n>(out0, coefs0, shift0, out1, coefs1, shift1, clip),)*
                    _ => {}
                }
            };
        }
        second!(2 3 4 5 6 7 8);
    }
}

/// One channel's header inside an element.
struct ChannelHeader {
    mode: u32,
    shift: u32,
    pb_factor: u32,
    mb: u32,
    order: usize,
    coefs: [i32; 32],
}

impl ChannelHeader {
    fn read(bits: &mut Bits<'_>, cookie: &MagicCookie) -> ChannelHeader {
        let mode = bits.read(4);
        let shift = bits.read(4);
        let pb_factor = (bits.read(3) * u32::from(cookie.pb)) >> 2;
        let order = bits.read(5) as usize;
        let mut coefs = [0i32; 32];
        for c in coefs.iter_mut().take(order) {
            *c = bits.read_signed(16);
        }
        ChannelHeader {
            mode,
            shift,
            pb_factor,
            mb: u32::from(cookie.mb),
            order,
            coefs,
        }
    }

    /// Checks the mode and runs the passes before the adaptive predictor: the warm-up, and
    /// the first-order pass of order 31 or mode 15. False when there is nothing more to do.
    #[inline(always)]
    fn prepare(&self, out: &mut [i32], bps: u32) -> Result<bool> {
        if self.mode > 0 && self.mode < 15 {
            return decode_error("alac: invalid mode");
        }
        if self.order == 0 || out.is_empty() {
            return Ok(false);
        }
        let clip = 32 - bps;
        if self.order == 31 || self.mode == 15 {
            integrate(out, out.len(), clip);
        }
        integrate(out, 1 + self.order, clip);
        Ok(true)
    }

    #[inline(always)]
    fn predict(&self, out: &mut [i32], bps: u32, simd: bool) -> Result<()> {
        if self.prepare(out, bps)? {
            self.lpc(out, bps, simd);
        }
        Ok(())
    }

    /// The adaptive predictor proper, after [`ChannelHeader::prepare`].
    #[inline(always)]
    fn lpc(&self, out: &mut [i32], bps: u32, simd: bool) {
        let clip = 32 - bps;
        macro_rules! orders {
            ($($n:literal)*) => {
                match self.order {
                    $($n => lpc::<$n>(out, &self.coefs, self.shift, clip),)*
                    _ => {}
                }
            };
        }
        #[cfg(target_arch = "x86_64")]
        if simd && (2..=8).contains(&self.order) {
            macro_rules! simd_orders {
                ($($n:literal)*) => {
                    match self.order {
                        // SAFETY: `simd` is only true when the CPU has AVX2 (`fast_cpu`).
                        $($n => unsafe { avx2::lpc::<$n>(out, &self.coefs, self.shift, clip) },)*
                        _ => {}
                    }
                };
            }
            simd_orders!(2 3 4 5 6 7 8);
            return;
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = simd;
        orders!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
    }
}

/// `out[i] += out[i - 1]` for `i` in `1..end` (clipped to the coded width).
#[inline(always)]
fn integrate(out: &mut [i32], end: usize, clip: u32) {
    let end = end.min(out.len());
    let Some(first) = out.first() else { return };
    let mut prev = *first;
    for s in out.iter_mut().take(end).skip(1) {
        prev = clip_msbs(s.wrapping_add(prev), clip);
        *s = prev;
    }
}

/// Apple Lossless decoder (see the module documentation).
pub struct AlacDecoder {
    params: AudioCodecParameters,
    cookie: MagicCookie,
    map: [u8; 8],
    /// The low bits sent apart when an element's shift is not 0 (interleaved for a pair).
    tail: Vec<u16>,
    buf: AudioBuffer<i32>,
}

impl AlacDecoder {
    pub fn try_new(params: &AudioCodecParameters) -> Result<Self> {
        if params.codec != CODEC_ID_ALAC {
            return unsupported_error("alac: invalid codec");
        }
        let Some(extra) = params.extra_data.as_deref() else {
            return unsupported_error("alac: missing extra data");
        };
        let cookie = MagicCookie::read(extra)?;
        if cookie.frame_length > MAX_FRAME_LENGTH {
            return unsupported_error("alac: frame length too large");
        }
        let spec = AudioSpec::new(cookie.sample_rate, cookie.channels.clone());
        let frames = cookie.frame_length as usize;
        let mut params = params.clone();
        params.with_channels(cookie.channels.clone());
        params.with_sample_rate(cookie.sample_rate);
        Ok(AlacDecoder {
            params,
            map: channel_map(cookie.num_channels),
            tail: vec![0; usize::from(cookie.num_channels.min(2)) * frames],
            buf: AudioBuffer::new(spec, frames),
            cookie,
        })
    }

    fn decode_inner(&mut self, data: &[u8]) -> Result<()> {
        let mut bits = Bits::new(data);
        let num_channels = usize::from(self.cookie.num_channels);
        let mut next = 0usize;
        let mut num_frames = 0usize;
        self.buf.clear();
        self.buf.render_silence(None);
        loop {
            let tag = bits.read(3);
            match tag {
                TAG_SCE | TAG_LFE => {
                    let idx = usize::from(self.map.get(next).copied().unwrap_or(0));
                    let Some(out0) = self.buf.plane_mut(idx) else {
                        return decode_error("alac: invalid channel map");
                    };
                    num_frames =
                        decode_element(&self.cookie, &mut bits, &mut self.tail, out0, None)?;
                    next += 1;
                }
                TAG_CPE => {
                    if next + 2 > num_channels {
                        break;
                    }
                    let i0 = usize::from(self.map.get(next).copied().unwrap_or(0));
                    let i1 = usize::from(self.map.get(next + 1).copied().unwrap_or(0));
                    let Some((out0, out1)) = self.buf.plane_pair_mut(i0, i1) else {
                        return decode_error("alac: invalid channel map");
                    };
                    num_frames =
                        decode_element(&self.cookie, &mut bits, &mut self.tail, out0, Some(out1))?;
                    next += 2;
                }
                TAG_DSE => {
                    let _tag = bits.read(4);
                    let align = bits.read_bool();
                    let mut count = bits.read(8);
                    if count == 255 {
                        count += bits.read(8);
                    }
                    if align {
                        bits.realign();
                    }
                    bits.skip(8 * count as usize);
                }
                TAG_FIL => {
                    let mut count = bits.read(4);
                    if count == 15 {
                        count += bits.read(8);
                        count -= 1;
                    }
                    bits.skip(8 * count as usize);
                }
                TAG_CCE | TAG_PCE => return decode_error("alac: unsupported element"),
                _ => break, // 7: the end element, the last 3-bit value
            }
            if bits.overrun() {
                return decode_error("alac: packet too short");
            }
            if next >= num_channels {
                break;
            }
        }
        if bits.overrun() {
            return decode_error("alac: packet too short");
        }
        self.buf.truncate(num_frames);
        let shift = 32 - u32::from(self.cookie.bit_depth);
        if shift > 0 {
            self.buf.apply(|s| s.wrapping_shl(shift));
        }
        Ok(())
    }
}

/// Decodes a single channel element, or a channel pair element when `out1` is given, and
/// returns its number of frames. Leaves `bits` past the end on a short packet (the caller
/// checks).
fn decode_element(
    cookie: &MagicCookie,
    bits: &mut Bits<'_>,
    tail: &mut [u16],
    out0: &mut [i32],
    out1: Option<&mut [i32]>,
) -> Result<usize> {
    #[cfg(target_arch = "x86_64")]
    if fast_cpu() {
        /// The same code built for AVX2 and BMI2: one-instruction variable shifts (`sarx`) in
        /// the predictor's loop, and wider vectors where the compiler vectorises it.
        #[target_feature(enable = "avx2,bmi1,bmi2,lzcnt")]
        fn avx2(
            cookie: &MagicCookie,
            bits: &mut Bits<'_>,
            tail: &mut [u16],
            out0: &mut [i32],
            out1: Option<&mut [i32]>,
        ) -> Result<usize> {
            decode_element_impl(cookie, bits, tail, out0, out1, true)
        }
        // SAFETY: `fast_cpu` has checked that the CPU has these features.
        return unsafe { avx2(cookie, bits, tail, out0, out1) };
    }
    decode_element_impl(cookie, bits, tail, out0, out1, false)
}

/// Whether the CPU has AVX2, BMI1/2 and LZCNT (detected once, then cached by std).
#[cfg(target_arch = "x86_64")]
fn fast_cpu() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("lzcnt")
}

#[inline(always)]
fn decode_element_impl(
    cookie: &MagicCookie,
    bits: &mut Bits<'_>,
    tail: &mut [u16],
    out0: &mut [i32],
    mut out1: Option<&mut [i32]>,
    simd: bool,
) -> Result<usize> {
    let is_pair = out1.is_some();
    let _instance = bits.read(4);
    if bits.read(12) != 0 {
        return decode_error("alac: unused header bits not 0");
    }
    let partial = bits.read_bool();
    let shift = 8 * bits.read(2);
    let uncompressed = bits.read_bool();
    let bit_depth = u32::from(cookie.bit_depth);
    if shift >= 24 || shift >= bit_depth {
        return decode_error("alac: invalid shift value");
    }
    let n = if partial {
        bits.read(32)
    } else {
        cookie.frame_length
    } as usize;
    if n > cookie.frame_length as usize {
        return decode_error("alac: frame length exceeds maximum frame length");
    }
    // A short packet has produced zeros so far: stop before decoding a frame of them.
    if bits.overrun() {
        return decode_error("alac: packet too short");
    }
    let Some(out0) = out0.get_mut(..n) else {
        return decode_error("alac: frame longer than the buffer");
    };
    let mut out1 = match out1.take() {
        Some(o) => match o.get_mut(..n) {
            Some(o) => Some(o),
            None => return decode_error("alac: frame longer than the buffer"),
        },
        None => None,
    };

    if uncompressed {
        match out1 {
            Some(out1) => {
                for (s0, s1) in out0.iter_mut().zip(out1.iter_mut()) {
                    *s0 = bits.read_signed(bit_depth);
                    *s1 = bits.read_signed(bit_depth);
                }
            }
            None => {
                for s0 in out0.iter_mut() {
                    *s0 = bits.read_signed(bit_depth);
                }
            }
        }
        return Ok(n);
    }

    // Bits per coded sample: the low `shift` bits travel apart; a pair's side needs one more.
    let bps = bit_depth - shift + u32::from(is_pair);
    if bps > 32 {
        return decode_error("alac: bits per coded sample exceed 32");
    }
    let mix_shift = bits.read(8);
    let mix_weight = bits.read_signed(8);
    if !is_pair && (mix_shift != 0 || mix_weight != 0) {
        return decode_error("alac: invalid mixing information for mono channel");
    }
    let ch0 = ChannelHeader::read(bits, cookie);
    let ch1 = if is_pair {
        Some(ChannelHeader::read(bits, cookie))
    } else {
        None
    };
    let num_tail = if is_pair { 2 * n } else { n };
    if shift > 0 {
        let Some(t) = tail.get_mut(..num_tail) else {
            return decode_error("alac: frame longer than the buffer");
        };
        for v in t.iter_mut() {
            *v = bits.read(shift) as u16;
        }
    }
    if bits.overrun() {
        return decode_error("alac: packet too short");
    }
    let kb = u32::from(cookie.kb);
    read_residuals(bits, out0, &ch0, kb, bps);
    if let (Some(out1), Some(ch1)) = (out1.as_deref_mut(), ch1.as_ref()) {
        // Both channels' residuals first, then both predictors side by side (on AVX2).
        read_residuals(bits, out1, ch1, kb, bps);
        let more0 = ch0.prepare(out0, bps)?;
        let more1 = ch1.prepare(out1, bps)?;
        let pairable = |c: &ChannelHeader| (2..=8).contains(&c.order);
        #[cfg(target_arch = "x86_64")]
        let paired = simd && more0 && more1 && pairable(&ch0) && pairable(ch1);
        #[cfg(not(target_arch = "x86_64"))]
        let paired = false;
        if paired {
            #[cfg(target_arch = "x86_64")]
            {
                let clip = 32 - bps;
                macro_rules! first {
                    ($($n:literal)*) => {
                        match ch0.order {
                            // SAFETY: `simd` is only true when the CPU has AVX2 (`fast_cpu`).
                            $($n => unsafe {
                                avx2::lpc_pair_with::<$n>(
                                    out0, &ch0.coefs, ch0.shift, ch1.order, out1,
                                    &ch1.coefs, ch1.shift, clip,
                                )
                            },)*
                            _ => {}
                        }
                    };
                }
                first!(2 3 4 5 6 7 8);
            }
        } else {
            if more0 {
                ch0.lpc(out0, bps, simd);
            }
            if more1 {
                ch1.lpc(out1, bps, simd);
            }
        }
        if mix_weight != 0 {
            if mix_shift > 31 {
                return decode_error("alac: mid_side_shift is greater than 31 bit");
            }
            for (s0, s1) in out0.iter_mut().zip(out1.iter_mut()) {
                let a = *s0;
                let b = *s1;
                let l = a
                    .wrapping_add(b)
                    .wrapping_sub(b.wrapping_mul(mix_weight) >> mix_shift);
                *s0 = l;
                *s1 = l.wrapping_sub(b);
            }
        }
    } else {
        ch0.predict(out0, bps, simd)?;
    }
    if shift > 0 {
        match out1 {
            Some(out1) => {
                let t = tail.get(..2 * n).unwrap_or_default();
                for ((s0, s1), v) in out0.iter_mut().zip(out1.iter_mut()).zip(t.chunks_exact(2)) {
                    *s0 = s0.wrapping_shl(shift) | i32::from(v[0]);
                    *s1 = s1.wrapping_shl(shift) | i32::from(v[1]);
                }
            }
            None => {
                let t = tail.get(..n).unwrap_or_default();
                for (s0, &v) in out0.iter_mut().zip(t) {
                    *s0 = s0.wrapping_shl(shift) | i32::from(v);
                }
            }
        }
    }
    Ok(n)
}

frame_decoder!(AlacDecoder);

impl RegisterableAudioDecoder for AlacDecoder {
    fn try_registry_new(
        params: &AudioCodecParameters,
        _opts: &AudioDecoderOptions,
    ) -> Result<Box<dyn AudioDecoder>> {
        Ok(Box::new(AlacDecoder::try_new(params)?))
    }

    fn supported_codecs() -> &'static [SupportedAudioCodec] {
        // What `symphonia_core::support_audio_codec!` expands to (as in `opus`).
        &[SupportedAudioCodec {
            id: CODEC_ID_ALAC,
            info: CodecInfo {
                short_name: "alac",
                long_name: "Apple Lossless Audio Codec",
                profiles: &[],
            },
        }]
    }
}

/// Decodes a file with this decoder and with symphonia's own ALAC decoder, packet by packet,
/// and compares them: the test oracle, used by `tests/alac.rs` and the `alac_compare` example.
#[doc(hidden)]
pub mod oracle {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use symphonia::core::audio::{Audio, GenericAudioBufferRef};
    use symphonia::core::codecs::audio::well_known::CODEC_ID_ALAC;
    use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
    use symphonia::core::codecs::CodecParameters;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
    use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
    use symphonia::core::meta::MetadataOptions;

    /// The outcome of [`compare_file`].
    #[derive(Debug, Default, Clone)]
    pub struct Comparison {
        pub packets: usize,
        /// Frames decoded (by both, when they agree).
        pub frames: u64,
        /// Packets on which both decoders failed.
        pub both_failed: usize,
        /// Packets on which the two differ (spec, length, a sample, or one failing alone).
        pub mismatches: usize,
        pub first_mismatch: Option<String>,
        /// Time spent in each decoder's `decode` alone.
        pub ours: Duration,
        pub theirs: Duration,
    }

    /// What [`decode_alone`] saw.
    #[derive(Debug, Default, Clone)]
    pub struct Alone {
        pub packets: usize,
        pub failed: usize,
        pub frames: u64,
        /// Time spent in `decode`.
        pub spent: Duration,
    }

    /// Decodes the file with one decoder only (`ours` or symphonia's): the decode-only speed,
    /// and what happens on a damaged file. `Ok(None)` when the track is not ALAC.
    pub fn decode_alone(path: &Path, ours: bool) -> Result<Option<Alone>, String> {
        let (mut reader, track_id, params) = match open(path)? {
            Some(x) => x,
            None => return Ok(None),
        };
        let mut dec: Box<dyn AudioDecoder> = if ours {
            Box::new(super::AlacDecoder::try_new(&params).map_err(|e| e.to_string())?)
        } else {
            Box::new(
                symphonia::default::codecs::AlacDecoder::try_new(
                    &params,
                    &AudioDecoderOptions::default(),
                )
                .map_err(|e| e.to_string())?,
            )
        };
        let mut a = Alone::default();
        // A damaged container may end in a demuxing error: the packets before it count.
        while let Ok(Some(packet)) = reader.next_packet() {
            if packet.track_id != track_id {
                continue;
            }
            a.packets += 1;
            let t = Instant::now();
            let r = dec.decode(&packet).map(|b| b.frames());
            a.spent += t.elapsed();
            match r {
                Ok(n) => a.frames += n as u64,
                Err(_) => a.failed += 1,
            }
        }
        Ok(Some(a))
    }

    type Opened = (Box<dyn FormatReader>, u32, AudioCodecParameters);

    fn open(path: &Path) -> Result<Option<Opened>, String> {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let mss = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
        let reader = symphonia::default::get_probe()
            .probe(
                &Hint::new(),
                mss,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| e.to_string())?;
        let track = reader
            .default_track(TrackType::Audio)
            .ok_or("no audio track")?;
        let Some(CodecParameters::Audio(params)) = &track.codec_params else {
            return Err("no audio codec parameters".into());
        };
        if params.codec != CODEC_ID_ALAC {
            return Ok(None);
        }
        let (id, params) = (track.id, params.clone());
        Ok(Some((reader, id, params)))
    }

    /// `Ok(None)` when the file's first audio track is not ALAC.
    pub fn compare_file(path: &Path) -> Result<Option<Comparison>, String> {
        let (mut reader, track_id, params) = match open(path)? {
            Some(x) => x,
            None => return Ok(None),
        };
        let params = &params;
        let mut ours = super::AlacDecoder::try_new(params).map_err(|e| e.to_string())?;
        let mut theirs = symphonia::default::codecs::AlacDecoder::try_new(
            params,
            &AudioDecoderOptions::default(),
        )
        .map_err(|e| e.to_string())?;
        let mut c = Comparison::default();
        loop {
            let packet = match reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => return Err(format!("demuxing: {e}")),
            };
            if packet.track_id != track_id {
                continue;
            }
            c.packets += 1;
            let t = Instant::now();
            let a = ours.decode(&packet);
            c.ours += t.elapsed();
            let t = Instant::now();
            let b = theirs.decode(&packet);
            c.theirs += t.elapsed();
            let diff = match (a, b) {
                (Err(_), Err(_)) => {
                    c.both_failed += 1;
                    None
                }
                (Ok(_), Err(e)) => Some(format!("symphonia fails alone ({e})")),
                (Err(e), Ok(_)) => Some(format!("ours fails alone ({e})")),
                (Ok(a), Ok(b)) => match (a, b) {
                    (GenericAudioBufferRef::S32(a), GenericAudioBufferRef::S32(b)) => {
                        if a.spec() != b.spec() {
                            Some(format!("spec {:?} against {:?}", a.spec(), b.spec()))
                        } else if a.frames() != b.frames() {
                            Some(format!("{} frames against {}", a.frames(), b.frames()))
                        } else {
                            c.frames += a.frames() as u64;
                            (0..a.num_planes())
                                .find(|&p| a.plane(p) != b.plane(p))
                                .map(|p| format!("plane {p} differs"))
                        }
                    }
                    _ => Some("not both 32-bit signed buffers".into()),
                },
            };
            if let Some(d) = diff {
                c.mismatches += 1;
                if c.first_mismatch.is_none() {
                    c.first_mismatch = Some(format!("packet {}: {d}", c.packets - 1));
                }
            }
        }
        Ok(Some(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift;

    /// Residual-like data: mostly small, some large, some extreme values (as corrupt data gives).
    fn data(rng: &mut XorShift, n: usize, bps: u32) -> Vec<i32> {
        (0..n)
            .map(|_| match rng.next_u32() % 16 {
                0 => rng.next_u32() as i32,
                1 => i32::MIN,
                2 => 0,
                3..=5 => (rng.next_u32() as i32) >> (33 - bps.min(32)).min(31),
                _ => (rng.next_u32() as i32) >> 22,
            })
            .collect()
    }

    fn coefs(rng: &mut XorShift) -> [i32; 32] {
        std::array::from_fn(|_| (rng.next_u32() as i32) >> 18)
    }

    /// The AVX2 predictors (one channel, and a pair of any two orders) give the scalar one's
    /// samples, on ordinary and on extreme values.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_predictors_match_the_scalar_one() {
        if !fast_cpu() {
            return;
        }
        let mut rng = XorShift::new(1);
        macro_rules! check {
            ($($n:literal)*) => {$(
                for round in 0..60 {
                    let bps = [17, 24, 32, 16][round % 4];
                    let clip = 32 - bps;
                    let shift = rng.next_u32() % 16;
                    let n = [4096, 9, 10, 1000][round % 4];
                    let c = coefs(&mut rng);
                    let input = data(&mut rng, n, bps);
                    let mut a = input.clone();
                    lpc::<$n>(&mut a, &c, shift, clip);
                    let mut b = input.clone();
                    // SAFETY: `fast_cpu` is true.
                    unsafe { avx2::lpc::<$n>(&mut b, &c, shift, clip) };
                    assert_eq!(a, b, "order {} round {round}", $n);
                    // Paired with another order and another length.
                    let o1 = 2 + (rng.next_u32() % 7) as usize;
                    let n1 = if round % 3 == 0 { n / 2 + 1 } else { n };
                    let c1 = coefs(&mut rng);
                    let shift1 = rng.next_u32() % 16;
                    let in1 = data(&mut rng, n1, bps);
                    let mut x0 = input.clone();
                    let mut x1 = in1.clone();
                    // SAFETY: `fast_cpu` is true.
                    unsafe {
                        avx2::lpc_pair_with::<$n>(
                            &mut x0, &c, shift, o1, &mut x1, &c1, shift1, clip,
                        )
                    };
                    assert_eq!(a, x0, "pair, first channel, order {}", $n);
                    let mut y1 = in1.clone();
                    let h1 = ChannelHeader {
                        mode: 0,
                        shift: shift1,
                        pb_factor: 0,
                        mb: 0,
                        order: o1,
                        coefs: c1,
                    };
                    h1.lpc(&mut y1, bps, false);
                    assert_eq!(x1, y1, "pair, second channel, orders {} and {o1}", $n);
                }
            )*};
        }
        check!(2 3 4 5 6 7 8);
    }
}
