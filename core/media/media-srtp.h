/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-srtp.h: SRTP and SRTCP (RFC 3711, and RFC 7714 for AEAD_AES_256_GCM) with
 * OpenSSL, one direction of a session per HarkSrtp: protect what this side sends with its
 * key, or check and decrypt what the far end sent with its key.
 *
 * Why not libsrtp (GStreamer's srtpenc/srtpdec): Debian builds libsrtp2 against NSS, so
 * every call end mapped NSS (libnss3, softokn, freebl, NSPR: 2.6 MiB resident, NSS's own
 * initialisation on the heap) beside the OpenSSL it already uses for everything else,
 * where AES-CTR, AES-GCM and HMAC-SHA1 are. The packets are byte for byte libsrtp's
 * (tests/unit/test-media-srtp.c checks both ways against it), so nodes with either
 * interoperate.
 *
 * Key derivation rate 0, no MKI, SRTCP always encrypted (E set: a packet without it is
 * refused), replay windows of 64 packets per SSRC (RTP by index, SRTCP by its index), at
 * most HARK_SRTP_MAX_SSRCS SSRCs per direction. Thread-safe (one lock per HarkSrtp). */
#pragma once

#include "hark/media.h"

#include <glib.h>

G_BEGIN_DECLS

/* The most a protected packet grows: SRTCP with GCM, a 16-byte tag and the 4-byte index. */
#define HARK_SRTP_MAX_TRAILER 20
#define HARK_SRTP_MAX_SSRCS 8

typedef struct _HarkSrtp HarkSrtp;

typedef enum {
  HARK_SRTP_OK,
  HARK_SRTP_MALFORMED, /* too short, a header that overruns it, SRTCP without E */
  HARK_SRTP_AUTH, /* the tag does not match: not from the key's holder, or altered */
  HARK_SRTP_REPLAY, /* seen already, or older than the replay window */
  HARK_SRTP_TOO_MANY_SSRCS,
} HarkSrtpResult;

/* master: the suite's master key then its master salt (hark_media_srtp_key_length
 * bytes). sender: protects (TRUE) or unprotects (FALSE). NULL if master's length is wrong. */
HarkSrtp *hark_srtp_new(HarkMediaSrtpSuite suite, GBytes *master, gboolean sender);
void hark_srtp_free(HarkSrtp *srtp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkSrtp, hark_srtp_free)

/* An RTP (rtcp FALSE) or RTCP packet of length bytes into out (room for length +
 * HARK_SRTP_MAX_TRAILER); *out_length the protected packet's length. */
HarkSrtpResult hark_srtp_protect(HarkSrtp *srtp, gboolean rtcp, const guint8 *packet, gsize length,
                                 guint8 *out, gsize *out_length);
/* A protected packet into out (room for length); on HARK_SRTP_OK *out_length is the
 * plain packet's length, and the packet counts as seen for the replay window. */
HarkSrtpResult hark_srtp_unprotect(HarkSrtp *srtp, gboolean rtcp, const guint8 *packet,
                                   gsize length, guint8 *out, gsize *out_length);

/* Where an unprotecting context is: per SSRC, for RTP and SRTCP, the highest index and
 * the replay window below it. A new context with the same key given it goes on where this
 * one was: a stream past 65,536 packets keeps its rollover counter (a fresh context would
 * guess 0 and refuse every packet), and what came before stays refused as a replay. */
typedef struct _HarkSrtpWindows HarkSrtpWindows;

HarkSrtpWindows *hark_srtp_save_windows(HarkSrtp *srtp);
void hark_srtp_restore_windows(HarkSrtp *srtp, const HarkSrtpWindows *windows);
void hark_srtp_windows_free(HarkSrtpWindows *windows);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarkSrtpWindows, hark_srtp_windows_free)

G_END_DECLS
