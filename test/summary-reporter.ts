/**
 * Ends a test run with one plain line, `subnode: N passed, N failed[, N skipped]`, which CI reads
 * whatever the runner's own output looks like.
 */
import type { Reporter, RunnerTask, RunnerTestFile } from 'vitest';

function count(tasks: RunnerTask[], totals: Record<'passed' | 'failed' | 'skipped', number>): void {
  for (const task of tasks) {
    if (task.type === 'suite') count(task.tasks, totals);
    else if (task.result?.state === 'pass') totals.passed++;
    else if (task.result?.state === 'fail') totals.failed++;
    else totals.skipped++;
  }
}

export default class SummaryReporter implements Reporter {
  onFinished(files: RunnerTestFile[] = [], errors: unknown[] = []): void {
    const totals = { passed: 0, failed: 0, skipped: 0 };
    count(files, totals);
    // A file that failed to load or whose hooks failed, or an unhandled error, is a failure even
    // when none of its tests is counted as failed.
    const failedTests = (tasks: RunnerTask[]): boolean => tasks.some((t) => (t.type === 'suite' ? failedTests(t.tasks) : t.result?.state === 'fail'));
    totals.failed += files.filter((f) => f.result?.state === 'fail' && !failedTests(f.tasks)).length + errors.length;
    const skipped = totals.skipped ? `, ${totals.skipped} skipped` : '';
    console.log(`\nsubnode: ${totals.passed} passed, ${totals.failed} failed${skipped}`);
  }
}
