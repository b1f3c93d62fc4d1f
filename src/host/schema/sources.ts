/** Where a module's source comes from: a file, the text itself, or (on a cluster host) the code store. */
import { z } from 'zod';
import { strict, text } from './problems.js';

export const pathSource = (relativeTo: string) =>
  strict(
    {
      path: text('a file path').meta({ description: `The module's file, relative to ${relativeTo}.` }),
      base: text('a file URL or a directory').optional().meta({ description: 'What a relative path is relative to instead: a file URL or a directory.' }),
    },
    '{ path }',
  );
export const codeSource = strict(
  {
    code: z.string({ error: 'must be the source text' }).meta({ description: 'The source text (TypeScript or JavaScript, ES module syntax).' }),
    filename: text('a file name').optional().meta({ description: 'The name diagnostics give the source.' }),
  },
  '{ code }',
);

export const clusterSource = strict(
  {
    cluster: text("'latest' or a SHA-256").meta({
      description:
        "On a host of a cluster: the module's source from the cluster's code store, 'latest' (the version loaded last on any host) or the SHA-256 (hex) of one version's text.",
    }),
  },
  '{ cluster }',
);

export const planSourceError = (issue: { input?: unknown }) =>
  typeof issue.input === 'string'
    ? 'must be { "path": file } or { "code": source text }; a plain string is not taken as source text any more: write { "code": ... }'
    : 'must be { "path": file } or { "code": source text }';
