/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* search.c: the small helpers of the search-strategy interface (hark/search.h). */
#include "hark/search.h"

#include <string.h>

static const char *const answer_names[] = { "not-found", "found", "known", "unknown" };

const char *
hark_search_answer_to_string(HarkSearchAnswer answer)
{
  return (guint)answer < G_N_ELEMENTS(answer_names) ? answer_names[answer] : "not-found";
}

gboolean
hark_search_answer_from_string(const char *text, HarkSearchAnswer *answer)
{
  for (guint i = 0; text != NULL && i < G_N_ELEMENTS(answer_names); i++)
    if (strcmp(text, answer_names[i]) == 0) {
      *answer = (HarkSearchAnswer)i;
      return TRUE;
    }
  return FALSE;
}

HarkSearchResult *
hark_search_result_new(HarkSearchAnswer answer)
{
  HarkSearchResult *result = g_new0(HarkSearchResult, 1);
  result->answer = answer;
  result->records = g_ptr_array_new_with_free_func((GDestroyNotify)hark_presence_record_free);
  result->names = g_ptr_array_new_with_free_func(g_free);
  return result;
}

void
hark_search_result_free(HarkSearchResult *result)
{
  if (result == NULL)
    return;
  g_ptr_array_unref(result->records);
  g_ptr_array_unref(result->names);
  g_free(result);
}
