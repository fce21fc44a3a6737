/* Chat templates: the model family's prompt format, detected from tokenizer.chat_template.
 *
 * No Jinja engine: each family has a formatter written from its real template (what it prints
 * for system/user/assistant messages), and the template text is only searched for distinctive
 * markers, plus a few literals the formatters need (a default system prompt, a date). */
#ifndef FLUID_ENGINE_CHAT_TEMPLATE_H
#define FLUID_ENGINE_CHAT_TEMPLATE_H

#include "fluid/fluid.h"

typedef enum fl_chat_family {
    FL_CHAT_CHATML,  /* <|im_start|>role\n...<|im_end|>\n (Qwen 2/2.5/3, SmolLM, fallback) */
    FL_CHAT_LLAMA3,  /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    FL_CHAT_PHI3,    /* <|user|>\n...<|end|>\n */
    FL_CHAT_MISTRAL, /* [INST] ... [/INST] */
    FL_CHAT_GEMMA,   /* <start_of_turn>user\n...<end_of_turn>\n (Gemma 1-3) */
    FL_CHAT_GEMMA4,  /* <|turn>user\n...<turn|>\n */
} fl_chat_family;

typedef enum fl_chat_variant {
    FL_CHAT_PLAIN = 0,
    FL_CHAT_QWEN3_THINK,    /* chatml: <think> blocks of past answers are dropped */
    FL_CHAT_PHI4,           /* chatml: "<|im_start|>role<|im_sep|>text<|im_end|>", no newlines */
    FL_CHAT_LLAMA31,        /* llama3: system turn with "Cutting Knowledge Date" header */
    FL_CHAT_PHI3_SYSTEM,    /* phi3: <|system|> turns (Phi-3.5); else system folds into user */
    FL_CHAT_PHI4_MINI,      /* phi3: no newline after the role tags (Phi-4-mini) */
    FL_CHAT_MISTRAL_V1,     /* " [INST] x [/INST] y</s>", system in the first user turn */
    FL_CHAT_MISTRAL_V3,     /* "[INST] x[/INST] y</s>", system in the last user turn */
    FL_CHAT_MISTRAL_TEKKEN, /* "[INST]x[/INST]y</s>", system in the last user turn */
    FL_CHAT_MISTRAL_V7,     /* "[SYSTEM_PROMPT]s[/SYSTEM_PROMPT][INST]x[/INST]y</s>" */
} fl_chat_variant;

typedef struct fl_chat_style {
    fl_chat_family family;
    fl_chat_variant variant;
    bool wants_bos;           /* the real template starts with bos_token */
    char default_system[512]; /* chatml: system prompt the template adds when none is given */
    char date[32];            /* llama 3.1+: the "Today Date" the template prints */
} fl_chat_style;

/* Detects the family from a template's text; NULL or an unknown template gives ChatML. */
void fl_chat_detect(const char *tmpl, fl_chat_style *style);

const char *fl_chat_family_name(fl_chat_family family);

/* Formats messages in the given style. bos: text put first (NULL = none); eos: the end-of-text
 * token's text for the families that write it. Returns a malloc'd string or NULL with err. */
char *fl_chat_render(const fl_chat_style *style, const char *bos, const char *eos,
                     const fluid_chat_message *messages, size_t n, bool add_generation_prompt,
                     fluid_error *err);

#endif
