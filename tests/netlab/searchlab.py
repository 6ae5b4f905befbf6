# SPDX-License-Identifier: LGPL-2.1-or-later
"""searchlab.py: the directory's search in the network lab, for test-search.py and
bench/bench-search.py.

The paper's setups are the searching client's: setup 1 (public address), setup 2
(port-restricted NAT), setup 3 (port-restricted NAT, UDP blocked) and web-only (TCP to 80
and 443 only). Two labs hold them, as in test-tablei.py: lab "a" with c1 public and c2
behind the port-restricted NAT, lab "b" with c1 udpblock and c2 webonly. In a lab, for each
strategy list (harklab.search_strategy_lists), one client on c1 and one on c2 log in and
each searches the other: so each is the searcher of its setup and the user searched for
in the other. With the SN's store alone ("store": directory.search = ["loginsrv"]) both
attach to sn1 (without a strategy among SNs only a user's own SN knows her devices); with
gi or flood, the c1 client attaches to sn1 and the c2 client to sn2, so the search crosses
SNs. The SNs load every SN strategy built, so each client's list decides (a DIR_LOOKUP
carries the asker's directory.search).
"""
import harklab

# (lab key, (c1 mode, c2 mode), ((setup, host, name stem), ...))
LABS = (
    ("a", ("public", "portrestricted"),
     (("public", "c1", "pub"), ("portrestricted", "c2", "nat"))),
    ("b", ("udpblock", "webonly"),
     (("udpblock", "c1", "udpb"), ("webonly", "c2", "web"))),
)
SETUP_NAMES = {
    "public": "setup 1 (public)",
    "portrestricted": "setup 2 (port-restricted NAT)",
    "udpblock": "setup 3 (port-restricted NAT, UDP blocked)",
    "webonly": "web-only (TCP 80/443 only)",
}
JOIN_TIMEOUT = 60


class Client:
    """One client of a lab: its setup, strategy list, node, and the user it searches for."""

    def __init__(self, setup, host, stem, strategy):
        self.setup, self.host = setup, host
        self.label, self.search, self.plugins = strategy
        self.user = f"{stem}-{self.label}"
        self.sn = "sn1" if self.label == "store" or host == "c1" else "sn2"
        self.node = None
        self.target = None  # the other client of the same list
        self.error = None   # why it did not join, log in and publish

    def published(self):
        return self.node.call("status").get("published_at") is not None


class SearchLab:
    """One lab with its login server, SNs and a client per (setup, strategy list)."""

    def __init__(self, prefix, work, modes, setups, strategies, sn_directory="",
                 login_settings="", cheap_hash=True):
        self.lab = harklab.Lab(prefix, *modes)
        self.network = None
        self.clients = []
        # The SN strategies (gi, flood: plugins named as their strategy); loginsrv is the
        # clients' own.
        sn_plugins = sorted({p for _, search, plugins in strategies for p in plugins
                             if p in search and p != "loginsrv"})
        try:
            self.network = harklab.HarkNetwork(self.lab, work, cheap_hash=cheap_hash,
                                               sn_plugins=sn_plugins, sn_directory=sn_directory,
                                               login_settings=login_settings)
        except Exception:
            self.stop()
            raise
        for strategy in strategies:
            pair = [Client(setup, host, stem, strategy) for setup, host, stem in setups]
            pair[0].target, pair[1].target = pair[1], pair[0]
            for client in pair:
                client.node = self.network.client(client.host, client.user,
                                                  plugins=client.plugins,
                                                  search=client.search, sns=[client.sn])
            self.clients += pair

    def join(self, client):
        node = client.node
        try:
            node.start()
            # Attached first: a web-only client reaches the login server only through its
            # SN; a request sent before it is attached waits out its 15 s on the blocked
            # direct way (the way through an SN is taken only when there is one).
            node.wait("attached", lambda: node.call("overlay")["state"] == "attached",
                      JOIN_TIMEOUT)
            node.register_and_login(client.user)
            node.wait("attached and logged in",
                      lambda: harklab.attached_and_logged_in(self.network, node, client.user),
                      JOIN_TIMEOUT)
            node.wait("published", client.published, JOIN_TIMEOUT)
        except harklab.LabError as e:
            client.error = harklab.LabError(f"{e}\nlog of {node.name}:\n{node.log_text()[-3000:]}")

    def join_all(self):
        """Every client joins, logs in and publishes its record, all at once."""
        harklab.run_together((self.join, (c,)) for c in self.clients)

    def sn_address(self, client):
        """The SN host address client's record should name."""
        return harklab.SN_HOSTS[client.sn]

    def stop(self):
        if self.network is not None:
            self.network.stop()
        self.lab.down()


def found_at(answer, user, sn_host):
    """Whether a search answer is found with a device of user whose SN is at sn_host."""
    return answer.get("answer") == "found" and any(
        d.get("user") == user and d.get("sn", "").rsplit(":", 1)[0] == sn_host
        for d in answer.get("devices", []))
