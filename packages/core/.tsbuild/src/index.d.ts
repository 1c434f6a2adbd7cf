export * from "./errors.js";
export type * from "./types.js";
export type * from "./transport.js";
export type * from "./pool.js";
export type { Attributes, AttributeValue, Span, Tracer } from "./tracer.js";
export { NoopTracer } from "./tracer.js";
export { quote, quoteArgs } from "./quote.js";
//# sourceMappingURL=index.d.ts.map