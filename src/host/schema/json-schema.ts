/**
 * The JSON Schemas of the config and the plan, for editors and other tools: `npm run schema` writes
 * them under schema/ (scripts/schema.ts); a test keeps them current.
 */
import { z } from 'zod';
import { runConfigSchema } from './config.js';
import { upgradePlanSchema } from './plan.js';

/** The JSON Schemas committed under schema/ (`npm run schema` writes them; a test keeps them current). */
export function jsonSchemas(): Record<string, object> {
  const options = { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' } as const;
  return {
    'config.schema.json': z.toJSONSchema(runConfigSchema, options),
    'plan.schema.json': z.toJSONSchema(upgradePlanSchema, options),
  };
}
