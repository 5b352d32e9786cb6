// scripts/demo.sh's client: one chat request to `hearth serve` through the official openai npm client,
// streamed, then the reply's usage and timings. Usage: node demo.mjs BASE_URL MODEL
import OpenAI from 'openai';

const [base = 'http://127.0.0.1:12434', model = 'demo'] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: process.env.HEARTH_API_KEY || 'unused', maxRetries: 0 });

const models = await client.models.list();
console.log(`models: ${models.data.map((m) => m.id).join(', ')}`);
const question = 'Tell me about the hearth in one sentence.';
console.log(`user: ${question}`);
process.stdout.write('assistant: ');
const stream = await client.chat.completions.create({
  model, messages: [{ role: 'user', content: question }], max_tokens: 48, seed: 1, stream: true,
  stream_options: { include_usage: true },
});
let final = null;
for await (const chunk of stream) {
  const text = chunk.choices[0]?.delta?.content;
  if (text) process.stdout.write(text);
  if (chunk.usage) final = chunk;
}
process.stdout.write('\n');
const u = final.usage;
const t = final.timings;
console.log(`usage: ${u.prompt_tokens} prompt tokens, ${u.completion_tokens} completion tokens`);
console.log(`timings: prompt ${t.prompt_n} tokens in ${t.prompt_ms.toFixed(1)} ms (${t.prompt_per_second.toFixed(1)} tok/s), ` +
  `generated ${t.predicted_n} tokens in ${t.predicted_ms.toFixed(1)} ms (${t.predicted_per_second.toFixed(1)} tok/s)`);
