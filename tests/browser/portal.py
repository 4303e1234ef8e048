"""The customer portal in a real browser: Debian's Chromium driven by Playwright (no browser download), against
the real switchboard binary with an SMTP sink (aiosmtpd) taking its emails.

Run by crates/switchboard/tests/browser.rs (cargo test), which passes:
  SWITCHBOARD_BIN   the daemon binary
  SCREENSHOTS       where each screen's screenshot goes (kept as test artifacts)
Exits non-zero, with the step that failed, when anything is not as expected.
"""

import email
import email.policy
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import http.server

from aiosmtpd.controller import Controller
from playwright.sync_api import sync_playwright

BIN = os.environ["SWITCHBOARD_BIN"]
SHOTS = os.environ["SCREENSHOTS"]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
NUMBER = "+61290000001"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """Keeps every message the daemon sends."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def link_to(self, address, subject, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for m in reversed(self.messages):
                if address in str(m["To"]) and subject in str(m["Subject"]):
                    body = m.get_body(preferencelist=("plain",)).get_content()
                    found = re.search(r"https?://\S+/portal/password/[0-9a-f]{64}", body)
                    assert found, body
                    return found.group(0)
            time.sleep(0.2)
        raise AssertionError(f"no email {subject!r} to {address}; got {[str(m['Subject']) for m in self.messages]}")


class Daemon:
    def __init__(self, smtp_port):
        self.dir = tempfile.mkdtemp(prefix="sb-browser-")
        self.api_port = free_port()
        self.sip_port = free_port()
        self.base = f"http://127.0.0.1:{self.api_port}"
        config = os.path.join(self.dir, "switchboard.toml")
        with open(config, "w") as f:
            f.write(f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nfrom = "Portal <portal@carrier.test>"\n'
                    f'[media]\nport_min = 31000\nport_max = 31099\n')
        self.env = dict(os.environ, SWITCHBOARD_CONFIG=config,
                        SWITCHBOARD_DATABASE_URL=f"sqlite://{self.dir}/sb.db",
                        SWITCHBOARD_SIP_LISTEN=f"127.0.0.1:{self.sip_port}",
                        SWITCHBOARD_API_LISTEN=f"127.0.0.1:{self.api_port}",
                        SWITCHBOARD_LOG_LEVEL="info")
        self.proc = None

    def cli(self, *args):
        out = subprocess.run([BIN, *args], env=self.env, capture_output=True, text=True, cwd=self.dir)
        assert out.returncode == 0, f"switchboard {args}: {out.stderr}"
        return out.stdout

    def start(self):
        self.log = open(os.path.join(self.dir, "daemon.log"), "w")
        self.proc = subprocess.Popen([BIN, "run"], env=self.env, stderr=self.log, stdout=subprocess.DEVNULL, cwd=self.dir)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.api_port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the daemon's API never listened")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=15)


def step(name):
    print(f"== {name}", flush=True)


def main():
    os.makedirs(SHOTS, exist_ok=True)
    sink = Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    d = Daemon(smtp.port)
    d.cli("customer", "add", "Acme")
    d.cli("service", "add", "--customer", "Acme", "--name", "acme-main", "--mode", "direct")
    d.cli("customer", "add", "Beta")
    d.cli("service", "add", "--customer", "Beta", "--name", "beta-main", "--mode", "trunk")
    d.cli("device", "add", "--service", "beta-main", "--name", "Beta PBX", "--auth-id", "beta-pbx")
    d.cli("number", "add", "--service", "acme-main", "--number", NUMBER, "--divert-when", "never")
    gw_port = free_port()
    d.cli("gateway", "add", "--name", "carrier", "--address", f"127.0.0.2:{gw_port}")
    d.start()
    last = {}

    def shot(page, name):
        last["page"] = page
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)

    try:
        with sync_playwright() as p:
          try:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            print("chromium", browser.version, flush=True)
            dialogs = []

            def fresh():
                ctx = browser.new_context(viewport={"width": 1200, "height": 800})
                page = ctx.new_page()
                page.on("dialog", lambda dlg: (dialogs.append(dlg.message), dlg.dismiss()))
                return ctx, page

            step("register: the page, then the emailed link, then the password")
            ctx, page = fresh()
            page.goto(f"{d.base}/portal/login")
            shot(page, "01-sign-in")
            page.click("#register")
            page.fill("#email", "ann@acme.example")
            shot(page, "02-register")
            page.click("#send")
            assert "If this address can be used" in page.text_content("#notice")
            shot(page, "03-check-your-email")
            link = sink.link_to("ann@acme.example", "Choose your portal password")
            page.goto(link)
            page.fill("#password", "ann-password-1")
            page.fill("#again", "ann-password-1")
            shot(page, "04-choose-password")
            page.click("#set-password")
            assert "Your password is set" in page.text_content("#notice")

            step("sign in: not linked yet, then linked by the operator")
            page.fill("#email", "ann@acme.example")
            page.fill("#password", "ann-password-1")
            page.click("#sign-in")
            assert page.url.endswith("/portal/waiting"), page.url
            shot(page, "05-waiting-for-provider")
            d.cli("login", "link", "--email", "ann@acme.example", "--customer", "Acme")
            page.goto(f"{d.base}/portal/")
            assert "acme-main" in page.content()
            shot(page, "06-my-services")
            cookies = page.context.cookies()
            session = [c for c in cookies if c["name"] == "__Host-sb_session"]
            assert session and session[0]["httpOnly"] and session[0]["secure"] and session[0]["sameSite"] == "Lax", cookies

            step("setup: region and mode")
            page.click("text=Setup")
            shot(page, "07-setup")
            page.check("input[name=region]")
            page.click("#save-setup")
            assert "/portal/" in page.url

            step("add a device and read its password, once")
            page.click("text=SIP Devices")
            page.fill("#name", "<img src=x onerror=alert(1)>")
            page.fill("#auth_id", "acme-1001")
            page.fill("#caller_id", "02 9876 5432")
            shot(page, "08-sip-devices-add")
            page.click("#add-device")
            warning = page.text_content("#warning")
            assert "only time this password is shown" in warning, warning
            password = page.text_content("#device-password")
            assert len(password) == 20, password
            shot(page, "09-password-once")
            page.click("#done")
            table = page.text_content("#devices")
            assert "acme-1001" in table and password not in page.content(), table
            assert "<img src=x onerror=alert(1)>" in table, "the name is shown as text"
            shot(page, "10-sip-devices")

            step("edit and reset")
            page.goto(f"{d.base}/portal/")
            page.click("text=SIP Devices")
            page.click("#devices >> text=Edit")
            shot(page, "11-edit-device")
            page.click("#reset-password")
            new_password = page.text_content("#device-password")
            assert new_password != password
            page.click("#done")

            step("set a divert: all calls to voicemail, with a PIN")
            page.goto(f"{d.base}/portal/")
            page.click("text=Phone Numbers")
            page.click("#numbers >> text=Configure")
            page.select_option("#divert_when", "all")
            page.check("#to_voicemail")
            page.fill("#voicemail_pin", "2468")
            page.fill("#voicemail_email", "ann@acme.example")
            shot(page, "12-phone-number")
            page.click("#save-number")
            table = page.text_content("#numbers")
            assert "All calls: voicemail" in table and "PIN set" in table, table
            shot(page, "13-phone-numbers")

            step("a caller leaves a message (SIPp as the carrier), and the owner plays it in the browser")
            # The daemon picks the new divert up from the change log (database.poll_ms, 1 s): until then the
            # number still rings its (unregistered) device, and the carrier gets 480. Call again until it diverts.
            for attempt in range(5):
                sipp = subprocess.run(
                    ["sipp", "-sf", os.path.join(ROOT, "tests/sipp/uac_voicemail.xml"), "-s", NUMBER,
                     "-key", "caller", "+61400000001", "-d", "12000", "-i", "127.0.0.2", "-p", str(gw_port),
                     "-mi", "127.0.0.2", "-m", "1", "-l", "1", "-timeout", "60s", "-nostdin",
                     f"127.0.0.1:{d.sip_port}"],
                    cwd=d.dir, capture_output=True, text=True)
                if sipp.returncode == 0 or "480 Temporarily Unavailable" not in sipp.stderr + sipp.stdout:
                    break
                time.sleep(1)
            assert sipp.returncode == 0, f"sipp left no message: {sipp.stdout[-2000:]} {sipp.stderr[-2000:]}"
            page.click("#numbers a:has-text('Voicemail')")
            deadline = time.time() + 10
            while "+61400000001" not in page.content() and time.time() < deadline:
                time.sleep(0.3)
                page.reload()
            assert "+61400000001" in page.text_content("#messages"), page.content()
            audio_id = page.get_attribute("audio", "id")
            played = page.eval_on_selector("audio", """a => new Promise((ok, fail) => {
                a.addEventListener('error', () => fail('the audio did not load: ' + (a.error && a.error.code)));
                a.play().then(() => setTimeout(() => ok({time: a.currentTime, duration: a.duration}), 1500), fail);
            })""")
            assert played["time"] > 0.5 and played["duration"] > 3, played
            shot(page, "14-voicemail")
            wav = page.request.get(f"{d.base}/portal/voicemails/{audio_id.split('-')[1]}/audio?download=1")
            assert wav.status == 200 and wav.body()[:4] == b"RIFF", wav.status
            assert "attachment" in wav.headers["content-disposition"]
            page.click("button.keep")
            assert "new" not in page.text_content("#messages")
            page.click("button.delete")
            assert page.text_content("#empty") == "No messages."

            step("calls: the message's call is on record")
            page.goto(f"{d.base}/portal/")
            page.click("text=Calls")
            calls = page.text_content("#calls")
            assert "+61400000001" in calls and "diverted (all) to voicemail" in calls, calls
            shot(page, "15-calls")

            step("another customer's device is not found")
            beta = re.search(r'"id":\s*(\d+)', d.cli("device", "show", "beta-pbx", "--json")).group(1)
            response = page.goto(f"{d.base}/portal/devices/{beta}")
            assert response.status == 404, response.status
            assert "Beta PBX" not in page.content()
            shot(page, "16-not-found")
            ctx.close()

            step("a cross-site form post is refused")
            evil_port = free_port()
            target = f"{d.base}/portal/login"

            class Evil(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    body = (f'<form id="f" method="post" action="{target}">'
                            '<input name="email" value="ann@acme.example"><input name="password" value="x">'
                            '<button id="go">go</button></form>').encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

                def log_message(self, *a):
                    pass

            evil = http.server.HTTPServer(("127.0.0.1", evil_port), Evil)
            threading.Thread(target=evil.serve_forever, daemon=True).start()
            ctx, page = fresh()
            page.goto(f"http://localhost:{evil_port}/")
            with page.expect_navigation():
                page.click("#go")
            assert "sent from another site" in page.content(), page.content()
            shot(page, "17-cross-site-refused")
            evil.shutdown()
            ctx.close()

            step("having trouble signing in: reset by the emailed link")
            ctx, page = fresh()
            page.goto(f"{d.base}/portal/login")
            page.click("#trouble")
            page.fill("#email", "ann@acme.example")
            page.click("#send")
            link = sink.link_to("ann@acme.example", "Reset your portal password")
            page.goto(link)
            page.fill("#password", "ann-password-2")
            page.fill("#again", "ann-password-2")
            page.click("#set-password")
            page.fill("#email", "ann@acme.example")
            page.fill("#password", "ann-password-2")
            page.click("#sign-in")
            assert page.url.endswith("/portal/"), page.url
            response = page.goto(link)
            assert response.status == 404, "a link works once"
            shot(page, "18-link-used")
            ctx.close()

            assert not dialogs, f"a page ran script: {dialogs}"
            browser.close()
          except Exception:
            page = last.get("page")
            if page is not None and not page.is_closed():
                page.screenshot(path=os.path.join(SHOTS, "failure.png"), full_page=True)
                print("the page at the failure:", page.url, flush=True)
            raise
        print("all portal browser steps passed", flush=True)
    finally:
        d.stop()
        smtp.stop()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the step printed above says where
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
