import { EventEmitter } from 'node:events';

type EventMap<E> = { [K in keyof E]: unknown[] };

/**
 * An EventEmitter whose `safeEmit` calls every listener in turn and reports
 * one that throws (or rejects) instead of letting it reach the emitter: what
 * a listener does never changes the outcome of what announced the event, nor
 * keeps the other listeners from hearing it. As mediasoup's
 * EnhancedEventEmitter, plus isolation between listeners.
 */
export class SafeEmitter<E extends EventMap<E>> extends EventEmitter<E> {
  constructor(private readonly onListenerError: (err: unknown, event: string) => void) {
    super();
    this.setMaxListeners(Infinity);
  }

  safeEmit<K extends keyof E & string>(event: K, ...args: E[K]): void {
    // rawListeners: a once() listener is removed as it is called.
    const listeners = (this as unknown as EventEmitter).rawListeners(event) as ((...a: E[K]) => unknown)[];
    for (const listener of listeners) {
      try {
        const result = listener.apply(this, args);
        if (result instanceof Promise) result.catch((err: unknown) => this.onListenerError(err, event));
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
  }
}
