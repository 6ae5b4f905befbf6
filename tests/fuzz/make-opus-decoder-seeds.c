/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* make-opus-decoder-seeds.c: writes fuzz-opus-decoder's seeds into the directory named
 * by its argument (by hand: build/tests/fuzz/make-opus-decoder-seeds
 * tests/fuzz/corpus/opus-decoder). Each is a run of records, a length byte and a packet,
 * length 0 for a lost one: real Opus packets of a tone (20 ms, with and without FEC),
 * one lost and one lost twice in a row, a DTX frame, and packets libopus refuses. */
#include <math.h>
#include <opus.h>
#include <stdio.h>
#include <string.h>

#define RATE 48000
#define FRAME 960

static int
encode_tone(int fec, unsigned char packets[][256], int lengths[], int n)
{
  int err;
  OpusEncoder *enc = opus_encoder_create(RATE, 1, OPUS_APPLICATION_VOIP, &err);
  if (enc == NULL)
    return -1;
  opus_encoder_ctl(enc, OPUS_SET_BITRATE(28000));
  opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(fec));
  opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(fec ? 10 : 0));
  for (int f = 0; f < n; f++) {
    short pcm[FRAME];
    for (int i = 0; i < FRAME; i++)
      pcm[i] = (short)(8000 * sin(2 * M_PI * 440 * (f * FRAME + i) / RATE));
    lengths[f] = opus_encode(enc, pcm, FRAME, packets[f], 255);
    if (lengths[f] < 0)
      return -1;
  }
  opus_encoder_destroy(enc);
  return 0;
}

/* Writes the packets in order, a record of length 0 where skip[f] says so. */
static int
write_seed(const char *dir, const char *name, unsigned char packets[][256], const int lengths[],
           int n, const int *skip)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *out = fopen(path, "wb");
  if (out == NULL)
    return -1;
  for (int f = 0; f < n; f++) {
    unsigned char length = skip != NULL && skip[f] ? 0 : (unsigned char)lengths[f];
    fputc(length, out);
    fwrite(packets[f], 1, length, out);
  }
  return fclose(out);
}

int
main(int argc, char **argv)
{
  if (argc != 2) {
    fprintf(stderr, "usage: make-opus-decoder-seeds DIR\n");
    return 2;
  }
  enum { N = 8 };
  unsigned char packets[N][256];
  int lengths[N];
  const int one_lost[N] = { 0, 0, 0, 1, 0, 0, 0, 0 };
  const int two_lost[N] = { 0, 0, 1, 1, 0, 0, 0, 0 };
  unsigned char odd[4][256] = { { 0x48 }, { 0xfb, 0x00, 0xde, 0xad }, { 0x4b, 0xff }, { 0xfc } };
  const int odd_lengths[4] = { 1, 4, 2, 1 }; /* DTX, code 3 with no frame, bad count, CELT */
  if (encode_tone(0, packets, lengths, N) != 0 ||
      write_seed(argv[1], "tone", packets, lengths, N, NULL) != 0 ||
      write_seed(argv[1], "tone-one-lost", packets, lengths, N, one_lost) != 0 ||
      encode_tone(1, packets, lengths, N) != 0 ||
      write_seed(argv[1], "fec-one-lost", packets, lengths, N, one_lost) != 0 ||
      write_seed(argv[1], "fec-two-lost", packets, lengths, N, two_lost) != 0 ||
      write_seed(argv[1], "odd-packets", odd, odd_lengths, 4, NULL) != 0) {
    perror(argv[1]);
    return 1;
  }
  return 0;
}
