/* Chat formatting per model family (see chat_template.h and fluid_chat_format in fluid.h). */
#include "engine/chat_template.h"

#include "engine/vocab.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a growing string -------------------------------------------------------------------- */

typedef struct sbuf {
    char *data;
    size_t len, cap;
    bool failed;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) {
    sb_add(b, s, strlen(s));
}

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Adds s[0..n) without leading and trailing whitespace (Jinja's `trim`). */
static void sb_trimmed(sbuf *b, const char *s, size_t n) {
    while (n > 0 && is_space(*s)) s++, n--;
    while (n > 0 && is_space(s[n - 1])) n--;
    sb_add(b, s, n);
}

/* ---- messages ---------------------------------------------------------------------------- */

typedef enum { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT } role;

static const char *role_name(role r) {
    return r == ROLE_SYSTEM ? "system" : r == ROLE_USER ? "user" : "assistant";
}

/* The messages with checked roles; system messages are joined so the families that have no
 * system turn can fold them into a user turn. */
typedef struct chat {
    const fluid_chat_message *msg;
    role *roles;
    size_t n;
    sbuf system;       /* every system message's content, joined by blank lines */
    size_t last_user;  /* index of the last user message, n when none */
    size_t first_user; /* index of the first user message, n when none */
} chat;

static fluid_status chat_init(chat *c, const fluid_chat_message *msg, size_t n, fluid_error *err) {
    *c = (chat){.msg = msg, .n = n, .last_user = n, .first_user = n};
    if (n > 0 && msg == NULL) return fl_set_error(err, FLUID_ERR_ARGUMENT, "messages is NULL");
    c->roles = malloc((n ? n : 1) * sizeof *c->roles);
    if (c->roles == NULL) return fl_set_error(err, FLUID_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *r = msg[i].role;
        if (r == NULL || msg[i].content == NULL)
            return fl_set_error(err, FLUID_ERR_ARGUMENT, "message %zu has no role or content", i);
        if (strcmp(r, "system") == 0 || strcmp(r, "developer") == 0) {
            c->roles[i] = ROLE_SYSTEM;
            if (c->system.len > 0) sb_puts(&c->system, "\n\n");
            sb_puts(&c->system, msg[i].content);
        } else if (strcmp(r, "user") == 0) {
            c->roles[i] = ROLE_USER;
            if (c->first_user == n) c->first_user = i;
            c->last_user = i;
        } else if (strcmp(r, "assistant") == 0) {
            c->roles[i] = ROLE_ASSISTANT;
        } else {
            return fl_set_error(err, FLUID_ERR_ARGUMENT,
                                "message %zu: role '%s' is not supported (system, developer, "
                                "user, assistant)",
                                i, r);
        }
    }
    if (c->system.failed) return fl_set_error(err, FLUID_ERR_NOMEM, "out of memory");
    return FLUID_OK;
}

static void chat_free(chat *c) {
    free(c->roles);
    free(c->system.data);
}

static const char *content(const chat *c, size_t i) {
    return c->msg[i].content;
}

/* The joined system text to put before user message i, when the family folds it there. */
static bool folds_system_into(const chat *c, size_t i, size_t target) {
    return c->system.len > 0 && i == target;
}

/* ---- ChatML (Qwen, SmolLM, fallback) ----------------------------------------------------- */

/* Qwen 3 keeps only the answer of past assistant turns (the text after the last </think>) and
 * re-wraps the reasoning of turns after the last user message. */
static void chatml_assistant_qwen3(sbuf *b, const chat *c, size_t i) {
    const char *text = content(c, i);
    const char *close = strstr(text, "</think>");
    const char *answer = text;
    const char *reason = "";
    size_t reason_len = 0;
    if (close != NULL) {
        const char *last_close = close;
        for (const char *p; (p = strstr(last_close + 1, "</think>")) != NULL;) last_close = p;
        answer = last_close + strlen("</think>");
        const char *start = text;
        for (const char *p = text; (p = strstr(p, "<think>")) != NULL && p < close; p++)
            start = p + strlen("<think>");
        reason = start;
        reason_len = (size_t)(close - start);
    }
    bool after_query = c->last_user < c->n && i > c->last_user;
    bool wrap = after_query && (i + 1 == c->n || reason_len > 0);
    if (close != NULL || wrap)
        while (*answer == '\n') answer++;
    if (wrap) {
        while (reason_len > 0 && *reason == '\n') reason++, reason_len--;
        while (reason_len > 0 && reason[reason_len - 1] == '\n') reason_len--;
        sb_puts(b, "<think>\n");
        sb_add(b, reason, reason_len);
        sb_puts(b, "\n</think>\n\n");
    }
    sb_puts(b, answer);
}

/* Phi-4 writes its ChatML turns with <|im_sep|> after the role and nothing between turns. */
static const char *chatml_role_end(const fl_chat_style *st) {
    return st->variant == FL_CHAT_PHI4 ? "<|im_sep|>" : "\n";
}

static const char *chatml_turn_end(const fl_chat_style *st) {
    return st->variant == FL_CHAT_PHI4 ? "<|im_end|>" : "<|im_end|>\n";
}

static void render_chatml(sbuf *b, const fl_chat_style *st, const chat *c) {
    if (st->default_system[0] && (c->n == 0 || c->roles[0] != ROLE_SYSTEM)) {
        sb_puts(b, "<|im_start|>system");
        sb_puts(b, chatml_role_end(st));
        sb_puts(b, st->default_system);
        sb_puts(b, chatml_turn_end(st));
    }
    for (size_t i = 0; i < c->n; i++) {
        sb_puts(b, "<|im_start|>");
        sb_puts(b, role_name(c->roles[i]));
        sb_puts(b, chatml_role_end(st));
        if (c->roles[i] == ROLE_ASSISTANT && st->variant == FL_CHAT_QWEN3_THINK)
            chatml_assistant_qwen3(b, c, i);
        else
            sb_puts(b, content(c, i));
        sb_puts(b, chatml_turn_end(st));
    }
}

/* ---- Llama 3 ----------------------------------------------------------------------------- */

static void llama3_turn(sbuf *b, const char *role_text, const char *text, const char *prefix) {
    sb_puts(b, "<|start_header_id|>");
    sb_puts(b, role_text);
    sb_puts(b, "<|end_header_id|>\n\n");
    if (prefix) sb_puts(b, prefix);
    sb_trimmed(b, text, strlen(text));
    sb_puts(b, "<|eot_id|>");
}

static void render_llama3(sbuf *b, const fl_chat_style *st, const chat *c) {
    size_t first = 0;
    if (st->variant == FL_CHAT_LLAMA31) {
        /* Llama 3.1+ always opens with a system turn that carries the dates; a leading system
         * message is trimmed into it. */
        char header[96];
        snprintf(header, sizeof header, "Cutting Knowledge Date: December 2023\nToday Date: %s\n\n",
                 st->date);
        bool has_system = c->n > 0 && c->roles[0] == ROLE_SYSTEM;
        llama3_turn(b, "system", has_system ? content(c, 0) : "", header);
        first = has_system ? 1 : 0;
    }
    for (size_t i = first; i < c->n; i++)
        llama3_turn(b, role_name(c->roles[i]), content(c, i), NULL);
}

/* ---- Phi-3 ------------------------------------------------------------------------------- */

static void render_phi3(sbuf *b, const fl_chat_style *st, const chat *c) {
    if (st->variant == FL_CHAT_PLAIN) {
        /* The original Phi-3 template has no system turn (we fold system text into the first
         * user turn instead of dropping it) and opens the assistant turn after every user turn. */
        for (size_t i = 0; i < c->n; i++) {
            if (c->roles[i] == ROLE_USER) {
                sb_puts(b, "<|user|>\n");
                if (folds_system_into(c, i, c->first_user)) {
                    sb_add(b, c->system.data, c->system.len);
                    sb_puts(b, "\n\n");
                }
                sb_puts(b, content(c, i));
                sb_puts(b, "<|end|>\n<|assistant|>\n");
            } else if (c->roles[i] == ROLE_ASSISTANT) {
                sb_puts(b, content(c, i));
                sb_puts(b, "<|end|>\n");
            }
        }
        return;
    }
    const char *sep = st->variant == FL_CHAT_PHI4_MINI ? "" : "\n";
    for (size_t i = 0; i < c->n; i++) {
        if (c->roles[i] == ROLE_SYSTEM && content(c, i)[0] == '\0') continue;
        sb_puts(b, "<|");
        sb_puts(b, role_name(c->roles[i]));
        sb_puts(b, "|>");
        sb_puts(b, sep);
        sb_puts(b, content(c, i));
        sb_puts(b, "<|end|>");
        sb_puts(b, sep);
    }
}

/* ---- Mistral ----------------------------------------------------------------------------- */

typedef struct mistral_spec {
    const char *inst_open, *inst_close, *answer_prefix;
    bool trim_answer;
    bool system_in_last_user; /* else the first user turn */
} mistral_spec;

static mistral_spec mistral_spec_for(fl_chat_variant v) {
    switch (v) {
    case FL_CHAT_MISTRAL_V1:
        return (mistral_spec){" [INST] ", " [/INST]", " ", false, false};
    case FL_CHAT_MISTRAL_V3:
        return (mistral_spec){"[INST] ", "[/INST]", " ", true, true};
    default: /* tekken and v7 */
        return (mistral_spec){"[INST]", "[/INST]", "", false, true};
    }
}

static void render_mistral(sbuf *b, const fl_chat_style *st, const chat *c, const char *eos) {
    mistral_spec spec = mistral_spec_for(st->variant);
    bool system_tag = st->variant == FL_CHAT_MISTRAL_V7;
    size_t fold_at = system_tag ? c->n : spec.system_in_last_user ? c->last_user : c->first_user;
    for (size_t i = 0; i < c->n; i++) {
        const char *text = content(c, i);
        if (c->roles[i] == ROLE_SYSTEM) {
            if (!system_tag) continue;
            sb_puts(b, "[SYSTEM_PROMPT]");
            sb_puts(b, text);
            sb_puts(b, "[/SYSTEM_PROMPT]");
        } else if (c->roles[i] == ROLE_USER) {
            sb_puts(b, spec.inst_open);
            if (folds_system_into(c, i, fold_at)) {
                sb_add(b, c->system.data, c->system.len);
                sb_puts(b, "\n\n");
            }
            sb_puts(b, text);
            sb_puts(b, spec.inst_close);
        } else {
            sb_puts(b, spec.answer_prefix);
            if (spec.trim_answer)
                sb_trimmed(b, text, strlen(text));
            else
                sb_puts(b, text);
            sb_puts(b, eos);
        }
    }
}

/* ---- Gemma ------------------------------------------------------------------------------- */

/* Gemma 1-3: no system turn; system text opens the first user turn (untrimmed, then a blank
 * line), every content is trimmed, the assistant is called "model". */
static void render_gemma(sbuf *b, const chat *c) {
    for (size_t i = 0; i < c->n; i++) {
        if (c->roles[i] == ROLE_SYSTEM) continue;
        bool user = c->roles[i] == ROLE_USER;
        sb_puts(b, user ? "<start_of_turn>user\n" : "<start_of_turn>model\n");
        if (folds_system_into(c, i, c->first_user)) {
            sb_add(b, c->system.data, c->system.len);
            sb_puts(b, "\n\n");
        }
        sb_trimmed(b, content(c, i), strlen(content(c, i)));
        sb_puts(b, "<end_of_turn>\n");
    }
}

/* Gemma 4 drops thought channels ("<|channel>...<channel|>") from past model turns. */
static void gemma4_answer(sbuf *b, const char *text) {
    sbuf kept = {0};
    for (;;) {
        const char *end = strstr(text, "<channel|>");
        size_t part_len = end ? (size_t)(end - text) : strlen(text);
        const char *open = memmem(text, part_len, "<|channel>", strlen("<|channel>"));
        sb_add(&kept, text, open ? (size_t)(open - text) : part_len);
        if (end == NULL) break;
        text = end + strlen("<channel|>");
    }
    if (kept.failed)
        b->failed = true;
    else
        sb_trimmed(b, kept.data ? kept.data : "", kept.len);
    free(kept.data);
}

static void render_gemma4(sbuf *b, const chat *c) {
    for (size_t i = 0; i < c->n; i++) {
        sb_puts(b, "<|turn>");
        sb_puts(b, c->roles[i] == ROLE_ASSISTANT ? "model" : role_name(c->roles[i]));
        sb_puts(b, "\n");
        if (c->roles[i] == ROLE_ASSISTANT)
            gemma4_answer(b, content(c, i));
        else
            sb_trimmed(b, content(c, i), strlen(content(c, i)));
        sb_puts(b, "<turn|>\n");
    }
}

/* ---- rendering --------------------------------------------------------------------------- */

static const char *generation_prompt(const fl_chat_style *st) {
    switch (st->family) {
    case FL_CHAT_CHATML:
        return st->variant == FL_CHAT_PHI4 ? "<|im_start|>assistant<|im_sep|>"
                                           : "<|im_start|>assistant\n";
    case FL_CHAT_LLAMA3:
        return "<|start_header_id|>assistant<|end_header_id|>\n\n";
    case FL_CHAT_PHI3:
        return st->variant == FL_CHAT_PLAIN       ? "" /* already opened after the user turn */
               : st->variant == FL_CHAT_PHI4_MINI ? "<|assistant|>"
                                                  : "<|assistant|>\n";
    case FL_CHAT_MISTRAL:
        return "";
    case FL_CHAT_GEMMA:
        return "<start_of_turn>model\n";
    case FL_CHAT_GEMMA4:
        return "<|turn>model\n<|channel>thought\n<channel|>";
    }
    return "";
}

char *fl_chat_render(const fl_chat_style *st, const char *bos, const char *eos,
                     const fluid_chat_message *messages, size_t n, bool add_generation_prompt,
                     fluid_error *err) {
    chat c;
    if (chat_init(&c, messages, n, err) != FLUID_OK) {
        chat_free(&c);
        return NULL;
    }
    sbuf b = {0};
    if (bos) sb_puts(&b, bos);
    switch (st->family) {
    case FL_CHAT_CHATML:
        render_chatml(&b, st, &c);
        break;
    case FL_CHAT_LLAMA3:
        render_llama3(&b, st, &c);
        break;
    case FL_CHAT_PHI3:
        render_phi3(&b, st, &c);
        break;
    case FL_CHAT_MISTRAL:
        render_mistral(&b, st, &c, eos ? eos : "</s>");
        break;
    case FL_CHAT_GEMMA:
        render_gemma(&b, &c);
        break;
    case FL_CHAT_GEMMA4:
        render_gemma4(&b, &c);
        break;
    }
    if (add_generation_prompt)
        sb_puts(&b, generation_prompt(st));
    else if (st->family == FL_CHAT_PHI3 && st->variant != FL_CHAT_PLAIN)
        sb_puts(&b, eos ? eos : "<|endoftext|>");
    sb_add(&b, "", 0); /* an empty conversation still gives a string */
    chat_free(&c);
    if (b.failed) {
        free(b.data);
        fl_set_error(err, FLUID_ERR_NOMEM, "chat template: out of memory");
        return NULL;
    }
    return b.data;
}

/* ---- detection --------------------------------------------------------------------------- */

static bool has(const char *tmpl, const char *marker) {
    return strstr(tmpl, marker) != NULL;
}

/* The system prompt a ChatML template writes when the conversation has none: the first
 * "<|im_start|>system" + newline (real or the escape \n) followed by plain text up to
 * <|im_end|>. Text with quotes or braces is template code, not a literal. */
static void find_default_system(const char *tmpl, char *out, size_t size) {
    out[0] = '\0';
    const char *tag = "<|im_start|>system";
    for (const char *p = strstr(tmpl, tag); p != NULL; p = strstr(p + 1, tag)) {
        const char *text = p + strlen(tag);
        if (*text == '\n')
            text++;
        else if (text[0] == '\\' && text[1] == 'n')
            text += 2;
        else
            continue;
        const char *end = strstr(text, "<|im_end|>");
        if (end == NULL || end == text) continue;
        size_t len = (size_t)(end - text);
        if (len >= size || strcspn(text, "'\"{}+\\") < len) continue;
        memcpy(out, text, len);
        out[len] = '\0';
        return;
    }
}

/* Llama 3.1 prints a fixed default date; 3.2+ print today's (strftime_now "%d %b %Y"). */
static void find_date(const char *tmpl, char *out, size_t size) {
    snprintf(out, size, "26 Jul 2024");
    if (has(tmpl, "strftime_now")) {
        time_t now = time(NULL);
        struct tm tm;
        if (localtime_r(&now, &tm) != NULL) strftime(out, size, "%d %b %Y", &tm);
        return;
    }
    const char *key = "date_string = \"";
    const char *p = strstr(tmpl, key);
    if (p == NULL) return;
    p += strlen(key);
    size_t len = strcspn(p, "\"");
    if (p[len] == '"' && len > 0 && len < size) snprintf(out, size, "%.*s", (int)len, p);
}

static fl_chat_variant mistral_variant(const char *tmpl) {
    if (has(tmpl, "[SYSTEM_PROMPT]")) return FL_CHAT_MISTRAL_V7;
    if (has(tmpl, " [/INST]")) return FL_CHAT_MISTRAL_V1;
    if (has(tmpl, "[INST] ")) return FL_CHAT_MISTRAL_V3;
    return FL_CHAT_MISTRAL_TEKKEN;
}

void fl_chat_detect(const char *tmpl, fl_chat_style *st) {
    *st = (fl_chat_style){.family = FL_CHAT_CHATML};
    if (tmpl == NULL) return;
    bool bos = has(tmpl, "bos_token");
    if (has(tmpl, "<|turn>")) {
        *st = (fl_chat_style){.family = FL_CHAT_GEMMA4, .wants_bos = bos};
    } else if (has(tmpl, "<start_of_turn>")) {
        *st = (fl_chat_style){.family = FL_CHAT_GEMMA, .wants_bos = bos};
    } else if (has(tmpl, "<|start_header_id|>")) {
        *st = (fl_chat_style){.family = FL_CHAT_LLAMA3, .wants_bos = bos};
        if (has(tmpl, "Cutting Knowledge Date")) {
            st->variant = FL_CHAT_LLAMA31;
            find_date(tmpl, st->date, sizeof st->date);
        }
    } else if (has(tmpl, "<|im_start|>")) {
        if (has(tmpl, "<|im_sep|>"))
            st->variant = FL_CHAT_PHI4;
        else if (has(tmpl, "<think>"))
            st->variant = FL_CHAT_QWEN3_THINK;
        find_default_system(tmpl, st->default_system, sizeof st->default_system);
    } else if (has(tmpl, "[INST]") || has(tmpl, "[SYSTEM_PROMPT]")) {
        *st = (fl_chat_style){
            .family = FL_CHAT_MISTRAL, .variant = mistral_variant(tmpl), .wants_bos = bos};
    } else if (has(tmpl, "<|end|>") &&
               (has(tmpl, "<|user|>") || has(tmpl, "'<|' + message['role'] + '|>'"))) {
        *st = (fl_chat_style){.family = FL_CHAT_PHI3, .wants_bos = bos};
        if (!has(tmpl, "<|user|>"))
            st->variant = FL_CHAT_PHI4_MINI;
        else if (has(tmpl, "<|system|>"))
            st->variant = FL_CHAT_PHI3_SYSTEM;
    }
}

const char *fl_chat_family_name(fl_chat_family family) {
    static const char *const names[] = {"chatml", "llama3", "phi3", "mistral", "gemma", "gemma4"};
    return (size_t)family < sizeof names / sizeof names[0] ? names[family] : "unknown";
}

/* ---- public entry ------------------------------------------------------------------------ */

/* Whether tokenizing with add_special puts BOS first by itself (the vocabulary's add-BOS). */
static bool vocab_adds_bos(const fluid_vocab *vocab, int32_t bos) {
    int32_t *tokens = NULL;
    size_t n = 0;
    if (fluid_tokenize(vocab, "", 0, true, false, &tokens, &n, NULL) != FLUID_OK) return false;
    bool adds = n > 0 && tokens[0] == bos;
    free(tokens);
    return adds;
}

char *fluid_chat_format(const fluid_vocab *vocab, const fluid_chat_message *messages, size_t n,
                        bool add_generation_prompt, fluid_error *err) {
    if (vocab == NULL) {
        fl_set_error(err, FLUID_ERR_ARGUMENT, "chat template: vocab is NULL");
        return NULL;
    }
    fl_chat_style st;
    fl_chat_detect(fl_vocab_chat_template(vocab), &st);
    const char *bos = NULL;
    int32_t bos_id = fluid_token_bos(vocab);
    if (st.wants_bos && bos_id >= 0 && !vocab_adds_bos(vocab, bos_id))
        bos = fl_vocab_token_text(vocab, bos_id);
    int32_t eos_id = fluid_token_eos(vocab);
    const char *eos = eos_id >= 0 ? fl_vocab_token_text(vocab, eos_id) : NULL;
    return fl_chat_render(&st, bos, eos, messages, n, add_generation_prompt, err);
}
