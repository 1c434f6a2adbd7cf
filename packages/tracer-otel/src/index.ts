export { DEFAULT_DURATION_BOUNDARIES, INSTRUMENTATION_SCOPE, OtelTracer } from "./otel-tracer.js";
export type { ObservablePool, ObservePoolOptions, OtelTracerOptions } from "./otel-tracer.js";
