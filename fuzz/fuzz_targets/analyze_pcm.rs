//! The analysis of short odd buffers: rate, channels and signal derived from the input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sonoprint_fuzz::analyze_pcm(data);
});
