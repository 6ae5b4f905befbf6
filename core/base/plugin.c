/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* plugin.c: names of plugin kinds, shared by the loader, the config and frontends. */
#include "hark/plugin.h"

static const struct {
  HarkPluginKind kind;
  const char *name;
} kind_names[] = {
  { HARK_KIND_TRANSPORT, "transport" }, { HARK_KIND_NAT_PROBE, "nat-probe" },
  { HARK_KIND_CODEC, "codec" },         { HARK_KIND_SEARCH, "search" },
  { HARK_KIND_STORE, "store" },         { HARK_KIND_FRONTEND, "frontend" },
};

const char *
hark_plugin_kind_to_string(HarkPluginKind kind)
{
  for (gsize i = 0; i < G_N_ELEMENTS(kind_names); i++)
    if (kind_names[i].kind == kind)
      return kind_names[i].name;
  return NULL;
}

gboolean
hark_plugin_kind_from_string(const char *text, HarkPluginKind *kind)
{
  for (gsize i = 0; i < G_N_ELEMENTS(kind_names); i++) {
    if (g_strcmp0(kind_names[i].name, text) == 0) {
      *kind = kind_names[i].kind;
      return TRUE;
    }
  }
  return FALSE;
}
