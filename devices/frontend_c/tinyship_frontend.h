/* tinyship audio front-end: streaming MFCC / log-mel features for a keyword spotter (C99, float32).

   Shipped by tinyship (devices/frontend_c/) with tinyship_frontend_tables.h, which tinyship generates
   for one model from its card (input.frontend): sizes, Hann window, FFT twiddles, mel weights, DCT.
   It computes the numbers of tinyship's Python front-end (distill/audio_frontend.py): frames of
   N_FFT samples every HOP samples, periodic Hann window, power spectrum |rfft|^2 (a real FFT of its
   own: no CMSIS-DSP needed), triangular HTK-mel filters, ln(energy + LOG_FLOOR), for MFCCs an
   orthonormal DCT-II times the lifter, and with UTTERANCE_NORM each coefficient's mean over the
   window's FRAMES frames subtracted. float32 throughout: a Cortex-M4F does it on its FPU.

   Streaming: tinyship_fe_push() takes PCM as it arrives (any number of samples) and computes one
   frame per HOP samples into a ring of the last FRAMES frames; tinyship_fe_window() writes the
   model's int8 input tensor from the ring ([coefficient][frame], oldest frame first), normalized
   over the ring's frames. tinyship_fe_clip() runs one whole clip through the same calls, zero-padded
   or cropped to CLIP_SAMPLES as the Python front-end does, so a clip's features equal Python's. */
#ifndef TINYSHIP_FRONTEND_H_
#define TINYSHIP_FRONTEND_H_

#include <stddef.h>
#include <stdint.h>

#include "tinyship_frontend_tables.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The whole state of one stream: this struct is the front-end's RAM (no heap, no other globals). */
typedef struct {
  int16_t samples[TINYSHIP_FE_N_FFT];   /* ring of the last N_FFT samples */
  uint32_t pos;                         /* where the next sample goes in samples[] */
  uint32_t fill;                        /* samples received of the next frame */
  uint32_t skip;                        /* samples to drop before the next frame (HOP > N_FFT) */
  uint32_t head;                        /* ring slot of the next frame */
  uint32_t count;                       /* frames in the ring, up to FRAMES */
  float spectrum[TINYSHIP_FE_N_FFT];    /* FFT work: N_FFT/2 complex values (re, im) */
  float power[TINYSHIP_FE_N_FFT / 2 + 1];
  float mel[TINYSHIP_FE_N_MELS];
  float ring[TINYSHIP_FE_FRAMES][TINYSHIP_FE_COEFFS]; /* un-normalized features of the last frames */
} tinyship_fe_t;

/* Empty the stream (no samples, no frames). */
void tinyship_fe_reset(tinyship_fe_t *st);

/* Feed n samples of int16 PCM at SAMPLE_RATE; returns the number of frames it completed. */
uint32_t tinyship_fe_push(tinyship_fe_t *st, const int16_t *pcm, uint32_t n);

/* 1 when the ring holds FRAMES frames (a window can be scored), else 0. */
int tinyship_fe_ready(const tinyship_fe_t *st);

/* Coefficient c of every frame in the ring, oldest first (FRAMES floats), normalized as the model
   was trained; 0, or -1 when the ring is not full or c is out of range. */
int tinyship_fe_coefficient(const tinyship_fe_t *st, uint32_t c, float *out);

/* The model's input tensor (COEFFS x FRAMES int8, coefficient-major): q = round(x / scale) +
   zero_point, saturated, with the input tensor's own scale and zero point; 0, or -1 when the ring
   is not full. */
int tinyship_fe_window(const tinyship_fe_t *st, int8_t *out, float scale, int32_t zero_point);

/* Reads up to n samples into dst; returns how many it read. */
typedef uint32_t (*tinyship_fe_read_fn)(void *ctx, int16_t *dst, uint32_t n);

/* Reset, then run one clip of n samples (read from read(ctx), exactly n of them) through the
   stream, zero-padded or cropped to CLIP_SAMPLES as the Python front-end's fix_length does;
   0, or -1 when read() gave fewer than n samples. */
int tinyship_fe_clip_read(tinyship_fe_t *st, uint32_t n, tinyship_fe_read_fn read, void *ctx);

/* tinyship_fe_clip_read() on a clip in memory. */
int tinyship_fe_clip(tinyship_fe_t *st, const int16_t *pcm, uint32_t n);

/* sizeof(tinyship_fe_t), for callers that allocate the state themselves (and for the record). */
size_t tinyship_fe_state_bytes(void);

#ifdef __cplusplus
}
#endif

#endif /* TINYSHIP_FRONTEND_H_ */
