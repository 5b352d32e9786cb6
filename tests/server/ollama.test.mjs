// The Ollama API through the unmodified official `ollama` npm client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MODEL, ollama, http, validate, TOOLS, toolSchema } from './lib.mjs';

const client = ollama();
const messages = [{ role: 'user', content: 'Why is the sky blue?' }];

test('/api/tags lists the served model', async () => {
  const r = await client.list();
  assert.equal(r.models.length, 1);
  const m = r.models[0];
  assert.equal(m.name, MODEL);
  assert.equal(m.model, MODEL);
  assert.ok(m.size > 0);
  assert.equal(m.details.format, 'gguf');
  assert.equal(m.details.family, 'gemma4');
  assert.ok(m.details.quantization_level);
});

test('/api/chat streaming: NDJSON parts, then a done part with counts', async () => {
  const stream = await client.chat({ model: MODEL, messages, stream: true, options: { num_predict: 20, seed: 3 } });
  let text = '';
  let last = null;
  let parts = 0;
  for await (const part of stream) {
    ++parts;
    assert.equal(part.model, MODEL);
    assert.ok(!Number.isNaN(Date.parse(part.created_at)));
    if (!part.done) text += part.message.content;
    last = part;
  }
  assert.ok(last.done);
  assert.ok(['stop', 'length'].includes(last.done_reason));
  assert.ok(last.eval_count <= 20);
  assert.ok(last.prompt_eval_count > 0);
  assert.ok(last.total_duration > 0);
  assert.ok(parts >= 2);
  // The same request without streaming answers the same text.
  const whole = await client.chat({ model: MODEL, messages, stream: false, options: { num_predict: 20, seed: 3 } });
  assert.equal(whole.message.content, text);
  assert.equal(whole.done, true);
  assert.equal(whole.eval_count, last.eval_count);
});

test('/api/chat accepts name:latest and returns tool calls', async () => {
  const r = await client.chat({
    model: `${MODEL}:latest`, messages: [{ role: 'user', content: 'Lights on in the garage' }], tools: TOOLS,
    options: { num_predict: 64, seed: 2 }, format: undefined,
  });
  // tool_choice is "auto" in Ollama: a call may or may not come; when it does it is schema-valid.
  for (const c of r.message.tool_calls ?? []) {
    const schema = toolSchema(c.function.name);
    assert.ok(schema, c.function.name);
    assert.equal(typeof c.function.arguments, 'object');
    assert.equal(validate(schema, c.function.arguments), '', JSON.stringify(c.function.arguments));
  }
});

test('/api/chat format (a JSON schema) and think', async () => {
  const schema = { type: 'object', properties: { answer: { type: 'string', enum: ['yes', 'no'] }, n: { type: 'integer', minimum: 0, maximum: 3 } }, required: ['answer', 'n'] };
  const r = await client.chat({ model: MODEL, messages, format: schema, options: { num_predict: 1500, seed: 1 } });
  assert.equal(validate(schema, JSON.parse(r.message.content)), '', r.message.content);
  const t = await client.chat({ model: MODEL, messages, think: true, options: { num_predict: 200, seed: 1 } });
  assert.equal(typeof t.message.thinking, 'string');
  assert.ok(t.message.thinking.length > 0);
  assert.ok(t.message.content.length > 0);
});

test('/api/chat: a tool-call history in Ollama shape is accepted', async () => {
  const r = await client.chat({
    model: MODEL, options: { num_predict: 4, seed: 1 },
    messages: [
      { role: 'system', content: 'House bot.' },
      { role: 'user', content: 'Kitchen light on' },
      { role: 'assistant', content: '', tool_calls: [{ function: { name: 'set_light', arguments: { room: 'kitchen', level: 3, on: true } } }] },
      { role: 'tool', content: '{"ok":true}', tool_name: 'set_light' },
      { role: 'user', content: 'thanks' },
    ],
  });
  assert.ok(r.done);
});

test('/api/generate: streaming and not, raw, load-only', async () => {
  const stream = await client.generate({ model: MODEL, prompt: 'Once upon a time', stream: true, options: { num_predict: 12, seed: 5 } });
  let text = '';
  let last;
  for await (const p of stream) {
    if (!p.done) text += p.response;
    last = p;
  }
  assert.ok(last.done);
  const whole = await client.generate({ model: MODEL, prompt: 'Once upon a time', options: { num_predict: 12, seed: 5 } });
  assert.equal(whole.response, text);
  const raw = await client.generate({ model: MODEL, prompt: 'abc', raw: true, options: { num_predict: 4, seed: 5 } });
  assert.ok(raw.done);
  const load = await client.generate({ model: MODEL, prompt: '' });
  assert.equal(load.done_reason, 'load');
});

test('/api/show, /api/ps, /api/version, /api/embed', async () => {
  const s = await client.show({ model: MODEL });
  assert.equal(s.details.family, 'gemma4');
  assert.equal(s.model_info['general.architecture'], 'gemma4');
  assert.ok(s.capabilities.includes('tools'));
  const ps = await client.ps();
  assert.equal(ps.models[0].name, MODEL);
  assert.ok(ps.models[0].size > 0);
  assert.ok(ps.models[0].context_length > 0);
  const v = await client.version();
  assert.match(v.version, /^\d+\.\d+\.\d+/);
  const e = await client.embed({ model: MODEL, input: ['a', 'b c'] });
  assert.equal(e.embeddings.length, 2);
  assert.ok(e.embeddings[0].length > 0);
});

test('errors come back as the client\'s ResponseError with the server\'s message', async () => {
  await assert.rejects(client.chat({ model: 'llama3', messages }), (e) => e.name === 'ResponseError' && e.status_code === 404 && /llama3/.test(e.error));
  await assert.rejects(
    client.chat({ model: MODEL, messages: [{ role: 'user', content: 'many words here '.repeat(40) }], options: { num_ctx: 16 } }),
    (e) => e.status_code === 400 && /prompt has \d+ tokens but the context holds 16/.test(e.error),
  );
  const r = await http('POST', '/api/chat', { model: MODEL, messages, stream: false, options: { num_predict: 3, num_ctx: 4096 } });
  assert.equal(r.status, 200);
});
