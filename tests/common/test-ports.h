/* test-ports.h: ports for tests, chosen so that they cannot race another process.
 *
 * A hark process that listens is given port 0 and the test reads the port it bound back
 * (the login server from its log: lab_login_server_start); nothing here hands out "a
 * port that was free a moment ago". What is left is a port where nothing may listen. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* A TCP port nothing listens on, on any local IPv4 address, for as long as the returned
 * socket is held (unref it when the case ends): the socket is bound to 0.0.0.0 with port
 * 0 and without SO_REUSEADDR, and never listens, so a connection to the port is refused
 * and no other socket can bind it meanwhile. NULL (the case failed) when it cannot. */
GSocket *hark_test_closed_port(guint16 *port);

G_END_DECLS
