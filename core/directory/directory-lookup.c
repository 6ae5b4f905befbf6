/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* directory-lookup.c: lookups. An SN answers its clients' DIR_LOOKUPs with its store's
 * records merged with what the strategies that work among SNs find (a user's other
 * devices may be on other SNs), at most directory.lookups_per_minute a client. A client's `search` asks its SN first, then the
 * client-side strategies (the login server) in directory.search order, and always ends
 * with a definite answer: found (every online device), known but not online, or no such
 * user; or an error that says why none could be had. */
#include "directory-private.h"

#include <string.h>

/* ---- SN side ---------------------------------------------------------------------------- */

/* A token bucket per client link: lookups_per_minute, DIRECTORY_LOOKUP_BURST at once. */
static gboolean
take_token(HarkDirectory *directory, HarkLink *link, guint *bucket_id)
{
  DirectoryBucket *bucket = g_hash_table_lookup(directory->buckets, link);
  gint64 now = hark_clock_now_monotonic(directory->clock);
  if (bucket == NULL) {
    bucket = g_new0(DirectoryBucket, 1);
    bucket->id = ++directory->next_bucket;
    g_hash_table_insert(directory->buckets, link, bucket);
  }
  *bucket_id = bucket->id;
  return hark_directory_bucket_take(bucket, now, directory->node->config->dir_lookups_per_minute,
                                    DIRECTORY_LOOKUP_BURST);
}

void
hark_directory_forget_client(HarkDirectory *directory, HarkLink *link)
{
  if (directory->buckets != NULL)
    g_hash_table_remove(directory->buckets, link);
}

static GVariant *
result_body(HarkSearchAnswer answer, GPtrArray *names, GPtrArray *records)
{
  GVariantBuilder names_b, records_b;
  g_variant_builder_init(&names_b, G_VARIANT_TYPE("as"));
  g_variant_builder_init(&records_b, G_VARIANT_TYPE("a(ayay)"));
  for (guint i = 0; names != NULL && i < names->len; i++)
    g_variant_builder_add(&names_b, "s", (const char *)names->pdata[i]);
  for (guint i = 0; records != NULL && i < records->len && i < DIRECTORY_MAX_RESULTS; i++)
    g_variant_builder_add_value(&records_b, ((HarkPresenceRecord *)records->pdata[i])->signed_form);
  return g_variant_new("(sasa(ayay))", hark_search_answer_to_string(answer), &names_b, &records_b);
}

/* The users of records, each once, in order. */
static GPtrArray *
names_of(GPtrArray *records)
{
  GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < records->len; i++) {
    const char *user = ((HarkPresenceRecord *)records->pdata[i])->user;
    if (!g_ptr_array_find_with_equal_func(names, user, (GEqualFunc)g_str_equal, NULL))
      g_ptr_array_add(names, g_strdup(user));
  }
  return names;
}

typedef struct {
  HarkDirectory *directory;
  HarkLink *link; /* NULL: this SN's own lookup (its id is in directory->searches) */
  guint bucket_id; /* the link is still there while its bucket is */
  guint64 id;
  HarkPresenceQuery *query;
  char **strategies; /* the order to try */
  guint next;
  GPtrArray *local; /* HarkPresenceRecord*: the store's records of the user */
  GCancellable *cancellable; /* cancelled when the strategies took too long */
  guint wait_source; /* with local records: answer them alone when it fires */
} ServeJob;

static void
serve_job_free(ServeJob *job)
{
  g_ptr_array_remove(job->directory->serving, job);
  hark_directory_clear_source(job->directory, &job->wait_source);
  g_clear_object(&job->cancellable);
  g_clear_pointer(&job->local, g_ptr_array_unref);
  hark_presence_query_free(job->query);
  g_strfreev(job->strategies);
  g_free(job);
}

static gboolean
job_link_alive(ServeJob *job)
{
  HarkDirectory *directory = job->directory;
  if (job->link == NULL)
    return g_hash_table_contains(directory->searches, &job->id);
  DirectoryBucket *bucket =
    directory->buckets != NULL ? g_hash_table_lookup(directory->buckets, job->link) : NULL;
  return bucket != NULL && bucket->id == job->bucket_id;
}

static void serve_next(ServeJob *job);

/* The answer goes to the client's link, or (an SN's own lookup) straight to its search,
 * as if its SN had sent it. */
static void
serve_reply(ServeJob *job, GVariant *body)
{
  if (job->link != NULL) {
    hark_link_send(job->link, HARK_MSG_DIR_RESULT, job->id, body, NULL);
    return;
  }
  HarkWireMessage message = { .type = HARK_MSG_DIR_RESULT,
                              .id = job->id,
                              .body = g_variant_ref_sink(body) };
  hark_directory_search_answer(job->directory, &message);
  g_variant_unref(message.body);
}

static void
serve_found(ServeJob *job, GPtrArray *records)
{
  g_autoptr(GPtrArray) names = names_of(records);
  serve_reply(job, result_body(HARK_SEARCH_FOUND, names, records));
}

static gboolean
has_device(GPtrArray *records, const char *device)
{
  for (guint i = 0; i < records->len; i++)
    if (strcmp(((HarkPresenceRecord *)records->pdata[i])->device, device) == 0)
      return TRUE;
  return FALSE;
}

/* The store's records, then the devices only found records know (newest sequence each).
 * A found record naming this SN for a device the store does not have is of a device that
 * left (the store forgets a record with its device's link; the strategies keep it until
 * it expires): it is left out, as the store is the truth about this SN's clients. */
static GPtrArray *
merge_found(ServeJob *job, GPtrArray *found)
{
  g_autofree char *self = hark_overlay_own_address(job->directory->overlay);
  GPtrArray *merged = g_ptr_array_new();
  g_ptr_array_extend(merged, job->local, NULL, NULL);
  for (guint i = 0; i < found->len; i++) {
    HarkPresenceRecord *record = found->pdata[i];
    if (has_device(job->local, record->device) || g_strcmp0(record->sn, self) == 0)
      continue;
    guint at = 0;
    while (at < merged->len &&
           strcmp(((HarkPresenceRecord *)merged->pdata[at])->device, record->device) != 0)
      at++;
    if (at == merged->len)
      g_ptr_array_add(merged, record);
    else if (record->sequence > ((HarkPresenceRecord *)merged->pdata[at])->sequence)
      merged->pdata[at] = record;
  }
  return merged;
}

/* The strategies did not answer in time: what the store has is the answer. */
static gboolean
on_serve_wait(gpointer data)
{
  ServeJob *job = data;
  job->wait_source = 0;
  g_cancellable_cancel(job->cancellable); /* the strategy will not call served */
  job->directory->counters.lookups_local_only++;
  if (job_link_alive(job))
    serve_found(job, job->local);
  serve_job_free(job);
  return G_SOURCE_REMOVE;
}

static void
served(HarkSearchResult *result, const GError *error, gpointer data)
{
  ServeJob *job = data;
  if (!job_link_alive(job)) {
    hark_search_result_free(result);
    serve_job_free(job);
    return;
  }
  if (result == NULL || result->answer == HARK_SEARCH_UNDECIDED) {
    if (error != NULL)
      g_debug("directory: a strategy could not answer: %s", error->message);
    hark_search_result_free(result);
    serve_next(job);
    return;
  }
  if (job->local->len > 0) {
    /* The store's records are online devices whatever the strategy says. */
    g_autoptr(GPtrArray) merged = result->answer == HARK_SEARCH_FOUND
                                    ? merge_found(job, result->records)
                                    : g_ptr_array_ref(job->local);
    serve_found(job, merged);
    hark_search_result_free(result);
    serve_job_free(job);
    return;
  }
  g_autoptr(GPtrArray) names =
    result->names->len > 0 ? g_ptr_array_ref(result->names) : names_of(result->records);
  serve_reply(job, result_body(result->answer, names, result->records));
  hark_search_result_free(result);
  serve_job_free(job);
}

const HarkRegistration *
hark_directory_next_sn_strategy(HarkDirectory *directory, char **names, guint *next)
{
  while (names[*next] != NULL) {
    const HarkRegistration *reg = hark_directory_strategy(directory, names[(*next)++]);
    const HarkSearchInterface *iface = reg != NULL ? reg->iface : NULL;
    if (iface != NULL && iface->serve_lookup != NULL)
      return reg;
  }
  return NULL;
}

static void
serve_next(ServeJob *job)
{
  const HarkRegistration *reg =
    hark_directory_next_sn_strategy(job->directory, job->strategies, &job->next);
  if (reg != NULL) {
    ((const HarkSearchInterface *)reg->iface)
      ->serve_lookup(reg->instance, job->query, job->cancellable, served, job);
    return;
  }
  if (job->local->len > 0)
    serve_found(job, job->local);
  else
    serve_reply(job, result_body(HARK_SEARCH_UNDECIDED, NULL, NULL));
  serve_job_free(job);
}

/* The store and the SN-side strategies in the query's order (or directory.search): a
 * user's devices may be on several SNs, and the store knows only this SN's, so a name is
 * looked up by the strategies even when the store has records of it (merged with what
 * the first strategy that can tell finds, within DIRECTORY_SERVE_WAIT_S); a prefix is
 * answered from the store when it has names (no SN-side strategy answers prefixes). The
 * answer to id goes to link (NULL: this SN's own search). Takes query. */
static void
serve_start(HarkDirectory *directory, HarkLink *link, guint bucket_id, guint64 id,
            HarkPresenceQuery *query, const char *asker)
{
  ServeJob *job = g_new0(ServeJob, 1);
  job->directory = directory;
  job->link = link;
  job->bucket_id = bucket_id;
  job->id = id;
  job->query = query;
  job->local = hark_directory_store_find(directory->store, query, asker, DIRECTORY_MAX_RESULTS);
  job->cancellable = g_cancellable_new();
  g_ptr_array_add(directory->serving, job);
  if (job->local->len > 0 && query->prefix) {
    serve_found(job, job->local);
    serve_job_free(job);
    return;
  }
  job->strategies =
    g_strdupv(job->query->strategies[0] != NULL ? job->query->strategies
                                                : directory->node->config->dir_search);
  if (job->local->len > 0)
    job->wait_source =
      hark_clock_add_seconds(directory->clock, DIRECTORY_SERVE_WAIT_S, on_serve_wait, job);
  serve_next(job);
}

void
hark_directory_serving_free(HarkDirectory *directory)
{
  while (directory->serving->len > 0) {
    ServeJob *job = g_ptr_array_index(directory->serving, directory->serving->len - 1);
    g_cancellable_cancel(job->cancellable);
    serve_job_free(job);
  }
}

void
hark_directory_serve_lookup(HarkDirectory *directory, HarkLink *link,
                            const HarkWireMessage *message)
{
  g_autofree char *who = hark_directory_link_text(link);
  guint bucket_id = 0;
  if (!take_token(directory, link, &bucket_id)) {
    directory->counters.lookups_limited++;
    g_autofree char *text = g_strdup_printf("lookups from %s over %d a minute refused", who,
                                            directory->node->config->dir_lookups_per_minute);
    hark_directory_refused_text(directory, text);
    hark_link_send(link, HARK_MSG_ERROR, message->id,
                   g_variant_new("(us)", 429, "too many lookups: try again in a minute"), NULL);
    return;
  }
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkPresenceQuery) query = hark_presence_query_parse(message->body, &error);
  if (query == NULL) {
    directory->counters.lookups_malformed++;
    g_autofree char *text = g_strdup_printf("%s (from %s)", error->message, who);
    hark_directory_refused_text(directory, text);
    hark_link_send(link, HARK_MSG_ERROR, message->id, g_variant_new("(us)", 400, error->message),
                   NULL);
    return;
  }
  directory->counters.lookups++;
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(link);
  serve_start(directory, link, bucket_id, message->id, g_steal_pointer(&query),
              cert != NULL ? cert->user : NULL);
}

/* ---- client side: `search` ------------------------------------------------------------- */

typedef struct {
  HarkDirectory *directory; /* NULL once the directory is gone (a strategy still owes) */
  HarkDirectoryLookupDone done;
  gpointer done_data;
  HarkPresenceQuery *query;
  GPtrArray *records; /* HarkPresenceRecord*, verified, from our SN */
  GPtrArray *names; /* char*: names found (a prefix) */
  GString *problems; /* why strategies could not answer */
  guint next; /* the next of directory.search to try */
  guint64 sn_id; /* our DIR_LOOKUP, while waiting for it */
  guint timeout;
} SearchJob;

static void
search_job_free(SearchJob *job)
{
  hark_presence_query_free(job->query);
  g_ptr_array_unref(job->records);
  g_ptr_array_unref(job->names);
  g_string_free(job->problems, TRUE);
  g_free(job);
}

JsonObject *
hark_directory_record_json(const HarkPresenceRecord *record)
{
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "user", record->user);
  json_object_set_string_member(o, "device", record->device);
  json_object_set_string_member(o, "sn", record->sn);
  json_object_set_int_member(o, "time", record->time);
  if (!record->is_public) {
    json_object_set_string_member(o, "status", hark_presence_status_to_string(record->status));
    json_object_set_string_member(o, "nat", record->nat);
    JsonArray *addresses = json_array_new();
    for (guint i = 0; i < record->addresses->len; i++) {
      const HarkPresenceAddress *a = record->addresses->pdata[i];
      JsonObject *ao = json_object_new();
      json_object_set_string_member(ao, "kind", a->kind);
      json_object_set_string_member(ao, "host", a->host);
      json_object_set_int_member(ao, "port", a->port);
      json_array_add_object_element(addresses, ao);
    }
    json_object_set_array_member(o, "addresses", addresses);
  }
  return o;
}

static const char *
answer_text(HarkSearchAnswer answer, gboolean prefix)
{
  switch (answer) {
  case HARK_SEARCH_FOUND:
    return prefix ? "users found" : "online";
  case HARK_SEARCH_KNOWN:
    return "known, not online in the last 72 h";
  case HARK_SEARCH_UNKNOWN:
    return prefix ? "no user's name starts so" : "no such user";
  default:
    return "not decided";
  }
}

static void
finish(SearchJob *job, HarkSearchAnswer answer)
{
  g_ptr_array_remove(job->directory->searches_running, job);
  job->done(answer, job->query, job->records, job->names, NULL, job->done_data);
  search_job_free(job);
}

static void
fail(SearchJob *job)
{
  g_ptr_array_remove(job->directory->searches_running, job);
  g_autoptr(GError) error = g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_FAILED,
                                        "search %s%s: no strategy could answer:%s", job->query->key,
                                        job->query->prefix ? "*" : "", job->problems->str);
  job->done(HARK_SEARCH_UNDECIDED, job->query, job->records, job->names, error, job->done_data);
  search_job_free(job);
}

/* The `search` command's answer. */
static void
search_answered(HarkSearchAnswer answer, const HarkPresenceQuery *query, GPtrArray *records,
                GPtrArray *names, const GError *error, gpointer data)
{
  HarkCommandCall *call = data;
  if (error != NULL) {
    hark_command_call_return_error(call, g_error_copy(error));
    return;
  }
  JsonObject *o = json_object_new();
  json_object_set_string_member(o, "query", query->key);
  json_object_set_boolean_member(o, "prefix", query->prefix);
  json_object_set_string_member(o, "answer", hark_search_answer_to_string(answer));
  json_object_set_string_member(o, "text", answer_text(answer, query->prefix));
  JsonArray *devices = json_array_new();
  g_autoptr(GPtrArray) full = g_ptr_array_new();
  for (guint i = 0; i < records->len; i++) {
    const HarkPresenceRecord *record = records->pdata[i];
    json_array_add_object_element(devices, hark_directory_record_json(record));
    if (!record->is_public)
      g_ptr_array_add(full, (gpointer)record);
  }
  json_object_set_array_member(o, "devices", devices);
  /* Only a buddy gets full forms: a stranger learns no status at all. */
  if (full->len > 0)
    json_object_set_string_member(
      o, "presence", hark_presence_status_to_string(hark_presence_most_available(full)));
  if (query->prefix) {
    JsonArray *users = json_array_new();
    for (guint i = 0; i < names->len; i++)
      json_array_add_string_element(users, names->pdata[i]);
    json_object_set_array_member(o, "users", users);
  }
  hark_command_call_return_object(call, o);
}

static void
add_name(SearchJob *job, const char *name)
{
  for (guint i = 0; i < job->names->len; i++)
    if (g_ascii_strcasecmp(job->names->pdata[i], name) == 0)
      return;
  g_ptr_array_add(job->names, g_strdup(name));
}

static void try_next_strategy(SearchJob *job);

static void
strategy_answered(HarkSearchResult *result, const GError *error, gpointer data)
{
  SearchJob *job = data;
  if (job->directory == NULL) { /* the node stopped meanwhile; the call was answered */
    hark_search_result_free(result);
    search_job_free(job);
    return;
  }
  if (result == NULL || result->answer == HARK_SEARCH_UNDECIDED) {
    g_string_append_printf(job->problems, " %s", error != NULL ? error->message : "undecided");
    hark_search_result_free(result);
    try_next_strategy(job);
    return;
  }
  g_autoptr(HarkSearchResult) owned = result;
  for (guint i = 0; i < owned->names->len; i++)
    add_name(job, owned->names->pdata[i]);
  for (guint i = 0; i < owned->records->len; i++)
    g_ptr_array_add(job->records, g_steal_pointer(&owned->records->pdata[i]));
  g_ptr_array_set_size(owned->records, 0);
  if (job->query->prefix) {
    finish(job,
           job->names->len > 0 || job->records->len > 0 ? HARK_SEARCH_FOUND : HARK_SEARCH_UNKNOWN);
    return;
  }
  /* The overlay found no online device; the strategy knows whether the user exists. */
  if (job->records->len > 0)
    finish(job, HARK_SEARCH_FOUND);
  else
    finish(job, owned->answer == HARK_SEARCH_FOUND ? HARK_SEARCH_KNOWN : owned->answer);
}

static void
try_next_strategy(SearchJob *job)
{
  HarkDirectory *directory = job->directory;
  char **order = directory->node->config->dir_search;
  while (job->next < g_strv_length(order)) {
    const HarkRegistration *reg = hark_directory_strategy(directory, order[job->next++]);
    const HarkSearchInterface *iface = reg != NULL ? reg->iface : NULL;
    if (iface != NULL && iface->lookup != NULL) {
      iface->lookup(reg->instance, job->query, NULL, strategy_answered, job);
      return;
    }
  }
  if (job->query->prefix && (job->names->len > 0 || job->records->len > 0))
    finish(job, HARK_SEARCH_FOUND);
  else
    fail(job);
}

/* Our SN's answer, or none in time: the client-side strategies come next. */
static void
sn_answered(SearchJob *job, HarkSearchAnswer answer, GVariant *names, GVariant *records)
{
  HarkDirectory *directory = job->directory;
  hark_directory_clear_source(directory, &job->timeout);
  g_hash_table_remove(directory->searches, &job->sn_id);
  job->sn_id = 0;
  if (records != NULL) {
    g_autoptr(GPtrArray) verified =
      hark_directory_records_of(directory, records, job->query->prefix ? NULL : job->query->key);
    for (guint i = 0; i < verified->len; i++)
      g_ptr_array_add(job->records, g_steal_pointer(&verified->pdata[i]));
    g_ptr_array_set_size(verified, 0);
  }
  const char *name;
  GVariantIter iter;
  if (names != NULL) {
    g_variant_iter_init(&iter, names);
    while (g_variant_iter_next(&iter, "&s", &name))
      if (hark_presence_name_is_valid(name))
        add_name(job, name);
  }
  if (!job->query->prefix && job->records->len > 0) {
    finish(job, HARK_SEARCH_FOUND);
    return;
  }
  if (!job->query->prefix && (answer == HARK_SEARCH_KNOWN || answer == HARK_SEARCH_UNKNOWN)) {
    finish(job, answer);
    return;
  }
  try_next_strategy(job);
}

static gboolean
on_sn_timeout(gpointer data)
{
  SearchJob *job = data;
  job->timeout = 0;
  g_string_append(job->problems, " the super node did not answer in time;");
  sn_answered(job, HARK_SEARCH_UNDECIDED, NULL, NULL);
  return G_SOURCE_REMOVE;
}

GPtrArray *
hark_directory_records_of(HarkDirectory *directory, GVariant *records, const char *user)
{
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)hark_presence_record_free);
  gint64 now = hark_directory_now(directory);
  GVariantIter iter;
  GVariant *child;
  g_variant_iter_init(&iter, records);
  while ((child = g_variant_iter_next_value(&iter)) != NULL) {
    g_autoptr(GVariant) owned = child;
    g_autoptr(GError) error = NULL;
    HarkPresenceRecord *record =
      out->len < DIRECTORY_MAX_RESULTS
        ? hark_presence_verify(owned, hark_directory_ca_pem(directory), user, now, &error)
        : NULL;
    if (record != NULL) {
      g_ptr_array_add(out, record);
    } else if (error != NULL) {
      directory->counters.results_refused++;
      hark_directory_refused(directory, error, "our super node's answer");
    }
  }
  return out;
}

gboolean
hark_directory_search_answer(HarkDirectory *directory, const HarkWireMessage *message)
{
  guint64 id = message->id;
  SearchJob *job = g_hash_table_lookup(directory->searches, &id);
  if (job == NULL)
    return FALSE;
  if (message->type == HARK_MSG_ERROR) {
    const char *text;
    guint32 code;
    g_variant_get(message->body, "(u&s)", &code, &text);
    g_autofree char *shown = hark_text_escape(text, -1, 200);
    g_string_append_printf(job->problems, " the super node refused (%u): %s;", code, shown);
    if (code == 429) { /* a rate limit is not to be walked around: tell the user */
      hark_directory_clear_source(directory, &job->timeout);
      g_hash_table_remove(directory->searches, &id);
      job->sn_id = 0;
      fail(job);
      return TRUE;
    }
    sn_answered(job, HARK_SEARCH_UNDECIDED, NULL, NULL);
    return TRUE;
  }
  const char *answer_text;
  g_autoptr(GVariant) names = NULL;
  g_autoptr(GVariant) records = NULL;
  g_variant_get(message->body, "(&s@as@a(ayay))", &answer_text, &names, &records);
  HarkSearchAnswer answer = HARK_SEARCH_UNDECIDED;
  hark_search_answer_from_string(answer_text, &answer);
  sn_answered(job, answer, names, records);
  return TRUE;
}

void
hark_directory_lookup(HarkDirectory *directory, const char *text, HarkDirectoryLookupDone done,
                      gpointer data)
{
  gsize length = strlen(text);
  gboolean prefix = length > 0 && text[length - 1] == '*';
  g_autofree char *name = g_strndup(text, prefix ? length - 1 : length);
  g_autoptr(GVariant) body =
    g_variant_ref_sink(g_variant_new("(sb^as)", name, prefix, directory->node->config->dir_search));
  g_autoptr(GError) error = NULL;
  HarkPresenceQuery *query = hark_presence_query_parse(body, &error);
  if (query == NULL) {
    g_autoptr(GError) refused = g_error_new(HARK_COMMAND_ERROR, HARK_COMMAND_ERROR_BAD_ARGUMENTS,
                                            "search: %s", error->message);
    g_autoptr(GPtrArray) none = g_ptr_array_new();
    HarkPresenceQuery asked = { .key = name, .prefix = prefix };
    done(HARK_SEARCH_UNDECIDED, &asked, none, none, refused, data);
    return;
  }
  SearchJob *job = g_new0(SearchJob, 1);
  job->directory = directory;
  job->done = done;
  job->done_data = data;
  job->query = query;
  job->records = g_ptr_array_new_with_free_func((GDestroyNotify)hark_presence_record_free);
  job->names = g_ptr_array_new_with_free_func(g_free);
  job->problems = g_string_new(NULL);
  g_ptr_array_add(directory->searches_running, job);
  directory->counters.lookups++;
  HarkLink *link = hark_overlay_sn_link(directory->overlay);
  if (link == NULL && directory->store != NULL) {
    /* A super node serves its own lookup as it would a client's: its store, then its
     * SN-side strategies (gi finds users on other SNs); the answer comes back as its
     * SN's would. */
    job->sn_id = hark_overlay_new_message_id(directory->overlay);
    g_hash_table_insert(directory->searches, &job->sn_id, job);
    job->timeout =
      hark_clock_add_seconds(directory->clock, DIRECTORY_LOOKUP_TIMEOUT_S, on_sn_timeout, job);
    g_autoptr(HarkPresenceQuery) own = hark_presence_query_parse(body, NULL);
    serve_start(directory, NULL, 0, job->sn_id, g_steal_pointer(&own), NULL);
    return;
  }
  if (link == NULL) {
    g_string_append(job->problems, " not attached to a super node;");
    try_next_strategy(job);
    return;
  }
  job->sn_id = hark_overlay_new_message_id(directory->overlay);
  g_hash_table_insert(directory->searches, &job->sn_id, job);
  job->timeout =
    hark_clock_add_seconds(directory->clock, DIRECTORY_LOOKUP_TIMEOUT_S, on_sn_timeout, job);
  hark_link_send(link, HARK_MSG_DIR_LOOKUP, job->sn_id, body, NULL); /* a reference of its own */
}

void
hark_directory_searches_free(HarkDirectory *directory)
{
  while (directory->searches_running->len > 0) {
    SearchJob *job = g_ptr_array_steal_index(directory->searches_running, 0);
    hark_directory_clear_source(directory, &job->timeout);
    g_autoptr(GError) stopping =
      g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "the node is stopping");
    job->done(HARK_SEARCH_UNDECIDED, job->query, job->records, job->names, stopping,
              job->done_data);
    if (job->sn_id != 0) {
      search_job_free(job); /* nobody else holds it */
    } else {
      job->directory = NULL; /* a strategy still owes its answer: it frees the job */
    }
  }
  g_hash_table_remove_all(directory->searches);
}

void
hark_directory_search(HarkDirectory *directory, const char *text, HarkCommandCall *call)
{
  hark_directory_lookup(directory, text, search_answered, call);
}
