//! Text to speech with espeak-ng: choosing the voice for a BCP 47 language, and
//! running the engine.
//!
//! # Voice choice
//!
//! The voices are read once from `espeak-ng --voices` (and `--voices=variant`).
//! Each voice lists its language and the other languages it serves, each with a
//! priority (lower is better): `en-gb` serves `en` at 2, `en-us` at 3; `cmn`
//! serves `zh` at 5; `es-419` serves `es-mx`. A language tag is lower-cased
//! (`_` read as `-`) and looked up; if nothing serves it, its last subtag is
//! dropped and the lookup repeated (`de-DE` → `de`, `zh-Hant-TW` → `zh-hant` →
//! `zh`). Nothing left means [`MediaError::UnknownLanguage`].
//!
//! `voice_id` wins when it names an espeak-ng voice: a language (`en-us`), a
//! voice file (`gmw/en-US`) or a voice name (`English_(America)`), optionally
//! with a variant (`en-us+f3`). Other ids (cloud TTS voice names in flows written
//! for VoIPBIN) are ignored and the language decides.
//!
//! Text starting with `<speak` is SSML (espeak-ng `-m`). The text goes to the
//! engine on stdin, never on the command line.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::error::{MediaError, Result};

/// The voices an espeak-ng installation offers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Voices {
    /// Language tag → (priority, voice file) of the best voice serving it.
    by_language: HashMap<String, (u32, String)>,
    /// Lower-cased language, file or name → voice file.
    by_name: HashMap<String, String>,
    /// Lower-cased variant names (`f3`, `klatt`, ...).
    variants: HashSet<String>,
}

impl Voices {
    /// Parses the outputs of `--voices` and `--voices=variant`.
    pub(crate) fn parse(voices: &str, variants: &str) -> Self {
        let mut v = Voices::default();
        for line in voices.lines().skip(1) {
            let mut cols = line.split_whitespace();
            let (Some(pty), Some(lang), Some(_gender), Some(name), Some(file)) = (
                cols.next(),
                cols.next(),
                cols.next(),
                cols.next(),
                cols.next(),
            ) else {
                continue;
            };
            let pty: u32 = pty.parse().unwrap_or(5);
            let lang = lang.to_ascii_lowercase();
            v.offer(&lang, pty, file);
            // "(en 2)(en-gb 3)": other languages with their priorities.
            let rest: String = cols.collect::<Vec<_>>().join(" ");
            for group in rest.split('(').filter_map(|g| g.split(')').next()) {
                let mut parts = group.split_whitespace();
                if let (Some(l), Some(p)) = (parts.next(), parts.next()) {
                    v.offer(&l.to_ascii_lowercase(), p.parse().unwrap_or(9), file);
                }
            }
            for key in [lang, name.to_ascii_lowercase(), file.to_ascii_lowercase()] {
                v.by_name.entry(key).or_insert_with(|| file.to_owned());
            }
        }
        for line in variants.lines().skip(1) {
            if let Some(file) = line.split_whitespace().nth(4)
                && let Some(name) = file.strip_prefix("!v/")
            {
                v.variants.insert(name.to_ascii_lowercase());
            }
        }
        v
    }

    fn offer(&mut self, lang: &str, pty: u32, file: &str) {
        let better = self.by_language.get(lang).is_none_or(|(p, _)| pty < *p);
        if better {
            self.by_language
                .insert(lang.to_owned(), (pty, file.to_owned()));
        }
    }

    /// True when no voice was found at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_language.is_empty()
    }

    /// The espeak-ng `-v` argument for `voice_id` if it names a voice.
    fn voice_id(&self, id: &str) -> Option<String> {
        let (base, variant) = match id.split_once('+') {
            Some((b, v)) => (b, Some(v)),
            None => (id, None),
        };
        let file = self.by_name.get(&base.trim().to_ascii_lowercase())?;
        match variant {
            None => Some(file.clone()),
            Some(v) if self.variants.contains(&v.to_ascii_lowercase()) => {
                Some(format!("{file}+{v}"))
            }
            Some(_) => None,
        }
    }

    /// The espeak-ng `-v` argument for a language and optional voice id.
    pub(crate) fn resolve(&self, language: &str, voice_id: Option<&str>) -> Result<String> {
        if let Some(v) = voice_id
            .filter(|v| !v.trim().is_empty())
            .and_then(|id| self.voice_id(id))
        {
            return Ok(v);
        }
        let mut tag = language.trim().replace('_', "-").to_ascii_lowercase();
        while !tag.is_empty() {
            if let Some((_, file)) = self.by_language.get(&tag) {
                return Ok(file.clone());
            }
            match tag.rfind('-') {
                Some(i) => tag.truncate(i),
                None => break,
            }
        }
        Err(MediaError::UnknownLanguage {
            language: language.to_owned(),
        })
    }
}

async fn run_capture(command: &str, args: &[&str], timeout: Duration) -> Result<String> {
    let unavailable = |reason: String| MediaError::TtsUnavailable {
        command: command.to_owned(),
        reason,
    };
    let child = Command::new(command)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(timeout, child)
        .await
        .map_err(|_| unavailable(format!("no answer within {timeout:?}")))?
        .map_err(|e| unavailable(e.to_string()))?;
    if !out.status.success() {
        return Err(unavailable(format!(
            "{} ({})",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Reads the engine's voices.
pub(crate) async fn load_voices(command: &str, timeout: Duration) -> Result<Voices> {
    let voices = run_capture(command, &["--voices"], timeout).await?;
    let variants = run_capture(command, &["--voices=variant"], timeout)
        .await
        .unwrap_or_default();
    let v = Voices::parse(&voices, &variants);
    if v.is_empty() {
        return Err(MediaError::TtsUnavailable {
            command: command.to_owned(),
            reason: "it lists no voices".into(),
        });
    }
    Ok(v)
}

/// True when `text` is SSML.
pub(crate) fn is_ssml(text: &str) -> bool {
    text.trim_start().starts_with("<speak")
}

/// Synthesizes `text` with `voice` into the WAV file `out` (22 050 Hz mono).
pub(crate) async fn synthesize(
    command: &str,
    voice: &str,
    text: &str,
    out: &Path,
    timeout: Duration,
) -> Result<()> {
    let fail = |reason: String| MediaError::Tts {
        voice: voice.to_owned(),
        reason,
    };
    let mut cmd = Command::new(command);
    cmd.arg("-v").arg(voice).arg("-w").arg(out);
    if is_ssml(text) {
        cmd.arg("-m");
    }
    cmd.arg("--stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| MediaError::TtsUnavailable {
        command: command.to_owned(),
        reason: e.to_string(),
    })?;
    let mut stdin = child.stdin.take().ok_or_else(|| fail("no stdin".into()))?;
    let text = text.to_owned();
    let work = async move {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| fail(format!("writing the text: {e}")))?;
        drop(stdin);
        child
            .wait_with_output()
            .await
            .map_err(|e| fail(e.to_string()))
    };
    let out_status = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| fail(format!("took longer than {timeout:?}")))??;
    if !out_status.status.success() {
        return Err(fail(format!(
            "{} ({})",
            out_status.status,
            String::from_utf8_lossy(&out_status.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOICES: &str = "\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  cmn             --/M      Chinese_(Mandarin,_latin_as_English) sit/cmn              (zh-cmn 5)(zh 5)
 5  de              --/M      German             gmw/de
 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)
 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)
 5  es              --/M      Spanish_(Spain)    roa/es
 5  es-419          --/M      Spanish_(Latin_America) roa/es-419           (es-mx 6)(es 6)
 5  fr-fr           --/M      French_(France)    roa/fr               (fr 5)
 5  it              --/M      Italian            roa/it
 5  ja              --/M      Japanese           jpx/ja
 5  nl              --/M      Dutch              gmw/nl
 5  pt              --/M      Portuguese_(Portugal) roa/pt               (pt-pt 5)
 5  pt-br           --/M      Portuguese_(Brazil) roa/pt-BR            (pt 6)
 5  yue             --/M      Chinese_(Cantonese) sit/yue              (zh-yue 5)(zh 8)
";
    const VARIANTS: &str = "\
Pty Language       Age/Gender VoiceName          File                 Other Languages
 5  variant         --/F      female3            !v/f3
";

    #[test]
    fn languages_map_to_voices() {
        let v = Voices::parse(VOICES, VARIANTS);
        let r = |l: &str| v.resolve(l, None).expect(l);
        assert_eq!(r("en-US"), "gmw/en-US");
        assert_eq!(r("en-GB"), "gmw/en");
        assert_eq!(r("en"), "gmw/en");
        assert_eq!(r("en-AU"), "gmw/en");
        assert_eq!(r("de-DE"), "gmw/de");
        assert_eq!(r("fr-FR"), "roa/fr");
        assert_eq!(r("es-ES"), "roa/es");
        assert_eq!(r("es-MX"), "roa/es-419");
        assert_eq!(r("it"), "roa/it");
        assert_eq!(r("pt-BR"), "roa/pt-BR");
        assert_eq!(r("pt_PT"), "roa/pt");
        assert_eq!(r("nl"), "gmw/nl");
        assert_eq!(r("ja-JP"), "jpx/ja");
        assert_eq!(r("zh"), "sit/cmn");
        assert_eq!(r("zh-Hant-TW"), "sit/cmn");
        assert!(matches!(
            v.resolve("tlh", None),
            Err(MediaError::UnknownLanguage { .. })
        ));
        assert!(v.resolve("", None).is_err());
    }

    #[test]
    fn voice_ids_are_honoured_only_when_espeak_knows_them() {
        let v = Voices::parse(VOICES, VARIANTS);
        assert_eq!(
            v.resolve("de-DE", Some("en-us+f3")).expect("v"),
            "gmw/en-US+f3"
        );
        assert_eq!(
            v.resolve("de-DE", Some("English_(America)")).expect("v"),
            "gmw/en-US"
        );
        assert_eq!(v.resolve("de-DE", Some("gmw/en")).expect("v"), "gmw/en");
        // A cloud voice name or an unknown variant: the language decides.
        assert_eq!(
            v.resolve("de-DE", Some("en-US-Wavenet-D")).expect("v"),
            "gmw/de"
        );
        assert_eq!(
            v.resolve("de-DE", Some("en-us+nosuch")).expect("v"),
            "gmw/de"
        );
    }

    #[test]
    fn ssml_is_recognised() {
        assert!(is_ssml("  <speak>hi</speak>"));
        assert!(!is_ssml("say <speak>"));
    }
}
