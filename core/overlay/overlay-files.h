/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay-files.h: reading the overlay's files in the state directory, join.json (the
 * way the last join worked, overlay-join.c) and nat.json (the last NAT probe's result,
 * overlay-nat.c). Both are read as untrusted input (anyone who could write the state
 * directory, a disk that lost bytes): from their text, with no file or overlay here
 * (overlay-files.c), so that tests/fuzz/fuzz-statefile.c feeds them bytes. */
#pragma once

#include "hark/natprobe.h"

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Neither file is ever this large; a larger one is damaged. */
#define OVERLAY_STATE_FILE_MAX (64 * 1024)

/* join.json: {"transport", "host", "port", "udp_answered"}. */
typedef struct {
  char *transport;
  char *host;
  guint16 port;
  gboolean udp_answered;
} OverlayWay;

/* FALSE (and way untouched) when text is not a way this node could have saved. */
gboolean hark_overlay_way_parse(const char *text, gsize size, OverlayWay *way);
void hark_overlay_way_clear(OverlayWay *way);

/* nat.json: a HarkNatResult with "probed_at" (unix s) and the "plugin" that made it; or
 * NULL and an error naming path when a member is missing or wrong. */
HarkNatResult *hark_overlay_nat_parse(const char *text, gsize size, const char *path,
                                      gint64 *probed_at, char **plugin, GError **error);

G_END_DECLS
