#!/usr/bin/env python3
"""A whole python-gsmmodem session against Flowgate's simulated modem.

python-gsmmodem (PyPI ``python-gsmmodem-new``) is an independent modem client; this script
drives it the way an application would: connect (its own init sequence), read the identity,
receive and send SMS in text mode and in PDU mode (a multipart UCS2 message with emoji each
way), run USSD sessions, and make and take calls. It checks what it received itself and
prints a report.

The simulator's other side (injecting SMS, ringing, answering and hanging up as the far end)
is driven by the Rust test that started this script, over a line protocol: the script writes
``{"op": ...}`` as one JSON line to stdout and reads one JSON line back from stdin,
``{"ok": true, "value": ...}`` or ``{"ok": false, "error": ...}``. The Rust side checks what
the simulator saw the client do.

Waiting is event-driven: every wait is a ``threading.Event``/``Condition`` set by
python-gsmmodem's own callbacks, with a generous limit that only matters when something is
broken. Diagnostics go to stderr.

Usage: session.py <AT port> <model id>
"""

import json
import logging
import struct
import sys
import threading

from gsmmodem.modem import GsmModem, SentSms

WAIT = 30.0  # seconds; every wait returns as soon as its condition holds

PORT, MODEL, STORED_IN = sys.argv[1], sys.argv[2], sys.argv[3]
HUAWEI = MODEL.startswith("huawei")
SIMCOM = MODEL.startswith("simcom")

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                    format="%(relativeCreated)6d %(threadName)s %(name)s: %(message)s")
log = logging.getLogger("session")


def ask(op, **args):
    """One request to the Rust side; returns its value or raises."""
    args["op"] = op
    sys.stdout.write(json.dumps(args) + "\n")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        raise RuntimeError("the test harness went away")
    reply = json.loads(line)
    if not reply.get("ok"):
        raise RuntimeError("%s failed: %s" % (op, reply.get("error")))
    return reply.get("value")


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    log.info("ok: %s", what)


def as_utf16_units(text):
    """`text` with every character outside the BMP as its two surrogate code points.

    python-gsmmodem encodes UCS2 one Python character per 16-bit unit, so an emoji must be
    handed to it as the surrogate pair real phones send.
    """
    data = text.encode("utf-16-be")
    return "".join(chr(u) for u in struct.unpack(">%dH" % (len(data) // 2), data))


def from_utf16_units(text):
    """The reverse: python-gsmmodem decodes UCS2 into surrogate code points; join them."""
    return text.encode("utf-16-be", "surrogatepass").decode("utf-16-be")


class Watcher:
    """Collects what python-gsmmodem hands out: SMS, status reports, calls, and every
    unsolicited line, and lets the session wait for them."""

    def __init__(self):
        self.cond = threading.Condition()
        self.sms = []
        self.reports = []
        self.calls = []
        self.lines = []

    def add(self, kind, item):
        with self.cond:
            getattr(self, kind).append(item)
            self.cond.notify_all()

    def wait(self, what, pred):
        with self.cond:
            if not self.cond.wait_for(pred, timeout=WAIT):
                raise AssertionError("timed out waiting for " + what)

    def wait_line(self, what, start, pred):
        """Waits for a line (from the `start`-th on) that `pred` accepts."""
        self.wait(what, lambda: any(pred(l) for l in self.lines[start:]))


watch = Watcher()
modem = GsmModem(
    PORT,
    115200,
    incomingCallCallbackFunc=lambda call: watch.add("calls", call),
    smsReceivedCallbackFunc=lambda sms: watch.add("sms", sms),
    smsStatusReportCallback=lambda report: watch.add("reports", report),
)
# Record every unsolicited notification before python-gsmmodem handles it.
handle = modem.notifyCallback


def notified(lines):
    with watch.cond:
        watch.lines.extend(lines)
        watch.cond.notify_all()
    handle(lines)


modem.notifyCallback = notified
report = {}


def wait_report(sent):
    """Has the network confirm what was sent, and waits for the status report of `sent`
    (python-gsmmodem files it under the message reference of the last part)."""
    ask("deliver_reports")
    watch.wait("the status report of MR %d" % sent.reference,
               lambda: any(r.reference == sent.reference for r in watch.reports))
    return sent.report

# ------------------------------------------------------------------ connect and identity
modem.connect()
report["identity"] = {
    "manufacturer": modem.manufacturer,
    "model": modem.model,
    "revision": modem.revision,
    "imei": modem.imei,
    "imsi": modem.imsi,
    "signal": modem.signalStrength,
    "network": modem.networkName,
    "own_number": modem.ownNumber,
    "smsc": modem.smsc,
}
log.info("identity %s", report["identity"])
check(modem.smsEncoding in ("GSM", "IRA"), "the TE character set reads back")
check("UCS2" in modem.smsSupportedEncoding, "AT+CSCS=? lists UCS2")

# ------------------------------------------------------------------ SMS, text mode
modem.smsTextMode = True
# A message that arrived before the session (stored, not announced): listed with CMGL.
stored = modem.listStoredSms(memory=STORED_IN, delete=True)
check([(s.number, s.text) for s in stored] == [("+15550002222", "Stored while you were away")],
      "text mode AT+CMGL=\"ALL\" lists the stored message")
ask("send_sms", sender="+15557654321", text="Hello in text mode")
watch.wait("a text-mode SMS", lambda: len(watch.sms) == 1)
got = watch.sms[0]
check((got.number, got.text) == ("+15557654321", "Hello in text mode"),
      "text mode AT+CMGR reads the message")
sent = modem.sendSms("+15551110001", "Text mode out")
wait_report(sent)
check(sent.status == SentSms.DELIVERED, "text mode status report read with AT+CMGR")
report["text_mode"] = {"stored": stored[0].text, "received": got.text}

# ------------------------------------------------------------------ SMS, PDU mode
modem.smsTextMode = False
EMOJI_IN = ("Grüße vom Simulator 😀 — ein langer Text in UCS2, damit er in mehrere Teile "
            "zerfällt 🚀 und die Teile wieder zusammengesetzt werden müssen. Ende 👍")
parts = ask("send_sms", sender="+15557654321", text=EMOJI_IN)
check(parts > 1, "the inbound UCS2 message is multipart (%d parts)" % parts)
watch.wait("%d more PDU parts" % parts, lambda: len(watch.sms) == 1 + parts)
pieces = watch.sms[1:]
for p in pieces:
    check(p.number == "+15557654321", "each part names the sender")
concat = sorted(((ie.number, p.text) for p in pieces for ie in p.udh
                 if hasattr(ie, "number")), key=lambda x: x[0])
check([n for n, _ in concat] == list(range(1, parts + 1)), "every part has its concat header")
joined = from_utf16_units("".join(t for _, t in concat))
check(joined == EMOJI_IN, "the UCS2 parts join to the text, emoji included")

EMOJI_OUT = ("Antwort aus Python 🙂 " + "x" * 50 + " 🎉 " + "y" * 40 + " Ende ✅")
units = as_utf16_units(EMOJI_OUT)
for cut in range(67, len(units), 67):
    check(not 0xD800 <= ord(units[cut - 1]) <= 0xDBFF,
          "no surrogate pair straddles the part boundary at %d" % cut)
sent = modem.sendSms("+15551110002", units)
wait_report(sent)
check(sent.status == SentSms.DELIVERED, "PDU mode multipart UCS2 sent, status report matched")
sent = modem.sendSms("+15551110003", "Plain GSM 7-bit, one part")
wait_report(sent)
check(sent.status == SentSms.DELIVERED, "PDU mode GSM 7-bit sent, status report matched")
report["pdu_mode"] = {"received": joined}

# ------------------------------------------------------------------ USSD
ask("queue_ussd", text="1 Balance\n2 Bundles", status=1)
menu = modem.sendUssd("*100#")
check(menu.sessionActive and menu.message == "1 Balance\n2 Bundles",
      "USSD menu (a reply spanning two lines) keeps the session open")
ask("queue_ussd", text="Balance: 12.34 EUR", status=0)
answer = menu.reply("1")
check(not answer.sessionActive and answer.message == "Balance: 12.34 EUR",
      "USSD reply in the session ends it")
ask("queue_ussd", text="Pick one", status=1)
again = modem.sendUssd("*101#")
again.cancel()
report["ussd"] = [menu.message, answer.message]

# ------------------------------------------------------------------ calls out
states = []
changed = threading.Condition()


def on_call(call):
    with changed:
        states.append((call.answered, call.active))
        changed.notify_all()


def quiesce():
    """Waits until python-gsmmodem's call-state pollers have stopped. On a modem without
    call URCs it polls AT+CLCC from a thread per call; a poll still in flight when the
    next call rings would take that call's RING/+CLIP as part of its AT+CLCC response
    (its reader cannot tell a URC from a response line while it waits for one)."""
    for t in threading.enumerate():
        if t is not threading.current_thread() and "_pollCallStatus" in t.name:
            t.join(timeout=30)
            check(not t.is_alive(), "python-gsmmodem's call poller stopped")


def wait_state(what, pred):
    with changed:
        if not changed.wait_for(lambda: any(pred(s) for s in states), timeout=WAIT):
            raise AssertionError("timed out waiting for " + what)


def hang_up(call):
    try:
        call.hangup()
    except KeyError:
        # python-gsmmodem deletes the call in hangup() and in its own end-of-call handler
        # (^CEND, CLCC polling); whichever runs second finds it gone.
        pass


call = modem.dial("+15553330001", callStatusUpdateCallbackFunc=on_call)
ask("remote_answer")
wait_state("the dialled call answered", lambda s: s == (True, True))
call.sendDtmfTone("12#")
check(ask("dtmf_sent") == "12#", "DTMF reached the simulator")
hang_up(call)
ask("wait_no_calls")
quiesce()

states.clear()
call = modem.dial("+15553330002", callStatusUpdateCallbackFunc=on_call)
ask("remote_answer")
wait_state("the second call answered", lambda s: s == (True, True))
ask("remote_hangup")
wait_state("the far end hanging up", lambda s: not s[0])
ask("wait_no_calls")
quiesce()

# ------------------------------------------------------------------ calls in
ask("incoming_call", number="+15557654321")
watch.wait("an incoming call", lambda: len(watch.calls) >= 1)
ring = watch.calls[0]
check(ring.number == "+15557654321", "caller id from +CLIP")
check(ring.type == 0, "+CRING: VOICE (AT+CRC=1)")
ring.answer()
ask("far_end_dtmf", digits="5")
seen = len(watch.lines)
ask("remote_hangup")
end = "^CEND:" if HUAWEI else "NO CARRIER"
watch.wait_line("the caller hanging up", seen, lambda l: l.startswith(end))
dtmf_urcs = [l for l in watch.lines if l.startswith(("+QTONEDET", "^DDTMF", "+RXDTMF", "+DTMF"))]
if SIMCOM:
    # python-gsmmodem sends AT+DDET=1 to SIMCom modems: detection is on.
    check(dtmf_urcs == ["+RXDTMF: 5"], "DTMF reported after AT+DDET=1")
else:
    check(dtmf_urcs == [], "no DTMF URC: python-gsmmodem never enabled detection")
ask("wait_no_calls")
quiesce()

count = len(watch.calls)
ask("incoming_call", number="+15557654322")
watch.wait("a second incoming call", lambda: len(watch.calls) > count)
seen = len(watch.lines)
ask("remote_hangup")
watch.wait_line("a caller giving up while it rings", seen, lambda l: l.startswith(end))
ask("wait_no_calls")
quiesce()

ask("incoming_call", number="+15557654323")
watch.wait("a third incoming call", lambda: len(watch.calls) > count + 1)
last = watch.calls[-1]
last.answer()
hang_up(last)
ask("wait_no_calls")
quiesce()
report["calls"] = list(dict.fromkeys(c.number for c in watch.calls))
report["dtmf_urcs"] = dtmf_urcs

modem.close()
ask("report", report=report)
log.info("session complete")
