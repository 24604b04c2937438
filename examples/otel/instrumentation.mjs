// isoplug's diagnostics channels as OpenTelemetry spans: a span per call, load, swap and close (from the
// tracing channels' `start` to `asyncEnd`), an error status and exception event for what rejected, and a
// zero-length error span per crash. Copy this file into an application: `instrumentIsoplug(tracer)`.
//
// With an AsyncLocalStorage context manager (the Node SDK installs one), the spans are children of the
// span active where the call was made; with none, each is a root span.
import { channel, tracingChannel } from 'node:diagnostics_channel';
import { context, SpanKind, SpanStatusCode } from '@opentelemetry/api';

/** Attributes of a context, for the fields it has. */
function attributes(fields) {
  const out = {};
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value === 'string' || typeof value === 'number') out[`isoplug.${key}`] = value;
  }
  return out;
}

/** Subscribes to the `isoplug:*` channels; returns the function that unsubscribes. */
export function instrumentIsoplug(tracer) {
  const spans = new WeakMap();
  const unsubscribes = [];
  const traced = (name, spanName) => {
    const handlers = {
      start(ctx) {
        const span = tracer.startSpan(
          spanName(ctx),
          { kind: SpanKind.INTERNAL, attributes: attributes(ctx) },
          context.active(),
        );
        spans.set(ctx, span);
      },
      error(ctx) {
        const span = spans.get(ctx);
        if (!span) return;
        span.recordException(ctx.error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: ctx.error?.code ?? ctx.error?.message });
      },
      asyncEnd(ctx) {
        const span = spans.get(ctx);
        if (!span) return;
        // Fields a context learns while it runs: a load's name and version, a swap's new version.
        span.setAttributes(attributes({ pluginName: ctx.pluginName, version: ctx.version, to: ctx.result?.to }));
        span.end();
        spans.delete(ctx);
      },
    };
    const trace = tracingChannel(name);
    trace.subscribe(handlers);
    unsubscribes.push(() => trace.unsubscribe(handlers));
  };
  traced('isoplug:call', (ctx) => `isoplug call ${ctx.method}`);
  traced('isoplug:load', () => 'isoplug load');
  traced('isoplug:swap', (ctx) => `isoplug ${ctx.reason}`);
  traced('isoplug:close', () => 'isoplug close');

  const onCrash = (message) => {
    const { error, ...fields } = message;
    const span = tracer.startSpan('isoplug crash', { attributes: attributes(fields) }, context.active());
    span.recordException(error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.code });
    span.end();
  };
  channel('isoplug:crash').subscribe(onCrash);
  unsubscribes.push(() => channel('isoplug:crash').unsubscribe(onCrash));
  return () => unsubscribes.splice(0).forEach((unsubscribe) => unsubscribe());
}
