// Concurrency: 16 streaming clients at once, and a client that disconnects mid-stream frees its slot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MODEL, openai, metrics, measure, sleep, http } from './lib.mjs';

const client = openai();

async function streamOne(i, maxTokens) {
  const stream = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: `Client ${i}: tell me a story.` }], max_tokens: maxTokens,
    seed: i, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  let done = false;
  for await (const c of stream) {
    if (c.usage) usage = c.usage;
    if (c.choices[0]?.delta?.content) text += c.choices[0].delta.content;
    if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
  }
  done = true;
  return { i, text, finish, usage, done };
}

test('16 concurrent streaming clients all complete correctly', async () => {
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: 16 }, (_, i) => streamOne(i, 32)));
  const ms = performance.now() - t0;
  let tokens = 0;
  for (const r of results) {
    assert.ok(r.done);
    assert.ok(['stop', 'length'].includes(r.finish), `client ${r.i}: finish ${r.finish}`);
    assert.ok(r.usage && r.usage.completion_tokens <= 32);
    tokens += r.usage.completion_tokens;
  }
  // Each stream's text equals the same request answered alone (same seed), so no stream got another's tokens.
  for (const i of [0, 7, 15]) {
    const alone = await client.chat.completions.create({
      model: MODEL, messages: [{ role: 'user', content: `Client ${i}: tell me a story.` }], max_tokens: 32, seed: i,
    });
    assert.equal(results[i].text, alone.choices[0].message.content ?? '', `client ${i}`);
  }
  measure('16 streams wall ms', ms.toFixed(0));
  measure('16 streams generated tokens', tokens);
  measure('16 streams tokens/s', ((tokens * 1000) / ms).toFixed(1));
  const m = await metrics();
  assert.equal(m.get('hearth_slots_busy'), 0);
  assert.equal(m.get('hearth_queue_depth'), 0);
});

test('a client that disconnects mid-stream frees its slot', async () => {
  const before = await metrics();
  const cancelledBefore = before.get('hearth_requests_cancelled_total');
  const stream = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Write a very long story.' }], max_tokens: 3500, seed: 9,
    temperature: 1, stream: true,
  });
  let chunks = 0;
  for await (const c of stream) {
    if (c.choices[0]?.delta?.content !== undefined) ++chunks;
    if (chunks >= 5) break;  // leaves the loop: the SDK aborts the HTTP request
  }
  const t0 = performance.now();
  let busy = -1;
  let m;
  while (performance.now() - t0 < 5000) {
    m = await metrics();
    busy = m.get('hearth_slots_busy');
    if (busy === 0) break;
    await sleep(2);
  }
  const freedMs = performance.now() - t0;
  assert.equal(busy, 0, 'slot still busy 5 s after the client left');
  measure('disconnect to slot free ms', freedMs.toFixed(1));
  const decodeTps = m.get('hearth_decode_tokens_per_second');
  if (decodeTps > 0) measure('disconnect to slot free (decode steps)', ((freedMs * decodeTps) / 1000).toFixed(1));
  assert.equal(m.get('hearth_requests_cancelled_total'), cancelledBefore + 1, 'the request was cancelled, not finished');
  assert.ok(freedMs < 2000, `slot freed after ${freedMs} ms`);
  const h = await http('GET', '/health');
  assert.equal(h.json.slots_processing, 0);
});

test('a disconnected Ollama stream frees its slot too', async () => {
  const before = (await metrics()).get('hearth_requests_cancelled_total');
  const ac = new AbortController();
  const res = await fetch(`${process.env.HEARTH_URL}/api/chat`, {
    method: 'POST', signal: ac.signal,
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Go on and on.' }], options: { num_predict: 3500, seed: 4 } }),
    headers: { 'Content-Type': 'application/json', ...(process.env.HEARTH_KEY ? { Authorization: `Bearer ${process.env.HEARTH_KEY}` } : {}) },
  });
  const reader = res.body.getReader();
  let got = 0;
  while (got < 3) {
    const { value, done } = await reader.read();
    if (done) break;
    got += new TextDecoder().decode(value).split('\n').filter(Boolean).length;
  }
  ac.abort();
  const t0 = performance.now();
  let m;
  while (performance.now() - t0 < 5000) {
    m = await metrics();
    if (m.get('hearth_slots_busy') === 0) break;
    await sleep(2);
  }
  assert.equal(m.get('hearth_slots_busy'), 0);
  assert.equal(m.get('hearth_requests_cancelled_total'), before + 1);
});
