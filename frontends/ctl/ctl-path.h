/* ctl-path.h: where the ctl socket lives, given the `socket` setting and the state
 * directory. Shared (header-only) by the ctl plugin and by `hark ctl` in the program,
 * so that the client looks exactly where the server listens. */
#pragma once

#include <glib.h>

#define HARK_CTL_DEFAULT_SOCKET "ctl.sock"

/* "~/x" is in the home directory, an absolute path is used as it is, anything else
 * is relative to the node's state directory (which is private, mode 0700). */
static inline char *
hark_ctl_resolve_socket_path(const char *setting, const char *state_dir)
{
  if (g_str_has_prefix(setting, "~/"))
    return g_build_filename(g_get_home_dir(), setting + 2, NULL);
  if (g_path_is_absolute(setting))
    return g_strdup(setting);
  return g_build_filename(state_dir, setting, NULL);
}
