/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* control.h: constants of the control protocol (docs/control-protocol.md), shared by
 * the ctl frontend plugin and by its clients, such as `hark ctl`. */
#pragma once

/* The "protocol" number in the hello event; raised when a client must change. */
#define HARK_CONTROL_PROTOCOL_VERSION 1

/* The ctl plugin's socket when its `socket` setting is not given, relative to the
 * node's state directory (see hark_config_state_path()). */
#define HARK_CONTROL_DEFAULT_SOCKET "ctl.sock"
