/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ctl-client.h: `hark ctl`, a one-shot client of the ctl frontend (part of the program). */
#pragma once

/* argv[0] is "ctl". Returns the process exit status. */
int hark_ctl_client_main(int argc, char **argv);
