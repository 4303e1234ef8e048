"""SIP over secure WebSocket from Chromium (RFC 7118): the browser's own WebSocket asks for the `sip`
subprotocol, sends a REGISTER, answers the SHA-256 digest challenge (computed with the page's SubtleCrypto) and
prints what the daemon answered. The certificate is the test's own, so certificate errors are ignored.

The page runs from a blank page served here on loopback: SubtleCrypto needs a secure context (about:blank is
not one), and the daemon's own pages forbid scripts any connection (their CSP).

Environment: WSS_URL (wss://127.0.0.1:PORT/), SIP_USER, SIP_PASSWORD, SIP_DOMAIN; CHROMIUM (/usr/bin/chromium).
"""

import http.server
import json
import os
import threading

from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--ignore-certificate-errors"]

REGISTER = r"""
async ([url, user, password, domain]) => {
  const hex = async (s) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256',
    new TextEncoder().encode(s)))).map(b => b.toString(16).padStart(2, '0')).join('');
  const ws = new WebSocket(url, 'sip');
  const late = (what) => new Promise((_, reject) => setTimeout(() => reject('timed out: ' + what), 5000));
  const next = () => Promise.race([late('an answer'), new Promise((resolve, reject) => {
    ws.onmessage = e => resolve(typeof e.data === 'string' ? e.data : 'binary frame');
    ws.onclose = e => reject('closed ' + e.code + ' ' + e.reason);
  })]);
  await Promise.race([late('the upgrade'), new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onclose = e => reject('could not open: closed ' + e.code + ' ' + e.reason);
  })]);
  const protocol = ws.protocol;
  const callId = Math.random().toString(36).slice(2) + '@browser';
  const uri = 'sip:' + domain;
  const reg = (cseq, auth) => `REGISTER ${uri} SIP/2.0\r\n` +
    `Via: SIP/2.0/WSS b.invalid;branch=z9hG4bK${cseq}x${callId.slice(0, 8)}\r\nMax-Forwards: 70\r\n` +
    `From: <sip:${user}@${domain}>;tag=browser1\r\nTo: <sip:${user}@${domain}>\r\nCall-ID: ${callId}\r\n` +
    `CSeq: ${cseq} REGISTER\r\nContact: <sip:${user}@b.invalid;transport=ws>\r\nExpires: 300\r\n` +
    `User-Agent: Chromium WebSocket\r\n${auth}Content-Length: 0\r\n\r\n`;
  ws.send(reg(1, ''));
  const challenge = await next();
  const line = challenge.split('\r\n').find(l => /^WWW-Authenticate:.*algorithm=SHA-256/i.test(l));
  if (!line) return { protocol, first: challenge, second: '' };
  const param = k => (line.match(new RegExp('[ ,]' + k + '="?([^",]+)"?')) || [])[1];
  const realm = param('realm'), nonce = param('nonce'), opaque = param('opaque');
  const cnonce = 'c0ffee42', nc = '00000001';
  const ha1 = await hex(`${user}:${realm}:${password}`);
  const ha2 = await hex(`REGISTER:${uri}`);
  const response = await hex(`${ha1}:${nonce}:${nc}:${cnonce}:auth:${ha2}`);
  const auth = `Authorization: Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", ` +
    `response="${response}", algorithm=SHA-256, cnonce="${cnonce}", nc=${nc}, qop=auth` +
    (opaque ? `, opaque="${opaque}"` : '') + '\r\n';
  ws.send(reg(2, auth));
  const second = await next();
  ws.close();
  return { protocol, first: challenge.split('\r\n')[0], second: second.split('\r\n')[0] };
}
"""


class Blank(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<!doctype html><title>sip over websocket</title>")

    def log_message(self, *args):
        pass


def main():
    args = [os.environ["WSS_URL"], os.environ["SIP_USER"], os.environ["SIP_PASSWORD"], os.environ["SIP_DOMAIN"]]
    server = http.server.HTTPServer(("127.0.0.1", 0), Blank)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        print("chromium", browser.version, flush=True)
        page = browser.new_context(ignore_https_errors=True).new_page()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        result = page.evaluate(REGISTER, args)
        print(json.dumps(result), flush=True)
        browser.close()


if __name__ == "__main__":
    main()
