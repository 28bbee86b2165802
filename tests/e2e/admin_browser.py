"""The admin page in a real browser: Debian's chromium driven by Selenium through
chromium-driver, against the daemon the Rust test (tests/e2e/admin.rs) started.

    admin_browser.py BASE_URL TOKEN SMS_FLOW_FILE SCREENSHOT_DIR

Every wait is on something the page shows (WebDriverWait polls the DOM), bounded by a
generous timeout that only decides when a failure is reported. Prints one line per step;
exits non-zero on the first failure, with a screenshot of the page it failed on.
"""

import http.server
import json
import os
import sys
import threading
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE, TOKEN, SMS_FLOW_FILE, SHOTS = sys.argv[1:5]
WAIT = 60

CALL_FLOW = {
    "name": "hold-line",
    "detail": "Answers and keeps the line open for five minutes: only a hang-up ends it within the test.",
    "actions": [{"type": "answer"}, {"type": "sleep", "option": {"duration": 300000}}],
}
# actions[1] has an unknown type: the API refuses the flow with that action's path.
INVALID_FLOW = {
    "name": "broken",
    "actions": [{"type": "answer"}, {"type": "no_such_action"}, {"type": "hangup"}],
}


START = time.monotonic()


def step(text):
    print("step: %6.1fs %s" % (time.monotonic() - START, text), flush=True)


def browser():
    o = webdriver.ChromeOptions()
    o.binary_location = os.environ.get("FLOWGATE_CHROMIUM", "/usr/bin/chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--disable-gpu", "--window-size=1000,760", "--hide-scrollbars"):
        o.add_argument(a)
    driver = os.environ.get("FLOWGATE_CHROMEDRIVER", "/usr/bin/chromedriver")
    return webdriver.Chrome(service=Service(driver), options=o)


def shot(d, name):
    path = os.path.join(SHOTS, name + ".png")
    d.save_screenshot(path)
    step("screenshot %s (%d bytes)" % (path, os.path.getsize(path)))


def wait_text(d, css, text, timeout=WAIT):
    WebDriverWait(d, timeout).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))


def visible(d, css, timeout=WAIT):
    return WebDriverWait(d, timeout).until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)))


def click(d, css, timeout=WAIT):
    """Clicks the element at `css`, found again when a live fragment re-rendered it between
    the finding and the click (a call's state changes while the dashboard shows it)."""

    def attempt(_):
        visible(d, css).click()
        return True

    WebDriverWait(d, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(attempt)


def set_editor(d, flow):
    area = d.find_element(By.ID, "flow-json")
    d.execute_script("arguments[0].value = arguments[1];", area, json.dumps(flow, indent=2))


def create_flow(d, flow):
    d.get(BASE + "/admin/flows/new")
    set_editor(d, flow)
    d.find_element(By.ID, "flow-save").click()
    # A new flow's page is its own URL once saved.
    WebDriverWait(d, WAIT).until(lambda d: "/admin/flows/new" not in d.current_url)
    return d.current_url.rsplit("/", 1)[1]


class EvilPage(http.server.BaseHTTPRequestHandler):
    """Another site: a page that posts a form to the gateway's admin proxy on load."""

    def do_GET(self):
        body = ("""<!doctype html><html><body>
<form id=f method=post action="%s/admin/api/v1.0/gateway/sim/sms" enctype="text/plain">
<input name='{"from":"+15550000666","text":"forged","x":"' value='"}'>
</form><script>document.getElementById('f').submit()</script></body></html>""" % BASE).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    os.makedirs(SHOTS, exist_ok=True)
    d = browser()
    try:
        run(d)
    except Exception:
        d.save_screenshot(os.path.join(SHOTS, "..", "admin-failure.png"))
        print("failed on", d.current_url, file=sys.stderr)
        print(d.page_source[:4000], file=sys.stderr)
        raise
    finally:
        d.quit()


def run(d):
    step("a wrong token is refused")
    d.get(BASE + "/admin/")
    visible(d, "#token").send_keys("not-the-token-at-all")
    d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_text(d, "#login-error", "not the gateway's API token")
    assert "/admin/login" in d.current_url, d.current_url

    step("log in")
    visible(d, "#token").send_keys(TOKEN)
    d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    step("see sim0 registered with its signal")
    wait_text(d, "[data-line=sim0] .registration", "home")
    wait_text(d, "[data-line=sim0] .signal", "dBm")
    wait_text(d, "#feed-state", "live")

    step("save an invalid flow and see the error at its action")
    d.get(BASE + "/admin/flows/new")
    set_editor(d, INVALID_FLOW)
    d.find_element(By.ID, "flow-save").click()
    wait_text(d, "#action-1 .err", "actions[1]")
    assert "has-error" in d.find_element(By.ID, "action-1").get_attribute("class")
    assert "has-error" not in d.find_element(By.ID, "action-0").get_attribute("class")
    shot(d, "flow-editor")

    step("create the flows")
    with open(SMS_FLOW_FILE) as f:
        sms_flow = json.load(f)
    sms_id = create_flow(d, sms_flow)
    call_id = create_flow(d, CALL_FLOW)

    step("dry run with scripted input")
    d.get(BASE + "/admin/flows/" + sms_id)
    Select(d.find_element(By.ID, "dry-ref")).select_by_value("conversation")
    d.find_element(By.ID, "dry-vars").send_keys("voipbin.conversation_message.text=hours")
    d.find_element(By.CSS_SELECTOR, "#dryrun-form button[type=submit]").click()
    wait_text(d, "#dryrun-result table.trace", "message_send")
    wait_text(d, "#dryrun-result table.trace", "We are open")

    step("bind the flows to the gateway's number")
    d.get(BASE + "/admin/numbers")
    d.find_element(By.ID, "nb-number").send_keys("+15550001000")
    Select(d.find_element(By.ID, "nb-call")).select_by_value(call_id)
    Select(d.find_element(By.ID, "nb-msg")).select_by_value(sms_id)
    d.find_element(By.CSS_SELECTOR, "#number-create button[type=submit]").click()
    wait_text(d, "#number-create .status", "Bound.")
    wait_text(d, "[data-frag=numberlist]", "+15550001000")
    shot(d, "numbers")

    step("send an SMS from the simulator panel; the reply appears without a reload")
    d.get(BASE + "/admin/sim")
    wait_text(d, "#feed-state", "live") if d.find_elements(By.ID, "feed-state") else None
    d.execute_script("window.__noReload = true;")
    d.find_element(By.ID, "sms-text").send_keys("hours")
    d.find_element(By.CSS_SELECTOR, "#sim-sms button[type=submit]").click()
    wait_text(d, "#sim-sms .status", "Delivered")
    wait_text(d, ".sim-sent", "We are open Monday to Friday")
    assert d.execute_script("return window.__noReload === true;"), "the page reloaded"
    shot(d, "simulator")

    step("place a call and hang it up from the dashboard")
    d.find_element(By.CSS_SELECTOR, "#sim-call button[type=submit]").click()
    wait_text(d, "#sim-call .status", "Ringing")
    d.get(BASE + "/admin/")
    visible(d, "[data-frag=livecalls] button.danger")
    wait_text(d, "[data-frag=livecalls]", "+15557654321")
    shot(d, "dashboard")
    click(d, "[data-frag=livecalls] button.danger")
    wait_text(d, "[data-frag=livecalls]", "No call right now.")

    step("messages, calls, events, settings")
    d.get(BASE + "/admin/messages")
    wait_text(d, "[data-frag=conversations]", "We are open")
    shot(d, "messages")
    d.get(BASE + "/admin/calls")
    wait_text(d, "[data-frag=calls]", "local")
    shot(d, "calls")
    d.get(BASE + "/admin/events")
    wait_text(d, "#feed-state", "live")
    f = d.find_element(By.ID, "events-filter")
    f.send_keys("message_created")
    rows = [r for r in d.find_elements(By.CSS_SELECTOR, "#events-log tr") if r.is_displayed()]
    assert rows and all("message_created" in r.text for r in rows), "the filter shows other events"
    shot(d, "events")
    d.get(BASE + "/admin/settings")
    wait_text(d, "#config", "listen")
    shot(d, "settings")

    step("a request with a wrong CSRF token is refused")
    status = d.execute_script("""
        const r = await fetch('/admin/api/v1.0/gateway/sim/sms', {method: 'POST',
          headers: {'Content-Type': 'application/json', 'X-CSRF-Token': 'forged'},
          body: JSON.stringify({from: '+15550000666', text: 'forged'})});
        return r.status;""")
    assert status == 403, status

    step("a forged cross-site POST is refused")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EvilPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # `localhost` is another site than `127.0.0.1`: the SameSite cookie stays home.
        d.get("http://localhost:%d/" % server.server_address[1])
        WebDriverWait(d, WAIT).until(lambda d: "/admin/api/" in d.current_url)
        body = d.find_element(By.TAG_NAME, "body").text
        assert "UNAUTHORIZED" in body or "FORBIDDEN" in body, body
        step("forged POST answered: " + body[:80])
    finally:
        server.shutdown()
    print("ok: all admin page checks passed", flush=True)


if __name__ == "__main__":
    main()
