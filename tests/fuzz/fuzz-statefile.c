/* fuzz-statefile.c: libFuzzer target for the files of the state directory that the
 * overlay reads back as untrusted input (core/overlay/overlay-files.c), from their text as
 * overlay-join.c and overlay-nat.c read them:
 *
 *   'J' JSON   join.json, the way the last join worked (hark_overlay_way_parse);
 *   'N' JSON   nat.json, the last NAT probe's result (hark_overlay_nat_parse).
 *
 * The other state files have their own targets: hostcache.json (`certificate`, 'H') and
 * the device certificate (`certificate`, 'D'). */
#include <stdlib.h>
#include <string.h>

#include "../../core/overlay/overlay-files.h"
#include "hark/config.h"
#include "fuzz-common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  return 0;
}

static void
fuzz_way(const char *text, gsize size)
{
  OverlayWay way = { 0 };
  gboolean ok = hark_overlay_way_parse(text, size, &way);
  fuzz_say(ok ? "join.json taken" : "join.json refused", ok ? way.host : NULL);
  /* What the join then dials: a transport and host the configuration would accept. */
  if (ok &&
      (!hark_config_is_transport(way.transport) || !hark_config_is_host(way.host) || way.port == 0))
    abort();
  if (!ok && (way.transport != NULL || way.host != NULL))
    abort();
  hark_overlay_way_clear(&way);
}

static gboolean
short_address(const char *text)
{
  return text == NULL || (strlen(text) <= 64 && strchr(text, ':') != NULL);
}

static void
fuzz_nat(const char *text, gsize size)
{
  gint64 probed_at = 0;
  char *plugin = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkNatResult) result =
    hark_overlay_nat_parse(text, size, "nat.json", &probed_at, &plugin, &error);
  if ((result == NULL) == (error == NULL) || (result == NULL) != (plugin == NULL))
    abort();
  fuzz_say(result != NULL ? "nat.json taken" : "nat.json refused", error ? error->message : NULL);
  /* What `nat` and the overlay then show and act on. */
  if (result != NULL &&
      (hark_nat_verdict_to_string(result->verdict) == NULL ||
       hark_nat_behaviour_to_string(result->mapping) == NULL ||
       hark_nat_behaviour_to_string(result->filtering) == NULL || !short_address(result->mapped) ||
       !short_address(result->server) || !short_address(result->other) || strlen(plugin) > 64 ||
       !g_utf8_validate(plugin, -1, NULL)))
    abort();
  g_free(plugin);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  switch (data[0]) {
  case 'J':
    fuzz_way((const char *)data + 1, size - 1);
    break;
  case 'N':
    fuzz_nat((const char *)data + 1, size - 1);
    break;
  default:
    break;
  }
  return 0;
}
