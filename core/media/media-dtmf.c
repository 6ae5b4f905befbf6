/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* media-dtmf.c: RFC 4733 telephone-events for DTMF digits: the event codes, the 4-byte
 * payload, and the receiver's rule that reports each digit once, however often its end
 * packet is repeated or reordered. Free of GStreamer so the fuzz target
 * (tests/fuzz/fuzz-rtp.c) compiles it with the other packet checks. */
#include "media-private.h"

#include <string.h>

int
hark_media_dtmf_event(char digit)
{
  const char *at = digit != '\0' ? strchr(HARK_MEDIA_DTMF_DIGITS, digit) : NULL;
  return at != NULL ? (int)(at - HARK_MEDIA_DTMF_DIGITS) : -1;
}

void
hark_media_dtmf_payload(guint8 out[4], guint event, gboolean end, guint duration)
{
  out[0] = (guint8)event;
  out[1] = (end ? 0x80 : 0) | 10; /* E, R = 0, volume 10 (-10 dBm0) */
  duration = MIN(duration, 0xffff);
  out[2] = (guint8)(duration >> 8);
  out[3] = (guint8)duration;
}

int
hark_media_dtmf_receive(HarkMediaDtmfReceiver *rx, guint32 ts, const guint8 *payload, gsize length,
                        char digits[2])
{
  if (payload == NULL || length < 4 || payload[0] > 15)
    return -1;
  int n = 0;
  if (rx->have) {
    gint32 step = (gint32)(ts - rx->ts);
    if (step < 0 || (step == 0 && payload[0] != rx->event))
      return 0; /* a repeat of an older event, or a second event at one instant */
    if (step > 0) {
      /* A new event: the one before it ended even if none of its end packets came. */
      if (!rx->reported)
        digits[n++] = HARK_MEDIA_DTMF_DIGITS[rx->event];
      rx->have = FALSE;
    }
  }
  if (!rx->have)
    *rx = (HarkMediaDtmfReceiver){ .have = TRUE, .ts = ts, .event = payload[0] };
  if ((payload[1] & 0x80) && !rx->reported) {
    rx->reported = TRUE;
    digits[n++] = HARK_MEDIA_DTMF_DIGITS[rx->event];
  }
  return n;
}
