/* Audio decoding with libavformat/libavcodec from memory (an AVIOContext over the caller's
 * bytes), down-mixed and resampled to 16 kHz mono float with libswresample. Whatever the
 * container or codec, the first audio stream is used. A stream cut short decodes to the audio
 * before the cut (as ffmpeg does); input with no decodable audio is an error. */
#include "fluid/whisper.h"
#include "util/error.h"
#include "util/log.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { AVIO_BUFFER = 32768 };

/* Sample rates outside this range are refused: below it, a few bytes would resample into
 * gigabytes of 16 kHz samples; above it, setting up the resampler's filter takes minutes. */
enum { MIN_SAMPLE_RATE = 1000, MAX_SAMPLE_RATE = 768000 };

typedef struct mem_source {
    const uint8_t *data;
    size_t size, pos;
} mem_source;

static int mem_read(void *opaque, uint8_t *buf, int n) {
    mem_source *s = opaque;
    size_t left = s->size - s->pos;
    if (left == 0) return AVERROR_EOF;
    size_t take = (size_t)n < left ? (size_t)n : left;
    memcpy(buf, s->data + s->pos, take);
    s->pos += take;
    return (int)take;
}

static int64_t mem_seek(void *opaque, int64_t offset, int whence) {
    mem_source *s = opaque;
    int64_t base;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE:
        return (int64_t)s->size;
    case SEEK_SET:
        base = 0;
        break;
    case SEEK_CUR:
        base = (int64_t)s->pos;
        break;
    case SEEK_END:
        base = (int64_t)s->size;
        break;
    default:
        return AVERROR(EINVAL);
    }
    if (offset < -base || base + offset > (int64_t)s->size) return AVERROR(EINVAL);
    s->pos = (size_t)(base + offset);
    return (int64_t)s->pos;
}

/* Growing output buffer of mono floats. */
typedef struct pcm_buf {
    float *data;
    size_t n, cap;
} pcm_buf;

/* Room for extra more samples. With a cap (limit > 0, and b->n <= limit), the buffer never
 * grows past limit + extra: a capped decode's memory follows the cap, not the doubling. */
static bool pcm_reserve(pcm_buf *b, size_t extra, size_t limit) {
    if (b->n + extra <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 16000;
    while (cap < b->n + extra) cap *= 2;
    if (limit > 0 && cap > limit + extra) cap = limit + extra;
    float *d = realloc(b->data, cap * sizeof(float));
    if (!d) return false;
    b->data = d;
    b->cap = cap;
    return true;
}

typedef struct decoder {
    AVFormatContext *fmt;
    AVIOContext *avio;
    AVCodecContext *codec;
    SwrContext *swr;
    AVPacket *pkt;
    AVFrame *frame;
    int stream;
    pcm_buf out;
    size_t max_samples; /* 0 = no cap */
    fluid_error *err;
} decoder;

static fluid_status av_failure(decoder *d, int rc, const char *what) {
    char msg[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(rc, msg, sizeof msg);
    return fl_set_error(d->err, FLUID_ERR_FORMAT, "audio: %s: %s", what, msg);
}

static fluid_status open_input(decoder *d, mem_source *src) {
    uint8_t *buf = av_malloc(AVIO_BUFFER);
    if (!buf) return fl_set_error(d->err, FLUID_ERR_NOMEM, "audio: out of memory");
    d->avio = avio_alloc_context(buf, AVIO_BUFFER, 0, src, mem_read, NULL, mem_seek);
    d->fmt = avformat_alloc_context();
    if (!d->avio || !d->fmt) {
        if (!d->avio) av_free(buf);
        return fl_set_error(d->err, FLUID_ERR_NOMEM, "audio: out of memory");
    }
    d->fmt->pb = d->avio;
    d->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    int rc = avformat_open_input(&d->fmt, NULL, NULL, NULL);
    if (rc < 0) {
        d->fmt = NULL; /* freed by avformat_open_input on failure */
        return av_failure(d, rc, "not a recognised audio file");
    }
    rc = avformat_find_stream_info(d->fmt, NULL);
    if (rc < 0) return av_failure(d, rc, "cannot read stream information");
    const AVCodec *codec = NULL;
    d->stream = av_find_best_stream(d->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (d->stream < 0 || !codec)
        return fl_set_error(d->err, FLUID_ERR_FORMAT, "audio: no decodable audio stream");
    d->codec = avcodec_alloc_context3(codec);
    if (!d->codec) return fl_set_error(d->err, FLUID_ERR_NOMEM, "audio: out of memory");
    rc = avcodec_parameters_to_context(d->codec, d->fmt->streams[d->stream]->codecpar);
    if (rc >= 0) rc = avcodec_open2(d->codec, codec, NULL);
    if (rc < 0) return av_failure(d, rc, "cannot open the audio decoder");
    if (d->codec->sample_rate <= 0 || d->codec->ch_layout.nb_channels <= 0)
        return fl_set_error(d->err, FLUID_ERR_FORMAT, "audio: stream has no sample rate/channels");
    return FLUID_OK;
}

static fluid_status open_resampler(decoder *d) {
    if (d->codec->sample_rate < MIN_SAMPLE_RATE || d->codec->sample_rate > MAX_SAMPLE_RATE)
        return fl_set_error(d->err, FLUID_ERR_FORMAT,
                            "audio: sample rate %d Hz (%d to %d Hz are supported)",
                            d->codec->sample_rate, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE);
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    AVChannelLayout in_layout;
    if (d->codec->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&in_layout, d->codec->ch_layout.nb_channels);
    else if (av_channel_layout_copy(&in_layout, &d->codec->ch_layout) < 0)
        return fl_set_error(d->err, FLUID_ERR_NOMEM, "audio: out of memory");
    int rc = swr_alloc_set_opts2(&d->swr, &mono, AV_SAMPLE_FMT_FLT, FLUID_WHISPER_SAMPLE_RATE,
                                 &in_layout, d->codec->sample_fmt, d->codec->sample_rate, 0, NULL);
    av_channel_layout_uninit(&in_layout);
    if (rc >= 0) rc = swr_init(d->swr);
    if (rc < 0) return av_failure(d, rc, "cannot set up resampling");
    return FLUID_OK;
}

/* Keeps samples in [-1, 1]: resampling rings past full scale on sharp edges, and float sources
 * may hold anything (NaN and infinities become silence). */
static void clamp_samples(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!(x[i] >= -1.0f && x[i] <= 1.0f)) x[i] = isnan(x[i]) ? 0.0f : x[i] > 0 ? 1.0f : -1.0f;
    }
}

/* Resamples a frame (or flushes the resampler when frame is NULL) into the output. */
static fluid_status convert(decoder *d, const AVFrame *frame) {
    int in_samples = frame ? frame->nb_samples : 0;
    int room = swr_get_out_samples(d->swr, in_samples);
    if (room < 0) return av_failure(d, room, "resampling");
    if (!pcm_reserve(&d->out, (size_t)room + 1, d->max_samples))
        return fl_set_error(d->err, FLUID_ERR_NOMEM, "audio: out of memory");
    uint8_t *dst = (uint8_t *)(d->out.data + d->out.n);
    int got = swr_convert(d->swr, &dst, room + 1,
                          frame ? (const uint8_t **)frame->extended_data : NULL, in_samples);
    if (got < 0) return av_failure(d, got, "resampling");
    clamp_samples(d->out.data + d->out.n, (size_t)got);
    d->out.n += (size_t)got;
    if (d->max_samples > 0 && d->out.n > d->max_samples)
        return fl_set_error(d->err, FLUID_ERR_LIMIT,
                            "audio: longer than the limit of %zu samples (%.1f s at %d Hz)",
                            d->max_samples, (double)d->max_samples / FLUID_WHISPER_SAMPLE_RATE,
                            FLUID_WHISPER_SAMPLE_RATE);
    return FLUID_OK;
}

/* Takes every frame the decoder has ready. */
static fluid_status drain_decoder(decoder *d) {
    for (;;) {
        int rc = avcodec_receive_frame(d->codec, d->frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return FLUID_OK;
        if (rc < 0) return FLUID_OK; /* a damaged frame: skip it, as ffmpeg does */
        if (!d->swr) {
            /* the decoder's real layout/format are known after its first frame */
            fluid_status st = open_resampler(d);
            if (st != FLUID_OK) return st;
        }
        fluid_status st = convert(d, d->frame);
        av_frame_unref(d->frame);
        if (st != FLUID_OK) return st;
    }
}

static fluid_status decode_all(decoder *d) {
    d->pkt = av_packet_alloc();
    d->frame = av_frame_alloc();
    if (!d->pkt || !d->frame) return fl_set_error(d->err, FLUID_ERR_NOMEM, "audio: out of memory");
    fluid_status st = FLUID_OK;
    while (st == FLUID_OK && av_read_frame(d->fmt, d->pkt) >= 0) {
        if (d->pkt->stream_index == d->stream && avcodec_send_packet(d->codec, d->pkt) >= 0)
            st = drain_decoder(d);
        av_packet_unref(d->pkt);
    }
    if (st == FLUID_OK && avcodec_send_packet(d->codec, NULL) >= 0) st = drain_decoder(d);
    if (st == FLUID_OK && d->swr) st = convert(d, NULL);
    if (st == FLUID_OK && d->out.n == 0)
        st = fl_set_error(d->err, FLUID_ERR_FORMAT, "audio: the input holds no decodable audio");
    return st;
}

static void decoder_close(decoder *d) {
    av_packet_free(&d->pkt);
    av_frame_free(&d->frame);
    swr_free(&d->swr);
    avcodec_free_context(&d->codec);
    avformat_close_input(&d->fmt);
    if (d->avio) av_freep(&d->avio->buffer);
    avio_context_free(&d->avio);
}

/* libav calls this from any decoding thread, a line (or part of one) at a time. */
static void log_libav_message(void *avcl, int level, const char *fmt, va_list args) {
    if (level > AV_LOG_VERBOSE || fl_log_get_level() > FL_LOG_DEBUG) return;
    char line[512];
    int print_prefix = 1;
    av_log_format_line2(avcl, level, fmt, args, line, sizeof line, &print_prefix);
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    if (len > 0) fl_log(FL_LOG_DEBUG, "libav: %s", line);
}

void fluid_audio_log_to_fluid(void) {
    av_log_set_callback(log_libav_message);
}

fluid_status fluid_audio_decode_max(const void *bytes, size_t n_bytes, size_t max_samples,
                                    float **pcm, size_t *n_samples, fluid_error *err) {
    *pcm = NULL;
    *n_samples = 0;
    if (bytes == NULL || n_bytes == 0)
        return fl_set_error(err, FLUID_ERR_FORMAT, "audio: the input is empty");
    mem_source src = {bytes, n_bytes, 0};
    decoder d = {.max_samples = max_samples, .err = err};
    fluid_status st = open_input(&d, &src);
    if (st == FLUID_OK) st = decode_all(&d);
    decoder_close(&d);
    if (st != FLUID_OK) {
        free(d.out.data);
        return st;
    }
    *pcm = d.out.data;
    *n_samples = d.out.n;
    return FLUID_OK;
}

fluid_status fluid_audio_decode(const void *bytes, size_t n_bytes, float **pcm, size_t *n_samples,
                                fluid_error *err) {
    return fluid_audio_decode_max(bytes, n_bytes, 0, pcm, n_samples, err);
}

fluid_status fluid_audio_decode_file(const char *path, float **pcm, size_t *n_samples,
                                     fluid_error *err) {
    *pcm = NULL;
    *n_samples = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fl_set_error(err, FLUID_ERR_IO, "cannot open %s", path);
    uint8_t *data = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            uint8_t *p = realloc(data, cap);
            if (!p) {
                free(data);
                fclose(f);
                return fl_set_error(err, FLUID_ERR_NOMEM, "audio: out of memory");
            }
            data = p;
        }
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    bool failed = ferror(f);
    fclose(f);
    fluid_status st = failed ? fl_set_error(err, FLUID_ERR_IO, "cannot read %s", path)
                             : fluid_audio_decode(data, n, pcm, n_samples, err);
    free(data);
    return st;
}
