# SPDX-License-Identifier: LGPL-2.1-or-later
"""janus_bridge.py: Janus's AudioBridge for bench/bench-conference.py. Starts Debian's
`janus` with a generated configuration (the HTTP API on 127.0.0.1, the audiobridge plugin
alone, no session timeout), makes a room and joins plain-RTP participants to it through
the HTTP API, and feeds each one Opus RTP from a single sender thread: the payloads were
encoded once (gst-launch-1.0: audiotestsrc ! opusenc ! rtpopuspay into a socket here) and
are replayed with each participant's own SSRC, sequence numbers and timestamps, so the
senders cost next to nothing beside the bridge measured."""
import http.client
import json
import os
import random
import socket
import subprocess
import threading
import time
import urllib.request

PLUGINS = "/usr/lib/x86_64-linux-gnu/janus/plugins"
TRANSPORTS = "/usr/lib/x86_64-linux-gnu/janus/transports"
OPUS_PT = 111


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def opus_payloads(freq, seconds=1.0, dtx=False):
    """seconds of a tone (freq Hz; 0: silence) as Opus 20 ms payloads, mono at 48 kHz.
    With dtx, the encoder's DTX frames (2 bytes or less) are None: not sent, as an
    rtpopuspay with dtx=true would not send them (the timestamp still advances)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    frames = int(seconds * 50)
    wave = f"freq={freq} volume=0.3" if freq else "wave=silence"
    gst = subprocess.Popen(
        ["gst-launch-1.0", "-q", "audiotestsrc", f"num-buffers={frames}", "samplesperbuffer=960",
         *wave.split(), "!", "audio/x-raw,rate=48000,channels=1", "!", "opusenc",
         "frame-size=20", "bitrate=20000", f"dtx={'true' if dtx else 'false'}", "!", "rtpopuspay", f"pt={OPUS_PT}", "!", "udpsink",
         "host=127.0.0.1", f"port={sock.getsockname()[1]}", "sync=false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    payloads = []
    try:
        while len(payloads) < frames:
            data = sock.recv(2048)
            cc = data[0] & 0x0F
            payload = data[12 + 4 * cc:]
            payloads.append(None if dtx and len(payload) <= 2 else payload)
    finally:
        gst.wait(10)
        sock.close()
    return payloads


class RtpSender(threading.Thread):
    """Every 20 ms, the next payload of each stream to its destination."""

    def __init__(self):
        super().__init__(daemon=True)
        self.streams = []  # [sock, dest, payloads, ssrc, seq, ts, index]
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def add(self, sock, dest, payloads):
        with self.lock:
            self.streams.append([sock, dest, payloads, random.getrandbits(32),
                                 random.getrandbits(16), random.getrandbits(32),
                                 random.randrange(len(payloads))])

    def run(self):
        next_at = time.monotonic()
        while not self.stopped.is_set():
            with self.lock:
                for s in self.streams:
                    sock, dest, payloads, ssrc, seq, ts, i = s
                    header = bytes([0x80, OPUS_PT]) + seq.to_bytes(2, "big") + \
                        ts.to_bytes(4, "big") + ssrc.to_bytes(4, "big")
                    if payloads[i] is not None:
                        try:
                            sock.sendto(header + payloads[i], dest)
                        except OSError:
                            pass
                        seq = (seq + 1) & 0xFFFF
                    s[4], s[5], s[6] = seq, (ts + 960) & 0xFFFFFFFF, (i + 1) % len(payloads)
            next_at += 0.02
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.2:  # far behind: skip rather than burst
                next_at = time.monotonic()

    def stop(self):
        self.stopped.set()
        self.join(2)


class Janus:
    def __init__(self, work):
        self.work = os.path.join(work, "janus")
        os.makedirs(self.work, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/janus"
        self.proc = None
        self.session = None
        self.handles = []
        self.sockets = []
        self.sender = None
        self.poller = None

    def write_config(self):
        plugins = [p for p in os.listdir(PLUGINS)
                   if p.endswith(".so") and p != "libjanus_audiobridge.so"]
        transports = [t for t in os.listdir(TRANSPORTS)
                      if t.endswith(".so") and t != "libjanus_http.so"]
        files = {
            "janus.jcfg": f"""general: {{
  configs_folder = "{self.work}"
  plugins_folder = "{PLUGINS}"
  transports_folder = "{TRANSPORTS}"
  events_folder = "/nonexistent"
  loggers_folder = "/nonexistent"
  debug_level = 3
  debug_colors = false
  session_timeout = 0
}}
media: {{ rtp_port_range = "40000-49999" }}
nat: {{ nice_debug = false }}
plugins: {{ disable = "{",".join(plugins)}" }}
transports: {{ disable = "{",".join(transports)}" }}
events: {{ broadcast = false }}
""",
            "janus.transport.http.jcfg": f"""general: {{
  json = "compact"
  base_path = "/janus"
  http = true
  port = {self.port}
  ip = "127.0.0.1"
  https = false
}}
admin: {{ admin_http = false }}
""",
            "janus.plugin.audiobridge.jcfg": """general: {
  rtp_port_range = "50000-59999"
  local_ip = "127.0.0.1"
}
""",
        }
        for name, text in files.items():
            with open(os.path.join(self.work, name), "w") as f:
                f.write(text)

    def start(self):
        self.write_config()
        log = open(os.path.join(self.work, "janus.log"), "w")
        self.proc = subprocess.Popen(
            ["janus", "-F", self.work, "-C", os.path.join(self.work, "janus.jcfg")],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.work)
        deadline = time.monotonic() + 20
        while True:
            try:
                self.session = self.post("", {"janus": "create"})["data"]["id"]
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("janus did not start:\n" + self.log_text())
                time.sleep(0.1)
        self.events = []
        self.cond = threading.Condition()
        self.poller = threading.Thread(target=self.poll, daemon=True)
        self.poller.start()
        self.sender = RtpSender()
        self.sender.start()

    def log_text(self):
        with open(os.path.join(self.work, "janus.log")) as f:
            return f.read()[-3000:]

    def post(self, path, body, timeout=10):
        body = dict(body, transaction=f"t{random.getrandbits(48)}")
        req = urllib.request.Request(self.url + path, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            reply = json.loads(r.read())
        if reply.get("janus") == "error":
            raise RuntimeError(f"janus: {reply}")
        return reply

    def poll(self):
        while self.proc is not None and self.proc.poll() is None:
            try:
                url = f"{self.url}/{self.session}?maxev=10"
                with urllib.request.urlopen(url, timeout=40) as r:
                    got = json.loads(r.read())
            except (OSError, http.client.HTTPException, ValueError):
                if self.proc is None or self.proc.poll() is not None:
                    return
                time.sleep(0.1)
                continue
            with self.cond:
                self.events.extend(got if isinstance(got, list) else [got])
                self.cond.notify_all()

    def attach(self):
        handle = self.post(f"/{self.session}",
                           {"janus": "attach", "plugin": "janus.plugin.audiobridge"})["data"]["id"]
        self.handles.append(handle)
        return handle

    def message(self, handle, body):
        reply = self.post(f"/{self.session}/{handle}", {"janus": "message", "body": body})
        if reply.get("janus") == "ack":  # asynchronous: the answer comes as an event
            with self.cond:
                got = self.cond.wait_for(lambda: next(
                    (e for e in self.events if e.get("sender") == handle and
                     e.get("transaction") == reply["transaction"]), None), 20)
            if not got:
                raise RuntimeError(f"janus: no answer to {body['request']}")
            reply = got
        data = reply["plugindata"]["data"]
        if "error" in data:
            raise RuntimeError(f"janus: {body['request']}: {data['error']}")
        return data

    def room(self, rate):
        """A new room mixing at rate Hz; its id."""
        room = random.randrange(1, 1 << 31)
        self.message(self.attach(), {"request": "create", "room": room, "sampling_rate": rate,
                                     "audiolevel_event": False, "record": False,
                                     "allow_rtp_participants": True})
        return room

    def join(self, room, payloads):
        """A plain-RTP participant sending payloads (Opus, mono) that Janus answers to a
        socket of ours (what it sends is read by nobody: the kernel drops it)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sockets.append(sock)
        data = self.message(self.attach(), {
            "request": "join", "room": room, "codec": "opus", "display": f"p{len(self.sockets)}",
            "rtp": {"ip": "127.0.0.1", "port": sock.getsockname()[1], "payload_type": OPUS_PT}})
        rtp = data.get("rtp") or {}
        if "port" not in rtp:
            raise RuntimeError(f"janus: no RTP port in the join's answer: {data}")
        self.sender.add(sock, (rtp.get("ip", "127.0.0.1"), rtp["port"]), payloads)

    def leave_all(self):
        """Every participant out (the sender first), the handles detached: ready for the
        next room."""
        with self.sender.lock:
            self.sender.streams.clear()
        for handle in self.handles:
            try:
                self.post(f"/{self.session}/{handle}", {"janus": "detach"})
            except (OSError, RuntimeError):
                pass
        self.handles.clear()
        for s in self.sockets:
            s.close()
        self.sockets.clear()

    def stop(self):
        if self.sender is not None:
            self.sender.stop()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        for s in self.sockets:
            s.close()


def version():
    """`janus --version`'s first line, or the Debian package's version."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "janus"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        return f"janus {out}" if out else "janus"
    except OSError:
        return "janus"
