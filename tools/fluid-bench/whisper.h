/* fluid-bench's speech mode (ggml whisper model files). */
#ifndef FLUID_BENCH_WHISPER_H
#define FLUID_BENCH_WHISPER_H

/* Benchmarks a whisper model; gets the whole command line, returns the exit code. */
int bench_whisper_main(int argc, char **argv);

#endif
