import { errorMessage, type Logger, type Reading } from "@datalab/shared";
import type { Sink } from "../sinks/types";

export type WrittenListener = (readings: readonly Reading[]) => void;

/**
 * The same sink, telling `listener` what each batch committed. The listener runs after the
 * write returned (so after COMMIT) and before the consumer acks; it must be quick and is
 * never allowed to fail the write: an error in it is logged and the batch goes on.
 *
 * A redelivered batch (nothing new inserted) is not announced again. A batch that was partly
 * new is announced whole: the page may see a reading twice, which costs it nothing.
 */
export function notifyOnWrite(inner: Sink, listener: WrittenListener, logger: Logger): Sink {
  return {
    name: inner.name,
    async write(b) {
      const result = await inner.write(b);
      if (result.inserted > 0) {
        try {
          listener(b.readings);
        } catch (err) {
          logger.warn(
            { err: errorMessage(err), sink: inner.name },
            "write listener failed; the batch is written all the same",
          );
        }
      }
      return result;
    },
    healthy: () => inner.healthy(),
    close: () => inner.close(),
  };
}
