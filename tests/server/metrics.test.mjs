// /metrics parses as Prometheus text and its counters move after requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MODEL, openai, metrics, http } from './lib.mjs';

test('/metrics is Prometheus text with the documented families', async () => {
  const r = await http('GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const m = await metrics();
  for (const [name, type] of [
    ['hearth_http_requests_total', 'counter'],
    ['hearth_prompt_tokens_total', 'counter'],
    ['hearth_generated_tokens_total', 'counter'],
    ['hearth_reasoning_tokens_total', 'counter'],
    ['hearth_prefill_tokens_per_second', 'gauge'],
    ['hearth_decode_tokens_per_second', 'gauge'],
    ['hearth_time_to_first_token_seconds', 'histogram'],
    ['hearth_queue_depth', 'gauge'],
    ['hearth_slots_busy', 'gauge'],
    ['hearth_kv_cells_used', 'gauge'],
    ['hearth_kv_cells_total', 'gauge'],
    ['process_resident_memory_bytes', 'gauge'],
  ])
    assert.equal(m.types.get(name), type, name);
  assert.ok(m.get('process_resident_memory_bytes') > 1e6);
  assert.ok(m.get('hearth_kv_cells_total') > 0);
});

test('counters move after requests', async () => {
  const before = await metrics();
  const client = openai();
  await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 8, seed: 1 });
  const s = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hey' }], max_tokens: 8, seed: 2, stream: true });
  for await (const _ of s);
  await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 40, seed: 3, thinking_budget: 20 });
  await http('POST', '/v1/chat/completions', '{bad');
  const after = await metrics();
  const route = { route: '/v1/chat/completions' };
  assert.equal(after.get('hearth_http_requests_total', { ...route, status: 200 }) - before.get('hearth_http_requests_total', { ...route, status: 200 }), 3);
  assert.equal(after.get('hearth_http_requests_total', { ...route, status: 400 }) - before.get('hearth_http_requests_total', { ...route, status: 400 }), 1);
  assert.ok(after.get('hearth_prompt_tokens_total') > before.get('hearth_prompt_tokens_total'));
  assert.ok(after.get('hearth_generated_tokens_total') > before.get('hearth_generated_tokens_total'));
  assert.ok(after.get('hearth_reasoning_tokens_total') > before.get('hearth_reasoning_tokens_total'));
  assert.equal(after.get('hearth_time_to_first_token_seconds_count') - before.get('hearth_time_to_first_token_seconds_count'), 3);
  assert.ok(after.get('hearth_requests_completed_total') >= before.get('hearth_requests_completed_total') + 3);
  assert.ok(after.get('hearth_decode_tokens_per_second') > 0);
  assert.ok(after.get('hearth_prefill_tokens_per_second') > 0);
  assert.ok(after.get('hearth_kv_cells_used') > 0, 'slots keep their conversation for prefix reuse');
});
