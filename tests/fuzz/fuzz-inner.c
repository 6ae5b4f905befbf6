/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-inner.c: libFuzzer target for the inner plaintext of a message envelope
 * (core/message/message-inner.c): the input is the serialised (sa{sv}) a device gets once
 * an envelope opened, from a sender whose signature checked out but who may be hostile
 * (another user, or for `history` and `history-request` a device of the same user). It
 * must be refused, or parse into a kind whose every field is within its limits; a
 * `signal` stays within its bounds; a `history` batch (with its group's state, when it
 * carries one, and then only that group's messages) is built again from what was parsed
 * and must parse the same. Seeds:
 * make-inner-seeds.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-common.h"
#include "message-envelope.h"
#include "message-group.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  fuzz_init();
  return 0;
}

static void
check_history(const HarkMessageInner *inner)
{
  if (inner->past == NULL || inner->past->len == 0 || inner->past->len > HARK_MESSAGE_MAX_PAST)
    abort();
  for (guint i = 0; i < inner->past->len; i++) {
    const HarkMessagePast *p = inner->past->pdata[i];
    if (p->sequence == 0 || p->sequence > G_MAXINT64 || p->time <= 0 ||
        strlen(p->sender_device) != 64 || strlen(p->text) > HARK_MESSAGE_MAX_TEXT ||
        !g_utf8_validate(p->text, -1, NULL))
      abort();
  }
  /* A batch with a group's state holds that group's messages only. */
  const HarkMessageGroup *group = inner->group_state;
  for (guint i = 0; group != NULL && i < inner->past->len; i++) {
    const HarkMessagePast *p = inner->past->pdata[i];
    if (!g_str_has_prefix(p->conversation, "g:") || strcmp(p->conversation + 2, group->id) != 0)
      abort();
  }
  if (group != NULL &&
      (group->version == 0 || group->members->len > HARK_MESSAGE_GROUP_MAX_MEMBERS ||
       !hark_message_group_name_is_valid(group->name)))
    abort();
  /* What was parsed builds again (the answering device's side), to the same. */
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) again = g_variant_ref_sink(hark_message_past_group_new(
    (HarkMessagePast *const *)inner->past->pdata, inner->past->len, group, &error));
  if (again == NULL)
    abort();
  g_autoptr(HarkMessageInner) reparsed = hark_message_inner_parse(again, &error);
  if (reparsed == NULL || reparsed->past->len != inner->past->len ||
      (reparsed->group_state == NULL) != (group == NULL) ||
      (group != NULL && (strcmp(reparsed->group_state->id, group->id) != 0 ||
                         reparsed->group_state->version != group->version ||
                         reparsed->group_state->members->len != group->members->len)))
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) bytes = g_bytes_new(data, size);
  g_autoptr(GVariant) value = g_variant_ref_sink(
    g_variant_new_from_bytes(G_VARIANT_TYPE(HARK_MESSAGE_INNER_TYPE), bytes, FALSE));
  if (!g_variant_is_normal_form(value)) { /* hark_envelope_open refuses it before */
    fuzz_say("refused", "not in normal form");
    return 0;
  }
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkMessageInner) inner = hark_message_inner_parse(value, &error);
  if ((inner == NULL) != (error != NULL))
    abort();
  if (inner == NULL) {
    fuzz_say("refused", error->message);
    return 0;
  }
  if (inner->kind == HARK_MESSAGE_KIND_HISTORY)
    check_history(inner);
  if (inner->kind == HARK_MESSAGE_KIND_TEXT && strlen(inner->text) > HARK_MESSAGE_MAX_TEXT)
    abort();
  if (inner->kind == HARK_MESSAGE_KIND_SIGNAL &&
      (inner->signal_kind == NULL || inner->signal_body == NULL ||
       !g_variant_is_of_type(inner->signal_body, G_VARIANT_TYPE_VARDICT) ||
       g_variant_get_size(inner->signal_body) > HARK_MESSAGE_MAX_SIGNAL_BODY))
    abort();
  fuzz_say("parsed", inner->kind_name);
  return 0;
}
