/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* directory-presence.c: presence pushed, not polled (docs/protocol.md, "Presence
 * subscriptions").
 *
 * A device sends its SN a DIR_SUBSCRIBE naming its buddies (on attach and whenever its
 * buddy list changes). The SN keeps one watch per client link and pushes DIR_PRESENCE
 * whenever a record of a watched user changes in its store, or goes with its device's
 * link (closed, or dropped for silence): the full forms the watcher may see (it is among
 * the publisher's buddy names), and the devices it was shown that it may no longer see
 * or that went offline. A stranger is pushed nothing at all.
 *
 * Across SNs: an SN forwards, per watching user, its clients' signed watches (DIR_WATCH:
 * a device signs what it watches, and only its key can speak for its user) to each of its
 * verified SN peers (again every DIRECTORY_EXPIRE_S, so a peer linked later learns them,
 * and the device signs anew as often); a peer verifies each, keeps the union of what the
 * valid ones watch per (link, watcher) and pushes its own
 * records the same way; the first SN checks what it is pushed and hands it to its
 * clients with that watcher. A peer may only take back (offline) what it pushed itself.
 *
 * A device keeps the latest record per buddy per device and emits `presence-changed`.
 *
 * Contacts hints (an empty DIR_PRESENCE) tell devices to fetch their contact requests and
 * buddy list: the SN sends them when a client publishes a changed buddy list, and when a
 * client says with DIR_HINT that a request with someone changed (sent, declined,
 * withdrawn), which no list shows. */
#include "directory-private.h"
#include "directory-presence-parse.h"

#include <string.h>

#define PRESENCE_MAX_PEER_WATCHERS 4096 /* watchers one SN peer may subscribe for */

typedef struct {
  HarkLink *link;
  gboolean from_peer; /* an SN peer's watch, on behalf of its clients */
  char *watcher; /* canonical */
  GHashTable *users; /* canonical names watched */
  GHashTable *shown; /* "user\ndevice" -> origin (the presence: ours; else a peer link) */
  GVariant *signed_watch; /* a client's: its device's latest signed watch (forwarded as is) */
} Watch;

typedef struct {
  guint64 subscribes;
  guint64 pushes;
  guint64 refused; /* malformed subscriptions or pushes, unauthenticated, over limits */
  guint64 records_refused; /* pushed records that did not verify */
  guint64 watches_refused; /* a peer's watches without a valid signature of the watcher */
  guint64 hints; /* contacts hints a verified SN peer passed on, taken */
  guint64 hints_refused; /* ... over its rate, or from a link that is no verified SN; a
                          * client's DIR_HINT malformed, unauthenticated or over its rate */
  guint64 hints_asked; /* DIR_HINTs clients sent, taken */
} PresenceCounters;

#define PRESENCE_PEER_HINTS_PER_MINUTE 60 /* contacts hints one SN peer may pass on */
#define PRESENCE_PEER_HINT_BURST 20
/* DIR_HINTs one client link may send: a user who sends, declines or withdraws many
 * requests at once (the login server lets an account send 10 a minute) is served. */
#define PRESENCE_CLIENT_HINTS_PER_MINUTE 20
#define PRESENCE_CLIENT_HINT_BURST 10


#define CONTACTS_SYNC_GAP_S 5 /* a device fetches its contacts on a hint at most this often */

struct _DirectoryPresence {
  HarkDirectory *directory;
  GPtrArray *watches; /* Watch*: an SN's */
  GHashTable *buddy_sets; /* an SN's: client HarkLink* -> hash of the buddy names it published */
  GHashTable *hint_buckets; /* an SN's: peer or client HarkLink* -> DirectoryBucket* */
  GHashTable *seen; /* a device's: canonical user -> (device -> HarkPresenceRecord*) */
  gint64 contacts_synced_us; /* a device's: the last fetch a hint caused (monotonic) */
  guint contacts_source;
  PresenceCounters counters;
};

static void
watch_free(gpointer data)
{
  Watch *watch = data;
  g_free(watch->watcher);
  g_hash_table_unref(watch->users);
  g_hash_table_unref(watch->shown);
  g_clear_pointer(&watch->signed_watch, g_variant_unref);
  g_free(watch);
}

DirectoryPresence *
hark_directory_presence_new(HarkDirectory *directory)
{
  DirectoryPresence *presence = g_new0(DirectoryPresence, 1);
  presence->directory = directory;
  presence->watches = g_ptr_array_new_with_free_func(watch_free);
  presence->buddy_sets = g_hash_table_new(NULL, NULL);
  presence->hint_buckets = g_hash_table_new_full(NULL, NULL, NULL, g_free);
  presence->seen =
    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_hash_table_unref);
  return presence;
}

void
hark_directory_presence_free(DirectoryPresence *presence)
{
  if (presence == NULL)
    return;
  hark_directory_clear_source(presence->directory, &presence->contacts_source);
  g_ptr_array_unref(presence->watches);
  g_hash_table_unref(presence->buddy_sets);
  g_hash_table_unref(presence->hint_buckets);
  g_hash_table_unref(presence->seen);
  g_free(presence);
}

static void
refused(DirectoryPresence *presence, HarkLink *link, const char *what)
{
  presence->counters.refused++;
  g_autofree char *who = hark_directory_link_text(link);
  g_autofree char *text = g_strdup_printf("%s (from %s)", what, who);
  hark_directory_refused_text(presence->directory, text);
}

/* ---- an SN: watches and pushes ------------------------------------------------------ */

static Watch *
find_watch(DirectoryPresence *presence, HarkLink *link, const char *watcher)
{
  for (guint i = 0; i < presence->watches->len; i++) {
    Watch *watch = presence->watches->pdata[i];
    if (watch->link == link && (watcher == NULL || strcmp(watch->watcher, watcher) == 0))
      return watch;
  }
  return NULL;
}

static char *
shown_key(const char *user, const char *device)
{
  return g_strconcat(user, "\n", device, NULL);
}

static void
send_presence(DirectoryPresence *presence, Watch *watch, const char *user, GVariant *records,
              GVariant *gone)
{
  HarkDirectory *directory = presence->directory;
  presence->counters.pushes++;
  hark_link_send(watch->link, HARK_MSG_DIR_PRESENCE,
                 hark_overlay_new_message_id(directory->overlay),
                 g_variant_new("(ss@a(ayay)@as)", watch->watcher, user, records, gone), NULL);
}

/* Pushes to watch what this SN's store holds of user that it may see, and takes back
 * what it was shown from here that it may no longer see (gone, offline). Nothing when
 * there is nothing to tell (a stranger hears nothing). */
static void
push_local(DirectoryPresence *presence, Watch *watch, const char *user)
{
  HarkDirectory *directory = presence->directory;
  g_autoptr(GPtrArray) visible =
    hark_directory_store_visible(directory->store, user, watch->watcher);
  g_autoptr(GHashTable) now_shown = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  GVariantBuilder records, gone;
  g_variant_builder_init(&records, G_VARIANT_TYPE("a(ayay)"));
  g_variant_builder_init(&gone, G_VARIANT_TYPE("as"));
  for (guint i = 0; i < visible->len; i++) {
    const HarkPresenceRecord *record = visible->pdata[i];
    g_variant_builder_add_value(&records, record->signed_form);
    g_hash_table_add(now_shown, shown_key(user, record->device));
  }
  g_autofree char *prefix = g_strconcat(user, "\n", NULL);
  GHashTableIter iter;
  gpointer key, origin;
  g_hash_table_iter_init(&iter, watch->shown);
  while (g_hash_table_iter_next(&iter, &key, &origin))
    if (origin == presence && g_str_has_prefix(key, prefix) &&
        !g_hash_table_contains(now_shown, key)) {
      g_variant_builder_add(&gone, "s", (const char *)key + strlen(prefix));
      g_hash_table_iter_remove(&iter);
    }
  GVariant *gone_v = g_variant_builder_end(&gone);
  GVariant *records_v = g_variant_builder_end(&records);
  if (visible->len == 0 && g_variant_n_children(gone_v) == 0) {
    g_variant_unref(g_variant_ref_sink(gone_v));
    g_variant_unref(g_variant_ref_sink(records_v));
    return;
  }
  for (guint i = 0; i < visible->len; i++) {
    const HarkPresenceRecord *record = visible->pdata[i];
    g_hash_table_insert(watch->shown, shown_key(user, record->device), presence);
  }
  send_presence(presence, watch, user, records_v, gone_v);
}

void
hark_directory_presence_changed(HarkDirectory *directory, const char *user)
{
  DirectoryPresence *presence = directory->presence;
  if (directory->store == NULL)
    return;
  g_autofree char *key = hark_presence_name_key(user);
  for (guint i = 0; i < presence->watches->len; i++) {
    Watch *watch = presence->watches->pdata[i];
    if (g_hash_table_contains(watch->users, key))
      push_local(presence, watch, key);
  }
}

/* The buddy names as one number, whatever their order. */
static guint
names_hash(const char *const *names)
{
  guint hash = 0;
  for (const char *const *name = names; name != NULL && *name != NULL; name++)
    hash += g_str_hash(*name) * 2654435761u; /* a sum: order does not matter */
  return hash ^ (names != NULL ? g_strv_length((char **)names) : 0);
}

/* The hint: an empty DIR_PRESENCE (never sent otherwise) to every device of user here
 * but from: something in user's contacts may have changed, fetch them. */
static void
hint_contacts(DirectoryPresence *presence, const char *user, const char *about, HarkLink *from)
{
  HarkDirectory *directory = presence->directory;
  g_autoptr(GPtrArray) links = hark_directory_store_links_of(directory->store, user);
  for (guint i = 0; i < links->len; i++) {
    if (links->pdata[i] == from)
      continue;
    presence->counters.pushes++;
    hark_link_send(links->pdata[i], HARK_MSG_DIR_PRESENCE,
                   hark_overlay_new_message_id(directory->overlay),
                   g_variant_new("(ssa(ayay)as)", user, about, NULL, NULL), NULL);
  }
}

void
hark_directory_presence_published(HarkDirectory *directory, HarkLink *link,
                                  const HarkPresenceRecord *stored)
{
  DirectoryPresence *presence = directory->presence;
  g_autofree char *user = hark_presence_name_key(stored->user);
  hark_directory_presence_changed(directory, user);
  if (link == NULL)
    return;
  /* A device's first record here is no change: only a new list (an acceptance, a
   * removal, a block) is worth its user's other devices and its buddies fetching. */
  const char *const *buddies = hark_directory_store_buddies(directory->store, user, stored->device);
  guint hash = names_hash(buddies);
  gpointer old;
  gboolean known = g_hash_table_lookup_extended(presence->buddy_sets, link, NULL, &old);
  g_hash_table_insert(presence->buddy_sets, link, GUINT_TO_POINTER(hash));
  if (!known || GPOINTER_TO_UINT(old) == hash)
    return;
  hint_contacts(presence, user, user, link);
  hark_directory_reach_hint(directory, user, user);
  for (const char *const *name = buddies; name != NULL && *name != NULL; name++) {
    hint_contacts(presence, *name, user, NULL);
    hark_directory_reach_hint(directory, *name, user); /* their devices on other SNs */
  }
}

/* A token of link's hint bucket; FALSE (refused, counted, logged) when there is none. */
static gboolean
take_hint_token(DirectoryPresence *presence, HarkLink *link, double per_minute, double burst,
                const char *what)
{
  gint64 now = hark_clock_now_monotonic(presence->directory->clock);
  DirectoryBucket *bucket = g_hash_table_lookup(presence->hint_buckets, link);
  if (bucket == NULL) {
    bucket = g_new0(DirectoryBucket, 1);
    g_hash_table_insert(presence->hint_buckets, link, bucket);
  }
  if (hark_directory_bucket_take(bucket, now, per_minute, burst))
    return TRUE;
  presence->counters.hints_refused++;
  refused(presence, link, what);
  return FALSE;
}

/* An empty DIR_PRESENCE from a verified SN peer: a contacts hint for watcher's devices
 * here, passed on by the SN where about published a changed list. At most
 * PRESENCE_PEER_HINTS_PER_MINUTE a peer (each device still fetches at most every 5 s). */
static void
take_peer_hint(DirectoryPresence *presence, HarkLink *peer, const char *watcher, const char *about)
{
  if (!take_hint_token(presence, peer, PRESENCE_PEER_HINTS_PER_MINUTE, PRESENCE_PEER_HINT_BURST,
                       "contacts hints from an SN peer over its rate"))
    return;
  presence->counters.hints++;
  g_autofree char *user = hark_presence_name_key(watcher);
  hint_contacts(presence, user, about, NULL);
}

/* A client's DIR_HINT: a contact request between its user and user changed on that device
 * (no buddy list shows it). Its user's other devices and user's devices, here and (passed
 * on) on their SNs, fetch their contacts. The sender is the certificate's user, never a
 * name the client sends; a spurious hint costs each device one fetch (at most one per
 * CONTACTS_SYNC_GAP_S) and shows nothing, as a list naming user published and withdrawn
 * would; and a client may send PRESENCE_CLIENT_HINTS_PER_MINUTE. */
static void
serve_client_hint(DirectoryPresence *presence, HarkLink *link, const HarkWireMessage *message)
{
  HarkDirectory *directory = presence->directory;
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(link);
  if (cert == NULL) {
    presence->counters.hints_refused++;
    refused(presence, link, "a DIR_HINT from a client that has not proved a certificate");
    hark_link_send(link, HARK_MSG_ERROR, message->id,
                   g_variant_new("(us)", 401, "log in before hinting contacts"), NULL);
    return;
  }
  g_autofree char *user = NULL;
  g_autoptr(GError) error = NULL;
  if (!hark_directory_hint_parse(message->body, &user, &error)) {
    presence->counters.hints_refused++;
    refused(presence, link, error->message);
    return;
  }
  if (!take_hint_token(presence, link, PRESENCE_CLIENT_HINTS_PER_MINUTE,
                       PRESENCE_CLIENT_HINT_BURST, "contacts hints from a client over its rate"))
    return;
  presence->counters.hints_asked++;
  g_autofree char *sender = hark_presence_name_key(cert->user);
  hint_contacts(presence, sender, sender, link);
  hark_directory_reach_hint(directory, sender, sender);
  if (strcmp(user, sender) == 0)
    return; /* a block or an unblock: only this user's devices care */
  hint_contacts(presence, user, sender, NULL);
  hark_directory_reach_hint(directory, user, sender);
}

/* An SN tells its peers, for watcher, the signed watches of its clients with that name
 * (an empty list ends the peer's watch). A peer takes them as they are: their users are
 * what the watcher's devices signed, not what this SN says. */
static GVariant *
watcher_body(DirectoryPresence *presence, const char *watcher)
{
  GVariantBuilder watches;
  g_variant_builder_init(&watches, G_VARIANT_TYPE("a(ayay)"));
  guint n = 0;
  for (guint i = 0; i < presence->watches->len && n < DIRECTORY_PRESENCE_MAX_WATCHES; i++) {
    Watch *watch = presence->watches->pdata[i];
    if (!watch->from_peer && watch->signed_watch != NULL && strcmp(watch->watcher, watcher) == 0) {
      g_variant_builder_add_value(&watches, watch->signed_watch);
      n++;
    }
  }
  return g_variant_ref_sink(g_variant_new("(sa(ayay))", watcher, &watches));
}

static void
forward_watcher(DirectoryPresence *presence, const char *watcher)
{
  HarkDirectory *directory = presence->directory;
  g_autoptr(GVariant) body = watcher_body(presence, watcher);
  g_autoptr(GPtrArray) peers = hark_overlay_sn_peer_links(directory->overlay);
  for (guint i = 0; i < peers->len; i++)
    hark_link_send(peers->pdata[i], HARK_MSG_DIR_WATCH,
                   hark_overlay_new_message_id(directory->overlay), g_variant_ref(body), NULL);
}

/* Every watcher among our clients, each once: a new array of borrowed names. */
static GPtrArray *
client_watchers(DirectoryPresence *presence)
{
  GPtrArray *out = g_ptr_array_new();
  g_autoptr(GHashTable) done = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; i < presence->watches->len; i++) {
    Watch *watch = presence->watches->pdata[i];
    if (!watch->from_peer && g_hash_table_add(done, watch->watcher))
      g_ptr_array_add(out, watch->watcher);
  }
  return out;
}

void
hark_directory_presence_forward_to(HarkDirectory *directory, HarkLink *peer)
{
  DirectoryPresence *presence = directory->presence;
  g_autoptr(GPtrArray) watchers = client_watchers(presence);
  for (guint i = 0; i < watchers->len; i++) {
    guint64 id = hark_overlay_new_message_id(directory->overlay);
    hark_directory_reach_sent(directory, peer, id); /* a 503 (still checking us): again */
    hark_link_send(peer, HARK_MSG_DIR_WATCH, id, watcher_body(presence, watchers->pdata[i]), NULL);
  }
}

/* The users our clients watch are wanted where they are (directory-reach.c). */
static void
want_users(HarkDirectory *directory, Watch *watch)
{
  GHashTableIter iter;
  gpointer user;
  g_hash_table_iter_init(&iter, watch->users);
  while (g_hash_table_iter_next(&iter, &user, NULL))
    hark_directory_reach_want(directory, user);
}

void
hark_directory_presence_tick(HarkDirectory *directory)
{
  DirectoryPresence *presence = directory->presence;
  if (directory->store == NULL) {
    /* A device signs its watch anew, so its SN always has a fresh one to forward. */
    hark_directory_presence_subscribe(directory, "the watch's refresh");
    return;
  }
  g_autoptr(GPtrArray) watchers = client_watchers(presence);
  for (guint i = 0; i < watchers->len; i++)
    forward_watcher(presence, watchers->pdata[i]);
  for (guint i = 0; i < presence->watches->len; i++) {
    Watch *watch = presence->watches->pdata[i];
    if (!watch->from_peer)
      want_users(directory, watch);
  }
}

static void set_watch(DirectoryPresence *presence, HarkLink *link, gboolean peer,
                      char *watcher_owned, GHashTable *users);

/* A DIR_SUBSCRIBE from a client, for its own user: the watch is replaced, and what may be
 * seen now is pushed. */
static void
serve_subscribe(DirectoryPresence *presence, HarkLink *link, HarkOverlayFrom from,
                const HarkWireMessage *message)
{
  g_autofree char *watcher_text = NULL;
  g_autoptr(GHashTable) parsed = NULL;
  g_autoptr(GError) error = NULL;
  if (!hark_directory_subscribe_parse(message->body, &watcher_text, &parsed, &error)) {
    refused(presence, link, error->message);
    return;
  }
  g_autofree char *watcher = NULL;
  if (from == HARK_OVERLAY_FROM_CLIENT) {
    const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(link);
    if (cert == NULL) {
      refused(presence, link, "a DIR_SUBSCRIBE from a client that has not proved a certificate");
      hark_link_send(link, HARK_MSG_ERROR, message->id,
                     g_variant_new("(us)", 401, "log in before subscribing to presence"), NULL);
      return;
    }
    if (*watcher_text != '\0' && g_ascii_strcasecmp(watcher_text, cert->user) != 0) {
      refused(presence, link, "a DIR_SUBSCRIBE for another user than the client's");
      return;
    }
    watcher = hark_presence_name_key(cert->user);
  } else {
    /* A peer could name any watcher: across SNs only a signed watch (DIR_WATCH) counts. */
    presence->counters.watches_refused++;
    refused(presence, link, "a DIR_SUBSCRIBE from an SN peer (watches across SNs are signed)");
    return;
  }
  set_watch(presence, link, FALSE, g_steal_pointer(&watcher), g_steal_pointer(&parsed));
}

/* Replaces link's watch for watcher (a client's: its only one) with users (both taken),
 * and pushes what may be seen now; an empty list ends a peer's watch. */
static void
set_watch(DirectoryPresence *presence, HarkLink *link, gboolean peer, char *watcher_owned,
          GHashTable *users)
{
  g_autofree char *watcher = watcher_owned;
  Watch *watch = find_watch(presence, link, peer ? watcher : NULL);
  if (watch == NULL && peer && g_hash_table_size(users) > 0) {
    guint n = 0;
    for (guint i = 0; i < presence->watches->len; i++)
      n += ((Watch *)presence->watches->pdata[i])->link == link;
    if (n >= PRESENCE_MAX_PEER_WATCHERS) {
      g_hash_table_unref(users);
      refused(presence, link, "a DIR_SUBSCRIBE over the watchers an SN peer may have");
      return;
    }
  }
  presence->counters.subscribes++;
  if (peer && g_hash_table_size(users) == 0) {
    g_hash_table_unref(users);
    if (watch != NULL)
      g_ptr_array_remove_fast(presence->watches, watch);
    return;
  }
  if (watch == NULL) {
    watch = g_new0(Watch, 1);
    watch->link = link;
    watch->from_peer = peer;
    watch->shown = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_ptr_array_add(presence->watches, watch);
  }
  g_free(watch->watcher);
  watch->watcher = g_steal_pointer(&watcher);
  g_clear_pointer(&watch->users, g_hash_table_unref);
  watch->users = users;
  GHashTableIter iter;
  gpointer user;
  g_hash_table_iter_init(&iter, users);
  while (g_hash_table_iter_next(&iter, &user, NULL))
    push_local(presence, watch, user);
  if (!peer)
    want_users(presence->directory, watch);
  if (!peer && watch->signed_watch != NULL)
    forward_watcher(presence, watch->watcher);
}

static void
watch_refused(DirectoryPresence *presence, HarkLink *link, const char *what)
{
  presence->counters.watches_refused++;
  refused(presence, link, what);
}

/* A client's signed watch: checked against its link's certificate and kept with its
 * watch, to be forwarded unchanged to the SN peers. */
static void
serve_client_watch(DirectoryPresence *presence, HarkLink *link, GVariant *watches)
{
  HarkDirectory *directory = presence->directory;
  const HarkDeviceCertificate *cert = hark_link_get_peer_certificate(link);
  Watch *watch = find_watch(presence, link, NULL);
  if (cert == NULL || watch == NULL || g_variant_n_children(watches) != 1) {
    watch_refused(presence, link, "a DIR_WATCH without a certificate, a subscription or one watch");
    return;
  }
  g_autoptr(GVariant) signed_watch = g_variant_get_child_value(watches, 0);
  g_autoptr(GError) error = NULL;
  const char *self = hark_identity_get_fingerprint(directory->node->identity);
  if (!hark_presence_watch_verify(signed_watch, hark_directory_ca_pem(directory), cert->user, self,
                                  hark_directory_now(directory), NULL, &error)) {
    watch_refused(presence, link, error->message);
    return;
  }
  g_clear_pointer(&watch->signed_watch, g_variant_unref);
  watch->signed_watch = g_variant_get_normal_form(signed_watch);
  forward_watcher(presence, watch->watcher);
}

/* An SN peer's watches for watcher: only those its devices signed, fresh, count; their
 * users' union is what this SN pushes to that peer. None valid: no watch at all. */
static void
serve_peer_watch(DirectoryPresence *presence, HarkLink *link, const char *watcher_text,
                 GVariant *watches)
{
  HarkDirectory *directory = presence->directory;
  if (*watcher_text == '\0') {
    watch_refused(presence, link, "a DIR_WATCH from an SN peer without a watcher");
    return;
  }
  const HarkDeviceCertificate *peer = hark_link_get_peer_certificate(link);
  if (peer == NULL) {
    watch_refused(presence, link, "a DIR_WATCH from an SN peer without a certificate");
    return;
  }
  g_autofree char *watcher = hark_presence_name_key(watcher_text);
  GHashTable *users = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  guint valid = 0;
  GVariantIter iter;
  GVariant *child;
  g_variant_iter_init(&iter, watches);
  while ((child = g_variant_iter_next_value(&iter)) != NULL) {
    g_autoptr(GVariant) signed_watch = child;
    g_autoptr(GError) error = NULL;
    if (hark_presence_watch_verify(signed_watch, hark_directory_ca_pem(directory), watcher,
                                   peer->device_id, hark_directory_now(directory), users, &error))
      valid++;
    else
      watch_refused(presence, link, error->message);
  }
  if (valid == 0 && g_variant_n_children(watches) > 0)
    g_hash_table_remove_all(users); /* nothing proved: whatever the peer had ends */
  set_watch(presence, link, TRUE, g_steal_pointer(&watcher), users);
}

static void
serve_watch(DirectoryPresence *presence, HarkLink *link, HarkOverlayFrom from,
            const HarkWireMessage *message)
{
  g_autofree char *watcher = NULL;
  g_autoptr(GVariant) watches = NULL;
  g_autoptr(GError) error = NULL;
  if (!hark_directory_watch_parse(message->body, &watcher, &watches, &error)) {
    watch_refused(presence, link, error->message);
    return;
  }
  if (from == HARK_OVERLAY_FROM_CLIENT)
    serve_client_watch(presence, link, watches);
  else
    serve_peer_watch(presence, link, watcher, watches);
}

/* The records of a push that verify as full forms of user (HarkPresenceRecord*, their
 * signed_form set); the others are counted and logged. For an SN relaying a peer's push
 * and a device taking its SN's alike: every hop checks. */
static GPtrArray *
verified_records(DirectoryPresence *presence, GVariant *records, const char *user)
{
  HarkDirectory *directory = presence->directory;
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)hark_presence_record_free);
  GVariantIter iter;
  GVariant *child;
  g_variant_iter_init(&iter, records);
  while ((child = g_variant_iter_next_value(&iter)) != NULL) {
    g_autoptr(GVariant) signed_form = child;
    g_autoptr(GError) error = NULL;
    HarkPresenceRecord *record = hark_presence_verify(signed_form, hark_directory_ca_pem(directory),
                                                      user, hark_directory_now(directory), &error);
    if (record != NULL && !record->is_public) {
      g_ptr_array_add(out, record);
      continue;
    }
    presence->counters.records_refused++;
    hark_directory_refused_text(directory, record == NULL ? error->message
                                                          : "a public form pushed as presence");
    hark_presence_record_free(record);
  }
  return out;
}

/* An SN: a peer's push for one of our clients' users goes to those clients; a peer may
 * take back only what it pushed itself. */
static void
relay_presence(DirectoryPresence *presence, HarkLink *peer, const HarkWireMessage *message)
{
  g_autofree char *watcher = NULL, *user = NULL;
  g_autoptr(GVariant) records = NULL, gone = NULL;
  g_autoptr(GError) error = NULL;
  if (!hark_directory_presence_parse(message->body, &watcher, &user, &records, &gone, &error)) {
    refused(presence, peer, error->message);
    return;
  }
  if (g_variant_n_children(records) == 0 && g_variant_n_children(gone) == 0) {
    take_peer_hint(presence, peer, watcher, user);
    return;
  }
  g_autoptr(GPtrArray) verified = verified_records(presence, records, user);
  GVariantBuilder builder;
  g_variant_builder_init(&builder, G_VARIANT_TYPE("a(ayay)"));
  for (guint d = 0; d < verified->len; d++)
    g_variant_builder_add_value(&builder, ((HarkPresenceRecord *)verified->pdata[d])->signed_form);
  g_autoptr(GVariant) checked = g_variant_ref_sink(g_variant_builder_end(&builder));
  for (guint i = 0; i < presence->watches->len; i++) {
    Watch *watch = presence->watches->pdata[i];
    if (watch->from_peer || strcmp(watch->watcher, watcher) != 0 ||
        !g_hash_table_contains(watch->users, user))
      continue;
    GVariantBuilder taken;
    g_variant_builder_init(&taken, G_VARIANT_TYPE("as"));
    GVariantIter iter;
    const char *device;
    g_variant_iter_init(&iter, gone);
    while (g_variant_iter_next(&iter, "&s", &device)) {
      g_autofree char *key = shown_key(user, device);
      if (g_hash_table_lookup(watch->shown, key) == peer) {
        g_hash_table_remove(watch->shown, key);
        g_variant_builder_add(&taken, "s", device);
      }
    }
    for (guint d = 0; d < verified->len; d++)
      g_hash_table_insert(
        watch->shown, shown_key(user, ((HarkPresenceRecord *)verified->pdata[d])->device), peer);
    GVariant *taken_v = g_variant_builder_end(&taken);
    if (g_variant_n_children(taken_v) > 0)
      hark_directory_reach_moved(presence->directory, user); /* or went offline: look again */
    if (verified->len == 0 && g_variant_n_children(taken_v) == 0) {
      g_variant_unref(g_variant_ref_sink(taken_v));
      continue;
    }
    send_presence(presence, watch, user, checked, taken_v);
  }
}

/* Takes back from every client watch what came through peer (an SN link that closed). */
static void
take_back_from_peer(DirectoryPresence *presence, HarkLink *peer)
{
  for (guint i = 0; i < presence->watches->len; i++) {
    Watch *watch = presence->watches->pdata[i];
    if (watch->from_peer)
      continue;
    g_autoptr(GHashTable) by_user =
      g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_ptr_array_unref);
    GHashTableIter iter;
    gpointer key, origin;
    g_hash_table_iter_init(&iter, watch->shown);
    while (g_hash_table_iter_next(&iter, &key, &origin)) {
      if (origin != peer)
        continue;
      const char *newline = strchr(key, '\n');
      g_autofree char *user = g_strndup(key, newline - (const char *)key);
      GPtrArray *devices = g_hash_table_lookup(by_user, user);
      if (devices == NULL) {
        devices = g_ptr_array_new_with_free_func(g_free);
        g_hash_table_insert(by_user, g_strdup(user), devices);
      }
      g_ptr_array_add(devices, g_strdup(newline + 1));
      g_hash_table_iter_remove(&iter);
    }
    GPtrArray *devices;
    gpointer user;
    g_hash_table_iter_init(&iter, by_user);
    while (g_hash_table_iter_next(&iter, &user, (gpointer *)&devices)) {
      g_ptr_array_add(devices, NULL);
      send_presence(presence, watch, user, g_variant_new_array(G_VARIANT_TYPE("(ayay)"), NULL, 0),
                    g_variant_new_strv((const char *const *)devices->pdata, -1));
    }
  }
}

void
hark_directory_presence_link_closed(HarkDirectory *directory, HarkLink *link, HarkOverlayFrom from)
{
  DirectoryPresence *presence = directory->presence;
  g_autofree char *watcher = NULL;
  for (guint i = presence->watches->len; i > 0; i--) {
    Watch *watch = presence->watches->pdata[i - 1];
    if (watch->link != link)
      continue;
    if (!watch->from_peer && watcher == NULL)
      watcher = g_strdup(watch->watcher);
    g_ptr_array_remove_index_fast(presence->watches, i - 1);
  }
  if (from == HARK_OVERLAY_FROM_SN) {
    take_back_from_peer(presence, link);
    g_hash_table_remove(presence->hint_buckets, link);
  }
  if (from == HARK_OVERLAY_FROM_CLIENT) {
    g_hash_table_remove(presence->buddy_sets, link);
    g_hash_table_remove(presence->hint_buckets, link);
    /* The device is no longer online here: its record goes with its link, and its
     * watchers hear that it went offline. */
    g_auto(GStrv) users = hark_directory_store_users_from(directory->store, link);
    hark_directory_store_forget_from(directory->store, link);
    for (char **user = users; *user != NULL; user++)
      hark_directory_presence_changed(directory, *user);
  }
  if (watcher != NULL)
    forward_watcher(presence, watcher);
}

/* ---- a device: its subscription and what it is pushed ------------------------------- */

void
hark_directory_presence_subscribe(HarkDirectory *directory, const char *why)
{
  HarkLink *link = hark_overlay_sn_link(directory->overlay);
  if (link == NULL || hark_login_client_certificate_der(directory->login) == NULL)
    return;
  g_auto(GStrv) buddies = hark_login_client_buddy_names(directory->login);
  hark_link_send(link, HARK_MSG_DIR_SUBSCRIBE, hark_overlay_new_message_id(directory->overlay),
                 g_variant_new("(s^as)", "", buddies), NULL);
  /* The proof its SN forwards to its peers: only this device's key can make it. */
  GBytes *der = hark_login_client_certificate_der(directory->login); /* borrowed */
  gint64 now = hark_directory_now(directory);
  g_autoptr(GError) error = NULL;
  g_autoptr(HarkDeviceCertificate) cert =
    hark_certificate_verify(hark_directory_ca_pem(directory), der, now, &error);
  const HarkDeviceCertificate *sn = hark_link_get_peer_certificate(link);
  g_autoptr(GVariant) signed_watch =
    cert == NULL || sn == NULL
      ? NULL
      : hark_presence_watch_sign(cert->user, (const char *const *)buddies, sn->device_id, now, der,
                                 directory->node->identity, &error);
  if (signed_watch != NULL)
    hark_link_send(link, HARK_MSG_DIR_WATCH, hark_overlay_new_message_id(directory->overlay),
                   g_variant_new("(s@a(ayay))", "",
                                 g_variant_new_array(G_VARIANT_TYPE("(ayay)"), &signed_watch, 1)),
                   NULL);
  else
    g_warning("directory: cannot sign the presence watch: %s",
              error != NULL ? error->message : "no certificate");
  g_debug("directory: subscribed to the presence of %u buddies (%s)", g_strv_length(buddies), why);
}

/* A contact request with user changed on this device (user: this device's own user after a
 * block or an unblock): the SN tells user's devices and this user's other ones. Without a
 * certificate or an SN, or an SN that does not know DIR_HINT (it drops it, counted), they
 * learn at their next fetch, as before. */
void
hark_directory_presence_hint(HarkDirectory *directory, const char *user)
{
  HarkLink *link = hark_overlay_sn_link(directory->overlay);
  if (link == NULL || hark_login_client_certificate_der(directory->login) == NULL ||
      !hark_presence_name_is_valid(user))
    return;
  hark_link_send(link, HARK_MSG_DIR_HINT, hark_overlay_new_message_id(directory->overlay),
                 g_variant_new("(s)", user), NULL);
}

/* "offline" when the user has no device we know of, else the most available status. */
static const char *
presence_of(GHashTable *devices)
{
  if (devices == NULL || g_hash_table_size(devices) == 0)
    return "offline";
  g_autoptr(GPtrArray) records = g_ptr_array_new();
  GHashTableIter iter;
  gpointer record;
  g_hash_table_iter_init(&iter, devices);
  while (g_hash_table_iter_next(&iter, NULL, &record))
    g_ptr_array_add(records, record);
  return hark_presence_status_to_string(hark_presence_most_available(records));
}

static void
emit_changed(DirectoryPresence *presence, const char *user, const char *device,
             const HarkPresenceRecord *record, GHashTable *devices)
{
  JsonObject *data = json_object_new();
  json_object_set_string_member(data, "user", user);
  json_object_set_string_member(data, "device", device);
  json_object_set_boolean_member(data, "online", record != NULL);
  json_object_set_string_member(
    data, "status", record != NULL ? hark_presence_status_to_string(record->status) : "offline");
  json_object_set_string_member(data, "presence", presence_of(devices));
  hark_context_emit(presence->directory->ctx, "presence-changed", data);
}

static gboolean
on_contacts_due(gpointer data)
{
  DirectoryPresence *presence = data;
  presence->contacts_source = 0;
  presence->contacts_synced_us = g_get_monotonic_time();
  hark_login_client_sync_contacts(presence->directory->login);
  return G_SOURCE_REMOVE;
}

/* The SN's hint that a contact changed: fetch the requests and, if it changed, the buddy
 * list (which publishes and subscribes anew), at most once every CONTACTS_SYNC_GAP_S:
 * a user who keeps changing a list naming this one costs the login server little. */
static void
take_contacts_hint(DirectoryPresence *presence)
{
  if (presence->contacts_source != 0)
    return;
  gint64 since = g_get_monotonic_time() - presence->contacts_synced_us;
  if (presence->contacts_synced_us == 0 || since >= CONTACTS_SYNC_GAP_S * G_USEC_PER_SEC) {
    on_contacts_due(presence);
    return;
  }
  presence->contacts_source = hark_clock_add_seconds(
    presence->directory->clock, (guint)(CONTACTS_SYNC_GAP_S - since / G_USEC_PER_SEC),
    on_contacts_due, presence);
}

static GHashTable *
devices_of(DirectoryPresence *presence, const char *user)
{
  GHashTable *devices = g_hash_table_lookup(presence->seen, user);
  if (devices == NULL) {
    devices = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                    (GDestroyNotify)hark_presence_record_free);
    g_hash_table_insert(presence->seen, g_strdup(user), devices);
  }
  return devices;
}

static void
take_presence(DirectoryPresence *presence, HarkLink *link, const HarkWireMessage *message)
{
  g_autofree char *watcher = NULL, *user = NULL;
  g_autoptr(GVariant) records = NULL, gone = NULL;
  g_autoptr(GError) parse_error = NULL;
  if (!hark_directory_presence_parse(message->body, &watcher, &user, &records, &gone,
                                     &parse_error)) {
    refused(presence, link, parse_error->message);
    return;
  }
  if (g_variant_n_children(records) == 0 && g_variant_n_children(gone) == 0) {
    take_contacts_hint(presence);
    return;
  }
  GHashTable *devices = devices_of(presence, user);
  g_autoptr(GPtrArray) verified = verified_records(presence, records, user);
  for (guint i = 0; i < verified->len; i++) {
    const HarkPresenceRecord *record = verified->pdata[i];
    const HarkPresenceRecord *old = g_hash_table_lookup(devices, record->device);
    if (old != NULL && old->sequence >= record->sequence)
      continue;
    gboolean changed = old == NULL || old->status != record->status;
    verified->pdata[i] = NULL; /* the table's now (the array's free function takes NULL) */
    g_hash_table_insert(devices, g_strdup(record->device), (gpointer)record);
    if (changed)
      emit_changed(presence, user, record->device, record, devices);
  }
  GVariantIter iter;
  const char *device;
  g_variant_iter_init(&iter, gone);
  while (g_variant_iter_next(&iter, "&s", &device))
    if (g_hash_table_remove(devices, device))
      emit_changed(presence, user, device, NULL, devices);
}

/* Attached to another SN (or again): what the last one pushed is not known to be true,
 * and the new one pushes what is. No longer serving: the watches went with the links. */
void
hark_directory_presence_reset(HarkDirectory *directory)
{
  g_hash_table_remove_all(directory->presence->seen);
  g_ptr_array_set_size(directory->presence->watches, 0);
  g_hash_table_remove_all(directory->presence->buddy_sets);
  g_hash_table_remove_all(directory->presence->hint_buckets);
}

/* ---- both --------------------------------------------------------------------------- */

gboolean
hark_directory_presence_message(HarkDirectory *directory, HarkLink *link, HarkOverlayFrom from,
                                const HarkWireMessage *message)
{
  DirectoryPresence *presence = directory->presence;
  if (from == HARK_OVERLAY_FROM_CLAIMED_SN) {
    /* Its claim to be an SN is not checked yet: neither its watches nor its hints count.
     * A genuine SN that linked to us sends at once: 503 tells it to send again. */
    if (message->type == HARK_MSG_DIR_WATCH)
      watch_refused(presence, link, "a DIR_WATCH from an SN peer not verified yet");
    else if (message->type == HARK_MSG_DIR_PRESENCE) {
      presence->counters.hints_refused++;
      refused(presence, link, "a DIR_PRESENCE from an SN peer not verified yet");
    } else
      return FALSE;
    hark_link_send(link, HARK_MSG_ERROR, message->id,
                   g_variant_new("(us)", 503, "not verified as an SN yet: send it again"), NULL);
    return TRUE;
  }
  if (message->type == HARK_MSG_DIR_HINT) {
    if (directory->store == NULL || from == HARK_OVERLAY_FROM_MY_SN)
      return FALSE;
    if (from == HARK_OVERLAY_FROM_CLIENT) {
      serve_client_hint(presence, link, message);
      return TRUE;
    }
    /* An SN peer passes hints on as an empty DIR_PRESENCE, for one user at a time. */
    presence->counters.hints_refused++;
    refused(presence, link, "a DIR_HINT from an SN peer (only clients send it)");
    return TRUE;
  }
  if (message->type == HARK_MSG_DIR_PRESENCE && from == HARK_OVERLAY_FROM_CLIENT) {
    presence->counters.hints_refused++;
    refused(presence, link, "a DIR_PRESENCE from a client (only SNs push presence and hints)");
    return TRUE;
  }
  if (message->type == HARK_MSG_DIR_SUBSCRIBE) {
    if (directory->store == NULL || from == HARK_OVERLAY_FROM_MY_SN)
      return FALSE;
    serve_subscribe(presence, link, from, message);
    return TRUE;
  }
  if (message->type == HARK_MSG_DIR_WATCH) {
    if (directory->store == NULL || from == HARK_OVERLAY_FROM_MY_SN)
      return FALSE;
    serve_watch(presence, link, from, message);
    return TRUE;
  }
  if (from == HARK_OVERLAY_FROM_SN && directory->store != NULL) {
    relay_presence(presence, link, message);
    return TRUE;
  }
  if (from == HARK_OVERLAY_FROM_MY_SN) {
    take_presence(presence, link, message);
    return TRUE;
  }
  return FALSE;
}

static JsonArray *
devices_json(GHashTable *devices)
{
  JsonArray *array = json_array_new();
  if (devices == NULL)
    return array;
  g_autoptr(GList) keys = g_list_sort(g_hash_table_get_keys(devices), (GCompareFunc)strcmp);
  for (GList *l = keys; l != NULL; l = l->next)
    json_array_add_object_element(
      array, hark_directory_record_json(g_hash_table_lookup(devices, l->data)));
  return array;
}

/* The `buddies` answer gets each buddy's live presence and devices. */
void
hark_directory_presence_describe_buddies(HarkDirectory *directory, JsonObject *answer)
{
  JsonArray *buddies = json_object_get_array_member(answer, "buddies");
  for (guint i = 0; buddies != NULL && i < json_array_get_length(buddies); i++) {
    JsonObject *buddy = json_array_get_object_element(buddies, i);
    const char *name =
      buddy != NULL ? json_object_get_string_member_with_default(buddy, "name", NULL) : NULL;
    if (name == NULL)
      continue;
    g_autofree char *key = hark_presence_name_key(name);
    GHashTable *devices = g_hash_table_lookup(directory->presence->seen, key);
    json_object_set_string_member(buddy, "presence", presence_of(devices));
    json_object_set_array_member(buddy, "devices", devices_json(devices));
  }
}

JsonObject *
hark_directory_presence_describe(HarkDirectory *directory)
{
  DirectoryPresence *presence = directory->presence;
  JsonObject *o = json_object_new();
  json_object_set_int_member(o, "watches", presence->watches->len);
  json_object_set_int_member(o, "users_seen", g_hash_table_size(presence->seen));
  json_object_set_int_member(o, "subscribes", (gint64)presence->counters.subscribes);
  json_object_set_int_member(o, "pushes", (gint64)presence->counters.pushes);
  json_object_set_int_member(o, "refused", (gint64)presence->counters.refused);
  json_object_set_int_member(o, "records_refused", (gint64)presence->counters.records_refused);
  json_object_set_int_member(o, "watches_refused", (gint64)presence->counters.watches_refused);
  json_object_set_int_member(o, "hints", (gint64)presence->counters.hints);
  json_object_set_int_member(o, "hints_refused", (gint64)presence->counters.hints_refused);
  json_object_set_int_member(o, "hints_asked", (gint64)presence->counters.hints_asked);
  return o;
}
