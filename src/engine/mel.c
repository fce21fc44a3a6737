/* Whisper's log-mel spectrogram: centred STFT (reflect padding) with a periodic Hann window of
 * 400 samples every 160, power spectrum, the model's mel filter bank, log10 with a floor at
 * 1e-10, values below (max - 8) raised to it, then (x + 4) / 4. The last STFT frame is dropped
 * as Whisper does. */
#include "engine/whisper_internal.h"
#include "util/error.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* FFTW's planner is not thread-safe (executing a plan is); plans are made under this lock. */
static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

/* Sample j of the padded signal, reflected at both ends as torch.stft(center=True) does. */
static float reflected(const float *pcm, size_t n, size_t total, long j) {
    if (j < 0) j = -j;
    if (j >= (long)total) j = 2 * ((long)total - 1) - j;
    if (j < 0 || j >= (long)total) return 0.0f; /* signal shorter than half a window */
    return (size_t)j < n ? pcm[j] : 0.0f;
}

fluid_status wh_log_mel(const float *pcm, size_t n, size_t pad, const float *filters,
                        int32_t n_mels, int32_t n_fft_bins, float **mel, size_t *n_frames,
                        fluid_error *err) {
    size_t total = n + pad;
    size_t frames = total / WH_HOP;
    *mel = NULL;
    *n_frames = 0;
    if (frames == 0 || n_fft_bins != WH_N_FFT / 2 + 1)
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "log-mel: no audio");
    float *out = malloc((size_t)n_mels * frames * sizeof(float));
    float *in = fftwf_malloc(WH_N_FFT * sizeof(float));
    fftwf_complex *spec = fftwf_malloc((WH_N_FFT / 2 + 1) * sizeof(fftwf_complex));
    float *power = malloc((size_t)n_fft_bins * sizeof(float));
    fftwf_plan plan = NULL;
    if (out && in && spec && power) {
        pthread_mutex_lock(&planner_lock);
        plan = fftwf_plan_dft_r2c_1d(WH_N_FFT, in, spec, FFTW_ESTIMATE);
        pthread_mutex_unlock(&planner_lock);
    }
    if (!plan) {
        free(out);
        fftwf_free(in);
        fftwf_free(spec);
        free(power);
        return fl_set_error(err, FLUID_ERR_NOMEM, "log-mel: out of memory");
    }
    float window[WH_N_FFT];
    for (int i = 0; i < WH_N_FFT; i++)
        window[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / WH_N_FFT));
    float max_log = -INFINITY;
    for (size_t t = 0; t < frames; t++) {
        long first = (long)(t * WH_HOP) - WH_N_FFT / 2;
        for (int i = 0; i < WH_N_FFT; i++) in[i] = window[i] * reflected(pcm, n, total, first + i);
        fftwf_execute_dft_r2c(plan, in, spec);
        for (int k = 0; k < n_fft_bins; k++)
            power[k] = spec[k][0] * spec[k][0] + spec[k][1] * spec[k][1];
        for (int32_t m = 0; m < n_mels; m++) {
            const float *f = filters + (size_t)m * n_fft_bins;
            double sum = 0.0;
            for (int k = 0; k < n_fft_bins; k++) sum += (double)f[k] * power[k];
            float v = log10f(sum > 1e-10 ? (float)sum : 1e-10f);
            out[(size_t)m * frames + t] = v;
            if (v > max_log) max_log = v;
        }
    }
    for (size_t i = 0; i < (size_t)n_mels * frames; i++) {
        float v = out[i] < max_log - 8.0f ? max_log - 8.0f : out[i];
        out[i] = (v + 4.0f) / 4.0f;
    }
    pthread_mutex_lock(&planner_lock);
    fftwf_destroy_plan(plan);
    pthread_mutex_unlock(&planner_lock);
    fftwf_free(in);
    fftwf_free(spec);
    free(power);
    *mel = out;
    *n_frames = frames;
    return FLUID_OK;
}
