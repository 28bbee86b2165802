//! Talk-off corpus: speech synthesised at test time with espeak-ng (several
//! voices, languages and pitches, several minutes in total), read from its
//! WAV output with a minimal RIFF reader and resampled to the detector's
//! rate with our own resampler.

use std::process::Command;

use flowgate_dsp::level::{dbm0_to_power, mean_power};
use flowgate_dsp::resample;

const ENGLISH: &str = "Thank you for calling the service desk. Your call matters to us, \
and an agent will be with you shortly. While you wait, please have your account number \
ready, along with the postcode of the address where the equipment is installed. If you are \
calling about a fault on your line, you can check the status of known outages on our \
website at any time of day. To hear these options again, stay on the line. Remember that \
the monthly invoice now arrives by email unless you asked for a printed copy. Our offices \
are open from eight in the morning until six in the evening, Monday to Friday, and from \
nine until one on Saturdays. Outside those hours, messages are answered the next working \
day. We are sorry for the delay and appreciate your patience.";

const ENGLISH_2: &str = "The old lighthouse keeper climbed the spiral stairs every evening, \
counting the one hundred and twelve steps out loud, although he had known the number for \
thirty years. At the top he wiped the salt from the glass, trimmed the wick, and watched \
the fishing boats return against a sky that turned from orange to violet. Sometimes a \
heavy fog rolled in from the west, and then he would sound the horn every minute until \
dawn, listening for the faint replies of ships he could not see. Nobody asked him to \
write it all down, yet his notebooks filled a whole shelf: weather, tides, birds, and the \
names of every vessel that passed the point.";

const GERMAN: &str = "Guten Tag und herzlich willkommen beim Kundenservice. Bitte halten Sie \
Ihre Kundennummer bereit. Wenn Sie Fragen zu Ihrer Rechnung haben, bleiben Sie bitte in der \
Leitung, ein Mitarbeiter ist gleich für Sie da. Unsere Öffnungszeiten sind montags bis \
freitags von acht bis achtzehn Uhr. Außerhalb dieser Zeiten können Sie uns gerne eine \
Nachricht hinterlassen, wir rufen Sie am nächsten Werktag zurück. Vielen Dank für Ihre \
Geduld und einen schönen Tag noch. Im Sommer fahren wir gern an die Nordsee, wo der Wind \
über die Dünen streicht und die Möwen laut über dem Hafen kreisen.";

const FRENCH: &str = "Bonjour et bienvenue sur notre service client. Tous nos conseillers sont \
actuellement occupés, merci de bien vouloir patienter. Pour toute question concernant votre \
facture, veuillez préparer votre numéro de contrat. Nos bureaux sont ouverts du lundi au \
vendredi, de huit heures à dix-huit heures. Le week-end, vous pouvez laisser un message et \
nous vous rappellerons dès le premier jour ouvrable. Au marché du samedi matin, on trouve \
des fromages de montagne, du pain encore chaud et des fleurs de toutes les couleurs.";

const SPANISH: &str = "Buenos días y gracias por llamar a nuestro servicio de atención al \
cliente. En este momento todos nuestros agentes están ocupados. Por favor, tenga a mano su \
número de cliente y el código postal de su domicilio. Nuestro horario es de lunes a viernes, \
de ocho de la mañana a seis de la tarde. Si prefiere, puede dejar un mensaje después de la \
señal y le devolveremos la llamada lo antes posible. En verano, las plazas del pueblo se \
llenan de música, de niños que juegan y de vecinos que charlan hasta muy tarde.";

const ITALIAN: &str = "Buongiorno e benvenuti nel servizio clienti. Tutti i nostri operatori \
sono occupati, la preghiamo di attendere in linea. Tenga pronto il suo codice cliente e il \
numero della fattura. I nostri uffici sono aperti dal lunedì al venerdì, dalle otto alle \
diciotto. Fuori da questi orari può lasciare un messaggio e sarà richiamato il prima \
possibile. La domenica mattina la piazza si riempie di biciclette, di caffè e di chiacchiere.";

const DUTCH: &str = "Goedemiddag en welkom bij de klantenservice. Al onze medewerkers zijn \
in gesprek, een ogenblik geduld alstublieft. Houd uw klantnummer bij de hand. Wij zijn \
bereikbaar van maandag tot en met vrijdag van acht tot zes uur. Buiten kantoortijden kunt \
u een bericht achterlaten, dan bellen wij u de volgende werkdag terug. Langs de grachten \
fietsen mensen in de regen, met een paraplu in de ene hand en boodschappen in de andere.";

const PORTUGUESE: &str = "Bom dia e obrigado por ligar para o nosso apoio ao cliente. Todos os \
nossos assistentes estão ocupados neste momento. Por favor, tenha consigo o número de \
cliente. O nosso horário de atendimento é de segunda a sexta-feira, das oito às dezoito \
horas. Fora deste horário pode deixar uma mensagem. Ao fim da tarde, o rio fica dourado e \
os barcos regressam devagar ao cais.";

const RUSSIAN: &str = "Здравствуйте, вы позвонили в службу поддержки. Все операторы сейчас \
заняты, пожалуйста, оставайтесь на линии. Приготовьте, пожалуйста, номер договора. Мы \
работаем с понедельника по пятницу с восьми утра до шести вечера. Зимой в городе рано \
темнеет, и по вечерам на улицах горят фонари, а снег тихо падает на крыши домов.";

const CHINESE: &str = "您好，欢迎致电客户服务中心。目前所有座席都在忙，请您耐心等待。\
请准备好您的客户编号和账单号码。我们的服务时间是周一至周五，上午八点到下午六点。\
周末的早晨，公园里有人打太极拳，有人散步，还有孩子们在草地上放风筝。";

/// (voice, pitch 0…99, speed wpm, text). Pitches spread from deep to very
/// high voices, since a high fundamental puts harmonics on DTMF rows.
const SCRIPT: &[(&str, u32, u32, &str)] = &[
    ("en-us", 50, 160, ENGLISH),
    ("en-us+f3", 80, 170, ENGLISH),
    ("en-gb", 25, 150, ENGLISH_2),
    ("en-gb+f4", 99, 175, ENGLISH_2),
    ("de", 40, 160, GERMAN),
    ("de+f2", 85, 165, GERMAN),
    ("fr-fr", 50, 165, FRENCH),
    ("fr-fr+f5", 90, 170, FRENCH),
    ("es", 45, 165, SPANISH),
    ("it+f3", 75, 160, ITALIAN),
    ("nl", 35, 160, DUTCH),
    ("pt+m3", 20, 155, PORTUGUESE),
    ("ru", 55, 160, RUSSIAN),
    ("cmn+f2", 70, 150, CHINESE),
    ("en-us+m7", 10, 140, ENGLISH_2),
];

/// Active-speech level the corpus is normalised to, and a quieter copy.
pub(crate) const LEVELS_DBM0: [f32; 2] = [-16.0, -28.0];

/// One synthesised utterance at the detector's rate.
pub(crate) struct Utterance {
    pub(crate) voice: &'static str,
    pub(crate) samples: Vec<i16>,
}

/// Synthesises the first `limit` entries of the script with espeak-ng at
/// `rate`.
///
/// # Errors
/// A message naming the Debian package when espeak-ng cannot be run, or
/// describing a malformed WAV.
pub(crate) fn corpus(rate: u32, limit: usize) -> Result<Vec<Utterance>, String> {
    let mut out = Vec::new();
    for &(voice, pitch, speed, text) in SCRIPT.iter().take(limit) {
        let result = Command::new("espeak-ng")
            .args(["--stdout", "-v", voice, "-p", &pitch.to_string(), "-s"])
            .arg(speed.to_string())
            .arg(text)
            .output()
            .map_err(|e| {
                format!(
                    "cannot run espeak-ng ({e}): the talk-off test synthesises its speech \
                     corpus with it; install the Debian package `espeak-ng` \
                     (scripts/deps.sh test does)"
                )
            })?;
        if !result.status.success() {
            return Err(format!(
                "espeak-ng -v {voice} failed ({}): {}",
                result.status,
                String::from_utf8_lossy(&result.stderr)
            ));
        }
        let (wav_rate, samples) =
            read_wav(&result.stdout).map_err(|e| format!("espeak-ng -v {voice}: {e}"))?;
        let mut samples = resample(&samples, wav_rate, rate).map_err(|e| e.to_string())?;
        normalise(&mut samples, LEVELS_DBM0[0]);
        out.push(Utterance { voice, samples });
    }
    Ok(out)
}

/// Every utterance at every level of [`LEVELS_DBM0`].
pub(crate) fn at_all_levels(corpus: &[Utterance]) -> Vec<Vec<i16>> {
    let mut out = Vec::new();
    for &level in &LEVELS_DBM0 {
        for u in corpus {
            let mut s = u.samples.clone();
            normalise(&mut s, level);
            out.push(s);
        }
    }
    out
}

/// Scales to an average level of `dbm0` over the samples louder than
/// −50 dBm0 (a crude active-speech level).
pub(crate) fn normalise(samples: &mut [i16], dbm0: f32) {
    let floor = dbm0_to_power(-50.0);
    let mut sum = 0.0f64;
    let mut n = 0u64;
    for block in samples.chunks(80) {
        let p = mean_power(block);
        if p > floor {
            sum += f64::from(p);
            n += 1;
        }
    }
    if n == 0 {
        return;
    }
    #[expect(clippy::cast_precision_loss, reason = "block counts are small")]
    let active = sum / n as f64;
    let gain = (f64::from(dbm0_to_power(dbm0)) / active).sqrt();
    for s in samples.iter_mut() {
        #[expect(clippy::cast_possible_truncation, reason = "clamped first")]
        let v = (f64::from(*s) * gain).round().clamp(-32768.0, 32767.0) as i16;
        *s = v;
    }
}

/// Seconds of audio in a corpus at `rate`.
pub(crate) fn seconds(signals: &[Vec<i16>], rate: u32) -> f64 {
    let n: usize = signals.iter().map(Vec::len).sum();
    #[expect(clippy::cast_precision_loss, reason = "sample counts are small")]
    let s = n as f64 / f64::from(rate);
    s
}

/// Minimal RIFF/WAVE reader: 16-bit PCM, mono or stereo (left channel).
/// Tolerates the bogus sizes espeak-ng writes when streaming to stdout.
pub(crate) fn read_wav(bytes: &[u8]) -> Result<(u32, Vec<i16>), String> {
    let u32_at = |i: usize| -> Option<u32> {
        bytes
            .get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let u16_at = |i: usize| -> Option<u16> {
        bytes
            .get(i..i + 2)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_le_bytes)
    };
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut pos = 12;
    let mut format: Option<(u32, u16)> = None;
    while let (Some(id), Some(size)) = (bytes.get(pos..pos + 4), u32_at(pos + 4)) {
        let body = pos + 8;
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        match id {
            b"fmt " => {
                let (Some(tag), Some(channels), Some(rate), Some(bits)) = (
                    u16_at(body),
                    u16_at(body + 2),
                    u32_at(body + 4),
                    u16_at(body + 14),
                ) else {
                    return Err("truncated fmt chunk".into());
                };
                if tag != 1 || bits != 16 || channels == 0 {
                    return Err(format!(
                        "unsupported format tag {tag}, {bits} bits, {channels} channels"
                    ));
                }
                format = Some((rate, channels));
            }
            b"data" => {
                let (rate, channels) = format.ok_or("data chunk before fmt chunk")?;
                let end = body.saturating_add(size).min(bytes.len());
                let frame = 2 * usize::from(channels);
                let data = bytes.get(body..end).unwrap_or_default();
                let samples = data
                    .chunks_exact(frame)
                    .map(|f| i16::from_le_bytes([f[0], f[1]]))
                    .collect();
                return Ok((rate, samples));
            }
            _ => {}
        }
        pos = body.saturating_add(size).saturating_add(size % 2);
    }
    Err("no data chunk".into())
}
