import type { TransferContext } from "./context.js";
import { onChannel } from "./context.js";

/**
 * Runs `work` over `items` with at most `context.parallelism` at once; each worker past the first borrows its own
 * channel from the pool. The first failure stops new work and is thrown.
 */
export async function eachLimited<T>(context: TransferContext, items: readonly T[], work: (item: T, context: TransferContext) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const run = async (workerContext: TransferContext) => {
    while (failed === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item, workerContext);
      } catch (error) {
        failed ??= error;
      }
    }
  };
  const borrowed = async () => {
    if (!context.borrow) return;
    const borrowing = await context.borrow();
    let error: unknown;
    try {
      await run(onChannel(context, borrowing.channel));
    } catch (caught) {
      error = caught;
      throw caught;
    } finally {
      borrowing.done(error);
    }
  };
  const workers = Math.max(1, Math.min(context.parallelism, items.length));
  await Promise.all([run(context), ...Array.from({ length: workers - 1 }, () => borrowed().catch((error: unknown) => void (failed ??= error)))]);
  if (failed !== undefined) throw failed;
}
