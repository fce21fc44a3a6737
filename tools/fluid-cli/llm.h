/* fluid-cli's language-model mode (GGUF files). */
#ifndef FLUID_CLI_LLM_H
#define FLUID_CLI_LLM_H

#include <stdio.h>

/* Runs fluid-cli on a GGUF model; returns the process exit code (0 ok, 1 error). */
int cli_llm_main(int argc, char **argv);

/* Prints the language-model options to out. */
void cli_llm_usage(FILE *out);

#endif
