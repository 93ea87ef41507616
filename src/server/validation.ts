import AjvModule from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

const Ajv = AjvModule.default;
const addFormats = addFormatsModule.default;

/**
 * Two validators: JSON bodies are checked strictly (a mistyped or unknown field is a 400 that
 * names it, nothing is coerced or silently dropped); query strings and path parameters arrive
 * as text, so those coerce ("10" → 10) and fill defaults.
 */
const strict = addFormats(new Ajv({ allErrors: false, coerceTypes: false, removeAdditional: false, useDefaults: false, strict: false }));
const lenient = addFormats(new Ajv({ allErrors: false, coerceTypes: 'array', removeAdditional: false, useDefaults: true, strict: false }));

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const validate = (httpPart === 'body' ? strict : lenient).compile(schema as object);
  const invalid = (errors: unknown) => ({ error: Object.assign(new Error('validation'), { validation: errors, validationContext: httpPart }) });
  return (data: unknown) => {
    if (!validate(data)) return invalid(validate.errors);
    // No text the store keeps may hold a NUL: PostgreSQL refuses it (a 500), SQLite would cut it.
    const at = nulPath(data, '');
    return at === undefined ? { value: data } : invalid([{ instancePath: at, keyword: 'nul', params: {}, message: 'must not contain a NUL character' }]);
  };
};

/**
 * The JSON pointer of the first string (or key) holding U+0000, if any. Iterative: a body is
 * any JSON the parser took, nested as deep as the client likes, and a recursive walk ran out of
 * stack (a 500) on an object nested a few thousand levels.
 */
function nulPath(root: unknown, rootPath: string): string | undefined {
  const pending: Array<[unknown, string]> = [[root, rootPath]];
  while (pending.length > 0) {
    const [value, path] = pending.pop()!;
    if (typeof value === 'string') {
      if (value.includes('\u0000')) return path;
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    const entries: Array<[string, unknown]> = Array.isArray(value) ? value.map((item, i) => [String(i), item]) : Object.entries(value);
    // Pushed in reverse, so the walk meets the first offending value first, as the recursive one did.
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, item] = entries[i]!;
      if (!Array.isArray(value) && key.includes('\u0000')) return path;
      pending.push([item, `${path}/${key}`]);
    }
  }
  return undefined;
}
