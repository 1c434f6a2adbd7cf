export { QueueProducer } from "./queue-producer.js";
export type { QueueProducerOptions } from "./queue-producer.js";
export { QueueWorker } from "./queue-worker.js";
export type { QueueWorkerJobEvent, QueueWorkerOptions } from "./queue-worker.js";
export { JOB_DATA_VERSION } from "./job-data.js";
export type { OperationKind, QueueJobData, QueueJobEvent, QueueJobOutcome, QueueJobProgress, TraceCarrier } from "./job-data.js";
export { deserializeError, serializeError } from "./serialize-error.js";
export type { SerializedError } from "./serialize-error.js";
export type { RedisLocation } from "./redis.js";
