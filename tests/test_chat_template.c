/* Chat templates: family detection and the exact text each family's formatter produces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/chat_template.h"
#include "engine/vocab.h"

/* The conversation every family is checked with: system, user, assistant, user. */
static const fluid_chat_message CONVERSATION[] = {
    {"system", "You are terse."},
    {"user", "Hi!"},
    {"assistant", "Hello."},
    {"user", "Tell me a joke."},
};
enum { N_CONVERSATION = sizeof CONVERSATION / sizeof CONVERSATION[0] };

/* Short templates carrying each family's distinctive text (excerpts of the real ones). */
#define T_QWEN25                                                                                   \
    "{%- else %}{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + "           \
    "messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are "     \
    "Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
#define T_QWEN3                                                                                    \
    "{%- if messages[0].role == 'system' %}{{- '<|im_start|>system\\n' + messages[0].content + "   \
    "'<|im_end|>\\n' }}{%- endif %}{%- set content = content.split('</think>')[-1] %}{{- "         \
    "'<|im_start|>' + message.role + '\\n<think>\\n' }}"
#define T_PHI4                                                                                     \
    "{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|im_start|>user"         \
    "<|im_sep|>' + message['content'] + '<|im_end|>'}}{% endif %}{% endfor %}{% if "               \
    "add_generation_prompt %}{{ '<|im_start|>assistant<|im_sep|>' }}{% endif %}"
#define T_LLAMA3                                                                                   \
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ "       \
    "message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = "        \
    "bos_token + content %}{% endif %}"
#define T_LLAMA31                                                                                  \
    "{{- bos_token }}{%- if not date_string is defined %}{%- set date_string = \"26 Jul 2024\" "   \
    "%}{%- endif %}{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}{{- \"Cutting "      \
    "Knowledge Date: December 2023\\n\" }}"
#define T_LLAMA32                                                                                  \
    "{%- if strftime_now is defined %}{%- set date_string = strftime_now(\"%d %b %Y\") %}{%- "     \
    "else %}{%- set date_string = \"26 Jul 2024\" %}{%- endif %}<|start_header_id|>Cutting "       \
    "Knowledge Date"
#define T_PHI3                                                                                     \
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') "               \
    "%}{{'<|user|>' "                                                                              \
    "+ '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif "            \
    "(message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% "   \
    "endfor %}"
#define T_PHI35                                                                                    \
    "{% for message in messages %}{% if message['role'] == 'system' and message['content'] "       \
    "%}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' "    \
    "%}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}"
#define T_PHI4_MINI "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
#define T_MISTRAL_V1                                                                               \
    "{{ bos_token }}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' "      \
    "[/INST]' }}{% endif %}"
#define T_MISTRAL_V3                                                                               \
    "{{- bos_token }}{%- if loop.last and system_message is defined %}{{- \"[INST] \" + "          \
    "system_message + \"\\n\\n\" + message[\"content\"] + \"[/INST]\" }}"
#define T_MISTRAL_TEKKEN                                                                           \
    "{{- bos_token }}{%- if loop.last and system_message is defined %}{{- \"[INST]\" + "           \
    "system_message + \"\\n\\n\" + message[\"content\"] + \"[/INST]\" }}"
#define T_MISTRAL_V7                                                                               \
    "{{- bos_token }}{{- '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}{{- '[INST]' "  \
    "+ message['content'] + '[/INST]' }}"
#define T_GEMMA                                                                                    \
    "{{ bos_token }}{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}{{ "            \
    "'<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}"
#define T_GEMMA4 "{{ bos_token }}{{- '<|turn>system\\n' -}}{{- '<|turn>model\\n' -}}"

static char *render(const char *tmpl, const char *bos, const char *eos,
                    const fluid_chat_message *msgs, size_t n, bool add_gen) {
    fl_chat_style st;
    fl_chat_detect(tmpl, &st);
    fluid_error err = {0};
    char *out = fl_chat_render(&st, bos, eos, msgs, n, add_gen, &err);
    if (out == NULL) fail_msg("fl_chat_render: %s", err.message);
    return out;
}

static void expect(const char *tmpl, const char *bos, const char *eos, bool add_gen,
                   const char *want) {
    char *got = render(tmpl, bos, eos, CONVERSATION, N_CONVERSATION, add_gen);
    if (strcmp(got, want) != 0)
        fail_msg("template %.40s...\n got: [%s]\nwant: [%s]", tmpl, got, want);
    free(got);
}

#define CHATML_TAIL                                                                                \
    "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n"                   \
    "<|im_start|>user\nTell me a joke.<|im_end|>\n"

static void chatml_formats(void **state) {
    (void)state;
    const char *with_system = "<|im_start|>system\nYou are terse.<|im_end|>\n" CHATML_TAIL;
    expect(NULL, NULL, NULL, true,
           "<|im_start|>system\nYou are terse.<|im_end|>\n" CHATML_TAIL "<|im_start|>assistant\n");
    expect(NULL, NULL, NULL, false, with_system);
    expect(T_QWEN25, NULL, NULL, false, with_system);
    /* Qwen 2.5 adds its default system prompt when the conversation has none */
    char *got = render(T_QWEN25, NULL, NULL, CONVERSATION + 1, N_CONVERSATION - 1, true);
    assert_string_equal(got,
                        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are "
                        "a helpful assistant.<|im_end|>\n" CHATML_TAIL "<|im_start|>assistant\n");
    free(got);
    /* an unknown template falls back to ChatML */
    expect("{{ messages }}", NULL, NULL, false, with_system);
}

static void qwen3_drops_past_reasoning(void **state) {
    (void)state;
    const fluid_chat_message msgs[] = {
        {"user", "Hi!"},
        {"assistant", "<think>\nGreeting.\n</think>\n\nHello."},
        {"user", "Again"},
        {"assistant", "Sure"},
    };
    char *got = render(T_QWEN3, NULL, NULL, msgs, 4, false);
    assert_string_equal(got, "<|im_start|>user\nHi!<|im_end|>\n"
                             "<|im_start|>assistant\nHello.<|im_end|>\n"
                             "<|im_start|>user\nAgain<|im_end|>\n"
                             "<|im_start|>assistant\n<think>\n\n</think>\n\nSure<|im_end|>\n");
    free(got);
    got = render(T_QWEN3, NULL, NULL, msgs, 3, true);
    assert_string_equal(got, "<|im_start|>user\nHi!<|im_end|>\n"
                             "<|im_start|>assistant\nHello.<|im_end|>\n"
                             "<|im_start|>user\nAgain<|im_end|>\n<|im_start|>assistant\n");
    free(got);
}

/* Phi-4: ChatML whose role is followed by <|im_sep|> and whose turns are not separated (the
 * template writes role, <|im_sep|>, content, <|im_end|> and nothing else; no BOS). */
static void phi4_formats(void **state) {
    (void)state;
    const char *turns = "<|im_start|>system<|im_sep|>You are terse.<|im_end|>"
                        "<|im_start|>user<|im_sep|>Hi!<|im_end|>"
                        "<|im_start|>assistant<|im_sep|>Hello.<|im_end|>"
                        "<|im_start|>user<|im_sep|>Tell me a joke.<|im_end|>";
    expect(T_PHI4, NULL, NULL, false, turns);
    char want[512];
    snprintf(want, sizeof want, "%s<|im_start|>assistant<|im_sep|>", turns);
    expect(T_PHI4, NULL, NULL, true, want);
}

#define LLAMA3_TAIL                                                                                \
    "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"                                    \
    "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"                            \
    "<|start_header_id|>user<|end_header_id|>\n\nTell me a joke.<|eot_id|>"
#define LLAMA3_GEN "<|start_header_id|>assistant<|end_header_id|>\n\n"

static void llama3_formats(void **state) {
    (void)state;
    const char *sys30 = "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>";
    const char *sys31 = "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
                        "December 2023\nToday Date: 26 Jul 2024\n\nYou are terse.<|eot_id|>";
    char want[1024];
    snprintf(want, sizeof want, "<|begin_of_text|>%s" LLAMA3_TAIL LLAMA3_GEN, sys30);
    expect(T_LLAMA3, "<|begin_of_text|>", NULL, true, want);
    snprintf(want, sizeof want, "%s" LLAMA3_TAIL, sys30);
    expect(T_LLAMA3, NULL, NULL, false, want);
    snprintf(want, sizeof want, "<|begin_of_text|>%s" LLAMA3_TAIL LLAMA3_GEN, sys31);
    expect(T_LLAMA31, "<|begin_of_text|>", NULL, true, want);

    /* 3.2 prints today's date; without a system message the turn holds only the dates */
    char today[32], sys32[256];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(today, sizeof today, "%d %b %Y", &tm);
    snprintf(sys32, sizeof sys32,
             "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December "
             "2023\nToday Date: %s\n\n<|eot_id|>",
             today);
    char *got = render(T_LLAMA32, NULL, NULL, CONVERSATION + 1, N_CONVERSATION - 1, false);
    snprintf(want, sizeof want, "%s" LLAMA3_TAIL, sys32);
    assert_string_equal(got, want);
    free(got);
}

static void phi3_formats(void **state) {
    (void)state;
    expect(T_PHI3, "<s>", "<|endoftext|>", true,
           "<s><|user|>\nYou are terse.\n\nHi!<|end|>\n<|assistant|>\nHello.<|end|>\n"
           "<|user|>\nTell me a joke.<|end|>\n<|assistant|>\n");
    expect(T_PHI3, NULL, NULL, false,
           "<|user|>\nYou are terse.\n\nHi!<|end|>\n<|assistant|>\nHello.<|end|>\n"
           "<|user|>\nTell me a joke.<|end|>\n<|assistant|>\n");
    const char *phi35 = "<|system|>\nYou are terse.<|end|>\n<|user|>\nHi!<|end|>\n<|assistant|>\n"
                        "Hello.<|end|>\n<|user|>\nTell me a joke.<|end|>\n";
    char want[512];
    snprintf(want, sizeof want, "%s<|assistant|>\n", phi35);
    expect(T_PHI35, NULL, "<|endoftext|>", true, want);
    snprintf(want, sizeof want, "%s<|endoftext|>", phi35);
    expect(T_PHI35, NULL, "<|endoftext|>", false, want);
    expect(T_PHI4_MINI, NULL, "<|endoftext|>", true,
           "<|system|>You are terse.<|end|><|user|>Hi!<|end|><|assistant|>Hello.<|end|>"
           "<|user|>Tell me a joke.<|end|><|assistant|>");
}

static void mistral_formats(void **state) {
    (void)state;
    const char *v1 = "<s> [INST] You are terse.\n\nHi! [/INST] Hello.</s> [INST] Tell me a joke. "
                     "[/INST]";
    expect(T_MISTRAL_V1, "<s>", "</s>", true, v1);
    expect(T_MISTRAL_V1, "<s>", "</s>", false, v1);
    expect(T_MISTRAL_V3, "<s>", "</s>", true,
           "<s>[INST] Hi![/INST] Hello.</s>[INST] You are terse.\n\nTell me a joke.[/INST]");
    expect(T_MISTRAL_TEKKEN, "<s>", "</s>", true,
           "<s>[INST]Hi![/INST]Hello.</s>[INST]You are terse.\n\nTell me a joke.[/INST]");
    expect(T_MISTRAL_V7, NULL, "</s>", true,
           "[SYSTEM_PROMPT]You are terse.[/SYSTEM_PROMPT][INST]Hi![/INST]Hello.</s>"
           "[INST]Tell me a joke.[/INST]");
}

static void gemma_formats(void **state) {
    (void)state;
    const char *turns = "<start_of_turn>user\nYou are terse.\n\nHi!<end_of_turn>\n"
                        "<start_of_turn>model\nHello.<end_of_turn>\n"
                        "<start_of_turn>user\nTell me a joke.<end_of_turn>\n";
    char want[512];
    snprintf(want, sizeof want, "<bos>%s<start_of_turn>model\n", turns);
    expect(T_GEMMA, "<bos>", NULL, true, want);
    expect(T_GEMMA, NULL, NULL, false, turns);
    const char *turns4 = "<|turn>system\nYou are terse.<turn|>\n<|turn>user\nHi!<turn|>\n"
                         "<|turn>model\nHello.<turn|>\n<|turn>user\nTell me a joke.<turn|>\n";
    snprintf(want, sizeof want, "<bos>%s<|turn>model\n<|channel>thought\n<channel|>", turns4);
    expect(T_GEMMA4, "<bos>", NULL, true, want);
    expect(T_GEMMA4, NULL, NULL, false, turns4);
}

static void contents_are_trimmed_where_the_templates_trim(void **state) {
    (void)state;
    const fluid_chat_message msgs[] = {{"developer", " Be brief. "}, {"user", "\n Hi! \n"}};
    char *got = render(T_GEMMA, NULL, NULL, msgs, 2, false);
    assert_string_equal(got, "<start_of_turn>user\n Be brief. \n\nHi!<end_of_turn>\n");
    free(got);
    got = render(T_LLAMA3, NULL, NULL, msgs, 2, false);
    assert_string_equal(got, "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                             "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>");
    free(got);
    got = render(NULL, NULL, NULL, msgs, 2, false); /* ChatML keeps the text as it is */
    assert_string_equal(got, "<|im_start|>system\n Be brief. <|im_end|>\n"
                             "<|im_start|>user\n\n Hi! \n<|im_end|>\n");
    free(got);
    const fluid_chat_message past[] = {
        {"user", "Q"}, {"assistant", "<|channel>thought\nhmm<channel|> Answer "}, {"user", "R"}};
    got = render(T_GEMMA4, NULL, NULL, past, 3, false);
    assert_string_equal(got, "<|turn>user\nQ<turn|>\n<|turn>model\nAnswer<turn|>\n"
                             "<|turn>user\nR<turn|>\n");
    free(got);
}

static void detection_from_markers(void **state) {
    (void)state;
    static const struct {
        const char *tmpl;
        fl_chat_family family;
        fl_chat_variant variant;
        bool bos;
    } cases[] = {
        {NULL, FL_CHAT_CHATML, FL_CHAT_PLAIN, false},
        {"", FL_CHAT_CHATML, FL_CHAT_PLAIN, false},
        {T_QWEN25, FL_CHAT_CHATML, FL_CHAT_PLAIN, false},
        {T_QWEN3, FL_CHAT_CHATML, FL_CHAT_QWEN3_THINK, false},
        {T_PHI4, FL_CHAT_CHATML, FL_CHAT_PHI4, false},
        {T_LLAMA3, FL_CHAT_LLAMA3, FL_CHAT_PLAIN, true},
        {T_LLAMA31, FL_CHAT_LLAMA3, FL_CHAT_LLAMA31, true},
        {T_PHI3, FL_CHAT_PHI3, FL_CHAT_PLAIN, true},
        {T_PHI35, FL_CHAT_PHI3, FL_CHAT_PHI3_SYSTEM, false},
        {T_PHI4_MINI, FL_CHAT_PHI3, FL_CHAT_PHI4_MINI, false},
        {T_MISTRAL_V1, FL_CHAT_MISTRAL, FL_CHAT_MISTRAL_V1, true},
        {T_MISTRAL_V3, FL_CHAT_MISTRAL, FL_CHAT_MISTRAL_V3, true},
        {T_MISTRAL_TEKKEN, FL_CHAT_MISTRAL, FL_CHAT_MISTRAL_TEKKEN, true},
        {T_MISTRAL_V7, FL_CHAT_MISTRAL, FL_CHAT_MISTRAL_V7, true},
        {T_GEMMA, FL_CHAT_GEMMA, FL_CHAT_PLAIN, true},
        {T_GEMMA4, FL_CHAT_GEMMA4, FL_CHAT_PLAIN, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fl_chat_style st;
        fl_chat_detect(cases[i].tmpl, &st);
        if (st.family != cases[i].family || st.variant != cases[i].variant ||
            st.wants_bos != cases[i].bos)
            fail_msg("case %zu: family %s variant %d bos %d", i, fl_chat_family_name(st.family),
                     (int)st.variant, (int)st.wants_bos);
    }
}

static void bad_messages_are_refused(void **state) {
    (void)state;
    fl_chat_style st;
    fl_chat_detect(NULL, &st);
    fluid_error err = {0};
    const fluid_chat_message tool[] = {{"tool", "x"}};
    assert_null(fl_chat_render(&st, NULL, NULL, tool, 1, true, &err));
    assert_int_equal(err.code, FLUID_ERR_ARGUMENT);
    assert_non_null(strstr(err.message, "tool"));
    const fluid_chat_message null_content[] = {{"user", NULL}};
    assert_null(fl_chat_render(&st, NULL, NULL, null_content, 1, true, &err));
    char *empty = fl_chat_render(&st, NULL, NULL, NULL, 0, true, &err);
    assert_string_equal(empty, "<|im_start|>assistant\n");
    free(empty);
}

/* ---- the real templates of the test vocabularies ------------------------------------------ */

static fluid_vocab *load_testdata_vocab(const char *name) {
    const char *dir = getenv("FLUID_TESTDATA");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "", name);
    if (dir == NULL || access(path, R_OK) != 0) {
        printf("skipped: %s not found (FLUID_TESTDATA)\n", name);
        return NULL;
    }
    fluid_error err = {0};
    fluid_vocab *v = fluid_vocab_load(path, &err);
    if (v == NULL && err.code == FLUID_ERR_UNSUPPORTED) {
        printf("skipped: the vocabulary loader is not there yet: %s\n", err.message);
        return NULL;
    }
    if (v == NULL) fail_msg("fluid_vocab_load %s: %s", path, err.message);
    return v;
}

static void real_templates_from_testdata(void **state) {
    (void)state;
    static const struct {
        const char *file;
        fl_chat_family family;
        fl_chat_variant variant;
        const char *want; /* for the conversation without its system message */
    } cases[] = {
        {"ggml-vocab-qwen2.gguf", FL_CHAT_CHATML, FL_CHAT_PLAIN,
         "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n" CHATML_TAIL
         "<|im_start|>assistant\n"},
        /* Phi-3's vocabulary adds BOS itself, so the text does not repeat it */
        {"ggml-vocab-phi-3.gguf", FL_CHAT_PHI3, FL_CHAT_PLAIN,
         "<|user|>\nHi!<|end|>\n<|assistant|>\nHello.<|end|>\n<|user|>\nTell me a "
         "joke.<|end|>\n<|assistant|>\n"},
        {"ggml-vocab-gemma-4.gguf", FL_CHAT_GEMMA4, FL_CHAT_PLAIN,
         "<|turn>user\nHi!<turn|>\n<|turn>model\nHello.<turn|>\n<|turn>user\nTell me a "
         "joke.<turn|>\n<|turn>model\n<|channel>thought\n<channel|>"},
    };
    int tested = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fluid_vocab *v = load_testdata_vocab(cases[i].file);
        if (v == NULL) continue;
        fl_chat_style st;
        fl_chat_detect(fl_vocab_chat_template(v), &st);
        assert_int_equal(st.family, cases[i].family);
        assert_int_equal(st.variant, cases[i].variant);
        fluid_error err = {0};
        char *got = fluid_chat_format(v, CONVERSATION + 1, N_CONVERSATION - 1, true, &err);
        if (got == NULL) fail_msg("%s: %s", cases[i].file, err.message);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("%s\n got: [%s]\nwant: [%s]", cases[i].file, got, cases[i].want);
        free(got);
        fluid_vocab_free(v);
        tested++;
    }
    if (tested == 0) skip();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chatml_formats),
        cmocka_unit_test(qwen3_drops_past_reasoning),
        cmocka_unit_test(phi4_formats),
        cmocka_unit_test(llama3_formats),
        cmocka_unit_test(phi3_formats),
        cmocka_unit_test(mistral_formats),
        cmocka_unit_test(gemma_formats),
        cmocka_unit_test(contents_are_trimmed_where_the_templates_trim),
        cmocka_unit_test(detection_from_markers),
        cmocka_unit_test(bad_messages_are_refused),
        cmocka_unit_test(real_templates_from_testdata),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
