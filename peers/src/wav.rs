//! Test audio for the peers: 8 kHz mono 16-bit PCM WAV files.

use std::path::Path;

/// Writes `samples` as an 8 kHz mono 16-bit PCM WAV file at `path`.
pub fn write(path: &Path, samples: &[i16]) {
    let data_len = u32::try_from(samples.len() * 2).unwrap();
    let mut bytes = Vec::with_capacity(44 + samples.len() * 2);
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    // Chunk size 16, PCM, mono, 8000 Hz, 16000 bytes/s, 2-byte frames, 16 bits.
    for (v, n) in [
        (16u32, 4),
        (1, 2),
        (1, 2),
        (8000, 4),
        (16_000, 4),
        (2, 2),
        (16, 2),
    ] {
        bytes.extend_from_slice(&v.to_le_bytes()[..n]);
    }
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}
