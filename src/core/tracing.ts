/**
 * Traces (README, "Traces"): OpenTelemetry spans that follow one message from
 * its Pulse delivery through its job to the calls it makes and the
 * transactions it commits, exported over OTLP/HTTP (JSON) to
 * OTEL_EXPORTER_OTLP_ENDPOINT.
 *
 * Off unless that variable is set, and then free: nothing of OpenTelemetry is
 * loaded (the SDK, the exporter and even `@opentelemetry/api` come in through
 * `await import()` in startTracing), and every helper below is one test of a
 * module variable followed by a plain call of its callback.
 *
 * One trace per message: the bridge's consume span is active while BullMQ
 * adds the job; BullMQ's own telemetry (bullmq-otel, given to the bridge's
 * queues) then writes the W3C trace context into the job's options
 * (`opts.telemetry.metadata`, stored apart from the data: job ids and
 * payloads stay as they were, replay included), and the worker's job span
 * continues it (spanInJob). Spans made while a job span is active (tool runs,
 * HTTP calls, transactions) are its children through AsyncLocalStorage.
 */
import type { Attributes, Context, Span, Tracer } from "@opentelemetry/api";
import type { Telemetry } from "bullmq";
import type { Logger } from "./log.ts";

type Api = typeof import("@opentelemetry/api");

interface Tracing {
  api: Api;
  tracer: Tracer;
  telemetry: Telemetry;
}

/** Set while tracing runs; undefined means off (the helpers call straight through). */
let tracing: Tracing | undefined;

export type SpanKind = "internal" | "client" | "producer" | "consumer";
export type { Attributes, Span };

export interface TracingHandle {
  /** Exports every finished span now. */
  flush(): Promise<void>;
  /** Exports what is left and turns tracing off. Idempotent. */
  close(): Promise<void>;
}

export interface TracingOptions {
  /** OTEL_EXPORTER_OTLP_ENDPOINT; spans go to `<endpoint>/v1/traces`. Undefined: tracing stays off. */
  endpoint: string | undefined;
  /** The process's role (`bridge`, `worker hg-sync`, `start`...), a resource attribute of every span. */
  role: string;
  log: Logger;
}

/** Turns tracing on when an endpoint is configured; undefined when it is not. One tracing per process. */
export async function startTracing(options: TracingOptions): Promise<TracingHandle | undefined> {
  if (!options.endpoint || tracing) return undefined;
  const [api, { AsyncLocalStorageContextManager }, { W3CTraceContextPropagator }, { resourceFromAttributes }, sdk, { OTLPTraceExporter }, { BullMQOtel }] =
    await Promise.all([
      import("@opentelemetry/api"),
      import("@opentelemetry/context-async-hooks"),
      import("@opentelemetry/core"),
      import("@opentelemetry/resources"),
      import("@opentelemetry/sdk-trace"),
      import("@opentelemetry/exporter-trace-otlp-http"),
      import("bullmq-otel"),
    ]);
  const url = `${options.endpoint.replace(/\/+$/, "")}/v1/traces`;
  const provider = new sdk.TracerProvider({
    resource: resourceFromAttributes({ "service.name": "pulse-bridge", "pulse_bridge.role": options.role, "process.pid": process.pid }),
    spanProcessors: [new sdk.BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url }) })],
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  api.context.setGlobalContextManager(contextManager);
  api.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  api.trace.setGlobalTracerProvider(provider);
  tracing = { api, tracer: api.trace.getTracer("pulse-bridge"), telemetry: new BullMQOtel({ tracerName: "bullmq" }) };
  // The host only: credentials, if any, belong in OTEL_EXPORTER_OTLP_HEADERS, but never log a URL's.
  options.log.info({ collector: new URL(url).host }, "traces: exporting spans over OTLP/HTTP");

  let closing: Promise<void> | undefined;
  return {
    flush: () => provider.forceFlush(),
    close: () =>
      (closing ??= (async () => {
        tracing = undefined;
        await provider.shutdown().catch((error: Error) => options.log.warn({ err: error.message }, "traces: exporting the last spans failed"));
        api.trace.disable();
        api.propagation.disable();
        api.context.disable();
      })()),
  };
}

/** Whether spans are being made (callers skip building attributes when not). */
export function tracingOn(): boolean {
  return tracing !== undefined;
}

/** BullMQ's telemetry option for queues whose adds carry the trace into the job; undefined when off. */
export function queueTelemetry(): Telemetry | undefined {
  return tracing?.telemetry;
}

/** A span started and ended by hand (one that outlives a call: a delivery until its job is in Redis). */
export interface OpenSpan {
  /** Runs `fn` with this span as the active one. */
  run<T>(fn: () => T): T;
  setAttributes(attributes: Attributes): void;
  end(error?: unknown): void;
}

/** Starts a span, or returns undefined when tracing is off. */
export function startSpan(name: string, attributes: Attributes, kind: SpanKind = "internal"): OpenSpan | undefined {
  if (!tracing) return undefined;
  const { api, tracer } = tracing;
  const span = tracer.startSpan(name, { kind: spanKind(api, kind), attributes });
  const context = api.trace.setSpan(api.context.active(), span);
  return {
    run: (fn) => api.context.with(context, fn),
    setAttributes: (more) => span.setAttributes(more),
    end: (error) => {
      if (error !== undefined) markFailed(api, span, error);
      span.end();
    },
  };
}

/** Runs `fn` inside a span (a child of the active one), recording a thrown error. When off: `fn()`. */
export function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span | undefined) => Promise<T>, kind: SpanKind = "internal"): Promise<T> {
  if (!tracing) return fn(undefined);
  return runInSpan(tracing, name, attributes, kind, tracing.api.context.active(), fn);
}

/**
 * Runs a job inside a span continuing the trace whose context BullMQ stored
 * with the job (`opts.telemetry.metadata`, a JSON carrier written by
 * bullmq-otel); a job without one (scheduled, added by a command) starts a
 * trace of its own. When off: `fn()`.
 */
export function spanInJob<T>(name: string, metadata: string | undefined, attributes: Attributes, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!tracing) return fn(undefined);
  const { api } = tracing;
  let parent: Context = api.ROOT_CONTEXT;
  if (metadata) {
    try {
      parent = api.propagation.extract(api.ROOT_CONTEXT, JSON.parse(metadata) as Record<string, string>);
    } catch {
      // A job whose context cannot be read is traced on its own.
    }
  }
  return runInSpan(tracing, name, attributes, "consumer", parent, fn);
}

async function runInSpan<T>(
  { api, tracer }: Tracing,
  name: string,
  attributes: Attributes,
  kind: SpanKind,
  parent: Context,
  fn: (span: Span | undefined) => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, { kind: spanKind(api, kind), attributes }, parent, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      // A job put back because its repository's lock is taken has not failed.
      if ((error as Error)?.name === "DelayedError") span.setAttribute("pulse_bridge.delayed", true);
      else markFailed(api, span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

function markFailed(api: Api, span: Span, error: unknown): void {
  // Our errors carry no upstream text (see guarded-fetch.ts, run-tool.ts), so they may be exported.
  const message = error instanceof Error ? error.message : String(error);
  span.recordException(error instanceof Error ? error : message);
  span.setStatus({ code: api.SpanStatusCode.ERROR, message });
}

function spanKind(api: Api, kind: SpanKind) {
  return { internal: api.SpanKind.INTERNAL, client: api.SpanKind.CLIENT, producer: api.SpanKind.PRODUCER, consumer: api.SpanKind.CONSUMER }[kind];
}
