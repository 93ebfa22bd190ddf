//! Content sniffing: what a file holds, judged from its first bytes, never from its name.

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A container or stream symphonia or ffmpeg may read (the name is for messages).
    Audio(&'static str),
    /// Recognisably something else: an image, a document, an archive, text.
    Other(&'static str),
    /// Nothing recognised.
    Unknown,
}

/// Sniffs the first bytes (64 or more give the best answer) of a file.
pub fn sniff(head: &[u8]) -> Kind {
    let at = |off: usize, magic: &[u8]| {
        head.len() >= off + magic.len() && &head[off..off + magic.len()] == magic
    };
    if at(0, b"fLaC") {
        return Kind::Audio("flac");
    }
    if at(0, b"ID3") {
        return Kind::Audio("id3-tagged");
    }
    if at(0, b"RIFF") && (at(8, b"WAVE") || at(8, b"RF64")) || at(0, b"RF64") {
        return Kind::Audio("wav");
    }
    if at(0, b"RIFF") && at(8, b"AVI ") {
        return Kind::Other("AVI video");
    }
    if at(0, b"FORM") && (at(8, b"AIFF") || at(8, b"AIFC")) {
        return Kind::Audio("aiff");
    }
    if at(0, b"OggS") {
        return Kind::Audio("ogg");
    }
    if at(4, b"ftyp") {
        return Kind::Audio("mp4");
    }
    if at(0, b"caff") {
        return Kind::Audio("caf");
    }
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        return Kind::Audio("matroska");
    }
    if at(0, &[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11]) {
        return Kind::Audio("asf");
    }
    if at(0, b"MAC ") {
        return Kind::Audio("ape");
    }
    if at(0, b"wvpk") {
        return Kind::Audio("wavpack");
    }
    if at(0, b"#!AMR") {
        return Kind::Audio("amr");
    }
    if at(0, b".snd") {
        return Kind::Audio("au");
    }
    if at(0, &[0x89, b'P', b'N', b'G']) {
        return Kind::Other("PNG image");
    }
    if at(0, &[0xFF, 0xD8, 0xFF]) {
        return Kind::Other("JPEG image");
    }
    if at(0, b"GIF8") {
        return Kind::Other("GIF image");
    }
    if at(0, b"%PDF") {
        return Kind::Other("PDF document");
    }
    if at(0, b"PK\x03\x04") {
        return Kind::Other("ZIP archive");
    }
    if at(0, &[0x1F, 0x8B]) {
        return Kind::Other("gzip archive");
    }
    if at(0, b"\x7FELF") {
        return Kind::Other("executable");
    }
    // MPEG audio frame sync (11 set bits) with a valid layer, or ADTS AAC.
    if head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0 && head[1] & 0x06 != 0 {
        return Kind::Audio("mpeg");
    }
    if head.len() >= 2 && head[0] == 0xFF && head[1] & 0xF6 == 0xF0 {
        return Kind::Audio("adts");
    }
    if looks_like_text(head) {
        return Kind::Other("text");
    }
    Kind::Unknown
}

/// True when the bytes are printable text (ASCII or UTF-8), as in a README named `.flac`.
fn looks_like_text(head: &[u8]) -> bool {
    if head.len() < 16 {
        return false;
    }
    let text = match std::str::from_utf8(head) {
        Ok(s) => s,
        // The head may cut a multi-byte character: judge the valid prefix.
        Err(e) if e.valid_up_to() + 4 >= head.len() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    !text.is_empty() && text.chars().all(|c| !c.is_control() || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_containers_and_impostors() {
        assert_eq!(sniff(b"fLaC\0\0\0\x22"), Kind::Audio("flac"));
        assert_eq!(
            sniff(b"ID3\x03\0\0\0\0\0\x10fLaC"),
            Kind::Audio("id3-tagged")
        );
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), Kind::Audio("wav"));
        assert_eq!(sniff(b"\0\0\0\x20ftypM4A "), Kind::Audio("mp4"));
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x00]), Kind::Audio("mpeg"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Kind::Other("JPEG image"));
        assert_eq!(
            sniff(b"This is a text file, not audio.\n"),
            Kind::Other("text")
        );
        assert_eq!(sniff(&[0u8; 64]), Kind::Unknown);
    }
}
