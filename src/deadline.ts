/**
 * One rule for a wait that must not hang (runs on any thread): `work`, or the error `late()` makes
 * once `ms` passed, whichever comes first; the timer never outlives the wait.
 */
export function within<T>(work: Promise<T>, ms: number, late: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
