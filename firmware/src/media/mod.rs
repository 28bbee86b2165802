//! Call audio: ports, TTS, playback, recording, per-call media sessions.
