// Shared helpers of the server tests. The server under test is given by the environment:
//   HEARTH_URL    http://127.0.0.1:PORT (tests/server_test.cpp starts `hearth serve` and sets it)
//   HEARTH_MODEL  the served model id
//   HEARTH_KEY    the API key the server wants (optional)
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import assert from 'node:assert/strict';

export const BASE = process.env.HEARTH_URL ?? 'http://127.0.0.1:12434';
export const MODEL = process.env.HEARTH_MODEL ?? 'demo';
export const KEY = process.env.HEARTH_KEY ?? '';

export function openai(opts = {}) {
  return new OpenAI({ baseURL: `${BASE}/v1`, apiKey: KEY || 'unused', maxRetries: 0, timeout: 120_000, ...opts });
}

export function ollama() {
  return new Ollama({ host: BASE, headers: KEY ? { Authorization: `Bearer ${KEY}` } : undefined });
}

// A raw HTTP request; the body is sent as is when it is a string or Buffer, as JSON otherwise.
export async function http(method, path, body, headers = {}) {
  const h = { ...headers };
  if (KEY && !('Authorization' in h) && !('authorization' in h)) h.Authorization = `Bearer ${KEY}`;
  let payload;
  if (body !== undefined) {
    payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    h['Content-Type'] ??= 'application/json';
  }
  const res = await fetch(`${BASE}${path}`, { method, headers: h, body: payload });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

// Parses the Prometheus text exposition format (0.0.4) strictly: every line is a comment (# HELP / # TYPE),
// empty, or `name{label="value",...} number`; every sample's family has a TYPE; histogram buckets are
// cumulative. Returns { types, samples: [{name, labels, value}], get(name, labels) }.
export function parsePrometheus(text) {
  const types = new Map();
  const samples = [];
  const nameRe = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      assert.ok(m, `line ${i + 1}: bad comment: ${line}`);
      if (m[1] === 'TYPE') {
        assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3]), `line ${i + 1}: type ${m[3]}`);
        assert.ok(!types.has(m[2]), `line ${i + 1}: TYPE of ${m[2]} given twice`);
        types.set(m[2], m[3]);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `line ${i + 1}: bad sample: ${line}`);
    const labels = {};
    if (m[3]) {
      const lre = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
      let pos = 0;
      while (pos < m[3].length) {
        lre.lastIndex = pos;
        const l = lre.exec(m[3]);
        assert.ok(l, `line ${i + 1}: bad labels: ${m[3]}`);
        labels[l[1]] = l[2];
        pos = lre.lastIndex;
      }
    }
    const value = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    assert.ok(!Number.isNaN(value) || m[4] === 'NaN', `line ${i + 1}: bad value ${m[4]}`);
    const family = m[1].replace(/_(bucket|sum|count)$/, '');
    assert.ok(types.has(m[1]) || types.has(family), `line ${i + 1}: ${m[1]} has no TYPE`);
    assert.ok(nameRe.test(m[1]));
    samples.push({ name: m[1], labels, value });
  }
  // Histograms: cumulative buckets ending with +Inf == _count.
  for (const [name, type] of types) {
    if (type !== 'histogram') continue;
    const buckets = samples.filter((s) => s.name === `${name}_bucket`);
    assert.ok(buckets.length > 0, `${name}: no buckets`);
    for (let i = 1; i < buckets.length; ++i) assert.ok(buckets[i].value >= buckets[i - 1].value, `${name}: buckets not cumulative`);
    assert.equal(buckets.at(-1).labels.le, '+Inf');
    const count = samples.find((s) => s.name === `${name}_count`);
    assert.equal(count?.value, buckets.at(-1).value, `${name}: +Inf bucket != _count`);
  }
  const get = (name, labels = {}) =>
    samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === String(v)))
      .reduce((a, s) => a + s.value, 0);
  return { types, samples, get };
}

export async function metrics() {
  const r = await http('GET', '/metrics');
  assert.equal(r.status, 200, r.text);
  return parsePrometheus(r.text);
}

// A small JSON Schema validator for the subset the tests use (type, enum, const, properties, required,
// additionalProperties, items, minimum, maximum, minItems, maxItems). Returns '' or the first violation.
export function validate(schema, v, path = '$') {
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(v)))
    return `${path}: ${JSON.stringify(v)} not in enum`;
  if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(v)) return `${path}: not const`;
  const t = schema.type;
  const typeOf = (x) =>
    x === null ? 'null' : Array.isArray(x) ? 'array' : Number.isInteger(x) ? 'integer' : typeof x;
  if (t) {
    const ok = [].concat(t).some((tt) => tt === typeOf(v) || (tt === 'number' && typeof v === 'number'));
    if (!ok) return `${path}: expected ${t}, got ${typeOf(v)}`;
  }
  if (typeof v === 'number') {
    if (schema.minimum !== undefined && v < schema.minimum) return `${path}: below minimum`;
    if (schema.maximum !== undefined && v > schema.maximum) return `${path}: above maximum`;
  }
  if (Array.isArray(v)) {
    if (schema.minItems !== undefined && v.length < schema.minItems) return `${path}: too few items`;
    if (schema.maxItems !== undefined && v.length > schema.maxItems) return `${path}: too many items`;
    if (schema.items) for (const [i, x] of v.entries()) {
      const e = validate(schema.items, x, `${path}[${i}]`);
      if (e) return e;
    }
  }
  if (typeOf(v) === 'object') {
    for (const k of schema.required ?? []) if (!(k in v)) return `${path}: missing ${k}`;
    for (const [k, x] of Object.entries(v)) {
      const sub = schema.properties?.[k];
      if (!sub) {
        if (schema.additionalProperties === false) return `${path}: unexpected key ${k}`;
        continue;
      }
      const e = validate(sub, x, `${path}.${k}`);
      if (e) return e;
    }
  }
  return '';
}

// Tools whose arguments a random-weight model can complete: enums, bounded integers, booleans.
export const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'set_light',
      description: 'Switch a light and set its brightness',
      parameters: {
        type: 'object',
        properties: {
          room: { type: 'string', enum: ['kitchen', 'hall', 'garage'] },
          level: { type: 'integer', minimum: 0, maximum: 10 },
          on: { type: 'boolean' },
        },
        required: ['room', 'level', 'on'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'get_time',
      description: 'The current time in a zone',
      parameters: {
        type: 'object',
        properties: { zone: { type: 'string', enum: ['utc', 'local'] } },
        required: ['zone'],
        additionalProperties: false,
      },
    },
  },
];

export function toolSchema(name) {
  return TOOLS.find((t) => t.function.name === name)?.function.parameters;
}

// Prints a measurement line that tests/server_test.cpp copies into its output.
export function measure(what, value) {
  console.log(`hearth-measure: ${what} = ${value}`);
}

export async function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
