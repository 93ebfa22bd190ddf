//! Resampling the mono mix to 22 050 Hz for the `22k` dimensions.
//!
//! 44.1 kHz (and 88.2 / 176.4 kHz), most of any library, goes through an exact 2:1 half-band
//! FIR decimator, written here because it is a handful of lines and several times cheaper than
//! a general resampler (every other tap is zero and the filter is symmetric). Other rates go
//! through rubato's FFT resampler. Both are time-aligned: output sample `j` is at input time
//! `j / 22050` s, and a segment of `n` input samples yields `ceil(n * 22050 / rate)` samples.

use rubato::{FftFixedIn, Resampler as _};

use super::SR22;

/// Taps on each side of the half-band filter's centre (odd lags 1, 3, ..., HALF_TAPS - 1).
const HALF_TAPS: usize = 48;

/// Streaming resampler of one channel to 22 050 Hz.
pub struct Resampler {
    stages: Vec<Stage>,
    scratch: Vec<f32>,
}

enum Stage {
    HalfBand(HalfBand),
    Fft(Box<FftStage>),
}

impl Resampler {
    pub fn new(rate: u32) -> Result<Resampler, String> {
        let mut stages = Vec::new();
        let mut r = rate;
        while r > SR22 && r.is_multiple_of(2 * SR22) {
            stages.push(Stage::HalfBand(HalfBand::new()));
            r /= 2;
        }
        if r != SR22 {
            stages.push(Stage::Fft(Box::new(FftStage::new(r)?)));
        }
        Ok(Resampler {
            stages,
            scratch: Vec::new(),
        })
    }

    /// Resamples `input`, appending to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        self.run(Some(input), out);
    }

    /// Ends a segment: appends the remaining output and resets for the next segment.
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        self.run(None, out);
    }

    fn run(&mut self, input: Option<&[f32]>, out: &mut Vec<f32>) {
        if self.stages.is_empty() {
            out.extend_from_slice(input.unwrap_or_default());
            return;
        }
        let mut cur: Vec<f32> = input.map(|x| x.to_vec()).unwrap_or_default();
        let last = self.stages.len() - 1;
        for (i, stage) in self.stages.iter_mut().enumerate() {
            let dst = if i == last {
                &mut *out
            } else {
                &mut self.scratch
            };
            let start = dst.len();
            match (stage, input.is_some()) {
                (Stage::HalfBand(h), true) => h.push(&cur, dst),
                (Stage::HalfBand(h), false) => {
                    h.push(&cur, dst);
                    h.finish(dst);
                }
                (Stage::Fft(f), true) => f.push(&cur, dst),
                (Stage::Fft(f), false) => {
                    f.push(&cur, dst);
                    f.finish(dst);
                }
            }
            if i != last {
                cur.clear();
                cur.extend_from_slice(&self.scratch[start..]);
                self.scratch.clear();
            }
        }
    }
}

/// Zero-phase 2:1 decimator with a Kaiser-windowed half-band low-pass (cut-off at a quarter of
/// the input rate, ~80 dB stop band, pass band flat to ~0.45 of the output Nyquist... 0.9).
struct HalfBand {
    /// Coefficients of the odd lags 1, 3, 5, ...; the centre tap is 0.5, even lags are 0.
    coef: [f32; HALF_TAPS / 2],
    /// Input history: `HALF_TAPS` samples of left context, then unconsumed input.
    buf: Vec<f32>,
    /// Absolute index (within the segment) of `buf[HALF_TAPS]`.
    consumed: usize,
    /// Input samples seen in this segment.
    seen: usize,
}

impl HalfBand {
    fn new() -> HalfBand {
        let beta = 8.0f64;
        let i0b = bessel_i0(beta);
        let mut coef = [0f32; HALF_TAPS / 2];
        let mut sum = 0.5f64;
        let mut raw = [0f64; HALF_TAPS / 2];
        for (k, c) in raw.iter_mut().enumerate() {
            let n = (2 * k + 1) as f64;
            let sinc = (std::f64::consts::PI * n / 2.0).sin() / (std::f64::consts::PI * n / 2.0);
            let x = n / (HALF_TAPS as f64 + 1.0);
            let w = bessel_i0(beta * (1.0 - x * x).max(0.0).sqrt()) / i0b;
            *c = 0.5 * sinc * w;
            sum += 2.0 * *c;
        }
        // Normalise the DC gain to exactly 1.
        for (c, r) in coef.iter_mut().zip(raw) {
            *c = (r / sum) as f32;
        }
        let mut h = HalfBand {
            coef,
            buf: Vec::new(),
            consumed: 0,
            seen: 0,
        };
        h.reset();
        h
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.buf.resize(HALF_TAPS, 0.0);
        self.consumed = 0;
        self.seen = 0;
    }

    fn centre_gain(&self) -> f32 {
        1.0 - 2.0 * self.coef.iter().sum::<f32>()
    }

    /// Emits every output whose right context is available.
    fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        self.buf.extend_from_slice(input);
        self.seen += input.len();
        self.drain(out);
    }

    fn drain(&mut self, out: &mut Vec<f32>) {
        let c0 = self.centre_gain();
        // Output j sits on input 2j; position p in buf holds input index consumed + p - HALF_TAPS.
        let mut p = HALF_TAPS;
        while p + HALF_TAPS < self.buf.len() {
            let b = &self.buf;
            let mut acc = c0 * b[p];
            for (k, &c) in self.coef.iter().enumerate() {
                let lag = 2 * k + 1;
                acc += c * (b[p - lag] + b[p + lag]);
            }
            out.push(acc);
            p += 2;
        }
        // Keep HALF_TAPS of left context before the next centre.
        let drop = p - HALF_TAPS;
        self.buf.drain(..drop);
        self.consumed += drop;
    }

    fn finish(&mut self, out: &mut Vec<f32>) {
        let expected = self.seen.div_ceil(2);
        self.buf.extend(std::iter::repeat_n(0.0, HALF_TAPS + 2));
        let before = out.len();
        self.drain(out);
        let emitted = self.consumed.div_ceil(2);
        // Trim the outputs that lie past the end of the input.
        let extra = emitted.saturating_sub(expected).min(out.len() - before);
        out.truncate(out.len() - extra);
        self.reset();
    }
}

fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..50 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < 1e-12 * sum {
            break;
        }
    }
    sum
}

/// Any other ratio: rubato's FFT resampler, with its delay trimmed and its tail flushed.
struct FftStage {
    rate: u32,
    inner: FftFixedIn<f32>,
    pending: Vec<f32>,
    out_buf: Vec<Vec<f32>>,
    /// Output samples still to drop at the start of the segment (the filter delay).
    to_skip: usize,
    seen: usize,
    emitted: usize,
}

impl FftStage {
    fn new(rate: u32) -> Result<FftStage, String> {
        let inner = FftFixedIn::<f32>::new(rate as usize, SR22 as usize, 1024, 2, 1)
            .map_err(|e| format!("cannot resample {rate} Hz: {e}"))?;
        let out_buf = inner.output_buffer_allocate(true);
        let to_skip = inner.output_delay();
        Ok(FftStage {
            rate,
            inner,
            pending: Vec::new(),
            out_buf,
            to_skip,
            seen: 0,
            emitted: 0,
        })
    }

    fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        self.pending.extend_from_slice(input);
        self.seen += input.len();
        let mut start = 0;
        loop {
            let need = self.inner.input_frames_next();
            if self.pending.len() - start < need {
                break;
            }
            let chunk = [&self.pending[start..start + need]];
            // Sizes come from the resampler itself, so this cannot fail.
            if let Ok((used, n)) = self
                .inner
                .process_into_buffer(&chunk, &mut self.out_buf, None)
            {
                start += used;
                self.emit(n, out);
            } else {
                break;
            }
        }
        self.pending.drain(..start);
    }

    fn emit(&mut self, n: usize, out: &mut Vec<f32>) {
        let skip = self.to_skip.min(n);
        self.to_skip -= skip;
        out.extend_from_slice(&self.out_buf[0][skip..n]);
        self.emitted += n - skip;
    }

    fn finish(&mut self, out: &mut Vec<f32>) {
        let expected = (self.seen as u64 * SR22 as u64).div_ceil(self.rate as u64) as usize;
        let mut rounds = 0;
        while self.emitted < expected && rounds < 64 {
            let tail = std::mem::take(&mut self.pending);
            let input = [tail.as_slice()];
            let res = if tail.is_empty() {
                self.inner
                    .process_partial_into_buffer(None::<&[&[f32]]>, &mut self.out_buf, None)
            } else {
                self.inner
                    .process_partial_into_buffer(Some(&input[..]), &mut self.out_buf, None)
            };
            match res {
                Ok((_, n)) => self.emit(n, out),
                Err(_) => break,
            }
            rounds += 1;
        }
        if self.emitted > expected {
            out.truncate(out.len() - (self.emitted - expected));
        }
        self.inner.reset();
        self.pending.clear();
        self.to_skip = self.inner.output_delay();
        self.seen = 0;
        self.emitted = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, f: f64, secs: f64) -> Vec<f32> {
        let n = (rate as f64 * secs) as usize;
        (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * f * i as f64 / rate as f64).sin() as f32)
            .collect()
    }

    fn resample_all(rate: u32, x: &[f32], chunk: usize) -> Vec<f32> {
        let mut r = Resampler::new(rate).unwrap();
        let mut out = Vec::new();
        for c in x.chunks(chunk) {
            r.push(c, &mut out);
        }
        r.finish(&mut out);
        out
    }

    #[test]
    fn lengths_and_alignment() {
        for rate in [8000, 22050, 44100, 48000, 96000, 176400, 192000] {
            let x = sine(rate, 1000.0, 2.0);
            let y = resample_all(rate, &x, 777);
            let expect = (x.len() as u64 * 22050).div_ceil(rate as u64) as usize;
            assert_eq!(y.len(), expect, "rate {rate}");
            // In the middle the output is the same sine at 22 050 Hz, in phase (rubato's
            // ratios may leave up to half an output sample of delay: 0.16 at 1 kHz).
            let want = sine(22050, 1000.0, 2.0);
            let tol = if rate % 22050 == 0 { 0.01 } else { 0.16 };
            for i in (expect / 4..expect * 3 / 4).step_by(97) {
                assert!(
                    (y[i] - want[i]).abs() < tol,
                    "rate {rate} sample {i}: {} vs {}",
                    y[i],
                    want[i]
                );
            }
        }
    }

    #[test]
    fn half_band_rejects_aliases_and_is_chunk_independent() {
        // 16 kHz at 44.1 kHz would alias to 6.05 kHz: it must be removed.
        let x = sine(44100, 16000.0, 1.0);
        let y = resample_all(44100, &x, 4096);
        let rms = (y[200..y.len() - 200].iter().map(|v| v * v).sum::<f32>()
            / (y.len() - 400) as f32)
            .sqrt();
        assert!(rms < 1e-3, "alias rms {rms}");
        let a = resample_all(44100, &sine(44100, 440.0, 1.0), 1);
        let b = resample_all(44100, &sine(44100, 440.0, 1.0), 100_000);
        assert_eq!(a, b);
    }
}
