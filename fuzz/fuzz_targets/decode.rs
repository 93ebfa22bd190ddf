//! The decoding front end on arbitrary bytes: sniffing, probing, the packet loop, a seek.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sonoprint_fuzz::decode(data);
});
