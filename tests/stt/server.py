"""A speech-to-text server in the shape of OpenAI's `/v1/audio/transcriptions`, backed by
pocketsphinx's bundled en-US model, for the `transcribe_*` end-to-end tests.

It listens on 127.0.0.1 with an ephemeral port and prints `{"port": N}` on its first line
(the test waits for that line, never for time). Every request it answers is printed as one
JSON line too: `{"model", "language", "response_format", "text"}`, so the test can check
what the gateway sent. Options:

  --fail-status N   answer every request with HTTP N and an OpenAI-shaped error body
  --hang            read the request, then never answer (the gateway's timeout fires)
  --dump FILE       keep the last WAV received (to listen to what the gateway sent)
  --digits          recognise spoken digits only (a JSGF grammar: any sequence of
                    zero…nine, "oh"). The bundled model is wideband (16 kHz); on 8 kHz
                    telephone audio of espeak-ng speech its full language model finds 0-1
                    of 5 spoken digits, the digit grammar 5 of 5 (measured; see the README).
"""

import argparse
import array
import email.parser
import email.policy
import io
import json
import math
import sys
import threading
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pocketsphinx import Decoder

# The bundled acoustic model is trained on 16 kHz speech.
MODEL_RATE = 16000

DIGITS = "zero one two three four five six seven eight nine oh".split()
DIGITS_GRAMMAR = "#JSGF V1.0;\ngrammar digits;\npublic <digits> = ( %s )* ;\n" % " | ".join(DIGITS)


def parse_form(content_type, body):
    """The parts of a multipart/form-data body: name -> (filename, bytes)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValueError("not multipart/form-data")
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name is None:
            raise ValueError("a part without a name")
        parts[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return parts


def pcm16_at_model_rate(wav_bytes):
    """Mono 16-bit PCM at MODEL_RATE from a WAV file.

    Telephone audio (8 kHz) is interpolated with a windowed-sinc low-pass at 3.6 kHz: plain
    linear interpolation would leave images of the 3-4 kHz band at 4-5 kHz, where the
    wideband model expects real speech energy.
    """
    with wave.open(io.BytesIO(wav_bytes)) as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError("expected mono 16-bit PCM WAV")
        rate = w.getframerate()
        samples = array.array("h", w.readframes(w.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    if rate == MODEL_RATE or not samples:
        return samples.tobytes()
    cutoff = min(3600.0, 0.45 * min(rate, MODEL_RATE)) / rate  # cycles per input sample
    half = 16  # taps each side
    n = int(len(samples) * MODEL_RATE / rate)
    out = array.array("h", bytes(2 * n))
    last = len(samples)
    for i in range(n):
        pos = i * rate / MODEL_RATE
        j0 = int(pos)
        acc = 0.0
        for j in range(j0 - half + 1, j0 + half + 1):
            if 0 <= j < last:
                x = pos - j
                sinc = 2 * cutoff if x == 0 else math.sin(2 * math.pi * cutoff * x) / (math.pi * x)
                window = 0.5 + 0.5 * math.cos(math.pi * x / half)
                acc += samples[j] * sinc * window
        out[i] = max(-32768, min(32767, int(acc)))
    return out.tobytes()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        opts = self.server.opts
        if opts.hang:
            threading.Event().wait()
        if opts.fail_status:
            self.reply(opts.fail_status, {"error": {"message": "the test server refuses", "type": "server_error"}})
            return
        if self.path != "/v1/audio/transcriptions":
            self.reply(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            form = parse_form(self.headers.get("Content-Type", ""), body)
            _, wav_bytes = form["file"]
            if opts.dump:
                with open(opts.dump, "wb") as f:
                    f.write(wav_bytes)
            pcm = pcm16_at_model_rate(wav_bytes)
        except (KeyError, ValueError, EOFError, wave.Error) as e:
            self.reply(400, {"error": {"message": f"bad request: {e}"}})
            return
        decoder = Decoder(samprate=MODEL_RATE, loglevel="FATAL")
        if opts.digits:
            decoder.add_jsgf_string("digits", DIGITS_GRAMMAR)
            decoder.activate_search("digits")
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        text = hyp.hypstr if hyp is not None else ""
        field = lambda k: form[k][1].decode() if k in form else None
        print(json.dumps({
            "model": field("model"),
            "language": field("language"),
            "response_format": field("response_format"),
            "authorization": self.headers.get("Authorization"),
            "text": text,
        }), flush=True)
        self.reply(200, {"text": text})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--fail-status", type=int, default=0)
    p.add_argument("--hang", action="store_true")
    p.add_argument("--dump", help="write the last WAV received to this file")
    p.add_argument("--digits", action="store_true")
    opts = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.opts = opts
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
