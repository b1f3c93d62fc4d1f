/**
 * Waiting in tests for a condition, with a deadline: never a fixed sleep. The check may be a plain
 * test or a question to ask (a control call, asked one at a time); the first truthy answer is
 * returned, so a test can wait for a value and use it.
 */
export async function until<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
