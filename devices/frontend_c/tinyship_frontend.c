/* tinyship audio front-end (see tinyship_frontend.h). C99, float32, no dynamic memory, no library
   call besides logf (a compiler may still turn a copy loop into memcpy).
   Shipped by tinyship (devices/frontend_c/); its tables come from tinyship_frontend_tables.h. */
#define TINYSHIP_FE_TABLES /* this file holds the tables' one definition */
#include "tinyship_frontend.h"

#include <math.h> /* logf: the only library call */

#if defined(__GNUC__)
#define TINYSHIP_FE_NOINLINE __attribute__((noinline)) /* keeps each step a symbol of its own */
#else
#define TINYSHIP_FE_NOINLINE
#endif

#define FE_M (TINYSHIP_FE_N_FFT / 2) /* complex points of the half-length FFT */

size_t tinyship_fe_state_bytes(void) { return sizeof(tinyship_fe_t); }

void tinyship_fe_reset(tinyship_fe_t *st) { /* the counters say which samples and frames are valid */
  st->pos = 0;
  st->fill = 0;
  st->skip = 0;
  st->head = 0;
  st->count = 0;
}

int tinyship_fe_ready(const tinyship_fe_t *st) { return st->count >= TINYSHIP_FE_FRAMES; }

/* Power spectrum of the frame in the sample ring (oldest sample at st->pos) into st->power
   (N_FFT/2 + 1 bins): the N_FFT-point real FFT as an N_FFT/2-point complex FFT of the even/odd
   samples (radix-2, decimation in time), then the split that separates the two halves' spectra. */
static TINYSHIP_FE_NOINLINE void tinyship_fe_power(tinyship_fe_t *st) {
  float *z = st->spectrum;
  const float *w = tinyship_fe_hann; /* Hann window / 32768: int16 to [-1, 1) folded in */
  const int16_t *x = st->samples;
  uint32_t k, len, at = st->pos;
  for (k = 0; k < FE_M; ++k) { /* windowed samples, stored in bit-reversed order */
    uint32_t j = 2u * tinyship_fe_bitrev[k];
    z[j] = (float)x[at] * w[2 * k];
    z[j + 1] = (float)x[(at + 1u) & (TINYSHIP_FE_N_FFT - 1u)] * w[2 * k + 1];
    at = (at + 2u) & (TINYSHIP_FE_N_FFT - 1u);
  }
  for (len = 2; len <= FE_M; len <<= 1) {
    uint32_t half = len / 2, step = TINYSHIP_FE_N_FFT / len, i, j;
    for (i = 0; i < FE_M; i += len) {
      for (j = 0; j < half; ++j) {
        float wr = tinyship_fe_cos[j * step], wi = -tinyship_fe_sin[j * step];
        float *a = z + 2 * (i + j), *b = z + 2 * (i + j + half);
        float tr = b[0] * wr - b[1] * wi, ti = b[0] * wi + b[1] * wr;
        b[0] = a[0] - tr;
        b[1] = a[1] - ti;
        a[0] += tr;
        a[1] += ti;
      }
    }
  }
  st->power[0] = (z[0] + z[1]) * (z[0] + z[1]);
  st->power[FE_M] = (z[0] - z[1]) * (z[0] - z[1]);
  for (k = 1; k < FE_M; ++k) { /* X[k] = E[k] + e^{-2 pi i k / N} O[k] */
    float ar = z[2 * k], ai = z[2 * k + 1];
    float br = z[2 * (FE_M - k)], bi = -z[2 * (FE_M - k) + 1];
    float er = 0.5f * (ar + br), ei = 0.5f * (ai + bi);
    float dr = 0.5f * (ar - br), di = 0.5f * (ai - bi);
    float c = tinyship_fe_cos[k], s = tinyship_fe_sin[k];
    float xr = er + c * di - s * dr, xi = ei - c * dr - s * di;
    st->power[k] = xr * xr + xi * xi;
  }
}

/* Mel energies, log, DCT-II (times the lifter) of the frame's power into the ring's next slot. */
static TINYSHIP_FE_NOINLINE void tinyship_fe_cepstrum(tinyship_fe_t *st) {
  const float *wt = tinyship_fe_mel_weight;
  float *dst = st->ring[st->head];
  uint32_t m, i;
  for (m = 0; m < TINYSHIP_FE_N_MELS; ++m) {
    const float *p = st->power + tinyship_fe_mel_first[m];
    float e = 0.0f;
    for (i = 0; i < tinyship_fe_mel_count[m]; ++i) e += wt[i] * p[i];
    wt += tinyship_fe_mel_count[m];
    st->mel[m] = logf(e + TINYSHIP_FE_LOG_FLOOR);
  }
#if TINYSHIP_FE_N_MFCC > 0
  for (i = 0; i < TINYSHIP_FE_COEFFS; ++i) {
    const float *d = tinyship_fe_dct[i];
    float v = 0.0f;
    for (m = 0; m < TINYSHIP_FE_N_MELS; ++m) v += d[m] * st->mel[m];
    dst[i] = v;
  }
#else
  for (m = 0; m < TINYSHIP_FE_N_MELS; ++m) dst[m] = st->mel[m];
#endif
  st->head = (st->head + 1u) % TINYSHIP_FE_FRAMES;
  if (st->count < TINYSHIP_FE_FRAMES) ++st->count;
}

uint32_t tinyship_fe_push(tinyship_fe_t *st, const int16_t *pcm, uint32_t n) {
  uint32_t made = 0, i;
  for (i = 0; i < n; ++i) {
    if (st->skip > 0) { /* a hop longer than the frame: samples no frame uses */
      --st->skip;
      continue;
    }
    st->samples[st->pos] = pcm[i];
    st->pos = (st->pos + 1u) & (TINYSHIP_FE_N_FFT - 1u);
    if (++st->fill == TINYSHIP_FE_N_FFT) { /* the ring holds the frame, oldest at pos */
      tinyship_fe_power(st);
      tinyship_fe_cepstrum(st);
      ++made;
#if TINYSHIP_FE_HOP < TINYSHIP_FE_N_FFT /* the next frame starts HOP samples later */
      st->fill = TINYSHIP_FE_N_FFT - TINYSHIP_FE_HOP;
#else
      st->fill = 0;
      st->skip = TINYSHIP_FE_HOP - TINYSHIP_FE_N_FFT;
#endif
    }
  }
  return made;
}

/* The value subtracted from coefficient c: its mean over the ring's frames (0 without UTTERANCE_NORM).
   Kahan-compensated float32 sum: as close to the Python front-end's float64 mean as float allows. */
static float tinyship_fe_offset(const tinyship_fe_t *st, uint32_t c) {
#if TINYSHIP_FE_UTTERANCE_NORM
  float sum = 0.0f, comp = 0.0f;
  uint32_t f;
  for (f = 0; f < TINYSHIP_FE_FRAMES; ++f) {
    float y = st->ring[f][c] - comp;
    float t = sum + y;
    comp = (t - sum) - y;
    sum = t;
  }
  return sum / (float)TINYSHIP_FE_FRAMES;
#else
  (void)st;
  (void)c;
  return 0.0f;
#endif
}

int tinyship_fe_coefficient(const tinyship_fe_t *st, uint32_t c, float *out) {
  uint32_t f, slot;
  float mean;
  if (!tinyship_fe_ready(st) || c >= TINYSHIP_FE_COEFFS) return -1;
  mean = tinyship_fe_offset(st, c);
  for (f = 0, slot = st->head; f < TINYSHIP_FE_FRAMES; ++f) { /* head: the oldest frame */
    out[f] = st->ring[slot][c] - mean;
    slot = slot + 1u == TINYSHIP_FE_FRAMES ? 0u : slot + 1u;
  }
  return 0;
}

/* v rounded to the nearest integer, ties to even (numpy's round; lrintf in the default rounding
   mode) without a library call: the truncation and its exact remainder decide. */
static int32_t tinyship_fe_round(float v) {
  int32_t t;
  float frac;
  if (!(v <= 1000.0f)) return 1000; /* far outside int8 (or NaN): saturated by the caller */
  if (v < -1000.0f) return -1000;
  t = (int32_t)v; /* toward zero */
  frac = v - (float)t; /* exact: |v| < 2^23 */
  if (frac > 0.5f || (frac == 0.5f && (t & 1))) return t + 1;
  if (frac < -0.5f || (frac == -0.5f && (t & 1))) return t - 1;
  return t;
}

TINYSHIP_FE_NOINLINE int tinyship_fe_window(const tinyship_fe_t *st, int8_t *out, float scale,
                                            int32_t zero_point) {
  uint32_t c, f, slot;
  if (!tinyship_fe_ready(st)) return -1;
  for (c = 0; c < TINYSHIP_FE_COEFFS; ++c) {
    float mean = tinyship_fe_offset(st, c);
    for (f = 0, slot = st->head; f < TINYSHIP_FE_FRAMES; ++f) {
      int32_t q = tinyship_fe_round((st->ring[slot][c] - mean) / scale) + zero_point;
      *out++ = (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
      slot = slot + 1u == TINYSHIP_FE_FRAMES ? 0u : slot + 1u;
    }
  }
  return 0;
}

#define FE_CHUNK 64u /* samples moved per read while a clip streams through */

/* Read and push (or, with push 0, drop) n samples; -1 when read() runs short. */
static int tinyship_fe_pass(tinyship_fe_t *st, uint32_t n, int push, tinyship_fe_read_fn read,
                            void *ctx) {
  int16_t chunk[FE_CHUNK];
  while (n > 0) {
    uint32_t want = n < FE_CHUNK ? n : FE_CHUNK;
    if (read(ctx, chunk, want) != want) return -1;
    if (push) tinyship_fe_push(st, chunk, want);
    n -= want;
  }
  return 0;
}

static void tinyship_fe_zeros(tinyship_fe_t *st, uint32_t n) {
  static const int16_t zero[FE_CHUNK];
  while (n > 0) {
    uint32_t take = n < FE_CHUNK ? n : FE_CHUNK;
    tinyship_fe_push(st, zero, take);
    n -= take;
  }
}

int tinyship_fe_clip_read(tinyship_fe_t *st, uint32_t n, tinyship_fe_read_fn read, void *ctx) {
  const uint32_t target = TINYSHIP_FE_CLIP_SAMPLES;
  tinyship_fe_reset(st);
  if (n >= target) { /* crop: the middle (align center) or the start */
    uint32_t start = TINYSHIP_FE_ALIGN_CENTER ? (n - target) / 2u : 0u;
    if (tinyship_fe_pass(st, start, 0, read, ctx) || tinyship_fe_pass(st, target, 1, read, ctx)) {
      return -1;
    }
    return tinyship_fe_pass(st, n - start - target, 0, read, ctx);
  }
  {  /* zero-pad: the clip in the middle (align center) or at the start */
    uint32_t left = TINYSHIP_FE_ALIGN_CENTER ? (target - n) / 2u : 0u;
    tinyship_fe_zeros(st, left);
    if (tinyship_fe_pass(st, n, 1, read, ctx)) return -1;
    tinyship_fe_zeros(st, target - left - n);
  }
  return 0;
}

typedef struct {
  const int16_t *pcm;
  uint32_t left;
} tinyship_fe_memory;

static uint32_t tinyship_fe_read_memory(void *ctx, int16_t *dst, uint32_t n) {
  tinyship_fe_memory *m = (tinyship_fe_memory *)ctx;
  uint32_t take = n < m->left ? n : m->left, i;
  for (i = 0; i < take; ++i) dst[i] = m->pcm[i];
  m->pcm += take;
  m->left -= take;
  return take;
}

int tinyship_fe_clip(tinyship_fe_t *st, const int16_t *pcm, uint32_t n) {
  tinyship_fe_memory m;
  m.pcm = pcm;
  m.left = n;
  return tinyship_fe_clip_read(st, n, tinyship_fe_read_memory, &m);
}
