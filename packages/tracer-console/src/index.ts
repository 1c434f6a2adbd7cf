export { ConsoleTracer } from "./console-tracer.js";
export type { ConsoleLevel, ConsoleStream, ConsoleTracerOptions } from "./console-tracer.js";
