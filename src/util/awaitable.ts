/**
 * A value now, or later. The request path answers from caches without a promise and awaits
 * only on a miss: every async function and await costs an allocation and a microtask, and the
 * gateway pays them on every request (DEVELOPERS.md, "Adding a protocol": the hot path).
 */
export type Awaitable<T> = T | Promise<T>;

/**
 * `f` applied to a value that may still be coming: synchronously when it is already here. (Not
 * named `then`: a module exporting `then` is a thenable, and awaiting its import calls it.)
 */
export function andThen<T, R>(value: Awaitable<T>, f: (value: T) => Awaitable<R>): Awaitable<R> {
  return value instanceof Promise ? value.then(f) : f(value);
}

/**
 * Runs `run`, passing what it throws or rejects with through `onError` (which rethrows, usually
 * after decorating the error): synchronously when `run` answered synchronously.
 */
export function guarded<T>(run: () => Awaitable<T>, onError: (error: unknown) => never): Awaitable<T> {
  let value: Awaitable<T>;
  try {
    value = run();
  } catch (error) {
    return onError(error);
  }
  return value instanceof Promise ? value.catch(onError) : value;
}
