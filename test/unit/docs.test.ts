import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { errorCatalog } from '../../src/errors/catalog.js';
import { errorsMarkdown, withConfigTable } from '../../src/docs/generate.js';

describe('documentation generated from the code', () => {
  it('README configuration table matches the config schema (run `npm run docs`)', () => {
    const readme = readFileSync('README.md', 'utf8');
    expect(withConfigTable(readme)).toBe(readme);
    for (const key of Object.values(configSchema)) expect(readme).toContain(`\`${key.env}\``);
  });

  it('docs/errors.md matches the error catalog (run `npm run docs`)', () => {
    const doc = readFileSync('docs/errors.md', 'utf8');
    expect(doc).toBe(errorsMarkdown());
    for (const code of Object.keys(errorCatalog)) expect(doc).toContain(`\`${code}\``);
  });

  it('every error code is a 4xx or 5xx with a description', () => {
    for (const [code, spec] of Object.entries(errorCatalog)) {
      expect(spec.status, code).toBeGreaterThanOrEqual(400);
      expect(spec.description.length, code).toBeGreaterThan(10);
    }
  });
});
