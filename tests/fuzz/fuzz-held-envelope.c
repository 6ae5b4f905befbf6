/* fuzz-held-envelope.c: libFuzzer target for the login server's reading of a message
 * envelope it is asked to hold (POST /v1/messages), calling the function the server
 * calls on the decoded bytes: login_envelope_shape_read (plugins/loginsrv/envelope.c).
 *
 * The input is the envelope's bytes. Invariants: exactly one of a shape and a problem;
 * a problem is UTF-8 text (it goes into the answer's JSON); a shape's sender_device and
 * every recipient are device ids (64 lower-case hex), 1 to 1024 recipients, and each
 * recipient is named (login_envelope_shape_names agrees with the list). Seeds come from
 * make-held-envelope-seeds.c. */
#include <stdlib.h>
#include <string.h>

#include "../../plugins/loginsrv/loginsrv.h"
#include "fuzz-common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  return 0;
}

static void
check_shape(const LoginEnvelopeShape *shape)
{
  if (!login_device_id_is_valid(shape->sender_device))
    abort();
  guint n = g_strv_length(shape->recipients);
  if (n == 0 || n > 1024)
    abort();
  for (guint i = 0; i < n; i++)
    if (!login_device_id_is_valid(shape->recipients[i]) ||
        !login_envelope_shape_names(shape, shape->recipients[i]))
      abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) bytes = g_bytes_new(data, size);
  g_autofree char *problem = NULL;
  g_autoptr(LoginEnvelopeShape) shape = login_envelope_shape_read(bytes, &problem);
  if ((shape == NULL) == (problem == NULL))
    abort();
  if (problem != NULL && !g_utf8_validate(problem, -1, NULL))
    abort();
  if (shape != NULL)
    check_shape(shape);
  fuzz_say(shape != NULL ? "accepted" : "refused", problem);
  return 0;
}
