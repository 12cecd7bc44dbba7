/**
 * Acks the deliveries of one channel once their work is done, in order.
 *
 * Deliveries complete out of order (batches of different queues resolve
 * independently), but an ack with `allUpTo` acknowledges every earlier tag on
 * the channel, so only the done prefix is acked: one frame for a whole run of
 * completed deliveries, and never an ack for a message whose job Redis does
 * not have. A tracker belongs to one channel: once that channel has died
 * (`retire()`), nothing is acked any more; RabbitMQ redelivers those messages
 * on the next channel and their deterministic job ids make the re-add a no-op.
 */
import type { Channel, ConsumeMessage } from "amqplib";

export interface TrackedDelivery {
  readonly message: ConsumeMessage;
  done: boolean;
}

export class AckTracker {
  private readonly queue: TrackedDelivery[] = [];
  private head = 0;
  private flushScheduled = false;
  private retired = false;
  private readonly drainWaiters: Array<() => void> = [];

  constructor(private readonly channel: Channel) {}

  /** Deliveries received and not yet acked. */
  get unacked(): number {
    return this.queue.length - this.head;
  }

  get isRetired(): boolean {
    return this.retired;
  }

  /** Registers a delivery, in the order the channel delivered it. */
  track(message: ConsumeMessage): TrackedDelivery {
    const delivery: TrackedDelivery = { message, done: false };
    this.queue.push(delivery);
    return delivery;
  }

  /** Marks a delivery's work done; its ack goes out with the done prefix. */
  complete(delivery: TrackedDelivery): void {
    delivery.done = true;
    if (this.retired || this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** The channel has died or is closing: never ack on it again. */
  retire(): void {
    this.retired = true;
    this.queue.length = 0;
    this.head = 0;
    this.wakeDrainWaiters();
  }

  /** Resolves once every tracked delivery has been acked (or the tracker retired). */
  drained(): Promise<void> {
    if (this.unacked === 0 || this.retired) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.retired) return;
    let last: TrackedDelivery | undefined;
    while (this.head < this.queue.length && this.queue[this.head]!.done) last = this.queue[this.head++];
    if (!last) return;
    // Compact now and then instead of shifting on every ack.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    try {
      this.channel.ack(last.message, true);
    } catch {
      // The channel closed under us (amqplib throws on a closed channel):
      // the broker requeues these deliveries; the close handler retires us.
      this.retire();
      return;
    }
    if (this.unacked === 0) this.wakeDrainWaiters();
  }

  private wakeDrainWaiters(): void {
    for (const wake of this.drainWaiters.splice(0)) wake();
  }
}
