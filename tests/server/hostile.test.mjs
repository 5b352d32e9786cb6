// Malformed and hostile requests: each gets the right 4xx status and a JSON error of the right shape
// (OpenAI's {"error":{"message","type","code"}} on /v1 and the rest, Ollama's {"error":"..."} on /api), and
// the server keeps serving. Run against a server without an API key and with the default 8 MiB body limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MODEL, openai, http, measure } from './lib.mjs';

const ok = { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
const chat = (patch) => ({ ...ok, ...patch });
const C = '/v1/chat/completions';

// [name, method, path, body (object → JSON; string → sent as is), status, code (OpenAI paths; optional)]
const cases = [
  ['bad JSON', 'POST', C, '{"model": "x", "messages": [', 400, 'invalid_json'],
  ['JSON null', 'POST', C, 'null', 400, 'invalid_json'],
  ['JSON array', 'POST', C, '[1,2,3]', 400, 'invalid_json'],
  ['JSON string', 'POST', C, '"hello"', 400, 'invalid_json'],
  ['empty body', 'POST', C, '', 400, 'invalid_json'],
  ['trailing garbage', 'POST', C, JSON.stringify(ok) + '}}', 400, 'invalid_json'],
  ['invalid UTF-8', 'POST', C, Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}]}')]), 400, 'invalid_json'],
  ['messages missing', 'POST', C, { model: MODEL }, 400],
  ['messages not an array', 'POST', C, chat({ messages: 'hi' }), 400],
  ['messages empty', 'POST', C, chat({ messages: [] }), 400],
  ['message not an object', 'POST', C, chat({ messages: [42] }), 400],
  ['role missing', 'POST', C, chat({ messages: [{ content: 'hi' }] }), 400],
  ['content a number', 'POST', C, chat({ messages: [{ role: 'user', content: 5 }] }), 400],
  ['tool call arguments a number', 'POST', C, chat({ messages: [{ role: 'assistant', tool_calls: [{ id: 'a', type: 'function', function: { name: 'f', arguments: 5 } }] }, { role: 'user', content: 'x' }] }), 400],
  ['tools not an array', 'POST', C, chat({ tools: {} }), 400],
  ['tool without function', 'POST', C, chat({ tools: [{ type: 'function' }] }), 400],
  ['tool_choice names an unknown tool', 'POST', C, chat({ tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: { type: 'function', function: { name: 'g' } } }), 400],
  ['tool_choice required without tools', 'POST', C, chat({ tool_choice: 'required' }), 400],
  ['tool_choice bogus', 'POST', C, chat({ tool_choice: 'sometimes' }), 400],
  ['response_format type unknown', 'POST', C, chat({ response_format: { type: 'yaml' } }), 400],
  ['json_schema without schema', 'POST', C, chat({ response_format: { type: 'json_schema', json_schema: { name: 'x' } } }), 400],
  ['temperature a string', 'POST', C, chat({ temperature: 'hot' }), 400],
  ['temperature out of range', 'POST', C, chat({ temperature: 5 }), 400],
  ['top_p zero', 'POST', C, chat({ top_p: 0 }), 400],
  ['max_tokens negative', 'POST', C, chat({ max_tokens: -1 }), 400],
  ['max_tokens a string', 'POST', C, chat({ max_tokens: '10' }), 400],
  ['max_tokens huge', 'POST', C, chat({ max_tokens: 1e9 }), 400, 'context_length_exceeded'],
  ['n = 2', 'POST', C, chat({ n: 2 }), 400],
  ['stop a number', 'POST', C, chat({ stop: 7 }), 400],
  ['seed a float', 'POST', C, chat({ seed: 1.5 }), 400],
  ['stream a string', 'POST', C, chat({ stream: 'yes' }), 400],
  ['top_logprobs out of range', 'POST', C, chat({ logprobs: true, top_logprobs: 21 }), 400],
  ['top_logprobs without logprobs', 'POST', C, chat({ top_logprobs: 2 }), 400],
  ['logprobs on the completions API', 'POST', '/v1/completions', { prompt: 'x', logprobs: 2 }, 400, 'unsupported_parameter'],
  ['reasoning_effort unknown', 'POST', C, chat({ reasoning_effort: 'extreme' }), 400],
  ['thinking_budget negative', 'POST', C, chat({ thinking_budget: -5 }), 400],
  ['json_schema with an unsupported keyword', 'POST', C, chat({ stream: true, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: '^a+$' } } } }), 400, 'unsupported_schema'],
  ['unknown model', 'POST', C, chat({ model: 'gpt-5' }), 404, 'model_not_found'],
  ['model a number', 'POST', C, chat({ model: 12 }), 400],
  ['prompt longer than the context', 'POST', C, chat({ messages: [{ role: 'user', content: 'lorem ipsum '.repeat(30000) }] }), 400, 'context_length_exceeded'],
  ['body over the size limit', 'POST', C, JSON.stringify(chat({ messages: [{ role: 'user', content: 'x'.repeat(9 << 20) }] })), 413, 'request_too_large'],
  ['GET on a POST route', 'GET', C, undefined, 405, 'method_not_allowed'],
  ['POST on a GET route', 'POST', '/v1/models', {}, 405, 'method_not_allowed'],
  ['unknown route', 'GET', '/v1/engines', undefined, 404],
  ['path traversal', 'GET', '/../../etc/passwd', undefined, 404],
  ['unknown model by id', 'GET', '/v1/models/llama-70b', undefined, 404, 'model_not_found'],
  ['completions without prompt', 'POST', '/v1/completions', { model: MODEL }, 400],
  ['completions prompt a number', 'POST', '/v1/completions', { model: MODEL, prompt: 5 }, 400],
  ['completions echo', 'POST', '/v1/completions', { model: MODEL, prompt: 'a', echo: true }, 400],
  ['embeddings without input', 'POST', '/v1/embeddings', { model: MODEL }, 400],
  ['embeddings input a number', 'POST', '/v1/embeddings', { model: MODEL, input: 5 }, 400],
  ['embeddings token ids', 'POST', '/v1/embeddings', { model: MODEL, input: [1, 2, 3] }, 400],
  ['embeddings empty text', 'POST', '/v1/embeddings', { model: MODEL, input: '' }, 400],
  ['ollama chat messages not an array', 'POST', '/api/chat', { model: MODEL, messages: 'hi' }, 400],
  ['ollama chat options.temperature a string', 'POST', '/api/chat', { model: MODEL, messages: [{ role: 'user', content: 'hi' }], options: { temperature: 'x' } }, 400],
  ['ollama chat unknown model', 'POST', '/api/chat', { model: 'llama3:8b', messages: [{ role: 'user', content: 'hi' }] }, 404],
  ['ollama chat format xml', 'POST', '/api/chat', { model: MODEL, messages: [{ role: 'user', content: 'hi' }], format: 'xml' }, 400],
  ['ollama chat bad JSON', 'POST', '/api/chat', '{{{', 400],
  ['ollama num_ctx below the prompt', 'POST', '/api/chat', { model: MODEL, messages: [{ role: 'user', content: 'a long question '.repeat(20) }], options: { num_ctx: 8 } }, 400],
  ['ollama generate prompt a number', 'POST', '/api/generate', { model: MODEL, prompt: 3 }, 400],
  ['ollama show unknown model', 'POST', '/api/show', { model: 'nope' }, 404],
  ['ollama pull without a model', 'POST', '/api/pull', {}, 400],
  ['ollama pull with a number for a model', 'POST', '/api/pull', { model: 42 }, 400],
];

test(`${cases.length} malformed or hostile requests each get the right error`, async () => {
  assert.ok(cases.length >= 50);
  const failures = [];
  for (const [name, method, path, body, status, code] of cases) {
    const r = await http(method, path, body);
    const where = `${name}: ${method} ${path} -> ${r.status} ${r.text.slice(0, 300)}`;
    if (r.status !== status) {
      failures.push(`${where} (wanted ${status})`);
      continue;
    }
    if (!r.json || !r.headers.get('content-type')?.includes('application/json')) {
      failures.push(`${where} (not JSON)`);
      continue;
    }
    if (path.startsWith('/api/')) {
      if (typeof r.json.error !== 'string' || !r.json.error) failures.push(`${where} (not Ollama's error shape)`);
    } else {
      const e = r.json.error;
      if (!e || typeof e.message !== 'string' || !e.message || typeof e.type !== 'string' || !('code' in e))
        failures.push(`${where} (not OpenAI's error shape)`);
      else if (code && e.code !== code) failures.push(`${where} (code ${e.code}, wanted ${code})`);
    }
  }
  measure('hostile requests', cases.length);
  assert.deepEqual(failures, []);
});

test('the server still serves after the hostile requests', async () => {
  const r = await openai().chat.completions.create(ok);
  assert.equal(r.choices.length, 1);
  const h = await http('GET', '/health');
  assert.equal(h.status, 200);
});

test('the openai client surfaces the errors as its typed exceptions', async () => {
  const client = openai();
  await assert.rejects(client.chat.completions.create(chat({ temperature: 9 })), (e) => e.status === 400 && e.type === 'invalid_request_error' && /temperature/.test(e.message));
  await assert.rejects(client.chat.completions.create(chat({ model: 'x' })), (e) => e.constructor.name === 'NotFoundError');
});

test('a raw socket with a broken request line gets an error and the server lives', async () => {
  const net = await import('node:net');
  const url = new URL(process.env.HEARTH_URL);
  for (const payload of ['GARBAGE\r\n\r\n', 'POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 99999999999999\r\n\r\n', '\x00\x01\x02\r\n\r\n']) {
    await new Promise((resolve) => {
      const s = net.connect(Number(url.port), url.hostname, () => s.end(payload));
      s.on('data', () => {});
      s.on('close', resolve);
      s.on('error', resolve);
      s.setTimeout(5000, () => s.destroy());
    });
  }
  const h = await http('GET', '/health');
  assert.equal(h.status, 200);
});
