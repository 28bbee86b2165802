//! What every call's media shares: settings, the TTS engine and its cache, the
//! HTTP client and download cache for `play`, music on hold, counters.
//!
//! Directories under the data directory:
//!
//! | path | what |
//! |---|---|
//! | `<data>/recordings/<id>.wav` | recordings |
//! | `<data>/sounds/` | local files `play` may use (plus `sound_dirs`) |
//! | `<data>/cache/tts/` | synthesized prompts, WAV at the call rate |
//! | `<data>/cache/url/` | downloaded `play` URLs |

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use uuid::Uuid;

use super::audio::{Decoded, decode_bytes, decode_file, read_audio_file, wav_bytes};
use super::cache::{DiskCache, hash_key};
use super::clock::{Clock, SystemClock};
use super::error::{MediaError, Result};
use super::fetch::{Location, download, locate};
use super::frameloop::FrameLoop;
use super::port::{DeviceClaims, PortOptions};
use super::render::{
    Digits, Echo, Pcm, Render, Silence, Tone, generated_music_on_hold, samples_in,
};
use super::tts::{self, Voices};
use super::types::Source;
use crate::config::MediaConfig;

/// Settings of the media layer (the daemon fills them from `[media]`).
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// The data directory.
    pub data_dir: PathBuf,
    /// espeak-ng binary.
    pub tts_command: String,
    /// `talk` language when a flow gives none.
    pub default_language: String,
    /// Size cap of each cache directory (TTS, downloads), bytes.
    pub cache_max_bytes: u64,
    /// Music on hold file; `None` = the generated pattern.
    pub music_on_hold: Option<PathBuf>,
    /// Tone zone of the call-progress tones (`us`, `uk`, `de`, ...).
    pub tone_zone: String,
    /// Directories `play` may read local files from, besides `<data>/sounds`.
    pub sound_dirs: Vec<PathBuf>,
    /// Whole-request timeout of a `play` download.
    pub fetch_timeout: Duration,
    /// Largest `play` download, bytes.
    pub max_fetch_bytes: u64,
    /// How long a downloaded URL is reused before it is fetched again.
    pub url_cache_ttl: Duration,
    /// Longest audio `play`/`talk` will decode, seconds.
    pub max_play_secs: u64,
    /// Longest recording (also the limit of recordings with `duration` 0).
    pub max_recording: Duration,
    /// Longest a TTS run (or the voice listing) may take.
    pub tts_timeout: Duration,
    /// Longest `talk` text, characters.
    pub max_tts_chars: usize,
    /// Window within which an in-band digit and a modem digit are one press.
    pub dtmf_merge_window: Duration,
    /// Port pacing and ALSA geometry.
    pub port: PortOptions,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            data_dir: PathBuf::from("./flowgate-data"),
            tts_command: "espeak-ng".into(),
            default_language: "en-US".into(),
            cache_max_bytes: 64 << 20,
            music_on_hold: None,
            tone_zone: "us".into(),
            sound_dirs: Vec::new(),
            fetch_timeout: Duration::from_secs(30),
            max_fetch_bytes: 32 << 20,
            url_cache_ttl: Duration::from_secs(3600),
            max_play_secs: 1800,
            max_recording: Duration::from_secs(3600),
            tts_timeout: Duration::from_secs(30),
            max_tts_chars: 5000,
            dtmf_merge_window: super::dtmf::DEFAULT_WINDOW,
            port: PortOptions::default(),
        }
    }
}

impl MediaSettings {
    /// Settings from the daemon's `[media]` section and data directory; what the
    /// section does not have keeps its default. A relative `music_on_hold` is
    /// taken inside the data directory.
    #[must_use]
    pub fn from_config(data_dir: &Path, config: &MediaConfig) -> Self {
        let moh = config.music_on_hold.trim();
        MediaSettings {
            data_dir: data_dir.to_owned(),
            tts_command: config.tts_command.clone(),
            default_language: config.default_language.clone(),
            cache_max_bytes: config.cache_mib.saturating_mul(1 << 20),
            music_on_hold: (!moh.is_empty()).then(|| data_dir.join(moh)),
            tone_zone: config.tone_zone.clone(),
            ..MediaSettings::default()
        }
    }
}

/// Counters of the media layer (for metrics and tests).
#[derive(Debug, Default)]
pub struct MediaStats {
    tts_runs: AtomicU64,
    tts_cache_hits: AtomicU64,
    downloads: AtomicU64,
    download_cache_hits: AtomicU64,
    sessions: AtomicU64,
}

impl MediaStats {
    /// espeak-ng synthesis runs (cache misses).
    pub fn tts_runs(&self) -> u64 {
        self.tts_runs.load(Ordering::Relaxed)
    }
    /// Prompts served from the TTS cache.
    pub fn tts_cache_hits(&self) -> u64 {
        self.tts_cache_hits.load(Ordering::Relaxed)
    }
    /// `play` URLs downloaded.
    pub fn downloads(&self) -> u64 {
        self.downloads.load(Ordering::Relaxed)
    }
    /// `play` URLs served from the download cache.
    pub fn download_cache_hits(&self) -> u64 {
        self.download_cache_hits.load(Ordering::Relaxed)
    }
    /// Call media sessions opened.
    pub fn sessions(&self) -> u64 {
        self.sessions.load(Ordering::Relaxed)
    }
    pub(crate) fn session_opened(&self) {
        self.sessions.fetch_add(1, Ordering::Relaxed);
    }
}

/// Decoded prompts kept in memory, least recently used out first, up to
/// [`PROMPT_MEMORY_BYTES`]. An IVR plays the same few prompts on every call: reading and
/// decoding the cached WAV (and a trip to the blocking pool) for each of them was a
/// measurable part of a SIP call's CPU. The disk cache stays the reference: an entry here is
/// the decoded copy of a disk entry under the same key, which never changes (the key hashes
/// everything that makes the audio).
#[derive(Default)]
struct PromptMemory {
    entries: HashMap<String, (Arc<[i16]>, u64)>,
    bytes: usize,
    uses: u64,
}

/// Most bytes of decoded prompts kept in memory (about 4 minutes of 8 kHz audio).
const PROMPT_MEMORY_BYTES: usize = 4 << 20;

impl PromptMemory {
    fn get(&mut self, key: &str) -> Option<Arc<[i16]>> {
        self.uses += 1;
        let uses = self.uses;
        self.entries.get_mut(key).map(|(samples, used)| {
            *used = uses;
            samples.clone()
        })
    }

    fn put(&mut self, key: String, samples: Arc<[i16]>) {
        let size = samples.len() * 2;
        if size > PROMPT_MEMORY_BYTES / 4 {
            return; // a long text would push every common prompt out
        }
        self.uses += 1;
        if let Some((old, _)) = self.entries.insert(key, (samples, self.uses)) {
            self.bytes -= old.len() * 2;
        }
        self.bytes += size;
        while self.bytes > PROMPT_MEMORY_BYTES {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((gone, _)) = self.entries.remove(&oldest) {
                self.bytes -= gone.len() * 2;
            }
        }
    }
}

struct Inner {
    settings: MediaSettings,
    sound_dirs: Vec<PathBuf>,
    recordings_dir: PathBuf,
    http: reqwest::Client,
    tts_cache: DiskCache,
    /// Decoded TTS prompts, in front of `tts_cache`.
    prompts: Mutex<PromptMemory>,
    url_cache: DiskCache,
    voices: tokio::sync::OnceCell<Voices>,
    moh: Mutex<HashMap<u32, Arc<[i16]>>>,
    stats: MediaStats,
    clock: Arc<dyn Clock>,
    /// Which devices sessions hold, so the next call on a device waits for its release.
    claims: DeviceClaims,
    /// The threads that run sessions on ports without a clock of their own (RTP).
    frame_loop: FrameLoop,
}

/// The media layer's shared state; cheap to clone.
#[derive(Clone)]
pub struct MediaContext {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MediaContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaContext")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| MediaError::Worker(e.to_string()))?
}

impl MediaContext {
    /// Creates the directories and checks the tone zone. Blocking (startup).
    ///
    /// # Errors
    /// [`MediaError::Io`] for a directory that cannot be created,
    /// [`MediaError::Dsp`] for an unknown tone zone.
    pub fn new(settings: MediaSettings) -> Result<Self> {
        MediaContext::with_clock(settings, SystemClock::shared())
    }

    /// As [`new`](Self::new), with the clock the ports pace with (tests use a
    /// [`ManualClock`](super::ManualClock)).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_clock(settings: MediaSettings, clock: Arc<dyn Clock>) -> Result<Self> {
        flowgate_dsp::ToneTable::builtin()?.zone(&settings.tone_zone)?;
        let data = &settings.data_dir;
        let mkdir = |p: PathBuf| {
            std::fs::create_dir_all(&p)
                .map(|()| p.clone())
                .map_err(|e| MediaError::io("create directory", p, e))
        };
        let recordings_dir = mkdir(data.join("recordings"))?;
        let sounds = mkdir(data.join("sounds"))?;
        let mut sound_dirs = vec![sounds];
        sound_dirs.extend(settings.sound_dirs.iter().cloned());
        let cache = data.join("cache");
        let tts_cache = DiskCache::new(cache.join("tts"), settings.cache_max_bytes, None)?;
        let url_cache = DiskCache::new(
            cache.join("url"),
            settings.cache_max_bytes,
            Some(settings.url_cache_ttl),
        )?;
        let http = crate::tls::Roots::get()
            .http_client(reqwest::Client::builder())
            .timeout(settings.fetch_timeout)
            .connect_timeout(settings.fetch_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("flowgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| MediaError::Worker(format!("HTTP client: {e}")))?;
        Ok(MediaContext {
            inner: Arc::new(Inner {
                settings,
                sound_dirs,
                recordings_dir,
                http,
                tts_cache,
                prompts: Mutex::new(PromptMemory::default()),
                url_cache,
                voices: tokio::sync::OnceCell::new(),
                moh: Mutex::new(HashMap::new()),
                stats: MediaStats::default(),
                frame_loop: FrameLoop::new(clock.clone()),
                clock,
                claims: DeviceClaims::default(),
            }),
        })
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &MediaSettings {
        &self.inner.settings
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> &MediaStats {
        &self.inner.stats
    }

    /// The shared frame loop (see `frameloop`).
    pub(crate) fn frame_loop(&self) -> &FrameLoop {
        &self.inner.frame_loop
    }

    /// Sessions the shared frame loop runs now (SIP calls with audio).
    #[must_use]
    pub fn shared_loop_sessions(&self) -> usize {
        self.inner.frame_loop.sessions()
    }

    /// The clock ports pace with.
    #[must_use]
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// The sessions' device claims (see `port::claim`).
    pub(crate) fn device_claims(&self) -> &DeviceClaims {
        &self.inner.claims
    }

    /// `<data>/recordings`.
    #[must_use]
    pub fn recordings_dir(&self) -> &Path {
        &self.inner.recordings_dir
    }

    /// The file of recording `id`.
    #[must_use]
    pub fn recording_path(&self, id: Uuid) -> PathBuf {
        self.inner.recordings_dir.join(format!("{id}.wav"))
    }

    /// The directories local `play` files may come from.
    #[must_use]
    pub fn sound_dirs(&self) -> &[PathBuf] {
        &self.inner.sound_dirs
    }

    /// Bytes held by the TTS cache (blocking: it scans the directory).
    #[must_use]
    pub fn tts_cache_bytes(&self) -> u64 {
        self.inner.tts_cache.size()
    }

    async fn voices(&self) -> Result<&Voices> {
        let s = &self.inner.settings;
        self.inner
            .voices
            .get_or_try_init(|| tts::load_voices(&s.tts_command, s.tts_timeout))
            .await
    }

    /// The espeak-ng voice `talk` would use.
    ///
    /// # Errors
    /// [`MediaError::UnknownLanguage`], [`MediaError::TtsUnavailable`].
    pub async fn tts_voice(&self, language: Option<&str>, voice: Option<&str>) -> Result<String> {
        let language = language
            .filter(|l| !l.trim().is_empty())
            .unwrap_or(&self.inner.settings.default_language);
        self.voices().await?.resolve(language, voice)
    }

    /// Speech for `text` at `rate`: from the cache, or synthesized by espeak-ng,
    /// resampled and cached.
    ///
    /// # Errors
    /// [`MediaError::InvalidOption`] (empty or too long text),
    /// [`MediaError::UnknownLanguage`], [`MediaError::TtsUnavailable`], [`MediaError::Tts`].
    pub async fn synthesize(
        &self,
        text: &str,
        language: Option<&str>,
        voice: Option<&str>,
        rate: u32,
    ) -> Result<Arc<[i16]>> {
        let s = &self.inner.settings;
        check_text(text, s.max_tts_chars)?;
        let voice = self.tts_voice(language, voice).await?;
        let key = hash_key(&["espeak-ng", &s.tts_command, &voice, &rate.to_string(), text]);
        if let Some(samples) = self.inner.prompts.lock().get(&key) {
            self.inner
                .stats
                .tts_cache_hits
                .fetch_add(1, Ordering::Relaxed);
            return Ok(samples);
        }
        let inner = self.inner.clone();
        let k = key.clone();
        let hit = blocking(move || {
            Ok(inner
                .tts_cache
                .get(&k, "wav")
                .map(|p| read_audio_file(&p, rate)))
        })
        .await?;
        match hit {
            Some(Ok(samples)) => {
                self.inner
                    .stats
                    .tts_cache_hits
                    .fetch_add(1, Ordering::Relaxed);
                let samples: Arc<[i16]> = samples.into();
                self.inner.prompts.lock().put(key, samples.clone());
                return Ok(samples);
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "unreadable TTS cache entry: synthesizing again")
            }
            None => {}
        }
        let tmp = self
            .inner
            .tts_cache
            .dir()
            .join(format!(".tmp-{}-espeak.wav", Uuid::new_v4().simple()));
        self.inner.stats.tts_runs.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let result = tts::synthesize(&s.tts_command, &voice, text, &tmp, s.tts_timeout).await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tracing::debug!(voice = %voice, chars = text.chars().count(), ms = started.elapsed().as_millis(), "TTS synthesized");
        let inner = self.inner.clone();
        let max_secs = s.max_play_secs;
        let v = voice.clone();
        let memo_key = key.clone();
        let samples = blocking(move || {
            let decoded = decode_file(&tmp, max_secs);
            let _ = std::fs::remove_file(&tmp);
            let samples = decoded
                .map_err(|e| MediaError::Tts {
                    voice: v,
                    reason: format!("unreadable output: {e}"),
                })?
                .into_rate(rate)?;
            if let Err(e) =
                wav_bytes(&samples, rate).and_then(|b| inner.tts_cache.put(&key, "wav", &b))
            {
                tracing::warn!(error = %e, "TTS cache write failed");
            }
            Ok(samples)
        })
        .await?;
        let samples: Arc<[i16]> = samples.into();
        self.inner.prompts.lock().put(memo_key, samples.clone());
        Ok(samples)
    }

    /// One `play` URL (http(s), `file://`, path) decoded to mono at `rate`.
    ///
    /// # Errors
    /// [`MediaError::UnsupportedUrl`], [`MediaError::PathNotAllowed`],
    /// [`MediaError::Fetch`], [`MediaError::FetchTooLarge`], [`MediaError::Decode`], ...
    pub async fn load_url(&self, url: &str, rate: u32) -> Result<Arc<[i16]>> {
        let max_secs = self.inner.settings.max_play_secs;
        let (u, dirs) = (url.to_owned(), self.inner.sound_dirs.clone());
        match blocking(move || locate(&u, &dirs)).await? {
            Location::File(path) => blocking(move || decode_file(&path, max_secs)?.into_rate(rate))
                .await
                .map(Into::into),
            Location::Http(url) => {
                let key = hash_key(&["url", url.as_str()]);
                let inner = self.inner.clone();
                let k = key.clone();
                let cached =
                    blocking(move || Ok(inner.url_cache.get(&k, "bin").map(|p| std::fs::read(&p))))
                        .await?;
                if let Some(Ok(bytes)) = cached {
                    self.inner
                        .stats
                        .download_cache_hits
                        .fetch_add(1, Ordering::Relaxed);
                    let what = url.to_string();
                    return blocking(move || decode_bytes(bytes, &what, max_secs)?.into_rate(rate))
                        .await
                        .map(Into::into);
                }
                self.inner.stats.downloads.fetch_add(1, Ordering::Relaxed);
                let bytes =
                    download(&self.inner.http, &url, self.inner.settings.max_fetch_bytes).await?;
                let inner = self.inner.clone();
                blocking(move || {
                    let decoded: Decoded = decode_bytes(bytes.clone(), url.as_str(), max_secs)?;
                    // Only audio is cached: an error page is fetched again next time.
                    if let Err(e) = inner.url_cache.put(&key, "bin", &bytes) {
                        tracing::warn!(error = %e, "download cache write failed");
                    }
                    decoded.into_rate(rate)
                })
                .await
                .map(Into::into)
            }
        }
    }

    /// Music on hold at `rate`: the configured file, or the generated pattern when
    /// there is none or it cannot be read (hold must always work).
    pub async fn music_on_hold(&self, rate: u32) -> Arc<[i16]> {
        if let Some(m) = self.inner.moh.lock().get(&rate) {
            return m.clone();
        }
        let loaded = match self.inner.settings.music_on_hold.clone() {
            Some(path) => {
                let max_secs = self.inner.settings.max_play_secs;
                let shown = path.display().to_string();
                match blocking(move || decode_file(&path, max_secs)?.into_rate(rate)).await {
                    Ok(s) if !s.is_empty() => Some(s),
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(file = %shown, error = %e, "music on hold file unusable: using the generated one");
                        None
                    }
                }
            }
            None => None,
        };
        let moh: Arc<[i16]> = loaded
            .unwrap_or_else(|| generated_music_on_hold(rate))
            .into();
        self.inner.moh.lock().insert(rate, moh.clone());
        moh
    }

    /// The renderer of a source that needs no preparation, `None` for TTS and
    /// URLs; validates everything that can be checked up front.
    pub(crate) fn render_now(&self, source: &Source, rate: u32) -> Result<Option<Box<dyn Render>>> {
        Ok(Some(match source {
            Source::Tts { text, .. } => {
                check_text(text, self.inner.settings.max_tts_chars)?;
                return Ok(None);
            }
            Source::Urls(urls) => {
                if urls.is_empty() {
                    return Err(MediaError::InvalidOption {
                        field: "stream_urls",
                        reason: "no URL to play".into(),
                    });
                }
                return Ok(None);
            }
            Source::Beep => Box::new(Tone::beep(rate)?),
            Source::Tone { kind, duration } => Box::new(Tone::call_progress(
                &self.inner.settings.tone_zone,
                *kind,
                *duration,
                rate,
            )?),
            Source::Digits { digits, tone, gap } => {
                Box::new(Digits::new(digits, *tone, *gap, rate)?)
            }
            Source::Silence(d) => Box::new(Silence(samples_in(*d, rate))),
            Source::Echo(d) => Box::new(Echo(samples_in(*d, rate))),
            Source::Samples(s) => Box::new(Pcm::new(vec![s.clone()])),
        }))
    }

    /// Prepares the audio of a TTS or URL source.
    pub(crate) async fn prepare(&self, source: &Source, rate: u32) -> Result<Box<dyn Render>> {
        match source {
            Source::Tts {
                text,
                language,
                voice,
            } => {
                let s = self
                    .synthesize(text, language.as_deref(), voice.as_deref(), rate)
                    .await?;
                Ok(Box::new(Pcm::new(vec![s])))
            }
            Source::Urls(urls) => {
                let mut segments = Vec::with_capacity(urls.len());
                for u in urls {
                    segments.push(self.load_url(u, rate).await?);
                }
                Ok(Box::new(Pcm::new(segments)))
            }
            other => self
                .render_now(other, rate)?
                .ok_or_else(|| MediaError::Worker("nothing to prepare".into())),
        }
    }
}

fn check_text(text: &str, max: usize) -> Result<()> {
    if text.trim().is_empty() {
        return Err(MediaError::InvalidOption {
            field: "text",
            reason: "nothing to say".into(),
        });
    }
    let n = text.chars().count();
    if n > max {
        return Err(MediaError::InvalidOption {
            field: "text",
            reason: format!("{n} characters, the limit is {max}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(samples: usize) -> Arc<[i16]> {
        vec![1i16; samples].into()
    }

    #[test]
    fn prompt_memory_keeps_the_recently_used_within_its_budget() {
        let mut m = PromptMemory::default();
        let quarter = PROMPT_MEMORY_BYTES / 8; // samples: a quarter of the budget
        for k in ["a", "b", "c", "d"] {
            m.put(k.into(), prompt(quarter));
        }
        assert_eq!(m.bytes, PROMPT_MEMORY_BYTES);
        // `a` is used again, so `b` is the oldest when `e` comes.
        assert!(m.get("a").is_some());
        m.put("e".into(), prompt(quarter));
        assert!(m.get("b").is_none());
        for k in ["a", "c", "d", "e"] {
            assert!(m.get(k).is_some(), "{k}");
        }
        assert_eq!(m.bytes, PROMPT_MEMORY_BYTES);
        // Too long to keep: not stored, nothing pushed out.
        m.put("long".into(), prompt(quarter + 1));
        assert!(m.get("long").is_none());
        assert_eq!(m.entries.len(), 4);
        // Replacing an entry does not count it twice.
        m.put("a".into(), prompt(10));
        assert_eq!(m.bytes, 3 * PROMPT_MEMORY_BYTES / 4 + 20);
    }
}
