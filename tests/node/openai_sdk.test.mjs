// fluid-server driven by the official `openai` npm package: the calls an application makes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skipUnless, makeModels, startServer, noEos } from './server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
skipUnless(existsSync(join(here, 'node_modules', 'openai')),
           'the openai package is not installed (run scripts/setup.sh)');
const { default: OpenAI } = await import('openai');

let server;
let client;
before(async () => {
  server = await startServer(makeModels());
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'local', maxRetries: 0, timeout: 30000 });
});
after(async () => { assert.equal(await server.stop(), 0); });

test('models.list and models.retrieve', async () => {
  const page = await client.models.list();
  const ids = page.data.map((m) => m.id);
  assert.ok(ids.includes('tiny') && ids.includes('wide'), ids.join(','));
  const m = await client.models.retrieve('tiny');
  assert.equal(m.object, 'model');
  assert.equal(m.id, 'tiny');
});

test('chat.completions.create', async () => {
  const r = await client.chat.completions.create({
    model: 'tiny',
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello' }],
    max_tokens: 5, temperature: 0, logit_bias: noEos,
  });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 5);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 5);
});

test('chat.completions.create with stream and include_usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'tiny', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 6,
    logit_bias: noEos, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let role = null;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      role ??= c.delta.role ?? null;
      text += c.delta.content ?? '';
      finish = c.finish_reason ?? finish;
    }
  }
  assert.equal(role, 'assistant');
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 6);
  assert.ok(text.length > 0);
});

test('completions.create', async () => {
  const r = await client.completions.create({ model: 'tiny', prompt: 'Once upon', max_tokens: 4,
                                              echo: true, logit_bias: noEos });
  assert.equal(r.object, 'text_completion');
  assert.ok(r.choices[0].text.startsWith('Once upon'));
  assert.equal(r.usage.completion_tokens, 4);
});

test('errors arrive as the SDK error classes with status, code and param', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }],
                                     temperature: 5 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'temperature');
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }], n: 2 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'n');
  await assert.rejects(client.embeddings.create({ model: 'tiny', input: 'x' }),
                       (e) => e instanceof OpenAI.NotFoundError);
});

// The tiny model's context is 512 tokens: a max_tokens that does not fit beside the prompt is
// OpenAI's context_length_exceeded (chat and completions, plain and streamed); one that just
// fits runs; without max_tokens the generation fills the context.
test('prompt + max_tokens beyond the context: context_length_exceeded', async () => {
  const messages = [{ role: 'user', content: 'Hello' }];
  const probe = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 1 });
  const promptTokens = probe.usage.prompt_tokens;
  const room = 512 - promptTokens;
  const tooMany = (e) => e instanceof OpenAI.BadRequestError && e.status === 400 &&
    e.code === 'context_length_exceeded' &&
    e.message.includes('maximum context length is 512 tokens') &&
    e.message.includes(`requested ${513} tokens (${promptTokens} in the`);
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', messages, max_tokens: room + 1 }),
    (e) => tooMany(e) && e.param === 'messages');
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', messages, max_completion_tokens: room + 1,
                                     stream: true }),
    (e) => tooMany(e) && e.param === 'messages');
  const r = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: room,
                                                   logit_bias: noEos });
  assert.equal(r.usage.completion_tokens, room);
  assert.equal(r.choices[0].finish_reason, 'length');
  const free = await client.chat.completions.create({ model: 'tiny', messages, logit_bias: noEos });
  assert.equal(free.usage.total_tokens, 512);
  assert.equal(free.choices[0].finish_reason, 'length');

  const c = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 1 });
  await assert.rejects(
    client.completions.create({ model: 'tiny', prompt: 'Hello',
                                max_tokens: 512 - c.usage.prompt_tokens + 1 }),
    (e) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded' &&
      e.param === 'prompt' && e.message.includes('in the prompt'));
});

test('a stream abandoned by the client does not stop the next request', async () => {
  const controller = new AbortController();
  const stream = await client.chat.completions.create(
    { model: 'wide', messages: [{ role: 'user', content: 'x' }], max_tokens: 3000, logit_bias: noEos,
      stream: true },
    { signal: controller.signal });
  let n = 0;
  try {
    for await (const _ of stream) { if (++n === 3) controller.abort(); }
  } catch (e) {
    assert.equal(e.name, 'AbortError'); // the SDK may end the loop quietly or throw this
  }
  // Events that arrived in the same read as the third may still come out after the abort.
  assert.ok(n >= 3 && n < 3000, `${n} chunks`);
  // The server notices the closed connection and stops the job.
  for (let i = 0; i < 50 && !/POST \/v1\/chat\/completions 200 .*aborted/.test(server.log()); i++)
    await new Promise((r) => setTimeout(r, 100));
  assert.match(server.log(), /POST \/v1\/chat\/completions 200 .*aborted/);
  const r = await client.chat.completions.create({ model: 'tiny', max_tokens: 2, logit_bias: noEos,
                                                   messages: [{ role: 'user', content: 'x' }] });
  assert.equal(r.usage.completion_tokens, 2);
});

test('8 concurrent streams all complete', async () => {
  const one = async (seed) => {
    const s = await client.chat.completions.create({
      model: 'tiny', messages: [{ role: 'user', content: `n${seed}` }], max_tokens: 10, seed,
      logit_bias: noEos, stream: true, stream_options: { include_usage: true } });
    let usage = null;
    for await (const chunk of s) usage = chunk.usage ?? usage;
    return usage.completion_tokens;
  };
  const counts = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map(one));
  assert.deepEqual(counts, [10, 10, 10, 10, 10, 10, 10, 10]);
});
