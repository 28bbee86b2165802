"""A media stream client for tests/e2e/media_stream.rs: one WebSocket to
GET /v1.0/calls/{id}/media_stream, driven by the test through stdin, reporting on stdout
as JSON lines.

    media_stream_client.py URL ENCAPSULATION OUTFILE

* Prints {"open": true} once the WebSocket is up, or {"status": N} when the handshake is
  refused (and exits).
* Appends the PCM of every binary message it receives to OUTFILE (the encapsulation's
  header stripped; RTP headers are checked: payload type 96, one SSRC, sequence +1 and
  timestamp +160 per message).
* stdin "tone": sends one second of a 1 kHz tone (8 kHz s16le), 20 ms per message, in the
  encapsulation; "close": closes the WebSocket normally.
* Prints {"closed": CODE, "messages": N, "rtp_ok": BOOL} when the WebSocket is closed,
  by either side, then exits.
"""

import asyncio
import json
import math
import struct
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

FRAME = 160


def say(obj):
    print(json.dumps(obj), flush=True)


def wrap(encapsulation, pcm, seq):
    if encapsulation == "sln":
        return pcm
    if encapsulation == "audiosocket":
        return bytes([0x10]) + struct.pack(">H", len(pcm)) + pcm
    # RTP: version 2, marker on the first, payload type 96 (L16/8000/1).
    first = 0x80 if seq == 0 else 0
    return struct.pack(">BBHII", 0x80, first | 96, seq, seq * FRAME, 0x5EED) + pcm


def unwrap(encapsulation, message, state):
    if encapsulation == "sln":
        return message
    if encapsulation == "audiosocket":
        kind, length = message[0], struct.unpack(">H", message[1:3])[0]
        return message[3 : 3 + length] if kind == 0x10 else b""
    _, pt, seq, ts, ssrc = struct.unpack(">BBHII", message[:12])
    last = state.get("last")
    ok = (pt & 0x7F) == 96 and len(message) == 12 + 2 * FRAME
    if last is not None:
        ok = ok and ssrc == last[2] and seq == (last[0] + 1) % 65536
        ok = ok and ts == (last[1] + FRAME) % 2**32
    state["rtp_ok"] = state.get("rtp_ok", True) and ok
    state["last"] = (seq, ts, ssrc)
    return message[12:]


def tone():
    samples = [int(8000 * math.sin(2 * math.pi * 1000 * i / 8000)) for i in range(8000)]
    return struct.pack("<%dh" % len(samples), *samples)


async def commands(ws, encapsulation):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if line == "tone":
            pcm = tone()
            for k in range(0, len(pcm) // (2 * FRAME)):
                chunk = pcm[k * 2 * FRAME : (k + 1) * 2 * FRAME]
                await ws.send(wrap(encapsulation, chunk, k))
        elif line == "close" or line == "":
            await ws.close()
            return


async def main():
    url, encapsulation, outfile = sys.argv[1:4]
    try:
        ws = await connect(url, max_size=2**20)
    except InvalidStatus as e:
        say({"status": e.response.status_code})
        return
    say({"open": True})
    control = asyncio.create_task(commands(ws, encapsulation))
    state = {}
    messages = 0
    with open(outfile, "wb") as out:
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    messages += 1
                    out.write(unwrap(encapsulation, message, state))
                    out.flush()
        except ConnectionClosed:
            pass
    control.cancel()
    say(
        {
            "closed": ws.close_code,
            "messages": messages,
            "rtp_ok": state.get("rtp_ok", encapsulation != "rtp"),
        }
    )


asyncio.run(main())
