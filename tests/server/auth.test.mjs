// A server started with --api-key and --cors-origin http://app.example: 401 without the key (OpenAI's
// client as AuthenticationError), /health open, CORS headers for the allowed origin only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { BASE, KEY, MODEL, openai, ollama, http } from './lib.mjs';

const hi = { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };

test('requests without the API key get 401 in the error shape of their API', async () => {
  assert.ok(KEY, 'HEARTH_KEY must be set for this test');
  const cases = [
    ['GET', '/v1/models', undefined, {}],
    ['POST', '/v1/chat/completions', hi, {}],
    ['POST', '/v1/chat/completions', hi, { Authorization: 'Bearer wrong' }],
    ['POST', '/v1/chat/completions', hi, { Authorization: KEY }],  // no Bearer scheme
    ['POST', '/v1/chat/completions', hi, { Authorization: `Bearer ${KEY}x` }],
    ['GET', '/metrics', undefined, {}],
    ['POST', '/api/chat', { model: MODEL, messages: [{ role: 'user', content: 'hi' }] }, {}],
    ['GET', '/api/tags', undefined, { Authorization: 'Basic Zm9vOmJhcg==' }],
  ];
  for (const [method, path, body, headers] of cases) {
    const r = await http(method, path, body, { Authorization: '', ...headers });
    assert.equal(r.status, 401, `${method} ${path} ${JSON.stringify(headers)}: ${r.text}`);
    if (path.startsWith('/api/')) assert.equal(typeof r.json.error, 'string');
    else assert.equal(r.json.error.code, 'invalid_api_key');
  }
  const h = await http('GET', '/health', undefined, { Authorization: '' });
  assert.equal(h.status, 200);
});

test('the openai client: wrong key → AuthenticationError, right key works', async () => {
  const bad = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: 'not-the-key', maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create(hi), (e) => e.status === 401 && e.constructor.name === 'AuthenticationError');
  const r = await openai().chat.completions.create(hi);
  assert.equal(r.choices.length, 1);
  const tags = await ollama().list();
  assert.equal(tags.models[0].name, MODEL);
});

test('CORS: the allowed origin gets the headers, others do not', async () => {
  const pre = await http('OPTIONS', '/v1/chat/completions', undefined, {
    Authorization: '', Origin: 'http://app.example', 'Access-Control-Request-Method': 'POST',
    'Access-Control-Request-Headers': 'authorization, content-type',
  });
  assert.ok(pre.status === 204 || pre.status === 200, `${pre.status}`);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'http://app.example');
  assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
  assert.match(pre.headers.get('access-control-allow-headers'), /authorization/i);
  const get = await http('GET', '/v1/models', undefined, { Origin: 'http://app.example' });
  assert.equal(get.status, 200);
  assert.equal(get.headers.get('access-control-allow-origin'), 'http://app.example');
  const other = await http('OPTIONS', '/v1/chat/completions', undefined, { Authorization: '', Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' });
  assert.equal(other.headers.get('access-control-allow-origin'), null);
  const otherGet = await http('GET', '/v1/models', undefined, { Origin: 'http://evil.example' });
  assert.equal(otherGet.headers.get('access-control-allow-origin'), null);
});
