// The OpenAI API through the unmodified official `openai` npm client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, MODEL, openai, http, validate, TOOLS, toolSchema } from './lib.mjs';

const client = openai();
const hello = [{ role: 'user', content: 'Say hello in three words.' }];

function checkUsage(u, maxTokens) {
  assert.ok(u, 'usage present');
  assert.ok(u.prompt_tokens > 0);
  assert.ok(u.completion_tokens >= 0 && u.completion_tokens <= maxTokens, `completion_tokens ${u.completion_tokens}`);
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
  assert.equal(typeof u.completion_tokens_details.reasoning_tokens, 'number');
}

test('models list names the served model', async () => {
  const list = await client.models.list();
  const ids = [];
  for await (const m of list) ids.push(m.id);
  assert.deepEqual(ids, [MODEL]);
  const one = await client.models.retrieve(MODEL);
  assert.equal(one.id, MODEL);
  await assert.rejects(client.models.retrieve('no-such-model'), (e) => e.status === 404);
});

test('chat without streaming: message, finish reason, usage, timings', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 24, seed: 7 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.model, MODEL);
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  checkUsage(r.usage, 24);
  assert.ok(r.timings.predicted_per_second >= 0 && r.timings.prompt_ms >= 0, JSON.stringify(r.timings));
});

test('logprobs: one entry per content token, top alternatives sorted, the same when streamed', async () => {
  const req = { model: MODEL, messages: hello, max_tokens: 12, seed: 11, logprobs: true, top_logprobs: 3 };
  const r = await client.chat.completions.create(req);
  const lp = r.choices[0].logprobs.content;
  assert.ok(lp.length > 0 && lp.length <= 12, `${lp.length} entries`);
  // The tokens' bytes spell the content (a token may hold part of a character: its `token` text then shows
  // U+FFFD while `bytes` keeps the raw bytes, as OpenAI does).
  assert.equal(Buffer.from(lp.flatMap((e) => e.bytes)).toString('utf8'), r.choices[0].message.content);
  for (const e of lp) {
    assert.ok(e.logprob <= 0, JSON.stringify(e));
    if (!e.token.includes('\uFFFD')) assert.deepEqual(e.bytes, [...Buffer.from(e.token, 'utf8')]);
    assert.equal(e.top_logprobs.length, 3);
    for (let i = 1; i < 3; ++i) assert.ok(e.top_logprobs[i - 1].logprob >= e.top_logprobs[i].logprob);
    assert.ok(e.top_logprobs[0].logprob >= e.logprob);
  }
  const stream = await client.chat.completions.create({ ...req, stream: true });
  const streamed = [];
  for await (const c of stream) if (c.choices[0]?.logprobs?.content) streamed.push(...c.choices[0].logprobs.content);
  assert.deepEqual(streamed.map((e) => [e.token, e.logprob]), lp.map((e) => [e.token, e.logprob]));
  // Without logprobs: null, as OpenAI sends it.
  const plain = await client.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 4 });
  assert.equal(plain.choices[0].logprobs, null);
});

test('the model field may be omitted; an unknown model is a 404 model_not_found', async () => {
  const r = await http('POST', '/v1/chat/completions', { messages: hello, max_tokens: 2 });
  assert.equal(r.status, 200, r.text);
  await assert.rejects(
    client.chat.completions.create({ model: 'gpt-4o', messages: hello, max_tokens: 2 }),
    (e) => e.status === 404 && e.code === 'model_not_found' && /gpt-4o/.test(e.message),
  );
});

test('streamed text equals non-streamed text for the same seed', async () => {
  for (const seed of [1, 2, 3]) {
    const body = { model: MODEL, messages: hello, max_tokens: 32, seed, temperature: 0.8 };
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let role = null;
    let finish = null;
    let usage = null;
    let chunks = 0;
    for await (const c of stream) {
      ++chunks;
      assert.equal(c.object, 'chat.completion.chunk');
      if (c.usage) usage = c.usage;
      if (!c.choices.length) continue;
      const d = c.choices[0].delta;
      if (d.role) role = d.role;
      if (d.content) text += d.content;
      if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
    }
    assert.equal(role, 'assistant');
    assert.equal(text, whole.choices[0].message.content ?? '', `seed ${seed}`);
    assert.equal(finish, whole.choices[0].finish_reason);
    checkUsage(usage, 32);
    assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
    assert.ok(chunks >= 3);
  }
});

test('the stream helper assembles the same message', async () => {
  const body = { model: MODEL, messages: hello, max_tokens: 16, seed: 11 };
  const whole = await client.chat.completions.create(body);
  const runner = client.chat.completions.stream(body);
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.content ?? '', whole.choices[0].message.content ?? '');
});

test('tools: tool_choice required gives a schema-valid call', async () => {
  // A random-weight model may chain parallel calls until max_tokens; with parallel_tool_calls false the
  // answer is exactly one call.
  for (const [seed, parallel] of [[1, false], [2, false], [3, true], [4, true]]) {
    const r = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'Turn on the kitchen light.' }], tools: TOOLS,
      tool_choice: 'required', max_tokens: 400, seed, parallel_tool_calls: parallel,
    });
    const m = r.choices[0].message;
    if (!parallel) assert.equal(m.tool_calls?.length, 1, JSON.stringify(m));
    assert.ok(parallel ? ['tool_calls', 'length'].includes(r.choices[0].finish_reason) : r.choices[0].finish_reason === 'tool_calls',
      JSON.stringify(r.choices[0]));
    assert.ok(m.tool_calls?.length >= 1);
    for (const call of m.tool_calls) {
      assert.equal(call.type, 'function');
      assert.ok(call.id, 'call id');
      const schema = toolSchema(call.function.name);
      assert.ok(schema, `unknown tool ${call.function.name}`);
      assert.equal(typeof call.function.arguments, 'string');
      const args = JSON.parse(call.function.arguments);
      assert.equal(validate(schema, args), '', call.function.arguments);
    }
  }
});

test('tools: a named function is called; none gives no call', async () => {
  const named = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'What time is it?' }], tools: TOOLS,
    tool_choice: { type: 'function', function: { name: 'get_time' } }, max_tokens: 400, seed: 5,
  });
  const calls = named.choices[0].message.tool_calls;
  assert.ok(calls?.length >= 1);
  for (const c of calls) {
    assert.equal(c.function.name, 'get_time');
    assert.equal(validate(toolSchema('get_time'), JSON.parse(c.function.arguments)), '');
  }
  for (const seed of [1, 2, 3]) {
    const none = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'What time is it?' }], tools: TOOLS, tool_choice: 'none',
      max_tokens: 24, seed,
    });
    assert.ok(!none.choices[0].message.tool_calls?.length, JSON.stringify(none.choices[0].message));
    assert.notEqual(none.choices[0].finish_reason, 'tool_calls');
  }
});

test('tools: streamed tool-call deltas assemble into a valid call', async () => {
  const stream = client.chat.completions.stream({
    model: MODEL, messages: [{ role: 'user', content: 'Dim the hall light.' }], tools: TOOLS,
    tool_choice: { type: 'function', function: { name: 'set_light' } }, parallel_tool_calls: false, max_tokens: 200,
    seed: 3,
  });
  const final = await stream.finalChatCompletion();
  const calls = final.choices[0].message.tool_calls;
  assert.ok(calls?.length >= 1, JSON.stringify(final));
  assert.equal(calls[0].function.name, 'set_light');
  assert.equal(validate(toolSchema('set_light'), JSON.parse(calls[0].function.arguments)), '');
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
});

test('response_format json_schema returns schema-valid JSON', async () => {
  const schema = {
    type: 'object',
    properties: {
      colour: { type: 'string', enum: ['red', 'green', 'blue'] },
      count: { type: 'integer', minimum: 1, maximum: 9 },
      ok: { type: 'boolean' },
      tags: { type: 'array', items: { type: 'string', enum: ['a', 'b'] }, minItems: 1, maxItems: 3 },
    },
    required: ['colour', 'count', 'ok', 'tags'],
    additionalProperties: false,
  };
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: 'Describe a ball as JSON.' }], max_tokens: 1500, seed,
      response_format: { type: 'json_schema', json_schema: { name: 'ball', schema, strict: true } },
    });
    const text = r.choices[0].message.content;
    assert.equal(r.choices[0].finish_reason, 'stop', text);
    const v = JSON.parse(text);
    assert.equal(validate(schema, v), '', text);
  }
  const obj = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'JSON please' }], max_tokens: 1500, seed: 4,
    response_format: { type: 'json_object' },
  });
  if (obj.choices[0].finish_reason === 'stop') assert.equal(typeof JSON.parse(obj.choices[0].message.content), 'object');
});

test('agent message list system, user, assistant(tool_calls), tool, tool, user, user is accepted', async () => {
  const r = await client.chat.completions.create({
    model: MODEL, max_tokens: 8, seed: 1, tools: TOOLS,
    messages: [
      { role: 'system', content: 'You control the house.' },
      { role: 'user', content: 'Lights on in the kitchen and tell me the time.' },
      {
        role: 'assistant', content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'set_light', arguments: '{"room":"kitchen","level":5,"on":true}' } },
          { id: 'call_2', type: 'function', function: { name: 'get_time', arguments: '{"zone":"utc"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '{"ok":true}' },
      { role: 'tool', tool_call_id: 'call_2', content: '12:00' },
      { role: 'user', content: 'Thanks.' },
      { role: 'user', content: 'Also, what did you do?' },
    ],
  });
  assert.equal(r.choices.length, 1);
  assert.ok(r.usage.prompt_tokens > 40);
});

test('content parts (text) are accepted', async () => {
  const r = await client.chat.completions.create({
    model: MODEL, max_tokens: 4, seed: 1,
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }, { type: 'text', text: 'there' }] }],
  });
  assert.equal(r.choices.length, 1);
});

test('thinking: budget respected, reasoning streamed separately, content non-empty', async () => {
  for (const [seed, budget] of [[1, 40], [2, 64], [3, 100]]) {
    const r = await client.chat.completions.create({
      model: MODEL, messages: hello, max_tokens: 240, seed, thinking_budget: budget,
    });
    const m = r.choices[0].message;
    const rt = r.usage.completion_tokens_details.reasoning_tokens;
    assert.ok(rt > 0 && rt <= budget, `reasoning_tokens ${rt} budget ${budget}`);
    assert.equal(typeof m.reasoning_content, 'string');
    assert.ok(m.content && m.content.trim().length > 0, `content ${JSON.stringify(m.content)}`);
  }
  const stream = await client.chat.completions.create({
    model: MODEL, messages: hello, max_tokens: 200, seed: 4, reasoning_effort: 'minimal', stream: true,
    stream_options: { include_usage: true },
  });
  let reasoning = '';
  let content = '';
  let usage = null;
  for await (const c of stream) {
    if (c.usage) usage = c.usage;
    const d = c.choices[0]?.delta ?? {};
    if (d.reasoning_content) {
      assert.equal(content, '', 'reasoning comes before content');
      reasoning += d.reasoning_content;
    }
    if (d.content) content += d.content;
  }
  assert.ok(reasoning.length > 0);
  assert.ok(usage.completion_tokens_details.reasoning_tokens > 0);
});

test('max_tokens and max_completion_tokens are honoured', async () => {
  for (const n of [1, 5, 17]) {
    const r = await client.chat.completions.create({ model: MODEL, messages: hello, max_tokens: n, seed: n });
    assert.ok(r.usage.completion_tokens <= n, `${r.usage.completion_tokens} > ${n}`);
    if (r.usage.completion_tokens === n) assert.equal(r.choices[0].finish_reason, 'length');
    const r2 = await client.chat.completions.create({ model: MODEL, messages: hello, max_completion_tokens: n, seed: n });
    assert.ok(r2.usage.completion_tokens <= n);
  }
});

test('stop sequences end the answer and are not included', async () => {
  const stops = ['e', 'a', 'o', ' '];
  let stopped = 0;
  for (const seed of [1, 2, 3, 4, 5]) {
    const r = await client.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 60, seed, stop: stops });
    const text = r.choices[0].message.content ?? '';
    for (const s of stops) assert.ok(!text.includes(s), `${JSON.stringify(text)} contains ${JSON.stringify(s)}`);
    if (r.choices[0].finish_reason === 'stop') ++stopped;
    const s1 = await client.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 60, seed, stop: 'e', stream: true });
    let streamed = '';
    for await (const c of s1) streamed += c.choices[0]?.delta?.content ?? '';
    assert.ok(!streamed.includes('e'), JSON.stringify(streamed));
  }
  assert.ok(stopped > 0, 'at least one answer ended on a stop sequence');
});

test('a prompt longer than the context is a 400 saying how many tokens it has and how many fit', async () => {
  const long = 'word '.repeat(20000);
  await assert.rejects(
    client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: long }], max_tokens: 4 }),
    (e) => e.status === 400 && e.code === 'context_length_exceeded' && /prompt has \d+ tokens/.test(e.message) &&
      /context holds \d+/.test(e.message),
  );
  await assert.rejects(
    client.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 10_000_000 }),
    (e) => e.status === 400 && /max_tokens/.test(e.message),
  );
});

test('completions: text, streaming, usage', async () => {
  const body = { model: MODEL, prompt: 'Once upon a time', max_tokens: 12, seed: 3 };
  const r = await client.completions.create(body);
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(r.usage.completion_tokens <= 12);
  const stream = await client.completions.create({ ...body, stream: true });
  let text = '';
  let finish = null;
  for await (const c of stream) {
    text += c.choices[0]?.text ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(text, r.choices[0].text);
  assert.equal(finish, r.choices[0].finish_reason);
  const dflt = await client.completions.create({ model: MODEL, prompt: 'Hello', seed: 1 });
  assert.ok(dflt.usage.completion_tokens <= 16, 'OpenAI default max_tokens 16');
});

test('embeddings: float and base64, normalised, deterministic', async () => {
  const r = await client.embeddings.create({ model: MODEL, input: ['hello world', 'goodbye'] });  // base64 by default
  assert.equal(r.data.length, 2);
  const [a, b] = r.data.map((d) => d.embedding);
  assert.ok(a.length > 0 && a.length === b.length);
  const norm = Math.sqrt(a.reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-3, `norm ${norm}`);
  const f = await client.embeddings.create({ model: MODEL, input: 'hello world', encoding_format: 'float' });
  assert.equal(f.data[0].embedding.length, a.length);
  for (let i = 0; i < a.length; ++i) assert.ok(Math.abs(f.data[0].embedding[i] - a[i]) < 1e-6);
  assert.ok(r.usage.prompt_tokens > 0);
});

test('health and CORS are off by default', async () => {
  const h = await http('GET', '/health');
  assert.equal(h.status, 200);
  assert.equal(h.json.status, 'ok');
  const pre = await http('OPTIONS', '/v1/chat/completions', undefined, { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' });
  assert.equal(pre.headers.get('access-control-allow-origin'), null);
  const get = await http('GET', '/v1/models', undefined, { Origin: 'http://evil.example' });
  assert.equal(get.headers.get('access-control-allow-origin'), null);
  assert.ok(BASE.startsWith('http://127.0.0.1:'));
});
