//! Times our FLAC decoder against symphonia's on the packets of one file, held in memory:
//! decoding alone, no demuxing (alternating, best of 10 passes each). Ours twice: as the codec
//! registry makes it (checking the frame CRC-16) and as made for symphonia's FLAC demuxer, which
//! has checked it (`try_new_for_flac_reader`).
//!
//! ```sh
//! cargo run --release -p sonoprint-engine --example flac_speed -- FILE.flac
//! ```

use std::fs::File;
use std::time::Instant;

use sonoprint_engine::decode::flac::FlacDecoder;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: flac_speed FILE.flac");
    let file = File::open(&path).expect("open");
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut reader = symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .expect("probe");
    let track = reader
        .default_track(TrackType::Audio)
        .expect("track")
        .clone();
    let Some(CodecParameters::Audio(params)) = &track.codec_params else {
        panic!("no audio parameters")
    };
    let mut packets = Vec::new();
    while let Ok(Some(p)) = reader.next_packet() {
        packets.push(p);
    }
    let opts = AudioDecoderOptions::default();
    let mut ours = FlacDecoder::try_new(params, &opts).expect("ours");
    let mut ours_reader = FlacDecoder::try_new_for_flac_reader(params).expect("ours");
    let mut theirs =
        symphonia::default::codecs::FlacDecoder::try_new(params, &opts).expect("symphonia");
    let once = |d: &mut dyn AudioDecoder| {
        let t = Instant::now();
        let mut frames = 0;
        for p in &packets {
            frames += d.decode(p).map_or(0, |b| b.frames());
        }
        std::hint::black_box(frames);
        t.elapsed().as_secs_f64()
    };
    // Alternating, best of 10 each: the machine may be shared.
    let (mut a, mut b, mut c) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for _ in 0..10 {
        a = a.min(once(&mut ours));
        c = c.min(once(&mut ours_reader));
        b = b.min(once(&mut theirs));
    }
    println!(
        "{} packets: ours {:.1} ms, symphonia {:.1} ms, ratio {:.2}; \
         ours without the CRC (FLAC demuxer) {:.1} ms, ratio {:.2}",
        packets.len(),
        a * 1e3,
        b * 1e3,
        b / a,
        c * 1e3,
        b / c
    );
}
