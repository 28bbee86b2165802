//! Container checks run before audio reaches symphonia.
//!
//! symphonia 0.5 allocates some buffers at the size a file *declares* before it
//! reads them: FLAC metadata blocks (Vorbis comments, pictures), Vorbis comment
//! headers, ID3v2 frames, RIFF `LIST` chunks, Vorbis codebook tables. A
//! 500-byte file that declares a 2 GiB comment makes it ask for 2 GiB — an
//! allocation failure aborts the daemon (every call drops), and the fuzzer
//! found exactly that. Nothing here needs the metadata, so before decoding:
//!
//! * **RIFF/WAVE** is rebuilt with only its `fmt `, `fact` and `data` chunks;
//! * **FLAC** metadata blocks other than STREAMINFO and SEEKTABLE become
//!   PADDING (which symphonia skips without allocating);
//! * leading **ID3v2** tags (MP3) are cut off;
//! * **OGG** must carry Vorbis, and its comment header's lengths must fit the
//!   packet, and its codebooks must be of sane size (the lookup tables are
//!   `entries × dimensions` floats).
//!
//! MP3 frames are bounded by their headers. A file must *start* with one of
//! these containers (or an MPEG audio frame), and the decoder opens that
//! container's reader directly: symphonia's probe would search through junk for
//! any marker and land on an unchecked container.

use super::error::{MediaError, Result};

/// Largest total of `entries × dimensions` over a Vorbis stream's codebooks
/// (libvorbis' books stay far below: a few tens of thousands).
const MAX_CODEBOOK_VALUES: u64 = 1 << 22;

/// Most channels a WAV file may declare (7.1 surround; prompts are mono).
const MAX_WAV_CHANNELS: u16 = 8;

/// The WAV format tag whose `fmt ` chunk carries a channel mask.
const WAVE_FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// ADPCM WAV format tags (Microsoft, IMA/DVI) and the bytes each channel's block header
/// takes, from which symphonia works out the frames in a block.
const ADPCM_BLOCK_HEADERS: [(u16, u16); 2] = [(0x0002, 7), (0x0011, 4)];

fn bad(what: &str, reason: &str) -> MediaError {
    MediaError::Decode {
        what: what.to_owned(),
        reason: reason.to_owned(),
    }
}

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// The container a file starts with; the decoder opens exactly that reader
/// (never symphonia's probe, which searches on through the data for any marker
/// and would land on an unchecked container).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container {
    /// RIFF/WAVE.
    Wav,
    /// Native FLAC.
    Flac,
    /// OGG with Vorbis.
    Ogg,
    /// MPEG audio frames (MP3).
    Mpeg,
}

impl Container {
    /// The cargo feature of the daemon that decodes it (WAV is always in).
    #[cfg_attr(
        all(feature = "flac", feature = "ogg-vorbis", feature = "mp3"),
        expect(dead_code, reason = "every decoder is in this build")
    )]
    pub(crate) fn feature(self) -> &'static str {
        match self {
            Self::Wav => "wav",
            Self::Flac => "flac",
            Self::Ogg => "ogg-vorbis",
            Self::Mpeg => "mp3",
        }
    }
}

/// Identifies the container and returns the bytes symphonia may see
/// (rewritten where needed).
pub(crate) fn sanitize(mut bytes: Vec<u8>, what: &str) -> Result<(Vec<u8>, Container)> {
    if bytes.starts_with(b"RIFF") {
        return Ok((riff(&bytes, what)?, Container::Wav));
    }
    if bytes.starts_with(b"ID3") {
        bytes = strip_id3v2(bytes, what)?;
    }
    let container = if bytes.starts_with(b"fLaC") {
        flac(&mut bytes, what)?;
        Container::Flac
    } else if bytes.starts_with(b"OggS") {
        ogg(&bytes, what)?;
        Container::Ogg
    } else if matches!(bytes.as_slice(), [0xff, b, ..] if b & 0xe0 == 0xe0) {
        Container::Mpeg
    } else {
        return Err(bad(what, "not WAV, MP3, FLAC or OGG/Vorbis audio"));
    };
    Ok((bytes, container))
}

/// Keeps `fmt `, `fact` and `data`; a `data` chunk longer than the file is cut
/// to what is there.
fn riff(b: &[u8], what: &str) -> Result<Vec<u8>> {
    if b.get(8..12) != Some(b"WAVE") {
        return Err(bad(what, "RIFF but not WAVE"));
    }
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(b"RIFF\0\0\0\0WAVE");
    let mut pos = 12usize;
    let mut has_fmt = false;
    while let (Some(id), Some(len)) = (b.get(pos..pos + 4), u32_le(b, pos + 4)) {
        let start = pos + 8;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        let end = start.saturating_add(len).min(b.len());
        // One format: the checks below read the first, and symphonia would read a later
        // one (a zero rate there panicked it; found by the media_decode fuzz target).
        let keep = match id {
            b"fmt " => !std::mem::replace(&mut has_fmt, true),
            b"fact" | b"data" => true,
            _ => false,
        };
        if keep {
            let body = &b[start.min(b.len())..end];
            let body = if id == b"data" {
                &body[..body.len() & !1]
            } else {
                body
            };
            out.extend_from_slice(id);
            out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(body);
            if body.len() % 2 == 1 {
                out.push(0);
            }
        }
        // Chunks are padded to an even length.
        pos = end.saturating_add(len % 2);
        if end >= b.len() {
            break;
        }
    }
    // symphonia panics on a zero rate or channel count (caught, but checked here).
    if let Some(i) = out.windows(4).position(|w| w == b"fmt ") {
        // The match can be bytes inside another chunk near the end (found by the
        // media_decode fuzz target): no room for a format there is no format.
        let fmt = out.get(i + 8..).unwrap_or_default();
        let channels = fmt.get(2..4).map(|c| u16::from_le_bytes([c[0], c[1]]));
        let rate = u32_le(fmt, 4);
        let align = fmt.get(12..14).map(|c| u16::from_le_bytes([c[0], c[1]]));
        if channels.is_none_or(|c| c == 0)
            || rate.is_none_or(|r| r == 0)
            || align.is_none_or(|a| a == 0)
        {
            return Err(bad(what, "WAV format with no channels, rate or block size"));
        }
        // symphonia 0.5 completes a WAVE_FORMAT_EXTENSIBLE channel mask with shifts
        // that overflow for dozens of channels or speaker bits past the 18 defined
        // ones (a panic, found by the media_decode fuzz target); no prompt needs them.
        if channels.is_some_and(|c| c > MAX_WAV_CHANNELS) {
            return Err(bad(what, "WAV with more than 8 channels"));
        }
        let tag = fmt.get(0..2).map(|t| u16::from_le_bytes([t[0], t[1]]));
        // symphonia 0.5 computes an ADPCM block's frames as
        // `(block_align - header × channels) × 8 / (4 × channels)` in u16: a block smaller
        // than its headers, or over 8 KB of samples, overflows (a panic where overflow is
        // checked, garbage block sizes where it wraps; found by the media_decode fuzz
        // target). Real files use blocks of 256 to 2,048 bytes per channel.
        if let (Some(tag), Some(channels), Some(align)) = (tag, channels, align)
            && let Some(&(_, header)) = ADPCM_BLOCK_HEADERS.iter().find(|(t, _)| *t == tag)
            && align
                .checked_sub(header * channels)
                .is_none_or(|samples| samples == 0 || samples.checked_mul(8).is_none())
        {
            return Err(bad(what, "ADPCM WAV block size does not fit its channels"));
        }
        if tag == Some(WAVE_FORMAT_EXTENSIBLE) && u32_le(fmt, 20).is_some_and(|m| m >> 18 != 0) {
            return Err(bad(
                what,
                "WAV channel mask names speakers that do not exist",
            ));
        }
    }
    let riff_len = u32::try_from(out.len() - 8).unwrap_or(u32::MAX);
    out[4..8].copy_from_slice(&riff_len.to_le_bytes());
    Ok(out)
}

fn strip_id3v2(mut bytes: Vec<u8>, what: &str) -> Result<Vec<u8>> {
    while bytes.starts_with(b"ID3") {
        let h = bytes
            .get(..10)
            .ok_or_else(|| bad(what, "truncated ID3v2 header"))?;
        let size = h[6..10].iter().try_fold(0usize, |acc, &b| {
            (b < 0x80).then_some(acc << 7 | usize::from(b))
        });
        let size = size.ok_or_else(|| bad(what, "bad ID3v2 size"))?;
        let footer = if h[3] == 4 && h[5] & 0x10 != 0 { 10 } else { 0 };
        let total = 10 + size + footer;
        if total > bytes.len() {
            return Err(bad(what, "ID3v2 tag longer than the file"));
        }
        bytes.drain(..total);
    }
    Ok(bytes)
}

/// Turns every metadata block but STREAMINFO (0) and SEEKTABLE (3) into PADDING (1).
fn flac(b: &mut [u8], what: &str) -> Result<()> {
    let mut pos = 4usize;
    loop {
        let header = b
            .get(pos..pos + 4)
            .ok_or_else(|| bad(what, "truncated FLAC metadata"))?;
        let (last, kind) = (header[0] & 0x80 != 0, header[0] & 0x7f);
        let len =
            usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
        if kind == 127 {
            return Err(bad(what, "invalid FLAC metadata block type"));
        }
        if kind != 0 && kind != 3 {
            b[pos] = (header[0] & 0x80) | 1;
        }
        pos += 4 + len;
        if last {
            return Ok(());
        }
        if pos > b.len() {
            return Err(bad(what, "FLAC metadata longer than the file"));
        }
    }
}

/// The first `want` packets of the first logical stream.
fn ogg_packets(b: &[u8], want: usize, what: &str) -> Result<Vec<Vec<u8>>> {
    let mut packets = Vec::new();
    let mut current = Vec::new();
    let mut serial = None;
    let mut pos = 0usize;
    while packets.len() < want {
        let h = b
            .get(pos..pos + 27)
            .ok_or_else(|| bad(what, "OGG stream ends in its headers"))?;
        if &h[..4] != b"OggS" {
            return Err(bad(what, "broken OGG page"));
        }
        let page_serial = u32_le(h, 14).unwrap_or(0);
        let nseg = usize::from(h[26]);
        let table = b
            .get(pos + 27..pos + 27 + nseg)
            .ok_or_else(|| bad(what, "truncated OGG page"))?;
        let mut data = pos + 27 + nseg;
        let total: usize = table.iter().map(|&l| usize::from(l)).sum();
        let next = data + total;
        if *serial.get_or_insert(page_serial) == page_serial {
            for &lace in table {
                let seg = b
                    .get(data..data + usize::from(lace))
                    .ok_or_else(|| bad(what, "truncated OGG page"))?;
                current.extend_from_slice(seg);
                data += usize::from(lace);
                if lace < 255 {
                    packets.push(std::mem::take(&mut current));
                    if packets.len() == want {
                        break;
                    }
                }
            }
        }
        pos = next;
    }
    Ok(packets)
}

fn ogg(b: &[u8], what: &str) -> Result<()> {
    let packets = ogg_packets(b, 3, what)?;
    let [ident, comment, setup] = packets.as_slice() else {
        return Err(bad(what, "OGG stream without its three headers"));
    };
    if !ident.starts_with(b"\x01vorbis") {
        return Err(bad(what, "only Vorbis is supported in OGG"));
    }
    if ident.get(11).is_none_or(|&c| c == 0) || u32_le(ident, 12).is_none_or(|r| r == 0) {
        return Err(bad(what, "Vorbis stream with no channels or rate"));
    }
    if !comment.starts_with(b"\x03vorbis") || !setup.starts_with(b"\x05vorbis") {
        return Err(bad(what, "Vorbis headers out of order"));
    }
    check_comments(comment, what)?;
    check_codebooks(setup, what)
}

fn check_comments(p: &[u8], what: &str) -> Result<()> {
    let err = || bad(what, "Vorbis comment lengths exceed the header");
    let mut pos = 7usize;
    let take = |pos: &mut usize| -> Result<usize> {
        let len = u32_le(p, *pos).ok_or_else(err)?;
        *pos += 4;
        usize::try_from(len).map_err(|_| err())
    };
    let vendor = take(&mut pos)?;
    pos = pos
        .checked_add(vendor)
        .filter(|&e| e <= p.len())
        .ok_or_else(err)?;
    let n = take(&mut pos)?;
    for _ in 0..n {
        let len = take(&mut pos)?;
        pos = pos
            .checked_add(len)
            .filter(|&e| e <= p.len())
            .ok_or_else(err)?;
    }
    Ok(())
}

/// LSB-first bit reader (Vorbis packing).
struct Bits<'a> {
    b: &'a [u8],
    bit: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: u32) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..n {
            let byte = *self.b.get(self.bit / 8)?;
            v |= u64::from((byte >> (self.bit % 8)) & 1) << i;
            self.bit += 1;
        }
        Some(v)
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        let end = u64::try_from(self.bit).ok()?.checked_add(n)?;
        if end > u64::try_from(self.b.len()).ok()? * 8 {
            return None;
        }
        self.bit = usize::try_from(end).ok()?;
        Some(())
    }
}

fn ilog(v: u64) -> u32 {
    64 - v.leading_zeros()
}

/// The largest `v` with `v^dims <= entries`.
fn lookup1_values(entries: u64, dims: u64) -> u64 {
    let pow = |v: u64| (0..dims).try_fold(1u64, |acc, _| acc.checked_mul(v));
    let mut v = 0u64;
    while pow(v + 1).is_some_and(|p| p <= entries) {
        v += 1;
    }
    v
}

fn check_codebooks(p: &[u8], what: &str) -> Result<()> {
    let err = |r: &str| bad(what, r);
    let mut bits = Bits {
        b: p.get(7..).unwrap_or(&[]),
        bit: 0,
    };
    let truncated = || bad(what, "truncated Vorbis setup header");
    let count = bits.read(8).ok_or_else(truncated)? + 1;
    let mut total = 0u64;
    for _ in 0..count {
        if bits.read(24).ok_or_else(truncated)? != 0x0056_4342 {
            return Err(err("bad Vorbis codebook sync"));
        }
        let dims = bits.read(16).ok_or_else(truncated)?;
        let entries = bits.read(24).ok_or_else(truncated)?;
        if dims == 0 && entries > 0 {
            return Err(err("Vorbis codebook with zero dimensions"));
        }
        total = total.saturating_add(entries.saturating_mul(dims));
        if total > MAX_CODEBOOK_VALUES {
            return Err(err("Vorbis codebooks too large"));
        }
        if bits.read(1).ok_or_else(truncated)? == 1 {
            let mut entry = 0u64;
            bits.read(5).ok_or_else(truncated)?;
            while entry < entries {
                entry += bits.read(ilog(entries - entry)).ok_or_else(truncated)?;
                if entry > entries {
                    return Err(err("bad ordered Vorbis codebook"));
                }
            }
        } else {
            let sparse = bits.read(1).ok_or_else(truncated)? == 1;
            for _ in 0..entries {
                if !sparse || bits.read(1).ok_or_else(truncated)? == 1 {
                    bits.read(5).ok_or_else(truncated)?;
                }
            }
        }
        match bits.read(4).ok_or_else(truncated)? {
            0 => {}
            kind @ (1 | 2) => {
                bits.skip(64).ok_or_else(truncated)?;
                let value_bits = bits.read(4).ok_or_else(truncated)? + 1;
                bits.read(1).ok_or_else(truncated)?;
                let values = if kind == 1 {
                    lookup1_values(entries, dims)
                } else {
                    entries * dims
                };
                bits.skip(values.saturating_mul(value_bits))
                    .ok_or_else(truncated)?;
            }
            _ => return Err(err("bad Vorbis codebook lookup type")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `fmt ` chunk (id, length, body) of `len` body bytes: format `tag`, `channels`,
    /// `rate`, block `align`, `bits` per sample; the rest zero.
    fn fmt_chunk(tag: u16, channels: u16, rate: u32, align: u16, bits: u16, len: u32) -> Vec<u8> {
        let mut body = vec![0u8; len as usize];
        body[0..2].copy_from_slice(&tag.to_le_bytes());
        body[2..4].copy_from_slice(&channels.to_le_bytes());
        body[4..8].copy_from_slice(&rate.to_le_bytes());
        body[12..14].copy_from_slice(&align.to_le_bytes());
        body[14..16].copy_from_slice(&bits.to_le_bytes());
        let mut chunk = b"fmt ".to_vec();
        chunk.extend_from_slice(&len.to_le_bytes());
        chunk.extend_from_slice(&body);
        chunk
    }

    /// Found by the media_decode fuzz target: "fmt " as the last bytes of the rebuilt file,
    /// with no room for a format after it, was sliced past the end.
    #[test]
    fn a_format_id_at_the_very_end_is_a_clean_error() {
        let hex = "52494646f75e41ff57415645000007000000000000000000000000006461746100280000000000000000000000000000000000006461744000000000000000000000000000000000000000006461740000000000000000000052494646f75e000000646174000000000000000000000000000000000000000000646174ffff574156000000000000454646809b00000000666d742000000000";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect();
        assert!(riff(&bytes, "fuzz").is_err());
    }

    /// Found by the media_decode fuzz target: an extensible format declaring 32,504
    /// channels made symphonia's channel-mask fix-up overflow a shift.
    #[test]
    fn absurd_channel_counts_and_masks_are_refused() {
        let found: &[u8] = &[
            0x52, 0x49, 0x46, 0x46, 0xf7, 0x5e, 0x41, 0xff, 0x57, 0x41, 0x56, 0x45, 0x66, 0x6d,
            0x74, 0x20, 0x46, 0x46, 0x80, 0x01, 0xfe, 0xff, 0xf8, 0x7e, 0x2e, 0x00, 0x00, 0x00,
            0x49, 0x44, 0x33, 0x00, 0x72, 0xff, 0x08, 0x6a, 0x16, 0x00, 0xbd, 0x5e, 0x46, 0x46,
            0xf7, 0x5e, 0xff, 0x3c, 0x74, 0x20, 0x0d, 0xfe, 0x00, 0xff, 0x00, 0x00, 0x45, 0xff,
            0x57, 0x35, 0xf7, 0x2e,
        ];
        let err = sanitize(found.to_vec(), "x").unwrap_err().to_string();
        assert!(err.contains("more than 8 channels"), "{err}");
        // Stereo, but a mask with a speaker bit no layout defines.
        let mut fmt = fmt_chunk(WAVE_FORMAT_EXTENSIBLE, 2, 8000, 4, 16, 40);
        fmt[28..32].copy_from_slice(&0x8000_0000u32.to_le_bytes());
        let mut wav = b"RIFF\0\0\0\0WAVE".to_vec();
        wav.extend_from_slice(&fmt);
        let err = sanitize(wav, "x").unwrap_err().to_string();
        assert!(err.contains("channel mask"), "{err}");
    }

    /// Found by the media_decode fuzz target: a Microsoft ADPCM format of 5 channels with a
    /// 65,534-byte block overflowed symphonia's frames-per-block arithmetic.
    #[test]
    fn adpcm_blocks_that_overflow_the_frame_count_are_refused() {
        let wav = |tag, channels, align| {
            let mut wav = b"RIFF\0\0\0\0WAVE".to_vec();
            wav.extend_from_slice(&fmt_chunk(tag, channels, 8000, align, 4, 20));
            wav
        };
        let refused = |tag, channels, align| {
            sanitize(wav(tag, channels, align), "x")
                .err()
                .is_some_and(|e| e.to_string().contains("ADPCM"))
        };
        assert!(refused(0x0002, 5, 0xFFFE), "the fuzzer's input");
        assert!(
            refused(0x0002, 2, 14),
            "no room for samples after the headers"
        );
        assert!(refused(0x0011, 2, 4), "smaller than its headers");
        assert!(!refused(0x0002, 2, 1024), "a usual MS ADPCM block");
        assert!(!refused(0x0011, 1, 256), "a usual IMA ADPCM block");
        assert!(!refused(0x0001, 5, 0xFFFE), "PCM has no such arithmetic");
    }

    /// Found by the media_decode fuzz target: a second `fmt ` chunk with a zero rate, after
    /// a first that passed the checks, made symphonia build a time base of 1/0 (a panic).
    #[test]
    fn only_the_first_format_is_kept() {
        let mut wav = b"RIFF\0\0\0\0WAVE".to_vec();
        wav.extend_from_slice(&fmt_chunk(1, 1, 8000, 2, 16, 16));
        wav.extend_from_slice(&fmt_chunk(1, 1, 0, 2, 16, 16));
        let out = riff(&wav, "x").unwrap();
        assert_eq!(out.windows(4).filter(|w| w == b"fmt ").count(), 1);
        assert_eq!(u32_le(&out, 24), Some(8000));
    }

    #[test]
    fn riff_keeps_only_the_audio_chunks() {
        let mut w = b"RIFF\0\0\0\0WAVE".to_vec();
        // A LIST chunk declaring 2 GiB is dropped.
        w.extend_from_slice(b"LIST\xff\xff\xff\x7f");
        w.extend_from_slice(&[0; 5]);
        let out = riff(&w, "t").expect("riff");
        assert_eq!(out, b"RIFF\x04\0\0\0WAVE");
        let fmt = b"\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0";
        let mut ok = b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0".to_vec();
        ok.extend_from_slice(fmt);
        ok.extend_from_slice(b"JUNK\x01\0\0\0x\0data\x09\0\0\x00123");
        let out = riff(&ok, "t").expect("riff");
        let mut want = b"fmt \x10\0\0\0".to_vec();
        want.extend_from_slice(fmt);
        want.extend_from_slice(b"data\x02\0\0\x0012");
        assert_eq!(&out[12..], &want[..]);
        // A zero sample rate would make symphonia panic.
        let mut zero = ok.clone();
        zero[24..28].copy_from_slice(&[0; 4]);
        assert!(riff(&zero, "t").is_err());
    }

    #[test]
    fn flac_metadata_becomes_padding() {
        let mut f = b"fLaC".to_vec();
        f.extend_from_slice(&[0x00, 0, 0, 2, 9, 9]); // STREAMINFO (short, fine here)
        f.extend_from_slice(&[0x04, 0, 0, 3, 1, 2, 3]); // VORBIS_COMMENT
        f.extend_from_slice(&[0x86, 0, 0, 1, 7]); // last: PICTURE
        flac(&mut f, "t").expect("flac");
        assert_eq!(f[4], 0x00);
        assert_eq!(f[10], 0x01);
        assert_eq!(f[17], 0x81);
        assert!(flac(&mut b"fLaC\x04\xff\xff\xff".to_vec(), "t").is_err());
    }

    #[test]
    fn containers_must_start_the_file() {
        let hidden = b"RIFfLaC\x04\xff\xff\xff".to_vec();
        assert!(sanitize(hidden, "t").is_err());
        let mp3 = sanitize(b"\xff\xfb\x90\x00fLaC".to_vec(), "t").expect("mpeg");
        assert_eq!(mp3.1, Container::Mpeg);
    }

    #[test]
    fn id3v2_is_cut_off() {
        let mut m = b"ID3\x04\0\0\0\0\0\x02xy".to_vec();
        m.extend_from_slice(b"\xff\xfbmp3");
        assert_eq!(strip_id3v2(m, "t").expect("id3"), b"\xff\xfbmp3");
        assert!(strip_id3v2(b"ID3\x04\0\0\x7f\x7f\x7f\x7f".to_vec(), "t").is_err());
    }

    #[test]
    fn vorbis_comment_and_codebook_bombs_are_refused() {
        let mut c = b"\x03vorbis".to_vec();
        c.extend_from_slice(&3u32.to_le_bytes());
        c.extend_from_slice(b"abc");
        c.extend_from_slice(&1u32.to_le_bytes());
        c.extend_from_slice(&2u32.to_le_bytes());
        c.extend_from_slice(b"k=");
        check_comments(&c, "t").expect("fits");
        let mut bomb = c.clone();
        let at = bomb.len() - 6;
        bomb[at..at + 4].copy_from_slice(&0x8000_0000u32.to_le_bytes());
        assert!(check_comments(&bomb, "t").is_err());

        // One codebook: sync, dims 65535, entries 16M: refused before any table.
        let mut s = b"\x05vorbis".to_vec();
        let mut v: u128 = 0;
        let mut n = 0;
        for (val, width) in [
            (0u128, 8),
            (0x0056_4342, 24),
            (0xffff, 16),
            (0x00ff_ffff, 24),
        ] {
            v |= val << n;
            n += width;
        }
        s.extend_from_slice(&v.to_le_bytes()[..n / 8]);
        assert!(check_codebooks(&s, "t").is_err());
        assert_eq!(lookup1_values(81, 4), 3);
        assert_eq!(lookup1_values(80, 4), 2);
    }
}
