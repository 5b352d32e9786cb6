// Concurrency: 16 streaming clients at once, and a client that disconnects mid-stream frees its slot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, KEY, MODEL, openai, metrics, measure, sleep, http } from './lib.mjs';

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

// Polls /health until no slot is busy; returns the milliseconds it took (or Infinity after `limit` ms).
async function untilIdle(limit = 5000) {
  const t0 = performance.now();
  while (performance.now() - t0 < limit) {
    const h = await http('GET', '/health');
    if (h.json.slots_processing === 0 && h.json.queued === 0) return performance.now() - t0;
  }
  return Infinity;
}

test('a client that disconnects mid-stream frees its slot', async () => {
  // Milliseconds per generated token on this machine now, to express the delay in decode steps.
  const ref = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Write.' }], max_tokens: 200, seed: 1 });
  const msPerToken = ref.timings.predicted_per_token_ms;

  // 1. The openai SDK: leaving the `for await` loop aborts the request.
  const before = (await metrics()).get('hearth_requests_cancelled_total');
  const stream = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Write a very long story.' }], max_tokens: 3500, seed: 9,
    stream: true, ignore_eos: true,  // the random model may end within 60 tokens: a slow client would see it finish
  });
  let chunks = 0;
  for await (const c of stream) if (++chunks >= 5) break;
  const sdkMs = await untilIdle();
  assert.ok(sdkMs < 2000, `slot freed ${sdkMs} ms after the SDK aborted`);
  assert.equal((await metrics()).get('hearth_requests_cancelled_total'), before + 1, 'cancelled, not finished');
  measure('SDK abort to slot free ms', sdkMs.toFixed(1));

  // 2. A raw socket closed mid-stream: the time the server itself needs, in decode steps.
  const net = await import('node:net');
  const url = new URL(BASE);
  const times = [];
  const extra = [];  // tokens generated after the last one the client read (socket buffers included)
  for (let k = 0; k < 5; ++k) {
    const generatedBefore = (await metrics()).get('hearth_generated_tokens_total');
    const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Write.' }], max_tokens: 3500, seed: k, stream: true, ignore_eos: true });
    const sock = net.connect(Number(url.port), url.hostname);
    await new Promise((resolve) => sock.on('connect', resolve));
    sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      (KEY ? `Authorization: Bearer ${KEY}\r\n` : '') + `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    const received = await new Promise((resolve) => {
      let text = '';
      sock.on('data', (d) => {
        text += d.toString();
        const content = text.split('"delta":{"content":').length - 2;  // minus the role chunk
        if (content >= 10) {
          sock.pause();
          resolve(content);
        }
      });
    });
    sock.resetAndDestroy();  // RST, as a killed client
    times.push(await untilIdle());
    const generated = (await metrics()).get('hearth_generated_tokens_total') - generatedBefore;
    extra.push(generated - received);
  }
  times.sort((a, b) => a - b);
  extra.sort((a, b) => a - b);
  const median = times[2];
  measure('socket close to slot free ms (median of 5)', median.toFixed(1));
  measure('ms per decode step (one request alone)', msPerToken.toFixed(2));
  measure('tokens generated past the last one the client read, in flight included (median of 5)', extra[2]);
  measure('tokens generated past the last one the client read (all 5)', extra.join(' '));
  assert.ok(times.every((t) => t < 1000), `freed after ${times.map((t) => t.toFixed(1)).join(', ')} ms`);
});

test('a non-streaming request is cancelled when its client closes the connection', async () => {
  const net = await import('node:net');
  const url = new URL(BASE);
  const before = (await metrics()).get('hearth_requests_cancelled_total');
  const body = JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Write.' }], max_tokens: 3500, seed: 5, ignore_eos: true });
  const sock = net.connect(Number(url.port), url.hostname);
  await new Promise((resolve) => sock.on('connect', resolve));
  sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
    (KEY ? `Authorization: Bearer ${KEY}\r\n` : '') + `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  // Wait until the engine runs it, then leave.
  const t0 = performance.now();
  while ((await http('GET', '/health')).json.slots_processing === 0 && performance.now() - t0 < 5000) await sleep(1);
  sock.destroy();
  const freed = await untilIdle();
  measure('non-streaming: close to slot free ms', freed.toFixed(1));
  assert.ok(freed < 1000, `freed after ${freed} ms`);
  assert.equal((await metrics()).get('hearth_requests_cancelled_total'), before + 1, 'cancelled, not finished');
});

test('a disconnected Ollama stream frees its slot too', async () => {
  const before = (await metrics()).get('hearth_requests_cancelled_total');
  const ac = new AbortController();
  const res = await fetch(`${process.env.HEARTH_URL}/api/chat`, {
    method: 'POST', signal: ac.signal,
    body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'Go on and on.' }], options: { num_predict: 3500, seed: 4, ignore_eos: true } }),
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
