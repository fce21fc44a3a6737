/* fluid-synth --arch whisper: writes a random-weight Whisper model. Gets the whole command
 * line; returns the process exit code. */
#ifndef FLUID_SYNTH_WHISPER_H
#define FLUID_SYNTH_WHISPER_H

int synth_whisper(int argc, char **argv);

#endif
