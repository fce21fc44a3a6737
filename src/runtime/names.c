#include "runtime/names.h"

#include "runtime/common.h"

#include <stdio.h>
#include <string.h>

#define GGUF_EXT ".gguf"
#define GGML_PREFIX "ggml-"
#define BIN_EXT ".bin"

static rt_status bad_name(rt_error *err, const char *name, const char *why) {
    return rt_set_field_error(err, "invalid_value", "model", "invalid model name '%.200s': %s",
                              name, why);
}

static bool has_suffix(const char *s, size_t len, const char *suffix) {
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

bool rt_name_component_ok(const char *s, size_t len) {
    if (len == 0 || len > 255 || s[0] == '.') return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\') return false;
    }
    return true;
}

/* Every '/'-separated component of s[0..len) is safe; counts them. */
static bool path_ok(const char *s, size_t len, int *n_components) {
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '/') {
            if (!rt_name_component_ok(s + start, i - start)) return false;
            n++;
            start = i + 1;
        }
    }
    *n_components = n;
    return true;
}

bool rt_name_is_temporary(const char *file) {
    size_t len = strlen(file);
    return file[0] == '.' || has_suffix(file, len, ".part") || has_suffix(file, len, ".tmp") ||
           has_suffix(file, len, "~") || strstr(file, ".part.") != NULL;
}

static rt_status parse_whisper(const char *name, size_t len, rt_name *out, rt_error *err) {
    const char *short_name = name + strlen(RT_WHISPER_PREFIX);
    size_t short_len = len - strlen(RT_WHISPER_PREFIX);
    if (has_suffix(short_name, short_len, BIN_EXT)) short_len -= strlen(BIN_EXT);
    if (!rt_name_component_ok(short_name, short_len))
        return bad_name(err, name, "expected whisper-<name>, e.g. whisper-base.en");
    out->type = RT_MODEL_WHISPER;
    snprintf(out->id, sizeof out->id, "%s%.*s", RT_WHISPER_PREFIX, (int)short_len, short_name);
    snprintf(out->rel_path, sizeof out->rel_path, "whisper/" GGML_PREFIX "%.*s" BIN_EXT,
             (int)short_len, short_name);
    out->on_hub = true;
    snprintf(out->hub_repo, sizeof out->hub_repo, "%s", RT_WHISPER_HUB_REPO);
    snprintf(out->hub_file, sizeof out->hub_file, GGML_PREFIX "%.*s" BIN_EXT, (int)short_len,
             short_name);
    return RT_OK;
}

static rt_status parse_llm(const char *name, size_t len, rt_name *out, rt_error *err) {
    if (has_suffix(name, len, GGUF_EXT)) len -= strlen(GGUF_EXT);
    int n_components = 0;
    if (!path_ok(name, len, &n_components))
        return bad_name(err, name,
                        "use a path under llm/ without '.', '..', hidden or empty parts, "
                        "or owner/repo/file.gguf");
    out->type = RT_MODEL_LLM;
    snprintf(out->id, sizeof out->id, "%.*s", (int)len, name);
    snprintf(out->rel_path, sizeof out->rel_path, "llm/%.*s" GGUF_EXT, (int)len, name);
    /* A Hub file needs owner/repo/file: the repository is always the first two parts. */
    out->on_hub = n_components >= 3;
    if (out->on_hub) {
        const char *slash = strchr(name, '/');
        const char *second = strchr(slash + 1, '/');
        snprintf(out->hub_repo, sizeof out->hub_repo, "%.*s", (int)(second - name), name);
        snprintf(out->hub_file, sizeof out->hub_file, "%.*s" GGUF_EXT,
                 (int)(len - (size_t)(second + 1 - name)), second + 1);
    }
    return RT_OK;
}

rt_status rt_name_parse(const char *name, rt_name *out, rt_error *err) {
    memset(out, 0, sizeof *out);
    if (name == NULL || name[0] == '\0') return bad_name(err, "", "empty");
    size_t len = strlen(name);
    /* Leave room for "llm/", ".gguf" and the Hub's longest paths. */
    if (len > RT_ID_MAX - 16) return bad_name(err, name, "too long");
    if (strncmp(name, RT_WHISPER_PREFIX, strlen(RT_WHISPER_PREFIX)) == 0)
        return parse_whisper(name, len, out, err);
    return parse_llm(name, len, out, err);
}

bool rt_name_from_llm_file(const char *rel, char id[RT_ID_MAX]) {
    size_t len = strlen(rel);
    int n_components = 0;
    if (!has_suffix(rel, len, GGUF_EXT) || len >= RT_ID_MAX - 16) return false;
    len -= strlen(GGUF_EXT);
    if (len == 0 || !path_ok(rel, len, &n_components)) return false;
    /* A name starting with "whisper-" would parse as a Whisper model: not addressable. */
    if (strncmp(rel, RT_WHISPER_PREFIX, strlen(RT_WHISPER_PREFIX)) == 0) return false;
    snprintf(id, RT_ID_MAX, "%.*s", (int)len, rel);
    return true;
}

bool rt_name_from_whisper_file(const char *file, char id[RT_ID_MAX]) {
    size_t len = strlen(file);
    if (!has_suffix(file, len, BIN_EXT) || rt_name_is_temporary(file) || len >= RT_ID_MAX - 16)
        return false;
    len -= strlen(BIN_EXT);
    const char *short_name = file;
    if (strncmp(file, GGML_PREFIX, strlen(GGML_PREFIX)) == 0) {
        short_name += strlen(GGML_PREFIX);
        len -= strlen(GGML_PREFIX);
    }
    if (!rt_name_component_ok(short_name, len)) return false;
    snprintf(id, RT_ID_MAX, RT_WHISPER_PREFIX "%.*s", (int)len, short_name);
    return true;
}
