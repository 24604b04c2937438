// isoplug traced with OpenTelemetry: the diagnostics channels become spans (instrumentation.mjs), kept
// by an in-memory exporter and printed. A hot swap serves calls, one fails, it swaps, a version crashes.
//
//   npm run build && node examples/otel/run.mjs
import { fileURLToPath } from 'node:url';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createHotSwap, loadPlugin } from 'isoplug';
import { instrumentIsoplug } from './instrumentation.mjs';

const plugin = (name) => fileURLToPath(new URL(`./plugins/${name}`, import.meta.url));
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const uninstrument = instrumentIsoplug(provider.getTracer('isoplug-example'));

const hs = await createHotSwap(plugin('greeter.mjs'), { version: 'v1' });
try {
  console.log(await hs.api.greet('Ada'));
  await hs.api.validate(undefined).catch((error) => console.log(`${error.name}: ${JSON.stringify(error.issues)}`));
  await hs.swap(plugin('greeter-v2.mjs'), { version: 'v2' });
  console.log(await hs.api.greet('Ada'));
} finally {
  await hs.close();
}
const doomed = await loadPlugin(plugin('greeter.mjs'), { name: 'doomed', version: 'v1' });
await doomed.api.exit().catch((error) => console.log(`crash: ${error.code}`));
await doomed.exited;
uninstrument();
await provider.forceFlush();

const spans = exporter.getFinishedSpans();
console.log(`\n${spans.length} spans:`);
for (const span of spans) {
  const attrs = Object.entries(span.attributes).map(([k, v]) => `${k}=${v}`);
  const status = span.status.code === 2 ? `ERROR ${span.status.message}` : 'ok';
  console.log(`  ${span.name.padEnd(22)} ${status.padEnd(28)} ${attrs.join(' ')}`);
}

const names = spans.map((span) => span.name);
const failed = spans.filter((span) => span.status.code === 2).map((span) => span.name);
const expected = [
  'isoplug load',
  'isoplug call greet',
  'isoplug call validate',
  'isoplug swap',
  'isoplug close',
  'isoplug crash',
];
const missing = expected.filter((name) => !names.includes(name));
const swap = spans.find((span) => span.name === 'isoplug swap');
const ok =
  missing.length === 0 &&
  failed.includes('isoplug call validate') &&
  failed.includes('isoplug call exit') &&
  failed.includes('isoplug crash') &&
  !failed.includes('isoplug call greet') &&
  swap?.attributes['isoplug.from'] === 'v1' &&
  swap?.attributes['isoplug.to'] === 'v2';
await provider.shutdown();
if (!ok) {
  console.log(`FAIL: missing ${missing.join(', ') || 'nothing'}; failed spans: ${failed.join(', ')}`);
  process.exitCode = 1;
} else {
  console.log(`ok: otel recorded ${spans.length} spans for calls, loads, a swap, closes and a crash`);
}
