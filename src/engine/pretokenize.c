/* BPE pre-tokenizers: the word-splitting regexes each model family uses before merging,
 * chosen by tokenizer.ggml.pre, run with PCRE2 (UTF + Unicode properties, JIT when available).
 * A family may chain several regexes: each one splits every piece the previous ones left into
 * its matches and the text between them, and a piece never looks beyond its own ends. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "engine/vocab_impl.h"
#include "util/error.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REGEXES 6

/* Contractions, case-insensitive ASCII only (as the models were trained). */
#define CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

static const char GPT2_WORDS[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static const char LLAMA3_WORDS[] =
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                 "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char QWEN2_WORDS[] =
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                 "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Qwen 3.5: combining marks stay with their letters. */
static const char QWEN35_WORDS[] = CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* Upper-case runs and lower-case runs are separate words (GPT-4o, Tekken). */
#define UPPER "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]"
#define LOWER "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]"
static const char TEKKEN_WORDS[] =
    "[^\\r\\n\\p{L}\\p{N}]?" UPPER "*" LOWER "+|[^\\r\\n\\p{L}\\p{N}]?" UPPER "+" LOWER
    "*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char GPT4O_WORDS[] =
    "[^\\r\\n\\p{L}\\p{N}]?" UPPER "*" LOWER "+" CONTRACTIONS "?|[^\\r\\n\\p{L}\\p{N}]?" UPPER
    "+" LOWER "*" CONTRACTIONS "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char SEED_CODER_WORDS[] =
    CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}\\r\\n]+"
                 "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char BAILING_WORDS[] =
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";

/* Cased letters as DeepSeek LLM lists them. */
static const char DEEPSEEK_LETTERS[] =
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}"
    "\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}"
    "\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}"
    "\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}"
    "\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}"
    "\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}"
    "\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}"
    "\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}"
    "\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}"
    "\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}"
    "\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}"
    "\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}"
    "\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}"
    "\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}"
    "\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+";

static const char DEEPSEEK_CJK[] = "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+";

static const char PORO_WORDS[] =
    " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+";

typedef struct family {
    const char *const *names; /* tokenizer.ggml.pre values */
    const char *regexes[MAX_REGEXES];
    bool ignore_merges;
    bool add_bos;
} family;

#define NAMES(...)                                                                                 \
    (const char *const[]) {                                                                        \
        __VA_ARGS__, NULL                                                                          \
    }

/* FAMILY(names, whole words first, BOS by default, regexes...) */
#define FAMILY(names, ignore_merges, add_bos, ...)                                                 \
    { names, {__VA_ARGS__}, ignore_merges, add_bos }

static const family FAMILIES[] = {
    FAMILY(NAMES("default"), false, false, "[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2_WORDS, "\\p{N}+",
           "[0-9][0-9][0-9]"),
    FAMILY(NAMES("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
                 "lfm2", "jina-v5-nano"),
           true, true, LLAMA3_WORDS),
    FAMILY(NAMES("dbrx", "smaug-bpe", "glm4", "chatglm-bpe"), false, false, LLAMA3_WORDS),
    FAMILY(
        NAMES("deepseek-llm"), false, false, "[\\r\\n]", DEEPSEEK_LETTERS,
        "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
        "\\s+$", DEEPSEEK_CJK, "\\p{N}+"),
    FAMILY(NAMES("deepseek-coder"), false, false, "[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+",
           DEEPSEEK_CJK, "\\p{N}"),
    FAMILY(NAMES("deepseek-v3", "hunyuan-dense", "joyai-llm"), false, false, "\\p{N}{1,3}",
           "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
           "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?"
           "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
    FAMILY(NAMES("falcon"), false, false, "[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2_WORDS,
           "[0-9][0-9][0-9]"),
    FAMILY(NAMES("starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b",
                 "mellum2"),
           false, false, "\\p{N}", GPT2_WORDS),
    FAMILY(NAMES("gpt-2", "mpt", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es",
                 "jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "jina-v1-en", "jina-v2-code",
                 "roberta-bpe", "olmo", "jais", "trillion", "granite-docling", "exaone4"),
           false, false, GPT2_WORDS),
    FAMILY(NAMES("qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "hunyuan",
                 "solar-open", "megrez", "grok-2"),
           false, false, QWEN2_WORDS),
    FAMILY(NAMES("qwen35"), false, false, QWEN35_WORDS),
    FAMILY(NAMES("tekken"), true, true, TEKKEN_WORDS),
    FAMILY(NAMES("gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"), false, false, GPT4O_WORDS),
    FAMILY(NAMES("seed-coder"), false, false, SEED_CODER_WORDS),
    FAMILY(NAMES("bailingmoe", "bailingmoe2", "llada-moe"), false, false, BAILING_WORDS),
    FAMILY(NAMES("poro-chat", "bloom", "gpt3-finnish"), false, false, PORO_WORDS),
    FAMILY(NAMES("viking"), false, false, PORO_WORDS, "\\p{N}"),
    /* SentencePiece-style BPE: only runs of newlines are set apart */
    FAMILY(NAMES("gemma4"), false, false, "[^\\n]+|[\\n]+"),
};

struct fl_pretok {
    const family *fam;
    pcre2_code *code[MAX_REGEXES];
    int n;
};

static const family *find_family(const char *pre, size_t len) {
    for (size_t f = 0; f < sizeof FAMILIES / sizeof FAMILIES[0]; f++)
        for (const char *const *name = FAMILIES[f].names; *name; name++)
            if (strlen(*name) == len && memcmp(*name, pre, len) == 0) return &FAMILIES[f];
    return NULL;
}

fl_pretok *fl_pretok_create(const char *pre, size_t pre_len, fluid_error *err) {
    const family *fam = find_family(pre, pre_len);
    if (!fam) {
        fl_set_error(err, FLUID_ERR_UNSUPPORTED,
                     "vocabulary: pre-tokenizer '%.*s' (tokenizer.ggml.pre) is not supported",
                     (int)(pre_len > 64 ? 64 : pre_len), pre);
        return NULL;
    }
    fl_pretok *p = calloc(1, sizeof *p);
    if (!p) {
        fl_set_error(err, FLUID_ERR_NOMEM, "out of memory");
        return NULL;
    }
    p->fam = fam;
    for (; p->n < MAX_REGEXES && fam->regexes[p->n]; p->n++) {
        int code;
        PCRE2_SIZE at;
        p->code[p->n] =
            pcre2_compile((PCRE2_SPTR)fam->regexes[p->n], PCRE2_ZERO_TERMINATED,
                          PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &code, &at, NULL);
        if (!p->code[p->n]) {
            PCRE2_UCHAR msg[120];
            pcre2_get_error_message(code, msg, sizeof msg);
            fl_set_error(err, FLUID_ERR_UNSUPPORTED, "pre-tokenizer regex %d: %s at %zu", p->n,
                         (const char *)msg, (size_t)at);
            fl_pretok_free(p);
            return NULL;
        }
        /* without JIT (unsupported CPU, no executable memory) the interpreter is used */
        pcre2_jit_compile(p->code[p->n], PCRE2_JIT_COMPLETE);
    }
    return p;
}

void fl_pretok_free(fl_pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) pcre2_code_free(p->code[i]);
    free(p);
}

void fl_pretok_flags(const fl_pretok *p, bool *ignore_merges, bool *add_bos) {
    *ignore_merges = p->fam->ignore_merges;
    *add_bos = p->fam->add_bos;
}

static bool spans_push(fl_spans *s, size_t off, size_t len) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        fl_span *v = realloc(s->v, sizeof *v * cap);
        if (!v) return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (fl_span){off, len};
    return true;
}

/* Finds the next non-empty match in subject[start..len); false when there is none (or the
 * matcher gave up, which leaves the rest as one piece). */
static bool next_match(const pcre2_code *code, pcre2_match_data *md, const char *subject,
                       size_t len, size_t start, size_t *mstart, size_t *mend) {
    uint32_t opts = PCRE2_NO_UTF_CHECK | PCRE2_NOTEMPTY;
    int rc = pcre2_match(code, (PCRE2_SPTR)subject, len, start, opts, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(code, (PCRE2_SPTR)subject, len, start, opts | PCRE2_NO_JIT, md, NULL);
    if (rc < 0) return false;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    *mstart = ov[0];
    *mend = ov[1];
    return *mend > *mstart && *mstart >= start && *mend <= len;
}

/* Splits every piece of `in` with one regex, appending the pieces to `out`. */
static bool split_pieces(const pcre2_code *code, pcre2_match_data *md, const char *text,
                         const fl_spans *in, fl_spans *out) {
    for (size_t i = 0; i < in->n; i++) {
        const char *subject = text + in->v[i].off;
        size_t len = in->v[i].len, pos = 0, ms, me;
        while (pos < len && next_match(code, md, subject, len, pos, &ms, &me)) {
            if (ms > pos && !spans_push(out, in->v[i].off + pos, ms - pos)) return false;
            if (!spans_push(out, in->v[i].off + ms, me - ms)) return false;
            pos = me;
        }
        if (pos < len && !spans_push(out, in->v[i].off + pos, len - pos)) return false;
    }
    return true;
}

bool fl_pretok_split(const fl_pretok *p, const char *text, size_t len, fl_spans *out) {
    if (len == 0) return true;
    fl_spans a = {0}, b = {0};
    bool ok = spans_push(&a, 0, len);
    for (int r = 0; ok && r < p->n; r++) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->code[r], NULL);
        b.n = 0;
        ok = md && split_pieces(p->code[r], md, text, &a, &b);
        pcre2_match_data_free(md);
        fl_spans t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; ok && i < a.n; i++) ok = spans_push(out, a.v[i].off, a.v[i].len);
    free(a.v);
    free(b.v);
    return ok;
}
