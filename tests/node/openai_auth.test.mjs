// The API key: the SDK's key must match --api-key on /v1 routes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skipUnless, makeModels, startServer } from './server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
skipUnless(existsSync(join(here, 'node_modules', 'openai')),
           'the openai package is not installed (run scripts/setup.sh)');
const { default: OpenAI } = await import('openai');

let server;
before(async () => { server = await startServer(makeModels(), [], { FLUID_API_KEY: 'test-key' }); });
after(async () => { await server.stop(); });

test('the right key passes, a wrong one is 401 invalid_api_key', async () => {
  const good = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'test-key', maxRetries: 0 });
  const list = await good.models.list();
  assert.ok(list.data.length >= 1);
  const bad = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(bad.models.list(),
                       (e) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key');
  const health = await fetch(`${server.url}/health`);
  assert.equal(health.status, 200);
  assert.ok(!server.log().includes('test-key'));
});
