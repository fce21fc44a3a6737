/* Transcript formats shared by the audio endpoints (exposed for tests). */
#ifndef FLUID_API_AUDIO_H
#define FLUID_API_AUDIO_H

#include <jansson.h>
#include <stdbool.h>

#include "util/buf.h"

/* Writes seconds as HH:MM:SS,mmm (sep ',': SubRip) or HH:MM:SS.mmm (sep '.': WebVTT). */
void api_subtitle_time(double seconds, char sep, char *out, size_t size);

/* Renders segments (a JSON array of {start, end, text}) as SubRip or WebVTT. */
bool api_subtitles(json_t *segments, bool vtt, fl_buf *out);

#endif
