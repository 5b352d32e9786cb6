// Throughput: N concurrent streaming clients, each generating M tokens; prints generated tokens per second
// of wall time. Usage: node throughput.mjs [clients=16] [max_tokens=48]. Server from HEARTH_URL / HEARTH_MODEL.
import { MODEL, openai, measure } from './lib.mjs';

const clients = Number(process.argv[2] ?? 16);
const maxTokens = Number(process.argv[3] ?? 48);
const client = openai();
const one = async (i) => {
  const s = await client.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: `Story number ${i}, please.` }], max_tokens: maxTokens, seed: i,
    stream: true, stream_options: { include_usage: true },
  });
  let n = 0;
  for await (const c of s) if (c.usage) n = c.usage.completion_tokens;
  return n;
};
await one(-1);  // warm-up
const t0 = performance.now();
const counts = await Promise.all(Array.from({ length: clients }, (_, i) => one(i)));
const ms = performance.now() - t0;
const tokens = counts.reduce((a, b) => a + b, 0);
measure(`throughput clients`, clients);
measure(`throughput tokens`, tokens);
measure(`throughput wall ms`, ms.toFixed(0));
measure(`throughput tokens/s`, ((tokens * 1000) / ms).toFixed(1));
