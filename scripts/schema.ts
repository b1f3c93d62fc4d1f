/**
 * Writes the JSON Schemas of a `subnode run` config and of an upgrade plan (schema/*.json) from the
 * zod schemas in src/host/schema/. `npm run schema`; test/schema.test.ts fails if they are stale.
 */
import { writeFileSync } from 'node:fs';
import { jsonSchemas } from '../src/host/schema/json-schema.js';

const dir = new URL('../../schema/', import.meta.url);
for (const [name, schema] of Object.entries(jsonSchemas())) {
  writeFileSync(new URL(name, dir), `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`wrote schema/${name}`);
}
