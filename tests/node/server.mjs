// Starts fluid-server on a free port of 127.0.0.1 with synthetic models (fluid-synth) for a test
// file, and stops it. Exits 77 (skipped) when the pieces are missing.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function skipUnless(cond, why) {
  if (!cond) {
    console.log(`SKIP: ${why}`);
    process.exit(77);
  }
}

const build = process.env.FLUID_BUILD_DIR ?? '';
export const synth = join(build, 'fluid-synth');

/* Writes the tiny LLM into a fresh models folder and returns it. */
export function makeModels() {
  skipUnless(existsSync(join(build, 'fluid-server')), 'fluid-server is not built');
  skipUnless(existsSync(synth), 'fluid-synth is not built');
  const dir = mkdtempSync(join(tmpdir(), 'fluid-node-'));
  mkdirSync(join(dir, 'llm'));
  mkdirSync(join(dir, 'whisper'));
  execFileSync(synth, ['--arch', 'qwen2', '--preset', 'tiny', '--type', 'f32', '--seed', '1',
                       '-o', join(dir, 'llm', 'tiny.gguf')]);
  // A wider one-layer model: slow enough that a long stream outlasts the socket buffers.
  execFileSync(synth, ['--arch', 'qwen2', '--preset', 'qwen2.5-0.5b', '--layers', '1', '--type',
                       'f16', '--seed', '2', '-o', join(dir, 'llm', 'wide.gguf')]);
  return dir;
}

/* Resolves to { url, stop() } once the server prints its port (10 s at most). */
export function startServer(modelDir, extraArgs = [], env = {}) {
  const child = spawn(join(build, 'fluid-server'),
                      ['--host', '127.0.0.1', '--port', '0', '--model-path', modelDir,
                       '--llm-model', 'tiny', '--whisper-model', 'none', '--max-models-per-type', '2',
                       ...extraArgs],
                      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('no port:\n' + log)); },
                             10000);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1],
          log: () => log,
          stop: () => new Promise((done) => {
            child.once('exit', (code) => { rmSync(modelDir, { recursive: true, force: true }); done(code); });
            child.kill('SIGTERM');
          }),
        });
      }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited ${code}:\n${log}`)); });
  });
}

// The built-in vocabulary of fluid-synth ends with 3 special tokens (510-512): banning them keeps
// random weights from ending a generation early.
export const noEos = { 510: -100, 511: -100, 512: -100 };
