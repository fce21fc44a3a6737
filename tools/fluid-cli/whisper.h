/* fluid-cli's speech mode (ggml whisper model files, magic "lmgg"). */
#ifndef FLUID_CLI_WHISPER_H
#define FLUID_CLI_WHISPER_H

/* Runs fluid-cli on a whisper model; returns the process exit code. */
int cli_whisper_main(int argc, char **argv);

#endif
