# SPDX-License-Identifier: LGPL-2.1-or-later
"""harklab.py: hark nodes in the network lab (tests/netlab/netlab), for the Table I and
search tests (test-tablei.py, test-search.py) and benchmarks (bench/bench-tablei.py,
bench/bench-search.py).

A Lab is one netlab lab (its own NETLAB_PREFIX). hark_network() starts, in it, the login
server on `login` (198.18.0.10:8443), and super nodes on `sn1` and `sn2` (public
addresses, udp + tcp + tls443 on 443/80, promoted at once: supernode.min_uptime = 0),
each registered and logged in. Client nodes then run on c1/c2 behind the lab's routers.
Every node is a real `hark run` process inside its host's namespace, driven through its
ctl socket (a path in the file system, so reachable from any namespace). Needs root.
"""
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NETLAB = os.path.join(HERE, "netlab")
LOGIN_HOST, LOGIN_PORT = "198.18.0.10", 8443
SN_HOSTS = {"sn1": "198.18.0.11", "sn2": "198.18.0.12"}
OVERLAY_PORT = 33033
PASSWORD_SUFFIX = "-password-1"


class LabError(Exception):
    pass


def log_time(line, day):
    """The wall-clock time of a hark log line "HH:MM:SS.mmm ..." on the given day."""
    clock = datetime.datetime.strptime(line.split(" ", 1)[0], "%H:%M:%S.%f").time()
    return datetime.datetime.combine(day, clock).timestamp()


class Lab:
    """One netlab lab; `down` kills what runs in it and deletes its namespaces."""

    def __init__(self, prefix, c1_mode, c2_mode="public"):
        self.prefix = prefix
        self.modes = {"c1": c1_mode, "c2": c2_mode}
        self.netlab("up", c1_mode, c2_mode)

    def netlab(self, *args, check=True):
        env = dict(os.environ, NETLAB_PREFIX=self.prefix)
        done = subprocess.run([NETLAB, *args], env=env, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise LabError(f"netlab {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def command(self, host, *argv):
        """argv run inside host (for Popen)."""
        return ["ip", "netns", "exec", self.prefix + host, *argv]

    def down(self):
        self.netlab("down", check=False)


class Node:
    """A `hark run` process on a lab host (or, with lab None, on this machine as it is: the
    overlay benchmark on loopback), its state directory and its ctl socket."""

    def __init__(self, lab, host, work, name, config):
        self.lab, self.host, self.name = lab, host, name
        self.dir = os.path.join(work, name)
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.state, exist_ok=True)
        os.chmod(self.state, 0o700)
        self.conf = os.path.join(self.dir, "hark.conf")
        with open(self.conf, "w") as f:
            f.write(config)
        self.log = os.path.join(self.dir, "stderr.log")
        self.proc = None
        self.ctl = None
        self.spawned = 0.0
        self.serial = 0
        self.lock = threading.Lock()

    def start(self, log_mode="w"):
        self.spawned = time.time()
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
        argv = [os.environ.get("HARK_BIN", "hark"), "run", "-c", self.conf, "--state-dir",
                self.state]
        if self.lab is not None:
            argv = self.lab.command(self.host, *argv)
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, log_mode), env=env)
        sock = os.path.join(self.state, "ctl.sock")
        for _ in range(1000):
            if self.proc.poll() is not None:
                break
            if os.path.exists(sock):
                try:
                    self.ctl = socket.socket(socket.AF_UNIX)
                    self.ctl.connect(sock)
                    self.reader = self.ctl.makefile("r")
                    self.reader.readline()  # the hello
                    return
                except OSError:
                    self.ctl.close()
                    self.ctl = None
            time.sleep(0.005)
        raise LabError(f"{self.name}: no ctl socket; log:\n{self.log_text()}")

    def call(self, command, timeout=60, **args):
        """The result of a command; LabError with the node's answer when it failed."""
        with self.lock:
            self.serial += 1
            request = {"id": str(self.serial), "command": command, "args": args}
            self.ctl.settimeout(timeout)
            self.ctl.sendall((json.dumps(request) + "\n").encode())
            while True:
                line = self.reader.readline()
                if not line:
                    raise LabError(f"{self.name}: ctl closed during '{command}'")
                answer = json.loads(line)
                if answer.get("id") == str(self.serial):
                    if not answer.get("ok"):
                        raise LabError(f"{self.name}: {command}: {answer.get('error')}")
                    return answer.get("result")

    def wait(self, what, predicate, timeout):
        """Polls predicate() (which may raise LabError) until it returns something true."""
        end = time.time() + timeout
        last = None
        while time.time() < end:
            try:
                result = predicate()
                if result:
                    return result
            except LabError as e:
                last = e
            time.sleep(0.02)
        raise LabError(f"{self.name}: not {what} within {timeout} s ({last}); "
                       f"log:\n{self.log_text()}")

    def log_line(self, text):
        """The first log line containing text, or None."""
        try:
            with open(self.log) as f:
                return next((line for line in f if text in line), None)
        except OSError:
            return None

    def wait_log(self, text, timeout=20.0):
        """The first log line containing text, once there is one."""
        return self.wait(f"logging '{text}'", lambda: self.log_line(text), timeout)

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()[-6000:]
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc is None:
            return
        try:
            if self.ctl is not None:
                self.call("shutdown", timeout=5)
        except (LabError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.ctl is not None:
            self.ctl.close()
            self.ctl = None
        self.proc = None

    def register_and_login(self, user, register=True):
        password = user + PASSWORD_SUFFIX
        if register:
            self.call("register", user=user, password=password)
        return self.call("login", user=user, password=password)


def free_port(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class LoopbackNode(Node):
    """A node on this machine as it is (no lab host), run from the build's `hark`: the
    benchmarks on loopback."""

    def __init__(self, hark, work, name, config):
        os.environ["HARK_BIN"] = hark
        super().__init__(None, None, work, name, config)


def start_loopback_login_server(hark, work, node_class=LoopbackNode, settings=""):
    """A login server on 127.0.0.1 (sqlite, a free port), started: (its node, the `login`
    section that points a client at it). settings: more loginsrv settings."""
    port = free_port()
    server = node_class(hark, work, "loginsrv",
                        'node: { name = "loginsrv"; };\n'
                        'plugins: { load = ( { name = "sqlite"; }, { name = "loginsrv"; settings = {\n'
                        f'  listen = "127.0.0.1"; port = {port}; hosts = [ "127.0.0.1" ];\n'
                        f'  registrations_per_minute = 1000; {settings} }}; }}, {{ name = "ctl"; }} ); }};\n')
    try:
        server.start()
    except LabError:
        if server.proc is not None:
            server.proc.kill()
            server.proc.wait()
        raise
    return server, (f'login: {{ url = "https://127.0.0.1:{port}"; '
                    f'ca = "{server.state}/ca.pem"; }};\n')


def plugins_section(sn, extra=()):
    """The plugins every lab node loads, then the ones named in extra (search strategies)."""
    # An SN's tls443 listens on 443 and 80 (the web-only client's only way out); a client's
    # connects there by default.
    tls = '{ name = "tls443"; settings = { tls_port = 443; http_port = 80; }; }' if sn \
        else '{ name = "tls443"; }'
    more = "".join(f', {{ name = "{name}"; }}' for name in extra)
    # The stun NAT probe, as conf/hark.conf loads it: the SNs answer RFC 5780 as partners.
    return ('plugins: { load = ( { name = "udp"; }, { name = "tcp"; }, ' + tls +
            ', { name = "stun"; }' + more + ', { name = "ctl"; } ); };\n')


def directory_section(search=None, settings=""):
    """A node's directory section: search (the strategy names in order, or None for the
    default) and more settings as written in hark.conf ("lookups_per_minute = 100;")."""
    if search is None and not settings:
        return ""
    order = "" if search is None else \
        "search = [ " + ", ".join(f'"{name}"' for name in search) + " ]; "
    return f"directory: {{ {order}{settings} }};\n"


def plugin_dir():
    """Where the hark under test finds its plugins: the first of HARK_PLUGIN_PATH, else the
    build tree's plugins/ beside HARK_BIN."""
    path = os.environ.get("HARK_PLUGIN_PATH", "").split(":")[0]
    if path:
        return path
    return os.path.join(os.path.dirname(shutil.which(os.environ.get("HARK_BIN", "hark")) or ""),
                        "plugins")


def search_strategy_lists(plugins=None):
    """(label, directory.search, plugins a client loads for it) for each strategy list this
    build can run: the SN's own store then the login server always; gi and flood (SN
    strategies: the SNs load them too) ahead of the login server when their plugins are
    built (<plugins>/gi.so, flood.so)."""
    plugins = plugins or plugin_dir()
    lists = [("store", ["loginsrv"], ["search-loginsrv"])]
    for name in ("gi", "flood"):
        if os.path.exists(os.path.join(plugins, name + ".so")):
            lists.append((name, [name, "loginsrv"], [name, "search-loginsrv"]))
    return lists


def bootstrap(names):
    return ", ".join(f'{{ host = "{SN_HOSTS[n]}"; port = {OVERLAY_PORT}; '
                     'transports = [ "udp", "tcp", "tls443" ]; }' for n in names)


class HarkNetwork:
    """The public side of a lab: a login server and two super nodes, ready to serve."""

    def __init__(self, lab, work, cheap_hash=True, sn_plugins=(), sn_directory="",
                 login_settings="", sn_settings=""):
        """sn_plugins: more plugins the SNs load (search strategies); sn_directory: the SNs'
        directory section (directory_section()); login_settings: more settings of the
        login server's loginsrv plugin ("lookups_per_minute = 10000;"); sn_settings: more
        of the SNs' supernode section ('turn_server = "198.18.0.20:3478";'), or a dict of
        it by SN name."""
        self.lab, self.work = lab, work
        self.sn_settings = sn_settings
        self.nodes = []
        self.ca = os.path.join(work, "login-ca.pem")
        self.sn_plugins, self.sn_directory = tuple(sn_plugins), sn_directory
        hash_settings = "hash_memory_kib = 64; hash_iterations = 1;" if cheap_hash else ""
        hash_settings += login_settings
        self.login = self.node("login", "loginsrv",
                               'node: { name = "loginsrv"; };\n'
                               'plugins: { load = ( { name = "sqlite"; }, { name = "loginsrv"; '
                               f'settings = {{ listen = "{LOGIN_HOST}"; port = {LOGIN_PORT}; '
                               f'hosts = [ "{LOGIN_HOST}" ]; registrations_per_minute = 10000; '
                               f'{hash_settings} }}; }}, {{ name = "ctl"; }} ); }};\n')
        self.login.start()
        shutil.copy(os.path.join(self.login.state, "ca.pem"), self.ca)
        self.sns = {}
        for name in SN_HOSTS:
            self.sns[name] = self.start_sn(name, [n for n in SN_HOSTS if n < name])

    def node(self, host, name, config):
        node = Node(self.lab, host, self.work, name, config)
        self.nodes.append(node)
        return node

    def login_section(self):
        return f'login: {{ url = "https://{LOGIN_HOST}:{LOGIN_PORT}"; ca = "{self.ca}"; }};\n'

    def supernode_settings(self, name):
        if isinstance(self.sn_settings, dict):
            return self.sn_settings.get(name, "")
        return self.sn_settings

    def start_sn(self, name, others):
        address = SN_HOSTS[name]
        sn = self.node(name, name,
                       f'node: {{ name = "{name}"; supernode = true; }};\n'
                       + plugins_section(True, self.sn_plugins) + self.sn_directory
                       + f'network: {{ listen = "{address}"; port = {OVERLAY_PORT}; '
                       f'public_address = "{address}"; bootstrap = ( {bootstrap(others)} ); }};\n'
                       'supernode: { min_uptime = 0; max_load = 10000; '
                       f'{self.supernode_settings(name)} }};\n' + self.login_section())
        sn.start()
        sn.register_and_login(f"{name}-operator")
        sn.wait("serving", lambda: sn.call("overlay")["role"] == "super", 30)
        return sn

    def client(self, host, name, network="", plugins=(), search=None, sns=None, more=""):
        """A client node on host (c1 or c2), not started, that may not serve; network is
        more of its network section, plugins more plugins it loads (by name), search its
        directory.search (None: the default), sns the SNs it knows (default: both), more
        further sections of its configuration (a media section)."""
        known = bootstrap(sns or SN_HOSTS)
        return self.node(host, name,
                         f'node: {{ name = "{name}"; supernode = false; }};\n'
                         + plugins_section(False, plugins)
                         + f'network: {{ bootstrap = ( {known} ); {network} }};\n'
                         + directory_section(search) + self.login_section() + more)

    def sn_knows_user(self, user):
        """The SN (name) whose clients include one proven to be user, or None."""
        for name, sn in self.sns.items():
            for client in sn.call("overlay", clients=1000)["clients"]:
                if client.get("user") == user:
                    return name
        return None

    def stop(self):
        for node in reversed(self.nodes):
            node.stop()


def attached_and_logged_in(network, node, user):
    """(overlay, state, SN name) once node is attached, logged in as user and its SN knows
    it as user; None before."""
    overlay = node.call("overlay")
    if overlay["state"] != "attached":
        return None
    state = node.call("state")
    if (state.get("login") or {}).get("user") != user:
        return None
    sn = network.sn_knows_user(user)
    return (overlay, state, sn) if sn else None


def option(name, default):
    """The integer after name on the command line, or default (the benchmarks' options)."""
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def percentile(values, p):
    """The p-th percentile (linear between the nearest ranks)."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def work_dir(prefix):
    return tempfile.mkdtemp(prefix=prefix)


class ByteCounter:
    """IP bytes (IP, UDP and TCP headers included, no Ethernet) through host's eth0 in
    each direction, all and by protocol: nftables counters in host's namespace, counted
    where the packet is on the wire (before the lab's loss shaping on the way in, after it
    on the way out)."""

    NAMES = ("ip_in", "ip_out", "udp_in", "udp_out", "tcp_in", "tcp_out")

    def __init__(self, lab, host):
        self.lab, self.host = lab, host

    def nft(self, *args, text=None):
        done = subprocess.run(self.lab.command(self.host, "nft", *args), input=text,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise LabError(f"nft {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def reset(self):
        """Counting starts again from zero."""
        subprocess.run(self.lab.command(self.host, "nft", "delete", "table", "ip", "hark_bytes"),
                       capture_output=True)
        counters = "\n    ".join(f"counter {n} {{ }}" for n in self.NAMES)
        self.nft("-f", "-", text=f"""
table ip hark_bytes {{
    {counters}
    chain wire_in {{ type filter hook prerouting priority -400; policy accept;
        iifname "eth0" counter name "ip_in"
        iifname "eth0" meta l4proto udp counter name "udp_in"
        iifname "eth0" meta l4proto tcp counter name "tcp_in"
    }}
    chain wire_out {{ type filter hook postrouting priority 500; policy accept;
        oifname "eth0" counter name "ip_out"
        oifname "eth0" meta l4proto udp counter name "udp_out"
        oifname "eth0" meta l4proto tcp counter name "tcp_out"
    }}
}}
""")

    def read(self):
        """{name: bytes} for NAMES."""
        listing = json.loads(self.nft("-j", "list", "counters", "table", "ip", "hark_bytes"))
        found = {}
        for item in listing.get("nftables", []):
            counter = item.get("counter")
            if counter is not None:
                found[counter["name"]] = counter["bytes"]
        return {n: found.get(n, 0) for n in self.NAMES}

    def remove(self):
        subprocess.run(self.lab.command(self.host, "nft", "delete", "table", "ip", "hark_bytes"),
                       capture_output=True)


def run_together(calls):
    """Runs each (function, args) in a thread of its own, all at once; returns when all
    have returned."""
    threads = [threading.Thread(target=f, args=tuple(args), daemon=True) for f, args in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class Case:
    """The TAP lines of one case of a lab suite, in order."""

    def __init__(self, name):
        self.name = name
        self.lines = []

    def check(self, ok, description, diagnostics=""):
        self.lines.append((bool(ok), f"{self.name}: {description}", diagnostics))
        return bool(ok)

    def fail(self, description, error):
        self.lines.append((False, f"{self.name}: {description}", str(error)))


def finish_tap(cases, run, comments=()):
    """Prints cases as TAP, with the check that no namespace named run* is left (comments
    go after the plan); the exit status."""
    left = [line.split()[0] for line in subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True).stdout.splitlines()
        if line.startswith(run)]
    tail = Case("labs")
    tail.check(not left, "no namespace is left behind", " ".join(left))
    lines = [line for case in list(cases) + [tail] for line in case.lines]
    print(f"1..{len(lines)}")
    for comment in comments:
        print(f"# {comment}")
    for n, (ok, description, diagnostics) in enumerate(lines, 1):
        print(f"{'ok' if ok else 'not ok'} {n} - {description}")
        for d in diagnostics.splitlines() if diagnostics else []:
            print(f"# {d}")
    return 0 if all(ok for ok, _, _ in lines) else 1

