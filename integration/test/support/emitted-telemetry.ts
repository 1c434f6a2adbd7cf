/**
 * Compares what a tracer emitted with what its README documents (see `tracer-readme.ts`), in both directions:
 * nothing emitted that the README does not list, and nothing listed that no run emitted.
 */
import type { DocumentedAttribute, DocumentedEvent, TracerReadme } from "./tracer-readme.js";

export interface EmittedEvent {
  readonly name: string;
  readonly attributes: Readonly<Record<string, unknown>>;
}

export interface EmittedSpan {
  readonly name: string;
  /** `CLIENT`, `INTERNAL`…, when the tracer has span kinds. */
  readonly kind?: string | undefined;
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly events: readonly EmittedEvent[];
  /** The span recorded an error (status ERROR). */
  readonly failed: boolean;
}

export interface EmittedMetric {
  readonly name: string;
  /** `histogram`, `counter` or `observable gauge`, as the README names them. */
  readonly type: string;
  readonly unit: string;
  readonly points: readonly Readonly<Record<string, unknown>>[];
}

export interface Emitted {
  readonly spans: readonly EmittedSpan[];
  readonly metrics: readonly EmittedMetric[];
}

/** Rows a test run is allowed not to produce, each with the reason. */
export interface Exemptions {
  readonly events?: Readonly<Record<string, string>>;
  readonly attributes?: Readonly<Record<string, string>>;
}

function checkAttributes(
  where: string,
  attributes: Readonly<Record<string, unknown>>,
  documented: readonly DocumentedAttribute[],
  alsoAllowed: readonly DocumentedAttribute[],
  problems: string[],
): void {
  const known = new Set([...documented, ...alsoAllowed].map((attribute) => attribute.name));
  for (const name of Object.keys(attributes)) {
    if (!known.has(name)) problems.push(`${where}: attribute ${name} is emitted but not documented`);
  }
  for (const attribute of documented) {
    if (!attribute.conditional && !(attribute.name in attributes)) {
      problems.push(`${where}: attribute ${attribute.name} is documented as always set but missing`);
    }
  }
}

/** Everything emitted that the README does not say, or says otherwise (a missing always-set attribute, a wrong unit). */
export function undocumented(readme: TracerReadme, emitted: Emitted): string[] {
  const problems: string[] = [];
  const failedRow = readme.spans.find((row) => row.name === undefined);
  for (const span of emitted.spans) {
    const row = readme.spans.find((candidate) => candidate.name === span.name);
    if (!row) {
      problems.push(`span ${span.name} is emitted but not documented`);
      continue;
    }
    if (row.kind !== undefined && span.kind !== row.kind) problems.push(`span ${span.name}: kind ${span.kind} is emitted, ${row.kind} documented`);
    checkAttributes(`span ${span.name}`, span.attributes, row.attributes, span.failed ? (failedRow?.attributes ?? []) : [], problems);
    for (const event of span.events) {
      const eventRow = readme.events.find((candidate) => candidate.name === event.name);
      if (!eventRow) {
        problems.push(`event ${event.name} (on ${span.name}) is emitted but not documented`);
        continue;
      }
      const allowedHere = eventRow.spans === undefined ? span.failed : eventRow.spans.includes(span.name);
      if (!allowedHere)
        problems.push(
          `event ${event.name} is emitted on ${span.name}${span.failed ? " (failed)" : ""}, documented on ${eventRow.spans?.join(", ") ?? "failed spans"}`,
        );
      checkAttributes(`event ${event.name}`, event.attributes, eventRow.attributes, [], problems);
    }
  }
  for (const metric of emitted.metrics) {
    const row = readme.metrics.find((candidate) => candidate.name === metric.name);
    if (!row) {
      problems.push(`metric ${metric.name} is emitted but not documented`);
      continue;
    }
    if (row.unit !== metric.unit) problems.push(`metric ${metric.name}: unit ${metric.unit} is emitted, ${row.unit} documented`);
    if (row.type !== metric.type) problems.push(`metric ${metric.name}: a ${metric.type} is emitted, a ${row.type} documented`);
    for (const point of metric.points) checkAttributes(`metric ${metric.name}`, point, row.attributes, [], problems);
  }
  return [...new Set(problems)];
}

function seen(
  documented: readonly DocumentedAttribute[],
  instances: readonly Readonly<Record<string, unknown>>[],
  where: string,
  exemptions: Exemptions,
  problems: string[],
): void {
  for (const attribute of documented) {
    if (exemptions.attributes?.[attribute.name] !== undefined) continue;
    if (!instances.some((attributes) => attribute.name in attributes)) problems.push(`${where}: attribute ${attribute.name} is documented but never emitted`);
  }
}

/** Everything the README lists that no emitted span, event or metric shows, except the exempted rows. */
export function neverEmitted(readme: TracerReadme, emitted: Emitted, exemptions: Exemptions = {}): string[] {
  const problems: string[] = [];
  for (const row of readme.spans) {
    const spans = emitted.spans.filter((span: EmittedSpan) => (row.name === undefined ? span.failed : span.name === row.name));
    const label = row.name === undefined ? "failed spans" : `span ${row.name}`;
    if (spans.length === 0) {
      problems.push(`${label}: documented but never emitted`);
      continue;
    }
    seen(
      row.attributes,
      spans.map((span) => span.attributes),
      label,
      exemptions,
      problems,
    );
  }
  for (const row of readme.events as readonly DocumentedEvent[]) {
    if (exemptions.events?.[row.name] !== undefined) continue;
    const events = emitted.spans.flatMap((span) => span.events.filter((event) => event.name === row.name));
    if (events.length === 0) {
      problems.push(`event ${row.name}: documented but never emitted`);
      continue;
    }
    seen(
      row.attributes,
      events.map((event) => event.attributes),
      `event ${row.name}`,
      exemptions,
      problems,
    );
  }
  for (const row of readme.metrics) {
    const metric = emitted.metrics.filter((candidate) => candidate.name === row.name);
    const points = metric.flatMap((candidate) => candidate.points);
    if (points.length === 0) {
      problems.push(`metric ${row.name}: documented but never emitted`);
      continue;
    }
    seen(row.attributes, points, `metric ${row.name}`, exemptions, problems);
  }
  return problems;
}
